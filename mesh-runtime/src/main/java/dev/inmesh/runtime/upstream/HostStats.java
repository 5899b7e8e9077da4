package dev.inmesh.runtime.upstream;

import java.util.concurrent.atomic.LongAdder;

/**
 * A host's request counters. The router calls {@link #requestStarted()} when it sends a request to the host and
 * {@link #requestFinished()} when the exchange ends, however it ends; LEAST_REQUEST reads {@link #activeRequests()}.
 * The counters belong to the host and survive EDS updates that keep it. The count of active requests lives in the
 * {@link Host} object itself, so that a LEAST_REQUEST pick reads it without following another reference.
 */
public final class HostStats {
    private final Host host;
    private final LongAdder total = new LongAdder();

    HostStats(Host host) {
        this.host = host;
    }

    public void requestStarted() {
        host.addActive(1);
        total.increment();
    }

    public void requestFinished() {
        host.addActive(-1);
    }

    /** Requests in flight now. */
    public int activeRequests() {
        return host.activeRequests();
    }

    /** Requests sent since the host was first seen. */
    public long totalRequests() {
        return total.sum();
    }
}
