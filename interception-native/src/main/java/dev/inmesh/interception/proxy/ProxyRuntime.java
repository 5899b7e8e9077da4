package dev.inmesh.interception.proxy;

import dev.inmesh.api.config.core.TcpKeepalive;
import dev.inmesh.runtime.router.Router;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.upstream.Host;
import dev.inmesh.runtime.upstream.SocketKeepalive;
import dev.inmesh.runtime.upstream.UpstreamCluster;
import dev.inmesh.runtime.upstream.UpstreamTls;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPromise;
import io.netty.handler.ssl.SslHandler;
import io.netty.channel.EventLoop;
import io.vertx.core.internal.ContextInternal;
import io.vertx.core.internal.VertxInternal;
import java.net.InetSocketAddress;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * What every connection of the proxy shares: Vert.x (whose event loops run both the Netty listeners and the router's
 * upstream HTTP clients), the router, the snapshot holder, and one Vert.x context per event loop, so that a
 * connection's router calls and their callbacks stay on the connection's own thread.
 */
final class ProxyRuntime {
    /** The name of an upstream connection's TLS handler, before the relay's. */
    static final String TLS_HANDLER = "upstream-tls";
    private static final String HANDSHAKE_FAILURE = "upstream-tls-failure";
    final VertxInternal vertx;
    final Router router;
    final SnapshotHolder snapshots;
    private final Map<EventLoop, ContextInternal> contexts = new ConcurrentHashMap<>();
    /** This workload's {@code x-envoy-peer-metadata} and {@code -id}, answered to inbound callers; null for none. */
    volatile String peerMetadata;
    volatile String peerMetadataId;
    /** Istio's TCP metrics for relayed connections, or null when none are kept. */
    volatile java.util.function.Function<dev.inmesh.runtime.stats.TcpConnectionInfo,
            dev.inmesh.runtime.stats.MeshMetrics.TcpConnectionMetrics> tcpMetrics;
    /** Envoy's statistics of an HTTP connection manager ({@code http.<prefix>.*}), or null when none are kept. */
    volatile java.util.function.Function<dev.inmesh.api.config.listener.HttpConnectionManager,
            dev.inmesh.runtime.stats.DownstreamStats> connectionManagerStats;
    /** Envoy's statistics of the network filters by their stat prefix, or null when none are kept. */
    volatile dev.inmesh.runtime.stats.NetworkFilterStats networkStats;
    /** Envoy's statistics of a listener by its address ({@code listener.<address>.*}), or null when none are kept. */
    volatile java.util.function.Function<String, dev.inmesh.runtime.stats.ListenerStats> listenerStats;
    /** Gets each finished tcp_proxy connection (its access log line), or null when none is written. */
    volatile java.util.function.Consumer<dev.inmesh.runtime.stats.TcpStreamInfo> tcpAccessLog;

    /**
     * Envoy's drain sequence, started by {@code drain_listeners?graceful} or SIGTERM: 0 none, 1 the connections of
     * inbound listeners, 2 every connection. Only ever widens.
     */
    private volatile int drainScope;
    /** The open HTTP/2 connections, each with whether it came through an inbound listener. */
    private final Map<Channel, Boolean> http2 = new ConcurrentHashMap<>();

    /**
     * How often a relayed connection's bytes are added to Istio's TCP metrics while it lasts: Istio's
     * {@code tcp_reporting_duration}, 5 s by default.
     */
    volatile java.time.Duration tcpReportingInterval = java.time.Duration.ofSeconds(5);
    /** How long a drain lasts: Envoy's {@code --drain-time-s}. */
    volatile java.time.Duration drainTime = ProxyServer.DEFAULT_DRAIN_TIME;
    /** The connections of each listener's filter chains, drained when a configuration drops or changes them. */
    final ChainDrains drains = new ChainDrains(this);

    /**
     * The filter chains (listener and chain name) whose connections were closed for TLS with SDS secrets the proxy has
     * no source for, warned about once each: a warning per connection would write to the log on the event loop for
     * every connection a peer opens.
     */
    final java.util.Set<String> warnedUnservedSds = ConcurrentHashMap.newKeySet();

    /** Tests only: sees each HTTP/1 connection once its handlers are in place. */
    volatile java.util.function.Consumer<Channel> http1Hook;

    ProxyRuntime(VertxInternal vertx, Router router, SnapshotHolder snapshots) {
        this.vertx = vertx;
        this.router = router;
        this.snapshots = snapshots;
    }

    /**
     * Whether a connection's requests are discouraged, as Envoy's HTTP connection manager does once its listener
     * drains or while the server fails its health checks: HTTP/1 answers carry {@code connection: close} and end the
     * connection, HTTP/2 connections get GOAWAY.
     *
     * @param inbound whether the connection came through an inbound listener
     * @param healthCheckDrains whether its listener drains while the health checks fail (Envoy's {@code DEFAULT}
     *     drain type; not {@code MODIFY_ONLY})
     */
    boolean draining(boolean inbound, boolean healthCheckDrains) {
        return inDrainScope(inbound) || healthCheckDrains && healthCheckFailed;
    }

    /** Whether {@code /drain_listeners} drains a connection that came through an inbound listener or not. */
    private boolean inDrainScope(boolean inbound) {
        int s = drainScope;
        return s == 2 || s == 1 && inbound;
    }

    /** Set while the admin server's health checks fail: as Envoy's drain decision then, requests are discouraged. */
    volatile boolean healthCheckFailed;

    /**
     * Starts the drain sequence for the inbound connections or all of them: from now on HTTP/1 answers close their
     * connection, and each open HTTP/2 connection in scope starts Envoy's drain sequence (a GOAWAY that still takes
     * the streams racing with it, the final one after the connection manager's {@code drain_timeout}; its streams
     * finish, then it closes).
     */
    void startDrain(boolean inboundOnly) {
        synchronized (http2) {
            drainScope = Math.max(drainScope, inboundOnly ? 1 : 2);
        }
        http2.forEach((ch, inbound) -> {
            if (inDrainScope(inbound)) {
                // the shutdown notice, then after drain_timeout the final GOAWAY; closed once its streams are done
                ConnectionLifetime.drain(ch);
            }
        });
    }

    /** Notes an HTTP/2 connection, so that a drain that starts later sends it GOAWAY. */
    void http2Opened(Channel ch, boolean inbound) {
        http2.put(ch, inbound);
        ch.closeFuture().addListener(f -> http2.remove(ch));
    }

    /** The statistics of a connection manager, or null when none are kept. */
    dev.inmesh.runtime.stats.DownstreamStats stats(dev.inmesh.api.config.listener.HttpConnectionManager hcm) {
        var f = connectionManagerStats;
        return f == null ? null : f.apply(hcm);
    }

    /** The statistics of the RBAC network filters with this stat prefix, or null when none are kept. */
    dev.inmesh.runtime.stats.NetworkRbacStats networkRbacStats(String statPrefix) {
        var f = networkStats;
        return f == null ? null : f.networkRbac(statPrefix);
    }

    /** The statistics of the local rate limit network filters with this stat prefix, or null when none are kept. */
    dev.inmesh.runtime.stats.NetworkLocalRateLimitStats networkLocalRateLimitStats(String statPrefix) {
        var f = networkStats;
        return f == null ? null : f.networkLocalRateLimit(statPrefix);
    }

    /** The downstream statistics of the TCP proxy filters with this stat prefix, or null when none are kept. */
    dev.inmesh.runtime.stats.TcpProxyStats tcpProxyStats(String statPrefix) {
        var f = networkStats;
        return f == null ? null : f.tcpProxy(statPrefix);
    }

    /**
     * The statistics of a listener, named by its address as Envoy names them, or null when none are kept; with the
     * {@code ssl.*} ones when a filter chain of the listener terminates TLS.
     */
    dev.inmesh.runtime.stats.ListenerStats stats(dev.inmesh.api.config.listener.Listener l) {
        var f = listenerStats;
        var stats = f == null ? null : f.apply(dev.inmesh.runtime.stats.ListenerStats.address(l.address().address(),
                l.address().port()));
        return stats != null && terminatesTls(l) ? stats.terminatesTls() : stats;
    }

    /** Whether a filter chain of {@code l}, its default one included, terminates TLS. */
    private static boolean terminatesTls(dev.inmesh.api.config.listener.Listener l) {
        if (l.defaultFilterChain() != null && l.defaultFilterChain().tls()) {
            return true;
        }
        for (var chain : l.filterChains()) {
            if (chain.tls()) {
                return true;
            }
        }
        return false;
    }

    /** The Vert.x context bound to a channel's event loop. */
    ContextInternal context(Channel channel) {
        return contexts.computeIfAbsent(channel.eventLoop(),
                loop -> vertx.contextBuilder().withEventLoop(loop).build());
    }

    /** How long a happy eyeballs race waits for an attempt before it starts the next: Envoy's 300 ms. */
    static final long NEXT_ATTEMPT_DELAY_MILLIS = 300;

    /**
     * Connects to {@code host} as Envoy's happy eyeballs connection does when the host has several addresses (a
     * dual-stack pod's endpoint: {@link Host#connectAddresses()}, its own address first, then alternating families):
     * an attempt to the first address, then one to the next each time an attempt fails or
     * {@link #NEXT_ATTEMPT_DELAY_MILLIS} pass without one connecting; the first attempt that connects (and, over TLS,
     * completes its handshake) wins and the others are closed; when every one failed the last failure fails the race.
     * {@code connectTimeoutMillis} bounds the whole race. A host of one address is one {@link #connect} attempt.
     *
     * Each attempt binds the cluster's source address of its address's IP version (a dual-stack pod's extra source
     * address), if any; a downstream whose listener runs original_src ({@link OriginalSource#KEY}) binds its own
     * remote IP instead, with that filter's socket options, as in Envoy the filter's source wins over the cluster's.
     *
     * @return the winning connection's channel
     */
    io.netty.util.concurrent.Future<Channel> connectHost(Channel downstream, int connectTimeoutMillis,
                                                         UpstreamCluster cluster, Host host, String requestHost) {
        java.util.List<dev.inmesh.api.config.core.SocketAddress> addresses = host.connectAddresses();
        io.netty.util.concurrent.Promise<Channel> won = downstream.eventLoop().newPromise();
        long deadline = System.nanoTime() + Math.max(1, connectTimeoutMillis) * 1_000_000L;
        java.util.List<Channel> attempts = new java.util.ArrayList<>();
        int[] next = {0};
        int[] failed = {0};
        io.netty.util.concurrent.ScheduledFuture<?>[] timer = {null};
        Runnable[] start = {null};
        start[0] = () -> {
            if (won.isDone() || next[0] >= addresses.size()) {
                return;
            }
            var a = addresses.get(next[0]++);
            InetSocketAddress remote = new InetSocketAddress(a.address(), a.port());
            int left = (int) Math.max(1, (deadline - System.nanoTime()) / 1_000_000L);
            OriginalSource original = downstream.attr(OriginalSource.KEY).get();
            var bind = cluster.config().upstreamBindAddress(a.address());
            InetSocketAddress local = bind == null ? null : new InetSocketAddress(bind.address(), 0);
            ChannelFuture attempt = original != null
                    ? connect(downstream, remote, original, left, cluster, host, requestHost)
                    : connect(downstream, remote, local, left, cluster, host, requestHost);
            attempts.add(attempt.channel());
            if (timer[0] != null) {
                timer[0].cancel(false);
            }
            if (next[0] < addresses.size()) {
                timer[0] = downstream.eventLoop().schedule(start[0], NEXT_ATTEMPT_DELAY_MILLIS,
                        java.util.concurrent.TimeUnit.MILLISECONDS);
            }
            // on the downstream's event loop, the attempts' own: the winner is handed on in the tick it connected
            attempt.addListener(f -> {
                if (f.isSuccess()) {
                    if (won.trySuccess(attempt.channel())) {
                        if (timer[0] != null) {
                            timer[0].cancel(false);
                        }
                        attempts.stream().filter(ch -> ch != attempt.channel()).forEach(Channel::close);
                    } else {
                        attempt.channel().close();
                    }
                    return;
                }
                failed[0]++;
                if (failed[0] == addresses.size()) {
                    won.tryFailure(f.cause());
                } else if (failed[0] == next[0]) {
                    // every attempt started so far failed: the next one now, not after the delay
                    start[0].run();
                }
            });
        };
        if (downstream.eventLoop().inEventLoop()) {
            start[0].run();
        } else {
            downstream.eventLoop().execute(start[0]);
        }
        return won;
    }

    /**
     * Opens an upstream TCP connection on the downstream channel's event loop, auto-read off and half-close allowed,
     * with the cluster's TCP keep-alive ({@code upstream_connection_options.tcp_keepalive}) set before it connects;
     * over TLS when the host's transport socket is TLS, the future then completing once the handshake is done
     * (a failed handshake fails it, as a failed connect, and closes the connection).
     *
     * @param local the source address to bind (port 0), or null
     * @param cluster the cluster the host is of
     * @param host the host: the connection takes the transport socket its metadata chose in the cluster (a transport
     *     socket match's, else the cluster's own; one whose TLS is not usable gets a failed future: its connections do
     *     not go in plaintext)
     * @param requestHost the host (without port) of the request a WebSocket relay carries, for the cluster's
     *     {@code auto_sni} and {@code auto_san_validation}; null for tcp_proxy
     */
    ChannelFuture connect(Channel downstream, InetSocketAddress remote, InetSocketAddress local,
                          int connectTimeoutMillis, UpstreamCluster cluster, Host host,
                          String requestHost) {
        return connect(downstream, remote, local, null, connectTimeoutMillis, cluster, host, requestHost);
    }

    /**
     * As {@link #connect(Channel, InetSocketAddress, InetSocketAddress, int, UpstreamCluster, Host, String)}, from
     * the original source: its socket options are set once the channel is registered, before it binds the source
     * and connects; a socket that refuses one fails the future with the reason and is closed.
     */
    ChannelFuture connect(Channel downstream, InetSocketAddress remote, OriginalSource original,
                          int connectTimeoutMillis, UpstreamCluster cluster, Host host, String requestHost) {
        return connect(downstream, remote, original.bindAddress(), original, connectTimeoutMillis, cluster, host,
                requestHost);
    }

    private ChannelFuture connect(Channel downstream, InetSocketAddress remote, InetSocketAddress local,
                                  OriginalSource original, int connectTimeoutMillis, UpstreamCluster cluster,
                                  Host host, String requestHost) {
        UpstreamTls tls;
        try {
            tls = cluster.tls(host);
        } catch (IllegalStateException e) {
            return downstream.newFailedFuture(e);
        }
        int timeout = Math.max(1, connectTimeoutMillis);
        TcpKeepalive keepalive = cluster.config().tcpKeepalive();
        Bootstrap b = new Bootstrap()
                .group(downstream.eventLoop())
                .channelFactory(vertx.transport().channelFactory(false))
                .option(ChannelOption.AUTO_READ, false)
                .option(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .option(ChannelOption.TCP_NODELAY, true)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, timeout)
                .handler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        SocketKeepalive.apply(ch, keepalive);
                        // the relay adds its handler once connected, after the TLS one if any
                        if (tls != null) {
                            ch.pipeline().addLast(TLS_HANDLER, tls.relayHandler(ch.alloc(), timeout, requestHost,
                                    remote.getPort()))
                                    .addLast(HANDSHAKE_FAILURE, HandshakeFailure.INSTANCE);
                        }
                    }
                });
        ChannelFuture connected = original != null ? connectFrom(b, remote, original)
                : local == null ? b.connect(remote) : b.connect(remote, local);
        if (tls == null) {
            return connected;
        }
        ChannelPromise handshaken = connected.channel().newPromise();
        connected.addListener(f -> {
            if (!f.isSuccess()) {
                handshaken.tryFailure(f.cause());
                return;
            }
            connected.channel().pipeline().get(SslHandler.class).handshakeFuture().addListener(h -> {
                // the cluster's ssl.* statistics, as for its HTTP pools' connections
                var stats = router.upstreamStats(cluster.name());
                if (h.isSuccess()) {
                    if (stats != null) {
                        stats.tlsHandshake();
                    }
                    if (connected.channel().pipeline().get(HANDSHAKE_FAILURE) != null) {
                        connected.channel().pipeline().remove(HANDSHAKE_FAILURE);
                    }
                    handshaken.trySuccess();
                } else {
                    var why = dev.inmesh.runtime.tls.HandshakeFailure.of(h.cause());
                    if (stats != null && why != null) {
                        stats.tlsFailed(why.kind());
                    }
                    connected.channel().close();
                    handshaken.tryFailure(h.cause());
                }
            });
        });
        return handshaken;
    }

    /** Takes the exception of a failed handshake, which fails the connect future (and closes the connection). */
    @ChannelHandler.Sharable
    private static final class HandshakeFailure extends ChannelInboundHandlerAdapter {
        static final HandshakeFailure INSTANCE = new HandshakeFailure();

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
        }
    }

    /**
     * Registers the bootstrap's channel, sets the original source's socket options, then binds and connects; a channel
     * that fails any step is closed.
     */
    private static ChannelFuture connectFrom(Bootstrap b, InetSocketAddress remote, OriginalSource original) {
        ChannelFuture registered = b.register();
        Channel ch = registered.channel();
        ChannelPromise connected = ch.newPromise();
        registered.addListener(r -> {
            if (!r.isSuccess()) {
                connected.tryFailure(r.cause());
                return;
            }
            try {
                original.apply(ch);
            } catch (OriginalSource.OriginalSourceException e) {
                ch.close();
                connected.tryFailure(e);
                return;
            }
            ch.connect(remote, original.bindAddress(), connected);
        });
        // as Bootstrap.connect does: a channel whose bind or connect failed (refused, no route) is closed, which
        // Netty's own connect leaves to the caller
        connected.addListener(ChannelFutureListener.CLOSE_ON_FAILURE);
        return connected;
    }
}
