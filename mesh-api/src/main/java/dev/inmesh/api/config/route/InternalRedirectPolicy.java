package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * Envoy's internal redirects ({@code route.v3.InternalRedirectPolicy}): an upstream answer with one of
 * {@code redirectResponseCodes} and an absolute {@code Location} is not passed on; the request goes again, to that URL,
 * through the connection manager's filters and the route table, as a new request.
 *
 * @param maxInternalRedirects how many redirects a request may follow (Envoy's default 1)
 * @param redirectResponseCodes the codes followed (Envoy's default 302; only 301, 302, 303, 307 and 308 are kept, as
 *     Envoy ignores others)
 * @param predicates what a redirect's target route must pass, in order
 * @param allowCrossSchemeRedirect whether a redirect may change the scheme (http to https, or back)
 * @param responseHeadersToCopy response headers copied onto the redirected request (replacing its own; one the
 *     response lacks is taken off)
 */
public record InternalRedirectPolicy(int maxInternalRedirects, Set<Integer> redirectResponseCodes,
                                     List<Predicate> predicates, boolean allowCrossSchemeRedirect,
                                     List<String> responseHeadersToCopy) {
    /** The codes Envoy follows, of those a policy names. */
    public static final Set<Integer> REDIRECT_CODES = Set.of(301, 302, 303, 307, 308);

    /** A predicate on a redirect's target route ({@code envoy.internal_redirect_predicates.*}). */
    public sealed interface Predicate permits AllowListedRoutes, PreviousRoutes, SafeCrossScheme {}

    /**
     * {@code allow_listed_routes}: the target route must be one of these names (none: no redirect is followed; the
     * proto allows an empty list, not an empty name).
     */
    public record AllowListedRoutes(Set<String> allowedRouteNames) implements Predicate {
        public AllowListedRoutes {
            allowedRouteNames = Set.copyOf(allowedRouteNames);
            Checks.check(!allowedRouteNames.contains(""), "allowed_route_names", "\"\"", "non-empty route names");
        }
    }

    /** {@code previous_routes}: a request may not be redirected twice to the same route from this route. */
    public record PreviousRoutes() implements Predicate {}

    /** {@code safe_cross_scheme}: from http, only to http; from https, anywhere. */
    public record SafeCrossScheme() implements Predicate {}

    public InternalRedirectPolicy {
        Checks.check(maxInternalRedirects >= 0, "max_internal_redirects", maxInternalRedirects, ">= 0");
        Set<Integer> codes = new TreeSet<>();
        for (int code : redirectResponseCodes == null || redirectResponseCodes.isEmpty() ? Set.of(302)
                : redirectResponseCodes) {
            if (REDIRECT_CODES.contains(code)) {
                codes.add(code);
            }
        }
        redirectResponseCodes = Set.copyOf(codes);
        predicates = Checks.list(predicates, "predicates");
        responseHeadersToCopy = Checks.list(responseHeadersToCopy, "response_headers_to_copy").stream()
                .map(h -> h.toLowerCase(java.util.Locale.ROOT)).toList();
        for (String h : responseHeadersToCopy) {
            Checks.check(!h.startsWith(":") && !h.equals("host"), "response_headers_to_copy", h,
                    "a header other than a pseudo-header or host");
        }
    }

    /** Envoy's defaults: one redirect, on 302. */
    public static InternalRedirectPolicy defaults() {
        return new InternalRedirectPolicy(1, Set.of(302), List.of(), false, List.of());
    }
}
