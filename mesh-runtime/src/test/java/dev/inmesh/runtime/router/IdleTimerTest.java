package dev.inmesh.runtime.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Context;
import io.vertx.core.Vertx;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The idle timer on an event loop (the timers of one duration in one queue behind one task of the loop's) and off
 * one (a Vert.x timer each): it never fires before its time since the last activity, activity pushes it back, a
 * cancel stops it, also when what fired just before it cancels it, and it fires on the context it was started on.
 */
class IdleTimerTest {
    private final Vertx vertx = Vertx.vertx();

    @AfterEach
    void close() throws Exception {
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** Runs {@code task} on {@code ctx} and waits for it. */
    private static <T> T on(Context ctx, java.util.concurrent.Callable<T> task) throws Exception {
        CompletableFuture<T> f = new CompletableFuture<>();
        ctx.runOnContext(v -> {
            try {
                f.complete(task.call());
            } catch (Exception e) {
                f.completeExceptionally(e);
            }
        });
        return f.get(10, TimeUnit.SECONDS);
    }

    @Test
    void timersOfOneLoopFireNoSoonerThanTheirIdleTimeAfterTheirLastActivityAndNotOnceCancelled() throws Exception {
        Context ctx = vertx.getOrCreateContext();
        Context other = vertx.getOrCreateContext(); // another context, most likely on the same loop (two cores)
        Map<String, Long> fired = new ConcurrentHashMap<>();
        Map<String, Context> firedOn = new ConcurrentHashMap<>();
        CountDownLatch two = new CountDownLatch(2);
        long start = System.nanoTime();
        java.util.function.BiFunction<String, Context, IdleTimer> timer = (name, c) -> new IdleTimer(vertx, 150, () -> {
            fired.put(name, System.nanoTime() - start);
            firedOn.put(name, Vertx.currentContext());
            two.countDown();
        });
        IdleTimer plain = on(ctx, () -> timer.apply("plain", ctx).start());
        IdleTimer touched = on(ctx, () -> timer.apply("touched", ctx).start());
        IdleTimer cancelled = on(other, () -> timer.apply("cancelled", other).start());
        assertTrue(plain.pending() && touched.pending() && cancelled.pending());
        Thread.sleep(80);
        long touchedAt = System.nanoTime() - start;
        on(ctx, () -> {
            touched.touch();
            return null;
        });
        on(other, () -> {
            cancelled.cancel();
            return null;
        });
        assertFalse(cancelled.pending());
        assertTrue(two.await(10, TimeUnit.SECONDS));
        Thread.sleep(300); // time for the cancelled one to fire if it were going to
        assertTrue(fired.containsKey("plain") && fired.containsKey("touched"), fired.toString());
        assertFalse(fired.containsKey("cancelled"), fired.toString());
        assertTrue(fired.get("plain") >= TimeUnit.MILLISECONDS.toNanos(150), fired.toString());
        assertTrue(fired.get("touched") >= touchedAt + TimeUnit.MILLISECONDS.toNanos(150), fired.toString());
        assertTrue(fired.get("touched") > fired.get("plain"), fired.toString());
        assertSame(ctx, firedOn.get("plain"));
        assertSame(ctx, firedOn.get("touched"));
        assertFalse(plain.pending() || touched.pending());
    }

    @Test
    void aTimerCancelledByTheOneThatFiredJustBeforeItDoesNotFire() throws Exception {
        Context ctx = vertx.getOrCreateContext();
        List<String> fired = new CopyOnWriteArrayList<>();
        IdleTimer[] timers = new IdleTimer[2];
        CountDownLatch done = new CountDownLatch(1);
        on(ctx, () -> {
            // started in the same instant: due together, taken off the queue by one run of its task
            timers[0] = new IdleTimer(vertx, 50, () -> {
                fired.add("first");
                timers[1].cancel();
                vertx.setTimer(200, id -> done.countDown());
            }).start();
            timers[1] = new IdleTimer(vertx, 50, () -> fired.add("second")).start();
            return null;
        });
        assertTrue(done.await(10, TimeUnit.SECONDS));
        assertEquals(List.of("first"), fired);
        assertFalse(timers[1].pending());
    }

    @Test
    void aTimerStartedOffAnEventLoopFiresOnAVertxTimer() throws Exception {
        CountDownLatch fired = new CountDownLatch(1);
        long start = System.nanoTime();
        long[] at = new long[1];
        IdleTimer t = new IdleTimer(vertx, 60, () -> {
            at[0] = System.nanoTime() - start;
            fired.countDown();
        }).start(); // from the test's thread
        assertTrue(t.pending());
        assertTrue(fired.await(10, TimeUnit.SECONDS));
        assertTrue(at[0] >= TimeUnit.MILLISECONDS.toNanos(60));
        assertFalse(t.pending());
    }
}
