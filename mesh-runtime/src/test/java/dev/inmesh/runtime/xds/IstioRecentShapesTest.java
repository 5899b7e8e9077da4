package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.listener.Listener;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * What istiod 1.22 to 1.28 writes into a sidecar's listeners, routes, clusters and endpoints that the Istio 1.20
 * fixtures do not show (read from istiod's listener, route and cluster builders, its well-known filters and its
 * feature flags' defaults), in that shape, through Inmesh's parsers: above all what it writes by default, where a
 * refusal would NACK every workload. What still refuses names its field here, so that the refusal is a decision
 * written down, not an accident. {@link IstioTrafficPolicyShapesTest} and {@link IstioSecurityTelemetryShapesTest}
 * hold the shapes of the Istio APIs; docs/configuration.md describes the behaviour.
 */
class IstioRecentShapesTest {

    static Listener listener(String yaml) throws Exception {
        return new ListenerParser().parse(EnvoyJson.toMessage(EnvoyJson.tree(yaml),
                io.envoyproxy.envoy.config.listener.v3.Listener.class));
    }

    private static String refusal(Executable parse) {
        return assertThrows(InvalidResourceException.class, parse).getMessage();
    }

    /** istiod's {@code istio.stats} network filter, before the terminal filter of every sidecar chain. */
    private static final String STATS = """
            - name: istio.stats
              typed_config: {"@type": type.googleapis.com/stats.PluginConfig}
            """;

    /** istiod's TCP metadata exchange filter, first on the inbound plaintext TCP chains. */
    private static final String TCP_MX = """
            - name: istio.metadata_exchange
              typed_config:
                "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                type_url: type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange
                value: {protocol: istio-peer-exchange, enable_discovery: true}
            """;

    /**
     * A filter chain {@code name} matching {@code match}: the filters {@code before}, then a tcp_proxy to
     * {@code cluster}.
     */
    static String tcpChain(String name, String match, String before, String cluster) {
        return ("- name: " + name + "\n" + (match.isEmpty() ? "" : "  filter_chain_match: " + match + "\n")
                + "  filters:\n" + before.indent(2) + """
                  - name: envoy.filters.network.tcp_proxy
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                      stat_prefix: %s
                      cluster: %s
                """.formatted(cluster, cluster));
    }

    /** istiod's {@code virtualOutbound} (the 15001 capture), with the listener fields {@code fields} after its own. */
    static String virtualOutbound(String fields) {
        return """
                name: virtualOutbound
                address: {socket_address: {address: 0.0.0.0, port_value: 15001}}
                use_original_dst: true
                traffic_direction: OUTBOUND
                filter_chains:
                """ + tcpChain("virtualOutbound-blackhole", "{destination_port: 15001}", STATS, "BlackHoleCluster")
                + tcpChain("virtualOutbound-catchall-tcp", "", STATS, "PassthroughCluster") + fields;
    }

    /**
     * istiod's {@code virtualInbound} (the 15006 capture) with its passthrough chains, as 1.22 and later write it
     * (one {@code InboundPassthroughCluster} for both address families), the listener fields {@code fields} after its
     * own.
     */
    static String virtualInbound(String fields) {
        return """
                name: virtualInbound
                address: {socket_address: {address: 0.0.0.0, port_value: 15006}}
                traffic_direction: INBOUND
                continue_on_listener_filters_timeout: true
                listener_filters_timeout: 0s
                listener_filters:
                - name: envoy.filters.listener.original_dst
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst}
                - name: envoy.filters.listener.tls_inspector
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector
                    initial_read_buffer_size: 512
                - name: envoy.filters.listener.http_inspector
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector}
                filter_chains:
                """ + tcpChain("virtualInbound-blackhole", "{destination_port: 15006}", "", "BlackHoleCluster")
                + tcpChain("virtualInbound", "{transport_protocol: raw_buffer}", TCP_MX + STATS,
                        "InboundPassthroughCluster") + fields;
    }

    @Test
    void oneConnectionPerSocketEventWhichIstiod128WritesOnTheListenersThatBindLoads() throws Exception {
        // MAX_CONNECTIONS_PER_SOCKET_EVENT_LOOP (default 1 since 1.28): on virtualOutbound, virtualInbound and every
        // listener that binds a port. Refusing it NACKed the LDS of every 1.28 sidecar
        Listener out = listener(virtualOutbound("max_connections_to_accept_per_socket_event: 1\n"));
        assertEquals(1, out.maxConnectionsToAcceptPerSocketEvent());
        Listener in = listener(virtualInbound("max_connections_to_accept_per_socket_event: 1\n"));
        assertEquals(1, in.maxConnectionsToAcceptPerSocketEvent());
        // set to 0 (istiod then writes none), every pending connection, as Envoy
        assertNull(listener(virtualOutbound("")).maxConnectionsToAcceptPerSocketEvent());
        // a uint32 past an int's range is as good as no bound
        assertEquals(Integer.MAX_VALUE, listener(virtualOutbound(
                "max_connections_to_accept_per_socket_event: 4294967295\n")).maxConnectionsToAcceptPerSocketEvent());
        String m = refusal(() -> listener(virtualOutbound("max_connections_to_accept_per_socket_event: 0\n")));
        assertTrue(m.contains("max_connections_to_accept_per_socket_event") && m.contains("expected: > 0"), m);
    }
}
