package dev.inmesh.runtime.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.CircuitBreakers;
import dev.inmesh.api.config.cluster.CircuitBreakers.RoutingPriority;
import org.junit.jupiter.api.Test;

class CircuitBreakerStateTest {

    @Test
    void envoysDefaultsAllow1024RequestsAndThreeRetries() {
        CircuitBreakerState cb = new CircuitBreakerState(CircuitBreakers.DEFAULTS.forPriority(RoutingPriority.DEFAULT));
        for (int i = 0; i < 1024; i++) {
            assertTrue(cb.tryStartRequest());
        }
        assertFalse(cb.tryStartRequest());
        for (int i = 0; i < 3; i++) {
            assertTrue(cb.tryStartRetry());
        }
        assertFalse(cb.tryStartRetry());
        assertEquals(2, cb.overflows());
    }

    @Test
    void aFinishedRequestMakesRoomForTheNext() {
        CircuitBreakerState cb = new CircuitBreakerState(
                new CircuitBreakers.Thresholds(RoutingPriority.DEFAULT, 1, 1, 1, 1));
        assertTrue(cb.tryStartRequest());
        assertFalse(cb.tryStartRequest());
        cb.finishRequest();
        assertTrue(cb.tryStartRequest());
        cb.pendingStarted();
        assertTrue(cb.tryOpenConnection());
        assertFalse(cb.tryOpenConnection());
        assertEquals(1, cb.activeRequests());
        assertEquals(1, cb.pendingRequests());
        assertEquals(1, cb.openConnections());
    }

    @Test
    void istiosUnlimitedThresholdsNeverOverflow() {
        long max = 4_294_967_295L;
        CircuitBreakerState cb = new CircuitBreakerState(
                new CircuitBreakers.Thresholds(RoutingPriority.DEFAULT, max, max, max, max));
        for (int i = 0; i < 100_000; i++) {
            assertTrue(cb.tryStartRequest());
            assertTrue(cb.tryStartRetry());
        }
        assertEquals(0, cb.overflows());
    }

    @Test
    void aRetryBudgetReplacesMaxRetriesWithAShareOfTheActiveRequestsButNeverFewerThanItsMinimum() {
        CircuitBreakerState cb = new CircuitBreakerState(new CircuitBreakers.Thresholds(RoutingPriority.DEFAULT,
                1024, 1024, 1024, 0, new CircuitBreakers.RetryBudget(20, 3)));
        for (int i = 0; i < 3; i++) {
            assertTrue(cb.tryStartRetry(), "min_retry_concurrency allows 3 with no request active");
        }
        assertFalse(cb.tryStartRetry());
        for (int i = 0; i < 25; i++) {
            assertTrue(cb.tryStartRequest());
        }
        assertTrue(cb.tryStartRetry(), "20% of 25 active requests: 5 retries");
        assertTrue(cb.tryStartRetry());
        assertFalse(cb.tryStartRetry());
        assertEquals(5, cb.activeRetries());
        for (int i = 0; i < 5; i++) {
            cb.pendingStarted();
        }
        assertEquals(6, cb.retryLimit(), "20% of 25 active and 5 pending requests");
        assertTrue(cb.tryStartRetry());
        assertFalse(cb.tryStartRetry());
    }

    @Test
    void aZeroLimitOverflowsAtOnce() {
        CircuitBreakerState cb = new CircuitBreakerState(
                new CircuitBreakers.Thresholds(RoutingPriority.HIGH, 0, 0, 0, 0));
        assertFalse(cb.tryStartRequest());
        assertFalse(cb.tryStartRetry());
    }
}
