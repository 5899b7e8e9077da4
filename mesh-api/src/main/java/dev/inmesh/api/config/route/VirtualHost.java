package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.HeaderMutations;
import dev.inmesh.api.config.rbac.Rbac;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * A virtual host ({@code route.v3.VirtualHost}): the domains it answers for, its routes in order, and what applies
 * to all of them.
 *
 * @param name the name
 * @param domains exact names, {@code *.suffix} and {@code prefix*} wildcards, or {@code *}; as Envoy's route matcher
 *     reads them, a leading {@code *} makes a suffix wildcard, else a trailing one a prefix wildcard, and any other
 *     {@code *} is a character of the name ({@code foo.*.com} is an exact name)
 * @param routes the routes; the first that matches wins
 * @param retryPolicy the default retry policy of the routes, or null
 * @param includeRequestAttemptCount whether {@code x-envoy-attempt-count} is sent upstream
 * @param includeAttemptCountInResponse whether {@code x-envoy-attempt-count} is returned downstream
 * @param headers header mutations at virtual host level
 * @param fault the fault filter's config for the routes that have none of their own ({@code typed_per_filter_config}),
 *     which overrides the connection manager's; null for none
 * @param cors the CORS filter's policy for its routes ({@code typed_per_filter_config}, else {@code cors}), consulted
 *     after a route's own; null for none
 * @param perRequestBufferLimitBytes the most of a request's body kept for retries and mirrors on the routes that set
 *     no limit of their own ({@code per_request_buffer_limit_bytes}; the listener's limit still applies when it is
 *     smaller); null for none
 * @param rbac the RBAC filters' configs for the routes ({@code typed_per_filter_config} {@code RBACPerRoute}), by the
 *     name of the filter each replaces, where a route has none of its own for that filter; empty for none
 * @param localRateLimit the local rate limit filters' configs ({@code typed_per_filter_config} {@code LocalRateLimit}),
 *     by the name of the filter whose own each replaces, with a token bucket of its own, for the routes that have
 *     none of their own for that filter; empty for none
 * @param rateLimits the global rate limit filter's descriptors ({@code rate_limits}) for the routes that have none of
 *     their own, or that say {@code include_vh_rate_limits}; empty for none
 * @param vhRateLimits whether the global rate limit filters send {@code rateLimits} for its routes that have no
 *     {@code RateLimitPerRoute} of their own ({@code typed_per_filter_config} {@code RateLimitPerRoute}'s
 *     {@code vh_rate_limits}), by filter name; empty for none
 * @param statefulSession the stateful session filters' configs ({@code typed_per_filter_config}
 *     {@code StatefulSessionPerRoute}), by the name of the filter whose own each replaces or disables, for the routes
 *     that have none of their own for that filter; empty for none
 * @param lua the Lua filters' overrides ({@code typed_per_filter_config} {@code LuaPerRoute}), by the name of the
 *     filter each disables or changes the script of, for the routes that have none of their own; empty for none
 * @param extAuthz the external authorization filters' overrides ({@code typed_per_filter_config}
 *     {@code ExtAuthzPerRoute}), by the name of the filter each disables or gives check settings, for the routes that
 *     have none of their own (whose context extensions add to these); empty for none
 * @param compressor the compressor filters' overrides ({@code typed_per_filter_config} {@code CompressorPerRoute}), by
 *     the name of the filter each turns off or changes, for the routes that have none of their own; empty for none
 * @param filterConfigs the buffer and header mutation filters' configs ({@code typed_per_filter_config}
 *     {@code BufferPerRoute}, {@code HeaderMutationPerRoute}), by filter name; empty for none
 * @param hedgePolicy the {@code hedge_policy} of the routes that have none of their own, or null for none
 * @param includeIsTimeoutRetryHeader whether each retry tells the upstream why it is sent
 *     ({@code include_is_timeout_retry_header}): {@code x-envoy-is-timeout-retry: true} after a per-try timeout (or
 *     per-try idle timeout), hedged or not, {@code false} after any other failure; the first attempt gets none
 * @param requireTls which requests the virtual host answers with a redirect to their {@code https} URL
 *     ({@code require_tls}; null is {@link TlsRequirement#NONE})
 */
public record VirtualHost(String name, List<String> domains, List<Route> routes, RetryPolicy retryPolicy,
                          boolean includeRequestAttemptCount, boolean includeAttemptCountInResponse,
                          HeaderMutations headers, FaultInjection fault, CorsPolicy cors,
                          Long perRequestBufferLimitBytes, Map<String, Rbac> rbac,
                          Map<String, LocalRateLimit> localRateLimit, List<RateLimit> rateLimits,
                          Map<String, RateLimit.VhRateLimits> vhRateLimits,
                          Map<String, StatefulSessionPerRoute> statefulSession, Map<String, LuaPerRoute> lua,
                          Map<String, ExtAuthzPerRoute> extAuthz, Map<String, CompressorPerRoute> compressor,
                          Map<String, FilterPerRoute> filterConfigs, HedgePolicy hedgePolicy,
                          boolean includeIsTimeoutRetryHeader, TlsRequirement requireTls) {
    /**
     * Which requests a virtual host redirects to {@code https} ({@code require_tls}), before any of its routes is
     * matched: those whose {@code x-forwarded-proto} is not {@code https}, all of them or only those the connection
     * manager does not take for internal.
     */
    public enum TlsRequirement {
        /** No redirect. */
        NONE,
        /** Requests not marked {@code x-envoy-internal: true} are redirected. */
        EXTERNAL_ONLY,
        /** Every request is redirected. */
        ALL
    }

    public VirtualHost {
        requireTls = requireTls == null ? TlsRequirement.NONE : requireTls;
        Checks.nonEmpty(name, "name");
        domains = Checks.list(domains, "domains");
        Checks.check(!domains.isEmpty(), "domains", "[]", "at least one domain");
        Set<String> seen = new HashSet<>();
        for (String d : domains) {
            Checks.check(!d.isEmpty(), "domains", "\"\"", "a non-empty domain");
            Checks.check(seen.add(d.toLowerCase(Locale.ROOT)), "domains", d, "each domain once in a virtual host");
        }
        routes = Checks.list(routes, "routes");
        headers = headers == null ? HeaderMutations.NONE : headers;
        Checks.uint32OrNull(perRequestBufferLimitBytes, "per_request_buffer_limit_bytes");
        rbac = Checks.map(rbac);
        localRateLimit = Checks.map(localRateLimit);
        rateLimits = Checks.list(rateLimits, "rate_limits");
        vhRateLimits = Checks.map(vhRateLimits);
        statefulSession = Checks.map(statefulSession);
        lua = Checks.map(lua);
        extAuthz = Checks.map(extAuthz);
        compressor = Checks.map(compressor);
        filterConfigs = Checks.map(filterConfigs);
    }

    /**
     * A virtual host with just domains and routes: no retry policy, hedge policy, header mutations, buffer limit or
     * per-filter config of its own, and no attempt count headers, which is what Envoy does when those fields are
     * unset.
     */
    public static VirtualHost of(String name, List<String> domains, List<Route> routes) {
        return new VirtualHost(name, domains, routes, null, false, false, HeaderMutations.NONE, null, null, null,
                null, null, null, null, null, null, null, null, null, null, false, TlsRequirement.NONE);
    }

    /** This virtual host with its {@code require_tls}. */
    public VirtualHost withRequireTls(TlsRequirement requirement) {
        return new VirtualHost(name, domains, routes, retryPolicy, includeRequestAttemptCount,
                includeAttemptCountInResponse, headers, fault, cors, perRequestBufferLimitBytes, rbac, localRateLimit,
                rateLimits, vhRateLimits, statefulSession, lua, extAuthz, compressor, filterConfigs, hedgePolicy,
                includeIsTimeoutRetryHeader, requirement);
    }

    /**
     * This virtual host with {@code per_request_buffer_limit_bytes} set; null (the default) leaves the limit to the
     * routes and the listener.
     */
    public VirtualHost withPerRequestBufferLimitBytes(Long limit) {
        return new VirtualHost(name, domains, routes, retryPolicy, includeRequestAttemptCount,
                includeAttemptCountInResponse, headers, fault, cors, limit, rbac, localRateLimit, rateLimits,
                vhRateLimits, statefulSession, lua, extAuthz, compressor, filterConfigs, hedgePolicy,
                includeIsTimeoutRetryHeader, requireTls);
    }

    /**
     * This virtual host with the global rate limit filter's {@code rate_limits} and the filters' {@code vh_rate_limits}
     * options; empty (the default) sends no descriptors of the virtual host's own.
     */
    public VirtualHost withRateLimits(List<RateLimit> limits, Map<String, RateLimit.VhRateLimits> vhOptions) {
        return new VirtualHost(name, domains, routes, retryPolicy, includeRequestAttemptCount,
                includeAttemptCountInResponse, headers, fault, cors, perRequestBufferLimitBytes, rbac, localRateLimit,
                limits, vhOptions, statefulSession, lua, extAuthz, compressor, filterConfigs, hedgePolicy,
                includeIsTimeoutRetryHeader, requireTls);
    }

    /**
     * This virtual host with the Lua filters' overrides ({@code LuaPerRoute}) by filter name; empty (the default)
     * leaves each route's Lua filters as the connection manager configures them.
     */
    public VirtualHost withLua(Map<String, LuaPerRoute> overrides) {
        return new VirtualHost(name, domains, routes, retryPolicy, includeRequestAttemptCount,
                includeAttemptCountInResponse, headers, fault, cors, perRequestBufferLimitBytes, rbac, localRateLimit,
                rateLimits, vhRateLimits, statefulSession, overrides, extAuthz, compressor, filterConfigs, hedgePolicy,
                includeIsTimeoutRetryHeader, requireTls);
    }
}
