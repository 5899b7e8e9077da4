package dev.inmesh.runtime.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.listener.HostNormalization;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.runtime.xds.EnvoyJson;
import dev.inmesh.runtime.xds.InvalidResourceException;
import dev.inmesh.runtime.xds.ListenerParser;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The connection manager's {@code strip_matching_host_port}, {@code strip_any_host_port} and
 * {@code strip_trailing_host_dot}, with the cases Envoy's own header utility is documented and tested to handle.
 */
class HostNormalizerTest {
    private static HttpConnectionManager hcm(HostNormalization.StripPort port, boolean dot) {
        return HttpConnectionManager.of("s", "r", List.of(HttpFilter.of("envoy.filters.http.router", "")))
                .withHostNormalization(new HostNormalization(port, dot));
    }

    @Test
    void theMatchingPortIsTakenOffAndNoOther() {
        HttpConnectionManager m = hcm(HostNormalization.StripPort.MATCHING, false);
        Map<String, String> cases = new java.util.LinkedHashMap<>();
        cases.put("localhost", "localhost");
        cases.put("localhost:443", "localhost");
        cases.put("", "");
        cases.put(":443", "");
        cases.put("192.168.1.1", "192.168.1.1");
        cases.put("192.168.1.1:443", "192.168.1.1");
        cases.put("[fc00::1]:443", "[fc00::1]");
        cases.put("[fc00::1]", "[fc00::1]");
        cases.put(":", ":");
        cases.put("]:", "]:");
        cases.put(":abc", ":abc");
        cases.put("localhost:80", "localhost:80");
        cases.put("192.168.1.1:80", "192.168.1.1:80");
        cases.put("[fc00::1]:80", "[fc00::1]:80");
        cases.put("localhost:99999999999", "localhost:99999999999");
        cases.forEach((in, out) -> assertEquals(out, HostNormalizer.apply(m, in, 443, "GET"), in));
    }

    @Test
    void anyPortIsTakenOffButACONNECTsAndNothingElse() {
        HttpConnectionManager m = hcm(HostNormalization.StripPort.ANY, false);
        assertEquals("localhost", HostNormalizer.apply(m, "localhost:9999", 443, "GET"));
        assertEquals("[::1]", HostNormalizer.apply(m, "[::1]:8080", 443, "GET"));
        assertEquals("example.com.", HostNormalizer.apply(m, "example.com.:1", 443, "GET"), "the dot stays");
        assertEquals("localhost:x", HostNormalizer.apply(m, "localhost:x", 443, "GET"));
        assertEquals("localhost:443", HostNormalizer.apply(m, "localhost:443", 443, "CONNECT"));
    }

    @Test
    void aTrailingDotGoesBeforeThePortWhichStays() {
        HttpConnectionManager m = hcm(HostNormalization.StripPort.NONE, true);
        assertEquals("localhost", HostNormalizer.apply(m, "localhost", 80, "GET"));
        assertEquals("localhost", HostNormalizer.apply(m, "localhost.", 80, "GET"));
        assertEquals("example.com:443", HostNormalizer.apply(m, "example.com.:443", 80, "GET"));
        assertEquals("example.com:443", HostNormalizer.apply(m, "example.com:443", 80, "GET"));
        assertEquals("192.168.1.1", HostNormalizer.apply(m, "192.168.1.1", 80, "GET"));
        assertEquals("[fc00::1]:443", HostNormalizer.apply(m, "[fc00::1]:443", 80, "GET"));
        // both: the dot first, then the port of the host it left
        assertEquals("example.com", HostNormalizer.apply(hcm(HostNormalization.StripPort.MATCHING, true),
                "example.com.:80", 80, "GET"));
    }

    @Test
    void withoutSettingsTheHostIsTheSameString() {
        String host = "example.com.:80";
        assertSame(host, HostNormalizer.apply(hcm(HostNormalization.StripPort.NONE, false), host, 80, "GET"));
        assertSame(host, HostNormalizer.apply(null, host, 80, "GET"));
    }

    private static final String LISTENER = """
            name: gateway
            address: {socket_address: {address: 0.0.0.0, port_value: 8080}}
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: http
                  %s
                  rds: {route_config_name: http.8080, config_source: {ads: {}}}
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
            """;

    private static HttpConnectionManager parsed(String fields) throws Exception {
        var l = new ListenerParser().parse(EnvoyJson.toMessage(EnvoyJson.tree(LISTENER.formatted(fields)),
                io.envoyproxy.envoy.config.listener.v3.Listener.class));
        return (HttpConnectionManager) l.filterChains().get(0).filter();
    }

    @Test
    void theSettingsAreReadAndTheTwoPortModesTogetherRefused() throws Exception {
        assertEquals(HostNormalization.NONE, parsed("").hostNormalization());
        assertEquals(new HostNormalization(HostNormalization.StripPort.ANY, true),
                parsed("strip_any_host_port: true\n      strip_trailing_host_dot: true").hostNormalization());
        assertEquals(HostNormalization.StripPort.MATCHING, parsed("strip_matching_host_port: true")
                .hostNormalization().stripPort());
        String refusal = assertThrows(InvalidResourceException.class,
                () -> parsed("strip_matching_host_port: true\n      strip_any_host_port: true")).getMessage();
        assertTrue(refusal.contains("strip_any_host_port") && refusal.contains("only one of them"), refusal);
    }
}
