package dev.inmesh.runtime.upstream;

import dev.inmesh.api.config.cluster.CircuitBreakers;
import dev.inmesh.runtime.stats.BreakerReadings;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The live counts behind one cluster's circuit breakers at one routing priority, checked against the
 * thresholds in force. Each {@code tryStart*} either counts the new request, retry, pending request or connection
 * and returns true, or returns false: an overflow, which the router answers with 503, {@code x-envoy-overloaded: true}
 * and response flag UO, never retrying it. Every successful {@code tryStart*} must be paired with its
 * {@code finish*}. Limits are longs: Istio's 4294967295 means no practical limit. The counts survive cluster updates;
 * new thresholds apply from the next request.
 */
public final class CircuitBreakerState implements BreakerReadings {
    private volatile CircuitBreakers.Thresholds thresholds;
    private final AtomicLong requests = new AtomicLong();
    private final AtomicLong pending = new AtomicLong();
    private final AtomicLong retries = new AtomicLong();
    private final AtomicLong connections = new AtomicLong();
    /** Connections a cluster-wide pool began to open and has not yet handed to their first request. */
    private final AtomicLong connecting = new AtomicLong();
    private final AtomicLong overflows = new AtomicLong();
    /** The connection pools the cluster's hosts keep ({@code HostPool}), under {@code max_connection_pools}. */
    private final AtomicLong pools = new AtomicLong();
    /** The {@link BreakerReadings#counted} bits of the counts that ever moved. */
    private volatile int counted;

    public CircuitBreakerState(CircuitBreakers.Thresholds thresholds) {
        this.thresholds = thresholds;
    }

    void thresholds(CircuitBreakers.Thresholds thresholds) {
        this.thresholds = thresholds;
    }

    public CircuitBreakers.Thresholds thresholds() {
        return thresholds;
    }

    /**
     * Counts an active request unless {@code max_requests} are already active: as Envoy's pool counts it, a request
     * attached to its upstream connection (taken once the connection is up, before it is sent; none while it waits).
     */
    public boolean tryStartRequest() {
        return tryAcquire(requests, thresholds.maxRequests(), REQUESTS);
    }

    public void finishRequest() {
        requests.decrementAndGet();
        moved(REQUESTS);
    }

    /**
     * Counts a retry unless {@code max_retries} are already in flight, or, with a {@code retry_budget} (which then
     * replaces {@code max_retries}, as in Envoy), its share of the requests active and pending, never less than its
     * {@code min_retry_concurrency}.
     */
    public boolean tryStartRetry() {
        return tryAcquire(retries, retryLimit(), RETRIES);
    }

    public void finishRetry() {
        retries.decrementAndGet();
        moved(RETRIES);
    }

    /**
     * Counts a request that found no connection ready for it and is to wait for one (a connection of the pool's in
     * use, or a new one being opened), unless {@code max_pending_requests} are already waiting: as Envoy's pool asks
     * its cluster's pending-request resource before it makes a pending stream (a limit of 0 refuses every request
     * with no ready connection). One count for the cluster's priority across its hosts and event loops, as Envoy
     * shares one resource manager among its workers. Each true is paired with {@link #pendingEnded()} once the
     * request has its connection, failed, or was given up.
     */
    public boolean tryStartPending() {
        return tryAcquire(pending, thresholds.maxPendingRequests(), PENDING);
    }

    /**
     * Counts a request waiting for a connection whatever the limit (a pool that holds none of its own, in tests); the
     * retry budget and the statistics read it.
     */
    public void pendingStarted() {
        pending.incrementAndGet();
        moved(PENDING);
    }

    public void pendingEnded() {
        pending.decrementAndGet();
        moved(PENDING);
    }

    /** Counts a new upstream connection unless {@code max_connections} are already open. */
    public boolean tryOpenConnection() {
        return tryAcquire(connections, thresholds.maxConnections(), CONNECTIONS);
    }

    /**
     * Counts a connection that a host's pool of a cluster of several hosts is to open, as Envoy's pool asks the
     * cluster's {@code max_connections} before it opens one: unless the connections open and being opened have
     * reached it, or always when {@code onlyOne} (the pool has no connection at all, which Envoy always lets open one,
     * so that its waiting requests are not stranded). Each true is paired with {@link #connectEnded()} once the
     * connection carries its first request or failed; it counts from then on as an open connection.
     */
    boolean tryStartConnect(boolean onlyOne) {
        while (true) {
            long n = connecting.get();
            if (!onlyOne && connections.get() + n >= thresholds.maxConnections()) {
                return false;
            }
            if (connecting.compareAndSet(n, n + 1)) {
                return true;
            }
        }
    }

    void connectEnded() {
        connecting.decrementAndGet();
    }

    /** Counts a connection the pool opened (the pool's own size limit already applied). */
    public void connectionOpened() {
        connections.incrementAndGet();
        moved(CONNECTIONS);
    }

    public void connectionClosed() {
        connections.decrementAndGet();
        moved(CONNECTIONS);
    }

    /**
     * Counts a new connection pool unless {@code max_connection_pools} are already kept, as Envoy's
     * {@code ConnPoolMap::getPool} asks its cluster's {@code connectionPools()} resource. A refusal is not counted in
     * {@link #overflows()}: the caller first tries to free an idle pool, and only then counts
     * {@code upstream_cx_pool_overflow}.
     */
    boolean tryOpenPool() {
        CircuitBreakers.Thresholds t = thresholds;
        long limit = t == null ? CircuitBreakers.Thresholds.NO_LIMIT : t.maxConnectionPools();
        while (true) {
            long n = pools.get();
            if (n >= limit) {
                return false;
            }
            if (pools.compareAndSet(n, n + 1)) {
                moved(POOLS);
                return true;
            }
        }
    }

    /**
     * Whether {@code max_connection_pools} is set below Envoy's default, which is no practical limit: a pool may then
     * be freed for another ({@code HostPool}). A read, no count: the request path asks it on every request.
     */
    boolean limitsConnectionPools() {
        CircuitBreakers.Thresholds t = thresholds;
        return t != null && t.maxConnectionPools() < CircuitBreakers.Thresholds.NO_LIMIT;
    }

    /** Counts a pool that takes the place of one just closed, or replaces one (the limit already applied). */
    void poolOpened() {
        pools.incrementAndGet();
        moved(POOLS);
    }

    void poolClosed() {
        pools.decrementAndGet();
        moved(POOLS);
    }

    @Override
    public long openConnectionPools() {
        return pools.get();
    }

    @Override
    public long maxConnectionPools() {
        return thresholds.maxConnectionPools();
    }

    @Override
    public long maxRetries() {
        return thresholds.maxRetries();
    }

    @Override
    public boolean retryBudgeted() {
        return thresholds.retryBudget() != null;
    }

    @Override
    public long retryLimit() {
        CircuitBreakers.Thresholds t = thresholds;
        CircuitBreakers.RetryBudget budget = t.retryBudget();
        return budget == null ? t.maxRetries() : Math.max(budget.minRetryConcurrency(),
                (long) (budget.budgetPercent() / 100.0 * (requests.get() + pending.get())));
    }

    @Override
    public long maxConnections() {
        return thresholds.maxConnections();
    }

    @Override
    public long maxPendingRequests() {
        return thresholds.maxPendingRequests();
    }

    @Override
    public long maxRequests() {
        return thresholds.maxRequests();
    }

    @Override
    public boolean trackRemaining() {
        return thresholds.trackRemaining();
    }

    @Override
    public long activeRequests() {
        return requests.get();
    }

    @Override
    public long pendingRequests() {
        return pending.get();
    }

    @Override
    public long activeRetries() {
        return retries.get();
    }

    @Override
    public long openConnections() {
        return connections.get();
    }

    /** How many times any breaker refused (Envoy's {@code upstream_rq_pending_overflow} and friends, summed). */
    public long overflows() {
        return overflows.get();
    }

    @Override
    public int counted() {
        return counted;
    }

    /** A count of {@code bit} moved: its open gauge follows it from now on. */
    private void moved(int bit) {
        if ((counted & bit) == 0) {
            synchronized (this) {
                counted |= bit;
            }
        }
    }

    private boolean tryAcquire(AtomicLong counter, long limit, int bit) {
        while (true) {
            long n = counter.get();
            if (n >= limit) {
                overflows.incrementAndGet();
                return false;
            }
            if (counter.compareAndSet(n, n + 1)) {
                moved(bit);
                return true;
            }
        }
    }
}
