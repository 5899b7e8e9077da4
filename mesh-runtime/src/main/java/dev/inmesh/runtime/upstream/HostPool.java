package dev.inmesh.runtime.upstream;

import dev.inmesh.api.config.core.Http2ProtocolOptions;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.core.TcpKeepalive;
import io.netty.channel.EventLoop;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.impl.HttpClientConnectionInternal;
import io.vertx.core.internal.ContextInternal;
import io.vertx.core.internal.VertxInternal;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One host's connection pool: a Vert.x HttpClient whose default host and port are the host's, made on first use
 * with the cluster's settings (HTTP/1.1 keep-alive or h2c with prior knowledge, each a client of its own, over TLS
 * when the host's transport socket is TLS (HTTP/2 then through ALPN), connect
 * timeout, bind address, connection and pending limits from the circuit breakers; for HTTP/2, connections that each
 * carry at most {@code max_concurrent_streams} streams, another opened when all are at it (see {@link Http2Pool}), with
 * the cluster's windows and header table size; the connections' idle timeout, maximum duration and, for HTTP/1.1, maximum requests; TCP keep-alive),
 * split by event loop when the limits are generous (see {@link Current}). When the settings change, the old clients
 * drain gracefully and new ones are made; when the host leaves the cluster they drain for deletion, still serving the
 * requests that chose the host before (see {@link #retire}). A TLS cluster with {@code auto_sni} or
 * {@code auto_san_validation} keeps a pool of its own per request host name, and requests from an original source
 * ({@code original_src}) a pool per source (see {@link #client(Vertx, Settings, CircuitBreakerState, String,
 * OriginalSrcBind)}), as Envoy keys its pools by the SNI, the SANs to check and the socket options. Each of these
 * pools, per protocol, counts under the cluster's {@code max_connection_pools} (its default priority's, as the
 * pools and their connections are shared by both priorities), where Envoy counts a pool per host, protocol, socket
 * options and worker thread; one pool here serves every event loop.
 */
final class HostPool {
    private static final Logger LOG = Logger.getLogger(HostPool.class.getName());

    /** The largest upstream response head taken: Envoy's default {@code max_response_headers_kb}, 60 KiB. */
    static final int MAX_RESPONSE_HEAD_BYTES = 60 * 1024;

    /** How long a pool that is being replaced or closed lets its requests in flight finish. */
    static final long DRAIN_SECONDS = 30;
    /**
     * The most connections one host's pool opens. Vert.x sizes its pool's slot array by the maximum, so Istio's
     * "unlimited" circuit breakers (max_connections 4294967295) cannot be passed on as they are; beyond this many
     * connections to one host, requests wait in the pool (the cluster's circuit breakers still count them).
     */
    static final int MAX_POOL_SIZE = 1024;
    /**
     * The most pools one host keeps per request host name ({@code auto_sni}) and original source
     * ({@code original_src}) before a new one frees an idle one: the least recently used of those with no request
     * under way or waiting (Envoy's {@code ConnPoolMap} frees a pool without active requests). A busy pool is never
     * drained: with none idle the pools grow past this, as Envoy's do when {@code max_connection_pools} is not set
     * (which, when set, bounds the pools of all the cluster's hosts, see {@link #reservePool}). A caller sending
     * ever new Host values, or ever new clients, one at a time still cannot grow the pools without bound.
     */
    static final int MAX_HOST_NAMES = 1024;
    /**
     * How recently a pool must not have been handed out for its last connection's close to remove it: the caller
     * that took it may not have sent its request yet, which a removed (closed) pool would refuse.
     */
    static final long RECENT_USE_NANOS = TimeUnit.SECONDS.toNanos(1);
    /**
     * How long after its host left the cluster a pool keeps its idle connections and takes requests as before: a
     * caller handed the pool just before may not have asked its request yet, which a closed pool would refuse (Envoy
     * has no such gap: a worker picks the host and attaches its stream in one step), the gap
     * {@link #RECENT_USE_NANOS} allows for too. Then the pool drains for deletion
     * ({@link PendingRequest.Queue#closeWhenDone}).
     */
    static final long RETIRED_GRACE_MILLIS = TimeUnit.NANOSECONDS.toMillis(RECENT_USE_NANOS);

    /**
     * The settings a pool is made with.
     *
     * @param idleTimeoutMillis how long a connection may carry no request before it is closed; 0: never
     * @param maxLifetimeMillis how long after it was opened a connection is handed no new request (it closes once its
     *     requests are done); 0: no limit
     * @param maxRequestsPerConnection how many requests (HTTP/2: streams) a connection carries; 0: no limit
     * @param tls TLS to the host (HTTP/2 then negotiated through ALPN), or null for plaintext
     * @param tcpKeepalive TCP keep-alive on each connection, or null for none
     * @param http2Options the HTTP/2 connections' settings: streams per connection, windows, header table
     * @param clusterWide the connection and pending limits are the cluster's, across its hosts, as in Envoy (a cluster
     *     of several hosts whose {@code max_connections} is under {@link #MAX_POOL_SIZE}): the pool is an
     *     {@link Http2Pool} that reads the cluster's counts, HTTP/1.1 too; else each host's pool holds them
     * @param http1Trailers whether the trailers of a chunked HTTP/1.1 response are kept (the cluster's
     *     {@code enable_trailers}); else they are dropped, as Envoy's HTTP/1 codec drops them
     */
    record Settings(long connectTimeoutMillis, boolean http2, String localAddress, int maxConnections,
                    int maxPending, long idleTimeoutMillis, long maxLifetimeMillis, long maxRequestsPerConnection,
                    UpstreamTls tls, TcpKeepalive tcpKeepalive, Http2ProtocolOptions http2Options,
                    boolean clusterWide, boolean http1Trailers) {

        Settings {
            http2Options = http2Options == null ? Http2ProtocolOptions.DEFAULTS : http2Options;
        }

        /** With each host's pool holding the limits. */
        Settings(long connectTimeoutMillis, boolean http2, String localAddress, int maxConnections, int maxPending,
                 long idleTimeoutMillis, long maxLifetimeMillis, long maxRequestsPerConnection, UpstreamTls tls,
                 TcpKeepalive tcpKeepalive, Http2ProtocolOptions http2Options) {
            this(connectTimeoutMillis, http2, localAddress, maxConnections, maxPending, idleTimeoutMillis,
                    maxLifetimeMillis, maxRequestsPerConnection, tls, tcpKeepalive, http2Options, false, false);
        }

        /** These settings keeping an HTTP/1.1 response's trailers, or dropping them. */
        Settings withHttp1Trailers(boolean keep) {
            return keep == http1Trailers ? this : new Settings(connectTimeoutMillis, http2, localAddress,
                    maxConnections, maxPending, idleTimeoutMillis, maxLifetimeMillis, maxRequestsPerConnection, tls,
                    tcpKeepalive, http2Options, clusterWide, keep);
        }

        /** These settings with another local address. */
        Settings withLocalAddress(String address) {
            return new Settings(connectTimeoutMillis, http2, address, maxConnections, maxPending, idleTimeoutMillis,
                    maxLifetimeMillis, maxRequestsPerConnection, tls, tcpKeepalive, http2Options, clusterWide,
                    http1Trailers);
        }

        /** These settings with the limits held across the cluster's hosts, or by each host's pool. */
        Settings clusterWide(boolean wide) {
            return wide == clusterWide ? this : new Settings(connectTimeoutMillis, http2, localAddress,
                    maxConnections, maxPending, idleTimeoutMillis, maxLifetimeMillis, maxRequestsPerConnection, tls,
                    tcpKeepalive, http2Options, wide, http1Trailers);
        }

        /** With Envoy's default HTTP/2 settings. */
        Settings(long connectTimeoutMillis, boolean http2, String localAddress, int maxConnections, int maxPending,
                 long idleTimeoutMillis, long maxLifetimeMillis, long maxRequestsPerConnection, UpstreamTls tls,
                 TcpKeepalive tcpKeepalive) {
            this(connectTimeoutMillis, http2, localAddress, maxConnections, maxPending, idleTimeoutMillis,
                    maxLifetimeMillis, maxRequestsPerConnection, tls, tcpKeepalive, null);
        }

        /** Without TCP keep-alive. */
        Settings(long connectTimeoutMillis, boolean http2, String localAddress, int maxConnections, int maxPending,
                 long idleTimeoutMillis, long maxLifetimeMillis, long maxRequestsPerConnection, UpstreamTls tls) {
            this(connectTimeoutMillis, http2, localAddress, maxConnections, maxPending, idleTimeoutMillis,
                    maxLifetimeMillis, maxRequestsPerConnection, tls, null);
        }

        /** Plaintext. */
        Settings(long connectTimeoutMillis, boolean http2, String localAddress, int maxConnections, int maxPending,
                 long idleTimeoutMillis, long maxLifetimeMillis, long maxRequestsPerConnection) {
            this(connectTimeoutMillis, http2, localAddress, maxConnections, maxPending, idleTimeoutMillis,
                    maxLifetimeMillis, maxRequestsPerConnection, null);
        }

        /** With Envoy's default connection lifetimes: closed after an hour unused, no other limit. */
        Settings(long connectTimeoutMillis, boolean http2, String localAddress, int maxConnections, int maxPending) {
            this(connectTimeoutMillis, http2, localAddress, maxConnections, maxPending, 3_600_000, 0, 0);
        }
    }

    /**
     * A pool is split by event loop when each loop's share of the connection limit is at least this many connections;
     * with a tighter limit one pool serves every loop, so that the limit holds exactly.
     */
    static final int MIN_CONNECTIONS_PER_LOOP = 8;

    private final SocketAddress address;
    /** The host name of this pool's requests (its SNI or SAN to check), or null for the host's own pool. */
    private final String requestHost;
    /** The host's own pool: the pools per request host name and original source; null in those. */
    private final ConcurrentHashMap<SubPool, HostPool> byHost;
    /** The host's own pool: how many pools it keeps before a new one frees an idle one. */
    private final int maxSubPools;
    /** A pool per request host name or original source: the host's own pool and this one's key; else null. */
    private final HostPool owner;
    private final SubPool key;
    /** When a pool per request host name or original source was last handed out ({@link System#nanoTime}). */
    private volatile long lastUsed;
    /** This pool's connections that are open, its own clients' and those draining. */
    private final AtomicInteger openConnections = new AtomicInteger();

    /** What a pool of its own is kept for: a request host name, an original source, or both (either may be null). */
    private record SubPool(String requestHost, OriginalSrcBind source) {}
    /** The host's statistics, which count this pool's connections; set once the host is made. */
    private volatile HostStats stats;
    /**
     * The HTTP/1.1 clients and the settings they were made with, or null: read without the lock on the request path,
     * replaced under it.
     */
    private volatile Current current;
    /**
     * The h2c clients, as {@link #current}: a cluster that uses its downstream's protocol has both, as Envoy keeps a
     * pool per protocol for each host.
     */
    private volatile Current currentH2;
    /**
     * Whether this pool no longer belongs to its cluster: its host left it (EDS, a cluster closed, an original
     * destination cleaned up), or, for a pool per request host name or source, its host's pool let it go. A request
     * that chose the host just before still gets a client, but that pool no longer counts under
     * {@code max_connection_pools}: it is made for that request alone and closes once the request is done.
     */
    private volatile boolean retired;
    /** Requests carried so far, by connection, under {@code max_requests_per_connection}; dropped when it closes. */
    private final ConcurrentHashMap<HttpConnection, AtomicLong> served;

    /**
     * The client for callers off Vert.x's threads, and, when the limits allow, one client per event loop: Vert.x's
     * pool hands a connection to whichever caller asks next, whatever loop the connection lives on, and every
     * request on a connection of another loop hops threads twice. Each loop's client opens its connections on its own
     * loop (as Envoy's per-worker pools), with the loop's share of the connection limit; the pending limit is the
     * cluster's breakers', shared by every loop's pool (see {@link PendingRequest.Queue#request}).
     */
    private record Current(HttpClient client, Settings settings, int loops,
                           ConcurrentHashMap<EventLoop, HttpClient> perLoop, CircuitBreakerState breakers,
                           Vertx vertx) {}

    HostPool(SocketAddress address) {
        this(address, MAX_HOST_NAMES);
    }

    /** A host's pool that keeps {@code maxSubPools} pools per request host name and source before freeing one. */
    HostPool(SocketAddress address, int maxSubPools) {
        this.address = address;
        this.requestHost = null;
        this.byHost = new ConcurrentHashMap<>();
        this.maxSubPools = maxSubPools;
        this.owner = null;
        this.key = null;
        this.served = new ConcurrentHashMap<>();
    }

    /**
     * The pool of one request host name or original source: the host's statistics and request counts are its own
     * pool's.
     */
    private HostPool(HostPool own, SubPool key) {
        this.address = own.address;
        this.requestHost = key.requestHost();
        this.byHost = null;
        this.maxSubPools = 0;
        this.owner = own;
        this.key = key;
        this.served = own.served;
        this.stats = own.stats;
    }

    void attach(HostStats stats) {
        this.stats = stats;
    }

    /**
     * The client for a request to the host, or null when this pool has none for the protocol and
     * {@code max_connection_pools} lets no new one be made, not even by freeing an idle one of the host (the router
     * then answers 503 with flag UH, as Envoy's does when its {@code ConnPoolMap} gives no pool).
     */
    HttpClient client(Vertx vertx, Settings wanted, CircuitBreakerState breakers) {
        if (!breakers.limitsConnectionPools()) {
            return pick(vertx, wanted, breakers); // no pool is freed for another: nothing to mark
        }
        // under the lock the frees take: a pool is handed out whole or freed before, never freed after
        synchronized (owner == null ? this : owner) {
            HttpClient client = pick(vertx, wanted, breakers);
            if (client instanceof PendingRequest.Queue pool) {
                pool.handedOut();
            }
            return client;
        }
    }

    /**
     * The client of {@link #client(Vertx, Settings, CircuitBreakerState)}, not yet marked as handed out: under
     * {@code max_connection_pools}, a pool whose client was handed out counts as busy until the caller asks it for
     * its request ({@link PendingRequest.Queue#handedOut}), so that another host name or source that needs a pool
     * does not free it in between (its request would fail on a closed client). Envoy has no such gap: a worker gets
     * its pool and attaches its stream in one step.
     */
    private HttpClient pick(Vertx vertx, Settings wanted, CircuitBreakerState breakers) {
        Current c = wanted.http2() ? currentH2 : current;
        if (c == null || (c.settings != wanted && !c.settings.equals(wanted))) {
            boolean reserved = c == null && !retired();
            if (reserved && !(owner == null ? this : owner).reservePool(breakers, this)) {
                return null;
            }
            c = rebuild(vertx, wanted, breakers, reserved);
        }
        if (c.perLoop != null) {
            ContextInternal ctx = (ContextInternal) Vertx.currentContext();
            if (ctx != null) {
                HttpClient own = c.perLoop.get(ctx.nettyEventLoop());
                return own != null ? own : loopClient(vertx, c, ctx.nettyEventLoop(), breakers);
            }
        }
        return c.client;
    }

    /**
     * The client for requests to {@code requestHost} of a cluster whose TLS takes the SNI or the SAN to check from
     * the request's host (null: any other cluster), from {@code source} (null: none; {@code wanted} then binds it):
     * a pool per name and source, as a connection made for one name, or from one client's address, must not carry
     * another's requests.
     */
    HttpClient client(Vertx vertx, Settings wanted, CircuitBreakerState breakers, String requestHost,
                      OriginalSrcBind source) {
        SubPool key = new SubPool(requestHost, source);
        HostPool p = byHost.get(key);
        if (p == null) {
            p = hostPool(key);
        }
        p.lastUsed = System.nanoTime();
        HttpClient client = p.client(vertx, wanted, breakers);
        if (client == null) {
            dropUnused(p);
        }
        return client;
    }

    /** Forgets {@code sub}, a pool per request host name or source that {@code max_connection_pools} left empty. */
    private synchronized void dropUnused(HostPool sub) {
        if (sub.current == null && sub.currentH2 == null) {
            byHost.remove(sub.key, sub);
        }
    }

    /**
     * Counts a new pool of this host (this is the host's own pool) for {@code requester} under
     * {@code max_connection_pools}; at the limit, frees an idle pool of this host first, as Envoy's
     * {@code ConnPoolMap::getPool} and {@code freeOnePool} do within one host's pools: the least recently used idle
     * pool per request host name or source, else the host's own idle pool of a protocol. False when none is idle.
     */
    private synchronized boolean reservePool(CircuitBreakerState breakers, HostPool requester) {
        if (breakers.tryOpenPool()) {
            return true;
        }
        if (!freeLeastRecentlyUsedIdle(requester) && !freeIdleCurrent()) {
            return false;
        }
        breakers.poolOpened(); // the freed pool's place
        return true;
    }

    /**
     * Removes and drains the least recently used per-name (or per-source) pool with nothing under way or waiting,
     * other than {@code except}; false when there is none.
     */
    private synchronized boolean freeLeastRecentlyUsedIdle(HostPool except) {
        HostPool lru = null;
        for (HostPool sub : byHost.values()) {
            if (sub != except && sub.idle() && (lru == null || sub.lastUsed - lru.lastUsed < 0)) {
                lru = sub;
            }
        }
        if (lru == null) {
            return false;
        }
        byHost.remove(lru.key, lru);
        lru.drain();
        return true;
    }

    /** Drains this pool's clients of one protocol that have no request under way or waiting; false when none. */
    private synchronized boolean freeIdleCurrent() {
        for (Current c : new Current[] {current, currentH2}) {
            if (c != null && idle(c)) {
                if (c == current) {
                    current = null;
                } else {
                    currentH2 = null;
                }
                close(c);
                return true;
            }
        }
        return false;
    }

    /**
     * Lets {@code c}'s requests in flight finish, serves those waiting for its connections, and closes each connection
     * once it is idle ({@link #closeWhenDone}); its pool is no longer counted. So for a host that left the cluster
     * ({@link #retired}), as Envoy's pools drain for deletion (its idle connections kept a moment for the requests
     * still asked of it), and for one that stays (outlier ejection, failed health checks, new settings, a pool freed
     * for {@code max_connection_pools}), whose idle connections close at once and whose waiting requests are served,
     * as Envoy's pool drains its existing connections; new requests of a host that stays get a new pool.
     */
    private void close(Current c) {
        closeWhenDone(c, retired() ? RETIRED_GRACE_MILLIS : 0);
        if (c.breakers != null) {
            c.breakers.poolClosed();
        }
    }

    /** Whether this pool, or the host's pool it is one of, left the cluster ({@link #retired}). */
    private boolean retired() {
        return retired || (owner != null && owner.retired);
    }

    /**
     * The pool of {@code name}, made when there is none. At {@link #maxSubPools}, the least recently used idle pool
     * drains to make room, as Envoy frees a pool without active requests; with none idle the pools grow.
     */
    private synchronized HostPool hostPool(SubPool name) {
        HostPool p = byHost.get(name);
        if (p != null) {
            return p;
        }
        if (byHost.size() >= maxSubPools) {
            freeLeastRecentlyUsedIdle(null);
        }
        p = new HostPool(this, name);
        p.lastUsed = System.nanoTime();
        byHost.put(name, p);
        return p;
    }

    /**
     * The last connection of {@code sub}, a pool per request host name or source, closed: an idle pool not handed
     * out just now goes, as Envoy deletes a pool once it has no connection and no request (its idle callback). Its
     * connections close after the cluster's {@code idle_timeout} unused, which bounds how long it stays.
     */
    private synchronized void lastConnectionClosed(HostPool sub) {
        if (byHost.get(sub.key) == sub && sub.idle() && System.nanoTime() - sub.lastUsed >= RECENT_USE_NANOS
                && sub.openConnections.get() == 0) {
            byHost.remove(sub.key, sub);
            sub.drain();
        }
    }

    /**
     * Whether this pool, or one of its pools per request host name or source, holds a connection (in use, idle or
     * draining) or a request waiting for one: while it does, Envoy's connection pool for the host exists and holds a
     * handle on the host ({@code HostImpl::used()}).
     */
    boolean inUse() {
        if (openConnections.get() > 0 || !idle()) {
            return true;
        }
        if (byHost != null) {
            for (HostPool sub : byHost.values()) {
                if (sub.inUse()) {
                    return true;
                }
            }
        }
        return false;
    }

    /** How many pools per request host name and source this host's pool keeps. */
    int subPools() {
        return byHost == null ? 0 : byHost.size();
    }

    /** Whether none of this pool's clients has a request under way or waiting for a connection. */
    private boolean idle() {
        for (Current c : new Current[] {current, currentH2}) {
            if (c != null && !idle(c)) {
                return false;
            }
        }
        return true;
    }

    private static boolean idle(Current c) {
        return idle(c.client) && (c.perLoop == null || c.perLoop.values().stream().allMatch(HostPool::idle));
    }

    private static boolean idle(HttpClient client) {
        return !(client instanceof PendingRequest.Queue pool) || pool.idle();
    }

    /**
     * Makes the clients of {@code wanted}'s protocol, replacing those of other settings; {@code reserved}: the caller
     * counted a new pool ({@link #reservePool}), which this one is, or which is given back when another caller made
     * it meanwhile; a pool {@link #retired} counts none (its {@code breakers} null).
     */
    private synchronized Current rebuild(Vertx vertx, Settings wanted, CircuitBreakerState breakers,
                                         boolean reserved) {
        Current old = wanted.http2() ? currentH2 : current;
        if (old != null && wanted.equals(old.settings)) {
            if (reserved) {
                breakers.poolClosed();
            }
            return old;
        }
        if (old != null) {
            close(old); // replaced: the new clients are the same pool, counted below
        }
        boolean counted = !retired();
        if (reserved && !counted) {
            breakers.poolClosed(); // retired meanwhile
        } else if (!reserved && counted) {
            breakers.poolOpened();
        }
        HttpClient shared = build(vertx, wanted, breakers, Math.min(MAX_POOL_SIZE, wanted.maxConnections()),
                wanted.maxPending());
        if (!counted) {
            // for a request that chose the host before it left: kept by no one, drained once that request is done
            Current once = new Current(shared, wanted, 1, null, null, vertx);
            closeWhenDone(once, RETIRED_GRACE_MILLIS);
            return once;
        }
        int loops = eventLoops(vertx);
        // the cluster's limits are counted by one pool per host, as tight limits are by one pool for every loop
        boolean split = loops > 1 && wanted.maxConnections() / loops >= MIN_CONNECTIONS_PER_LOOP
                && !wanted.clusterWide();
        Current made = new Current(shared, wanted, loops, split ? new ConcurrentHashMap<>() : null, breakers,
                vertx);
        if (wanted.http2()) {
            currentH2 = made;
        } else {
            current = made;
        }
        return made;
    }

    private synchronized HttpClient loopClient(Vertx vertx, Current c, EventLoop loop,
                                               CircuitBreakerState breakers) {
        if ((c.settings.http2() ? currentH2 : current) != c) {
            return c.client; // replaced meanwhile: the old shared client still drains
        }
        // max_pending_requests is not split: the router's requests count under the cluster's breakers, shared by
        // every loop's pool, as Envoy's workers share one count (the pool's own limit serves only other callers)
        return c.perLoop.computeIfAbsent(loop, l -> build(vertx, c.settings,
                breakers, Math.min(MAX_POOL_SIZE, c.settings.maxConnections() / c.loops), c.settings.maxPending()));
    }

    private static int eventLoops(Vertx vertx) {
        int n = 0;
        for (var ignored : ((VertxInternal) vertx).nettyEventLoopGroup()) {
            n++;
        }
        return n;
    }

    /**
     * A client for at most {@code maxConnections} connections to the host: for HTTP/2, a {@link Http2Pool} whose
     * lanes each hold one connection; for HTTP/1.1, an {@link Http1Pool} in front of a Vert.x client.
     */
    private HttpClient build(Vertx vertx, Settings wanted, CircuitBreakerState breakers, int maxConnections,
                             int maxPending) {
        if (wanted.clusterWide()) {
            // HTTP/1.1 lanes carry one request at a time, and count requests per connection here (lastRequestOn)
            boolean h2 = wanted.http2();
            return counted(new Http2Pool((VertxInternal) vertx, h2 ? wanted.http2Options().maxConcurrentStreams()
                    : 1, maxConnections, -1, h2 ? wanted.maxRequestsPerConnection() : 0,
                    lane -> connections(vertx, wanted, breakers, 1, h2 ? maxPending : -1, lane), breakers));
        }
        if (wanted.http2()) {
            return counted(new Http2Pool((VertxInternal) vertx, wanted.http2Options().maxConcurrentStreams(),
                    maxConnections, maxPending, wanted.maxRequestsPerConnection(),
                    lane -> connections(vertx, wanted, breakers, 1, maxPending, lane)));
        }
        // the requests beyond the connections wait in the Http1Pool, whose waiting requests can be cancelled
        return new Http1Pool((VertxInternal) vertx,
                pool -> connections(vertx, wanted, breakers, maxConnections, -1, pool), maxConnections, maxPending);
    }

    /**
     * A Vert.x client for at most {@code maxConnections} HTTP/1.1 connections (of an {@link Http1Pool}), or one HTTP/2
     * connection (a lane of {@link Http2Pool}; HTTP/1.1 if ALPN falls back to it) with the cluster's windows and
     * header table size; {@code lane} is told of its connections.
     */
    private HttpClient connections(Vertx vertx, Settings wanted, CircuitBreakerState breakers, int maxConnections,
                                   int maxPending, Connections lane) {
        HttpClientOptions options = new HttpClientOptions()
                .setDefaultHost(address.address())
                .setDefaultPort(address.port())
                .setConnectTimeout((int) Math.min(Integer.MAX_VALUE, wanted.connectTimeoutMillis()))
                .setKeepAlive(true)
                // response heads as large as Envoy takes (60 KiB), not Vert.x's 4 KiB status line and 8 KiB headers
                .setMaxInitialLineLength(MAX_RESPONSE_HEAD_BYTES)
                .setMaxHeaderSize(MAX_RESPONSE_HEAD_BYTES)
                // Envoy's idle_timeout is each connection's own timer (ConnectionTimers), in milliseconds; Vert.x's
                // (whole seconds, by a cleaner once a second, where its default would close after 60 s) only backs it
                .setKeepAliveTimeout(idleSeconds(wanted.idleTimeoutMillis()))
                .setHttp2KeepAliveTimeout(idleSeconds(wanted.idleTimeoutMillis()));
        options.getInitialSettings().setMaxHeaderListSize(MAX_RESPONSE_HEAD_BYTES);
        if (wanted.http2()) {
            Http2ProtocolOptions h2 = wanted.http2Options();
            // max_concurrent_streams is counted by the Http2Pool, not with Vert.x's multiplexing limit: Vert.x 5.0
            // never gives back the stream of a request reset before it was sent (the router resets those it gives
            // up), so under a limit each such request would cost the connection a stream for good. Vert.x still
            // holds a request beyond the server's SETTINGS_MAX_CONCURRENT_STREAMS until a stream ends.
            options.setProtocolVersion(HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false);
            options.getInitialSettings().setHeaderTableSize(h2.hpackTableSize());
            // no server push, as Envoy's client says in its first SETTINGS (a push would have no stream to go to)
            options.getInitialSettings().setPushEnabled(false);
            if (h2.initialStreamWindowSize() != null) {
                options.getInitialSettings().setInitialWindowSize(h2.initialStreamWindowSize());
            }
            options.setHttp2ConnectionWindowSize(h2.connectionWindowSize());
        }
        if (wanted.tls() != null) {
            wanted.tls().apply(options, wanted.http2(), requestHost, wanted.connectTimeoutMillis());
        }
        if (wanted.localAddress() != null) {
            options.setLocalAddress(wanted.localAddress());
        }
        if (wanted.tcpKeepalive() != null) {
            // SO_KEEPALIVE before the connect; Vert.x 5.0 has no setting for the three values, which the connect
            // handler below sets on the socket
            options.setTcpKeepAlive(true);
        }
        PoolOptions pool = PoolCheckerGuard.guarded(options, new PoolOptions()
                .setHttp1MaxSize(Math.max(1, maxConnections))
                .setHttp2MaxSize(1) // an HTTP/2 client is one lane of an Http2Pool
                .setMaxWaitQueueSize(maxPending));
        return vertx.httpClientBuilder().with(options).with(pool)
                .withConnectHandler(conn -> {
                    if (wanted.http2() && wanted.tls() != null && !negotiatedH2(conn)) {
                        // the server took no h2 (it selected no ALPN protocol, or one besides): Vert.x would speak
                        // HTTP/1.1 on it, where Envoy's HTTP/2 codec speaks HTTP/2 whatever ALPN gave, which such a
                        // server fails; no request goes on it, a protocol error (upstream_cx_protocol_error)
                        LOG.log(Level.FINE, "an HTTP/2 cluster's TLS connection negotiated no h2: closed");
                        var cs = clusterStats();
                        if (cs != null) {
                            cs.protocolError();
                        }
                        conn.close();
                        return;
                    }
                    if (conn instanceof HttpClientConnectionInternal internal) {
                        io.netty.channel.Channel channel = internal.channelHandlerContext().channel();
                        // before the connection carries a request: Envoy's framing rules for HTTP/1 response heads
                        Http1ResponseFraming.install(channel, options, wanted.http1Trailers(), () -> {
                            var cs = clusterStats();
                            if (cs != null) {
                                cs.protocolError();
                            }
                        });
                        Http2ResponseHeads.install(channel, wanted.http2Options().streamErrorOnInvalidHttpMessage(),
                                this::clusterStats);
                        CloseSide.install(channel);
                        if (wanted.tcpKeepalive() != null) {
                            SocketKeepalive.apply(channel, wanted.tcpKeepalive());
                        }
                    }
                    breakers.connectionOpened();
                    openConnections.incrementAndGet();
                    if (lane != null) {
                        lane.opened(conn);
                    }
                    long opened = System.nanoTime();
                    if (conn instanceof HttpClientConnectionInternal internal) {
                        internal.channelHandlerContext().channel().attr(CONNECTED_AT).set(opened);
                    }
                    HostStats s = stats;
                    // the cluster's upstream_cx_total and upstream_cx_active: the close goes where the open went
                    var cluster = s == null ? null : s.clusterStats();
                    if (s != null) {
                        s.connectionOpened();
                    }
                    if (cluster != null) {
                        cluster.connectionOpened();
                        if (wanted.tls() != null) {
                            cluster.tlsHandshake(); // a TLS connection is connected once its handshake is done
                        }
                    }
                    // a reset or failure of the connection is its streams' to tell (each request fails, and is
                    // counted, as its own); without a handler Vert.x logs each one SEVERE in the application's logs
                    conn.exceptionHandler(HostPool::connectionFailed);
                    if (lane instanceof Http2Pool.Lane h2) {
                        // the upstream's GOAWAY: upstream_cx_close_notify, and the connection drains, as in Envoy's
                        // pool (MultiplexedActiveClientBase::onGoAway)
                        conn.goAwayHandler(g -> {
                            if (cluster != null) {
                                cluster.connectionCloseNotify();
                            }
                            h2.drain(conn);
                        });
                    }
                    // idle_timeout and max_connection_duration, each the connection's own timer
                    ConnectionTimers timers = ConnectionTimers.install(conn, lane, wanted.idleTimeoutMillis(),
                            wanted.maxLifetimeMillis(), this::clusterStats);
                    conn.closeHandler(v -> {
                        if (timers != null) {
                            timers.closed();
                        }
                        // its place under max_connections first, as Envoy's pool gives it back before it opens
                        // another connection for its waiting requests (the lane's pool may now)
                        breakers.connectionClosed();
                        if (lane != null) {
                            lane.closed(conn);
                        }
                        served.remove(conn);
                        if (s != null) {
                            s.connectionClosed();
                        }
                        if (cluster != null) {
                            io.netty.channel.Channel channel = conn instanceof HttpClientConnectionInternal internal
                                    ? internal.channelHandlerContext().channel() : null;
                            cluster.connectionClosed((System.nanoTime() - opened) / 1_000_000,
                                    channel != null && CloseSide.closedLocally(channel),
                                    channel != null && CloseSide.closedWithActiveRequest(channel));
                        }
                        if (openConnections.decrementAndGet() == 0 && owner != null) {
                            owner.lastConnectionClosed(this);
                        }
                    });
                })
                .build();
    }

    /**
     * Whether a TLS connection's ALPN gave h2 or nothing: a server that selected another protocol (http/1.1) is one
     * Envoy's HTTP/2 codec would fail with; one that selected none (a listener without ALPN) may well speak h2 to
     * Envoy, where Vert.x can only speak HTTP/1.1 on it, so it is left to do that, as before.
     */
    private static boolean negotiatedH2(io.vertx.core.http.HttpConnection conn) {
        if (!(conn instanceof HttpClientConnectionInternal internal)) {
            return true; // not one of Vert.x's own: nothing to look at
        }
        var ssl = internal.channelHandlerContext().pipeline().get(io.netty.handler.ssl.SslHandler.class);
        String selected = ssl == null ? null : ssl.applicationProtocol();
        return selected == null || selected.isEmpty() || "h2".equals(selected);
    }

    /** Vert.x's idle timeout behind the connection's own timer: a second more than {@code millis}; 0 (never) for 0. */
    private static int idleSeconds(long millis) {
        return millis <= 0 ? 0 : (int) Math.min(Integer.MAX_VALUE, millis / 1000 + 1);
    }

    /** An upstream connection's failure (a reset by its peer, most often): logged at FINE only. */
    private static void connectionFailed(Throwable t) {
        LOG.log(Level.FINE, "upstream connection failed", t);
    }

    /** The statistics of the host's cluster, or null when none are kept (or the pool has no host yet). */
    private dev.inmesh.runtime.stats.UpstreamStats clusterStats() {
        HostStats hs = stats;
        return hs == null ? null : hs.clusterStats();
    }

    /** {@code pool}, its connections given their last stream counted in the cluster's upstream_cx_max_requests. */
    private Http2Pool counted(Http2Pool pool) {
        pool.onLastStreamGiven(() -> {
            var cs = clusterStats();
            if (cs != null) {
                cs.connectionMaxRequests();
            }
        });
        return pool;
    }

    /**
     * What a client's connections are told to ({@link Http1Pool}, a lane of {@link Http2Pool}): each one once it is
     * up, before it carries a request, and once it is closed.
     */
    interface Connections {
        void opened(HttpConnection connection);

        void closed(HttpConnection connection);

        /**
         * The connection takes no new request and is closed once its requests are done, at once when it has none
         * (as Envoy's pool drains a connection).
         */
        void drain(HttpConnection connection);

        /**
         * Closes the connection, which carries no request ({@code idle_timeout}); false, with nothing done, when a
         * request was given it meanwhile.
         */
        boolean closeIdle(HttpConnection connection);
    }

    /** When a connection of a pool was established ({@link System#nanoTime}), until its first request takes it. */
    private static final io.netty.util.AttributeKey<Long> CONNECTED_AT =
            io.netty.util.AttributeKey.valueOf("dev.inmesh.connected-at");

    /**
     * When {@code connection}, a connection of a host's pool, was established ({@link System#nanoTime}), for the first
     * request that asks; -1 for a later one, or a connection of no pool.
     */
    static long takeConnectedAt(HttpConnection connection) {
        if (connection instanceof HttpClientConnectionInternal internal) {
            Long at = internal.channelHandlerContext().channel().attr(CONNECTED_AT).getAndSet(null);
            return at == null ? -1 : at;
        }
        return -1;
    }

    /**
     * After {@code graceMillis} (0: now), drains every client of {@code c} for deletion: their requests under way,
     * waiting and still asked are carried, each connection closes once idle, each client once done.
     */
    private static void closeWhenDone(Current c, long graceMillis) {
        try {
            if (graceMillis > 0) {
                c.vertx.setTimer(graceMillis, id -> closeWhenDone(c));
            } else {
                closeWhenDone(c);
            }
        } catch (RuntimeException closing) {
            shutdownAll(c); // Vert.x is closing, and its clients with it
        }
    }

    private static void closeWhenDone(Current c) {
        forEachClient(c, h -> {
            if (h instanceof PendingRequest.Queue pool) {
                pool.closeWhenDone();
            } else {
                h.shutdown(DRAIN_SECONDS, TimeUnit.SECONDS);
            }
        });
        // a backstop: a caller handed the pool that never asks, or an exchange that never ends, would keep it open
        // for good; after the drain time what still runs gets the shutdown's own drain time
        c.vertx.setTimer(TimeUnit.SECONDS.toMillis(DRAIN_SECONDS), late -> shutdownAll(c));
    }

    /** Lets the requests in flight on every client finish, then closes their connections. */
    private static void shutdownAll(Current c) {
        forEachClient(c, h -> h.shutdown(DRAIN_SECONDS, TimeUnit.SECONDS));
    }

    /** Runs {@code action} on each client of {@code c}: the shared one, then each loop's. */
    private static void forEachClient(Current c, java.util.function.Consumer<HttpClient> action) {
        action.accept(c.client);
        if (c.perLoop != null) {
            c.perLoop.values().forEach(action);
        }
    }

    /**
     * Counts a request that an HTTP/1.1 connection of this pool carries; true when it is the last one the connection
     * may carry ({@code max_requests_per_connection}), which then closes once the response is in.
     */
    boolean lastRequestOn(HttpConnection connection, long maxRequestsPerConnection) {
        if (maxRequestsPerConnection <= 0) {
            return false;
        }
        if (maxRequestsPerConnection == 1) {
            return true;
        }
        AtomicLong count = served.computeIfAbsent(connection, c -> new AtomicLong());
        if (count.incrementAndGet() < maxRequestsPerConnection) {
            return false;
        }
        served.remove(connection, count);
        return true;
    }

    /**
     * Lets requests in flight finish, then closes the connections. A pool per request host name or source is drained
     * only as its host's pool lets it go: it is {@link #retired} too.
     */
    synchronized void drain() {
        if (owner != null) {
            retired = true;
        }
        for (Current c : new Current[] {current, currentH2}) {
            if (c != null) {
                close(c);
            }
        }
        current = null;
        currentH2 = null;
        drainPerRequestHost();
    }

    /**
     * The host left its cluster: {@link #drain}, and the pools made for requests that chose it before count no
     * more. As Envoy's cluster manager drains a removed host's pools for deletion, the requests under way, those
     * waiting for a connection and those its callers still ask are served; each connection closes once it is idle
     * (after {@link #RETIRED_GRACE_MILLIS}), each client once nothing is under way.
     */
    synchronized void retire() {
        retired = true;
        drain();
    }

    /**
     * Lets the requests in flight of the pools per request host name and original source finish, then closes their
     * connections.
     */
    synchronized void drainPerRequestHost() {
        if (byHost != null) {
            byHost.values().forEach(HostPool::drain);
            byHost.clear();
        }
    }
}
