package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;
import java.time.Duration;
import java.util.List;

/**
 * Forward to a cluster ({@code route.v3.RouteAction}).
 *
 * @param cluster which cluster
 * @param timeout the route timeout over all attempts (Envoy's default 15 s; {@link Duration#ZERO} disables it)
 * @param idleTimeout the stream idle timeout for this route, or null
 * @param retryPolicy the retry policy, or null to use the virtual host's
 * @param prefixRewrite replaces the matched prefix, or null
 * @param regexRewrite rewrites the path by regex, or null
 * @param hostRewriteLiteral replaces the Host header, or null
 * @param autoHostRewrite whether Host becomes the upstream host's name
 * @param hashPolicies for consistent-hash load balancers
 * @param maxGrpcTimeout the cap on a {@code grpc-timeout} header, or null when it is not used
 * @param includeVhRateLimits whether the global rate limit filter sends its virtual host's {@code rate_limits} too
 *     ({@code include_vh_rate_limits}); without it, they are sent only when the route has none of its own
 * @param maxStreamDuration whether the route sets {@code max_stream_duration} (Envoy's newer timeouts):
 *     {@code maxGrpcTimeout} is then its {@code grpc_timeout_header_max}, and a request's {@code grpc-timeout}
 *     sets the stream's duration (Envoy's connection manager's timer) rather than the route timeout
 * @param grpcTimeoutHeaderOffset {@code max_stream_duration.grpc_timeout_header_offset}: taken off a request's
 *     {@code grpc-timeout} once the maximum capped it (all of it when the offset is not shorter); without
 *     {@code max_stream_duration}, the deprecated {@code grpc_timeout_offset} of {@code max_grpc_timeout}: taken off
 *     before the cap, and only when it is shorter; or null
 * @param requestMirrorPolicies the copies of each request sent to other clusters ({@code request_mirror_policies})
 * @param streamDuration {@code max_stream_duration.max_stream_duration}: replaces the connection manager's
 *     {@code max_stream_duration} for the route's requests ({@link Duration#ZERO}: none for them); null when unset
 * @param rateLimits the global rate limit filter's descriptors for the route's requests ({@code rate_limits}); empty
 *     for none (its virtual host's then apply)
 * @param clusterNotFoundStatus the status answered when the route's cluster does not exist
 *     ({@code cluster_not_found_response_code}: 503 by default, 404 or 500; istiod writes 500 for a Gateway API
 *     HTTPRoute's routes)
 * @param hostRewriteHeader the request header whose first value, when present and not empty, replaces the Host
 *     ({@code host_rewrite_header}), or null
 * @param hostRewritePathRegex a regex rewrite of the request's path (without its query) whose result, when not empty,
 *     replaces the Host ({@code host_rewrite_path_regex}), or null
 * @param appendXForwardedHost whether a Host rewrite appends the Host it replaces to {@code x-forwarded-host}, unless
 *     that is already its last value ({@code append_x_forwarded_host})
 * @param internalRedirectPolicy the upstream redirects the router follows itself ({@code internal_redirect_policy},
 *     or the deprecated {@code internal_redirect_action: HANDLE_INTERNAL_REDIRECT}), or null for none
 * @param hedgePolicy the route's {@code hedge_policy}, or null to use the virtual host's
 * @param websocketUpgrade the route's own {@code upgrade_configs} entry for {@code websocket}: true or false decides
 *     for the route's upgrades over the connection manager's {@code upgrade_configs}, as Envoy's; null (no entry):
 *     the connection manager's decide
 */
public record RouteAction(ClusterSpecifier cluster, Duration timeout, Duration idleTimeout, RetryPolicy retryPolicy,
                          String prefixRewrite, RegexRewrite regexRewrite, String hostRewriteLiteral,
                          boolean autoHostRewrite, List<HashPolicy> hashPolicies, Duration maxGrpcTimeout,
                          boolean includeVhRateLimits, boolean maxStreamDuration, Duration grpcTimeoutHeaderOffset,
                          List<RequestMirrorPolicy> requestMirrorPolicies, Duration streamDuration,
                          List<RateLimit> rateLimits, int clusterNotFoundStatus, String hostRewriteHeader,
                          RegexRewrite hostRewritePathRegex, boolean appendXForwardedHost,
                          InternalRedirectPolicy internalRedirectPolicy, HedgePolicy hedgePolicy,
                          Boolean websocketUpgrade)
        implements Action {

    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(15);

    public RouteAction {
        Checks.nonNull(cluster, "route.cluster_specifier");
        timeout = timeout == null ? DEFAULT_TIMEOUT : timeout;
        Checks.check(!timeout.isNegative(), "timeout", timeout, ">= 0s");
        hashPolicies = Checks.list(hashPolicies, "hash_policy");
        Checks.check(prefixRewrite == null || regexRewrite == null, "prefix_rewrite", prefixRewrite,
                "not both prefix_rewrite and regex_rewrite");
        hostRewriteHeader = hostRewriteHeader == null || hostRewriteHeader.isEmpty() ? null : hostRewriteHeader;
        int hostRewrites = (hostRewriteLiteral != null ? 1 : 0) + (autoHostRewrite ? 1 : 0)
                + (hostRewriteHeader != null ? 1 : 0) + (hostRewritePathRegex != null ? 1 : 0);
        Checks.check(hostRewrites <= 1, "host_rewrite_specifier", hostRewrites + " set",
                "one of host_rewrite_literal, auto_host_rewrite, host_rewrite_header and host_rewrite_path_regex");
        Checks.check(grpcTimeoutHeaderOffset == null || !grpcTimeoutHeaderOffset.isNegative(),
                "max_stream_duration.grpc_timeout_header_offset", grpcTimeoutHeaderOffset, ">= 0s");
        requestMirrorPolicies = Checks.list(requestMirrorPolicies, "request_mirror_policies");
        Checks.check(streamDuration == null || !streamDuration.isNegative(),
                "max_stream_duration.max_stream_duration", streamDuration, ">= 0s");
        rateLimits = Checks.list(rateLimits, "rate_limits");
        clusterNotFoundStatus = clusterNotFoundStatus == 0 ? 503 : clusterNotFoundStatus;
        Checks.check(clusterNotFoundStatus == 503 || clusterNotFoundStatus == 404 || clusterNotFoundStatus == 500,
                "cluster_not_found_response_code", clusterNotFoundStatus, "503, 404 or 500");
    }

    /**
     * Forward to {@code cluster} with Envoy's defaults: the 15 s route timeout, no rewrites, hashing, mirrors, rate
     * limits, redirects or policies of its own (the virtual host's apply), and 503 when the cluster does not exist.
     */
    public static RouteAction to(ClusterSpecifier cluster) {
        return new RouteAction(cluster, null, null, null, null, null, null, false, List.of(), null, false, false, null,
                List.of(), null, List.of(), 0, null, null, false, null, null, null);
    }

    /** Forward to one named cluster with Envoy's defaults, as {@link #to(ClusterSpecifier)}. */
    public static RouteAction toCluster(String cluster) {
        return to(new ClusterSpecifier.Named(cluster));
    }

    /** This action with a route timeout; null means Envoy's 15 s default, {@link Duration#ZERO} none. */
    public RouteAction withTimeout(Duration routeTimeout) {
        return new RouteAction(cluster, routeTimeout, idleTimeout, retryPolicy, prefixRewrite, regexRewrite,
                hostRewriteLiteral, autoHostRewrite, hashPolicies, maxGrpcTimeout, includeVhRateLimits,
                maxStreamDuration, grpcTimeoutHeaderOffset, requestMirrorPolicies, streamDuration, rateLimits,
                clusterNotFoundStatus, hostRewriteHeader, hostRewritePathRegex, appendXForwardedHost,
                internalRedirectPolicy, hedgePolicy, websocketUpgrade);
    }

    /** This action with hash policies for consistent-hash load balancers; empty (the default) hashes nothing. */
    public RouteAction withHashPolicies(List<HashPolicy> policies) {
        return new RouteAction(cluster, timeout, idleTimeout, retryPolicy, prefixRewrite, regexRewrite,
                hostRewriteLiteral, autoHostRewrite, policies, maxGrpcTimeout, includeVhRateLimits,
                maxStreamDuration, grpcTimeoutHeaderOffset, requestMirrorPolicies, streamDuration, rateLimits,
                clusterNotFoundStatus, hostRewriteHeader, hostRewritePathRegex, appendXForwardedHost,
                internalRedirectPolicy, hedgePolicy, websocketUpgrade);
    }

    /**
     * This action with the global rate limit filter's {@code rate_limits} and {@code include_vh_rate_limits}; by
     * default it has none, and its virtual host's are sent only then.
     */
    public RouteAction withRateLimits(List<RateLimit> limits, boolean includeVhLimits) {
        return new RouteAction(cluster, timeout, idleTimeout, retryPolicy, prefixRewrite, regexRewrite,
                hostRewriteLiteral, autoHostRewrite, hashPolicies, maxGrpcTimeout, includeVhLimits,
                maxStreamDuration, grpcTimeoutHeaderOffset, requestMirrorPolicies, streamDuration, limits,
                clusterNotFoundStatus, hostRewriteHeader, hostRewritePathRegex, appendXForwardedHost,
                internalRedirectPolicy, hedgePolicy, websocketUpgrade);
    }

    /**
     * This action with {@code max_stream_duration} set, with its {@code grpc_timeout_header_max} and
     * {@code grpc_timeout_header_offset} (either null when unset); by default the route has no
     * {@code max_stream_duration}, and a {@code grpc-timeout} header is not used.
     */
    public RouteAction withMaxStreamDuration(Duration grpcTimeoutHeaderMax, Duration grpcTimeoutOffset) {
        return new RouteAction(cluster, timeout, idleTimeout, retryPolicy, prefixRewrite, regexRewrite,
                hostRewriteLiteral, autoHostRewrite, hashPolicies, grpcTimeoutHeaderMax, includeVhRateLimits, true,
                grpcTimeoutOffset, requestMirrorPolicies, streamDuration, rateLimits, clusterNotFoundStatus,
                hostRewriteHeader, hostRewritePathRegex, appendXForwardedHost, internalRedirectPolicy, hedgePolicy, websocketUpgrade);
    }
}
