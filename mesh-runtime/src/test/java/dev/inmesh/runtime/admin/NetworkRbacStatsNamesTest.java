package dev.inmesh.runtime.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.NetworkRbacStats;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The RBAC network filters' statistics under Envoy's names in {@code /stats}: {@code <stat_prefix>.rbac.allowed},
 * {@code denied}, and the shadow rules' {@code <stat_prefix>.rbac.<shadow_rules_stat_prefix>shadow_allowed} and
 * {@code shadow_denied}; the prefix and {@code rbac.} joined by one dot whether or not the prefix ends with it.
 */
class NetworkRbacStatsNamesTest {

    @Test
    void aNetworkFiltersCountersAreNamedUnderItsStatPrefixAsEnvoyNamesThem() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        MeshMetrics metrics = MeshMetrics.create(registry, WorkloadInfo.UNKNOWN);
        NetworkRbacStats istio = metrics.networkRbac("tcp.");
        istio.rbacDecision("", false, false);
        istio.rbacDecision("", false, true);
        istio.rbacDecision("", false, true);
        istio.rbacDecision("istio_dry_run_allow_", true, false);
        metrics.networkRbac("custom").rbacDecision("", false, false);

        assertEquals(Map.of("tcp.rbac.allowed", 2L, "tcp.rbac.denied", 1L,
                "tcp.rbac.istio_dry_run_allow_shadow_allowed", 0L, "tcp.rbac.istio_dry_run_allow_shadow_denied", 1L,
                "custom.rbac.allowed", 0L, "custom.rbac.denied", 1L),
                EnvoyStats.collect(registry, n -> n.contains(".rbac."), n -> n));
        assertEquals(2, istio.allowed());
        assertEquals(1, istio.shadow("istio_dry_run_allow_", false));
    }
}
