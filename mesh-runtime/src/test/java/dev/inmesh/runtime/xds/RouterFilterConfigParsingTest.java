package dev.inmesh.runtime.xds;

import static dev.inmesh.runtime.xds.IstioSecurityTelemetryShapesTest.inbound;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.RouterFilterConfig;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The router filter's typed config ({@code envoy.extensions.filters.http.router.v3.Router}): each field is applied,
 * shown to change nothing here, or refused by name.
 */
class RouterFilterConfigParsingTest {

    private static HttpConnectionManager hcm(String hcmFields, String router) throws Exception {
        var l = new ListenerParser().parse(EnvoyJson.toMessage(EnvoyJson.tree(inbound(hcmFields, "", router)),
                io.envoyproxy.envoy.config.listener.v3.Listener.class));
        return assertInstanceOf(HttpConnectionManager.class, l.filterChains().get(0).filter());
    }

    private static String refusal(String hcmFields, String router) {
        return assertThrows(InvalidResourceException.class, () -> hcm(hcmFields, router)).getMessage();
    }

    private static final String TRACING = """
            tracing:
              random_sampling: {value: 1}
            """;

    @Test
    void suppressRespectExpectedTimeoutAndStrictCheckHeadersAreRead() throws Exception {
        HttpConnectionManager h = hcm("", """
                suppress_envoy_headers: true
                respect_expected_rq_timeout: true
                strict_check_headers: [x-envoy-max-retries, x-envoy-retry-on]
                """);
        assertEquals(new RouterFilterConfig(true, true, List.of("x-envoy-max-retries", "x-envoy-retry-on")),
                h.router());
        assertEquals(RouterFilterConfig.DEFAULTS, hcm("", "").router());
    }

    @Test
    void istiodsRouterShapesLoad() throws Exception {
        // istiod's BuildRouterFilter: start_child_span false on sidecars (true on older gateways), dynamic_stats unset
        assertEquals(RouterFilterConfig.DEFAULTS, hcm(TRACING, "start_child_span: false\n").router());
        // without tracing there is no span to start a child of
        assertEquals(RouterFilterConfig.DEFAULTS, hcm("", "start_child_span: true\n").router());
        assertEquals(RouterFilterConfig.DEFAULTS, hcm("", """
                dynamic_stats: true
                suppress_grpc_request_failure_code_stats: false
                """).router());
    }

    @Test
    void fieldsInmeshDoesNotImplementAreRefusedByName() {
        String at = "http_filters[0].typed_config.";
        String m = refusal(TRACING, "start_child_span: true\n");
        assertTrue(m.contains(at + "start_child_span"), m);
        m = refusal("", "dynamic_stats: false\n");
        assertTrue(m.contains(at + "dynamic_stats"), m);
        m = refusal("", "suppress_grpc_request_failure_code_stats: true\n");
        assertTrue(m.contains(at + "suppress_grpc_request_failure_code_stats"), m);
        m = refusal("", """
                upstream_log:
                - name: envoy.access_loggers.stdout
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog}
                """);
        assertTrue(m.contains(at + "upstream_log"), m);
        m = refusal("", "upstream_log_options: {flush_upstream_log_on_upstream_stream: true}\n");
        assertTrue(m.contains(at + "upstream_log_options"), m);
        m = refusal("", """
                upstream_http_filters:
                - name: envoy.filters.http.upstream_codec
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec}
                """);
        assertTrue(m.contains(at + "upstream_http_filters"), m);
        m = refusal("", "strict_check_headers: [x-envoy-hedge-on-per-try-timeout]\n");
        assertTrue(m.contains(at + "strict_check_headers"), m);
    }
}
