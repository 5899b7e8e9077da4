package dev.inmesh.runtime.upstream;

import java.time.Duration;

/** A clock for tests, moved by hand. */
final class FakeTicker implements Ticker {
    private long now = 1_000_000_000L;

    @Override
    public long nanoTime() {
        return now;
    }

    void advance(Duration d) {
        now += d.toNanos();
    }
}
