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

    /** {@link #counted} bits: a connection, pending request, request, retry or connection pool was counted. */
    int CONNECTIONS = 1;
    int PENDING = 2;
    int REQUESTS = 4;
    int RETRIES = 8;
    int POOLS = 16;

    /**
     * Which of the counts ({@link #CONNECTIONS}, {@link #PENDING}, {@link #REQUESTS}, {@link #RETRIES},
     * {@link #POOLS}) ever took or gave back one: Envoy sets a breaker's {@code *_open} gauge only as its count goes
     * up or down, so one whose count never moved reads 0 whatever its limit (a limit of 0 refuses every one, and so
     * keeps it 0). By default, all.
     */
    default int counted() {
        return CONNECTIONS | PENDING | REQUESTS | RETRIES | POOLS;
    }
}
