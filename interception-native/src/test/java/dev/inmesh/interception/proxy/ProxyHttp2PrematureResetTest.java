package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.micrometer.core.instrument.MeterRegistry;
import io.vertx.core.Vertx;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A downstream HTTP/2 connection that resets its streams, as Envoy's connection manager judges it
 * (ConnectionManagerImpl::maybeDrainDueToPrematureResets): a stream closed without a response within
 * {@code overload.premature_reset_min_stream_lifetime_seconds} of its start is premature; the connection is closed
 * ({@code downstream_rq_too_many_premature_resets}) when half of {@code overload.premature_reset_total_stream_count}
 * of its streams were, or, past that count, when half of its closed streams were. Clients that cancel streams that
 * lived, or that overshoot {@code max_concurrent_streams} once, keep their connection; a rapid reset loses it.
 */
@Timeout(60)
class ProxyHttp2PrematureResetTest {
    private static final String[] POST = {":method", "POST", ":scheme", "http", ":path", "/x", ":authority", "svc"};
    private static final String[] GET = {":method", "GET", ":scheme", "http", ":path", "/x", ":authority", "svc"};
    private static final int CANCEL = 8;

    private final Vertx vertx = Vertx.vertx();
    private int upstream;
    private LoopbackProxy proxy;
    private MeterRegistry stats;

    @BeforeEach
    void start() throws Exception {
        // answers once the request's body ended: a stream whose body is still to come stays open, unanswered
        upstream = vertx.createHttpServer().requestHandler(req -> req.body().onComplete(b -> {
            if (b.succeeded()) {
                req.response().end("ok");
            }
        })).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    private int proxy(String http2Options, String runtime) throws Exception {
        int port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy(LoopbackProxy.withHcm(LoopbackProxy.inboundConfig(port, upstream, ""),
                "http2_protocol_options: {" + http2Options + "}") + runtime);
        stats = proxy.withStats();
        return port;
    }

    private static final String MIN_LIFETIME_0 = """
            layered_runtime:
              layers:
              - name: overrides
                static_layer:
                  overload.premature_reset_min_stream_lifetime_seconds: 0
            """;

    private long tooManyPrematureResets() {
        return LoopbackProxy.stat(stats, "inbound_0.0.0.0_8080", "downstream_rq_too_many_premature_resets");
    }

    /** A frame of {@code type} on each of {@code streams}, for one write: HEADERS with a body to come, RST CANCEL. */
    private static byte[][] each(List<Integer> streams, int type) {
        return streams.stream().map(id -> type == Http2Wire.HEADERS
                ? Http2Wire.frame(type, Http2Wire.END_HEADERS, id, Http2Wire.block(POST))
                : Http2Wire.frame(type, 0, id, java.nio.ByteBuffer.allocate(4).putInt(CANCEL).array()))
                .toArray(byte[][]::new);
    }

    private static List<Integer> streams(int first, int count) {
        List<Integer> ids = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            ids.add(first + 2 * i);
        }
        return ids;
    }

    @Test
    void aClientCancellingStreamsThatLivedPastTheMinimumLifetimeInWavesKeepsItsConnection() throws Exception {
        // a minimum lifetime of 0 s: a stream that lived a whole second is not premature (Envoy compares whole
        // seconds, so that under its default of 1 a stream is premature until it lived 2 s)
        int port = proxy("", MIN_LIFETIME_0);
        try (Http2Wire h2 = Http2Wire.client(port)) {
            // 300 calls at once, each cancelled after it lived more than a second: more RST_STREAMs than Netty's
            // own limit took (200 in 30 s), none premature
            List<Integer> calls = streams(1, 300);
            h2.write(each(calls, Http2Wire.HEADERS));
            Thread.sleep(1_300);
            for (int wave = 0; wave < 10; wave++) {
                h2.write(each(calls.subList(wave * 30, wave * 30 + 30), Http2Wire.RST_STREAM));
            }
            h2.headers(601, true, GET);
            List<Object> frames = h2.until(601);
            assertEquals("200", h2.status(frames, 601), frames.toString());
        }
        assertEquals(0, tooManyPrematureResets());
    }

    @Test
    void aClientOvershootingMaxConcurrentStreamsOnceHasTheRestRefusedAndItsAcceptedStreamsServed() throws Exception {
        int port = proxy("max_concurrent_streams: 5", "");
        try (Http2Wire h2 = Http2Wire.client(port)) {
            List<Integer> all = streams(1, 300);
            h2.write(each(all, Http2Wire.HEADERS));
            // 295 refused (REFUSED_STREAM), none a premature reset (more than 250 would end the connection): kept
            for (int id : all.subList(5, 300)) {
                assertEquals("RST_STREAM " + id + " 7", String.valueOf(h2.next()));
            }
            for (int id : all.subList(0, 5)) {
                h2.data(id, true, "abc");
                List<Object> frames = h2.until(id);
                assertEquals("200", h2.status(frames, id), frames.toString());
            }
        }
        assertEquals(0, tooManyPrematureResets());
    }

    @Test
    void aRapidResetLoopLosesItsConnectionAsSoonAsHalfTheTotalStreamCountWerePremature() throws Exception {
        int port = proxy("", "");
        try (Http2Wire h2 = Http2Wire.client(port)) {
            boolean closed = false;
            // HEADERS then RST_STREAM, stream after stream (CVE-2023-44487): the 250th premature reset ends it
            for (int id = 1; id < 2 * 1000 && !closed; id += 2) {
                try {
                    h2.headers(id, false, POST).reset(id, CANCEL);
                } catch (java.io.IOException e) {
                    closed = true;
                }
            }
            List<Object> rest = new ArrayList<>();
            for (Object f; (f = h2.next()) != null; ) {
                rest.add(f);
            }
            assertFalse(rest.stream().anyMatch(f -> f.toString().startsWith("frame 1 ")), rest.toString());
        }
        for (int i = 0; i < 100 && tooManyPrematureResets() == 0; i++) {
            Thread.sleep(20);
        }
        assertEquals(1, tooManyPrematureResets());
    }

    @Test
    void pastTheRuntimeTotalStreamCountTheConnectionClosesOnlyWhenHalfItsClosedStreamsWerePremature()
            throws Exception {
        int port = proxy("", """
                layered_runtime:
                  layers:
                  - name: overrides
                    static_layer:
                      overload.premature_reset_total_stream_count: 10
                """);
        try (Http2Wire h2 = Http2Wire.client(port)) {
            // 10 answered, 9 premature and one more answered: 9 of 20 closed streams were premature
            int id = 1;
            for (; id < 20; id += 2) {
                h2.headers(id, false, POST).data(id, true, "abc");
                assertEquals("200", h2.status(h2.until(id), id));
            }
            for (int i = 0; i < 9; i++, id += 2) {
                h2.headers(id, false, POST).reset(id, CANCEL);
            }
            h2.headers(id, true, GET);
            assertEquals("200", h2.status(h2.until(id), id));
            assertEquals(0, tooManyPrematureResets());
            // then 10 of 21, under half; 11 of 22, half: closed
            id += 2;
            h2.headers(id, false, POST).reset(id, CANCEL);
            id += 2;
            h2.headers(id, false, POST).reset(id, CANCEL);
            assertEquals(List.of("closed"), h2.until(id + 2));
        }
        assertEquals(1, tooManyPrematureResets());
    }
}
