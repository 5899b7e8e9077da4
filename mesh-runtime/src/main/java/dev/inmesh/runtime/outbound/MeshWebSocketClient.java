package dev.inmesh.runtime.outbound;

import dev.inmesh.runtime.router.Router;
import dev.inmesh.runtime.router.RouterResponse;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.upstream.CloseSide;
import dev.inmesh.runtime.upstream.ConnectFailure;
import dev.inmesh.runtime.upstream.UpstreamTls;
import io.netty.channel.Channel;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufHolder;
import io.netty.handler.timeout.IdleStateEvent;
import io.netty.handler.timeout.IdleStateHandler;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.ClientWebSocket;
import io.vertx.core.http.UpgradeRejectedException;
import io.vertx.core.http.WebSocket;
import io.vertx.core.http.WebSocketClient;
import io.vertx.core.http.WebSocketClientOptions;
import io.vertx.core.http.WebSocketConnectOptions;
import io.vertx.core.internal.http.WebSocketInternal;
import io.vertx.core.net.ClientSSLOptions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * A Vert.x {@link WebSocketClient} whose WebSockets go through the mesh, as a sidecar takes the application's
 * WebSocket upgrade: the listener for the destination's port, its connection manager ({@code upgrade_configs}: an
 * upgrade it does not enable is refused 403), its filters, the route (rewrites, header rules), a host of the route's
 * cluster (a stateful session's, else the load balancer's with the route's hash policies), the cluster's TLS
 * (Istio's mTLS) and {@code max_requests}; reported (Istio's metrics, the access log) when the WebSocket closes, with
 * the upstream's 101 and the bytes each way. The route's idle timeout (else the connection manager's stream idle
 * timeout) and {@code max_stream_duration} close it, as Envoy's connection manager ends an upgraded stream. An
 * upgrade the mesh refuses, or whose upstream cannot be reached, fails with an {@link UpgradeRejectedException}
 * carrying the answer a sidecar would have given (503 and Envoy's body for a connect failure, ...). One that a
 * sidecar relays as bytes (no connection manager: a {@code tcp_proxy} chain, the passthrough, Istio's
 * BlackHoleCluster) gets no answer from the mesh, as a {@code tcp_proxy} gives none: it fails as a plain client's
 * ({@link #answered}, {@link OutboundDispatcher#unanswered}).
 *
 * <p>A {@code wss://} WebSocket (the application's own TLS) is relayed as a sidecar relays TLS it does not read, as
 * the mesh's HTTP client does: to the address named, or to a host of the cluster of the TLS chain that takes it.
 * {@link #webSocket()} (a WebSocket connected later) is not supported: use {@link #connect}.
 */
public final class MeshWebSocketClient implements WebSocketClient {
    /**
     * A client per TLS its connections speak: the cluster's context and the request's host it takes names from; or
     * (no context) the caller's own TLS with the name of the host it named.
     */
    private record TlsKey(UpstreamTls tls, String requestHost) {}

    /** Clients per TLS kept at most; past it, the oldest is shut down (its WebSockets are left to end). */
    private static final int MAX_TLS_CLIENTS = 64;

    private final Vertx vertx;
    private final WebSocketClientOptions options;
    private final WebSocketClient plain;
    private final OutboundDispatcher dispatcher;
    private final Map<TlsKey, WebSocketClient> tlsClients = new ConcurrentHashMap<>();
    private final List<TlsKey> tlsOrder = new ArrayList<>();
    private final Runnable onShutdown;

    /**
     * A client of {@code options} whose WebSockets {@code dispatcher} decides; {@code onShutdown} runs when it shuts
     * down.
     */
    public MeshWebSocketClient(Vertx vertx, WebSocketClientOptions options, OutboundDispatcher dispatcher,
                               Runnable onShutdown) {
        this.vertx = vertx;
        this.options = new WebSocketClientOptions(options);
        this.plain = vertx.createWebSocketClient(options);
        this.dispatcher = dispatcher;
        this.onShutdown = onShutdown;
    }

    @Override
    public ClientWebSocket webSocket() {
        throw new UnsupportedOperationException("a mesh WebSocket client connects with connect(...): "
                + "webSocket() would connect past the mesh");
    }

    @Override
    public Future<WebSocket> connect(WebSocketConnectOptions o) {
        IllegalStateException unavailable = dispatcher.unavailable();
        if (unavailable != null) {
            return Future.failedFuture(unavailable);
        }
        String host = o.getHost() != null ? o.getHost() : options.getDefaultHost();
        int port = o.getPort() != null ? o.getPort() : options.getDefaultPort();
        boolean ssl = o.isSsl() != null ? o.isSsl() : options.isSsl();
        String uri = o.getURI() == null ? "/" : o.getURI();
        if (ssl) {
            OutboundDispatcher.TlsRoute tls = dispatcher.tlsRoute(host, port);
            if (tls != null) {
                // the caller's own TLS, which the mesh does not read, end to end to where a sidecar relays it
                if (tls.server() == null) {
                    return plain.connect(o);
                }
                // to a host of the relaying chain's cluster, the caller's host still its TLS name and Host: Vert.x's
                // WebSocket client connects to the host it names, so the address stands there and the name goes
                // in the handshake by the engine
                WebSocketConnectOptions direct = new WebSocketConnectOptions(o).setHost(tls.server().host())
                        .setPort(tls.server().port());
                direct.putHeader("host", port == 443 ? host : host + ":" + port);
                callerOrigin(direct.getHeaders(), o, host, port, true, uri);
                return callerTlsClient(host).connect(direct);
            }
        }
        MultiMap headers = MultiMap.caseInsensitiveMultiMap();
        if (o.getHeaders() != null) {
            headers.addAll(o.getHeaders());
        }
        // the route's header rules see the caller's Origin as a sidecar sees the application's
        callerOrigin(headers, o, host, port, ssl, uri);
        return dispatcher.upgrade(host, port, uri, headers, ssl).compose(relay -> relay.refusal() == null
                ? open(relay, o)
                : relay.refusal().request().opaque() ? Future.failedFuture(dispatcher.unanswered(relay.refusal(),
                        closed()))
                : refused(relay.refusal()));
    }

    /**
     * Puts in {@code headers} the Origin the caller's client would send for {@code o} to {@code host}:{@code port}
     * ({@code ssl}) at {@code uri}: its own when its headers set one, else one derived from the host it named (not
     * from the address of the host the mesh connects to, which Vert.x would derive it from), none when it allows none
     * (Vert.x then drops even one set in its headers).
     */
    private static void callerOrigin(MultiMap headers, WebSocketConnectOptions o, String host, int port, boolean ssl,
                                     String uri) {
        String name = originHeader(o.getVersion());
        if (!o.getAllowOriginHeader()) {
            headers.remove(name);
        } else if (!headers.contains(name)) {
            String origin = defaultOrigin(host, port, ssl, uri);
            if (origin != null) {
                headers.add(name, origin);
            }
        }
    }

    /**
     * The header a client's handshake of {@code version} (null: 13) names its origin in: {@code origin}, or
     * {@code sec-websocket-origin} in the drafts 07 and 08, as Netty's handshakers name it.
     */
    private static String originHeader(io.vertx.core.http.WebSocketVersion version) {
        return version == io.vertx.core.http.WebSocketVersion.V07 || version == io.vertx.core.http.WebSocketVersion.V08
                ? "sec-websocket-origin" : "origin";
    }

    /**
     * The origin a plain Vert.x WebSocket client sends for a connect to {@code host}:{@code port} ({@code ssl}) at
     * {@code uri}: that of the URI it connects to (the {@code uri}, when absolute, else {@code http} or
     * {@code https} with the host and port), serialized as RFC 6454 says: {@code scheme://host}, the host in lower
     * case, {@code :port} when the port is not the scheme's default (80, 443 for https and wss); null when the URI
     * has no host.
     */
    private static String defaultOrigin(String host, int port, boolean ssl, String uri) {
        String scheme = ssl ? "https" : "http";
        try {
            java.net.URI u = new java.net.URI(uri);
            if (u.isAbsolute()) {
                scheme = u.getScheme();
                host = u.getHost();
                port = u.getPort();
            }
        } catch (java.net.URISyntaxException e) {
            // a path the client sends as it is: the host and port it connects to make the origin
        }
        if (host == null) {
            return null;
        }
        boolean secure = "https".equals(scheme) || "wss".equals(scheme);
        // an IPv6 address in brackets, as a URI has it
        String h = host.toLowerCase(java.util.Locale.ROOT);
        if (h.indexOf(':') >= 0 && !h.startsWith("[")) {
            h = "[" + h + "]";
        }
        return (secure ? "https://" : "http://") + (port == -1 || port == (secure ? 443 : 80) ? h
                : io.netty.util.NetUtil.toSocketAddressString(h, port));
    }

    /**
     * What Vert.x's WebSocket client fails a handshake with when its connection closes before an answer
     * ({@code WebSocketHandshakeInboundHandler.channelInactive}), as a {@code tcp_proxy} that has no upstream
     * connection closes the caller's (Envoy's source/common/tcp_proxy/tcp_proxy.cc, {@code Filter::onInitFailure}).
     */
    private static Throwable closed() {
        return new io.netty.handler.codec.http.websocketx.WebSocketHandshakeException(
                "Connection closed while handshake in process");
    }

    /** The mesh answered the upgrade itself: reported, and the caller's connect fails with that answer. */
    private Future<WebSocket> refused(RouterResponse r) {
        Buffer body = r.localBody() == null ? Buffer.buffer() : r.localBody();
        dispatcher.router().complete(r, body.length());
        return Future.failedFuture(rejected(r.status(), r.headers(), body));
    }

    private static UpgradeRejectedException rejected(int status, MultiMap headers, Buffer body) {
        return new UpgradeRejectedException("WebSocket upgrade failure: " + status, status, headers, body);
    }

    /** Opens the WebSocket the router decided to the host it chose, and watches it until it closes. */
    private Future<WebSocket> open(Router.Relay relay, WebSocketConnectOptions o) {
        Router router = dispatcher.router();
        RouterResponse started = relay.started();
        UpstreamTls tls;
        try {
            tls = relay.cluster().tls(relay.host());
        } catch (IllegalStateException e) {
            // its TLS is not usable: the connection must not go in plaintext
            return failed(started, ConnectFailure.UNKNOWN, closed());
        }
        var address = relay.host().address();
        // until the upstream answers, the stream's idle timeout and max_stream_duration run as on any stream: the
        // handshake ends at the sooner of them (answered 408 in the upstream's place) unless the caller's own
        // timeout comes first
        Duration idle = Router.relayIdleTimeout(started.request(), relay.route());
        long idleMillis = idle == null || idle.isZero() ? -1 : idle.toMillis();
        long durationMillis = Router.relayDurationLeftMillis(started.request(), relay.route());
        boolean idleFirst = idleMillis > 0 && (durationMillis <= 0 || idleMillis < durationMillis);
        long meshMillis = idleFirst ? idleMillis : durationMillis;
        boolean meshTimeout = meshMillis > 0 && (o.getTimeout() <= 0 || meshMillis < o.getTimeout());
        // Vert.x's WebSocket client connects to the host it names (it reads no server address): the host's address
        WebSocketConnectOptions to = new WebSocketConnectOptions().setHost(address.address()).setPort(address.port())
                .setURI(relay.path()).setSsl(tls != null)
                .setVersion(o.getVersion()).setSubProtocols(o.getSubProtocols())
                .setTimeout(meshTimeout ? meshMillis : o.getTimeout())
                .setConnectTimeout(ConnectFailure.timeoutMillis(relay.cluster().config().connectTimeout()));
        long handshakeTimeout = to.getTimeout();
        // Vert.x ends a handshake at its timeout by closing the connection: a failure at or past it is the timeout's
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(Math.max(0, handshakeTimeout));
        for (Map.Entry<String, String> h : started.request().headers()) {
            to.addHeader(h.getKey(), h.getValue()); // the router's map: the caller's, as the route's rules left it
        }
        to.putHeader("host", relay.authority());
        // the origin the caller's headers carry after the route's rules, if any: Vert.x makes none of its own (from
        // the host's address) where one is set, and drops any when not allowed
        to.setAllowOriginHeader(to.getHeaders().contains(originHeader(o.getVersion())));
        Future<WebSocket> connecting;
        try {
            WebSocketClient client = tls == null ? plain : tlsClient(tls, tls.context().perRequestHost()
                    ? UpstreamTls.requestHost(relay.authority()) : null, relay.cluster().config().connectTimeout());
            connecting = client.connect(to);
        } catch (RuntimeException e) {
            // the client could not even try (its TLS options, a closed client): the relay ends reported, its
            // max_requests slot given back, as a connection that failed
            return failed(started, ConnectFailure.UNKNOWN, closed());
        }
        return connecting.transform(ar -> {
            if (ar.succeeded()) {
                watch(ar.result(), relay);
                // the 101 as a sidecar gives it: the route's response rules, the connection manager's headers
                try {
                    router.relayResponseHead(started, 101, ar.result().headers());
                } catch (RuntimeException e) {
                    // a response rule that failed: the WebSocket open is closed (and reported), not left to no one
                    ar.result().close();
                    return Future.failedFuture(e);
                }
                return Future.succeededFuture(ar.result());
            }
            Throwable cause = ar.cause();
            boolean timedOut = handshakeTimeout > 0 && !(cause instanceof UpgradeRejectedException)
                    && System.nanoTime() >= deadline;
            if (timedOut && meshTimeout) {
                // no answer within the stream's time
                return idleFirst ? answered(started, 408, "stream timeout", "stream_idle_timeout",
                        ResponseFlag.STREAM_IDLE_TIMEOUT, closed())
                        : answered(started, 408, "downstream duration timeout", "max_duration_timeout", null,
                                closed());
            }
            if (timedOut || cause instanceof java.util.concurrent.TimeoutException) {
                // the caller's own timeout ran out (its options' timeout): it gave up, as a client that resets
                router.relayEnded(started, 0, "downstream_remote_disconnect", 0, 0,
                        ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION);
                return Future.failedFuture(cause);
            }
            if (cause instanceof UpgradeRejectedException u) {
                // the upstream's own answer, as the client gets it through a sidecar
                Buffer body = u.getBody();
                router.relayEnded(started, u.getStatus(), "via_upstream", 0, body == null ? 0 : body.length(), null);
                return Future.failedFuture(u);
            }
            boolean connect = cause instanceof java.net.ConnectException
                    || cause instanceof java.net.UnknownHostException
                    || cause instanceof io.netty.channel.ConnectTimeoutException
                    || cause instanceof javax.net.ssl.SSLException;
            return connect ? failed(started, router.relayConnectFailed(started, cause), cause)
                    : answered(started, 503, Router.upstreamResetBody("connection termination"),
                            "upstream_reset_before_response_started{connection_termination}",
                            ResponseFlag.UPSTREAM_CONNECTION_TERMINATION, cause);
        });
    }

    /**
     * The upstream could not be reached ({@code why}): 503 as the router answers it, reported; {@code failure} for a
     * relay of bytes (see {@link #answered}).
     */
    private Future<WebSocket> failed(RouterResponse started, ConnectFailure why, Throwable failure) {
        return answered(started, 503, Router.upstreamResetBody(why.reason()), why.details(),
                ResponseFlag.UPSTREAM_CONNECTION_FAILURE, failure);
    }

    /**
     * The relay ends with the mesh's answer in the upstream's place (503 when it failed; 408, as Envoy's connection
     * manager answers a stream whose response has not begun, when the stream's idle timeout or
     * {@code max_stream_duration} ended it first): reported, and the caller's connect fails with it. A relay of bytes
     * ({@link dev.inmesh.runtime.router.RouterRequest#opaque}: no connection manager) gets no answer, as a
     * {@code tcp_proxy} answers no HTTP and closes the caller's connection (tcp_proxy.cc,
     * {@code Filter::onInitFailure}): reported with code 0, {@code details} and {@code flag} kept, as the mesh's HTTP
     * client reports such a request, and the connect fails with {@code failure}, as a plain client's would (the plain
     * client's own: a {@code ConnectException}, an {@code UnknownHostException}, its handshake's closed connection).
     */
    private Future<WebSocket> answered(RouterResponse started, int status, String body, String details,
                                       ResponseFlag flag, Throwable failure) {
        Router router = dispatcher.router();
        if (started.request().opaque()) {
            router.relayEnded(started, 0, details, 0, 0, flag);
            return Future.failedFuture(failure);
        }
        RouterResponse r = router.relayLocalReply(started, status, body);
        Buffer b = r.localBody();
        router.relayEnded(started, status, details, 0, b.length(), flag);
        return Future.failedFuture(rejected(status, r.headers(), b));
    }

    /**
     * Counts the WebSocket's bytes, closes it at its idle timeout and its {@code max_stream_duration}, and reports it
     * once its connection closed.
     */
    private void watch(WebSocket ws, Router.Relay relay) {
        if (!(ws instanceof WebSocketInternal internal)) {
            // not Vert.x's own (no connection to watch): reported when its close handler runs, unless the caller
            // sets its own, so that the relay never stays open in the statistics
            ws.closeHandler(v -> dispatcher.router().relayEnded(relay.started(), 101, "via_upstream", 0, 0, null));
            return;
        }
        Channel ch = internal.channelHandlerContext().channel();
        CloseSide.install(ch); // an upstream that breaks the connection off (its reset) is told from a clean close
        Bytes bytes = new Bytes();
        // the WebSocket's own bytes: after the TLS the cluster speaks, as Envoy counts a stream's
        ChannelHandlerContext tlsContext = ch.pipeline().context(io.netty.handler.ssl.SslHandler.class);
        if (tlsContext != null) {
            ch.pipeline().addAfter(tlsContext.name(), "mesh-relay-bytes", bytes);
        } else {
            ch.pipeline().addFirst("mesh-relay-bytes", bytes);
        }
        Duration idle = Router.relayIdleTimeout(relay.started().request(), relay.route());
        boolean[] idled = {false};
        boolean[] lasted = {false};
        if (idle != null && !idle.isZero()) {
            ch.pipeline().addFirst("mesh-relay-idle", new IdleStateHandler(0, 0, idle.toMillis(),
                    TimeUnit.MILLISECONDS) {
                @Override
                protected void channelIdle(ChannelHandlerContext ctx, IdleStateEvent evt) {
                    idled[0] = true;
                    ctx.close();
                }
            });
        }
        long left = Router.relayDurationLeftMillis(relay.started().request(), relay.route());
        io.netty.util.concurrent.Future<?> lifetime = left <= 0 ? null : ch.eventLoop().schedule(() -> {
            lasted[0] = true;
            ch.close();
        }, left, TimeUnit.MILLISECONDS);
        ch.closeFuture().addListener(f -> {
            if (lifetime != null) {
                lifetime.cancel(false);
            }
            // an upstream's reset once the 101 came: as Envoy's router reports an upstream reset after the response
            // started (its clean close ends the stream as the upstream's)
            boolean reset = !lasted[0] && !idled[0] && CloseSide.brokenOff(ch);
            dispatcher.router().relayEnded(relay.started(), 101, lasted[0] ? "max_duration_timeout"
                            : idled[0] ? "stream_idle_timeout"
                            : reset ? "upstream_reset_after_response_started{connection_termination}"
                            : "via_upstream", bytes.written, bytes.read,
                    idled[0] ? ResponseFlag.STREAM_IDLE_TIMEOUT
                            : reset ? ResponseFlag.UPSTREAM_CONNECTION_TERMINATION : null);
        });
    }

    /** The bytes a WebSocket's connection read and wrote after its handshake. */
    private static final class Bytes extends ChannelDuplexHandler {
        volatile long read;
        volatile long written;

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            read += size(msg);
            ctx.fireChannelRead(msg);
        }

        @Override
        public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
            written += size(msg);
            ctx.write(msg, promise);
        }

        private static long size(Object msg) {
            return msg instanceof ByteBuf b ? b.readableBytes()
                    : msg instanceof ByteBufHolder h ? h.content().readableBytes() : 0;
        }
    }

    /** The client whose connections speak {@code tls} (for {@code requestHost}), made on first use. */
    private WebSocketClient tlsClient(UpstreamTls tls, String requestHost, Duration connectTimeout) {
        return client(new TlsKey(tls, requestHost), o -> tls.apply(o, requestHost, connectTimeout.toMillis()));
    }

    /**
     * The client for the caller's own TLS to an address other than the host it names: the caller's options, the
     * host's name as SNI (and so as the name the caller's host verification checks).
     */
    private WebSocketClient callerTlsClient(String host) {
        return client(new TlsKey(null, host), o -> o.setSslEngineOptions(new dev.inmesh.runtime.tls.EngineHookOptions(
                engine -> {
                    javax.net.ssl.SNIServerName name = UpstreamTls.serverName(host);
                    if (name != null) {
                        javax.net.ssl.SSLParameters p = engine.getSSLParameters();
                        p.setServerNames(List.of(name));
                        engine.setSSLParameters(p);
                    }
                })));
    }

    /** The client of {@code key}, made on first use with the client's options as {@code setUp} changes them. */
    private WebSocketClient client(TlsKey key, java.util.function.Consumer<WebSocketClientOptions> setUp) {
        WebSocketClient c = tlsClients.get(key);
        if (c != null) {
            return c;
        }
        synchronized (tlsOrder) {
            c = tlsClients.get(key);
            if (c != null) {
                return c;
            }
            if (tlsOrder.size() >= MAX_TLS_CLIENTS) {
                // a rotated certificate, a host gone: the oldest goes, its open WebSockets left to end
                WebSocketClient oldest = tlsClients.remove(tlsOrder.remove(0));
                if (oldest != null) {
                    oldest.shutdown(30, TimeUnit.SECONDS);
                }
            }
            WebSocketClientOptions o = new WebSocketClientOptions(options);
            setUp.accept(o);
            c = vertx.createWebSocketClient(o);
            tlsClients.put(key, c);
            tlsOrder.add(key);
            return c;
        }
    }

    @Override
    public Future<Void> shutdown(long timeout, TimeUnit unit) {
        List<Future<Void>> all = new ArrayList<>();
        all.add(plain.shutdown(timeout, unit));
        tlsClients.values().forEach(c -> all.add(c.shutdown(timeout, unit)));
        onShutdown.run();
        return Future.join(all).mapEmpty();
    }

    @Override
    public Future<Boolean> updateSSLOptions(ClientSSLOptions sslOptions, boolean force) {
        // the caller's own TLS (wss://); the mesh's TLS follows the clusters' contexts
        return plain.updateSSLOptions(sslOptions, force);
    }

    @Override
    public boolean isMetricsEnabled() {
        return plain.isMetricsEnabled();
    }
}
