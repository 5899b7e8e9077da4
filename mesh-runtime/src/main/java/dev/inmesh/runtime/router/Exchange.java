package dev.inmesh.runtime.router;

import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.upstream.CircuitBreakerState;
import dev.inmesh.runtime.upstream.Host;
import dev.inmesh.runtime.upstream.UpstreamCluster;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * The mutable state of one request in the router: what was tried, what it cost, what to release. It is also the
 * request so far as a local reply's config and the route's header values read it.
 */
final class Exchange implements dev.inmesh.runtime.accesslog.AccessLogEntry.Source {
    final RouterRequest request;
    /** Whether the request is gRPC ({@link Grpc#isRequest}): its local replies are trailers-only gRPC responses. */
    final boolean grpc;
    final Set<ResponseFlag> flags = EnumSet.noneOf(ResponseFlag.class);
    final List<Host> triedHosts = new ArrayList<>(2);
    RouteResult route;
    RouteTable table;
    String clusterName;
    UpstreamCluster cluster;
    CircuitBreakerState breakers;
    boolean requestSlotHeld;
    Host lastHost;
    Host activeHost;
    /** The statistics of {@link #statsCluster}, looked up once per cluster name the exchange goes to. */
    dev.inmesh.runtime.stats.UpstreamStats stats;
    /** The cluster name {@link #stats} belongs to (the very string, compared by reference), or null. */
    String statsCluster;
    /** The cluster statistics whose {@code upstream_rq_active} counts the attempt in flight, or null. */
    dev.inmesh.runtime.stats.UpstreamStats activeStats;
    /**
     * The local address of the last attempt's upstream connection, {@code ip:port}, or null before one had a
     * connection.
     */
    String upstreamLocalAddress;
    /** Why the last attempt's connection could not be made, or null when it was, or before it was tried. */
    dev.inmesh.runtime.upstream.ConnectFailure connectFailure;
    /** What that connect failed with, as the client met it, or null with {@link #connectFailure}. */
    Throwable connectCause;
    /** The first URI SAN of the server's certificate on the last attempt's upstream TLS connection, or null. */
    String upstreamPeerPrincipal;
    /** The first URI SAN of the certificate this side presented on that connection, or null. */
    String upstreamLocalPrincipal;
    int attempts;
    /**
     * When the router had the whole request (at once for a whole body; when a streamed body ended, see
     * {@link RequestBodyStream}): the upstream service time runs from here to the headers of the response that is
     * passed on, over every attempt and back-off, as Envoy's.
     */
    long requestCompleteNanos = System.nanoTime();
    /** The route timeout's timer, -1 when none is pending; it covers the body too, until complete or abort. */
    long routeTimer = -1;
    /** The timer of the request's {@code max_stream_duration}, -1 when none is pending. */
    long durationTimer = -1;
    /** The timer of the attempt's upstream {@code max_stream_duration}, -1 when none is pending. */
    long upstreamDurationTimer = -1;
    long upstreamServiceTimeMillis = -1;
    /**
     * When the headers of the upstream response passed on arrived, in nanoseconds from the request's start; -1 for
     * none: Envoy's first upstream byte received, which its {@code %RESPONSE_DURATION%} and
     * {@code %RESPONSE_TX_DURATION%} run to and from (a long, not a timestamp object, as it is set per request).
     */
    long firstUpstreamRxNanos = -1;
    String responseCodeDetails = "";
    boolean done;
    /**
     * Whether the response gets the request's {@code x-request-id}: its connection manager always sets it, or the
     * request carried an {@code x-envoy-force-trace} its connection manager trusts (as Envoy's does).
     */
    boolean requestIdInResponse;
    /**
     * The status of the answer to a timed-out request: 504, or 204 for a request whose honoured
     * {@code x-envoy-upstream-rq-timeout-alt-response} asks for it, as Envoy's router answers it.
     */
    int timeoutStatus = 504;
    /**
     * The path sent upstream when the route rewrote it, else null: what Envoy's request headers, and so its access
     * log's {@code %REQ(:PATH)%}, hold once its router changed them (the caller's path stays in
     * {@code x-envoy-original-path}, unless {@code suppress_envoy_headers}).
     */
    String rewrittenPath;
    /** The {@code :authority} sent upstream when the route rewrote it, else null ({@code %REQ(:AUTHORITY)%}). */
    String rewrittenAuthority;
    boolean completed;
    /** The request bytes a relay ({@link Router#relayStarted}) sent upstream after the head; -1: not a relay. */
    long relayedRequestBytes = -1;
    /**
     * The head of the answer a relayed request's client got (the upstream's, as {@code Router.relayResponseHead}
     * made it, or the proxy's in its place), for its report; null while none.
     */
    io.vertx.core.MultiMap relayResponseHeaders;
    /** What the CORS filter sets on the response (an allowed origin's headers), or null. */
    CorsFilter.Outcome cors;
    /** What the local rate limit filter decided for the request, if it checked it: its response's headers. */
    LocalRateLimitFilter.Outcome rateLimit;
    /** The changes an allowing external authorizer asked for on the response's headers, or null. */
    java.util.List<ExtAuthzFilter.ResponseHeader> authzResponseHeaders;
    /** The headers of an external authorizer's denial, which replace the local reply's (pairs), or null. */
    java.util.List<String> authzDenialHeaders;
    /** The request's span (sampled or not) when its connection manager traces, else null. */
    dev.inmesh.runtime.tracing.ActiveSpan span;
    /** Whether its connection manager traces outbound requests, whether or not this one got a span. */
    boolean egressTracing;
    /** Whether a filter before the router answered (a CORS preflight): the route's response header rules skip it. */
    boolean filterReply;
    /** Applies the headers of a filter's local reply (a local rate limit refusal's) after the route's rules. */
    java.util.function.Consumer<io.vertx.core.MultiMap> localReplyHeaders;
    /**
     * The active faults the request counts among (a delay or an abort injected: its fault filter's
     * {@code active_faults}), or null when it is in no fault.
     */
    java.util.concurrent.atomic.AtomicLong activeFault;
    /** The fault filter's response rate limit on the response body in KiB/s, or 0 for none. */
    long responseRateKbps;
    /** The stream idle timeout (the route's {@code idle_timeout}, else the connection manager's), or null. */
    /** The {@code Set-Cookie} values of routing cookies a hash policy made up (null: none), for the response. */
    List<String> setCookies;
    /** The request's stateful session (the host its cookie or header names, and the config), or null for none. */
    StatefulSessionFilter.Session session;
    IdleTimer streamIdle;
    /** The current attempt's per-try idle timeout (the retry policy's {@code per_try_idle_timeout}), or null. */
    IdleTimer perTryIdle;
    /**
     * Whether the router itself reset the committed upstream response (an idle timeout while its body streamed):
     * the caller then sees the body fail, which is not the upstream's doing.
     */
    boolean resetByRouter;
    /**
     * The host of a gRPC answer passed on without its {@code grpc-status}: its {@code rq_success} or {@code rq_error}
     * is charged by the status its trailers carry, at the exchange's end ({@link Router#chargeAnswer}); else null.
     */
    Host grpcChargeDeferred;
    /** The protocol of the upstream response passed on ({@code HTTP/1.1}, {@code HTTP/2}), or null for none. */
    String upstreamProtocol;
    /**
     * On the inbound side, the caller as its {@code x-envoy-peer-metadata} names it ({@link WorkloadInfo#UNKNOWN}
     * without one): the {@code source_*} of the request's metrics. Null outbound, where the peer is the destination.
     */
    WorkloadInfo downstreamPeer;
    /**
     * On the outbound side, the upstream as the {@code x-envoy-peer-metadata} of the response passed on names it, or
     * null when it sent none (or none readable): the {@code destination_*} of the request's metrics then come from the
     * cluster and endpoint metadata.
     */
    WorkloadInfo upstreamPeer;

    /**
     * The messages of the response body passed on, counted for a gRPC request whose connection manager's gRPC
     * statistics filter emits its filter state ({@link RouterRequest#grpcStats}); null otherwise.
     */
    final GrpcFrames responseMessages;

    Exchange(RouterRequest request) {
        this.request = request;
        this.grpc = Grpc.isRequest(request.headers);
        this.responseMessages = grpc && request.grpcMessageCounts ? new GrpcFrames() : null;
    }

    @Override
    public dev.inmesh.runtime.accesslog.AccessLogEntry entry(int status, io.vertx.core.MultiMap headers,
                                                             String body) {
        return Router.localReplyEntry(this, status, headers, body);
    }

    /** Activity on the stream (the committed response's headers, a body chunk): the idle timeouts start over. */
    void touch() {
        if (streamIdle != null) {
            streamIdle.touch();
        }
        if (perTryIdle != null) {
            perTryIdle.touch();
        }
    }

    /** The exchange ended: no idle timer may stay behind. */
    void cancelIdleTimers() {
        if (streamIdle != null) {
            streamIdle.cancel();
        }
        if (perTryIdle != null) {
            perTryIdle.cancel();
        }
    }

    /**
     * The status of the connection manager's local reply to a timeout of the stream (its idle timeout, its
     * {@code max_stream_duration}), as Envoy chooses it: 504 once the whole request was read, else 408.
     */
    int streamTimeoutStatus() {
        return request.stream == null || request.stream.ended() ? 504 : 408;
    }

    String routeName() {
        var r = RouteResult.routeOf(route);
        return r == null ? null : r.name();
    }
}
