package dev.inmesh.runtime.upstream;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;

/**
 * A host's request counters. The router calls {@link #requestStarted()} when it sends a request to the host and
 * {@link #requestFinished()} when the exchange ends, however it ends; LEAST_REQUEST reads {@link #activeRequests()}.
 * The counters belong to the host and survive EDS updates that keep it.
 */
public final class HostStats {
    private final AtomicInteger active = new AtomicInteger();
    private final LongAdder total = new LongAdder();

    public void requestStarted() {
        active.incrementAndGet();
        total.increment();
    }

    public void requestFinished() {
        active.decrementAndGet();
    }

    /** Requests in flight now. */
    public int activeRequests() {
        return active.get();
    }

    /** Requests sent since the host was first seen. */
    public long totalRequests() {
        return total.sum();
    }
}
