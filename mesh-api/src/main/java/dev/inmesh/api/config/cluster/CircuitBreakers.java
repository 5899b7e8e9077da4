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

    /** Envoy's routing priorities. */
    public enum RoutingPriority { DEFAULT, HIGH }

    /** Limits for one priority; Envoy's defaults are 1024, 1024, 1024 and 3. */
    public record Thresholds(RoutingPriority priority, long maxConnections, long maxPendingRequests,
                             long maxRequests, long maxRetries) {
        public Thresholds {
            Checks.nonNull(priority, "priority");
            Checks.nonNegative(maxConnections, "max_connections");
            Checks.nonNegative(maxPendingRequests, "max_pending_requests");
            Checks.nonNegative(maxRequests, "max_requests");
            Checks.nonNegative(maxRetries, "max_retries");
        }

        public static Thresholds defaults(RoutingPriority priority) {
            return new Thresholds(priority, 1024, 1024, 1024, 3);
        }
    }
}
