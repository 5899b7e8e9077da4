package dev.inmesh.runtime.xds;

import com.google.protobuf.Any;
import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.api.config.route.FaultInjection;
import dev.inmesh.api.config.route.HeaderMatcher;
import io.envoyproxy.envoy.extensions.filters.http.fault.v3.HTTPFault;
import java.time.Duration;
import java.util.List;
import java.util.Set;

/**
 * Envoy's HTTP fault filter config ({@code envoy.extensions.filters.http.fault.v3.HTTPFault}), in a connection
 * manager's {@code http_filters} and in the {@code typed_per_filter_config} of a virtual host or route, as Istio writes
 * a VirtualService's {@code fault}: a fixed delay, an HTTP or gRPC abort, each with its percentage, the
 * {@code headers} a request must match, and {@code max_active_faults}. Faults chosen by request headers
 * ({@code header_delay}, {@code header_abort}), limited to an upstream cluster or downstream nodes, and the response
 * rate limit are refused by name.
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
        // The runtime keys name where Envoy's runtime may override the config's values; with no runtime layer that
        // sets them (Inmesh has none, and Istio's proxies set none), Envoy applies the config's own values.
        // Downstream cluster statistics and filter metadata change no request.
        Fields.onlyKnown(f, Set.of("delay", "abort", "headers", "max_active_faults"), Set.of("delay_percent_runtime",
                "abort_percent_runtime", "delay_duration_runtime", "abort_http_status_runtime",
                "max_active_faults_runtime", "abort_grpc_status_runtime", "disable_downstream_cluster_stats",
                "filter_metadata"));
        Duration delay = null;
        FractionalPercent delayPercent = null;
        if (f.hasDelay()) {
            var d = f.getDelay();
            Fields.at("delay", () -> {
                Fields.onlyKnown(d, Set.of("fixed_delay", "percentage"), Set.of());
                if (!d.hasFixedDelay()) {
                    throw new FieldError("fixed_delay", "unset (expected: a fixed delay; header_delay is not "
                            + "supported by Inmesh)");
                }
                return null;
            });
            delay = Fields.duration(d.getFixedDelay());
            if (delay.isNegative() || delay.isZero()) {
                throw new FieldError("delay.fixed_delay", delay + " (expected: > 0s)");
            }
            delayPercent = d.hasPercentage() ? CoreParsers.fractionalPercent(d.getPercentage()) : null;
        }
        FaultInjection.Abort abort = null;
        FractionalPercent abortPercent = null;
        if (f.hasAbort()) {
            var a = f.getAbort();
            abort = Fields.at("abort", () -> {
                Fields.onlyKnown(a, Set.of("http_status", "grpc_status", "percentage"), Set.of());
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
                    default -> throw new FieldError("error_type", "unset (expected: http_status or grpc_status; "
                            + "header_abort is not supported by Inmesh)");
                };
            });
            abortPercent = a.hasPercentage() ? CoreParsers.fractionalPercent(a.getPercentage()) : null;
        }
        List<HeaderMatcher> headers = Fields.each("headers", f.getHeadersList(), RouteConfigurationParser::header);
        Long max = f.hasMaxActiveFaults() ? Integer.toUnsignedLong(f.getMaxActiveFaults().getValue()) : null;
        if (delay == null && abort == null && headers.isEmpty() && max == null) {
            return FaultInjection.NONE;
        }
        return new FaultInjection(delay, delayPercent, abort, abortPercent, headers, max);
    }
}
