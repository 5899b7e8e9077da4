package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.FractionalPercent;
import java.time.Duration;
import java.util.List;

/**
 * Envoy's HTTP fault filter config ({@code extensions.filters.http.fault.v3.HTTPFault}), as the connection manager's
 * fault filter carries it and as a route or virtual host overrides it (Istio's VirtualService {@code fault}): a delay
 * before the request goes on, an abort that answers it locally, each for a share of the requests that match
 * {@code headers}.
 *
 * @param delay the fixed delay, or null for none
 * @param delayPercent the share of matching requests that are delayed (Envoy's default when unset: none)
 * @param abort the abort, or null for none
 * @param abortPercent the share of matching requests that are aborted (Envoy's default when unset: none)
 * @param headers the request must match all of them for a fault to apply (none: every request)
 * @param maxActiveFaults how many requests may be in a fault at once (over the connection manager's fault filter),
 *     or null for no limit
 */
public record FaultInjection(Duration delay, FractionalPercent delayPercent, Abort abort,
                             FractionalPercent abortPercent, List<HeaderMatcher> headers, Long maxActiveFaults) {

    private static final FractionalPercent NEVER = new FractionalPercent(0, FractionalPercent.Denominator.HUNDRED);

    /** A fault filter that injects nothing, as Istio writes it in a connection manager's filters. */
    public static final FaultInjection NONE = new FaultInjection(null, null, null, null, List.of(), null);

    public FaultInjection {
        Checks.check(delay == null || !delay.isNegative() && !delay.isZero(), "delay.fixed_delay", delay, "> 0s");
        delayPercent = delayPercent == null ? NEVER : delayPercent;
        abortPercent = abortPercent == null ? NEVER : abortPercent;
        headers = Checks.list(headers, "headers");
        Checks.check(maxActiveFaults == null || maxActiveFaults >= 0, "max_active_faults", maxActiveFaults, ">= 0");
    }

    /**
     * The abort: an HTTP status (200 to 599), or a gRPC status, which answers a gRPC request with a trailers-only
     * response carrying it (and any other request with 200).
     *
     * @param httpStatus the HTTP status, or 0 for a gRPC status
     * @param grpcStatus the gRPC status, or -1 for an HTTP status
     */
    public record Abort(int httpStatus, int grpcStatus) {
        public Abort {
            Checks.check(httpStatus == 0 ? grpcStatus >= 0 : grpcStatus == -1, "abort", httpStatus + "/" + grpcStatus,
                    "one of http_status or grpc_status");
            Checks.check(httpStatus == 0 || httpStatus >= 200 && httpStatus < 600, "abort.http_status", httpStatus,
                    ">= 200 and < 600");
        }

        /** An abort with an HTTP status. */
        public static Abort http(int status) {
            return new Abort(status, -1);
        }

        /** An abort with a gRPC status. */
        public static Abort grpc(int status) {
            return new Abort(0, status);
        }
    }
}
