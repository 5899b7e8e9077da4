package dev.inmesh.runtime.router;

import io.vertx.core.Vertx;

/**
 * A timeout that activity pushes back: it fires once {@code millis} pass without a {@link #touch()}. Activity costs
 * a clock read, not a timer: when the timer is due it checks when the last activity was and, if that was recent,
 * waits only for the rest. One Vert.x timer is pending at a time, until {@link #cancel()} or the firing.
 * Used on the exchange's context only.
 */
final class IdleTimer {
    private final Vertx vertx;
    private final long millis;
    private final Runnable onIdle;
    private long lastNanos;
    private long timer = -1;

    IdleTimer(Vertx vertx, long millis, Runnable onIdle) {
        this.vertx = vertx;
        this.millis = Math.max(1, millis);
        this.onIdle = onIdle;
    }

    /** Starts (or restarts) the wait. */
    IdleTimer start() {
        cancel();
        lastNanos = System.nanoTime();
        timer = vertx.setTimer(millis, this::due);
        return this;
    }

    /** Activity: the wait begins again from now. */
    void touch() {
        lastNanos = System.nanoTime();
    }

    private void due(long id) {
        if (id != timer) {
            return;
        }
        long idle = (System.nanoTime() - lastNanos) / 1_000_000;
        if (idle < millis) {
            timer = vertx.setTimer(millis - idle, this::due);
            return;
        }
        timer = -1;
        onIdle.run();
    }

    /** Stops it; it will not fire. */
    void cancel() {
        if (timer >= 0) {
            vertx.cancelTimer(timer);
            timer = -1;
        }
    }

    /** Whether a timer is pending (tests check that none is left behind). */
    boolean pending() {
        return timer >= 0;
    }
}
