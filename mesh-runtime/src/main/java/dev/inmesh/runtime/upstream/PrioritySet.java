package dev.inmesh.runtime.upstream;

import dev.inmesh.runtime.lb.HostSelector;
import dev.inmesh.runtime.lb.LoadBalancer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.random.RandomGenerator;

/**
 * A cluster's hosts by priority, compiled for picking: each priority's {@link HostSet}, the priority load and the
 * panic state. Immutable once built; the cluster builds a new one on each host set update, ejection or return, and
 * publishes it through one volatile reference.
 */
public final class PrioritySet {
    private final List<HostSet> hostSets;
    private final PriorityLoad load;
    private final boolean hashing;
    /** {@code fail_traffic_on_panic}, for a policy that is not hashing: a priority in panic picks no host. */
    private final boolean failOnPanic;
    /**
     * Whether a cluster without hosts is in panic: as Envoy's, whose empty priority 0 has no healthy host, under any
     * panic threshold but 0 ({@code lb_healthy_panic} counts each pick that then finds no host).
     */
    private final boolean emptyInPanic;
    final Map<String, HostSelector<Host>> selectors;

    private PrioritySet(List<HostSet> hostSets, PriorityLoad load, boolean hashing, boolean failOnPanic,
                        boolean emptyInPanic, Map<String, HostSelector<Host>> selectors) {
        this.hostSets = hostSets;
        this.load = load;
        this.hashing = hashing;
        this.failOnPanic = failOnPanic;
        this.emptyInPanic = emptyInPanic;
        this.selectors = selectors;
    }

    /** The set of a cluster whose configuration is not applied yet. */
    static final PrioritySet EMPTY = new PrioritySet(List.of(), PriorityLoad.compute(new int[0], new int[0],
            new int[0], new int[0], 140, 50), false, false, false, Map.of());

    /**
     * @param byPriority each priority's localities and hosts (index = priority)
     * @param weightedPriorityHealth {@code weighted_priority_health}: a priority's availability is computed from its
     *                               hosts' weights rather than their number (its panic still from their number, as
     *                               Envoy's)
     * @param failTrafficOnPanic {@code zone_aware_lb_config.fail_traffic_on_panic}: as in Envoy, it fails the requests
     *                           that fall on a priority in panic under round robin, least request and random, and
     *                           changes nothing under ring hash and Maglev
     * @param previous the set this one replaces, whose selectors hand their state on, or null
     */
    static PrioritySet build(List<List<HostSet.LocalityHosts>> byPriority, int overprovisioningFactor,
                             boolean weightedPriorityHealth, double panicThreshold, boolean localityWeighted,
                             boolean failTrafficOnPanic, LoadBalancer lb, PrioritySet previous) {
        int n = byPriority.size();
        int[] healthy = new int[n];
        int[] degraded = new int[n];
        int[] counted = new int[n];
        int[] all = new int[n];
        // by weight under weighted_priority_health, for the availability only
        long[][] weights = new long[3][n];
        for (int p = 0; p < n; p++) {
            for (HostSet.LocalityHosts g : byPriority.get(p)) {
                for (Host h : g.hosts()) {
                    all[p]++;
                    if (!h.excluded()) {
                        counted[p]++;
                        weights[2][p] += h.weight();
                    }
                    if (h.healthy()) {
                        healthy[p]++;
                        weights[0][p] += h.weight();
                    } else if (h.degraded()) {
                        degraded[p]++;
                        weights[1][p] += h.weight();
                    }
                }
            }
        }
        PriorityLoad load = PriorityLoad.compute(healthy, degraded, counted, all, overprovisioningFactor,
                panicThreshold, weightedPriorityHealth ? weights : null);
        Map<String, HostSelector<Host>> built = new HashMap<>();
        HostSet.Builder builder = new HostSet.Builder(lb, previous == null ? Map.of() : previous.selectors, built,
                localityWeighted, overprovisioningFactor);
        List<HostSet> sets = new ArrayList<>(n);
        for (int p = 0; p < n; p++) {
            sets.add(new HostSet(p, byPriority.get(p), load.panic()[p], builder));
        }
        return new PrioritySet(List.copyOf(sets), load, lb.hashing(), failTrafficOnPanic && !lb.hashing(),
                n == 0 && panicThreshold > 0, built);
    }

    /**
     * Picks a priority and a host in it; null when none. Hashing policies choose the priority by the request's hash
     * (so that a key stays on its host), the others at random, as Envoy does. The draw also decides between the
     * priority's healthy and degraded hosts. A retry priority may change the priority load the draw falls in. Under
     * {@code fail_traffic_on_panic}, a draw that falls on a priority in panic gets no host.
     *
     * @param panicked run when the draw fell on a priority in panic (Envoy's {@code lb_healthy_panic})
     */
    Host pick(boolean hasHash, long hash, int attempt, RandomGenerator random, PreviousPriorities retryPriority,
              Runnable panicked) {
        if (hostSets.isEmpty()) {
            if (emptyInPanic) {
                panicked.run();
            }
            return null;
        }
        int draw = hasHash && hashing ? (int) Long.remainderUnsigned(hash, 100) : random.nextInt(100);
        int chosen = (retryPriority == null ? load : retryPriority.load(load)).choose(draw);
        if (load.panic()[chosen >= 0 ? chosen : -1 - chosen]) {
            panicked.run();
            if (failOnPanic) {
                return null;
            }
        }
        return chosen >= 0 ? hostSets.get(chosen).pick(false, hasHash, hash, attempt)
                : hostSets.get(-1 - chosen).pick(true, hasHash, hash, attempt);
    }

    public List<HostSet> hostSets() {
        return hostSets;
    }

    /** The percent of requests that priority {@code p} takes, on its healthy and its degraded hosts. */
    public int load(int priority) {
        return load.loads()[priority] + load.degradedLoads()[priority];
    }

    /** The percent of requests that priority {@code p} sends to its degraded hosts. */
    public int degradedLoad(int priority) {
        return load.degradedLoads()[priority];
    }

    /** Whether priority {@code p} is in panic. */
    public boolean panic(int priority) {
        return load.panic()[priority];
    }
}
