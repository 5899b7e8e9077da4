package dev.inmesh.runtime.accesslog;

import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/** A sink that queues lines (never blocking the caller) for one daemon thread to write; drops when full. */
final class AsyncLineWriter implements AccessLogSink {
    private final BlockingQueue<String> queue;
    private final AtomicLong dropped = new AtomicLong();

    AsyncLineWriter(Consumer<String> out, int capacity, String threadName) {
        this.queue = new ArrayBlockingQueue<>(capacity);
        Thread t = new Thread(() -> {
            while (true) {
                try {
                    out.accept(queue.take());
                } catch (InterruptedException e) {
                    return;
                } catch (RuntimeException e) {
                    // a failing writer must not end the logging thread
                }
            }
        }, threadName);
        t.setDaemon(true);
        t.start();
    }

    @Override
    public void write(String line) {
        if (!queue.offer(line)) {
            dropped.incrementAndGet();
        }
    }

    /** Lines dropped because the writer fell behind. */
    long dropped() {
        return dropped.get();
    }
}
