package dev.inmesh.runtime.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.buffer.Buffer;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/** Envoy's stream rate limiter on a manual clock: what goes on at each 50 ms fill, the end after the body. */
class StreamRateLimiterTest {

    /** A clock that moves only when told, and runs the timers that are due. */
    private static final class ManualClock implements StreamRateLimiter.Clock {
        long now;
        long nextId;
        final TreeMap<Long, Object[]> timers = new TreeMap<>(); // id -> {due, task}

        @Override
        public long nanoTime() {
            return now;
        }

        @Override
        public long setTimer(long delayMillis, Runnable task) {
            timers.put(++nextId, new Object[] {now + delayMillis * 1_000_000, task});
            return nextId;
        }

        @Override
        public void cancelTimer(long id) {
            timers.remove(id);
        }

        /** Moves on by {@code millis}, running each timer due by then. */
        void advance(long millis) {
            long until = now + millis * 1_000_000;
            while (true) {
                Long id = timers.entrySet().stream().filter(e -> (long) e.getValue()[0] <= until)
                        .min((a, b) -> Long.compare((long) a.getValue()[0], (long) b.getValue()[0]))
                        .map(java.util.Map.Entry::getKey).orElse(null);
                if (id == null) {
                    break;
                }
                Object[] t = timers.remove(id);
                now = Math.max(now, (long) t[0]);
                ((Runnable) t[1]).run();
            }
            now = until;
        }
    }

    private final ManualClock clock = new ManualClock();
    private final List<String> events = new ArrayList<>();
    private final StreamRateLimiter limiter = new StreamRateLimiter(2, clock,
            b -> events.add("data " + b.length()), () -> events.add("above"), () -> events.add("below"));

    @Test
    void releasesOneFiftyMillisecondShareOfTheRateAtEachFill() {
        limiter.write(Buffer.buffer(new byte[1024]));
        assertEquals(List.of(), events, "nothing goes on in the write itself");
        clock.advance(0);
        // 2 KiB/s: the bucket starts with one interval's worth, 2048 * 50 / 1000 bytes (whole, as Envoy's)
        assertEquals(List.of("data 102"), events);
        clock.advance(50);
        assertEquals(List.of("data 102", "data 102"), events); // 102.4 tokens came, 0.4 stay
        clock.advance(100);
        assertEquals(List.of("data 102", "data 102", "data 102", "data 103"), events); // the fractions add up
        clock.advance(400);
        long sent = events.stream().mapToLong(e -> Long.parseLong(e.substring(5))).sum();
        assertEquals(1024, sent, events.toString());
        assertEquals(11, events.size(), "102 bytes, then 102.4 a fill: 1024 bytes take 11 fills");
        assertTrue(clock.timers.isEmpty(), "no timer once nothing is held");
    }

    @Test
    void theEndAndItsTrailersGoOnOnlyAfterTheBodyHeld() {
        limiter.write(Buffer.buffer(new byte[300]));
        limiter.end(() -> events.add("end"));
        clock.advance(50);
        assertEquals(List.of("data 102", "data 102"), events);
        clock.advance(50);
        assertEquals(List.of("data 102", "data 102", "data 96", "end"), events);
    }

    @Test
    void anEndWithNothingHeldGoesOnAtOnce() {
        limiter.end(() -> events.add("end"));
        assertEquals(List.of("end"), events);
    }

    @Test
    void aStreamThatGoesAwayCancelsTheTimerAndDropsWhatIsHeld() {
        limiter.write(Buffer.buffer(new byte[1024]));
        limiter.end(() -> events.add("end"));
        clock.advance(0);
        limiter.cancel();
        assertTrue(clock.timers.isEmpty(), "the timer is cancelled");
        clock.advance(1000);
        limiter.write(Buffer.buffer(new byte[10]));
        clock.advance(1000);
        assertEquals(List.of("data 102"), events);
    }

    @Test
    void aPausedSinkGetsNothingUntilItResumesAndTheBucketHoldsAtMostOneSecond() {
        limiter.write(Buffer.buffer(new byte[5000]));
        limiter.pause();
        clock.advance(3000);
        assertEquals(List.of(), events);
        limiter.resume();
        clock.advance(0);
        assertEquals(List.of("data 2048"), events, "a bucket of kbps * 1024 bytes");
    }

    @Test
    void aSourceThatWritesPastTheBufferLimitIsAskedToPauseThenToGoOn() {
        StreamRateLimiter fast = new StreamRateLimiter(10240, clock, b -> events.add("data " + b.length()),
                () -> events.add("above"), () -> events.add("below"));
        fast.write(Buffer.buffer(new byte[(int) StreamRateLimiter.HIGH_WATERMARK]));
        assertFalse(fast.writeQueueFull());
        fast.write(Buffer.buffer(new byte[1]));
        assertTrue(fast.writeQueueFull());
        assertEquals(List.of("above"), events);
        clock.advance(100);
        assertTrue(events.contains("below"), events.toString());
        assertFalse(fast.writeQueueFull());
    }
}
