package dev.inmesh.runtime.outbound;

import dev.inmesh.api.config.route.ClusterSpecifier;
import dev.inmesh.runtime.net.IpLiterals;
import dev.inmesh.runtime.router.RouteTable;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.upstream.Host;
import dev.inmesh.runtime.upstream.LbContext;
import dev.inmesh.runtime.upstream.UpstreamCluster;
import dev.inmesh.runtime.router.HostNormalizer;
import dev.inmesh.runtime.router.Http1Admission;
import dev.inmesh.runtime.router.UnderscoreHeaders;
import dev.inmesh.runtime.router.PathNormalizer;
import dev.inmesh.runtime.router.RequestBodyStream;
import dev.inmesh.runtime.router.Router;
import dev.inmesh.runtime.router.RouterRequest;
import dev.inmesh.runtime.router.RouterResponse;
import dev.inmesh.runtime.snapshot.MeshSnapshot;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.MultiMap;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.net.SocketAddress;
import java.util.function.Consumer;

/**
 * Sends one outbound request through the mesh: reads the current snapshot once, decides the listener and
 * route table for the destination ({@link OutboundRouting}), and hands the request to the shared {@link Router}.
 */
public final class OutboundDispatcher {
    private final SnapshotHolder snapshots;
    private final OutboundRouting routing;
    private final Router router;
    private final String sourceIp;
    /** {@code sourceIp:0}, the requests' downstream remote address, made once rather than per request. */
    private final String sourceAddress;
    private final java.util.function.Supplier<String> unavailable;

    /**
     * A dispatcher whose clients take requests while {@code unavailable} says null, and fail them with its reason
     * otherwise (a mesh not started yet, or closed).
     */
    public OutboundDispatcher(SnapshotHolder snapshots, OutboundRouting routing, Router router, String sourceIp,
                              java.util.function.Supplier<String> unavailable) {
        this.snapshots = snapshots;
        this.routing = routing;
        this.router = router;
        this.sourceIp = sourceIp;
        this.sourceAddress = sourceIp + ":0";
        this.unavailable = unavailable;
    }

    /**
     * Null when a new request can be routed; else the failure a client's {@code request} or {@code connect} returns:
     * an {@link IllegalStateException} saying why (the mesh has no configuration yet, or is closed). A sidecar
     * that does not listen yet (or any more) refuses the application's connection: a request never goes past it.
     */
    public IllegalStateException unavailable() {
        String why = unavailable.get();
        return why == null ? null : new IllegalStateException(why);
    }

    public Router router() {
        return router;
    }

    /**
     * Where an {@code https://} request's own TLS goes when the mesh does not read it: null when the mesh answers or
     * routes the request itself ({@link #dispatch}); else {@code direct} with the address to open TLS to, null for
     * the one the caller named (no listener under ALLOW_ANY, or a chain to PassthroughCluster), or a host of the
     * cluster a {@code tcp_proxy} chain relays it to, chosen by the cluster's load balancer, as Envoy relays TLS it
     * does not terminate (Istio's chains for a TLS or HTTPS port, matched by the SNI, here the request's host).
     */
    public TlsRoute tlsRoute(String host, int port) {
        String hostOnly = IpLiterals.unbracketed(host);
        OutboundRouting.Decision d = routing.decide(snapshots.current(), hostOnly, port, sourceIp, true);
        if (d.passthrough()) {
            return new TlsRoute(null);
        }
        if (d.tlsRelay() == null) {
            return null;
        }
        UpstreamCluster cluster = d.clusters().cluster(relayCluster(d.tlsRelay()));
        // an ORIGINAL_DST cluster relays to where the caller connects: the named address, a host name as well (the
        // app's own connection would go to what that name resolves to), as the clear HTTP path routes it
        // the tcp_proxy's hash_policy source_ip: the hash of this mesh's source address, as the sidecar's of the
        // application's connection
        boolean hashed = d.tlsRelayHashSourceIp() && sourceIp != null && !sourceIp.isEmpty();
        Host picked = cluster == null ? null : cluster.chooseHost(new LbContext(hashed,
                hashed ? dev.inmesh.runtime.lb.Xxhash.hash64(sourceIp) : 0, null, 1,
                new dev.inmesh.api.config.core.SocketAddress(hostOnly, port)));
        return picked == null ? null : new TlsRoute(SocketAddress.inetSocketAddress(picked.address().port(),
                picked.address().address()));
    }

    /** Where TLS goes: {@code server}, or the address the caller named when null. */
    public record TlsRoute(SocketAddress server) {}

    private static String relayCluster(ClusterSpecifier spec) {
        return spec instanceof ClusterSpecifier.Named n ? n.cluster()
                : RouteTable.pickWeighted((ClusterSpecifier.Weighted) spec,
                        java.util.concurrent.ThreadLocalRandom.current().nextLong()).name();
    }

    /**
     * Routes a request to {@code host:port}; the future fails only for a request relayed as bytes that a sidecar would
     * give no HTTP answer ({@link #relayed}): the other failures are local replies.
     *
     * @param body the whole body, or null (none, or one still arriving)
     * @param stream the body still arriving, sent upstream as it comes, or null
     * @param server the address to connect to when it is not {@code host:port} (a virtual host), else null
     * @param protocol the caller's protocol, {@code HTTP/1.1} or {@code HTTP/2}
     * @param forwarded told the request the router works on, when it has one (for {@link Router#cancel})
     * @param continued told of a {@code 100 Continue} for a request that expects one ({@code Expect: 100-continue}):
     *                  at once, as Envoy's connection manager answers it itself and takes the expectation off the
     *                  request; or, when the connection manager sets {@code proxy_100_continue} or there is none
     *                  (a request relayed as bytes), when the upstream answers it, the expectation sent on
     */
    public Future<RouterResponse> dispatch(HttpMethod method, String host, int port, SocketAddress server, String uri,
                                          MultiMap headers, Buffer body, RequestBodyStream stream, boolean ssl,
                                          String protocol,
                                          Consumer<RouterRequest> forwarded, Handler<Void> continued) {
        Prepared p = prepare(method, host, port, server, uri, headers, body, stream, ssl, protocol);
        RouterRequest req = p.req();
        OutboundRouting.Decision d = p.decision();
        if (RouterRequest.expects100Continue(headers)) {
            // with no connection manager (a tcp_proxy relays the bytes), the expectation goes on as sent and the
            // caller's 100 Continue is the upstream's
            if (d.hcm() == null || d.hcm().proxy100Continue()) {
                req.proxy100Continue(continued);
            } else {
                headers.remove(io.vertx.core.http.HttpHeaders.EXPECT);
                continued.handle(null);
            }
        }
        RouterResponse answered = answeredUnrouted(p);
        if (answered == null && d.hcm() != null && method == HttpMethod.CONNECT) {
            // as Envoy's connection manager: a CONNECT is an upgrade its upgrade_configs do not enable here (istiod's
            // enable websocket only), refused 403 only where a route matched, which no route without a
            // connect_matcher does for a request without a path: the router's 404 NR, as the standalone proxy's
            answered = router.upgradeRefused(req, d.table(), d.clusters(), true);
        }
        String upgrade = Http1Admission.upgradeType(headers);
        if (answered == null && d.hcm() != null && upgrade != null && !upgrade.equalsIgnoreCase("websocket")) {
            // an upgrade no upgrade_configs enable (any but websocket): Envoy's connection manager refuses it rather
            // than forward it as a plain request (conn_manager_impl.cc), as the standalone proxy refuses it: 403
            // upgrade_failed where a route matches, else the router's 404 NR. A websocket one goes on: the router
            // refuses it once its route is known, whose own upgrade_configs entry decides over the connection
            // manager's
            answered = router.upgradeRefused(req, d.table(), d.clusters(), false);
        }
        boolean opaque = d.hcm() == null;
        if (answered != null) {
            return opaque ? relayed(answered) : Future.succeededFuture(answered);
        }
        forwarded.accept(req);
        Future<RouterResponse> routed = router.forward(req, d.table(), d.clusters());
        return opaque ? routed.compose(this::relayed) : routed;
    }

    /**
     * The answer to a request a sidecar would relay as bytes ({@link RouterRequest#opaque}: its chain a
     * {@code tcp_proxy}, no connection manager), as the application behind it meets it. A {@code tcp_proxy} answers no
     * HTTP: with no upstream connection (its connect failed, no host to connect to, Istio's BlackHoleCluster, which has
     * none) it closes the downstream one (Envoy's source/common/tcp_proxy/tcp_proxy.cc, Filter::onInitFailure). So the
     * router's local reply is recorded unsent and fails the request ({@link #unanswered}). An upstream answer goes
     * back as it came.
     */
    private Future<RouterResponse> relayed(RouterResponse r) {
        if (!r.isLocalReply()) {
            return Future.succeededFuture(r);
        }
        return Future.failedFuture(unanswered(r, new io.vertx.core.http.HttpClosedException("Connection was closed")));
    }

    /**
     * Records the local reply {@code r} to a request relayed as bytes unsent ({@link Router#unanswered}: code 0, the
     * cluster, flags and the access log's details kept), as a {@code tcp_proxy} answers no HTTP, and returns what the
     * caller's request fails with: what the connect failed with, as the plain client fails when it cannot connect
     * (the request was never sent: a {@code ConnectException}, an {@code UnknownHostException}, a connect timeout's),
     * else {@code closed}, the plain client's failure for a connection closed under it.
     */
    Throwable unanswered(RouterResponse r, Throwable closed) {
        router.unanswered(r);
        Throwable cause = r.connectCause();
        return cause != null ? cause : closed;
    }

    /**
     * Decides a WebSocket upgrade the mesh's WebSocket client makes to {@code host:port} with {@code headers} (the
     * caller's, without the handshake's own; {@code ssl}: over its own TLS, which no chain relays), as
     * {@link #dispatch} decides a request and then as the router decides a request relayed from its head on
     * ({@link Router#relay}); an upgrade neither its route's nor the connection manager's {@code upgrade_configs}
     * enable is answered as the standalone proxy answers it (403 {@code upgrade_failed} where a route matches, else
     * 404 NR). Never fails: refusals are local replies, a request relayed as bytes ({@link RouterRequest#opaque})
     * answered too, which its caller does not get ({@link #unanswered}).
     */
    public Future<Router.Relay> upgrade(String host, int port, String uri, MultiMap headers, boolean ssl) {
        Prepared p = prepare(HttpMethod.GET, host, port, null, uri, headers, null, null, ssl, "HTTP/1.1");
        RouterResponse answered = answeredUnrouted(p);
        OutboundRouting.Decision d = p.decision();
        if (answered != null) {
            return Future.succeededFuture(Router.Relay.refused(answered));
        }
        return router.relay(p.req(), d.table(), d.clusters(), () -> { });
    }

    /**
     * A request readied for the router: its decision (listener, routes, clusters), what the sidecar's HTTP/1 codec
     * would refuse of it (null: nothing), and what its path normalization refuses (null: nothing).
     */
    private record Prepared(RouterRequest req, OutboundRouting.Decision decision,
                            PathNormalizer.Refusal pathRefusal, Http1Admission.Refusal codecRefusal) {}

    private Prepared prepare(HttpMethod method, String host, int port, SocketAddress server, String uri,
                             MultiMap headers, Buffer body, RequestBodyStream stream, boolean ssl, String protocol) {
        String hostHeader = headers.get(io.vertx.core.http.HttpHeaders.HOST);
        String authority = hostHeader != null ? hostHeader : (port == (ssl ? 443 : 80) ? host : host + ":" + port);
        if (hostHeader != null) {
            headers.remove(io.vertx.core.http.HttpHeaders.HOST);
        }
        if (server != null) {
            // the connection goes to the server, the request names the host: the server's address decides
            host = server.host();
            port = server.port();
        }
        String hostOnly = IpLiterals.unbracketed(host);
        MeshSnapshot snapshot = snapshots.current();
        OutboundRouting.Decision d = routing.decide(snapshot, hostOnly, port, sourceIp, ssl);
        String originalAuthority = authority;
        // the outbound listener's strip_*_host_port and strip_trailing_host_dot; its local port is the destination's
        authority = HostNormalizer.apply(d.hcm(), authority, port, method.name());
        // its headers_with_underscores_action, as the sidecar's codec applies it before anything reads the request
        boolean underscoreRefused = d.hcm() != null
                && UnderscoreHeaders.refuses(d.hcm().headersWithUnderscores(), headers, d.stats(), false);
        // the connection manager's path normalization, before routing, as the sidecar's outbound listener does
        String target = PathNormalizer.ofRequest(uri, d.paths());
        RouterRequest req = new RouterRequest(StreamInfo.Direction.OUTBOUND, method, target == null ? uri : target,
                authority, ssl ? "https" : "http", headers, body, sourceAddress, null,
                new dev.inmesh.api.config.core.SocketAddress(hostOnly, port), protocol)
                .serverHeader(d.serverHeader()).generateRequestId(d.hcm() != null && d.hcm().generateRequestId())
                .opaque(d.hcm() == null)
                .alwaysSetRequestIdInResponse(d.hcm() != null && d.hcm().alwaysSetRequestIdInResponse())
                .websocketUpgrade(d.hcm() != null && d.hcm().websocketUpgrade())
                .internal(d.hcm()).headerCase(d.hcm()).routerFilter(d.hcm() == null ? null : d.hcm().router())
                .streamIdleTimeout(d.hcm() == null ? null : d.hcm().streamIdleTimeout()).faultFilter(d.hcm())
                .maxStreamDuration(d.hcm() == null ? null : d.hcm().lifetimes().maxStreamDuration())
                .corsFilter(d.hcm()).statsFilters(d.hcm()).forwardClientCert(d.hcm()).downstreamStats(d.stats())
                .listenerBufferLimit(d.listenerBufferLimit()).rbac(snapshot.rbac(d.hcm()), null).bodyStream(stream)
                .localRateLimit(snapshot.localRateLimit(d.hcm())).tracer(snapshot.tracer(d.hcm()))
                .statsOverrides(d.hcm() != null ? snapshot.statsOverrides(d.hcm())
                        : snapshot.statsOverrides(d.tcpChain())).statefulSession(d.hcm())
                .accessLogs(snapshot.accessLogs(d.hcm())).lua(snapshot.lua(d.hcm()))
                .bufferAndHeaderMutation(d.hcm(), snapshot.headerMutation(d.hcm())).localReply(snapshot.localReply(d.hcm()));
        PathNormalizer.Refusal pathRefusal = PathNormalizer.refusal(uri, target, d.paths(),
                headers.get(io.vertx.core.http.HttpHeaders.CONTENT_TYPE));
        if (pathRefusal != null && pathRefusal.location() != null) {
            // an escaped slash UNESCAPE_AND_REDIRECT redirects: the router answers it, as it does the proxy's
            req.pathRedirect(pathRefusal);
            pathRefusal = null;
        }
        Http1Admission.Refusal codecRefusal = underscoreRefused ? Http1Admission.Refusal.UNDERSCORE
                : d.hcm() == null ? null : headLimits(uri, originalAuthority, req, d.hcm());
        if (codecRefusal == null && d.hcm() != null) {
            // then, as the sidecar's codec once it read the head: an h2c offer's upgrade and the headers the
            // Connection header nominates taken off, or a nomination that would hide where it came from refused
            codecRefusal = Http1Admission.connectionHeader(method.name(), headers);
        }
        return new Prepared(req, d, pathRefusal, codecRefusal);
    }

    /**
     * What the sidecar's HTTP/1 codec refuses of the head the application sent (the target {@code uri}, the Host
     * {@code authority} and the request's headers) for its connection manager's {@code max_headers_count} and
     * {@code max_request_headers_kb} ({@link Http1Admission#limits}, as {@code mesh.inbound} and the standalone proxy
     * apply them); null when it takes it. The Host line, kept apart from the headers, counts too, as it does for Envoy.
     */
    private static Http1Admission.Refusal headLimits(String uri, String authority, RouterRequest req,
                                                     dev.inmesh.api.config.listener.HttpConnectionManager hcm) {
        long hostLine = "host".length() + authority.length();
        return Http1Admission.limits(uri, req.headers(), req.headBytes(), hcm.maxRequestHeadersCount() - 1,
                hcm.maxRequestHeadersKb() * 1024L - hostLine);
    }

    /**
     * The answer to a readied request that the route table never sees: blackholed, TLS to relay with no host to
     * relay it to, a head the sidecar's codec refuses, a path the normalization refuses; null when it goes to the
     * router.
     */
    private RouterResponse answeredUnrouted(Prepared p) {
        RouterRequest req = p.req();
        OutboundRouting.Decision d = p.decision();
        if (d.blackhole()) {
            // Istio's virtualOutbound sends such a connection to its BlackHoleCluster: the request is counted there
            return router.localReply(req, 502, "", "blackhole", null, OutboundRouting.BLACKHOLE);
        }
        if (d.tlsRelay() != null) {
            // TLS to relay and no host to relay it to (see tlsRoute): Envoy's tcp_proxy closes such a connection
            String name = relayCluster(d.tlsRelay());
            boolean known = d.clusters().cluster(name) != null;
            return router.localReply(req, 503, known ? "no healthy upstream" : "",
                    known ? "no_healthy_upstream" : "cluster_not_found",
                    known ? ResponseFlag.NO_HEALTHY_UPSTREAM : ResponseFlag.NO_CLUSTER_FOUND, name);
        }
        Http1Admission.Refusal refused = p.codecRefusal();
        if (refused != null) {
            // as the sidecar's HTTP/1 codec refuses it, and mesh.inbound: the status text as the body, flag DPE
            refused.count(d.stats());
            return router.localReply(req, refused.status,
                    refused.codecError ? dev.inmesh.runtime.router.ReasonPhrases.of(refused.status) : "",
                    refused.details, refused.codecError ? ResponseFlag.DOWNSTREAM_PROTOCOL_ERROR : null);
        }
        if (p.pathRefusal() != null) {
            p.pathRefusal().count(d.stats());
            return router.localReply(req, 400, "", PathNormalizer.Refusal.DETAILS, null); // a path it refuses
        }
        return null;
    }
}
