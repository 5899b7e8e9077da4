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
        return !f.delays() && f.abort() == null && f.responseRateLimit() == null ? null : f;
    }

    /** The request header that sets a {@code header_delay}'s delay in milliseconds, as Envoy's. */
    public static final String DELAY_REQUEST = "x-envoy-fault-delay-request";
    /** The request header that lowers a {@code header_delay}'s percentage, as Envoy's. */
    public static final String DELAY_REQUEST_PERCENTAGE = "x-envoy-fault-delay-request-percentage";
    /** The request header that sets a {@code header_abort}'s HTTP status, as Envoy's. */
    public static final String ABORT_REQUEST = "x-envoy-fault-abort-request";
    /** The request header that sets a {@code header_abort}'s gRPC status, as Envoy's. */
    public static final String ABORT_GRPC_REQUEST = "x-envoy-fault-abort-grpc-request";
    /** The request header that lowers a {@code header_abort}'s percentage, as Envoy's. */
    public static final String ABORT_REQUEST_PERCENTAGE = "x-envoy-fault-abort-request-percentage";
    /** The request header that names the downstream node {@code downstream_nodes} lists. */
    public static final String DOWNSTREAM_SERVICE_NODE = "x-envoy-downstream-service-node";
    /** The request header that names the downstream cluster a fault is also counted under. */
    public static final String DOWNSTREAM_SERVICE_CLUSTER = "x-envoy-downstream-service-cluster";

    /** The request header that sets a {@code header_limit}'s response rate in KiB/s, as Envoy's. */
    public static final String THROUGHPUT_RESPONSE = "x-envoy-fault-throughput-response";
    /** The request header that lowers a {@code header_limit}'s percentage, as Envoy's. */
    public static final String THROUGHPUT_RESPONSE_PERCENTAGE = "x-envoy-fault-throughput-response-percentage";

    private static final long UINT32_MAX = 0xFFFF_FFFFL;

    /**
     * The downstream cluster a fault is also counted under: the request's {@code x-envoy-downstream-service-cluster}
     * unless empty or the fault says {@code disable_downstream_cluster_stats}; else null.
     */
    public static String downstreamCluster(FaultInjection f, RouteRequest req) {
        String c = f.downstreamClusterStats() ? req.firstHeader(DOWNSTREAM_SERVICE_CLUSTER) : null;
        return c == null || c.isEmpty() ? null : c;
    }

    /**
     * The delay for the request in milliseconds, 0 for none: the fixed delay, or a {@code header_delay}'s
     * {@code x-envoy-fault-delay-request} (none when absent, not an unsigned number, or 0), when the percentage
     * picks the request ({@code random}).
     */
    public static long delayMillis(FaultInjection f, RouteRequest req, long random) {
        if (!f.delays()) {
            return 0;
        }
        if (!f.headerDelay()) {
            return enabled(f.delayPercent(), random) ? f.delay().toMillis() : 0;
        }
        if (!enabled(headerPercent(f.delayPercent(), req, DELAY_REQUEST_PERCENTAGE), random)) {
            return 0;
        }
        long ms = unsigned(req.firstHeader(DELAY_REQUEST), -1L);
        return ms == -1L || ms == 0 ? 0 : ms < 0 ? Long.MAX_VALUE : ms; // above 2^63 ms: longer than any wait
    }

    /**
     * The abort the request gets, or null for none: the fault's own, or a {@code header_abort}'s HTTP status from
     * {@code x-envoy-fault-abort-request} when it is a number from 200 to 599, else its gRPC status from
     * {@code x-envoy-fault-abort-grpc-request}, when the percentage picks the request ({@code random}).
     */
    public static FaultInjection.Abort abort(FaultInjection f, RouteRequest req, long random) {
        FaultInjection.Abort a = f.abort();
        if (a == null) {
            return null;
        }
        if (!a.header()) {
            return enabled(f.abortPercent(), random) ? a : null;
        }
        if (!enabled(headerPercent(f.abortPercent(), req, ABORT_REQUEST_PERCENTAGE), random)) {
            return null;
        }
        long http = unsigned(req.firstHeader(ABORT_REQUEST), -1L);
        if (http >= 200 && http < 600) {
            return FaultInjection.Abort.http((int) http);
        }
        long grpc = unsigned(req.firstHeader(ABORT_GRPC_REQUEST), -1L);
        return grpc >= 0 && grpc <= Integer.MAX_VALUE ? FaultInjection.Abort.grpc((int) grpc) : null;
    }

    /**
     * The rate in KiB/s the response body is limited to, 0 for none: the fixed one, or a {@code header_limit}'s
     * {@code x-envoy-fault-throughput-response} (none when absent, not an unsigned number, or 0), when the percentage
     * (for a {@code header_limit}, lowered by {@code x-envoy-fault-throughput-response-percentage}) picks the request.
     */
    public static long responseRateKbps(FaultInjection f, RouteRequest req, long random) {
        FaultInjection.ResponseRateLimit r = f.responseRateLimit();
        if (r == null) {
            return 0;
        }
        if (!r.header()) {
            return enabled(r.percentage(), random) ? r.limitKbps() : 0;
        }
        if (!enabled(headerPercent(r.percentage(), req, THROUGHPUT_RESPONSE_PERCENTAGE), random)) {
            return 0;
        }
        long kbps = unsigned(req.firstHeader(THROUGHPUT_RESPONSE), -1L);
        return kbps == -1L || kbps == 0 ? 0 : kbps < 0 ? Long.MAX_VALUE : kbps; // above 2^63 KiB/s: no limit either
    }

    /**
     * Envoy's percentage of a header fault: the configured one, unless {@code header} holds an unsigned 32-bit number,
     * which replaces its numerator when lower (a request can make its fault rarer, never more frequent).
     */
    static FractionalPercent headerPercent(FractionalPercent configured, RouteRequest req, String header) {
        long n = unsigned(req.firstHeader(header), UINT32_MAX);
        return n == -1L || n >= configured.numerator() ? configured
                : new FractionalPercent(n, configured.denominator());
    }

    /**
     * An unsigned decimal header value as Envoy reads one ({@code SimpleAtoi}: ASCII blanks around it, an optional
     * {@code +}), as an unsigned long; -1 when absent, not such a number, or above {@code max} (unsigned).
     */
    static long unsigned(String value, long max) {
        if (value == null) {
            return -1L;
        }
        String v = value.strip();
        if (v.startsWith("+")) {
            v = v.substring(1);
        }
        if (v.isEmpty() || !v.chars().allMatch(c -> c >= '0' && c <= '9')) {
            return -1L;
        }
        try {
            long n = Long.parseUnsignedLong(v);
            return Long.compareUnsigned(n, max) > 0 ? -1L : n;
        } catch (NumberFormatException e) {
            return -1L; // above 2^64 - 1
        }
    }

    /** Envoy's {@code featureEnabled} for a fixed percentage: {@code random % denominator < numerator}. */
    public static boolean enabled(FractionalPercent p, long random) {
        return Long.remainderUnsigned(random, p.denominator().value()) < p.numerator();
    }

    /**
     * Whether the fault applies to the request, as Envoy's filter checks it: its {@code upstream_cluster} is the
     * cluster the route forwards to (a redirect or direct response has none), its {@code downstream_nodes} hold the
     * request's {@code x-envoy-downstream-service-node}, and the request matches all of its {@code headers}.
     */
    public boolean matches(FaultInjection f, RouteResult result, RouteRequest req) {
        if (!f.upstreamCluster().isEmpty()
                && !(result instanceof RouteResult.Forward fw && f.upstreamCluster().equals(fw.cluster()))) {
            return false;
        }
        if (!f.downstreamNodes().isEmpty()) {
            String node = req.firstHeader(DOWNSTREAM_SERVICE_NODE);
            if (node == null || !f.downstreamNodes().contains(node)) {
                return false;
            }
        }
        return matches(f, req);
    }

    /** Whether the request matches all of the fault's {@code headers} (none: every request does). */
    boolean matches(FaultInjection f, RouteRequest req) {
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
