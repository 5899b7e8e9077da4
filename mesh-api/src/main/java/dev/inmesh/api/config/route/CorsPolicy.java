package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.api.config.core.StringMatcher;
import java.util.List;

/**
 * Envoy's CORS policy ({@code extensions.filters.http.cors.v3.CorsPolicy} in a route's or virtual host's
 * {@code typed_per_filter_config}, or the older {@code cors} field of a virtual host or route action), which the
 * connection manager's CORS filter applies (Istio's VirtualService {@code corsPolicy}). A route's policy is consulted
 * before its virtual host's, field by field: an empty string or null here means "not set at this level".
 *
 * @param allowOrigins the origins allowed (any matcher matching the request's {@code origin}); empty: not set
 * @param allowMethods {@code access-control-allow-methods} of a preflight answer ({@code *}: the requested method)
 * @param allowHeaders {@code access-control-allow-headers} of a preflight answer ({@code *}: the requested headers)
 * @param exposeHeaders {@code access-control-expose-headers} of an answer to an allowed origin
 * @param maxAge {@code access-control-max-age} of a preflight answer
 * @param allowCredentials whether answers carry {@code access-control-allow-credentials: true}, or null
 * @param filterEnabled the share of requests the policy is enforced for, or null for all (Envoy's default)
 * @param shadowEnabled the share of requests the policy is only evaluated for, or null for none
 * @param allowPrivateNetworkAccess whether a preflight asking for private network access is granted it, or null
 * @param forwardNotMatchingPreflights whether a preflight from an origin not allowed goes upstream (null: Envoy's
 *     default, yes) rather than being answered without {@code access-control-allow-origin}
 * @param legacy whether it came from the {@code cors} field, which Envoy reads only where neither the route nor its
 *     virtual host has a CORS policy in {@code typed_per_filter_config}
 */
public record CorsPolicy(List<StringMatcher> allowOrigins, String allowMethods, String allowHeaders,
                         String exposeHeaders, String maxAge, Boolean allowCredentials,
                         FractionalPercent filterEnabled, FractionalPercent shadowEnabled,
                         Boolean allowPrivateNetworkAccess, Boolean forwardNotMatchingPreflights, boolean legacy) {
    public CorsPolicy {
        allowOrigins = Checks.list(allowOrigins, "allow_origin_string_match");
        allowMethods = allowMethods == null ? "" : allowMethods;
        allowHeaders = allowHeaders == null ? "" : allowHeaders;
        exposeHeaders = exposeHeaders == null ? "" : exposeHeaders;
        maxAge = maxAge == null ? "" : maxAge;
    }
}
