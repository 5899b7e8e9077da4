package dev.inmesh.runtime.upstream;

import java.util.Arrays;

/**
 * Envoy's retry priority {@code envoy.retry_priorities.previous_priorities} for one request, the retry to other
 * priorities that Istio's {@code retryRemoteLocalities} asks for (with an update frequency of 2). Each attempt's host
 * is noted; from the {@code update_frequency}-th attempt on, every {@code update_frequency} attempts, the priorities
 * attempted so far are left out of the priority load the next picks use, and the other priorities share the requests
 * by their availability ({@link PriorityLoad#excluding}). So with a frequency of 2 the first two attempts use the
 * cluster's own load, the third and fourth leave out the priorities of the first two, the fifth and sixth those of
 * the first four. When no priority with available hosts is left, the attempts are forgotten and the cluster's own
 * load is used again, so that the request still finds a host.
 *
 * <p>Not thread-safe: one request's attempts are made one after another, on its context.
 */
public final class PreviousPriorities {
    private final int updateFrequency;
    private int attempts;
    private boolean[] attempted = new boolean[4];
    /** The priorities left out since the last update, or null before the first. */
    private boolean[] excluded;

    /** @param updateFrequency after how many attempts the load is recomputed, 1 or more */
    public PreviousPriorities(int updateFrequency) {
        if (updateFrequency < 1) {
            throw new IllegalArgumentException("update_frequency: " + updateFrequency + " (expected: > 0)");
        }
        this.updateFrequency = updateFrequency;
    }

    /** Notes the host an attempt of the request goes to. */
    public void attempted(Host host) {
        int p = host.priority();
        if (p >= attempted.length) {
            attempted = Arrays.copyOf(attempted, Math.max(p + 1, attempted.length * 2));
        }
        attempted[p] = true;
        attempts++;
    }

    /** The priority load of the request's next pick, given the cluster's own. */
    PriorityLoad load(PriorityLoad own) {
        if (attempts < updateFrequency) {
            return own;
        }
        if (attempts % updateFrequency == 0) {
            excluded = attempted.clone();
        }
        PriorityLoad adjusted = excluded == null ? own : own.excluding(excluded);
        if (adjusted == null) {
            // every priority with available hosts was tried: start over
            attempts = 0;
            Arrays.fill(attempted, false);
            excluded = null;
            return own;
        }
        return adjusted;
    }
}
