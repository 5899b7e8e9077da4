package dev.inmesh.runtime.tracing;

import dev.inmesh.api.config.listener.Tracing;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.Exchange;
import dev.inmesh.runtime.upstream.Host;
import dev.inmesh.runtime.upstream.LbContext;
import dev.inmesh.runtime.upstream.UpstreamCluster;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * Envoy's Zipkin reporter for one collector: finished spans are buffered and sent as one Zipkin v2 JSON
 * {@code POST} to {@code collector_endpoint}, with {@code collector_hostname} as its {@code host}, to a host of
 * {@code collector_cluster} chosen by the cluster's own load balancing, when {@link #MIN_FLUSH_SPANS} are buffered
 * and every {@link #FLUSH_INTERVAL_MS}. The buffer never holds more than {@link #MIN_FLUSH_SPANS}: a span that fills
 * it sends it. A collector that answers 202 counts in {@code reports_sent}, any other answer in
 * {@code reports_dropped}, no answer in 5 s or a failed connection in {@code reports_failed}, a missing cluster in
 * {@code reports_skipped_no_cluster}; nothing is thrown and nothing waits for the collector.
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
        UpstreamCluster cluster = cm == null ? null : cm.cluster(collector.collectorCluster());
        if (cluster == null) {
            stats.reportsSkippedNoCluster.increment();
            return;
        }
        Host host = cluster.chooseHost(LbContext.NONE);
        HttpClient client;
        try {
            client = host == null ? null : cluster.httpClient(host);
        } catch (RuntimeException e) {
            client = null;
        }
        if (client == null) {
            stats.reportsFailed.increment();
            return;
        }
        RequestOptions ro = new RequestOptions().setMethod(HttpMethod.POST).setURI(collector.collectorEndpoint())
                .setHost(host.address().address()).setPort(host.address().port())
                .putHeader("content-type", "application/json").setTimeout(REQUEST_TIMEOUT_MS);
        String body = ZipkinSpan.toJson(spans);
        Exchange.send(vertx, client, ro, collector.collectorHostname(), Buffer.buffer(body), req -> { })
                .onComplete(ar -> {
                    if (ar.failed()) {
                        stats.reportsFailed.increment();
                    } else if (ar.result().status() == 202) {
                        stats.reportsSent.increment();
                    } else {
                        stats.reportsDropped.increment();
                    }
                });
    }
}
