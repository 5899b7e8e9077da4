package dev.inmesh.api.config.extauthz;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.MetadataMatcher;
import dev.inmesh.api.config.core.StringMatcher;
import java.time.Duration;
import java.util.List;

/**
 * The config of one external authorization HTTP filter ({@code extensions.filters.http.ext_authz.v3.ExtAuthz}): before
 * a request goes on, the filter asks an authorizer whether it may, and lets it through (with the header changes the
 * authorizer asked for), answers it with the authorizer's denial, or, when the authorizer cannot be asked or fails,
 * answers {@code statusOnError} unless {@code failureModeAllow}.
 *
 * @param service the authorizer: an HTTP service or a gRPC one
 * @param allowedHeaders the request headers sent to the authorizer (Envoy's {@code allowed_headers}, or the HTTP
 *     service's older {@code authorization_request.allowed_headers}); empty: all of them to a gRPC authorizer, and only
 *     {@code authorization}, {@code :method}, {@code :path} and {@code :authority} (which an HTTP authorizer always
 *     gets) to an HTTP one
 * @param failureModeAllow whether a request goes on when the authorizer could not answer (error, timeout, 5xx)
 * @param statusOnError the status of the answer to a request the authorizer could not decide (Envoy's default 403)
 * @param filterEnabledMetadata the dynamic metadata a request must have for the filter to check it (Istio's shadow
 *     RBAC filter's {@code istio_ext_authz_shadow_effective_policy_id}); null: every request is checked
 * @param clearRouteCache whether a request whose headers the authorizer changed is routed again
 * @param withRequestBody how the request's body is held and sent in the check ({@code with_request_body}, Istio's
 *     {@code includeRequestBodyInCheck}); null: the check is made on the request's headers, with no body
 * @param failureModeAllowHeaderAdd whether a request let through by {@code failureModeAllow} goes on with
 *     {@code x-envoy-auth-failure-mode-allowed: true} added ({@code failure_mode_allow_header_add})
 */
public record ExtAuthz(Service service, List<StringMatcher> allowedHeaders, boolean failureModeAllow,
                       int statusOnError, MetadataMatcher filterEnabledMetadata, boolean clearRouteCache,
                       BufferSettings withRequestBody, boolean failureModeAllowHeaderAdd) {
    /** Envoy's default {@code status_on_error}: 403 Forbidden. */
    public static final int DEFAULT_STATUS_ON_ERROR = 403;

    public ExtAuthz {
        Checks.nonNull(service, "services");
        allowedHeaders = Checks.list(allowedHeaders, "allowed_headers");
        Checks.range(statusOnError, 100, 599, "status_on_error.code");
    }

    /** A filter that adds no header to a request it lets through on an error. */
    public ExtAuthz(Service service, List<StringMatcher> allowedHeaders, boolean failureModeAllow, int statusOnError,
                    MetadataMatcher filterEnabledMetadata, boolean clearRouteCache, BufferSettings withRequestBody) {
        this(service, allowedHeaders, failureModeAllow, statusOnError, filterEnabledMetadata, clearRouteCache,
                withRequestBody, false);
    }

    /** A filter that checks requests on their headers only ({@code with_request_body} unset). */
    public ExtAuthz(Service service, List<StringMatcher> allowedHeaders, boolean failureModeAllow, int statusOnError,
                    MetadataMatcher filterEnabledMetadata, boolean clearRouteCache) {
        this(service, allowedHeaders, failureModeAllow, statusOnError, filterEnabledMetadata, clearRouteCache, null);
    }

    /**
     * Envoy's {@code BufferSettings}: the filter holds a request's body before it asks the authorizer, and sends it
     * in the check. A request without a body is checked at once.
     *
     * @param maxRequestBytes the most of the body held: a longer body is answered {@code 413} without a check, unless
     *     {@code allowPartialMessage}
     * @param allowPartialMessage whether the check is made once {@code maxRequestBytes} came, with those bytes, the
     *     body going on whole after it
     * @param packAsBytes whether a gRPC authorizer gets the body as bytes ({@code raw_body}) rather than as UTF-8
     *     text ({@code body}); an HTTP authorizer gets the bytes either way
     */
    public record BufferSettings(long maxRequestBytes, boolean allowPartialMessage, boolean packAsBytes) {
        public BufferSettings {
            Checks.range(maxRequestBytes, 1, 0xFFFF_FFFFL, "with_request_body.max_request_bytes");
        }
    }

    /** The authorizer a filter asks. */
    public sealed interface Service {
        /** The cluster whose hosts answer. */
        String cluster();

        /** How long the filter waits for an answer. */
        Duration timeout();
    }

    /**
     * An HTTP authorizer ({@code http_service}): it gets the request's method and path (after {@code pathPrefix}), its
     * allowed headers and {@code headersToAdd}, and the body {@code withRequestBody} holds (else none); a {@code 200}
     * answer allows, a {@code 5xx} is an error, any
     * other answer denies and is passed on to the client.
     *
     * @param cluster the cluster of {@code server_uri}
     * @param timeout {@code server_uri.timeout}
     * @param pathPrefix put before the request's path ({@code path_prefix}), or empty
     * @param headersToAdd headers set on every check request ({@code authorization_request.headers_to_add})
     * @param allowedUpstreamHeaders headers of an allowing answer that replace the request's
     *     ({@code authorization_response.allowed_upstream_headers})
     * @param allowedUpstreamHeadersToAppend headers of an allowing answer added to the request's
     *     ({@code allowed_upstream_headers_to_append})
     * @param allowedClientHeaders headers of a denying answer passed to the client ({@code allowed_client_headers});
     *     empty: all of them but {@code host}
     * @param allowedClientHeadersOnSuccess headers of an allowing answer added to the response the client gets
     *     ({@code allowed_client_headers_on_success})
     */
    public record HttpService(String cluster, Duration timeout, String pathPrefix, List<Header> headersToAdd,
                              List<StringMatcher> allowedUpstreamHeaders,
                              List<StringMatcher> allowedUpstreamHeadersToAppend,
                              List<StringMatcher> allowedClientHeaders,
                              List<StringMatcher> allowedClientHeadersOnSuccess) implements Service {
        public HttpService {
            Checks.nonEmpty(cluster, "http_service.server_uri.cluster");
            Checks.nonNull(timeout, "http_service.server_uri.timeout");
            pathPrefix = pathPrefix == null ? "" : pathPrefix;
            Checks.check(pathPrefix.isEmpty() || pathPrefix.startsWith("/"), "http_service.path_prefix", pathPrefix,
                    "empty or starting with /");
            headersToAdd = Checks.list(headersToAdd, "http_service.authorization_request.headers_to_add");
            allowedUpstreamHeaders = Checks.list(allowedUpstreamHeaders,
                    "http_service.authorization_response.allowed_upstream_headers");
            allowedUpstreamHeadersToAppend = Checks.list(allowedUpstreamHeadersToAppend,
                    "http_service.authorization_response.allowed_upstream_headers_to_append");
            allowedClientHeaders = Checks.list(allowedClientHeaders,
                    "http_service.authorization_response.allowed_client_headers");
            allowedClientHeadersOnSuccess = Checks.list(allowedClientHeadersOnSuccess,
                    "http_service.authorization_response.allowed_client_headers_on_success");
        }
    }

    /**
     * A gRPC authorizer ({@code grpc_service.envoy_grpc}): {@code envoy.service.auth.v3.Authorization/Check} over
     * HTTP/2 to a host of the cluster.
     *
     * @param cluster {@code envoy_grpc.cluster_name}
     * @param authority the {@code :authority} of the calls ({@code envoy_grpc.authority}; empty: the cluster's name)
     * @param timeout {@code grpc_service.timeout} (Envoy's default 200 ms when unset)
     */
    public record GrpcService(String cluster, String authority, Duration timeout) implements Service {
        /** Envoy's default {@code grpc_service.timeout} of the ext_authz filter. */
        public static final Duration DEFAULT_TIMEOUT = Duration.ofMillis(200);

        public GrpcService {
            Checks.nonEmpty(cluster, "grpc_service.envoy_grpc.cluster_name");
            authority = authority == null || authority.isEmpty() ? cluster : authority;
            timeout = timeout == null ? DEFAULT_TIMEOUT : timeout;
        }
    }

    /** A header name and value. */
    public record Header(String key, String value) {
        public Header {
            Checks.nonEmpty(key, "key");
            value = value == null ? "" : value;
        }
    }
}
