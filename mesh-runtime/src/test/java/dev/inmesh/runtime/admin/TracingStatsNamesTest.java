package dev.inmesh.runtime.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.Tracing;
import dev.inmesh.runtime.stats.DownstreamStats;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.tracing.Tracer;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vertx.core.MultiMap;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * A connection manager's tracing counters under Envoy's names, {@code http.<stat_prefix>.tracing.*}: made at 0 with
 * the connection manager, whether it traces or not, and counted one a request by the reason of its trace decision, as
 * Envoy's connection manager counts them before it begins the span.
 */
class TracingStatsNamesTest {
    private static final String P = "http.inbound_0.0.0.0_9080.tracing.";

    private static MultiMap request(String requestId, String... more) {
        MultiMap h = MultiMap.caseInsensitiveMultiMap().add("x-request-id", requestId);
        for (int i = 0; i < more.length; i += 2) {
            h.add(more[i], more[i + 1]);
        }
        return h;
    }

    @Test
    void theDecisionOfEachRequestCountsUnderItsReason() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        DownstreamStats stats = MeshMetrics.create(registry, WorkloadInfo.UNKNOWN).connectionManager(
                HttpConnectionManager.of("inbound_0.0.0.0_9080", "r", List.of()));
        assertEquals(Map.of(P + "random_sampling", 0L, P + "service_forced", 0L, P + "client_enabled", 0L,
                P + "not_traceable", 0L, P + "health_check", 0L),
                EnvoyStats.collect(registry, n -> n.contains(".tracing."), n -> n), "made with the config");

        // random_sampling 50 %: 00000001 is within, 00001388 (5000) is not
        Tracer tracer = Tracer.compile(new Tracing(100, 50, 100, 256, List.of(), "envoy.tracers.zipkin",
                new Tracing.Zipkin("zipkin", "/api/v2/spans", "zipkin", false, false)), null, n -> null);
        Random random = new Random(1);
        tracer.start(request("00000001-1234-4567-89ab-0123456789ab"), false, false, "h", Instant.EPOCH, 0, random,
                stats);
        tracer.start(request("00001388-1234-4567-89ab-0123456789ab"), false, false, "h", Instant.EPOCH, 0, random,
                stats);
        tracer.start(request("00001388-1234-4567-89ab-0123456789ab"), true, false, "h", Instant.EPOCH, 0, random,
                stats);
        tracer.start(request("00001388-1234-4567-89ab-0123456789ab", "x-client-trace-id", "c"), false, false, "h",
                Instant.EPOCH, 0, random, stats);
        // an earlier hop's reason counts as it says, whatever the caller's B3 flag says of the span
        tracer.start(request("00001388-1234-a567-89ab-0123456789ab", "x-b3-sampled", "0"), false, false, "h",
                Instant.EPOCH, 0, random, stats);
        // no id to decide on: not traceable
        tracer.start(MultiMap.caseInsensitiveMultiMap(), false, false, "h", Instant.EPOCH, 0, random, stats);

        assertEquals(Map.of(P + "random_sampling", 1L, P + "service_forced", 2L, P + "client_enabled", 1L,
                P + "not_traceable", 2L, P + "health_check", 0L),
                EnvoyStats.collect(registry, n -> n.contains(".tracing."), n -> n));
        assertNotNull(registry.find("envoy_http_tracing_service_forced")
                .tag("http_conn_manager_prefix", "inbound_0.0.0.0_9080").meter(), "scraped as Envoy names it");
    }
}
