package dev.inmesh.runtime.upstream;

import dev.inmesh.api.config.cluster.OutlierDetection;
import dev.inmesh.runtime.stats.OutlierStats;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.function.Supplier;
import java.util.random.RandomGenerator;

/**
 * A cluster's outlier detection, as Envoy's: consecutive 5xx, consecutive gateway failures and (when split)
 * consecutive local-origin failures eject at once; success rate and failure percentage are judged on each interval.
 * An ejection lasts {@code min(base_ejection_time × backoff, max_ejection_time)} plus a jitter drawn for it in
 * {@code [0, max_ejection_time_jitter]}, the backoff growing with each ejection
 * and shrinking by one for each interval a returned host stays in; hosts return on the interval after their time is
 * up. No more than {@code max_ejection_percent} of the hosts are out at once (with {@code always_eject_one_host}, one
 * host can be ejected whatever the percentage).
 * Each ejection is enforced with its {@code enforcing_*} probability. An ejected host's connections drain, as Envoy's
 * cluster manager drains a host's pools when outlier detection ejects it: its idle connections close at once, those
 * carrying requests once these end, and the host's next request after it returns opens a new connection.
 *
 * <p>Production runs {@link #runInterval()} on a Vert.x periodic timer; tests call it with a fake {@link Ticker}.
 */
public final class OutlierDetector {

    /** Why a host was ejected, as Envoy's {@code OutlierEjectionType}. */
    public enum EjectionType {
        CONSECUTIVE_5XX("consecutive_5xx"),
        CONSECUTIVE_GATEWAY_FAILURE("consecutive_gateway_failure"),
        CONSECUTIVE_LOCAL_ORIGIN_FAILURE("consecutive_local_origin_failure"),
        SUCCESS_RATE("success_rate"),
        SUCCESS_RATE_LOCAL_ORIGIN("local_origin_success_rate"),
        FAILURE_PERCENTAGE("failure_percentage"),
        FAILURE_PERCENTAGE_LOCAL_ORIGIN("local_origin_failure_percentage");

        /** The type in Envoy's statistics' names ({@code ejections_enforced_<statName>}). */
        public final String statName;

        EjectionType(String statName) {
            this.statName = statName;
        }
    }

    private final Ticker ticker;
    private final RandomGenerator random;
    private final Runnable onChange;
    /** The cluster's statistics, asked for once detection is on; null: none kept. */
    private final Supplier<OutlierStats> statsSource;
    private OutlierStats stats; // guarded by this
    private volatile OutlierDetection config;
    private List<Host> hosts = List.of(); // guarded by this
    /** Hosts ejected whose connections are to drain once the lock is let go (a pool has its own lock). */
    private final List<Host> toDrain = new ArrayList<>(); // guarded by this
    /** The last interval's success rate average and ejection threshold, external [0] and local origin [1]; -1: none. */
    private final double[] successRateAverage = {-1, -1};
    private final double[] successRateThreshold = {-1, -1};

    /**
     * @param config the settings, or null when the cluster has none (reports are then ignored)
     * @param onChange called after hosts were ejected or returned, outside the detector's lock
     * @param stats the cluster's outlier statistics (Envoy's {@code outlier_detection.*}), asked for when detection is
     *              first on; null to keep none
     */
    public OutlierDetector(OutlierDetection config, Ticker ticker, RandomGenerator random, Runnable onChange,
                           Supplier<OutlierStats> stats) {
        this.config = config;
        this.ticker = ticker;
        this.random = random;
        this.onChange = onChange;
        this.statsSource = stats;
        if (config != null) {
            synchronized (this) {
                stats();
            }
        }
    }

    /** The statistics, bound to this detector's ejected hosts on first use; null when none are kept. Holds lock. */
    private OutlierStats stats() {
        if (stats == null && statsSource != null) {
            stats = statsSource.get();
            stats.activeFrom(this::activeEjections);
        }
        return stats;
    }

    /** A host met {@code type}'s condition: Envoy counts the detection before the ejection is judged. Holds lock. */
    private void detected(EjectionType type) {
        OutlierStats s = stats();
        if (s != null) {
            s.detected(type.statName);
        }
    }

    /** The settings in force, or null when off. */
    public OutlierDetection config() {
        return config;
    }

    /** A monitor for a new host of this cluster. */
    OutlierMonitor newMonitor() {
        return new OutlierMonitor(this);
    }

    /** Replaces the settings; turning detection off returns every ejected host. */
    void configure(OutlierDetection newConfig) {
        this.config = newConfig;
        if (newConfig != null) {
            synchronized (this) {
                stats();
            }
        }
        if (newConfig == null) {
            boolean changed = false;
            synchronized (this) {
                long now = ticker.nanoTime();
                for (Host h : hosts) {
                    if (h.outlier().ejected()) {
                        h.outlier().uneject(now);
                        changed = true;
                    }
                }
            }
            if (changed) {
                onChange.run();
            }
        }
    }

    /** The hosts the detector watches (all of the cluster's hosts); the cluster calls this on each host set update. */
    synchronized void setHosts(Collection<Host> hosts) {
        this.hosts = List.copyOf(hosts);
    }

    /** Hosts ejected now. */
    public synchronized int activeEjections() {
        int n = 0;
        for (Host h : hosts) {
            if (h.outlier().ejected()) {
                n++;
            }
        }
        return n;
    }

    void onConsecutiveError(Host host, EjectionType type) {
        boolean changed;
        synchronized (this) {
            if (config == null || host == null || !hosts.contains(host) || host.outlier().ejected()) {
                return;
            }
            detected(type);
            changed = eject(host, type);
            if (type == EjectionType.CONSECUTIVE_5XX && stats() != null) {
                stats().consecutive5xxHandled();
            }
            host.outlier().resetCounter(type);
        }
        if (changed) {
            drainEjected();
            onChange.run();
        }
    }

    /**
     * A check of the cluster's active health checks found {@code host} healthy (and its checks have not failed it):
     * with {@code successful_active_health_check_uneject_host} (Envoy's default), an ejected host returns now, as
     * when its time is up.
     */
    void activeHealthCheckPassed(Host host) {
        synchronized (this) {
            OutlierDetection c = config;
            if (c == null || !c.successfulActiveHealthCheckUnejectHost() || !host.outlier().ejected()
                    || !hosts.contains(host)) {
                return;
            }
            host.outlier().uneject(ticker.nanoTime());
        }
        onChange.run();
    }

    /** Runs one interval: returns hosts whose time is up, then judges success rate and failure percentage. */
    public void runInterval() {
        boolean changed = false;
        synchronized (this) {
            OutlierDetection c = config;
            if (c == null) {
                return;
            }
            long now = ticker.nanoTime();
            long base = c.baseEjectionTime().toNanos();
            long max = Math.max(c.maxEjectionTime().toNanos(), base);
            for (Host h : hosts) {
                if (h.outlier().ejectionOver(now, base, max)) {
                    h.outlier().uneject(now);
                    changed = true;
                }
                h.outlier().rollBuckets();
            }
            changed |= successRate(c, false);
            changed |= successRate(c, true);
            long interval = c.interval().toNanos();
            for (Host h : hosts) {
                h.outlier().decayBackoff(now, interval);
            }
        }
        if (changed) {
            drainEjected();
            onChange.run();
        }
    }

    /**
     * The mean success rate (percent) of the hosts the last interval judged by success rate, external or local origin,
     * or -1 when it judged none.
     */
    public synchronized double successRateAverage(boolean localOrigin) {
        return successRateAverage[localOrigin ? 1 : 0];
    }

    /** The success rate below which the last interval ejected hosts, or -1 when it judged none. */
    public synchronized double successRateEjectionThreshold(boolean localOrigin) {
        return successRateThreshold[localOrigin ? 1 : 0];
    }

    private boolean successRate(OutlierDetection c, boolean local) {
        int origin = local ? 1 : 0;
        successRateAverage[origin] = -1;
        successRateThreshold[origin] = -1;
        for (Host h : hosts) {
            h.outlier().successRate(local, -1);
        }
        if (hosts.size() < c.successRateMinimumHosts() && hosts.size() < c.failurePercentageMinimumHosts()) {
            return false;
        }
        List<Host> srHosts = new ArrayList<>();
        List<Double> srRates = new ArrayList<>();
        List<Host> fpHosts = new ArrayList<>();
        List<Double> fpRates = new ArrayList<>();
        double sum = 0;
        for (Host h : hosts) {
            if (h.outlier().ejected()) {
                continue;
            }
            long[] st = h.outlier().lastInterval(local);
            if (st[1] == 0) {
                continue;
            }
            double rate = st[0] * 100.0 / st[1];
            // as Envoy: the host's rate is shown once it has the volume either of the two judgements needs
            if (st[1] >= Math.min(c.successRateRequestVolume(), c.failurePercentageRequestVolume())) {
                h.outlier().successRate(local, rate);
            }
            if (st[1] >= c.successRateRequestVolume()) {
                srHosts.add(h);
                srRates.add(rate);
                sum += rate;
            }
            if (st[1] >= c.failurePercentageRequestVolume()) {
                fpHosts.add(h);
                fpRates.add(rate);
            }
        }
        boolean changed = false;
        if (!srHosts.isEmpty() && srHosts.size() >= c.successRateMinimumHosts()) {
            double mean = sum / srHosts.size();
            double variance = 0;
            for (double r : srRates) {
                variance += (r - mean) * (r - mean);
            }
            double stdev = Math.sqrt(variance / srHosts.size());
            double threshold = mean - c.successRateStdevFactor() / 1000.0 * stdev;
            successRateAverage[origin] = mean;
            successRateThreshold[origin] = threshold;
            for (int i = 0; i < srHosts.size(); i++) {
                if (srRates.get(i) < threshold && !srHosts.get(i).outlier().ejected()) {
                    EjectionType type = local ? EjectionType.SUCCESS_RATE_LOCAL_ORIGIN : EjectionType.SUCCESS_RATE;
                    if (stats() != null) {
                        stats().successRateOutlier();
                    }
                    detected(type);
                    changed |= eject(srHosts.get(i), type);
                }
            }
        }
        if (!fpHosts.isEmpty() && fpHosts.size() >= c.failurePercentageMinimumHosts()) {
            for (int i = 0; i < fpHosts.size(); i++) {
                if (100.0 - fpRates.get(i) >= c.failurePercentageThreshold() && !fpHosts.get(i).outlier().ejected()) {
                    EjectionType type = local ? EjectionType.FAILURE_PERCENTAGE_LOCAL_ORIGIN
                            : EjectionType.FAILURE_PERCENTAGE;
                    detected(type);
                    changed |= eject(fpHosts.get(i), type);
                }
            }
        }
        return changed;
    }

    /**
     * Drains the connections of the hosts just ejected, as Envoy's cluster manager on an ejection: no new request
     * goes on them, idle ones close now, busy ones once their requests end.
     */
    private void drainEjected() {
        List<Host> ejected;
        synchronized (this) {
            ejected = List.copyOf(toDrain);
            toDrain.clear();
        }
        ejected.forEach(h -> h.pool.drain());
    }

    /** Ejects if the cap allows and the enforcement draw says so; true when the host went out. Caller holds lock. */
    private boolean eject(Host host, EjectionType type) {
        OutlierDetection c = config;
        int active = 0;
        for (Host h : hosts) {
            if (h.outlier().ejected()) {
                active++;
            }
        }
        // the share of hosts out once this one is; only always_eject_one_host lets the first go past the limit
        double percent = 100.0 * (active + 1) / hosts.size();
        if (percent > c.maxEjectionPercent() && !(c.alwaysEjectOneHost() && active == 0)) {
            OutlierStats s = stats();
            if (s != null) {
                s.overflow();
            }
            return false;
        }
        OutlierStats allowed = stats();
        if (allowed != null) {
            allowed.allowed(type.statName);
        }
        int enforcing = switch (type) {
            case CONSECUTIVE_5XX -> c.enforcingConsecutive5xx();
            case CONSECUTIVE_GATEWAY_FAILURE -> c.enforcingConsecutiveGatewayFailure();
            case CONSECUTIVE_LOCAL_ORIGIN_FAILURE -> c.enforcingConsecutiveLocalOriginFailure();
            case SUCCESS_RATE -> c.enforcingSuccessRate();
            case SUCCESS_RATE_LOCAL_ORIGIN -> c.enforcingLocalOriginSuccessRate();
            case FAILURE_PERCENTAGE -> c.enforcingFailurePercentage();
            case FAILURE_PERCENTAGE_LOCAL_ORIGIN -> c.enforcingFailurePercentageLocalOrigin();
        };
        if (enforcing <= 0 || (enforcing < 100 && random.nextInt(100) >= enforcing)) {
            return false;
        }
        long base = c.baseEjectionTime().toNanos();
        // as Envoy: a jitter of whole milliseconds in [0, max_ejection_time_jitter], drawn for each ejection
        long jitterMillis = c.maxEjectionTimeJitter().toMillis();
        long jitter = jitterMillis <= 0 ? 0 : java.util.concurrent.TimeUnit.MILLISECONDS.toNanos(
                random.nextLong(jitterMillis + 1));
        host.outlier().eject(ticker.nanoTime(), base, Math.max(c.maxEjectionTime().toNanos(), base), jitter);
        toDrain.add(host);
        OutlierStats s = stats();
        if (s != null) {
            s.enforced(type.statName);
        }
        return true;
    }
}
