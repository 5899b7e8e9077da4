package dev.inmesh.runtime.stats;

/**
 * What one routing priority's circuit breakers hold and allow at this moment, read by the statistics that publish
 * them ({@code circuit_breakers.<priority>.*}). Every read is a plain read of live counts: thread-safe, allocation-free.
 */
public interface BreakerReadings {

    /** Upstream connections open, and the {@code max_connections} limit. */
    long openConnections();

    long maxConnections();

    /** Requests waiting for a connection, and the {@code max_pending_requests} limit. */
    long pendingRequests();

    long maxPendingRequests();

    /** Requests active, and the {@code max_requests} limit. */
    long activeRequests();

    long maxRequests();

    /** Retries in flight, and the limit in force: {@code max_retries}, or the {@code retry_budget}'s share. */
    long activeRetries();

    long retryLimit();

    /**
     * The {@code max_retries} threshold itself, whatever the limit in force: under a {@code retry_budget}, Envoy keeps
     * it beside the budget and its {@code rq_retry_open} still follows it.
     */
    default long maxRetries() {
        return retryLimit();
    }

    /** Whether a {@code retry_budget} sets the limit in force (Envoy then holds {@code remaining_retries} at 0). */
    default boolean retryBudgeted() {
        return false;
    }

    /** Connection pools kept, and the {@code max_connection_pools} limit. */
    long openConnectionPools();

    long maxConnectionPools();

    /** Whether the thresholds ask for {@code remaining_*} ({@code track_remaining}). */
    boolean trackRemaining();
}
