package dev.inmesh.api.config.cluster;

import dev.inmesh.api.config.Checks;
import java.util.List;

/**
 * A cluster's circuit breaker thresholds, one set per routing priority (DEFAULT, HIGH). Limits are {@code long}s so
 * that Istio's 4294967295 ("no limit") is taken as it is.
 */
public record CircuitBreakers(List<Thresholds> thresholds) {
    public static final CircuitBreakers DEFAULTS = new CircuitBreakers(List.of());

    public CircuitBreakers {
        thresholds = Checks.list(thresholds, "circuit_breakers.thresholds");
    }

    /** The thresholds for a routing priority, or Envoy's defaults when none are configured for it. */
    public Thresholds forPriority(RoutingPriority priority) {
        for (Thresholds t : thresholds) {
            if (t.priority() == priority) {
                return t;
            }
        }
        return Thresholds.defaults(priority);
    }

    /**
     * Envoy's {@code retry_budget}: retries in flight may be {@code budgetPercent} of the requests active and pending,
     * but never fewer than {@code minRetryConcurrency}. Envoy's defaults are 20% and 3.
     */
    public record RetryBudget(double budgetPercent, long minRetryConcurrency) {
        public static final RetryBudget DEFAULTS = new RetryBudget(20, 3);

        public RetryBudget {
            Checks.check(budgetPercent >= 0 && budgetPercent <= 100, "retry_budget.budget_percent", budgetPercent,
                    "0..100");
            Checks.nonNegative(minRetryConcurrency, "retry_budget.min_retry_concurrency");
        }
    }

    /** Envoy's routing priorities. */
    public enum RoutingPriority { DEFAULT, HIGH }

    /**
     * Limits for one priority; Envoy's defaults are 1024, 1024, 1024 and 3, and no limit on connection pools.
     *
     * @param retryBudget when set, the limit on retries in flight instead of {@code maxRetries}; null for none
     * @param trackRemaining Envoy's {@code track_remaining}: whether the cluster publishes how much of each limit is
     *     left ({@code circuit_breakers.<priority>.remaining_*}); Istio sets it
     * @param maxConnectionPools Envoy's {@code max_connection_pools}: how many connection pools the cluster's hosts
     *     may keep together, one per host and protocol, and per request host name ({@code auto_sni}) and original
     *     source ({@code original_src}); {@link #NO_LIMIT} (Envoy's default) for no limit
     */
    public record Thresholds(RoutingPriority priority, long maxConnections, long maxPendingRequests,
                             long maxRequests, long maxRetries, RetryBudget retryBudget, boolean trackRemaining,
                             long maxConnectionPools) {
        /**
         * Envoy's unset {@code max_connection_pools}, no limit: Envoy takes the largest uint64 (18446744073709551615),
         * beyond a Java {@code long}, so the largest {@code long} stands for it; the statistics that publish it
         * ({@code remaining_cx_pools}) print Envoy's number. A configured limit is a uint32, always below it.
         */
        public static final long NO_LIMIT = Long.MAX_VALUE;

        public Thresholds {
            Checks.nonNull(priority, "priority");
            Checks.nonNegative(maxConnections, "max_connections");
            Checks.nonNegative(maxPendingRequests, "max_pending_requests");
            Checks.nonNegative(maxRequests, "max_requests");
            Checks.nonNegative(maxRetries, "max_retries");
            Checks.nonNegative(maxConnectionPools, "max_connection_pools");
        }

        /** Limits without a limit on connection pools. */
        public Thresholds(RoutingPriority priority, long maxConnections, long maxPendingRequests, long maxRequests,
                          long maxRetries, RetryBudget retryBudget, boolean trackRemaining) {
            this(priority, maxConnections, maxPendingRequests, maxRequests, maxRetries, retryBudget, trackRemaining,
                    NO_LIMIT);
        }

        /** Limits that do not publish what remains of them. */
        public Thresholds(RoutingPriority priority, long maxConnections, long maxPendingRequests, long maxRequests,
                          long maxRetries, RetryBudget retryBudget) {
            this(priority, maxConnections, maxPendingRequests, maxRequests, maxRetries, retryBudget, false);
        }

        /** Limits without a retry budget. */
        public Thresholds(RoutingPriority priority, long maxConnections, long maxPendingRequests, long maxRequests,
                          long maxRetries) {
            this(priority, maxConnections, maxPendingRequests, maxRequests, maxRetries, null);
        }

        public static Thresholds defaults(RoutingPriority priority) {
            return new Thresholds(priority, 1024, 1024, 1024, 3);
        }
    }
}
