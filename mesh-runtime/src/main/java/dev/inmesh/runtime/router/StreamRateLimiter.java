package dev.inmesh.runtime.router;

import io.vertx.core.Context;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.internal.ContextInternal;
import java.util.ArrayDeque;
import java.util.function.Consumer;

/**
 * The fault filter's response rate limit on one stream, as Envoy's {@code StreamRateLimiter}: a token bucket of
 * {@code kbps * 1024} bytes, filled at that many bytes a second and starting with one fill interval's worth (50 ms),
 * through which the body goes to a sink. What a write brings beyond the tokens held is kept and released on the next
 * fills, every 50 ms, on the stream's own timers; the end of the body (and with it the trailers) waits until all of
 * it went on. Nothing blocks: a source that writes too much is told to pause above Envoy's default buffer limit
 * ({@link #HIGH_WATERMARK}) and to go on below half of it, as a watermark buffer. The headers do not pass through it
 * (Envoy delays none). A stream that goes away cancels it: its timer stops and what it held goes nowhere.
 *
 * <p>One per stream, used on the stream's context only (its timers run there too).
 */
public final class StreamRateLimiter {
    /** Envoy's fill interval: tokens come, and held bytes go, every 50 ms. */
    public static final long FILL_INTERVAL_MILLIS = 50;
    /** Envoy's default per-connection buffer limit (1 MiB), above which the source is asked to pause. */
    static final long HIGH_WATERMARK = 1024 * 1024;

    /** The stream's monotonic clock and timers: its context's, or a test's. */
    public interface Clock {
        long nanoTime();

        long setTimer(long delayMillis, Runnable task);

        void cancelTimer(long id);

        /** The clock of a stream's context: {@link System#nanoTime()}, and timers that fire on that context. */
        static Clock of(Context context) {
            ContextInternal ctx = (ContextInternal) context;
            return new Clock() {
                @Override
                public long nanoTime() {
                    return System.nanoTime();
                }

                @Override
                public long setTimer(long delayMillis, Runnable task) {
                    return ctx.setTimer(Math.max(1, delayMillis), id -> task.run()); // Vert.x's least delay: 1 ms
                }

                @Override
                public void cancelTimer(long id) {
                    ctx.owner().cancelTimer(id);
                }
            };
        }
    }

    private final Clock clock;
    private final Consumer<Buffer> sink;
    private final Runnable above;
    private final Runnable below;
    private final double bytesPerSecond;
    private double tokens;
    private long lastFill;
    private final ArrayDeque<Buffer> held = new ArrayDeque<>();
    private long heldBytes;
    private Runnable ended;
    private long timer = -1;
    private boolean paused;
    private boolean cancelled;
    private boolean full;

    /**
     * @param kbps the rate, in KiB per second (at least 1)
     * @param sink where the body goes, at that rate
     * @param above asks the source to pause: more than {@link #HIGH_WATERMARK} bytes are held
     * @param below tells the source it may go on: less than half of that are held again
     */
    public StreamRateLimiter(long kbps, Clock clock, Consumer<Buffer> sink, Runnable above, Runnable below) {
        this.clock = clock;
        this.sink = sink;
        this.above = above;
        this.below = below;
        this.bytesPerSecond = kbps * 1024.0;
        this.tokens = Math.floor(bytesPerSecond * FILL_INTERVAL_MILLIS / 1000); // one interval's worth, as Envoy's
        this.lastFill = clock.nanoTime();
    }

    /** Takes a chunk of the body: it goes on at the next fill, as much as the tokens allow, the rest later. */
    public void write(Buffer data) {
        if (cancelled || data.length() == 0) {
            return;
        }
        held.add(data);
        heldBytes += data.length();
        if (heldBytes > HIGH_WATERMARK) {
            full = true;
            above.run(); // again while above: a source resumed for another reason pauses again
        }
        schedule(0);
    }

    /** The body ended: {@code then} (its end, its trailers) runs once everything held went on. */
    public void end(Runnable then) {
        if (cancelled) {
            return;
        }
        if (heldBytes == 0) {
            then.run();
        } else {
            ended = then;
        }
    }

    /** Whether more than {@link #HIGH_WATERMARK} bytes are held (the source should wait for {@code below}). */
    public boolean writeQueueFull() {
        return full;
    }

    /** The sink cannot take more for now: nothing goes on until {@link #resume()}. */
    public void pause() {
        paused = true;
    }

    /** The sink takes the body again. */
    public void resume() {
        paused = false;
        schedule(0);
    }

    /** The stream went away: the timer stops, what is held is dropped, and nothing more goes on. */
    public void cancel() {
        cancelled = true;
        if (timer != -1) {
            clock.cancelTimer(timer);
            timer = -1;
        }
        held.clear();
        heldBytes = 0;
        ended = null;
    }

    private void schedule(long delayMillis) {
        if (timer == -1 && !paused && !cancelled && heldBytes > 0) {
            timer = clock.setTimer(delayMillis, this::fill);
        }
    }

    /** Envoy's token timer: what the tokens allow goes on; if anything is still held, again in 50 ms. */
    private void fill() {
        timer = -1;
        if (cancelled || paused) {
            return;
        }
        Buffer out = take(consume(heldBytes));
        schedule(FILL_INTERVAL_MILLIS);
        if (out.length() > 0) {
            sink.accept(out);
        }
        if (full && heldBytes < HIGH_WATERMARK / 2 && !cancelled) {
            full = false;
            below.run();
        }
        if (heldBytes == 0 && ended != null && !cancelled) {
            Runnable then = ended;
            ended = null;
            then.run();
        }
    }

    /** Envoy's token bucket: filled for the time since the last fill (up to one second's worth), then drawn from. */
    private long consume(long wanted) {
        long now = clock.nanoTime();
        tokens = Math.min(bytesPerSecond, tokens + (now - lastFill) / 1e9 * bytesPerSecond);
        lastFill = now;
        long n = Math.min(wanted, (long) Math.floor(tokens));
        tokens -= n;
        return n;
    }

    /** The first {@code n} bytes held. */
    private Buffer take(long n) {
        Buffer first = held.peek();
        if (first != null && first.length() == n) {
            heldBytes -= n;
            return held.poll(); // a chunk that goes whole goes as it came
        }
        Buffer out = Buffer.buffer((int) n);
        while (n > 0) {
            Buffer b = held.poll();
            if (b.length() <= n) {
                out.appendBuffer(b);
                n -= b.length();
                heldBytes -= b.length();
            } else {
                out.appendBuffer(b, 0, (int) n);
                held.addFirst(b.getBuffer((int) n, b.length()));
                heldBytes -= n;
                n = 0;
            }
        }
        return out;
    }
}
