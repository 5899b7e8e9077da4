package dev.inmesh.runtime.tracing;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.inmesh.api.config.listener.Tracing;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.IstioTracing;
import io.opentelemetry.proto.trace.v1.Span;
import io.vertx.core.Vertx;
import io.vertx.core.net.NetSocket;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The OpenTelemetry exporter's bound: one export in flight at a time, spans that end meanwhile wait in a bounded
 * buffer, and a span that finds it full is dropped and counted, while the collector (a TCP server on loopback that
 * takes the export and never answers) holds the export; the request path never waits.
 */
@Timeout(60)
class OtlpExporterTest {
    private final Vertx vertx = Vertx.vertx();
    /** The connections of the exports the collector holds, as they come. */
    private final List<CompletableFuture<NetSocket>> held = List.of(new CompletableFuture<>(),
            new CompletableFuture<>());
    private final AtomicInteger connections = new AtomicInteger();

    @AfterEach
    void stop() throws Exception {
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    private static Span span(int i) {
        return Span.newBuilder().setName("span-" + i).build();
    }

    @Test
    void theSpansOfATracerWithNoExporterGoNowhereAndAreNotCountedAsSentAsEnvoysAreNot() {
        TraceReporting reporting = new TraceReporting(vertx, () -> null,
                new TraceReporting.Local("reviews.default", "", "", null), null, 10);
        Tracing.OpenTelemetry noExporter = new Tracing.OpenTelemetry("reviews.default", null);
        for (int i = 0; i < OtlpExporter.MIN_FLUSH_SPANS + 1; i++) {
            reporting.export(noExporter, span(i));
        }
        reporting.flush();
        Map<String, Long> v = reporting.openTelemetryStats().values();
        assertEquals(0L, v.get("tracing.opentelemetry.spans_sent"));
        assertEquals(0L, v.get("tracing.opentelemetry.spans_dropped"), "nothing buffered, so nothing to drop");
        reporting.close();
    }

    @Test
    void spansBeyondTheBufferAreDroppedAndCountedWhileTheCollectorHoldsAnExport() throws Exception {
        int port = vertx.createNetServer().connectHandler(so -> held.get(Math.min(1, connections.getAndIncrement()))
                .complete(so)).listen(0, "127.0.0.1").await().actualPort();
        var bundle = EnvoyConfigReader.read("static_resources:\n  clusters:\n"
                + IstioTracing.staticCluster("otel", port).indent(2));
        ClusterManager clusters = ClusterManager.create(vertx, bundle.clusters(), bundle.endpoints());
        TraceReporting reporting = new TraceReporting(vertx, () -> clusters,
                new TraceReporting.Local("reviews.default", "", "", null), null, 10);
        Tracing.OpenTelemetry otel = new Tracing.OpenTelemetry("reviews.default", new Tracing.OpenTelemetry.Http(
                "otel", "collector", "/v1/traces", Duration.ofSeconds(30), Map.of()));
        TraceReporting.OpenTelemetryStats stats = reporting.openTelemetryStats();

        for (int i = 0; i < OtlpExporter.MIN_FLUSH_SPANS; i++) {
            reporting.export(otel, span(i)); // the fifth sends them: an export the collector holds
        }
        NetSocket first = held.get(0).get(10, TimeUnit.SECONDS); // the export's connection
        for (int i = 0; i < 10 + 3; i++) {
            reporting.export(otel, span(100 + i));
        }
        Map<String, Long> v = stats.values();
        assertEquals(3L, v.get("tracing.opentelemetry.spans_dropped"), "ten wait in the buffer, three are dropped");
        assertEquals(5L, v.get("tracing.opentelemetry.spans_sent"));
        assertEquals(1L, v.get("tracing.opentelemetry.http_reports_sent"), "one export in flight at a time");

        // the collector lets go of the export: it failed, and the ten waiting go in the next
        first.close();
        held.get(1).get(10, TimeUnit.SECONDS);
        assertEquals(15L, stats.values().get("tracing.opentelemetry.spans_sent"), "the next export");
        assertEquals(1L, stats.values().get("tracing.opentelemetry.http_reports_failed"));
        assertEquals(2L, stats.values().get("tracing.opentelemetry.http_reports_sent"));
        reporting.close();
        clusters.close();
    }
}
