package dev.inmesh.runtime.xds.ads;

import java.time.Duration;
import java.util.Random;

/**
 * gRPC's connection back-off: the first delay is the base, each failure multiplies it by 1.6 up to the maximum, and
 * each delay is jittered by plus or minus 20 %. {@link #reset()} after a stream that worked.
 */
final class Backoff {
    static final double MULTIPLIER = 1.6;
    static final double JITTER = 0.2;

    private final long baseMillis;
    private final long maxMillis;
    private final Random random;
    private double current;

    Backoff(Duration base, Duration max, Random random) {
        this.baseMillis = Math.max(1, base.toMillis());
        this.maxMillis = Math.max(baseMillis, max.toMillis());
        this.random = random;
        this.current = baseMillis;
    }

    /** The delay before the next attempt, in milliseconds; grows for the one after. */
    long nextMillis() {
        double d = current;
        current = Math.min(maxMillis, current * MULTIPLIER);
        double jittered = d * (1 - JITTER + 2 * JITTER * random.nextDouble());
        return Math.max(1, Math.round(jittered));
    }

    void reset() {
        current = baseMillis;
    }
}
