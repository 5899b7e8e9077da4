package dev.inmesh.runtime.router;

import io.netty.channel.EventLoop;
import io.netty.util.collection.LongObjectHashMap;
import io.netty.util.concurrent.FastThreadLocal;
import io.vertx.core.Vertx;
import io.vertx.core.internal.ContextInternal;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A timeout that activity pushes back: it fires once {@code millis} pass without a {@link #touch()}. Activity costs
 * a clock read, not a timer. Used on the exchange's context only.
 *
 * <p>Started on an event loop (where the router runs), it takes no timer of its own: the idle timers of one event
 * loop with the same duration wait in one queue ({@link Queue}), in the order they were started, behind one
 * scheduled task of the loop's, due when the oldest is. Starting one is an append and ending one an unlink, where a
 * Vert.x timer of each request's own was a map entry and a scheduled task made and cancelled (3.3% of the standalone
 * proxy's event loop samples, in {@code setTimer} and {@code cancelTimer}, for the stream idle timer every request
 * has). Elsewhere (a worker context, no context) it takes a Vert.x timer, checked when due against the last activity.
 */
final class IdleTimer {
    /** The queues of the event loop that is the current thread, by duration. */
    private static final FastThreadLocal<LongObjectHashMap<Queue>> QUEUES = new FastThreadLocal<>() {
        @Override
        protected LongObjectHashMap<Queue> initialValue() {
            return new LongObjectHashMap<>(4);
        }
    };

    private final Vertx vertx;
    private final long millis;
    private final Runnable onIdle;
    private long lastNanos;
    /** The Vert.x timer, -1 when none is pending (off an event loop). */
    private long timer = -1;
    /** The queue it waits in, or null (on an event loop). */
    private Queue queue;
    /** Its place in {@link #queue}: when it was put there, and its neighbours. */
    private long queuedNanos;
    private IdleTimer before;
    private IdleTimer after;
    /** The context it fires on (on an event loop). */
    private ContextInternal context;
    /** Taken off its queue as due, about to fire; a {@link #cancel()} before it does stops it. */
    private boolean firing;

    IdleTimer(Vertx vertx, long millis, Runnable onIdle) {
        this.vertx = vertx;
        this.millis = Math.max(1, millis);
        this.onIdle = onIdle;
    }

    /** Starts (or restarts) the wait. */
    IdleTimer start() {
        cancel();
        lastNanos = System.nanoTime();
        ContextInternal c = (ContextInternal) Vertx.currentContext();
        EventLoop loop = c == null || !c.isEventLoopContext() || c.owner() != vertx ? null : c.nettyEventLoop();
        if (loop != null && loop.inEventLoop()) {
            context = c;
            Queue.of(loop, millis).add(this, lastNanos);
        } else {
            timer = vertx.setTimer(millis, this::due);
        }
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
        if (queue != null) {
            queue.remove(this);
        }
        firing = false;
    }

    /** Whether it is pending (tests check that none is left behind). */
    boolean pending() {
        return timer >= 0 || queue != null || firing;
    }

    /**
     * The idle timers of one event loop with one duration, oldest first by when they were put in (started, or put
     * back after activity), so that none is due before the first: one scheduled task of the loop's waits for that
     * one, and when it runs, takes off every timer whose time has come, puts back those touched since (in order, by
     * their last activity, near the end) and fires the rest, each on its own context. Touched by its loop's thread
     * only.
     */
    private static final class Queue implements Runnable {
        private static final int WALK = 32;
        private final EventLoop loop;
        private final long nanos;
        private IdleTimer first;
        private IdleTimer last;
        /** Whether the loop's task is scheduled (it runs no later than the first timer is due). */
        private boolean scheduled;

        private Queue(EventLoop loop, long millis) {
            this.loop = loop;
            this.nanos = TimeUnit.MILLISECONDS.toNanos(millis);
        }

        /** The queue of {@code loop}, the current thread's, for {@code millis}. */
        static Queue of(EventLoop loop, long millis) {
            LongObjectHashMap<Queue> queues = QUEUES.get();
            Queue q = queues.get(millis);
            if (q == null) {
                q = new Queue(loop, millis);
                queues.put(millis, q);
            }
            return q;
        }

        void add(IdleTimer t, long at) {
            t.queue = this;
            t.queuedNanos = at;
            t.after = null;
            t.before = last;
            if (last == null) {
                first = t;
            } else {
                last.after = t;
            }
            last = t;
            if (!scheduled) {
                scheduled = true;
                loop.schedule(this, nanos, TimeUnit.NANOSECONDS);
            }
        }

        /**
         * Puts a timer back in its place by {@code at}, walked from the end: past at most {@link #WALK} timers, else
         * at the end, as if put in when the last one was (so many timers put in since its activity that finding its
         * place would cost more than a timer's worth; it fires that much later, at most its duration).
         */
        private void insert(IdleTimer t, long at) {
            IdleTimer prev = last;
            for (int walked = 0; prev != null && prev.queuedNanos - at > 0; walked++) {
                if (walked == WALK) {
                    prev = last;
                    at = last.queuedNanos;
                    break;
                }
                prev = prev.before;
            }
            t.queue = this;
            t.queuedNanos = at;
            t.before = prev;
            t.after = prev == null ? first : prev.after;
            if (t.after == null) {
                last = t;
            } else {
                t.after.before = t;
            }
            if (prev == null) {
                first = t;
            } else {
                prev.after = t;
            }
        }

        void remove(IdleTimer t) {
            if (t.before == null) {
                first = t.after;
            } else {
                t.before.after = t.after;
            }
            if (t.after == null) {
                last = t.before;
            } else {
                t.after.before = t.before;
            }
            t.before = null;
            t.after = null;
            t.queue = null;
        }

        @Override
        public void run() {
            scheduled = false;
            long now = System.nanoTime();
            List<IdleTimer> due = null;
            for (IdleTimer t = first; t != null && now - (t.queuedNanos + nanos) >= 0; t = first) {
                remove(t);
                if (now - (t.lastNanos + nanos) < 0) {
                    insert(t, t.lastNanos); // active since it was put in: it waits from its last activity
                } else {
                    t.firing = true;
                    if (due == null) {
                        due = new ArrayList<>();
                    }
                    due.add(t);
                }
            }
            if (first != null) {
                scheduled = true;
                loop.schedule(this, Math.max(0, first.queuedNanos + nanos - now), TimeUnit.NANOSECONDS);
            }
            if (due != null) {
                for (IdleTimer t : due) {
                    t.context.emit(v -> {
                        if (t.firing) { // not cancelled by what fired before it
                            t.firing = false;
                            t.onIdle.run();
                        }
                    });
                }
            }
        }
    }
}
