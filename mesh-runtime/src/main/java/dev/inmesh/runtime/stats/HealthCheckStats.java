package dev.inmesh.runtime.stats;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.IntSupplier;

/**
 * One cluster's active health check statistics, as Envoy keeps them under {@code cluster.<name>.health_check.} for a
 * cluster with health checks: the counters {@code attempt}, {@code success}, {@code failure} (every failed check, and
 * every passive failure), {@code network_failure} (checks that failed for the network: no connection, a reset, the
 * timeout), {@code passive_failure} (answers to requests that carried {@code x-envoy-immediate-health-check-fail}) and
 * {@code verify_cluster} (kept at 0: Inmesh has no {@code service_name_matcher}), and the gauges {@code healthy}
 * (checked hosts that passed) and {@code degraded} (checked hosts whose last passing check said
 * {@code x-envoy-degraded}). Scraped under Istio's stats tags as
 * {@code envoy_cluster_health_check_attempt{cluster_name="<name>"}} and so on; as with {@link UpstreamStats}, those
 * whose Envoy name does not end in {@code _total} are gauges that only go up. Thread-safe.
 */
public final class HealthCheckStats {
    private static final String SCOPE = "health_check_";

    private final LongAdder attempt = new LongAdder();
    private final LongAdder success = new LongAdder();
    private final LongAdder failure = new LongAdder();
    private final LongAdder networkFailure = new LongAdder();
    private final LongAdder passiveFailure = new LongAdder();
    private volatile IntSupplier healthy = () -> 0;
    private volatile IntSupplier degraded = () -> 0;

    HealthCheckStats(MeterRegistry registry, String cluster) {
        UpstreamStatsImpl.adder(registry, cluster, SCOPE + "attempt", attempt);
        UpstreamStatsImpl.adder(registry, cluster, SCOPE + "success", success);
        UpstreamStatsImpl.adder(registry, cluster, SCOPE + "failure", failure);
        UpstreamStatsImpl.adder(registry, cluster, SCOPE + "network_failure", networkFailure);
        UpstreamStatsImpl.adder(registry, cluster, SCOPE + "passive_failure", passiveFailure);
        UpstreamStatsImpl.adder(registry, cluster, SCOPE + "verify_cluster", new LongAdder());
        Gauge.builder("envoy_cluster_" + SCOPE + "healthy", this, s -> s.healthy.getAsInt())
                .tag("cluster_name", cluster).strongReference(true).register(registry);
        Gauge.builder("envoy_cluster_" + SCOPE + "degraded", this, s -> s.degraded.getAsInt())
                .tag("cluster_name", cluster).strongReference(true).register(registry);
    }

    /** Where {@code healthy} and {@code degraded} are read from: the cluster's health checker in force. */
    public void hostsFrom(IntSupplier healthyHosts, IntSupplier degradedHosts) {
        this.healthy = healthyHosts;
        this.degraded = degradedHosts;
    }

    /** A check started. */
    public void attempt() {
        attempt.increment();
    }

    /** A check passed. */
    public void success() {
        success.increment();
    }

    /** A passive failure (counted in {@code failure} too, by {@link #failure}). */
    public void passiveFailure() {
        passiveFailure.increment();
    }

    /** A check failed; {@code network} for no connection, a reset or the timeout. */
    public void failure(boolean network) {
        failure.increment();
        if (network) {
            networkFailure.increment();
        }
    }
}
