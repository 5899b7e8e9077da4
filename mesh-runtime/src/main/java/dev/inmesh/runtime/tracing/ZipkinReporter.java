package dev.inmesh.runtime.tracing;

import dev.inmesh.api.config.listener.Tracing;
import dev.inmesh.runtime.router.ClusterCall;
import dev.inmesh.runtime.upstream.ClusterManager;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * Envoy's Zipkin reporter for one collector: finished spans are buffered and sent as one Zipkin v2 JSON
 * {@code POST} to {@code collector_endpoint}, with {@code collector_hostname} as its {@code host}, to a host of
 * {@code collector_cluster} chosen by the cluster's own load balancing, when {@link #MIN_FLUSH_SPANS} are buffered
 * and every {@link #FLUSH_INTERVAL_MS}. The buffer never holds more than {@link #MIN_FLUSH_SPANS}: a span that fills
 * it sends it. A report is a call through the cluster ({@link ClusterCall}), counted in its statistics as Envoy's
 * async client's. A collector that answers 202 counts in {@code reports_sent}; any other answer, and what Envoy's
 * async client answers itself (no healthy host, a failed connection, a reset: 503; no answer in 5 s: 504), in
 * {@code reports_dropped}; a missing cluster in {@code reports_skipped_no_cluster}. ({@code reports_failed}, Envoy's
 * count of a stream reset after the collector's headers, stays 0: such a report is dropped.) Nothing is thrown and
 * nothing waits for the collector.
 */
final class ZipkinReporter {
    /** Envoy's default {@code tracing.zipkin.min_flush_spans}. */
    static final int MIN_FLUSH_SPANS = 5;
    /** Envoy's default {@code tracing.zipkin.flush_interval_ms}. */
    static final long FLUSH_INTERVAL_MS = 5000;
    /** Envoy's default {@code tracing.zipkin.request_timeout}, in milliseconds. */
    static final long REQUEST_TIMEOUT_MS = 5000;

    private final Vertx vertx;
    private final Tracing.Zipkin collector;
    private final Supplier<ClusterManager> clusters;
    private final TraceReporting.Stats stats;
    private final long timer;
    private List<ZipkinSpan> buffer = new ArrayList<>(MIN_FLUSH_SPANS);

    ZipkinReporter(Vertx vertx, Tracing.Zipkin collector, Supplier<ClusterManager> clusters,
                   TraceReporting.Stats stats) {
        this.vertx = vertx;
        this.collector = collector;
        this.clusters = clusters;
        this.stats = stats;
        this.timer = vertx.setPeriodic(FLUSH_INTERVAL_MS, id -> {
            stats.timerFlushed.increment();
            flush();
        });
    }

    void add(ZipkinSpan span) {
        List<ZipkinSpan> full = null;
        synchronized (this) {
            buffer.add(span);
            if (buffer.size() >= MIN_FLUSH_SPANS) {
                full = buffer;
                buffer = new ArrayList<>(MIN_FLUSH_SPANS);
            }
        }
        if (full != null) {
            send(full);
        }
    }

    void flush() {
        List<ZipkinSpan> pending;
        synchronized (this) {
            if (buffer.isEmpty()) {
                return;
            }
            pending = buffer;
            buffer = new ArrayList<>(MIN_FLUSH_SPANS);
        }
        send(pending);
    }

    void close() {
        vertx.cancelTimer(timer);
        flush();
    }

    private void send(List<ZipkinSpan> spans) {
        stats.spansSent.add(spans.size());
        ClusterManager cm = clusters.get();
        if (cm == null || cm.cluster(collector.collectorCluster()) == null) {
            stats.reportsSkippedNoCluster.increment();
            return;
        }
        // through the cluster, as Envoy's reporter sends through the cluster's async client: its statistics
        // (upstream_rq_total, upstream_rq_2xx, upstream_cx_connect_fail, ...), circuit breakers and outlier detection
        String body = ZipkinSpan.toJson(spans);
        ClusterCall.send(cm, collector.collectorCluster(), false, ro -> ro.setURI(collector.collectorEndpoint())
                        .putHeader("content-type", "application/json"), Buffer.buffer(body),
                collector.collectorHostname(), Duration.ofMillis(REQUEST_TIMEOUT_MS))
                .onComplete(ar -> {
                    if (ar.succeeded() && ar.result().status() == 202) {
                        stats.reportsSent.increment();
                    } else {
                        // any other answer; and no healthy host, a failed connection, a reset or the timeout, which
                        // Envoy's async client answers itself (503, 504) as its router's local reply
                        stats.reportsDropped.increment();
                    }
                });
    }
}
