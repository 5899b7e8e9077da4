package dev.inmesh.api.config.cluster;

import dev.inmesh.api.config.Checks;

/**
 * Envoy's {@code common_lb_config}: the healthy panic threshold (percent, default 50, 0 disables panic mode) and
 * whether locality-weighted load balancing is on.
 */
public record CommonLbConfig(double healthyPanicThreshold, boolean localityWeighted) {
    public static final CommonLbConfig DEFAULTS = new CommonLbConfig(50.0, false);

    public CommonLbConfig {
        Checks.check(healthyPanicThreshold >= 0 && healthyPanicThreshold <= 100, "healthy_panic_threshold",
                healthyPanicThreshold, "0..100");
    }
}
