package dev.inmesh.runtime.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.xds.EnvoyJson;
import dev.inmesh.runtime.xds.FieldError;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.List;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;

/** A bootstrap's {@code stats_config.stats_matcher} decides which Envoy statistics exist, by their Envoy names. */
class StatsMatcherTest {
    /** Istio's bootstrap's inclusion list (its default, without proxyStatsMatcher). */
    private static final String ISTIO = """
            {"static_resources": {}, "stats_config": {"use_all_default_tags": false, "stats_matcher": {
              "inclusion_list": {"patterns": [{"prefix": "reporter="}, {"prefix": "cluster_manager"},
                {"prefix": "listener_manager"}, {"prefix": "server"}, {"prefix": "cluster.xds-grpc"},
                {"prefix": "wasm"}, {"suffix": "rbac.allowed"}, {"suffix": "rbac.denied"},
                {"suffix": "shadow_allowed"}, {"suffix": "shadow_denied"},
                {"safe_regex": {"regex": "vhost\\\\..*\\\\.route\\\\..*"}}, {"prefix": "component"}]}}}}
            """;

    /** The meters that exist once these are asked for, by name. */
    private static List<String> kept(Predicate<String> keep) {
        MeterRegistry registry = new SimpleMeterRegistry();
        registry.config().meterFilter(StatsMatcher.meterFilter(keep));
        Counter.builder("envoy_cluster_upstream_rq_total")
                .tag("cluster_name", "outbound|9080||reviews.default.svc.cluster.local").register(registry);
        Counter.builder("envoy_cluster_manager_cds_update_success").register(registry);
        Counter.builder("envoy_server_state").register(registry);
        Counter.builder("envoy_http_downstream_rq_total").tag("http_conn_manager_prefix", "inbound_0.0.0.0_9080")
                .register(registry);
        Counter.builder("envoy_http_rbac_allowed").tag("http_conn_manager_prefix", "inbound_0.0.0.0_9080")
                .register(registry);
        Counter.builder("istio_requests_total").tag("reporter", "destination").register(registry);
        Counter.builder("app_orders_total").register(registry);
        return registry.getMeters().stream().map(m -> m.getId().getName()).sorted().toList();
    }

    @Test
    void istiosInclusionListKeepsTheManagersTheServerTheRbacCountersAndEveryNonEnvoyMetric() throws Exception {
        Predicate<String> keep = StatsMatcher.of(EnvoyJson.tree(ISTIO));
        assertEquals(List.of("app_orders_total", "envoy_cluster_manager_cds_update_success", "envoy_http_rbac_allowed",
                "envoy_server_state", "istio_requests_total"), kept(keep));
        assertTrue(keep.test("http.inbound_0.0.0.0_9080.rbac.allowed"));
        assertEquals(false, keep.test("cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_rq_total"));
    }

    @Test
    void anExclusionListRejectAllAndNoMatcher() throws Exception {
        Predicate<String> exclude = StatsMatcher.of(EnvoyJson.tree("""
                {"static_resources": {}, "statsConfig": {"statsMatcher": {"exclusionList": {"patterns": [
                  {"prefix": "cluster."}]}}}}"""));
        assertEquals(List.of("app_orders_total", "envoy_cluster_manager_cds_update_success",
                "envoy_http_downstream_rq_total", "envoy_http_rbac_allowed", "envoy_server_state",
                "istio_requests_total"), kept(exclude));
        Predicate<String> none = StatsMatcher.of(EnvoyJson.tree("""
                {"static_resources": {}, "stats_config": {"stats_matcher": {"reject_all": true}}}"""));
        assertEquals(List.of("app_orders_total", "istio_requests_total"), kept(none));
        assertNull(StatsMatcher.of(EnvoyJson.tree("{\"static_resources\": {}, \"stats_config\": {}}")));
    }

    @Test
    void aBadPatternIsRefusedByItsPath() {
        FieldError e = assertThrows(FieldError.class, () -> StatsMatcher.of(EnvoyJson.tree("""
                {"stats_config": {"stats_matcher": {"inclusion_list": {"patterns": [{"prefix": "a"},
                  {"safe_regex": {"regex": "("}}]}}}}""")));
        assertTrue(e.getMessage().startsWith(
                "stats_config.stats_matcher.inclusion_list.patterns[1].safe_regex.regex: "), e.getMessage());
    }
}
