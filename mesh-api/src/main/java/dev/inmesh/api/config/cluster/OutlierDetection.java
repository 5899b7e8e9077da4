package dev.inmesh.api.config.cluster;

import dev.inmesh.api.config.Checks;
import java.time.Duration;

/**
 * Envoy's outlier detection settings, with Envoy's defaults for every field left unset. Percentages are 0..100.
 *
 * <p>{@code maxEjectionPercent} is a strict limit, as in Envoy's outlier detector: an ejection that would put more
 * than that share of the cluster's hosts out does not happen, so that with the default 10% a cluster of fewer than
 * ten hosts ejects none. {@code alwaysEjectOneHost} (Envoy's {@code always_eject_one_host}, default false) lets one host out
 * whatever the percentage when none is out. {@code maxEjectionTimeJitter} (Envoy's {@code max_ejection_time_jitter},
 * default 0) is the most an ejection may last beyond its time: each ejection draws a random extra time from 0 to it
 * (whole milliseconds), so that hosts ejected together do not all return together.
 * {@code successfulActiveHealthCheckUnejectHost} (Envoy's {@code successful_active_health_check_uneject_host}, default
 * true) returns an ejected host as soon as a check of the cluster's active health checks finds it healthy.
 */
public record OutlierDetection(
        int consecutive5xx,
        Duration interval,
        Duration baseEjectionTime,
        Duration maxEjectionTime,
        int maxEjectionPercent,
        int enforcingConsecutive5xx,
        int enforcingSuccessRate,
        int successRateMinimumHosts,
        int successRateRequestVolume,
        int successRateStdevFactor,
        int consecutiveGatewayFailure,
        int enforcingConsecutiveGatewayFailure,
        boolean splitExternalLocalOriginErrors,
        int consecutiveLocalOriginFailure,
        int enforcingConsecutiveLocalOriginFailure,
        int enforcingLocalOriginSuccessRate,
        int failurePercentageThreshold,
        int enforcingFailurePercentage,
        int enforcingFailurePercentageLocalOrigin,
        int failurePercentageMinimumHosts,
        int failurePercentageRequestVolume,
        boolean alwaysEjectOneHost,
        Duration maxEjectionTimeJitter,
        boolean successfulActiveHealthCheckUnejectHost) {

    /** Envoy's defaults for every field. */
    public static final OutlierDetection DEFAULTS = new OutlierDetection(5, Duration.ofSeconds(10),
            Duration.ofSeconds(30), Duration.ofSeconds(300), 10, 100, 100, 5, 100, 1900, 5, 0, false, 5, 100, 100, 85,
            0, 0, 5, 50, false, Duration.ZERO, true);

    public OutlierDetection {
        Checks.nonNegative(consecutive5xx, "consecutive_5xx");
        Checks.check(interval != null && interval.toMillis() > 0, "interval", interval, "> 0s");
        Checks.check(baseEjectionTime != null && baseEjectionTime.toMillis() > 0, "base_ejection_time",
                baseEjectionTime, "> 0s");
        Checks.check(maxEjectionTime != null && maxEjectionTime.toMillis() > 0, "max_ejection_time",
                maxEjectionTime, "> 0s");
        percent(maxEjectionPercent, "max_ejection_percent");
        percent(enforcingConsecutive5xx, "enforcing_consecutive_5xx");
        percent(enforcingSuccessRate, "enforcing_success_rate");
        Checks.nonNegative(successRateMinimumHosts, "success_rate_minimum_hosts");
        Checks.nonNegative(successRateRequestVolume, "success_rate_request_volume");
        Checks.nonNegative(successRateStdevFactor, "success_rate_stdev_factor");
        Checks.nonNegative(consecutiveGatewayFailure, "consecutive_gateway_failure");
        percent(enforcingConsecutiveGatewayFailure, "enforcing_consecutive_gateway_failure");
        Checks.nonNegative(consecutiveLocalOriginFailure, "consecutive_local_origin_failure");
        percent(enforcingConsecutiveLocalOriginFailure, "enforcing_consecutive_local_origin_failure");
        percent(enforcingLocalOriginSuccessRate, "enforcing_local_origin_success_rate");
        percent(failurePercentageThreshold, "failure_percentage_threshold");
        percent(enforcingFailurePercentage, "enforcing_failure_percentage");
        percent(enforcingFailurePercentageLocalOrigin, "enforcing_failure_percentage_local_origin");
        Checks.nonNegative(failurePercentageMinimumHosts, "failure_percentage_minimum_hosts");
        Checks.nonNegative(failurePercentageRequestVolume, "failure_percentage_request_volume");
        Checks.check(maxEjectionTimeJitter != null && !maxEjectionTimeJitter.isNegative(), "max_ejection_time_jitter",
                maxEjectionTimeJitter, ">= 0s");
    }

    /**
     * The settings with Envoy's default {@code successful_active_health_check_uneject_host} (true).
     */
    public OutlierDetection(int consecutive5xx, Duration interval, Duration baseEjectionTime, Duration maxEjectionTime,
                            int maxEjectionPercent, int enforcingConsecutive5xx, int enforcingSuccessRate,
                            int successRateMinimumHosts, int successRateRequestVolume, int successRateStdevFactor,
                            int consecutiveGatewayFailure, int enforcingConsecutiveGatewayFailure,
                            boolean splitExternalLocalOriginErrors, int consecutiveLocalOriginFailure,
                            int enforcingConsecutiveLocalOriginFailure, int enforcingLocalOriginSuccessRate,
                            int failurePercentageThreshold, int enforcingFailurePercentage,
                            int enforcingFailurePercentageLocalOrigin, int failurePercentageMinimumHosts,
                            int failurePercentageRequestVolume, boolean alwaysEjectOneHost,
                            Duration maxEjectionTimeJitter) {
        this(consecutive5xx, interval, baseEjectionTime, maxEjectionTime, maxEjectionPercent, enforcingConsecutive5xx,
                enforcingSuccessRate, successRateMinimumHosts, successRateRequestVolume, successRateStdevFactor,
                consecutiveGatewayFailure, enforcingConsecutiveGatewayFailure, splitExternalLocalOriginErrors,
                consecutiveLocalOriginFailure, enforcingConsecutiveLocalOriginFailure, enforcingLocalOriginSuccessRate,
                failurePercentageThreshold, enforcingFailurePercentage, enforcingFailurePercentageLocalOrigin,
                failurePercentageMinimumHosts, failurePercentageRequestVolume, alwaysEjectOneHost,
                maxEjectionTimeJitter, true);
    }

    /** The settings without {@code always_eject_one_host} and {@code max_ejection_time_jitter} (Envoy's defaults). */
    public OutlierDetection(int consecutive5xx, Duration interval, Duration baseEjectionTime, Duration maxEjectionTime,
                            int maxEjectionPercent, int enforcingConsecutive5xx, int enforcingSuccessRate,
                            int successRateMinimumHosts, int successRateRequestVolume, int successRateStdevFactor,
                            int consecutiveGatewayFailure, int enforcingConsecutiveGatewayFailure,
                            boolean splitExternalLocalOriginErrors, int consecutiveLocalOriginFailure,
                            int enforcingConsecutiveLocalOriginFailure, int enforcingLocalOriginSuccessRate,
                            int failurePercentageThreshold, int enforcingFailurePercentage,
                            int enforcingFailurePercentageLocalOrigin, int failurePercentageMinimumHosts,
                            int failurePercentageRequestVolume) {
        this(consecutive5xx, interval, baseEjectionTime, maxEjectionTime, maxEjectionPercent, enforcingConsecutive5xx,
                enforcingSuccessRate, successRateMinimumHosts, successRateRequestVolume, successRateStdevFactor,
                consecutiveGatewayFailure, enforcingConsecutiveGatewayFailure, splitExternalLocalOriginErrors,
                consecutiveLocalOriginFailure, enforcingConsecutiveLocalOriginFailure, enforcingLocalOriginSuccessRate,
                failurePercentageThreshold, enforcingFailurePercentage, enforcingFailurePercentageLocalOrigin,
                failurePercentageMinimumHosts, failurePercentageRequestVolume, false, Duration.ZERO);
    }

    private static void percent(int value, String field) {
        Checks.range(value, 0, 100, field);
    }
}
