package dev.inmesh.runtime.accesslog;

import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/** A sink that queues lines (never blocking the caller) for one daemon thread to write; drops when full. */
final class AsyncLineWriter implements AccessLogSink {
    /** Every writer made, for {@link #flushAll}: a handful per process (one per access log destination). */
    private static final Set<AsyncLineWriter> WRITERS = ConcurrentHashMap.newKeySet();

    private final BlockingQueue<String> queue;
    private final AtomicLong dropped = new AtomicLong();
    /** Lines taken and not yet written: queued, or in the writer's hands. */
    private final AtomicLong pending = new AtomicLong();

    AsyncLineWriter(Consumer<String> out, int capacity, String threadName) {
        this.queue = new ArrayBlockingQueue<>(capacity);
        Thread t = new Thread(() -> {
            while (true) {
                try {
                    String line = queue.take();
                    try {
                        out.accept(line);
                    } finally {
                        pending.decrementAndGet();
                    }
                } catch (InterruptedException e) {
                    return;
                } catch (RuntimeException e) {
                    // a failing writer must not end the logging thread
                }
            }
        }, threadName);
        t.setDaemon(true);
        t.start();
        WRITERS.add(this);
    }

    @Override
    public void write(String line) {
        pending.incrementAndGet();
        if (!queue.offer(line)) {
            pending.decrementAndGet();
            dropped.incrementAndGet();
        }
    }

    /** Lines dropped because the writer fell behind. */
    long dropped() {
        return dropped.get();
    }

    /**
     * Waits, at most {@code timeout} in all, until every writer wrote the lines it took: what a stopping process
     * calls before it exits, as Envoy flushes its access logs at shutdown (the writers' threads are daemons, which
     * the exit would stop with lines still queued). Returns whether all were written in time.
     */
    static boolean flushAll(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        for (AsyncLineWriter w : WRITERS) {
            while (w.pending.get() > 0) {
                if (System.nanoTime() - deadline >= 0) {
                    return false;
                }
                Thread.sleep(2);
            }
        }
        return true;
    }
}
