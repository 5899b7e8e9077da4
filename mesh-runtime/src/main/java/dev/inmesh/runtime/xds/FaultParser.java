package dev.inmesh.runtime.xds;

import com.google.protobuf.Any;
import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.api.config.route.FaultInjection;
import dev.inmesh.api.config.route.HeaderMatcher;
import io.envoyproxy.envoy.extensions.filters.common.fault.v3.FaultRateLimit;
import io.envoyproxy.envoy.extensions.filters.http.fault.v3.HTTPFault;
import java.time.Duration;
import java.util.List;
import java.util.Set;

/**
 * Envoy's HTTP fault filter config ({@code envoy.extensions.filters.http.fault.v3.HTTPFault}), in a connection
 * manager's {@code http_filters} and in the {@code typed_per_filter_config} of a virtual host or route, as Istio writes
 * a VirtualService's {@code fault}: a fixed delay or one the request's headers choose ({@code header_delay}), an HTTP,
 * gRPC or header-chosen ({@code header_abort}) abort, each with its percentage, the {@code headers} a request must
 * match, the {@code upstream_cluster} and {@code downstream_nodes} it is kept to, {@code max_active_faults} and
 * {@code disable_downstream_cluster_stats}, and the response body's rate limit ({@code response_rate_limit}: a
 * {@code fixed_limit} of at least 1 KiB/s, or the request's {@code header_limit}, with its percentage).
 */
final class FaultParser {
    static final String FAULT_TYPE = "envoy.extensions.filters.http.fault.v3.HTTPFault";

    private FaultParser() {}

    /**
     * The fault config of an {@code Any}. An empty one injects nothing ({@link FaultInjection#NONE}), as Istio's
     * connection managers carry it.
     */
    static FaultInjection fault(Any any) {
        HTTPFault f = RouteConfigurationParser.unpack(any, HTTPFault.class, "@type");
        // The runtime keys name where Envoy's runtime may override the config's values; they are not read (the
        // runtime feeds routes only, and Istio's proxies set none), so the config's own values apply, as in Envoy
        // with no runtime layer that sets them.
        // Filter metadata changes no request.
        Fields.onlyKnown(f, Set.of("delay", "abort", "headers", "max_active_faults", "upstream_cluster",
                "downstream_nodes", "disable_downstream_cluster_stats", "response_rate_limit"),
                Set.of("delay_percent_runtime", "abort_percent_runtime", "delay_duration_runtime",
                        "abort_http_status_runtime", "max_active_faults_runtime", "abort_grpc_status_runtime",
                        "response_rate_limit_percent_runtime", "filter_metadata"));
        Duration delay = null;
        boolean headerDelay = false;
        FractionalPercent delayPercent = null;
        if (f.hasDelay()) {
            var d = f.getDelay();
            headerDelay = Fields.at("delay", () -> {
                Fields.onlyKnown(d, Set.of("fixed_delay", "header_delay", "percentage"), Set.of());
                if (d.hasHeaderDelay()) {
                    return true;
                }
                if (!d.hasFixedDelay()) {
                    throw new FieldError("fault_delay_secifier", "unset (expected: fixed_delay or header_delay)");
                }
                return false;
            });
            if (!headerDelay) {
                delay = Fields.duration(d.getFixedDelay());
                if (delay.isNegative() || delay.isZero()) {
                    throw new FieldError("delay.fixed_delay", delay + " (expected: > 0s)");
                }
            }
            delayPercent = d.hasPercentage() ? CoreParsers.fractionalPercent(d.getPercentage()) : null;
        }
        FaultInjection.Abort abort = null;
        FractionalPercent abortPercent = null;
        if (f.hasAbort()) {
            var a = f.getAbort();
            abort = Fields.at("abort", () -> {
                Fields.onlyKnown(a, Set.of("http_status", "grpc_status", "header_abort", "percentage"), Set.of());
                return switch (a.getErrorTypeCase()) {
                    case HTTP_STATUS -> {
                        int s = a.getHttpStatus();
                        if (s < 200 || s >= 600) {
                            throw new FieldError("http_status", Integer.toUnsignedString(s)
                                    + " (expected: >= 200 and < 600)");
                        }
                        yield FaultInjection.Abort.http(s);
                    }
                    case GRPC_STATUS -> {
                        if (a.getGrpcStatus() < 0) {
                            throw new FieldError("grpc_status", Integer.toUnsignedString(a.getGrpcStatus())
                                    + " (expected: a gRPC status)");
                        }
                        yield FaultInjection.Abort.grpc(a.getGrpcStatus());
                    }
                    case HEADER_ABORT -> FaultInjection.Abort.HEADER;
                    default -> throw new FieldError("error_type", "unset (expected: http_status, grpc_status or "
                            + "header_abort)");
                };
            });
            abortPercent = a.hasPercentage() ? CoreParsers.fractionalPercent(a.getPercentage()) : null;
        }
        FaultInjection.ResponseRateLimit rateLimit = f.hasResponseRateLimit()
                ? Fields.at("response_rate_limit", () -> responseRateLimit(f.getResponseRateLimit())) : null;
        List<HeaderMatcher> headers = Fields.each("headers", f.getHeadersList(), RouteConfigurationParser::header);
        Long max = f.hasMaxActiveFaults() ? Integer.toUnsignedLong(f.getMaxActiveFaults().getValue()) : null;
        List<String> nodes = List.copyOf(f.getDownstreamNodesList());
        boolean clusterStats = !f.getDisableDownstreamClusterStats();
        if (delay == null && !headerDelay && abort == null && headers.isEmpty() && max == null && nodes.isEmpty()
                && f.getUpstreamCluster().isEmpty() && clusterStats && rateLimit == null) {
            return FaultInjection.NONE;
        }
        return new FaultInjection(delay, delayPercent, abort, abortPercent, headers, max, headerDelay, nodes,
                f.getUpstreamCluster(), clusterStats, rateLimit);
    }

    /** Envoy's {@code FaultRateLimit}: a fixed limit (at least 1 KiB/s, as its validation says) or the header's. */
    private static FaultInjection.ResponseRateLimit responseRateLimit(FaultRateLimit r) {
        Fields.onlyKnown(r, Set.of("fixed_limit", "header_limit", "percentage"), Set.of());
        FractionalPercent percent = r.hasPercentage() ? CoreParsers.fractionalPercent(r.getPercentage()) : null;
        return switch (r.getLimitTypeCase()) {
            case FIXED_LIMIT -> {
                long kbps = r.getFixedLimit().getLimitKbps();
                if (kbps == 0) {
                    throw new FieldError("fixed_limit.limit_kbps", "0 (expected: >= 1)");
                }
                // a uint64: one past 2^63 - 1 KiB/s limits nothing either
                yield new FaultInjection.ResponseRateLimit(kbps < 0 ? Long.MAX_VALUE : kbps, percent);
            }
            case HEADER_LIMIT -> new FaultInjection.ResponseRateLimit(0, percent);
            default -> throw new FieldError("limit_type", "unset (expected: fixed_limit or header_limit)");
        };
    }
}
