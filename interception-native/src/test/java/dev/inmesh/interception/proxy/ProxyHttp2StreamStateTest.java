package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.Vertx;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Frames a client sends on a stream in a state that does not take them (RFC 9113 §5.1): on a stream the proxy just
 * refused beyond {@code max_concurrent_streams}, sent before the client read the refusal, which are ignored and leave
 * the connection and its other streams alone; and DATA after the request's END_STREAM, a stream error STREAM_CLOSED.
 */
@Timeout(60)
class ProxyHttp2StreamStateTest {
    private static final String[] POST = {":method", "POST", ":scheme", "http", ":path", "/x", ":authority", "svc",
        "content-length", "5"};

    private final Vertx vertx = Vertx.vertx();
    private LoopbackProxy proxy;

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    private int proxy(String http2Options, int delayMillis) throws Exception {
        int upstream = vertx.createHttpServer().requestHandler(req -> req.body().onComplete(b -> vertx.setTimer(
                delayMillis, t -> req.response().end("got " + b.result().length())))).listen(0, "127.0.0.1")
                .await(10, TimeUnit.SECONDS).actualPort();
        int port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy(LoopbackProxy.withHcm(LoopbackProxy.inboundConfig(port, upstream, ""),
                "http2_protocol_options: " + http2Options));
        return port;
    }

    /** The frames until every stream of {@code streams} ended, a GOAWAY, or the connection's end. */
    private static List<Http2Wire.Frame> untilAll(Http2Wire h2, int... streams) throws Exception {
        List<Http2Wire.Frame> frames = new ArrayList<>();
        Set<Integer> open = new java.util.HashSet<>();
        for (int s : streams) {
            open.add(s);
        }
        for (Http2Wire.Frame f; !open.isEmpty() && (f = h2.next()) != null; ) {
            frames.add(f);
            if (f.type() == Http2Wire.GOAWAY) {
                break;
            }
            if (f.endsStream() || f.type() == Http2Wire.RST_STREAM) {
                open.remove(f.stream());
            }
        }
        return frames;
    }

    @Test
    void framesOnAStreamRefusedBeyondTheLimitAreIgnoredAndTheStreamsTakenAreAnswered() throws Exception {
        int port = proxy("{max_concurrent_streams: 2}", 200);
        var stats = proxy.withStats();
        try (Http2Wire h2 = Http2Wire.client(port)) {
            // a burst, as a client sends it before it read the limit: three requests with bodies, the third refused;
            // its body, a WINDOW_UPDATE and the client's own reset of it follow before the refusal arrives
            h2.write(Http2Wire.frame(Http2Wire.HEADERS, Http2Wire.END_HEADERS, 1, Http2Wire.block(POST)),
                    Http2Wire.frame(Http2Wire.HEADERS, Http2Wire.END_HEADERS, 3, Http2Wire.block(POST)),
                    Http2Wire.frame(Http2Wire.HEADERS, Http2Wire.END_HEADERS, 5, Http2Wire.block(POST)));
            h2.data(5, false, "hel").write(Http2Wire.frame(8, 0, 5, new byte[] {0, 0, 1, 0}));
            h2.data(5, true, "lo").reset(5, 8);
            h2.data(1, true, "hello").data(3, true, "hello");
            List<Http2Wire.Frame> frames = untilAll(h2, 1, 3);
            List<String> resets = frames.stream().filter(f -> f.type() == Http2Wire.RST_STREAM
                    || f.type() == Http2Wire.GOAWAY).map(Object::toString).toList();
            assertEquals(List.of("RST_STREAM 5 7"), resets, frames.toString());
            assertEquals("200", h2.status(new ArrayList<>(frames), 1));
            assertEquals("200", h2.status(new ArrayList<>(frames), 3));
            // the connection goes on
            h2.headers(7, false, POST).data(7, true, "hello");
            assertEquals("200", h2.status(h2.until(7), 7));
        }
        assertEquals(1.0, stats.get("envoy_http2_stream_refused_errors").gauge().value());
        assertEquals(1.0, stats.get("envoy_http2_tx_reset").gauge().value());
        assertEquals(0, LoopbackProxy.stat(stats, "inbound_0.0.0.0_8080", "downstream_cx_protocol_error"));
        assertEquals(0, LoopbackProxy.stat(stats, "inbound_0.0.0.0_8080", "downstream_rq_rx_reset"));
        for (int i = 0; i < 200 && proxy.requests.size() < 3; i++) {
            Thread.sleep(25);
        }
        assertEquals(List.of(200, 200, 200), proxy.requests.stream().map(StreamInfo::responseCode).toList(),
                "only the three requests taken are logged");
    }

    @Test
    void dataAfterTheRequestsEndResetsItsStreamWithStreamClosed() throws Exception {
        int port = proxy("{}", 500);
        try (Http2Wire h2 = Http2Wire.client(port)) {
            h2.headers(1, true, ":method", "GET", ":scheme", "http", ":path", "/x", ":authority", "svc");
            h2.data(1, false, "late");
            List<Object> frames = h2.until(1);
            assertEquals("RST_STREAM 1 5", frames.get(frames.size() - 1).toString(), frames.toString());
            // the connection goes on
            h2.headers(3, true, ":method", "GET", ":scheme", "http", ":path", "/y", ":authority", "svc");
            assertEquals("200", h2.status(h2.until(3), 3));
        }
        StreamInfo logged = proxy.logged(0);
        assertEquals(Set.of(ResponseFlag.DOWNSTREAM_PROTOCOL_ERROR), logged.responseFlags());
        assertTrue(logged.responseCodeDetails().startsWith("http2."), logged.responseCodeDetails());
    }
}
