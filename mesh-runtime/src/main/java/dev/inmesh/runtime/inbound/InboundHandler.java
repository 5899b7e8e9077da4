package dev.inmesh.runtime.inbound;

import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.api.config.listener.ServerHeader;
import dev.inmesh.api.config.listener.TcpProxy;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.route.FaultInjection;
import dev.inmesh.runtime.listener.ConnectionInfo;
import dev.inmesh.runtime.listener.FilterChainSelector;
import dev.inmesh.runtime.net.IpLiterals;
import dev.inmesh.runtime.router.BufferFilter;
import dev.inmesh.runtime.router.CorsFilter;
import dev.inmesh.runtime.router.ExtAuthzFilter;
import dev.inmesh.runtime.router.HostNormalizer;
import dev.inmesh.runtime.router.UnderscoreHeaders;
import dev.inmesh.runtime.router.RequestBody;
import dev.inmesh.runtime.router.FaultFilter;
import dev.inmesh.runtime.router.ForwardedClientCert;
import dev.inmesh.runtime.router.Grpc;
import dev.inmesh.runtime.stats.DownstreamStats;
import dev.inmesh.runtime.stats.HeadSize;
import dev.inmesh.runtime.stats.NetworkFilterStats;
import dev.inmesh.runtime.stats.NetworkLocalRateLimitStats;
import dev.inmesh.runtime.stats.NetworkRbacStats;
import dev.inmesh.runtime.upstream.UpstreamCluster;
import dev.inmesh.runtime.stats.IstioService;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.TcpConnectionInfo;
import dev.inmesh.runtime.stats.TcpStreamInfo;
import dev.inmesh.runtime.router.ServiceLabels;
import dev.inmesh.runtime.router.HeaderMutationFilter;
import dev.inmesh.runtime.router.HeaderMutator;
import dev.inmesh.runtime.router.Http1Admission;
import dev.inmesh.runtime.router.JwtAuthnFilter;
import dev.inmesh.runtime.router.LocalRateLimitFilter;
import dev.inmesh.runtime.router.LuaFilter;
import dev.inmesh.runtime.router.MultiMapHeaders;
import dev.inmesh.runtime.router.PathNormalizer;
import dev.inmesh.runtime.router.RbacFilter;
import dev.inmesh.runtime.router.RouteResult;
import dev.inmesh.runtime.router.RouteTable;
import dev.inmesh.runtime.router.Router;
import dev.inmesh.runtime.router.RouteRequest;
import dev.inmesh.runtime.snapshot.MeshSnapshot;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.stats.PeerMetadata;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StatsOverrides;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.tls.DownstreamTls;
import dev.inmesh.runtime.tracing.ActiveSpan;
import dev.inmesh.runtime.tracing.TraceReporting;
import dev.inmesh.runtime.tracing.Tracer;
import dev.inmesh.runtime.accesslog.AccessLogEntry;
import dev.inmesh.runtime.accesslog.AccessLogs;
import dev.inmesh.runtime.accesslog.LocalReply;
import dev.inmesh.runtime.accesslog.RequestLog;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.impl.HttpServerConnection;
import java.time.Instant;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * Wraps a service's handler with the inbound side for the server's port, as {@code virtualInbound} does for a sidecar:
 * an {@code x-request-id} when absent, and {@code x-forwarded-proto} when absent; the caller's Envoy control headers
 * removed, and {@code x-forwarded-client-cert} removed or, over TLS the server terminated with a client certificate
 * ({@link InboundTls}), set as the chain's {@code forward_client_cert_details} says; the inbound route table of the
 * {@code virtualInbound} chain for the local port, over TLS the chain for {@code tls} with the client's SNI and ALPN
 * (its RBAC filters' denials, its header rules, its local replies for no route, redirects and direct responses, its
 * fault filter's delays and aborts, its CORS filter's preflight answers and response headers, and its local rate
 * limit filter's refusals, as the router runs them outbound, each such local reply rewritten by the connection
 * manager's {@code local_reply_config} as the router's); then the service itself, in-process, in place of the
 * {@code inbound|PORT||} cluster; and, once the response ends, Istio's metrics with {@code reporter="destination"},
 * the connection manager's Envoy statistics ({@code http.<prefix>.*}: requests only, as there is no downstream connection in-process) and the access log.
 * Without an inbound listener in the configuration, requests go straight to the service and are still recorded. A
 * connection a TCP chain takes is counted and logged as a connection, not its requests ({@link TcpChainConnection}). A
 * connection keeps the chain it took, and drains when a configuration removes it ({@link InboundConnection}). Over
 * TLS with a client certificate, the metrics carry both SPIFFE principals (the certificates' first URI SANs) and, when
 * both certificates have one, {@code connection_security_policy="mutual_tls"}.
 */
public final class InboundHandler implements Handler<HttpServerRequest> {
    private final Handler<HttpServerRequest> service;
    private final SnapshotHolder snapshots;
    private final Consumer<StreamInfo> observer;
    private final String peerMetadata;
    private final String peerMetadataId;
    private final FaultFilter faults = new FaultFilter();
    private final CorsFilter cors = new CorsFilter();
    /** A connection manager's statistics, or null when none are kept. */
    private final Function<HttpConnectionManager, DownstreamStats> stats;
    /** The statistics of the connection manager last seen: a service's port has one, so no lookup per request. */
    private volatile CachedStats lastStats;

    private record CachedStats(HttpConnectionManager hcm, DownstreamStats stats) {}

    private static final System.Logger LOG = System.getLogger(InboundHandler.class.getName());

    /** Where the network filters' statistics are counted; null: nowhere. */
    private volatile NetworkFilterStats networkStats;

    /** Counts the network filters' statistics ({@code <stat_prefix>.rbac.*}, ...) in {@code stats}. */
    public InboundHandler networkStats(NetworkFilterStats stats) {
        this.networkStats = stats;
        return this;
    }

    /** Where the connections of TCP chains are counted (Istio's {@code istio_tcp_*} metrics); null: nowhere. */
    private volatile Function<TcpConnectionInfo, MeshMetrics.TcpConnectionMetrics> tcpMetrics;
    /** Where a TCP chain's connection is logged when its {@code tcp_proxy} names no access log; null: nowhere. */
    private volatile Consumer<TcpStreamInfo> tcpAccessLog;

    /**
     * Counts the connections a TCP chain of {@code virtualInbound} takes in Istio's TCP metrics, through
     * {@code metrics} ({@code MeshMetrics#tcpConnection}), and logs each in {@code accessLog} (null: nowhere) when its
     * {@code tcp_proxy} names no access log of its own, as the standalone proxy counts and logs its relays: not as
     * HTTP requests ({@link TcpChainConnection}).
     */
    public InboundHandler tcpConnections(Function<TcpConnectionInfo, MeshMetrics.TcpConnectionMetrics> metrics,
                                         Consumer<TcpStreamInfo> accessLog) {
        this.tcpMetrics = metrics;
        this.tcpAccessLog = accessLog;
        return this;
    }

    /** Where the spans of requests the inbound connection manager traces go; null: none are traced. */
    private volatile TraceReporting tracing;

    /**
     * Traces the requests whose inbound connection manager says so ({@code tracing}), their spans reported to
     * {@code reporting}, as the router does for the mesh's other requests.
     */
    public InboundHandler tracing(TraceReporting reporting) {
        this.tracing = reporting;
        return this;
    }

    public InboundHandler(Handler<HttpServerRequest> service, SnapshotHolder snapshots, Consumer<StreamInfo> observer) {
        this(service, snapshots, observer, null, null);
    }

    /**
     * @param peerMetadata this workload's {@code x-envoy-peer-metadata}, answered to a caller that sent its own, or
     *                     null for none
     * @param peerMetadataId this workload's {@code x-envoy-peer-metadata-id}, answered to a caller that sent its own,
     *                       or null for none
     */
    public InboundHandler(Handler<HttpServerRequest> service, SnapshotHolder snapshots, Consumer<StreamInfo> observer,
                          String peerMetadata, String peerMetadataId) {
        this.service = service;
        this.snapshots = snapshots;
        this.observer = observer;
        this.peerMetadata = peerMetadata;
        this.peerMetadataId = peerMetadataId;
        this.stats = null;
    }

    /**
     * @param stats the statistics of a connection manager ({@code MeshMetrics#connectionManager}), or null for none
     */
    public InboundHandler(Handler<HttpServerRequest> service, SnapshotHolder snapshots, Consumer<StreamInfo> observer,
                          String peerMetadata, String peerMetadataId,
                          Function<HttpConnectionManager, DownstreamStats> stats) {
        this.service = service;
        this.snapshots = snapshots;
        this.observer = observer;
        this.peerMetadata = peerMetadata;
        this.peerMetadataId = peerMetadataId;
        this.stats = stats;
    }

    /** The statistics of {@code hcm}, looked up only when the connection manager changed; null for none. */
    /**
     * The connection of the last request refused by {@link Http1Admission}, which closes after its answer: a request
     * Vert.x read behind it on that connection is not served. One connection is remembered (the next refusal
     * replaces it), so a refusal on another event loop at the same moment may let such a request through.
     */
    private volatile io.vertx.core.http.HttpConnection lastRefused;

    private DownstreamStats stats(HttpConnectionManager hcm) {
        if (stats == null) {
            return null;
        }
        CachedStats c = lastStats;
        if (c == null || c.hcm != hcm) {
            c = new CachedStats(hcm, stats.apply(hcm));
            lastStats = c;
        }
        return c.stats;
    }

    @Override
    public void handle(HttpServerRequest req) {
        if (lastRefused == req.connection()) {
            // a request pipelined behind a refused one, which Vert.x hands over once the refusal is written: as
            // Envoy's codec after its error, it is not read (the connection is closing)
            return;
        }
        long start = System.nanoTime();
        Instant startTime = Instant.now();
        String localIp = ip(req.localAddress(), req.localAddress());
        int localPort = req.localAddress() == null ? 0 : req.localAddress().port();
        String remoteIp = ip(req.remoteAddress(), req.localAddress());
        int remotePort = req.remoteAddress() == null ? 0 : req.remoteAddress().port();
        boolean pipe = req.localAddress() != null && req.localAddress().isDomainSocket();
        // the chain the connection took and the configuration it is served with: the newest while it keeps the chain
        InboundConnection taken = InboundConnection.of(req.connection());
        MeshSnapshot snapshot = taken == null ? snapshots.current() : taken.follow(snapshots.current());
        FilterChainSelector inbound = snapshot.listener(InboundTls.LISTENER);
        javax.net.ssl.SSLSession session = req.isSSL() ? req.sslSession() : null;
        boolean http2 = req.version() == io.vertx.core.http.HttpVersion.HTTP_2;
        Tls tls = session == null ? null : Tls.of(session, http2);
        FilterChain selected = taken != null ? taken.chain() : inbound == null ? null
                : inboundChain(inbound, tls, req.version(), localIp, localPort, remoteIp, remotePort, pipe);
        if (taken == null && selected == null && inbound != null) {
            // as Envoy's listener: a connection that no chain of virtualInbound takes, nor a default chain, is closed
            // unanswered (a chain for its port that does not match leaves no catch-all chain to fall to)
            LOG.log(System.Logger.Level.DEBUG, () -> "inbound connection from " + req.remoteAddress() + " to "
                    + req.localAddress() + " closed: no filter chain of " + InboundTls.LISTENER + " matches it");
            req.connection().close();
            return;
        }
        if (taken == null && selected != null) {
            taken = InboundConnection.took(req.connection(), selected, snapshot);
            if (http2) {
                RemoteResets.watch(req); // its streams the client resets are logged DR
            }
        }
        // as Envoy prints them: an IPv6 address in brackets
        String local = pipe ? localIp : IpLiterals.hostPort(localIp, localPort);
        String remote = pipe ? remoteIp : IpLiterals.hostPort(remoteIp, remotePort);
        InboundConnection.Admission admission = null;
        if (selected != null && (selected.checksConnections() || !(selected.filter() instanceof HttpConnectionManager))
                && (admission = admitted(req, taken, snapshot, inbound, selected, tls, localIp, localPort, remoteIp,
                        remotePort, local, remote)) == null) {
            return; // refused, its connection closed, or being decided by an external authorizer
        }
        // a connection whose chain a configuration dropped or changed drains, as Envoy's connection manager drains it
        // (conn_manager_impl.cc): an HTTP/1 answer says connection: close and ends it, an HTTP/2 connection is sent
        // GOAWAY, its streams in progress finishing (Vert.x's shutdown)
        boolean draining = taken != null && taken.draining();
        if (draining && http2 && taken.shutDownOnce()) {
            req.connection().shutdown();
        }
        // the chain whose connection manager takes the request; null: a TCP chain's (the service has it as it is)
        FilterChain chain = selected != null && selected.filter() instanceof HttpConnectionManager ? selected : null;
        MultiMap headers = req.headers();
        // the head as it came, before the metadata exchange headers and the untrusted ones are taken off
        long headBytes = HeadSize.request(req.method().name(), req.uri(), authorityText(req), headers);
        String peerHeader = headers.get(PeerMetadata.HEADER);
        boolean peerIdSent = headers.contains(PeerMetadata.ID_HEADER);
        WorkloadInfo peer = PeerMetadata.decode(peerHeader);
        headers.remove(PeerMetadata.HEADER);
        headers.remove(PeerMetadata.ID_HEADER);
        Set<ResponseFlag> flags = EnumSet.noneOf(ResponseFlag.class);
        String[] details = {"via_upstream"};
        String[] routeName = {null};
        // the cluster the inbound route chose, and its service (host, name, namespace) from the cluster's istio
        // metadata, as Istio's inbound clusters carry it; null until a route forwards
        String[] cluster = {null};
        String[] destination = {null, null, null};
        HttpServerResponse resp = req.response();
        // Vert.x ends an HTTP/1.1 connection after a request whose Connection header is exactly close; a close among
        // other tokens (close, keep-alive) ends it too, as Envoy's codec reads the token list
        boolean closeAfter = draining && !http2
                // as Envoy's: not an upgrade's answer, whose payload is no HTTP/1
                && Http1Admission.upgradeType(headers) == null
                || req.version() == io.vertx.core.http.HttpVersion.HTTP_1_1
                && headers instanceof io.netty.handler.codec.http.HttpHeaders tokens // Vert.x's HTTP/1 headers
                && tokens.containsValue(io.vertx.core.http.HttpHeaders.CONNECTION, io.vertx.core.http.HttpHeaders.CLOSE,
                        true) // a token of the list
                && !headers.contains(io.vertx.core.http.HttpHeaders.CONNECTION, io.vertx.core.http.HttpHeaders.CLOSE,
                        true); // not the whole value, which Vert.x reads itself
        if (closeAfter) {
            resp.putHeader(io.vertx.core.http.HttpHeaders.CONNECTION, io.vertx.core.http.HttpHeaders.CLOSE);
        }
        // As Istio's metadata exchange on a sidecar's inbound side: a caller that sent its metadata (and id) gets
        // this workload's in the response, local replies included, for its destination_* labels
        if (peerHeader != null && peerMetadata != null) {
            resp.putHeader(PeerMetadata.HEADER, peerMetadata);
        }
        if (peerIdSent && peerMetadataId != null) {
            resp.putHeader(PeerMetadata.ID_HEADER, peerMetadataId);
        }
        boolean[] recorded = {false};
        // the active faults the request counts among while it is in a fault, else null
        AtomicLong[] activeFault = {null};
        HttpConnectionManager hcm = chain == null ? null : (HttpConnectionManager) chain.filter();
        String sentAuthority;
        String sentPath;
        Http1Admission.Refusal refused = null;
        // the chain's headers_with_underscores_action, as Envoy's codecs apply it while they read the head: a header
        // dropped before anything reads it, or the request refused (HTTP/1: 400 and the connection closed; HTTP/2:
        // the stream reset)
        String codecReset = null;
        DownstreamStats ds = hcm == null ? null : stats(hcm);
        if (hcm != null && UnderscoreHeaders.refuses(hcm.headersWithUnderscores(), headers, ds, http2)) {
            if (http2) {
                codecReset = UnderscoreHeaders.HTTP2_DETAILS;
            } else {
                refused = Http1Admission.Refusal.UNDERSCORE;
            }
        }
        if (http2 && codecReset == null && hcm != null && Http1Admission.limits(req.uri(), headers, headBytes,
                hcm.maxRequestHeadersCount(), hcm.maxRequestHeadersKb() * 1024L) != null) {
            // as Envoy's HTTP/2 codec: a stream over the limits is reset, http2.header_overflow counted
            codecReset = "http2.too_many_headers";
            if (ds != null) {
                ds.codec().headerOverflow();
            }
        }
        if (hcm != null && !http2) {
            // As Envoy's HTTP/1 codec and connection manager with the chain's http_protocol_options: an absolute-form
            // request line is routed by its own host and path; what they refuse (HTTP/1.0 unless accept_http_10, a
            // request without a Host) is answered below, once the request counts in the statistics and the logs
            ServerHead head = new ServerHead(req);
            if (refused == null) {
                // the head's framing and limits first, as Envoy's codec refuses it while reading it
                refused = Http1Admission.limits(req.uri(), headers, headBytes, hcm.maxRequestHeadersCount(),
                        hcm.maxRequestHeadersKb() * 1024L);
            }
            if (refused == null) {
                refused = headers.getAll(io.vertx.core.http.HttpHeaders.HOST).size() > 1
                        ? Http1Admission.Refusal.HOSTS : Http1Admission.admit(head, hcm.http1(),
                                hcm.useRemoteAddress() && hcm.xffNumTrustedHops() == 0);
            }
            sentAuthority = head.host == null ? "" : head.host;
            sentPath = head.uri;
        } else {
            String sent = authorityText(req);
            sentAuthority = sent == null ? "" : sent;
            sentPath = req.uri();
        }
        // the connection manager's strip_*_host_port and strip_trailing_host_dot: routes, filters, logs and the
        // service read the Host they leave
        String authority = HostNormalizer.apply(hcm, sentAuthority, localPort, req.method().name());
        if (refused == null && hcm != null && !hcm.proxy100Continue()
                && req.version() != io.vertx.core.http.HttpVersion.HTTP_1_0
                && dev.inmesh.runtime.router.RouterRequest.expects100Continue(headers)) {
            // As Envoy's connection manager without proxy_100_continue, before its filters: it answers the
            // expectation itself and takes it off the request. With it, the service (this hop's upstream) reads the
            // expectation and answers it: its writeContinue() is the 100 Continue relayed, its 417 the answer.
            headers.remove(io.vertx.core.http.HttpHeaders.EXPECT);
            resp.writeContinue();
        }
        // As Envoy's connection manager, routing, the RBAC filters, the access log and the service read the path its
        // path_normalization made (Istio's normalize_path): a url_path policy on /admin also stops
        // /public/%2e%2e/admin, and the service routes the path the policy checked (Envoy rewrites :path in place).
        // Null: the normalization refuses the path (answered 400 below when the chain routes).
        String normalized = hcm == null ? sentPath : PathNormalizer.ofRequest(sentPath, hcm.pathNormalization());
        String path = normalized == null ? sentPath : normalized;
        DownstreamTls chainTls = tls == null || chain == null || !chain.tls() ? null : inbound.tls(chain);
        // the attribute connection.mtls: a client certificate the chain's validation context verified
        boolean mutualTls = chainTls != null && chainTls.verifiedPeer(tls.session);
        if (ds != null) {
            ds.requestStarted(http2 ? "HTTP/2" : "HTTP/1.1");
        }
        // the request's server span, once it is begun, and the route it took (whose decorator names the span)
        Traced traced = new Traced();
        if (hcm != null) {
            // the connection manager's date, server and via on every answer, the service's and the local replies
            traced.server = hcm.serverHeader();
            traced.lowerCaseNames = !http2 && !hcm.http1().preserveHeaderCase();
            Router.appendVia(headers, traced.server); // before routing, as Envoy's: route matchers see it
        }
        headEnd(resp, traced, null); // with or without a connection manager: the service's head's end handler
        // what Vert.x shows the service: the HTTP/1 Host header the admission may have replaced, else what was read
        String vertxAuthority = hcm == null || http2 ? sentAuthority
                : headers.get(io.vertx.core.http.HttpHeaders.HOST);
        if (!authority.equals(vertxAuthority == null ? "" : vertxAuthority)) {
            // what the service reads, unless a route rewrites it again (HTTP/1.0's default host and an
            // absolute-form target's host too, which Vert.x does not show)
            traced.rewrittenAuthority = authority;
        }
        if (!path.equals(req.uri())) {
            traced.normalizedUri = path; // likewise the path (an absolute-form target's, its path and query)
        }
        // as Envoy's connection manager: the stream's downstream address, and the forwarded headers it writes
        boolean internal;
        int detectionReject = 0;
        if (dev.inmesh.runtime.router.DownstreamAddress.writesNothing(hcm)) {
            // Istio's sidecars: the last x-forwarded-for address, nothing written, nothing more allocated
            traced.remoteAddress = dev.inmesh.runtime.router.RouterRequest.remoteAddress(headers, remote);
            internal = dev.inmesh.runtime.router.RouterRequest.internal(hcm, headers.get("x-forwarded-for"));
        } else {
            var downstream = dev.inmesh.runtime.router.DownstreamAddress.apply(hcm, headers, remote, req.isSSL(),
                    localPort);
            traced.remoteAddress = downstream.remoteAddress();
            internal = downstream.internal();
            detectionReject = downstream.rejectStatus();
        }
        traced.peer = remote;
        traced.headBytes = headBytes;
        traced.hostHeaderFallback = hcm == null || hcm.hostHeaderFallback();
        traced.statsOverrides = snapshot.statsOverrides(hcm);
        traced.accessLogs = snapshot.accessLogs(hcm);
        traced.localReply = snapshot.localReply(hcm);
        RouteTable table = chain == null ? null : snapshot.routeTable(chain);
        traced.headerMutation = snapshot.headerMutation(hcm);
        LocalRateLimitFilter limiter = snapshot.localRateLimit(hcm);
        if (traced.localReply != null || table != null && !table.headerFormats().isEmpty()
                || traced.headerMutation.formatsHeaders() || limiter.formatsHeaders()
                || snapshot.rbac(hcm).formatsHeaders()) {
            // made only for a connection manager with a local_reply_config, or whose routes or filters format a header
            // value: the request so far, as its mappers' filters and its formats, and those values, read it
            traced.localReplyRequest = (code, replyHeaders, text) -> AccessLogEntry.localReply(streamInfo(req, start,
                    startTime, flags, details[0], routeName[0], cluster[0], destination, peer, authority, path, local,
                    remote, tls, mutualTls, traced, code, false), headers, replyHeaders, shownPath(path, traced),
                    scheme(req, traced), text);
        }
        traced.compressor = hcm == null ? null : hcm.compressorFilter();
        traced.compressorName = traced.compressor == null ? null : hcm.compressorFilterName();
        if (traced.compressor != null && ds != null) {
            traced.compressorStats = ds.compressor(traced.compressor.libraryName(),
                    traced.compressor.responseDirection());
        }
        // the response ended; or, for a WebSocket the service accepted, its connection closed (as Envoy reports an
        // upgraded stream)
        Runnable ended = () -> {
            unbound(traced);
            releaseFault(activeFault);
            record(recorded, req, start, startTime, flags, details[0], routeName[0], cluster[0], destination, peer,
                    authority, path, local, remote, false, ds, tls, mutualTls, traced);
        };
        resp.endHandler(v -> {
            ended.run();
            if (closeAfter || traced.closeAfterAnswer) {
                req.connection().close();
            }
            if (traced.service != null) {
                traced.service.onEnd(); // the service's own: Vert.x keeps one end handler, this one
            }
        });
        traced.upgradeEnded = ended;
        traced.tcp = admission == null ? null : admission.tcp();
        if (traced.tcp != null) {
            traced.tcp.requestStarted(); // ended in record(), which the handlers above call once
        }
        resp.closeHandler(v -> {
            if (traced.compressing != null) {
                traced.compressing.abandon(); // a response being gzipped ends here: its deflater is freed now
            }
            if (traced.holding != null) {
                traced.holding.free(); // a body held for a response script goes nowhere now
            }
            if (traced.throttled != null) {
                traced.throttled.cancel(); // as Envoy's rate limiter when its stream goes: its timer stops
            }
            if (resp.ended()) {
                // the stream closed within the end of an HTTP/2 answer ended outside the read of a request read
                // whole: Vert.x runs this before the end handler, which then records it as answered (reading its
                // trailers here would make Vert.x write them on the closed stream, and its end() throw); the
                // service's close handler after that record
                Vertx.currentContext().runOnContext(x -> {
                    ended.run();
                    serviceClosed(traced);
                });
            } else {
                unbound(traced);
                releaseFault(activeFault);
                record(recorded, req, start, startTime, flags, details[0], routeName[0], cluster[0], destination,
                        peer, authority, path, local, remote, true, ds, tls, mutualTls, traced);
                serviceClosed(traced);
            }
        });

        if (codecReset != null) {
            traced.codecReset = codecReset;
            resp.reset(2); // INTERNAL_ERROR, as nghttp2 resets a stream whose header callback failed
            ended.run();
            return;
        }
        // as Envoy's connection manager before its filters: the path it refuses (400) or redirects (307) first, then
        // an original IP detection extension that found no address and refuses the request
        PathNormalizer.Refusal pathRefusal = refused != null || hcm == null ? null : PathNormalizer.refusal(sentPath,
                normalized, hcm.pathNormalization(), headers.get(io.vertx.core.http.HttpHeaders.CONTENT_TYPE));
        if (pathRefusal != null) {
            // an escaped slash (REJECT_REQUEST), or %00, as Envoy's 400; an escaped slash UNESCAPE_AND_REDIRECT
            // redirects to the normalized path, as Envoy's 307
            details[0] = PathNormalizer.Refusal.DETAILS;
            pathRefusal.count(ds);
            if (pathRefusal.location() != null) {
                resp.putHeader(io.vertx.core.http.HttpHeaders.LOCATION, pathRefusal.location());
            }
            localReply(req, traced, pathRefusal.status(), "");
            return;
        }
        if (refused == null && detectionReject != 0) {
            details[0] = dev.inmesh.runtime.router.DownstreamAddress.DETECTION_FAILED;
            if (ds != null) {
                ds.rejectedViaIpDetection();
            }
            localReply(req, traced, detectionReject, "");
            return;
        }
        if (refused != null) {
            details[0] = refused.details;
            refused.count(ds);
            if (refused.codecError) {
                flags.add(ResponseFlag.DOWNSTREAM_PROTOCOL_ERROR); // as Envoy's codec error: the status text as body
            }
            if (!refused.codecError && !http2 && !hasBody(req)) {
                // the connection manager's refusal of a request read whole: the connection stays, as Envoy's
                localReply(req, traced, refused.status, "");
                return;
            }
            // and the connection ends, as Envoy's after its codec's error (or with the body still coming): what the
            // client sent after this request is not read
            resp.putHeader(io.vertx.core.http.HttpHeaders.CONNECTION, io.vertx.core.http.HttpHeaders.CLOSE);
            lastRefused = req.connection();
            localReply(req, traced, refused.status, refused.codecError
                    ? dev.inmesh.runtime.router.ReasonPhrases.of(refused.status) : "");
            req.connection().close();
            return;
        }
        // an absent x-request-id is made unless the chain's connection manager says generate_request_id: false
        if (!headers.contains("x-request-id")
                && (hcm == null || hcm.generateRequestId())) {
            headers.set("x-request-id", dev.inmesh.runtime.router.RequestIds.next());
        }
        // Envoy's connection manager takes the request for internal when its downstream address is one of its
        // internal_address_config (with use_remote_address false, the single address of x-forwarded-for): it then
        // keeps the caller's x-envoy-* control headers
        boolean forceTrace = internal && headers.contains("x-envoy-force-trace");
        // always_set_request_id_in_response (or an internal caller's x-envoy-force-trace): the response carries the
        // request's id, a local reply's from here, the service's written over its own when its headers end, as a
        // sidecar writes it over the application's
        if (hcm != null && (hcm.alwaysSetRequestIdInResponse() || forceTrace) && headers.contains("x-request-id")) {
            traced.requestId = headers.get("x-request-id");
            resp.putHeader("x-request-id", traced.requestId);
        }
        // A sidecar's inbound request is otherwise external to Envoy: its connection manager drops the caller's
        // x-envoy-* control headers (an internal one gets x-envoy-internal: true), and sets x-forwarded-client-cert
        // as its forward_client_cert_details says for the connection's client certificate (Istio's APPEND_FORWARD adds
        // this hop's element over mTLS; without a client certificate the caller's header goes, but under
        // ALWAYS_FORWARD_ONLY) before the application sees them
        if (tls == null || hcm == null) {
            dev.inmesh.runtime.router.Router.removeUntrustedHeaders(headers,
                    hcm == null ? null : hcm.forwardClientCert().mode(), false, null, internal);
        } else {
            dev.inmesh.runtime.router.Router.removeUntrustedHeaders(headers, hcm.forwardClientCert().mode(),
                    tls.peerCertificates() != null, tls.certs.element(hcm.forwardClientCert()), internal);
        }
        // an upgrade: a connection header naming upgrade, and the upgrade asked for (an h2c offer is not one: Envoy's
        // codec takes its headers off and serves the request)
        String upgrade = Http1Admission.upgradeType(headers);
        if (hcm != null && !http2) {
            // the hop-by-hop headers, as Envoy's connection manager takes them off before its filters (the framing's
            // transfer-encoding stays: Vert.x has read the body by it, and the service may too)
            Router.removeHopByHop(headers, upgrade != null);
        }
        // as Envoy's connection manager: a caller's x-forwarded-proto is kept, else it is the connection's scheme
        if (!headers.contains("x-forwarded-proto")) {
            headers.set("x-forwarded-proto", req.isSSL() ? "https" : "http");
        }
        if (hcm != null) {
            // and, as its connection manager before its filters: a Referer it does not take goes, and an HTTP/1
            // request's :scheme is a valid x-forwarded-proto's
            dev.inmesh.runtime.router.Referers.sanitize(headers);
            traced.scheme = Router.requestScheme(scheme(req, null), http2, headers.get("x-forwarded-proto"));
        }
        TraceReporting reporting = tracing;
        Tracer tracer = reporting == null ? null : snapshot.tracer(hcm);
        if (tracer != null) {
            // Envoy's inbound connection manager: the trace decision and the server span, whose trace context the
            // application gets, as the sidecar's router injects it into the request it forwards (an inbound
            // x-envoy-force-trace counts only from an internal caller: any other's is gone)
            traced.span = tracer.start(headers, forceTrace, true, authority, startTime, start,
                    ThreadLocalRandom.current(), ds);
            if (traced.span != null) {
                traced.span.inject(headers, null);
                traced.span.bindToCurrentContext(); // the parent of the mesh client's requests made for this one
            }
        }
        traced.webSocket = "websocket".equalsIgnoreCase(upgrade);
        traced.originalPath = hcm == null || !hcm.router().suppressEnvoyHeaders();
        boolean connect = req.method() == io.vertx.core.http.HttpMethod.CONNECT;
        ServerRequestView view = table == null ? null
                : new ServerRequestView(req, authority, normalized, startTime, traced);
        RouteResult routed = table == null ? null : table.route(view, ThreadLocalRandom.current().nextLong());
        // Envoy's route matchers pass over a request without a path, a CONNECT's (only a connect_matcher takes it)
        RouteResult result = connect && routed != null && !(routed instanceof RouteResult.NoRoute)
                ? new RouteResult.NoRoute(routed.virtualHost()) : routed;
        // the route's own upgrade_configs entry decides over the connection manager's, as Envoy's
        boolean upgradeRefused = hcm != null && (upgrade != null
                && !Router.upgradeEnabled(upgrade, hcm.websocketUpgrade(), result) || connect);
        if (upgradeRefused && result instanceof RouteResult.NoRoute && !http2) {
            // answered 404 NR after the filters, and the connection then closed as after a 403: what the client sent
            // after the head (a CONNECT's tunnel bytes) is not read as another request
            resp.putHeader(io.vertx.core.http.HttpHeaders.CONNECTION, io.vertx.core.http.HttpHeaders.CLOSE);
            lastRefused = req.connection();
            traced.closeAfterAnswer = true;
        }
        if (upgradeRefused && !(result instanceof RouteResult.NoRoute)) {
            // as Envoy's connection manager, before its filters: an upgrade neither the route's nor its own
            // upgrade_configs enable (only websocket can be; a CONNECT is one, never enabled here) is refused where a
            // route matched it
            // (where none did, the router answers 404 NR after the filters); and, as Envoy's, the connection ends
            // after the answer: what the client sent after the head is not read as another request
            details[0] = "upgrade_failed";
            if (!http2) {
                resp.putHeader(io.vertx.core.http.HttpHeaders.CONNECTION, io.vertx.core.http.HttpHeaders.CLOSE);
                lastRefused = req.connection();
            }
            localReply(req, traced, 403, "");
            if (!http2) {
                req.connection().close();
            }
            return;
        }
        if (table == null) {
            HttpServerRequest served = forService(req, rewritten(req, traced.normalizedUri,
                    traced.rewrittenAuthority), null, traced, details, ds);
            service.handle(traced.webSocket ? watchUpgrade(served, traced) : served);
            return;
        }
        traced.route = result;
        List<LuaFilter> lua = snapshot.lua(hcm);
        traced.lua = lua.isEmpty() ? null : new LuaFilter.Stream(lua);
        traced.buffer = BufferFilter.of(hcm);
        traced.table = table;
        traced.session = session;
        traced.mutualTls = mutualTls;
        // what the local rate limit filter decided, once it ran: the x-ratelimit-* headers of the response
        LocalRateLimitFilter.Outcome[] rateLimit = {null};
        traced.view = view; // what the filter's descriptors' actions read (rateLimitSubject)
        if (limiter.first() && rateLimited(req, limiter, table, result, snapshot, flags, details, cluster,
                destination, ds, rateLimit, null, traced)) {
            return; // Istio's INSERT_BEFORE the connection manager: before the RBAC filters
        }
        RbacFilter.Chain rbac = snapshot.rbac(hcm);
        if (!rbac.isEmpty()) {
            // Envoy's JWT authentication, RBAC and external authorization filters, first in Istio's inbound chain: a
            // refused request never reaches the service; one that goes on has its headers as they left them (and
            // its body from its start, when an authorizer read it: with_request_body)
            traced.heldBody = rbac.external() ? new HeldRequestBody(req) : null;
            RbacFilter.Subject subject = new RbacFilter.Subject(traced.heldBody == null ? view
                    : new ServerRequestView(req, authority, normalized, startTime, traced, traced.heldBody),
                    localIp,
                    localPort, remoteIp, req.remoteAddress() == null ? -1 : req.remoteAddress().port(),
                    tls == null ? null : tls.serverName(), () -> RbacFilter.PeerIdentity.of(tls != null,
                            tls == null ? null : tls.peerCertificates()))
                    .withLocal(() -> RbacFilter.PeerIdentity.of(tls != null, tls == null ? null : tls.certs.local));
            if (rbac.hasLateRateLimit()) {
                traced.lateRateLimit = rbac;
                traced.subject = subject;
            }
            if (rbac.external()) {
                // an external authorizer decides: the body waits, as the fault filter's delay holds it
                req.pause();
                rbac.authorize(subject, new MultiMapHeaders(headers), names -> traced.tokenParameters = names, table,
                                result, ds, snapshot.clusterManager())
                        .onComplete(ar -> {
                            RbacFilter.Verdict v = decided(ar, req, result, table, snapshot, flags, details,
                                    cluster, destination, null, traced);
                            if (v == null) {
                                return;
                            }
                            if (!v.responseHeaders().isEmpty()) {
                                // as Envoy's ext_authz encodes them: over the headers the answer has, whoever
                                // answers (a local reply's end handler; the service's, in routed, replaces it)
                                traced.authz = v.responseHeaders();
                                headEnd(resp, traced, end -> encodeFilters(resp, null, rateLimit, traced));
                            }
                            // the path whose query parameters the authorizer changed, as Envoy's filter sets :path
                            traced.authorizedUri = v.path();
                            if (v.path() != null && traced.subject != null) {
                                traced.subject = traced.subject.withPath(v.path()); // for the late rate limit
                            }
                            ServerRequestView authorized = v.path() == null ? view
                                    : new ServerRequestView(req, authority, v.path(), startTime, traced);
                            // clear_route_cache: the headers the authorizer changed may choose another route
                            RouteResult decided = v.reroute() ? table.route(authorized,
                                    ThreadLocalRandom.current().nextLong()) : result;
                            traced.route = decided;
                            req.resume();
                            afterAuthorization(req, decided, table, snapshot, flags, details, routeName, cluster,
                                    destination, ds, limiter, rateLimit, traced, hcm, authorized, activeFault);
                        });
                return;
            }
            RbacFilter.Denial denied = rbac.authorize(subject, new MultiMapHeaders(headers),
                    names -> traced.tokenParameters = names, table, result, ds);
            if (denied != null) {
                refused(req, denied, result, table, snapshot, flags, details, cluster, destination, null, traced);
                return;
            }
        }
        // called directly, not through a lambda: a connection manager without ext_authz allocates nothing more
        afterAuthorization(req, result, table, snapshot, flags, details, routeName, cluster, destination, ds, limiter,
                rateLimit, traced, hcm, view, activeFault);
    }

    /**
     * What filters that waited for a service (an authorizer, the rate limit service) decided, with the request paused
     * meanwhile: null when nothing more is to be done, the caller gone or the request refused (answered, and resumed
     * so that what the caller still sends of the body goes nowhere); else the verdict that lets it go on.
     */
    private RbacFilter.Verdict decided(io.vertx.core.AsyncResult<RbacFilter.Verdict> ar, HttpServerRequest req,
                                       RouteResult result, RouteTable table, MeshSnapshot snapshot,
                                       Set<ResponseFlag> flags, String[] details, String[] cluster,
                                       String[] destination, CorsFilter.Outcome cors, Traced traced) {
        if (req.response().ended() || req.response().closed()) {
            return null;
        }
        if (ar.failed()) {
            // the caller left while an authorizer waited for its body (RequestBody.Gone): nothing was decided
            req.response().reset();
            return null;
        }
        RbacFilter.Verdict v = ar.result();
        if (v.denial() != null) {
            refused(req, v.denial(), result, table, snapshot, flags, details, cluster, destination, cors, traced);
            req.resume();
            return null;
        }
        return v;
    }

    /**
     * The answer to a request a JWT authentication, RBAC or external authorization filter refused, counted for the
     * route's cluster as the fault filter's answers, with its response flag and, where the route forwards, the
     * route's response header rules (Envoy's local reply applies the route entry's); an external service's (an
     * authorizer's, the rate limit service's) with its own headers over those; then the refusing filter's own
     * ({@link RbacFilter.Denial#replyHeaders}), reading the request so far; with the headers of the CORS filter
     * ({@code cors}, null: none) when it ran before the refusing filter, as Envoy's local reply passes that filter's
     * encoding.
     */
    private void refused(HttpServerRequest req, RbacFilter.Denial denied, RouteResult result, RouteTable table,
                         MeshSnapshot snapshot, Set<ResponseFlag> flags, String[] details, String[] cluster,
                         String[] destination, CorsFilter.Outcome cors, Traced traced) {
        HttpServerResponse resp = req.response();
        if (result instanceof RouteResult.Forward f) {
            cluster[0] = f.cluster();
            istioService(snapshot, f.cluster(), destination);
            finalizeResponse(result, table, resp, denied.status(), traced);
        }
        details[0] = denied.details();
        if (denied.wwwAuthenticate() != null) {
            resp.putHeader("www-authenticate", denied.wwwAuthenticate());
        }
        if (denied.flag() != null) {
            flags.add(denied.flag());
        }
        boolean serviceHeaders = denied.external() && !denied.headers().isEmpty() && !Grpc.isRequest(req.headers());
        if (serviceHeaders) {
            // as Envoy's ext_authz: the authorizer's headers over the route's rules
            dev.inmesh.runtime.router.Router.replaceHeaders(resp.headers(), denied.headers());
            resp.headers().remove("content-length");
        }
        if (denied.replyHeaders() != null) {
            denied.replyHeaders().applyOn(resp.headers(), denied.status(),
                    traced == null ? null : traced.localReplyRequest);
        }
        if (serviceHeaders) {
            endReply(req, traced, denied.status(), denied.body(), cors);
        } else {
            localReply(req, traced, denied.status(), denied.body(), cors);
        }
    }

    /** The rest of {@link #handle}, once the authorization filters let the request go on: fault, route, service. */
    private void afterAuthorization(HttpServerRequest req, RouteResult result, RouteTable table,
                                    MeshSnapshot snapshot, Set<ResponseFlag> flags, String[] details,
                                    String[] routeName, String[] cluster, String[] destination, DownstreamStats ds,
                                    LocalRateLimitFilter limiter, LocalRateLimitFilter.Outcome[] rateLimit,
                                    Traced traced, HttpConnectionManager hcm, ServerRequestView view,
                                    AtomicLong[] activeFault) {
        HttpServerResponse resp = req.response();
        // a CORS filter before the fault filter (older Istio releases' order) runs first: its preflight answer comes
        // before any fault, and a fault's abort gets its headers
        boolean corsRuns = hcm.corsFilter();
        boolean corsFirst = corsRuns && result instanceof RouteResult.Forward && hcm.corsBeforeFault();
        CorsFilter.Outcome early = !corsFirst ? null : cors(req,
                named((RouteResult.Forward) result, snapshot, routeName, cluster, destination), details, ds);
        if (early != null && early.preflight()) {
            return;
        }
        boolean corsFilter = corsRuns && !corsFirst;
        Runnable routed = () -> routed(req, result, table, snapshot, flags, details, routeName, cluster, destination,
                corsFilter, early, ds, limiter, rateLimit, traced);
        HttpFilter faultFilter = hcm.faultFilter();
        FaultInjection fault = FaultFilter.settings(faultFilter == null ? null : faultFilter.fault(), result);
        if (fault == null || !faults.matches(fault, result, view)) {
            routed.run();
            return;
        }
        // Envoy's fault filter, after the route is chosen, as the router runs it on the outbound side
        if (result instanceof RouteResult.Forward f) {
            cluster[0] = f.cluster(); // an abort counts for the route's cluster, as Envoy's
            istioService(snapshot, f.cluster(), destination);
        }
        java.util.function.BooleanSupplier abort = () -> {
            FaultInjection.Abort a = FaultFilter.abort(fault, view, ThreadLocalRandom.current().nextLong());
            if (a == null || !activateFault(activeFault, hcm.statPrefix(), ds, fault)) {
                return false;
            }
            flags.add(ResponseFlag.FAULT_INJECTED);
            if (ds != null) {
                ds.abortInjected(FaultFilter.downstreamCluster(fault, view));
            }
            details[0] = FaultFilter.ABORT_DETAILS;
            if (result instanceof RouteResult.Forward) {
                // as Envoy's local reply, the route entry's response header rules: a redirect or direct response
                // route has no route entry
                finalizeResponse(result, table, resp, a.httpStatus(), traced);
            }
            int status = a.httpStatus();
            if (status == 0 && Grpc.isRequest(req.headers())) {
                resp.putHeader("grpc-status", Integer.toString(a.grpcStatus()));
            }
            localReply(req, traced, status == 0 ? 200 : status, FaultFilter.ABORT_BODY, early);
            return true;
        };
        // as Envoy's filter, the response rate limit is set up first, then a delay, then an abort
        long kbps = FaultFilter.responseRateKbps(fault, view, ThreadLocalRandom.current().nextLong());
        if (kbps > 0 && activateFault(activeFault, hcm.statPrefix(), ds, fault)) {
            if (ds != null) {
                ds.responseRateLimitInjected();
            }
            traced.responseRateKbps = kbps;
        }
        long delay = FaultFilter.delayMillis(fault, view, ThreadLocalRandom.current().nextLong());
        if (delay > 0 && activateFault(activeFault, hcm.statPrefix(), ds, fault)) {
            flags.add(ResponseFlag.DELAY_INJECTED);
            if (ds != null) {
                ds.delayInjected(FaultFilter.downstreamCluster(fault, view));
            }
            req.pause(); // as Envoy's fault filter holds the body during the delay
            Vertx.currentContext().owner().setTimer(delay, t -> {
                if (resp.ended() || resp.closed() || abort.getAsBoolean()) {
                    return;
                }
                if (traced.responseRateKbps == 0) {
                    releaseFault(activeFault); // a response rate limit keeps the fault active until the end
                }
                // resumed before the service takes the request: what was held arrives once it has set its handlers
                req.resume();
                routed.run();
            });
            return;
        }
        if (!abort.getAsBoolean()) {
            routed.run();
        }
    }

    private boolean activateFault(AtomicLong[] activeFault, String statPrefix, DownstreamStats ds,
                                  FaultInjection fault) {
        if (activeFault[0] != null) {
            return true;
        }
        AtomicLong active = faults.activeFaults(statPrefix, ds);
        if (!FaultFilter.tryActivate(active, fault, ds)) {
            return false;
        }
        activeFault[0] = active;
        return true;
    }

    private static void releaseFault(AtomicLong[] activeFault) {
        if (activeFault[0] != null) {
            activeFault[0].decrementAndGet();
            activeFault[0] = null;
        }
    }

    /**
     * What the route decided: a local reply, or the service with the route's header rules. {@code corsFilter}: the
     * CORS filter runs here; {@code early}: what it decided before the fault filter, where it ran there (null: not).
     */
    private void routed(HttpServerRequest req, RouteResult result, RouteTable table, MeshSnapshot snapshot,
                        Set<ResponseFlag> flags, String[] details, String[] routeName, String[] cluster,
                        String[] destination, boolean corsFilter, CorsFilter.Outcome early, DownstreamStats ds,
                        LocalRateLimitFilter limiter, LocalRateLimitFilter.Outcome[] rateLimit, Traced traced) {
        HttpServerResponse resp = req.response();
        ActiveSpan span = traced.span;
        MultiMap headers = req.headers();
        // a local rate limit filter after the RBAC, fault and CORS filters (Istio's INSERT_BEFORE the router): after
        // the CORS filter's preflight answer, which only a forwarded request gets
        boolean rateLimitLast = !limiter.isEmpty() && !limiter.first();
        if (rateLimitLast && !(corsFilter && result instanceof RouteResult.Forward) && rateLimited(req, limiter, table,
                result, snapshot, flags, details, cluster, destination, ds, rateLimit, early, traced)) {
            return;
        }
        if (!(result instanceof RouteResult.Forward forward)) {
            // the router's own answer (no route, a redirect, a direct response), after the Lua filters before it, as
            // Envoy's router finds the route when the filters before it let the request through
            dev.inmesh.api.config.route.Route r = RouteResult.routeOf(result);
            routeName[0] = r == null ? null : r.name();
            luaThenServe(req, result, table, early, rateLimit, traced, flags, details, routeName, snapshot, cluster,
                    destination, ds);
            return;
        }
        RouteResult.Forward f = named(forward, snapshot, routeName, cluster, destination);
        CorsFilter.Outcome corsOutcome = !corsFilter ? early : cors(req, f, details, ds);
        if (corsOutcome != null && corsOutcome.preflight()) {
            return;
        }
        if (rateLimitLast && corsFilter && rateLimited(req, limiter, table, result, snapshot, flags, details, cluster,
                destination, ds, rateLimit, corsOutcome, traced)) {
            return;
        }
        if (traced.lateRateLimit != null) {
            // the global rate limit filter where INSERT_BEFORE the router puts it: after the fault and CORS filters;
            // the body waits while the service decides, as behind an external authorizer
            req.pause();
            traced.lateRateLimit.lateRateLimit(traced.subject, new MultiMapHeaders(headers), table, result,
                    snapshot.clusterManager()).onComplete(ar -> {
                        RbacFilter.Verdict v = decided(ar, req, result, table, snapshot, flags, details,
                                cluster, destination, corsOutcome, traced);
                        if (v == null) {
                            return;
                        }
                        traced.authz = ExtAuthzFilter.ResponseHeader.concat(traced.authz, v.responseHeaders());
                        req.resume();
                        luaThenServe(req, result, table, corsOutcome, rateLimit, traced, flags, details,
                                routeName, snapshot, cluster, destination, ds);
                    });
            return;
        }
        luaThenServe(req, result, table, corsOutcome, rateLimit, traced, flags, details, routeName, snapshot,
                cluster, destination, ds);
    }

    /**
     * The answer to a request its route does not forward: no route (404, NR), a redirect or a direct response. False
     * when the route forwards it.
     */
    private static boolean answeredUnforwarded(HttpServerRequest req, RouteResult result, RouteTable table,
                                               Set<ResponseFlag> flags, String[] details, String[] routeName,
                                               DownstreamStats ds, Traced traced) {
        HttpServerResponse resp = req.response();
        if (result instanceof RouteResult.NoRoute) {
            flags.add(ResponseFlag.NO_ROUTE_FOUND);
            if (ds != null) {
                ds.noRoute();
            }
            details[0] = "route_not_found";
            localReply(req, traced, 404, "");
            return true;
        }
        if (result instanceof RouteResult.Redirect r) {
            if (ds != null) {
                ds.redirect();
            }
            routeName[0] = r.route().name();
            details[0] = "direct_response";
            // as Envoy's router: the location, then the route's header rules
            resp.putHeader("location", r.location());
            finalizeResponse(result, table, resp, r.status(), traced);
            localReply(req, traced, r.status(), "");
            return true;
        }
        if (result instanceof RouteResult.DirectResponse d) {
            if (ds != null) {
                ds.directResponse();
            }
            routeName[0] = d.route().name();
            details[0] = "direct_response";
            if (d.location() != null) {
                resp.putHeader("location", d.location());
            }
            finalizeResponse(result, table, resp, d.status(), traced);
            localReply(req, traced, d.status(), d.body());
            return true;
        }
        return false;
    }

    /**
     * The header mutation, buffer and Lua filters, right before the router (as in {@code Router}). The header
     * mutation filter's request mutations apply (after the body is held, when it stands after the buffer filter), its
     * response mutations on whatever answers from here on. The buffer filter holds a request's body whole
     * ({@link HeldRequestBody}) under its {@code max_request_bytes} (over it: 413, as Envoy's connection manager), and
     * sets a {@code content-length} where the request had none. Then Envoy's Lua filters: their request scripts see
     * and change the request's head, one that responds answers it ({@code lua_response}), and changed headers choose
     * the route again where the filter clears the route cache. Then the service takes the request, or the router
     * answers it itself (no route, a redirect, a direct response), its answer through the response scripts. A script
     * that may call {@code body()} has the body held whole first (as Router's: 413 over the buffer filter's limit,
     * else the route's buffer limit, capped at the listener default as this handler reads no listener), and the
     * service gets it as the scripts left it.
     */
    private void luaThenServe(HttpServerRequest req, RouteResult result, RouteTable table,
                              CorsFilter.Outcome corsOutcome, LocalRateLimitFilter.Outcome[] rateLimit,
                              Traced traced, Set<ResponseFlag> flags, String[] details, String[] routeName,
                              MeshSnapshot snapshot, String[] cluster, String[] destination, DownstreamStats ds) {
        LuaFilter.Stream lua = traced.lua;
        HttpServerResponse resp = req.response();
        boolean mutateFirst = !traced.headerMutation.afterBuffer();
        if (mutateFirst) {
            mutateHeaders(req, traced, result, table);
        }
        if (lua != null || !traced.headerMutation.isEmpty() || corsOutcome != null) {
            // the response scripts and mutations of a local reply from here on (serve's handler runs them for the
            // service's answer), then the encoding of the filters before them: the CORS filter's headers on the
            // buffer filter's 413 too, as Envoy's CORS filter encodes whatever a filter after it answers
            headEnd(resp, traced, v -> {
                if (lua != null) {
                    lua.response(responseHead(resp), luaInfo(req, traced, routeName[0]));
                }
                encodeFilters(resp, corsOutcome, rateLimit, traced);
            });
        }
        boolean stream = traced.webSocket || req.method() == io.vertx.core.http.HttpMethod.CONNECT;
        long buffer = stream || !hasBody(req) ? -1 : traced.buffer.limit(result, table);
        boolean unsized = http2Unsized(req);
        boolean luaBody = lua != null && lua.readsBody(result) && !stream;
        if (buffer < 0 && !luaBody) {
            if (!mutateFirst) {
                mutateHeaders(req, traced, result, table);
            }
            luaRequest(req, result, table, corsOutcome, rateLimit, traced, flags, details, routeName, snapshot,
                    cluster, destination, ds, null);
            return;
        }
        // held whole first, as Envoy's filters buffer it, up to the request's buffer limit (over it: 413, as
        // Envoy's connection manager); a caller that leaves meanwhile ends the request as an authorizer's hold does
        HeldRequestBody held = traced.heldBody != null ? traced.heldBody : new HeldRequestBody(req);
        traced.heldBody = held;
        long limit = buffer >= 0 ? buffer
                : Router.requestBufferLimit(result, Listener.DEFAULT_PER_CONNECTION_BUFFER_LIMIT_BYTES);
        held.hold(RequestBody.pastLimit(limit)).onComplete(ar -> {
            if (resp.ended() || resp.closed()) {
                return;
            }
            if (ar.failed()) {
                resp.reset(); // the caller left while its body was held (RequestBody.Gone)
                return;
            }
            if (RequestBody.tooLarge(ar.result(), limit, ds)) {
                details[0] = ExtAuthzFilter.TOO_LARGE_DETAILS;
                localReply(req, traced, 413, ExtAuthzFilter.TOO_LARGE_BODY);
                req.resume(); // what the caller still sends goes nowhere
                return;
            }
            // an HTTP/2 request whose HEADERS ended its stream gets no length, as Envoy's filter does not buffer
            // it; one ended by a DATA frame (even empty) gets the length held, 0 too, as Envoy's
            if (buffer >= 0 && !(unsized && !held.framed())) {
                BufferFilter.contentLength(req.headers(), ar.result());
            }
            if (!mutateFirst) {
                mutateHeaders(req, traced, result, table);
            }
            luaRequest(req, result, table, corsOutcome, rateLimit, traced, flags, details, routeName, snapshot,
                    cluster, destination, ds, luaBody ? LuaFilter.Body.of(ar.result(), held::replace) : null);
        });
    }

    /**
     * The header mutation filter's request mutations, on the request's headers and on the path the service gets (the
     * one the JWT and external authorization filters left; a {@code CONNECT} has no {@code :path} for its query
     * parameter mutations); the route stays the one chosen before, as Envoy's filter leaves the route cache alone.
     */
    private static void mutateHeaders(HttpServerRequest req, Traced traced, RouteResult result, RouteTable table) {
        String path = req.method() == io.vertx.core.http.HttpMethod.CONNECT ? null
                : traced.authorizedUri != null ? traced.authorizedUri
                : JwtAuthnFilter.withoutParameters(traced.target(req), traced.tokenParameters);
        HeaderMutationFilter.Applied applied = traced.headerMutation.request(req.headers(), path, result, table,
                traced.localReplyRequest);
        traced.headerMutations = applied.chosen();
        if (path != null && applied.path() != null && !path.equals(applied.path())) {
            traced.authorizedUri = applied.path();
            traced.queryMutated = true;
        }
    }

    /**
     * Whether a request may have a body to come (Envoy's headers without {@code end_stream}): chunked, a
     * {@code content-length} above 0, or an HTTP/2 stream still open ({@link #http2Unsized}).
     */
    private static boolean hasBody(HttpServerRequest req) {
        String length = req.getHeader("content-length");
        return req.headers().contains("transfer-encoding") || length != null && !length.equals("0")
                || http2Unsized(req);
    }

    /**
     * Whether an HTTP/2 request has no {@code content-length} and has not ended yet: Vert.x hands a request over
     * before it reads the {@code END_STREAM} of its {@code HEADERS} frame, so that a {@code GET} is one of these
     * too, and only its held body tells it from one with a body.
     */
    private static boolean http2Unsized(HttpServerRequest req) {
        return req.version() == io.vertx.core.http.HttpVersion.HTTP_2 && req.getHeader("content-length") == null
                && !req.isEnded();
    }

    /** The Lua filters' request scripts, {@code body} held for them (or null), then the service. */
    private void luaRequest(HttpServerRequest req, RouteResult result, RouteTable table,
                            CorsFilter.Outcome corsOutcome, LocalRateLimitFilter.Outcome[] rateLimit,
                            Traced traced, Set<ResponseFlag> flags, String[] details, String[] routeName,
                            MeshSnapshot snapshot, String[] cluster, String[] destination, DownstreamStats ds,
                            LuaFilter.Body body) {
        LuaFilter.Stream lua = traced.lua;
        if (lua == null) {
            serveRouted(req, result, table, corsOutcome, rateLimit, traced, flags, details, routeName, ds);
            return;
        }
        HttpServerResponse resp = req.response();
        String[] path = {traced.authorizedUri != null ? traced.authorizedUri : traced.target(req)};
        LuaFilter.Reply reply = lua.request(new LuaFilter.Head() {
            @Override
            public MultiMap headers() {
                return req.headers();
            }

            @Override
            public String pseudo(String name) {
                return switch (name) {
                    case ":path" -> path[0];
                    case ":method" -> req.method().name();
                    case ":authority" -> traced.view.authority();
                    case ":scheme" -> scheme(req, traced);
                    default -> null;
                };
            }

            @Override
            public boolean setPseudo(String name, String value) {
                if (!name.equals(":path") || value.isEmpty() || value.charAt(0) != '/') {
                    return false;
                }
                path[0] = value;
                traced.authorizedUri = value;
                return true;
            }
        }, luaInfo(req, traced, routeName[0]), result, body);
        if (reply != null) {
            details[0] = LuaFilter.DETAILS;
            // its own reply does not pass through its response script, only the filters' before it
            headEnd(resp, traced, v -> encodeFilters(resp, corsOutcome, rateLimit, traced));
            resp.headers().addAll(reply.headers());
            endReply(req, traced, reply.status(), reply.body(), null);
            return;
        }
        if (lua.reroute()) {
            ServerRequestView view = traced.view;
            String p = path[0];
            int q = p.indexOf('?');
            RouteResult again = table.route(new ServerRequestView(req, view.authority(), q < 0 ? p : p.substring(0, q),
                    view.startTime(), view.traced()), ThreadLocalRandom.current().nextLong());
            traced.route = again;
            if (again instanceof RouteResult.Forward f) {
                named(f, snapshot, routeName, cluster, destination);
            }
            result = again;
        }
        serveRouted(req, result, table, corsOutcome, rateLimit, traced, flags, details, routeName, ds);
    }

    /** The router's part: its own answer to a request its route does not forward, else the service takes it. */
    private void serveRouted(HttpServerRequest req, RouteResult result, RouteTable table,
                             CorsFilter.Outcome corsOutcome, LocalRateLimitFilter.Outcome[] rateLimit, Traced traced,
                             Set<ResponseFlag> flags, String[] details, String[] routeName, DownstreamStats ds) {
        if (!answeredUnforwarded(req, result, table, flags, details, routeName, ds, traced)) {
            serve(req, (RouteResult.Forward) result, result, table, corsOutcome, rateLimit, traced, details, ds);
        }
    }

    /**
     * The response headers of the CORS, local rate limit and external authorization filters (which stand before the
     * Lua filters), over what the response has, as Envoy's filters encode them.
     */
    private static void encodeFilters(HttpServerResponse resp, CorsFilter.Outcome corsOutcome,
                                      LocalRateLimitFilter.Outcome[] rateLimit, Traced traced) {
        // the header mutation filter's first: it stands right before the Lua filters, after these
        traced.headerMutation.response(resp.headers(), traced.headerMutations, traced.route, traced.table,
                resp.getStatusCode(), traced.localReplyRequest);
        if (corsOutcome != null) {
            corsOutcome.setOn(resp.headers()); // over the service's own, as Envoy's CORS filter sets them
        }
        if (rateLimit[0] != null) {
            rateLimit[0].setOn(resp.headers());
        }
        ExtAuthzFilter.ResponseHeader.applyAll(resp.headers(), traced.authz); // over the service's, as Envoy's
    }

    /** A response's head as a Lua response script sees it. */
    private static LuaFilter.Head responseHead(HttpServerResponse resp) {
        return LuaFilter.responseHead(resp.headers(), resp::getStatusCode);
    }

    /** What a Lua script's {@code streamInfo()} tells of an inbound request. */
    private static LuaFilter.Info luaInfo(HttpServerRequest req, Traced traced, String routeName) {
        String local = req.localAddress() == null ? null : printed(req.localAddress(), req.localAddress());
        String remote = req.remoteAddress() == null ? null : printed(req.remoteAddress(), req.localAddress());
        String sni = traced.session == null ? null : DownstreamTls.requestedServerName(traced.session);
        return new LuaFilter.Info(protocol(req), local, remote, traced.remoteAddress, sni, routeName, local,
                dev.inmesh.runtime.accesslog.TlsDetails.of(traced.session), traced.mutualTls);
    }

    /** Names a forwarded request's route, its cluster and the Istio service of that cluster; returns {@code f}. */
    private static RouteResult.Forward named(RouteResult.Forward f, MeshSnapshot snapshot, String[] routeName,
                                             String[] cluster, String[] destination) {
        routeName[0] = f.route().name();
        cluster[0] = f.cluster();
        istioService(snapshot, f.cluster(), destination);
        return f;
    }

    /**
     * Envoy's CORS filter for a forwarded request: what it decided, or null for nothing; a preflight from an allowed
     * origin it has answered.
     */
    private CorsFilter.Outcome cors(HttpServerRequest req, RouteResult.Forward f, String[] details,
                                    DownstreamStats ds) {
        MultiMap headers = req.headers();
        CorsFilter.Outcome o = cors.apply(f, req.method().name(),
                name -> dev.inmesh.runtime.router.HeaderValues.joined(headers, name),
                () -> ThreadLocalRandom.current().nextLong(), ds);
        if (o != null && o.preflight()) {
            // Envoy's CORS filter answers a preflight from an allowed origin before the router
            details[0] = CorsFilter.PREFLIGHT_DETAILS;
            o.setOn(req.response().headers());
            localReply(req, null, 200, ""); // not a local reply Envoy rewrites: its CORS filter encodes it itself
        }
        return o;
    }

    /**
     * The route's response header rules on the response of {@code status} about to be sent, their values' command
     * operators reading the request so far ({@code traced}'s).
     */
    private static void finalizeResponse(RouteResult result, RouteTable table, HttpServerResponse resp, int status,
                                         Traced traced) {
        HeaderMutator.finalizeResponse(result, table, resp.headers(), status,
                traced == null ? null : traced.localReplyRequest);
    }

    /** The rest of {@link #routed}: the service takes a forwarded request the filters let through. */
    private void serve(HttpServerRequest req, RouteResult.Forward f, RouteResult result, RouteTable table,
                       CorsFilter.Outcome corsOutcome, LocalRateLimitFilter.Outcome[] rateLimit, Traced traced,
                       String[] details, DownstreamStats ds) {
        HttpServerResponse resp = req.response();
        ActiveSpan span = traced.span;
        MultiMap headers = req.headers();
        // the JWT filter's tokens' parameters out, then the authorizer's changes (made to that path), as Envoy's :path
        String uri = traced.authorizedUri != null ? traced.authorizedUri
                : JwtAuthnFilter.withoutParameters(traced.target(req), traced.tokenParameters);
        HeaderMutator.finalizeRequest(f, table, new MultiMapHeaders(headers), new HeaderMutator.PathAndHost() {
            @Override
            public String path() {
                return uri;
            }

            @Override
            public void setPath(String p) {
                // a rewrite keeps the query the header mutation filter made, as Envoy's rewrites the path it left
                traced.rewrittenUri = traced.queryMutated ? HeaderMutationFilter.withQueryOf(p, uri) : p;
            }

            @Override
            public String authority() {
                // the Host the connection manager's normalization left (what append_x_forwarded_host appends)
                return traced.rewrittenAuthority != null ? traced.rewrittenAuthority : authorityText(req);
            }

            @Override
            public void setAuthority(String a) {
                traced.rewrittenAuthority = a;
            }
        }, traced.originalPath, traced.localReplyRequest);
        headEnd(resp, traced, v -> {
            if (!traced.encoded) {
                finalizeResponse(result, table, resp, resp.getStatusCode(), traced);
                if (traced.lua != null) {
                    // right after the router's encoding, as the Lua filters stand right before it
                    traced.lua.response(responseHead(resp), luaInfo(req, traced, f.route().name()));
                }
            }
            if (span != null) {
                span.response(resp.headers(), f.route().decorator()); // the caller learns the server span's name
            }
            encodeFilters(resp, corsOutcome, rateLimit, traced);
            if (traced.requestId != null) {
                resp.headers().set("x-request-id", traced.requestId); // the connection manager's, last
            }
        });
        HttpServerRequest forwarded = rewritten(traced.heldBody != null && traced.heldBody.read()
                ? traced.heldBody.replaying() : req, traced.rewrittenUri != null ? traced.rewrittenUri
                : uri.equals(req.uri()) ? null : uri, traced.rewrittenAuthority);
        forwarded = throttled(forwarded, traced);
        forwarded = compressed(forwarded, traced, f);
        if (traced.lua != null && traced.lua.readsResponseBody() && !traced.webSocket) {
            Runnable tooLarge = () -> {
                details[0] = "response_payload_too_large";
                if (ds != null) {
                    ds.responseTooLarge();
                }
                traced.service.headEnds(); // the service's head was complete: what it wrote went past its body
                resp.headers().clear();
                // the connection manager's own reply, to the caller as it is (not through the filters, the
                // compressor's included): only its x-request-id
                headEnd(resp, traced, v -> {
                    if (traced.requestId != null) {
                        resp.headers().set("x-request-id", traced.requestId);
                    }
                });
                // rewritten by local_reply_config, as Envoy's sendDirectLocalReply and the router's
                localReply(req, traced, 500, "Internal Server Error");
            };
            long limit = Router.requestBufferLimit(f, Listener.DEFAULT_PER_CONNECTION_BUFFER_LIMIT_BYTES);
            forwarded = holding(forwarded, limit, traced, tooLarge, body -> {
                traced.service.headEnds(); // the head the scripts read is the one the service completed
                traced.encoded = true;
                finalizeResponse(result, table, resp, resp.getStatusCode(), traced);
                LuaFilter.Body held = LuaFilter.Body.of(body, b -> { });
                traced.lua.response(responseHead(resp), luaInfo(req, traced, f.route().name()), held);
                int status = resp.getStatusCode();
                boolean bodyAllowed = req.method() != io.vertx.core.http.HttpMethod.HEAD && status >= 200
                        && status != 204 && status != 304;
                return bodyAllowed ? held.held() : null;
            });
        }
        forwarded = forService(req, forwarded, traced.webSocket ? null : f, traced, details, ds);
        service.handle(traced.webSocket ? watchUpgrade(forwarded, traced) : forwarded);
    }

    /**
     * The request as the service gets it: with a response of its own ({@link ServiceResponse}), whose handlers run
     * beside the connection manager's (Vert.x's response keeps one of each kind, and the connection manager's record
     * the request and write its headers), under the stream duration of {@code f}, the route that forwards it (null:
     * none, a WebSocket's or without a route table), where one applies ({@link #bounded}). A request of another kind
     * than Vert.x's own goes as it is.
     *
     * @param forwarded the request as the service would get it
     */
    private static HttpServerRequest forService(HttpServerRequest req, HttpServerRequest forwarded,
                                                RouteResult.Forward f, Traced traced, String[] details,
                                                DownstreamStats ds) {
        ServiceResponse response = f == null ? null : bounded(req, forwarded.response(), f, traced, details, ds);
        traced.service = response != null ? response : new ServiceResponse(forwarded.response());
        return forwarded instanceof io.vertx.core.internal.http.HttpServerRequestInternal internal
                ? withResponse(internal, traced.service) : forwarded;
    }

    /**
     * Arms the stream duration of a request its route forwards to the service, as Envoy's connection manager arms it
     * for a sidecar's inbound request ({@code onStreamMaxDurationReached}): the caller's {@code grpc-timeout} under
     * the route's {@code max_stream_duration.grpc_timeout_header_max} (istiod's inbound routes set it to 0s: the
     * caller's deadline, uncapped), else the route's own {@code max_stream_duration}. When it runs out before the
     * service's answer began, the caller gets {@code downstream duration timeout} (504, or 408 while the request's
     * body is still coming; a gRPC caller a trailers-only {@code grpc-status: 4}, DEADLINE_EXCEEDED) in the service's
     * place; once the answer has begun, its stream is reset. Either way counted in
     * {@code downstream_rq_max_duration_reached}, the access log's details {@code max_duration_timeout}, and what the
     * service still writes fails, as a sidecar's application sees its stream reset ({@link BoundedResponse}).
     *
     * @param response the response as the service would get it
     * @return the service's response bounded by the duration, or null when none applies
     */
    private static BoundedResponse bounded(HttpServerRequest req, HttpServerResponse response,
                                           RouteResult.Forward f, Traced traced, String[] details,
                                           DownstreamStats ds) {
        java.time.Duration d = Router.routeStreamDuration(f.action(), req.headers().get("grpc-timeout"));
        io.vertx.core.Context context = io.vertx.core.Vertx.currentContext();
        if (d == null || context == null) {
            return null;
        }
        if (f.action().maxStreamDuration() && Grpc.isRequest(req.headers())) {
            // as Envoy's connection manager under a route's max_stream_duration: the service (this hop's upstream)
            // learns the deadline the stream has, before the time it used, as the router tells its upstream
            req.headers().set("grpc-timeout", Grpc.timeoutValue(d.toMillis()));
        }
        BoundedResponse bounded = new BoundedResponse(response);
        traced.deadline = context.owner().setTimer(Math.max(1, d.toMillis()), id -> {
            traced.deadline = -1;
            HttpServerResponse resp = req.response();
            if (resp.ended() || resp.closed()) {
                return;
            }
            bounded.cutOff();
            if (ds != null) {
                ds.maxDurationReached();
            }
            details[0] = "max_duration_timeout";
            if (resp.headWritten()) {
                resp.reset(0);
            } else {
                resp.headers().clear(); // what the service had set for its answer: a local reply's own instead
                if (Grpc.isRequest(req.headers())) {
                    resp.headers().set("grpc-status", "4"); // DEADLINE_EXCEEDED, as Envoy's
                }
                localReply(req, traced, req.isEnded() ? 504 : 408, "downstream duration timeout");
            }
            try {
                bounded.serviceGone();
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.WARNING, "the service's close handler failed", e);
            }
        });
        return bounded;
    }

    /** Stops the request's stream duration timer ({@link #bounded}), its response ended or its stream gone. */
    private static void unbound(Traced traced) {
        io.vertx.core.Context context = io.vertx.core.Vertx.currentContext();
        if (traced.deadline >= 0 && context != null) {
            context.owner().cancelTimer(traced.deadline);
            traced.deadline = -1;
        }
    }

    /** The request's stream or connection closed, and was recorded: the service's close handler, when it got it. */
    private static void serviceClosed(Traced traced) {
        if (traced.service != null) {
            traced.service.onClose();
        }
    }

    /**
     * The request as the service gets it when a response script may call {@code body()}: its response holds what the
     * service writes until it ends ({@link HoldingResponse}), up to {@code limit} bytes (the request's buffer limit,
     * as for its body), then {@code ended} encodes it. A longer body is answered by {@code tooLarge} as Envoy's
     * connection manager answers a response over a filter's buffer before its headers went on: a 500 of its own
     * ({@code response_payload_too_large}, {@code rs_too_large}; no route rules, no response script), and what the
     * service still writes fails. The held body is let go when the connection closes.
     */
    private static HttpServerRequest holding(HttpServerRequest req, long limit, Traced traced, Runnable tooLarge,
                                             java.util.function.UnaryOperator<io.vertx.core.buffer.Buffer> ended) {
        if (!(req instanceof io.vertx.core.internal.http.HttpServerRequestInternal internal)) {
            return req;
        }
        HoldingResponse response = new HoldingResponse(req.response(), limit, ended, tooLarge);
        traced.holding = response;
        return withResponse(internal, response);
    }

    /**
     * {@code req} as the service gets it under a filter of the connection manager: with {@code response} for its own.
     */
    private static HttpServerRequest withResponse(io.vertx.core.internal.http.HttpServerRequestInternal req,
                                                  HttpServerResponse response) {
        return new io.vertx.core.internal.http.HttpServerRequestWrapper(req) {
            @Override
            public HttpServerResponse response() {
                return response;
            }
        };
    }

    /**
     * The request as the service gets it under the fault filter's response rate limit ({@code traced}'s; 0: none,
     * and the request as it is): its response sends the body at that rate ({@link ThrottledResponse}).
     */
    private static HttpServerRequest throttled(HttpServerRequest req, Traced traced) {
        if (traced.responseRateKbps == 0 || traced.webSocket
                || !(req instanceof io.vertx.core.internal.http.HttpServerRequestInternal internal)) {
            return req;
        }
        ThrottledResponse response = new ThrottledResponse(req.response(), traced.responseRateKbps,
                Vertx.currentContext());
        traced.throttled = response;
        return withResponse(internal, response);
    }

    /**
     * The request as the service gets it under the connection manager's compressor filter ({@code traced}'s, null for
     * none): its {@code accept-encoding} read (and taken off, when the config says so), and its response one that
     * gzips what the service writes when the filter decides so ({@link CompressingResponse}). An HTTP/1.0 response,
     * which could not go chunked, or a request of another kind than Vert.x's own, goes as it is.
     */
    private static HttpServerRequest compressed(HttpServerRequest req, Traced traced, RouteResult.Forward f) {
        // as Envoy's filter: the route's CompressorPerRoute, else its virtual host's, over the filter's own
        dev.inmesh.api.config.listener.Compressor config = dev.inmesh.runtime.router.CompressorFilter.forRoute(
                traced.compressor, traced.compressorName, f);
        if (config != null && traced.compressorStats != null) {
            traced.compressorStats.requestNotCompressed(); // the request direction's: no request is compressed
        }
        if (config == null || req.version() == io.vertx.core.http.HttpVersion.HTTP_1_0
                || !(req instanceof io.vertx.core.internal.http.HttpServerRequestInternal internal)) {
            return req;
        }
        String acceptEncoding = dev.inmesh.runtime.router.CompressorFilter.acceptEncoding(config, req.headers());
        CompressingResponse response = new CompressingResponse(req.response(), config,
                req.method() == io.vertx.core.http.HttpMethod.HEAD,
                acceptEncoding, req.version() == io.vertx.core.http.HttpVersion.HTTP_1_1, traced.compressorStats,
                () -> traced.service.headEnds());
        traced.compressing = response;
        return withResponse(internal, response);
    }

    /**
     * The request as the service gets it after the route's path and host rewrites, as a sidecar forwards it upstream:
     * the same request, whose URI, path, query, parameters and authority (and {@code Host} header, when it has one)
     * are the rewritten ones. Without a rewrite, or for a request of another kind than Vert.x's own, the request as it
     * came.
     */
    private static HttpServerRequest rewritten(HttpServerRequest req, String uri, String authority) {
        if (uri == null && authority == null
                || !(req instanceof io.vertx.core.internal.http.HttpServerRequestInternal internal)) {
            return req;
        }
        io.vertx.core.net.HostAndPort host = null;
        if (authority != null) {
            host = dev.inmesh.runtime.net.Authorities.parse(authority);
            if (host == null) {
                host = io.vertx.core.net.HostAndPort.create(authority, -1);
            }
            if (req.headers().contains(io.vertx.core.http.HttpHeaders.HOST)) {
                req.headers().set(io.vertx.core.http.HttpHeaders.HOST, authority);
            }
        }
        io.vertx.core.net.HostAndPort newHost = host;
        int q = uri == null ? -1 : uri.indexOf('?');
        return new io.vertx.core.internal.http.HttpServerRequestWrapper(internal) {
            /** The rewritten query's parameters, decoded once as Vert.x's request decodes its own; null until read. */
            private MultiMap params;
            private boolean semicolonIsNormalChar;

            @Override
            public String uri() {
                return uri != null ? uri : delegate.uri();
            }

            @Override
            public String path() {
                return uri == null ? delegate.path() : q < 0 ? uri : uri.substring(0, q);
            }

            @Override
            public String query() {
                return uri == null ? delegate.query() : q < 0 ? null : uri.substring(q + 1);
            }

            @Override
            public MultiMap params(boolean semicolonIsNormalChar) {
                if (uri == null) {
                    return delegate.params(semicolonIsNormalChar);
                }
                if (params == null || semicolonIsNormalChar != this.semicolonIsNormalChar) {
                    params = io.vertx.core.http.impl.HttpUtils.params(uri,
                            java.nio.charset.Charset.forName(getParamsCharset()), semicolonIsNormalChar);
                    this.semicolonIsNormalChar = semicolonIsNormalChar;
                }
                return params;
            }

            @Override
            public io.vertx.core.net.HostAndPort authority() {
                return newHost != null ? newHost : delegate.authority();
            }

            @Override
            public io.vertx.core.net.HostAndPort authority(boolean real) {
                return newHost != null ? newHost : delegate.authority(real);
            }

            @Override
            public String absoluteURI() {
                io.vertx.core.net.HostAndPort a = authority();
                return a == null ? delegate.absoluteURI() : scheme() + "://" + a + uri();
            }
        };
    }

    /**
     * The request's authority as text, null for none: as Vert.x reads it, or, where Vert.x's parser fails on a valid
     * one (a percent-encoding in the host name: {@link dev.inmesh.runtime.net.Authorities}), its {@code Host} as it
     * came, as Envoy takes it.
     */
    private static String authorityText(HttpServerRequest req) {
        io.vertx.core.net.HostAndPort a;
        try {
            a = req.authority();
        } catch (RuntimeException vertxFailed) {
            a = null;
        }
        return a != null ? a.toString() : req.headers().get(io.vertx.core.http.HttpHeaders.HOST);
    }

    /**
     * The request as the service gets it when it asks to be a WebSocket: the same request, whose accepted upgrade
     * ({@code toWebSocket()}) is reported with status 101 when the WebSocket's connection closes (the response of an
     * upgraded request never ends, so it was never reported). A request of another kind than Vert.x's own goes as it
     * is.
     */
    private static HttpServerRequest watchUpgrade(HttpServerRequest req, Traced traced) {
        if (!(req instanceof io.vertx.core.internal.http.HttpServerRequestInternal internal)) {
            return req;
        }
        io.vertx.core.Context context = io.vertx.core.Vertx.currentContext();
        return new io.vertx.core.internal.http.HttpServerRequestWrapper(internal) {
            @Override
            public io.vertx.core.Future<io.vertx.core.http.ServerWebSocket> toWebSocket() {
                return delegate.toWebSocket().andThen(ar -> {
                    if (ar.succeeded() && ar.result() instanceof io.vertx.core.internal.http.WebSocketInternal ws) {
                        traced.upgraded = true;
                        ws.channelHandlerContext().channel().closeFuture().addListener(f -> {
                            if (context != null) {
                                context.runOnContext(v -> traced.upgradeEnded.run());
                            } else {
                                traced.upgradeEnded.run();
                            }
                        });
                    }
                });
            }
        };
    }

    /**
     * Envoy's local rate limit filter, as the router runs it outbound ({@code Router#rateLimited}): a checked request
     * takes a token from its route's bucket (else the filter's own); one refused is answered with the config's
     * status, {@code local_rate_limited}, response flag RL and the route's response header rules (where it forwards),
     * counted for the route's cluster, and never reaches the service; it carries the headers of a CORS filter that
     * ran before ({@code cors}, null: none), as Envoy's local reply passes that filter's encoding. True when it
     * answered.
     */
    private static boolean rateLimited(HttpServerRequest req, LocalRateLimitFilter limiter, RouteTable table,
                                       RouteResult result, MeshSnapshot snapshot, Set<ResponseFlag> flags,
                                       String[] details, String[] cluster, String[] destination, DownstreamStats ds,
                                       LocalRateLimitFilter.Outcome[] rateLimit, CorsFilter.Outcome cors,
                                       Traced traced) {
        LocalRateLimitFilter.Outcome o = limiter.check(InboundHandler::rateLimitSubject, traced, table, result, ds,
                new MultiMapHeaders(req.headers()), traced.localReplyRequest);
        if (o == null) {
            return false;
        }
        rateLimit[0] = o;
        HttpServerResponse resp = req.response();
        headEnd(resp, traced, v -> {
            // a local reply's (the service's handler adds them too), then, as Envoy's filters encode in reverse, the
            // allowed external authorization's response_headers_to_add, which this handler replaced
            o.setOn(resp.headers());
            ExtAuthzFilter.ResponseHeader.applyAll(resp.headers(), traced.authz);
        });
        if (!o.refused()) {
            return false;
        }
        if (result instanceof RouteResult.Forward f) {
            cluster[0] = f.cluster(); // counted for the route's cluster, as the fault filter's answers
            istioService(snapshot, f.cluster(), destination);
        }
        flags.add(ResponseFlag.RATE_LIMITED);
        details[0] = LocalRateLimitFilter.DETAILS;
        if (result instanceof RouteResult.Forward) {
            // as Envoy's local reply: the route entry's response header rules, then the filter's own
            finalizeResponse(result, table, resp, o.status(), traced);
        }
        o.applyRefusalHeaders(resp.headers(), Grpc.isRequest(req.headers()), traced.localReplyRequest);
        localReply(req, traced, o.status(), LocalRateLimitFilter.BODY, cors);
        return true;
    }

    /** {@link #localReply(HttpServerRequest, Traced, int, String, CorsFilter.Outcome)} before no CORS filter. */
    private static void localReply(HttpServerRequest req, Traced traced, int status, String body) {
        localReply(req, traced, status, body, null);
    }

    /**
     * Ends a local reply, rewritten first by the connection manager's {@code local_reply_config} ({@link #rewritten};
     * {@code traced} null: a reply Envoy does not rewrite); for a gRPC request, as Envoy, then a trailers-only gRPC
     * response (200 and a grpc-status); then with the headers of the CORS filter ({@code cors}, null: none) that ran
     * before the replying filter: Envoy's filter manager rewrites a local reply before it passes the encoder filters,
     * that filter's among them.
     */
    private static void localReply(HttpServerRequest req, Traced traced, int status, String body,
                                   CorsFilter.Outcome cors) {
        HttpServerResponse resp = req.response();
        boolean grpc = Grpc.isRequest(req.headers());
        LocalReply.Rewritten r = rewritten(req, traced, status, body, grpc);
        if (r != null) {
            status = r.status();
            body = r.body();
        } else if (!grpc) {
            LocalReply.contentType(resp.headers(), body.isEmpty());
        }
        if (grpc) {
            Grpc.toTrailersOnly(resp.headers(), status, body, req.method() == io.vertx.core.http.HttpMethod.HEAD);
        }
        if (cors != null) {
            cors.setOn(resp.headers());
        }
        if (grpc) {
            // trailers-only: its head ends the stream, without the content-length: 0 Vert.x's HTTP/2 response gives an
            // end() without a body (headEnd takes it off); Envoy's HTTP/1 codec writes that 0 too, as Vert.x's does
            if (traced != null) {
                traced.trailersOnly = req.version() == io.vertx.core.http.HttpVersion.HTTP_2;
            }
            resp.setStatusCode(200).end();
        } else {
            endLocal(req, status, body);
        }
    }

    /**
     * Ends a local reply of {@code status} and {@code body}. To a HEAD request, as Envoy answers one itself
     * (encodeLocalReply, source/common/http/utility.cc), its headers alone, with the content-length of the body it
     * would have sent (Vert.x writes no body to a HEAD, and no content-length of its own).
     */
    private static void endLocal(HttpServerRequest req, int status, String body) {
        HttpServerResponse resp = req.response().setStatusCode(status);
        if (req.method() == io.vertx.core.http.HttpMethod.HEAD && !body.isEmpty()
                && !resp.headers().contains(io.vertx.core.http.HttpHeaders.CONTENT_LENGTH)) {
            resp.putHeader(io.vertx.core.http.HttpHeaders.CONTENT_LENGTH,
                    Integer.toString(body.getBytes(java.nio.charset.StandardCharsets.UTF_8).length));
        }
        resp.end(body);
    }

    /**
     * Ends a local reply whose headers the replying filter set itself (an authorizer's, a Lua {@code respond()}'s),
     * rewritten first ({@link #rewritten}); not made a trailers-only gRPC answer. The headers of a CORS filter before
     * the replying one ({@code cors}, null: none) come after the rewrite, as in {@link #localReply}.
     */
    private static void endReply(HttpServerRequest req, Traced traced, int status, String body,
                                 CorsFilter.Outcome cors) {
        LocalReply.Rewritten r = rewritten(req, traced, status, body, false);
        if (r == null) {
            LocalReply.contentType(req.response().headers(), body.isEmpty());
        }
        if (cors != null) {
            cors.setOn(req.response().headers());
        }
        endLocal(req, r == null ? status : r.status(), r == null ? body : r.body());
    }

    /**
     * A local reply of {@code status} and {@code body} as the connection manager's {@code local_reply_config}
     * ({@code traced}'s) rewrites it, as the router's ({@link LocalReply#rewriteReply}): after the headers the
     * response has so far (the route's rules, the replying filter's own), before the encoding filters (set to run at
     * the head's end) and a gRPC caller's trailers-only answer ({@code trailersOnly}). Null when there is none: the
     * reply goes as it is. The response's status is the one sent, so the access log and Istio's metrics see the
     * rewritten code, as Envoy's stream info has it.
     */
    private static LocalReply.Rewritten rewritten(HttpServerRequest req, Traced traced, int status, String body,
                                                  boolean trailersOnly) {
        if (traced == null || traced.localReply == null) {
            return null;
        }
        return traced.localReply.rewriteReply(status, body, req.response().headers(), trailersOnly,
                traced.localReplyRequest);
    }

    /**
     * The {@code virtualInbound} HTTP filter chain for the connection, or null: plaintext with what Envoy's HTTP
     * inspector reports for the request's version ({@code h2c} for HTTP/2, {@code http/1.0} for HTTP/1.0, else
     * {@code http/1.1}), or TLS with the client's SNI and the ALPN the server knows it offered
     * ({@link InboundTls#alpn}).
     */
    private static FilterChain inboundChain(FilterChainSelector inbound, Tls tls,
                                            io.vertx.core.http.HttpVersion version, String localIp, int localPort,
                                            String remoteIp, int remotePort, boolean pipe) {
        if (inbound == null) {
            return null;
        }
        // as Envoy's SAME_IP_OR_LOOPBACK source type: a Unix socket's peer is local
        boolean local = pipe || ConnectionInfo.sameIpOrLoopback(remoteIp, localIp);
        String inspected = switch (version) {
            case HTTP_2 -> "h2c";
            case HTTP_1_0 -> "http/1.0";
            default -> "http/1.1";
        };
        ConnectionInfo c = tls == null ? new ConnectionInfo(localIp, localPort, "", "raw_buffer", List.of(inspected),
                remoteIp, remotePort, local) : new ConnectionInfo(localIp, localPort, tls.serverName, "tls", tls.alpn,
                remoteIp, remotePort, local);
        return inbound.select(c);
    }

    /**
     * Whether the connection of a request may go on through {@code chain}: its network filters (RBAC, external
     * authorization, local rate limit) run once per connection, as Envoy runs them when the connection takes the
     * chain, before anything reads its bytes; a TCP chain's {@code tcp_proxy} needs its cluster to exist and, unless
     * it is an ORIGINAL_DST cluster (Istio's {@code inbound|PORT||} and {@code InboundPassthroughCluster*}), to have a
     * host (Istio's {@code BlackHoleCluster} has none), as Envoy's tcp_proxy closes the connection for want of either
     * (the service then stands in for the cluster's host, as it does for an HTTP route's). A refused connection is
     * closed without an answer, as Envoy closes it. The decision is the connection's for its lifetime, as Envoy's
     * connection keeps the chain it was accepted with: a later configuration does not run the filters again (nor
     * take another token). With an external authorizer the request waits (paused), as do the connection's other
     * requests (HTTP/2 streams) meanwhile, and is handled again once it has decided.
     *
     * @return the connection's admission when the request goes on now, else null
     */
    private InboundConnection.Admission admitted(HttpServerRequest req, InboundConnection taken,
                                                 MeshSnapshot snapshot, FilterChainSelector inbound,
                                                 FilterChain chain, Tls tls, String localIp, int localPort,
                                                 String remoteIp, int remotePort, String local, String remote) {
        io.vertx.core.http.HttpConnection connection = req.connection();
        Future<InboundConnection.Admission> known = taken == null ? null : taken.admission();
        if (known == null) {
            known = admission(connection, taken != null, snapshot, inbound, chain, tls, localIp, localPort, remoteIp,
                    remotePort, local, remote);
            if (taken != null) {
                taken.admission(known);
            }
        }
        if (known.isComplete()) {
            return known.result().admitted() ? known.result() : null;
        }
        req.pause();
        known.onComplete(ar -> {
            if (ar.result().admitted() && !req.response().closed()) {
                req.resume();
                handle(req);
            }
        });
        return null;
    }

    /**
     * Runs the network filters of {@code chain} for the connection, then {@link #decide}s: the decision, completed
     * unless an external authorizer is asked (never failed).
     *
     * @param kept whether the decision is kept with the connection (else a TCP chain's connection is not counted, its
     *     close not known)
     * @param local the address it arrived at, as the access log prints it
     * @param remote its peer's
     */
    private Future<InboundConnection.Admission> admission(io.vertx.core.http.HttpConnection connection, boolean kept,
                                                          MeshSnapshot snapshot, FilterChainSelector inbound,
                                                          FilterChain chain, Tls tls, String localIp, int localPort,
                                                          String remoteIp, int remotePort, String local,
                                                          String remote) {
        RbacFilter.Network filters = snapshot.networkRbac(chain);
        RbacFilter.Subject subject = RbacFilter.Subject.connection(localIp, localPort, remoteIp, remotePort,
                        tls == null ? null : tls.serverName(),
                        () -> RbacFilter.PeerIdentity.of(tls != null, tls == null ? null : tls.peerCertificates()))
                .withLocal(() -> RbacFilter.PeerIdentity.of(tls != null, tls == null ? null : tls.certs.local));
        NetworkFilterStats counted = networkStats;
        Function<String, NetworkRbacStats> rbacStats = counted == null ? p -> null : counted::networkRbac;
        Function<String, NetworkLocalRateLimitStats> limitStats = counted == null ? p -> null
                : counted::networkLocalRateLimit;
        // a TCP chain's cluster, picked once, and its connection, as Istio's stats filter (after the network
        // filters) counts it
        String cluster = chain.filter() instanceof TcpProxy proxy
                ? RouteTable.pickCluster(proxy.cluster(), ThreadLocalRandom.current().nextLong()) : null;
        TcpChainConnection tcp = !kept || !(chain.filter() instanceof TcpProxy proxy) ? null
                : tcpConnection(snapshot, inbound, chain, proxy, cluster, tls, local, remote);
        if (filters.external()) {
            // what the authorizer decided (its failures are ext_authz_error), an unexpected failure a denial
            return filters.authorize(subject, rbacStats, limitStats, snapshot.clusterManager())
                    .map(denied -> decide(connection, snapshot, chain, cluster, tcp, denied))
                    .otherwise(e -> decide(connection, snapshot, chain, cluster, tcp, "ext_authz_error"));
        }
        return Future.succeededFuture(decide(connection, snapshot, chain, cluster, tcp,
                filters.isEmpty() ? null : filters.check(subject, rbacStats, limitStats)));
    }

    /**
     * The connection a TCP chain's {@code proxy} takes, labelled in Istio's TCP metrics as the standalone proxy labels
     * an inbound relay ({@link ServiceLabels#ofInboundConnection}), its principals those of the TLS the server
     * terminated (the server's own only for a client that presented a certificate, as Istio's mTLS).
     */
    private TcpChainConnection tcpConnection(MeshSnapshot snapshot, FilterChainSelector inbound, FilterChain chain,
                                             TcpProxy proxy, String name, Tls tls, String local, String remote) {
        UpstreamCluster cluster = name == null ? null : snapshot.clusterManager().cluster(name);
        String known = cluster == null ? null : name;
        ServiceLabels dest = ServiceLabels.ofInboundConnection(known == null ? "" : known, cluster);
        DownstreamTls chainTls = tls == null || !chain.tls() ? null : inbound.tls(chain);
        boolean mutualTls = chainTls != null && chainTls.verifiedPeer(tls.session());
        String peerPrincipal = tls == null ? null : tls.certs.peerPrincipal;
        String localPrincipal = tls == null ? null : tls.certs.localPrincipal;
        var metrics = tcpMetrics;
        return new TcpChainConnection(metrics == null ? null : values -> metrics.apply(new TcpConnectionInfo(
                StreamInfo.Direction.INBOUND, null, dest.host(), dest.name(), dest.namespace(), mutualTls,
                peerPrincipal, tls == null || tls.peerCertificates() == null ? null : localPrincipal)
                .withStatsOverrides(snapshot.statsOverrides(chain), values)), snapshot.accessLogs(proxy), tcpAccessLog,
                known, known == null ? null : snapshot.clusterManager().observabilityName(known), local, remote,
                tls == null || tls.serverName().isEmpty() ? null : tls.serverName(), peerPrincipal, localPrincipal);
    }

    /**
     * The connection's admission through {@code chain}, given the network filters' {@code denied} details (null
     * when they let it), and then a TCP chain's {@code cluster}; closes it when not admitted. A TCP chain's connection
     * ({@code tcp}, null for another chain) is counted opened, or refused with Envoy's flags: URX for the local rate
     * limit filter, NC without the cluster, UH without a host.
     */
    private static InboundConnection.Admission decide(io.vertx.core.http.HttpConnection connection,
                                                      MeshSnapshot snapshot, FilterChain chain, String name,
                                                      TcpChainConnection tcp, String denied) {
        ResponseFlag flag = RbacFilter.Network.RATE_LIMITED.equals(denied)
                ? ResponseFlag.UPSTREAM_RETRY_LIMIT_EXCEEDED : null;
        String details = denied;
        if (denied == null && chain.filter() instanceof TcpProxy) {
            UpstreamCluster cluster = name == null ? null : snapshot.clusterManager().cluster(name);
            if (cluster == null) {
                denied = "tcp_proxy: no cluster " + name;
                flag = ResponseFlag.NO_CLUSTER_FOUND;
            } else if (cluster.config().type() != DiscoveryType.ORIGINAL_DST && cluster.hosts().isEmpty()) {
                denied = "tcp_proxy: no healthy upstream in " + name;
                flag = ResponseFlag.NO_HEALTHY_UPSTREAM;
            }
        }
        if (denied == null) {
            if (tcp != null) {
                tcp.opened();
                // kept with the connection: Vert.x's server connection, whose channel says when it closes
                ((HttpServerConnection) connection).channelHandlerContext().channel().closeFuture()
                        .addListener(f -> tcp.closed());
            }
            return new InboundConnection.Admission(true, tcp);
        }
        if (tcp != null) {
            tcp.refused(flag, details);
        }
        String why = denied;
        LOG.log(System.Logger.Level.DEBUG, () -> "inbound connection from " + connection.remoteAddress()
                + " closed by filter chain " + chain.name() + ": " + why);
        connection.close();
        return new InboundConnection.Admission(false, null);
    }

    /**
     * The TLS the application's server terminated for a request's connection: its session, the client's SNI (or
     * empty) and ALPN, and what its certificates say.
     */
    private record Tls(javax.net.ssl.SSLSession session, String serverName, List<String> alpn, SessionCerts certs) {
        static Tls of(javax.net.ssl.SSLSession session, boolean http2) {
            String sni = DownstreamTls.requestedServerName(session);
            return new Tls(session, sni == null ? "" : sni, InboundTls.alpn(session, http2), SessionCerts.of(session));
        }

        /** The client's certificates, its own first; null when it presented none. */
        java.security.cert.Certificate[] peerCertificates() {
            return certs.peer;
        }
    }

    /**
     * What a TLS session's certificates say, worked out once per session rather than per request (as the standalone
     * proxy does per connection): both sides' certificates, their principals and the last
     * {@code x-forwarded-client-cert} element made (a SHA-256 of the client's certificate, its subject and SANs).
     * Kept in the session itself, so it goes with the session.
     */
    private static final class SessionCerts {
        private static final String KEY = "dev.inmesh.inbound.certs";
        /** The client's certificates, its own first; null when it presented none. */
        final java.security.cert.Certificate[] peer;
        final java.security.cert.Certificate[] local;
        /** The first URI SAN of the client's certificate, or null. */
        final String peerPrincipal;
        /** The first URI SAN of this side's certificate, or null. */
        final String localPrincipal;
        /** The element last made and the setting it was made for. */
        private volatile Element last;

        private record Element(dev.inmesh.api.config.listener.ForwardClientCert setting, String value) {}

        private SessionCerts(java.security.cert.Certificate[] peer, java.security.cert.Certificate[] local) {
            this.peer = peer;
            this.local = local;
            this.peerPrincipal = ForwardedClientCert.principal(peer);
            this.localPrincipal = ForwardedClientCert.principal(local);
        }

        static SessionCerts of(javax.net.ssl.SSLSession session) {
            if (session.getValue(KEY) instanceof SessionCerts known) {
                return known;
            }
            java.security.cert.Certificate[] peer;
            try {
                peer = session.getPeerCertificates();
            } catch (javax.net.ssl.SSLPeerUnverifiedException e) {
                peer = null; // the client presented none
            }
            SessionCerts made = new SessionCerts(peer == null || peer.length == 0 ? null : peer,
                    session.getLocalCertificates());
            session.putValue(KEY, made);
            return made;
        }

        /** This hop's {@code x-forwarded-client-cert} element under {@code setting} ({@link ForwardedClientCert}). */
        String element(dev.inmesh.api.config.listener.ForwardClientCert setting) {
            Element e = last;
            if (e == null || !e.setting.equals(setting)) {
                e = new Element(setting, ForwardedClientCert.element(setting, peer, local));
                last = e;
            }
            return e.value;
        }
    }

    private void record(boolean[] recorded, HttpServerRequest req, long start, Instant startTime, Set<ResponseFlag> flags,
                        String details, String routeName, String cluster, String[] destination, WorkloadInfo peer,
                        String authority, String path,
                        String local, String remote, boolean closed, DownstreamStats ds, Tls tls, boolean mutualTls,
                        Traced traced) {
        HttpServerResponse resp = req.response();
        // taken at the first call, which for a reset stream is the end handler's (see below)
        String remoteReset = req.version() == io.vertx.core.http.HttpVersion.HTTP_2 ? RemoteResets.take(req) : null;
        if (recorded[0]) {
            return;
        }
        recorded[0] = true;
        if (traced.tcp != null) {
            // a TCP chain's request, which Envoy sees as bytes of its connection, not as an HTTP stream: no request
            // metrics, statistics, span or log line, its bytes counted in its connection's
            traced.tcp.requestEnded(traced.headBytes + req.bytesRead(), resp.bytesWritten() + (resp.headWritten()
                    ? HeadSize.response(resp.getStatusCode(), resp.headers(), resp.trailers()) : 0));
            return;
        }
        if (traced.upgraded) {
            closed = false; // a WebSocket ends with its connection: its 101 is the answer
        } else if (!resp.ended()) {
            // the caller went away first: Vert.x disposes of the response through its end handler, before its close
            // handler
            closed = true;
        }
        if (traced.codecReset != null) {
            // a stream the codec reset: no answer, flag DPE and the codec's details, the reset this side's
            closed = false;
            flags.add(ResponseFlag.DOWNSTREAM_PROTOCOL_ERROR);
            details = traced.codecReset;
        } else if (closed && remoteReset != null) {
            // the client reset its stream: as Envoy's connection manager (ActiveStream::onResetStream), DR and the
            // codec's details
            flags.add(ResponseFlag.DOWNSTREAM_REMOTE_RESET);
            details = remoteReset;
        } else if (closed) {
            flags.add(ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION);
            if (!resp.headWritten()) {
                details = "downstream_remote_disconnect"; // as the router's answer to a caller gone before it
            }
        }
        MultiMap h = req.headers();
        // as Envoy's stream info: the code of the head sent, whether or not its body ended; 0 when none was sent
        int status = traced.upgraded ? 101 : traced.codecReset != null || closed && !resp.headWritten() ? 0
                : resp.getStatusCode();
        if (ds != null) {
            // a connection that closed before the response ended is the caller's reset
            ds.requestEnded(status, traced.codecReset == null && (!closed || resp.ended()),
                    traced.codecReset != null ? 2 : closed && !resp.ended() ? 1 : 0,
                    (System.nanoTime() - start) / 1_000_000);
        }
        StreamInfo info = streamInfo(req, start, startTime, flags, details, routeName, cluster, destination, peer,
                authority, path, local, remote, tls, mutualTls, traced, status, true);
        if (traced.span != null) {
            try {
                traced.span.tracer().finish(traced.span, info, h, RouteResult.decorator(traced.route), tracing);
            } catch (RuntimeException e) {
                // tracing never breaks a request either
            }
        }
        try {
            observer.accept(info);
        } catch (RuntimeException e) {
            // metrics and logs never break a request
        }
    }

    /** The request's scheme: as its connection manager set it ({@code traced}'s), else the connection's. */
    private static String scheme(HttpServerRequest req, Traced traced) {
        if (traced != null && traced.scheme != null) {
            return traced.scheme;
        }
        return req.scheme() == null ? "http" : req.scheme();
    }

    /**
     * The body bytes the response sent: none to a HEAD request, whatever the service gave Vert.x's {@code end} (which
     * counts it and does not write it), as Envoy's access log counts the bytes it sent.
     */
    private static long bytesSent(HttpServerRequest req) {
        return req.method() == io.vertx.core.http.HttpMethod.HEAD ? 0 : req.response().bytesWritten();
    }

    /**
     * The request's {@link StreamInfo} with {@code status}: once its response {@code ended} (or the caller went),
     * with what was sent; else of a local reply about to be sent (nothing written yet, no trailers), as the
     * connection manager's {@code local_reply_config} reads it.
     */
    private StreamInfo streamInfo(HttpServerRequest req, long start, Instant startTime, Set<ResponseFlag> flags,
                                  String details, String routeName, String cluster, String[] destination,
                                  WorkloadInfo peer, String authority, String path, String local, String remote,
                                  Tls tls, boolean mutualTls, Traced traced, int status, boolean ended) {
        HttpServerResponse resp = req.response();
        MultiMap h = req.headers();
        MultiMap trailers = ended ? resp.trailers() : null;
        // as Envoy's stream info: the route's cluster (a filter's local reply on a routed request keeps it), else,
        // for the service reached without a route table, Istio's inbound cluster of the port; the upstream host and
        // an attempt only once the service (this hop's upstream) got the request: a direct response, a request no
        // route took, and a filter's refusal have none
        boolean served = traced.service != null;
        String inboundCluster = cluster != null ? cluster : served ? "inbound|" + localPort(local) + "||" : null;
        String shownPath = shownPath(path, traced);
        return new StreamInfo(StreamInfo.Direction.INBOUND, startTime, req.method().name(), shownPath,
                protocol(req), status, flags, details, req.bytesRead(), ended ? bytesSent(req) : 0,
                (System.nanoTime() - start) / 1_000_000, -1, h.get("x-request-id"), authority,
                h.get("user-agent"), h.get("x-forwarded-for"), served ? local : null, inboundCluster, null,
                local, traced.remoteAddress, tls == null || tls.serverName.isEmpty() ? null : tls.serverName,
                routeName, served ? 1 : 0, peer,
                destination[0], destination[1], destination[2],
                Grpc.isRequest(h) ? Grpc.finalStatus(trailers, resp.headers(), status) : null, mutualTls,
                // as the standalone proxy: Istio's principals are the URI SANs of TLS a client certificate came in
                tls == null ? null : tls.certs.peerPrincipal,
                tls == null || tls.peerCertificates() == null ? null : tls.certs.localPrincipal, null, null,
                -1, -1, null, traced.hostHeaderFallback, // the service's server reads and writes the bodies: no gRPC
                // messages counted
                new RequestLog(traced.accessLogs, h, status == 0 ? null : resp.headers(),
                        traced.accessLogs.isEmpty() ? null : trailers, shownPath,
                        scheme(req, traced), traced.span != null && traced.span.sampled(),
                        tls == null ? null : dev.inmesh.runtime.accesslog.TlsDetails.of(tls.session()), null, -1,
                        null, -1, -1, null, null, null, traced.span),
                snapshots.current().clusterManager().observabilityName(inboundCluster), traced.headBytes,
                // a head the caller got, whether or not the body ended
                HeadSize.response(!ended || resp.headWritten() ? status : 0, resp.headers(), trailers),
                // in-JVM: the direct addresses are the server's remote and local
                traced.statsOverrides, remote, null);
    }

    /**
     * The path the stream info and the access log show: the rewritten one when no {@code x-envoy-original-path} keeps
     * the original, as for the router's requests.
     */
    private static String shownPath(String path, Traced traced) {
        return !traced.originalPath && traced.rewrittenUri != null ? traced.rewrittenUri
                : traced.authorizedUri != null ? traced.authorizedUri
                : JwtAuthnFilter.withoutParameters(path, traced.tokenParameters);
    }

    /**
     * The first service of a cluster's {@code istio} metadata ({@code services: [{host, name, namespace}]}), which
     * Istio's stats take for {@code destination_service*} on the inbound side, into {@code out}; nothing when the
     * cluster or the metadata is not there.
     */
    private static void istioService(MeshSnapshot snapshot, String clusterName, String[] out) {
        var c = clusterName == null || clusterName.isEmpty() ? null : snapshot.clusterManager().cluster(clusterName);
        IstioService service = c == null ? null : IstioService.of(c.config().metadata());
        if (service != null) {
            out[0] = service.host();
            out[1] = service.nameOrHostLabel();
            out[2] = service.namespace();
        }
    }

    private static String localPort(String local) {
        return local.substring(local.lastIndexOf(':') + 1);
    }

    /**
     * A request's server span, once begun (null when not traced), the route it took (null: none yet), and what an
     * allowing external authorizer asked for on its response's headers.
     */
    /**
     * The request as the local rate limit filter's descriptors' actions read it: its head, and its connection's
     * addresses (the peer's for {@code remote_address}). Made only for a config with descriptors.
     */
    private static RbacFilter.Subject rateLimitSubject(Traced traced) {
        HttpServerRequest req = traced.view.req();
        return new RbacFilter.Subject(traced.view, ip(req.localAddress(), req.localAddress()),
                req.localAddress() == null ? 0 : req.localAddress().port(), ip(req.remoteAddress(), req.localAddress()),
                null, null);
    }

    /**
     * The IP of {@code a}, one end of a request's connection whose local end is {@code local}, as the filters read
     * it (127.0.0.1 when unknown). A Unix domain socket has no IP: its path stands for it, as Envoy names a pipe,
     * and for its peer, which the kernel leaves unnamed, the socket's own path, as Envoy's listener names it (Vert.x
     * names an unnamed peer by the working directory, so a client that bound a path of its own is named so too).
     */
    static String ip(io.vertx.core.net.SocketAddress a, io.vertx.core.net.SocketAddress local) {
        if (a == null) {
            return "127.0.0.1";
        }
        if (!a.isDomainSocket()) {
            return a.hostAddress();
        }
        return local == null || local.path() == null ? "" : local.path();
    }

    /** {@code a} as Envoy prints a connection's address: {@code ip:port} (an IPv6 address in brackets), or a path. */
    static String printed(io.vertx.core.net.SocketAddress a, io.vertx.core.net.SocketAddress local) {
        return a.isDomainSocket() ? ip(a, local) : IpLiterals.hostPort(a.hostAddress(), a.port());
    }

    /**
     * Runs, right before the response's head goes, the service's head's end handler when the head is the one it began
     * ({@link ServiceResponse#headEnds}), {@code handler} (null: nothing), then what the connection manager
     * writes on every response, last as Envoy's: a {@code date} when there is none, the {@code server} header as its
     * {@code server_header_transformation} says and its {@code via} ({@link Router#connectionManagerHeaders}); a
     * trailers-only gRPC local reply over HTTP/2 ({@link Traced#trailersOnly}) goes without a {@code content-length}.
     */
    private static void headEnd(HttpServerResponse resp, Traced traced, Handler<Void> handler) {
        ServerHeader server = traced.server;
        resp.headersEndHandler(v -> {
            if (traced.service != null) {
                traced.service.headEnds(); // first: the filters and the connection manager see its head complete
            }
            if (handler != null) {
                handler.handle(v);
            }
            if (server != null) {
                Router.connectionManagerHeaders(resp.headers(), server);
            }
            if (traced.lowerCaseNames) {
                dev.inmesh.runtime.router.HeaderCase.lowerCase(resp.headers());
            }
            if (traced.trailersOnly) {
                resp.headers().remove(io.vertx.core.http.HttpHeaders.CONTENT_LENGTH);
            }
        });
    }

    private static final class Traced {
        /** The timer of the request's stream duration ({@link #bounded}), or -1. */
        long deadline = -1;
        /**
         * Whether the answer's header names go to the HTTP/1 caller in lower case, as Envoy's HTTP/1 codec writes
         * them, the service's whatever case it gave them: under a connection manager without a stateful formatter.
         */
        boolean lowerCaseNames;
        /** Whether the HTTP/1 connection ends after this request's answer (a refused upgrade's 404 NR). */
        boolean closeAfterAnswer;
        /**
         * Whether the answer is a gRPC local reply over HTTP/2: trailers-only, as Envoy's (encodeLocalReply,
         * source/common/http/utility.cc), its head ending the stream with no {@code content-length}, which
         * prepareLocalReply takes off and Envoy's HTTP/2 codec does not add.
         */
        boolean trailersOnly;
        /** The connection of a TCP chain the request came on ({@link TcpChainConnection}), or null. */
        TcpChainConnection tcp;
        /** The connection manager's {@code server} and {@code via} headers; null without a connection manager. */
        ServerHeader server;
        /**
         * The request's {@code :scheme} as its connection manager set it ({@link Router#requestScheme}); null before
         * it did, or without one (the connection's then).
         */
        String scheme;
        /**
         * The stream's downstream remote address as the connection manager found it
         * ({@link dev.inmesh.runtime.router.DownstreamAddress}): with {@code use_remote_address: false}, the last
         * {@code x-forwarded-for} address, {@code ip:0}, when it is an IP, else the connection's.
         */
        String remoteAddress;
        /** The connection's peer, {@code ip:port}: {@link #remoteAddress} itself when it is the peer's. */
        String peer;
        /** The IP of {@link #remoteAddress}, found the first time RBAC or the rate limit asks ({@link #remoteIp()}). */
        private byte[] remoteIp;

        /** The IP of {@link #remoteAddress}, as RBAC's {@code remote_ip} and the rate limit's descriptors read it. */
        byte[] remoteIp() {
            if (remoteIp == null) {
                remoteIp = dev.inmesh.runtime.router.DownstreamAddress.remoteIp(remoteAddress, peer);
            }
            return remoteIp;
        }

        /** Whether the router's encoding and the response scripts ran already, over a response body held for them. */
        boolean encoded;
        /** The run of the connection manager's Lua filters for the request, or null for none. */
        LuaFilter.Stream lua;
        /** The connection manager's buffer and header mutation filters, and the route table they read. */
        BufferFilter buffer = BufferFilter.NONE;
        HeaderMutationFilter headerMutation = HeaderMutationFilter.NONE;
        RouteTable table;
        /** The header mutations the request got, which its response gets too; null until the filter ran. */
        List<dev.inmesh.api.config.route.HeaderMutationPerRoute.Mutations> headerMutations;
        /** The request's TLS session, or null. */
        javax.net.ssl.SSLSession session;
        /** Whether that TLS verified the client's certificate against the chain's validation context. */
        boolean mutualTls;
        /** The body an authorizer may read before the service gets the request; null when none may. */
        HeldRequestBody heldBody;
        ActiveSpan span;
        RouteResult route;
        /** The changes an allowing external authorizer asked for on the response's headers, or null. */
        List<ExtAuthzFilter.ResponseHeader> authz;
        /** The request's {@code x-request-id} when the response carries it (always_set_request_id_in_response). */
        String requestId;
        /**
         * The connection manager's authorization filters and the request as they see it, when its global rate limit
         * filter runs after the fault and CORS filters ({@link RbacFilter.Chain#lateRateLimit}); else null.
         */
        RbacFilter.Chain lateRateLimit;
        RbacFilter.Subject subject;
        /** The request as routed, once it is ({@link #rateLimitSubject}). */
        ServerRequestView view;
        /** The request's head as it arrived, in bytes as HTTP/1.1 writes it ({@link HeadSize#request}). */
        long headBytes;
        /** Whether the request asks to be a WebSocket ({@link Http1Admission#upgradeType}). */
        boolean webSocket;
        /**
         * Whether a rewritten path's original goes in {@code x-envoy-original-path}: not under the router filter's
         * {@code suppress_envoy_headers}, as Envoy's router.
         */
        boolean originalPath = true;
        /**
         * The path (query kept) and the authority the route's rewrites made, null when unchanged; the stream info and
         * the access log show the path when no {@code x-envoy-original-path} keeps the original.
         */
        String rewrittenUri;
        String rewrittenAuthority;
        /** The details of a stream the codec reset before anything read the request (HTTP/2), else null. */
        String codecReset;
        /**
         * The query parameters the JWT authentication filter's verified tokens came in, their providers not
         * forwarding them: as Envoy's filter takes them out of {@code :path}, the service gets, and the access log
         * shows, the path without them.
         */
        Set<String> tokenParameters = Set.of();
        /**
         * The path (query kept) an allowing external authorizer, a header mutation filter's query parameter mutations
         * or a Lua script gave the request (after the JWT filter took its tokens' out), null when unchanged: the
         * route's rewrites start from it, and the service gets it.
         */
        String authorizedUri;
        /**
         * The request's target as the connection manager left it (its path normalized, fragment dropped; an
         * absolute-form target's path and query), null when that is the target Vert.x read: what the filters after it
         * and the service read ({@link #target}).
         */
        String normalizedUri;
        /** Whether the header mutation filter's query parameter mutations changed the path ({@link #authorizedUri}). */
        boolean queryMutated;

        /** The request's target as the connection manager left it ({@link #normalizedUri}). */
        String target(HttpServerRequest req) {
            return normalizedUri != null ? normalizedUri : req.uri();
        }
        /** Whether the service made the request a WebSocket ({@code toWebSocket()}). */
        boolean upgraded;
        /** Reports the request once its WebSocket's connection closed. */
        Runnable upgradeEnded;
        /** Whether Istio's stats may label it by its Host ({@link HttpConnectionManager#hostHeaderFallback}). */
        boolean hostHeaderFallback = true;
        /** What Istio's metrics drop and record without ({@code MeshSnapshot#statsOverrides}). */
        StatsOverrides statsOverrides = StatsOverrides.NONE;
        /** The access logs of the chain's connection manager. */
        AccessLogs accessLogs = AccessLogs.NONE;
        /** Its {@code local_reply_config}, compiled with the snapshot; null for none. */
        LocalReply localReply;
        /**
         * The request so far as that config reads it, and the route's header values; null without the one and values
         * that read it.
         */
        AccessLogEntry.Source localReplyRequest;
        /** The config of the connection manager's compressor filter, or null for none. */
        dev.inmesh.api.config.listener.Compressor compressor;
        /** Its name in the chain, by which routes name their {@code CompressorPerRoute} for it. */
        String compressorName;
        /** That filter's statistics, or null for none. */
        DownstreamStats.CompressorCounters compressorStats;
        /** The service's response under that filter, once it has it; null without the filter. */
        CompressingResponse compressing;
        /** The service's response held for a Lua response script's {@code body()}, or null. */
        HoldingResponse holding;
        /** The fault filter's response rate limit in KiB/s, or 0 for none. */
        long responseRateKbps;
        /** The service's response under that limit, once it has it; null without one. */
        ThrottledResponse throttled;
        /**
         * The response the service got ({@link #forService}), whose head's end, end and close handlers the connection
         * manager's run; null until the service got the request.
         */
        ServiceResponse service;
    }

    /** A server request's protocol as Envoy names it. */
    private static String protocol(HttpServerRequest req) {
        return req.version() == io.vertx.core.http.HttpVersion.HTTP_2 ? "HTTP/2"
                : req.version() == io.vertx.core.http.HttpVersion.HTTP_1_0 ? "HTTP/1.0" : "HTTP/1.1";
    }

    /**
     * An HTTP/1 request's head as {@link Http1Admission} reads it: what the admission makes of its target and Host
     * (an absolute-form request line's path and host, HTTP/1.0's default host) is kept here for routing, and the
     * application gets them so ({@link Traced#normalizedUri}, {@link Traced#rewrittenAuthority}).
     */
    private static final class ServerHead implements Http1Admission.Head {
        private final HttpServerRequest req;
        String uri;
        String host;

        ServerHead(HttpServerRequest req) {
            this.req = req;
            this.uri = req.uri();
            this.host = req.headers().get(io.vertx.core.http.HttpHeaders.HOST);
        }

        @Override
        public String method() {
            return req.method().name();
        }

        @Override
        public String uri() {
            return uri;
        }

        @Override
        public boolean http11() {
            return req.version() == io.vertx.core.http.HttpVersion.HTTP_1_1;
        }

        @Override
        public String host() {
            return host;
        }

        @Override
        public void servedAsHttp10() {
            // Vert.x reads HTTP/1.0 as such already
        }

        @Override
        public void originForm(String uri, String authority) {
            this.uri = uri;
            this.host = authority;
        }

        @Override
        public void defaultHost(String host) {
            this.host = host;
        }

        @Override
        public boolean tls() {
            return req.isSSL();
        }

        @Override
        public String header(String name) {
            return dev.inmesh.runtime.router.HeaderValues.joined(req.headers(), name);
        }

        @Override
        public void header(String name, String value) {
            if (name.equalsIgnoreCase("host")) {
                host = value; // routed by the Host the codec leaves (none: refused, as any request without one)
            }
            // the application reads the request as the connection manager leaves it
            if (value == null) {
                req.headers().remove(name);
            } else {
                req.headers().set(name, value);
            }
        }
    }

    /**
     * A server request seen by route selection and the RBAC filters, with its normalized path, and its body as an
     * authorizer reads it ({@link RequestBody#NONE} where none does).
     */
    private record ServerRequestView(HttpServerRequest req, String authority, String path, Instant startTime,
                                     Traced traced, RequestBody body) implements RouteRequest {
        ServerRequestView(HttpServerRequest req, String authority, String path, Instant startTime, Traced traced) {
            this(req, authority, path, startTime, traced, RequestBody.NONE);
        }

        @Override
        public byte[] downstreamRemoteIp() {
            return traced.remoteIp();
        }

        @Override
        public boolean foundDownstreamRemoteAddress() {
            return true;
        }

        @Override
        public RequestBody requestBody() {
            return body;
        }

        @Override
        public String protocol() {
            return InboundHandler.protocol(req);
        }

        @Override
        public String method() {
            return req.method().name();
        }

        @Override
        public String scheme() {
            return InboundHandler.scheme(req, traced);
        }

        @Override
        public String header(String lowerCaseName) {
            return RouteRequest.headerOf(this, req.headers(), lowerCaseName);
        }

        @Override
        public String firstHeader(String lowerCaseName) {
            return RouteRequest.firstOf(this, req.headers(), lowerCaseName);
        }
    }
}
