package dev.inmesh.runtime.router;

import dev.inmesh.api.config.core.StringMatcher;
import dev.inmesh.api.config.route.CorsPolicy;
import io.vertx.core.MultiMap;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;
import java.util.function.LongSupplier;
import java.util.function.Predicate;

/**
 * Envoy's CORS filter as the router and the in-JVM inbound side run it, once a request is routed to a cluster (a
 * redirect or direct response bypasses it, as Envoy's): the route's policy, then its virtual host's, consulted field
 * by field (policies in {@code typed_per_filter_config}, else the older {@code cors} fields); whether the most
 * specific one is enabled for the request; then a preflight from an allowed origin answered here, or the headers the
 * response gets for an allowed origin.
 */
public final class CorsFilter {
    /** The response code details of a preflight answered by the filter, as Envoy's. */
    public static final String PREFLIGHT_DETAILS = "cors_response";

    /** Distinct origin lists before the compiled ones are dropped and compiled again. */
    private static final int MAX_COMPILED = 256;

    private final Map<List<StringMatcher>, List<Predicate<String>>> compiled = new ConcurrentHashMap<>();

    /**
     * What the filter does for a request.
     *
     * @param preflight whether the filter answers the request itself: 200 with {@code headers} and no body
     * @param headers the preflight answer's headers, or those an answer from upstream gets (set over its own)
     */
    public record Outcome(boolean preflight, MultiMap headers) {
        /** Sets the headers on a response's, replacing only the same names. */
        public void setOn(MultiMap response) {
            headers.forEach(response::set);
        }
    }

    /**
     * What the CORS filter does for a request routed as {@code result}, or null for nothing.
     *
     * @param header the request's headers by lower-case name
     * @param random draws the random value for a policy's {@code filter_enabled} share (only when it has one)
     */
    public Outcome apply(RouteResult result, String method, Function<String, String> header, LongSupplier random) {
        return apply(result, method, header, random, null);
    }

    /**
     * As {@link #apply(RouteResult, String, Function, LongSupplier)}, counting a request with an Origin in the
     * connection manager's {@code cors.origin_valid} or {@code cors.origin_invalid} ({@code stats}; null: none), as
     * Envoy's filter does for the requests a policy covers.
     */
    public Outcome apply(RouteResult result, String method, Function<String, String> header, LongSupplier random,
                         dev.inmesh.runtime.stats.DownstreamStats stats) {
        List<CorsPolicy> policies = policies(result);
        if (policies.isEmpty()) {
            return null;
        }
        CorsPolicy first = policies.get(0);
        boolean enabled = first.filterEnabled() == null
                || FaultFilter.enabled(first.filterEnabled(), random.getAsLong());
        // shadow_enabled only counts origins in Envoy's statistics: a request it covers is served as without CORS
        boolean shadow = !enabled && first.shadowEnabled() != null
                && FaultFilter.enabled(first.shadowEnabled(), random.getAsLong());
        if (!enabled && !shadow) {
            return null;
        }
        String origin = header.apply("origin");
        if (origin == null || origin.isEmpty()) {
            return null;
        }
        boolean allowed = allowed(policies, origin);
        if (stats != null) {
            stats.corsOrigin(allowed);
        }
        if (!enabled) {
            return null;
        }
        String requestMethod = header.apply("access-control-request-method");
        if (!method.equals("OPTIONS") || requestMethod == null || requestMethod.isEmpty()) {
            if (!allowed) {
                return null;
            }
            return new Outcome(false, allowedOriginHeaders(policies, origin, MultiMap.caseInsensitiveMultiMap()));
        }
        if (!allowed && !Boolean.FALSE.equals(first(policies, CorsPolicy::forwardNotMatchingPreflights))) {
            return null; // a preflight from another origin goes upstream, as Envoy's default
        }
        MultiMap h = MultiMap.caseInsensitiveMultiMap();
        if (Boolean.TRUE.equals(first(policies, CorsPolicy::allowCredentials))) {
            h.set("access-control-allow-credentials", "true");
        }
        String methods = firstText(policies, CorsPolicy::allowMethods);
        if (!methods.isEmpty()) {
            h.set("access-control-allow-methods", methods.equals("*") ? requestMethod : methods);
        }
        String headers = firstText(policies, CorsPolicy::allowHeaders);
        if (!headers.isEmpty()) {
            String requested = header.apply("access-control-request-headers");
            h.set("access-control-allow-headers", !headers.equals("*") ? headers : requested == null ? ""
                    : requested);
        }
        String maxAge = firstText(policies, CorsPolicy::maxAge);
        if (!maxAge.isEmpty()) {
            h.set("access-control-max-age", maxAge);
        }
        if (Boolean.TRUE.equals(first(policies, CorsPolicy::allowPrivateNetworkAccess))
                && "true".equals(header.apply("access-control-request-private-network"))) {
            h.set("access-control-allow-private-network", "true");
        }
        // Envoy's answer passes the filter's own encoding, which marks every answer to an allowed origin
        return new Outcome(true, allowed ? allowedOriginHeaders(policies, origin, h) : h);
    }

    /**
     * Sets on {@code h} the headers an answer to an allowed origin gets: {@code access-control-allow-origin},
     * {@code -allow-credentials} when the policies allow them and {@code access-control-expose-headers}.
     */
    private static MultiMap allowedOriginHeaders(List<CorsPolicy> policies, String origin, MultiMap h) {
        h.set("access-control-allow-origin", origin);
        if (Boolean.TRUE.equals(first(policies, CorsPolicy::allowCredentials))) {
            h.set("access-control-allow-credentials", "true");
        }
        String expose = firstText(policies, CorsPolicy::exposeHeaders);
        if (!expose.isEmpty()) {
            h.set("access-control-expose-headers", expose);
        }
        return h;
    }

    /**
     * The policies in force, most specific first: the route's and its virtual host's from
     * {@code typed_per_filter_config} when either has one, else their {@code cors} fields.
     */
    private static List<CorsPolicy> policies(RouteResult result) {
        if (!(result instanceof RouteResult.Forward f)) {
            return List.of();
        }
        CorsPolicy route = f.route().cors();
        CorsPolicy host = f.virtualHost() == null ? null : f.virtualHost().cors();
        boolean typed = route != null && !route.legacy() || host != null && !host.legacy();
        List<CorsPolicy> out = new ArrayList<>(2);
        for (CorsPolicy p : new CorsPolicy[] {route, host}) {
            if (p != null && p.legacy() != typed) {
                out.add(p);
            }
        }
        return out;
    }

    private boolean allowed(List<CorsPolicy> policies, String origin) {
        List<StringMatcher> origins = List.of();
        for (CorsPolicy p : policies) {
            if (!p.allowOrigins().isEmpty()) {
                origins = p.allowOrigins();
                break;
            }
        }
        if (origins.isEmpty()) {
            return false;
        }
        List<Predicate<String>> matchers = compiled.get(origins);
        if (matchers == null) {
            if (compiled.size() >= MAX_COMPILED) {
                compiled.clear(); // config changed often: keep only what is in use
            }
            matchers = compiled.computeIfAbsent(origins, o -> o.stream().map(StringMatchers::compile).toList());
        }
        for (Predicate<String> m : matchers) {
            // as Envoy's: a matcher that matches "*" allows any origin
            if (m.test("*") || m.test(origin)) {
                return true;
            }
        }
        return false;
    }

    private static <T> T first(List<CorsPolicy> policies, Function<CorsPolicy, T> field) {
        for (CorsPolicy p : policies) {
            T v = field.apply(p);
            if (v != null) {
                return v;
            }
        }
        return null;
    }

    private static String firstText(List<CorsPolicy> policies, Function<CorsPolicy, String> field) {
        for (CorsPolicy p : policies) {
            String v = field.apply(p);
            if (!v.isEmpty()) {
                return v;
            }
        }
        return "";
    }
}
