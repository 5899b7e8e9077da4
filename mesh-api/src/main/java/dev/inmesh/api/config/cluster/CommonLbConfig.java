package dev.inmesh.api.config.cluster;

import dev.inmesh.api.config.Checks;

/**
 * Envoy's {@code common_lb_config}: the healthy panic threshold (percent, default 50, 0 disables panic mode), whether
 * locality-weighted load balancing is on, and whether a change of the cluster's hosts (one added or removed) drains
 * the connections to every host ({@code close_connections_on_host_set_change}, default off).
 */
public record CommonLbConfig(double healthyPanicThreshold, boolean localityWeighted,
                             boolean closeConnectionsOnHostSetChange) {
    public static final CommonLbConfig DEFAULTS = new CommonLbConfig(50.0, false, false);

    public CommonLbConfig {
        Checks.check(healthyPanicThreshold >= 0 && healthyPanicThreshold <= 100, "healthy_panic_threshold",
                healthyPanicThreshold, "0..100");
    }

    /** Without draining on host set changes, as Envoy by default. */
    public CommonLbConfig(double healthyPanicThreshold, boolean localityWeighted) {
        this(healthyPanicThreshold, localityWeighted, false);
    }
}
