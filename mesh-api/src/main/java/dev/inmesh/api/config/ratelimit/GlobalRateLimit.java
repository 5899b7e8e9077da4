package dev.inmesh.api.config.ratelimit;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.HeaderValueOption;
import java.time.Duration;
import java.util.List;

/**
 * The config of one global rate limit HTTP filter ({@code extensions.filters.http.ratelimit.v3.RateLimit}): for a
 * routed request, the filter builds descriptors from its route's (and virtual host's) {@code rate_limits} of its
 * {@code stage}, asks the rate limit service {@code ShouldRateLimit} for {@code domain}, and refuses the request
 * when the service answers {@code OVER_LIMIT}. When the service cannot be asked or does not answer within
 * {@code timeout}, the request goes on, unless {@code failureModeDeny}.
 *
 * @param domain the domain sent with every call ({@code domain}, required)
 * @param stage which entries of the routes' {@code rate_limits} it reads ({@code stage}, 0 to 10)
 * @param requestType which requests it checks ({@code request_type}): internal ones (with
 *     {@code x-envoy-internal: true}), external ones, or both (Envoy's default)
 * @param timeout how long it waits for the service ({@code timeout}, Envoy's default 20 ms; 0 for no limit, as
 *     Envoy's filter reads it)
 * @param failureModeDeny whether a request is refused when the service could not answer ({@code failure_mode_deny})
 * @param cluster the service's cluster ({@code rate_limit_service.grpc_service.envoy_grpc.cluster_name})
 * @param authority the {@code :authority} of the calls ({@code envoy_grpc.authority}; empty: the cluster's name)
 * @param xRateLimitHeaders whether responses get the {@code x-ratelimit-limit}, {@code -remaining} and {@code -reset}
 *     headers from the service's answer ({@code enable_x_ratelimit_headers: DRAFT_VERSION_03})
 * @param xEnvoyRateLimitedHeader whether a refusal carries {@code x-envoy-ratelimited: true} (unless
 *     {@code disable_x_envoy_ratelimited_header})
 * @param rateLimitedStatus the status of a refusal ({@code rate_limited_status}; 429 when unset or below 400)
 * @param statusOnError the status of the answer to a request refused because the service could not answer
 *     ({@code status_on_error}; 500 when unset; unlike {@code rateLimitedStatus}, Envoy keeps a status below 400;
 *     an informational one, which cannot end a request, is refused)
 * @param responseHeadersToAdd headers put on a refusal ({@code response_headers_to_add})
 */
public record GlobalRateLimit(String domain, int stage, RequestType requestType, Duration timeout,
                              boolean failureModeDeny, String cluster, String authority, boolean xRateLimitHeaders,
                              boolean xEnvoyRateLimitedHeader, int rateLimitedStatus, int statusOnError,
                              List<HeaderValueOption> responseHeadersToAdd) {
    /** Envoy's default {@code timeout}. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofMillis(20);
    /** Envoy's status of a refusal: 429 Too Many Requests. */
    public static final int DEFAULT_RATE_LIMITED_STATUS = 429;
    /** Envoy's status of a refusal for an error under {@code failure_mode_deny}: 500. */
    public static final int DEFAULT_STATUS_ON_ERROR = 500;

    /** Which requests the filter checks ({@code request_type}). */
    public enum RequestType {
        /** Only those with {@code x-envoy-internal: true}. */
        INTERNAL,
        /** Only those without it (Istio's sidecar requests are external). */
        EXTERNAL,
        /** All of them (Envoy's default, {@code both} or empty). */
        BOTH
    }

    public GlobalRateLimit {
        Checks.nonEmpty(domain, "domain");
        Checks.range(stage, 0, 10, "stage");
        requestType = requestType == null ? RequestType.BOTH : requestType;
        timeout = timeout == null ? DEFAULT_TIMEOUT : timeout;
        Checks.check(!timeout.isNegative(), "timeout", timeout, ">= 0s");
        Checks.nonEmpty(cluster, "rate_limit_service.grpc_service.envoy_grpc.cluster_name");
        authority = authority == null || authority.isEmpty() ? cluster : authority;
        rateLimitedStatus = rateLimitedStatus < 400 ? DEFAULT_RATE_LIMITED_STATUS : rateLimitedStatus;
        Checks.range(rateLimitedStatus, 400, 599, "rate_limited_status.code");
        statusOnError = statusOnError == 0 ? DEFAULT_STATUS_ON_ERROR : statusOnError;
        Checks.range(statusOnError, 200, 599, "status_on_error.code");
        responseHeadersToAdd = Checks.list(responseHeadersToAdd, "response_headers_to_add");
        Checks.check(responseHeadersToAdd.size() <= 10, "response_headers_to_add", responseHeadersToAdd.size(),
                "at most 10 headers, as Envoy requires");
    }
}
