package dev.inmesh.runtime.tracing;

import dev.inmesh.api.config.listener.Tracing;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.Exchange;
import dev.inmesh.runtime.upstream.Host;
import dev.inmesh.runtime.upstream.LbContext;
import dev.inmesh.runtime.upstream.UpstreamCluster;
import io.opentelemetry.proto.trace.v1.Span;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import java.util.logging.Logger;

/**
 * Envoy's OpenTelemetry exporter for one tracer: finished spans are buffered and exported as one OTLP
 * {@code ExportTraceServiceRequest} when {@link #MIN_FLUSH_SPANS} are buffered and every {@link #FLUSH_INTERVAL_MS}
 * (Envoy's defaults), to a host of the collector's cluster chosen by the cluster's own load balancing: a unary gRPC
 * call of {@code TraceService/Export} ({@code grpc_service}, over HTTP/2) or a protobuf {@code POST}
 * ({@code http_service}), with Envoy's kind of OTLP {@code user-agent} ({@link #USER_AGENT}). One export is in flight
 * at a time; spans that end meanwhile wait in the buffer and go in the next, so a slow collector makes batches larger
 * rather than connections more numerous. The buffer is bounded
 * ({@link #MAX_BUFFERED_SPANS}): a span that finds it full is dropped and counted in
 * {@code tracing.opentelemetry.spans_dropped}. An export without an answer within its timeout (the exporter's, else
 * {@link #DEFAULT_TIMEOUT_MS}) fails. Failures are counted and logged at most once per {@link #LOG_PERIOD_NANOS};
 * nothing is thrown and no request waits for the collector.
 */
final class OtlpExporter {
    /** Envoy's default {@code tracing.opentelemetry.min_flush_spans}. */
    static final int MIN_FLUSH_SPANS = 5;
    /** Envoy's default {@code tracing.opentelemetry.flush_interval_ms}. */
    static final long FLUSH_INTERVAL_MS = 5000;
    /** The timeout of an export whose exporter gives none (Envoy waits without one; a bounded buffer cannot). */
    static final long DEFAULT_TIMEOUT_MS = 5000;
    /** How many finished spans wait for an export at most; more are dropped. */
    static final int MAX_BUFFERED_SPANS = 2048;
    /** How many spans go in one export at most. */
    static final int MAX_BATCH_SPANS = 512;
    /** The gRPC method of an OTLP trace export. */
    static final String EXPORT_PATH = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    /**
     * The {@code user-agent} of every export, named as the OTLP exporter specification asks and as Envoy names its
     * own ({@code OTel-OTLP-Exporter-Envoy/} and its version), with Inmesh's name and version.
     */
    static final String USER_AGENT = "OTel-OTLP-Exporter-Inmesh/" + OtlpSpans.SDK_VERSION;
    static final long LOG_PERIOD_NANOS = 60_000_000_000L;
    private static final Logger LOG = Logger.getLogger(OtlpExporter.class.getName());

    private final Vertx vertx;
    private final Tracing.OpenTelemetry config;
    private final Supplier<ClusterManager> clusters;
    private final TraceReporting.OpenTelemetryStats stats;
    private final int capacity;
    private final long timer;
    private List<Span> buffer = new ArrayList<>();
    private boolean exporting;
    /** A flush was asked for while an export was in flight: what is buffered goes when it ends. */
    private boolean flushWhenDone;
    private long nextLogNanos = System.nanoTime();

    OtlpExporter(Vertx vertx, Tracing.OpenTelemetry config, Supplier<ClusterManager> clusters,
                 TraceReporting.OpenTelemetryStats stats, int capacity) {
        this.vertx = vertx;
        this.config = config;
        this.clusters = clusters;
        this.stats = stats;
        this.capacity = capacity;
        this.timer = vertx.setPeriodic(FLUSH_INTERVAL_MS, id -> {
            stats.timerFlushed.increment();
            flush();
        });
    }

    /** Buffers a finished span; any thread, never blocks. */
    void add(Span span) {
        List<Span> batch = null;
        boolean dropped;
        synchronized (this) {
            dropped = buffer.size() >= capacity;
            if (!dropped) {
                buffer.add(span);
                batch = !exporting && buffer.size() >= MIN_FLUSH_SPANS ? take() : null;
            }
        }
        if (batch != null) {
            send(batch);
        } else if (dropped) {
            stats.spansDropped.increment();
            warn("OpenTelemetry span buffer full (" + capacity + " spans): spans are dropped until the collector of "
                    + "cluster " + cluster() + " takes them");
        }
    }

    /** Exports what is buffered now, or as soon as the export in flight ends. */
    void flush() {
        List<Span> batch;
        synchronized (this) {
            if (exporting) {
                flushWhenDone = true;
                return;
            }
            batch = buffer.isEmpty() ? null : take();
        }
        if (batch != null) {
            send(batch);
        }
    }

    void close() {
        vertx.cancelTimer(timer);
        flush();
    }

    /** Takes up to {@link #MAX_BATCH_SPANS} from the buffer for an export, which is then in flight. */
    private List<Span> take() {
        List<Span> batch;
        if (buffer.size() <= MAX_BATCH_SPANS) {
            batch = buffer;
            buffer = new ArrayList<>();
        } else {
            batch = new ArrayList<>(buffer.subList(0, MAX_BATCH_SPANS));
            buffer = new ArrayList<>(buffer.subList(MAX_BATCH_SPANS, buffer.size()));
        }
        exporting = true;
        return batch;
    }

    /** The export in flight ended: the next goes when enough spans wait, or a flush was asked for. */
    private void done() {
        List<Span> batch;
        synchronized (this) {
            exporting = false;
            boolean flush = flushWhenDone;
            flushWhenDone = false;
            batch = buffer.size() >= MIN_FLUSH_SPANS || flush && !buffer.isEmpty() ? take() : null;
        }
        if (batch != null) {
            send(batch);
        }
    }

    private String cluster() {
        return config.exporter() instanceof Tracing.OpenTelemetry.Grpc g ? g.clusterName()
                : ((Tracing.OpenTelemetry.Http) config.exporter()).cluster();
    }

    private void send(List<Span> batch) {
        stats.spansSent.add(batch.size());
        Future<Void> export;
        try {
            export = export(OtlpSpans.request(config.serviceName(), batch).toByteArray());
        } catch (RuntimeException e) {
            export = Future.failedFuture(e);
        }
        export.onComplete(ar -> {
            if (ar.failed()) {
                warn("OpenTelemetry export to cluster " + cluster() + " failed: " + ar.cause().getMessage());
            }
            done();
        });
    }

    /** One export of an encoded request; fails (after counting it) when the collector did not take it. */
    private Future<Void> export(byte[] request) {
        boolean grpc = config.exporter() instanceof Tracing.OpenTelemetry.Grpc;
        ClusterManager cm = clusters.get();
        UpstreamCluster cluster = cm == null ? null : cm.cluster(cluster());
        if (cluster == null) {
            stats.reportsSkippedNoCluster.increment();
            return Future.failedFuture("no cluster " + cluster());
        }
        Host host = cluster.chooseHost(LbContext.NONE);
        if (host == null) {
            (grpc ? stats.grpcReportsFailed : stats.httpReportsFailed).increment();
            return Future.failedFuture("no healthy host");
        }
        // gRPC needs HTTP/2: a cluster that follows its downstream's protocol (istiod's for an unnamed port) gives h2c
        HttpClient client = cluster.httpClient(host, grpc);
        if (client == null) { // max_connection_pools
            (grpc ? stats.grpcReportsFailed : stats.httpReportsFailed).increment();
            return Future.failedFuture("no connection pool for the host");
        }
        return grpc ? grpc(client, host, (Tracing.OpenTelemetry.Grpc) config.exporter(), request)
                : http(client, host, (Tracing.OpenTelemetry.Http) config.exporter(), request);
    }

    private Future<Void> grpc(HttpClient client, Host host, Tracing.OpenTelemetry.Grpc g, byte[] request) {
        long timeout = millis(g.timeout());
        RequestOptions ro = options(host, EXPORT_PATH, timeout, g.initialMetadata())
                .putHeader("content-type", "application/grpc").putHeader("te", "trailers")
                .putHeader("grpc-timeout", timeout + "m");
        // one length-prefixed message, not compressed
        Buffer body = Buffer.buffer(5 + request.length).appendByte((byte) 0).appendInt(request.length)
                .appendBytes(request);
        stats.grpcReportsSent.increment();
        return call(client, ro, g.authority(), body).compose(resp -> {
            String status = resp.trailers().get("grpc-status");
            if (status == null) {
                status = resp.headers().get("grpc-status"); // a trailers-only answer
            }
            if (resp.status() == 200 && "0".equals(status)) {
                stats.grpcReportsSuccess.increment();
                return Future.succeededFuture();
            }
            stats.grpcReportsFailed.increment();
            return Future.failedFuture("HTTP " + resp.status() + ", grpc-status " + status);
        }, e -> {
            stats.grpcReportsFailed.increment();
            return Future.failedFuture(e);
        });
    }

    /** OTLP/HTTP: Envoy counts any answer in {@code http_reports_success}, and logs one that is not 200. */
    private Future<Void> http(HttpClient client, Host host, Tracing.OpenTelemetry.Http h, byte[] request) {
        RequestOptions ro = options(host, h.path(), millis(h.timeout()), h.headers())
                .putHeader("content-type", "application/x-protobuf");
        stats.httpReportsSent.increment();
        return call(client, ro, h.host(), Buffer.buffer(request)).compose(resp -> {
            stats.httpReportsSuccess.increment();
            return resp.status() == 200 ? Future.succeededFuture()
                    : Future.failedFuture("the collector answered " + resp.status());
        }, e -> {
            stats.httpReportsFailed.increment();
            return Future.failedFuture(e);
        });
    }

    private static RequestOptions options(Host host, String path, long timeout, Map<String, String> headers) {
        RequestOptions ro = new RequestOptions().setMethod(HttpMethod.POST).setURI(path)
                .setHost(host.address().address()).setPort(host.address().port()).setTimeout(timeout)
                .putHeader("user-agent", USER_AGENT);
        headers.forEach(ro::putHeader); // the exporter's own headers, which may name another user-agent
        return ro;
    }

    private Future<Exchange.Answer> call(HttpClient client, RequestOptions ro, String authority, Buffer body) {
        return Exchange.send(vertx, client, ro, authority, body, req -> { });
    }

    private static long millis(Duration timeout) {
        return timeout == null || timeout.isZero() ? DEFAULT_TIMEOUT_MS : Math.max(1, timeout.toMillis());
    }

    /** Logs a failure, at most once per {@link #LOG_PERIOD_NANOS}; the statistics count every one. */
    private void warn(String message) {
        long now = System.nanoTime();
        synchronized (this) {
            if (now - nextLogNanos < 0) {
                return;
            }
            nextLogNanos = now + LOG_PERIOD_NANOS;
        }
        LOG.warning(message);
    }
}
