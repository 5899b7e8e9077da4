package dev.inmesh.runtime.stats;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.BiFunction;

/**
 * Istio's standard metrics for one workload, written into a Micrometer registry so that a Prometheus scrape reads as
 * an Istio sidecar's does: Istio's Grafana dashboards and Kiali work unchanged.
 *
 * <ul>
 *   <li>{@link #record(StreamInfo)}, once per finished HTTP request (in-JVM and standalone alike):
 *       {@code istio_requests_total}, and the histograms {@code istio_request_duration_milliseconds},
 *       {@code istio_request_bytes} and {@code istio_response_bytes} (the stream's bytes, as Istio reads Envoy's
 *       downstream bytes meter: heads, bodies and trailers, {@link HeadSize}) with Envoy's default buckets, which
 *       Istio's proxies use for all three ({@link #BUCKETS});</li>
 *   <li>{@link #tcpConnection(TcpConnectionInfo)}, per TCP connection the standalone proxy passes through (and per
 *       connection a TCP chain of {@code mesh.inbound} takes):
 *       {@code istio_tcp_connections_opened_total}, {@code istio_tcp_connections_closed_total},
 *       {@code istio_tcp_sent_bytes_total} (towards the downstream) and {@code istio_tcp_received_bytes_total}
 *       (from the downstream), as the filter chain's Istio stats filter overrides them
 *       ({@link TcpConnectionInfo#statsOverrides});</li>
 *   <li>{@link #upstream(String)}: per-cluster statistics in Envoy's names, for the cluster manager and router;</li>
 *   <li>{@link #connectionManager}: an HTTP connection manager's statistics in Envoy's names
 *       ({@code http.<stat_prefix>.*}), and {@link #listener(String)} a listener's ({@code listener.<address>.*}).</li>
 * </ul>
 *
 * <p>Labels follow Istio: reporter {@code source} for OUTBOUND requests ({@code source_*} is this workload,
 * {@code destination_*} the peer), {@code destination} for INBOUND ({@code destination_*} is this workload,
 * {@code source_*} the peer). {@code destination_service} is the service host, else the request's host, else
 * {@code unknown} (inbound: this workload's canonical service); {@code destination_service_name} falls back to
 * {@code destination_service}; {@code destination_service_namespace} is this workload's namespace inbound and,
 * outbound, the namespace of the cluster's service, else the peer's, as Istio's stats on each side; at the destination, for TLS the
 * standalone proxy terminated from a client that presented a certificate, {@code source_principal} is the first URI
 * SAN of the client's certificate and {@code destination_principal} of the proxy's own (Istio's SPIFFE identities);
 * at the source, for a request whose final attempt went over upstream TLS, {@code destination_principal} is the first
 * URI SAN of the server's certificate and {@code source_principal} of the one presented to it; else {@code unknown},
 * as Istio reports them without mTLS; the peer's namespace is the one its principal names, else its metadata's;
 * {@code *_canonical_service} and {@code *_canonical_revision} are the workloads' (an unknown peer's:
 * {@code unknown} and {@code latest}); {@code source_cluster} is this workload's cluster id when it is the
 * source, else the peer's ({@code unknown} when not known); {@code connection_security_policy} is {@code unknown}
 * when the source reports and, at the destination, {@code mutual_tls} when both principals are known (TLS the proxy
 * terminated whose client's certificate and its own have a URI SAN), else {@code none}; {@code request_protocol} is
 * {@code grpc} for gRPC requests (those with a {@link StreamInfo#grpcStatus()}), else {@code http} ({@code tcp} for
 * TCP metrics); {@code grpc_response_status} is that status, empty for other requests (absent on TCP metrics);
 * {@code response_flags} as {@link ResponseFlag#format}. Series are cached by their label values, so recording
 * allocates little.
 *
 * <p>Where the configuration has Istio's stats filter ({@code istio.stats}) somewhere, as istiod writes it, they are
 * recorded only for the connection managers and filter chains that have one ({@link StatsOverrides#OFF} for the
 * others), as Envoy records them only where the filter runs; a configuration without one anywhere has them recorded
 * everywhere.
 *
 * <p>The metrics of a stats filter's {@code definitions} ({@link StatsOverrides.Custom}, Istio's custom metrics
 * {@code istio_<name>}) are recorded with each request and, for a TCP connection, at its close.
 *
 * <p>As Istio's stats filter, it also records the proxy's build: {@code istio_build{component="proxy",tag=VERSION}} 1,
 * the {@code ISTIO_VERSION} of a bootstrap's node, else the Istio version Inmesh claims to istiod.
 *
 * <p>A gRPC request whose messages were counted ({@link StreamInfo#requestMessages()}: its connection manager's gRPC
 * statistics filter emits its filter state, as istiod configures it) adds them to {@code istio_request_messages_total}
 * and {@code istio_response_messages_total}, labelled as Istio's stats label them: with the reporter and the
 * {@code source_*} and {@code destination_*} labels only.
 *
 * <p>Thread-safe; recording never blocks.
 */
public final class MeshMetrics implements NetworkFilterStats {
    /**
     * Envoy's default histogram buckets, which Istio's proxies use for the duration (milliseconds) and both size
     * (bytes) histograms unless a pod overrides them.
     */
    public static final double[] BUCKETS = {0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
        60000, 300000, 600000, 1800000, 3600000};

    private static final String REQUESTS_HELP = "Requests, by Istio's standard labels";
    private static final String DURATION_HELP = "Request duration in milliseconds";
    private static final String REQUEST_BYTES_HELP = "Request sizes in bytes, head and body";
    private static final String RESPONSE_BYTES_HELP = "Response sizes in bytes, head, body and trailers";
    private static final String REQUEST_MESSAGES_HELP = "gRPC messages sent by clients";
    private static final String RESPONSE_MESSAGES_HELP = "gRPC messages sent by servers";

    private final MeterRegistry registry;
    private final WorkloadInfo local;
    private final String destinationCluster;
    private final Map<IstioLabels, RequestMeters> requestMeters = new ConcurrentHashMap<>();
    private final Map<IstioLabels, TcpMeters> tcpMeters = new ConcurrentHashMap<>();
    private final Map<IstioLabels, MessageMeters> messageMeters = new ConcurrentHashMap<>();
    /** The series of connection managers whose Istio stats filter overrides metrics, by labels and overrides. */
    private final Map<Overridden, RequestMeters> overriddenRequestMeters = new ConcurrentHashMap<>();
    private final Map<Overridden, MessageMeters> overriddenMessageMeters = new ConcurrentHashMap<>();
    private final Map<Overridden, TcpMeters> overriddenTcpMeters = new ConcurrentHashMap<>();
    /** The makers of each kind of series, made once rather than a method reference per recorded request. */
    private final BiFunction<IstioLabels, StatsOverrides, RequestMeters> makeRequestMeters = this::newRequestMeters;
    private final BiFunction<IstioLabels, StatsOverrides, MessageMeters> makeMessageMeters = this::newMessageMeters;
    private final BiFunction<IstioLabels, StatsOverrides, TcpMeters> makeTcpMeters = this::newTcpMeters;
    /** The sets of labels added to a metric ({@link #named}), numbered from 1 by name and labels. */
    private final Map<String, Integer> dimensionSets = new ConcurrentHashMap<>();
    /** The values of the gauges of stats filter definitions ({@link #recordCustomMetrics}). */
    private final Map<GaugeKey, java.util.concurrent.atomic.AtomicLong> gauges = new ConcurrentHashMap<>();
    private final Map<String, UpstreamStats> upstreams = new ConcurrentHashMap<>();
    private final Map<String, DownstreamStats> connectionManagers = new ConcurrentHashMap<>();
    private final Map<String, ListenerStats> listeners = new ConcurrentHashMap<>();
    private final Map<String, NetworkRbacStats> networkRbac = new ConcurrentHashMap<>();
    private final Map<String, ProxyProtocolStats> proxyProtocol = new ConcurrentHashMap<>();
    /** Envoy's legacy {@code downstream_cx_proxy_proto_error}, which every PROXY protocol filter counts in. */
    private volatile java.util.concurrent.atomic.LongAdder proxyProtocolErrors;
    private final Map<String, NetworkLocalRateLimitStats> networkLocalRateLimit = new ConcurrentHashMap<>();
    private final Map<String, TcpProxyStats> tcpProxy = new ConcurrentHashMap<>();
    /** The local rate limit filters' statistics by stat prefix, which every connection manager's statistics share. */
    private final ConcurrentHashMap<String, DownstreamStats.LocalRateLimitCounters> localRateLimits =
            new ConcurrentHashMap<>();

    private final CodecStats codec;

    private MeshMetrics(MeterRegistry registry, WorkloadInfo local, String destinationCluster) {
        this.registry = registry;
        this.local = local;
        this.destinationCluster = destinationCluster;
        this.codec = new CodecStats(registry);
    }

    /** Metrics for the workload {@code local}, with {@code destination_cluster} {@code Kubernetes}. */
    public static MeshMetrics create(MeterRegistry registry, WorkloadInfo local) {
        return create(registry, local, "Kubernetes");
    }

    /**
     * Metrics for the workload {@code local}.
     *
     * @param destinationCluster this workload's cluster id (Istio's {@code CLUSTER_ID}): the
     *     {@code destination_cluster} label value, and {@code source_cluster} when this workload is the source
     */
    public static MeshMetrics create(MeterRegistry registry, WorkloadInfo local, String destinationCluster) {
        return create(registry, local, destinationCluster, dev.inmesh.runtime.xds.ads.NodeOptions.ISTIO_VERSION);
    }

    /**
     * The same, {@code istio_build}'s tag {@code istioVersion}: as Istio's stats filter takes it from its local
     * node's {@code ISTIO_VERSION}, the version a bootstrap's node names.
     */
    public static MeshMetrics create(MeterRegistry registry, WorkloadInfo local, String destinationCluster,
                                     String istioVersion) {
        if (registry == null) {
            throw new IllegalArgumentException("registry: null (expected: a MeterRegistry)");
        }
        if (destinationCluster == null || destinationCluster.isEmpty()) {
            throw new IllegalArgumentException("destinationCluster: '" + destinationCluster
                    + "' (expected: a cluster id such as Kubernetes)");
        }
        // as Istio's stats filter records the proxy's build: one series, the Istio version this proxy claims
        Gauge.builder("istio_build", () -> 1).description("Istio component build info")
                .tags("component", "proxy", "tag", istioVersion == null || istioVersion.isEmpty()
                        ? dev.inmesh.runtime.xds.ads.NodeOptions.ISTIO_VERSION : istioVersion)
                .register(registry);
        return new MeshMetrics(registry, local == null ? WorkloadInfo.UNKNOWN : local, destinationCluster);
    }

    /** The registry written to. */
    public MeterRegistry registry() {
        return registry;
    }

    /** This workload. */
    public WorkloadInfo local() {
        return local;
    }

    /**
     * Records one finished HTTP request into Istio's four request metrics (and the gRPC message counts), as its
     * connection manager's Istio stats filter overrides them ({@link StreamInfo#statsOverrides}): a dropped metric not
     * at all, a removed label with an empty value.
     */
    public void record(StreamInfo s) {
        if (s.statsOverrides().off()) {
            return; // no Istio stats filter in its connection manager, where the configuration has one elsewhere
        }
        String protocol = s.grpcStatus() != null ? "grpc" : "http";
        IstioLabels labels = labels(s.direction(), s.peer(), destinationService(s), destinationServiceName(s),
                s.destinationServiceNamespace(), protocol, responseCode(s.responseCode()),
                s.grpcStatus() != null ? s.grpcStatus() : "", ResponseFlag.format(s.responseFlags()),
                s.downstreamPeerPrincipal(), s.downstreamLocalPrincipal(),
                s.upstreamPeerPrincipal(), s.upstreamLocalPrincipal());
        StatsOverrides o = s.statsOverrides();
        if (o.evaluated()) {
            recordEvaluated(s, labels, o);
            return;
        }
        RequestMeters m = series(requestMeters, overriddenRequestMeters, labels, o, makeRequestMeters);
        if (m.requests != null) {
            m.requests.increment();
        }
        if (m.duration != null) {
            m.duration.record(Math.max(0, s.durationMillis()));
        }
        // as Istio's stats read Envoy's downstream bytes meter: the stream's bytes, heads and trailers included
        if (m.requestBytes != null) {
            m.requestBytes.record(Math.max(0, s.bytesReceived()) + Math.max(0, s.requestHeadBytes()));
        }
        if (m.responseBytes != null) {
            m.responseBytes.record(Math.max(0, s.bytesSent()) + Math.max(0, s.responseHeadBytes()));
        }
        if (s.grpcStatus() != null && s.requestMessages() >= 0) {
            // as Istio's stats read the gRPC statistics filter's state: labelled with the reporter and peers only
            MessageMeters mm = series(messageMeters, overriddenMessageMeters, labels.peersOnly(), o,
                    makeMessageMeters);
            if (mm.requests != null) {
                mm.requests.increment(s.requestMessages());
            }
            if (mm.responses != null) {
                mm.responses.increment(Math.max(0, s.responseMessages()));
            }
        }
    }

    /**
     * Records a request under overrides whose labels come from expressions evaluated for it (Istio's slower path: each
     * meter is looked up in the registry by its labels). A metric with labels added is registered under a name of
     * its own for that set of labels ({@link #DIMENSIONS_MARK}), as Micrometer's Prometheus registry takes one set of
     * label names per name; the admin's Prometheus scrape serves it under Istio's name, beside the series without them.
     */
    private void recordEvaluated(StreamInfo s, IstioLabels labels, StatsOverrides o) {
        Tags tags = labels.tags();
        StatsOverrides.Evaluation e = new StatsOverrides.Evaluation(o, s); // each expression once for all metrics
        increment(counter(o, StatsOverrides.Metric.REQUESTS_TOTAL, "istio_requests", REQUESTS_HELP, tags, e), 1);
        recordEvaluated(o, StatsOverrides.Metric.REQUEST_DURATION_MILLISECONDS, "istio_request_duration_milliseconds",
                DURATION_HELP, tags, e, Math.max(0, s.durationMillis()));
        recordEvaluated(o, StatsOverrides.Metric.REQUEST_BYTES, "istio_request_bytes", REQUEST_BYTES_HELP, tags, e,
                Math.max(0, s.bytesReceived()) + Math.max(0, s.requestHeadBytes()));
        recordEvaluated(o, StatsOverrides.Metric.RESPONSE_BYTES, "istio_response_bytes", RESPONSE_BYTES_HELP, tags,
                e, Math.max(0, s.bytesSent()) + Math.max(0, s.responseHeadBytes()));
        if (s.grpcStatus() != null && s.requestMessages() >= 0) {
            Tags peers = labels.peersOnly().tags();
            StatsOverrides.Metric req = StatsOverrides.Metric.REQUEST_MESSAGES_TOTAL;
            StatsOverrides.Metric resp = StatsOverrides.Metric.RESPONSE_MESSAGES_TOTAL;
            increment(counter(o, req, "istio_request_messages", REQUEST_MESSAGES_HELP, peers, e),
                    s.requestMessages());
            increment(counter(o, resp, "istio_response_messages", RESPONSE_MESSAGES_HELP, peers, e),
                    Math.max(0, s.responseMessages()));
        }
        recordCustomMetrics(o, e);
    }

    /** Adds to a counter, unless the Istio stats filter's overrides drop its metric (null). */
    private static void increment(Counter c, long by) {
        if (c != null) {
            c.increment(by);
        }
    }

    /**
     * Records the metrics of the stats filter's {@code definitions} for a request or a connection, as Istio's
     * {@code recordCustomMetrics}: a counter adds the value, a gauge is set to it, a histogram (Envoy's default
     * buckets) records it. Each is registered under a name of its own for its type and labels
     * ({@code istio_NAME_inmeshdimsN_inmeshcustom}), which the admin's scrape serves as {@code istio_NAME}, a
     * counter's without Micrometer's {@code _total} as Istio's proxy serves it.
     */
    private void recordCustomMetrics(StatsOverrides o, StatsOverrides.Evaluation s) {
        for (StatsOverrides.Custom c : o.customs()) {
            String name = named("istio_" + c.name(), c.type().name(), c.labels().keySet()) + CUSTOM_MARK;
            String help = "Istio stats definition " + c.name();
            Tags tags = c.tags(s);
            double amount = c.amount(s);
            switch (c.type()) {
                case COUNTER -> counter(name, help, tags).increment(amount);
                case GAUGE -> gauges.computeIfAbsent(new GaugeKey(name, tags), k -> {
                    java.util.concurrent.atomic.AtomicLong v = new java.util.concurrent.atomic.AtomicLong();
                    Gauge.builder(name, v, java.util.concurrent.atomic.AtomicLong::doubleValue).description(help)
                            .tags(tags).register(registry);
                    return v;
                }).set((long) amount);
                case HISTOGRAM -> histogram(name, help, tags).record(amount);
            }
        }
    }

    /**
     * What a stats filter definition's metric is named with after its {@link #DIMENSIONS_MARK}: the admin's scrape
     * serves it without both, and a counter without Micrometer's {@code _total}.
     */
    public static final String CUSTOM_MARK = "_inmeshcustom";

    /** A definition's gauge: by its registered name and labels. */
    private record GaugeKey(String name, Tags tags) {}

    private void recordEvaluated(StatsOverrides o, StatsOverrides.Metric metric, String name, String help, Tags tags,
                                 StatsOverrides.Evaluation e, double value) {
        if (!o.drops(metric)) {
            histogram(named(name, o, metric), help, o.tags(metric, tags, e)).record(value);
        }
    }

    /**
     * What a metric's meters with added labels are named apart from its standard series:
     * {@code NAME_inmeshdims<N>} (a counter's {@code _total} after it), {@code N} numbering the sets of added label
     * names; {@code PrometheusText} takes the mark out of the admin's scrape.
     */
    public static final String DIMENSIONS_MARK = "_inmeshdims";

    /** The name {@code metric}'s meter is registered under, with the labels {@code o} adds to it. */
    private String named(String name, StatsOverrides o, StatsOverrides.Metric metric) {
        java.util.Set<String> added = o.addedLabels(metric);
        return added.isEmpty() ? name : named(name, "", added);
    }

    /** {@code name} numbered for its {@code kind} of meter and its set of label names {@code labels}. */
    private String named(String name, String kind, java.util.Collection<String> labels) {
        String key = name + " " + kind + " " + String.join(",", labels);
        Integer n = dimensionSets.get(key);
        if (n == null) {
            synchronized (dimensionSets) {
                n = dimensionSets.computeIfAbsent(key, k -> dimensionSets.size() + 1);
            }
        }
        return name + DIMENSIONS_MARK + n;
    }

    /**
     * Counts a TCP connection opened and returns the handle through which its bytes and its close are counted. Bytes
     * may be added as they flow.
     */
    public TcpConnectionMetrics tcpConnectionOpened(TcpConnectionInfo c) {
        TcpConnectionMetrics m = tcpConnection(c);
        m.opened();
        return m;
    }

    /**
     * The handle through which a TCP connection is counted, nothing counted yet: {@link TcpConnectionMetrics#opened}
     * once it relays, or only {@link TcpConnectionMetrics#closed} for one that never did.
     */
    public TcpConnectionMetrics tcpConnection(TcpConnectionInfo c) {
        return new TcpConnectionMetrics(this, c);
    }

    /**
     * The statistics of an upstream cluster, created on first use; a cluster that is gone gives them up
     * ({@link UpstreamStats#release}), and one of the same name added later has new ones, at 0.
     */
    public UpstreamStats upstream(String clusterName) {
        UpstreamStats s = upstreams.get(clusterName); // the router asks several times per request: no lambda then
        return s != null ? s : upstreams.computeIfAbsent(clusterName,
                n -> new UpstreamStatsImpl(registry, n, upstreams));
    }

    /**
     * The statistics of the HTTP connection managers with {@code hcm}'s stat prefix, created on first use, with those
     * of its fault, CORS, RBAC, compressor and local rate limit filters when it runs them: as Envoy makes them with the
     * connection manager's and its filters' configs, all at 0 before the first request
     * ({@link dev.inmesh.runtime.snapshot.SnapshotHolder#connectionManagerStats} asks for them when a configuration
     * is applied). Looked up once per compiled decision or connection, not per request.
     */
    public DownstreamStats connectionManager(dev.inmesh.api.config.listener.HttpConnectionManager hcm) {
        DownstreamStats s = connectionManagers.computeIfAbsent(hcm.statPrefix(),
                p -> new DownstreamStats(registry, p, localRateLimits, codec));
        if (hcm.faultFilter() != null) {
            s.withFaultFilter();
        }
        if (hcm.corsFilter()) {
            s.withCorsFilter();
        }
        for (dev.inmesh.api.config.listener.HttpFilter f : hcm.httpFilters()) {
            if (f.rbac() != null) {
                // as Envoy makes an RBAC filter's four counters with its config, before its first decision
                s.rbac(f.rbac().rulesStatPrefix(), false);
                s.rbac(f.rbac().shadowRulesStatPrefix(), true);
            }
            if (f.compressor() != null) {
                s.compressor(f.compressor().libraryName(), f.compressor().responseDirection());
            }
            if (f.localRateLimit() != null) {
                s.localRateLimit(f.localRateLimit().statPrefix());
            }
            // and the JWT and external authorization filters' counters, as their configs make them
            if (f.jwtAuthn() != null) {
                s.jwtAuthn();
            }
            if (f.extAuthz() != null) {
                s.extAuthz();
            }
        }
        return s;
    }

    /**
     * The statistics of the RBAC network filters with this {@code stat_prefix} ({@code <stat_prefix>.rbac.*}),
     * created on first use. Looked up once per connection.
     */
    @Override
    public NetworkRbacStats networkRbac(String statPrefix) {
        return networkRbac.computeIfAbsent(statPrefix, p -> new NetworkRbacStats(registry, p));
    }

    /**
     * The statistics of the local rate limit network filters with this {@code stat_prefix}
     * ({@code local_rate_limit.<stat_prefix>.*}), created on first use.
     */
    @Override
    public NetworkLocalRateLimitStats networkLocalRateLimit(String statPrefix) {
        return networkLocalRateLimit.computeIfAbsent(statPrefix, p -> new NetworkLocalRateLimitStats(registry, p));
    }

    /**
     * The downstream statistics of the TCP proxy filters with this {@code stat_prefix} ({@code tcp.<stat_prefix>.*}),
     * created on first use. Looked up once per connection.
     */
    @Override
    public TcpProxyStats tcpProxy(String statPrefix) {
        return tcpProxy.computeIfAbsent(statPrefix, p -> new TcpProxyStats(registry, p));
    }

    /** The statistics of the listener at {@code address} ({@link ListenerStats#address}), created on first use. */
    public ListenerStats listener(String address) {
        return listeners.computeIfAbsent(address, a -> new ListenerStats(registry, a, this::proxyProtocol));
    }

    /**
     * The statistics of the PROXY protocol listener filters with this {@code stat_prefix} (empty for none), created
     * on first use.
     */
    public ProxyProtocolStats proxyProtocol(String statPrefix) {
        return proxyProtocol.computeIfAbsent(statPrefix, p -> {
            synchronized (proxyProtocol) {
                if (proxyProtocolErrors == null) {
                    proxyProtocolErrors = ProxyProtocolStats.legacyError(registry);
                }
            }
            return new ProxyProtocolStats(registry, p, proxyProtocolErrors);
        });
    }

    /** Counts a TCP connection's bytes and close; thread-safe. */
    public static final class TcpConnectionMetrics {
        private final MeshMetrics owner;
        private final TcpConnectionInfo info;
        /**
         * The meters labelled as the connection was when counted {@link #opened} (no flags when bytes came before),
         * made on first use.
         */
        private volatile TcpMeters meters;
        private volatile boolean opened;
        private volatile boolean closed;
        /** The totals {@link #relayed} was last given. */
        private long receivedReported;
        private long sentReported;

        TcpConnectionMetrics(MeshMetrics owner, TcpConnectionInfo info) {
            this.owner = owner;
            this.info = info;
        }

        private TcpMeters meters() {
            TcpMeters m = meters;
            if (m == null) {
                m = owner.tcpMetersOf(info, Set.of());
                meters = m;
            }
            return m;
        }

        /** Counts the connection opened, once, with no response flag. */
        public void opened() {
            opened(Set.of());
        }

        /**
         * Counts the connection opened, once, labelled with the response flags set so far (a connect that failed
         * before another succeeded: UF), which its bytes and its close keep, as Istio's stats fix a connection's
         * labels when they first report it.
         */
        public void opened(Set<ResponseFlag> flagsSoFar) {
            if (!opened) {
                opened = true;
                TcpMeters m = owner.tcpMetersOf(info, flagsSoFar);
                meters = m;
                increment(m.opened, 1);
            }
        }

        /** Bytes sent towards the downstream (the response direction). */
        public void sent(long bytes) {
            if (bytes > 0) {
                increment(meters().sent, bytes);
            }
        }

        /** Bytes received from the downstream (the request direction). */
        public void received(long bytes) {
            if (bytes > 0) {
                increment(meters().received, bytes);
            }
        }

        /**
         * Adds the bytes the connection has relayed since the last call, given its totals so far: received from the
         * downstream and sent towards it. For a report every few seconds while it lasts, as Istio's stats add a long
         * connection's bytes every {@code tcp_reporting_duration}, and one at its close.
         */
        public synchronized void relayed(long receivedTotal, long sentTotal) {
            received(receivedTotal - receivedReported);
            sent(sentTotal - sentReported);
            receivedReported = Math.max(receivedReported, receivedTotal);
            sentReported = Math.max(sentReported, sentTotal);
        }

        /**
         * Counts the close once. A connection counted {@link #opened} keeps the labels it was counted with, as
         * Istio's stats fix a connection's labels when they first report it (a flag set since, such as DT, is not
         * among them); one not counted yet (no upstream, a
         * network filter closed it) is counted opened now and closed, labelled with its final response flags (such
         * as UF), as Istio's stats report a connection they had not reported before at its close.
         */
        public void closed(Set<ResponseFlag> flags) {
            if (closed) {
                return;
            }
            closed = true;
            TcpMeters m = opened ? meters() : owner.tcpMetersOf(info, flags);
            if (!opened) {
                opened = true;
                increment(m.opened, 1);
            }
            increment(m.closed, 1);
            if (m.attributes() != null) {
                // as Istio's network filter at the connection's end, with the values evaluated when first reported
                owner.recordCustomMetrics(info.statsOverrides(), m.attributes());
            }
        }
    }

    /** The response_code label of the status codes HTTP defines (100-599), made once rather than per request. */
    private static final String[] RESPONSE_CODES = new String[600];

    static {
        for (int i = 100; i < RESPONSE_CODES.length; i++) {
            RESPONSE_CODES[i] = Integer.toString(i);
        }
    }

    private static String responseCode(int code) {
        return code >= 100 && code < RESPONSE_CODES.length ? RESPONSE_CODES[code] : Integer.toString(code);
    }

    private static String destinationService(StreamInfo s) {
        if (s.destinationService() != null && !s.destinationService().isEmpty()) {
            return s.destinationService();
        }
        // as Istio's stats: the Host header as it is, its port included
        String a = s.authority();
        return a == null || a.isEmpty() || !s.hostHeaderFallback() ? null : a;
    }

    /**
     * As Istio's stats label it: {@code PassthroughCluster} or {@code BlackHoleCluster} for a request through that
     * cluster or through Istio's catch-all route that stands for it ({@code allow_any}, {@code block_all}); else the
     * service name, else, for Istio's inbound passthrough clusters (a port no service declares), the cluster's name,
     * else, outbound, the request's host ({@link #destinationService}), as Istio's client side falls back to it.
     */
    private static String destinationServiceName(StreamInfo s) {
        String name = s.destinationServiceName();
        String cluster = s.upstreamCluster();
        String route = s.routeName();
        if ("block_all".equals(route)) {
            return "BlackHoleCluster";
        }
        if ("allow_any".equals(route)) {
            return "PassthroughCluster";
        }
        if ("PassthroughCluster".equals(cluster) || "BlackHoleCluster".equals(cluster)) {
            return cluster;
        }
        if ((name == null || name.isEmpty()) && cluster != null && cluster.startsWith("InboundPassthroughCluster")) {
            return cluster;
        }
        if ((name == null || name.isEmpty()) && s.direction() == StreamInfo.Direction.OUTBOUND) {
            // as Istio's client side: without a service of the cluster, the name is the request's host too
            return destinationService(s);
        }
        return name;
    }

    /**
     * The TCP meters of a connection labelled with {@code flags}: of its labels, or, under its chain's Istio stats
     * filter's overrides, of its labels and those overrides (null for a metric dropped).
     */
    private TcpMeters tcpMetersOf(TcpConnectionInfo c, Set<ResponseFlag> flags) {
        StatsOverrides o = c.statsOverrides();
        if (o.off()) {
            return TcpMeters.NONE; // no Istio stats filter in its chain, where the configuration has one elsewhere
        }
        if (o.evaluated()) {
            // as Istio's network filter: the dimensions evaluated once, when the connection is first reported
            return tcpMeters(tcpLabels(c, flags).tags(), o, new StatsOverrides.Evaluation(o, c.attributes(flags)));
        }
        return series(tcpMeters, overriddenTcpMeters, tcpLabels(c, flags), o, makeTcpMeters);
    }

    /**
     * The meters of the series labelled {@code l} under the Istio stats filter's overrides {@code o}, made on first
     * use: by its labels where nothing is overridden (looked up before {@code computeIfAbsent}, which takes a lambda
     * per call), else by labels and overrides, a connection manager or chain that drops metrics or labels having its
     * own series (the same meters where they are labelled the same).
     */
    private static <M> M series(Map<IstioLabels, M> plain, Map<Overridden, M> overridden, IstioLabels l,
                                StatsOverrides o, BiFunction<IstioLabels, StatsOverrides, M> make) {
        if (o.isEmpty()) {
            M m = plain.get(l);
            return m != null ? m : plain.computeIfAbsent(l, k -> make.apply(k, o));
        }
        return overridden.computeIfAbsent(new Overridden(l, o), k -> make.apply(k.labels(), k.overrides()));
    }

    private IstioLabels tcpLabels(TcpConnectionInfo c, Set<ResponseFlag> flags) {
        return labels(c.direction(), c.peer(), c.destinationService(), c.destinationServiceName(),
                c.destinationServiceNamespace(), "tcp", null, null, ResponseFlag.format(flags),
                c.downstreamPeerPrincipal(), c.downstreamLocalPrincipal(),
                c.upstreamPeerPrincipal(), c.upstreamLocalPrincipal());
    }

    private IstioLabels labels(StreamInfo.Direction direction, WorkloadInfo peer, String service, String serviceName,
                               String serviceNamespace, String protocol, String responseCode, String grpcStatus,
                               String flags, String peerPrincipal, String localPrincipal,
                               String upstreamPrincipal, String upstreamLocalPrincipal) {
        boolean outbound = direction == StreamInfo.Direction.OUTBOUND;
        if (!outbound) {
            // as Istio's stats on the server side: the service's namespace is this workload's, and without a service
            // from the inbound cluster its name falls back to the request's host, as the service itself does, and
            // then to this workload's canonical service
            serviceNamespace = local.namespace();
            if (service == null || service.isEmpty()) {
                service = local.canonicalService();
            }
            if (serviceName == null || serviceName.isEmpty()) {
                serviceName = service;
            }
        }
        WorkloadInfo source = outbound ? local : peer;
        WorkloadInfo destination = outbound ? peer : local;
        // as Istio's stats: the principals are the first URI SANs of the certificates of the TLS the proxy
        // terminated (server side: the client's is the source's, its own the destination's) or originated (client
        // side: the server's is the destination's, its own the source's); else unknown
        String sourcePrincipal = orUnknown(outbound ? upstreamLocalPrincipal : peerPrincipal);
        String destinationPrincipal = orUnknown(outbound ? upstreamPrincipal : localPrincipal);
        // as Istio's server side (mutual_tls_ = !peer_san.empty() && !local_san.empty()): mutual_tls when both
        // certificates of the TLS the proxy terminated have a URI SAN (both principals), else none; a client
        // certificate without one is none however it was verified
        boolean mutualTls = peerPrincipal != null && !peerPrincipal.isEmpty() && localPrincipal != null
                && !localPrincipal.isEmpty();
        // the peer's namespace is the one its principal names, else its metadata's; on the client side it is the
        // destination service's namespace when the cluster names none (Istio 1.23 on: the cluster's service's first,
        // so that a service without a healthy endpoint keeps its namespace)
        String peerNamespace = spiffeNamespace(outbound ? upstreamPrincipal : peerPrincipal);
        if (peerNamespace == null) {
            peerNamespace = peer.namespace();
        }
        if (outbound && (serviceNamespace == null || serviceNamespace.isEmpty())) {
            serviceNamespace = peerNamespace;
        }
        return new IstioLabels(direction.reporter(),
                source.workload(), outbound ? source.namespace() : peerNamespace, sourcePrincipal, source.app(),
                source.version(), source.canonicalService(), source.canonicalRevision(),
                outbound ? destinationCluster : peer.cluster(),
                destination.workload(), outbound ? peerNamespace : destination.namespace(), destinationPrincipal,
                destination.app(), destination.version(),
                orUnknown(service), orUnknown(serviceName), orUnknown(serviceNamespace),
                destination.canonicalService(), destination.canonicalRevision(),
                // the destination's cluster: this workload's inbound, the peer's (from its endpoint metadata or
                // metadata exchange) outbound, as Istio's stats report it ("unknown" when the peer's is not known)
                outbound ? peer.cluster() : destinationCluster,
                protocol, flags, outbound ? "unknown" : mutualTls ? "mutual_tls" : "none", responseCode, grpcStatus);
    }

    /**
     * The namespace an Istio identity names ({@code spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT}), or null
     * for none, as Istio's stats read a peer's namespace from its principal.
     */
    static String spiffeNamespace(String principal) {
        if (principal == null) {
            return null;
        }
        int begin = principal.indexOf("/ns/");
        if (begin < 0) {
            return null;
        }
        begin += 4;
        int end = principal.indexOf('/', begin);
        String ns = end < 0 ? principal.substring(begin) : principal.substring(begin, end);
        return ns.isEmpty() ? null : ns;
    }

    private static String orUnknown(String s) {
        return s == null || s.isEmpty() ? "unknown" : s;
    }

    /** The meters of a series, null for a metric the overrides drop, each with the labels they keep. */
    private RequestMeters newRequestMeters(IstioLabels l, StatsOverrides o) {
        Tags tags = l.tags();
        return new RequestMeters(o.drops(StatsOverrides.Metric.REQUESTS_TOTAL) ? null
                : Counter.builder("istio_requests").description(REQUESTS_HELP)
                        .tags(o.tags(StatsOverrides.Metric.REQUESTS_TOTAL, tags)).register(registry),
                histogram(o, StatsOverrides.Metric.REQUEST_DURATION_MILLISECONDS,
                        "istio_request_duration_milliseconds", DURATION_HELP, tags),
                histogram(o, StatsOverrides.Metric.REQUEST_BYTES, "istio_request_bytes", REQUEST_BYTES_HELP, tags),
                histogram(o, StatsOverrides.Metric.RESPONSE_BYTES, "istio_response_bytes", RESPONSE_BYTES_HELP, tags));
    }

    private DistributionSummary histogram(StatsOverrides o, StatsOverrides.Metric metric, String name,
                                          String description, Tags tags) {
        return o.drops(metric) ? null : histogram(name, description, o.tags(metric, tags));
    }

    private DistributionSummary histogram(String name, String description, Tags tags) {
        return histogram(registry, name, description, tags);
    }

    /**
     * A histogram with Envoy's default buckets ({@link #BUCKETS}), scraped as {@code NAME_bucket{le=...}},
     * {@code NAME_sum} and {@code NAME_count}: Istio's and Envoy's own (such as
     * {@code envoy_cluster_upstream_rq_time{cluster_name="C"}}, Envoy's {@code cluster.C.upstream_rq_time}).
     */
    static DistributionSummary histogram(MeterRegistry registry, String name, String description, Tags tags) {
        return DistributionSummary.builder(name).description(description).serviceLevelObjectives(BUCKETS)
                .tags(tags).register(registry);
    }

    private TcpMeters newTcpMeters(IstioLabels l, StatsOverrides o) {
        return tcpMeters(l.tags(), o, null);
    }

    /**
     * The TCP counters of a series labelled {@code tags}; with {@code s}, the values of {@code o}'s expressions for
     * the connection, the labels its dimensions give it (one connection's series, looked up in the registry).
     */
    private TcpMeters tcpMeters(Tags tags, StatsOverrides o, StatsOverrides.Evaluation s) {
        return new TcpMeters(counter(o, StatsOverrides.Metric.TCP_CONNECTIONS_OPENED_TOTAL,
                "istio_tcp_connections_opened", "TCP connections opened", tags, s),
                counter(o, StatsOverrides.Metric.TCP_CONNECTIONS_CLOSED_TOTAL, "istio_tcp_connections_closed",
                        "TCP connections closed", tags, s),
                counter(o, StatsOverrides.Metric.TCP_SENT_BYTES_TOTAL, "istio_tcp_sent_bytes",
                        "Bytes sent towards the downstream on TCP connections", tags, s),
                counter(o, StatsOverrides.Metric.TCP_RECEIVED_BYTES_TOTAL, "istio_tcp_received_bytes",
                        "Bytes received from the downstream on TCP connections", tags, s), s);
    }

    /** A counter with the labels {@code o} keeps for {@code metric}; null when {@code o} drops it. */
    private Counter counter(StatsOverrides o, StatsOverrides.Metric metric, String name, String description,
                            Tags tags) {
        return counter(o, metric, name, description, tags, null);
    }

    /** The same, with the labels {@code o}'s dimensions give it for {@code s} when not null. */
    private Counter counter(StatsOverrides o, StatsOverrides.Metric metric, String name, String description,
                            Tags tags, StatsOverrides.Evaluation s) {
        if (o.drops(metric)) {
            return null;
        }
        return s == null ? counter(name, description, o.tags(metric, tags))
                : counter(named(name, o, metric), description, o.tags(metric, tags, s));
    }

    private Counter counter(String name, String description, Tags tags) {
        return Counter.builder(name).tags(tags).description(description).register(registry);
    }

    private MessageMeters newMessageMeters(IstioLabels l, StatsOverrides o) {
        Tags tags = l.tags();
        StatsOverrides.Metric req = StatsOverrides.Metric.REQUEST_MESSAGES_TOTAL;
        StatsOverrides.Metric resp = StatsOverrides.Metric.RESPONSE_MESSAGES_TOTAL;
        return new MessageMeters(counter(o, req, "istio_request_messages", REQUEST_MESSAGES_HELP, tags),
                counter(o, resp, "istio_response_messages", RESPONSE_MESSAGES_HELP, tags));
    }

    /** A series' labels under a connection manager's metric overrides. */
    private record Overridden(IstioLabels labels, StatsOverrides overrides) {}

    /** A series' gRPC message counters; null for a metric dropped. */
    private record MessageMeters(Counter requests, Counter responses) {}

    /** A series' meters; null for a metric its connection manager's Istio stats filter drops. */
    private record RequestMeters(Counter requests, DistributionSummary duration, DistributionSummary requestBytes,
                                 DistributionSummary responseBytes) {}

    /**
     * A TCP series' counters; null for a metric its filter chain's Istio stats filter drops.
     *
     * @param attributes the values of the overrides' expressions for the connection, evaluated once when it was first
     *     counted, which its definitions' metrics are recorded with at its close; null for a series not evaluated
     */
    record TcpMeters(Counter opened, Counter closed, Counter sent, Counter received,
                     StatsOverrides.Evaluation attributes) {
        /** A connection's meters where none of Istio's TCP metrics is recorded. */
        static final TcpMeters NONE = new TcpMeters(null, null, null, null, null);
    }
}
