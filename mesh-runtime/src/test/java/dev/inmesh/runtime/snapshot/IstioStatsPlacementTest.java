package dev.inmesh.runtime.snapshot;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.IstioStats;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.StatsOverrides;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.stats.StreamInfos;
import dev.inmesh.runtime.stats.TcpConnectionInfo;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Istio's metrics are recorded where Istio's stats filter ({@code istio.stats}) is, as Envoy runs it only there: in a
 * configuration with one somewhere (istiod's), not for the connection managers and TCP chains without one (Istio's
 * bootstrap listeners for Prometheus scrapes and readiness probes have only the router); in a configuration with none
 * anywhere (written by hand, Inmesh's samples), everywhere.
 */
public class IstioStatsPlacementTest {

    /**
     * A listener (a YAML list entry) on 127.0.0.1:{@code port} whose connection manager runs {@code filters} (a YAML
     * list) before the router, which sends every request to cluster {@code app}.
     */
    public static String httpListener(String name, int port, String filters) {
        return """
                - name: %s
                  address: {socket_address: {address: 127.0.0.1, port_value: %d}}
                  filter_chains:
                  - filters:
                    - name: envoy.filters.network.http_connection_manager
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                        stat_prefix: %s
                        route_config:
                          name: %s
                          virtual_hosts:
                          - name: all
                            domains: ["*"]
                            routes:
                            - match: {prefix: /}
                              route: {cluster: app}
                        http_filters:
                """.formatted(name, port, name, name) + (filters + """
                - name: envoy.filters.http.router
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                """).indent(8);
    }

    /** A listener on {@code port} whose only chain runs {@code filters} (a YAML list) before a tcp_proxy. */
    private static String tcpListener(String name, int port, String filters) {
        return """
                - name: %s
                  address: {socket_address: {address: 127.0.0.1, port_value: %d}}
                  filter_chains:
                  - filters:
                """.formatted(name, port) + (filters + """
                - name: envoy.filters.network.tcp_proxy
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                    stat_prefix: %s
                    cluster: app
                """.formatted(name)).indent(4);
    }

    private static final String STATS_FILTER = """
            - name: istio.stats
              typed_config:
                "@type": type.googleapis.com/stats.PluginConfig
                disable_host_header_fallback: true
            """;

    /** Istio's stats filter as Istio wrote it before 1.18: a Wasm filter named istio.stats. */
    private static final String WASM_STATS_FILTER = """
            - name: istio.stats
              typed_config:
                "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                type_url: type.googleapis.com/envoy.extensions.filters.%s.wasm.v3.Wasm
                value:
                  config:
                    root_id: stats_inbound
                    vm_config: {vm_id: stats_inbound, runtime: envoy.wasm.runtime.null, code: {local: {inline_string: envoy.wasm.stats}}}
            """;

    private static MeshSnapshot snapshot(String... listeners) throws Exception {
        return SnapshotCompiler.compile(EnvoyConfigReader.read("static_resources:\n  listeners:\n"
                + String.join("", listeners).indent(2) + """
                  clusters:
                  - name: app
                    type: STATIC
                    connect_timeout: 1s
                    load_assignment:
                      cluster_name: app
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 28419}}}
                """), 1);
    }

    private static FilterChain chain(MeshSnapshot s, String listener) {
        return s.resources().listeners().get(listener).filterChains().get(0);
    }

    private static HttpConnectionManager hcm(MeshSnapshot s, String listener) {
        return (HttpConnectionManager) chain(s, listener).filter();
    }

    @Test
    void aConnectionManagerWithoutTheStatsFilterRecordsNoneWhereAnotherHasIt() throws Exception {
        MeshSnapshot s = snapshot(httpListener("prometheus", 15090, ""), httpListener("inbound", 15006,
                STATS_FILTER));
        assertSame(IstioStats.NONE, hcm(s, "inbound").istioStats(), "a filter that overrides nothing is there");
        assertNull(hcm(s, "prometheus").istioStats());
        assertTrue(s.statsOverrides(hcm(s, "prometheus")).off());
        assertSame(StatsOverrides.NONE, s.statsOverrides(hcm(s, "inbound")));

        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        MeshMetrics metrics = MeshMetrics.create(registry, StreamInfos.PRODUCTPAGE);
        metrics.record(StreamInfos.withOverrides(StreamInfos.outboundOk(), s.statsOverrides(hcm(s, "prometheus")),
                null));
        assertNull(registry.find("istio_requests").counter(), "no stats filter: not recorded");
        metrics.record(StreamInfos.withOverrides(StreamInfos.outboundOk(), s.statsOverrides(hcm(s, "inbound")),
                null));
        assertEquals(1, registry.get("istio_requests").counter().count());
    }

    @Test
    void withoutTheStatsFilterAnywhereEveryConnectionManagerRecords() throws Exception {
        MeshSnapshot s = snapshot(httpListener("prometheus", 15090, ""), httpListener("inbound", 15006, ""));
        assertSame(StatsOverrides.NONE, s.statsOverrides(hcm(s, "prometheus")));
        assertSame(StatsOverrides.NONE, s.statsOverrides(hcm(s, "inbound")));
        // one of another snapshot, compiled on the spot, as this snapshot decides
        MeshSnapshot with = snapshot(httpListener("inbound", 15006, STATS_FILTER), httpListener("other", 15007, ""));
        assertSame(StatsOverrides.NONE, s.statsOverrides(hcm(with, "other")));
        assertTrue(with.statsOverrides(hcm(s, "inbound")).off());
    }

    @Test
    void theWasmFormOfTheStatsFilterCountsAsTheFilter() throws Exception {
        MeshSnapshot s = snapshot(httpListener("readiness", 15021, ""), httpListener("inbound", 15006,
                WASM_STATS_FILTER.formatted("http")), tcpListener("tcp", 15007, WASM_STATS_FILTER.formatted(
                "network")), tcpListener("plain", 15008, ""));
        assertSame(IstioStats.NONE, hcm(s, "inbound").istioStats());
        assertTrue(s.statsOverrides(hcm(s, "readiness")).off());
        assertFalse(s.statsOverrides(hcm(s, "inbound")).off());
        assertFalse(s.statsOverrides(chain(s, "tcp")).off());
        assertTrue(s.statsOverrides(chain(s, "plain")).off());
    }

    @Test
    void aTcpChainWithoutTheStatsNetworkFilterRecordsNoneWhereAnotherHasIt() throws Exception {
        MeshSnapshot s = snapshot(tcpListener("mysql", 3306, STATS_FILTER.replace(
                "    disable_host_header_fallback: true\n", "")), tcpListener("plain", 3307, ""));
        assertSame(IstioStats.NONE, chain(s, "mysql").istioStats());
        assertTrue(s.statsOverrides(chain(s, "plain")).off());
        assertFalse(s.statsOverrides(chain(s, "mysql")).off());

        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        MeshMetrics metrics = MeshMetrics.create(registry, StreamInfos.PRODUCTPAGE);
        var off = metrics.tcpConnectionOpened(new TcpConnectionInfo(StreamInfo.Direction.OUTBOUND,
                StreamInfos.REVIEWS, "mysql", "mysql", "default").withStatsOverrides(s.statsOverrides(
                chain(s, "plain"))));
        off.received(10);
        off.sent(20);
        off.closed(Set.of());
        assertNull(registry.find("istio_tcp_connections_opened").counter(), "no stats filter: not recorded");
        assertNull(registry.find("istio_tcp_received_bytes").counter());
        var on = metrics.tcpConnectionOpened(new TcpConnectionInfo(StreamInfo.Direction.OUTBOUND,
                StreamInfos.REVIEWS, "mysql", "mysql", "default").withStatsOverrides(s.statsOverrides(
                chain(s, "mysql"))));
        on.closed(Set.of());
        assertEquals(1, registry.get("istio_tcp_connections_closed").counter().count());
    }

    /**
     * The in-JVM client's request to a port whose chain is a {@code tcp_proxy} (relayed as bytes, as a sidecar relays
     * it) is recorded as that chain's stats filter says, not as if it had none: the decision carries the chain; with
     * no chain at all (a passthrough for want of a listener), as a chain without the filter.
     */
    @Test
    void anInJvmRequestRelayedByATcpChainIsRecordedAsThatChainsStatsFilterSays() throws Exception {
        io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
        try {
            var env = new dev.inmesh.runtime.upstream.UpstreamEnvironment(vertx, null, null, null);
            MeshSnapshot s = snapshot(tcpListener("mysql", 3306, ""), httpListener("inbound", 15006, STATS_FILTER))
                    .withClusters(dev.inmesh.runtime.upstream.ClusterManager.create(env, java.util.Map.of(),
                            java.util.Map.of()));
            var routing = new dev.inmesh.runtime.outbound.OutboundRouting(
                    dev.inmesh.api.MeshOptions.OutboundTrafficPolicy.ALLOW_ANY, env);
            var d = routing.decide(s, "127.0.0.1", 3306, "127.0.0.1");
            assertNull(d.hcm());
            assertSame(chain(s, "mysql"), d.tcpChain());
            assertTrue(s.statsOverrides(d.tcpChain()).off(), "its chain has no stats filter, another has");
            assertNull(routing.decide(s, "127.0.0.1", 3399, "127.0.0.1").tcpChain(), "passthrough: no chain");
            assertTrue(s.statsOverrides((FilterChain) null).off());
        } finally {
            vertx.close().await();
        }
        assertSame(StatsOverrides.NONE, snapshot(tcpListener("mysql", 3306, "")).statsOverrides((FilterChain) null));
    }

    @Test
    void aTcpChainRecordsWhenNoListenerHasTheStatsFilter() throws Exception {
        MeshSnapshot s = snapshot(tcpListener("mysql", 3306, ""), httpListener("inbound", 15006, ""));
        assertSame(StatsOverrides.NONE, s.statsOverrides(chain(s, "mysql")));
    }
}
