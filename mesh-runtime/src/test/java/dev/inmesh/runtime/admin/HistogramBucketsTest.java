package dev.inmesh.runtime.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.StreamInfos;
import dev.inmesh.runtime.xds.EnvoyJson;
import dev.inmesh.runtime.xds.FieldError;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A bootstrap's {@code stats_config.histogram_bucket_settings} give the histograms whose Envoy name their first
 * matching rule matches its buckets, sorted, as Envoy's; the others keep Envoy's default buckets.
 */
class HistogramBucketsTest {
    private static final String SETTINGS = """
            static_resources: {}
            stats_config:
              histogram_bucket_settings:
              - match: {prefix: "cluster.outbound|9080||reviews."}
                buckets: [250, 10, 50]
              - match: {prefix: istiocustom}
                buckets: [1, 5]
              - match: {prefix: "cluster."}
                buckets: [100]
            """;

    /** The {@code le} bounds of the scrape's first series of histogram {@code family} whose labels hold {@code has}. */
    private static List<String> bounds(String served, String family, String has) {
        return served.lines().filter(l -> l.startsWith(family + "_bucket{") && l.contains(has))
                .map(l -> l.replaceAll(".*le=\"([^\"]*)\".*", "$1")).distinct().toList();
    }

    @Test
    void theFirstRuleThatMatchesAHistogramsEnvoyNameGivesItsBuckets() throws Exception {
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        registry.config().meterFilter(HistogramBuckets.of(EnvoyJson.tree(SETTINGS)));
        MeshMetrics metrics = MeshMetrics.create(registry, StreamInfos.PRODUCTPAGE);
        metrics.upstream("outbound|9080||reviews");
        metrics.upstream("outbound|9080||ratings");
        metrics.listener("0.0.0.0_9080");
        DistributionSummary.builder("istio_request_duration_milliseconds").serviceLevelObjectives(MeshMetrics.BUCKETS)
                .register(registry).record(3);
        DistributionSummary.builder("app_sizes").serviceLevelObjectives(25).register(registry);
        String served = PrometheusText.envoy(registry.scrape());

        assertEquals(List.of("10", "50", "250", "+Inf"), bounds(served, "envoy_cluster_upstream_rq_time",
                "reviews"), served);
        assertEquals(List.of("10", "50", "250", "+Inf"), bounds(served, "envoy_cluster_upstream_cx_length_ms",
                "reviews"), served);
        assertEquals(List.of("100", "+Inf"), bounds(served, "envoy_cluster_upstream_rq_time", "ratings"), served);
        // Istio's metrics by their name in its stats filter's istiocustom namespace
        assertEquals(List.of("1", "5", "+Inf"), bounds(served, "istio_request_duration_milliseconds", ""), served);
        // no rule matches listener.0.0.0.0_9080.downstream_cx_length_ms: Envoy's default buckets
        assertEquals(MeshMetrics.BUCKETS.length + 1, bounds(served, "envoy_listener_downstream_cx_length_ms", "")
                .size(), served);
        assertTrue(served.contains("app_sizes_bucket{le=\"25.0\"} 0"), served);
        // /stats serves the same buckets
        var histograms = EnvoyStats.histograms(registry, n -> n.contains("reviews.upstream_rq_time"), n -> n);
        assertEquals(3, histograms.get("cluster.outbound|9080||reviews.upstream_rq_time").bounds().length);
    }

    @Test
    void aRuleWithoutAMatchOrBucketsOrWithABoundNotAboveZeroIsRefusedAsEnvoysValidationRefusesIt()
            throws Exception {
        assertNull(HistogramBuckets.of(EnvoyJson.tree("static_resources: {}\nstats_config: {}")));
        for (String[] bad : new String[][] {
            {"{buckets: [1]}", "stats_config.histogram_bucket_settings[0].match: required"},
            {"{match: {prefix: cluster}, buckets: []}", "stats_config.histogram_bucket_settings[0].buckets: empty"},
            {"{match: {prefix: cluster}, buckets: [0, 1]}", "stats_config.histogram_bucket_settings[0].buckets: 0.0"},
            {"{match: {prefix: cluster}, buckets: [5, 5]}",
                "stats_config.histogram_bucket_settings[0].buckets: 5.0 twice"}}) {
            FieldError e = assertThrows(FieldError.class, () -> HistogramBuckets.of(EnvoyJson.tree(
                    "static_resources: {}\nstats_config: {histogram_bucket_settings: [" + bad[0] + "]}")));
            assertTrue(e.getMessage().startsWith(bad[1]), e.getMessage());
        }
    }
}
