package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.FractionalPercent;
import java.time.Duration;
import java.util.List;

/**
 * Envoy's HTTP fault filter config ({@code extensions.filters.http.fault.v3.HTTPFault}), as the connection manager's
 * fault filter carries it and as a route or virtual host overrides it (Istio's VirtualService {@code fault}): a delay
 * before the request goes on, an abort that answers it locally, each for a share of the requests that match
 * {@code headers}; a delay or abort may instead be chosen by the request's own {@code x-envoy-fault-*} headers
 * (Envoy's {@code header_delay} and {@code header_abort}), and a fault may be kept to one upstream cluster or to
 * some downstream nodes. A response rate limit (Envoy's {@code response_rate_limit}) throttles the body of the
 * response to a share of the requests.
 *
 * @param delay the fixed delay, or null for none (or for a {@code header_delay})
 * @param delayPercent the share of matching requests that are delayed (Envoy's default when unset: none)
 * @param abort the abort, or null for none
 * @param abortPercent the share of matching requests that are aborted (Envoy's default when unset: none)
 * @param headers the request must match all of them for a fault to apply (none: every request)
 * @param maxActiveFaults how many requests may be in a fault at once (over the connection manager's fault filter),
 *     or null for no limit
 * @param headerDelay the delay is the request's {@code x-envoy-fault-delay-request} (Envoy's {@code header_delay}),
 *     for the share of {@code delayPercent} that {@code x-envoy-fault-delay-request-percentage} may lower
 * @param downstreamNodes the fault applies only to requests whose {@code x-envoy-downstream-service-node} is one of
 *     them (none: every request)
 * @param upstreamCluster the fault applies only to requests whose route forwards to this cluster ("": any request)
 * @param downstreamClusterStats whether a fault is also counted under the request's
 *     {@code x-envoy-downstream-service-cluster} ({@code fault.<cluster>.delays_injected}, ...), as Envoy does unless
 *     {@code disable_downstream_cluster_stats}
 * @param responseRateLimit the response body's rate limit, or null for none
 */
public record FaultInjection(Duration delay, FractionalPercent delayPercent, Abort abort,
                             FractionalPercent abortPercent, List<HeaderMatcher> headers, Long maxActiveFaults,
                             boolean headerDelay, List<String> downstreamNodes, String upstreamCluster,
                             boolean downstreamClusterStats, ResponseRateLimit responseRateLimit) {

    private static final FractionalPercent NEVER = new FractionalPercent(0, FractionalPercent.Denominator.HUNDRED);

    /** A fault filter that injects nothing, as Istio writes it in a connection manager's filters. */
    public static final FaultInjection NONE = new FaultInjection(null, null, null, null, List.of(), null);

    public FaultInjection {
        Checks.check(delay == null || !delay.isNegative() && !delay.isZero(), "delay.fixed_delay", delay, "> 0s");
        delayPercent = delayPercent == null ? NEVER : delayPercent;
        abortPercent = abortPercent == null ? NEVER : abortPercent;
        headers = Checks.list(headers, "headers");
        Checks.check(maxActiveFaults == null || maxActiveFaults >= 0, "max_active_faults", maxActiveFaults, ">= 0");
        Checks.check(!headerDelay || delay == null, "delay", delay, "one of fixed_delay or header_delay");
        downstreamNodes = Checks.list(downstreamNodes, "downstream_nodes");
        upstreamCluster = upstreamCluster == null ? "" : upstreamCluster;
    }

    /** A fault with a fixed delay or none, limited to no cluster or node, counted per downstream cluster. */
    public FaultInjection(Duration delay, FractionalPercent delayPercent, Abort abort, FractionalPercent abortPercent,
                          List<HeaderMatcher> headers, Long maxActiveFaults) {
        this(delay, delayPercent, abort, abortPercent, headers, maxActiveFaults, false, List.of(), "", true, null);
    }

    /**
     * Envoy's {@code FaultRateLimit} on the response body: a fixed rate, or the one the request's
     * {@code x-envoy-fault-throughput-response} names (Envoy's {@code header_limit}), in KiB/s.
     *
     * @param limitKbps the fixed rate in KiB per second (at least 1), or 0 for the request's header
     * @param percentage the share of matching requests it applies to (Envoy's default when unset: none); for a
     *     {@code header_limit}, {@code x-envoy-fault-throughput-response-percentage} may lower it
     */
    public record ResponseRateLimit(long limitKbps, FractionalPercent percentage) {
        public ResponseRateLimit {
            Checks.check(limitKbps >= 0, "response_rate_limit.fixed_limit.limit_kbps", limitKbps, ">= 1");
            percentage = percentage == null ? NEVER : percentage;
        }

        /** Whether the request's headers choose the rate ({@code header_limit}). */
        public boolean header() {
            return limitKbps == 0;
        }
    }

    /** Whether the fault may delay a request: a fixed delay or one its headers choose. */
    public boolean delays() {
        return delay != null || headerDelay;
    }

    /**
     * The abort: an HTTP status (200 to 599), or a gRPC status, which answers a gRPC request with a trailers-only
     * response carrying it (and any other request with 200), or neither: the request's {@code x-envoy-fault-abort-*}
     * headers say (Envoy's {@code header_abort}).
     *
     * @param httpStatus the HTTP status, or 0 for a gRPC status or a header abort
     * @param grpcStatus the gRPC status, or -1 for an HTTP status or a header abort
     */
    public record Abort(int httpStatus, int grpcStatus) {
        /**
         * Envoy's {@code header_abort}: the status is the request's {@code x-envoy-fault-abort-request}, else its
         * {@code x-envoy-fault-abort-grpc-request}.
         */
        public static final Abort HEADER = new Abort(0, -1);

        public Abort {
            Checks.check(httpStatus == 0 ? grpcStatus >= -1 : grpcStatus == -1, "abort", httpStatus + "/" + grpcStatus,
                    "one of http_status or grpc_status");
            Checks.check(httpStatus == 0 || httpStatus >= 200 && httpStatus < 600, "abort.http_status", httpStatus,
                    ">= 200 and < 600");
        }

        /** An abort with an HTTP status. */
        public static Abort http(int status) {
            return new Abort(status, -1);
        }

        /** Whether the request's headers choose the status ({@link #HEADER}). */
        public boolean header() {
            return httpStatus == 0 && grpcStatus == -1;
        }

        /** An abort with a gRPC status. */
        public static Abort grpc(int status) {
            return new Abort(0, status);
        }
    }
}
