package dev.inmesh.runtime.accesslog;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The queued sinks: a stopping process waits for the lines they took, as Envoy flushes its access logs. */
class AccessLogSinkTest {

    @Test
    void flushAllWaitsUntilTheLinesTakenAreWritten() throws Exception {
        List<String> written = new CopyOnWriteArrayList<>();
        CountDownLatch release = new CountDownLatch(1);
        AccessLogSink sink = AccessLogSink.queued(line -> {
            try {
                // the writer is held until the flush has begun
                release.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            written.add(line);
        });
        for (int i = 0; i < 5; i++) {
            sink.write("line " + i);
        }
        // a flush that cannot finish in time says so
        assertEquals(false, AccessLogSink.flushAll(Duration.ofMillis(50)));
        release.countDown();
        assertTrue(AccessLogSink.flushAll(Duration.ofSeconds(10)), "flushed in time");
        assertEquals(List.of("line 0", "line 1", "line 2", "line 3", "line 4"), written);
    }

    @Test
    void aLineDroppedByAFullQueueIsNotWaitedFor() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        AsyncLineWriter w = new AsyncLineWriter(line -> {
            try {
                release.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, 1, "test-access-log");
        for (int i = 0; i < 10; i++) {
            w.write("line " + i);
        }
        assertTrue(w.dropped() >= 8, "dropped " + w.dropped());
        release.countDown();
        assertTrue(AccessLogSink.flushAll(Duration.ofSeconds(10)), "only the lines taken are waited for");
    }
}
