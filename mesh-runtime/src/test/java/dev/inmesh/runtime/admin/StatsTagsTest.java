package dev.inmesh.runtime.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.StreamInfos;
import dev.inmesh.runtime.xds.EnvoyJson;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code /stats/prometheus} names the tags of Envoy's statistics as a bootstrap's {@code stats_config} names them:
 * Envoy's default tags ({@code envoy_cluster_name}, ...) unless {@code use_all_default_tags} is false, then those its
 * {@code stats_tags} name (Istio's bootstrap: {@code cluster_name}, ...), Istio's without a bootstrap.
 */
class StatsTagsTest {
    private static final String CLUSTER = "outbound|9080||reviews";

    @TempDir
    Path dir;

    /** A registry's scrape with a cluster, a connection manager, a listener, an RBAC filter and an Istio metric. */
    private static String scrape() {
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        MeshMetrics metrics = MeshMetrics.create(registry, StreamInfos.PRODUCTPAGE);
        var upstream = metrics.upstream(CLUSTER);
        upstream.requestCompleted(200);
        upstream.retriedResponse(503);
        metrics.connectionManager(HttpConnectionManager.of("outbound_0.0.0.0_9080", "9080", List.of()))
                .requestEnded(404, true, 0, 3);
        metrics.listener("0.0.0.0_9080");
        metrics.networkRbac("tcp").rbacDecision("", false, true);
        registry.counter("istio_requests", "response_code", "200").increment();
        return registry.scrape();
    }

    private static StatsTags tags(String bootstrap, List<String> warnings) throws Exception {
        return StatsTags.of(EnvoyJson.tree(bootstrap), warnings::add);
    }

    @Test
    void aBootstrapWithoutStatsTagsNamesThemAsEnvoysDefaultTags() throws Exception {
        List<String> warnings = new ArrayList<>();
        String served = PrometheusText.envoy(scrape(), tags("static_resources: {}", warnings));
        List<String> lines = served.lines().toList();
        String c = "envoy_cluster_name=\"" + CLUSTER + "\"";
        assertTrue(lines.contains("envoy_cluster_upstream_rq_total{" + c + "} 0"), served);
        // _rq_(\d)xx$ takes the class's digit alone out of the name: its own family, 2 not 2xx
        assertTrue(lines.contains("envoy_cluster_upstream_rq_xx{" + c + ",envoy_response_code_class=\"2\"} 1"),
                served);
        assertTrue(lines.contains("envoy_cluster_upstream_rq{" + c + ",envoy_response_code=\"200\"} 1"), served);
        assertTrue(lines.contains("envoy_cluster_retry_upstream_rq_xx{" + c + ",envoy_response_code_class=\"5\"} 1"),
                served);
        assertTrue(lines.contains("envoy_cluster_retry_upstream_rq{" + c + ",envoy_response_code=\"503\"} 1"),
                served);
        assertTrue(lines.contains("# TYPE envoy_cluster_upstream_rq_xx counter"), served);
        assertTrue(lines.contains("envoy_http_downstream_rq_xx{envoy_http_conn_manager_prefix="
                + "\"outbound_0.0.0.0_9080\",envoy_response_code_class=\"4\"} 1"), served);
        assertTrue(lines.contains("envoy_listener_downstream_cx_total{envoy_listener_address=\"0.0.0.0_9080\"} 0"),
                served);
        assertTrue(lines.contains("envoy_cluster_upstream_rq_time_count{" + c + "} 0"), served);
        // Envoy has no default tag for an RBAC network filter's prefix: Inmesh's label stays
        assertTrue(lines.contains("envoy_rbac_allowed{rbac_stat_prefix=\"tcp\"} 1"), served);
        // Istio's metrics are not named by tag extraction
        assertTrue(lines.contains("istio_requests_total{response_code=\"200\"} 1"), served);
        assertFalse(served.contains("{cluster_name="), served);
        assertEquals(List.of(), warnings);
    }

    @Test
    void istiosBootstrapKeepsIstiosNamesAsInmeshsDefaultDoes() throws Exception {
        String scrape = scrape();
        List<String> warnings = new ArrayList<>();
        StatsTags istio = tags("static_resources: {}\n" + Files.readString(Path.of(
                "src/test/resources/istio/stats_config.yaml")), warnings);
        String served = PrometheusText.envoy(scrape, istio);
        assertEquals(PrometheusText.envoy(scrape), served);
        assertTrue(served.lines().toList().contains("envoy_cluster_upstream_rq{cluster_name=\"" + CLUSTER
                + "\",response_code_class=\"2xx\"} 1"), served);
        assertTrue(served.contains("envoy_http_downstream_rq_total{http_conn_manager_prefix=\"outbound_0.0.0.0_9080\""),
                served);
        // its RBAC tags, which Inmesh does not extract (the counters keep allowed and denied in their names), are
        // named; its other tags are of statistics Inmesh does not keep, or of Istio's metrics, labelled already
        assertEquals(3, warnings.size(), warnings.toString());
        assertTrue(warnings.get(0).contains("stats_tags[13] (tag_name authz_enforce_result)"), warnings.toString());
        assertTrue(warnings.get(2).contains("authz_dry_run_result"), warnings.toString());
        // no bootstrap: Istio's names
        assertEquals(StatsTags.ISTIO, StatsTags.ofFile(dir.resolve("none.yaml")));
        Path resources = dir.resolve("resources.yaml");
        Files.writeString(resources, "resources: []\n");
        assertEquals(StatsTags.ISTIO, StatsTags.ofFile(resources));
    }

    @Test
    void withoutTheDefaultTagsOnlyWhatStatsTagsNameIsRenamedAndAFixedValueLabelsEveryEnvoyStatistic()
            throws Exception {
        List<String> warnings = new ArrayList<>();
        StatsTags tags = tags("""
                static_resources: {}
                stats_config:
                  use_all_default_tags: false
                  stats_tags:
                  - tag_name: envoy.cluster_name
                  - {tag_name: mesh, fixed_value: east}
                  - {tag_name: envoy.response_code_class}
                  - {tag_name: listener_address}
                  - {tag_name: my_tag, regex: '^cluster\\.((.+?)\\.)'}
                """, warnings);
        String served = PrometheusText.envoy(scrape(), tags);
        List<String> lines = served.lines().toList();
        assertTrue(lines.contains("envoy_cluster_upstream_rq_total{envoy_cluster_name=\"" + CLUSTER
                + "\",mesh=\"east\"} 0"), served);
        assertTrue(lines.contains("envoy_http_downstream_rq_xx{http_conn_manager_prefix=\"outbound_0.0.0.0_9080\","
                + "envoy_response_code_class=\"4\",mesh=\"east\"} 1"), served);
        assertTrue(lines.contains("envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"" + CLUSTER
                + "\",le=\"0.5\",mesh=\"east\"} 0"), served);
        assertTrue(lines.contains("istio_requests_total{response_code=\"200\"} 1"), served);
        // listener_address without a regex: Envoy has no default regex of that name, and refuses it
        assertTrue(lines.contains("envoy_listener_downstream_cx_total{listener_address=\"0.0.0.0_9080\","
                + "mesh=\"east\"} 0"), served);
        assertEquals(2, warnings.size(), warnings.toString());
        assertTrue(warnings.get(0).startsWith("stats_config.stats_tags[3] (tag_name listener_address): no regex"),
                warnings.toString());
        assertTrue(warnings.get(1).startsWith("stats_config.stats_tags[4] (tag_name my_tag): Inmesh extracts no"),
                warnings.toString());
    }
}
