package dev.inmesh.runtime.upstream;

import java.util.Arrays;

/**
 * Envoy's priority load and panic computation, with integer percentages as Envoy computes them. Hosts excluded from
 * balancing (DRAINING) count nowhere but in total panic. A priority's healthy availability is
 * {@code min(100, overprovisioning_factor × healthy / hosts)} and its degraded availability the same with its
 * degraded hosts; the sum of both over all priorities, capped at 100, is the normalised total availability. Load goes
 * first to healthy hosts, each priority in turn taking {@code availability × 100 / normalised_total} of what is left,
 * then what remains to degraded hosts the same way; rounding leftovers go to the first priority with healthy hosts
 * (else with degraded ones). Below a normalised total of 100, a priority whose healthy and degraded share is under
 * the panic threshold is in panic (all its hosts are used); when all are, load follows host counts.
 *
 * @param loads percent of requests per priority sent to its healthy hosts
 * @param degradedLoads percent of requests per priority sent to its degraded hosts; with {@code loads}, 100 in all
 *                      (all 0 only when the cluster has no priority at all)
 * @param panic whether each priority is in panic
 * @param healthyAvailability per priority, the healthy availability the load was shared by
 * @param degradedAvailability per priority, the degraded availability
 */
record PriorityLoad(int[] loads, int[] degradedLoads, boolean[] panic, int[] healthyAvailability,
                    int[] degradedAvailability) {

    /**
     * @param healthy per priority, the healthy hosts (not degraded, not ejected, not excluded)
     * @param degraded per priority, the degraded hosts (not ejected)
     * @param hosts per priority, the hosts that count for availability: all but the excluded ones
     * @param all per priority, all hosts, excluded ones too (what total panic shares load by)
     * @param overprovisioningFactor percent, 140 by default
     * @param panicThreshold percent, 0 disables panic
     */
    static PriorityLoad compute(int[] healthy, int[] degraded, int[] hosts, int[] all, int overprovisioningFactor,
                                double panicThreshold) {
        return compute(healthy, degraded, hosts, all, overprovisioningFactor, panicThreshold, null);
    }

    /**
     * As {@link #compute(int[], int[], int[], int[], int, double)}, the availability of each priority computed from
     * {@code weights} when given ({@code weighted_priority_health}): per priority, the weight of its healthy hosts
     * [0], of its degraded hosts [1] and of the hosts that count [2]. Panic is judged by host counts all the same.
     */
    static PriorityLoad compute(int[] healthy, int[] degraded, int[] hosts, int[] all, int overprovisioningFactor,
                                double panicThreshold, long[][] weights) {
        int n = hosts.length;
        int[] loads = new int[n];
        int[] degradedLoads = new int[n];
        boolean[] panic = new boolean[n];
        if (n == 0) {
            return new PriorityLoad(loads, degradedLoads, panic, new int[0], new int[0]);
        }
        int[] healthyAvailability = new int[n];
        int[] degradedAvailability = new int[n];
        int sum = 0;
        for (int i = 0; i < n; i++) {
            healthyAvailability[i] = weights == null ? availability(healthy[i], hosts[i], overprovisioningFactor)
                    : availability(weights[0][i], weights[2][i], overprovisioningFactor);
            degradedAvailability[i] = weights == null ? availability(degraded[i], hosts[i], overprovisioningFactor)
                    : availability(weights[1][i], weights[2][i], overprovisioningFactor);
            sum += healthyAvailability[i] + degradedAvailability[i];
        }
        int normalizedTotal = Math.min(100, sum);
        if (normalizedTotal > 0) {
            share(loads, degradedLoads, healthyAvailability, degradedAvailability, normalizedTotal);
        }
        if (panicThreshold == 0 && normalizedTotal == 0) {
            loads[0] = 100;
            return new PriorityLoad(loads, degradedLoads, panic, healthyAvailability, degradedAvailability);
        }
        boolean allPanic = true;
        for (int i = 0; i < n; i++) {
            double usablePercent = hosts[i] == 0 ? 0 : 100.0 * (healthy[i] + degraded[i]) / hosts[i];
            panic[i] = normalizedTotal != 100 && usablePercent < panicThreshold;
            allPanic &= panic[i];
        }
        if (allPanic) {
            long count = Arrays.stream(all).asLongStream().sum();
            Arrays.fill(loads, 0);
            Arrays.fill(degradedLoads, 0);
            if (count == 0) {
                loads[0] = 100;
            } else {
                int remaining = 100;
                int firstNonEmpty = -1;
                for (int i = 0; i < n; i++) {
                    if (all[i] > 0 && firstNonEmpty < 0) {
                        firstNonEmpty = i;
                    }
                    loads[i] = (int) (100L * all[i] / count);
                    remaining -= loads[i];
                }
                loads[firstNonEmpty] += remaining;
            }
        }
        return new PriorityLoad(loads, degradedLoads, panic, healthyAvailability, degradedAvailability);
    }

    /**
     * This load with some priorities left out, as Envoy's {@code previous_priorities} retry priority recomputes it:
     * the other priorities share all requests by their availability, as {@link #compute} shares them; each priority's
     * panic stays as it is.
     *
     * @param excluded per priority, whether it is left out (a shorter array leaves the rest in)
     * @return the load, or null when the priorities left have no availability
     */
    PriorityLoad excluding(boolean[] excluded) {
        int n = loads.length;
        int[] healthy = new int[n];
        int[] degraded = new int[n];
        int sum = 0;
        for (int i = 0; i < n; i++) {
            if (i >= excluded.length || !excluded[i]) {
                healthy[i] = healthyAvailability[i];
                degraded[i] = degradedAvailability[i];
                sum += healthy[i] + degraded[i];
            }
        }
        if (sum == 0) {
            return null;
        }
        int[] shared = new int[n];
        int[] sharedDegraded = new int[n];
        share(shared, sharedDegraded, healthy, degraded, Math.min(100, sum));
        return new PriorityLoad(shared, sharedDegraded, panic, healthyAvailability, degradedAvailability);
    }

    /**
     * Shares 100 percent by availability: healthy hosts first, then degraded ones, the leftover of rounding to the
     * first priority with healthy availability (else degraded).
     */
    private static void share(int[] loads, int[] degradedLoads, int[] healthyAvailability, int[] degradedAvailability,
                              int normalizedTotal) {
        int remaining = distribute(loads, healthyAvailability, 100, normalizedTotal);
        remaining = distribute(degradedLoads, degradedAvailability, remaining, normalizedTotal);
        if (remaining > 0) {
            int firstHealthy = firstPositive(healthyAvailability);
            if (firstHealthy >= 0) {
                loads[firstHealthy] += remaining;
            } else {
                degradedLoads[firstPositive(degradedAvailability)] += remaining;
            }
        }
    }

    private static int availability(long usable, long hosts, int overprovisioningFactor) {
        return hosts == 0 ? 0 : (int) Math.min(100L, overprovisioningFactor * usable / hosts);
    }

    /** Shares {@code load} by availability, higher priorities first; returns what is left. */
    private static int distribute(int[] into, int[] availability, int load, int normalizedTotal) {
        for (int i = 0; i < into.length; i++) {
            into[i] = Math.min(load, availability[i] * 100 / normalizedTotal);
            load -= into[i];
        }
        return load;
    }

    private static int firstPositive(int[] values) {
        for (int i = 0; i < values.length; i++) {
            if (values[i] > 0) {
                return i;
            }
        }
        return -1;
    }

    /**
     * Where a draw in [0, 100) falls: the priority {@code p} for its healthy hosts, or {@code -1 - p} for its
     * degraded ones (healthy loads first, then degraded, as Envoy lays them out).
     */
    int choose(int draw) {
        int acc = 0;
        for (int i = 0; i < loads.length; i++) {
            acc += loads[i];
            if (draw < acc) {
                return i;
            }
        }
        for (int i = 0; i < degradedLoads.length; i++) {
            acc += degradedLoads[i];
            if (draw < acc) {
                return -1 - i;
            }
        }
        return 0;
    }
}
