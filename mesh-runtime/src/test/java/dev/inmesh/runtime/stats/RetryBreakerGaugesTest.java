package dev.inmesh.runtime.stats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.CircuitBreakers;
import dev.inmesh.api.config.cluster.CircuitBreakers.RoutingPriority;
import dev.inmesh.runtime.upstream.CircuitBreakerState;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.junit.jupiter.api.Test;

/**
 * The retry breaker's gauges as Envoy's resource manager keeps them: {@code rq_retry_open} follows
 * {@code max_retries} (the resource a {@code retry_budget} leaves nested beside it), and under a budget
 * {@code remaining_retries} is held at 0 (a budget's remaining share is not tracked); without a budget both follow
 * {@code max_retries}.
 */
class RetryBreakerGaugesTest {

    /** Breakers with {@code maxRetries}, a limit in force of {@code limit} (a budget's share when budgeted). */
    private static final class Readings implements BreakerReadings {
        long activeRetries;
        final long maxRetries;
        final long limit;
        final boolean budgeted;

        Readings(long maxRetries, long limit, boolean budgeted) {
            this.maxRetries = maxRetries;
            this.limit = limit;
            this.budgeted = budgeted;
        }

        @Override public long openConnections() { return 0; }
        @Override public long maxConnections() { return 1024; }
        @Override public long pendingRequests() { return 0; }
        @Override public long maxPendingRequests() { return 1024; }
        @Override public long activeRequests() { return 0; }
        @Override public long maxRequests() { return 1024; }
        @Override public long activeRetries() { return activeRetries; }
        @Override public long retryLimit() { return limit; }
        @Override public long maxRetries() { return maxRetries; }
        @Override public boolean retryBudgeted() { return budgeted; }
        @Override public long openConnectionPools() { return 0; }
        @Override public long maxConnectionPools() { return Long.MAX_VALUE; }
        @Override public boolean trackRemaining() { return true; }
    }

    private static double gauge(SimpleMeterRegistry reg, String name) {
        return reg.get("envoy_cluster_circuit_breakers_default_" + name).tag("cluster_name", "c").gauge().value();
    }

    @Test
    void underARetryBudgetTheOpenGaugeFollowsMaxRetriesAndTheRemainingOneIsZero() {
        var reg = new SimpleMeterRegistry();
        Readings budget = new Readings(3, 5, true); // min_retry_concurrency 5, max_retries 3
        MeshMetrics.create(reg, WorkloadInfo.UNKNOWN).upstream("c").circuitBreakers("default", budget);
        assertEquals(0, gauge(reg, "remaining_retries"), "idle");
        assertEquals(0, gauge(reg, "rq_retry_open"));
        budget.activeRetries = 3;
        assertEquals(0, gauge(reg, "remaining_retries"));
        assertEquals(1, gauge(reg, "rq_retry_open"), "max_retries reached, the budget not");
    }

    @Test
    void withoutABudgetBothFollowMaxRetries() {
        var reg = new SimpleMeterRegistry();
        Readings plain = new Readings(3, 3, false);
        MeshMetrics.create(reg, WorkloadInfo.UNKNOWN).upstream("c").circuitBreakers("default", plain);
        assertEquals(3, gauge(reg, "remaining_retries"));
        plain.activeRetries = 2;
        assertEquals(1, gauge(reg, "remaining_retries"));
        assertEquals(0, gauge(reg, "rq_retry_open"));
        plain.activeRetries = 3;
        assertEquals(1, gauge(reg, "rq_retry_open"));
    }

    /** The same through a cluster's breakers ({@code track_remaining}), retries taken as the router takes them. */
    @Test
    void aClustersBreakersUnderABudgetAndWithoutOne() {
        var reg = new SimpleMeterRegistry();
        CircuitBreakerState budgeted = new CircuitBreakerState(new CircuitBreakers.Thresholds(RoutingPriority.DEFAULT,
                1024, 1024, 1024, 3, new CircuitBreakers.RetryBudget(20, 5), true));
        MeshMetrics.create(reg, WorkloadInfo.UNKNOWN).upstream("c").circuitBreakers("default", budgeted);
        for (int i = 0; i < 3; i++) {
            assertTrue(budgeted.tryStartRetry());
        }
        assertEquals(1, gauge(reg, "rq_retry_open"), "max_retries reached");
        assertEquals(0, gauge(reg, "remaining_retries"));
        assertTrue(budgeted.tryStartRetry(), "the budget's min_retry_concurrency, not max_retries, limits");
        assertTrue(budgeted.tryStartRetry());
        assertFalse(budgeted.tryStartRetry());

        var reg2 = new SimpleMeterRegistry();
        CircuitBreakerState plain = new CircuitBreakerState(new CircuitBreakers.Thresholds(RoutingPriority.DEFAULT,
                1024, 1024, 1024, 3, null, true));
        MeshMetrics.create(reg2, WorkloadInfo.UNKNOWN).upstream("c").circuitBreakers("default", plain);
        assertEquals(3, gauge(reg2, "remaining_retries"));
        assertTrue(plain.tryStartRetry());
        assertTrue(plain.tryStartRetry());
        assertEquals(1, gauge(reg2, "remaining_retries"));
        assertEquals(0, gauge(reg2, "rq_retry_open"));
        assertTrue(plain.tryStartRetry());
        assertFalse(plain.tryStartRetry());
        assertEquals(1, gauge(reg2, "rq_retry_open"));
        assertEquals(0, gauge(reg2, "remaining_retries"));
    }

    /**
     * Envoy sets a breaker's open gauge only as its count goes up or down: with {@code max_connection_pools} and
     * {@code max_requests} at 0, nothing is ever counted and {@code cx_pool_open} and {@code rq_open} stay 0, refusals
     * and all; a limit reached by a count reads 1.
     */
    @Test
    void anOpenGaugeIsZeroUntilItsCountFirstMoves() {
        var reg = new SimpleMeterRegistry();
        CircuitBreakerState zero = new CircuitBreakerState(new CircuitBreakers.Thresholds(RoutingPriority.DEFAULT,
                0, 0, 0, 0, null, true, 0));
        MeshMetrics.create(reg, WorkloadInfo.UNKNOWN).upstream("c").circuitBreakers("default", zero);
        for (String open : new String[] {"cx_open", "rq_pending_open", "rq_open", "rq_retry_open", "cx_pool_open"}) {
            assertEquals(0, gauge(reg, open), open);
        }
        assertFalse(zero.tryStartRequest());
        assertFalse(zero.tryStartRetry());
        assertFalse(zero.tryStartPending());
        assertFalse(zero.tryOpenConnection());
        for (String open : new String[] {"cx_open", "rq_pending_open", "rq_open", "rq_retry_open", "cx_pool_open"}) {
            assertEquals(0, gauge(reg, open), open + " after a refusal");
        }

        var reg2 = new SimpleMeterRegistry();
        CircuitBreakerState one = new CircuitBreakerState(new CircuitBreakers.Thresholds(RoutingPriority.DEFAULT,
                1024, 1024, 1, 3, null, true, 0));
        MeshMetrics.create(reg2, WorkloadInfo.UNKNOWN).upstream("c").circuitBreakers("default", one);
        assertTrue(one.tryStartRequest());
        assertEquals(1, gauge(reg2, "rq_open"));
        one.finishRequest();
        assertEquals(0, gauge(reg2, "rq_open"));
        assertEquals(0, gauge(reg2, "cx_pool_open"), "no pool counted");
    }
}
