package dev.inmesh.runtime.router;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.listener.ForwardClientCert;
import dev.inmesh.api.config.listener.ServerHeader;
import dev.inmesh.api.config.route.FaultInjection;
import dev.inmesh.api.config.route.HashPolicy;
import dev.inmesh.api.config.route.HedgePolicy;
import dev.inmesh.api.config.route.RetryPolicy;
import dev.inmesh.api.config.route.RouteAction;
import dev.inmesh.api.config.route.VirtualHost;
import dev.inmesh.runtime.lb.HashPolicies;
import dev.inmesh.runtime.lb.Xxhash;
import dev.inmesh.runtime.net.IpLiterals;
import dev.inmesh.runtime.stats.DownstreamStats;
import dev.inmesh.runtime.stats.HeadSize;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.accesslog.AccessLogEntry;
import dev.inmesh.runtime.accesslog.LocalReply;
import dev.inmesh.runtime.accesslog.RequestLog;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.tls.HandshakeFailure;
import dev.inmesh.runtime.tracing.TraceReporting;
import dev.inmesh.runtime.upstream.CircuitBreakerState;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.Host;
import dev.inmesh.runtime.upstream.LbContext;
import dev.inmesh.runtime.upstream.PreviousPriorities;
import dev.inmesh.runtime.upstream.LocalOriginFailure;
import dev.inmesh.runtime.upstream.UpstreamCluster;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.util.AsciiString;
import io.vertx.core.AsyncResult;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.ConnectionPoolTooBusyException;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpClosedException;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.http.StreamResetException;
import io.vertx.core.internal.ContextInternal;
import io.vertx.core.net.HostAndPort;
import java.net.ConnectException;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import java.util.random.RandomGenerator;
import javax.net.ssl.SSLSession;

/**
 * Envoy's router, shared by the in-JVM client and the standalone proxy: routes a request (its body whole, or streamed
 * upstream as it comes, see {@link RequestBodyStream}) through a route table, picks a host of the chosen cluster,
 * holds the circuit breakers, applies the route timeout (over all attempts and back-offs) and the per-try timeout,
 * retries by the retry policy with jittered exponential back-off and the {@code previous_hosts} predicate, reports
 * outcomes to outlier detection, and answers locally with Envoy's codes, bodies and response flags when it cannot
 * forward.
 *
 * <p>Each exchange runs on one Vert.x context; nothing blocks. The caller streams the committed response's body (an
 * upstream body is paused until the caller resumes it, see {@link RouterResponse#upstream()}) and then calls
 * {@link #complete} (or {@link #abort}), which releases limits and records metrics and the access log.
 */
public final class Router {
    /**
     * Request headers never forwarded: those Envoy's connection manager takes off every request that is not an
     * upgrade (and {@code host}, sent as the authority). Others, {@code proxy-authorization} and {@code trailer}
     * among them, go on as Envoy passes them.
     */
    private static final AsciiString[] HOP_BY_HOP = HeaderNames.of("connection", "keep-alive",
            "proxy-connection", "transfer-encoding", "upgrade", "host");
    /**
     * Hop-by-hop response headers never passed downstream, as Envoy's connection manager takes them off a response
     * that is not an upgrade's ({@code upgrade} included: a server's offer of h2c is for its own connection).
     */
    private static final AsciiString[] RESPONSE_HOP_BY_HOP = HeaderNames.of("connection", "keep-alive",
            "proxy-connection", "transfer-encoding", "upgrade");
    /** Envoy's request control headers: honoured only from trusted callers, and never forwarded. */
    private static final AsciiString[] CONTROL_HEADERS = HeaderNames.of("x-envoy-retry-on",
            "x-envoy-retry-grpc-on", "x-envoy-max-retries", "x-envoy-upstream-rq-timeout-ms",
            "x-envoy-upstream-rq-per-try-timeout-ms",
            "x-envoy-retriable-status-codes", "x-envoy-retriable-header-names", "x-envoy-expected-rq-timeout-ms",
            "x-envoy-internal", "x-envoy-force-trace", "x-envoy-hedge-on-per-try-timeout",
            "x-envoy-upstream-alt-stat-name", "x-envoy-ip-tags", "x-envoy-original-url",
            "x-envoy-upstream-rq-timeout-alt-response", "x-envoy-upstream-stream-duration-ms");
    /**
     * Those of {@link #CONTROL_HEADERS} Envoy's router reads and takes off the request it sends on: what an internal
     * request's upstream never sees (it sees the rest: {@code x-envoy-force-trace}, {@code x-envoy-ip-tags}, ...).
     * {@code x-envoy-upstream-rq-timeout-ms} is not among them: the router takes it off only when it read it
     * ({@link #internalHeaders(MultiMap, boolean)}).
     */
    private static final AsciiString[] ROUTER_CONTROL_HEADERS = HeaderNames.of("x-envoy-retry-on",
            "x-envoy-retry-grpc-on", "x-envoy-max-retries",
            "x-envoy-upstream-rq-per-try-timeout-ms", "x-envoy-retriable-status-codes",
            "x-envoy-retriable-header-names", "x-envoy-hedge-on-per-try-timeout", "x-envoy-upstream-alt-stat-name",
            "x-envoy-upstream-rq-timeout-alt-response", "x-envoy-upstream-stream-duration-ms");
    private static final AsciiString X_ENVOY_INTERNAL = AsciiString.cached("x-envoy-internal");
    private static final AsciiString ALT_RESPONSE = AsciiString.cached("x-envoy-upstream-rq-timeout-alt-response");

    /**
     * Takes off a request what a caller may not hand on, as Envoy's connection manager does on a connection without
     * a client certificate: its request control headers ({@code x-envoy-retry-on},
     * {@code x-envoy-upstream-rq-timeout-ms}, {@code x-envoy-internal}, ...), for a request it does not take for
     * internal, and {@code x-forwarded-client-cert} unless the connection manager says {@code ALWAYS_FORWARD_ONLY}:
     * inbound, Istio's APPEND_FORWARD adds one only for a client certificate, so the application never trusts a
     * forged one; outbound, the default SANITIZE, which Istio's outbound connection managers keep. The in-JVM inbound
     * side does it before the application sees the request; the router does it on every request, with the
     * connection's client certificate ({@link RouterRequest#clientCertificate}).
     *
     * @param forwardClientCert the connection manager's {@code forward_client_cert_details} (null: SANITIZE)
     */
    public static void removeUntrustedHeaders(MultiMap headers, ForwardClientCert.Mode forwardClientCert) {
        removeUntrustedHeaders(headers, forwardClientCert, false, null, false);
    }

    /**
     * As {@link #removeUntrustedHeaders(MultiMap, ForwardClientCert.Mode)}, for a request whose connection presented
     * a client certificate (or not) in TLS the application's server terminated in-JVM: {@code x-forwarded-client-cert}
     * as the connection manager's {@code forward_client_cert_details} says for it, with this hop's element
     * ({@link ForwardedClientCert#element}, null for none). A request the connection manager takes for
     * {@code internal}
     * ({@link RouterRequest#internal(dev.inmesh.api.config.listener.HttpConnectionManager, String)}) keeps the
     * control headers a sidecar's router would not have consumed on its way to the application
     * ({@code x-envoy-force-trace}, {@code x-envoy-ip-tags}, ...) and gets {@code x-envoy-internal: true}.
     */
    public static void removeUntrustedHeaders(MultiMap headers, ForwardClientCert.Mode forwardClientCert,
                                              boolean peerCertificate, String clientCertElement, boolean internal) {
        if (internal) {
            internalHeaders(headers, false);
        } else {
            for (AsciiString name : CONTROL_HEADERS) {
                headers.remove(name);
            }
        }
        ForwardedClientCert.apply(headers, forwardClientCert == null ? ForwardClientCert.Mode.SANITIZE
                : forwardClientCert, peerCertificate, clientCertElement);
    }

    /**
     * Takes a caller's control headers off the request; after an internal redirect, the router's own
     * {@code x-envoy-original-url} stays (Envoy's connection manager does not clean a stream it recreated).
     */
    private static void removeControlHeaders(RouterRequest req) {
        for (AsciiString name : CONTROL_HEADERS) {
            if (req.internalRedirects == 0 || !name.contentEqualsIgnoreCase(InternalRedirects.X_ENVOY_ORIGINAL_URL)) {
                req.headers.remove(name);
            }
        }
    }

    /**
     * The control headers of a request ({@link #removeUntrustedHeaders}): a caller's taken off, an internal
     * request's as it goes on. The router does it on each request it forwards, once it read them, and on a request
     * relayed from its head on ({@link #relay}) or refused as an upgrade, before its route.
     */
    private static void sanitize(RouterRequest req) {
        if (req.opaque) {
            return; // bytes to a tcp_proxy: nothing is read or taken off
        }
        if (req.internal) {
            internalHeaders(req.headers, req.routerFilter.respectExpectedRqTimeout()
                    && req.headers.contains(HeaderNames.X_ENVOY_EXPECTED_RQ_TIMEOUT_MS));
        } else {
            removeControlHeaders(req);
        }
    }

    /**
     * An internal request's control headers on its way upstream: as Envoy's router, what it read goes no further, the
     * rest does, with the connection manager's {@code x-envoy-internal: true}.
     *
     * @param expectedTimeoutRead whether the router took the route timeout from {@code x-envoy-expected-rq-timeout-ms}
     *                            ({@code respect_expected_rq_timeout} and the header present, whatever its value): it
     *                            then never read {@code x-envoy-upstream-rq-timeout-ms}, which goes on, as Envoy's
     *                            {@code finalTimeout} leaves it
     */
    private static void internalHeaders(MultiMap headers, boolean expectedTimeoutRead) {
        for (AsciiString name : ROUTER_CONTROL_HEADERS) {
            headers.remove(name);
        }
        if (!expectedTimeoutRead) {
            headers.remove(Control.UPSTREAM_RQ_TIMEOUT_MS);
        }
        headers.set(X_ENVOY_INTERNAL, "true");
    }

    private static final AsciiString FORCE_TRACE = AsciiString.cached("x-envoy-force-trace");

    private final Vertx vertx;
    private final Options options;
    private final Consumer<StreamInfo> observer;
    private final RandomGenerator random;
    private final FaultFilter faults = new FaultFilter();
    private final CorsFilter cors = new CorsFilter();
    private volatile java.util.function.Function<String, dev.inmesh.runtime.stats.UpstreamStats> upstreamStats;
    /** Where the spans of traced requests go; null: no request is traced. */
    private volatile TraceReporting tracing;

    /**
     * Router settings.
     *
     * @param trustEnvoyHeaders whether {@code x-envoy-*} control headers from the caller are honoured
     * @param generateRequestId whether an absent {@code x-request-id} is generated
     * @param local this workload, for peer metadata sent upstream
     * @param peerMetadata the {@code x-envoy-peer-metadata} value sent upstream on outbound requests, or null
     * @param peerMetadataId the {@code x-envoy-peer-metadata-id} value, or null
     */
    public record Options(boolean trustEnvoyHeaders, boolean generateRequestId, WorkloadInfo local,
                          String peerMetadata, String peerMetadataId) {
        public static final Options DEFAULTS = new Options(false, true, WorkloadInfo.UNKNOWN, null, null);
    }

    public Router(Vertx vertx, Options options, Consumer<StreamInfo> observer) {
        this(vertx, options, observer, null);
    }

    /** A router with a given source of randomness (tests seed it). */
    public Router(Vertx vertx, Options options, Consumer<StreamInfo> observer, RandomGenerator random) {
        this.vertx = vertx;
        this.options = options == null ? Options.DEFAULTS : options;
        this.observer = observer == null ? s -> { } : observer;
        this.random = random;
    }

    /** Where Envoy's per-cluster upstream counters go ({@code upstream_rq_total}, {@code upstream_rq_retry}, ...). */
    public void upstreamStats(java.util.function.Function<String, dev.inmesh.runtime.stats.UpstreamStats> stats) {
        this.upstreamStats = stats;
    }

    /**
     * Where the spans of the requests go whose connection manager traces ({@link RouterRequest#tracer}); null (the
     * default) traces none.
     */
    public void tracing(TraceReporting reporting) {
        this.tracing = reporting;
    }

    /** Where the spans of traced requests go, or null. */
    public TraceReporting tracing() {
        return tracing;
    }

    /** The statistics of a cluster (the proxy's TCP relays count there too), or null when none are kept. */
    public dev.inmesh.runtime.stats.UpstreamStats upstreamStats(String clusterName) {
        var f = upstreamStats;
        return f == null || clusterName == null || clusterName.isEmpty() ? null : f.apply(clusterName);
    }

    /**
     * The statistics of the exchange's cluster: the router counts there several times per request, so the lookup by
     * name is made once per cluster the exchange goes to. Those the cluster it took keeps, when it keeps them: a
     * request that took a cluster a configuration then removes counts into that cluster's, which are released with
     * it, rather than making its name's statistics again.
     */
    private dev.inmesh.runtime.stats.UpstreamStats stats(Exchange ex) {
        String name = ex.clusterName;
        if (name != ex.statsCluster || ex.stats == null) {
            UpstreamCluster c = ex.cluster;
            var own = c == null || upstreamStats == null || !c.name().equals(name) ? null : c.stats();
            ex.stats = own != null ? own : upstreamStats(name);
            ex.statsCluster = name;
        }
        return ex.stats;
    }

    /** The exchange's upstream connection failed to speak HTTP: its cluster's {@code upstream_cx_protocol_error}. */
    private void countProtocolError(Exchange ex) {
        var st = stats(ex);
        if (st != null) {
            st.protocolError();
        }
    }

    private RandomGenerator random() {
        return random != null ? random : ThreadLocalRandom.current();
    }

    /**
     * Routes a request through {@code table} to the clusters of {@code clusters}. The future completes with the
     * committed response (never fails: failures become local replies).
     */
    public Future<RouterResponse> forward(RouterRequest req, RouteTable table, ClusterManager clusters) {
        Context ctx = vertx.getOrCreateContext();
        // Bound to the exchange's context: callbacks added after completion still run there, not on the caller's
        // thread, so the caller reads the body and completes the exchange on the context that owns it.
        Promise<RouterResponse> promise = ((ContextInternal) ctx).promise();
        Exchange ex = startExchange(req);
        ex.table = table;
        Runnable start = () -> {
            try {
                begin(ex, table, clusters, promise, ctx);
            } catch (RuntimeException e) {
                reply(ex, promise, 500, "", "internal_error", null);
            }
        };
        onContext(ctx, start);
        return promise.future();
    }

    /** Runs {@code r} now when on {@code ctx}, else on {@code ctx} soon. */
    /**
     * While a filter holds the request's body ({@code stream}), the caller's leaving closes it, so that what waits for
     * the body ends as gone; a caller that left already closes it now.
     */
    private static void closeWhenCallerLeaves(RouterRequest req, RequestBodyStream stream, Context ctx) {
        req.canceller = () -> onContext(ctx, stream::close);
        if (req.cancelled) {
            stream.close();
        }
    }

    private static void onContext(Context ctx, Runnable r) {
        if (Vertx.currentContext() == ctx) {
            r.run();
        } else {
            ctx.runOnContext(v -> r.run());
        }
    }

    /**
     * The caller of a forwarded request went away before its response (it reset the request, its own timeout fired,
     * its client closed): as Envoy does on a downstream reset, the attempt in flight is reset and nothing is retried.
     * The exchange ends with DC and response code 0 ({@code downstream_remote_disconnect}); the future of
     * {@link #forward} completes with that local reply, which the caller aborts. Nothing happens once the response was
     * committed: the caller resets the upstream body itself. Any thread.
     */
    public void cancel(RouterRequest req) {
        req.cancelled = true;
        Runnable c = req.canceller;
        if (c != null) {
            c.run();
        }
    }

    /**
     * The caller reset its HTTP/2 stream (RST_STREAM) before its answer: as {@link #cancel}, but the exchange ends as
     * Envoy's connection manager ends a stream its codec saw reset by the peer (ActiveStream::onResetStream): flag DR
     * and the codec's {@code details} ({@code http2.remote_reset}, or {@code http2.remote_refuse} for
     * REFUSED_STREAM).
     */
    public void callerReset(RouterRequest req, String details) {
        req.departure = new RouterRequest.Departure(ResponseFlag.DOWNSTREAM_REMOTE_RESET, details);
        cancel(req);
    }

    /**
     * The caller's codec reset its stream before its answer, for what the caller sent after its head (a body longer
     * or shorter than its {@code content-length}, invalid trailers): as {@link #cancel}, but the exchange ends as
     * Envoy's connection manager ends a stream its codec reset with response details (ActiveStream::onResetStream
     * with a local reset, source/common/http/conn_manager_impl.cc): flag DPE and the codec's {@code details}.
     */
    public void codecReset(RouterRequest req, String details) {
        req.departure = new RouterRequest.Departure(ResponseFlag.DOWNSTREAM_PROTOCOL_ERROR, details);
        cancel(req);
    }

    /**
     * The connection manager's {@code request_timeout} ran out before the request was whole and before its answer
     * began: the exchange ends as Envoy's connection manager ends it, the attempt in flight reset (or a fault delay
     * cut short) and {@code 408 request timeout} ({@code request_overall_timeout}) answering the caller.
     */
    public void requestTimeout(RouterRequest req) {
        req.refusal = new RouterRequest.Refusal(408, "request timeout", "request_overall_timeout");
        cancel(req);
    }

    /**
     * A filter of the connection manager refused the request's body while it arrived (the gRPC-Web filter, a text
     * body that is not base64): as Envoy's local reply from a filter, the attempt in flight is reset and the caller is
     * answered {@code status} with {@code body} and {@code details}, if its answer had not begun (the caller resets
     * the stream otherwise).
     */
    public void refuseBody(RouterRequest req, int status, String body, String details) {
        req.refusal = new RouterRequest.Refusal(status, body, details);
        cancel(req);
    }

    /** Ends an exchange whose caller left ({@link #cancel}) or whose request timed out ({@link #requestTimeout}). */
    private void callerGone(Exchange ex, Promise<RouterResponse> promise) {
        RouterRequest.Refusal refusal = ex.request.refusal;
        if (refusal != null) {
            reply(ex, promise, refusal.status(), refusal.body(), refusal.details(), null);
            return;
        }
        RouterRequest.Departure gone = ex.request.departure;
        ex.flags.add(gone.flag());
        reply(ex, promise, 0, "", gone.details(), null);
    }

    /** A local reply for a request that has no route table at all (REGISTRY_ONLY BlackHole: 502). */
    public RouterResponse localReply(RouterRequest req, int status, String body, String details,
                                     ResponseFlag flag) {
        return localReply(req, status, body, details, flag, null);
    }

    /**
     * A local reply on behalf of {@code cluster} (the request's upstream cluster in its metrics and access log), such
     * as {@code BlackHoleCluster}, which has no host to send to; null for none.
     */
    public RouterResponse localReply(RouterRequest req, int status, String body, String details,
                                     ResponseFlag flag, String cluster) {
        return localReply(req, status, body, details, flag, cluster, null);
    }

    /** The same, with a {@code location} header (null: none), as the connection manager's redirects carry. */
    public RouterResponse localReply(RouterRequest req, int status, String body, String details,
                                     ResponseFlag flag, String cluster, String location) {
        Exchange ex = startExchange(req);
        ex.clusterName = cluster;
        if (flag != null) {
            ex.flags.add(flag);
        }
        if (flag == ResponseFlag.NO_ROUTE_FOUND && req.downstreamStats != null) {
            req.downstreamStats.noRoute(); // a connection manager without its route configuration yet
        }
        ex.responseCodeDetails = details;
        return localResponse(ex, status, body, location == null ? null : locationHeader(location));
    }

    /** The headers of a redirect the connection manager answers: its {@code location}. */
    private static MultiMap locationHeader(String location) {
        return MultiMap.caseInsensitiveMultiMap().add("location", location);
    }

    /**
     * A request relayed from its head on (a WebSocket upgrade: {@link #relay}), to {@code host} of the
     * route's {@code cluster}: it counts now in its connection manager's statistics, in its cluster's
     * ({@code upstream_rq_total}, {@code upstream_rq_active}), as the host's active request and in the cluster's
     * {@code max_requests} circuit breaker until it ends, and is reported (Istio's metrics, the access log) when
     * {@link #relayEnded} says how it ended, as Envoy's connection manager reports an upgraded stream when it ends.
     *
     * @return the relay, status 0; or, when the cluster's {@code max_requests} breaker is full, the answer to send
     *     instead (503 {@code overflow}, UO, {@code x-envoy-overloaded}), reported as any answer the router gives
     */
    private RouterResponse relayStarted(RouterRequest req, RouteTable routes, RouteResult.Forward f,
                                        UpstreamCluster cluster, Host host) {
        Exchange ex = startExchange(req);
        ex.table = routes;
        ex.route = f;
        ex.cluster = cluster;
        ex.clusterName = f.cluster();
        Promise<RouterResponse> refused = Promise.promise();
        // the host is chosen: a max_requests refusal names it and is its rq_error, as Envoy's pool refuses a stream
        // on the host's connection
        ex.lastHost = host;
        if (!takeRequestSlot(ex, cluster, refused)) {
            host.stats().requestFailed();
            return refused.future().result();
        }
        var st = stats(ex);
        ex.activeHost = host;
        ex.attempts = 1;
        // the cluster's upstream_rq_total, and upstream_rq_active until it ends (releaseHost), as an attached request's
        counted(host, st);
        ex.activeStats = st;
        return new RouterResponse(0, null, null, null, ex);
    }

    /**
     * The head of a relay's answer from its upstream ({@code status}, its {@code 101} or its refusal, and
     * {@code headers}, changed in place) as Envoy's router, encoder filters and connection manager give it: the
     * router's ({@link #routerResponseHeaders}: the route's response header rules, the metadata exchange's answer
     * taken off outbound; no upstream service time, as Envoy's router sets none for a request that never ended), the
     * Lua filters' response scripts and the header mutation filter where the request ran them, then what the
     * connection manager writes on every response (a {@code date} when it has none, the {@code server} header as its
     * {@code server_header_transformation} says, the request's id when asked). Headers only: what follows is relayed
     * as bytes.
     */
    public void relayResponseHead(RouterResponse relay, int status, MultiMap headers) {
        Exchange ex = relay.exchange;
        routerResponseHeaders(ex, status, headers, false,
                ex.route instanceof RouteResult.Forward f ? f.virtualHost() : null);
        lateFiltersResponse(ex, status, headers, null, true);
        connectionManagerHeaders(ex, headers);
        ex.relayResponseHeaders = headers;
    }

    /**
     * The answer the proxy gives in the upstream's place to a relay {@link #relayStarted} began whose upstream has not
     * answered (it closed, its stream timed out): {@code status} and {@code body} with the headers of the router's
     * local replies (content type and length, the connection manager's). Not reported: {@link #relayEnded} reports
     * the relay.
     */
    public RouterResponse relayLocalReply(RouterResponse relay, int status, String body) {
        RouterResponse r = localResponse(relay.exchange, status, body, null);
        relay.exchange.relayResponseHeaders = r.headers();
        return r;
    }

    /**
     * A relay {@link #relayStarted} began whose connect to its host failed ({@code cause}): counted in the cluster's
     * statistics as any upstream connect failure ({@link #connectFailed}: {@code upstream_cx_connect_fail}, its
     * timeout's, a failed handshake's {@code ssl.*}), and kept as the relay's transport failure reason for the access
     * log ({@code %UPSTREAM_TRANSPORT_FAILURE_REASON%}). Returns why, for the answer {@link #relayEnded} reports.
     */
    public dev.inmesh.runtime.upstream.ConnectFailure relayConnectFailed(RouterResponse relay, Throwable cause) {
        Exchange ex = relay.exchange;
        ex.connectFailure = connectFailed(stats(ex), cause);
        return ex.connectFailure;
    }

    /**
     * The end of a relay {@link #relayStarted} began, once both connections closed: {@code status} the client's
     * answer (101 for a WebSocket the upstream accepted, its refusal, or the proxy's {@link #relayLocalReply}; 0 when
     * none came), its response code details, the bytes relayed each way after the request's and the response's heads
     * (body bytes, as Envoy counts them), and the flag of a failure (null: none). Reported once; a second call does
     * nothing.
     */
    public StreamInfo relayEnded(RouterResponse relay, int status, String details, long received, long sent,
                                 ResponseFlag flag) {
        Exchange ex = relay.exchange;
        ex.relayedRequestBytes = Math.max(0, received);
        ex.responseCodeDetails = details;
        if (status != 0 && !ex.completed) {
            chargeLocalReply(ex, status); // the cluster's upstream_rq_completed and upstream_rq_xx: 101, or 503
        }
        if (!ex.completed && ex.lastHost != null) {
            relayOutcome(ex.lastHost, status, details, flag);
        }
        if (!ex.completed && flag == ResponseFlag.UPSTREAM_PROTOCOL_ERROR) {
            countProtocolError(ex);
        }
        DownstreamStats ds = ex.request.downstreamStats;
        if (ds != null && !ex.completed) {
            // as the connection manager's timers end any stream: downstream_rq_idle_timeout, .._max_duration_reached
            if ("stream_idle_timeout".equals(details)) {
                ds.idleTimeout();
            } else if ("max_duration_timeout".equals(details)) {
                ds.maxDurationReached();
            }
        }
        // with the answer's head (%RESP()%, and its size in istio_response_bytes, the bytes sent being its body's)
        return finish(new RouterResponse(status, status == 0 ? null : ex.relayResponseHeaders, null, null, ex), sent,
                flag);
    }

    /**
     * What a relay's end tells outlier detection of its host, as the router reports any attempt: a connection that
     * failed, or ended (or spoke no HTTP) before its answer, is a local-origin failure; an answer of the upstream (its
     * 101, or its refusal) counts by its status. A stream the caller or a timer ended first tells nothing.
     */
    private static void relayOutcome(Host host, int status, String details, ResponseFlag flag) {
        if (flag == ResponseFlag.UPSTREAM_CONNECTION_FAILURE) {
            host.outlier().reportLocalOriginFailure(LocalOriginFailure.CONNECT_FAILED);
            host.stats().requestFailed();
        } else if (flag == ResponseFlag.UPSTREAM_CONNECTION_TERMINATION
                || flag == ResponseFlag.UPSTREAM_PROTOCOL_ERROR) {
            host.outlier().reportConnectSuccess();
            host.outlier().reportLocalOriginFailure(LocalOriginFailure.RESET);
            host.stats().requestFailed();
        } else if (status == 101 || "via_upstream".equals(details) && status != 0) {
            host.outlier().reportConnectSuccess();
            if (status >= 500) {
                host.outlier().reportHttpStatus(status);
                host.stats().requestFailed();
            } else {
                host.outlier().reportSuccess();
                host.stats().requestSucceeded();
            }
        }
    }

    /**
     * What becomes of a request relayed from its head on (a WebSocket upgrade), once {@link #relay} decided it:
     * {@code refusal}, the answer to give in the upstream's place (a local reply, reported as any:
     * {@link #complete}); or {@code started}, the relay begun ({@link #relayStarted}, reported by
     * {@link #relayEnded}) to {@code host} of {@code cluster} for {@code route}, with the {@code path} and
     * {@code authority} to send (the request's headers readied as {@link #relayHead} readies them).
     */
    public record Relay(RouterResponse refusal, RouterResponse started, RouteResult.Forward route,
                        UpstreamCluster cluster, Host host, String path, String authority) {
        /** A relay not begun: {@code refusal} answers the request. */
        public static Relay refused(RouterResponse refusal) {
            return new Relay(refusal, null, null, null, null, null, null);
        }
    }

    /**
     * Decides a request relayed from its head on (a WebSocket upgrade: the standalone proxy's, the in-JVM client's)
     * as the router decides a request it forwards: the caller's control headers go, the route, then the connection
     * manager's local rate limit, JWT, RBAC, external authorization and global rate limit filters in their order
     * (before the router finds no route, as Envoy's filters run before its router), then the host (the stateful
     * session's, else the load balancer's with the route's hash policies) and the cluster's {@code max_requests}, and
     * the head's rewrites and header rules. Complete at once unless an external authorizer or rate limit service is
     * asked; it never fails (an authorizer that could not be asked lets the request go, as there).
     *
     * <p>As Envoy's connection manager makes the filter chain for an upgrade once it knows the route: the route's own
     * {@code upgrade_configs} entry, else the connection manager's, decides whether it takes the upgrade
     * ({@link #upgradeEnabled}); one not taken is refused 403 {@code upgrade_failed} before the filters where a route
     * matched, else goes on to the router's 404 NR.
     *
     * @param routes the connection manager's route table, or null when it has none yet (404 NR)
     * @param taken runs when the connection manager takes the upgrade, before its filters (its
     *     {@code downstream_cx_upgrades_total})
     */
    public Future<Relay> relay(RouterRequest req, RouteTable routes, ClusterManager clusters, Runnable taken) {
        if (req.pathRedirect != null) {
            req.pathRedirect.count(req.downstreamStats);
            return Future.succeededFuture(Relay.refused(localReply(req, req.pathRedirect.status(), "",
                    PathNormalizer.Refusal.DETAILS, null, null, req.pathRedirect.location())));
        }
        if (req.detectionRejectStatus != 0) {
            countDetectionRejected(req);
            return Future.succeededFuture(Relay.refused(localReply(req, req.detectionRejectStatus, "",
                    DownstreamAddress.DETECTION_FAILED, null)));
        }
        sanitize(req);
        ensureRequestId(req);
        connectionManagerRequest(req, true);
        RouteResult result = routes == null ? null : routes.route(req, ThreadLocalRandom.current().nextLong());
        if (req.opaque || upgradeEnabled("websocket", req.websocketUpgrade, result)) {
            taken.run();
        } else if (result != null && !(result instanceof RouteResult.NoRoute)) {
            return Future.succeededFuture(Relay.refused(upgradeFailed(req)));
        }
        RouterResponse limited = rateLimitReply(req, routes, result, clusters, true);
        if (limited != null) {
            return Future.succeededFuture(Relay.refused(limited));
        }
        Future<RbacFilter.Verdict> verdict = authorize(req, routes, result, clusters);
        if (verdict.isComplete()) {
            return Future.succeededFuture(relayAuthorized(req, routes, result, clusters,
                    verdict.succeeded() ? verdict.result() : RbacFilter.Verdict.ALLOWED));
        }
        return verdict.transform(ar -> Future.succeededFuture(relayAuthorized(req, routes, result, clusters,
                ar.succeeded() ? ar.result() : RbacFilter.Verdict.ALLOWED)));
    }

    /**
     * The answer to an upgrade the connection manager does not take ({@code upgrade_configs} does not enable its type)
     * or a {@code CONNECT}, as Envoy's connection manager gives it: 403 {@code upgrade_failed} when a route matched the
     * request; otherwise the router's 404 {@code route_not_found} (NR), which a {@code CONNECT} always gets here, as
     * Envoy's prefix, path and regex matchers never match a request that has no path (only a
     * {@code connect_matcher}, which Inmesh does not take, would).
     *
     * @param routes the connection manager's route table, or null when it has none yet
     */
    public RouterResponse upgradeRefused(RouterRequest req, RouteTable routes, ClusterManager clusters,
                                         boolean connect) {
        sanitize(req);
        ensureRequestId(req);
        connectionManagerRequest(req, !connect);
        RouteResult result = connect || routes == null ? null
                : routes.route(req, ThreadLocalRandom.current().nextLong());
        if (result == null || result instanceof RouteResult.NoRoute) {
            return relayRefused(req, result, clusters);
        }
        return upgradeFailed(req);
    }

    /**
     * Whether the connection manager takes an {@code upgrade} (the request's {@code upgrade} header) on the route of
     * {@code result}, as Envoy's (createUpgradeFilterChain, source/extensions/filters/network/http_connection_manager/
     * config.cc): the route's own {@code upgrade_configs} entry for it, when it has one, decides either way; else the
     * connection manager's ({@code connectionManagerWebsocket}: whether its {@code upgrade_configs} enable
     * {@code websocket}, the only upgrade Inmesh takes). A redirect or a direct response has no entry of its own.
     */
    public static boolean upgradeEnabled(String upgrade, boolean connectionManagerWebsocket, RouteResult result) {
        if (!"websocket".equalsIgnoreCase(upgrade)) {
            return false;
        }
        Boolean route = result instanceof RouteResult.Forward f && f.action() != null
                ? f.action().websocketUpgrade() : null;
        return route != null ? route : connectionManagerWebsocket;
    }

    /**
     * The connection manager's answer to an upgrade it does not take on the route that matched it: 403
     * {@code upgrade_failed}, counted as {@code downstream_rq_ws_on_non_ws_route}.
     */
    private RouterResponse upgradeFailed(RouterRequest req) {
        countUpgradeFailed(req);
        return localReply(req, 403, "", "upgrade_failed", null);
    }

    /** An upgrade refused on the route it matched counted: {@code downstream_rq_ws_on_non_ws_route}. */
    private static void countUpgradeFailed(RouterRequest req) {
        if (req.downstreamStats != null) {
            req.downstreamStats.upgradeOnNonUpgradeRoute();
        }
    }

    /**
     * The connection manager's {@code x-request-id} (made when absent, where it makes them), as Envoy's connection
     * manager makes it for any request: on a forwarded request with the rest of its header work, on an upgrade before
     * its filters and its refusals, so that an upgrade the proxy answers itself is logged with its id too.
     */
    private void ensureRequestId(RouterRequest req) {
        if (options.generateRequestId && req.generateRequestId && !req.opaque
                && !req.headers.contains(HeaderNames.X_REQUEST_ID)) {
            req.headers.set(HeaderNames.X_REQUEST_ID, RequestIds.next());
        }
    }

    /**
     * What the connection manager makes of a request before its route and its filters, on every path (forward,
     * relay, a refused upgrade), as Envoy's ConnectionManagerUtility::mutateRequestHeaders
     * (source/common/http/conn_manager_utility.cc), which its decodeHeaders runs before it picks the route: the
     * hop-by-hop headers taken off ({@link #removeHopByHop}, {@code connection} and {@code upgrade} kept on an
     * {@code upgrade}) with {@code transfer-encoding}, an invalid or second {@code Referer} removed
     * ({@link Referers#sanitize}), the request's scheme ({@link #requestScheme}), and {@code x-forwarded-client-cert}
     * as the {@code forward_client_cert_details} says for the connection's client certificate
     * ({@link RouterRequest#clientCertificate}: under SANITIZE, or without one, a caller's is gone, so that no route
     * or RBAC policy reads it), and its {@code via} appended; nothing for bytes to a {@code tcp_proxy}.
     */
    private static void connectionManagerRequest(RouterRequest req, boolean upgrade) {
        if (!req.opaque) {
            removeHopByHop(req.headers, upgrade);
            req.headers.remove(HeaderNames.TRANSFER_ENCODING);
            Referers.sanitize(req.headers);
            req.scheme = requestScheme(req.scheme, "HTTP/2".equals(req.protocol),
                    req.headers.get(HeaderNames.X_FORWARDED_PROTO));
            ForwardedClientCert.apply(req.headers, req.forwardClientCert, req.peerCertificate,
                    req.clientCertElement);
            if (req.serverHeader != null) {
                appendVia(req.headers, req.serverHeader); // route matchers see it, as Envoy's
            }
        }
    }

    /**
     * A request's {@code :scheme} as Envoy's connection manager sets it (mutateRequestHeaders,
     * source/common/http/conn_manager_utility.cc): an HTTP/2 request's own ({@code connectionScheme}); an HTTP/1
     * request, to which its codec gives none, takes its {@code x-forwarded-proto} when that is {@code http} or
     * {@code https} (any case), else the connection's. Route matchers on {@code :scheme}, redirects, filters and the
     * access log read it.
     */
    public static String requestScheme(String connectionScheme, boolean http2, String forwardedProto) {
        if (http2 || forwardedProto == null) {
            return connectionScheme;
        }
        if (forwardedProto.equalsIgnoreCase("https")) {
            return "https";
        }
        return forwardedProto.equalsIgnoreCase("http") ? "http" : connectionScheme;
    }

    /** The rest of {@link #relay}, once the filters before the router decided. */
    private Relay relayAuthorized(RouterRequest req, RouteTable routes, RouteResult result, ClusterManager clusters,
                                  RbacFilter.Verdict verdict) {
        RbacFilter.Denial denied = verdict.denial();
        if (denied != null) {
            // answered as the router answers any request a filter refused: the route's response header rules too
            Exchange ex = startExchange(req);
            ex.table = routes;
            ex.route = result;
            Promise<RouterResponse> refused = Promise.promise();
            denied(ex, denied, result, clusters, refused);
            return Relay.refused(refused.future().result());
        }
        if (verdict.path() != null) {
            req.uri = verdict.path(); // its query parameters changed, as Envoy's filter sets :path (as in forward)
        }
        RouterResponse limited = rateLimitReply(req, routes, result, clusters, false);
        if (limited != null) {
            return Relay.refused(limited);
        }
        // the header mutation filter, before the Lua filters, on the upgrade's head (the buffer filter holds no relay)
        mutateHeaders(req, result, routes, requestSoFar(req));
        if (req.lua != null) {
            // the Lua filters, right before the router, see the upgrade's head as any request's (no body: the bytes
            // after the head are the relay's); a script's respond() refuses the upgrade with its reply
            LuaFilter.Reply reply = req.lua.request(luaHead(req), luaInfo(req, result), result);
            if (reply != null) {
                Exchange ex = startExchange(req);
                ex.table = routes;
                ex.route = result;
                Promise<RouterResponse> answered = Promise.promise();
                luaReply(ex, answered, reply);
                return Relay.refused(answered.future().result());
            }
            if (req.lua.reroute() && routes != null) {
                result = routes.route(req, ThreadLocalRandom.current().nextLong());
            }
        }
        if (req.queryMutated && !validRequestTarget(req.uri)) {
            // as forward answers it: the head goes to the upstream as it is, and a query the header mutation filter
            // wrote back decoded may hold a space or a CR LF that would end its request line there
            Exchange ex = startExchange(req);
            ex.table = routes;
            ex.route = result;
            Promise<RouterResponse> refused = Promise.promise();
            badRequest(ex, refused, "invalid_request_target");
            return Relay.refused(refused.future().result());
        }
        RouteResult.Forward f = result instanceof RouteResult.Forward forward ? forward : null;
        UpstreamCluster cluster = f == null || f.cluster().isEmpty() ? null : clusters.cluster(f.cluster());
        Host host = cluster == null ? null : relayHost(req, f, cluster);
        if (host == null) {
            // no route, a redirect or a direct response, no such cluster, no healthy host: answered and reported as
            // the router answers any request so
            return Relay.refused(relayRefused(req, result, clusters));
        }
        RouterResponse started = relayStarted(req, routes, f, cluster, host);
        if (started.status() != 0) {
            return Relay.refused(started); // the cluster's max_requests breaker is full
        }
        String[] pathAndAuthority = relayHead(req, routes, f, cluster);
        return new Relay(null, started, f, cluster, host, pathAndAuthority[0], pathAndAuthority[1]);
    }

    /** The request counts in its connection manager's {@code downstream_rq_total}, and as active until it ends. */
    private static void requestStarted(RouterRequest req) {
        if (req.downstreamStats != null) {
            req.downstreamStats.requestStarted(req.protocol);
        }
    }

    /**
     * The exchange of a request that begins: counted in its connection manager's statistics, the caller's metadata
     * exchange headers read (inbound).
     */
    private static Exchange startExchange(RouterRequest req) {
        Exchange ex = new Exchange(req);
        // the connection manager's always_set_request_id_in_response, on any answer (a relay's 101, a local reply);
        // a forwarded request's adds a trusted x-envoy-force-trace (begin)
        ex.requestIdInResponse = req.alwaysSetRequestIdInResponse;
        requestStarted(req);
        readDownstreamPeer(ex);
        return ex;
    }

    /**
     * Inbound, as Istio's metadata exchange filter on a sidecar's inbound listener: the caller's
     * {@code x-envoy-peer-metadata} names the source of the request's metrics, and it and
     * {@code x-envoy-peer-metadata-id} are taken off the request before it reaches the application.
     */
    private static void readDownstreamPeer(Exchange ex) {
        RouterRequest req = ex.request;
        if (req.direction != StreamInfo.Direction.INBOUND) {
            return;
        }
        ex.downstreamPeer = dev.inmesh.runtime.stats.PeerMetadata.decode(
                req.headers.get(HeaderNames.X_ENVOY_PEER_METADATA));
        req.headers.remove(HeaderNames.X_ENVOY_PEER_METADATA);
        req.headers.remove(HeaderNames.X_ENVOY_PEER_METADATA_ID);
    }

    /** An original IP detection extension's rejection counted: {@code downstream_rq_rejected_via_ip_detection}. */
    private static void countDetectionRejected(RouterRequest req) {
        if (req.downstreamStats != null) {
            req.downstreamStats.rejectedViaIpDetection();
        }
    }

    private void begin(Exchange ex, RouteTable table, ClusterManager clusters, Promise<RouterResponse> promise,
                       Context ctx) {
        RouterRequest req = ex.request;
        if (req.pathRedirect != null) {
            // the connection manager's UNESCAPE_AND_REDIRECT, before its filters
            req.pathRedirect.count(req.downstreamStats);
            reply(ex, promise, req.pathRedirect.status(), "", PathNormalizer.Refusal.DETAILS,
                    locationHeader(req.pathRedirect.location()));
            return;
        }
        if (req.detectionRejectStatus != 0) {
            // an original IP detection extension found no address and refuses the request, as Envoy's connection
            // manager before its filters
            countDetectionRejected(req);
            reply(ex, promise, req.detectionRejectStatus, "", DownstreamAddress.DETECTION_FAILED, null);
            return;
        }
        if (!validRequestTarget(req.uri)) {
            badRequest(ex, promise, "invalid_request_target");
            return;
        }
        // a request the connection manager takes for internal has its control headers honoured, as a trusted
        // in-JVM caller's; any other loses them before the filters see it, as Envoy's connection manager cleans it
        boolean honoured = options.trustEnvoyHeaders || req.internal;
        boolean forceTrace = honoured && req.headers.contains(FORCE_TRACE);
        if (req.internalRedirects == 0) {
            // as Envoy's connection manager, which cleans a stream's headers on its first pass only
            // (is_internally_created_, conn_manager_impl.cc): the request an internal redirect sends again keeps
            // what it made of them, its x-forwarded-client-cert element and its via once
            mutateRequestHeaders(req, table);
        }
        ex.requestIdInResponse |= forceTrace; // beside always_set_request_id_in_response (startExchange)
        if (req.tracer != null && tracing != null) {
            if (req.direction == StreamInfo.Direction.OUTBOUND) {
                req.tracer.inheritBoundSpan(req.headers);
            }
            // Envoy's connection manager: the trace decision, after the request id, and the request's span; x-envoy-
            // force-trace counts only from a caller whose control headers are trusted
            ex.span = req.tracer.start(req.headers, forceTrace, req.tracingIngress, req.authority, req.startTime,
                    req.startNanos, random(), req.downstreamStats);
            ex.egressTracing = !req.tracingIngress;
        }
        long randomValue = random().nextLong();
        RouteResult result = table.route(req, randomValue);
        ex.route = result;
        String upgrade = req.opaque ? null : Http1Admission.upgradeType(req.headers);
        if (upgrade != null && !(result instanceof RouteResult.NoRoute)
                && !upgradeEnabled(upgrade, req.websocketUpgrade, result)) {
            // an upgrade sent as a request (the in-JVM client's) whose route, or else whose connection manager,
            // does not take it: refused before the filters, as Envoy's connection manager refuses it
            countUpgradeFailed(req);
            reply(ex, promise, 403, "", "upgrade_failed", null);
            return;
        }
        if (req.localRateLimit.first() && rateLimited(ex, result, clusters, promise)) {
            return; // Istio's INSERT_BEFORE the connection manager: before the RBAC filters
        }
        if (req.rbac.external()) {
            // an external authorization filter among them: the rest waits for its authorizer
            if (req.stream != null) {
                // one that waits for the body (with_request_body) stops waiting when the caller leaves: its check
                // is not asked, and the exchange ends as gone (whenDecided)
                closeWhenCallerLeaves(req, req.stream, ctx);
            }
            whenDecided(ex, promise, req.rbac.authorize(rbacSubject(req), new MultiMapHeaders(req.headers),
                    req::removeTokenParameters, table, result, req.downstreamStats, clusters), v -> {
                        req.canceller = null;
                        if (v.denial() != null) {
                            denied(ex, v.denial(), result, clusters, promise);
                            return;
                        }
                        if (!v.responseHeaders().isEmpty()) {
                            ex.authzResponseHeaders = v.responseHeaders();
                        }
                        if (v.path() != null) {
                            req.uri = v.path(); // its query parameters changed, as Envoy's filter sets :path
                        }
                        // clear_route_cache: the headers the authorizer changed may choose another route
                        RouteResult routed = v.reroute() ? table.route(req, randomValue) : result;
                        ex.route = routed;
                        try {
                            authorized(ex, routed, randomValue, table, clusters, promise, ctx);
                        } catch (RuntimeException e) {
                            reply(ex, promise, 500, "", "internal_error", null); // as after a fault's delay
                        }
                    });
            return;
        }
        if (!req.rbac.isEmpty() && rbacDenied(ex, result, clusters, promise)) {
            return;
        }
        authorized(ex, result, randomValue, table, clusters, promise, ctx);
    }

    /**
     * What the connection manager makes of a forwarded request's headers before its route and its filters: a
     * caller's control headers, {@code x-envoy-internal} and the route configuration's {@code internal_only_headers}
     * off a request it does not take for internal (unless its control headers are trusted), the request id, the
     * downstream's scheme as {@code x-forwarded-proto} when the caller sent none (which the filters, a local reply's
     * span and the upstream see), the rest of {@link #connectionManagerRequest}, and its {@code via}.
     */
    private void mutateRequestHeaders(RouterRequest req, RouteTable table) {
        if (req.opaque) {
            return; // bytes to a tcp_proxy: no connection manager reads or cleans the request
        }
        if (req.internal) {
            req.headers.set(X_ENVOY_INTERNAL, "true");
        } else {
            req.headers.remove(X_ENVOY_INTERNAL);
            if (!options.trustEnvoyHeaders) {
                removeControlHeaders(req);
                for (String name : table.config().internalOnlyHeaders()) {
                    req.headers.remove(name);
                }
            }
        }
        ensureRequestId(req);
        if (!req.headers.contains(HeaderNames.X_FORWARDED_PROTO)) {
            req.headers.set(HeaderNames.X_FORWARDED_PROTO, req.scheme);
        }
        connectionManagerRequest(req, Http1Admission.upgradeType(req.headers) != null);
    }

    /**
     * Goes on with {@code next} once filters that waited for a service (an authorizer, the rate limit service)
     * decided, unless the exchange ended or its caller left meanwhile (then answered as gone; {@code decided} fails
     * when it left while an authorizer waited for its body).
     */
    private void whenDecided(Exchange ex, Promise<RouterResponse> promise, Future<RbacFilter.Verdict> decided,
                             java.util.function.Consumer<RbacFilter.Verdict> next) {
        decided.onComplete(ar -> {
            if (ex.done) {
                return;
            }
            if (ex.request.cancelled || ar.failed()) {
                callerGone(ex, promise); // failed: the caller left while an authorizer waited for its body
                return;
            }
            next.accept(ar.result());
        });
    }

    /** The rest of {@link #begin}, once the authentication and authorization filters let the request go on. */
    private void authorized(Exchange ex, RouteResult result, long randomValue, RouteTable table,
                            ClusterManager clusters, Promise<RouterResponse> promise, Context ctx) {
        RouterRequest req = ex.request;
        if (req.corsFirst && result instanceof RouteResult.Forward f && cors(ex, f, clusters, promise)) {
            return; // a CORS filter before the fault filter: its preflight answer comes before any fault
        }
        FaultInjection fault = FaultFilter.settings(req.faultFilter, result);
        if (fault != null && faults.matches(fault, result, req)) {
            if (result instanceof RouteResult.Forward f && !f.cluster().isEmpty()) {
                // as Envoy's connection manager, which names the route's cluster before its filters run: an answer
                // of the fault filter counts for it (nothing is charged to its upstream statistics)
                ex.cluster = clusters.cluster(f.cluster());
                ex.clusterName = ex.cluster == null ? null : f.cluster();
            }
            // as Envoy's filter, the response rate limit is set up first, then a delay, then an abort
            long kbps = FaultFilter.responseRateKbps(fault, req, random().nextLong());
            if (kbps > 0 && activateFault(ex, fault)) {
                if (req.downstreamStats != null) {
                    req.downstreamStats.responseRateLimitInjected();
                }
                ex.responseRateKbps = kbps;
            }
            long delay = FaultFilter.delayMillis(fault, req, random().nextLong());
            if (delay > 0 && activateFault(ex, fault)) {
                if (req.downstreamStats != null) {
                    req.downstreamStats.delayInjected(FaultFilter.downstreamCluster(fault, req));
                }
                delay(ex, fault, delay,
                        () -> routed(ex, result, randomValue, table, clusters, promise, ctx), promise, ctx);
                return;
            }
            if (abortFault(ex, fault, promise)) {
                return;
            }
        }
        routed(ex, result, randomValue, table, clusters, promise, ctx);
    }

    /**
     * Envoy's JWT authentication filter and RBAC filters, which Istio puts first in a connection manager (the JWT
     * filter, then its DENY policies in one RBAC filter, its ALLOW policies in the next): the first to refuse the
     * request answers it, the JWT filter {@code 401} (or {@code 403}) with jwt_verify_lib's words, its
     * {@code www-authenticate} header and {@code jwt_authn_access_denied{...}}, an RBAC filter {@code 403 RBAC: access
     * denied} with {@code rbac_access_denied_matched_policy[...]}; a filter's answer without the route's response
     * header rules, and nothing goes upstream. As the fault filter's answers, it counts for the route's cluster.
     */
    private boolean rbacDenied(Exchange ex, RouteResult result, ClusterManager clusters,
                               Promise<RouterResponse> promise) {
        RbacFilter.Denial denied = authorize(ex.request, ex.table, result);
        if (denied == null) {
            return false;
        }
        denied(ex, denied, result, clusters, promise);
        return true;
    }

    /**
     * The answer of a filter that refused a request, counted for the route's cluster, with its response flag and,
     * where the route forwards, the route's response header rules (Envoy's local reply applies the route entry's; a
     * redirect or direct response has none); an external service's (an authorizer's, the rate limit service's) with
     * its own headers over those; then the filter's own ({@link RbacFilter.Denial#replyHeaders}), reading the
     * exchange.
     */
    private void denied(Exchange ex, RbacFilter.Denial denied, RouteResult result, ClusterManager clusters,
                        Promise<RouterResponse> promise) {
        if (result instanceof RouteResult.Forward f && !f.cluster().isEmpty()) {
            ex.cluster = clusters.cluster(f.cluster());
            ex.clusterName = ex.cluster == null ? null : f.cluster();
        }
        ex.filterReply = !(result instanceof RouteResult.Forward);
        if (denied.flag() != null) {
            ex.flags.add(denied.flag());
        }
        if (denied.external()) {
            ex.authzDenialHeaders = denied.headers();
        }
        if (denied.replyHeaders() != null) {
            ex.localReplyHeaders = h -> denied.replyHeaders().applyOn(h, denied.status(), ex);
        }
        reply(ex, promise, denied.status(), denied.body(), denied.details(), denialHeaders(denied));
    }

    /** Adds headers given as names and values in pairs (an external authorizer's denial's); null adds nothing. */
    public static void addHeaders(MultiMap h, java.util.List<String> pairs) {
        if (pairs == null) {
            return;
        }
        for (int i = 0; i + 1 < pairs.size(); i += 2) {
            h.add(pairs.get(i), pairs.get(i + 1));
        }
    }

    /**
     * Puts headers given as names and values in pairs in place of any of the same names (every value of a name
     * repeated in the pairs is kept): an external authorizer's denial over the local reply's own headers.
     */
    public static void replaceHeaders(MultiMap h, java.util.List<String> pairs) {
        for (int i = 0; i + 1 < pairs.size(); i += 2) {
            h.remove(pairs.get(i));
        }
        addHeaders(h, pairs);
    }

    /**
     * The headers of a filter's refusal: the JWT filter's {@code www-authenticate}, an external authorizer's own
     * headers; null for none.
     */
    public static MultiMap denialHeaders(RbacFilter.Denial denied) {
        if (denied.wwwAuthenticate() == null && denied.headers().isEmpty()) {
            return null;
        }
        MultiMap h = MultiMap.caseInsensitiveMultiMap();
        if (denied.wwwAuthenticate() != null) {
            h.set("www-authenticate", denied.wwwAuthenticate());
        }
        addHeaders(h, denied.headers());
        return h;
    }

    /**
     * Envoy's local rate limit filter: a checked request takes a token from the bucket of its route's config (else
     * the filter's own); one that finds none where the filter is enforced is answered with the config's status (429)
     * and {@code local_rate_limited}, response flag RL, the route's response header rules (where it forwards: Envoy's
     * local reply applies the route entry's, which a redirect or direct response has none of) and then the config's
     * response headers, and nothing goes upstream. As the RBAC filters' answers, it counts for the route's cluster.
     * True when it answered.
     */
    private boolean rateLimited(Exchange ex, RouteResult result, ClusterManager clusters,
                                Promise<RouterResponse> promise) {
        RouterRequest req = ex.request;
        LocalRateLimitFilter.Outcome o = req.localRateLimit.check(Router::rbacSubject, req, ex.table, result,
                req.downstreamStats, new MultiMapHeaders(req.headers), ex);
        if (o == null) {
            return false;
        }
        ex.rateLimit = o;
        if (!o.refused()) {
            return false;
        }
        if (result instanceof RouteResult.Forward f && !f.cluster().isEmpty()) {
            ex.cluster = clusters.cluster(f.cluster());
            ex.clusterName = ex.cluster == null ? null : f.cluster();
        }
        ex.flags.add(ResponseFlag.RATE_LIMITED);
        ex.filterReply = !(result instanceof RouteResult.Forward);
        ex.localReplyHeaders = h -> o.applyRefusalHeaders(h, ex.grpc, ex);
        reply(ex, promise, o.status(), LocalRateLimitFilter.BODY, LocalRateLimitFilter.DETAILS, null);
        return true;
    }

    /**
     * Runs the request's JWT authentication and RBAC filters ({@link RouterRequest#rbac}) for its route, counting
     * their statistics: null when it may go on (its headers as the JWT filter left them), else the refusal. The router
     * runs them on every request it forwards, and on a request relayed from its head on ({@link #relay}).
     */
    private static RbacFilter.Denial authorize(RouterRequest req, RouteTable table, RouteResult result) {
        return req.rbac.isEmpty() ? null : req.rbac.authorize(rbacSubject(req), new MultiMapHeaders(req.headers),
                req::removeTokenParameters, table, result, req.downstreamStats);
    }

    /**
     * As {@link #authorize(RouterRequest, RouteTable, RouteResult)}, with the external authorization filters too,
     * which ask their authorizers through {@code clusters}, and the global rate limit filter wherever it stands (a
     * request relayed from its head on passes no fault or CORS filter): complete at once when none of those runs.
     */
    private static Future<RbacFilter.Verdict> authorize(RouterRequest req, RouteTable table, RouteResult result,
                                                       ClusterManager clusters) {
        if (req.rbac.isEmpty()) {
            return Future.succeededFuture(RbacFilter.Verdict.ALLOWED);
        }
        Future<RbacFilter.Verdict> v = req.rbac.authorize(rbacSubject(req), new MultiMapHeaders(req.headers),
                req::removeTokenParameters, table, result, req.downstreamStats, clusters);
        if (!req.rbac.hasLateRateLimit()) {
            return v;
        }
        // a request relayed from its head on passes no fault or CORS filter: the global rate limit filter that
        // stands after them checks it once the authorization filters let it through
        return v.compose(allowed -> allowed.denial() != null ? Future.succeededFuture(allowed)
                : req.rbac.lateRateLimit(rbacSubject(req), new MultiMapHeaders(req.headers), table, result,
                        clusters).map(limited -> limited.denial() != null ? limited : allowed.with(limited)));
    }

    /**
     * Envoy's local rate limit filter on a request the router does not forward itself (a WebSocket upgrade relayed
     * from its head on), at one of its two places: {@code first} (before the RBAC filters) or after them. Null when the
     * connection manager's filter is not there, does not check the request or lets it go on (with the not-enforced
     * headers, if it found no token); else its refusal, the local reply {@link #forward} would make, counted for the
     * route's cluster.
     */
    private RouterResponse rateLimitReply(RouterRequest req, RouteTable table, RouteResult result,
                                         ClusterManager clusters, boolean first) {
        if (req.localRateLimit.isEmpty() || req.localRateLimit.first() != first) {
            return null;
        }
        Exchange ex = new Exchange(req);
        ex.requestIdInResponse = req.alwaysSetRequestIdInResponse; // as startExchange, which runs once it refuses
        ex.table = table;
        ex.route = result;
        Promise<RouterResponse> promise = Promise.promise();
        if (!rateLimited(ex, result, clusters, promise)) {
            return null;
        }
        requestStarted(req);
        readDownstreamPeer(ex);
        return promise.future().result();
    }

    /** What the RBAC filters read of a request: its addresses (the original destination's), SNI and peer. */
    private static RbacFilter.Subject rbacSubject(RouterRequest req) {
        String local = req.downstreamLocalAddress;
        if (local == null && req.originalDestination != null) {
            // the in-JVM client's request: where it was going stands for the address a sidecar captured it at
            return new RbacFilter.Subject(req, IpLiterals.unbracketed(req.originalDestination.address()),
                    req.originalDestination.port(), req.sourceIp(), req.requestedServerName, () -> req.peerIdentity);
        }
        int colon = local == null ? -1 : local.lastIndexOf(':');
        int port = 0;
        if (colon > 0) {
            try {
                port = Integer.parseInt(local.substring(colon + 1));
            } catch (NumberFormatException e) {
                port = 0;
            }
        }
        String localIp = colon > 0 ? local.substring(0, colon) : local;
        RbacFilter.PeerIdentity peer = req.peerIdentity;
        RbacFilter.PeerIdentity own = req.localIdentity;
        return new RbacFilter.Subject(req, localIp, port, req.sourceIp(), req.sourcePort(), req.requestedServerName,
                () -> peer).withLocal(() -> own).withDirectPeer(req.directRemoteIp());
    }

    /**
     * Envoy's fault filter delay, on the exchange's context: a timer, then an abort if one applies, else the request
     * goes on (and no longer counts as an active fault). The route timeout starts after it, as Envoy's router starts
     * it only once the fault filter lets the request through. A caller that leaves during the delay ends it.
     */
    private void delay(Exchange ex, FaultInjection fault, long millis, Runnable proceed,
                       Promise<RouterResponse> promise, Context ctx) {
        RouterRequest req = ex.request;
        ex.flags.add(ResponseFlag.DELAY_INJECTED);
        long timer = vertx.setTimer(millis, id -> {
            req.canceller = null;
            if (ex.done) {
                return;
            }
            if (abortFault(ex, fault, promise)) {
                return;
            }
            if (ex.responseRateKbps == 0) {
                releaseFault(ex); // a response rate limit keeps the fault active until the response ends
            }
            // as Envoy's router, which hears of the request only now: the upstream service time and the route
            // timeout's remainder run from here
            ex.requestCompleteNanos = System.nanoTime();
            if (req.cancelled) {
                callerGone(ex, promise);
                return;
            }
            try {
                proceed.run();
            } catch (RuntimeException e) {
                reply(ex, promise, 500, "", "internal_error", null); // as forward does for the undelayed
            }
        });
        req.canceller = () -> onContext(ctx, () -> {
            if (!ex.done && vertx.cancelTimer(timer)) {
                callerGone(ex, promise);
            }
        });
        if (req.cancelled) {
            req.canceller.run(); // the caller left before the delay began
        }
    }

    /**
     * Envoy's fault filter abort, when the fault has one and its percentage picks this request (and
     * {@code max_active_faults} allows it): a local reply with its HTTP status and {@code fault filter abort}; a gRPC
     * status makes it a trailers-only gRPC answer with that status for a gRPC request, 200 for any other.
     */
    private boolean abortFault(Exchange ex, FaultInjection fault, Promise<RouterResponse> promise) {
        FaultInjection.Abort abort = FaultFilter.abort(fault, ex.request, random().nextLong());
        if (abort == null || !activateFault(ex, fault)) {
            return false;
        }
        ex.flags.add(ResponseFlag.FAULT_INJECTED);
        if (ex.request.downstreamStats != null) {
            ex.request.downstreamStats.abortInjected(FaultFilter.downstreamCluster(fault, ex.request));
        }
        // as Envoy's local reply, the route entry's response header rules: a redirect or direct response has none
        ex.filterReply = !(ex.route instanceof RouteResult.Forward);
        MultiMap extra = abort.httpStatus() != 0 || !ex.grpc ? null : MultiMap.caseInsensitiveMultiMap()
                .set(HeaderNames.GRPC_STATUS, Integer.toString(abort.grpcStatus()));
        reply(ex, promise, abort.httpStatus() != 0 ? abort.httpStatus() : 200, FaultFilter.ABORT_BODY,
                FaultFilter.ABORT_DETAILS, extra);
        return true;
    }

    /** Counts the exchange as an active fault of its fault filter, once; false when max_active_faults are reached. */
    private boolean activateFault(Exchange ex, FaultInjection fault) {
        if (ex.activeFault != null) {
            return true;
        }
        RouterRequest req = ex.request;
        java.util.concurrent.atomic.AtomicLong active = faults.activeFaults(req.statPrefix, req.downstreamStats);
        if (!FaultFilter.tryActivate(active, fault, req.downstreamStats)) {
            return false;
        }
        ex.activeFault = active;
        return true;
    }

    /** The requests in a fault of the fault filter of connection managers with this stat prefix. */
    long activeFaults(String statPrefix) {
        return faults.active(statPrefix);
    }

    private void releaseFault(Exchange ex) {
        if (ex.activeFault != null) {
            ex.activeFault.decrementAndGet();
            ex.activeFault = null;
        }
    }

    /**
     * Envoy's CORS filter, before the router: answers a preflight from an allowed origin (200, no body,
     * {@code cors_response}), counted for the route's cluster as the fault filter's answers; otherwise notes the
     * headers the response gets. True when it answered.
     */
    private boolean cors(Exchange ex, RouteResult.Forward f, ClusterManager clusters,
                         Promise<RouterResponse> promise) {
        RouterRequest req = ex.request;
        CorsFilter.Outcome o = cors.apply(f, req.method.name(), req::header, () -> random().nextLong(),
                req.downstreamStats);
        if (o == null) {
            return false;
        }
        if (!o.preflight()) {
            ex.cors = o;
            return false;
        }
        if (!f.cluster().isEmpty()) {
            ex.cluster = clusters.cluster(f.cluster());
            ex.clusterName = ex.cluster == null ? null : f.cluster();
        }
        ex.filterReply = true;
        reply(ex, promise, 200, "", CorsFilter.PREFLIGHT_DETAILS, o.headers());
        return true;
    }

    /** The rest of {@link #begin}, once the fault filter let the request through. */
    private void routed(Exchange ex, RouteResult result, long randomValue, RouteTable table,
                        ClusterManager clusters, Promise<RouterResponse> promise, Context ctx) {
        RouterRequest req = ex.request;
        DownstreamStats ds = req.downstreamStats;
        // a local rate limit filter after the RBAC, fault and CORS filters (Istio's INSERT_BEFORE the router): after
        // the CORS filter's preflight answer, which only a forwarded request gets
        boolean rateLimitLast = !req.localRateLimit.isEmpty() && !req.localRateLimit.first();
        if (rateLimitLast && !(req.corsFilter && result instanceof RouteResult.Forward)
                && rateLimited(ex, result, clusters, promise)) {
            return;
        }
        if (!(result instanceof RouteResult.Forward f)) {
            // the router answers it (no route, a redirect, a direct response) after the Lua filters before it, as
            // Envoy's router sends its local reply when the filters before it let the request through
            luaThenRoute(ex, result, randomValue, table, clusters, promise, ctx);
            return;
        }
        if (req.corsFilter && (!req.corsFirst && cors(ex, f, clusters, promise)
                || rateLimitLast && rateLimited(ex, result, clusters, promise))) {
            return;
        }
        if (req.rbac.hasLateRateLimit()) {
            // the global rate limit filter where INSERT_BEFORE the router puts it: after the fault and CORS filters
            Future<RbacFilter.Verdict> limit = req.rbac.lateRateLimit(rbacSubject(req),
                    new MultiMapHeaders(req.headers), table, result, clusters);
            if (!limit.isComplete()) {
                whenDecided(ex, promise, limit, v -> {
                    try {
                        if (!lateLimited(ex, v, result, clusters, promise)) {
                            luaThenRoute(ex, f, randomValue, table, clusters, promise, ctx);
                        }
                    } catch (RuntimeException e) {
                        reply(ex, promise, 500, "", "internal_error", null); // as after a fault's delay
                    }
                });
                return;
            }
            if (lateLimited(ex, limit.result(), result, clusters, promise)) {
                return;
            }
        }
        luaThenRoute(ex, f, randomValue, table, clusters, promise, ctx);
    }

    /**
     * Envoy's Lua filters, right before the router (where Istio's {@code INSERT_BEFORE} the router puts them): their
     * request scripts see and change the request's head; one that responds answers the request
     * ({@code lua_response}, its headers and body as the script gave them); changed headers choose the route again
     * where the filter clears the route cache (Envoy's {@code clear_route_cache}, true by default). Then the router,
     * which forwards the request or answers it itself (no route, a redirect, a direct response: as Envoy's router
     * finds the route after the filters before it ran, and its local reply passes their response scripts).
     * When the route runs a script that may call {@code body()}, a body still arriving is held whole first, as
     * Envoy's filter buffers it: one longer than the request's buffer limit ({@link #requestBufferLimit}, the
     * connection manager's) is answered {@code 413} as Envoy's connection manager answers a filter's buffer overflow,
     * and a caller that leaves meanwhile ends the request as gone. Before them the header mutation filter's request
     * mutations and the buffer filter ({@link BufferFilter}: the same hold, under its own limit, which the Lua
     * filters' hold then has too; a {@code content-length} set where the request had none), in their chain order.
     */
    private void luaThenRoute(Exchange ex, RouteResult f, long randomValue,
                              RouteTable table, ClusterManager clusters, Promise<RouterResponse> promise,
                              Context ctx) {
        RouterRequest req = ex.request;
        boolean mutateFirst = !req.headerMutation.afterBuffer();
        if (mutateFirst) {
            mutateHeaders(req, f, table, ex);
        }
        RequestBodyStream stream = req.stream;
        // the buffer filter holds a body (a request that ended with its head has none) under its own limit, which
        // is the request's buffer limit from then on, the Lua filters' body() included
        boolean hasBody = stream != null || req.body != null && req.body.length() > 0;
        long buffer = hasBody ? req.buffer.limit(f, table) : -1;
        boolean luaBody = req.lua != null && req.lua.readsBody(f);
        if (buffer < 0 && !luaBody || stream != null && ExtAuthzFilter.upgrade(req)) {
            // nothing to hold, or a stream of bytes: not held
            if (!mutateFirst) {
                mutateHeaders(req, f, table, ex);
            }
            lua(ex, f, null, randomValue, table, clusters, promise, ctx);
            return;
        }
        long limit = buffer >= 0 ? buffer : requestBufferLimit(req, f);
        Future<Buffer> held;
        IdleTimer idle = stream == null ? null : holdIdle(ex, f, promise);
        if (stream == null) {
            held = Future.succeededFuture(req.body); // whole, or none
        } else {
            closeWhenCallerLeaves(req, stream, ctx);
            held = stream.hold(RequestBody.pastLimit(limit), idle == null ? null : idle::touch);
        }
        held.onComplete(ar -> {
            if (stream != null) {
                req.canceller = null;
            }
            if (idle != null) {
                idle.cancel();
            }
            if (ex.done) {
                return;
            }
            if (req.cancelled || ar.failed()) {
                callerGone(ex, promise);
                return;
            }
            if (RequestBody.tooLarge(ar.result(), limit, req.downstreamStats)) {
                reply(ex, promise, 413, ExtAuthzFilter.TOO_LARGE_BODY, ExtAuthzFilter.TOO_LARGE_DETAILS, null);
                return;
            }
            if (buffer >= 0) {
                BufferFilter.contentLength(req.headers, ar.result());
            }
            if (!mutateFirst) {
                mutateHeaders(req, f, table, ex);
            }
            LuaFilter.Body body = !luaBody ? null
                    : LuaFilter.Body.of(ar.result(), stream != null ? stream::replace : b -> req.body = b);
            try {
                lua(ex, f, body, randomValue, table, clusters, promise, ctx);
            } catch (RuntimeException e) {
                reply(ex, promise, 500, "", "internal_error", null); // as after a fault's delay
            }
        });
    }

    /**
     * The stream idle timeout while {@link #luaThenRoute} holds a body still arriving, as Envoy's connection manager
     * times a stream from its start whatever filter waits for its body: the route's {@code idle_timeout}, else the
     * connection manager's {@code stream_idle_timeout} (0: none, null returned), each chunk activity. At the limit the
     * caller gets the connection manager's {@code stream timeout} (408, or 504 if the body ended; SI,
     * {@code stream_idle_timeout}, {@code downstream_rq_idle_timeout}) and the body is dropped; the exchange's own
     * timer starts when it forwards.
     */
    private IdleTimer holdIdle(Exchange ex, RouteResult route, Promise<RouterResponse> promise) {
        Duration idle = streamIdleTimeout(ex.request, route);
        if (idle == null || idle.isZero()) {
            return null;
        }
        return new IdleTimer(vertx, idle.toMillis(), () -> {
            if (ex.done) {
                return;
            }
            if (ex.request.downstreamStats != null) {
                ex.request.downstreamStats.idleTimeout();
            }
            ex.flags.add(ResponseFlag.STREAM_IDLE_TIMEOUT);
            reply(ex, promise, ex.streamTimeoutStatus(), "stream timeout", "stream_idle_timeout", null);
        }).start();
    }

    /**
     * A relayed request so far, as header values' command operators read it before the router made its exchange:
     * as a new exchange of it reads it.
     */
    private static dev.inmesh.runtime.accesslog.AccessLogEntry.Source requestSoFar(RouterRequest req) {
        return (status, headers, body) -> localReplyEntry(new Exchange(req), status, headers, body);
    }

    /**
     * The header mutation filter's request mutations, on the request's headers and path (a {@code CONNECT} has no
     * {@code :path} for its query parameter mutations); the route stays the one chosen before, as Envoy's filter
     * leaves the route cache alone; their values' command operators read {@code request}, the request so far.
     */
    private static void mutateHeaders(RouterRequest req, RouteResult result, RouteTable table,
                                      dev.inmesh.runtime.accesslog.AccessLogEntry.Source request) {
        HeaderMutationFilter.Applied applied = req.headerMutation.request(req.headers,
                req.method == io.vertx.core.http.HttpMethod.CONNECT ? null : req.uri, result, table, request);
        req.headerMutations = applied.chosen();
        if (applied.path() != null && !applied.path().equals(req.uri)) {
            req.uri = applied.path();
            req.queryMutated = true;
        }
    }

    /** The Lua filters' request scripts, {@code body} held for them (or null), then the router. */
    private void lua(Exchange ex, RouteResult route, LuaFilter.Body body, long randomValue,
                     RouteTable table, ClusterManager clusters, Promise<RouterResponse> promise, Context ctx) {
        RouterRequest req = ex.request;
        if (req.lua != null) {
            LuaFilter.Reply reply = req.lua.request(luaHead(req), luaInfo(req, route), route, body);
            if (reply != null) {
                luaReply(ex, promise, reply);
                return;
            }
            if (req.lua.reroute()) {
                route = table.route(req, randomValue);
                ex.route = route;
            }
        }
        if (!answeredUnforwarded(ex, route, promise)) {
            forward(ex, (RouteResult.Forward) route, randomValue, table, clusters, promise, ctx);
        }
    }

    /** A request's head as a Lua request script sees it: its headers, its pseudo-headers, {@code :path} writable. */
    private static LuaFilter.Head luaHead(RouterRequest req) {
        return new LuaFilter.Head() {
            @Override
            public MultiMap headers() {
                return req.headers;
            }

            @Override
            public String pseudo(String name) {
                return switch (name) {
                    case ":path" -> req.uri;
                    case ":method" -> req.method.name();
                    case ":authority" -> req.authority;
                    case ":scheme" -> req.scheme;
                    default -> null;
                };
            }

            @Override
            public boolean setPseudo(String name, String value) {
                if (!name.equals(":path") || !validRequestTarget(value)) {
                    return false;
                }
                req.uri = value;
                return true;
            }
        };
    }

    /** A Lua script's {@code respond()}: its headers and body as it gave them, not the route's rules. */
    private void luaReply(Exchange ex, Promise<RouterResponse> promise, LuaFilter.Reply reply) {
        ex.filterReply = true;
        reply(ex, promise, reply.status(), reply.body(), LuaFilter.DETAILS, reply.headers());
    }

    /** What a Lua script's {@code streamInfo()} tells of the exchange's request. */
    private static LuaFilter.Info luaInfo(RouterRequest req, RouteResult route) {
        String local = req.downstreamLocalAddress != null ? req.downstreamLocalAddress
                : req.originalDestination == null ? null
                : req.originalDestination.address() + ":" + req.originalDestination.port();
        return new LuaFilter.Info(req.protocol, local, req.physicalPeer(), req.remoteAddress,
                req.requestedServerName, routeName(route), req.directLocalAddress, req.downstreamTls,
                req.downstreamMutualTls);
    }

    /** The name of the route a result came from (a redirect's and a direct response's too), or null. */
    private static String routeName(RouteResult result) {
        dev.inmesh.api.config.route.Route r = RouteResult.routeOf(result);
        return r == null ? null : r.name();
    }

    /**
     * The encoding of the filters right before the router, right after the router's: Envoy's Lua filters' response
     * scripts over a response's head (its body held for them, or null; none when {@code lua} is false), then the
     * header mutation filter's response mutations.
     */
    private static void lateFiltersResponse(Exchange ex, int status, MultiMap h, LuaFilter.Body body, boolean lua) {
        RouterRequest req = ex.request;
        if (lua && req.lua != null) {
            req.lua.response(LuaFilter.responseHead(h, () -> status), luaInfo(req, ex.route), body);
        }
        req.headerMutation.response(h, req.headerMutations, ex.route, ex.table, status, ex);
    }

    /**
     * The answer to a response whose body outgrew the buffer of a filter that needs it whole before its headers go
     * on (a Lua response script's {@code body()}), as Envoy's connection manager answers it: a 500
     * {@code Internal Server Error} made by the connection manager itself (not through the filters: no route header
     * rules, no response scripts), {@code response_payload_too_large}, counted in {@code rs_too_large}, rewritten by
     * the connection manager's {@code local_reply_config} (as Envoy's {@code sendDirectLocalReply} rewrites it); a
     * gRPC caller gets it as a trailers-only gRPC response.
     */
    private static RouterResponse responseTooLarge(Exchange ex) {
        ex.responseCodeDetails = "response_payload_too_large";
        if (ex.request.downstreamStats != null) {
            ex.request.downstreamStats.responseTooLarge();
        }
        String text = "Internal Server Error";
        MultiMap h = MultiMap.caseInsensitiveMultiMap();
        int status = 500;
        boolean trailersOnly = ex.grpc && ex.request.grpcWeb == null;
        if (ex.request.localReply != null) {
            LocalReply.Rewritten r = rewriteLocalReply(ex, status, text, h, trailersOnly);
            status = r.status();
            text = r.body();
        } else if (!trailersOnly) {
            h.set("content-type", "text/plain").set("content-length", Integer.toString(text.length()));
        }
        Buffer b;
        if (trailersOnly) {
            Grpc.toTrailersOnly(h, status, text, ex.request.method == io.vertx.core.http.HttpMethod.HEAD);
            status = 200;
            b = Buffer.buffer();
        } else {
            b = Buffer.buffer(status == 204 ? "" : text);
        }
        connectionManagerHeaders(ex, h);
        return new RouterResponse(status, h, null, sentBody(ex, h, b), ex);
    }

    /**
     * What of a local reply's body {@code b} is sent: none to a HEAD request, as Envoy answers one with the reply's
     * headers alone (encodeLocalReply, source/common/http/utility.cc), their content-length the body's (none for an
     * empty body, as Envoy's HTTP/1 codec adds no {@code content-length: 0} to an answer to a HEAD).
     */
    private static Buffer sentBody(Exchange ex, MultiMap h, Buffer b) {
        if (ex.request.method != io.vertx.core.http.HttpMethod.HEAD) {
            return b;
        }
        if (b.length() == 0) {
            h.remove("content-length");
        }
        return Buffer.buffer();
    }

    /**
     * The router's answer to a request its route does not forward: no route (404, NR), a redirect or a direct
     * response. False when the route forwards it.
     */
    private boolean answeredUnforwarded(Exchange ex, RouteResult result, Promise<RouterResponse> promise) {
        DownstreamStats ds = ex.request.downstreamStats;
        if (result instanceof RouteResult.NoRoute) {
            ex.flags.add(ResponseFlag.NO_ROUTE_FOUND);
            if (ds != null) {
                ds.noRoute();
            }
            reply(ex, promise, 404, "", "route_not_found", null);
            return true;
        }
        if (result instanceof RouteResult.Redirect r) {
            if (ds != null) {
                ds.redirect();
            }
            MultiMap h = MultiMap.caseInsensitiveMultiMap().set("location", r.location());
            reply(ex, promise, r.status(), "", "direct_response", h);
            return true;
        }
        if (result instanceof RouteResult.DirectResponse d) {
            if (ds != null) {
                ds.directResponse();
            }
            reply(ex, promise, d.status(), d.body(), "direct_response", d.location() == null ? null
                    : MultiMap.caseInsensitiveMultiMap().set("location", d.location()));
            return true;
        }
        return false;
    }

    /**
     * The route's cluster is not there: as Envoy, the exchange has no upstream cluster (the access log prints "-"), NC,
     * and the route's {@code cluster_not_found_response_code} (503 by default, 404 or 500 when the route says).
     */
    private void noCluster(Exchange ex, RouteResult.Forward f, Promise<RouterResponse> promise) {
        ex.flags.add(ResponseFlag.NO_CLUSTER_FOUND);
        if (ex.request.downstreamStats != null) {
            ex.request.downstreamStats.noCluster();
        }
        reply(ex, promise, f.action().clusterNotFoundStatus(), "", "cluster_not_found", null);
    }

    /** No host of the exchange's cluster can take it: UH, 503 charged to the cluster now; returns the answer. */
    private Runnable noHealthyUpstream(Exchange ex, Promise<RouterResponse> promise) {
        ex.flags.add(ResponseFlag.NO_HEALTHY_UPSTREAM);
        chargeLocalReply(ex, 503);
        return () -> reply(ex, promise, 503, "no healthy upstream", "no_healthy_upstream", null);
    }

    /**
     * The answer to a request the standalone proxy would relay itself (a WebSocket upgrade) when it cannot be relayed:
     * its route does not forward it (no route, a redirect, a direct response), the route's cluster is not there, or
     * no host of it can take the request ({@link #relayHost} found none). Answered, counted and reported (access log,
     * Istio's metrics) as the router answers any request in those cases.
     */
    private RouterResponse relayRefused(RouterRequest req, RouteResult result, ClusterManager clusters) {
        Exchange ex = startExchange(req);
        Promise<RouterResponse> promise = Promise.promise();
        RouteResult routed = result == null ? new RouteResult.NoRoute(null) : result;
        if (!answeredUnforwarded(ex, routed, promise)) {
            RouteResult.Forward f = (RouteResult.Forward) routed;
            ex.route = f;
            UpstreamCluster cluster = f.cluster().isEmpty() ? null : clusters.cluster(f.cluster());
            if (cluster == null) {
                noCluster(ex, f, promise);
            } else {
                ex.clusterName = f.cluster();
                ex.cluster = cluster;
                noHealthyUpstream(ex, promise).run();
            }
        }
        return promise.future().result();
    }

    /**
     * What the global rate limit filter decided after the fault and CORS filters: its refusal answers the request
     * (true); otherwise its response headers join those of the authorization filters.
     */
    private boolean lateLimited(Exchange ex, RbacFilter.Verdict v, RouteResult result, ClusterManager clusters,
                                Promise<RouterResponse> promise) {
        if (v.denial() != null) {
            denied(ex, v.denial(), result, clusters, promise);
            return true;
        }
        ex.authzResponseHeaders = ExtAuthzFilter.ResponseHeader.concat(ex.authzResponseHeaders, v.responseHeaders());
        return false;
    }

    /**
     * Whether Istio's peer metadata headers stay off a request to {@code cluster}, as Istio's peer metadata filter
     * keeps them: off a cluster whose {@code istio} metadata says {@code disable_mx: true} (istiod's, for a service
     * all of whose endpoints take HBONE), and, where the filter skips external clusters, off
     * {@code PassthroughCluster} and a cluster whose {@code istio} metadata says {@code external: true} (istiod's, for
     * a MESH_EXTERNAL ServiceEntry).
     */
    static boolean peerMetadataWithheld(boolean skipExternal, String clusterName, Cluster cluster) {
        if (Boolean.TRUE.equals(cluster.metadata().get("istio", "disable_mx"))) {
            return true;
        }
        return skipExternal && ("PassthroughCluster".equals(clusterName)
                || Boolean.TRUE.equals(cluster.metadata().get("istio", "external")));
    }

    /** The rest of {@link #routed} for a forwarded request the filters before the router let through. */
    private void forward(Exchange ex, RouteResult.Forward f, long randomValue, RouteTable table,
                         ClusterManager clusters, Promise<RouterResponse> promise, Context ctx) {
        RouterRequest req = ex.request;
        DownstreamStats ds = req.downstreamStats;
        UpstreamCluster cluster = f.cluster().isEmpty() ? null : clusters.cluster(f.cluster());
        if (cluster == null) {
            noCluster(ex, f, promise);
            return;
        }
        ex.clusterName = f.cluster();
        ex.cluster = cluster;
        // Envoy's router reads the control headers after the filters before it: a trusted caller's (an untrusted one's
        // went at the connection manager) and those a filter set (a Lua script, a header mutation, an authorizer)
        if (!req.routerFilter.strictCheckHeaders().isEmpty() && failsStrictCheck(ex, promise)) {
            return;
        }
        // (a tcp_proxy's request has no router to read them: they go upstream as they are)
        Control control = req.opaque ? Control.NONE
                : Control.read(req.headers, req.routerFilter.respectExpectedRqTimeout());
        if (!req.opaque && req.headers.contains(ALT_RESPONSE)) {
            ex.timeoutStatus = 204; // Envoy's router: any value asks for it
        }
        useBreakers(ex, cluster);
        if (req.compressor != null) {
            // the compressor filter, before the router: the route's settings say whether accept-encoding goes on
            CompressorFilter.removeAcceptEncoding(CompressorFilter.forRoute(req.compressor, req.compressorName, f),
                    req.headers);
        }

        // Request headers for upstream: rewrites, header rules, ids, attempt count.
        MultiMap rh = req.headers;
        for (AsciiString name : HOP_BY_HOP) {
            rh.remove(name);
        }
        sanitize(req);
        sanitizeTe(rh);
        RouteAction action = f.action();
        VirtualHost vh = f.virtualHost();
        RetryPolicy policy = action.retryPolicy() != null ? action.retryPolicy() : vh.retryPolicy();
        AttemptTimeouts timeouts = AttemptTimeouts.of(control, req, f);
        Duration timeout = timeouts.route();
        // as Envoy's router, the first attempt's headers go on the request before the route's header rules, which
        // may replace or remove them; a retry sets its own over the rules'
        firstAttemptHeaders(req, vh, action, ex.grpc, timeouts.firstExpectedMillis());
        Target target = upstreamTarget(req, f, table, ex);
        if (f.rewrittenPath() != null) {
            ex.rewrittenPath = target.path;
        }
        if (target.authority != null && !target.authority.equals(req.authority)) {
            ex.rewrittenAuthority = target.authority;
        }
        // a rewrite, or a filter's query parameters decoded into the path (as Envoy writes them), may leave a path
        // no request line can carry
        if ((f.rewrittenPath() != null || req.queryMutated) && !validRequestTarget(target.path)) {
            badRequest(ex, promise, "invalid_request_target");
            return;
        }
        if (!req.opaque && !req.headers.contains(HeaderNames.X_FORWARDED_PROTO)) {
            req.headers.set(HeaderNames.X_FORWARDED_PROTO, req.scheme);
        }
        if (ex.span != null) {
            ex.span.inject(req.headers, RouteResult.decorator(f)); // the trace context of this hop's span
        }
        peerMetadataHeaders(req, ex.clusterName, cluster);
        RetryState retry = policy == null && control.retryOn == null ? RetryState.NONE
                : new RetryState(policy, table.retryConditions(policy).withResponseHeaderNames(
                        control.retriableHeaderNames), control.maxRetries, control.retryOn,
                        control.retriableStatusCodes, random());
        if (!retry.enabledFor(req)) {
            retry = RetryState.NONE;
        }
        RequestMirror mirror = RequestMirror.select(this, vertx, clusters, req, target.path, target.authority, action,
                table, randomValue, timeout, ex.span, random());
        long bufferLimit = requestBufferLimit(req, f);
        // as Envoy's router, the body is kept for retries, mirrors and internal redirects
        boolean redirects = action.internalRedirectPolicy() != null;
        if ((retry != RetryState.NONE || mirror != null || redirects) && req.body != null
                && req.body.length() > bufferLimit) {
            // as Envoy's router: a body larger than its buffer limit is not kept, so the request is neither retried,
            // mirrored nor redirected
            var st = stats(ex);
            if (st != null) {
                st.retryOrShadowAbandoned();
            }
            retry = RetryState.NONE;
            mirror = null;
            redirects = false;
        }
        Long hash = action.hashPolicies().isEmpty() ? null
                : HashPolicies.hash(action.hashPolicies(), req.headers, req.remoteIp(), req.query(),
                        hashesHosts(cluster) ? c -> routingCookie(ex, c) : null, req::header);
        // the stateful session filter runs before the router: the host the request names, on the path as it came
        ex.session = req.statefulSession.begin(vh, f.route(), req.uri, req.headers);
        int priorityUpdates = retry.previousPrioritiesUpdateFrequency();
        Attempts attempts = new Attempts(ex, promise, ctx, retry, timeouts.perTry(), new LbContext(hash != null, hash == null ? 0 : hash,
                null, 1, cluster.requestDestination(req.headers::get, req.originalDestination),
                priorityUpdates > 0 ? new PreviousPriorities(priorityUpdates) : null),
                target, vh, action);
        attempts.perTryIdle = policy == null ? null : policy.perTryIdleTimeout();
        attempts.hedge = timeouts.hedge();
        attempts.redirects = redirects;
        attempts.clusters = clusters;
        // each attempt's own limit: a trusted caller's x-envoy-upstream-stream-duration-ms (0: none), else the
        // cluster's max_stream_duration, as Envoy's upstream request arms it
        attempts.upstreamDurationMillis = control.upstreamStreamDurationMs >= 0 ? control.upstreamStreamDurationMs
                : cluster.config().commonHttpProtocolOptions().maxStreamDuration().toMillis();
        req.canceller = () -> onContext(ctx, attempts::downstreamReset);
        RequestBodyStream body = req.stream;
        if (timeout != null && !timeout.isZero()) {
            attempts.routeTimeoutMillis = Math.max(1, timeout.toMillis());
            if (body == null || body.ended()) {
                // as Envoy, from the end of the request: a body still arriving starts it when it ends (bodyEnded)
                ex.routeTimer = vertx.setTimer(attempts.routeTimeoutMillis, id -> attempts.globalTimeout());
            }
        }
        // As Envoy: the route's idle_timeout replaces the connection manager's stream_idle_timeout; 0 disables
        Duration idle = streamIdleTimeout(req, f);
        if (idle != null && !idle.isZero()) {
            ex.streamIdle = new IdleTimer(vertx, idle.toMillis(), attempts::streamIdleTimeout).start();
        }
        Duration lifetime = maxStreamDuration(action, req);
        if (ex.grpc && action.maxStreamDuration()) {
            // as Envoy's connection manager under a route's max_stream_duration: the upstream learns the deadline the
            // stream has (a capped grpc-timeout, the route's duration, the connection manager's), before the time
            // used; a stream whose route turns off the connection manager's duration has none, and sends none
            if (lifetime != null) {
                req.headers.set(HeaderNames.GRPC_TIMEOUT, Grpc.timeoutValue(lifetime.toMillis()));
            } else if (req.maxStreamDuration != null && !req.maxStreamDuration.isZero()) {
                req.headers.remove(HeaderNames.GRPC_TIMEOUT);
            }
        }
        if (lifetime != null) {
            // from when the request began, as Envoy's connection manager starts it with the stream
            long left = lifetime.toMillis() - (System.nanoTime() - req.startNanos) / 1_000_000;
            ex.durationTimer = vertx.setTimer(Math.max(1, left), id -> attempts.maxStreamDurationReached());
        }
        if (req.cancelled) {
            attempts.downstreamReset(); // the caller left before the exchange began
            return;
        }
        attempts.mirror = mirror; // sent once the request is complete: now, or when its body ends (bodyEnded)
        if (body != null) {
            // a body too large drops the mirror
            body.owner(attempts, retry != RetryState.NONE || redirects, mirror != null, bufferLimit);
        }
        attempts.start(false);
        if (body == null || body.ended()) {
            // after the primary's attempt started: nothing of the copies delays it
            attempts.sendMirror(body == null ? req.body : body.mirroredBody());
        }
    }

    /**
     * The most of the request's body kept for retries and mirrors, as Envoy's router takes it: the route's
     * {@code per_request_buffer_limit_bytes}, else its virtual host's, capped by the listener's
     * {@code per_connection_buffer_limit_bytes} (its connection manager's buffer limit); the listener's alone when
     * neither sets one.
     */
    static long requestBufferLimit(RouterRequest req, RouteResult route) {
        return requestBufferLimit(route, req.listenerBufferLimit);
    }

    /**
     * {@link #requestBufferLimit(RouterRequest, RouteResult)} under a listener's limit; the listener's alone for a
     * request its route does not forward (Envoy reads the limit from a route entry, which a redirect or direct
     * response route has not).
     */
    public static long requestBufferLimit(RouteResult route, long listenerBufferLimit) {
        if (!(route instanceof RouteResult.Forward f)) {
            return listenerBufferLimit;
        }
        Long own = f.route().perRequestBufferLimitBytes();
        if (own == null) {
            own = f.virtualHost().perRequestBufferLimitBytes();
        }
        return own == null ? listenerBufferLimit : Math.min(own, listenerBufferLimit);
    }

    /**
     * How long the request may last, as Envoy's connection manager sets its stream's duration timer: on a route with
     * {@code max_stream_duration.grpc_timeout_header_max}, a request's {@code grpc-timeout} (whatever its content
     * type, as Envoy reads the header) capped by that maximum unless it is 0, then less
     * {@code grpc_timeout_header_offset} (an offset not shorter than it leaves 0: out of time at once); else the
     * route's own {@code max_stream_duration.max_stream_duration} (0: none), else the connection manager's
     * {@code max_stream_duration}. Null for none.
     */
    static Duration maxStreamDuration(RouteAction action, RouterRequest req) {
        return streamDuration(action, req.headers.get(HeaderNames.GRPC_TIMEOUT), req.maxStreamDuration);
    }

    /**
     * {@link #maxStreamDuration} of a request whose {@code grpc-timeout} header is {@code grpcTimeout} (null: none),
     * under a connection manager whose {@code max_stream_duration} is {@code connectionManager} (null: none).
     */
    private static Duration streamDuration(RouteAction action, String grpcTimeout, Duration connectionManager) {
        Duration grpcDeadline = grpcDeadline(action, grpcTimeout);
        if (grpcDeadline != null) {
            return grpcDeadline;
        }
        Duration d = action.streamDuration() != null ? action.streamDuration() : connectionManager;
        return d == null || d.isZero() ? null : d;
    }

    /**
     * The stream duration of a request whose {@code grpc-timeout} header is {@code grpcTimeout} (null: none) on a
     * route of {@code action}: the one its {@code grpc-timeout} sets ({@link #grpcDeadline}), else the route's own
     * {@code max_stream_duration.max_stream_duration} (0: none); null for none. What bounds a request on the in-JVM
     * inbound side, which has no connection manager duration of its own.
     */
    public static Duration routeStreamDuration(RouteAction action, String grpcTimeout) {
        return streamDuration(action, grpcTimeout, null);
    }

    /**
     * The stream duration a request's {@code grpc-timeout} ({@code grpcTimeout}, null: none) sets under Envoy's newer
     * timeouts (a route's {@code max_stream_duration} with {@code grpc_timeout_header_max}), as
     * {@link #maxStreamDuration} describes it; null when the route has none of them or the request no valid header.
     */
    private static Duration grpcDeadline(RouteAction action, String grpcTimeout) {
        if (!action.maxStreamDuration() || action.maxGrpcTimeout() == null) {
            return null;
        }
        long timeout = grpcTimeoutMillis(grpcTimeout);
        if (timeout < 0) {
            return null;
        }
        long cap = action.maxGrpcTimeout().toMillis();
        if (cap != 0 && timeout > cap) {
            timeout = cap;
        }
        Duration offset = action.grpcTimeoutHeaderOffset();
        if (timeout != 0 && offset != null) {
            timeout = offset.toMillis() < timeout ? timeout - offset.toMillis() : 0;
        }
        return Duration.ofMillis(timeout);
    }

    /**
     * The route timeout as Envoy's {@code FilterUtility::finalTimeout}: for a gRPC request on a route with the legacy
     * {@code max_grpc_timeout} (Istio's outbound routes), the request's {@code grpc-timeout} less the route's
     * {@code grpc_timeout_offset} (when it is shorter) capped by that maximum unless it is 0 (no cap); without the
     * header, the maximum itself (0: none). A route with
     * {@code max_stream_duration} has none (zero): its stream duration bounds the request, and a caller's
     * {@code grpc-timeout} is that duration ({@link #maxStreamDuration}). Otherwise the route's {@code timeout}.
     * The {@code grpc-timeout} sent upstream under
     * {@code max_grpc_timeout} derives from this.
     */
    static Duration routeTimeout(RouteAction action, RouterRequest req) {
        if (action.maxStreamDuration()) {
            // Envoy's newer timeouts: a route with max_stream_duration has no route timeout (its timeout and
            // max_grpc_timeout are not read); its stream duration and grpc_timeout_header_max bound the request
            return Duration.ZERO;
        }
        Duration max = action.maxGrpcTimeout();
        if (max == null || !Grpc.isRequest(req.headers)) {
            return action.timeout();
        }
        long grpc = grpcTimeoutMillis(req.headers.get(HeaderNames.GRPC_TIMEOUT));
        Duration offset = action.grpcTimeoutHeaderOffset();
        if (offset != null && offset.toMillis() < grpc) {
            // the deprecated grpc_timeout_offset, before the cap, only when it leaves some of the deadline
            grpc -= offset.toMillis();
        }
        long cap = max.toMillis();
        if (cap != 0 && (grpc <= 0 || grpc > cap)) {
            grpc = cap;
        }
        return grpc <= 0 ? Duration.ZERO : Duration.ofMillis(grpc);
    }

    /** A {@code grpc-timeout} value (1 to 8 digits and a unit of H, M, S, m, u, n) in milliseconds; -1 if invalid. */
    static long grpcTimeoutMillis(String v) {
        if (v == null) {
            return -1;
        }
        int n = v.length();
        // as Envoy's getGrpcTimeout: the value before the unit read by absl's SimpleAtoi, at most 8 digits' worth
        long value = n < 2 ? -1 : Grpc.simpleAtoi(v, n - 1, 99_999_999L);
        if (value < 0) {
            return -1;
        }
        return switch (v.charAt(n - 1)) {
            case 'H' -> value * 3_600_000L;
            case 'M' -> value * 60_000L;
            case 'S' -> value * 1_000L;
            case 'm' -> value;
            case 'u' -> (value + 999) / 1_000;
            case 'n' -> (value + 999_999) / 1_000_000;
            default -> -1;
        };
    }

    /**
     * Whether a path can go on a request line: no whitespace, no control characters. Netty throws on such a URI
     * inside Vert.x's write path, where the error is lost and the upstream request never completes, so the router
     * answers 400 itself, as Envoy's codec does for such a request.
     */
    static boolean validRequestTarget(String path) {
        for (int i = 0, n = path.length(); i < n; i++) {
            char c = path.charAt(i);
            if (c <= 0x20 || c == 0x7f) {
                return false;
            }
        }
        return true;
    }

    private void badRequest(Exchange ex, Promise<RouterResponse> promise, String details) {
        ex.flags.add(ResponseFlag.DOWNSTREAM_PROTOCOL_ERROR);
        reply(ex, promise, 400, "", details, null);
    }

    /**
     * The router filter's {@code strict_check_headers}: as Envoy's router, once the route's cluster is known, a trusted
     * caller's control header it names that has an invalid value (a timeout or retry count that is not an unsigned
     * integer, a retry condition that is not one of the header's) is answered 400, flag IH, instead of ignored.
     */
    private boolean failsStrictCheck(Exchange ex, Promise<RouterResponse> promise) {
        for (String name : ex.request.routerFilter.strictCheckHeaders()) {
            String value = ex.request.headers.get(name);
            if (value != null && !Control.valid(name, value)) {
                ex.flags.add(ResponseFlag.INVALID_ENVOY_REQUEST_HEADERS);
                reply(ex, promise, 400, "invalid header '" + name + "' with value '" + value + "'",
                        "request_headers_failed_strict_check{" + name + "}", null);
                return true;
            }
        }
        return false;
    }

    /** The exchange counts in {@code cluster}'s circuit breakers, whose gauges its statistics show. */
    private void useBreakers(Exchange ex, UpstreamCluster cluster) {
        ex.breakers = cluster.circuitBreakers();
        var st = stats(ex);
        if (st != null) {
            cluster.publishCircuitBreakers(st);
        }
    }

    /**
     * Takes one of the cluster's {@code max_requests} for a relay, given back when it ends ({@link #releaseHost});
     * when the breaker is full, answers {@code promise} with the overflow (503 UO) and returns false.
     */
    private boolean takeRequestSlot(Exchange ex, UpstreamCluster cluster, Promise<RouterResponse> promise) {
        useBreakers(ex, cluster);
        if (!ex.breakers.tryStartRequest()) {
            var st = stats(ex);
            if (st != null) {
                st.activeOverflow();
            }
            overflow(ex, promise);
            return false;
        }
        ex.requestSlotHeld = true;
        return true;
    }

    /**
     * Attaches a request that got its connection, {@code up}, to {@code host} before it is sent, as Envoy's pool
     * attaches a stream to its connection ({@code ConnPoolImplBase::attachStreamToClient}): it takes one of the
     * cluster's {@code max_requests} and counts in the cluster's {@code upstream_rq_total} and
     * {@code upstream_rq_active} ({@code st}, unless null) and in the host's requests and active requests (which
     * LEAST_REQUEST reads) until {@link #detach}. A request waiting for a connection, one whose connection failed, one
     * its pool refused, or a retry in its back-off counts in none of them and holds no slot. When they are all taken,
     * {@code up} goes back to its pool unsent (reset) and false is returned: the pool's overflow, answered 503 UO and
     * never retried, as Envoy's router answers its pool's {@code Overflow}. That refusal names its host (unlike a
     * full {@code max_pending_requests}, which comes before any connection): Envoy's router charges its 503 to that
     * host, so it counts in the host's {@code rq_error}.
     */
    static boolean attach(CircuitBreakerState breakers, HttpClientRequest up, Host host,
                          dev.inmesh.runtime.stats.UpstreamStats st) {
        if (breakers.tryStartRequest()) {
            counted(host, st);
            return true;
        }
        if (st != null) {
            st.activeOverflow(); // its caller counts upstream_rq_pending_overflow with its answer
        }
        host.stats().requestFailed();
        up.reset();
        return false;
    }

    /** A request {@link #attach}ed (or a relay started) counts in its host's and cluster's requests and active ones. */
    private static void counted(Host host, dev.inmesh.runtime.stats.UpstreamStats st) {
        host.stats().requestStarted();
        if (st != null) {
            st.requestStarted();
            st.activeRequests(1);
        }
    }

    /** The end of a request {@link #attach} attached: its slot is given back and it is no longer active. */
    static void detach(CircuitBreakerState breakers, Host host, dev.inmesh.runtime.stats.UpstreamStats st) {
        breakers.finishRequest();
        host.stats().requestFinished();
        if (st != null) {
            st.activeRequests(-1);
        }
    }

    private void overflow(Exchange ex, Promise<RouterResponse> promise) {
        var st = stats(ex);
        if (st != null) {
            st.overflow();
        }
        chargeLocalReply(ex, 503);
        ex.flags.add(ResponseFlag.UPSTREAM_OVERFLOW);
        // the router's own x-envoy header, unless its suppress_envoy_headers says not
        MultiMap h = ex.request.routerFilter.suppressEnvoyHeaders() ? null
                : MultiMap.caseInsensitiveMultiMap().set("x-envoy-overloaded", "true");
        reply(ex, promise, 503, upstreamResetBody("overflow"),
                "upstream_reset_before_response_started{overflow}", h);
    }

    /**
     * The router answers for the cluster (an attempt ended without a response: connect failure, reset, overflow,
     * timeout; or no healthy host): as Envoy's router charges the upstream code on such aborts, the status counts in
     * the cluster's {@code upstream_rq_completed} and {@code upstream_rq_xx}, as an upstream's own answer would. Only
     * the answer is charged: an attempt that is retried is not.
     */
    private void chargeLocalReply(Exchange ex, int status) {
        var st = stats(ex);
        if (st != null) {
            st.requestCompleted(status);
        }
    }

    private void reply(Exchange ex, Promise<RouterResponse> promise, int status, String body, String details,
                       MultiMap extra) {
        ex.responseCodeDetails = details;
        promise.tryComplete(localResponse(ex, status, body, extra));
    }

    private RouterResponse localResponse(Exchange ex, int status, String body, MultiMap extra) {
        MultiMap h = MultiMap.caseInsensitiveMultiMap();
        if (extra != null) {
            h.addAll(extra);
        }
        // a gRPC-Web caller is answered as Envoy's connection manager answers a request it does not see as gRPC: its
        // gRPC-Web filter translates the answer (the caller applies it)
        boolean trailersOnly = ex.grpc && ex.request.grpcWeb == null;
        // a 204 (a timeout's alternative answer) has no body, nor a content-length
        Buffer b = Buffer.buffer(trailersOnly || body == null || status == 204 ? "" : body);
        if (ex.route != null && ex.table != null && !(ex.route instanceof RouteResult.NoRoute) && !ex.filterReply) {
            HeaderMutator.finalizeResponse(ex.route, ex.table, h, status, ex);
            if (ex.session != null && ex.lastHost != null) {
                // as Envoy's filter: a local reply after an attempt names the attempt's host too
                ex.session.onResponse(ex.lastHost.addressString(), h);
            }
            // As Envoy's modify_headers: a local reply after upstream attempts carries their count too.
            if (ex.attempts > 0 && ex.route.virtualHost() != null
                    && ex.route.virtualHost().includeAttemptCountInResponse()) {
                h.set("x-envoy-attempt-count", Integer.toString(ex.attempts));
            }
        }
        if (ex.authzDenialHeaders != null) {
            // as Envoy's ext_authz: over the route's rules, as its modify_headers
            replaceHeaders(h, ex.authzDenialHeaders);
        }
        if (ex.localReplyHeaders != null) {
            ex.localReplyHeaders.accept(h); // a filter's own, after the route's rules, as its modify_headers
        }
        // (a CORS preflight's answer is not one: Envoy's CORS filter encodes it itself, past the rewrite)
        if (ex.request.localReply != null && status != 0
                && !CorsFilter.PREFLIGHT_DETAILS.equals(ex.responseCodeDetails)) {
            LocalReply.Rewritten r = rewriteLocalReply(ex, status, body, h, trailersOnly);
            status = r.status();
            body = r.body();
            b = Buffer.buffer(trailersOnly || status == 204 ? "" : body);
        } else {
            // as Envoy's prepareLocalReply, after those headers: the body's length, text/plain unless they set a
            // content type, neither for an empty body
            LocalReply.contentType(h, b.length() == 0);
            if (status != 204) {
                h.set("content-length", Integer.toString(b.length()));
            }
        }
        if (trailersOnly && status != 0) {
            // As Envoy: a gRPC caller gets a trailers-only gRPC response, after the route's header rules
            // (none for a caller that went away: code 0)
            Grpc.toTrailersOnly(h, status, body, ex.request.method == io.vertx.core.http.HttpMethod.HEAD);
            status = 200;
        }
        // the encoder filters, from the router's side: the Lua and header mutation filters first (they stand right
        // before the router), on the reply as the connection manager made it, rewritten and, for a gRPC caller,
        // trailers-only
        lateFiltersResponse(ex, status, h, null, true);
        spanResponse(ex, h);
        if (ex.cors != null) {
            ex.cors.setOn(h); // the CORS filter's encoding runs after the router's
        }
        if (ex.rateLimit != null) {
            ex.rateLimit.setOn(h); // x-ratelimit-*, when its config asks for them
        }
        ExtAuthzFilter.ResponseHeader.applyAll(h, ex.authzResponseHeaders);
        connectionManagerHeaders(ex, h);
        b = sentBody(ex, h, b);
        ex.done = true;
        if (ex.request.stream != null) {
            ex.request.stream.close(); // nothing takes the rest of the body
        }
        return new RouterResponse(status, h, null, b, ex);
    }

    /**
     * Rewrites a local reply of {@code status} and {@code body} by its connection manager's {@code local_reply_config}
     * ({@link LocalReply#rewriteReply}), the request read as the access log reads it so far.
     */
    private static LocalReply.Rewritten rewriteLocalReply(Exchange ex, int status, String body, MultiMap h,
                                                          boolean trailersOnly) {
        return ex.request.localReply.rewriteReply(status, body, h, trailersOnly, ex);
    }

    /**
     * The span's part of a response (its decorated operation). As Envoy's connection manager, an outbound one that
     * traces takes the upstream's {@code x-envoy-decorator-operation} off the response even when the request got no
     * span (a malformed trace context): the header names a client span and never goes to the caller.
     */
    private static void spanResponse(Exchange ex, MultiMap h) {
        if (ex.span != null) {
            ex.span.response(h, RouteResult.decorator(ex.route));
        } else if (ex.egressTracing) {
            h.remove(dev.inmesh.runtime.tracing.ActiveSpan.DECORATOR_OPERATION);
        }
    }

    /**
     * Takes off a request's hop-by-hop headers as Envoy's connection manager does before its route and its filters
     * read it (mutateRequestHeaders): {@code keep-alive} and {@code proxy-connection}; unless the request is an
     * {@code upgrade}, {@code connection}, {@code upgrade} and a {@code te} other than {@code trailers}
     * ({@link #sanitizeTe}; an upgrade's goes on as it came).
     */
    public static void removeHopByHop(MultiMap h, boolean upgrade) {
        if (!upgrade) {
            h.remove(HeaderNames.CONNECTION);
            h.remove(HeaderNames.UPGRADE);
            sanitizeTe(h);
        }
        h.remove(HeaderNames.KEEP_ALIVE);
        h.remove(HeaderNames.PROXY_CONNECTION);
    }

    /**
     * TE is hop-by-hop too, but as Envoy's connection manager: a {@code te} that lists {@code trailers} (gRPC servers
     * require it) goes on as {@code te: trailers} alone, any other is taken off.
     */
    static void sanitizeTe(MultiMap h) {
        List<String> values = h.getAll(HeaderNames.TE);
        if (values.isEmpty()) {
            return;
        }
        for (String value : values) {
            for (String token : value.split(",")) {
                if (token.strip().equals("trailers")) {
                    h.set(HeaderNames.TE, "trailers");
                    return;
                }
            }
        }
        h.remove(HeaderNames.TE);
    }

    /** The host the request's stateful session names, else (unless the session is strict) the load balancer's. */
    private static Host chooseHost(UpstreamCluster cluster, StatefulSessionFilter.Session session, LbContext c) {
        if (session == null || session.address() == null) {
            return cluster.chooseHost(c);
        }
        Host named = cluster.overrideHost(session.address());
        return named != null || session.strict() ? named : cluster.chooseHost(c);
    }

    /**
     * The host for a request relayed from its head on (a WebSocket upgrade), picked as the router picks its
     * first attempt's: the host the request's stateful session names, else the cluster's load balancer with the hash
     * of the route's hash policies, so that a consistent hash (a DestinationRule's {@code consistentHash}) keeps a
     * client's WebSockets on one host as its other requests. A cookie policy hashes a cookie the request has; none is
     * made up here, since the upstream's {@code 101} is relayed as it came. Null when no host can take it.
     */
    private static Host relayHost(RouterRequest req, RouteResult.Forward f, UpstreamCluster cluster) {
        RouteAction action = f.action();
        Long hash = action.hashPolicies().isEmpty() ? null
                : HashPolicies.hash(action.hashPolicies(), req.headers, req.remoteIp(), req.query(), null,
                        req::header);
        return chooseHost(cluster, req.statefulSession.begin(f.virtualHost(), f.route(), req.uri, req.headers),
                new LbContext(hash != null, hash == null ? 0 : hash, null, 1,
                        cluster.requestDestination(req.headers::get, req.originalDestination)));
    }

    /**
     * Readies the head of a request relayed from its head on (a WebSocket upgrade) as the router readies a
     * request it forwards: the connection manager's {@code x-request-id} (made when absent, where it makes them),
     * {@code x-forwarded-proto}, the route's rewrites and header rules (with its virtual host's and route
     * configuration's) on the request's headers, {@code x-envoy-expected-rq-timeout-ms} and, outbound, Istio's
     * metadata exchange headers for {@code cluster} ({@link #peerMetadataHeaders}) (its hop-by-hop headers went before
     * its route, {@link #connectionManagerRequest}). Returns the path and the authority to send, in that order.
     */
    private String[] relayHead(RouterRequest req, RouteTable table, RouteResult.Forward f, UpstreamCluster cluster) {
        if (options.generateRequestId && req.generateRequestId && !req.headers.contains(HeaderNames.X_REQUEST_ID)) {
            req.headers.set(HeaderNames.X_REQUEST_ID, RequestIds.next());
        }
        if (!req.opaque) {
            // its one attempt's, as the router tells the upstream of any request, an upgrade's included
            firstAttemptHeaders(req, f.virtualHost(), f.action(), false, AttemptTimeouts.of(
                    Control.read(req.headers, req.routerFilter.respectExpectedRqTimeout()), req, f)
                    .firstExpectedMillis());
        }
        // no exchange yet: the header values' command operators (where the table has any) read the request so far
        Target target = upstreamTarget(req, f, table, table.headerFormats().isEmpty() ? null : requestSoFar(req));
        if (!req.opaque && !req.headers.contains(HeaderNames.X_FORWARDED_PROTO)) {
            req.headers.set(HeaderNames.X_FORWARDED_PROTO, req.scheme);
        }
        peerMetadataHeaders(req, f.cluster(), cluster); // Istio's metadata exchange runs on an upgrade too
        upstreamHeaders(req, req.headers);
        return new String[] {target.path, target.authority};
    }

    /**
     * Istio's metadata exchange on an outbound request of a connection manager (not a relay of bytes) to
     * {@code clusterName}: the workload's {@code x-envoy-peer-metadata} and {@code x-envoy-peer-metadata-id} go
     * upstream, unless withheld for the cluster ({@link #peerMetadataWithheld}).
     */
    private void peerMetadataHeaders(RouterRequest req, String clusterName, UpstreamCluster cluster) {
        if (req.direction == StreamInfo.Direction.OUTBOUND && options.peerMetadata != null && !req.opaque
                && !peerMetadataWithheld(req.peerMetadataSkipExternal, clusterName, cluster.config())) {
            req.headers.set(HeaderNames.X_ENVOY_PEER_METADATA, options.peerMetadata);
            req.headers.set(HeaderNames.X_ENVOY_PEER_METADATA_ID, options.peerMetadataId);
        }
    }

    /**
     * Envoy's {@code x-envoy-expected-rq-timeout-ms} of an attempt given the route timeout left to it
     * ({@code globalMillis}, 0 for none): the per-try timeout when it is shorter, else the route timeout; 0 when
     * neither applies. Under hedging the upstream may take the whole route timeout: the per-try one resets nothing.
     */
    static long expectedTimeoutMillis(long globalMillis, Duration perTry, boolean hedge) {
        long pt = perTry == null || hedge ? 0 : perTry.toMillis();
        return pt > 0 && (globalMillis == 0 || pt < globalMillis) ? pt : globalMillis;
    }

    /**
     * The timeout an attempt's upstream is told, as Envoy's router tells it: {@code x-envoy-expected-rq-timeout-ms}
     * unless the router suppresses its headers and, for a gRPC request under a route's {@code max_grpc_timeout}
     * (without {@code max_stream_duration}), {@code grpc-timeout}, the deadline the router enforces. Nothing for 0.
     */
    private static void timeoutHeaders(MultiMap h, RouterRequest req, RouteAction action, boolean grpc,
                                       long expected) {
        if (expected <= 0) {
            return;
        }
        if (!req.routerFilter.suppressEnvoyHeaders()) {
            h.set(HeaderNames.X_ENVOY_EXPECTED_RQ_TIMEOUT_MS, Long.toString(expected));
        }
        if (grpc && action.maxGrpcTimeout() != null && !action.maxStreamDuration()) {
            h.set(HeaderNames.GRPC_TIMEOUT, Grpc.timeoutValue(expected));
        }
    }

    /**
     * Sets the first attempt's router headers on the request's own, as Envoy's router sets them before it applies
     * the route's header rules: {@code x-envoy-attempt-count} 1 where the virtual host asks for it, and the timeout
     * the upstream is told ({@link #timeoutHeaders}, the whole route timeout or the shorter per-try one). The rules
     * may then replace or remove them, and so may not a retry's ({@link Attempts#retryHeaders}).
     */
    private static void firstAttemptHeaders(RouterRequest req, VirtualHost vh, RouteAction action, boolean grpc,
                                            long expected) {
        if (vh.includeRequestAttemptCount()) {
            req.headers.set(HeaderNames.X_ENVOY_ATTEMPT_COUNT, "1");
        }
        timeoutHeaders(req.headers, req, action, grpc, expected);
    }

    /**
     * The timeouts a request's attempts run under, as Envoy's router works them out from its route and a trusted
     * caller's control headers: the route timeout (the caller's {@code x-envoy-upstream-rq-timeout-ms}, else the
     * route's; null or zero for none), the per-try timeout (the caller's {@code x-envoy-upstream-rq-per-try-timeout-ms},
     * else the retry policy's) and whether a per-try timeout hedges (the caller's
     * {@code x-envoy-hedge-on-per-try-timeout}, else the route's {@code hedge_policy}, else its virtual host's).
     */
    private record AttemptTimeouts(Duration route, Duration perTry, boolean hedge) {
        static AttemptTimeouts of(Control control, RouterRequest req, RouteResult.Forward f) {
            RouteAction action = f.action();
            VirtualHost vh = f.virtualHost();
            RetryPolicy policy = action.retryPolicy() != null ? action.retryPolicy() : vh.retryPolicy();
            HedgePolicy hedge = action.hedgePolicy() != null ? action.hedgePolicy() : vh.hedgePolicy();
            return new AttemptTimeouts(
                    control.timeoutMs >= 0 ? Duration.ofMillis(control.timeoutMs) : routeTimeout(action, req),
                    control.perTryTimeoutMs >= 0 ? Duration.ofMillis(control.perTryTimeoutMs)
                            : policy == null ? null : policy.perTryTimeout(),
                    control.hedgeOnPerTryTimeout != null ? control.hedgeOnPerTryTimeout
                            : hedge != null && hedge.hedgeOnPerTryTimeout());
        }

        /** The route timeout in milliseconds (at least 1), 0 for none. */
        long routeMillis() {
            return route == null || route.isZero() ? 0 : Math.max(1, route.toMillis());
        }

        /** What the first attempt's upstream is told: the whole route timeout, or the shorter per-try one. */
        long firstExpectedMillis() {
            return expectedTimeoutMillis(routeMillis(), perTry, hedge);
        }
    }

    /**
     * The path and authority the upstream gets, and the route's request header rules applied: its rewrites (a
     * rewritten path keeps the query the header mutation filter's query parameter mutations made, as Envoy's route
     * rewrites the path they left), their values' command operators reading {@code request}.
     */
    private Target upstreamTarget(RouterRequest req, RouteResult.Forward f, RouteTable table,
                                  dev.inmesh.runtime.accesslog.AccessLogEntry.Source request) {
        Target target = new Target(req.uri, req.authority);
        HeaderMutator.finalizeRequest(f, table, new MultiMapHeaders(req.headers), target,
                !req.routerFilter.suppressEnvoyHeaders(), request);
        if (req.queryMutated && f.rewrittenPath() != null) {
            target.path = HeaderMutationFilter.withQueryOf(target.path, req.uri);
        }
        return target;
    }

    /**
     * The stream idle timeout of a request relayed from its head on: its route's {@code idle_timeout}, else its
     * connection manager's {@code stream_idle_timeout} (5 minutes by default); zero disables it.
     */
    public static Duration relayIdleTimeout(RouterRequest req, RouteResult.Forward f) {
        return streamIdleTimeout(req, f);
    }

    /**
     * A request's stream idle timeout on {@code route}: a forwarding route's {@code idle_timeout}, else the connection
     * manager's {@code stream_idle_timeout}; null or zero for none.
     */
    private static Duration streamIdleTimeout(RouterRequest req, RouteResult route) {
        return route instanceof RouteResult.Forward f && f.action().idleTimeout() != null ? f.action().idleTimeout()
                : req.streamIdleTimeout;
    }

    /** Envoy's body for a request whose upstream ended before its response began, for {@code reason}. */
    public static String upstreamResetBody(String reason) {
        return "upstream connect error or disconnect/reset before headers. reset reason: " + reason;
    }

    /**
     * What is left, in milliseconds (at least 1), of the {@code max_stream_duration} of a request relayed from its
     * head on (the route's, else the connection manager's), counted from the request's start; -1 for none.
     */
    public static long relayDurationLeftMillis(RouterRequest req, RouteResult.Forward f) {
        Duration d = maxStreamDuration(f.action(), req);
        return d == null ? -1 : Math.max(1, d.toMillis() - (System.nanoTime() - req.startNanos) / 1_000_000);
    }

    /**
     * Whether the cluster's load balancer picks hosts by the request's hash (RING_HASH, MAGLEV): only then does
     * Envoy's router evaluate the route's hash policies, and so only then make up a routing cookie.
     */
    private static boolean hashesHosts(UpstreamCluster cluster) {
        LbPolicy p = cluster.config().lbPolicy();
        return p == LbPolicy.RING_HASH || p == LbPolicy.MAGLEV;
    }

    /**
     * Makes up the routing cookie of a cookie hash policy with a {@code ttl} whose cookie the request lacks, as Envoy's
     * router: the value is the xxHash64 of the downstream connection's remote and local addresses ({@code ip:port}
     * each, written together), in 16 hex digits, so requests on one connection get one value; the client gets it in
     * a {@code Set-Cookie} on the upstream's response (not on a local reply).
     */
    private static String routingCookie(Exchange ex, HashPolicy.Cookie c) {
        RouterRequest req = ex.request;
        String addresses = (req.downstreamRemoteAddress == null ? "" : req.downstreamRemoteAddress)
                + (req.downstreamLocalAddress == null ? "" : req.downstreamLocalAddress);
        String value = String.format("%016x", Xxhash.hash64(addresses));
        if (ex.setCookies == null) {
            ex.setCookies = new ArrayList<>(1);
        }
        ex.setCookies.add(SetCookies.value(c.name(), value, c.ttl().getSeconds(), c.path(), c.attributes()));
        return value;
    }

    /**
     * What the router makes of an upstream response's headers before its filters see them, as Envoy's router: the
     * metadata exchange's answer taken off on the outbound side (it names the destination of the request's metrics),
     * {@code x-envoy-upstream-service-time} once the request was whole ({@code requestComplete}), the attempt count
     * when the virtual host asks, the routing cookies a hash policy made up, then the route's response header rules.
     */
    private static void routerResponseHeaders(Exchange ex, int status, MultiMap h, boolean requestComplete,
                                              VirtualHost vh) {
        if (ex.request.direction == StreamInfo.Direction.OUTBOUND && !ex.request.opaque) {
            // decoded once per distinct value, see PeerMetadata.decode
            String peer = h.get(HeaderNames.X_ENVOY_PEER_METADATA);
            if (peer != null) {
                WorkloadInfo w = dev.inmesh.runtime.stats.PeerMetadata.decode(peer);
                ex.upstreamPeer = w == WorkloadInfo.UNKNOWN ? null : w;
            }
            h.remove(HeaderNames.X_ENVOY_PEER_METADATA);
            h.remove(HeaderNames.X_ENVOY_PEER_METADATA_ID);
        }
        if (requestComplete && !ex.request.routerFilter.suppressEnvoyHeaders() && !ex.request.opaque) {
            h.set(HeaderNames.X_ENVOY_UPSTREAM_SERVICE_TIME, Long.toString(ex.upstreamServiceTimeMillis));
        }
        if (vh != null && vh.includeAttemptCountInResponse()) {
            h.set(HeaderNames.X_ENVOY_ATTEMPT_COUNT, Integer.toString(ex.attempts));
        }
        if (ex.setCookies != null) {
            // before the route's header rules (Envoy's order)
            for (String cookie : ex.setCookies) {
                h.add(HttpHeaders.SET_COOKIE, cookie);
            }
        }
        HeaderMutator.finalizeResponse(ex.route, ex.table, h, status, ex);
    }

    /**
     * What the connection manager writes on every response, last as Envoy's does (after the route's response header
     * rules): the request's {@code x-request-id} when {@link Exchange#requestIdInResponse} says so, a {@code date}
     * when the response has none (the upstream's own is kept), and the {@code server} header ({@code server: envoy}
     * by default, whatever the upstream sent).
     */
    private static void connectionManagerHeaders(Exchange ex, MultiMap h) {
        if (ex.requestIdInResponse) {
            String id = ex.request.headers.get(HeaderNames.X_REQUEST_ID);
            if (id != null) {
                h.set(HeaderNames.X_REQUEST_ID, id);
            }
        }
        ServerHeader s = ex.request.serverHeader;
        if (s == null) {
            return; // no connection manager answers (the in-JVM client without an outbound listener)
        }
        connectionManagerHeaders(h, s);
    }

    /**
     * The headers a connection manager whose {@code server} and {@code via} are {@code s} writes on every response:
     * a {@code date} when the response has none, the {@code server} header as its transformation says, its
     * {@code via} appended.
     */
    public static void connectionManagerHeaders(MultiMap h, ServerHeader s) {
        if (!h.contains(HeaderNames.DATE)) {
            h.set(HeaderNames.DATE, HttpDate.now());
        }
        if (s.writes(h.contains(HeaderNames.SERVER))) {
            h.set(HeaderNames.SERVER, s.serverName());
        }
        appendVia(h, s);
    }

    /**
     * The connection manager's {@code via} appended to a message's, as Envoy's inline {@code via}: the lines it came
     * in joined by commas, then {@code , } and its own.
     */
    public static void appendVia(MultiMap h, ServerHeader s) {
        if (!s.via().isEmpty()) {
            List<String> sent = h.getAll(HeaderNames.VIA);
            h.set(HeaderNames.VIA, s.appendVia(sent.isEmpty() ? null : String.join(",", sent)));
        }
    }

    /**
     * Records the end of an exchange once its body was sent: releases the breakers and the host, reports to the
     * observer (metrics, access log). Safe to call twice; the second call does nothing.
     */
    public StreamInfo complete(RouterResponse response, long bytesSent) {
        return finish(response, bytesSent, null);
    }

    /**
     * Records an exchange whose local reply was never sent, its caller's connection closed in its place (a request
     * relayed as bytes, which a sidecar's {@code tcp_proxy} answers no HTTP): response code 0, as Envoy logs a
     * {@code tcp_proxy}'s connection, with the flags and details of why kept. Safe to call twice, as {@link #complete}.
     */
    public StreamInfo unanswered(RouterResponse response) {
        return finish(new RouterResponse(0, null, null, null, response.exchange), 0, null);
    }

    /** Records an exchange whose response could not be delivered (downstream gone, upstream reset mid-body). */
    public StreamInfo abort(RouterResponse response, long bytesSent, ResponseFlag flag) {
        return finish(response, bytesSent, flag);
    }

    /**
     * Records an exchange whose caller reset its HTTP/2 stream before the response ended, as {@link #callerReset}:
     * flag DR and the codec's {@code details} in place of the response's.
     */
    public StreamInfo callerReset(RouterResponse response, long bytesSent, String details) {
        return reset(response, bytesSent, details, ResponseFlag.DOWNSTREAM_REMOTE_RESET);
    }

    /**
     * Records an exchange whose caller's codec reset its stream before the response ended, as {@link #codecReset}:
     * flag DPE and the codec's {@code details} in place of the response's.
     */
    public StreamInfo codecReset(RouterResponse response, long bytesSent, String details) {
        return reset(response, bytesSent, details, ResponseFlag.DOWNSTREAM_PROTOCOL_ERROR);
    }

    /** Records an exchange whose caller's stream was reset: {@code flag}, and {@code details} unless it completed. */
    private StreamInfo reset(RouterResponse response, long bytesSent, String details, ResponseFlag flag) {
        if (!response.exchange.completed) {
            response.exchange.responseCodeDetails = details;
        }
        return finish(response, bytesSent, flag);
    }

    /**
     * Records an exchange whose upstream response body failed ({@code cause}) after its headers were passed on, as
     * Envoy's router an upstream reset once the response started: the flag and the details
     * {@code upstream_reset_after_response_started{REASON}} of the reset's reason. An HTTP/1 body that did not end
     * as its framing said (the connection closed before its length or its last chunk, a chunk that could not be read)
     * is a protocol error (UPE), as Envoy's HTTP/1 codec reports the end of its input in the middle of a message; over
     * HTTP/2 a stream the upstream reset is a remote reset (UR), a header value the codec refuses a protocol error, a
     * closed connection a connection termination (UC). As Envoy's router reports any upstream reset, the host's
     * outlier detection hears of a reset (a local-origin failure, a 503 unless split), after the status it already
     * heard. A body the router itself reset (an idle timeout) keeps what the router recorded.
     */
    public StreamInfo upstreamBodyFailed(RouterResponse response, long bytesSent, Throwable cause) {
        Exchange ex = response.exchange;
        if (ex.resetByRouter || ex.completed) {
            return finish(response, bytesSent, ResponseFlag.UPSTREAM_CONNECTION_TERMINATION);
        }
        if (ex.activeHost != null) {
            ex.activeHost.outlier().reportLocalOriginFailure(LocalOriginFailure.RESET);
        }
        boolean http1 = response.upstream != null
                && response.upstream.version() != io.vertx.core.http.HttpVersion.HTTP_2;
        ResponseFlag flag;
        String reason;
        if (http1 || isProtocolError(cause)) {
            flag = ResponseFlag.UPSTREAM_PROTOCOL_ERROR;
            reason = "protocol_error";
            countProtocolError(ex);
        } else if (cause instanceof StreamResetException) {
            flag = ResponseFlag.UPSTREAM_REMOTE_RESET;
            reason = "remote_reset";
        } else {
            flag = ResponseFlag.UPSTREAM_CONNECTION_TERMINATION;
            reason = "connection_termination";
        }
        ex.responseCodeDetails = "upstream_reset_after_response_started{" + reason + "}";
        return finish(response, bytesSent, flag);
    }

    private StreamInfo finish(RouterResponse response, long bytesSent, ResponseFlag flag) {
        Exchange ex = response.exchange;
        int status = response.status;
        if (ex.completed) {
            return null;
        }
        endExchange(ex);
        // the body failed because the router reset it (idle timeout): not an upstream termination
        if (flag != null && !(ex.resetByRouter && flag == ResponseFlag.UPSTREAM_CONNECTION_TERMINATION)) {
            ex.flags.add(flag);
        }
        RouterRequest req = ex.request;
        long now = System.nanoTime();
        // the caller went away: its connection closed (DC) or it reset its stream (DR)
        boolean dc = ex.flags.contains(ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION)
                || ex.flags.contains(ResponseFlag.DOWNSTREAM_REMOTE_RESET);
        if (ex.grpcChargeDeferred != null && !dc) {
            // a gRPC answer's charge waited for its trailers, as Envoy's router: by their grpc-status when the body
            // ended (an error without one); an error when the upstream reset the body or its per-try idle timeout
            // ended it; nothing when the caller left or the connection manager's or route's timers cut it (Envoy's
            // router is reset without charging then)
            if (flag == null) {
                MultiMap trailers = response.upstream != null ? response.upstream.trailers() : null;
                chargeGrpcEnd(ex.grpcChargeDeferred, trailers == null ? null : trailers.get(HeaderNames.GRPC_STATUS));
            } else if (!ex.resetByRouter || "upstream_per_try_idle_timeout".equals(ex.responseCodeDetails)) {
                ex.grpcChargeDeferred.stats().requestFailed();
            }
        }
        if (req.downstreamStats != null) {
            // as Envoy's connection manager: a reset the caller made (DC, DR) is received, any other one (the upstream
            // body failed, an idle timeout after the headers) is sent to the caller
            req.downstreamStats.requestEnded(status, flag == null && !dc && status != 0,
                    dc ? 1 : flag != null ? 2 : 0, (now - req.startNanos) / 1_000_000);
        }
        if (response.upstream != null && flag == null && !dc && (req.stream == null || req.stream.ended())) {
            // as Envoy's router: an upstream response come whole, timed from the end of the request (retries and
            // their back-off included)
            var st = stats(ex);
            if (st != null) {
                st.requestTime((now - ex.requestCompleteNanos) / 1_000_000);
            }
        }
        long requestBytes;
        long requestMessages;
        if (ex.relayedRequestBytes >= 0) {
            requestBytes = ex.relayedRequestBytes;
            requestMessages = 0;
        } else if (req.stream != null) {
            req.stream.close(); // the exchange is over: an attempt still sending the body is reset
            requestBytes = req.stream.received();
            requestMessages = req.stream.messages();
        } else {
            requestBytes = req.body == null ? 0 : req.body.length();
            requestMessages = ex.responseMessages == null ? 0 : GrpcFrames.count(req.body);
        }
        StreamInfo info = streamInfo(ex, status, response.headers,
                response.upstream == null ? null : response.upstream.trailers(), requestBytes, requestMessages,
                bytesSent, now);
        if (ex.span != null) {
            try {
                ex.span.tracer().finish(ex.span, info, req.headers, RouteResult.decorator(ex.route), tracing);
            } catch (RuntimeException e) {
                // nor must tracing
            }
        }
        try {
            observer.accept(info);
        } catch (RuntimeException e) {
            // metrics and logs must never break a request
        }
        return info;
    }

    /**
     * The exchange's {@link StreamInfo} with {@code status} and the response's {@code headers} and {@code trailers}
     * (null: none), at {@code now}: the finished request's ({@link #finish}), or the request so far when a local reply
     * is rewritten ({@link #localReplyEntry}).
     */
    private static StreamInfo streamInfo(Exchange ex, int status, MultiMap headers, MultiMap trailers,
                                         long requestBytes, long requestMessages, long bytesSent, long now) {
        RouterRequest req = ex.request;
        Host host = ex.lastHost;
        ServiceLabels dest = ServiceLabels.of(ex.cluster, host);
        String originalPath = req.headers.get(HeaderNames.X_ENVOY_ORIGINAL_PATH);
        String upstreamProtocol = ex.upstreamProtocol;
        // Envoy's lastDownstreamRxByteReceived: none for a request whose body did not end, nor for one the codec
        // refused or timed out before its head ended (unparsed: no method), however long it waited
        boolean requestEnded = req.method() != null && (req.stream == null || req.stream.ended());
        return new StreamInfo(req.direction, req.startTime, req.method(),
                originalPath != null ? originalPath : ex.rewrittenPath != null ? ex.rewrittenPath : req.uri,
                req.protocol, status, ex.flags, ex.responseCodeDetails, requestBytes,
                bytesSent, (now - req.startNanos) / 1_000_000, ex.upstreamServiceTimeMillis,
                req.headers.get(HeaderNames.X_REQUEST_ID), req.authority, req.headers.get(HeaderNames.USER_AGENT),
                req.headers.get(HeaderNames.X_FORWARDED_FOR), host == null ? null : host.addressString(),
                ex.clusterName, ex.upstreamLocalAddress,
                req.downstreamLocalAddress, req.remoteAddress, req.requestedServerName, ex.routeName(),
                Math.max(ex.attempts, 0), ex.downstreamPeer != null ? ex.downstreamPeer
                        : ex.upstreamPeer != null ? ex.upstreamPeer : dest.workload(),
                dest.host(), dest.name(), dest.namespace(),
                !ex.grpc ? null : Grpc.finalStatus(trailers, headers, status), req.downstreamMutualTls,
                req.downstreamPeerPrincipal, req.downstreamLocalPrincipal,
                ex.connectFailure == null ? null : ex.connectFailure.transportFailureReason(),
                ex.upstreamPeerPrincipal, ex.responseMessages == null ? -1 : requestMessages,
                ex.responseMessages == null ? -1 : ex.responseMessages.count(), ex.upstreamLocalPrincipal,
                req.hostHeaderFallback, new RequestLog(req.accessLogs, req.headers, status == 0 ? null : headers,
                        trailers, ex.rewrittenPath != null ? ex.rewrittenPath : req.uri, req.scheme,
                        ex.span != null && ex.span.sampled(), req.downstreamTls, upstreamProtocol,
                        requestEnded ? (ex.requestCompleteNanos - req.startNanos) / 1_000_000 : -1,
                        host == null ? null : host.hostname().isEmpty() ? host.addressString() : host.hostname(),
                        ex.firstUpstreamRxNanos < 0 ? -1 : ex.firstUpstreamRxNanos / 1_000_000,
                        ex.firstUpstreamRxNanos < 0 ? -1
                                : Math.max(0, now - req.startNanos - ex.firstUpstreamRxNanos) / 1_000_000,
                        ex.rewrittenAuthority, host == null ? null : host.metadata(),
                        ex.cluster == null ? null : ex.cluster.config().metadata(), ex.span),
                ex.cluster == null ? null : ex.cluster.config().observabilityName(), req.headBytes,
                HeadSize.response(status, headers, trailers), req.statsOverrides, req.physicalPeer(),
                req.directLocalAddress);
    }

    /**
     * Whether an upstream answer ends its HTTP/1 connection, as Envoy's HTTP/1 pool reads it when it counts
     * {@code upstream_cx_close_notify} ({@code source/common/http/http1/conn_pool.cc}, {@code decodeHeaders}): a
     * {@code Connection: close} or {@code Proxy-Connection: close}, or HTTP/1.0 without {@code Connection: keep-alive}.
     */
    static boolean closesConnection(HttpClientResponse r) {
        if (r.version() == HttpVersion.HTTP_2) {
            return false;
        }
        String connection = r.getHeader(HttpHeaders.CONNECTION);
        return "close".equalsIgnoreCase(connection) || "close".equalsIgnoreCase(r.getHeader("proxy-connection"))
                || r.version() == HttpVersion.HTTP_1_0 && !"keep-alive".equalsIgnoreCase(connection);
    }

    /**
     * The request so far, as the connection manager's {@code local_reply_config} reads a local reply about to be sent
     * ({@link dev.inmesh.runtime.accesslog.LocalReply}) and the route's header values read it ({@link HeaderMutator}):
     * what is known so far (the flags, the details, the upstream tried, the time taken), the {@code status} of the
     * response (0: none yet), its headers so far (null: none yet) and a local reply's {@code body}.
     */
    static AccessLogEntry localReplyEntry(Exchange ex, int status, MultiMap headers, String body) {
        RouterRequest req = ex.request;
        long requestBytes = req.stream != null ? req.stream.received() : req.body == null ? 0 : req.body.length();
        StreamInfo info = streamInfo(ex, status, headers, null, requestBytes, 0, 0, System.nanoTime());
        return AccessLogEntry.localReply(info, req.headers, headers,
                ex.rewrittenPath != null ? ex.rewrittenPath : req.uri, req.scheme, body);
    }

    /**
     * Counts the failure of a request of the mesh's own (a mirrored copy, a filter's call to its service) to get a
     * connection from {@code host}'s pool, as Envoy's router counts its pool's failures: a full
     * {@code max_pending_requests} is the cluster's overflow ({@code upstream_rq_pending_overflow}) and, like a
     * request Vert.x refused itself (an invalid header), no fault of the host's (Envoy's router leaves an overflow
     * out of outlier detection); any other failure is the host's connect failure ({@link #connectFailed}).
     */
    static void poolFailed(Host host, dev.inmesh.runtime.stats.UpstreamStats st, Throwable cause) {
        if (cause instanceof ConnectionPoolTooBusyException) {
            if (st != null) {
                st.overflow();
            }
        } else if (hostFailure(cause)) {
            host.outlier().reportLocalOriginFailure(LocalOriginFailure.CONNECT_FAILED);
            connectFailed(st, cause);
        }
    }

    /**
     * Whether a request's pool failed it for its host's sake (a connect failure): not an overflow of the cluster's
     * breakers, nor a request Vert.x refused itself.
     */
    static boolean hostFailure(Throwable poolFailure) {
        return !(poolFailure instanceof ConnectionPoolTooBusyException)
                && !(poolFailure instanceof IllegalArgumentException);
    }

    /**
     * Counts a failed upstream connect in the cluster's statistics ({@code upstream_cx_connect_fail}, with
     * {@code upstream_cx_connect_timeout} for one its connect timeout ended and the {@code ssl.*} statistic of a
     * failed TLS handshake), when it keeps them. Returns why it failed.
     */
    static dev.inmesh.runtime.upstream.ConnectFailure connectFailed(dev.inmesh.runtime.stats.UpstreamStats st,
                                                                   Throwable cause) {
        HandshakeFailure tls = HandshakeFailure.of(cause);
        var why = dev.inmesh.runtime.upstream.ConnectFailure.of(cause, tls);
        if (st != null) {
            // refused or unreachable: the upstream's close; else the proxy gave it up (its connect timeout, a
            // handshake it failed), as Envoy's pool closes such a connection itself
            st.connectFailed(!why.remote());
            if (tls != null) {
                st.tlsFailed(tls.kind());
            }
            if (why.timedOut()) {
                st.connectTimeout();
            }
        }
        return why;
    }

    /** The name an {@link SSLSession} keeps its {@link UpstreamPrincipals} under, once read. */
    private static final String PRINCIPALS = "dev.inmesh.upstream-principals";

    /**
     * The first URI SANs of the certificates of an upstream TLS connection, as Istio's client-side stats read them:
     * the server's ({@code destination_principal}) and this side's own ({@code source_principal}); null where none.
     */
    private record UpstreamPrincipals(String peer, String local) {}

    /**
     * The principals of an upstream TLS connection ({@link UpstreamPrincipals}), or null for plaintext; read once per
     * TLS session, then kept in it.
     */
    private static UpstreamPrincipals upstreamPrincipals(HttpConnection connection) {
        if (!connection.isSsl()) {
            return null;
        }
        SSLSession session = connection.sslSession();
        if (session == null) {
            return null;
        }
        Object known = session.getValue(PRINCIPALS);
        if (known == null) {
            known = new UpstreamPrincipals(ForwardedClientCert.peerPrincipal(session),
                    ForwardedClientCert.principal(session.getLocalCertificates()));
            session.putValue(PRINCIPALS, known);
        }
        return (UpstreamPrincipals) known;
    }

    /** Each upstream connection's local address as {@link #address} prints it, once the first request asked. */
    private static final io.netty.util.AttributeKey<String> LOCAL_ADDRESS =
            io.netty.util.AttributeKey.valueOf("dev.inmesh.local-address");

    /**
     * The local address of the upstream {@code connection}, {@code ip:port} as {@link #address} prints it, or null:
     * formatted once per connection (kept on its channel), not for each request it carries.
     */
    private static String localAddress(HttpConnection connection) {
        if (!(connection instanceof io.vertx.core.http.impl.HttpClientConnectionInternal internal)) {
            return address(connection.localAddress());
        }
        io.netty.util.Attribute<String> known = internal.channelHandlerContext().channel().attr(LOCAL_ADDRESS);
        String a = known.get();
        if (a == null) {
            a = address(connection.localAddress());
            known.set(a);
        }
        return a;
    }

    /** An address as Envoy's access log prints it ({@link IpLiterals#hostPort}); null for none. */
    private static String address(io.vertx.core.net.SocketAddress a) {
        if (a == null) {
            return null;
        }
        String ip = a.hostAddress(); // once: Vert.x formats the InetAddress again at each call
        return ip == null ? a.toString() : IpLiterals.hostPort(ip, a.port());
    }

    /**
     * The exchange is over (answered, or ended unseen by an internal redirect): its fault, its route, duration and
     * idle timers and its host's request slot are released.
     */
    private void endExchange(Exchange ex) {
        ex.completed = true;
        releaseFault(ex);
        cancelRouteTimer(ex);
        ex.cancelIdleTimers();
        releaseHost(ex);
    }

    /**
     * Cancels the route timeout and the stream's duration timer: the exchange ended, so it must not hold a timer
     * (15 s by default) any longer.
     */
    private void cancelRouteTimer(Exchange ex) {
        long t = ex.routeTimer;
        if (t >= 0) {
            ex.routeTimer = -1;
            vertx.cancelTimer(t);
        }
        long d = ex.durationTimer;
        if (d >= 0) {
            ex.durationTimer = -1;
            vertx.cancelTimer(d);
        }
        cancelUpstreamDuration(ex);
    }

    /** Cancels the attempt's {@code max_stream_duration} timer, if one runs. */
    private void cancelUpstreamDuration(Exchange ex) {
        long u = ex.upstreamDurationTimer;
        if (u >= 0) {
            ex.upstreamDurationTimer = -1;
            vertx.cancelTimer(u);
        }
    }

    /** The attempt in flight (or the relay) ended: its host, {@code upstream_rq_active} and max_requests slot. */
    private static void releaseHost(Exchange ex) {
        if (ex.requestSlotHeld) {
            ex.requestSlotHeld = false;
            detach(ex.breakers, ex.activeHost, ex.activeStats);
        }
        ex.activeHost = null;
        ex.activeStats = null;
    }

    /**
     * Asks {@code client}'s pool for a connection to send {@code ro} on. As Envoy's pending requests: a request that
     * finds no connection ready waits for one (a new connection, or one of the pool's in use), counted in
     * {@code breakers} and {@code upstream_rq_pending_*} until it has one or the wait failed. One that waits while the
     * cluster has its {@code max_connections} open counts in {@code upstream_cx_overflow}, as Envoy's pool counts the
     * connection it would open for the request and its breaker refuses.
     */
    static Future<HttpClientRequest> connect(HttpClient client, RequestOptions ro, CircuitBreakerState breakers,
                                             dev.inmesh.runtime.stats.UpstreamStats st) {
        return connect(client, ro, breakers, st, null);
    }

    /**
     * As {@link #connect(HttpClient, RequestOptions, CircuitBreakerState, dev.inmesh.runtime.stats.UpstreamStats)},
     * with {@code onWait} (unless null) told, when the request waits, of the action that gives up the wait, on the
     * caller's context. As Envoy's router cancels its pending request (route timeout, the caller gone), that action
     * ends the wait at once: it no longer counts as pending ({@code upstream_rq_cancelled}), the pool takes it out of
     * its queue (the returned future then fails with
     * {@link dev.inmesh.runtime.upstream.PendingCancelledException}), and the connection that frees next goes to a
     * request still waiting. A host's pool fails so too a request whose connection it is opening for it (the
     * connection, once up, goes back to the pool); another client gives it its connection all the same, for its
     * caller to reset.
     */
    static Future<HttpClientRequest> connect(HttpClient client, RequestOptions ro, CircuitBreakerState breakers,
                                             dev.inmesh.runtime.stats.UpstreamStats st, Consumer<Runnable> onWait) {
        return waitCounted(client, ro, breakers, st, onWait).andThen(ar -> {
            if (ar.succeeded()) {
                // its failure (a reset by the upstream, or by the router: a 417 that ends a request whose body
                // never went) is the response's, which its caller reads; without a handler Vert.x logs it SEVERE
                ar.result().exceptionHandler(t -> { });
            }
        });
    }

    private static Future<HttpClientRequest> waitCounted(HttpClient client, RequestOptions ro,
                                                         CircuitBreakerState breakers,
                                                         dev.inmesh.runtime.stats.UpstreamStats st,
                                                         Consumer<Runnable> onWait) {
        if (UpstreamCluster.countsPending(client)) {
            // a host's pool tells a pending request (no connection ready) from one handed to a ready connection,
            // which may complete later (another event loop's connection) but never waited, and counts the former
            Future<HttpClientRequest> connecting = UpstreamCluster.request(client, ro, breakers, st);
            if (onWait != null && !connecting.isComplete()) {
                onWait.accept(() -> UpstreamCluster.cancelPending(client, connecting));
            }
            return connecting;
        }
        Future<HttpClientRequest> connecting = client.request(ro);
        if (connecting.isComplete()) {
            return connecting;
        }
        // another client (not a host's pool): the request waits when its future is not complete at once, counted
        // as a pool counts its pending requests
        long waitStart = System.nanoTime();
        breakers.pendingStarted();
        UpstreamCluster.pendingWaitStarted(breakers, st);
        boolean[] over = new boolean[1]; // the wait was counted off: it ended, or was given up
        if (onWait != null) {
            onWait.accept(() -> {
                if (over[0]) {
                    return;
                }
                over[0] = true;
                UpstreamCluster.pendingWaitEnded(breakers, st, UpstreamCluster.PENDING_CANCELLED, waitStart);
                UpstreamCluster.cancelPending(client, connecting);
            });
        }
        return connecting.andThen(ar -> {
            if (!over[0]) {
                over[0] = true;
                UpstreamCluster.pendingWaitEnded(breakers, st, ar, waitStart);
            }
        });
    }

    /**
     * Tells {@code host}'s outlier detection of an upstream answer: its status or, as Envoy, a gRPC request's
     * grpc-status in the headers (a trailers-only answer) mapped to the HTTP status it counts as. An answer carrying
     * {@code x-envoy-immediate-health-check-fail} (an Envoy upstream failing its own health checks, as when it
     * drains) then fails the host in its cluster's active health checks, as Envoy's router hands the host to its
     * health checker whatever the status; a host nothing checks is not affected.
     */
    static void reportAnswer(Host host, boolean grpc, int status, MultiMap headers) {
        Integer grpcStatus = grpc ? Grpc.parseStatus(headers.get(HeaderNames.GRPC_STATUS)) : null;
        int outlierStatus = grpcStatus != null ? Grpc.toHttp(grpcStatus) : status;
        if (outlierStatus >= 500) {
            host.outlier().reportHttpStatus(outlierStatus);
        } else {
            host.outlier().reportSuccess();
        }
        if (headers.contains(HeaderNames.X_ENVOY_IMMEDIATE_HEALTH_CHECK_FAIL)) {
            host.immediateHealthCheckFail();
        }
    }

    /**
     * Charges an answer passed on to its {@code host}, as Envoy's router: a 5xx in {@code rq_error}, another answer
     * in {@code rq_success}; a gRPC request's (not a 5xx) by its {@code grpc-status}: a trailers-only answer's now,
     * else that of its trailers, later ({@link #chargeGrpcEnd}). Returns whether the charge waits for the trailers.
     */
    static boolean chargeAnswer(Host host, boolean grpc, int status, MultiMap headers) {
        if (status >= 500 && status < 600) {
            host.stats().requestFailed();
            return false;
        }
        if (!grpc) {
            host.stats().requestSucceeded();
            return false;
        }
        String grpcStatus = headers.get(HeaderNames.GRPC_STATUS);
        if (grpcStatus == null) {
            return true;
        }
        chargeGrpcEnd(host, grpcStatus);
        return false;
    }

    /**
     * Charges a gRPC answer to its host by the {@code grpc-status} it ended with, as Envoy's router: a status that
     * maps to no 5xx in {@code rq_success}; one that does, or none (the answer ended without one, or failed), in
     * {@code rq_error}.
     */
    static void chargeGrpcEnd(Host host, String grpcStatus) {
        Integer parsed = grpcStatus == null ? null : Grpc.parseStatus(grpcStatus);
        if (parsed != null && Grpc.toHttp(parsed) < 500) {
            host.stats().requestSucceeded();
        } else {
            host.stats().requestFailed();
        }
    }

    /**
     * {@code headers}, of {@code req} or of its copy, as they go upstream: their names in lower case, as Envoy's
     * HTTP/1 codec writes them, or, when the connection manager keeps their case, as the request spelled them
     * ({@link RouterRequest#headerSpellings}); a request relayed as bytes ({@link RouterRequest#opaque}) keeps them as
     * they are.
     */
    static MultiMap upstreamHeaders(RouterRequest req, MultiMap headers) {
        if (req.opaque) {
            return headers;
        }
        if (req.headerSpellings == null) {
            HeaderCase.lowerCase(headers);
        } else {
            HeaderCase.respell(headers, req.headerSpellings);
        }
        return headers;
    }

    /** A request to {@code host}: to its address, or its Unix domain socket. */
    static RequestOptions upstreamOptions(io.vertx.core.http.HttpMethod method, String path, MultiMap headers,
                                          Host host) {
        // Vert.x copies these headers into the request it makes (HttpClientRequestImpl.init): no copy here.
        RequestOptions ro = new RequestOptions().setMethod(method).setURI(path).setHeaders(headers);
        if (host.address().isUnixDomain()) {
            ro.setServer(io.vertx.core.net.SocketAddress.domainSocketAddress(
                    host.address().address().substring(dev.inmesh.api.config.core.SocketAddress.UNIX_PREFIX
                            .length())));
        } else {
            ro.setHost(host.address().address()).setPort(host.address().port());
        }
        return ro;
    }

    /** The request line parts a rewrite changes. */
    private static final class Target implements HeaderMutator.PathAndHost {
        String path;
        String authority;

        Target(String path, String authority) {
            this.path = path;
            this.authority = authority;
        }

        @Override
        public String path() {
            return path;
        }

        @Override
        public void setPath(String p) {
            path = p;
        }

        @Override
        public String authority() {
            return authority;
        }

        @Override
        public void setAuthority(String a) {
            authority = a;
        }
    }

    /** The attempts of one exchange; every method runs on the exchange's context. */
    private final class Attempts implements RequestBodyStream.Owner {
        final Exchange ex;
        final Promise<RouterResponse> promise;
        final Context ctx;
        final RetryState retry;
        final Duration perTry;
        /** The retry policy's {@code per_try_idle_timeout}, or null. */
        Duration perTryIdle;
        /** How long each attempt may last once it has its connection, 0 for no limit. */
        long upstreamDurationMillis;
        /** The route timeout in force, 0 for none. */
        long routeTimeoutMillis;
        final LbContext lb;
        final Target target;
        final VirtualHost vh;
        final RouteAction action;
        /** The hosts tried so far, kept only for the previous_hosts predicate. */
        Set<Host> previous;
        long perTryTimer = -1;
        /** Gives up the attempt's wait for a connection, while it waits; null otherwise. */
        Runnable cancelWait;
        HttpClientRequest inflight;
        boolean retrySlotHeld;
        int generation;
        /** Whether the body outgrew the retry buffer: as Envoy, the request is no longer retried. */
        boolean retriesAbandoned;
        /** Whether an upstream's {@code 100 Continue} was relayed: as Envoy, the request is no longer retried. */
        boolean continueRelayed;
        /** Whether a retry waits for its back-off: no attempt is in flight. */
        boolean backingOff;
        /** The timer of that back-off, or -1: cancelled when the exchange ends first ({@link #end}). */
        long backOffTimer = -1;
        /** Whether the attempt in flight, connected, waits for the end of the request body for its per-try timers. */
        boolean perTryDeferred;
        /** The copies to send once the streamed body ended, or null. */
        RequestMirror mirror;
        /** Whether an upstream redirect may be followed ({@code internal_redirect_policy}, the body kept whole). */
        boolean redirects;
        /** The clusters the exchange routes to: an internal redirect's request goes through them again. */
        ClusterManager clusters;
        /**
         * Whether a per-try timeout hedges ({@code hedge_on_per_try_timeout}, or a trusted caller's
         * {@code x-envoy-hedge-on-per-try-timeout}): the attempt stays in flight beside its retry.
         */
        boolean hedge;
        /** The attempts a per-try timeout left in flight beside a retry, oldest first; null until one is. */
        List<Hedged> hedges;

        Attempts(Exchange ex, Promise<RouterResponse> promise, Context ctx, RetryState retry, Duration perTry,
                 LbContext lb, Target target, VirtualHost vh, RouteAction action) {
            this.ex = ex;
            this.promise = promise;
            this.ctx = ctx;
            this.retry = retry;
            this.perTry = perTry;
            this.lb = lb;
            this.target = target;
            this.vh = vh;
            this.action = action;
        }

        /**
         * As Envoy's cluster: the host the request's stateful session names comes before the load balancer, on every
         * attempt; under {@code strict}, a session whose host cannot take the request gets none (503, UH).
         *
         * @param timeoutRetry this attempt is a retry that follows a per-try timeout
         *     ({@code x-envoy-is-timeout-retry}), told per retry as Envoy's router tells its {@code doRetry}
         */
        void start(boolean timeoutRetry) {
            if (ex.done) {
                return;
            }
            int gen = ++generation;
            // as Envoy's router, retry host predicates are consulted on retries only
            LbContext c = ex.attempts > 0 && retry.hasHostPredicates()
                    ? lb.withRejectHost(h -> retry.rejects(h, previous), retry.hostSelectionAttempts()) : lb;
            Host host = Router.chooseHost(ex.cluster, ex.session, c);
            if (host == null) {
                end(noHealthyUpstream(ex, promise));
                return;
            }
            ex.attempts++;
            ex.lastHost = host;
            if (lb.retryPriority() != null) {
                lb.retryPriority().attempted(host);
            }
            // the final attempt's, as Envoy's upstream info is the last request's
            ex.connectFailure = null;
            ex.connectCause = null;
            ex.upstreamPeerPrincipal = null;
            ex.upstreamLocalPrincipal = null;
            ex.activeHost = host;
            if (retry.usesPreviousHosts()) {
                if (previous == null) {
                    previous = new HashSet<>(4);
                }
                previous.add(host);
            }
            var st = stats(ex);
            if (st != null) {
                host.stats().clusterStats(st); // the connections the host's pool opens count in the cluster's too
            }
            RouterRequest req = ex.request;
            int attempt = ex.attempts;
            String authority = upstreamAuthority(host);
            if (rewritesHost(host) && action.appendXForwardedHost()) {
                HeaderMutator.appendForwardedHost(new MultiMapHeaders(req.headers), target.authority);
            }
            RequestOptions ro = upstreamOptions(req.method, target.path, upstreamHeaders(req, req.headers), host);
            HostAndPort hp = dev.inmesh.runtime.net.Authorities.parse(authority);
            perTryDeferred = false;
            HttpClient client;
            try {
                // as Envoy under use_downstream_protocol_config: an HTTP/2 request goes upstream over HTTP/2
                // auto_sni and auto_san_validation take the host as it goes upstream, after host rewrites
                // original_src: from the downstream's address, on connections of that source only
                client = ex.cluster.httpClient(host, "HTTP/2".equals(req.protocol), hp == null ? null : hp.host(),
                        req.originalSource);
            } catch (RuntimeException e) {
                failed(gen, RetryState.Failure.CONNECT_FAILURE);
                return;
            }
            if (client == null) {
                // max_connection_pools: as Envoy's router when the cluster gives it no pool, on a retry too
                if (st != null) {
                    st.connectionPoolOverflow();
                }
                releaseHost(ex);
                end(noHealthyUpstream(ex, promise));
                return;
            }
            connect(client, ro, ex.breakers, st, cancel -> cancelWait = cancel).onComplete(ar -> {
                if (gen == generation) {
                    cancelWait = null; // the attempt's wait is over
                }
                if (gen != generation || ex.done) {
                    if (ar.succeeded()) {
                        ar.result().reset();
                    }
                    return;
                }
                if (ar.failed() ? ar.cause() instanceof ConnectionPoolTooBusyException
                        : !attach(ex.breakers, ar.result(), host, st)) {
                    // max_pending_requests when it would wait, max_requests once it has its connection
                    if (ar.failed()) {
                        // as Envoy's pool fails a pending overflow with no host: the attempt names none
                        // (%UPSTREAM_HOST% "-"); a max_requests refusal keeps its host, charged by attach
                        ex.lastHost = null;
                    }
                    cancelPerTry();
                    releaseHost(ex);
                    end(() -> overflow(ex, promise));
                    return;
                }
                if (ar.failed()) {
                    Throwable t = ar.cause();
                    if (t instanceof IllegalArgumentException) {
                        // Vert.x refused the request itself (an invalid header name or value): the caller's
                        // fault, not the host's. Neither an outlier report nor a retry; 400 as Envoy's codec.
                        cancelPerTry();
                        releaseHost(ex);
                        end(() -> badRequest(ex, promise, "invalid_request_headers"));
                        return;
                    }
                    host.outlier().reportLocalOriginFailure(LocalOriginFailure.CONNECT_FAILED);
                    ex.connectFailure = connectFailed(stats(ex), t);
                    ex.connectCause = t;
                    failed(gen, RetryState.Failure.CONNECT_FAILURE);
                    return;
                }
                ex.requestSlotHeld = true; // and counted as active, until the attempt ends (releaseHost)
                ex.activeStats = st;
                host.outlier().reportConnectSuccess();
                HttpClientRequest up = ar.result();
                ex.upstreamLocalAddress = up.connection() == null ? null : localAddress(up.connection());
                UpstreamPrincipals principals = up.connection() == null ? null : upstreamPrincipals(up.connection());
                ex.upstreamPeerPrincipal = principals == null ? null : principals.peer;
                ex.upstreamLocalPrincipal = principals == null ? null : principals.local;
                if (perTryIdle != null && !perTryIdle.isZero()) {
                    ex.perTryIdle = new IdleTimer(vertx, perTryIdle.toMillis(), () -> perTryIdleTimeout(gen, host));
                }
                if (perTry != null && !perTry.isZero() || perTryIdle != null && !perTryIdle.isZero()) {
                    // as Envoy's upstream request, once its pool is ready (the wait for a connection is not part
                    // of the try) and the request has ended (else from then: bodyEnded)
                    if (req.stream != null && !req.stream.ended()) {
                        perTryDeferred = true;
                    } else {
                        startPerTry(gen, host);
                    }
                }
                if (upstreamDurationMillis > 0) {
                    // from the same moment, and over the response's body too
                    ex.upstreamDurationTimer = vertx.setTimer(upstreamDurationMillis,
                            id -> upstreamDurationReached(gen));
                }
                HostAndPort sent = sentAuthority(authority);
                if (sent != null) {
                    up.authority(sent);
                }
                ex.cluster.countRequestOnConnection(host, up);
                if (attempt > 1) {
                    // a retry's, over the route's header rules (the first attempt's went before them)
                    retryHeaders(up.headers(), timeoutRetry, attempt);
                }
                if (req.continueRelay != null) {
                    up.continueHandler(v -> continued(gen));
                }
                inflight = up;
                RequestBodyStream.forward(up, req.body, req.stream).onComplete(rr -> answered(gen, host, up, rr));
            });
        }

        /**
         * An attempt's response headers came, or it failed before them: the attempt in flight's, or one a per-try
         * timeout left in flight beside a retry ({@link #hedged}); any other's is reset.
         */
        void answered(int gen, Host host, HttpClientRequest up, AsyncResult<HttpClientResponse> rr) {
            var closing = rr.succeeded() && closesConnection(rr.result()) ? stats(ex) : null;
            if (closing != null) {
                closing.connectionCloseNotify(); // as Envoy's HTTP/1 pool, on the answer's head
            }
            Hedged hedged = gen != generation && !ex.done ? hedged(gen) : null;
            if (hedged == null && (gen != generation || ex.done)) {
                if (rr.succeeded()) {
                    rr.result().request().reset();
                }
                return;
            }
            RetryState.Failure failure = null;
            if (rr.failed()) {
                Throwable t = rr.cause();
                boolean refused = t instanceof StreamResetException sre
                        && sre.getCode() == Http2Error.REFUSED_STREAM.code() || unprocessed(t, up);
                boolean connect = isConnectFailure(t);
                host.outlier().reportLocalOriginFailure(connect ? LocalOriginFailure.CONNECT_FAILED
                        : LocalOriginFailure.RESET);
                if (connect) {
                    ex.connectFailure = dev.inmesh.runtime.upstream.ConnectFailure.of(t);
                    ex.connectCause = t;
                }
                // as Envoy's HTTP/2 codec: the upstream's RST_STREAM with another code is a remote reset
                failure = refused ? RetryState.Failure.REFUSED_STREAM
                        : t instanceof StreamResetException ? RetryState.Failure.REMOTE_RESET
                        : connect ? RetryState.Failure.CONNECT_FAILURE
                        : isProtocolError(t) ? RetryState.Failure.PROTOCOL_ERROR : RetryState.Failure.RESET;
            }
            if (failure == RetryState.Failure.PROTOCOL_ERROR) {
                countProtocolError(ex); // the attempt in flight's, or one a per-try timeout left beside it
            }
            if (hedged != null) {
                if (failure != null) {
                    hedgedFailed(hedged, failure);
                } else {
                    hedgedResponded(hedged, rr.result());
                }
            } else if (failure != null) {
                failed(gen, failure);
            } else {
                responded(gen, host, rr.result());
            }
        }

        /**
         * The attempt's upstream answered {@code 100 Continue} under {@code proxy_100_continue}: as Envoy's router, the
         * first one is relayed to the caller (who then sends its body), and the request is no longer retried, since a
         * next upstream might not ask for the body the caller now sends; later ones go nowhere.
         */
        void continued(int gen) {
            if (gen != generation || ex.done || continueRelayed) {
                return;
            }
            continueRelayed = true;
            ex.touch(); // activity for the idle timeouts, as any upstream headers
            RequestBodyStream body = ex.request.stream;
            if (body != null) {
                body.stopRetaining();
            }
            ex.request.continueRelay.handle(null);
        }

        /** The attempt's per-try timeout and per-try idle timeout, those the policy sets, start. */
        void startPerTry(int gen, Host host) {
            if (perTry != null && !perTry.isZero()) {
                perTryTimer = vertx.setTimer(Math.max(1, perTry.toMillis()), id -> {
                    if (gen == generation && !ex.done) {
                        perTryTimer = -1;
                        perTryTimedOut(gen, host, RetryState.Failure.PER_TRY_TIMEOUT);
                    }
                });
            }
            if (ex.perTryIdle != null) {
                ex.perTryIdle.start();
            }
        }

        @Override
        public void bodyActivity() {
            ex.touch();
        }

        /**
         * As Envoy's router when the body outgrows its buffer limit: {@code retry_or_shadow_abandoned}, no more
         * retries nor mirrors, and if a retry was waiting for its back-off, nothing can take the body on: 507.
         */
        @Override
        public void retryBufferOverflowed() {
            if (retriesAbandoned) {
                return;
            }
            retriesAbandoned = true;
            mirror = null; // the body is not kept whole: nothing to mirror
            var st = stats(ex);
            if (st != null) {
                st.retryOrShadowAbandoned();
            }
            if (backingOff && !ex.done) {
                generation++;
                backingOff = false;
                end(() -> reply(ex, promise, 507, "exceeded request buffer limit while retrying upstream",
                        "request_payload_exceeded_retry_buffer_limit", null));
            }
        }

        /**
         * The request is complete: as Envoy, the route timeout, and the per-try timers of the attempt in flight, start
         * now, and the copies of a mirrored request go.
         */
        @Override
        public void bodyEnded() {
            ex.requestCompleteNanos = System.nanoTime();
            if (ex.completed) {
                return;
            }
            if (routeTimeoutMillis > 0 && ex.routeTimer < 0) {
                ex.routeTimer = vertx.setTimer(routeTimeoutMillis, id -> globalTimeout());
            }
            if (perTryDeferred) {
                perTryDeferred = false;
                if (!ex.done && ex.activeHost != null) {
                    startPerTry(generation, ex.activeHost);
                }
            }
            sendMirror(ex.request.stream.mirroredBody());
        }

        /**
         * The request is complete: its copies go, with its whole body, if it is still going upstream, as Envoy mirrors
         * it: an attempt was made and no local reply ended the exchange (a retry may be waiting; a committed upstream
         * response may still be streaming).
         */
        void sendMirror(Buffer body) {
            RequestMirror m = mirror;
            mirror = null;
            if (m != null && ex.attempts > 0 && !ex.completed
                    && (!ex.done || "via_upstream".equals(ex.responseCodeDetails))) {
                m.send(body);
            }
        }

        /** The attempt in flight takes no more of a streamed body. */
        void detachBody() {
            if (ex.request.stream != null) {
                ex.request.stream.detach();
            }
        }

        void responded(int gen, Host host, HttpClientResponse resp) {
            // Not paused here: a retried response's body is drained below; the committed one is paused just before
            // it is handed over (no chunk can arrive in between: this all runs in one event-loop task).
            cancelPerTry();
            int status = resp.statusCode();
            var st = stats(ex);
            reportAnswer(host, ex.grpc, status, resp.headers());
            boolean retriable = retry.retriableResponse(status, resp.headers());
            if (retriable) {
                retry.readResetHeaders(resp.headers(), System.currentTimeMillis() / 1000);
            }
            boolean retried = retryGranted(retriable);
            // as Envoy's router: an answer it would have retried is not passed on while an attempt a per-try timeout
            // left in flight may still answer; it is dropped (charged nowhere)
            boolean dropped = !retried && retriable && hedges != null && !hedges.isEmpty();
            if (st != null && !dropped) {
                // as Envoy charges them: a response retried away under retry.upstream_rq_*, the one passed on (or
                // kept when retries ran out or overflowed) under upstream_rq_*
                if (retried) {
                    st.retriedResponse(status);
                } else {
                    st.requestCompleted(status);
                }
            }
            if (retried || dropped) {
                host.stats().requestFailed(); // as Envoy's router charges an answer it retries away or drops
                cancelUpstreamDuration(ex);
                inflight = null;
                detachBody();
                discard(resp);
                releaseHost(ex);
                if (retried) {
                    scheduleRetry(false);
                } else {
                    generation++;
                }
                return;
            }
            passOn(host, resp, status);
        }

        /**
         * The response of the attempt in flight is the caller's (unless an internal redirect takes it): as Envoy's
         * router, the attempts a per-try timeout left in flight beside it are reset.
         */
        void passOn(Host host, HttpClientResponse resp, int status) {
            resetHedges();
            if (redirects && action.internalRedirectPolicy().redirectResponseCodes().contains(status)
                    && followRedirect(status, resp, host)) {
                return;
            }
            if (chargeAnswer(host, ex.grpc, status, resp.headers())) {
                ex.grpcChargeDeferred = host;
            }
            ex.upstreamProtocol = resp.version() == io.vertx.core.http.HttpVersion.HTTP_2 ? "HTTP/2"
                    : resp.version() == io.vertx.core.http.HttpVersion.HTTP_1_0 ? "HTTP/1.0" : "HTTP/1.1";
            RequestBodyStream body = ex.request.stream;
            // as Envoy, the upstream service time runs from the end of the request: none while it still streams
            boolean requestComplete = body == null || body.ended();
            if (body != null) {
                body.stopRetaining(); // a response is passed on: no retry can follow
            }
            long received = System.nanoTime();
            ex.firstUpstreamRxNanos = received - ex.request.startNanos;
            ex.upstreamServiceTimeMillis = requestComplete
                    ? (received - ex.requestCompleteNanos) / 1_000_000 : 0;
            // A copy, not the upstream's own headers: Vert.x still reads "connection" from those when the body ends.
            // HTTP/1.x: Netty's headers copied as they are (names keep their cached hashes), not converted entry by
            // entry into Strings; HTTP/2 headers (lower-case names only) are copied into a map that takes any name.
            MultiMap h = resp.version() == io.vertx.core.http.HttpVersion.HTTP_2
                    ? MultiMap.caseInsensitiveMultiMap().addAll(resp.headers()) : resp.headers().copy(true);
            for (AsciiString name : RESPONSE_HOP_BY_HOP) {
                h.remove(name);
            }
            routerResponseHeaders(ex, resp.statusCode(), h, requestComplete, vh);
            ex.responseCodeDetails = "via_upstream";
            releaseRetrySlot();
            ex.done = true;
            if (ex.perTryIdle != null) {
                ex.perTryIdle.start(); // the per-try idle timeout still covers the body, from these headers on
            }
            ex.touch(); // the response headers go downstream: activity
            if (ex.request.lua != null && ex.request.lua.readsResponseBody()) {
                holdResponse(host, status, h, resp);
                return;
            }
            encodeResponse(host, status, h, null, true);
            // Vert.x drops body chunks that arrive while the response has no handler. The caller may set its
            // handlers later (from another thread, or in a later task): hold the body until it resumes.
            resp.pause();
            // The route timeout still covers the body: if it fires now, the upstream stream is reset.
            promise.tryComplete(new RouterResponse(status, h, resp, null, ex));
        }

        /**
         * The encoding of the upstream's response headers by the filters before the router, in reverse chain order:
         * the Lua filters' response scripts ({@code body} held for them, or null; none when {@code lua} is false),
         * the header mutation filter, the stateful session, tracing, CORS, local rate limit and ext_authz filters,
         * then the connection manager.
         */
        void encodeResponse(Host host, int status, MultiMap h, LuaFilter.Body body, boolean lua) {
            lateFiltersResponse(ex, status, h, body, lua);
            if (ex.session != null) {
                ex.session.onResponse(host.addressString(), h); // its encoding runs right after the router's
            }
            spanResponse(ex, h);
            if (ex.cors != null) {
                ex.cors.setOn(h); // over the upstream's own, as Envoy's CORS filter sets them
            }
            if (ex.rateLimit != null) {
                ex.rateLimit.setOn(h);
            }
            ExtAuthzFilter.ResponseHeader.applyAll(h, ex.authzResponseHeaders);
            connectionManagerHeaders(ex, h);
        }

        /**
         * A response a Lua response script may read the body of ({@link LuaFilter.Stream#readsResponseBody}): as
         * Envoy's Lua filter buffers it for {@code body()} before the headers go on, its body is read whole first
         * (each chunk is activity for the idle timeouts), then the scripts run over the headers and the body, and the
         * caller gets the headers with the body as the scripts left it ({@link HeldResponse}), the upstream's
         * trailers after it. A body longer than the request's buffer limit ({@link #requestBufferLimit}) is answered
         * as Envoy's connection manager answers a response over a filter's buffer before its headers went on: the
         * upstream stream is reset and the caller gets a 500 ({@link #responseTooLarge}). A caller that leaves
         * meanwhile resets the upstream stream and ends the exchange (DC); a body that fails (an upstream reset, the
         * route timeout) is passed on as a body that failed after its headers.
         */
        void holdResponse(Host host, int status, MultiMap h, HttpClientResponse resp) {
            RouterRequest req = ex.request;
            long limit = ex.route instanceof RouteResult.Forward f ? requestBufferLimit(req, f) : Long.MAX_VALUE;
            Context ctx = Vertx.currentContext();
            Buffer held = Buffer.buffer();
            boolean[] decided = {false};
            resp.handler(chunk -> {
                if (decided[0]) {
                    return;
                }
                ex.touch();
                held.appendBuffer(chunk);
                if (held.length() > limit) {
                    decided[0] = true;
                    req.canceller = null;
                    resp.request().reset();
                    promise.tryComplete(responseTooLarge(ex));
                }
            });
            resp.exceptionHandler(t -> {
                if (!decided[0]) {
                    decided[0] = true;
                    req.canceller = null;
                    encodeResponse(host, status, h, null, false); // the scripts waited for a body that never came
                    promise.tryComplete(new RouterResponse(status, h, new HeldResponse(resp, null, t, ctx), null, ex));
                }
            });
            resp.endHandler(v -> {
                if (decided[0]) {
                    return;
                }
                decided[0] = true;
                req.canceller = null;
                LuaFilter.Body body = LuaFilter.Body.of(held, b -> { });
                encodeResponse(host, status, h, body, true);
                Buffer out = HeldResponse.bodyAllowed(req.method, status) ? body.held() : null;
                promise.tryComplete(new RouterResponse(status, h, new HeldResponse(resp, out, null, ctx), null, ex));
            });
            req.canceller = () -> onContext(ctx, () -> {
                if (!decided[0]) {
                    decided[0] = true;
                    resp.request().reset();
                    RouterRequest.Departure gone = req.departure;
                    ex.flags.add(gone.flag());
                    ex.responseCodeDetails = gone.details();
                    promise.tryComplete(new RouterResponse(0, MultiMap.caseInsensitiveMultiMap(), null,
                            Buffer.buffer(), ex));
                }
            });
            if (req.cancelled) {
                req.canceller.run();
            }
        }

        /**
         * The authority an attempt on {@code host} goes upstream with: the endpoint's hostname under
         * {@code auto_host_rewrite}, else the route's (its host rewrites applied). As Envoy's router rewrites the
         * request's own Host, an internal redirect's {@code x-envoy-original-url} has it too.
         */
        private String upstreamAuthority(Host host) {
            return rewritesHost(host) ? host.hostname() : target.authority;
        }

        /** Whether {@code auto_host_rewrite} replaces the Host with {@code host}'s hostname. */
        private boolean rewritesHost(Host host) {
            return action.autoHostRewrite() && !host.hostname().isEmpty();
        }

        /**
         * An upstream redirect the route's {@code internal_redirect_policy} names, as Envoy's router's
         * {@code setupRedirect}: once the request came whole (its body kept whole) with a {@code Location} the policy
         * follows ({@link InternalRedirects#follow}), the response is dropped, this exchange ends unseen (no access
         * log, no metrics; as Envoy's stream that is recreated, it leaves the active requests) and the request goes
         * again, to the redirect's URL, through the filters and the route table, as a new request whose answer is the
         * caller's ({@code upstream_internal_redirect_succeeded_total}). Otherwise the redirect is passed on
         * ({@code upstream_internal_redirect_failed_total}).
         */
        boolean followRedirect(int status, HttpClientResponse resp, Host host) {
            RouterRequest req = ex.request;
            RequestBodyStream body = req.stream;
            Buffer whole = body == null ? req.body : body.retainedWhole();
            String location = resp.getHeader(HttpHeaders.LOCATION);
            boolean complete = (body == null || whole != null) && !retriesAbandoned;
            io.vertx.core.http.HttpMethod method = req.method;
            String passed = !complete || location == null ? null : InternalRedirects.follow(req,
                    action.internalRedirectPolicy(), RouteResult.routeOf(ex.route).name(), status, location,
                    resp.headers(), ex.table, upstreamAuthority(host), target.path, random().nextLong());
            var st = stats(ex);
            boolean followed = complete && location != null && passed == null;
            if (st != null) {
                st.internalRedirect(followed);
            }
            if (!followed) {
                if (passed != null && req.downstreamStats != null) {
                    req.downstreamStats.internalRedirectPassedThrough(passed);
                }
                return false;
            }
            inflight = null;
            detachBody();
            discard(resp);
            releaseRetrySlot();
            generation++;
            ex.done = true;
            endExchange(ex);
            if (req.downstreamStats != null) {
                req.downstreamStats.requestEnded(0, false, 0, 0); // no longer active: the new request counts anew
            }
            req.canceller = null;
            req.stream = null;
            if (body != null) {
                body.close();
            }
            // a 303 made the request a GET, which goes without the body
            req.body = req.method != method ? null : whole;
            forward(req, ex.table, clusters).onComplete(ar -> {
                if (ar.succeeded()) {
                    promise.tryComplete(ar.result());
                } else {
                    promise.tryFail(ar.cause()); // forward never fails (failures are local replies): kept as it is
                }
            });
            return true;
        }

        /**
         * Lets go of a response that is being retried. Without a body it is already complete and its connection goes
         * back to the pool. Otherwise, as Envoy, the upstream request is reset: draining could wait forever on a
         * body that never ends (and hold the connection a retry may need).
         */
        void discard(HttpClientResponse resp) {
            RequestBodyStream body = ex.request.stream;
            // with a body still going up, the stream cannot be left to end: it is reset as any other
            if ("0".equals(resp.getHeader("content-length")) && (body == null || body.sentWhole())) {
                resp.end();
                return;
            }
            resp.exceptionHandler(t -> { });
            resp.request().reset();
        }

        void failed(int gen, RetryState.Failure failure) {
            if (gen != generation || ex.done) {
                return;
            }
            Host host = ex.activeHost;
            cancelPerTry();
            cancelUpstreamDuration(ex);
            inflight = null;
            detachBody();
            releaseHost(ex);
            if (failure != RetryState.Failure.CONNECT_FAILURE) {
                retry.resetAfterSent(); // as Envoy's router notes it of a reset attempt that had sent its request
            }
            boolean retried = retryGranted(retry.retriableFailure(failure));
            if (host != null && (retried || failure != RetryState.Failure.MAX_STREAM_DURATION)) {
                // as Envoy's router: an attempt retried, or answered for by the router, is its host's error; one its
                // max_stream_duration ended unretried is charged nowhere
                host.stats().requestFailed();
            }
            if (retried) {
                scheduleRetry(failure == RetryState.Failure.PER_TRY_TIMEOUT
                        || failure == RetryState.Failure.PER_TRY_IDLE_TIMEOUT);
                return;
            }
            int status = failureStatus(failure);
            if (hedges != null && !hedges.isEmpty()) {
                // as Envoy's router: no answer while an attempt a per-try timeout left in flight may still give one
                generation++;
                return;
            }
            answerFailure(failure, status);
        }

        /**
         * The status of the local reply to an attempt that ended without a response, charged as the upstream's (none
         * when the stream's duration is reached, as Envoy's router charges none then).
         */
        int failureStatus(RetryState.Failure failure) {
            int status = switch (failure) {
                case PER_TRY_TIMEOUT, PER_TRY_IDLE_TIMEOUT -> 504;
                // as Envoy's local reply for a request timeout: 504 once the whole request was read, else 408
                case MAX_STREAM_DURATION -> ex.streamTimeoutStatus();
                // as Envoy's router: an answer it could not read is a bad gateway's, any other reset 503
                case PROTOCOL_ERROR -> 502;
                default -> 503;
            };
            if (failure != RetryState.Failure.MAX_STREAM_DURATION) {
                chargeLocalReply(ex, status);
            }
            return status;
        }

        /** The caller's answer to the last attempt's end without a response, which nothing retries. */
        void answerFailure(RetryState.Failure failure, int status) {
            end(() -> {
                switch (failure) {
                    case CONNECT_FAILURE -> {
                        ex.flags.add(ResponseFlag.UPSTREAM_CONNECTION_FAILURE);
                        // as Envoy: the pool's reset reason, then the connection's transport failure reason (the
                        // socket's error, a failed TLS handshake's) in the body and details
                        var why = ex.connectFailure != null ? ex.connectFailure
                                : dev.inmesh.runtime.upstream.ConnectFailure.UNKNOWN;
                        reply(ex, promise, 503, resetBody(why.reason()), why.details(), null);
                    }
                    case RESET -> {
                        ex.flags.add(ResponseFlag.UPSTREAM_CONNECTION_TERMINATION);
                        reply(ex, promise, 503, resetBody("connection termination"),
                                "upstream_reset_before_response_started{connection_termination}", null);
                    }
                    case PROTOCOL_ERROR -> {
                        ex.flags.add(ResponseFlag.UPSTREAM_PROTOCOL_ERROR);
                        reply(ex, promise, status, resetBody("protocol error"),
                                "upstream_reset_before_response_started{protocol_error}", null);
                    }
                    case REFUSED_STREAM -> {
                        ex.flags.add(ResponseFlag.UPSTREAM_REMOTE_RESET);
                        reply(ex, promise, 503, resetBody("remote refused stream reset"),
                                "upstream_reset_before_response_started{remote_refused_stream_reset}", null);
                    }
                    case REMOTE_RESET -> {
                        ex.flags.add(ResponseFlag.UPSTREAM_REMOTE_RESET);
                        reply(ex, promise, 503, resetBody("remote reset"),
                                "upstream_reset_before_response_started{remote_reset}", null);
                    }
                    case PER_TRY_TIMEOUT, PER_TRY_IDLE_TIMEOUT -> {
                        ex.flags.add(ResponseFlag.UPSTREAM_REQUEST_TIMEOUT);
                        reply(ex, promise, ex.timeoutStatus, "upstream request timeout", failure == RetryState.Failure
                                .PER_TRY_TIMEOUT ? "upstream_per_try_timeout" : "upstream_per_try_idle_timeout",
                                null);
                    }
                    case MAX_STREAM_DURATION -> {
                        ex.flags.add(ResponseFlag.UPSTREAM_MAX_STREAM_DURATION_REACHED);
                        reply(ex, promise, status, "upstream max stream duration reached",
                                "upstream_max_stream_duration_reached", null);
                    }
                }
            });
        }

        /** Envoy's body for an attempt that ended without a response; it says whether the request was retried. */
        String resetBody(String reason) {
            return ex.attempts > 1 ? "upstream connect error or disconnect/reset before headers. "
                    + "retried and the latest reset reason: " + reason : upstreamResetBody(reason);
        }

        /**
         * Sets a retry's router headers on its copy of the request's, as Envoy's router sets them over the route's
         * header rules for each retry: {@code x-envoy-attempt-count}, {@code x-envoy-is-timeout-retry}, and the
         * timeout it is told, {@code x-envoy-expected-rq-timeout-ms} (what remains of the route timeout, or the per-try
         * timeout when shorter) and, under {@code max_grpc_timeout}, {@code grpc-timeout}.
         */
        void retryHeaders(MultiMap h, boolean timeoutRetry, int attempt) {
            if (vh.includeRequestAttemptCount()) {
                h.set(HeaderNames.X_ENVOY_ATTEMPT_COUNT, Integer.toString(attempt));
            }
            if (vh.includeIsTimeoutRetryHeader()) {
                h.set(HeaderNames.X_ENVOY_IS_TIMEOUT_RETRY, timeoutRetry ? "true" : "false");
            }
            long global = 0;
            if (routeTimeoutMillis > 0) {
                // the route timeout runs from the end of the request: not yet while a streamed body still comes
                RequestBodyStream body = ex.request.stream;
                long from = body == null || body.ended() ? ex.requestCompleteNanos : System.nanoTime();
                long elapsed = (System.nanoTime() - from) / 1_000_000;
                global = Math.max(1, routeTimeoutMillis - elapsed);
            }
            timeoutHeaders(h, ex.request, action, ex.grpc, expectedTimeoutMillis(global, perTry, hedge));
        }

        /**
         * Decides on an attempt's outcome as Envoy's retry state does, with its counters: a retriable outcome is
         * retried if a retry is left ({@code upstream_rq_retry_limit_exceeded} and flag URX if not) and the
         * {@code max_retries} breaker has room ({@code upstream_rq_retry_overflow} and flag UO if not; the outcome is
         * then answered as it is); an outcome that is not retriable after a retry counts as
         * {@code upstream_rq_retry_success}.
         *
         * @return whether to retry; the retry slot is then held
         */
        boolean retryGranted(boolean retriable) {
            if (retriesAbandoned || continueRelayed) {
                return false; // as Envoy, whose retry state is gone: the outcome is answered as it is
            }
            var st = stats(ex);
            RetryState.Decision d = retry.next(retriable);
            if (d == RetryState.Decision.NO_RETRY) {
                if (retrySlotHeld && st != null) {
                    st.retrySuccess();
                }
                return false;
            }
            if (d == RetryState.Decision.LIMIT_EXCEEDED) {
                ex.flags.add(ResponseFlag.UPSTREAM_RETRY_LIMIT_EXCEEDED);
                if (st != null) {
                    st.retryLimitExceeded();
                }
                return false;
            }
            if (tryRetrySlot()) {
                return true;
            }
            ex.flags.add(ResponseFlag.UPSTREAM_OVERFLOW);
            if (st != null) {
                st.retryOverflow();
            }
            return false;
        }

        boolean tryRetrySlot() {
            releaseRetrySlot();
            if (!ex.breakers.tryStartRetry()) {
                return false;
            }
            retrySlotHeld = true;
            return true;
        }

        void releaseRetrySlot() {
            if (retrySlotHeld) {
                ex.breakers.finishRetry();
                retrySlotHeld = false;
            }
        }

        /**
         * Starts a retry after its back-off; {@code afterTimeout}: it follows a per-try timeout or per-try idle
         * timeout, hedged or not (not an upstream's {@code max_stream_duration}, as Envoy's router tells it).
         */
        void scheduleRetry(boolean afterTimeout) {
            var st = stats(ex);
            if (st != null) {
                st.retry(retry.rateLimitedBackOff());
            }
            long delay = retry.backOffMillis();
            generation++;
            backingOff = true;
            if (delay <= 0) {
                ctx.runOnContext(v -> retryStart(afterTimeout));
            } else {
                backOffTimer = vertx.setTimer(delay, id -> retryStart(afterTimeout));
            }
        }

        /** A retry's attempt: an unexpected error must still answer, or the exchange would hang with its slots. */
        void retryStart(boolean afterTimeout) {
            backingOff = false;
            backOffTimer = -1;
            try {
                start(afterTimeout);
            } catch (RuntimeException e) {
                generation++;
                cancelPerTry();
                releaseHost(ex);
                end(() -> reply(ex, promise, 500, "", "internal_error", null));
            }
        }

        void globalTimeout() {
            if (ex.done) {
                // committed: the body is still streaming past the route timeout
                if (!ex.completed && ex.upstreamServiceTimeMillis >= 0) {
                    ex.flags.add(ResponseFlag.UPSTREAM_REQUEST_TIMEOUT);
                    ex.responseCodeDetails = "upstream_response_timeout";
                    ex.resetByRouter = true;
                    countTimeout(); // as Envoy, which counts the upstream request it ends, answered or not
                    resetInflight();
                }
                return;
            }
            generation++;
            for (Hedged h : hedges == null ? List.<Hedged>of() : hedges) {
                // as Envoy, each upstream request ended counts and is charged (its host already heard of a timeout)
                countTimeout();
                chargeLocalReply(ex, ex.timeoutStatus);
                h.host.stats().requestFailed();
            }
            if (ex.activeHost != null) {
                // an attempt awaiting its response: as Envoy, it counts as timed out and its 504 is charged (none
                // while a retry waits: no upstream request is ended); its host hears of the timeout only when the
                // attempt had its connection (Envoy's upstream request has no host while its stream is pending)
                countTimeout();
                if (cancelWait == null) {
                    ex.activeHost.outlier().reportLocalOriginFailure(LocalOriginFailure.TIMEOUT);
                    ex.activeHost.stats().requestFailed();
                }
                chargeLocalReply(ex, ex.timeoutStatus);
            }
            resetInflight();
            cancelPerTry();
            releaseHost(ex);
            ex.flags.add(ResponseFlag.UPSTREAM_REQUEST_TIMEOUT);
            end(() -> reply(ex, promise, ex.timeoutStatus, "upstream request timeout", "upstream_response_timeout",
                    null));
        }

        /** The route timeout ended an upstream request: {@code upstream_rq_timeout}. */
        void countTimeout() {
            var st = stats(ex);
            if (st != null) {
                st.timeout();
            }
        }

        /**
         * No activity on the stream for the idle timeout, as Envoy's connection manager: before the response started,
         * the attempts end and the caller gets {@code stream timeout} (SI), 504 once the whole request was read, else
         * 408 (a gRPC caller's status UNAVAILABLE, or UNKNOWN); after, the response is cut (the upstream stream is reset, the
         * caller sees its body fail).
         */
        void streamIdleTimeout() {
            if (ex.request.downstreamStats != null && !ex.completed) {
                ex.request.downstreamStats.idleTimeout();
            }
            if (ex.done) {
                if (!ex.completed && ex.upstreamServiceTimeMillis >= 0) {
                    ex.flags.add(ResponseFlag.STREAM_IDLE_TIMEOUT);
                    ex.responseCodeDetails = "stream_idle_timeout";
                    ex.resetByRouter = true;
                    resetInflight();
                }
                return;
            }
            stop(ResponseFlag.STREAM_IDLE_TIMEOUT, ex.streamTimeoutStatus(), "stream timeout", "stream_idle_timeout");
        }

        /**
         * The request outlived its {@code max_stream_duration} ({@link Router#maxStreamDuration}), as Envoy's
         * connection manager ends it: before the response, the attempts end and the caller gets {@code downstream
         * duration timeout}, 504 once the whole request was read, else 408 ({@code max_duration_timeout}); after, the
         * response is cut (the upstream stream is reset, the caller sees its body fail).
         */
        void maxStreamDurationReached() {
            ex.durationTimer = -1;
            if (ex.completed) {
                return;
            }
            if (ex.request.downstreamStats != null) {
                ex.request.downstreamStats.maxDurationReached();
            }
            if (ex.done) {
                if (ex.upstreamServiceTimeMillis >= 0) {
                    ex.responseCodeDetails = "max_duration_timeout";
                    ex.resetByRouter = true;
                    resetInflight();
                }
                return;
            }
            // a gRPC caller's trailers-only answer says DEADLINE_EXCEEDED, as Envoy's
            stop(null, ex.streamTimeoutStatus(), "downstream duration timeout", "max_duration_timeout", ex.grpc
                    ? MultiMap.caseInsensitiveMultiMap().set(HeaderNames.GRPC_STATUS, "4") : null);
        }

        /**
         * The caller went away before the response ({@link Router#cancel}), or the connection manager's
         * {@code request_timeout} ran out ({@link Router#requestTimeout}).
         */
        void downstreamReset() {
            if (ex.done) {
                return;
            }
            RouterRequest.Refusal refusal = ex.request.refusal;
            if (refusal != null) {
                stop(null, refusal.status(), refusal.body(), refusal.details());
            } else {
                RouterRequest.Departure gone = ex.request.departure;
                stop(gone.flag(), 0, "", gone.details());
            }
        }

        /**
         * Ends the exchange before its response: the attempt in flight is reset, none follows, a local reply (with
         * {@code flag}, unless null).
         */
        void stop(ResponseFlag flag, int status, String body, String details) {
            stop(flag, status, body, details, null);
        }

        void stop(ResponseFlag flag, int status, String body, String details, MultiMap extra) {
            generation++;
            resetInflight();
            cancelPerTry();
            releaseHost(ex);
            if (flag != null) {
                ex.flags.add(flag);
            }
            end(() -> reply(ex, promise, status, body, details, extra));
        }

        void resetInflight() {
            Runnable waiting = cancelWait;
            cancelWait = null;
            if (waiting != null) {
                waiting.run(); // as Envoy's router: the pending request is cancelled, not left for a connection
            }
            HttpClientRequest r = inflight;
            inflight = null;
            detachBody();
            if (r != null) {
                r.reset(0, new TimeoutException("upstream request timeout"));
            }
        }

        /**
         * The attempt reached its {@code max_stream_duration} (the cluster's, or a trusted caller's
         * {@code x-envoy-upstream-stream-duration-ms}), counted from when it had its connection: as Envoy's router, it
         * is reset (no outlier report); before the response, it is retried as a reset or answered 408 or 504
         * {@code upstream max stream duration reached} (UMSDR); once the response was passed on, the response is cut.
         */
        void upstreamDurationReached(int gen) {
            Hedged h = gen != generation && !ex.done ? hedged(gen) : null;
            if (h != null) {
                // a hedged attempt's: reset, not retried
                h.durationTimer = -1;
                var st = stats(ex);
                if (st != null) {
                    st.maxDurationReached();
                }
                hedgedFailed(h, RetryState.Failure.MAX_STREAM_DURATION);
                h.request.reset(0, new TimeoutException("upstream max stream duration reached"));
                return;
            }
            if (gen != generation || ex.completed) {
                return; // an earlier attempt's (a later one's timer stays cancellable), or the exchange is over
            }
            ex.upstreamDurationTimer = -1;
            var st = stats(ex);
            if (st != null) {
                st.maxDurationReached();
            }
            if (!ex.done) {
                HttpClientRequest timedOut = inflight;
                failed(gen, RetryState.Failure.MAX_STREAM_DURATION);
                if (timedOut != null) {
                    timedOut.reset(0, new TimeoutException("upstream max stream duration reached"));
                }
                return;
            }
            if (ex.upstreamServiceTimeMillis >= 0) {
                ex.flags.add(ResponseFlag.UPSTREAM_MAX_STREAM_DURATION_REACHED);
                ex.responseCodeDetails = "upstream_max_stream_duration_reached";
                ex.resetByRouter = true;
                resetInflight();
            }
        }

        /**
         * The attempt took too long (per-try timeout) or was idle too long (per-try idle timeout): the host hears of a
         * timeout, and the attempt is retried or answered 504. Decided first, then reset: the reset fails the
         * attempt's send future at once, and that failure must find the attempt already over.
         */
        void perTryTimedOut(int gen, Host host, RetryState.Failure failure) {
            RequestBodyStream body = ex.request.stream;
            if (hedge && (body == null || body.sentWhole())) {
                // (an attempt still being sent a streamed body cannot share it with a retry: it times out as usual)
                hedgeOnPerTryTimeout(gen, host);
                return;
            }
            countPerTryTimeout(failure == RetryState.Failure.PER_TRY_IDLE_TIMEOUT);
            host.outlier().reportLocalOriginFailure(LocalOriginFailure.TIMEOUT);
            HttpClientRequest timedOut = inflight;
            failed(gen, failure);
            if (timedOut != null) {
                timedOut.reset(0, new TimeoutException("upstream per-try timeout"));
            }
        }

        /**
         * A per-try timeout (or per-try idle timeout) under hedging, as Envoy's router's soft per-try timeout: the
         * attempt is neither reset nor counted in {@code upstream_rq_per_try_timeout}; its host hears of a timeout,
         * and a retry, if one is left and the {@code max_retries} breaker has room (whatever {@code retry_on} says:
         * nothing was reset), starts beside it after its back-off. Without one the attempt goes on alone (URX or UO).
         */
        void hedgeOnPerTryTimeout(int gen, Host host) {
            cancelPerTry();
            host.outlier().reportLocalOriginFailure(LocalOriginFailure.TIMEOUT);
            if (retry == RetryState.NONE || !retryGranted(true)) {
                return;
            }
            if (hedges == null) {
                hedges = new ArrayList<>(2);
            }
            hedges.add(new Hedged(gen, host, inflight, ex.activeStats, ex.requestSlotHeld, ex.upstreamDurationTimer,
                    ex.upstreamLocalAddress, ex.upstreamPeerPrincipal, ex.upstreamLocalPrincipal));
            // its host slot, counters and duration timer go with it: the retry takes the exchange's
            ex.requestSlotHeld = false;
            ex.activeHost = null;
            ex.activeStats = null;
            ex.upstreamDurationTimer = -1;
            inflight = null;
            detachBody();
            scheduleRetry(true);
        }

        /** The attempt of generation {@code gen} a per-try timeout left in flight, or null. */
        Hedged hedged(int gen) {
            if (hedges != null) {
                for (Hedged h : hedges) {
                    if (h.gen == gen) {
                        return h;
                    }
                }
            }
            return null;
        }

        /** Whether the exchange's own attempt is in flight, or a retry waits for its back-off. */
        boolean attemptPending() {
            return ex.activeHost != null || backingOff;
        }

        /**
         * A hedged attempt answered. As Envoy's router, it is not retried again: an answer that would have been
         * retried is dropped (reset) while another attempt may still answer; otherwise it wins: the attempt in flight
         * (or the retry waiting for its back-off) and the other hedged attempts are reset, and it is the one the
         * access log and the caller see.
         */
        void hedgedResponded(Hedged h, HttpClientResponse resp) {
            int status = resp.statusCode();
            reportAnswer(h.host, ex.grpc, status, resp.headers());
            hedges.remove(h);
            if (retry.retriableResponse(status, resp.headers()) && (attemptPending() || !hedges.isEmpty())) {
                h.host.stats().requestFailed(); // as Envoy's router charges an answer it drops
                h.release(Router.this, ex);
                discard(resp);
                return;
            }
            if (backOffTimer >= 0) {
                vertx.cancelTimer(backOffTimer);
                backOffTimer = -1;
            }
            backingOff = false;
            generation++; // first: the reset may fail the attempt's response at once, which must find it over
            resetInflight();
            cancelPerTry();
            cancelUpstreamDuration(ex);
            releaseHost(ex);
            // the winner is the exchange's attempt again: its callbacks (its max_stream_duration timer) count
            generation = h.gen;
            ex.activeHost = h.host;
            ex.lastHost = h.host;
            ex.activeStats = h.stats;
            ex.requestSlotHeld = h.slotHeld;
            ex.upstreamDurationTimer = h.durationTimer;
            ex.upstreamLocalAddress = h.localAddress;
            ex.upstreamPeerPrincipal = h.peerPrincipal;
            ex.upstreamLocalPrincipal = h.localPrincipal;
            ex.connectFailure = null;
            ex.connectCause = null;
            inflight = h.request;
            if (perTryIdle != null && !perTryIdle.isZero()) {
                // the per-try idle timeout covers its body, as any response's
                ex.perTryIdle = new IdleTimer(vertx, perTryIdle.toMillis(), () -> perTryIdleTimeout(h.gen, h.host));
            }
            var st = stats(ex);
            if (st != null) {
                st.requestCompleted(status);
            }
            passOn(h.host, resp, status);
        }

        /**
         * A hedged attempt ended without a response: as Envoy's router, it is not retried again; its end is charged,
         * and answered only when no other attempt may still answer.
         */
        void hedgedFailed(Hedged h, RetryState.Failure failure) {
            hedges.remove(h);
            h.release(Router.this, ex);
            if (failure != RetryState.Failure.MAX_STREAM_DURATION) {
                h.host.stats().requestFailed(); // answered for by the router, as any attempt's end not retried
            }
            int status = failureStatus(failure);
            if (attemptPending() || !hedges.isEmpty()) {
                return;
            }
            generation++;
            ex.lastHost = h.host;
            answerFailure(failure, status);
        }

        /** The hedged attempts are reset (another attempt won, or the exchange ends). */
        void resetHedges() {
            List<Hedged> all = hedges;
            if (all == null || all.isEmpty()) {
                return;
            }
            hedges = null; // first: a reset may fail an attempt's response at once, which must find it gone
            for (Hedged h : all) {
                h.release(Router.this, ex);
                h.request.reset(0, new TimeoutException("upstream request abandoned"));
            }
        }

        /**
         * No upstream activity on the attempt for the retry policy's {@code per_try_idle_timeout}. Before the
         * response, as a per-try timeout; once the response was passed on, as Envoy, it cannot be retried: the
         * response is cut (UT, {@code upstream_per_try_idle_timeout}).
         */
        void perTryIdleTimeout(int gen, Host host) {
            if (!ex.done) {
                if (gen == generation) {
                    perTryTimedOut(gen, host, RetryState.Failure.PER_TRY_IDLE_TIMEOUT);
                }
                return;
            }
            if (!ex.completed && ex.upstreamServiceTimeMillis >= 0) {
                countPerTryTimeout(true);
                host.outlier().reportLocalOriginFailure(LocalOriginFailure.TIMEOUT);
                ex.flags.add(ResponseFlag.UPSTREAM_REQUEST_TIMEOUT);
                ex.responseCodeDetails = "upstream_per_try_idle_timeout";
                ex.resetByRouter = true;
                resetInflight();
            }
        }

        /** Envoy's {@code upstream_rq_per_try_timeout} or {@code upstream_rq_per_try_idle_timeout}, retried or not. */
        void countPerTryTimeout(boolean idle) {
            var st = stats(ex);
            if (st != null) {
                st.perTryTimeout(idle);
            }
        }

        void cancelPerTry() {
            if (perTryTimer >= 0) {
                vertx.cancelTimer(perTryTimer);
                perTryTimer = -1;
            }
            if (ex.perTryIdle != null) {
                ex.perTryIdle.cancel();
            }
        }

        /**
         * The exchange ends before its response: its timers go (a retry's back-off too, which a reset header may make
         * minutes long: as Envoy's router destroys its retry state with the request, it must not hold the exchange and
         * its body that long), and its retry slot.
         */
        void end(Runnable replyAction) {
            resetHedges();
            if (backOffTimer >= 0) {
                vertx.cancelTimer(backOffTimer);
                backOffTimer = -1;
            }
            cancelRouteTimer(ex);
            ex.cancelIdleTimers();
            releaseRetrySlot();
            replyAction.run();
        }
    }

    /**
     * An attempt a per-try timeout left in flight beside a retry (Envoy's upstream request marked retried): what it
     * holds until it answers, fails, wins or is reset.
     */
    private static final class Hedged {
        final int gen;
        final Host host;
        final HttpClientRequest request;
        final dev.inmesh.runtime.stats.UpstreamStats stats;
        final boolean slotHeld;
        /** Its {@code max_stream_duration} timer, or -1. */
        long durationTimer;
        final String localAddress;
        final String peerPrincipal;
        final String localPrincipal;

        Hedged(int gen, Host host, HttpClientRequest request, dev.inmesh.runtime.stats.UpstreamStats stats,
               boolean slotHeld, long durationTimer, String localAddress,
               String peerPrincipal, String localPrincipal) {
            this.gen = gen;
            this.host = host;
            this.request = request;
            this.stats = stats;
            this.slotHeld = slotHeld;
            this.durationTimer = durationTimer;
            this.localAddress = localAddress;
            this.peerPrincipal = peerPrincipal;
            this.localPrincipal = localPrincipal;
        }

        /** It ended: its duration timer, host slot and {@code upstream_rq_active} go. */
        void release(Router router, Exchange ex) {
            if (durationTimer >= 0) {
                router.vertx.cancelTimer(durationTimer);
                durationTimer = -1;
            }
            if (slotHeld) {
                detach(ex.breakers, host, stats);
            }
        }
    }

    /**
     * Whether an HTTP/2 stream ended because the upstream's GOAWAY left it out (its id above the GOAWAY's last stream
     * id: the upstream never processed it). As Envoy's codec closes such streams, it is a refused stream, retried
     * under {@code refused-stream}.
     */
    static boolean unprocessed(Throwable t, HttpClientRequest up) {
        if (!(t instanceof HttpClosedException c)) {
            return false;
        }
        io.vertx.core.http.GoAway goAway = goAway(c);
        return goAway != null && up.streamId() > goAway.getLastStreamId();
    }

    /** Vert.x's field of the GOAWAY an {@link HttpClosedException} carries, read without its copy; null: none. */
    private static final java.lang.reflect.Field GO_AWAY = goAwayField();

    private static java.lang.reflect.Field goAwayField() {
        try {
            java.lang.reflect.Field f = HttpClosedException.class.getDeclaredField("goAway");
            f.setAccessible(true);
            return f;
        } catch (ReflectiveOperationException | RuntimeException e) {
            return null;
        }
    }

    /**
     * The GOAWAY that closed the connection, or null. {@link HttpClosedException#goAway()} copies it with its debug
     * data, which Netty may have released by then (a GOAWAY the upstream followed by closing its connection): the
     * copy throws, and the failed attempt would go unanswered. The GOAWAY's last stream id is read from Vert.x's own
     * field then; when that cannot be read either, the stream counts as processed (a connection termination).
     */
    private static io.vertx.core.http.GoAway goAway(HttpClosedException c) {
        try {
            return c.goAway();
        } catch (RuntimeException released) {
            try {
                return GO_AWAY == null ? null : (io.vertx.core.http.GoAway) GO_AWAY.get(c);
            } catch (ReflectiveOperationException | RuntimeException e) {
                return null;
            }
        }
    }

    static boolean isConnectFailure(Throwable t) {
        for (Throwable c : dev.inmesh.runtime.net.Causes.of(t)) {
            if (c instanceof ConnectException || c instanceof UnknownHostException
                    || c instanceof io.netty.channel.ConnectTimeoutException) {
                return true;
            }
            String m = c.getMessage();
            if (m != null && m.toLowerCase(Locale.ROOT).contains("connection refused")) {
                return true;
            }
        }
        return false;
    }

    /**
     * Whether an attempt failed because the upstream's HTTP/1 response head could not be read, as Envoy's codec
     * reports a protocol error: Vert.x fails the request with the decoder's reason, an {@link IllegalArgumentException}
     * (a bad status line, two lengths, an invalid header, two framings), a
     * {@link io.netty.handler.codec.DecoderException} (a head over the limit) or a
     * {@link io.netty.handler.codec.PrematureChannelClosureException} (the connection closed in the middle of the
     * headers, which Envoy's codec reports as the end of its input in the middle of a message). A connection closed
     * before any answer is a connection termination, as Envoy's.
     */
    /**
     * The authority a request goes upstream with, as Envoy's router forwards its {@code :authority}: as it is
     * ({@code a.local:80} keeps its port, which Vert.x leaves out of a parsed authority on port 80,
     * {@code user@a.local} its user information, which Vert.x does not parse), when it holds only an authority's
     * characters; null for none, the request then carrying the host's address.
     */
    static HostAndPort sentAuthority(String authority) {
        return authority == null || authority.isEmpty() || !Http1Admission.validAuthority(authority) ? null
                : HostAndPort.create(authority, -1);
    }

    static boolean isProtocolError(Throwable t) {
        return t instanceof IllegalArgumentException || t instanceof io.netty.handler.codec.DecoderException
                || t instanceof io.netty.handler.codec.PrematureChannelClosureException
                // an HTTP/2 answer the codec refused (Http2ResponseHeads, Netty's HPACK decoder), or a broken frame
                || t instanceof io.netty.handler.codec.http2.Http2Exception h
                        && h.error() == io.netty.handler.codec.http2.Http2Error.PROTOCOL_ERROR;
    }

    /**
     * Envoy's control headers as the router reads them: a trusted caller's, and those the filters before the router
     * set (an untrusted caller's are gone by then).
     */
    private record Control(long timeoutMs, long perTryTimeoutMs, int maxRetries, Set<String> retryOn,
                           Set<Integer> retriableStatusCodes, List<String> retriableHeaderNames,
                           long upstreamStreamDurationMs, Boolean hedgeOnPerTryTimeout) {
        // the names read on every request, as AsciiStrings, which keep their hash (see HeaderNames)
        private static final AsciiString RETRY_ON = AsciiString.cached("x-envoy-retry-on");
        private static final AsciiString RETRY_GRPC_ON = AsciiString.cached("x-envoy-retry-grpc-on");
        private static final AsciiString RETRIABLE_HEADER_NAMES = AsciiString.cached("x-envoy-retriable-header-names");
        private static final AsciiString RETRIABLE_STATUS_CODES = AsciiString.cached("x-envoy-retriable-status-codes");
        private static final AsciiString HEDGE_ON_PER_TRY_TIMEOUT =
                AsciiString.cached("x-envoy-hedge-on-per-try-timeout");
        private static final AsciiString UPSTREAM_RQ_TIMEOUT_MS = AsciiString.cached("x-envoy-upstream-rq-timeout-ms");
        private static final AsciiString UPSTREAM_RQ_PER_TRY_TIMEOUT_MS =
                AsciiString.cached("x-envoy-upstream-rq-per-try-timeout-ms");
        private static final AsciiString MAX_RETRIES = AsciiString.cached("x-envoy-max-retries");
        private static final AsciiString UPSTREAM_STREAM_DURATION_MS =
                AsciiString.cached("x-envoy-upstream-stream-duration-ms");

        /**
         * Reads a caller's control headers.
         *
         * @param respectExpected the router filter's {@code respect_expected_rq_timeout}: the route timeout is the
         *                        caller's {@code x-envoy-expected-rq-timeout-ms} when it sends one (an invalid value
         *                        leaves the route's), else its {@code x-envoy-upstream-rq-timeout-ms}
         */
        /** No control header: a request no router reads them of (a tcp_proxy's). */
        static final Control NONE = read(MultiMap.caseInsensitiveMultiMap(), false);

        static Control read(MultiMap h, boolean respectExpected) {
            // As Envoy, x-envoy-retry-on takes the HTTP conditions and x-envoy-retry-grpc-on the gRPC ones; a value
            // from the other list, or one unknown, is ignored. Both merge with the route's retry_on.
            Set<String> on = null;
            for (int grpc = 0; grpc < 2; grpc++) {
                String ro = h.get(grpc == 0 ? RETRY_ON : RETRY_GRPC_ON);
                if (ro == null) {
                    continue;
                }
                if (on == null) {
                    on = new HashSet<>();
                }
                for (String s : ro.split(",")) {
                    String c = s.trim();
                    if (RetryPolicy.KNOWN_CONDITIONS.contains(c) && RetryState.isGrpcCondition(c) == (grpc == 1)) {
                        on.add(c);
                    }
                }
            }
            // Envoy's x-envoy-retriable-header-names: names only, each a matcher that a present header satisfies
            List<String> headerNames = null;
            String hn = h.get(RETRIABLE_HEADER_NAMES);
            if (hn != null) {
                headerNames = new ArrayList<>();
                for (String s : hn.split(",")) {
                    if (!s.isBlank()) {
                        headerNames.add(s.trim());
                    }
                }
            }
            Set<Integer> codes = null;
            String rc = h.get(RETRIABLE_STATUS_CODES);
            if (rc != null) {
                codes = new HashSet<>();
                for (String s : rc.split(",")) {
                    long code = number(s);
                    if (code >= 100 && code <= 599) {
                        codes.add((int) code);
                    }
                }
            }
            String expected = respectExpected ? h.get(HeaderNames.X_ENVOY_EXPECTED_RQ_TIMEOUT_MS) : null;
            // as Envoy's router: exactly "true" or "false" overrides the route's hedge policy, anything else is ignored
            String hedge = h.get(HEDGE_ON_PER_TRY_TIMEOUT);
            return new Control(number(expected != null ? expected : h.get(UPSTREAM_RQ_TIMEOUT_MS)),
                    number(h.get(UPSTREAM_RQ_PER_TRY_TIMEOUT_MS)),
                    (int) number(h.get(MAX_RETRIES)), on, codes, headerNames,
                    number(h.get(UPSTREAM_STREAM_DURATION_MS)),
                    "true".equals(hedge) ? Boolean.TRUE : "false".equals(hedge) ? Boolean.FALSE : null);
        }

        /**
         * Whether a control header's value passes Envoy's strict check: the timeouts and {@code x-envoy-max-retries}
         * an unsigned integer, {@code x-envoy-retry-on} and {@code x-envoy-retry-grpc-on} comma-separated conditions
         * of their own list.
         */
        static boolean valid(String name, String value) {
            if (name.equals("x-envoy-retry-on") || name.equals("x-envoy-retry-grpc-on")) {
                boolean grpc = name.equals("x-envoy-retry-grpc-on");
                for (String s : value.split(",")) {
                    String c = s.trim();
                    if (!c.isEmpty() && !(RetryPolicy.KNOWN_CONDITIONS.contains(c)
                            && RetryState.isGrpcCondition(c) == grpc)) {
                        return false;
                    }
                }
                return true;
            }
            try {
                Long.parseUnsignedLong(value.trim());
                return true;
            } catch (NumberFormatException e) {
                return false;
            }
        }

        private static long number(String v) {
            if (v == null) {
                return -1;
            }
            try {
                return Math.max(-1, Long.parseLong(v.trim()));
            } catch (NumberFormatException e) {
                return -1;
            }
        }
    }
}
