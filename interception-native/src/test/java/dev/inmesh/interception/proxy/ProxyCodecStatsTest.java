package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.micrometer.core.instrument.MeterRegistry;
import io.vertx.core.Vertx;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The downstream HTTP/2 codec's statistics, as Envoy's codec keeps them (source/common/http/http2/codec_stats.h,
 * {@code http2.*} in no scope): {@code rx_reset}, {@code tx_reset}, {@code stream_refused_errors}, {@code trailers} and
 * the gauge {@code streams_active}; and the connection manager's {@code downstream_cx_protocol_error} for an HTTP/1
 * head its codec refuses.
 */
@Timeout(30)
class ProxyCodecStatsTest {
    private static final String[] POST = {":method", "POST", ":scheme", "http", ":path", "/x", ":authority", "svc"};

    private final Vertx vertx = Vertx.vertx();
    private LoopbackProxy proxy;

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    private static double http2(MeterRegistry stats, String name) {
        return stats.get("envoy_http2_" + name).gauge().value();
    }

    @Test
    void theHttp2CodecCountsItsResetsRefusalsTrailersAndOpenStreams() throws Exception {
        int upstream = vertx.createHttpServer().requestHandler(req -> req.body().onComplete(b -> req.response()
                .end())).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        int port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy(LoopbackProxy.withHcm(LoopbackProxy.inboundConfig(port, upstream, ""),
                "http2_protocol_options: {max_concurrent_streams: 2}"));
        var stats = proxy.withStats();
        try (Http2Wire h2 = Http2Wire.client(port)) {
            // two streams whose bodies are still to come: open; a third is beyond max_concurrent_streams
            h2.headers(1, false, POST).headers(3, false, POST).headers(5, true, POST);
            assertEquals("[RST_STREAM 5 7]", h2.until(5).toString());
            assertEquals(1.0, http2(stats, "stream_refused_errors"));
            assertEquals(2.0, http2(stats, "streams_active"));
            // the client resets one; the other ends with trailers
            h2.reset(1, 8).data(3, false, "abc").headers(3, true, "x-checksum", "abc");
            assertEquals("200", h2.status(h2.until(3), 3));
        }
        for (int i = 0; i < 100 && http2(stats, "streams_active") > 0; i++) {
            Thread.sleep(20);
        }
        assertEquals(0.0, http2(stats, "streams_active"));
        assertEquals(1.0, http2(stats, "rx_reset"));
        assertEquals(1.0, http2(stats, "tx_reset"));
        assertEquals(1.0, http2(stats, "trailers"));
        // an HTTP/1 head the codec refuses: a protocol error of the connection
        String answer = Http1RequestsTest.exchange(port, "GET /x HTTP/1.1\r\nhost: a b\r\n\r\n");
        assertTrue(answer.startsWith("HTTP/1.1 400 "), answer);
        assertEquals(1, LoopbackProxy.stat(stats, "inbound_0.0.0.0_8080", "downstream_cx_protocol_error"));
    }
}
