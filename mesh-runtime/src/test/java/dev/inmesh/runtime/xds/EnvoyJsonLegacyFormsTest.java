package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.InvalidProtocolBufferException;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
import org.junit.jupiter.api.Test;

/**
 * The object forms that protobuf's C++ JSON parser reads in the legacy syntax Envoy's loading allows: a Duration or
 * Timestamp as the object of its fields, a wrapper as {@code {"value": ...}}; other objects in their place are still
 * refused, by the path of what does not fit.
 */
class EnvoyJsonLegacyFormsTest {

    private static RouteConfiguration routes(String yaml) throws Exception {
        return EnvoyJson.toMessage(EnvoyJson.tree(yaml), RouteConfiguration.class);
    }

    @Test
    void aDurationWrittenAsItsSecondsAndNanosReadsAsTheDuration() throws Exception {
        RouteConfiguration r = routes("""
                virtual_hosts:
                - name: v
                  domains: ["*"]
                  routes:
                  - match: {prefix: /a}
                    route: {cluster: c, timeout: {seconds: 1, nanos: 500000000}, idle_timeout: {nanos: 0}}
                  - match: {prefix: /b}
                    route: {cluster: c, timeout: {seconds: "30"}}
                """);
        var a = r.getVirtualHosts(0).getRoutes(0).getRoute();
        assertEquals(1, a.getTimeout().getSeconds());
        assertEquals(500_000_000, a.getTimeout().getNanos());
        assertTrue(a.hasIdleTimeout());
        assertEquals(0, a.getIdleTimeout().getSeconds());
        assertEquals(30, r.getVirtualHosts(0).getRoutes(1).getRoute().getTimeout().getSeconds());
    }

    @Test
    void aWrapperWrittenAsItsValueObjectReadsAsTheValueAndAnEmptyOneAsTheDefault() throws Exception {
        RouteConfiguration r = routes("""
                validate_clusters: {value: true}
                max_direct_response_body_size_bytes: {}
                virtual_hosts:
                - name: v
                  domains: ["*"]
                  retry_policy: {num_retries: {value: "3"}}
                """);
        assertTrue(r.getValidateClusters().getValue());
        assertTrue(r.hasMaxDirectResponseBodySizeBytes());
        assertEquals(0, r.getMaxDirectResponseBodySizeBytes().getValue());
        assertEquals(3, r.getVirtualHosts(0).getRetryPolicy().getNumRetries().getValue());
    }

    @Test
    void theObjectFormsAreReadInsideATypedConfigAndForATimestampToo() throws Exception {
        Listener l = EnvoyJson.toMessage(EnvoyJson.tree("""
                name: l
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: s
                      common_http_protocol_options: {idle_timeout: {seconds: 5}}
                      route_config: {name: r}
                """), Listener.class);
        HttpConnectionManager hcm = l.getFilterChains(0).getFilters(0).getTypedConfig()
                .unpack(HttpConnectionManager.class);
        assertEquals(5, hcm.getCommonHttpProtocolOptions().getIdleTimeout().getSeconds());
        var failure = EnvoyJson.toMessage(EnvoyJson.tree("""
                last_update_attempt: {seconds: 86400, nanos: 5}
                """), io.envoyproxy.envoy.admin.v3.UpdateFailureState.class);
        assertEquals(86400, failure.getLastUpdateAttempt().getSeconds());
        assertEquals(5, failure.getLastUpdateAttempt().getNanos());
    }

    @Test
    void anObjectWithAnotherFieldOrANonIntegerIsStillRefusedByItsPath() throws Exception {
        String[][] cases = {
            {"timeout: {seconds: 1, minutes: 2}", "virtual_hosts[0].routes[0].route.timeout.minutes: unknown field"},
            {"timeout: {seconds: 1.5}", "virtual_hosts[0].routes[0].route.timeout.seconds: 1.5 (expected: an int64"},
            {"max_grpc_timeout: {value: 1}", "virtual_hosts[0].routes[0].route.max_grpc_timeout.value: "
                    + "unknown field"},
        };
        for (String[] c : cases) {
            String yaml = "virtual_hosts:\n- name: v\n  domains: [\"*\"]\n  routes:\n  - match: {prefix: /}\n"
                    + "    route: {cluster: c, " + c[0] + "}\n";
            var tree = EnvoyJson.tree(yaml);
            assertThrows(InvalidProtocolBufferException.class, () -> EnvoyJson.toMessage(tree,
                    RouteConfiguration.class), c[0]);
            FieldError misfit = JsonShapeCheck.find(tree, RouteConfiguration.getDescriptor());
            assertTrue(misfit != null && misfit.getMessage().startsWith(c[1]), c[0] + ": " + misfit);
        }
        assertFalse(JsonShapeCheck.find(EnvoyJson.tree("validate_clusters: {value: true}"),
                RouteConfiguration.getDescriptor()) != null, "the object form fits");
    }
}
