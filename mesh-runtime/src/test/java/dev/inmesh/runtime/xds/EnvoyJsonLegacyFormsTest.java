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
 * Timestamp as the object of its fields, a wrapper as {@code {"value": ...}}, a ListValue as {@code {"values": ...}}, a
 * FieldMask as {@code {"paths": ...}}; other objects in their place are still refused, by the path of what does not
 * fit.
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
    void theSecondsAndNanosAreReadAsProtobufReadsAnIntegerWithAPointOrAnExponent() throws Exception {
        RouteConfiguration r = routes("""
                virtual_hosts:
                - name: v
                  domains: ["*"]
                  routes:
                  - match: {prefix: /a}
                    route: {cluster: c, timeout: {seconds: 1.0, nanos: 5e8}, idle_timeout: {seconds: "1e3"}}
                  - match: {prefix: /b}
                    route: {cluster: c, timeout: {seconds: "2.", nanos: "+0"}}
                """);
        var a = r.getVirtualHosts(0).getRoutes(0).getRoute();
        assertEquals(1, a.getTimeout().getSeconds());
        assertEquals(500_000_000, a.getTimeout().getNanos());
        assertEquals(1000, a.getIdleTimeout().getSeconds());
        assertEquals(2, r.getVirtualHosts(0).getRoutes(1).getRoute().getTimeout().getSeconds());
        for (String seconds : new String[] {"1.5", "\"1 \"", "1e16", "\"0x10\"", "\"Infinity\""}) {
            var tree = EnvoyJson.tree("virtual_hosts: [{name: v, domains: [\"*\"], routes: [{match: {prefix: /}, "
                    + "route: {cluster: c, timeout: {seconds: " + seconds + "}}}]}]");
            assertThrows(InvalidProtocolBufferException.class, () -> EnvoyJson.toMessage(tree,
                    RouteConfiguration.class), seconds);
        }
    }

    @Test
    void aListValueOrFieldMaskWrittenAsTheObjectOfItsFieldsReadsAsIt() throws Exception {
        RouteConfiguration r = routes("""
                virtual_hosts:
                - name: v
                  domains: ["*"]
                  typed_per_filter_config:
                    list:
                      "@type": type.googleapis.com/google.protobuf.ListValue
                      value: {values: [1, a, [2]]}
                    one:
                      "@type": type.googleapis.com/google.protobuf.ListValue
                      value: {values: b}
                    none:
                      "@type": type.googleapis.com/google.protobuf.ListValue
                      value: {}
                    mask:
                      "@type": type.googleapis.com/google.protobuf.FieldMask
                      value: {paths: [a.b, c_d]}
                    single:
                      "@type": type.googleapis.com/google.protobuf.FieldMask
                      value: {paths: e}
                """);
        var configs = r.getVirtualHosts(0).getTypedPerFilterConfigMap();
        var list = configs.get("list").unpack(com.google.protobuf.ListValue.class);
        assertEquals(3, list.getValuesCount());
        assertEquals(1, list.getValues(0).getNumberValue());
        assertEquals("a", list.getValues(1).getStringValue());
        assertEquals(2, list.getValues(2).getListValue().getValues(0).getNumberValue());
        assertEquals("b", configs.get("one").unpack(com.google.protobuf.ListValue.class).getValues(0)
                .getStringValue());
        assertEquals(0, configs.get("none").unpack(com.google.protobuf.ListValue.class).getValuesCount());
        assertEquals(java.util.List.of("a.b", "c_d"),
                configs.get("mask").unpack(com.google.protobuf.FieldMask.class).getPathsList());
        assertEquals(java.util.List.of("e"),
                configs.get("single").unpack(com.google.protobuf.FieldMask.class).getPathsList());
        for (String value : new String[] {"{values: [1], other: 2}", "{paths: [aB]}", "{paths: [\"a,b\"]}"}) {
            String type = value.contains("paths") ? "FieldMask" : "ListValue";
            var tree = EnvoyJson.tree("virtual_hosts: [{name: v, domains: [\"*\"], typed_per_filter_config: {x: "
                    + "{\"@type\": type.googleapis.com/google.protobuf." + type + ", value: " + value + "}}}]");
            assertThrows(InvalidProtocolBufferException.class, () -> EnvoyJson.toMessage(tree,
                    RouteConfiguration.class), value);
        }
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
