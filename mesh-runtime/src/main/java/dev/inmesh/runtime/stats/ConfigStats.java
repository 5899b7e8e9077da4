package dev.inmesh.runtime.stats;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.IntSupplier;

/**
 * Envoy's statistics of configuration updates, in the server's scope: the cluster manager's
 * ({@code cluster_manager.cluster_added}, {@code cluster_modified} and {@code cluster_removed}, counted as each
 * published snapshot adds, changes or removes a cluster, one whose config is unchanged not counted, as Envoy skips a
 * cluster whose hash is unchanged; the gauges {@code active_clusters} and {@code warming_clusters}), the listener
 * manager's ({@code listener_manager.listener_added}, {@code listener_modified}, {@code listener_removed}, likewise,
 * {@code listener_stopped}, the listeners an admin's {@code /drain_listeners} stopped, and the gauges
 * {@code total_listeners_active} and {@code total_listeners_draining}), the CDS and LDS
 * subscriptions' ({@code cluster_manager.cds.} and {@code listener_manager.lds.}, see {@link Subscription}) and the
 * control plane's {@code control_plane.connected_state} (1 while the ADS stream is open). Scraped under Envoy's
 * Prometheus names ({@code envoy_cluster_manager_cluster_added}, {@code envoy_cluster_manager_cds_update_success},
 * {@code envoy_control_plane_connected_state}, ...); counters are gauges that only go up, as with
 * {@link UpstreamStats}. A subscription's statistics and the control plane's are registered once a config source
 * started them, as Envoy has them only for the subscriptions it runs. Thread-safe.
 */
public final class ConfigStats {
    private final LongAdder clusterAdded = new LongAdder();
    private final LongAdder clusterModified = new LongAdder();
    private final LongAdder clusterRemoved = new LongAdder();
    private final LongAdder listenerAdded = new LongAdder();
    private final LongAdder listenerModified = new LongAdder();
    private final LongAdder listenerRemoved = new LongAdder();
    private final LongAdder listenerStopped = new LongAdder();
    private final IntSupplier activeClusters;
    private final IntSupplier warmingClusters;
    private final IntSupplier activeListeners;
    private final IntSupplier drainingListeners;
    private final Subscription cds = new Subscription("envoy_cluster_manager_cds_");
    private final Subscription lds = new Subscription("envoy_listener_manager_lds_");
    /** 1 while connected to the control plane, 0 not; -1 while no ADS client ran (no control plane). */
    private final AtomicLong connectedState = new AtomicLong(-1);
    /** The meters of each registry bound, to remove when it is unbound. Guarded by this. */
    private final Map<MeterRegistry, List<Meter>> bound = new IdentityHashMap<>();

    /**
     * @param activeClusters the clusters in use now (Envoy's active ones: warmed)
     * @param warmingClusters the clusters that warm now, not in use until their first health checks
     * @param activeListeners the listeners served now
     * @param drainingListeners the listener versions draining now (removed or replaced, for the drain time)
     */
    public ConfigStats(IntSupplier activeClusters, IntSupplier warmingClusters, IntSupplier activeListeners,
                       IntSupplier drainingListeners) {
        this.activeClusters = activeClusters;
        this.warmingClusters = warmingClusters;
        this.activeListeners = activeListeners;
        this.drainingListeners = drainingListeners;
    }

    /**
     * Registers the statistics in {@code registry} (and those started later, as they start); the returned action
     * removes them from it.
     */
    public synchronized Runnable bind(MeterRegistry registry) {
        List<Meter> meters = new ArrayList<>();
        bound.put(registry, meters);
        String cm = "envoy_cluster_manager_";
        String lm = "envoy_listener_manager_";
        meters.add(adder(registry, cm + "cluster_added", clusterAdded));
        meters.add(adder(registry, cm + "cluster_modified", clusterModified));
        meters.add(adder(registry, cm + "cluster_removed", clusterRemoved));
        meters.add(gauge(registry, cm + "active_clusters", activeClusters));
        meters.add(gauge(registry, cm + "warming_clusters", warmingClusters));
        meters.add(adder(registry, lm + "listener_added", listenerAdded));
        meters.add(adder(registry, lm + "listener_modified", listenerModified));
        meters.add(adder(registry, lm + "listener_removed", listenerRemoved));
        meters.add(adder(registry, lm + "listener_stopped", listenerStopped));
        meters.add(gauge(registry, lm + "total_listeners_active", activeListeners));
        meters.add(gauge(registry, lm + "total_listeners_draining", drainingListeners));
        for (Subscription s : List.of(cds, lds)) {
            if (s.started) {
                s.register(registry, meters);
            }
        }
        if (connectedState.get() >= 0) {
            meters.add(connectedStateGauge(registry));
        }
        return () -> {
            synchronized (this) {
                bound.remove(registry);
            }
            meters.forEach(registry::remove);
        };
    }

    /** The statistics of the CDS subscription, {@code cluster_manager.cds.}. */
    public Subscription cds() {
        return cds;
    }

    /** The statistics of the LDS subscription, {@code listener_manager.lds.}. */
    public Subscription lds() {
        return lds;
    }

    /** A published snapshot added, changed and removed these many clusters. */
    public void clustersChanged(int added, int modified, int removed) {
        clusterAdded.add(added);
        clusterModified.add(modified);
        clusterRemoved.add(removed);
    }

    /** A published snapshot added, changed and removed these many listeners. */
    public void listenersChanged(int added, int modified, int removed) {
        listenerAdded.add(added);
        listenerModified.add(modified);
        listenerRemoved.add(removed);
    }

    /**
     * These many listeners stopped accepting, as Envoy's listener manager counts each listener its
     * {@code stopListeners} (the admin's {@code /drain_listeners}) stops.
     */
    public void listenersStopped(int stopped) {
        listenerStopped.add(stopped);
    }

    /**
     * The ADS stream opened ({@code true}) or ended: {@code control_plane.connected_state}, registered at its first
     * call.
     */
    public void connected(boolean connected) {
        if (connectedState.getAndSet(connected ? 1 : 0) < 0) {
            synchronized (this) {
                bound.forEach((registry, meters) -> meters.add(connectedStateGauge(registry)));
            }
        }
    }

    private Meter connectedStateGauge(MeterRegistry registry) {
        return Gauge.builder("envoy_control_plane_connected_state", connectedState, a -> Math.max(0, a.get()))
                .strongReference(true).register(registry);
    }

    private static Meter adder(MeterRegistry registry, String name, LongAdder value) {
        return Gauge.builder(name, value, LongAdder::doubleValue).strongReference(true).register(registry);
    }

    private static Meter gauge(MeterRegistry registry, String name, IntSupplier value) {
        return Gauge.builder(name, value, IntSupplier::getAsInt).strongReference(true).register(registry);
    }

    /**
     * One xDS subscription's statistics, as Envoy counts them for a gRPC (ADS) or filesystem subscription:
     * {@code update_attempt} (with every outcome below, for a gRPC subscription once more when it starts and with a
     * delta update it rejects),
     * {@code update_success} (an update accepted, also one that changed nothing), {@code update_rejected} (rejected,
     * NACKed), {@code update_failure} (the stream to the server failed or ended; a file that cannot be read, or is not
     * JSON or YAML),
     * {@code init_fetch_timeout} (nothing arrived within the initial fetch timeout) and the gauge
     * {@code update_time} (when the last update was accepted, in milliseconds since the epoch).
     */
    public final class Subscription {
        private final String prefix;
        private final LongAdder attempt = new LongAdder();
        private final LongAdder success = new LongAdder();
        private final LongAdder rejected = new LongAdder();
        private final LongAdder failure = new LongAdder();
        private final LongAdder initFetchTimeout = new LongAdder();
        private final AtomicLong updateTime = new AtomicLong();
        private volatile boolean started;

        private Subscription(String prefix) {
            this.prefix = prefix;
        }

        /** A gRPC subscription started (asked for its type): one attempt, and its statistics registered. */
        public void started() {
            attempt.increment();
            watched();
        }

        /**
         * A filesystem subscription started: its statistics registered, no attempt counted (each read of the file,
         * the first too, counts one with its outcome, as Envoy's).
         */
        public void watched() {
            synchronized (ConfigStats.this) {
                if (!started) {
                    started = true;
                    bound.forEach(this::register);
                }
            }
        }

        /** An update was accepted at {@code epochMillis}. */
        public void accepted(long epochMillis) {
            updateTime.set(epochMillis);
            success.increment();
            attempt.increment();
        }

        /** An update was rejected. */
        public void rejected() {
            rejected.increment();
            attempt.increment();
        }

        /**
         * A delta update was rejected once it reached the subscription (a resource refused, not the whole response
         * before it): two attempts, as Envoy's gRPC subscription counts one when a delta update comes in, before
         * applying it, and another with its rejection.
         */
        public void deltaRejected() {
            attempt.increment();
            rejected();
        }

        /** The subscription could not fetch: its stream failed or ended, or its file cannot be read. */
        public void failed() {
            failure.increment();
            attempt.increment();
        }

        /** Nothing arrived within the initial fetch timeout. */
        public void initFetchTimedOut() {
            initFetchTimeout.increment();
            attempt.increment();
        }

        private void register(MeterRegistry registry, List<Meter> meters) {
            meters.add(adder(registry, prefix + "update_attempt", attempt));
            meters.add(adder(registry, prefix + "update_success", success));
            meters.add(adder(registry, prefix + "update_rejected", rejected));
            meters.add(adder(registry, prefix + "update_failure", failure));
            meters.add(adder(registry, prefix + "init_fetch_timeout", initFetchTimeout));
            meters.add(Gauge.builder(prefix + "update_time", updateTime, AtomicLong::doubleValue)
                    .strongReference(true).register(registry));
        }
    }
}
