package dev.inmesh.interception.proxy;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inmesh.runtime.router.Router;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.tls.WorkloadIdentity;
import dev.inmesh.runtime.upstream.UpstreamEnvironment;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.Parsers;
import dev.inmesh.runtime.xds.ResourceBundle;
import dev.inmesh.runtime.xds.sds.SdsSecretManager;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.file.FileSystemOptions;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.logging.Logger;

/**
 * {@code inmesh proxy -c CONFIG}: the standalone proxy, started in this order: Vert.x on the native epoll transport,
 * the configuration read into a snapshot, the shared router with its observer, every listener bound, the DNS proxy
 * (when asked), the admin hook, then (when asked) root dropped for the proxy's user on every thread. {@link #close()}
 * undoes it.
 */
public final class StandaloneProxy implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(StandaloneProxy.class.getName());

    /**
     * How to run.
     *
     * @param config an Envoy bootstrap (or any document {@link EnvoyConfigReader} reads), JSON or YAML
     * @param uid the user to become after binding, or -1 to stay
     * @param gid the group to become after binding, or -1 (then the uid's number)
     * @param eventLoops Vert.x event loops, or 0 for one per core
     * @param observer gets every finished request (metrics, access log)
     * @param admin starts the admin, health and stats endpoints
     * @param tcpMetrics Istio's TCP metrics of a relayed connection, or null for none
     * @param upstreamStats Envoy's per-cluster upstream statistics by cluster name (what the in-JVM mode's router
     *                      counts too), or null for none
     * @param tcpAccessLog gets every finished tcp_proxy connection (its access log line; not a request, so not
     *                     given to {@code observer}), or null for none
     * @param local this workload (unknown when null)
     * @param peerMetadata this workload's {@code x-envoy-peer-metadata}, sent on outbound requests and answered to an
     *                     inbound caller that sent its own, or null to speak no metadata exchange
     * @param peerMetadataId this workload's {@code x-envoy-peer-metadata-id}, sent and answered alike, or null
     * @param drainTime how long a listener drain lasts (Envoy's {@code --drain-time-s}): that of the connections of
     *                  a listener or filter chain a configuration removes or changes, and of {@code /drain_listeners};
     *                  or null for {@link ProxyServer#DEFAULT_DRAIN_TIME} (the termination drain at SIGTERM is
     *                  {@link #drainAndClose(Duration, boolean, Duration)}'s)
     * @param connectionManagerStats Envoy's statistics of an HTTP connection manager ({@code http.<prefix>.*}), or
     *                               null for none
     * @param listenerStats Envoy's statistics of a listener by its address ({@code listener.<address>.*}), or null
     *                      for none
     * @param xds the control plane to take the configuration from over ADS (the bootstrap {@code config}, which may
     *            then be null, adds its static resources and admin address), or null for the file alone
     * @param identity the workload identity directory whose files Istio's SDS secrets {@code default} and
     *                 {@code ROOTCA} name (its inbound mTLS chains, its ISTIO_MUTUAL clusters), or null to refuse them
     * @param networkStats Envoy's statistics of the network filters (RBAC, local rate limit, TCP proxy) by stat
     *                     prefix, or null for none
     * @param transport the sockets' I/O transport, or null for epoll, else NIO when epoll cannot load
     * @param dns the DNS proxy to run (Istio's agent's, with {@code ISTIO_META_DNS_CAPTURE}), or null for none
     */
    public record Settings(Path config, int uid, int gid, int eventLoops, Consumer<StreamInfo> observer,
                           AdminHook admin, java.util.function.Function<dev.inmesh.runtime.stats.TcpConnectionInfo,
                                   dev.inmesh.runtime.stats.MeshMetrics.TcpConnectionMetrics> tcpMetrics,
                           java.util.function.Function<String, dev.inmesh.runtime.stats.UpstreamStats> upstreamStats,
                           Consumer<dev.inmesh.runtime.stats.TcpStreamInfo> tcpAccessLog,
                           dev.inmesh.runtime.stats.WorkloadInfo local, String peerMetadata, String peerMetadataId,
                           java.time.Duration drainTime,
                           java.util.function.Function<dev.inmesh.api.config.listener.HttpConnectionManager,
                                   dev.inmesh.runtime.stats.DownstreamStats> connectionManagerStats,
                           java.util.function.Function<String, dev.inmesh.runtime.stats.ListenerStats>
                                   listenerStats,
                           dev.inmesh.runtime.xds.ads.AdsOptions xds, WorkloadIdentity identity,
                           dev.inmesh.runtime.stats.NetworkFilterStats networkStats, IoTransport transport,
                           Dns dns) {
        public Settings {
            observer = observer == null ? s -> { } : observer;
            admin = admin == null ? AdminHook.NONE : admin;
            gid = gid < 0 ? uid : gid;
            local = local == null ? dev.inmesh.runtime.stats.WorkloadInfo.UNKNOWN : local;
            drainTime = drainTime == null ? ProxyServer.DEFAULT_DRAIN_TIME : drainTime;
        }

        /**
         * The settings to run {@code config} with no TCP metrics, upstream statistics or TCP access log, as a workload
         * that speaks no metadata exchange, with the default drain time; the {@code with} methods add the rest.
         */
        public Settings(Path config, int uid, int gid, int eventLoops, Consumer<StreamInfo> observer,
                        AdminHook admin) {
            this(config, uid, gid, eventLoops, observer, admin, null, null, null, null, null, null, null, null,
                    null, null, null, null, null, null);
        }

        /** These settings with Istio's TCP metrics and Envoy's per-cluster upstream statistics. */
        public Settings withStats(java.util.function.Function<dev.inmesh.runtime.stats.TcpConnectionInfo,
                                          dev.inmesh.runtime.stats.MeshMetrics.TcpConnectionMetrics> tcpMetrics,
                                  java.util.function.Function<String, dev.inmesh.runtime.stats.UpstreamStats>
                                          upstreamStats) {
            return new Settings(config, uid, gid, eventLoops, observer, admin, tcpMetrics, upstreamStats,
                    tcpAccessLog, local, peerMetadata, peerMetadataId, drainTime, connectionManagerStats,
                    listenerStats, xds, identity, networkStats, transport, dns);
        }

        /**
         * With Envoy's statistics of the HTTP connection managers ({@code http.<prefix>.*}) and of the listeners
         * ({@code listener.<address>.*}).
         */
        public Settings withDownstreamStats(
                java.util.function.Function<dev.inmesh.api.config.listener.HttpConnectionManager,
                        dev.inmesh.runtime.stats.DownstreamStats> connectionManagerStats,
                java.util.function.Function<String, dev.inmesh.runtime.stats.ListenerStats> listenerStats) {
            return new Settings(config, uid, gid, eventLoops, observer, admin, tcpMetrics, upstreamStats,
                    tcpAccessLog, local, peerMetadata, peerMetadataId, drainTime, connectionManagerStats,
                    listenerStats, xds, identity, networkStats, transport, dns);
        }

        /**
         * With Envoy's statistics of the network filters: the RBAC filters' ({@code <stat_prefix>.rbac.*}), the local
         * rate limit filters' ({@code local_rate_limit.<stat_prefix>.*}) and the TCP proxies'
         * ({@code tcp.<stat_prefix>.*}).
         */
        public Settings withNetworkStats(dev.inmesh.runtime.stats.NetworkFilterStats networkStats) {
            return new Settings(config, uid, gid, eventLoops, observer, admin, tcpMetrics, upstreamStats,
                    tcpAccessLog, local, peerMetadata, peerMetadataId, drainTime, connectionManagerStats,
                    listenerStats, xds, identity, networkStats, transport, dns);
        }

        /** These settings with a TCP access log. */
        public Settings withTcpAccessLog(Consumer<dev.inmesh.runtime.stats.TcpStreamInfo> tcpAccessLog) {
            return new Settings(config, uid, gid, eventLoops, observer, admin, tcpMetrics, upstreamStats,
                    tcpAccessLog, local, peerMetadata, peerMetadataId, drainTime, connectionManagerStats,
                    listenerStats, xds, identity, networkStats, transport, dns);
        }

        /** These settings for workload {@code local}, speaking the metadata exchange with these values. */
        public Settings withIdentity(dev.inmesh.runtime.stats.WorkloadInfo local, String peerMetadata,
                                     String peerMetadataId) {
            return new Settings(config, uid, gid, eventLoops, observer, admin, tcpMetrics, upstreamStats,
                    tcpAccessLog, local, peerMetadata, peerMetadataId, drainTime, connectionManagerStats,
                    listenerStats, xds, identity, networkStats, transport, dns);
        }

        /** These settings with the configuration from this control plane (see {@link #xds()}). */
        public Settings withXds(dev.inmesh.runtime.xds.ads.AdsOptions xds) {
            return new Settings(config, uid, gid, eventLoops, observer, admin, tcpMetrics, upstreamStats,
                    tcpAccessLog, local, peerMetadata, peerMetadataId, drainTime, connectionManagerStats,
                    listenerStats, xds, identity, networkStats, transport, dns);
        }

        /** These settings with Istio's SDS secrets {@code default} and {@code ROOTCA} read from this identity. */
        public Settings withWorkloadIdentity(WorkloadIdentity identity) {
            return new Settings(config, uid, gid, eventLoops, observer, admin, tcpMetrics, upstreamStats,
                    tcpAccessLog, local, peerMetadata, peerMetadataId, drainTime, connectionManagerStats,
                    listenerStats, xds, identity, networkStats, transport, dns);
        }

        /** These settings with this I/O transport. */
        public Settings withTransport(IoTransport transport) {
            return new Settings(config, uid, gid, eventLoops, observer, admin, tcpMetrics, upstreamStats,
                    tcpAccessLog, local, peerMetadata, peerMetadataId, drainTime, connectionManagerStats,
                    listenerStats, xds, identity, networkStats, transport, dns);
        }

        /** These settings with a DNS proxy, bound with the listeners (before root is dropped). */
        public Settings withDns(Dns dns) {
            return new Settings(config, uid, gid, eventLoops, observer, admin, tcpMetrics, upstreamStats,
                    tcpAccessLog, local, peerMetadata, peerMetadataId, drainTime, connectionManagerStats,
                    listenerStats, xds, identity, networkStats, transport, dns);
        }

        /** These settings with this listener drain time (Envoy's {@code --drain-time-s}). */
        public Settings withDrainTime(java.time.Duration drainTime) {
            return new Settings(config, uid, gid, eventLoops, observer, admin, tcpMetrics, upstreamStats,
                    tcpAccessLog, local, peerMetadata, peerMetadataId, drainTime, connectionManagerStats,
                    listenerStats, xds, identity, networkStats, transport, dns);
        }
    }

    /**
     * The control plane options of {@code settings}, which, with the DNS proxy on, also ask for istiod's name table
     * (NDS) as Istio's agent does, each one answering the proxy's DNS from then on.
     */
    private static dev.inmesh.runtime.xds.ads.AdsOptions withNameTable(Settings settings,
            java.util.concurrent.atomic.AtomicReference<dev.inmesh.interception.dns.DnsProxy> dns) {
        dev.inmesh.runtime.xds.ads.AdsOptions xds = settings.xds();
        if (settings.dns() == null) {
            return xds;
        }
        dev.inmesh.runtime.xds.ads.NodeOptions node = xds.node();
        return xds.withAgentType(dev.inmesh.interception.dns.NameTable.TYPE_URL, any -> {
            if (!any.getTypeUrl().equals(dev.inmesh.interception.dns.NameTable.TYPE_URL)) {
                throw new IllegalArgumentException("type_url \"" + any.getTypeUrl() + "\" (expected: "
                        + dev.inmesh.interception.dns.NameTable.TYPE_URL + ")");
            }
            dev.inmesh.interception.dns.NameTable nt = dev.inmesh.interception.dns.NameTable.parse(any.getValue());
            dev.inmesh.interception.dns.DnsProxy proxy = dns.get();
            if (proxy != null) {
                proxy.nameTable(nt, node.namespace(), node.dnsDomain());
            }
        });
    }

    /**
     * The DNS proxy to run beside the listeners.
     *
     * @param options where it listens, its upstream resolvers and search domains
     * @param metrics Istio's agent's DNS metrics, or null for none
     */
    public record Dns(dev.inmesh.interception.dns.DnsProxy.Options options,
                      dev.inmesh.interception.dns.DnsProxy.Metrics metrics) {
        public Dns {
            java.util.Objects.requireNonNull(options, "dns.options");
        }
    }

    private final Vertx vertx;
    private final SnapshotHolder snapshots;
    private final ProxyServer server;
    private final AutoCloseable admin;
    private final List<InetSocketAddress> addresses;
    private final dev.inmesh.runtime.tracing.TraceReporting tracing;
    /**
     * Counted down by {@link #skipDrain()} and by the agent port's {@code /drain}: a stop, under way or to come, then
     * closes at once.
     */
    private final java.util.concurrent.CountDownLatch drainSkipped;

    private StandaloneProxy(Vertx vertx, SnapshotHolder snapshots, ProxyServer server, AutoCloseable admin,
                            List<InetSocketAddress> addresses, dev.inmesh.runtime.tracing.TraceReporting tracing,
                            java.util.concurrent.CountDownLatch drainSkipped) {
        this.drainSkipped = drainSkipped;
        this.vertx = vertx;
        this.tracing = tracing;
        this.snapshots = snapshots;
        this.server = server;
        this.admin = admin;
        this.addresses = addresses;
    }

    /**
     * The options of every Vert.x of the proxy's process: no class path resolving, so no file cache. Vert.x makes
     * the cache's directory ({@code vertx-cache-UUID} in {@code vertx.cacheDirBase}'s directory, by default
     * {@code java.io.tmpdir}) as it starts, as root when the proxy starts as root, and the proxy, its user by then
     * ({@code --uid}), could not delete it as it stopped; the proxy reads no file of its class path through Vert.x.
     */
    public static VertxOptions vertxOptions() {
        return new VertxOptions().setFileSystemOptions(new FileSystemOptions().setClassPathResolvingEnabled(false)
                .setFileCachingEnabled(false));
    }

    /** Starts the proxy; blocking. Nothing keeps running when it throws. */
    public static StandaloneProxy start(Settings settings) throws Exception {
        java.util.concurrent.CountDownLatch drainSkipped = new java.util.concurrent.CountDownLatch(1);
        if (settings.config() == null && settings.xds() == null) {
            throw new IllegalArgumentException("config: null (expected: a configuration file, a control plane, "
                    + "or both)");
        }
        // without an admin (--no-admin) its address, which may be one Inmesh cannot serve, is not read
        AdminHook.Addresses adminAddresses = settings.config() == null || settings.admin() == AdminHook.NONE
                ? AdminHook.Addresses.DEFAULTS : adminAddresses(settings.config());
        VertxOptions options = vertxOptions();
        // One event loop per core, as Envoy's --concurrency: a connection's work stays on one thread, and more loops
        // than cores (Vert.x's default is two per core) only add wake-ups and context switches.
        options.setEventLoopPoolSize(settings.eventLoops() > 0 ? settings.eventLoops()
                : Math.max(1, Runtime.getRuntime().availableProcessors()));
        Vertx vertx = Vertx.builder().with(options).withTransport(IoTransport.choose(settings.transport())).build();
        LOG.info("transport " + IoTransport.of((io.vertx.core.internal.VertxInternal) vertx).optionName() + ", "
                + options.getEventLoopPoolSize() + " event loops");
        SnapshotHolder snapshots = new SnapshotHolder(UpstreamEnvironment.of(vertx, settings.upstreamStats()));
        // the SDS client of the TLS contexts whose sds_config names a bootstrap's static cluster (Istio's sds-grpc,
        // its agent's Unix socket), as Envoy beside Istio's agent fetches the workload's certificate there
        // the bootstrap's node, Envoy's local node: the SDS stream's (without a control plane) and the spans' names
        Node bootstrap = dev.inmesh.runtime.xds.EnvoyConfigReader.bootstrapNodeOrNull(settings.config());
        SdsSecretManager sds = new SdsSecretManager(vertx, sdsNode(settings, bootstrap), java.util.Map.of());
        ProxyServer server = null;
        AutoCloseable admin = null;
        dev.inmesh.interception.dns.DnsProxy dns = null;
        java.util.concurrent.atomic.AtomicReference<dev.inmesh.interception.dns.DnsProxy> dnsRef =
                new java.util.concurrent.atomic.AtomicReference<>();
        try {
            // From a file: its listeners are bound before start returns. From a control plane: they are bound as
            // they arrive (the bootstrap's static ones with the first configuration), as Envoy's initial fetch.
            // Either way the first configuration's are bound once its clusters are initialized (see ProxyServer).
            dev.inmesh.runtime.config.ConfigSource source;
            dev.inmesh.runtime.config.AdsConfigSource ads = null;
            ResourceBundle bundle;
            if (settings.xds() == null) {
                // the file is read once here, by its watch, as Envoy reads its bootstrap once: one replaced from
                // now on (before the watch starts too) is a reload, a bad one keeping this configuration serving
                var file = new dev.inmesh.runtime.config.FileConfigSource(vertx, settings.config(),
                        dev.inmesh.runtime.config.FileConfigSource.DEFAULT_POLL_INTERVAL, settings.identity())
                        .sds(sds);
                bundle = file.loadNow(snapshots);
                source = file;
            } else {
                bundle = settings.config() == null ? ResourceBundle.EMPTY
                        : Parsers.withIdentity(settings.identity(),
                                () -> Parsers.withSds(sds, () -> EnvoyConfigReader.read(settings.config())));
                ads = new dev.inmesh.runtime.config.AdsConfigSource(vertx, withNameTable(settings, dnsRef), bundle,
                        settings.identity()).sds(sds);
                source = ads;
            }
            Router router = new Router(vertx, new Router.Options(false, true, settings.local(),
                    settings.peerMetadata(), settings.peerMetadataId()), settings.observer());
            if (settings.upstreamStats() != null) {
                router.upstreamStats(settings.upstreamStats());
            }
            // the spans of the connection managers that trace, reported through the current snapshot's clusters
            var reporting = new dev.inmesh.runtime.tracing.TraceReporting(vertx,
                    () -> snapshots.current().clusterManager(),
                    dev.inmesh.runtime.tracing.TraceReporting.Local.of(settings.local(), settings.peerMetadataId(),
                            bootstrap),
                    null);
            // each tracer's statistics once a configuration traces with it, as Envoy builds a tracer's driver
            snapshots.onUpdate(s -> reporting.built(s.tracers()));
            reporting.built(snapshots.current().tracers());
            router.tracing(reporting);
            server = new ProxyServer(vertx, snapshots, router);
            server.tcpMetrics(settings.tcpMetrics());
            server.downstreamStats(settings.connectionManagerStats(), settings.listenerStats());
            server.networkStats(settings.networkStats());
            server.tcpAccessLog(settings.tcpAccessLog());
            server.peerMetadata(settings.peerMetadata(), settings.peerMetadataId());
            server.drainTime(settings.drainTime());
            // the admin server first: as Envoy's, it answers /ready (PRE_INITIALIZING) while the first
            // configuration's clusters with health checks have their first round, and the listeners wait for that
            admin = settings.admin().start(vertx, snapshots, adminAddresses.besides(bundle),
                    server.adminActions(drainSkipped::countDown), ads, sds);
            if (ads == null) {
                snapshots.initialized().await(); // bounded by the checks' own timeouts, as Envoy's initialization
            }
            List<InetSocketAddress> bound = server.bind();
            if (settings.dns() != null) {
                dns = dev.inmesh.interception.dns.DnsProxy.start(vertx, snapshots, settings.dns().options(),
                        settings.dns().metrics());
                dnsRef.set(dns);
            }
            // The file, watched as the in-JVM mode watches it, or the control plane's stream: each change applies
            // atomically, its listeners bound, updated or stopped by the server; a bad one keeps the last good
            // snapshot. The stream is not waited for, unless root is to be dropped: until its first configuration
            // the proxy is not ready.
            if (ads != null && settings.uid() >= 0) {
                // root until the first configuration is bound (below), but in the proxy's group already, whose
                // connections (to the control plane) the capture rules leave alone as they leave its user's
                PrivilegeDrop.group(settings.gid());
            }
            io.vertx.core.Future<Void> first = source.start(snapshots);
            if (ads == null) {
                first.await(30, TimeUnit.SECONDS);
            } else if (settings.uid() >= 0) {
                // The first configuration's listeners are bound as root, as those of a file are: a transparent
                // virtualInbound (TPROXY, which needs CAP_NET_ADMIN, as Istio's sidecar holds it in that mode) or a
                // port below 1024. A control plane that does not answer keeps root no longer than a file would.
                try {
                    // its listeners are bound once its clusters are initialized, within the same 30 s
                    first.compose(v -> snapshots.ready() ? snapshots.initialized()
                            : io.vertx.core.Future.<Void>succeededFuture()).await(30, TimeUnit.SECONDS);
                } catch (java.util.concurrent.TimeoutException e) {
                    LOG.warning("no configuration from the control plane within 30 s: dropping root; listeners "
                            + "that need it (transparent, or on a port below 1024) will not be bound");
                }
                server.awaitBinds(java.time.Duration.ofSeconds(10));
            }
            AutoCloseable adminClose = admin;
            dev.inmesh.interception.dns.DnsProxy dnsClose = dns;
            admin = () -> {
                try {
                    source.close().await(10, TimeUnit.SECONDS);
                } finally {
                    // a source that does not close in time (a reload waiting for a secret) still has the SDS streams,
                    // the DNS proxy and the admin server end
                    try {
                        sds.close();
                        if (dnsClose != null) {
                            dnsClose.close();
                        }
                    } finally {
                        adminClose.close();
                    }
                }
            };
            if (settings.uid() >= 0) {
                PrivilegeDrop.to(settings.uid(), settings.gid());
                LOG.info("running as uid " + settings.uid() + " gid " + settings.gid());
            }
            return new StandaloneProxy(vertx, snapshots, server, admin, bound, router.tracing(), drainSkipped);
        } catch (Exception | Error e) {
            if (admin != null) {
                admin.close();
            }
            if (dns != null) {
                dns.close();
            }
            if (server != null) {
                server.close();
            }
            sds.close();
            snapshots.close();
            vertx.close().await(10, TimeUnit.SECONDS);
            throw e;
        }
    }

    /**
     * The node the SDS client presents: the control plane's when there is one (Istio's sidecar node, as the agent's
     * bootstrap gives both streams), else the bootstrap's {@code node} ({@code bootstrap}, null for none), as Envoy
     * sends its bootstrap node on every xDS stream, SDS's included; an empty one when neither says.
     */
    static Node sdsNode(Settings settings, Node bootstrap) {
        if (settings.xds() != null) {
            return dev.inmesh.runtime.xds.ads.NodeBuilder.build(settings.xds().node());
        }
        return bootstrap != null ? bootstrap : Node.getDefaultInstance();
    }

    /** The addresses the listeners are bound to. */
    public List<InetSocketAddress> addresses() {
        return addresses;
    }

    public SnapshotHolder snapshots() {
        return snapshots;
    }

    /**
     * The admin addresses of a configuration's bootstrap (in a file, or among a directory's files, or a config dump's,
     * as {@link EnvoyConfigReader#bootstrapDocument} finds it): its admin address
     * ({@link EnvoyConfigReader#adminAddress}, refused by field when Inmesh cannot serve it), else 127.0.0.1:15000;
     * health, Prometheus and agent at Istio's fixed 15021, 15090 and 15020.
     */
    static AdminHook.Addresses adminAddresses(Path config) throws EnvoyConfigReader.ConfigReadException {
        AdminHook.Addresses d = AdminHook.Addresses.DEFAULTS;
        JsonNode root;
        try {
            root = EnvoyConfigReader.bootstrapDocument(config);
        } catch (EnvoyConfigReader.ConfigReadException e) {
            // a file that does not read: the configuration's own read, before the admin starts, fails with why
            return d;
        }
        InetSocketAddress admin;
        try {
            admin = EnvoyConfigReader.adminAddress(root);
        } catch (EnvoyConfigReader.ConfigReadException e) {
            throw new EnvoyConfigReader.ConfigReadException(config + ": " + e.getMessage(), e.getCause());
        }
        return admin == null ? d : new AdminHook.Addresses(admin, d.health(), d.prometheus(), d.agent());
    }

    /**
     * How long the proxy drains at SIGTERM by default: Istio's {@code terminationDrainDuration}, after which its agent
     * stops its sidecar, whatever the listener drain time ({@code --drain-time-s}) is.
     */
    public static final Duration DEFAULT_TERMINATION_DRAIN_TIME = Duration.ofSeconds(5);

    /**
     * {@link #drainAndClose(Duration, boolean, Duration)} as Istio's agent by default: for Istio's default
     * termination drain, {@link #DEFAULT_TERMINATION_DRAIN_TIME}.
     */
    public void drainAndClose() throws Exception {
        drainAndClose(DEFAULT_TERMINATION_DRAIN_TIME, false, Duration.ZERO);
    }

    /**
     * Stops as Istio's agent stops its sidecar at pod shutdown: the inbound listeners drain gracefully (Envoy's
     * {@code drain_listeners?inboundonly&graceful}: their HTTP/1 answers close their connections, their HTTP/2
     * connections get GOAWAY, and they still accept, so that callers that have not yet seen the pod go are served)
     * while the application's outbound traffic runs on untouched; then, once {@code drain} is over (Istio's
     * {@code terminationDrainDuration}, apart from the listener drain time, Envoy's {@code --drain-time-s}, which
     * may be longer: the agent stops its Envoy at the end of its own wait), {@link #close()}. With
     * {@code exitOnZeroConnections} (Istio's {@code EXIT_ON_ZERO_ACTIVE_CONNECTIONS}) it waits {@code minimum}
     * ({@code MINIMUM_DRAIN_DURATION}) instead, then stops as soon as no connection is open, looking every second,
     * as the agent does (with no upper bound: the pod's grace period bounds it). {@link #skipDrain()} closes at once
     * instead, before or during the drain. Blocking; not for an event loop.
     */
    public void drainAndClose(Duration drain, boolean exitOnZeroConnections, Duration minimum) throws Exception {
        drainAndClose(drain, exitOnZeroConnections, minimum, istioListeners(ISTIO_LISTENER_PORTS));
    }

    /** The ports of Istio's bootstrap's own listeners by default: 15021 (health) and 15090 (Prometheus). */
    public static final java.util.Set<Integer> ISTIO_LISTENER_PORTS = java.util.Set.of(15021, 15090);

    /**
     * The listeners of Istio's bootstrap on these ports ({@code ENVOY_STATUS_PORT} and {@code ENVOY_PROMETHEUS_PORT},
     * 15021 and 15090 by default) by their bound address, {@code 0.0.0.0:PORT}: those whose connections Istio's agent
     * leaves out of its count with {@code EXIT_ON_ZERO_ACTIVE_CONNECTIONS}, as it leaves out its Envoy's admin (the
     * standalone proxy's admin, health, Prometheus and agent ports, when it serves them itself, are no listeners
     * and are never counted).
     */
    public static java.util.function.Predicate<InetSocketAddress> istioListeners(java.util.Set<Integer> ports) {
        return a -> a.getAddress() instanceof java.net.Inet4Address && a.getAddress().isAnyLocalAddress()
                && ports.contains(a.getPort());
    }

    /**
     * {@link #drainAndClose(Duration, boolean, Duration)}, the connections of the listeners whose bound address
     * {@code uncounted} takes ({@link #istioListeners}) left out of the connections that keep the proxy running with
     * {@code exitOnZeroConnections}, as Istio's agent leaves its own listeners' out.
     */
    public void drainAndClose(Duration drain, boolean exitOnZeroConnections, Duration minimum,
                              java.util.function.Predicate<InetSocketAddress> uncounted) throws Exception {
        try {
            if (drainSkipped.getCount() == 0) {
                return;
            }
            server.drainListeners(true, true, false);
            if (!exitOnZeroConnections) {
                drainSkipped.await(drain.toMillis(), TimeUnit.MILLISECONDS);
                return;
            }
            if (drainSkipped.await(minimum.toMillis(), TimeUnit.MILLISECONDS)) {
                return;
            }
            for (int open; (open = server.openConnections(uncounted)) > 0; ) {
                LOG.info("draining: " + open + " connections still open");
                if (drainSkipped.await(1, TimeUnit.SECONDS)) {
                    return;
                }
            }
        } finally {
            close();
        }
    }

    /**
     * Makes {@link #drainAndClose} close at once, with no drain, whether it has started or not: what
     * {@code POST /quitquitquit} asks, as Istio's agent skips its drain then (and Envoy's own quits at once).
     */
    public void skipDrain() {
        drainSkipped.countDown();
    }

    /** Where the proxy's spans go, with Envoy's {@code tracing.zipkin.*} and {@code tracing.opentelemetry.*}. */
    public dev.inmesh.runtime.tracing.TraceReporting tracing() {
        return tracing;
    }

    /**
     * Stops at once: the listeners, then every connection still open, requests in flight included (as Envoy's
     * connections end with its process, which Istio's agent kills when its termination drain is over), so that
     * nothing is waited for; then the admin server, the configuration source and Vert.x.
     */
    @Override
    public void close() throws Exception {
        tracing.close(); // what is buffered goes now, while the clusters are there
        server.close();
        server.closeConnections();
        try {
            admin.close();
        } finally {
            snapshots.close();
            vertx.close().await(10, TimeUnit.SECONDS);
        }
    }
}
