package dev.inmesh.interception.proxy;

import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.api.config.listener.ProxyProtocol;
import dev.inmesh.api.config.listener.TcpProxy;
import dev.inmesh.api.config.listener.TrafficDirection;
import dev.inmesh.api.config.route.ClusterSpecifier;
import dev.inmesh.interception.origdst.OriginalDestination;
import dev.inmesh.runtime.lb.Xxhash;
import dev.inmesh.runtime.listener.ConnectionInfo;
import dev.inmesh.runtime.listener.FilterChainSelector;
import dev.inmesh.runtime.router.RbacFilter;
import dev.inmesh.runtime.router.ServiceLabels;
import dev.inmesh.runtime.snapshot.MeshSnapshot;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.stats.TcpProxyStats;
import dev.inmesh.runtime.tls.DownstreamTls;
import dev.inmesh.runtime.upstream.CircuitBreakerState;
import dev.inmesh.runtime.upstream.Host;
import dev.inmesh.runtime.upstream.LbContext;
import dev.inmesh.runtime.upstream.LocalOriginFailure;
import dev.inmesh.runtime.upstream.UpstreamCluster;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.unix.UnixChannel;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import java.net.InetSocketAddress;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The first handler of every accepted connection: recovers the original destination, reads the PROXY header when the
 * listener has the PROXY protocol filter, hands the connection to the listener it was meant for, runs that
 * listener's inspectors on the first bytes (with its listener filters timeout), picks the filter chain, and turns the
 * connection into a TCP relay or an HTTP connection to the router. It then removes itself; the bytes it read are
 * passed on unchanged.
 */
final class ConnectionHandler extends ChannelInboundHandlerAdapter {
    private static final Logger LOG = Logger.getLogger(ConnectionHandler.class.getName());
    /**
     * Picks to find a host not tried yet when tcp_proxy connects again, as Istio's retry policy allows its
     * previous_hosts predicate ({@code host_selection_retry_max_attempts: 5}); the last pick stands.
     */
    private static final int HOST_PICKS = 6;
    /** The name of a terminated TLS connection's handler, before this one's. */
    static final String DOWNSTREAM_TLS = "downstream-tls";
    /** The name of the handler counting the connection's bytes for its listener's access log, when it has one. */
    private static final String LISTENER_BYTES = "listener-log-bytes";
    /** Envoy's response code details of a connection no filter chain of its listener takes. */
    private static final String FILTER_CHAIN_NOT_FOUND = "filter_chain_not_found";

    private final ProxyRuntime runtime;
    private final MeshSnapshot snapshot;
    private final FilterChainSelector accepting;
    private ByteBuf firstBytes = Unpooled.EMPTY_BUFFER;
    private InetSocketAddress destination;
    private InetSocketAddress source;
    /** The socket's own addresses, which a PROXY header or the original destination do not change. */
    private java.net.SocketAddress physicalPeer;
    private java.net.SocketAddress physicalLocal;
    private FilterChainSelector target;
    /**
     * The PROXY protocol filter of the accepting listener (or of the one it handed the connection to) while the
     * connection waits for its header, else null.
     */
    private ProxyProtocol proxyProtocol;
    /** The listener whose PROXY protocol filter reads the header, and its statistics. */
    private Listener headerListener;
    private dev.inmesh.runtime.stats.ListenerStats headerStats;
    /** Whether original_dst runs after the PROXY protocol filter, restoring the destination the header gave. */
    private boolean originalDestinationLast;
    /**
     * Whether a listener filter restored {@link #destination} (original_dst found one, or a PROXY header named
     * another), Envoy's {@code localAddressRestored()}: only then is it the original destination an ORIGINAL_DST
     * cluster connects to; else it is the proxy's own listener.
     */
    private boolean destinationRestored;
    private ProtocolDetector detector;
    private ScheduledFuture<?> timeout;
    private boolean decided;
    /** Whether the connection counts in its listener's {@code downstream_pre_cx_active} (its inspectors run). */
    private boolean inspecting;
    private boolean inputEnded;
    /** When the connection was accepted, for a tcp_proxy connection's access log line. */
    private java.time.Instant startTime;
    private long startNanos;
    private String serverName;
    /**
     * Flags of the tcp_proxy connection so far (a retried connect keeps its UF), in the order they were set, which is
     * the order Envoy prints them in.
     */
    private final Set<ResponseFlag> tcpFlags = new java.util.LinkedHashSet<>(4);
    /**
     * How often this connection's bytes are added to Istio's TCP metrics while it lasts: its chain's Istio stats
     * network filter's {@code tcp_reporting_duration}, else the proxy's (Istio's default, 5 s).
     */
    private long tcpReportingMillis;
    /** The metric overrides of the tcp_proxy chain's Istio stats filter, for Istio's TCP metrics. */
    private dev.inmesh.runtime.stats.StatsOverrides tcpStats = dev.inmesh.runtime.stats.StatsOverrides.NONE;
    /** The host tried last. */
    private Host lastHost;
    /** The URI SANs of the server's certificate and of this proxy's in the upstream TLS it originated, or null. */
    private String upstreamPeerPrincipal;
    private String upstreamLocalPrincipal;
    private String upstreamLocal;
    /** Why the last upstream connect failed, or null (Envoy's transport failure reason: ConnectFailure's). */
    private String transportFailureReason;
    /** Why this proxy closed the connection at layer 4, or null (Envoy's connection termination details). */
    private String terminationDetails;
    /** Envoy's response code details of the connection ({@link #FILTER_CHAIN_NOT_FOUND}), or null. */
    private String responseCodeDetails;
    private boolean tcpLogged;
    /** The upstream connects tcp_proxy made for the connection, Envoy's attempt count. */
    private int connectAttempts;
    /** The access logs of the connection's tcp_proxy, once it took the connection. */
    private dev.inmesh.runtime.accesslog.AccessLogs tcpAccessLogs = dev.inmesh.runtime.accesslog.AccessLogs.NONE;
    /** The access logs of the listener that took the connection (its own access_log), written when it closes. */
    private dev.inmesh.runtime.accesslog.AccessLogs listenerLogs = dev.inmesh.runtime.accesslog.AccessLogs.NONE;
    /** The name of the filter chain that took the connection, or null (none yet, or none took it). */
    private String chainName;
    /** The cluster tcp_proxy picked for the connection, for its listener's access log; null for none. */
    private String tcpCluster;
    /** The connection's bytes, counted when its listener has an access log, else null. */
    private DownstreamBytes downstreamBytes;
    /** The statistics of the listener that took the connection, or null when none are kept. */
    private dev.inmesh.runtime.stats.ListenerStats listenerStats;
    /** Whether this chain terminated TLS for a client whose certificate it verified. */
    private boolean mutualTls;
    /** The drain of the connection's filter chain, once one is picked. */
    private ChainDrains.Drain drain;
    /** The certificates the client presented in the TLS this chain terminated, its own first; null for none. */
    private java.security.cert.Certificate[] peerCertificates;
    /** The certificates this proxy presented in that TLS; null for none. */
    private java.security.cert.Certificate[] ownCertificates;
    /** The session of the TLS the chain terminated, or null. */
    private javax.net.ssl.SSLSession tlsSession;

    ConnectionHandler(ProxyRuntime runtime, MeshSnapshot snapshot, FilterChainSelector accepting) {
        this.runtime = runtime;
        this.snapshot = snapshot;
        this.accepting = accepting;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
        startTime = java.time.Instant.now();
        startNanos = System.nanoTime();
        Channel ch = ctx.channel();
        InetSocketAddress local = (InetSocketAddress) ch.localAddress();
        source = (InetSocketAddress) ch.remoteAddress();
        physicalPeer = source;
        physicalLocal = local;
        Listener accepted = accepting.listener();
        InetSocketAddress original = ListenerDispatch.restoresOriginalDestination(accepted, local.getPort())
                ? OriginalDestination.resolve(fd(ch), local) : null;
        destination = original != null ? original : local;
        destinationRestored = original != null;
        originalDestinationLast = original != null && ListenerDispatch.originalDestinationAfterProxyProtocol(accepted);
        // its filter_disabled sees the destination as the filters before it left it
        ProxyProtocol header = ListenerDispatch.proxyProtocol(accepted,
                originalDestinationLast ? local.getPort() : destination.getPort());
        if (header == null) {
            dispatch(ctx, true);
            return;
        }
        // as Envoy's: the accepting listener's filters run in its order, the PROXY header first read under the
        // listener filters timeout; the connection's listener is known once the header says where it was going
        firstBytes = ctx.alloc().buffer(512);
        awaitHeader(ctx, accepted, header);
    }

    /** Waits for the PROXY header that {@code l}'s filter {@code header} reads, under {@code l}'s timeout. */
    private void awaitHeader(ChannelHandlerContext ctx, Listener l, ProxyProtocol header) {
        proxyProtocol = header;
        headerListener = l;
        headerStats = runtime.stats(l);
        if (headerStats != null) {
            headerStats.inspectionStarted();
        }
        if (timeout != null) {
            timeout.cancel(false);
            timeout = null;
        }
        scheduleTimeout(ctx, l);
        if (firstBytes.isReadable() || inputEnded) {
            readHeader(ctx, inputEnded);
        } else {
            ctx.read();
        }
    }

    /**
     * Hands the connection, with its addresses as the listener filters restored them, to its listener, which counts
     * it and runs its inspectors (unless {@code inspect} is false: the listener filters timed out and the connection
     * goes on as it is).
     */
    private void dispatch(ChannelHandlerContext ctx, boolean inspect) {
        Channel ch = ctx.channel();
        if (target == null) {
            target = ListenerDispatch.target(snapshot, accepting, destination);
            if (target != accepting && timeout != null) {
                // the accepting listener's timeout covered its own filters (the PROXY header): as Envoy, the
                // listener the connection is handed to runs its filters under its own listener_filters_timeout
                timeout.cancel(false);
                timeout = null;
            }
            ProxyProtocol header = target == accepting || !inspect ? null
                    : ListenerDispatch.proxyProtocol(target.listener(), destination.getPort());
            if (header != null) {
                // as Envoy: the listener a connection is handed to runs its own listener filters, which restore
                // its addresses but hand it to no other listener
                originalDestinationLast = false;
                awaitHeader(ctx, target.listener(), header);
                return;
            }
        }
        Listener l = target.listener();
        // original_src: the upstream connections leave from the downstream's remote address (after its PROXY
        // header); as Envoy, the filter of the accepting listener holds after an original_dst hand-off too
        OriginalSource original = OriginalSource.of(l, destination.getPort(), source);
        ch.attr(OriginalSource.KEY).set(original != null || target == accepting ? original
                : OriginalSource.of(accepting.listener(), destination.getPort(), source));
        // as Envoy, the connection counts for the listener that takes it (after an original_dst hand-off), once a
        // filter chain of it takes the connection (proceed)
        listenerStats = runtime.stats(l);
        logListenerOnClose(ch, l, true);
        detector = ListenerDispatch.detector(l, destination.getPort());
        if (!detector.enabled() || !inspect) {
            proceed(ctx, ProtocolDetector.Detection.RAW);
            return;
        }
        if (firstBytes == Unpooled.EMPTY_BUFFER) {
            firstBytes = ctx.alloc().buffer(512);
        }
        if (listenerStats != null) {
            inspecting = true;
            listenerStats.inspectionStarted();
        }
        if (timeout == null) {
            scheduleTimeout(ctx, l);
        }
        if (firstBytes.isReadable() || inputEnded) {
            // the bytes after the PROXY header
            inspect(ctx, inputEnded);
        } else {
            ctx.read();
        }
    }

    /** Starts the listener filters timeout of {@code l} (none when zero). */
    private void scheduleTimeout(ChannelHandlerContext ctx, Listener l) {
        long millis = l.listenerFiltersTimeout().toMillis();
        if (millis > 0) {
            timeout = ctx.channel().eventLoop().schedule(() -> timedOut(ctx), millis, TimeUnit.MILLISECONDS);
        }
    }

    /**
     * Reads the PROXY header from the bytes so far, as Envoy's filter: a header found gives the connection its
     * source and (unless original_dst runs after it) its destination and is taken off; none, where the filter
     * allows that, leaves the bytes as they are; a malformed, missing or disallowed one closes the connection. Each
     * outcome is counted as Envoy counts it.
     */
    private void readHeader(ChannelHandlerContext ctx, boolean eof) {
        byte[] bytes = ByteBufUtil.getBytes(firstBytes);
        ProxyProtocolHeader.Result r = ProxyProtocolHeader.read(bytes, bytes.length, proxyProtocol);
        var stats = headerStats == null ? null : headerStats.proxyProtocol(proxyProtocol.statPrefix());
        if (r instanceof ProxyProtocolHeader.NeedMore) {
            if (eof) {
                LOG.fine(() -> "connection from " + source + " ended before its PROXY header: closed");
                closeUndecided(ctx);
            } else {
                ctx.read();
            }
        } else if (r instanceof ProxyProtocolHeader.NotFound) {
            if (stats != null) {
                stats.notFoundAllowed();
            }
            headerRead(ctx);
        } else if (r instanceof ProxyProtocolHeader.Rejected x) {
            if (stats != null) {
                countRejected(stats, x);
            }
            LOG.fine(() -> "connection from " + source + ": " + (x.disallowed() ? "a disallowed"
                    : x.version() == ProxyProtocolHeader.Version.NONE ? "no" : "a malformed")
                    + " PROXY header: closed");
            closeUndecided(ctx);
        } else if (r instanceof ProxyProtocolHeader.Found f) {
            if (stats != null) {
                stats.found(f.version() == ProxyProtocolHeader.Version.V1 ? 1 : 2);
            }
            firstBytes.skipBytes(f.length());
            if (f.source() != null) {
                // as Envoy: the remote address is the header's source; the local address its destination, unless
                // original_dst, after this filter, restores it again
                source = f.source();
                if (!originalDestinationLast && !f.destination().equals(destination)) {
                    // as Envoy's filter, which restores the local address only when the header's is another
                    destination = f.destination();
                    destinationRestored = true;
                }
            }
            headerRead(ctx);
        }
    }

    private static void countRejected(dev.inmesh.runtime.stats.ProxyProtocolStats stats,
                                      ProxyProtocolHeader.Rejected x) {
        int version = x.version() == ProxyProtocolHeader.Version.V1 ? 1 : 2;
        if (x.version() == ProxyProtocolHeader.Version.NONE) {
            stats.notFoundDisallowed();
        } else if (x.disallowed()) {
            stats.disallowed(version);
        } else {
            stats.error(version);
        }
    }

    /** The PROXY protocol filter is done with the connection: its listener takes it. */
    private void headerRead(ChannelHandlerContext ctx) {
        endHeader();
        dispatch(ctx, true);
    }

    /** The connection no longer waits for its PROXY header. */
    private void endHeader() {
        if (proxyProtocol != null) {
            proxyProtocol = null;
            if (headerStats != null) {
                headerStats.inspectionEnded();
            }
        }
    }

    /** The destination a listener filter restored, for an ORIGINAL_DST cluster; null when none did. */
    private SocketAddress originalDestination() {
        return destinationRestored ? new SocketAddress(ListenerDispatch.ip(destination), destination.getPort()) : null;
    }

    private static int fd(Channel ch) {
        return ch instanceof UnixChannel u ? u.fd().intValue() : -1;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        // Until this handler hands the connection over, everything read is kept: epoll reads (and sees the end of
        // input) even with auto-read off, for example while the upstream connection is being made.
        try {
            if (msg instanceof ByteBuf b) {
                if (firstBytes == Unpooled.EMPTY_BUFFER) {
                    firstBytes = ctx.alloc().buffer(Math.max(512, b.readableBytes()));
                }
                firstBytes.writeBytes(b);
            }
        } finally {
            ReferenceCountUtil.release(msg);
        }
        if (proxyProtocol != null) {
            readHeader(ctx, false);
        } else if (!decided) {
            inspect(ctx, false);
        }
    }

    private void inspect(ChannelHandlerContext ctx, boolean eof) {
        byte[] bytes = ByteBufUtil.getBytes(firstBytes);
        ProtocolDetector.Detection d = detector.detect(bytes, bytes.length);
        if (d == ProtocolDetector.Detection.DROP) {
            LOG.fine(() -> "connection from " + source + ": no end of the request line or the ClientHello in "
                    + bytes.length + " bytes: closed");
            closeUndecided(ctx);
        } else if (d.done()) {
            proceed(ctx, d);
        } else if (eof) {
            // the client ended its side while the inspectors wait for more: as Envoy, closed with no filter chain
            // and no upstream connection
            LOG.fine(() -> "connection from " + source + " ended during inspection: closed");
            closeUndecided(ctx);
        } else {
            ctx.read();
        }
    }

    private void timedOut(ChannelHandlerContext ctx) {
        if (decided) {
            return;
        }
        if (proxyProtocol != null) {
            // no whole PROXY header in time: as Envoy, the connection goes on as it is when the listener says so
            if (headerStats != null) {
                headerStats.inspectionTimedOut();
            }
            if (headerListener.continueOnListenerFiltersTimeout()) {
                endHeader();
                timeout = null;
                dispatch(ctx, false);
            } else {
                closeUndecided(ctx);
            }
            return;
        }
        if (listenerStats != null) {
            listenerStats.inspectionTimedOut();
        }
        if (target.listener().continueOnListenerFiltersTimeout()) {
            proceed(ctx, ProtocolDetector.Detection.RAW);
        } else {
            closeUndecided(ctx);
        }
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof ChannelInputShutdownEvent) {
            inputEnded = true;
            if (proxyProtocol != null) {
                readHeader(ctx, true);
            } else if (!decided) {
                inspect(ctx, true);
            }
            return;
        }
        if (evt instanceof io.netty.channel.socket.ChannelInputShutdownReadComplete) {
            return;
        }
        ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        if (!decided) {
            logUndecided(ctx);
            decide();
            release();
        }
        ctx.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        LOG.log(Level.FINE, "connection from " + source + " failed", cause);
        ctx.close();
    }

    /**
     * From now on, the listener's own access_log gets the connection, once, when it closes: as Envoy's, every
     * connection the listener accepted, whatever took it (a filter chain, none, or none yet: the listener filters
     * timed out or refused it); with its bytes counted from here when {@code counted}.
     */
    private void logListenerOnClose(Channel ch, Listener l, boolean counted) {
        listenerLogs = snapshot.accessLogs(l);
        if (!listenerLogs.isEmpty()) {
            DownstreamBytes bytes = new DownstreamBytes();
            if (counted) {
                downstreamBytes = bytes;
                ch.pipeline().addFirst(LISTENER_BYTES, bytes);
            }
            ch.closeFuture().addListener(f -> logListener(bytes));
        }
    }

    /**
     * A connection closing while its PROXY header was awaited (refused, timed out, or gone), before any listener took
     * it: the line of the listener whose filter read it, with no bytes (the filter only peeked at them).
     */
    private void logUndecided(ChannelHandlerContext ctx) {
        if (proxyProtocol != null && headerListener != null && listenerLogs.isEmpty()) {
            logListenerOnClose(ctx.channel(), headerListener, false);
        }
    }

    /** Closes the connection while its listener filters still read it: no filter chain takes it. */
    private void closeUndecided(ChannelHandlerContext ctx) {
        logUndecided(ctx);
        decide();
        release();
        ctx.close();
    }

    /** The inspection is over, however it ended: the connection no longer counts as being inspected. */
    private void decide() {
        decided = true;
        endHeader();
        if (inspecting) {
            inspecting = false;
            listenerStats.inspectionEnded();
        }
    }

    private void release() {
        if (timeout != null) {
            timeout.cancel(false);
        }
        if (firstBytes.refCnt() > 0 && firstBytes != Unpooled.EMPTY_BUFFER) {
            firstBytes.release();
        }
        firstBytes = Unpooled.EMPTY_BUFFER;
    }

    private void proceed(ChannelHandlerContext ctx, ProtocolDetector.Detection detection) {
        decide();
        if (timeout != null) {
            timeout.cancel(false);
        }
        ConnectionInfo info = ListenerDispatch.connectionInfo(destination, source, detection);
        FilterChain chain = ListenerDispatch.chain(target, info);
        if (chain == null) {
            LOG.fine(() -> "no filter chain of " + target.listener().name() + " matches " + info + ": closed");
            if (listenerStats != null) {
                listenerStats.noFilterChainMatch();
            }
            // as Envoy's listener access log (which Istio configures): the connection's line, flagged NR with the
            // details filter_chain_not_found, in the listener's own access_log when it names one (written as the
            // connection closes), else --access-log; no connection was made, so no bytes count (the listener filters
            // only peeked at those they read)
            tcpFlags.add(ResponseFlag.NO_ROUTE_FOUND);
            responseCodeDetails = FILTER_CHAIN_NOT_FOUND;
            if (downstreamBytes != null) {
                ctx.pipeline().remove(downstreamBytes);
                downstreamBytes.received = 0;
                downstreamBytes.sent = 0;
            }
            String sni = detection.serverName();
            serverName = sni == null || sni.isEmpty() ? null : sni;
            if (listenerLogs.isEmpty()) {
                logTcp(null, 0, 0);
            }
            release();
            ctx.close();
            return;
        }
        if (listenerStats != null) {
            // as Envoy's (the active connection made once the chain is found): a connection no chain took, or that
            // the listener filters closed, counted only there (no_filter_chain_match, downstream_pre_cx_timeout)
            listenerStats.connectionOpened();
            long opened = System.nanoTime();
            ctx.channel().closeFuture().addListener(f -> listenerStats.connectionClosed(
                    (System.nanoTime() - opened) / 1_000_000));
        }
        // the connection drains with its chain: when a configuration drops or changes the chain or its listener
        drain = runtime.drains.of(target.listener(), chain);
        drain.add(ctx.channel());
        if (chain.tls()) {
            DownstreamTls tls = target.tls(chain);
            if (tls == null) {
                // Istio's mTLS chains name SDS secrets (default, ROOTCA) from istiod's CA, which Inmesh does not have
                // without a workload identity: warned about once per chain, each connection at FINE
                String what = "filter chain " + chain.name() + " of " + target.listener().name()
                        + " terminates TLS with SDS secrets the standalone proxy has no source for";
                if (runtime.warnedUnservedSds.add(target.listener().name() + "\n" + chain.name())) {
                    LOG.warning(() -> what + ": its connections are closed (the first from " + source
                            + "; the next ones are logged at FINE)");
                } else {
                    LOG.fine(() -> what + ": connection from " + source + " closed");
                }
                release();
                ctx.close();
                return;
            }
            terminateTls(ctx, chain, tls, detection);
            return;
        }
        runChain(ctx, chain, detection);
    }

    private void runChain(ChannelHandlerContext ctx, FilterChain chain, ProtocolDetector.Detection detection) {
        chainName = chain.name();
        if (chain.filter() instanceof TcpProxy) {
            tcpStats = snapshot.statsOverrides(chain); // its Istio TCP metrics, whether it relays or is denied
        }
        if (chain.tls() && ctx.pipeline().get(DOWNSTREAM_TLS) instanceof SslHandler ssl) {
            javax.net.ssl.SSLSession session = ssl.engine().getSession();
            tlsSession = session;
            ownCertificates = session.getLocalCertificates();
            try {
                peerCertificates = session.getPeerCertificates();
            } catch (javax.net.ssl.SSLPeerUnverifiedException e) {
                peerCertificates = null; // the client presented none
            }
        }
        // the inspector's SNI, else (no TLS inspector) the one of the handshake this chain terminated
        String inspected = detection.serverName();
        boolean none = inspected == null || inspected.isEmpty();
        String requestedServerName = none && serverName != null ? serverName : inspected;
        RbacFilter.Network rbac = snapshot.networkRbac(chain);
        if (rbac.external()) {
            // an external authorizer decides: nothing more is read until it has, what was read waits here
            Channel ch = ctx.channel();
            ch.config().setAutoRead(false);
            java.security.cert.Certificate[] peer = peerCertificates;
            java.security.cert.Certificate[] own = ownCertificates;
            rbac.authorize(RbacFilter.Subject.connection(ListenerDispatch.ip(destination), destination.getPort(),
                    ListenerDispatch.ip(source), source.getPort(), requestedServerName,
                    () -> RbacFilter.PeerIdentity.of(chain.tls(), peer))
                    .withLocal(() -> RbacFilter.PeerIdentity.of(chain.tls(), own))
                    .withDirectPeer(ListenerDispatch.physicalPeer(ch, source)),
                    runtime::networkRbacStats, runtime::networkLocalRateLimitStats, snapshot.clusterManager())
                    .onComplete(ar -> ch.eventLoop().execute(() -> {
                        String denied = ar.succeeded() ? ar.result() : null;
                        if (!ch.isActive()) {
                            release();
                            return;
                        }
                        if (denied != null) {
                            closeDenied(ctx, chain, requestedServerName, denied);
                            return;
                        }
                        terminal(ctx, chain, detection, requestedServerName);
                        ch.config().setAutoRead(true);
                    }));
            return;
        }
        if (!rbac.isEmpty() && !rbacAllows(ctx, chain, rbac, requestedServerName)) {
            return;
        }
        terminal(ctx, chain, detection, requestedServerName);
    }

    /** The chain's terminal filter takes the connection, once its network filters let it go on. */
    private void terminal(ChannelHandlerContext ctx, FilterChain chain, ProtocolDetector.Detection detection,
                          String requestedServerName) {
        if (chain.filter() instanceof TcpProxy tcp) {
            serverName = requestedServerName;
            tcpReportingMillis = (chain.tcpReportingDuration() == null ? runtime.tcpReportingInterval
                    : chain.tcpReportingDuration()).toMillis();
            tcpProxy(ctx, tcp);
        } else {
            http(ctx, chain, (HttpConnectionManager) chain.filter(), detection);
        }
    }

    /**
     * The chain's RBAC and local rate limit network filters, run once in chain order before its terminal filter sees
     * the connection (a rate limit filter takes its token there, as Envoy's {@code onNewConnection}, which also runs
     * once the listener's filters are done and the chain chosen): when its first
     * bytes are read (or the inspection gave up waiting for them) and after the TLS the chain terminates, so that
     * {@code authenticated} principals see the client's certificate. This is Envoy's {@code ONE_TIME_ON_FIRST_BYTE}
     * made no later than the upstream connect: the properties read (addresses, SNI, certificate) are all known by
     * then. A denied connection is closed before anything is relayed or connected upstream.
     *
     * @return whether the connection goes on
     */
    private boolean rbacAllows(ChannelHandlerContext ctx, FilterChain chain, RbacFilter.Network rbac,
                               String requestedServerName) {
        java.security.cert.Certificate[] peer = peerCertificates;
        String denied = rbac.check(RbacFilter.Subject.connection(ListenerDispatch.ip(destination),
                destination.getPort(), ListenerDispatch.ip(source), requestedServerName,
                () -> RbacFilter.PeerIdentity.of(chain.tls(), peer))
                .withDirectPeer(ListenerDispatch.physicalPeer(ctx.channel(), source)),
                runtime::networkRbacStats, runtime::networkLocalRateLimitStats);
        if (denied == null) {
            return true;
        }
        closeDenied(ctx, chain, requestedServerName, denied);
        return false;
    }

    /** Closes a connection a network filter denied, logging it as Envoy's tcp_proxy does. */
    private void closeDenied(ChannelHandlerContext ctx, FilterChain chain, String requestedServerName, String denied) {
        LOG.fine(() -> "connection from " + source + " to " + destination + " on filter chain " + chain.name()
                + " of " + target.listener().name() + " closed: " + denied);
        if (chain.filter() instanceof TcpProxy tcp) {
            // as Envoy's: the tcp_proxy's access log line, with no upstream, no flag, nothing relayed, and the
            // denial as the connection termination details (an HTTP chain logs requests, and there was none)
            serverName = requestedServerName;
            terminationDetails = denied;
            if (denied.equals(RbacFilter.Network.RATE_LIMITED)) {
                tcpFlags.add(ResponseFlag.UPSTREAM_RETRY_LIMIT_EXCEEDED); // as Envoy's local rate limit filter
            }
            tcpAccessLogs = snapshot.accessLogs(tcp);
            tcpCluster = pick(tcp.cluster());
            logTcp(tcpCluster, 0, 0);
            // as Istio's stats filter, which follows the RBAC filters: the connection is reported at its close
            reportUnrelayed(tcpCluster);
        }
        release();
        ctx.close();
    }

    /**
     * Puts the chain's TLS before this handler and hands it the bytes read so far (the ClientHello); once the
     * handshake is done the chain's filter runs on the decrypted stream, which this handler keeps meanwhile. A failed
     * handshake closes the connection, as Envoy's TLS transport socket does.
     */
    private void terminateTls(ChannelHandlerContext ctx, FilterChain chain, DownstreamTls tls,
                              ProtocolDetector.Detection detection) {
        Channel ch = ctx.channel();
        SslHandler ssl = tls.newHandler(ch.alloc());
        // as Envoy: no limit on the handshake but the chain's transport_socket_connect_timeout (zero: none)
        ssl.setHandshakeTimeoutMillis(chain.transportSocketConnectTimeout().toMillis());
        if (downstreamBytes != null) {
            // as Envoy's connection: the listener's access log counts the bytes inside the TLS, not its records
            downstreamBytes.received = 0;
            ch.pipeline().addBefore(LISTENER_BYTES, DOWNSTREAM_TLS, ssl);
        } else {
            ch.pipeline().addBefore(ctx.name(), DOWNSTREAM_TLS, ssl);
        }
        ByteBuf hello = firstBytes;
        firstBytes = Unpooled.EMPTY_BUFFER;
        ssl.handshakeFuture().addListener(f -> {
            if (!f.isSuccess()) {
                LOG.log(Level.FINE, "TLS handshake with " + source + " on filter chain " + chain.name() + " of "
                        + target.listener().name() + " failed", f.cause());
                var why = DownstreamTls.failure(f.cause());
                if (listenerStats != null && why != null) {
                    listenerStats.tlsFailed(why);
                }
                release();
                ch.close();
                return;
            }
            if (!ch.isActive()) {
                release();
                return;
            }
            if (listenerStats != null) {
                listenerStats.tlsHandshake(DownstreamTls.clientCertificate(ssl.engine()));
            }
            serverName = DownstreamTls.requestedServerName(ssl.engine());
            if (serverName != null) {
                serverName = serverName.toLowerCase(java.util.Locale.ROOT); // as Envoy keeps it
            }
            if (serverName == null && !detection.serverName().isEmpty()) {
                // the JVM's TLS servers parse no SNI (a workload identity's Istio names): the TLS inspector's
                serverName = detection.serverName();
            }
            mutualTls = tls.verifiedPeer(ssl.engine());
            runChain(ctx, chain, detection);
        });
        if (hello.isReadable()) {
            // straight to the TLS handler: a handler before it has seen these bytes already
            ChannelHandlerContext sslCtx = ch.pipeline().context(ssl);
            try {
                ssl.channelRead(sslCtx, hello);
                ssl.channelReadComplete(sslCtx);
            } catch (Exception e) {
                sslCtx.fireExceptionCaught(e);
            }
        } else {
            hello.release();
        }
        if (inputEnded) {
            // the client ended its side with its hello: no handshake can finish
            ch.close();
            return;
        }
        ch.read();
    }

    private void tcpProxy(ChannelHandlerContext ctx, TcpProxy tcp) {
        tcpAccessLogs = snapshot.accessLogs(tcp);
        Channel down = ctx.channel();
        var tcpStats = runtime.tcpProxyStats(tcp.statPrefix());
        if (tcpStats != null) {
            tcpStats.connection();
        }
        if (tcp.maxDownstreamConnectionDuration() != null) {
            // Envoy's tcp_proxy times the connection from when it takes it: at the limit it flags DT and closes the
            // downstream without flushing, which closes the upstream too
            var limit = down.eventLoop().schedule(() -> {
                if (down.isActive()) {
                    tcpFlags.add(ResponseFlag.DURATION_TIMEOUT);
                    if (tcpStats != null) {
                        tcpStats.maxDurationReached();
                    }
                    down.close();
                }
            }, tcp.maxDownstreamConnectionDuration().toNanos(), TimeUnit.NANOSECONDS);
            down.closeFuture().addListener(f -> limit.cancel(false));
        }
        String clusterName = pick(tcp.cluster());
        UpstreamCluster cluster = clusterName == null ? null : snapshot.clusterManager().cluster(clusterName);
        if (cluster == null) {
            // a cluster that does not exist: Envoy flags NC and closes the connection
            LOG.fine(() -> "tcp_proxy to " + clusterName + ": no such cluster: closed");
            tcpFlags.add(ResponseFlag.NO_CLUSTER_FOUND);
            if (tcpStats != null) {
                tcpStats.noRoute();
            }
            logTcp(null, 0, 0);
            reportUnrelayed(null);
            release();
            ctx.close();
            return;
        }
        tcpCluster = clusterName;
        CircuitBreakerState breakers = cluster.circuitBreakers();
        if (!breakers.tryOpenConnection()) {
            // max_connections: Envoy counts upstream_cx_overflow, flags UO and closes the downstream
            var stats = runtime.router.upstreamStats(clusterName);
            if (stats != null) {
                stats.connectionOverflow();
            }
            LOG.fine(() -> "tcp_proxy to " + clusterName + ": max_connections reached: closed");
            refused(ctx, clusterName, ResponseFlag.UPSTREAM_OVERFLOW);
            return;
        }
        connectUpstream(ctx, tcp, clusterName, cluster, breakers, new java.util.ArrayList<>(), tcpStats);
    }

    /**
     * One connect attempt of tcp_proxy, holding a connection slot of the cluster; a failed one is followed by
     * another, to a host picked again that avoids the hosts tried, until {@code max_connect_attempts}.
     */
    private void connectUpstream(ChannelHandlerContext ctx, TcpProxy tcp, String clusterName, UpstreamCluster cluster,
                                 CircuitBreakerState breakers, java.util.List<Host> tried, TcpProxyStats tcpStats) {
        Channel down = ctx.channel();
        // hash_policy source_ip: the hash of the downstream's address, as Envoy's tcp_proxy takes it (and as an HTTP
        // route's source IP hash policy)
        boolean hashed = tcp.hashSourceIp() && source != null;
        LbContext lb = new LbContext(hashed, hashed ? Xxhash.hash64(ListenerDispatch.ip(source)) : 0, null, 1,
                originalDestination());
        Host host = cluster.chooseHost(tried.isEmpty() ? lb : lb.withRejectHost(tried::contains, HOST_PICKS));
        if (host == null) {
            // no healthy host (Istio's BlackHoleCluster has none): Envoy flags UH and closes the connection
            breakers.connectionClosed();
            LOG.fine(() -> "tcp_proxy to " + clusterName + ": no upstream host for " + destination + ": closed");
            tcpFlags.add(ResponseFlag.NO_HEALTHY_UPSTREAM);
            logTcp(clusterName, 0, 0);
            reportUnrelayed(clusterName);
            release();
            ctx.close();
            return;
        }
        SocketAddress remote = host.address();
        int connectTimeout = (int) Math.min(Integer.MAX_VALUE, cluster.config().connectTimeout().toMillis());
        connectAttempts++;
        long connectStart = System.nanoTime();
        // the host's own address, then its other ones (a dual-stack pod's), raced
        runtime.connectHost(down, connectTimeout, cluster, host, null).addListener(f -> {
            if (!f.isSuccess()) {
                breakers.connectionClosed();
                LOG.log(Level.FINE, "tcp_proxy to " + remote + " failed", f.cause());
                // an original source socket option the socket refused: its reason, as Envoy's failure reason; else the
                // socket's error (delayed connect error: Connection refused) or the failed handshake's
                var why = dev.inmesh.runtime.upstream.ConnectFailure.of(f.cause());
                transportFailureReason = why.transportFailureReason();
                // as Envoy's tcp_proxy tells outlier detection (consecutive_5xx maps to connect failures for TCP):
                // a connect the upstream refused or that timed out (503 or 504 to it, both 5xx and gateway
                // failures), not a local failure (a socket option refused) nor one the client's leaving cancelled
                if (down.isActive() && (why.timedOut() || why.remote())) {
                    host.outlier().reportLocalOriginFailure(LocalOriginFailure.CONNECT_FAILED);
                } else {
                    host.stats().connectFailed();
                }
                var stats = runtime.router.upstreamStats(clusterName);
                if (stats != null) {
                    // upstream_cx_destroy: the upstream's when it refused, else the proxy's (a timeout, a socket
                    // option refused), as Envoy's TCP pool closes such a connection itself
                    stats.connectFailed(!why.remote());
                    if (why.timedOut()) {
                        stats.connectTimeout();
                    }
                }
                if (down.isActive()) {
                    tcpFlags.add(ResponseFlag.UPSTREAM_CONNECTION_FAILURE);
                    lastHost = host;
                }
                tried.add(host);
                if (!down.isActive()) {
                    // the client left while connecting: Envoy cancels such a connect (no UF, no host from it)
                    logTcp(clusterName, 0, 0);
                    reportUnrelayed(clusterName);
                    release();
                } else if (tried.size() < tcp.maxConnectAttempts()) {
                    retryConnect(ctx, tcp, clusterName, cluster, breakers, tried, tcpStats);
                } else {
                    // Envoy: UF for the failed connect, URX and upstream_cx_connect_attempts_exceeded as it gives up
                    if (stats != null) {
                        stats.connectAttemptsExceeded();
                    }
                    refused(ctx, clusterName, ResponseFlag.UPSTREAM_CONNECTION_FAILURE,
                            ResponseFlag.UPSTREAM_RETRY_LIMIT_EXCEEDED);
                }
                return;
            }
            Channel up = (Channel) f.getNow();
            dev.inmesh.runtime.upstream.CloseSide.install(up); // which side closes it: upstream_cx_destroy_*
            if (down.isActive()) {
                host.outlier().reportConnectSuccessFinal();
            }
            up.closeFuture().addListener(c -> breakers.connectionClosed());
            var clusterStats = runtime.router.upstreamStats(clusterName);
            // the cluster's upstream_cx_total and upstream_cx_active, as Envoy counts tcp_proxy's connections
            connectionOpened(up, clusterStats, connectStart);
            if (!down.isActive()) {
                logTcp(clusterName, 0, 0);
                reportUnrelayed(clusterName);
                release();
                up.close();
                return;
            }
            // the relay is the stream Envoy's TCP pool attaches to the connection, until the relay ends: the host's
            // cx_ and rq_ counts (/clusters) and the cluster's upstream_rq_total and upstream_rq_active; and, as
            // Envoy's TCP pool counts the close of a connection a relay holds, upstream_cx_destroy_*_with_active_rq
            dev.inmesh.runtime.upstream.CloseSide.requestActive(up, true);
            host.stats().connectionOpened();
            up.closeFuture().addListener(c -> host.stats().connectionClosed());
            host.stats().requestStarted();
            if (clusterStats != null) {
                clusterStats.requestStarted();
                clusterStats.activeRequests(1);
                up.closeFuture().addListener(c -> clusterStats.activeRequests(-1));
            }
            lastHost = host;
            transportFailureReason = null; // the last connect's: this one has its upstream
            SslHandler upstreamTls = up.pipeline().get(SslHandler.class);
            if (upstreamTls != null) {
                // the identities of the TLS this proxy originated, as Istio's client-side stats label them
                javax.net.ssl.SSLSession session = upstreamTls.engine().getSession();
                upstreamPeerPrincipal = dev.inmesh.runtime.router.ForwardedClientCert.peerPrincipal(session);
                upstreamLocalPrincipal = dev.inmesh.runtime.router.ForwardedClientCert.principal(
                        session.getLocalCertificates());
            }
            upstreamLocal = up.localAddress() instanceof InetSocketAddress a ? ListenerDispatch.hostPort(a) : null;
            ByteBuf first = firstBytes;
            firstBytes = Unpooled.EMPTY_BUFFER;
            long inspected = first.readableBytes();
            if (first.isReadable()) {
                up.writeAndFlush(first);
            } else {
                first.release();
            }
            down.pipeline().remove(this);
            var metricsOf = runtime.tcpMetrics;
            var metrics = metricsOf == null ? null
                    : metricsOf.apply(tcpMetricsInfo(clusterName, inspected));
            if (metrics != null) {
                metrics.opened(tcpFlags); // the flags so far (UF of a connect retried), which its metrics keep
            }
            TcpRelay.Counters[] counted = new TcpRelay.Counters[1];
            // as Istio's stats (tcp_reporting_duration, 5 s by default): a long connection's bytes while it lasts
            long every = tcpReportingMillis;
            io.netty.util.concurrent.ScheduledFuture<?> reporting = metrics == null ? null
                    : down.eventLoop().scheduleAtFixedRate(() -> {
                        TcpRelay.Counters c = counted[0];
                        if (c != null) {
                            // the bytes read while inspecting the connection were sent before the relay started
                            metrics.relayed(inspected + c.downstreamToUpstream.get(), c.upstreamToDownstream.get());
                        }
                    }, every, every, java.util.concurrent.TimeUnit.MILLISECONDS);
            if (tcpStats != null) {
                // what was read before the relay started, as Envoy's tcp_proxy reads it once connected
                tcpStats.received(inspected);
            }
            Runnable idle = tcpStats == null ? null : tcpStats::idleTimeout;
            counted[0] = TcpRelay.join(down, up, tcp.idleTimeout(), idle, tcpStats, () -> {
                host.stats().requestFinished();
                if (reporting != null) {
                    reporting.cancel(false);
                }
                if (metrics != null && counted[0] != null) {
                    metrics.relayed(inspected + counted[0].downstreamToUpstream.get(),
                            counted[0].upstreamToDownstream.get());
                    // the connection's flags, as its access log line has them (DT when its duration ran out)
                    metrics.closed(tcpFlags); // in the order they were set
                }
                TcpRelay.Counters c = counted[0];
                logTcp(clusterName, inspected + (c == null ? 0 : c.downstreamToUpstream.get()),
                        c == null ? 0 : c.upstreamToDownstream.get());
            });
            if (inputEnded) {
                down.pipeline().fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
            }
        });
    }

    /** The next attempt, which takes a connection slot again (Envoy checks the breaker before each attempt). */
    private void retryConnect(ChannelHandlerContext ctx, TcpProxy tcp, String clusterName, UpstreamCluster cluster,
                              CircuitBreakerState breakers, java.util.List<Host> tried, TcpProxyStats tcpStats) {
        if (!breakers.tryOpenConnection()) {
            var stats = runtime.router.upstreamStats(clusterName);
            if (stats != null) {
                stats.connectionOverflow();
            }
            refused(ctx, clusterName, ResponseFlag.UPSTREAM_CONNECTION_FAILURE, ResponseFlag.UPSTREAM_OVERFLOW);
            return;
        }
        connectUpstream(ctx, tcp, clusterName, cluster, breakers, tried, tcpStats);
    }

    /**
     * Closes a connection tcp_proxy gives no upstream, counted in Istio's TCP metrics with Envoy's flags
     * ({@link #reportUnrelayed}).
     *
     * @param flags the flags in the order Envoy's tcp_proxy sets them
     */
    private void refused(ChannelHandlerContext ctx, String clusterName, ResponseFlag... flags) {
        tcpFlags.addAll(java.util.Arrays.asList(flags));
        reportUnrelayed(clusterName);
        logTcp(clusterName, 0, 0);
        release();
        ctx.close();
    }

    /**
     * Counts a tcp_proxy connection that relayed nothing in Istio's TCP metrics, opened and closed at once with its
     * flags, as Istio's stats report a connection at its close when they had not before.
     *
     * @param clusterName the cluster, or null when it does not exist (the connection's service is then unknown)
     */
    private void reportUnrelayed(String clusterName) {
        var metricsOf = runtime.tcpMetrics;
        if (metricsOf != null) {
            metricsOf.apply(tcpMetricsInfo(clusterName, 0)).closed(tcpFlags);
        }
    }

    /**
     * The connection as Istio's TCP metrics count it, under its chain's stats overrides; with its addresses, SNI and
     * upstream now when their dimensions are evaluated (once, as Istio's network filter evaluates them).
     *
     * @param clusterName the cluster, or null when it does not exist
     * @param received the bytes read from the downstream so far
     */
    private dev.inmesh.runtime.stats.TcpConnectionInfo tcpMetricsInfo(String clusterName, long received) {
        return tcpInfo(clusterName == null ? "" : clusterName).withStatsOverrides(tcpStats,
                () -> streamInfo(clusterName, received, 0));
    }

    /**
     * Hands the finished tcp_proxy connection to the access log, once; called on the event loop, so the log only
     * formats the line and queues it.
     *
     * @param clusterName the cluster, or null when it does not exist
     */
    private void logTcp(String clusterName, long received, long sent) {
        var log = runtime.tcpAccessLog;
        if ((log == null && tcpAccessLogs.isEmpty()) || tcpLogged) {
            return;
        }
        tcpLogged = true;
        try {
            var info = streamInfo(clusterName, received, sent);
            // the tcp_proxy's own access_log when it names one, else the proxy's --access-log
            if (!tcpAccessLogs.isEmpty()) {
                tcpAccessLogs.log(dev.inmesh.runtime.accesslog.AccessLogEntry.of(info));
            } else {
                log.accept(info);
            }
        } catch (RuntimeException e) {
            // the access log must never break a connection
            LOG.log(Level.FINE, "access log of the connection from " + source + " failed", e);
        }
    }

    /** What is known of the connection now: its addresses, duration, flags and tcp_proxy's upstream. */
    private dev.inmesh.runtime.stats.TcpStreamInfo streamInfo(String clusterName, long received, long sent) {
        Host host = lastHost;
        var direct = ListenerDispatch.PhysicalAddresses.of(physicalPeer, physicalLocal, source, destination);
        return new dev.inmesh.runtime.stats.TcpStreamInfo(startTime, tcpFlags, received, sent,
                (System.nanoTime() - startNanos) / 1_000_000, host == null ? null : host.addressString(),
                clusterName, upstreamLocal, ListenerDispatch.hostPort(destination),
                ListenerDispatch.hostPort(source), serverName, transportFailureReason, terminationDetails,
                connectAttempts, clusterName == null ? null : snapshot.clusterManager().observabilityName(clusterName),
                direct.remote(), direct.local(), peerPrincipal(),
                // as Envoy's %DOWNSTREAM_LOCAL_URI_SAN%: the proxy's certificate, whether the client sent one or not
                dev.inmesh.runtime.router.ForwardedClientCert.principal(ownCertificates), upstreamPeerPrincipal,
                upstreamLocalPrincipal, responseCodeDetails);
    }

    /**
     * Writes the closed connection to its listener's own access logs, as Envoy does for each connection it accepted
     * (whatever took it: tcp_proxy, a connection manager, or no filter chain): the bytes read from and written to the
     * downstream connection (inside the TLS the chain terminated), the connection's flags and, for tcp_proxy, its
     * upstream.
     */
    private void logListener(DownstreamBytes bytes) {
        try {
            listenerLogs.log(dev.inmesh.runtime.accesslog.AccessLogEntry.of(streamInfo(tcpCluster, bytes.received,
                    bytes.sent)).withFilterChainName(chainName));
        } catch (RuntimeException e) {
            // the access log must never break a connection
            LOG.log(Level.FINE, "listener access log of the connection from " + source + " failed", e);
        }
    }

    /** Counts the downstream connection's bytes as they are read and written, for the listener's access log. */
    private static final class DownstreamBytes extends io.netty.channel.ChannelDuplexHandler {
        long received;
        long sent;

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof ByteBuf b) {
                received += b.readableBytes();
            }
            ctx.fireChannelRead(msg);
        }

        @Override
        public void write(ChannelHandlerContext ctx, Object msg, io.netty.channel.ChannelPromise promise) {
            if (msg instanceof ByteBuf b) {
                sent += b.readableBytes();
            }
            ctx.write(msg, promise);
        }
    }

    /**
     * Who a relayed connection is counted for: inbound on an inbound listener, else outbound; the destination service
     * and, outbound, workload as the router labels a request to the cluster and the host connected to
     * ({@link ServiceLabels}: the cluster's {@code istio} metadata and the endpoint's {@code istio.workload}, each
     * unknown without them). Inbound, as Istio's server-side stats
     * ({@link ServiceLabels#ofInboundConnection}, which {@code mesh.inbound}'s TCP chains share); as Istio's stats,
     * {@code PassthroughCluster} and {@code BlackHoleCluster} are the service name of a connection through them.
     */
    private dev.inmesh.runtime.stats.TcpConnectionInfo tcpInfo(String clusterName) {
        boolean inbound = target.listener().trafficDirection()
                == dev.inmesh.api.config.listener.TrafficDirection.INBOUND
                || accepting.listener().trafficDirection() == dev.inmesh.api.config.listener.TrafficDirection.INBOUND;
        if (inbound) {
            ServiceLabels dest = ServiceLabels.ofInboundConnection(clusterName,
                    clusterName.isEmpty() ? null : snapshot.clusterManager().cluster(clusterName));
            return new dev.inmesh.runtime.stats.TcpConnectionInfo(dev.inmesh.runtime.stats.StreamInfo.Direction
                    .INBOUND, null, dest.host(), dest.name(), dest.namespace(), mutualTls, peerPrincipal(),
                    ownPrincipal());
        }
        if (ServiceLabels.namesCluster(clusterName)) {
            // as Istio's stats: the cluster's name is the service name; which service the bytes were for is unknown
            return new dev.inmesh.runtime.stats.TcpConnectionInfo(dev.inmesh.runtime.stats.StreamInfo.Direction
                    .OUTBOUND, null, null, clusterName, null, mutualTls, peerPrincipal(), ownPrincipal());
        }
        // as the router labels a request: the service of the cluster, and outbound, as Istio's client-side stats
        // without a metadata exchange, the destination workload of the endpoint connected to (its istio.workload)
        UpstreamCluster cluster = clusterName.isEmpty() ? null : snapshot.clusterManager().cluster(clusterName);
        ServiceLabels dest = ServiceLabels.of(cluster, lastHost);
        return new dev.inmesh.runtime.stats.TcpConnectionInfo(dev.inmesh.runtime.stats.StreamInfo.Direction.OUTBOUND,
                dest.workload(), dest.host(), dest.name(), dest.namespace(), mutualTls, peerPrincipal(),
                ownPrincipal(), upstreamPeerPrincipal, upstreamLocalPrincipal);
    }

    /** The client's identity (its certificate's first URI SAN) when it presented a certificate, else null. */
    private String peerPrincipal() {
        return dev.inmesh.runtime.router.ForwardedClientCert.principal(peerCertificates);
    }

    /** This proxy's identity in TLS whose client presented a certificate (Istio's mTLS), else null. */
    private String ownPrincipal() {
        return peerCertificates == null || peerCertificates.length == 0 ? null
                : dev.inmesh.runtime.router.ForwardedClientCert.principal(ownCertificates);
    }

    /** The cluster of a tcp_proxy: a named one, or one of weighted clusters by weight. */
    static String pick(ClusterSpecifier spec) {
        return dev.inmesh.runtime.router.RouteTable.pickCluster(spec, ThreadLocalRandom.current().nextLong());
    }

    private void http(ChannelHandlerContext ctx, FilterChain chain, HttpConnectionManager hcm,
                      ProtocolDetector.Detection detection) {
        Channel ch = ctx.channel();
        StreamInfo.Direction direction = target.listener().trafficDirection() == TrafficDirection.INBOUND
                ? StreamInfo.Direction.INBOUND : StreamInfo.Direction.OUTBOUND;
        // https for the requests of a connection whose TLS this chain terminated, as Envoy's connection scheme; the
        // certificates both sides presented in it, for x-forwarded-client-cert and the principals
        HttpBridge.Connection conn = new HttpBridge.Connection(runtime, snapshot.routeTable(chain),
                hcm, direction, destination, originalDestination(), source, chain.tls(),
                chain.tls() ? serverName : null, mutualTls,
                peerCertificates, ownCertificates, tlsSession, drain, target.listener(), snapshot.rbac(hcm),
                snapshot.localRateLimit(hcm), snapshot.tracer(hcm), snapshot.accessLogs(hcm),
                snapshot.statsOverrides(hcm), snapshot.lua(hcm), snapshot.localReply(hcm),
                snapshot.headerMutation(hcm));
        ch.pipeline().addAfter(ctx.name(), "http-select", new HttpBridge.CodecSelector(conn));
        ByteBuf first = firstBytes;
        firstBytes = Unpooled.EMPTY_BUFFER;
        // from here on, past the handlers before this one (a terminated connection's TLS): the bytes are read already
        if (first.isReadable()) {
            ctx.fireChannelRead(first);
            ctx.fireChannelReadComplete();
        } else {
            first.release();
        }
        if (inputEnded) {
            ctx.fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
        }
        ch.pipeline().remove(this);
        ch.config().setAutoRead(true);
        ch.read();
    }

    /**
     * An upstream connection {@code up} that a relay opened, counted in its cluster's {@code upstream_cx_total} and
     * {@code upstream_cx_active} (until it closes), with its connect time from {@code connectStart} (the attempt's
     * start, {@link System#nanoTime}) and its length from the connect, as Envoy's pools count the connections they
     * make (tcp_proxy's, an upgrade's); nothing when {@code clusterStats} is null.
     */
    static void connectionOpened(Channel up, dev.inmesh.runtime.stats.UpstreamStats clusterStats, long connectStart) {
        if (clusterStats == null) {
            return;
        }
        clusterStats.connectionOpened();
        long opened = System.nanoTime();
        clusterStats.connectTime((opened - connectStart) / 1_000_000);
        up.closeFuture().addListener(c -> clusterStats.connectionClosed((System.nanoTime() - opened) / 1_000_000,
                dev.inmesh.runtime.upstream.CloseSide.closedLocally(up),
                dev.inmesh.runtime.upstream.CloseSide.closedWithActiveRequest(up)));
    }
}
