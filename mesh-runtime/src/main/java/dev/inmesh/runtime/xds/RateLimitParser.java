package dev.inmesh.runtime.xds;

import com.google.protobuf.Any;
import dev.inmesh.api.config.core.HeaderValueOption;
import dev.inmesh.api.config.ratelimit.GlobalRateLimit;
import dev.inmesh.api.config.route.HeaderMatcher;
import dev.inmesh.api.config.route.QueryParameterMatcher;
import dev.inmesh.api.config.route.RateLimit;
import java.time.Duration;
import java.util.List;
import java.util.Set;

/**
 * Envoy's global rate limit HTTP filter config ({@code envoy.extensions.filters.http.ratelimit.v3.RateLimit}) and the
 * virtual hosts' and routes' {@code rate_limits} it reads, in the shapes Istio's "Enabling Rate Limits using Envoy"
 * task writes with an EnvoyFilter: {@code domain}, {@code stage}, {@code request_type}, {@code timeout},
 * {@code failure_mode_deny}, {@code rate_limit_service} ({@code grpc_service.envoy_grpc} with its cluster and
 * authority, {@code transport_api_version: V3}), {@code enable_x_ratelimit_headers},
 * {@code disable_x_envoy_ratelimited_header}, {@code rate_limited_status}, {@code status_on_error} and
 * {@code response_headers_to_add} (substitution format strings, as a route's {@code response_headers_to_add}: an
 * operator Envoy does not know refused by path); the actions {@code destination_cluster}, {@code request_headers},
 * {@code remote_address}, {@code masked_remote_address}, {@code generic_key}, {@code header_value_match} and
 * {@code query_parameter_value_match}. What Inmesh does not do is refused by name, never ignored:
 * {@code rate_limited_as_resource_exhausted}, {@code stat_prefix}, {@code filter_enabled}, {@code filter_enforced},
 * {@code google_grpc}; the actions {@code source_cluster}, {@code metadata}, {@code dynamic_metadata},
 * {@code extension} and the others; an entry's {@code limit} override. A route's or virtual host's {@code RateLimitPerRoute} is read for
 * its {@code vh_rate_limits}; its {@code override_option}, {@code rate_limits} and {@code domain} are refused.
 */
final class RateLimitParser {
    static final String NAME = "envoy.filters.http.ratelimit";
    static final String TYPE = "envoy.extensions.filters.http.ratelimit.v3.RateLimit";
    static final String PER_ROUTE_TYPE = "envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute";

    private RateLimitParser() {}

    static GlobalRateLimit parse(Any any) {
        var c = LocalRateLimitParser.typed(any, io.envoyproxy.envoy.extensions.filters.http.ratelimit.v3.RateLimit.class,
                io.envoyproxy.envoy.extensions.filters.http.ratelimit.v3.RateLimit.newBuilder(), TYPE);
        Fields.onlyKnown(c, Set.of("domain", "stage", "request_type", "timeout", "failure_mode_deny",
                "rate_limit_service", "enable_x_ratelimit_headers", "disable_x_envoy_ratelimited_header",
                "rate_limited_status", "status_on_error", "response_headers_to_add"), Set.of());
        if (!c.hasRateLimitService()) {
            throw new FieldError("rate_limit_service", "unset (expected: the rate limit service, as Envoy requires)");
        }
        var service = c.getRateLimitService();
        String[] target = Fields.at("rate_limit_service", () -> {
            Fields.onlyKnown(service, Set.of("grpc_service", "transport_api_version"), Set.of());
            if (service.getTransportApiVersion() != io.envoyproxy.envoy.config.core.v3.ApiVersion.V3) {
                throw new FieldError("transport_api_version", service.getTransportApiVersion()
                        + " (expected: V3, the only version Envoy's v3 filter speaks)");
            }
            if (!service.hasGrpcService()) {
                throw new FieldError("grpc_service", "unset (expected: the service, as Envoy requires)");
            }
            var g = service.getGrpcService();
            return Fields.at("grpc_service", () -> {
                // the filter's own timeout is the call's: the service's is not read by Envoy's filter
                Fields.onlyKnown(g, Set.of("envoy_grpc"), Set.of());
                if (!g.hasEnvoyGrpc()) {
                    throw new FieldError("target_specifier", "unset (expected: envoy_grpc; google_grpc is not "
                            + "supported by Inmesh)");
                }
                var e = g.getEnvoyGrpc();
                return Fields.at("envoy_grpc", () -> {
                    Fields.onlyKnown(e, Set.of("cluster_name", "authority"), Set.of());
                    return new String[] {e.getClusterName(), e.getAuthority()};
                });
            });
        });
        GlobalRateLimit.RequestType type = switch (c.getRequestType()) {
            case "internal" -> GlobalRateLimit.RequestType.INTERNAL;
            case "external" -> GlobalRateLimit.RequestType.EXTERNAL;
            case "both", "" -> GlobalRateLimit.RequestType.BOTH;
            default -> throw new FieldError("request_type", c.getRequestType()
                    + " (expected: internal, external or both)");
        };
        var xHeaders = c.getEnableXRatelimitHeaders();
        if (xHeaders != io.envoyproxy.envoy.extensions.filters.http.ratelimit.v3.RateLimit
                .XRateLimitHeadersRFCVersion.OFF && xHeaders != io.envoyproxy.envoy.extensions.filters.http.ratelimit
                .v3.RateLimit.XRateLimitHeadersRFCVersion.DRAFT_VERSION_03) {
            throw new FieldError("enable_x_ratelimit_headers", xHeaders + " (expected: OFF or DRAFT_VERSION_03)");
        }
        List<HeaderValueOption> responseHeaders = Fields.each("response_headers_to_add",
                c.getResponseHeadersToAddList(), CoreParsers::headerValueOption);
        Duration timeout = c.hasTimeout() ? Fields.at("timeout", () -> Fields.duration(c.getTimeout())) : null;
        return Fields.record("", () -> new GlobalRateLimit(c.getDomain(), c.getStage(), type, timeout,
                c.getFailureModeDeny(), target[0], target[1], xHeaders == io.envoyproxy.envoy.extensions.filters.http
                        .ratelimit.v3.RateLimit.XRateLimitHeadersRFCVersion.DRAFT_VERSION_03,
                !c.getDisableXEnvoyRatelimitedHeader(), c.hasRateLimitedStatus()
                        ? c.getRateLimitedStatus().getCodeValue() : 0,
                c.hasStatusOnError() ? c.getStatusOnError().getCodeValue() : 0, responseHeaders));
    }

    /** A {@code RateLimitPerRoute}'s {@code vh_rate_limits}, the only field of it Inmesh reads. */
    static RateLimit.VhRateLimits perRoute(Any any) {
        var c = LocalRateLimitParser.typed(any, io.envoyproxy.envoy.extensions.filters.http.ratelimit.v3
                .RateLimitPerRoute.class, io.envoyproxy.envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute
                .newBuilder(), PER_ROUTE_TYPE);
        Fields.onlyKnown(c, Set.of("vh_rate_limits"), Set.of());
        return switch (c.getVhRateLimits()) {
            case INCLUDE -> RateLimit.VhRateLimits.INCLUDE;
            case IGNORE -> RateLimit.VhRateLimits.IGNORE;
            case OVERRIDE -> RateLimit.VhRateLimits.OVERRIDE;
            default -> throw new FieldError("vh_rate_limits", c.getVhRateLimits()
                    + " (expected: OVERRIDE, INCLUDE or IGNORE)");
        };
    }

    /** A virtual host's or route action's {@code rate_limits}. */
    static List<RateLimit> rateLimits(List<io.envoyproxy.envoy.config.route.v3.RateLimit> list) {
        return Fields.each("rate_limits", list, RateLimitParser::rateLimit);
    }

    private static RateLimit rateLimit(io.envoyproxy.envoy.config.route.v3.RateLimit r) {
        Fields.onlyKnown(r, Set.of("stage", "disable_key", "actions"), Set.of());
        List<RateLimit.Action> actions = Fields.each("actions", r.getActionsList(), RateLimitParser::action);
        return Fields.record("", () -> new RateLimit(r.hasStage() ? r.getStage().getValue() : 0, r.getDisableKey(),
                actions));
    }

    private static RateLimit.Action action(io.envoyproxy.envoy.config.route.v3.RateLimit.Action a) {
        Fields.onlyKnown(a, Set.of("destination_cluster", "request_headers", "remote_address", "generic_key",
                "header_value_match", "masked_remote_address", "query_parameter_value_match"), Set.of());
        return switch (a.getActionSpecifierCase()) {
            case DESTINATION_CLUSTER -> Fields.at("destination_cluster", () -> {
                Fields.onlyKnown(a.getDestinationCluster(), Set.of(), Set.of());
                return new RateLimit.DestinationCluster();
            });
            case REMOTE_ADDRESS -> Fields.at("remote_address", () -> {
                Fields.onlyKnown(a.getRemoteAddress(), Set.of(), Set.of());
                return new RateLimit.RemoteAddress();
            });
            case REQUEST_HEADERS -> Fields.at("request_headers", () -> {
                var h = a.getRequestHeaders();
                Fields.onlyKnown(h, Set.of("header_name", "descriptor_key", "skip_if_absent"), Set.of());
                return Fields.record("request_headers.", () -> new RateLimit.RequestHeaders(h.getHeaderName(),
                        h.getDescriptorKey(), h.getSkipIfAbsent()));
            });
            case GENERIC_KEY -> Fields.at("generic_key", () -> {
                var g = a.getGenericKey();
                Fields.onlyKnown(g, Set.of("descriptor_value", "descriptor_key"), Set.of());
                return Fields.record("generic_key.", () -> new RateLimit.GenericKey(g.getDescriptorValue(),
                        g.getDescriptorKey()));
            });
            case HEADER_VALUE_MATCH -> Fields.at("header_value_match", () -> {
                var m = a.getHeaderValueMatch();
                Fields.onlyKnown(m, Set.of("descriptor_key", "descriptor_value", "expect_match", "headers"),
                        Set.of());
                List<HeaderMatcher> headers = Fields.each("headers", m.getHeadersList(),
                        RouteConfigurationParser::header);
                return Fields.record("header_value_match.", () -> new RateLimit.HeaderValueMatch(
                        m.getDescriptorKey(), m.getDescriptorValue(),
                        !m.hasExpectMatch() || m.getExpectMatch().getValue(), headers));
            });
            case MASKED_REMOTE_ADDRESS -> Fields.at("masked_remote_address", () -> {
                var m = a.getMaskedRemoteAddress();
                Fields.onlyKnown(m, Set.of("v4_prefix_mask_len", "v6_prefix_mask_len"), Set.of());
                return Fields.record("masked_remote_address.", () -> new RateLimit.MaskedRemoteAddress(
                        m.hasV4PrefixMaskLen() ? m.getV4PrefixMaskLen().getValue() : 32,
                        m.hasV6PrefixMaskLen() ? m.getV6PrefixMaskLen().getValue() : 128));
            });
            case QUERY_PARAMETER_VALUE_MATCH -> Fields.at("query_parameter_value_match", () -> {
                var m = a.getQueryParameterValueMatch();
                Fields.onlyKnown(m, Set.of("descriptor_key", "descriptor_value", "expect_match", "query_parameters"),
                        Set.of());
                List<QueryParameterMatcher> query = Fields.each("query_parameters", m.getQueryParametersList(),
                        RouteConfigurationParser::queryParameter);
                return Fields.record("query_parameter_value_match.", () -> new RateLimit.QueryParameterValueMatch(
                        m.getDescriptorKey(), m.getDescriptorValue(),
                        !m.hasExpectMatch() || m.getExpectMatch().getValue(), query));
            });
            default -> throw new FieldError("action_specifier", "unset (expected: one action)");
        };
    }
}
