package dev.inmesh.runtime.router;

import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.api.config.route.FaultInjection;
import dev.inmesh.api.config.route.HeaderMatcher;
import dev.inmesh.api.config.route.Route;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Envoy's HTTP fault filter as the router runs it, before the upstream: which config is in force for a request (the
 * route's, else its virtual host's, else the connection manager's filter's, as Envoy resolves per-filter config),
 * whether the request matches its headers, and the active faults that {@code max_active_faults} limits, counted per
 * connection manager stat prefix as Envoy's {@code active_faults} gauge. The router and the in-JVM inbound side
 * ({@code InboundHandler}) each keep one.
 */
public final class FaultFilter {
    /** Distinct header lists a fault may carry before the compiled ones are dropped and compiled again. */
    private static final int MAX_COMPILED = 256;

    private final Map<String, AtomicLong> active = new ConcurrentHashMap<>();
    private final Map<List<HeaderMatcher>, HeaderMatchers.Compiled> compiled = new ConcurrentHashMap<>();

    /** The body of an abort's local reply, as Envoy's. */
    public static final String ABORT_BODY = "fault filter abort";
    /** The response code details of an abort, as Envoy's. */
    public static final String ABORT_DETAILS = "fault_filter_abort";

    /**
     * The fault config in force for a routed request, or null when no fault filter runs or the config in force
     * injects nothing. A request with no route takes the filter's own config.
     *
     * @param filter the connection manager's fault filter config, or null when it has none that runs
     */
    public static FaultInjection settings(FaultInjection filter, RouteResult result) {
        if (filter == null) {
            return null;
        }
        Route route = result instanceof RouteResult.Forward f ? f.route()
                : result instanceof RouteResult.Redirect r ? r.route()
                : result instanceof RouteResult.DirectResponse d ? d.route() : null;
        FaultInjection f = filter;
        if (route != null && route.fault() != null) {
            f = route.fault();
        } else if (route != null && result.virtualHost() != null && result.virtualHost().fault() != null) {
            f = result.virtualHost().fault();
        }
        return f.delay() == null && f.abort() == null ? null : f;
    }

    /** Envoy's {@code featureEnabled} for a fixed percentage: {@code random % denominator < numerator}. */
    public static boolean enabled(FractionalPercent p, long random) {
        return Long.remainderUnsigned(random, p.denominator().value()) < p.numerator();
    }

    /** Whether the request matches all of the fault's {@code headers} (none: every request does). */
    public boolean matches(FaultInjection f, RouteRequest req) {
        if (f.headers().isEmpty()) {
            return true;
        }
        HeaderMatchers.Compiled c = compiled.get(f.headers());
        if (c == null) {
            if (compiled.size() >= MAX_COMPILED) {
                compiled.clear(); // config changed often: keep only what is in use
            }
            c = compiled.computeIfAbsent(f.headers(), HeaderMatchers::compileAll);
        }
        return c.matches(req::header);
    }

    /**
     * The active faults of the fault filters of connection managers with {@code statPrefix}: those of its
     * statistics' {@code fault.active_faults} when it has statistics ({@code stats}), which every filter of that
     * prefix shares as Envoy's gauge, else this filter's own count.
     */
    public AtomicLong activeFaults(String statPrefix, dev.inmesh.runtime.stats.DownstreamStats stats) {
        return stats != null ? stats.activeFaults() : active.computeIfAbsent(statPrefix, k -> new AtomicLong());
    }

    /**
     * Counts one more active fault in {@code activeFaults} unless {@code max_active_faults} are active already (a
     * loose limit, as Envoy's: checked, then counted); a fault refused so counts in {@code fault.faults_overflow}.
     */
    public static boolean tryActivate(AtomicLong activeFaults, FaultInjection f,
                                      dev.inmesh.runtime.stats.DownstreamStats stats) {
        if (f.maxActiveFaults() != null && activeFaults.get() >= f.maxActiveFaults()) {
            if (stats != null) {
                stats.faultOverflow();
            }
            return false;
        }
        activeFaults.incrementAndGet();
        return true;
    }

    /** The faults active under {@code statPrefix} (Envoy's {@code active_faults}). */
    long active(String statPrefix) {
        AtomicLong n = active.get(statPrefix);
        return n == null ? 0 : n.get();
    }
}
