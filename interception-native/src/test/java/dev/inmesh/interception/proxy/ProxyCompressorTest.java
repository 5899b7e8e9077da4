package dev.inmesh.interception.proxy;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.RequestOptions;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Envoy's compressor filter (gzip) in the standalone proxy's connection manager, on loopback: an upstream's response
 * to a caller that takes gzip is gzipped as it streams through, with its trailers; other responses pass as they came.
 */
@Timeout(30)
class ProxyCompressorTest {
    private static final String BIG = "{\"items\": [" + "\"item\", ".repeat(100) + "\"last\"]}";

    private Vertx backends;
    private LoopbackProxy proxy;
    private HttpClient client;
    /** The second half of {@code /stream}, which the upstream sends once the caller got the first. */
    private final Promise<Void> firstArrived = Promise.promise();

    private static String chunk(int i) {
        return "row " + i + " " + "0123456789".repeat(100) + "\n";
    }

    /** The accept-encoding the upstream last saw ("none" for none). */
    private volatile String upstreamAcceptEncoding;

    private void answer(HttpServerRequest req) {
        upstreamAcceptEncoding = req.headers().contains("accept-encoding") ? req.getHeader("accept-encoding") : "none";
        var resp = req.response();
        switch (req.path()) {
            case "/big", "/json" -> resp.putHeader("content-type", "application/json").end(BIG);
            case "/small" -> resp.putHeader("content-type", "application/json").end("{}");
            // a header on two lines each
            case "/varies" -> resp.putHeader("content-type", "application/json")
                    .putHeader("vary", java.util.List.<String>of("Origin", "Cookie")).end(BIG);
            case "/no-transform" -> resp.putHeader("content-type", "application/json")
                    .putHeader("cache-control", java.util.List.<String>of("public", "no-transform")).end(BIG);
            case "/stream" -> {
                resp.putHeader("content-type", "text/plain").setChunked(true).putTrailer("x-checksum", "abc");
                for (int i = 0; i < 20; i++) {
                    resp.write(chunk(i));
                }
                firstArrived.future().onComplete(v -> {
                    for (int i = 20; i < 40; i++) {
                        resp.write(chunk(i));
                    }
                    resp.end();
                });
            }
            case "/drip" -> {
                // a chunk now and then, never the end: what the proxy sends after its client left fails there
                resp.putHeader("content-type", "text/plain").setChunked(true).write(chunk(0));
                long timer = backends.setPeriodic(20, t -> resp.write(chunk(1)));
                resp.closeHandler(v -> backends.cancelTimer(timer));
            }
            default -> resp.setStatusCode(404).end();
        }
    }

    private int upstream;

    @BeforeEach
    void start() throws Exception {
        backends = Vertx.vertx();
        upstream = backends.createHttpServer().requestHandler(this::answer).listen(0, "127.0.0.1")
                .await(10, TimeUnit.SECONDS).actualPort();
        proxy(UnaryOperator.identity());
    }

    /** Starts the proxy with the compressor filter, its config changed by {@code change}. */
    private void proxy(UnaryOperator<String> change) throws Exception {
        int proxyPort = LoopbackProxy.freePort();
        String yaml = change.apply(LoopbackProxy.inboundConfig(proxyPort, upstream, """
                - name: envoy.filters.http.compressor
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor
                    response_direction_config:
                      remove_accept_encoding_header: true
                    compressor_library:
                      name: text_optimized
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip
                """));
        proxy = new LoopbackProxy(yaml);
        client = backends.createHttpClient(new HttpClientOptions().setDefaultHost("127.0.0.1")
                .setDefaultPort(proxyPort));
    }

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        backends.close().await(10, TimeUnit.SECONDS);
    }

    private record Answer(MultiMap headers, Buffer body, MultiMap trailers) {}

    /** A GET whose body is read as it comes; {@code onChunk} sees the body so far after each piece. */
    private Answer get(String path, String acceptEncoding, java.util.function.Consumer<Buffer> onChunk)
            throws Exception {
        RequestOptions o = new RequestOptions().setMethod(HttpMethod.GET).setURI(path);
        if (acceptEncoding != null) {
            o.putHeader("accept-encoding", acceptEncoding);
        }
        return onEventLoop(backends, () -> client.request(o).compose(r -> r.send()).compose(r -> {
            Promise<Answer> end = Promise.promise();
            Buffer body = Buffer.buffer();
            r.handler(b -> {
                body.appendBuffer(b);
                onChunk.accept(body);
            });
            r.endHandler(v -> end.complete(new Answer(r.headers(), body, r.trailers())));
            return end.future();
        })).await(10, TimeUnit.SECONDS);
    }

    private static String gunzip(Buffer b) throws Exception {
        try (var in = new GZIPInputStream(new ByteArrayInputStream(b.getBytes()))) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    /**
     * As Envoy's filter, which counts each request it decodes in its request direction's {@code not_compressed} when
     * it compresses no request (no {@code request_direction_config}): {@code request.not_compressed} counts every
     * request, gzipped answer or not, beside the response's counters.
     */
    @Test
    void everyRequestCountsInTheRequestDirectionsNotCompressed() throws Exception {
        var registry = proxy.withStats();
        get("/big", "gzip", b -> { });
        get("/small", "gzip", b -> { });
        get("/big", null, b -> { });
        String p = "inbound_0.0.0.0_8080";
        String gzip = "compressor_text_optimized_gzip_";
        assertEquals(3, LoopbackProxy.stat(registry, p, gzip + "request_not_compressed"));
        assertEquals(0, LoopbackProxy.stat(registry, p, gzip + "request_compressed"));
        assertEquals(0, LoopbackProxy.stat(registry, p, gzip + "request_total_uncompressed_bytes"));
        assertEquals(1, LoopbackProxy.stat(registry, p, gzip + "response_compressed"));
        assertEquals(2, LoopbackProxy.stat(registry, p, gzip + "response_not_compressed"));
        assertEquals(0, LoopbackProxy.stat(registry, p, gzip + "header_compressor_overshadowed"));
    }

    @Test
    void anUpstreamResponseToACallerThatTakesGzipIsGzippedWithoutItsLength() throws Exception {
        Answer a = get("/big", "gzip", b -> { });
        assertEquals("gzip", a.headers().get("content-encoding"));
        assertNull(a.headers().get("content-length"));
        assertEquals("Accept-Encoding", a.headers().get("vary"));
        assertEquals(BIG, gunzip(a.body()));
        assertEquals("none", upstreamAcceptEncoding, "remove_accept_encoding_header: the upstream compresses nothing");
    }

    /**
     * A CompressorPerRoute, as Envoy's filter reads it by its name: the route's {@code disabled} passes its answers as
     * they came and leaves the caller's {@code accept-encoding} on (the filter, off, removes nothing); the virtual
     * host's {@code overrides} keep compressing its other routes and send their {@code accept-encoding} upstream
     * ({@code remove_accept_encoding_header: false} over the filter's true).
     */
    @Test
    void aRoutesCompressorPerRouteTurnsCompressionOffAndTheVirtualHostsOverridesKeepAcceptEncoding()
            throws Exception {
        proxy.close();
        String type = "\"@type\": type.googleapis.com/envoy.extensions.filters.http.compressor.v3.CompressorPerRoute";
        proxy(yaml -> yaml.replace("""
                              routes:
                              - match: {prefix: /}
                                route: {cluster: inbound|8080||}
                """, """
                              typed_per_filter_config:
                                envoy.filters.http.compressor:
                                  %s
                                  overrides: {response_direction_config: {remove_accept_encoding_header: false}}
                              routes:
                              - match: {prefix: /big}
                                route: {cluster: inbound|8080||}
                                typed_per_filter_config:
                                  envoy.filters.http.compressor: {%s, disabled: true}
                              - match: {prefix: /}
                                route: {cluster: inbound|8080||}
                """.formatted(type, type)));
        Answer off = get("/big", "gzip", b -> { });
        assertNull(off.headers().get("content-encoding"));
        assertNull(off.headers().get("vary"));
        assertEquals(BIG, off.body().toString());
        assertEquals("gzip", upstreamAcceptEncoding);
        Answer on = get("/json", "gzip", b -> { });
        assertEquals("gzip", on.headers().get("content-encoding"));
        assertEquals(BIG, gunzip(on.body()));
        assertEquals("gzip", upstreamAcceptEncoding, "the virtual host's remove_accept_encoding_header: false");
    }

    /**
     * An upstream's header on several lines, read as Envoy's header map joins them with {@code ,}: both {@code vary}
     * values kept before the appended {@code Accept-Encoding}, compressed or not; a {@code no-transform} on the second
     * {@code cache-control} line leaves the body as it came.
     */
    @Test
    void anUpstreamHeaderOnSeveralLinesIsReadWithItsValuesJoined() throws Exception {
        Answer varies = get("/varies", "gzip", b -> { });
        assertEquals("gzip", varies.headers().get("content-encoding"));
        assertEquals(java.util.List.of("Origin,Cookie, Accept-Encoding"), varies.headers().getAll("vary"));
        assertEquals(BIG, gunzip(varies.body()));
        Answer plain = get("/varies", null, b -> { });
        assertEquals(java.util.List.of("Origin,Cookie, Accept-Encoding"), plain.headers().getAll("vary"));
        assertEquals(BIG, plain.body().toString());
        Answer noTransform = get("/no-transform", "gzip", b -> { });
        assertNull(noTransform.headers().get("content-encoding"));
        assertEquals(java.util.List.of("public", "no-transform"), noTransform.headers().getAll("cache-control"));
        assertEquals(BIG, noTransform.body().toString());
    }

    @Test
    void smallResponsesAndCallersWithoutGzipGetTheBodyAsItCame() throws Exception {
        Answer small = get("/small", "gzip", b -> { });
        assertNull(small.headers().get("content-encoding"));
        assertEquals("{}", small.body().toString());
        Answer plain = get("/big", "identity", b -> { });
        assertNull(plain.headers().get("content-encoding"));
        assertEquals(BIG, plain.body().toString());
        assertEquals(Integer.toString(BIG.length()), plain.headers().get("content-length"));
    }

    /**
     * A client that leaves while the proxy gzips an upstream's streamed answer (the upstream still sends it): the
     * gzip stream's deflater is freed when the connection closes, as Envoy's compressor is destroyed with its stream,
     * not left to the garbage collector.
     */
    @Test
    void aClientThatLeavesMidResponseFreesItsGzipStream() throws Exception {
        dev.inmesh.runtime.router.GzipLeaks.leaveMidResponse(proxy.addresses.get(0).getPort(), "/drip");
    }

    @Test
    void aStreamedBodyIsGzippedIncrementallyAndItsTrailersPass() throws Exception {
        // trailers over HTTP/1 on both sides, which Envoy's codec drops unless enable_trailers
        proxy.close();
        proxy(yaml -> ProxyTrailersTest.enableTrailers(yaml, true, true));
        java.util.zip.Inflater reader = new java.util.zip.Inflater(true);
        byte[] inflated = new byte[1 << 20];
        int firstHalf = 0;
        for (int i = 0; i < 20; i++) {
            firstHalf += chunk(i).length();
        }
        int wanted = firstHalf;
        Answer a = get("/stream", "gzip", body -> {
            if (firstArrived.future().isComplete() || body.length() <= 10) {
                return;
            }
            reader.reset();
            reader.setInput(body.getBytes(10, body.length()));
            try {
                if (reader.inflate(inflated) == wanted) {
                    firstArrived.complete(); // what the upstream sent so far arrived whole before its end
                }
            } catch (java.util.zip.DataFormatException e) {
                firstArrived.fail(e);
            }
        });
        StringBuilder expected = new StringBuilder();
        for (int i = 0; i < 40; i++) {
            expected.append(chunk(i));
        }
        assertEquals("gzip", a.headers().get("content-encoding"));
        assertEquals(expected.toString(), gunzip(a.body()));
        assertEquals("abc", a.trailers().get("x-checksum"));
        assertFalse(a.headers().contains("content-length"));
    }
}
