package dev.inmesh.runtime.xds;

import com.google.protobuf.Any;
import dev.inmesh.api.config.core.MetadataMatcher;
import dev.inmesh.api.config.core.StringMatcher;
import dev.inmesh.api.config.extauthz.ExtAuthz;
import dev.inmesh.api.config.extauthz.NetworkExtAuthz;
import dev.inmesh.api.config.route.ExtAuthzPerRoute;
import java.time.Duration;
import java.util.List;
import java.util.Set;

/**
 * Envoy's external authorization HTTP filter config ({@code envoy.extensions.filters.http.ext_authz.v3.ExtAuthz}), in
 * the shapes istiod writes for an {@code envoyExtAuthzHttp} or {@code envoyExtAuthzGrpc} extension provider named by
 * an AuthorizationPolicy with {@code action: CUSTOM}: {@code http_service} ({@code server_uri} with its cluster and
 * timeout, {@code path_prefix}, {@code authorization_request.headers_to_add} and {@code allowed_headers},
 * {@code authorization_response}'s allowed upstream and client headers) or {@code grpc_service.envoy_grpc} (its
 * cluster, authority and {@code timeout}), the top-level {@code allowed_headers}, {@code failure_mode_allow},
 * {@code status_on_error}, {@code filter_enabled_metadata} (on the RBAC or JWT filter's dynamic metadata, which Inmesh
 * keeps), {@code clear_route_cache}, {@code with_request_body} (Istio's {@code includeRequestBodyInCheck}: its
 * {@code max_request_bytes}, {@code allow_partial_message} and {@code pack_as_bytes}) and
 * {@code transport_api_version: V3}. What Inmesh does not do is refused by name, never ignored:
 * {@code include_peer_certificate}, {@code filter_enabled} (a runtime fraction istiod never writes),
 * {@code deny_at_disable}, metadata context namespaces, {@code disallowed_headers}, {@code stat_prefix},
 * {@code dynamic_metadata_from_headers}, {@code google_grpc} and the other fields istiod never sets.
 */
final class ExtAuthzParser {
    static final String TYPE = "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz";
    static final String PER_ROUTE_TYPE = "envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute";
    static final String NETWORK_NAME = "envoy.filters.network.ext_authz";
    static final String NETWORK_TYPE = "envoy.extensions.filters.network.ext_authz.v3.ExtAuthz";
    /** The namespace of the RBAC network filter's dynamic metadata. */
    static final String NETWORK_RBAC_NAMESPACE = "envoy.filters.network.rbac";
    /** The namespace of the RBAC HTTP filter's dynamic metadata (its shadow rules' effective policy and result). */
    static final String RBAC_NAMESPACE = "envoy.filters.http.rbac";

    private ExtAuthzParser() {}

    /**
     * A virtual host's or route's {@code ExtAuthzPerRoute} (typed, or in a TypedStruct): {@code disabled} (true turns
     * the filter off there; false, valid in Envoy's proto, turns it back on where a less specific one turned it off),
     * or {@code check_settings} with its {@code context_extensions} and {@code disable_request_body_buffering}. Its
     * {@code with_request_body}, which would replace the filter's body settings for these routes, is refused by name.
     */
    static ExtAuthzPerRoute perRoute(Any any) {
        var p = LocalRateLimitParser.typed(any, io.envoyproxy.envoy.extensions.filters.http.ext_authz.v3
                .ExtAuthzPerRoute.class, io.envoyproxy.envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute
                .newBuilder(), PER_ROUTE_TYPE);
        return switch (p.getOverrideCase()) {
            case DISABLED -> p.getDisabled() ? ExtAuthzPerRoute.DISABLED : new ExtAuthzPerRoute(false, null, false);
            case CHECK_SETTINGS -> Fields.at("check_settings", () -> {
                var c = p.getCheckSettings();
                Fields.onlyKnown(c, Set.of("context_extensions", "disable_request_body_buffering"), Set.of());
                return new ExtAuthzPerRoute(false, c.getContextExtensionsMap(), c.getDisableRequestBodyBuffering());
            });
            case OVERRIDE_NOT_SET -> throw new FieldError("override", "unset (expected: disabled or check_settings)");
        };
    }

    static ExtAuthz parse(Any any) {
        var c = RouteConfigurationParser.unpack(any,
                io.envoyproxy.envoy.extensions.filters.http.ext_authz.v3.ExtAuthz.class, "@type");
        Fields.onlyKnown(c, Set.of("http_service", "grpc_service", "failure_mode_allow", "status_on_error",
                "filter_enabled_metadata", "allowed_headers", "clear_route_cache", "with_request_body",
                "transport_api_version", "failure_mode_allow_header_add"),
                Set.of());
        if (c.getTransportApiVersion() != io.envoyproxy.envoy.config.core.v3.ApiVersion.V3) {
            throw new FieldError("transport_api_version", c.getTransportApiVersion()
                    + " (expected: V3, the only version Envoy's v3 filter speaks)");
        }
        List<StringMatcher> allowed = c.hasAllowedHeaders()
                ? Fields.at("allowed_headers", () -> CoreParsers.stringMatchers(c.getAllowedHeaders())) : List.of();
        ExtAuthz.Service service = switch (c.getServicesCase()) {
            case HTTP_SERVICE -> Fields.at("http_service", () -> http(c.getHttpService()));
            case GRPC_SERVICE -> Fields.at("grpc_service", () -> grpc(c.getGrpcService()));
            default -> throw new FieldError("services", "unset (expected: http_service or grpc_service)");
        };
        if (service instanceof ExtAuthz.HttpService
                && c.getHttpService().getAuthorizationRequest().hasAllowedHeaders()) {
            if (c.hasAllowedHeaders()) {
                throw new FieldError("http_service.authorization_request.allowed_headers", "set with allowed_headers "
                        + "(expected: one of them, as Envoy requires)");
            }
            // the older place of the same list, which istiod wrote before Envoy moved it to the filter
            allowed = Fields.at("http_service.authorization_request.allowed_headers",
                    () -> CoreParsers.stringMatchers(c.getHttpService().getAuthorizationRequest().getAllowedHeaders()));
        }
        int status = c.hasStatusOnError() ? c.getStatusOnError().getCodeValue() : ExtAuthz.DEFAULT_STATUS_ON_ERROR;
        MetadataMatcher enabled = c.hasFilterEnabledMetadata() ? Fields.at("filter_enabled_metadata",
                () -> RbacParser.metadataMatcher(c.getFilterEnabledMetadata(),
                        Set.of(RBAC_NAMESPACE, JwtAuthnParser.NAME),
                        "the filters whose dynamic metadata it keeps for the filters after them")) : null;
        ExtAuthz.BufferSettings body = c.hasWithRequestBody() ? Fields.at("with_request_body", () -> {
            var b = c.getWithRequestBody();
            Fields.onlyKnown(b, Set.of("max_request_bytes", "allow_partial_message", "pack_as_bytes"), Set.of());
            if (b.getMaxRequestBytes() == 0) {
                throw new FieldError("max_request_bytes", "0 (expected: > 0, as Envoy requires)");
            }
            return new ExtAuthz.BufferSettings(Integer.toUnsignedLong(b.getMaxRequestBytes()),
                    b.getAllowPartialMessage(), b.getPackAsBytes());
        }) : null;
        List<StringMatcher> allowedHeaders = allowed;
        int statusOnError = status;
        return Fields.record("", () -> new ExtAuthz(service, allowedHeaders, c.getFailureModeAllow(), statusOnError,
                enabled, c.getClearRouteCache(), body, c.getFailureModeAllowHeaderAdd()));
    }

    /**
     * The external authorization network filter as istiod writes it for a gRPC provider on TCP chains
     * ({@code stat_prefix}, {@code grpc_service.envoy_grpc}, {@code failure_mode_allow},
     * {@code transport_api_version: V3}, {@code filter_enabled_metadata} on the RBAC network filter's metadata);
     * {@code include_peer_certificate}, {@code include_tls_session}, {@code send_tls_alpn} and the rest are refused.
     *
     * @param after how many RBAC network filters come before it in the chain
     */
    static NetworkExtAuthz network(Any any, int after) {
        var c = RouteConfigurationParser.unpack(any,
                io.envoyproxy.envoy.extensions.filters.network.ext_authz.v3.ExtAuthz.class, "@type");
        Fields.onlyKnown(c, Set.of("stat_prefix", "grpc_service", "failure_mode_allow", "filter_enabled_metadata",
                "transport_api_version"), Set.of());
        if (c.getTransportApiVersion() != io.envoyproxy.envoy.config.core.v3.ApiVersion.V3) {
            throw new FieldError("transport_api_version", c.getTransportApiVersion()
                    + " (expected: V3, the only version Envoy's v3 filter speaks)");
        }
        if (!c.hasGrpcService()) {
            throw new FieldError("grpc_service", "unset (expected: the authorizer)");
        }
        ExtAuthz.GrpcService service = Fields.at("grpc_service", () -> grpc(c.getGrpcService()));
        MetadataMatcher enabled = c.hasFilterEnabledMetadata() ? Fields.at("filter_enabled_metadata",
                () -> RbacParser.metadataMatcher(c.getFilterEnabledMetadata(), Set.of(NETWORK_RBAC_NAMESPACE),
                        "the filter whose dynamic metadata it keeps for the network filters after it")) : null;
        return Fields.record("", () -> new NetworkExtAuthz(after, c.getStatPrefix(), service,
                c.getFailureModeAllow(), enabled));
    }

    private static ExtAuthz.HttpService http(io.envoyproxy.envoy.extensions.filters.http.ext_authz.v3.HttpService h) {
        Fields.onlyKnown(h, Set.of("server_uri", "path_prefix", "authorization_request", "authorization_response"),
                Set.of());
        if (!h.hasServerUri()) {
            throw new FieldError("server_uri", "unset (expected: the authorizer's uri, cluster and timeout)");
        }
        var uri = h.getServerUri();
        Duration timeout = Fields.at("server_uri", () -> {
            // the uri is required but only names the service: the filter sends to the cluster's hosts
            Fields.onlyKnown(uri, Set.of("uri", "cluster", "timeout"), Set.of());
            if (uri.getCluster().isEmpty()) {
                throw new FieldError("cluster", "\"\" (expected: the authorizer's cluster)");
            }
            if (!uri.hasTimeout()) {
                throw new FieldError("timeout", "unset (expected: a duration, as Envoy requires)");
            }
            return Fields.duration(uri.getTimeout());
        });
        var req = h.getAuthorizationRequest();
        List<ExtAuthz.Header> add = Fields.at("authorization_request", () -> {
            Fields.onlyKnown(req, Set.of("allowed_headers", "headers_to_add"), Set.of());
            return Fields.each("headers_to_add", req.getHeadersToAddList(), v -> {
                Fields.onlyKnown(v, Set.of("key", "value"), Set.of());
                return Fields.record("", () -> new ExtAuthz.Header(v.getKey(), v.getValue()));
            });
        });
        var resp = h.getAuthorizationResponse();
        return Fields.at("authorization_response", () -> {
            Fields.onlyKnown(resp, Set.of("allowed_upstream_headers", "allowed_upstream_headers_to_append",
                    "allowed_client_headers", "allowed_client_headers_on_success"), Set.of());
            List<StringMatcher> upstream = Fields.at("allowed_upstream_headers",
                    () -> CoreParsers.stringMatchers(resp.getAllowedUpstreamHeaders()));
            List<StringMatcher> append = Fields.at("allowed_upstream_headers_to_append",
                    () -> CoreParsers.stringMatchers(resp.getAllowedUpstreamHeadersToAppend()));
            List<StringMatcher> client = Fields.at("allowed_client_headers",
                    () -> CoreParsers.stringMatchers(resp.getAllowedClientHeaders()));
            List<StringMatcher> onSuccess = Fields.at("allowed_client_headers_on_success",
                    () -> CoreParsers.stringMatchers(resp.getAllowedClientHeadersOnSuccess()));
            return Fields.record("http_service.", () -> new ExtAuthz.HttpService(uri.getCluster(), timeout,
                    h.getPathPrefix(), add, upstream, append, client, onSuccess));
        });
    }

    private static ExtAuthz.GrpcService grpc(io.envoyproxy.envoy.config.core.v3.GrpcService g) {
        Fields.onlyKnown(g, Set.of("envoy_grpc", "timeout"), Set.of());
        if (!g.hasEnvoyGrpc()) {
            throw new FieldError("target_specifier", "unset (expected: envoy_grpc; google_grpc is not supported by "
                    + "Inmesh)");
        }
        var e = g.getEnvoyGrpc();
        Fields.at("envoy_grpc", () -> {
            Fields.onlyKnown(e, Set.of("cluster_name", "authority"), Set.of());
            return null;
        });
        Duration timeout = g.hasTimeout() ? Fields.duration(g.getTimeout()) : null;
        return Fields.record("grpc_service.", () -> new ExtAuthz.GrpcService(e.getClusterName(), e.getAuthority(),
                timeout));
    }

}
