package dev.inmesh.runtime.upstream;

import java.util.Arrays;

/**
 * Envoy's priority load and panic computation, with integer percentages as Envoy computes them. A priority's health
 * is {@code min(100, overprovisioning_factor × available / total)}; their sum capped at 100 is the normalised total
 * health; each priority in turn takes {@code health × 100 / normalised_total} of what load is left, and rounding
 * leftovers go to the first priority with any health. Below a normalised total of 100, a priority whose available
 * share is under the panic threshold is in panic (all its hosts are used); when all are, load follows host counts.
 *
 * @param loads percent of requests per priority, summing to 100 (all 0 only when the cluster has no priority at all)
 * @param panic whether each priority is in panic
 */
record PriorityLoad(int[] loads, boolean[] panic) {

    /**
     * @param available per priority, the hosts a balancer may pick outside panic
     * @param total per priority, all hosts
     * @param overprovisioningFactor percent, 140 by default
     * @param panicThreshold percent, 0 disables panic
     */
    static PriorityLoad compute(int[] available, int[] total, int overprovisioningFactor, double panicThreshold) {
        int n = total.length;
        int[] loads = new int[n];
        boolean[] panic = new boolean[n];
        if (n == 0) {
            return new PriorityLoad(loads, panic);
        }
        int[] health = new int[n];
        int sum = 0;
        for (int i = 0; i < n; i++) {
            health[i] = total[i] == 0 ? 0
                    : (int) Math.min(100L, (long) overprovisioningFactor * available[i] / total[i]);
            sum += health[i];
        }
        int normalizedTotal = Math.min(100, sum);
        if (normalizedTotal > 0) {
            int remaining = 100;
            int firstAvailable = -1;
            for (int i = 0; i < n; i++) {
                if (health[i] > 0 && firstAvailable < 0) {
                    firstAvailable = i;
                }
                loads[i] = Math.min(remaining, health[i] * 100 / normalizedTotal);
                remaining -= loads[i];
            }
            loads[firstAvailable] += remaining;
        }
        if (panicThreshold == 0 && normalizedTotal == 0) {
            loads[0] = 100;
            return new PriorityLoad(loads, panic);
        }
        boolean allPanic = true;
        for (int i = 0; i < n; i++) {
            double availablePercent = total[i] == 0 ? 0 : 100.0 * available[i] / total[i];
            panic[i] = normalizedTotal != 100 && availablePercent < panicThreshold;
            allPanic &= panic[i];
        }
        if (allPanic) {
            long hosts = Arrays.stream(total).asLongStream().sum();
            Arrays.fill(loads, 0);
            if (hosts == 0) {
                loads[0] = 100;
            } else {
                int remaining = 100;
                int firstNonEmpty = -1;
                for (int i = 0; i < n; i++) {
                    if (total[i] > 0 && firstNonEmpty < 0) {
                        firstNonEmpty = i;
                    }
                    loads[i] = (int) (100L * total[i] / hosts);
                    remaining -= loads[i];
                }
                loads[firstNonEmpty] += remaining;
            }
        }
        return new PriorityLoad(loads, panic);
    }

    /** The priority a draw in [0, 100) falls into. */
    int choose(int draw) {
        int acc = 0;
        for (int i = 0; i < loads.length; i++) {
            acc += loads[i];
            if (draw < acc) {
                return i;
            }
        }
        return 0;
    }
}
