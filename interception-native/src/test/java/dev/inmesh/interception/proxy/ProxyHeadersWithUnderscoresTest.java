package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.http.StreamResetException;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The connection manager's {@code headers_with_underscores_action} in the standalone proxy, as Envoy's codecs apply
 * it before any filter: {@code REJECT_REQUEST} answers an HTTP/1 request 400 and resets an HTTP/2 stream, the upstream
 * never asked; {@code DROP_HEADER} takes the header off and the request goes on.
 */
@Timeout(30)
class ProxyHeadersWithUnderscoresTest {
    private Vertx vertx;
    private int upstream;
    private final AtomicInteger served = new AtomicInteger();
    private LoopbackProxy proxy;
    private io.micrometer.core.instrument.MeterRegistry stats;
    private int port;

    @BeforeEach
    void start() throws Exception {
        vertx = Vertx.vertx();
        upstream = vertx.createHttpServer().requestHandler(req -> {
            served.incrementAndGet();
            req.response().putHeader("x-seen", String.valueOf(req.getHeader("x_user")) + "|"
                    + req.getHeader("x-user")).end();
        }).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    private void proxy(String action) throws Exception {
        port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy(LoopbackProxy.withHcm(LoopbackProxy.inboundConfig(port, upstream, ""),
                "common_http_protocol_options: {headers_with_underscores_action: " + action + "}"));
        stats = proxy.withStats();
    }

    /** The downstream codecs' counter {@code envoy_<name>} (Envoy's {@code http1.*}, {@code http2.*}). */
    private double codec(String name) {
        return stats.get("envoy_" + name).gauge().value();
    }

    private String get(HttpVersion version) throws Exception {
        return get(version, true);
    }

    /** A GET with {@code x-user: alice}, and {@code x_user: mallory} when {@code underscore}. */
    private String get(HttpVersion version, boolean underscore) throws Exception {
        var client = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(version)
                .setHttp2ClearTextUpgrade(false));
        RequestOptions options = new RequestOptions().setMethod(HttpMethod.GET).setPort(port).setHost("127.0.0.1")
                .setURI("/x").putHeader("x-user", "alice");
        if (underscore) {
            options.putHeader("x_user", "mallory");
        }
        try {
            return client.request(options)
                    .compose(req -> req.send().compose(resp -> resp.body().map(b -> resp.statusCode() + " "
                            + resp.getHeader("x-seen"))))
                    .await(10, TimeUnit.SECONDS);
        } finally {
            client.close();
        }
    }

    @Test
    void rejectAnswersAnHttp1Request400AndResetsAnHttp2Stream() throws Exception {
        proxy("REJECT_REQUEST");
        String raw = Http1RequestsTest.exchange(port, "GET /x HTTP/1.1\r\nhost: svc\r\nx_user: mallory\r\n\r\n");
        assertTrue(raw.startsWith("HTTP/1.1 400 Bad Request\r\n"), raw);
        StreamInfo http1 = proxy.logged(400);
        assertEquals("http1.unexpected_underscore", http1.responseCodeDetails());
        assertEquals(Set.of(ResponseFlag.DOWNSTREAM_PROTOCOL_ERROR), http1.responseFlags());

        assertThrows(StreamResetException.class, () -> get(HttpVersion.HTTP_2));
        StreamInfo http2 = proxy.logged(0);
        assertEquals("http2.unexpected_underscore", http2.responseCodeDetails());
        assertEquals(Set.of(ResponseFlag.DOWNSTREAM_PROTOCOL_ERROR), http2.responseFlags());
        assertEquals(0, served.get(), "the upstream was never asked");
        // a request without one goes through on both
        assertEquals("200 null|alice", get(HttpVersion.HTTP_1_1, false));
        assertEquals("200 null|alice", get(HttpVersion.HTTP_2, false));
        // counted by codec, as Envoy's codecs count them
        assertEquals(1, codec("http1_requests_rejected_with_underscores_in_headers"));
        assertEquals(1, codec("http2_requests_rejected_with_underscores_in_headers"));
        assertEquals(0, codec("http1_dropped_headers_with_underscores"));
    }

    @Test
    void dropTakesTheHeaderOffAndTheRequestGoesOn() throws Exception {
        proxy("DROP_HEADER");
        assertEquals("200 null|alice", get(HttpVersion.HTTP_1_1));
        assertEquals("200 null|alice", get(HttpVersion.HTTP_2));
        assertEquals(1, codec("http1_dropped_headers_with_underscores"));
        assertEquals(1, codec("http2_dropped_headers_with_underscores"));
        assertEquals(0, codec("http1_requests_rejected_with_underscores_in_headers"));
    }

    @Test
    void allowPassesItOn() throws Exception {
        proxy("ALLOW");
        assertEquals("200 mallory|alice", get(HttpVersion.HTTP_1_1));
        assertEquals("200 mallory|alice", get(HttpVersion.HTTP_2));
    }
}
