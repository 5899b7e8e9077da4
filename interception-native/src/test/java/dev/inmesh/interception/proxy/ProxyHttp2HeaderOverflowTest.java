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
 * Request headers over the connection manager's {@code max_headers_count} or {@code max_request_headers_kb}: an HTTP/1
 * request is answered 431, an HTTP/2 stream over the count is reset as Envoy's HTTP/2 codec resets it (details
 * {@code http2.too_many_headers}, flag DPE, {@code http2.header_overflow} counted), the upstream never asked; the
 * connection serves its next stream.
 */
@Timeout(30)
class ProxyHttp2HeaderOverflowTest {
    private Vertx vertx;
    private int upstream;
    private final AtomicInteger served = new AtomicInteger();
    private LoopbackProxy proxy;
    private int port;

    @BeforeEach
    void start() throws Exception {
        vertx = Vertx.vertx();
        upstream = vertx.createHttpServer().requestHandler(req -> {
            served.incrementAndGet();
            req.response().end("ok");
        }).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy(LoopbackProxy.withHcm(LoopbackProxy.inboundConfig(port, upstream, ""),
                "max_request_headers_kb: 2\ncommon_http_protocol_options: {max_headers_count: 5}"));
    }

    @AfterEach
    void stop() throws Exception {
        proxy.close();
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    @Test
    void headersOverTheLimitsResetAnHttp2StreamAndAnswerAnHttp1Request431() throws Exception {
        var stats = proxy.withStats();
        var client = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
                .setHttp2ClearTextUpgrade(false));
        try {
            // as Envoy's HTTP/2 codec counts them, the four pseudo-headers count too: one header of the caller's
            // (5 in all) is served, two (6) are over max_headers_count 5
            assertEquals("200 ok", send(client, get().putHeader("x-h0", "v")));
            assertThrows(StreamResetException.class, () -> send(client, get().putHeader("x-h0", "v")
                    .putHeader("x-h1", "v")));
            assertEquals(1.0, stats.get("envoy_http2_header_overflow").gauge().value());
            // (a head over max_request_headers_kb is over the SETTINGS_MAX_HEADER_LIST_SIZE the proxy advertises
            // too, which an HTTP/2 client honours by not sending it)
            RequestOptions many = get();
            for (int i = 0; i < 6; i++) {
                many.putHeader("x-h" + i, "v");
            }
            assertThrows(StreamResetException.class, () -> send(client, many));
            StreamInfo logged = proxy.logged(0); // the first reset's
            assertEquals("http2.too_many_headers", logged.responseCodeDetails());
            assertEquals(Set.of(ResponseFlag.DOWNSTREAM_PROTOCOL_ERROR), logged.responseFlags());
            assertEquals(1, served.get(), "the upstream was asked only the request within the limit");
            assertEquals(2.0, stats.get("envoy_http2_header_overflow").gauge().value());
            // the connection goes on: a stream within the limits is served
            assertEquals("200 ok", send(client, get()));
        } finally {
            client.close();
        }
        // HTTP/1: 431, as before
        String raw = Http1RequestsTest.exchange(port, "GET /x HTTP/1.1\r\nhost: svc\r\nx-big: " + "a".repeat(3000)
                + "\r\n\r\n");
        assertTrue(raw.startsWith("HTTP/1.1 431 "), raw);
    }

    /**
     * A header block over max_request_headers_kb (2 KiB here), sent by a client that ignores the proxy's
     * SETTINGS_MAX_HEADER_LIST_SIZE: the stream is reset, as Envoy's HTTP/2 codec resets it (Netty's would answer 431
     * first), with INTERNAL_ERROR (Netty's decoder says PROTOCOL_ERROR; nghttp2 and oghttp2 reset a stream whose
     * header callback failed, as Envoy's saveHeader fails one over the limits, with INTERNAL_ERROR), counted and
     * logged as a stream over the count; the connection serves its next stream.
     */
    @Test
    void aHeaderBlockOverTheKilobytesIsResetWithoutAnAnswer() throws Exception {
        var stats = proxy.withStats();
        var hpack = new io.netty.handler.codec.http2.DefaultHttp2HeadersEncoder(
                io.netty.handler.codec.http2.Http2HeadersEncoder.NEVER_SENSITIVE);
        hpack.configuration().maxHeaderListSize(0xFFFFFFFFL);
        try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
            s.setSoTimeout(10_000);
            var out = s.getOutputStream();
            out.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            out.write(Http2Wire.frame(4, 0, 0, new byte[0])); // SETTINGS, none changed
            // over 2 KiB, under the 2.5 KiB past which Netty's decoder ends the connection
            out.write(Http2Wire.frame(1, 0x5, 1, block(hpack, "x-big", "a".repeat(2200))));
            out.write(Http2Wire.frame(1, 0x5, 3, block(hpack, "x-small", "b")));
            out.flush();
            var in = new java.io.DataInputStream(s.getInputStream());
            long reset1 = -1;
            boolean answered1 = false;
            boolean answered3 = false;
            for (int i = 0; i < 50 && !(reset1 >= 0 && answered3); i++) {
                int length = in.readUnsignedShort() << 8 | in.readUnsignedByte();
                int type = in.readUnsignedByte();
                in.readUnsignedByte(); // flags
                int stream = in.readInt() & 0x7fffffff;
                byte[] payload = new byte[length];
                in.readFully(payload);
                if (type == 3 && stream == 1) {
                    reset1 = java.nio.ByteBuffer.wrap(payload).getInt() & 0xffffffffL;
                }
                answered1 |= type == 1 && stream == 1;
                answered3 |= type == 1 && stream == 3;
            }
            assertEquals(2, reset1, "stream 1 reset (INTERNAL_ERROR)");
            assertTrue(!answered1, "stream 1 reset without an answer");
            assertTrue(answered3, "the next stream is served");
        }
        StreamInfo logged = proxy.logged(0);
        assertEquals("http2.too_many_headers", logged.responseCodeDetails());
        assertEquals(Set.of(ResponseFlag.DOWNSTREAM_PROTOCOL_ERROR), logged.responseFlags());
        assertEquals(1.0, stats.get("envoy_http2_header_overflow").gauge().value());
    }

    /** The HPACK block of a GET of /x with one more header {@code name: value}. */
    private static byte[] block(io.netty.handler.codec.http2.DefaultHttp2HeadersEncoder hpack, String name,
                                String value) throws Exception {
        return block(hpack, "/x", "127.0.0.1", name, value);
    }

    /** The HPACK block of a GET of {@code path} at {@code authority} with more headers, names and values in turn. */
    static byte[] block(io.netty.handler.codec.http2.DefaultHttp2HeadersEncoder hpack, String path, String authority,
                        String... namesAndValues) throws Exception {
        var headers = new io.netty.handler.codec.http2.DefaultHttp2Headers().method("GET").scheme("http").path(path)
                .authority(authority);
        for (int i = 0; i < namesAndValues.length; i += 2) {
            headers.add(namesAndValues[i], namesAndValues[i + 1]);
        }
        io.netty.buffer.ByteBuf b = io.netty.buffer.Unpooled.buffer();
        try {
            hpack.encodeHeaders(0, headers, b);
            return io.netty.buffer.ByteBufUtil.getBytes(b);
        } finally {
            b.release();
        }
    }

    private RequestOptions get() {
        return new RequestOptions().setMethod(HttpMethod.GET).setPort(port).setHost("127.0.0.1").setURI("/x");
    }

    private static String send(io.vertx.core.http.HttpClient client, RequestOptions options) throws Exception {
        return client.request(options).compose(req -> req.send().compose(resp -> resp.body()
                .map(b -> resp.statusCode() + " " + b))).await(10, TimeUnit.SECONDS);
    }
}
