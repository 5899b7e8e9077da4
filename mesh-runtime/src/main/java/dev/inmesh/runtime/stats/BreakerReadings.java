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

    /** Connection pools kept, and the {@code max_connection_pools} limit. */
    long openConnectionPools();

    long maxConnectionPools();

    /** Whether the thresholds ask for {@code remaining_*} ({@code track_remaining}). */
    boolean trackRemaining();
}
