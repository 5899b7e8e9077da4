package dev.inmesh.runtime.xds;

import com.google.protobuf.Any;
import dev.inmesh.api.config.route.CompressorPerRoute;
import dev.inmesh.api.config.route.CorsPolicy;
import dev.inmesh.api.config.route.ExtAuthzPerRoute;
import dev.inmesh.api.config.route.FilterPerRoute;
import dev.inmesh.api.config.rbac.Rbac;
import dev.inmesh.api.config.route.FaultInjection;
import dev.inmesh.api.config.route.LocalRateLimit;
import dev.inmesh.api.config.route.LuaPerRoute;
import dev.inmesh.api.config.route.RateLimit;
import dev.inmesh.api.config.route.StatefulSessionPerRoute;
import java.util.HashMap;
import java.util.Map;

/**
 * The {@code typed_per_filter_config} of a virtual host or route: the fault filter's config, the CORS filter's
 * policy, the RBAC filters' {@code RBACPerRoute}s, the local rate limit filters' {@code LocalRateLimit}s, the
 * global rate limit filters' {@code RateLimitPerRoute}s (only their {@code vh_rate_limits}), the stateful session
 * filters' {@code StatefulSessionPerRoute}s, the Lua filters' {@code LuaPerRoute}s, the external authorization
 * filters' {@code ExtAuthzPerRoute}s, the compressor filters' {@code CompressorPerRoute}s, the buffer filters'
 * {@code BufferPerRoute}s and the header mutation filters' {@code HeaderMutationPerRoute}s, each found by its config
 * type. Entries for other filters are
 * refused by name: each would change what that filter does for these routes.
 *
 * @param fault the fault filter's config, or null
 * @param cors the CORS policy, or null
 * @param rbac the RBAC configs by the name of the filter each replaces ({@link Rbac#ALLOW_ALL} where the
 *     {@code RBACPerRoute} has none: the filter allows everything on these routes)
 * @param localRateLimit the local rate limit configs by the name of the filter whose own each replaces
 * @param vhRateLimits the global rate limit filters' {@code vh_rate_limits}, by filter name
 * @param statefulSession the stateful session filters' {@code StatefulSessionPerRoute}s by the name of the filter
 *     whose own each replaces or disables
 * @param lua the Lua filters' {@code LuaPerRoute}s by the name of the filter each disables or changes the script of
 * @param extAuthz the external authorization filters' {@code ExtAuthzPerRoute}s by the name of the filter each
 *     disables or gives check settings
 * @param compressor the compressor filters' {@code CompressorPerRoute}s by the name of the filter each turns off or
 *     changes
 * @param filters the buffer and header mutation filters' configs by the name of the filter each is for
 */
record PerFilterConfigs(FaultInjection fault, CorsPolicy cors, Map<String, Rbac> rbac,
                        Map<String, LocalRateLimit> localRateLimit, Map<String, RateLimit.VhRateLimits> vhRateLimits,
                        Map<String, StatefulSessionPerRoute> statefulSession, Map<String, LuaPerRoute> lua,
                        Map<String, ExtAuthzPerRoute> extAuthz, Map<String, CompressorPerRoute> compressor,
                        Map<String, FilterPerRoute> filters) {

    static PerFilterConfigs parse(Map<String, Any> configs) {
        FaultInjection fault = null;
        CorsPolicy cors = null;
        Map<String, Rbac> rbac = new HashMap<>();
        Map<String, LocalRateLimit> localRateLimit = new HashMap<>();
        Map<String, RateLimit.VhRateLimits> vhRateLimits = new HashMap<>();
        Map<String, StatefulSessionPerRoute> statefulSession = new HashMap<>();
        Map<String, LuaPerRoute> lua = new HashMap<>();
        Map<String, ExtAuthzPerRoute> extAuthz = new HashMap<>();
        Map<String, CompressorPerRoute> compressor = new HashMap<>();
        Map<String, FilterPerRoute> filters = new HashMap<>();
        for (Map.Entry<String, Any> e : configs.entrySet()) {
            String at = "typed_per_filter_config[" + e.getKey() + "]";
            String type = CoreParsers.configType(e.getValue());
            if (type.equals(FaultParser.FAULT_TYPE)) {
                if (fault != null) {
                    throw new FieldError(at, "a second fault filter config (expected: one; Inmesh runs one fault "
                            + "filter)");
                }
                fault = Fields.at(at, () -> FaultParser.fault(e.getValue()));
            } else if (type.equals(CorsParser.CORS_POLICY_TYPE)) {
                if (cors != null) {
                    throw new FieldError(at, "a second CORS policy (expected: one; Inmesh runs one CORS filter)");
                }
                cors = Fields.at(at, () -> CorsParser.policy(e.getValue()));
            } else if (type.equals(RbacParser.RBAC_PER_ROUTE_TYPE)) {
                rbac.put(e.getKey(), Fields.at(at, () -> RbacParser.perRoute(e.getValue())));
            } else if (type.equals(LocalRateLimitParser.TYPE)) {
                localRateLimit.put(e.getKey(), Fields.at(at, () -> LocalRateLimitParser.parse(e.getValue(), true)));
            } else if (type.equals(RateLimitParser.PER_ROUTE_TYPE)) {
                vhRateLimits.put(e.getKey(), Fields.at(at, () -> RateLimitParser.perRoute(e.getValue())));
            } else if (type.equals(StatefulSessionParser.PER_ROUTE_TYPE)) {
                statefulSession.put(e.getKey(), Fields.at(at, () -> StatefulSessionParser.perRoute(e.getValue())));
            } else if (type.equals(LuaParser.PER_ROUTE_TYPE)) {
                lua.put(e.getKey(), Fields.at(at, () -> LuaParser.perRoute(e.getValue(), e.getKey())));
            } else if (type.equals(ExtAuthzParser.PER_ROUTE_TYPE)) {
                extAuthz.put(e.getKey(), Fields.at(at, () -> ExtAuthzParser.perRoute(e.getValue())));
            } else if (type.equals(CompressorParser.PER_ROUTE_TYPE)) {
                compressor.put(e.getKey(), Fields.at(at, () -> CompressorParser.perRoute(e.getValue())));
            } else if (!shared(e.getKey(), e.getValue(), filters)) {
                throw new FieldError(at, (type.isEmpty() ? "no config type" : type) + " is not supported by Inmesh "
                        + "(expected: " + FaultParser.FAULT_TYPE + ", " + CorsParser.CORS_POLICY_TYPE + ", "
                        + RbacParser.RBAC_PER_ROUTE_TYPE + ", " + LocalRateLimitParser.TYPE + ", "
                        + RateLimitParser.PER_ROUTE_TYPE + ", " + StatefulSessionParser.PER_ROUTE_TYPE + ", "
                        + LuaParser.PER_ROUTE_TYPE + ", " + ExtAuthzParser.PER_ROUTE_TYPE + ", "
                        + CompressorParser.PER_ROUTE_TYPE + ", " + BufferParser.PER_ROUTE_TYPE + " or "
                        + HeaderMutationParser.PER_ROUTE_TYPE + ")");
            }
        }
        return new PerFilterConfigs(fault, cors, rbac, localRateLimit, vhRateLimits, statefulSession, lua,
                extAuthz, compressor, filters);
    }

    /**
     * The {@code typed_per_filter_config} of a route configuration: only the buffer and header mutation filters'
     * configs are read there (Inmesh reads the other filters' from virtual hosts and routes), the rest refused by
     * name.
     */
    static Map<String, FilterPerRoute> routeConfiguration(Map<String, Any> configs) {
        Map<String, FilterPerRoute> filters = new HashMap<>();
        for (Map.Entry<String, Any> e : configs.entrySet()) {
            if (!shared(e.getKey(), e.getValue(), filters)) {
                String type = CoreParsers.configType(e.getValue());
                throw new FieldError("typed_per_filter_config[" + e.getKey() + "]", (type.isEmpty() ? "no config "
                        + "type" : type) + " is not supported by Inmesh on a route configuration (expected: "
                        + BufferParser.PER_ROUTE_TYPE + " or " + HeaderMutationParser.PER_ROUTE_TYPE + ")");
            }
        }
        return filters;
    }

    /** Reads a buffer or header mutation filter's config into {@code filters}; false for any other type. */
    private static boolean shared(String name, Any config, Map<String, FilterPerRoute> filters) {
        String at = "typed_per_filter_config[" + name + "]";
        String type = CoreParsers.configType(config);
        if (type.equals(BufferParser.PER_ROUTE_TYPE)) {
            filters.put(name, Fields.at(at, () -> BufferParser.perRoute(config)));
        } else if (type.equals(HeaderMutationParser.PER_ROUTE_TYPE)) {
            filters.put(name, Fields.at(at, () -> HeaderMutationParser.perRoute(config)));
        } else {
            return false;
        }
        return true;
    }
}
