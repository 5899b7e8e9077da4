package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.channel.Channel;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2DataFrame;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2ResetFrame;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerOptions;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The frames an HTTP/2 caller gets for an HTTP/2 upstream's answer, as Envoy passes them: an answer that ended with
 * its head (a gRPC trailers-only answer, a HEAD's) is one HEADERS frame that ends the stream, and a body the upstream
 * reset ends in RST_STREAM NO_ERROR, as Envoy's codec resets a stream it ends itself; DATA on an answer that has no
 * body (to HEAD, a 204, a 304) goes to no caller.
 */
@Timeout(60)
class Http2ResponseFramingTest {
    private final Vertx vertx = Vertx.vertx();
    private LoopbackProxy proxy;

    @AfterEach
    void close() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    private int start() throws Exception {
        return proxy(vertx.createHttpServer(new HttpServerOptions().setHttp2ClearTextEnabled(true))
                .requestHandler(req -> {
                    if (req.path().equals("/pkg.Svc/Fail")) {
                        // a gRPC error without a message: trailers-only, one HEADERS frame ending the stream
                        req.response().putHeader("content-type", "application/grpc").putHeader("grpc-status", "5")
                                .putHeader("grpc-message", "not found").end();
                    } else {
                        // a head and part of a body, then the stream reset
                        req.response().setChunked(true).write("part").onComplete(v -> vertx.setTimer(100,
                                t -> req.response().reset(2)));
                    }
                }).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort());
    }

    /** A proxy whose cluster reaches {@code upstream} over h2c; its listener's port. */
    private int proxy(int upstream) throws Exception {
        int port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy("static_resources:\n  listeners:\n"
                + Http1RequestsTest.listener("front", port, "codec_type: AUTO")
                + Http1RequestsTest.clusterC(upstream) + """
                    typed_extension_protocol_options:
                      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                        explicit_http_config: {http2_protocol_options: {}}
                """);
        return port;
    }

    /** The frames of the answer to one request for {@code path}, as {@code headers END}, {@code data 4}, ... */
    private static List<String> frames(int port, String path, String contentType) throws Exception {
        return frames(port, "svc", path, contentType);
    }

    private static List<String> frames(int port, String authority, String path, String contentType)
            throws Exception {
        return frames(port, authority, "POST", path, contentType);
    }

    private static List<String> frames(int port, String authority, String method, String path, String contentType)
            throws Exception {
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        List<String> frames = new CopyOnWriteArrayList<>();
        java.util.concurrent.CountDownLatch ended = new java.util.concurrent.CountDownLatch(1);
        try {
            var client = ConnectionLifetimeTest.H2cClient.connect(group, port, msg -> {
                if (msg instanceof Http2HeadersFrame h) {
                    frames.add("headers " + (h.headers().status() != null ? h.headers().status() + " " : "")
                            + (h.headers().get("grpc-status") != null ? "grpc-status=" + h.headers().get("grpc-status")
                            + " " : "") + (h.headers().contains("content-length") ? "content-length="
                            + h.headers().get("content-length") + " " : "") + (h.isEndStream() ? "END" : "-"));
                    if (h.isEndStream()) {
                        ended.countDown();
                    }
                } else if (msg instanceof Http2DataFrame d) {
                    frames.add("data " + d.content().readableBytes() + (d.isEndStream() ? " END" : ""));
                    if (d.isEndStream()) {
                        ended.countDown();
                    }
                } else if (msg instanceof Http2ResetFrame r) {
                    frames.add("rst " + r.errorCode());
                    ended.countDown();
                }
            });
            Channel ch = client.channel();
            DefaultHttp2Headers headers = new DefaultHttp2Headers();
            headers.method(method).path(path).scheme("http").authority(authority).add("content-type", contentType)
                    .add("te", "trailers");
            ch.writeAndFlush(new DefaultHttp2HeadersFrame(headers, true).stream(client.frames().newStream())).sync();
            assertTrue(ended.await(10, TimeUnit.SECONDS), "ended: " + frames);
            ch.close().sync();
            return frames;
        } finally {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        }
    }

    @Test
    void aTrailersOnlyGrpcAnswerIsOneHeadersFrameEndingTheStream() throws Exception {
        int port = start();
        List<String> frames = frames(port, "/pkg.Svc/Fail", "application/grpc");
        // the upstream's headers as it sent them (Vert.x's carry a content-length of 0), in one frame
        assertEquals(1, frames.size(), frames.toString());
        assertTrue(frames.get(0).startsWith("headers 200 grpc-status=5 ") && frames.get(0).endsWith(" END"),
                frames.toString());
    }

    @Test
    void aGrpcLocalReplyIsOneHeadersFrameWithoutAContentLength() throws Exception {
        int port = start();
        // no virtual host for the authority: 404, trailers-only UNIMPLEMENTED, as Envoy's gRPC local reply
        assertEquals(List.of("headers 200 grpc-status=12 END"), frames(port, "nowhere", "/pkg.Svc/M",
                "application/grpc"));
    }

    @Test
    void aBodyTheUpstreamResetIsResetWithNoErrorAfterWhatCame() throws Exception {
        int port = start();
        assertEquals(List.of("headers 200 -", "data 4", "rst 0"), frames(port, "/stream", "text/plain"));
    }

    @Test
    void aBodyAnUpstreamSendsWithAnAnswerToHeadOrA204Or304IsNotRelayedAndTheHeadEndsTheStream() throws Exception {
        // an answer that has no body by definition: the caller gets its head alone, ending the stream, whatever DATA
        // the upstream sent after it (an HTTP/2 client such as nghttp rejects such DATA as a protocol error)
        try (RawHttp2Upstream raw = new RawHttp2Upstream()) {
            int port = proxy(raw.port());
            assertEquals(List.of("headers 200 END"), frames(port, "svc", "HEAD", "/", "text/plain"));
            bodyRefused(proxy.logged(200));
            proxy.requests.clear();
            // an HTTP/1.1 caller's HEAD: its codec sent no body before either, but the log counted it as sent
            try (java.net.Socket h1 = new java.net.Socket("127.0.0.1", port)) {
                h1.getOutputStream().write("HEAD / HTTP/1.1\r\nhost: svc\r\n\r\n".getBytes(
                        java.nio.charset.StandardCharsets.US_ASCII));
                String status = new java.io.BufferedReader(new java.io.InputStreamReader(h1.getInputStream(),
                        java.nio.charset.StandardCharsets.US_ASCII)).readLine();
                assertEquals("HTTP/1.1 200 OK", status);
            }
            bodyRefused(proxy.logged(200));
            raw.head = new String[] {":status", "204"};
            assertEquals(List.of("headers 204 END"), frames(port, "svc", "GET", "/", "text/plain"));
            bodyRefused(proxy.logged(204));
            raw.head = new String[] {":status", "304"};
            assertEquals(List.of("headers 304 END"), frames(port, "svc", "GET", "/", "text/plain"));
            raw.head = new String[] {":status", "200"};
            assertEquals(List.of("headers 200 -", "data 2 END"), frames(port, "svc", "GET", "/", "text/plain"),
                    "a GET's answer keeps its body");
        }
    }

    /**
     * An HTTP/2 upstream's answer that ends with its head (HEADERS with END_STREAM, no content-length) reaches an
     * HTTP/1.1 caller with {@code content-length: 0}, as Envoy's HTTP/1 codec writes a headers-only answer, not as an
     * empty chunked body; an answer with a body is still chunked.
     */
    @Test
    void anAnswerThatEndedWithItsHeadReachesAnHttp1CallerWithALengthOfZero() throws Exception {
        try (RawHttp2Upstream raw = new RawHttp2Upstream()) {
            int port = proxy(raw.port());
            raw.headOnly = true;
            try (java.net.Socket h1 = new java.net.Socket("127.0.0.1", port)) {
                h1.setSoTimeout(10_000);
                var out = h1.getOutputStream();
                var in = new java.io.BufferedReader(new java.io.InputStreamReader(h1.getInputStream(),
                        java.nio.charset.StandardCharsets.ISO_8859_1));
                out.write("GET / HTTP/1.1\r\nhost: svc\r\n\r\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
                List<String> head = new java.util.ArrayList<>();
                for (String line; !(line = in.readLine()).isEmpty(); ) {
                    head.add(line.toLowerCase(java.util.Locale.ROOT));
                }
                assertEquals("http/1.1 200 ok", head.get(0));
                assertTrue(head.contains("content-length: 0"), head.toString());
                assertTrue(head.stream().noneMatch(l -> l.startsWith("transfer-encoding")), head.toString());
                // the connection goes on: the next answer has a body, chunked
                raw.headOnly = false;
                out.write("GET / HTTP/1.1\r\nhost: svc\r\n\r\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
                List<String> next = new java.util.ArrayList<>();
                for (String line; !(line = in.readLine()).isEmpty(); ) {
                    next.add(line.toLowerCase(java.util.Locale.ROOT));
                }
                assertEquals("http/1.1 200 ok", next.get(0), "no stray bytes of the first answer: " + next);
                assertTrue(next.contains("transfer-encoding: chunked"), next.toString());
            }
        }
    }

    @Test
    void anAnswerThatEndsBeforeItsRequestBodyIsFollowedByAResetWithNoErrorThatStopsTheUpload() throws Exception {
        // the upstream refuses the body unread: 413 at once
        int upstream = vertx.createHttpServer().requestHandler(req -> req.response().setStatusCode(413).end())
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        int port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy(LoopbackProxy.inboundConfig(port, upstream, ""));
        var stats = proxy.withStats();
        String chunk = "x".repeat(16 * 1024);
        try (Http2Wire h2 = Http2Wire.client(port)) {
            h2.headers(1, false, ":method", "POST", ":scheme", "http", ":path", "/upload", ":authority", "svc",
                    "content-length", String.valueOf(3 * 1024 * 1024)).data(1, false, chunk);
            List<Object> answer = h2.until(1);
            assertEquals("413", h2.status(answer, 1), answer.toString());
            assertTrue(answer.get(answer.size() - 1) instanceof Http2Wire.Frame f && f.endsStream(),
                    answer.toString());
            // as Envoy, RST_STREAM NO_ERROR once the answer ended (RFC 9113 8.1): the client stops sending the rest
            assertEquals("RST_STREAM 1 0", String.valueOf(h2.next()));
            // the connection goes on
            h2.headers(3, true, ":method", "GET", ":scheme", "http", ":path", "/x", ":authority", "svc");
            assertEquals("413", h2.status(h2.until(3), 3));
        }
        for (int i = 0; i < 200 && proxy.requests.size() < 2; i++) {
            Thread.sleep(10);
        }
        // an answered request, not a reset one: logged 413 without a flag, counted only as the codec's reset sent
        var logged = proxy.requests.get(0);
        assertEquals(413, logged.responseCode());
        assertEquals(java.util.Set.of(), logged.responseFlags());
        assertEquals(1.0, stats.get("envoy_http2_tx_reset").gauge().value());
        assertEquals(0, LoopbackProxy.stat(stats, "inbound_0.0.0.0_8080", "downstream_rq_tx_reset"));
        assertEquals(0, LoopbackProxy.stat(stats, "inbound_0.0.0.0_8080", "downstream_rq_rx_reset"));
    }

    /**
     * The log of an answer whose body the proxy refused: as Envoy's codec resets an upstream stream with DATA on an
     * answer that has no body, an upstream protocol error; no body byte counted as sent.
     */
    private static void bodyRefused(dev.inmesh.runtime.stats.StreamInfo logged) {
        assertEquals(java.util.Set.of(dev.inmesh.runtime.stats.ResponseFlag.UPSTREAM_PROTOCOL_ERROR),
                logged.responseFlags());
        assertEquals("upstream_reset_after_response_started{protocol_error}", logged.responseCodeDetails());
        assertEquals(0, logged.bytesSent());
    }
}
