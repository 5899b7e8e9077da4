package dev.inmesh.runtime.mesh;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.accesslog.AccessLog;
import dev.inmesh.runtime.accesslog.AccessLogSink;
import dev.inmesh.runtime.admin.AdminServer;
import dev.inmesh.runtime.admin.ClusterManagerStatus;
import dev.inmesh.runtime.config.AdsConfigSource;
import dev.inmesh.runtime.config.ConfigSource;
import dev.inmesh.runtime.config.FileConfigSource;
import dev.inmesh.runtime.identity.IstioCaClient;
import dev.inmesh.runtime.xds.sds.SdsSecretManager;
import dev.inmesh.runtime.xds.ads.NodeBuilder;
import dev.inmesh.runtime.identity.IstioCaOptions;
import dev.inmesh.runtime.inbound.InboundHandler;
import dev.inmesh.runtime.inbound.InboundTls;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.tls.WorkloadIdentity;
import dev.inmesh.runtime.xds.ResourceBundle;
import dev.inmesh.runtime.xds.ads.AdsOptions;
import dev.inmesh.runtime.xds.ads.NodeOptions;
import dev.inmesh.runtime.xds.ads.XdsStatusJson;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.util.ArrayList;
import java.util.TreeMap;
import java.util.Map;
import dev.inmesh.runtime.outbound.MeshHttpClient;
import dev.inmesh.runtime.outbound.MeshHttpProxy;
import dev.inmesh.runtime.outbound.MeshJavaHttpClient;
import dev.inmesh.runtime.outbound.OutboundDispatcher;
import dev.inmesh.runtime.outbound.OutboundRouting;
import dev.inmesh.runtime.router.Router;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.stats.PeerMetadata;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.upstream.UpstreamEnvironment;
import dev.inmesh.runtime.tracing.TraceReporting;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.WebSocketClient;
import io.vertx.core.http.WebSocketClientOptions;
import io.vertx.core.internal.http.HttpClientInternal;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import java.util.logging.Logger;

/**
 * The mesh of one JVM: one snapshot holder fed by the config source, one shared {@link Router}, the in-JVM outbound
 * client and the inbound handler, and the observers (metrics, access log) every finished request is given to.
 */
public final class DefaultMesh implements Mesh {
    private static final Logger LOG = Logger.getLogger(DefaultMesh.class.getName());

    private final Vertx vertx;
    private final MeshOptions options;
    /** The settings in the pod the mesh runs in, with the pod's labels and node metadata. */
    private final PodInfo.InPod pod;
    private final SnapshotHolder snapshots;
    private final OutboundRouting routing;
    private final Router router;
    private final OutboundDispatcher dispatcher;
    private final List<Consumer<StreamInfo>> observers = new CopyOnWriteArrayList<>();
    private final List<HttpClient> clients = new CopyOnWriteArrayList<>();
    private final List<WebSocketClient> webSocketClients = new CopyOnWriteArrayList<>();
    private final WorkloadInfo local;
    /** This workload's {@code x-envoy-peer-metadata} value. */
    private final String peerMetadata;
    private final PrometheusMeterRegistry registry;
    /** The names the admin's {@code /stats/prometheus} gives the tags of Envoy's statistics (the bootstrap's). */
    private final dev.inmesh.runtime.admin.StatsTags statsTags;
    private final MeshMetrics metrics;
    private final AccessLog accessLog;
    /** Where the spans of the connection managers that trace go, both ways. */
    private final TraceReporting tracing;
    private ConfigSource configSource;
    /** The SDS client of a configuration file's TLS contexts, or null. */
    private SdsSecretManager sds;
    private AdminServer admin;
    /** The HTTP proxy for the JVM's other clients, or null when off ({@code inmesh.http-proxy.port} -1). */
    private MeshHttpProxy httpProxy;
    private IstioCaClient caClient;
    /** Whether {@link #start()} was called. */
    private volatile boolean started;
    /** The close, once {@link #close()} was called: a second call returns it. */
    private volatile Future<Void> closed;

    DefaultMesh(Vertx vertx, MeshOptions options) {
        this(vertx, PodInfo.InPod.read(options, System.getenv(), PodInfo.POD_INFO_DIR, PodInfo.SECRETS_DIR,
                LOG::warning));
    }

    /** The mesh of {@code pod}'s settings, in that pod. */
    DefaultMesh(Vertx vertx, PodInfo.InPod pod) {
        MeshOptions options = pod.options();
        this.vertx = vertx;
        this.options = options;
        this.pod = pod;
        String workload = options.getWorkloadName().isEmpty() ? options.getApp() : options.getWorkloadName();
        this.local = PodInfo.workload(workload, options.getNamespace(), options.getApp(), options.getVersion(),
                pod.labels());
        if (options.isMetricsEnabled()) {
            this.registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
            // a bootstrap's stats_config (stats_matcher, histogram_bucket_settings), before any meter exists, and its
            // stats tags, as the standalone proxy applies them
            Path config = options.getConfigFile() == null ? null : Path.of(options.getConfigFile());
            dev.inmesh.runtime.admin.BootstrapStats.configure(registry, config);
            this.statsTags = dev.inmesh.runtime.admin.StatsTags.ofFile(config);
            this.metrics = MeshMetrics.create(registry, local, options.getClusterId(), pod.istioVersion());
            observers.add(metrics::record);
        } else {
            this.registry = null;
            this.statsTags = dev.inmesh.runtime.admin.StatsTags.ISTIO;
            this.metrics = null;
        }
        UpstreamEnvironment env = UpstreamEnvironment.of(vertx, metrics == null ? null : metrics::upstream);
        this.snapshots = new SnapshotHolder(env);
        if (metrics != null) {
            snapshots.connectionManagerStats(metrics::connectionManager);
        }
        this.routing = new OutboundRouting(options.getOutboundTrafficPolicy(), env,
                metrics == null ? null : metrics::connectionManager);
        if (options.isAccessLogEnabled()) {
            this.accessLog = AccessLog.create(options.getAccessLogFormat() == MeshOptions.AccessLogFormat.JSON
                    ? AccessLog.Format.JSON : AccessLog.Format.TEXT, AccessLogSink.stdout());
        } else {
            this.accessLog = null;
        }
        // a request goes to its connection manager's own access_log when it names one, else to the mesh's setting
        observers.add(dev.inmesh.runtime.accesslog.AccessLogs.observer(accessLog));
        Consumer<StreamInfo> observer = info -> {
            for (Consumer<StreamInfo> o : observers) {
                o.accept(info);
            }
        };
        this.peerMetadata = PeerMetadata.encode(local, options.getClusterId(), options.getPodName());
        this.router = new Router(vertx, new Router.Options(options.isTrustEnvoyHeaders(), true, local,
                peerMetadata, nodeId()), observer);
        if (metrics != null) {
            router.upstreamStats(metrics::upstream);
        }
        this.tracing = new TraceReporting(vertx, () -> snapshots.current().clusterManager(),
                TraceReporting.Local.of(local, nodeId(), pod.bootstrap()), registry);
        // each tracer's statistics once a configuration traces with it, as Envoy builds a tracer's driver
        snapshots.onUpdate(s -> tracing.built(s.tracers()));
        tracing.built(snapshots.current().tracers());
        router.tracing(tracing);
        this.dispatcher = new OutboundDispatcher(snapshots, routing, router, options.getPodIp(), this::unavailable);
    }

    /**
     * Istio's sidecar node id: {@code sidecar~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local}, the id of its xDS node
     * too; the {@code id} of the configuration file's bootstrap {@code node} when it has one, Envoy's local node (the
     * admin's, and the {@code x-envoy-peer-metadata-id} sent, as Istio's sidecar sends its node's).
     */
    public String nodeId() {
        if (pod.bootstrap() != null && !pod.bootstrap().getId().isEmpty()) {
            return pod.bootstrap().getId();
        }
        return NodeOptions.of(podName(options, local), local.namespace(), options.getPodIp()).nodeId();
    }

    /** The pod's name, of the node id: {@code inmesh.pod.name}, else the workload's, else {@code inmesh}. */
    private static String podName(MeshOptions options, WorkloadInfo local) {
        if (!options.getPodName().isEmpty()) {
            return options.getPodName();
        }
        return local.workload().equals(WorkloadInfo.UNKNOWN.workload()) ? "inmesh" : local.workload();
    }

    /**
     * Starts the admin server and, when the settings ask for it, the CA client that fills the identity directory,
     * then the config source once the first certificate is written: start fails when that cannot be had. It completes
     * once the first configuration's clusters are initialized (those with health checks had their first round,
     * {@link SnapshotHolder#initialized()}; over ADS, the listeners a configuration applied meanwhile adds or changes
     * once they have their route configurations), as Envoy starts its workers only once its cluster manager has
     * initialized and its listeners have warmed. An ADS source whose initial fetch timeouts pass with nothing from the
     * server applies an empty configuration, as Envoy's subscriptions' init targets are ready on the fetch timeout:
     * the start completes, LIVE.
     * A start that failed meanwhile (the source never started) waits for no configuration.
     */
    @Override
    public synchronized Future<Void> start() {
        if (closed != null) {
            return Future.failedFuture(new IllegalStateException("start(): the mesh is closed; create a new one"));
        }
        if (started) {
            return Future.failedFuture(new IllegalStateException("start(): the mesh was started already"));
        }
        started = true;
        IstioCaOptions ca;
        try {
            ca = IstioCaOptions.fromSettings(options, null, options.getClusterId(), System.getenv());
        } catch (IllegalArgumentException e) {
            return Future.failedFuture(e);
        }
        WorkloadIdentity identity = WorkloadIdentity.of(options.getIdentityDir());
        // a configuration whose TLS reads the files waits for them as it is parsed (off the event loop)
        WorkloadIdentity parsed = WorkloadIdentity.forParsing(identity, ca != null, options.getIdentityWaitSeconds());
        if (options.getXdsAddress() != null) {
            AdsOptions ads = adsOptions();
            // the secrets of TLS contexts whose sds_config is ads: {} come on the ADS stream (no SDS cluster here)
            sds = new SdsSecretManager(vertx, NodeBuilder.build(ads.node()), Map.of());
            configSource = new AdsConfigSource(vertx, ads, ResourceBundle.EMPTY, parsed).sds(sds);
        } else if (options.getConfigFile() != null) {
            // a bootstrap's static clusters (Istio's sds-grpc) tell it where the TLS contexts' secrets come from
            // the node of the streams: the bootstrap's, as Envoy sends its local node, else the pod's sidecar node
            sds = new SdsSecretManager(vertx, pod.bootstrap() != null ? NodeBuilder.local(pod.bootstrap())
                    : NodeBuilder.build(nodeOptions(options, local, options.getClusterId(), "NONE", pod.labels(),
                            pod.metadata())), Map.of(),
                    Duration.ofSeconds(options.getIdentityWaitSeconds()));
            configSource = new FileConfigSource(vertx, Path.of(options.getConfigFile()),
                    FileConfigSource.DEFAULT_POLL_INTERVAL, parsed).sds(sds);
        }
        if (configSource == null) {
            // allowed (a mesh may serve only its admin and identity), but a mistake where routes were expected
            LOG.warning("no mesh configuration: neither inmesh.config.file (INMESH_CONFIG_FILE) nor "
                    + "inmesh.xds.address (INMESH_XDS_ADDRESS) is set, so there are no listeners, routes or clusters "
                    + "and the mesh's clients send each request as a plain client would");
        }
        Future<Void> admin = startAdmin(identity);
        if (options.getHttpProxyPort() >= 0) {
            httpProxy = new MeshHttpProxy(vertx, httpClient(new HttpClientOptions().setKeepAlive(true)),
                    options.getHttpProxyPort());
            Future<Void> proxyBound = httpProxy.start();
            admin = Future.all(admin, proxyBound).mapEmpty();
        }
        Future<Void> certificate = Future.succeededFuture();
        if (ca != null) {
            caClient = new IstioCaClient(vertx, ca);
            certificate = caClient.start();
        }
        Promise<Void> started = Promise.promise();
        java.util.concurrent.atomic.AtomicBoolean failed = new java.util.concurrent.atomic.AtomicBoolean();
        Future<Void> config = configSource == null ? certificate
                : certificate.compose(v -> failed.get() ? Future.succeededFuture() : configSource.start(snapshots))
                        .compose(v -> snapshots.ready() ? snapshots.initialized() : Future.succeededFuture());
        admin.onFailure(e -> abandon(started, failed, e));
        config.onFailure(e -> abandon(started, failed, e));
        Future.all(admin, config).onSuccess(v -> {
            if (closed != null) {
                // closed while its clusters initialized: their checkers stopped, which ended the wait, not a start
                started.tryFail(new IllegalStateException("start(): the mesh was closed before it started"));
            } else {
                started.tryComplete();
            }
        });
        return started.future();
    }

    /**
     * A start that failed lets go of what it started (the admin server, the configuration source and its control
     * plane stream, the CA client), as a server whose bind fails holds nothing, then fails with {@code cause}.
     */
    private void abandon(Promise<Void> started, java.util.concurrent.atomic.AtomicBoolean failed, Throwable cause) {
        if (failed.compareAndSet(false, true)) {
            close().onComplete(ar -> started.tryFail(cause));
        }
    }

    private Future<Void> startAdmin(WorkloadIdentity identity) {
        if (options.getAdminPort() < 0) {
            return Future.succeededFuture();
        }
        admin = AdminServer.builder(vertx).snapshots(snapshots).registry(registry).statsTags(statsTags)
                .clusterStatus(new ClusterManagerStatus(snapshots)).nodeId(nodeId())
                .node(() -> configSource instanceof AdsConfigSource ads ? ads.node()
                        : pod.bootstrap() != null ? NodeBuilder.local(pod.bootstrap()) : null)
                .configPath(options.getConfigFile())
                .xdsStatus(() -> configSource instanceof AdsConfigSource ads && ads.status() != null
                        ? XdsStatusJson.encode(ads.status()) : null)
                .dynamicState(() -> configSource instanceof AdsConfigSource ads ? ads.dynamicState() : null)
                .identity(identity).sds(sds)
                .mount(new AdminServer.Mount(options.getAdminHost(), options.getAdminPort(),
                        AdminServer.Mount.admin().endpoints()))
                .build();
        return admin.start();
    }

    /** This workload, as its metrics and its peer metadata name it. */
    WorkloadInfo workload() {
        return local;
    }

    /** This workload's {@code x-envoy-peer-metadata} value. */
    String peerMetadata() {
        return peerMetadata;
    }

    /**
     * The ADS options of this mesh's settings, its node the sidecar node of its pod, with the id and cluster of the
     * configuration file's bootstrap {@code node} where it gives them ({@link NodeOptions#withBootstrap}).
     */
    AdsOptions adsOptions() {
        AdsOptions ads = adsOptions(options, local, options.getClusterId(), "NONE", pod.labels(), pod.metadata());
        return ads.withNode(ads.node().withBootstrap(pod.bootstrap()));
    }

    /** Istio's sidecar node of the workload, as {@link #adsOptions} presents it (and the SDS client). */
    private static NodeOptions nodeOptions(MeshOptions options, WorkloadInfo local, String clusterId,
                                           String interceptionMode, Map<String, String> podLabels,
                                           Map<String, String> istioMeta) {
        // the labels the workload has: none for an app or version not known (WorkloadInfo's "unknown")
        Map<String, String> labels = new TreeMap<>(podLabels);
        if (!local.app().equals(WorkloadInfo.UNKNOWN.app())) {
            labels.put("app", local.app());
        }
        if (!local.version().equals(WorkloadInfo.UNKNOWN.version())) {
            labels.put("version", local.version());
        }
        return new NodeOptions(podName(options, local), local.namespace(), options.getPodIp(), null,
                clusterId, null, null, labels, local.workload(), interceptionMode, null, Map.of())
                .withIstioMeta(istioMeta);
    }

    /**
     * The ADS options of the settings {@code options} ({@code inmesh.xds.*}: the server, a fallback, TLS with a CA
     * and a token) for workload {@code local}: its node is Istio's sidecar node of that pod, with the app and version
     * labels and {@code interceptionMode} (Istio's {@code INTERCEPTION_MODE}: {@code NONE} in process,
     * {@code REDIRECT} or {@code TPROXY} behind the rules).
     */
    public static AdsOptions adsOptions(MeshOptions options, WorkloadInfo local, String clusterId,
                                        String interceptionMode) {
        return adsOptions(options, local, clusterId, interceptionMode, Map.of(), Map.of());
    }

    /**
     * The same, the node carrying all the pod's labels {@code podLabels} (Istio's agent's {@code LABELS}) beside the
     * app and version labels the workload goes by, and the node metadata {@code istioMeta}
     * ({@link NodeOptions#withIstioMeta}).
     */
    public static AdsOptions adsOptions(MeshOptions options, WorkloadInfo local, String clusterId,
                                        String interceptionMode, Map<String, String> podLabels,
                                        Map<String, String> istioMeta) {
        List<AdsOptions.XdsServer> servers = new ArrayList<>();
        servers.add(server(options, options.getXdsAddress()));
        if (options.getXdsFallbackAddress() != null) {
            servers.add(server(options, options.getXdsFallbackAddress()));
        }
        NodeOptions node = nodeOptions(options, local, clusterId, interceptionMode, podLabels, istioMeta);
        return new AdsOptions(servers, node, Duration.ofSeconds(options.getXdsInitialFetchTimeoutSeconds()), null,
                null, null, 0, null, null, options.isXdsDelta(), null);
    }

    private static AdsOptions.XdsServer server(MeshOptions options, String address) {
        return AdsOptions.XdsServer.of("inmesh.xds.address", address,
                options.getXdsCaFile() == null ? null : Path.of(options.getXdsCaFile()),
                options.getXdsTokenFile() == null ? null : Path.of(options.getXdsTokenFile()));
    }

    /**
     * Why the mesh's clients cannot take a request now, or null when they can: as a sidecar that does not listen yet
     * (or any more) refuses the application's connections, a request made before the first configuration is applied
     * and its clusters initialized, or after the mesh closed, fails, rather than going past the mesh to the address
     * it names.
     */
    private String unavailable() {
        if (closed != null) {
            return "the mesh is closed";
        }
        if (!started) {
            return "the mesh is not started: send requests once mesh.start() has completed";
        }
        if (!isReady()) {
            return snapshots.ready()
                    ? "the mesh is initializing (its clusters' first health checks, its listeners' route "
                            + "configurations): send requests once mesh.start() has completed"
                    : "the mesh has no configuration yet: send requests once mesh.start() has completed";
        }
        return null;
    }

    @Override
    public synchronized Future<Void> close() {
        if (closed != null) {
            return closed;
        }
        Promise<Void> done = Promise.promise();
        closed = done.future(); // from now on, new requests fail
        List<Future<Void>> closing = new ArrayList<>();
        for (HttpClient c : clients) {
            closing.add(c.close());
        }
        for (WebSocketClient c : webSocketClients) {
            closing.add(c.close());
        }
        Future<Void> source = configSource == null ? Future.succeededFuture() : configSource.close();
        closing.add(source);
        if (admin != null) {
            closing.add(admin.close());
        }
        if (httpProxy != null) {
            closing.add(httpProxy.close());
        }
        if (caClient != null) {
            closing.add(caClient.close());
        }
        if (sds != null) {
            // once the source's reload in flight is over (it may still ask for a secret)
            SdsSecretManager secrets = sds;
            closing.add(source.eventually(() -> {
                secrets.close();
                return Future.succeededFuture();
            }));
        }
        tracing.close(); // what is buffered goes now, while the clusters are there
        Future.join(closing).eventually(() -> {
            routing.close();
            snapshots.close();
            return Future.succeededFuture();
        }).<Void>mapEmpty().onComplete(done);
        return closed;
    }

    @Override
    public boolean isReady() {
        // not once closed (a start that failed closes the mesh, its configuration applied or not): its requests fail
        return closed == null && (snapshots.initialized().succeeded()
                || options.getConfigFile() == null && options.getXdsAddress() == null);
    }

    @Override
    public WebClient webClient() {
        return webClient(new WebClientOptions());
    }

    @Override
    public WebClient webClient(WebClientOptions options) {
        return WebClient.wrap(httpClient(options), options);
    }

    @Override
    public HttpClient httpClient() {
        return httpClient(new HttpClientOptions());
    }

    @Override
    public HttpClient httpClient(HttpClientOptions options) {
        // a pool checker of its own, so that its close cancels no other timer (PoolCheckerGuard)
        HttpClientInternal plain = (HttpClientInternal) vertx.httpClientBuilder().with(options)
                .with(dev.inmesh.runtime.upstream.PoolCheckerGuard.guarded(options, new io.vertx.core.http.PoolOptions()))
                .build();
        MeshHttpClient client = new MeshHttpClient(plain, dispatcher);
        // held until closed, by its caller or by the mesh's close: Vert.x would close a client nobody references
        // with its requests in flight (mesh.webClient().get(..).send() references none); once closed, let it go
        clients.add(client);
        plain.closeFuture().onComplete(done -> clients.remove(client));
        return client;
    }

    @Override
    public java.net.http.HttpClient javaHttpClient() {
        return javaHttpClient(java.net.http.HttpClient.Redirect.NEVER);
    }

    @Override
    public java.net.http.HttpClient javaHttpClient(java.net.http.HttpClient.Redirect followRedirects) {
        return new MeshJavaHttpClient((HttpClientInternal) httpClient(), followRedirects);
    }

    @Override
    public WebSocketClient webSocketClient() {
        return webSocketClient(new WebSocketClientOptions());
    }

    @Override
    public WebSocketClient webSocketClient(WebSocketClientOptions options) {
        dev.inmesh.runtime.outbound.MeshWebSocketClient[] made = {null};
        made[0] = new dev.inmesh.runtime.outbound.MeshWebSocketClient(vertx, options, dispatcher,
                () -> webSocketClients.remove(made[0]));
        // held until closed, as the HTTP clients
        webSocketClients.add(made[0]);
        return made[0];
    }

    /** The secrets fetched over SDS, or null when no bootstrap names an SDS cluster. */
    SdsSecretManager sds() {
        return sds;
    }

    /** How many of the clients the mesh made are still open (held by the mesh until they close). */
    public int openClients() {
        return clients.size();
    }

    @Override
    public Handler<HttpServerRequest> inbound(Handler<HttpServerRequest> handler) {
        return new InboundHandler(handler, snapshots, info -> {
            for (Consumer<StreamInfo> o : observers) {
                o.accept(info);
            }
        }, peerMetadata, nodeId(), metrics == null ? null : metrics::connectionManager).tracing(tracing)
                .networkStats(metrics)
                .tcpConnections(metrics == null ? null : metrics::tcpConnection,
                        accessLog == null ? null : accessLog::log);
    }

    @Override
    public HttpServerOptions inboundServerOptions(HttpServerOptions base) {
        if (!snapshots.ready() && (options.getConfigFile() != null || options.getXdsAddress() != null)) {
            throw new IllegalStateException("inboundServerOptions: the mesh has no configuration yet, whose inbound "
                    + "filter chains say whether the port takes mTLS: call it once start() has completed");
        }
        return InboundTls.serverOptions(snapshots, base, options.getPodIp());
    }

    @Override
    public int adminPort() {
        return admin == null ? -1 : admin.port(0);
    }

    @Override
    public int httpProxyPort() {
        return httpProxy == null ? -1 : httpProxy.port();
    }

    /** The metrics registry ({@code /stats/prometheus}), or null when metrics are off. */
    public PrometheusMeterRegistry registry() {
        return registry;
    }

    /** Where the mesh's spans go, with Envoy's {@code tracing.zipkin.*} and {@code tracing.opentelemetry.*}. */
    public TraceReporting tracing() {
        return tracing;
    }

    /** Adds an observer of finished requests (metrics, access log, tests). */
    public void addObserver(Consumer<StreamInfo> observer) {
        observers.add(observer);
    }

    /** The snapshot holder, for config sources and the admin server. */
    public SnapshotHolder snapshots() {
        return snapshots;
    }

    public MeshOptions options() {
        return options;
    }

    static Logger log() {
        return LOG;
    }
}
