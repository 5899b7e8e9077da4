package dev.inmesh.runtime.stats;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.IntSupplier;

/**
 * One cluster's outlier detection statistics, as Envoy keeps them under {@code cluster.<name>.outlier_detection.}
 * for a cluster that has outlier detection: {@code ejections_active} (hosts out now), {@code ejections_enforced_total},
 * {@code ejections_overflow} (an ejection {@code max_ejection_percent} did not allow), and per detection type
 * {@code ejections_detected_<type>} (each time a host met the type's condition, enforced or not) and
 * {@code ejections_enforced_<type>} (each time that ejected it), and Envoy's deprecated counters, which it still keeps:
 * {@code ejections_total} (a consecutive 5xx or success rate ejection {@code max_ejection_percent} allowed, enforced
 * or not), {@code ejections_consecutive_5xx} and {@code ejections_success_rate} (each detection of those, external or
 * local origin for success rate, whatever followed). Scraped under Istio's stats tags as
 * {@code envoy_cluster_outlier_detection_ejections_active{cluster_name="<name>"}} and so on; as with
 * {@link UpstreamStats}, those whose Envoy name does not end in {@code _total} are gauges that only go up.
 * Thread-safe.
 */
public final class OutlierStats {
    /** Envoy's detection types, as its statistics name them. */
    public static final List<String> TYPES = List.of("consecutive_5xx", "consecutive_gateway_failure",
            "consecutive_local_origin_failure", "success_rate", "local_origin_success_rate", "failure_percentage",
            "local_origin_failure_percentage");
    private static final String SCOPE = "outlier_detection_";

    private final LongAdder enforcedTotal = new LongAdder();
    private final LongAdder overflow = new LongAdder();
    private final LongAdder deprecatedTotal = new LongAdder();
    private final LongAdder deprecatedConsecutive5xx = new LongAdder();
    private final LongAdder deprecatedSuccessRate = new LongAdder();
    private final Map<String, LongAdder> detected = new HashMap<>();
    private final Map<String, LongAdder> enforced = new HashMap<>();
    private volatile IntSupplier active = () -> 0;

    OutlierStats(MeterRegistry registry, String cluster) {
        UpstreamStatsImpl.adder(registry, cluster, SCOPE + "ejections_enforced_total", enforcedTotal);
        UpstreamStatsImpl.adder(registry, cluster, SCOPE + "ejections_overflow", overflow);
        UpstreamStatsImpl.adder(registry, cluster, SCOPE + "ejections_total", deprecatedTotal);
        UpstreamStatsImpl.adder(registry, cluster, SCOPE + "ejections_consecutive_5xx", deprecatedConsecutive5xx);
        UpstreamStatsImpl.adder(registry, cluster, SCOPE + "ejections_success_rate", deprecatedSuccessRate);
        Gauge.builder("envoy_cluster_" + SCOPE + "ejections_active", this, s -> s.active.getAsInt())
                .tag("cluster_name", cluster).strongReference(true).register(registry);
        for (String type : TYPES) {
            detected.put(type, UpstreamStatsImpl.adder(registry, cluster, SCOPE + "ejections_detected_" + type,
                    new LongAdder()));
            enforced.put(type, UpstreamStatsImpl.adder(registry, cluster, SCOPE + "ejections_enforced_" + type,
                    new LongAdder()));
        }
    }

    /** Where {@code ejections_active} is read from: the cluster's detector in force (a new one replaces the old). */
    public void activeFrom(IntSupplier ejectedHosts) {
        this.active = ejectedHosts;
    }

    /** A host met the condition of {@code type} (one of {@link #TYPES}), whether or not it was then ejected. */
    public void detected(String type) {
        detected.get(type).increment();
    }

    /** A host was ejected for {@code type}: {@code ejections_enforced_<type>} and {@code ejections_enforced_total}. */
    public void enforced(String type) {
        enforced.get(type).increment();
        enforcedTotal.increment();
    }

    /**
     * An ejection of {@code type} got past {@code max_ejection_percent}, whether enforced or not: Envoy's deprecated
     * {@code ejections_total} counts those of {@code consecutive_5xx} and {@code success_rate}.
     */
    public void allowed(String type) {
        if (type.equals("consecutive_5xx") || type.equals("success_rate")) {
            deprecatedTotal.increment();
        }
    }

    /** A consecutive 5xx detection was handled (Envoy's deprecated {@code ejections_consecutive_5xx}). */
    public void consecutive5xxHandled() {
        deprecatedConsecutive5xx.increment();
    }

    /**
     * A host fell below the success rate threshold, either origin (Envoy's deprecated {@code ejections_success_rate}).
     */
    public void successRateOutlier() {
        deprecatedSuccessRate.increment();
    }

    /** An ejection was not made: {@code max_ejection_percent} of the hosts were out already. */
    public void overflow() {
        overflow.increment();
    }
}
