package dev.inmesh.runtime.xds.ads;

import java.time.Duration;
import java.util.Random;

/**
 * Envoy's back-off for its xDS stream, fully jittered: each delay is drawn at random from zero up to (not including)
 * the interval, which starts at the base (Envoy's 500 ms) and doubles after each attempt up to the maximum (30 s).
 * {@link #reset()} once a response has arrived on the stream.
 */
public final class Backoff {
    private final long baseMillis;
    private final long maxMillis;
    private final Random random;
    private long current;

    public Backoff(Duration base, Duration max, Random random) {
        this.baseMillis = Math.max(1, base.toMillis());
        this.maxMillis = Math.max(baseMillis, max.toMillis());
        this.random = random;
        this.current = baseMillis;
    }

    /** The delay before the next attempt, in milliseconds, in [0, interval); the interval grows for the next. */
    public long nextMillis() {
        long interval = current;
        current = Math.min(maxMillis, current * 2);
        return (long) (random.nextDouble() * interval);
    }

    public void reset() {
        current = baseMillis;
    }
}
