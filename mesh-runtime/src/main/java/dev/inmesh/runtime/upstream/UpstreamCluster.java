package dev.inmesh.runtime.upstream;

import dev.inmesh.api.config.cluster.CircuitBreakers;
import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.CommonHttpProtocolOptions;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.TransportSocketMatch;
import dev.inmesh.api.config.cluster.UpstreamTlsContext;
import dev.inmesh.api.config.core.Metadata;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.endpoint.HealthStatus;
import dev.inmesh.api.config.endpoint.LbEndpoint;
import dev.inmesh.api.config.endpoint.Locality;
import dev.inmesh.api.config.endpoint.LocalityLbEndpoints;
import dev.inmesh.runtime.lb.LoadBalancer;
import dev.inmesh.runtime.net.AbslText;
import dev.inmesh.runtime.net.IpLiterals;
import dev.inmesh.runtime.stats.UpstreamStats;
import dev.inmesh.runtime.tls.SdsFileWatcher;
import dev.inmesh.runtime.tls.TlsMaterial;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpVersion;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One upstream cluster at run time: its hosts (carried over by address across updates), the compiled
 * {@link PrioritySet} read through one volatile reference, circuit breaker state per routing priority, outlier
 * detection and per-host connection pools. The router calls {@link #chooseHost}, the breakers, and
 * {@link #httpClient(Host)}; the {@link ClusterManager} applies updates.
 */
public final class UpstreamCluster {
    private static final Logger LOG = Logger.getLogger(UpstreamCluster.class.getName());

    private final String name;
    private final UpstreamEnvironment env;
    /** The cluster's statistics once looked up ({@link #stats()}). */
    private volatile dev.inmesh.runtime.stats.UpstreamStats stats;
    private final CircuitBreakerState defaultBreakers;
    private final CircuitBreakerState highBreakers;
    private final OutlierDetector outlierDetector;
    private final Map<String, Host> originalDstHosts = new ConcurrentHashMap<>();

    private volatile Cluster config;
    /**
     * The config's transport sockets compiled (its own and its transport socket matches'), set before
     * {@link #config}; each host points at the one its metadata chose. A socket whose TLS could not be compiled (a
     * record made in code with a bad PEM; the xDS parser refuses those) fails its hosts' requests to connect (UF)
     * rather than send them in plaintext.
     */
    private volatile TransportSockets sockets;
    private volatile PrioritySet prioritySet = PrioritySet.EMPTY;
    private volatile Map<String, Host> hosts = Map.of();
    /** The statistics the breakers' gauges were last pointed at (see {@link #publishCircuitBreakers}). */
    private volatile dev.inmesh.runtime.stats.UpstreamStats breakersPublishedTo;

    /**
     * A configuration's pool settings for one transport socket, computed once per configuration rather than per
     * request: for its own protocol, and for h2c (the HTTP/2 requests of a cluster that uses its downstream's
     * protocol).
     */
    record PoolSettings(Cluster config, HostPool.Settings settings, HostPool.Settings h2c,
                        HostPool.Settings clusterWide, HostPool.Settings h2cClusterWide) {
        PoolSettings(Cluster config, HostPool.Settings settings, HostPool.Settings h2c) {
            this(config, settings, h2c, settings.clusterWide(true), h2c.clusterWide(true));
        }
    }
    // guarded by this
    private LoadBalancer loadBalancer;
    private ClusterLoadAssignment assignment;
    private ClusterLoadAssignment resolvedDns;
    /** DNS clusters: each name's addresses from its last good lookup, in the order of {@code dnsTargetsSource}. */
    private List<List<String>> dnsTargets;
    private ClusterLoadAssignment dnsTargetsSource;
    private List<List<HostSet.LocalityHosts>> byPriority = List.of();
    private int overprovisioningFactor = ClusterLoadAssignment.DEFAULT_OVERPROVISIONING_FACTOR;
    private boolean weightedPriorityHealth;
    private long outlierTimer = -1;
    private long outlierIntervalMillis;
    private long dnsTimer = -1;
    /**
     * The interval of the next failure back-off of a cluster with a {@code dns_failure_refresh_rate} (its base after a
     * resolution in which a lookup succeeded, doubled with each failed one up to its max); 0 before any failure.
     */
    private long dnsFailureIntervalMillis;
    private long cleanupTimer = -1;
    private boolean closed;
    /** The active health checker, or null when the cluster has no {@code health_checks}. */
    private HealthChecker healthChecker;
    /** Whether a host of the cluster has had a request: until then health checks run at their no-traffic interval. */
    private volatile boolean hadTraffic;
    /**
     * Whether the cluster warms, as Envoy's cluster manager warms a new cluster with health checks: until each host of
     * its first host set has had a check, the cluster is not in use (see {@link ClusterManager#cluster}).
     */
    private volatile boolean warming;
    /**
     * Envoy's {@code pending_initialize_health_checks_}: the checks still to complete before the cluster is warm,
     * counted with its first host set; -1 before that.
     */
    private int pendingInitializeChecks = -1;
    /**
     * Completed when the cluster is initialized, as Envoy's cluster calls its initialize callback: at once without
     * health checks, else once its warming ends (or it is closed, as Envoy's init helper lets go of a cluster removed
     * while it initializes). What the cluster manager's {@link ClusterManager#initialized()} waits for. A new one when
     * an initialized cluster warms anew (see {@link #apply(Cluster, ClusterLoadAssignment, boolean)}).
     */
    private volatile Promise<Void> initialized = Promise.promise();

    UpstreamCluster(Cluster config, UpstreamEnvironment env) {
        this.name = config.name();
        this.env = env;
        this.defaultBreakers = new CircuitBreakerState(
                config.circuitBreakers().forPriority(CircuitBreakers.RoutingPriority.DEFAULT));
        this.highBreakers = new CircuitBreakerState(
                config.circuitBreakers().forPriority(CircuitBreakers.RoutingPriority.HIGH));
        this.outlierDetector = new OutlierDetector(config.outlierDetection(), env.ticker(), env.random(),
                this::rebuild, env.stats() == null ? null : () -> stats().outlierDetection());
        var s = stats();
        if (s != null) {
            s.membershipFrom(this::membership);
            // as Envoy's, the breakers' gauges exist with the cluster, before its first request
            publishCircuitBreakers(s);
        }
    }

    /**
     * Envoy's membership gauges: the hosts healthy (not ejected), degraded, excluded (DRAINING) and all of them (for
     * ORIGINAL_DST, those in use).
     */
    private int[] membership() {
        int[] counts = new int[4];
        for (Host h : hosts()) {
            counts[0] += h.healthy() ? 1 : 0;
            counts[1] += h.degraded() ? 1 : 0;
            counts[2] += h.excluded() ? 1 : 0;
            counts[3]++;
        }
        return counts;
    }

    /** Counts hosts joining or leaving ({@code membership_change}). */
    private void membershipChanged() {
        var s = stats();
        if (s != null) {
            s.membershipChanged();
        }
    }

    public String name() {
        return name;
    }

    /**
     * The cluster's statistics ({@code cluster.<name>.*}), or null when none are kept: looked up by name once and kept,
     * so that what this cluster still does once it is gone counts into its own, released with it
     * ({@link dev.inmesh.runtime.stats.UpstreamStats#release}), not into new ones of its name.
     */
    public dev.inmesh.runtime.stats.UpstreamStats stats() {
        var s = stats;
        if (s == null) {
            var f = env.stats();
            if (f == null) {
                return null;
            }
            s = stats = f.apply(name);
        }
        return s;
    }

    /** The cluster's configuration in force. */
    public Cluster config() {
        return config;
    }

    /**
     * The destination an ORIGINAL_DST cluster's load balancer takes for a request ({@link LbContext}'s): with
     * {@code use_http_header}, the request's header's first value when it is an {@code IP:PORT} ({@code [IPv6]:PORT}),
     * as Envoy's; else, or when the value is no such address ({@code original_dst_host_invalid} counted), the one the
     * request's connection was meant for, {@code connection}.
     *
     * @param header the request's headers, read by lower-case name: the first value, or null
     * @param connection the original destination a listener restored for the request's connection, or null when none
     *     did (then, without a valid header, there is none: the cluster has no host for the request, as Envoy's load
     *     balancer takes the downstream local address only when it was restored)
     */
    public SocketAddress requestDestination(java.util.function.UnaryOperator<String> header,
                                            SocketAddress connection) {
        if (!(config.lbConfig() instanceof dev.inmesh.api.config.cluster.LbConfig.OriginalDst od)
                || od.httpHeaderName() == null) {
            return connection;
        }
        String value = header.apply(od.httpHeaderName());
        if (value == null) {
            return connection;
        }
        SocketAddress named = ipAndPort(value);
        if (named == null) {
            if (stats() != null) {
                stats().originalDstHostInvalid();
            }
            return connection;
        }
        return named;
    }

    /**
     * {@code IP:PORT} or {@code [IPv6]:PORT} as Envoy's {@code parseInternetAddressAndPortNoThrow} reads it: after the
     * last {@code :} (after {@code ]:} in brackets) a port as {@code absl::SimpleAtoi} reads one (white space around
     * it, a {@code +} and leading zeros pass) up to 65535; before it an IPv4 address as {@code inet_pton} reads one
     * (no leading zero in a part), or in brackets an IPv6 one; the address in its printed form. Else null.
     */
    static SocketAddress ipAndPort(String v) {
        boolean bracketed = v.startsWith("[");
        int colon = bracketed ? v.lastIndexOf("]:") + 1 : v.lastIndexOf(':');
        if (colon <= 0) {
            return null;
        }
        byte[] ip = IpLiterals.parse(v.substring(bracketed ? 1 : 0, bracketed ? colon - 1 : colon));
        long port = AbslText.unsigned(v.substring(colon + 1), 65535);
        if (ip == null || ip.length != (bracketed ? 16 : 4) || port < 0) {
            return null;
        }
        return new SocketAddress(IpLiterals.format(ip), (int) port);
    }

    /**
     * Picks a host for one request: for ORIGINAL_DST the context's original destination; otherwise a priority by
     * load, a locality when locality weighting is on, and a host by the cluster's policy, re-picking up to
     * {@code maxSelectionAttempts} times while the context's predicate refuses the host.
     *
     * @return the host, or null when there is no healthy upstream (the router answers 503 with flag UH)
     */
    public Host chooseHost(LbContext ctx) {
        Cluster c = config;
        if (c.type() == DiscoveryType.ORIGINAL_DST) {
            SocketAddress destination = ctx.originalDestination();
            if (destination != null && c.lbConfig() instanceof dev.inmesh.api.config.cluster.LbConfig.OriginalDst od
                    && od.upstreamPortOverride() != 0) {
                // upstream_port_override: the original destination's address, on the port the config names
                destination = new SocketAddress(destination.address(), od.upstreamPortOverride());
            }
            Host original = originalDestination(destination);
            if (original == null && stats() != null) {
                stats().noHealthyHost(); // as Envoy's original destination load balancer without one
            }
            return original;
        }
        PrioritySet set = prioritySet;
        Host host = null;
        for (int attempt = 0; attempt < ctx.maxSelectionAttempts(); attempt++) {
            host = set.pick(ctx.hasHash(), ctx.hash(), attempt, env.random(), ctx.retryPriority(), countPanic);
            if (host == null || ctx.rejectHost() == null || !ctx.rejectHost().test(host)) {
                break;
            }
        }
        if (host == null) {
            var s = stats();
            if (s != null) {
                s.noHealthyHost();
            }
        }
        return host;
    }

    /** Counts a pick in a priority in panic ({@code lb_healthy_panic}). */
    private final Runnable countPanic = () -> {
        var s = stats();
        if (s != null) {
            s.healthyPanic();
        }
    };

    /**
     * The host a stateful session names, as Envoy's cluster looks it up before its load balancer: {@code address} as
     * Envoy prints a host's address ({@code ip:port}, {@code [ipv6]:port}), taken only if the cluster has that host
     * and its health is one of the cluster's {@code override_host_status} (a host ejected by outlier detection counts
     * as UNHEALTHY, as does one failed by active health checks, and one its checks said degraded as DEGRADED, as in
     * Envoy's host health). Retry predicates and
     * priority loads do not apply to it.
     *
     * @return the host, or null when the cluster has no such host or its health does not let it take the request
     */
    public Host overrideHost(String address) {
        Host h = (config.type() == DiscoveryType.ORIGINAL_DST ? originalDstHosts : hosts).get(address);
        if (h == null) {
            return null;
        }
        boolean failed = h.outlier().ejected() || h.failedActiveHc;
        HealthStatus eds = h.healthStatus();
        // as Envoy's host health: a failure flag first, then a degraded one, then what EDS said
        boolean edsFailed = eds == HealthStatus.UNHEALTHY || eds == HealthStatus.TIMEOUT;
        HealthStatus health = failed ? HealthStatus.UNHEALTHY
                : h.degradedActiveHc && !edsFailed ? HealthStatus.DEGRADED : eds;
        return config.commonLbConfig().overrideHostStatus().contains(health) ? h : null;
    }

    /**
     * Points {@code stats}' circuit breaker gauges at this cluster's breakers, once per statistics object: the cluster
     * calls it when it is made, so that its gauges exist from then on as its other statistics, and the router for every
     * request.
     */
    public void publishCircuitBreakers(dev.inmesh.runtime.stats.UpstreamStats stats) {
        if (breakersPublishedTo != stats) {
            stats.circuitBreakers("default", defaultBreakers);
            stats.circuitBreakers("high", highBreakers);
            breakersPublishedTo = stats;
        }
    }

    /**
     * The TLS to one host of this cluster, or null for plaintext: the transport socket its metadata chose (a
     * transport socket match's, else the cluster's own), for connections made outside the HTTP pools (the standalone
     * proxy's byte relays).
     *
     * @throws IllegalStateException when that TLS is not usable (its connections must not go in plaintext)
     */
    public UpstreamTls tls(Host host) {
        TransportSockets.Socket socket = socketOf(host);
        if (socket.error != null) {
            throw socket.error;
        }
        return socket.tls;
    }

    /** The usable TLS of every transport socket of the cluster (its own and its matches'), each once. */
    public List<UpstreamTls> tlsInUse() {
        List<UpstreamTls> out = new ArrayList<>();
        for (TransportSockets.Slot slot : sockets.slots()) {
            UpstreamTls t = slot.current.tls;
            if (t != null && !out.contains(t)) {
                out.add(t);
            }
        }
        return out;
    }

    /** The compiled transport socket a host chose (a host not yet placed: the cluster's own). */
    private TransportSockets.Socket socketOf(Host host) {
        TransportSockets.Slot slot = host.socket;
        return (slot != null ? slot : sockets.own()).current;
    }

    /** The breakers of the DEFAULT routing priority. */
    public CircuitBreakerState circuitBreakers() {
        return defaultBreakers;
    }

    /** The breakers of a routing priority. */
    public CircuitBreakerState circuitBreakers(CircuitBreakers.RoutingPriority priority) {
        return priority == CircuitBreakers.RoutingPriority.HIGH ? highBreakers : defaultBreakers;
    }

    /** The Vert.x of this cluster's pools, or null without one. */
    public io.vertx.core.Vertx vertx() {
        return env.vertx();
    }

    /**
     * Whether {@code client} is a host's pool, which tells the requests that find no connection ready (pending) from
     * the others and counts them itself ({@link #request}).
     */
    public static boolean countsPending(HttpClient client) {
        return client instanceof PendingRequest.Queue;
    }

    /**
     * Asks {@code client}, a host's pool ({@link #countsPending}), for a connection to send {@code options} on: as
     * Envoy's pool, a request that finds no connection ready is pending, counted in {@code breakers} (refused with
     * {@link io.vertx.core.http.ConnectionPoolTooBusyException} when its {@code max_pending_requests} are already
     * waiting) and in {@code stats}' {@code upstream_rq_pending_*} (unless null) until it has its connection, failed,
     * or was given up ({@link #cancelPending}); one handed to a ready connection counts in neither.
     */
    public static io.vertx.core.Future<HttpClientRequest> request(HttpClient client, RequestOptions options,
                                                                  CircuitBreakerState breakers,
                                                                  dev.inmesh.runtime.stats.UpstreamStats stats) {
        return ((PendingRequest.Queue) client).request(options, breakers, stats);
    }

    /**
     * Takes a request that waits for a connection ({@code waiting}, what {@code client}'s {@code request} returned)
     * out of the queue of {@code client}, a host's pool, as Envoy's router cancels its pending request when it gives
     * up on it: {@code waiting} then fails with {@link PendingCancelledException}, and the connection that frees next
     * goes to a request still waiting. A pending request whose connection is being opened for it fails so too (the
     * connection, once up, goes back to the pool). False when the request is no longer pending: it has its connection.
     */
    public static boolean cancelPending(HttpClient client, io.vertx.core.Future<HttpClientRequest> waiting) {
        return client instanceof PendingRequest.Queue pool && pool.cancel(waiting);
    }

    /**
     * A request's wait for a connection of a client that is not a host's pool ({@link #countsPending} false), begun:
     * counted as a pool counts a pending request's ({@code upstream_rq_pending_*}, {@code upstream_cx_overflow} at
     * the connection limit), in {@code stats} unless null; the breakers' pending count is the caller's to take.
     */
    public static void pendingWaitStarted(CircuitBreakerState breakers, dev.inmesh.runtime.stats.UpstreamStats stats) {
        PendingRequest.waitStarted(breakers, stats);
    }

    /** The end of a wait its caller gave up on ({@link #pendingWaitEnded}). */
    public static final io.vertx.core.AsyncResult<HttpClientRequest> PENDING_CANCELLED =
            Future.failedFuture(new PendingCancelledException());

    /**
     * That wait, begun at {@code since} ({@link System#nanoTime}), ended with {@code ar} (its connection, a failure, or
     * {@link PendingCancelledException}): counted off as a pool counts a pending request's end (the breakers' pending
     * count, {@code upstream_rq_pending_*}, {@code upstream_rq_cancelled}, a new connection's
     * {@code upstream_cx_connect_ms}).
     */
    public static void pendingWaitEnded(CircuitBreakerState breakers, dev.inmesh.runtime.stats.UpstreamStats stats,
                                        io.vertx.core.AsyncResult<HttpClientRequest> ar, long since) {
        PendingRequest.waitEnded(breakers, stats, ar, since);
    }

    /**
     * The pooled HTTP client for a host of this cluster; its default host and port are the host's, so
     * {@code client.request(method, uri)} goes there. It speaks the cluster's protocol: h2c with explicit HTTP/2,
     * else HTTP/1.1, over TLS when the host's transport socket (a transport socket match's, else the cluster's own)
     * is TLS.
     *
     * @throws IllegalStateException without Vert.x, or when the host's TLS is not usable
     */
    public HttpClient httpClient(Host host) {
        return httpClient(host, false);
    }

    /**
     * The pooled HTTP client for a host of this cluster, for a request that came in over HTTP/2 or not: a cluster that
     * uses its downstream's protocol ({@link Cluster#useDownstreamProtocol()}) gives h2c for the one and HTTP/1.1 for
     * the other, as Envoy picks the upstream protocol per request; any other cluster its own protocol.
     *
     * @throws IllegalStateException without Vert.x
     */
    public HttpClient httpClient(Host host, boolean downstreamHttp2) {
        return httpClient(host, downstreamHttp2, null);
    }

    /**
     * The pooled HTTP client for a host of this cluster, as {@link #httpClient(Host, boolean)}, for a request whose
     * host (as it goes upstream, without its port) is {@code requestHost} (null: none): a TLS cluster with
     * {@code auto_sni} or {@code auto_san_validation} connects for it with that SNI or checks that SAN, on connections
     * of that name only, as Envoy; any other cluster ignores it.
     *
     * @throws IllegalStateException without Vert.x
     */
    public HttpClient httpClient(Host host, boolean downstreamHttp2, String requestHost) {
        return httpClient(host, downstreamHttp2, requestHost, null);
    }

    /**
     * The pooled HTTP client for a host of this cluster, as {@link #httpClient(Host, boolean, String)}, for a request
     * whose downstream connection's listener runs {@code original_src} ({@code original}; null: none): its connections
     * bind the source in place of the cluster's bind address, as in Envoy the filter's source wins, and are the
     * source's alone (a pool per source, as Envoy keys its pools by the socket options). Only a Vert.x whose transport
     * reads {@link OriginalSrcBind#localAddress()} may be given a source: the standalone proxy's.
     *
     * @return the client, or null when the host has no pool for the request and {@code max_connection_pools} lets
     *     none be made (no idle pool of the host to free): Envoy's {@code upstream_cx_pool_overflow}, which its router
     *     answers as no healthy upstream (503, flag UH); so do the other {@code httpClient} methods
     * @throws IllegalStateException without Vert.x
     */
    public HttpClient httpClient(Host host, boolean downstreamHttp2, String requestHost, OriginalSrcBind original) {
        if (env.vertx() == null) {
            throw new IllegalStateException("no Vert.x: connection pools are unavailable");
        }
        Cluster c = config;
        TransportSockets.Socket socket = socketOf(host);
        if (socket.error != null) {
            throw socket.error;
        }
        PoolSettings cached = socket.poolSettings;
        UpstreamTls upstreamTls = socket.tls;
        // the source address of the host's IP version (a dual-stack pod's extra source address)
        SocketAddress source = c.upstreamBindAddress(host.address().address());
        String bind = source == null ? null : source.address();
        if (cached == null || cached.config != c || !java.util.Objects.equals(cached.settings.localAddress(), bind)) {
            CircuitBreakers.Thresholds t = defaultBreakers.thresholds();
            int maxConnections = (int) Math.min(Integer.MAX_VALUE, Math.max(1, t.maxConnections()));
            int maxPending = t.maxPendingRequests() >= Integer.MAX_VALUE ? -1 : (int) t.maxPendingRequests();
            long connectTimeout = ConnectFailure.timeoutMillis(c.connectTimeout());
            CommonHttpProtocolOptions lifetimes = c.commonHttpProtocolOptions();
            long idleMillis = lifetimes.idleTimeout().toMillis();
            long maxLifetime = lifetimes.maxConnectionDuration().toMillis();
            long maxRequests = lifetimes.maxRequestsPerConnection();
            cached = new PoolSettings(c,
                    new HostPool.Settings(connectTimeout, c.http2(), bind, maxConnections, maxPending, idleMillis,
                            maxLifetime, maxRequests, upstreamTls, c.tcpKeepalive(), c.http2ProtocolOptions())
                            .withHttp1Trailers(c.http1Trailers()),
                    new HostPool.Settings(connectTimeout, true, bind, maxConnections, maxPending, idleMillis,
                            maxLifetime, maxRequests, upstreamTls, c.tcpKeepalive(), c.http2ProtocolOptions())
                            .withHttp1Trailers(c.http1Trailers()));
            socket.poolSettings = cached;
        }
        boolean h2 = c.useDownstreamProtocol() && downstreamHttp2;
        HostPool.Settings settings = h2 ? cached.h2c : cached.settings;
        // as Envoy, max_connections and max_pending_requests bound the cluster's total; with one host, or limits
        // beyond what one host's pool opens anyway, each host's pool holds them (and splits by event loop)
        if (settings.maxConnections() < HostPool.MAX_POOL_SIZE && hosts().size() > 1) {
            settings = h2 ? cached.h2cClusterWide : cached.clusterWide;
        }
        boolean byName = requestHost != null && settings.tls() != null && settings.tls().context().perRequestHost();
        if (original != null) {
            return host.pool.client(env.vertx(), settings.withLocalAddress(original.localAddress()), defaultBreakers,
                    byName ? requestHost : null, original);
        }
        if (byName) {
            return host.pool.client(env.vertx(), settings, defaultBreakers, requestHost, null);
        }
        return host.pool.client(env.vertx(), settings, defaultBreakers);
    }

    /**
     * Counts a request that got its HTTP/1.1 connection to {@code host} (an HTTP/2 pool counts its own streams:
     * Http2Pool). When the connection may carry no more ({@code max_requests_per_connection}), it counts in
     * {@code upstream_cx_max_requests} and drains, as Envoy's HTTP/1 pool drains it: it is given no new request and
     * closes after this one's response. The request goes as it is (Envoy adds no {@code connection: close}).
     */
    public void countRequestOnConnection(Host host, HttpClientRequest request) {
        long max = config.commonHttpProtocolOptions().maxRequestsPerConnection();
        HttpConnection connection = request.connection();
        if (max <= 0 || connection == null || request.version() == HttpVersion.HTTP_2
                || !host.pool.lastRequestOn(connection, max)) {
            return;
        }
        var st = host.stats().clusterStats();
        if (st != null) {
            st.connectionMaxRequests();
        }
        ConnectionTimers timers = ConnectionTimers.of(connection);
        if (timers != null) {
            timers.drain();
        }
    }

    /** The compiled hosts by priority in force now. */
    public PrioritySet prioritySet() {
        return prioritySet;
    }

    /** All hosts of the cluster (for ORIGINAL_DST, those in use). */
    public Collection<Host> hosts() {
        return config.type() == DiscoveryType.ORIGINAL_DST ? originalDstHosts.values() : hosts.values();
    }

    public OutlierDetector outlierDetector() {
        return outlierDetector;
    }

    // ---- updates, from the ClusterManager ----

    /**
     * Applies a cluster's configuration and, for EDS, its assignment; hosts that stay keep their state. Its new TLS
     * contexts are compiled first, without the cluster's lock, which an event loop picking or rebuilding hosts takes.
     *
     * <p>A changed configuration with health checks of a cluster that warms, or of any cluster while the server
     * initializes ({@code initializing}), warms anew, as the new version Envoy's cluster manager builds of it: its
     * checks start afresh and its warming counts its first host set's checks again (what the old version's checks
     * found counts for nothing), and {@link #initialized()} waits for them. Envoy replaces a warming cluster with its
     * update (the old version and its initialize callback dropped), and during its initialization replaces any
     * updated cluster and has its init helper wait for the new one (cluster_manager_impl.cc addOrUpdateCluster).
     */
    void apply(Cluster newConfig, ClusterLoadAssignment newAssignment, boolean initializing) {
        TransportSockets previous = sockets;
        TransportSockets compiled = TransportSockets.of(newConfig, previous, this::compileSlot);
        synchronized (this) {
            apply(newConfig, newAssignment, previous, compiled, initializing);
        }
    }

    /** {@link #apply}, under the lock, with the sockets {@code compiled} against {@code previous}. */
    private void apply(Cluster newConfig, ClusterLoadAssignment newAssignment, TransportSockets previous,
                       TransportSockets compiled, boolean initializing) {
        Cluster old = this.config;
        installSockets(previous, compiled, newConfig);
        boolean changed = old != newConfig && !newConfig.equals(old);
        if (changed) {
            if (newConfig.tlsNotReady() != null) {
                LOG.warning(() -> "cluster " + name + ": TLS not ready, the connections of its hosts fail: "
                        + newConfig.tlsNotReady());
            }
            for (TransportSocketMatch m : newConfig.transportSocketMatches()) {
                if (m.notReady() != null) {
                    LOG.warning(() -> "cluster " + name + ": transport socket match \"" + m.name() + "\" not ready, "
                            + "the connections of its hosts fail: " + m.notReady());
                }
            }
        }
        this.config = newConfig;
        defaultBreakers.thresholds(newConfig.circuitBreakers().forPriority(CircuitBreakers.RoutingPriority.DEFAULT));
        highBreakers.thresholds(newConfig.circuitBreakers().forPriority(CircuitBreakers.RoutingPriority.HIGH));
        if (old != null && breakersPublishedTo != null) {
            // as Envoy's new cluster info: the remaining_* gauges come and go with track_remaining
            breakersPublishedTo = null;
            var s = stats();
            if (s != null) {
                publishCircuitBreakers(s);
            }
        }
        boolean policyChanged = old == null || old.lbPolicy() != newConfig.lbPolicy()
                || !old.lbConfig().equals(newConfig.lbConfig());
        if (newConfig.type() != DiscoveryType.ORIGINAL_DST && (policyChanged || loadBalancer == null)) {
            loadBalancer = LoadBalancer.of(newConfig.lbPolicy(), newConfig.lbConfig(), env.random(),
                    env.ticker()::nanoTime);
            prioritySet = PrioritySet.EMPTY; // a new policy starts afresh
        }
        outlierDetector.configure(newConfig.outlierDetection());
        boolean warmsAnew = old != null && changed && newConfig.healthCheck() != null && (warming || initializing);
        if (old == null && newConfig.healthCheck() != null || warmsAnew) {
            if (old != null && !warming) {
                // the warming that ended completes (or has completed) the future it took: a new one waits for this
                initialized = Promise.promise();
            }
            warming = true;
        }
        configureHealthChecks(newConfig.healthCheck(), warmsAnew);
        switch (newConfig.type()) {
            // an update without a new assignment for the same service keeps the hosts it has
            case EDS -> assignment = newAssignment != null ? newAssignment
                    : assignment != null && old != null && old.type() == DiscoveryType.EDS
                            && old.serviceName().equals(newConfig.serviceName()) ? assignment
                    : ClusterLoadAssignment.empty(newConfig.serviceName());
            case STATIC -> assignment = newConfig.loadAssignment() != null ? newConfig.loadAssignment()
                    : ClusterLoadAssignment.empty(name);
            case STRICT_DNS, LOGICAL_DNS -> {
                if (old == null || old.type() != newConfig.type()
                        || !old.loadAssignment().equals(newConfig.loadAssignment())) {
                    // other names: none of them resolved yet (a warming cluster counts its checks from their first
                    // resolution, not from an empty host set)
                    resolvedDns = null;
                }
                assignment = resolvedDns != null ? resolvedDns : ClusterLoadAssignment.empty(name);
            }
            case ORIGINAL_DST -> assignment = ClusterLoadAssignment.empty(name);
        }
        // a configuration change keeps no host that left: Envoy builds the changed cluster anew, its assignment's hosts
        setHosts(assignment, !changed);
        scheduleTimers(old);
        if (newConfig.type().resolvesNames() && (old == null || old.type() != newConfig.type()
                || !old.loadAssignment().equals(newConfig.loadAssignment()))) {
            resolve();
        }
        if (!warming) {
            endWarming();
        }
    }

    /**
     * Keeps the health checker while the cluster's health check stays the same (its hosts keep their health and their
     * checks' schedules); a check added or changed replaces it, the hosts keeping their health until their first new
     * check decides, either way (Envoy runs the new check on a new version of the cluster, whose hosts start failed,
     * while the old version serves until each host has had a check); a check removed clears what checks said, and
     * ends a warming. A check changed while the cluster warms counts the checks to wait for again, and so does one
     * {@code restarted}: a new checker whatever the check, whose sessions start afresh.
     */
    private void configureHealthChecks(dev.inmesh.api.config.cluster.HealthCheck hc, boolean restarted) {
        HealthChecker current = healthChecker;
        if (!restarted && current != null && current.config().equals(hc)) {
            return;
        }
        if (current != null) {
            current.close();
            healthChecker = null;
        }
        pendingInitializeChecks = -1;
        if (hc == null) {
            hosts.values().forEach(Host::clearActiveHealthCheck);
            endWarming();
        } else {
            var s = stats();
            healthChecker = new HealthChecker(name, hc, env, this::checked, s == null ? null : s.healthCheck(),
                    this::hadTraffic);
        }
    }

    /**
     * A check of {@code host} completed, as Envoy's cluster hears it: a changed health rebuilds the hosts, and removes
     * an EDS host that stayed only while its checks passed ({@code PENDING_DYNAMIC_REMOVAL}) once they fail it (a
     * STRICT_DNS cluster's goes with its next resolution, as Envoy's); and every completed check counts toward the end
     * of a warming, as Envoy counts them (checks, not hosts).
     */
    private synchronized void checked(Host host, boolean changed) {
        if (closed) {
            return;
        }
        if (changed) {
            if (host.pendingDynamicRemoval && host.failedActiveHc && config.type() == DiscoveryType.EDS
                    && hosts.get(host.addressString()) == host) {
                setHosts(assignment, true); // the host is not in it, and no longer passes: it goes
            } else {
                rebuild();
            }
        }
        if (warming && pendingInitializeChecks > 0 && --pendingInitializeChecks == 0) {
            endWarming();
        }
    }

    /**
     * Ends the warming (if any) and completes {@link #initialized()}. Its callbacks run on the event loop (when there
     * is one) rather than here, where this cluster's lock is held.
     */
    private void endWarming() {
        warming = false;
        Promise<Void> ended = initialized; // not one made later, should the cluster warm anew before this runs
        if (ended.future().isComplete()) {
            return;
        }
        var vertx = env.vertx();
        if (vertx == null) {
            ended.tryComplete();
        } else {
            vertx.runOnContext(v -> ended.tryComplete());
        }
    }

    /**
     * Completed once the cluster is initialized: at once for a cluster without health checks or one already in use,
     * else when its {@link #warming()} ends, or when it is closed first. Never failed.
     */
    public Future<Void> initialized() {
        return initialized.future();
    }

    /**
     * Whether the cluster warms: it is new, has health checks, and not every host of its first host set has had a
     * check yet. Envoy's cluster manager does not use such a cluster (requests for it find no cluster, NC).
     */
    public boolean warming() {
        return warming;
    }

    /** Whether the cluster has had traffic, as Envoy asks its {@code upstream_cx_total}: a host has had a request. */
    private boolean hadTraffic() {
        if (!hadTraffic) {
            for (Host h : hosts.values()) {
                if (h.stats().totalRequests() > 0) {
                    hadTraffic = true;
                    break;
                }
            }
        }
        return hadTraffic;
    }

    /** The session checking {@code host}, or null when the cluster has no health checks or not for that host. */
    HealthChecker.Session healthCheckSession(Host host) {
        HealthChecker c;
        synchronized (this) {
            c = healthChecker;
        }
        return c == null ? null : c.session(host);
    }

    /**
     * Puts in force the transport sockets of a new config, compiled once off the request path: a socket whose
     * configured TLS is unchanged keeps what was compiled (and its SDS files as last read); the watches of sockets
     * that went stop. Sockets compiled against other sockets than those in force now (another update came
     * meanwhile) are compiled again, here. The hosts then choose their sockets again ({@link #setHosts}).
     */
    private void installSockets(TransportSockets previous, TransportSockets compiled, Cluster newConfig) {
        TransportSockets current = sockets;
        TransportSockets next = compiled;
        if (current != previous) {
            next = TransportSockets.of(newConfig, current, this::compileSlot);
            List<TransportSockets.Slot> used = next.slots();
            compiled.slots().stream().filter(s -> !used.contains(s)).forEach(UpstreamCluster::unwatch);
        }
        if (current != null) {
            List<TransportSockets.Slot> kept = next.slots();
            current.slots().stream().filter(s -> !kept.contains(s)).forEach(UpstreamCluster::unwatch);
        }
        sockets = next;
    }

    /** A new transport socket: its TLS compiled and its SDS files watched, or why its TLS is not usable. */
    private TransportSockets.Slot compileSlot(UpstreamTlsContext c) {
        if (c == null) {
            return new TransportSockets.Slot(null, new TransportSockets.Socket(null, null));
        }
        UpstreamTls compiled;
        try {
            compiled = UpstreamTls.compile(c);
        } catch (IllegalArgumentException e) {
            LOG.warning(() -> "cluster " + name + ": TLS not usable, its requests fail: " + e.getMessage());
            return new TransportSockets.Slot(c, new TransportSockets.Socket(null,
                    new IllegalStateException("cluster " + name + ": TLS not usable: " + e.getMessage(), e)));
        }
        TransportSockets.Slot slot = new TransportSockets.Slot(c, new TransportSockets.Socket(compiled, null));
        slot.watch = SdsFileWatcher.watch(this, "cluster " + name, c.sdsFiles(), c.certificateChain(),
                c.privateKey(), c.trustedCa(), (cluster, texts) -> cluster.reloadTls(slot, texts));
        return slot;
    }

    /** Stops watching a transport socket's SDS files. */
    private static void unwatch(TransportSockets.Slot slot) {
        if (slot.watch != null) {
            slot.watch.cancel();
            slot.watch = null;
        }
    }

    /**
     * An SDS file of a transport socket's TLS changed, or a secret of it fetched over SDS took a new version (off the
     * event loop, before the secret is ACKed): new connections to its hosts use the new
     * certificate and CAs, as Envoy's cluster takes an SDS secret update; the pools of the old TLS drain (their
     * requests finish).
     *
     * @throws IllegalArgumentException when the new PEMs are not usable (the old TLS stays)
     */
    private void reloadTls(TransportSockets.Slot slot, Map<String, String> texts) {
        TransportSockets.Socket current = slot.current;
        if (current.tls == null) {
            return;
        }
        UpstreamTlsContext c = current.tls.context();
        String[] pems = TlsMaterial.sdsPems(c.sdsFiles(), texts, c.certificateChain(), c.privateKey(), c.trustedCa());
        // compiled outside the lock the request path may take
        UpstreamTls next = UpstreamTls.compile(c.withPems(pems[0], pems[1], pems[2]));
        synchronized (this) {
            if (slot.current != current || closed) {
                return; // a new configuration's TLS came meanwhile
            }
            // a slot compiled and not in force yet takes it too: a secret pushed before its configuration is applied
            if (c.perRequestHost()) {
                hosts.values().stream().filter(h -> h.socket == slot).forEach(h -> h.pool.drainPerRequestHost());
                originalDstHosts.values().stream().filter(h -> h.socket == slot)
                        .forEach(h -> h.pool.drainPerRequestHost());
            }
            // made again with the new TLS: the hosts' pools change clients
            slot.current = new TransportSockets.Socket(next, null);
        }
    }

    /**
     * Points a host at the transport socket its metadata (else its locality's) chooses, as Envoy resolves a host's
     * socket when the host is made and when its metadata changes. A host whose socket changed takes new connections from its next request on
     * (its pool's settings differ, so the old clients drain); its pools per request host name drain now, as a name
     * not asked for again would keep the old TLS.
     */
    private void chooseSocket(Host h, Metadata locality, TransportSockets in) {
        TransportSockets.Slot next = in.select(h.metadata(), locality);
        TransportSockets.Slot old = h.socket;
        if (old != next) {
            h.socket = next;
            if (old != null && old.perRequestHost()) {
                h.pool.drainPerRequestHost();
            }
        }
    }

    /**
     * Applies a new set of hosts: reuses hosts by address, drains the pools of hosts that left (of every host, when
     * one joined or left and the cluster asks so).
     *
     * @param keepPassing whether hosts that left while their checks pass stay ({@link #keepPassingHosts}): on an EDS
     *     or DNS update of the cluster, not on a change of its configuration
     */
    private void setHosts(ClusterLoadAssignment cla, boolean keepPassing) {
        Map<String, Host> previous = hosts;
        Map<String, Host> next = new LinkedHashMap<>();
        int maxPriority = -1;
        for (LocalityLbEndpoints l : cla.endpoints()) {
            maxPriority = Math.max(maxPriority, l.priority());
        }
        boolean hostnameForHashing = config.commonLbConfig().useHostnameForHashing();
        List<List<HostSet.LocalityHosts>> byPriority = new ArrayList<>();
        for (int p = 0; p <= maxPriority; p++) {
            byPriority.add(new ArrayList<>());
        }
        for (LocalityLbEndpoints l : cla.endpoints()) {
            List<Host> group = new ArrayList<>(l.lbEndpoints().size());
            for (LbEndpoint e : l.lbEndpoints()) {
                String key = e.address().toString();
                if (next.containsKey(key)) {
                    continue; // an address listed twice: the first listing wins
                }
                Host h = previous.get(key);
                if (h != null && healthChecker != null && HealthChecker.port(h.address(), h.healthCheckConfig())
                        != HealthChecker.port(e.address(), e.healthCheckConfig())) {
                    // as Envoy's in-place update, skipped when the health check address changed: a new host, failed
                    // until its first check on the new port (the old one leaves, its pool drained)
                    h = null;
                }
                if (h == null) {
                    h = new Host(e.address(), e, l.locality(), l.priority(), outlierDetector.newMonitor(),
                            new HostPool(e.address()), hostnameForHashing);
                    // as Envoy: a new host of a cluster with health checks is unhealthy until its first check
                    h.failedActiveHc = healthChecker != null && !e.healthCheckConfig().disableActiveHealthCheck();
                } else {
                    h.update(e, l.locality(), l.priority(), hostnameForHashing);
                    h.pendingDynamicRemoval = false; // back before its checks failed it: a host as any other
                }
                chooseSocket(h, l.metadata(), sockets);
                next.put(key, h);
                group.add(h);
            }
            byPriority.get(l.priority()).add(new HostSet.LocalityHosts(l.locality(), l.loadBalancingWeight(), group));
        }
        if (keepPassing) {
            keepPassingHosts(previous, next, byPriority);
        }
        // in the load assignment's order, which /clusters and the endpoint tables list them in, as Envoy's
        Map<String, Host> nextHosts = java.util.Collections.unmodifiableMap(next);
        TransportSockets in = sockets;
        originalDstHosts.values().forEach(h -> chooseSocket(h, Metadata.EMPTY, in));
        this.hosts = nextHosts;
        this.byPriority = byPriority;
        this.overprovisioningFactor = cla.overprovisioningFactor();
        this.weightedPriorityHealth = cla.weightedPriorityHealth();
        watchOutliers();
        if (healthChecker != null) {
            int unchecked = healthChecker.setHosts(nextHosts.values());
            if (warming && pendingInitializeChecks < 0 && !(config.type().resolvesNames() && resolvedDns == null)) {
                // the first host set (a DNS cluster's first resolution): Envoy's onInitDone counts its checked hosts
                pendingInitializeChecks = (int) nextHosts.values().stream()
                        .filter(h -> !h.healthCheckConfig().disableActiveHealthCheck()).count();
                if (pendingInitializeChecks == 0) {
                    endWarming();
                }
            } else if (warming && pendingInitializeChecks > 0 && unchecked > 0) {
                // hosts that left before their first check count as checked, as Envoy's session deleted before its
                // first check runs the checker's callbacks: the warming waits for no check that will never come
                pendingInitializeChecks = Math.max(0, pendingInitializeChecks - unchecked);
                if (pendingInitializeChecks == 0) {
                    endWarming();
                }
            }
        }
        rebuild();
        boolean changed = !previous.keySet().equals(nextHosts.keySet())
                || previous.entrySet().stream().anyMatch(e -> nextHosts.get(e.getKey()) != e.getValue());
        if (changed) {
            membershipChanged();
        }
        Cluster c = config;
        for (Map.Entry<String, Host> e : previous.entrySet()) {
            // close_connections_on_host_set_change: a host added or removed drains every host's connections
            if (nextHosts.get(e.getKey()) != e.getValue()) {
                e.getValue().pool.retire();
            } else if (changed && c != null && c.commonLbConfig().closeConnectionsOnHostSetChange()) {
                e.getValue().pool.drain();
            }
        }
    }

    /**
     * Envoy's hosts pending dynamic removal: a host that left an EDS assignment or a STRICT_DNS cluster's answers
     * stays, flagged {@code PENDING_DYNAMIC_REMOVAL}, in its priority and locality (a locality no longer in the
     * assignment with weight 0, as Envoy's), when the cluster has health checks, no
     * {@code ignore_health_on_host_removal}, and the host is checked and neither failed by its checks nor by EDS
     * (UNHEALTHY, DRAINING, TIMEOUT); outlier ejection does not count. It keeps taking traffic while healthy, its
     * checks and its connections, and counts among the cluster's hosts ({@code membership_total}). STATIC and
     * LOGICAL_DNS clusters never keep one: Envoy replaces a static cluster whole on an update, and updates a logical
     * DNS cluster's one host in place. A host whose address is listed again was taken back above (the flag cleared).
     * Nor does a change of the cluster's configuration keep one (another EDS service name, other DNS names, or any
     * other field): Envoy builds a new cluster from it, whose hosts are its assignment's only, where Inmesh updates the
     * cluster in place (the hosts that stay keep their health).
     */
    private void keepPassingHosts(Map<String, Host> previous, Map<String, Host> next,
                                  List<List<HostSet.LocalityHosts>> byPriority) {
        Cluster c = config;
        if (healthChecker == null || c.ignoreHealthOnHostRemoval()
                || c.type() != DiscoveryType.EDS && c.type() != DiscoveryType.STRICT_DNS) {
            return;
        }
        for (Host h : previous.values()) {
            HealthStatus eds = h.healthStatus();
            boolean edsFailed = eds == HealthStatus.UNHEALTHY || eds == HealthStatus.DRAINING
                    || eds == HealthStatus.TIMEOUT;
            if (next.containsKey(h.addressString()) || h.failedActiveHc || edsFailed
                    || h.healthCheckConfig().disableActiveHealthCheck()) {
                continue;
            }
            h.pendingDynamicRemoval = true;
            next.put(h.addressString(), h);
            while (byPriority.size() <= h.priority()) {
                byPriority.add(new ArrayList<>());
            }
            List<HostSet.LocalityHosts> groups = byPriority.get(h.priority());
            HostSet.LocalityHosts group = groups.stream().filter(g -> g.locality().equals(h.locality())).findFirst()
                    .orElse(null);
            if (group == null) {
                group = new HostSet.LocalityHosts(h.locality(), 0, new ArrayList<>());
                groups.add(group);
            }
            group.hosts().add(h);
        }
    }

    /** Recompiles the priority set from the current hosts and their health; called on ejections and returns too. */
    synchronized void rebuild() {
        Cluster c = config;
        if (c == null || loadBalancer == null) {
            return;
        }
        // slow start counts from the first build that finds a host healthy (Envoy: the first refresh that does)
        long now = env.ticker().nanoTime();
        for (Host h : hosts.values()) {
            h.noteHealthy(now);
        }
        prioritySet = PrioritySet.build(byPriority, overprovisioningFactor, weightedPriorityHealth,
                c.commonLbConfig().healthyPanicThreshold(), c.commonLbConfig().localityWeighted(),
                c.commonLbConfig().failTrafficOnPanic(), loadBalancer, prioritySet);
    }

    private void scheduleTimers(Cluster old) {
        var vertx = env.vertx();
        if (vertx == null) {
            return;
        }
        Cluster c = config;
        long interval = c.outlierDetection() == null ? 0 : c.outlierDetection().interval().toMillis();
        if (interval != outlierIntervalMillis) {
            if (outlierTimer >= 0) {
                vertx.cancelTimer(outlierTimer);
                outlierTimer = -1;
            }
            if (interval > 0) {
                outlierTimer = vertx.setPeriodic(interval, id -> outlierDetector.runInterval());
            }
            outlierIntervalMillis = interval;
        }
        boolean dns = c.type().resolvesNames();
        if (dnsTimer >= 0 && (!dns || !old.dnsRefreshRate().equals(c.dnsRefreshRate())
                || old.respectDnsTtl() != c.respectDnsTtl() || !old.dnsJitter().equals(c.dnsJitter())
                || !java.util.Objects.equals(old.dnsFailureRefreshRate(), c.dnsFailureRefreshRate()))) {
            vertx.cancelTimer(dnsTimer);
            dnsTimer = -1;
            dnsFailureIntervalMillis = 0;
        }
        if (dns && dnsTimer < 0) {
            if (chainsResolutions(c)) {
                // each resolution sets the next (by its records' TTL, plus the jitter); until one does, the refresh
                // rate
                scheduleResolve(c.dnsRefreshRate().toMillis() + jitterMillis(c, env.random()));
            } else {
                dnsTimer = vertx.setPeriodic(Math.max(1, c.dnsRefreshRate().toMillis()), id -> resolve());
            }
        }
        boolean origDst = c.type() == DiscoveryType.ORIGINAL_DST;
        if (cleanupTimer >= 0 && (!origDst || !old.cleanupInterval().equals(c.cleanupInterval()))) {
            vertx.cancelTimer(cleanupTimer);
            cleanupTimer = -1;
        }
        if (origDst && cleanupTimer < 0) {
            cleanupTimer = vertx.setPeriodic(Math.max(1, c.cleanupInterval().toMillis()),
                    id -> cleanupOriginalDestinations());
        }
    }

    // ---- STRICT_DNS and LOGICAL_DNS ----

    /** The next resolution of a {@code respect_dns_ttl} cluster, in place of any planned before. */
    private synchronized void scheduleResolve(long delayMillis) {
        var vertx = env.vertx();
        if (vertx == null || closed) {
            return;
        }
        if (dnsTimer >= 0) {
            vertx.cancelTimer(dnsTimer);
        }
        long[] timer = new long[1];
        timer[0] = vertx.setTimer(Math.max(1, delayMillis), id -> {
            synchronized (this) {
                if (dnsTimer != timer[0]) {
                    return;
                }
                dnsTimer = -1;
            }
            resolve();
        });
        dnsTimer = timer[0];
    }

    /**
     * When a {@code respect_dns_ttl} cluster resolves again: once the smallest TTL of the records just found is up;
     * at {@code dns_refresh_rate} when no record had one (none found, a TTL of 0, or every lookup failed). Envoy keeps
     * a timer per name; one for the cluster, at the soonest name's time, asks the other names early rather than late.
     */
    static long nextResolveMillis(Cluster c, List<io.vertx.core.Future<DnsResolver.Answer>> lookups) {
        long ttl = 0;
        if (c.respectDnsTtl()) {
            for (io.vertx.core.Future<DnsResolver.Answer> f : lookups) {
                if (f.succeeded() && f.result() != null && f.result().ttlSeconds() > 0) {
                    ttl = ttl == 0 ? f.result().ttlSeconds() : Math.min(ttl, f.result().ttlSeconds());
                }
            }
        }
        return ttl == 0 ? c.dnsRefreshRate().toMillis() : Math.multiplyExact(ttl, 1000L);
    }

    /**
     * The wait before a DNS cluster's next resolution: {@link #nextResolveMillis}, plus the jitter when a lookup
     * succeeded ({@link #updatesHosts}: Envoy adds it to a completed resolution's refresh only; after a failure, a
     * LOGICAL_DNS cluster's empty answer included, it waits the failure refresh, which without
     * {@code dns_failure_refresh_rate} is the refresh rate).
     */
    static long nextDelayMillis(Cluster c, List<io.vertx.core.Future<DnsResolver.Answer>> lookups,
                                java.util.random.RandomGenerator random) {
        return nextDelayMillis(c, lookups, succeeded(c, lookups), random);
    }

    private static long nextDelayMillis(Cluster c, List<io.vertx.core.Future<DnsResolver.Answer>> lookups,
                                        boolean succeeded, java.util.random.RandomGenerator random) {
        long next = nextResolveMillis(c, lookups);
        return succeeded ? next + jitterMillis(c, random) : next;
    }

    /** Whether a lookup of a resolution succeeded ({@link #updatesHosts}), which resets the failure back-off. */
    private static boolean succeeded(Cluster c, List<io.vertx.core.Future<DnsResolver.Answer>> lookups) {
        for (io.vertx.core.Future<DnsResolver.Answer> f : lookups) {
            if (updatesHosts(c, f)) {
                return true;
            }
        }
        return false;
    }

    /**
     * The wait after a resolution of a cluster with a {@code dns_failure_refresh_rate}: as without it when a lookup
     * succeeded, which starts the back-off over; else Envoy's jittered exponential back-off
     * ({@code JitteredExponentialBackOffStrategy}): a random wait in [0, interval), the interval the base after a
     * success and doubled with each failure in a row until doubling would pass the max, then the max. Envoy keeps one
     * back-off for a STRICT_DNS cluster's names, as this one for the cluster.
     */
    private long nextDelayWithBackOffMillis(Cluster c, List<io.vertx.core.Future<DnsResolver.Answer>> lookups) {
        Cluster.RefreshRate backOff = c.dnsFailureRefreshRate();
        boolean succeeded = succeeded(c, lookups);
        if (backOff == null || succeeded) {
            dnsFailureIntervalMillis = 0;
            return nextDelayMillis(c, lookups, succeeded, env.random());
        }
        long base = backOff.baseInterval().toMillis();
        long max = backOff.maxInterval().toMillis();
        long interval = dnsFailureIntervalMillis == 0 ? base : dnsFailureIntervalMillis;
        dnsFailureIntervalMillis = interval < max / 2 ? interval * 2 : max;
        return env.random().nextLong(Math.max(1, interval));
    }

    /**
     * Whether a lookup is what Envoy takes as a successful resolution, which sets its name's hosts: any answer for a
     * STRICT_DNS cluster, one with no address included; only one with an address for a LOGICAL_DNS cluster, where
     * Envoy counts an empty answer as a failure.
     */
    private static boolean updatesHosts(Cluster c, io.vertx.core.Future<DnsResolver.Answer> lookup) {
        return lookup.succeeded() && (c.type() != DiscoveryType.LOGICAL_DNS
                || lookup.result() != null && !lookup.result().addresses().isEmpty());
    }

    /**
     * Whether each resolution plans the next one (a TTL to follow, a jitter to draw each time, or a failure back-off),
     * rather than a periodic timer.
     */
    private static boolean chainsResolutions(Cluster c) {
        return c.respectDnsTtl() || !c.dnsJitter().isZero() || c.dnsFailureRefreshRate() != null;
    }

    /**
     * The random delay Envoy adds to a DNS cluster's next refresh: in [0, {@code dns_jitter}) milliseconds, none
     * without a jitter.
     */
    static long jitterMillis(Cluster c, java.util.random.RandomGenerator random) {
        long bound = c.dnsJitter().toMillis();
        if (bound <= 0) {
            return 0;
        }
        return random == null ? java.util.concurrent.ThreadLocalRandom.current().nextLong(bound)
                : random.nextLong(bound);
    }

    /**
     * Resolves every endpoint's name and replaces the hosts with the addresses found. As in Envoy, each name is a
     * target of its own: a failed lookup keeps that name's addresses from its last good one (none before it has
     * had one), and a STRICT_DNS lookup that succeeds replaces them, with no address at all if it found none (the
     * name does not exist, or has no address of the family). A LOGICAL_DNS cluster's one name gives one host, the
     * first address found; an answer with no address changes nothing there, as Envoy's logical DNS cluster takes only
     * a successful, non-empty answer (logical_dns_cluster.cc), so that its host does not fall back to none.
     */
    void resolve() {
        Cluster c;
        synchronized (this) {
            c = config;
            if (closed || !c.type().resolvesNames() || env.resolver() == null) {
                return;
            }
        }
        boolean logical = c.type() == DiscoveryType.LOGICAL_DNS;
        ClusterLoadAssignment source = c.loadAssignment();
        var stats = stats();
        List<io.vertx.core.Future<DnsResolver.Answer>> lookups = new ArrayList<>();
        for (LocalityLbEndpoints l : source.endpoints()) {
            for (LbEndpoint e : l.lbEndpoints()) {
                if (stats != null) {
                    stats.updateAttempt(); // as Envoy, each name's lookup is one
                }
                // the TTLs only count with respect_dns_ttl (a resolver that has none answers 0)
                lookups.add(env.resolver().resolveWithTtl(e.address().address(), c.dnsLookupFamily()));
            }
        }
        io.vertx.core.Future.join(lookups).onComplete(ar -> {
            synchronized (this) {
                if (closed || config.type() != c.type() || !config.loadAssignment().equals(source)) {
                    return;
                }
                if (dnsTargets == null || !source.equals(dnsTargetsSource)) {
                    dnsTargets = new ArrayList<>(java.util.Collections.nCopies(lookups.size(), List.of()));
                    dnsTargetsSource = source;
                }
                List<LocalityLbEndpoints> resolved = new ArrayList<>();
                int i = 0;
                for (LocalityLbEndpoints l : source.endpoints()) {
                    List<LbEndpoint> eps = new ArrayList<>();
                    for (LbEndpoint e : l.lbEndpoints()) {
                        int target = i++;
                        io.vertx.core.Future<DnsResolver.Answer> f = lookups.get(target);
                        UpstreamStats.UpdateOutcome outcome = UpstreamStats.UpdateOutcome.FAILURE;
                        if (updatesHosts(c, f)) {
                            List<String> found = List.copyOf(f.result() == null ? List.of() : f.result().addresses());
                            List<String> before = dnsTargets.set(target, found);
                            // as Envoy: a logical host is rebuilt when its answer's list moved, a strict name's hosts
                            // when an address came or went
                            outcome = (logical ? before.equals(found) : Set.copyOf(before).equals(Set.copyOf(found)))
                                    ? UpstreamStats.UpdateOutcome.NO_REBUILD : UpstreamStats.UpdateOutcome.SUCCESS;
                        } else {
                            LOG.log(Level.FINE, "cluster " + name + ": DNS lookup of " + e.address().address()
                                    + (f.succeeded() ? " found no address" : " failed") + "; keeping its last addresses",
                                    f.cause());
                        }
                        if (stats != null) {
                            stats.updateOutcome(outcome);
                        }
                        // the host's name is the endpoint's hostname, else the name resolved (auto_host_rewrite)
                        String hostname = e.hostname().isEmpty() ? e.address().address() : e.hostname();
                        List<String> addresses = dnsTargets.get(target);
                        // a LOGICAL_DNS cluster's one host: the first address of its name's last answer
                        for (String ip : logical && addresses.size() > 1 ? addresses.subList(0, 1) : addresses) {
                            eps.add(new LbEndpoint(new SocketAddress(ip, e.address().port()), hostname,
                                    e.healthStatus(), e.loadBalancingWeight(), e.metadata(), List.of(),
                                    e.healthCheckConfig()));
                        }
                    }
                    resolved.add(new LocalityLbEndpoints(l.locality(), eps, l.loadBalancingWeight(), l.priority(),
                            l.metadata()));
                }
                resolvedDns = new ClusterLoadAssignment(source.clusterName(), resolved,
                        source.overprovisioningFactor(), source.weightedPriorityHealth());
                assignment = resolvedDns;
                setHosts(resolvedDns, true);
                if (chainsResolutions(config)) {
                    scheduleResolve(nextDelayWithBackOffMillis(config, lookups));
                }
            }
        });
    }

    // ---- ORIGINAL_DST ----

    private Host originalDestination(SocketAddress destination) {
        if (destination == null) {
            return null;
        }
        boolean[] added = {false};
        // one host per address as Envoy prints it (an IPv6 one in its RFC 5952 form), named as Envoy names it: the
        // cluster's name and that address
        String address = IpLiterals.hostPort(destination.address(), destination.port());
        Host h = originalDstHosts.computeIfAbsent(address, k -> {
            Host made = new Host(destination, new LbEndpoint(destination, name + address, null, 1, null),
                    Locality.EMPTY, 0, outlierDetector.newMonitor(), new HostPool(destination), false);
            chooseSocket(made, Metadata.EMPTY, sockets);
            membershipChanged();
            added[0] = true;
            return made;
        });
        if (added[0]) {
            watchOutliers();
        }
        h.used = true;
        return h;
    }

    /**
     * Gives outlier detection the hosts it watches, {@link #hosts()}: the load assignment's, or an ORIGINAL_DST
     * cluster's hosts made for destinations, as Envoy's detector watches every host its cluster adds (an ORIGINAL_DST host too: its
     * statistics and {@code /clusters} flags move, though its load balancer, ignoring health, still picks it).
     */
    private void watchOutliers() {
        synchronized (outlierDetector) { // one list at a time, so that a host added beside another is not lost
            outlierDetector.setHosts(hosts());
        }
    }

    /**
     * Every {@code cleanup_interval}, as Envoy's {@code OriginalDstCluster::cleanup()}: a host picked since the
     * previous sweep is kept and marked unused for the next one; one that was not is kept while it is in use (a request
     * in flight, a {@code tcp_proxy} connection, or a connection its pool holds, idle ones too: Envoy's
     * {@code original_dst_rely_on_idle_timeout}, on by default, leaves their end to the cluster's {@code idle_timeout})
     * and dropped otherwise.
     */
    void cleanupOriginalDestinations() {
        for (Map.Entry<String, Host> e : originalDstHosts.entrySet()) {
            Host h = e.getValue();
            if (h.used) {
                h.used = false;
            } else if (h.activeRequests() == 0 && !h.pool.inUse() && originalDstHosts.remove(e.getKey(), h)) {
                h.pool.retire();
                membershipChanged();
                watchOutliers();
            }
        }
    }

    /** Stops timers and drains every pool; requests in flight may finish. */
    synchronized void close() {
        closed = true;
        endWarming();
        var vertx = env.vertx();
        if (vertx != null) {
            for (long t : new long[] {outlierTimer, dnsTimer, cleanupTimer}) {
                if (t >= 0) {
                    vertx.cancelTimer(t);
                }
            }
        }
        outlierTimer = dnsTimer = cleanupTimer = -1;
        if (healthChecker != null) {
            healthChecker.close();
        }
        var s = stats();
        if (s != null) {
            s.membershipFrom(null); // a cluster that is gone has no hosts
        }
        sockets.slots().forEach(UpstreamCluster::unwatch);
        hosts.values().forEach(h -> h.pool.retire());
        originalDstHosts.values().forEach(h -> h.pool.retire());
        originalDstHosts.clear();
    }

    @Override
    public String toString() {
        return "UpstreamCluster[" + name + ", " + hosts.size() + " hosts]";
    }
}
