package dev.inmesh.runtime.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.UpstreamStats;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A DNS cluster's config update statistics under Envoy's names: {@code cluster.<name>.update_attempt},
 * {@code update_success}, {@code update_failure}, {@code update_no_rebuild} and {@code update_empty} in {@code /stats},
 * Envoy counters {@code envoy_cluster_update_attempt{cluster_name="<name>"}} and so on in {@code /stats/prometheus};
 * registered with the first resolution, as only a DNS cluster counts them.
 */
class ClusterUpdateStatsNamesTest {

    @Test
    void aDnsClustersUpdateCountersAreNamedAsEnvoysClusterConfigUpdateStatistics() {
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        UpstreamStats stats = MeshMetrics.create(registry, WorkloadInfo.UNKNOWN).upstream("outbound|80||vm");
        String c = "cluster.outbound|80||vm.";
        assertEquals(Map.of(), EnvoyStats.collect(registry, n -> n.contains(".update_"), n -> n),
                "none before the first resolution");
        stats.updateAttempt();
        stats.updateOutcome(UpstreamStats.UpdateOutcome.SUCCESS);
        stats.updateAttempt();
        stats.updateOutcome(UpstreamStats.UpdateOutcome.NO_REBUILD);
        stats.updateAttempt();
        stats.updateOutcome(UpstreamStats.UpdateOutcome.FAILURE);

        assertEquals(Map.of(c + "update_attempt", 3L, c + "update_success", 2L, c + "update_failure", 1L,
                c + "update_no_rebuild", 1L, c + "update_empty", 0L),
                EnvoyStats.collect(registry, n -> n.contains(".update_"), n -> n));
        String prometheus = PrometheusText.envoy(registry.scrape());
        assertTrue(prometheus.contains("# TYPE envoy_cluster_update_attempt counter\n"), prometheus);
        assertTrue(prometheus.contains("envoy_cluster_update_no_rebuild{cluster_name=\"outbound|80||vm\"} 1"),
                prometheus);
    }
}
