package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.HeaderMutations;
import dev.inmesh.api.config.rbac.Rbac;
import java.util.Map;

/**
 * One route of a virtual host: when it matches, and what it does.
 *
 * @param name the route's name (may be empty)
 * @param match when it applies
 * @param action what it does
 * @param decorator the operation name for tracing, or null
 * @param headers header mutations at route level
 * @param fault the fault filter's config for this route ({@code typed_per_filter_config}), which overrides the virtual
 *     host's and the connection manager's; null for none
 * @param cors the CORS filter's policy for this route ({@code typed_per_filter_config}, else the route action's
 *     {@code cors}), consulted before the virtual host's; null for none
 * @param perRequestBufferLimitBytes the most of a request's body kept for retries and mirrors
 *     ({@code per_request_buffer_limit_bytes}), which replaces the virtual host's (the listener's limit still applies
 *     when it is smaller); null for none
 * @param rbac the RBAC filters' configs for this route ({@code typed_per_filter_config} {@code RBACPerRoute}), by the
 *     name of the filter each replaces, which override the virtual host's; empty for none
 * @param localRateLimit the local rate limit filters' configs ({@code typed_per_filter_config} {@code LocalRateLimit}),
 *     by the name of the filter whose own each replaces, with a token bucket of its own; a route's replaces the
 *     virtual host's; empty for none
 * @param vhRateLimits whether the global rate limit filters send the virtual host's {@code rate_limits} for this
 *     route ({@code typed_per_filter_config} {@code RateLimitPerRoute}'s {@code vh_rate_limits}), by filter name; a
 *     route's replaces the virtual host's; empty for none
 * @param statefulSession the stateful session filters' configs ({@code typed_per_filter_config}
 *     {@code StatefulSessionPerRoute}), by the name of the filter whose own each replaces or disables; a route's
 *     replaces the virtual host's; empty for none
 * @param lua the Lua filters' overrides ({@code typed_per_filter_config} {@code LuaPerRoute}), by the name of the
 *     filter each disables or changes the script of; a route's replaces the virtual host's; empty for none
 * @param extAuthz the external authorization filters' overrides ({@code typed_per_filter_config}
 *     {@code ExtAuthzPerRoute}), by the name of the filter each disables or gives check settings; the route's decides
 *     over the virtual host's, whose context extensions it adds to; empty for none
 * @param compressor the compressor filters' overrides ({@code typed_per_filter_config} {@code CompressorPerRoute}), by
 *     the name of the filter each turns off or changes; a route's replaces the virtual host's; empty for none
 * @param filterConfigs the buffer and header mutation filters' configs ({@code typed_per_filter_config}
 *     {@code BufferPerRoute}, {@code HeaderMutationPerRoute}), by filter name; empty for none
 */
public record Route(String name, RouteMatch match, Action action, String decorator, HeaderMutations headers,
                    FaultInjection fault, CorsPolicy cors, Long perRequestBufferLimitBytes, Map<String, Rbac> rbac,
                    Map<String, LocalRateLimit> localRateLimit, Map<String, RateLimit.VhRateLimits> vhRateLimits,
                    Map<String, StatefulSessionPerRoute> statefulSession, Map<String, LuaPerRoute> lua,
                    Map<String, ExtAuthzPerRoute> extAuthz, Map<String, CompressorPerRoute> compressor,
                    Map<String, FilterPerRoute> filterConfigs) {
    public Route {
        name = name == null ? "" : name;
        Checks.nonNull(match, "match");
        Checks.nonNull(action, "action");
        headers = headers == null ? HeaderMutations.NONE : headers;
        Checks.uint32OrNull(perRequestBufferLimitBytes, "per_request_buffer_limit_bytes");
        rbac = Checks.map(rbac);
        localRateLimit = Checks.map(localRateLimit);
        vhRateLimits = Checks.map(vhRateLimits);
        statefulSession = Checks.map(statefulSession);
        lua = Checks.map(lua);
        extAuthz = Checks.map(extAuthz);
        compressor = Checks.map(compressor);
        filterConfigs = Checks.map(filterConfigs);
    }

    /**
     * A route with no name, decorator, header mutations, buffer limit or per-filter config of its own: what Envoy
     * makes of a route that sets only {@code match} and an action.
     */
    public static Route of(RouteMatch match, Action action) {
        return new Route("", match, action, null, HeaderMutations.NONE, null, null, null, null, null, null, null,
                null, null, null, null);
    }

    /** This route with a name; empty (the default) for a route that has none, as Envoy allows. */
    public Route withName(String routeName) {
        return new Route(routeName, match, action, decorator, headers, fault, cors, perRequestBufferLimitBytes, rbac,
                localRateLimit, vhRateLimits, statefulSession, lua, extAuthz, compressor, filterConfigs);
    }

    /**
     * This route with {@code per_request_buffer_limit_bytes} set; null (the default) leaves the limit to the virtual
     * host and the listener.
     */
    public Route withPerRequestBufferLimitBytes(Long limit) {
        return new Route(name, match, action, decorator, headers, fault, cors, limit, rbac, localRateLimit,
                vhRateLimits, statefulSession, lua, extAuthz, compressor, filterConfigs);
    }

    /**
     * This route with the global rate limit filters' {@code vh_rate_limits} options by filter name; empty (the
     * default) leaves them to the virtual host's.
     */
    public Route withVhRateLimits(Map<String, RateLimit.VhRateLimits> options) {
        return new Route(name, match, action, decorator, headers, fault, cors, perRequestBufferLimitBytes, rbac,
                localRateLimit, options, statefulSession, lua, extAuthz, compressor, filterConfigs);
    }
}
