package dev.inmesh.runtime.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.ProxyProtocolStats;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * The PROXY protocol listener filters' statistics under Envoy's names in {@code /stats}: in the root scope,
 * {@code proxy_proto.[<stat_prefix>.]not_found_allowed}, {@code not_found_disallowed} and
 * {@code versions.v1|v2.found|disallowed|error}, and the legacy {@code downstream_cx_proxy_proto_error} that every
 * error counts in, whatever the prefix.
 */
class ProxyProtocolStatsNamesTest {

    @Test
    void theFiltersCountersAreNamedAsEnvoyNamesThem() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        MeshMetrics metrics = MeshMetrics.create(registry, WorkloadInfo.UNKNOWN);
        ProxyProtocolStats plain = metrics.proxyProtocol("");
        plain.found(1);
        plain.error(2);
        plain.notFoundAllowed();
        ProxyProtocolStats nlb = metrics.proxyProtocol("nlb");
        nlb.disallowed(1);
        nlb.notFoundDisallowed();

        Map<String, Long> expected = new TreeMap<>();
        for (String prefix : new String[] {"proxy_proto.", "proxy_proto.nlb."}) {
            for (String name : new String[] {"not_found_allowed", "not_found_disallowed", "versions.v1.found",
                "versions.v1.disallowed", "versions.v1.error", "versions.v2.found", "versions.v2.disallowed",
                "versions.v2.error"}) {
                expected.put(prefix + name, 0L);
            }
        }
        expected.putAll(Map.of("proxy_proto.versions.v1.found", 1L, "proxy_proto.versions.v2.error", 1L,
                "proxy_proto.not_found_allowed", 1L, "proxy_proto.nlb.versions.v1.found", 1L,
                "proxy_proto.nlb.versions.v1.disallowed", 1L, "proxy_proto.nlb.not_found_disallowed", 1L,
                "downstream_cx_proxy_proto_error", 2L));
        assertEquals(expected, EnvoyStats.collect(registry, n -> n.contains("proxy_proto"), n -> n));
        assertNotNull(registry.find("envoy_proxy_proto_versions_v1_disallowed").tag("proxy_proto_prefix", "nlb")
                .meter(), "scraped with the stat prefix in a tag");
    }
}
