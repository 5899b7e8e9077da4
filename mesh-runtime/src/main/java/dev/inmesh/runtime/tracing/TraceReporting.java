package dev.inmesh.runtime.tracing;

import dev.inmesh.api.config.listener.Tracing;
import dev.inmesh.runtime.upstream.ClusterManager;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.vertx.core.Vertx;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Supplier;

/**
 * Where the spans of one proxy (or in-JVM mesh) go: one {@link ZipkinReporter} per Zipkin collector and one
 * {@link OtlpExporter} per OpenTelemetry tracer the connection managers name, kept across snapshots so that their
 * buffers and timers survive configuration updates, reporting through the current snapshot's clusters; this workload
 * as the spans' local endpoint and {@code node_id}; and Envoy's {@code tracing.zipkin.*} and
 * {@code tracing.opentelemetry.*} statistics, shared by every reporter of a tracer as Envoy's are, each published
 * once a configuration has a connection manager that traces with that tracer ({@link #built}), as Envoy makes a
 * tracer's statistics when it builds its driver.
 */
public final class TraceReporting implements AutoCloseable {
    /**
     * This workload as its spans name it.
     *
     * @param serviceName the local endpoint's service name (the node's cluster, Istio's service cluster: by default
     *                    the {@code app} label and namespace, {@code reviews.default})
     * @param nodeId the {@code node_id} tag (the proxy's node id)
     * @param zone the {@code zone} tag, or empty for none
     * @param ip the local endpoint's IP, or null
     */
    public record Local(String serviceName, String nodeId, String zone, String ip) {
        /**
         * A workload as Istio's sidecar names it in its spans: as service name, the service cluster Istio's agent
         * gives the node under its default {@code tracingServiceName} ({@code APP_LABEL_AND_NAMESPACE}): the
         * {@code app} label, else the workload name, and the namespace (not the canonical service, which may differ
         * from the {@code app} label); and the IP of its node id
         * ({@code sidecar~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local}; none when the id has no such part).
         */
        public static Local of(dev.inmesh.runtime.stats.WorkloadInfo w, String nodeId) {
            String service = !w.app().equals("unknown") ? w.app() : w.workload();
            String[] parts = nodeId == null ? new String[0] : nodeId.split("~", -1);
            String ip = parts.length >= 2 && !parts[1].isEmpty() ? parts[1] : null;
            return new Local(service + "." + w.namespace(), nodeId == null ? "" : nodeId, "", ip);
        }

        /**
         * As {@link #of(dev.inmesh.runtime.stats.WorkloadInfo, String)}, a bootstrap's {@code node} winning where it
         * says, as Envoy's spans take its local node: its {@code id} the {@code node_id} tag (and the IP, read as
         * above), its {@code cluster} the local endpoint's service name and its {@code locality.zone} the
         * {@code zone} tag; the workload's identity (flags, environment) where it leaves a field empty.
         *
         * @param bootstrap the bootstrap's node, or null for none
         */
        public static Local of(dev.inmesh.runtime.stats.WorkloadInfo w, String nodeId,
                               io.envoyproxy.envoy.config.core.v3.Node bootstrap) {
            if (bootstrap == null) {
                return of(w, nodeId);
            }
            Local l = of(w, bootstrap.getId().isEmpty() ? nodeId : bootstrap.getId());
            return new Local(bootstrap.getCluster().isEmpty() ? l.serviceName() : bootstrap.getCluster(), l.nodeId(),
                    bootstrap.getLocality().getZone(), l.ip());
        }
    }

    /** Envoy's {@code tracing.zipkin.*} statistics. */
    public static final class Stats {
        final LongAdder spansSent = new LongAdder();
        final LongAdder timerFlushed = new LongAdder();
        final LongAdder reportsSkippedNoCluster = new LongAdder();
        final LongAdder reportsSent = new LongAdder();
        final LongAdder reportsDropped = new LongAdder();
        final LongAdder reportsFailed = new LongAdder();

        /** The statistics by their Envoy name ({@code tracing.zipkin.spans_sent}, ...). */
        public Map<String, Long> values() {
            return Map.of("tracing.zipkin.spans_sent", spansSent.sum(),
                    "tracing.zipkin.timer_flushed", timerFlushed.sum(),
                    "tracing.zipkin.reports_skipped_no_cluster", reportsSkippedNoCluster.sum(),
                    "tracing.zipkin.reports_sent", reportsSent.sum(),
                    "tracing.zipkin.reports_dropped", reportsDropped.sum(),
                    "tracing.zipkin.reports_failed", reportsFailed.sum());
        }

        /**
         * Registers them as {@code envoy_tracing_zipkin_*}, Envoy's Prometheus names: as gauges (that only rise), as
         * the other Envoy counters whose names do not end in {@code _total}, so that Micrometer adds no {@code _total}.
         */
        void bind(MeterRegistry registry) {
            counter(registry, "spans_sent", spansSent);
            counter(registry, "timer_flushed", timerFlushed);
            counter(registry, "reports_skipped_no_cluster", reportsSkippedNoCluster);
            counter(registry, "reports_sent", reportsSent);
            counter(registry, "reports_dropped", reportsDropped);
            counter(registry, "reports_failed", reportsFailed);
        }

        private static void counter(MeterRegistry registry, String name, LongAdder value) {
            Gauge.builder("envoy_tracing_zipkin_" + name, value, LongAdder::sum).register(registry);
        }
    }

    /**
     * Envoy's {@code tracing.opentelemetry.*} statistics ({@code spans_sent}, {@code timer_flushed} and, for
     * OTLP/HTTP, {@code http_reports_sent}, {@code http_reports_success} and {@code http_reports_failed}), and
     * Inmesh's own beside them: {@code spans_dropped} (a full buffer), {@code reports_skipped_no_cluster} and, for
     * OTLP over gRPC, whose calls Envoy counts only in its gRPC client's statistics, {@code grpc_reports_sent},
     * {@code grpc_reports_success} (status 0) and {@code grpc_reports_failed}.
     */
    public static final class OpenTelemetryStats {
        final LongAdder spansSent = new LongAdder();
        final LongAdder timerFlushed = new LongAdder();
        final LongAdder httpReportsSent = new LongAdder();
        final LongAdder httpReportsSuccess = new LongAdder();
        final LongAdder httpReportsFailed = new LongAdder();
        final LongAdder grpcReportsSent = new LongAdder();
        final LongAdder grpcReportsSuccess = new LongAdder();
        final LongAdder grpcReportsFailed = new LongAdder();
        final LongAdder spansDropped = new LongAdder();
        final LongAdder reportsSkippedNoCluster = new LongAdder();

        private Map<String, LongAdder> adders() {
            Map<String, LongAdder> m = new java.util.LinkedHashMap<>();
            m.put("spans_sent", spansSent);
            m.put("timer_flushed", timerFlushed);
            m.put("http_reports_sent", httpReportsSent);
            m.put("http_reports_success", httpReportsSuccess);
            m.put("http_reports_failed", httpReportsFailed);
            m.put("grpc_reports_sent", grpcReportsSent);
            m.put("grpc_reports_success", grpcReportsSuccess);
            m.put("grpc_reports_failed", grpcReportsFailed);
            m.put("spans_dropped", spansDropped);
            m.put("reports_skipped_no_cluster", reportsSkippedNoCluster);
            return m;
        }

        /** The statistics by their name ({@code tracing.opentelemetry.spans_sent}, ...). */
        public Map<String, Long> values() {
            Map<String, Long> out = new java.util.LinkedHashMap<>();
            adders().forEach((name, value) -> out.put("tracing.opentelemetry." + name, value.sum()));
            return out;
        }

        /** Registers them as {@code envoy_tracing_opentelemetry_*}, gauges that only rise as the Zipkin ones. */
        void bind(MeterRegistry registry) {
            adders().forEach((name, value) -> Gauge.builder("envoy_tracing_opentelemetry_" + name, value,
                    LongAdder::sum).register(registry));
        }
    }

    private final Vertx vertx;
    private final Supplier<ClusterManager> clusters;
    private final Local local;
    private final Stats stats = new Stats();
    private final OpenTelemetryStats openTelemetryStats = new OpenTelemetryStats();
    private final Map<Tracing.Zipkin, ZipkinReporter> reporters = new ConcurrentHashMap<>();
    private final Map<Tracing.OpenTelemetry, OtlpExporter> exporters = new ConcurrentHashMap<>();
    /** Where the statistics are published, once {@link #publish} named it; null before. */
    private MeterRegistry registry;
    /** Whether a configuration had a connection manager tracing with Zipkin, OpenTelemetry; and the stats published. */
    private boolean zipkinBuilt;
    private boolean openTelemetryBuilt;
    private boolean zipkinPublished;
    private boolean openTelemetryPublished;
    /** The bound of each exporter's buffer ({@link OtlpExporter#MAX_BUFFERED_SPANS}; smaller in tests). */
    private final int exporterCapacity;
    private volatile boolean closed;

    /**
     * @param clusters the clusters of the current snapshot, where the collector's cluster is looked up at each report
     * @param registry where the statistics are published, or null
     */
    public TraceReporting(Vertx vertx, Supplier<ClusterManager> clusters, Local local, MeterRegistry registry) {
        this(vertx, clusters, local, registry, OtlpExporter.MAX_BUFFERED_SPANS);
    }

    /** As the public constructor, each OpenTelemetry exporter buffering {@code exporterCapacity} spans at most. */
    TraceReporting(Vertx vertx, Supplier<ClusterManager> clusters, Local local, MeterRegistry registry,
                   int exporterCapacity) {
        this.exporterCapacity = exporterCapacity;
        this.vertx = vertx;
        this.clusters = clusters;
        this.local = local;
        if (registry != null) {
            publish(registry);
        }
    }

    /**
     * Publishes Envoy's {@code tracing.zipkin.*} and {@code tracing.opentelemetry.*} statistics in {@code registry},
     * as {@code envoy_tracing_zipkin_*} and {@code envoy_tracing_opentelemetry_*}, those of each tracer once a
     * configuration uses it ({@link #built}; the standalone proxy's command, whose registry is made apart from the
     * proxy, calls it once started).
     */
    public synchronized void publish(MeterRegistry registry) {
        this.registry = registry;
        bind();
    }

    /**
     * Notes the tracers a configuration's connection managers trace with: Envoy builds a tracer's driver, and makes
     * its statistics (at 0), only for a connection manager that uses it, so that a configuration tracing with Zipkin
     * only has no {@code tracing.opentelemetry.*}, and the other way round.
     */
    public synchronized void built(Iterable<Tracer> tracers) {
        for (Tracer t : tracers) {
            if (t.w3c()) {
                openTelemetryBuilt = true;
            } else {
                zipkinBuilt = true;
            }
        }
        bind();
    }

    private void bind() {
        if (registry == null) {
            return;
        }
        if (zipkinBuilt && !zipkinPublished) {
            stats.bind(registry);
            zipkinPublished = true;
        }
        if (openTelemetryBuilt && !openTelemetryPublished) {
            openTelemetryStats.bind(registry);
            openTelemetryPublished = true;
        }
    }

    public Local local() {
        return local;
    }

    public Stats stats() {
        return stats;
    }

    public OpenTelemetryStats openTelemetryStats() {
        return openTelemetryStats;
    }

    /** Buffers a finished span for the collector of {@code zipkin}. Any thread; never blocks. */
    void report(Tracing.Zipkin zipkin, ZipkinSpan span) {
        if (closed) {
            return;
        }
        reporters.computeIfAbsent(zipkin, z -> new ZipkinReporter(vertx, z, clusters, stats)).add(span);
    }

    /**
     * Buffers a finished OTLP span for the exporter of {@code tracer}; drops it when the tracer has none, whose spans
     * Envoy makes and sends nowhere (nor counts in {@code spans_sent}). Any thread; never blocks.
     */
    void export(Tracing.OpenTelemetry tracer, io.opentelemetry.proto.trace.v1.Span span) {
        if (closed || tracer.exporter() == null) {
            return;
        }
        exporters.computeIfAbsent(tracer, t -> new OtlpExporter(vertx, t, clusters, openTelemetryStats,
                exporterCapacity)).add(span);
    }

    /** Sends what is buffered now (tests, and shutdown). */
    public void flush() {
        for (ZipkinReporter r : reporters.values()) {
            r.flush();
        }
        for (OtlpExporter e : exporters.values()) {
            e.flush();
        }
    }

    /** Sends what is buffered and stops the reporters' timers. */
    @Override
    public void close() {
        closed = true;
        for (ZipkinReporter r : reporters.values()) {
            r.close();
        }
        for (OtlpExporter e : exporters.values()) {
            e.close();
        }
    }
}
