package dev.inmesh.runtime.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.NetworkLocalRateLimitStats;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The local rate limit network filter's statistic under Envoy's name in {@code /stats}:
 * {@code local_rate_limit.<stat_prefix>.rate_limited} ({@code local_ratelimit.cc} prefixes the stat prefix with
 * {@code local_rate_limit.}), scraped with the prefix in Envoy's tag {@code local_network_ratelimit_prefix}.
 */
class NetworkLocalRateLimitStatsNamesTest {

    @Test
    void theRateLimitedCounterIsNamedUnderLocalRateLimitAndItsStatPrefixAsEnvoyNamesIt() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        MeshMetrics metrics = MeshMetrics.create(registry, WorkloadInfo.UNKNOWN);
        NetworkLocalRateLimitStats caps = metrics.networkLocalRateLimit("tcp_cap");
        caps.rateLimited();
        caps.rateLimited();
        metrics.networkLocalRateLimit("other");

        assertEquals(Map.of("local_rate_limit.tcp_cap.rate_limited", 2L, "local_rate_limit.other.rate_limited", 0L),
                EnvoyStats.collect(registry, n -> n.startsWith("local_rate_limit."), n -> n));
        assertEquals(2, metrics.networkLocalRateLimit("tcp_cap").rateLimitedCount(), "shared by its prefix");
        assertNotNull(registry.find("envoy_local_rate_limit_rate_limited")
                .tag("local_network_ratelimit_prefix", "tcp_cap").meter());
    }
}
