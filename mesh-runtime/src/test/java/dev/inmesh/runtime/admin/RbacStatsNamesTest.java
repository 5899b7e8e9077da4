package dev.inmesh.runtime.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.runtime.stats.DownstreamStats;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.NetworkRbacStats;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The RBAC filters' statistics under Envoy's names in {@code /stats}: the network filters'
 * {@code <stat_prefix>.rbac.allowed}, {@code denied}, and the shadow rules' {@code shadow_allowed} and
 * {@code shadow_denied} after their {@code shadow_rules_stat_prefix}; the HTTP filters' the same under
 * {@code http.<stat_prefix>.rbac.}, the enforced ones after their {@code rules_stat_prefix}. As Envoy joins them, the
 * stat prefix and {@code rbac.} are joined by one dot whether or not the prefix ends with it, and a rules or shadow
 * prefix and the counter by a dot unless the prefix ends with one ({@code tcp.rbac.prefix_.shadow_allowed} in
 * Envoy's own tests, {@code rbac.istio_dry_run_allow_.shadow_denied} what Istio's bootstrap tags read).
 */
class RbacStatsNamesTest {

    @Test
    void aNetworkFiltersCountersAreNamedUnderItsStatPrefixAsEnvoyNamesThem() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        MeshMetrics metrics = MeshMetrics.create(registry, WorkloadInfo.UNKNOWN);
        NetworkRbacStats istio = metrics.networkRbac("tcp.");
        istio.rbacDecision("", false, false);
        istio.rbacDecision("", false, true);
        istio.rbacDecision("", false, true);
        istio.rbacDecision("istio_dry_run_allow_", true, false);
        istio.rbacDecision("", true, true);
        metrics.networkRbac("custom").rbacDecision("", false, false);
        metrics.networkRbac("custom").rbacDecision("dotted.", true, true);

        assertEquals(Map.of("tcp.rbac.allowed", 2L, "tcp.rbac.denied", 1L,
                "tcp.rbac.istio_dry_run_allow_.shadow_allowed", 0L, "tcp.rbac.istio_dry_run_allow_.shadow_denied", 1L,
                "tcp.rbac.shadow_allowed", 1L, "tcp.rbac.shadow_denied", 0L,
                "custom.rbac.allowed", 0L, "custom.rbac.denied", 1L,
                "custom.rbac.dotted.shadow_allowed", 1L, "custom.rbac.dotted.shadow_denied", 0L),
                EnvoyStats.collect(registry, n -> n.contains(".rbac."), n -> n));
        assertEquals(2, istio.allowed());
        assertEquals(1, istio.shadow("istio_dry_run_allow_", false));
        assertNotNull(registry.find("envoy_rbac_istio_dry_run_allow__shadow_denied").tag("rbac_stat_prefix", "tcp")
                .meter(), "scraped as Envoy names it with its default tags, the joining dot an underscore");
    }

    @Test
    void anHttpFiltersCountersAreNamedUnderItsConnectionManagerAsEnvoyNamesThem() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        DownstreamStats stats = MeshMetrics.create(registry, WorkloadInfo.UNKNOWN).connectionManager(
                HttpConnectionManager.of("inbound_0.0.0.0_9080", "r", List.of()));
        stats.rbacDecision("", false, true);
        stats.rbacDecision("istio_dry_run_deny_", true, false);
        stats.rbacDecision("istio_ext_authz_", true, true);
        stats.rbacDecision("mine_", false, false);

        assertEquals(Map.of("http.inbound_0.0.0.0_9080.rbac.allowed", 1L,
                "http.inbound_0.0.0.0_9080.rbac.denied", 0L,
                "http.inbound_0.0.0.0_9080.rbac.istio_dry_run_deny_.shadow_allowed", 0L,
                "http.inbound_0.0.0.0_9080.rbac.istio_dry_run_deny_.shadow_denied", 1L,
                "http.inbound_0.0.0.0_9080.rbac.istio_ext_authz_.shadow_allowed", 1L,
                "http.inbound_0.0.0.0_9080.rbac.istio_ext_authz_.shadow_denied", 0L,
                "http.inbound_0.0.0.0_9080.rbac.mine_.allowed", 0L,
                "http.inbound_0.0.0.0_9080.rbac.mine_.denied", 1L),
                EnvoyStats.collect(registry, n -> n.contains(".rbac."), n -> n));
        assertNotNull(registry.find("envoy_http_rbac_istio_dry_run_deny__shadow_denied")
                .tag("http_conn_manager_prefix", "inbound_0.0.0.0_9080").meter());
    }

    @Test
    void anHttpRbacFiltersFourCountersAreThereBeforeItsFirstDecisionAsEnvoyMakesThemWithItsConfig() {
        // Istio's CUSTOM policies: a filter with shadow rules only still has rbac.allowed and rbac.denied at 0
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        dev.inmesh.api.config.rbac.Rbac shadowOnly = new dev.inmesh.api.config.rbac.Rbac(null, "",
                new dev.inmesh.api.config.rbac.Rbac.Rules(dev.inmesh.api.config.rbac.Rbac.Action.ALLOW, Map.of()),
                "istio_ext_authz_");
        MeshMetrics.create(registry, WorkloadInfo.UNKNOWN).connectionManager(HttpConnectionManager.of(
                "inbound_0.0.0.0_9080", "r", List.of(
                        dev.inmesh.api.config.listener.HttpFilter.of("envoy.filters.http.rbac",
                                "envoy.extensions.filters.http.rbac.v3.RBAC").withRbac(shadowOnly))));

        assertEquals(Map.of("http.inbound_0.0.0.0_9080.rbac.allowed", 0L,
                "http.inbound_0.0.0.0_9080.rbac.denied", 0L,
                "http.inbound_0.0.0.0_9080.rbac.istio_ext_authz_.shadow_allowed", 0L,
                "http.inbound_0.0.0.0_9080.rbac.istio_ext_authz_.shadow_denied", 0L),
                EnvoyStats.collect(registry, n -> n.contains(".rbac."), n -> n));
    }
}
