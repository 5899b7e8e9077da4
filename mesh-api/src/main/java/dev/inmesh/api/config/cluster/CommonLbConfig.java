package dev.inmesh.api.config.cluster;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.endpoint.HealthStatus;
import java.util.EnumSet;
import java.util.Set;

/**
 * Envoy's {@code common_lb_config}: the healthy panic threshold (percent, default 50, 0 disables panic mode), whether
 * locality-weighted load balancing is on, and whether a change of the cluster's hosts (one added or removed) drains
 * the connections to every host ({@code close_connections_on_host_set_change}, default off), and the health a host
 * named by a stateful session may have to be taken ({@code override_host_status}), and whether ring hash and Maglev
 * place a host by its hostname rather than its address ({@code consistent_hashing_lb_config.use_hostname_for_hashing},
 * which Envoy takes on STRICT_DNS clusters only), and whether a priority in panic fails its requests rather than use
 * all its hosts ({@code zone_aware_lb_config.fail_traffic_on_panic}, for the policies other than ring hash and
 * Maglev, as Envoy).
 *
 * @param overrideHostStatus the health statuses of a host that a request naming it (a stateful session's cookie or
 *     header) is sent to; a host whose outlier detection ejected it counts as UNHEALTHY. Unset: UNKNOWN, HEALTHY and
 *     DEGRADED, as Envoy; Istio adds DRAINING for persistent-session Services, so that sessions stay on draining pods
 */
public record CommonLbConfig(double healthyPanicThreshold, boolean localityWeighted,
                             boolean closeConnectionsOnHostSetChange, Set<HealthStatus> overrideHostStatus,
                             boolean useHostnameForHashing, boolean failTrafficOnPanic) {
    /** Envoy's {@code override_host_status} when the cluster sets none. */
    public static final Set<HealthStatus> DEFAULT_OVERRIDE_HOST_STATUS =
            Set.copyOf(EnumSet.of(HealthStatus.UNKNOWN, HealthStatus.HEALTHY, HealthStatus.DEGRADED));
    /** Envoy's {@code common_lb_config} when the cluster sets none; the withers below change one field of it. */
    public static final CommonLbConfig DEFAULTS = new CommonLbConfig(50.0, false, false, null, false, false);

    public CommonLbConfig {
        Checks.check(healthyPanicThreshold >= 0 && healthyPanicThreshold <= 100, "healthy_panic_threshold",
                healthyPanicThreshold, "0..100");
        overrideHostStatus = overrideHostStatus == null ? DEFAULT_OVERRIDE_HOST_STATUS
                : Set.copyOf(overrideHostStatus);
    }

    /** This config with a healthy panic threshold in percent; 50 by default, 0 disables panic mode. */
    public CommonLbConfig withHealthyPanicThreshold(double percent) {
        return new CommonLbConfig(percent, localityWeighted, closeConnectionsOnHostSetChange, overrideHostStatus,
                useHostnameForHashing, failTrafficOnPanic);
    }

    /** This config with locality-weighted load balancing on or off; off by default. */
    public CommonLbConfig withLocalityWeighted(boolean on) {
        return new CommonLbConfig(healthyPanicThreshold, on, closeConnectionsOnHostSetChange, overrideHostStatus,
                useHostnameForHashing, failTrafficOnPanic);
    }

    /** This config with {@code close_connections_on_host_set_change}; off by default, as Envoy. */
    public CommonLbConfig withCloseConnectionsOnHostSetChange(boolean on) {
        return new CommonLbConfig(healthyPanicThreshold, localityWeighted, on, overrideHostStatus,
                useHostnameForHashing, failTrafficOnPanic);
    }

    /** This config with {@code override_host_status}; null means {@link #DEFAULT_OVERRIDE_HOST_STATUS}. */
    public CommonLbConfig withOverrideHostStatus(Set<HealthStatus> statuses) {
        return new CommonLbConfig(healthyPanicThreshold, localityWeighted, closeConnectionsOnHostSetChange, statuses,
                useHostnameForHashing, failTrafficOnPanic);
    }

    /** This config with {@code use_hostname_for_hashing}; off by default, as Envoy. */
    public CommonLbConfig withUseHostnameForHashing(boolean on) {
        return new CommonLbConfig(healthyPanicThreshold, localityWeighted, closeConnectionsOnHostSetChange,
                overrideHostStatus, on, failTrafficOnPanic);
    }

    /** This config with {@code fail_traffic_on_panic}; off by default, as Envoy. */
    public CommonLbConfig withFailTrafficOnPanic(boolean on) {
        return new CommonLbConfig(healthyPanicThreshold, localityWeighted, closeConnectionsOnHostSetChange,
                overrideHostStatus, useHostnameForHashing, on);
    }
}
