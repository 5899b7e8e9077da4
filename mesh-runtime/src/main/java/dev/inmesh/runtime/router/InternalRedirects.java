package dev.inmesh.runtime.router;

import dev.inmesh.api.config.route.InternalRedirectPolicy;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.vertx.core.MultiMap;
import io.vertx.core.http.HttpMethod;
import java.net.URI;
import java.net.URISyntaxException;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;

/**
 * Envoy's internal redirects ({@code internal_redirect_policy}), as its router's
 * {@code convertRequestHeadersForInternalRedirect}: whether an upstream redirect is followed, and the request it
 * becomes. The checks, in Envoy's order, each counted under its name when it refuses ({@code
 * passthrough_internal_redirect_<name>} of the connection manager, and the redirect is passed on to the caller): the
 * {@code Location} must be an absolute http or https URL ({@code bad_location}); its scheme the request's unless
 * {@code allow_cross_scheme_redirect} ({@code unsafe_scheme}); the request may not have followed
 * {@code max_internal_redirects} already ({@code too_many_redirects}); the URL must have a route
 * ({@code no_route}); that route must pass the policy's predicates ({@code predicate}).
 */
final class InternalRedirects {
    static final String BAD_LOCATION = "bad_location";
    static final String UNSAFE_SCHEME = "unsafe_scheme";
    static final String TOO_MANY_REDIRECTS = "too_many_redirects";
    static final String NO_ROUTE = "no_route";
    static final String PREDICATE = "predicate";
    static final String X_ENVOY_ORIGINAL_URL = "x-envoy-original-url";

    private InternalRedirects() {}

    /** An absolute URL's parts: its scheme (lower case), its host with its port, and its path with its query. */
    record Target(String scheme, String hostAndPort, String pathAndQuery) {}

    /**
     * The target of an absolute http or https {@code Location}, its fragment left out (a request path has none);
     * null for anything else (relative, another scheme, no host, not a URL).
     */
    static Target parse(String location) {
        URI u;
        try {
            u = new URI(location);
        } catch (URISyntaxException e) {
            return null;
        }
        String scheme = u.getScheme() == null ? null : u.getScheme().toLowerCase(Locale.ROOT);
        if (!"http".equals(scheme) && !"https".equals(scheme) || u.getRawAuthority() == null || u.getHost() == null
                || u.getRawUserInfo() != null) {
            return null;
        }
        String path = u.getRawPath() == null || u.getRawPath().isEmpty() ? "/" : u.getRawPath();
        return new Target(scheme, u.getRawAuthority(), u.getRawQuery() == null ? path : path + "?" + u.getRawQuery());
    }

    /**
     * Makes {@code req} the request a redirect sends, if the policy follows it; else leaves it as it was and returns
     * why not (one of the names above).
     *
     * @param routeName the name of the route whose policy this is (the {@code previous_routes} predicate's key)
     * @param status the upstream's status (a 303 turns a request other than GET or HEAD into a bodiless GET)
     * @param response the upstream's response headers ({@code response_headers_to_copy})
     * @param host the Host the request went upstream with, for {@code x-envoy-original-url}
     * @param path the path it went upstream with, for {@code x-envoy-original-url}
     * @param random the random value the target's route is chosen with
     * @return null when the request now goes to the redirect's URL
     */
    static String follow(RouterRequest req, InternalRedirectPolicy policy, String routeName, int status,
                         String location, MultiMap response, RouteTable table, String host, String path,
                         long random) {
        Target target = location.isEmpty() ? null : parse(location);
        if (target == null) {
            return BAD_LOCATION;
        }
        boolean downstreamHttp = !"https".equalsIgnoreCase(req.scheme);
        boolean targetHttp = target.scheme.equals("http");
        if (!policy.allowCrossSchemeRedirect() && downstreamHttp != targetHttp) {
            return UNSAFE_SCHEME;
        }
        if (req.internalRedirects >= policy.maxInternalRedirects()) {
            return TOO_MANY_REDIRECTS;
        }
        String uri = req.uri;
        String authority = req.authority;
        String scheme = req.scheme;
        MultiMap saved = MultiMap.caseInsensitiveMultiMap().addAll(req.headers);
        for (String name : policy.responseHeadersToCopy()) {
            List<String> values = response.getAll(name);
            req.headers.remove(name);
            for (String v : values) {
                req.headers.add(name, v);
            }
        }
        req.scheme = target.scheme;
        req.authority = target.hostAndPort;
        req.uri = target.pathAndQuery;
        String refused = null;
        RouteResult routed = table.route(req, random);
        if (routed instanceof RouteResult.NoRoute) {
            refused = NO_ROUTE;
        } else if (!accepted(req, policy, routeName, RouteResult.routeOf(routed).name(), downstreamHttp, targetHttp)) {
            refused = PREDICATE;
        }
        if (refused != null) {
            req.uri = uri;
            req.authority = authority;
            req.scheme = scheme;
            req.headers.clear().addAll(saved);
            return refused;
        }
        if (status == 303 && req.method != HttpMethod.GET && req.method != HttpMethod.HEAD) {
            // RFC 9110 15.4.4, as Envoy: the redirected request is a GET without the body
            req.method = HttpMethod.GET;
            req.headers.remove(HttpHeaderNames.CONTENT_LENGTH);
        }
        req.internalRedirects++;
        req.headers.set(X_ENVOY_ORIGINAL_URL, (downstreamHttp ? "http" : "https") + "://" + host + path);
        return null;
    }

    /** Whether the redirect's target route passes every predicate, in order (the first that refuses decides). */
    private static boolean accepted(RouterRequest req, InternalRedirectPolicy policy, String routeName,
                                    String targetRoute, boolean downstreamHttp, boolean targetHttp) {
        for (InternalRedirectPolicy.Predicate p : policy.predicates()) {
            boolean ok;
            if (p instanceof InternalRedirectPolicy.AllowListedRoutes a) {
                ok = a.allowedRouteNames().contains(targetRoute);
            } else if (p instanceof InternalRedirectPolicy.PreviousRoutes) {
                if (req.redirectTargets == null) {
                    req.redirectTargets = new HashMap<>(2);
                }
                ok = req.redirectTargets.computeIfAbsent(routeName, k -> new HashSet<>(2)).add(targetRoute);
            } else {
                ok = !downstreamHttp || targetHttp; // safe_cross_scheme: from http only to http
            }
            if (!ok) {
                return false;
            }
        }
        return true;
    }
}
