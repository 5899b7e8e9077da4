package dev.inmesh.runtime.accesslog;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.inmesh.runtime.stats.StreamInfos;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

class AccessLogTest {
    private final List<String> lines = new CopyOnWriteArrayList<>();

    @Test
    void writesAnOutboundRequestInIstiosDefaultTextFormat() {
        AccessLog log = AccessLog.create(AccessLog.Format.TEXT, lines::add);
        log.log(StreamInfos.outboundOk());

        assertEquals(List.of("[2026-11-28T13:07:13.409Z] \"GET /reviews/0 HTTP/1.1\" 200 - via_upstream - \"-\" "
                + "0 295 12 9 \"-\" \"Java-http-client/17\" \"b2b5a5b1-7f0e-4f5c-a0d4-1d6a0f7a5f11\" "
                + "\"reviews:9080\" \"10.244.0.192:9080\" outbound|9080||reviews.default.svc.cluster.local "
                + "10.244.0.194:47022 10.96.12.7:9080 10.244.0.194:47020 - default"), lines);
    }

    @Test
    void printsADashForEveryValueNotKnown() {
        AccessLog log = AccessLog.create(AccessLog.Format.TEXT, lines::add);
        log.log(StreamInfos.inboundNoHealthyUpstream());

        assertEquals(List.of("[2026-11-28T13:07:14.001Z] \"POST /reviews/1 HTTP/2\" 503 UH no_healthy_upstream - "
                + "\"-\" 18 19 3 - \"-\" \"-\" \"-\" \"reviews:9080\" \"-\" inbound|9080|| - 10.244.0.192:9080 "
                + "10.244.0.194:51234 - -"), lines);
    }

    @Test
    void writesIstiosJsonKeysInOrderWithNumbersAndNulls() {
        AccessLog log = AccessLog.create(AccessLog.Format.JSON, lines::add);
        log.log(StreamInfos.inboundNoHealthyUpstream());

        assertEquals(List.of("{\"start_time\":\"2026-11-28T13:07:14.001Z\",\"route_name\":null,\"method\":\"POST\","
                + "\"path\":\"/reviews/1\",\"protocol\":\"HTTP/2\",\"response_code\":503,\"response_flags\":\"UH\","
                + "\"response_code_details\":\"no_healthy_upstream\",\"connection_termination_details\":null,"
                + "\"bytes_received\":18,\"bytes_sent\":19,\"duration\":3,\"upstream_service_time\":null,"
                + "\"x_forwarded_for\":null,\"user_agent\":null,\"request_id\":null,\"authority\":\"reviews:9080\","
                + "\"upstream_host\":null,\"upstream_cluster\":\"inbound|9080||\",\"upstream_local_address\":null,"
                + "\"downstream_local_address\":\"10.244.0.192:9080\","
                + "\"downstream_remote_address\":\"10.244.0.194:51234\",\"requested_server_name\":null,"
                + "\"upstream_transport_failure_reason\":null}"), lines);
    }

    @Test
    void writesTheUpstreamServiceTimeAsAStringInJson() {
        String line = AccessLog.create(AccessLog.Format.JSON, lines::add).format(StreamInfos.outboundOk());

        assertEquals(true, line.contains("\"upstream_service_time\":\"9\""), line);
        assertEquals(true, line.contains("\"route_name\":\"default\""), line);
    }

    @Test
    void writesATcpConnectionInTheSameFormatWithTheHttpOnlyValuesUnknownAndResponseCodeZero() {
        AccessLog log = AccessLog.create(AccessLog.Format.TEXT, lines::add);
        log.log(new dev.inmesh.runtime.stats.TcpStreamInfo(java.time.Instant.parse("2026-11-28T13:07:15.120Z"),
                java.util.Set.of(), 1200, 3400, 52, "10.244.0.31:3306",
                "outbound|3306||mysql.default.svc.cluster.local", "10.244.0.194:40412", "10.96.3.3:3306",
                "10.244.0.194:40410", null));
        log.log(new dev.inmesh.runtime.stats.TcpStreamInfo(java.time.Instant.parse("2026-11-28T13:07:16.000Z"),
                java.util.Set.of(dev.inmesh.runtime.stats.ResponseFlag.NO_HEALTHY_UPSTREAM), 0, 0, 0, null,
                "BlackHoleCluster", null, "93.184.216.34:443", "10.244.0.194:40500", "example.com"));

        assertEquals(List.of("[2026-11-28T13:07:15.120Z] \"- - -\" 0 - - - \"-\" 1200 3400 52 - \"-\" \"-\" \"-\" "
                + "\"-\" \"10.244.0.31:3306\" outbound|3306||mysql.default.svc.cluster.local 10.244.0.194:40412 "
                + "10.96.3.3:3306 10.244.0.194:40410 - -",
                "[2026-11-28T13:07:16.000Z] \"- - -\" 0 UH - - \"-\" 0 0 0 - \"-\" \"-\" \"-\" \"-\" \"-\" "
                + "BlackHoleCluster - 93.184.216.34:443 10.244.0.194:40500 example.com -"), lines);
    }

    @Test
    void refusesAMissingSink() {
        assertThrows(IllegalArgumentException.class, () -> AccessLog.create(AccessLog.Format.TEXT, null));
    }

    @Test
    void aQueuedSinkOverAnyWriterDoesNotWaitForIt() throws InterruptedException {
        // the standalone proxy's --access-log FILE: a slow disk must not hold the event loop that logs
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        AccessLogSink sink = AccessLogSink.queued(l -> {
            try {
                release.await();
            } catch (InterruptedException e) {
                return;
            }
            lines.add(l);
        });
        long t0 = System.nanoTime();
        sink.write("a");
        sink.write("b");
        assertEquals(true, System.nanoTime() - t0 < 1_000_000_000L, "write returned while the writer was blocked");
        assertEquals(List.of(), lines);
        release.countDown();
        for (int i = 0; i < 200 && lines.size() < 2; i++) {
            Thread.sleep(5);
        }
        assertEquals(List.of("a", "b"), lines);
    }

    @Test
    void theQueuedWriterDeliversLinesOnItsOwnThread() throws InterruptedException {
        List<String> threads = new CopyOnWriteArrayList<>();
        AsyncLineWriter w = new AsyncLineWriter(l -> {
            threads.add(Thread.currentThread().getName());
            lines.add(l);
        }, 16, "test-writer");
        w.write("a");
        w.write("b");
        for (int i = 0; i < 200 && lines.size() < 2; i++) {
            Thread.sleep(5);
        }
        assertEquals(List.of("a", "b"), lines);
        assertEquals(List.of("test-writer", "test-writer"), threads);
    }
}
