package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.micrometer.core.instrument.MeterRegistry;
import io.vertx.core.Vertx;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The inbound flood limits of a connection manager's {@code http2_protocol_options}, as Envoy's codec keeps them:
 * PRIORITY frames ({@code max_inbound_priority_frames_per_stream} times one more than the streams opened),
 * WINDOW_UPDATE frames (5 + 2 x (streams opened + {@code max_inbound_window_update_frames_per_data_frame_sent} times
 * the DATA frames sent)) and DATA frames in a row with neither payload nor END_STREAM
 * ({@code max_consecutive_inbound_frames_with_empty_payload}). A client past one ends its connection: GOAWAY
 * ENHANCE_YOUR_CALM, counted in {@code http2.inbound_*_flood}.
 */
@Timeout(60)
class ProxyHttp2FloodTest {
    private static final int PRIORITY = 2;
    private static final int WINDOW_UPDATE = 8;
    private static final long ENHANCE_YOUR_CALM = 11;
    private static final String[] GET = {":method", "GET", ":scheme", "http", ":path", "/x", ":authority", "svc"};
    private static final String[] POST = {":method", "POST", ":scheme", "http", ":path", "/x", ":authority", "svc"};

    private final Vertx vertx = Vertx.vertx();
    private LoopbackProxy proxy;
    private MeterRegistry stats;

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    private int proxy(String http2Options) throws Exception {
        int upstream = vertx.createHttpServer().requestHandler(req -> req.body().onComplete(b -> req.response()
                .end("ok"))).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        int port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy(LoopbackProxy.withHcm(LoopbackProxy.inboundConfig(port, upstream, ""),
                "http2_protocol_options: " + http2Options));
        stats = proxy.withStats();
        return port;
    }

    private static byte[] priority(int stream) {
        return Http2Wire.frame(PRIORITY, 0, stream, new byte[] {0, 0, 0, 0, 16});
    }

    private static byte[] windowUpdate() {
        return Http2Wire.frame(WINDOW_UPDATE, 0, 0, new byte[] {0, 0, 0, 1});
    }

    private static byte[][] times(int n, byte[] frame) {
        byte[][] frames = new byte[n][];
        java.util.Arrays.fill(frames, frame);
        return frames;
    }

    private double flood(String what) {
        return stats.get("envoy_http2_inbound_" + what + "_flood").gauge().value();
    }

    /** The last frame before the connection's end, which must follow: its GOAWAY. */
    private static String goaway(Http2Wire h2, int stream) throws Exception {
        List<Object> frames = h2.until(stream);
        assertEquals("closed", frames.get(frames.size() - 1), frames.toString());
        return frames.get(frames.size() - 2).toString();
    }

    @Test
    void priorityFramesBeyondTheLimitPerStreamOpenedEndTheConnection() throws Exception {
        int port = proxy("{max_inbound_priority_frames_per_stream: 5}");
        try (Http2Wire h2 = Http2Wire.client(port)) {
            h2.write(times(5, priority(3))); // 5 x (1 + 0 streams): taken
            h2.headers(1, true, GET);
            assertEquals("200", h2.status(h2.until(1), 1));
            h2.write(times(5, priority(5))); // 10 of 5 x (1 + 1)
            h2.headers(3, true, GET);
            assertEquals("200", h2.status(h2.until(3), 3));
            h2.write(times(6, priority(7))); // 16 of 15
            assertEquals("GOAWAY " + ENHANCE_YOUR_CALM, goaway(h2, 7));
        }
        assertEquals(1.0, flood("priority_frames"));
    }

    @Test
    void windowUpdatesBeyondWhatTheDataSentJustifiesEndTheConnection() throws Exception {
        int port = proxy("{}");
        try (Http2Wire h2 = Http2Wire.client(port)) {
            h2.write(times(5, windowUpdate())); // 5 + 2 x (0 + 10 x 0)
            h2.headers(1, true, GET); // one stream, one DATA frame sent: 5 + 2 x (1 + 10 x 1) = 27
            assertEquals("200", h2.status(h2.until(1), 1));
            h2.write(times(22, windowUpdate()));
            h2.headers(3, true, GET);
            assertEquals("200", h2.status(h2.until(3), 3)); // 27 of 5 + 2 x (2 + 10 x 2) = 49
            h2.write(times(23, windowUpdate()));
            assertEquals("GOAWAY " + ENHANCE_YOUR_CALM, goaway(h2, 5));
        }
        assertEquals(1.0, flood("window_update_frames"));
    }

    @Test
    void dataFramesWithoutPayloadInARowBeyondTheLimitEndTheConnection() throws Exception {
        int port = proxy("{}");
        try (Http2Wire h2 = Http2Wire.client(port)) {
            // one empty frame at a time is taken (Envoy's default 1)
            h2.headers(1, false, POST).data(1, false, "").data(1, false, "a").data(1, false, "").data(1, true, "");
            assertEquals("200", h2.status(h2.until(1), 1));
            h2.headers(3, false, POST).data(3, false, "").data(3, false, "");
            assertEquals("GOAWAY " + ENHANCE_YOUR_CALM, goaway(h2, 3));
        }
        assertEquals(1.0, flood("empty_frames"));
    }
}
