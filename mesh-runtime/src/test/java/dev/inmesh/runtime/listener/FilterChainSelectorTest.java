package dev.inmesh.runtime.listener;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.inmesh.api.config.core.CidrRange;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.api.config.listener.FilterChainMatch;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.api.config.listener.TcpProxy;
import dev.inmesh.api.config.listener.TrafficDirection;
import dev.inmesh.api.config.route.ClusterSpecifier;
import java.util.List;
import org.junit.jupiter.api.Test;

class FilterChainSelectorTest {

    private static FilterChain chain(String name, FilterChainMatch m) {
        return FilterChain.of(name, m, TcpProxy.of(name, new ClusterSpecifier.Named(name)));
    }

    private static FilterChainMatch match(int port, List<CidrRange> dst, String transport, List<String> alpn,
                                          List<CidrRange> src) {
        return new FilterChainMatch(port, dst, List.of(), transport, alpn, FilterChainMatch.SourceType.ANY, src,
                List.of());
    }

    private static Listener listener(FilterChain dflt, FilterChain... chains) {
        return Listener.of("virtualInbound", new SocketAddress("0.0.0.0", 15006), TrafficDirection.INBOUND,
                List.of(chains), dflt).withUseOriginalDst(true);
    }

    private static ConnectionInfo conn(String dst, int port, String transport, List<String> alpn, String src) {
        return new ConnectionInfo(dst, port, "", transport, alpn, src, 40000, false);
    }

    @Test
    void aChainForTheExactDestinationPortBeatsAPortlessOne() {
        var sel = new FilterChainSelector(listener(null,
                chain("any", FilterChainMatch.ANY),
                chain("9080", match(9080, List.of(), "", List.of(), List.of()))));
        assertEquals("9080", sel.select(conn("10.0.0.1", 9080, "raw_buffer", List.of(), "10.0.0.2")).name());
        assertEquals("any", sel.select(conn("10.0.0.1", 8080, "raw_buffer", List.of(), "10.0.0.2")).name());
    }

    @Test
    void theLongestDestinationPrefixWins() {
        var sel = new FilterChainSelector(listener(null,
                chain("wide", match(0, List.of(new CidrRange("10.0.0.0", 8)), "", List.of(), List.of())),
                chain("narrow", match(0, List.of(new CidrRange("10.1.2.0", 24)), "", List.of(), List.of()))));
        assertEquals("narrow", sel.select(conn("10.1.2.3", 80, "raw_buffer", List.of(), "1.1.1.1")).name());
        assertEquals("wide", sel.select(conn("10.9.2.3", 80, "raw_buffer", List.of(), "1.1.1.1")).name());
        assertNull(sel.select(conn("11.0.0.1", 80, "raw_buffer", List.of(), "1.1.1.1")));
    }

    @Test
    void applicationProtocolsAreTakenInTheClientsAlpnOrder() {
        var sel = new FilterChainSelector(listener(chain("default", FilterChainMatch.ANY),
                chain("h11", match(0, List.of(), "", List.of("http/1.1"), List.of())),
                chain("h2", match(0, List.of(), "", List.of("h2"), List.of())),
                chain("none", FilterChainMatch.ANY)));
        assertEquals("h2", sel.select(conn("10.0.0.1", 443, "tls", List.of("h2", "http/1.1"), "1.1.1.1")).name());
        assertEquals("h11", sel.select(conn("10.0.0.1", 443, "tls", List.of("http/1.1", "h2"), "1.1.1.1")).name());
        assertEquals("h2", sel.select(conn("10.0.0.1", 443, "tls", List.of("spdy/3", "h2"), "1.1.1.1")).name());
        assertEquals("none", sel.select(conn("10.0.0.1", 443, "tls", List.of("spdy/3"), "1.1.1.1")).name());
    }

    @Test
    void transportProtocolAndAlpnSplitTlsFromPlaintextHttp() {
        var sel = new FilterChainSelector(listener(chain("passthrough", FilterChainMatch.ANY),
                chain("tls", match(9080, List.of(), "tls", List.of("istio-peer-exchange", "istio"), List.of())),
                chain("http", match(9080, List.of(), "raw_buffer", List.of("http/1.1", "h2c"), List.of())),
                chain("tcp", match(9080, List.of(), "raw_buffer", List.of(), List.of()))));
        assertEquals("http", sel.select(conn("10.0.0.1", 9080, "raw_buffer", List.of("http/1.1"), "1.1.1.1")).name());
        assertEquals("tcp", sel.select(conn("10.0.0.1", 9080, "raw_buffer", List.of(), "1.1.1.1")).name());
        assertEquals("tls", sel.select(conn("10.0.0.1", 9080, "tls", List.of("istio"), "1.1.1.1")).name());
        assertEquals("passthrough", sel.select(conn("10.0.0.1", 7070, "raw_buffer", List.of(), "1.1.1.1")).name());
    }

    @Test
    void thereIsNoBacktrackingToALessSpecificPort() {
        // A chain names port 9080 but not this transport: Envoy does not fall back to the portless chain.
        var sel = new FilterChainSelector(listener(chain("default", FilterChainMatch.ANY),
                chain("any-port-tls", match(0, List.of(), "tls", List.of(), List.of())),
                chain("9080-plain", match(9080, List.of(), "raw_buffer", List.of(), List.of()))));
        assertEquals("default", sel.select(conn("10.0.0.1", 9080, "tls", List.of(), "1.1.1.1")).name());
    }

    @Test
    void sourcePrefixesAndPortsNarrowLast() {
        var sel = new FilterChainSelector(listener(null,
                chain("from-mesh", match(0, List.of(), "", List.of(), List.of(new CidrRange("10.0.0.0", 8)))),
                chain("from-anywhere", FilterChainMatch.ANY)));
        assertEquals("from-mesh", sel.select(conn("1.2.3.4", 80, "raw_buffer", List.of(), "10.3.3.3")).name());
        assertEquals("from-anywhere", sel.select(conn("1.2.3.4", 80, "raw_buffer", List.of(), "8.8.8.8")).name());
    }

    @Test
    void ipv6DestinationsMatchTheirPrefixes() {
        var sel = new FilterChainSelector(listener(null,
                chain("v6", match(0, List.of(new CidrRange("fd00::", 8)), "", List.of(), List.of()))));
        assertEquals("v6", sel.select(conn("fd12::1", 80, "raw_buffer", List.of(), "::1")).name());
    }
}
