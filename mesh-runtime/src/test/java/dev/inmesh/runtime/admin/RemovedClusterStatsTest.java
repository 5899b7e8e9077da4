package dev.inmesh.runtime.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.CircuitBreakers;
import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.endpoint.LbEndpoint;
import dev.inmesh.api.config.endpoint.LocalityLbEndpoints;
import dev.inmesh.runtime.stats.BreakerReadings;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.UpstreamStats;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.upstream.CircuitBreakerState;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.Ticker;
import dev.inmesh.runtime.upstream.UpstreamEnvironment;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * A cluster's statistics live as long as the cluster, as Envoy frees a removed cluster's stats scope: a configuration
 * that drops clusters drops their meters from the registry and their {@code cluster.<name>.*} from {@code /stats};
 * one that only changes a cluster keeps its counts; one that adds a cluster again starts it at 0.
 */
class RemovedClusterStatsTest {
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final MeshMetrics metrics = MeshMetrics.create(registry, WorkloadInfo.UNKNOWN);
    private final UpstreamEnvironment env = new UpstreamEnvironment(null, Ticker.system(), new Random(1), null,
            metrics::upstream);

    private static String name(int i) {
        return "outbound|80||svc" + i + ".ns.svc.cluster.local";
    }

    private static Cluster cluster(String name, int port) {
        ClusterLoadAssignment inline = new ClusterLoadAssignment(name, List.of(new LocalityLbEndpoints(null,
                List.of(new LbEndpoint(new SocketAddress("127.0.0.1", port), "", null, 1, null)), 1, 0)), 140);
        return Cluster.builder(name, DiscoveryType.STATIC).loadAssignment(inline)
                .circuitBreakers(CircuitBreakers.DEFAULTS).build();
    }

    private static Map<String, Cluster> clusters(int from, int to) {
        Map<String, Cluster> out = new HashMap<>();
        for (int i = from; i < to; i++) {
            out.put(name(i), cluster(name(i), 8080));
        }
        return out;
    }

    private Map<String, Long> clusterStats(String cluster) {
        return EnvoyStats.collect(registry, n -> n.startsWith("cluster." + cluster + "."), n -> n);
    }

    /** Counts in a cluster's statistics, those made on first use too (status codes, retries, breakers, TLS). */
    private static void use(UpstreamStats s) {
        s.requestStarted();
        s.requestCompleted(200);
        s.retriedResponse(503);
        s.tlsHandshake();
        s.outlierDetection();
        s.healthCheck();
        s.circuitBreakers("default", TRACKED);
    }

    /** Breakers with {@code track_remaining}, whose {@code remaining_*} gauges are made as they are published. */
    private static final BreakerReadings TRACKED = new CircuitBreakerState(new CircuitBreakers.Thresholds(
            CircuitBreakers.RoutingPriority.DEFAULT, 1024, 1024, 1024, 3, null, true,
            CircuitBreakers.Thresholds.NO_LIMIT));

    @Test
    void removedClustersLeaveTheRegistryAndStats() {
        ClusterManager m = ClusterManager.create(env, clusters(0, 3), Map.of());
        m.clusters().values().forEach(c -> use(c.stats()));
        // (an update publishes the clusters' breakers again, without track_remaining: their remaining_* go)
        m = m.update(clusters(0, 3), Map.of());
        int baseline = registry.getMeters().size();

        for (int round = 0; round < 2; round++) {
            m = m.update(clusters(0, 203 + round * 100), Map.of());
            m.clusters().values().forEach(c -> use(c.stats()));
            assertTrue(registry.getMeters().size() > baseline + 200 * 40, "the clusters' meters were made");
            var gone = m.clusters().get(name(150));
            m = m.update(clusters(0, 3), Map.of());
            assertEquals(baseline, registry.getMeters().size(), "round " + round + ": back to the 3 clusters'");
            assertEquals(Map.of(), clusterStats(name(150)));
            // a request still in flight on a removed cluster counts on, into meters no registry holds
            use(gone.stats());
            gone.stats().requestCompleted(404);
            assertEquals(baseline, registry.getMeters().size(), "nothing registered again");
            assertEquals(Map.of(), clusterStats(name(150)));
        }
        assertEquals(3L, clusterStats(name(0)).get("cluster." + name(0) + ".upstream_rq_total"),
                "the clusters that stay keep theirs: one request before and one in each round");
    }

    @Test
    void anUpdatedClusterKeepsItsCountsAndOneAddedAgainStartsAtZero() {
        String n = name(1);
        ClusterManager m = ClusterManager.create(env, Map.of(n, cluster(n, 8080)), Map.of());
        UpstreamStats first = m.clusters().get(n).stats();
        first.requestStarted();
        first.requestStarted();
        m = m.update(Map.of(n, cluster(n, 9090)), Map.of()); // the same name, another endpoint
        assertSame(first, m.clusters().get(n).stats());
        assertEquals(2L, clusterStats(n).get("cluster." + n + ".upstream_rq_total"));

        m = m.update(Map.of(), Map.of());
        assertEquals(Map.of(), clusterStats(n));
        m = m.update(Map.of(n, cluster(n, 8080)), Map.of());
        UpstreamStats again = m.clusters().get(n).stats();
        assertNotSame(first, again);
        assertEquals(0L, clusterStats(n).get("cluster." + n + ".upstream_rq_total"));
        first.requestStarted(); // the removed cluster's request in flight ends: not in the new one's counts
        again.requestStarted();
        assertEquals(1L, clusterStats(n).get("cluster." + n + ".upstream_rq_total"));
        assertSame(again, metrics.upstream(n));
    }
}
