package dev.inmesh.runtime.inbound;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.RequestOptions;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@code mesh.inbound(handler)} under a compressor filter an Istio EnvoyFilter put before the router of
 * {@code virtualInbound}: the service's responses reach a caller that takes gzip gzipped, streamed as the service
 * writes them, and any other response as the service wrote it.
 */
class InboundCompressorTest {
    private static final String CONFIG = """
            static_resources:
              listeners:
              - name: virtualInbound
                address: {socket_address: {address: 0.0.0.0, port_value: 15006}}
                use_original_dst: true
                traffic_direction: INBOUND
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: inbound_0.0.0.0_9080
                      http_filters:
                      - name: envoy.filters.http.compressor
                        typed_config:
                          "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                          type_url: type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor
                          value:
                            response_direction_config:
                              common_config: {min_content_length: 100, content_type: [application/json, text/plain]}
                            compressor_library:
                              name: text_optimized
                              typed_config:
                                "@type": type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip
                                compression_level: BEST_SPEED
                      - name: envoy.filters.http.router
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                      route_config:
                        name: inbound|9080||
                        validate_clusters: false
                        virtual_hosts:
                        - name: inbound|http|9080
                          domains: ["*"]
                          routes:
                          - {match: {prefix: /}, route: {cluster: "inbound|9080||", timeout: 0s}}
            """;
    /**
     * {@link #CONFIG} with the virtual host's CompressorPerRoute turning compression off, and a route {@code /seen}
     * whose {@code overrides} turn it on again and take the request's {@code accept-encoding} off.
     */
    private static final String PER_ROUTE = CONFIG.replace("""
                          routes:
                          - {match: {prefix: /}, route: {cluster: "inbound|9080||", timeout: 0s}}
            """, """
                          typed_per_filter_config:
                            envoy.filters.http.compressor:
                              "@type": %1$s
                              disabled: true
                          routes:
                          - match: {prefix: /seen}
                            route: {cluster: "inbound|9080||", timeout: 0s}
                            typed_per_filter_config:
                              envoy.filters.http.compressor:
                                "@type": %1$s
                                overrides: {response_direction_config: {remove_accept_encoding_header: true}}
                          - {match: {prefix: /}, route: {cluster: "inbound|9080||", timeout: 0s}}
            """.formatted("type.googleapis.com/envoy.extensions.filters.http.compressor.v3.CompressorPerRoute"));
    private static final String BIG = "{\"reviews\": [" + "\"a fine book\", ".repeat(40) + "\"ok\"]}";

    Vertx vertx;
    SnapshotHolder snapshots;
    HttpClient client;
    int port;
    /** The {@code accept-encoding} the service saw on {@code /seen} (null: none). */
    volatile String seen = "unset";
    /** The next chunks of {@code /stream}, which the service writes once the caller has the first. */
    final Promise<Void> firstArrived = Promise.promise();

    @BeforeEach
    void start() throws Exception {
        vertx = Vertx.vertx();
        snapshots = new SnapshotHolder();
        snapshots.apply(EnvoyConfigReader.read(CONFIG));
        port = vertx.createHttpServer().requestHandler(new InboundHandler(this::serve, snapshots, info -> { }))
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        client = vertx.createHttpClient(); // no decompression: the body as it crossed the wire
    }

    @AfterEach
    void stop() throws Exception {
        snapshots.close();
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** The service: its answers by path. */
    private void serve(HttpServerRequest req) {
        var resp = req.response();
        switch (req.path()) {
            case "/big" -> resp.putHeader("content-type", "application/json").end(BIG);
            case "/seen" -> {
                seen = req.getHeader("accept-encoding");
                resp.putHeader("content-type", "application/json").end(BIG);
            }
            case "/small" -> resp.putHeader("content-type", "application/json").end("{\"ok\": true}");
            // a header on two lines each
            case "/varies" -> resp.putHeader("content-type", "application/json")
                    .putHeader("vary", java.util.List.<String>of("Origin", "Cookie")).end(BIG);
            case "/no-transform" -> resp.putHeader("content-type", "application/json")
                    .putHeader("cache-control", java.util.List.<String>of("public", "no-transform")).end(BIG);
            case "/encoded" -> resp.putHeader("content-type", "application/json")
                    .putHeader("content-encoding", "identity-ish").end(BIG);
            case "/png" -> resp.putHeader("content-type", "image/png").end(BIG);
            case "/stream" -> {
                resp.putHeader("content-type", "text/plain").setChunked(true);
                resp.write(chunk(0));
                // the rest once the caller inflated the first: it was sent before the body ended
                firstArrived.future().onComplete(v -> {
                    for (int i = 1; i < 50; i++) {
                        resp.write(chunk(i));
                    }
                    resp.end();
                });
            }
            default -> resp.setStatusCode(404).end();
        }
    }

    private static String chunk(int i) {
        return "line " + i + " " + "abcdefgh".repeat(200) + "\n";
    }

    private record Answer(MultiMap headers, Buffer body) {}

    private Answer get(String path, String acceptEncoding) throws Exception {
        RequestOptions o = new RequestOptions().setMethod(HttpMethod.GET).setHost("127.0.0.1").setPort(port)
                .setURI(path);
        if (acceptEncoding != null) {
            o.putHeader("accept-encoding", acceptEncoding);
        }
        return onEventLoop(vertx, () -> client.request(o).compose(r -> r.send())
                .compose(r -> r.body().map(b -> new Answer(r.headers(), b)))).await(10, TimeUnit.SECONDS);
    }

    private static String gunzip(Buffer b) throws Exception {
        try (var in = new GZIPInputStream(new ByteArrayInputStream(b.getBytes()))) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    @Test
    void aResponseAboveMinContentLengthToACallerThatTakesGzipIsGzipped() throws Exception {
        Answer a = get("/big", "gzip, deflate");
        assertEquals("gzip", a.headers().get("content-encoding"));
        assertFalse(a.headers().contains("content-length") && a.headers().get("content-length")
                .equals(Integer.toString(BIG.length())), "the service's length is gone");
        assertEquals("chunked", a.headers().get("transfer-encoding"));
        assertEquals("Accept-Encoding", a.headers().get("vary"));
        assertEquals(BIG, gunzip(a.body()));
    }

    /**
     * A CompressorPerRoute, as Envoy's filter reads it by its name: the virtual host's {@code disabled} leaves its
     * routes' responses as the service wrote them (no {@code vary} either); a route's {@code overrides} with a
     * {@code response_direction_config} compresses again, and its {@code remove_accept_encoding_header} keeps the
     * caller's {@code accept-encoding} from the service.
     */
    @Test
    void aVirtualHostsCompressorPerRouteTurnsCompressionOffAndARoutesOverridesTurnItBackOn() throws Exception {
        snapshots.apply(EnvoyConfigReader.read(PER_ROUTE));
        Answer off = get("/big", "gzip");
        assertNull(off.headers().get("content-encoding"));
        assertNull(off.headers().get("vary"));
        assertEquals(BIG, off.body().toString());
        Answer on = get("/seen", "gzip");
        assertEquals("gzip", on.headers().get("content-encoding"));
        assertEquals(BIG, gunzip(on.body()));
        assertNull(seen, "the route's remove_accept_encoding_header");
    }

    @Test
    void aCallerWithoutAcceptEncodingGetsTheBodyAsTheServiceWroteIt() throws Exception {
        Answer a = get("/big", null);
        assertNull(a.headers().get("content-encoding"));
        assertEquals(BIG, a.body().toString());
        assertEquals("Accept-Encoding", a.headers().get("vary"), "as Envoy, for caches in front");
    }

    /**
     * A header the service set on several lines, read as Envoy's header map joins them with {@code ,}: both
     * {@code vary} values kept before the appended {@code Accept-Encoding}, compressed or not; a {@code no-transform}
     * on the second {@code cache-control} line leaves the body as the service wrote it.
     */
    @Test
    void aHeaderTheServiceSetOnSeveralLinesIsReadWithItsValuesJoined() throws Exception {
        Answer varies = get("/varies", "gzip");
        assertEquals("gzip", varies.headers().get("content-encoding"));
        assertEquals(java.util.List.of("Origin,Cookie, Accept-Encoding"), varies.headers().getAll("vary"));
        assertEquals(BIG, gunzip(varies.body()));
        Answer plain = get("/varies", null);
        assertEquals(java.util.List.of("Origin,Cookie, Accept-Encoding"), plain.headers().getAll("vary"));
        assertEquals(BIG, plain.body().toString());
        Answer noTransform = get("/no-transform", "gzip");
        assertNull(noTransform.headers().get("content-encoding"));
        assertEquals(java.util.List.of("public", "no-transform"), noTransform.headers().getAll("cache-control"));
        assertEquals(BIG, noTransform.body().toString());
    }

    @Test
    void smallEncodedOrUnlistedResponsesGoAsTheServiceWroteThem() throws Exception {
        Answer small = get("/small", "gzip");
        assertNull(small.headers().get("content-encoding"));
        assertEquals("{\"ok\": true}", small.body().toString());
        assertNull(small.headers().get("vary"));
        Answer encoded = get("/encoded", "gzip");
        assertEquals("identity-ish", encoded.headers().get("content-encoding"));
        assertEquals(BIG, encoded.body().toString());
        Answer png = get("/png", "gzip");
        assertNull(png.headers().get("content-encoding"));
        assertEquals(BIG, png.body().toString());
    }

    /**
     * A caller that leaves while the service's response is being gzipped (the service still holds it open): the gzip
     * stream's deflater is freed when the connection closes, as Envoy's compressor is destroyed with its stream, not
     * left to the garbage collector.
     */
    @Test
    void aCallerThatLeavesMidResponseFreesItsGzipStream() throws Exception {
        dev.inmesh.runtime.router.GzipLeaks.leaveMidResponse(port, "/stream");
    }

    @Test
    void aStreamedBodyIsGzippedAsItStreamsAndInflatesToWhatTheServiceWrote() throws Exception {
        RequestOptions o = new RequestOptions().setMethod(HttpMethod.GET).setHost("127.0.0.1").setPort(port)
                .setURI("/stream").putHeader("accept-encoding", "gzip");
        Buffer received = Buffer.buffer();
        java.util.zip.Inflater first = new java.util.zip.Inflater(true);
        byte[] inflated = new byte[1 << 16];
        Future<MultiMap> done = onEventLoop(vertx, () -> client.request(o).compose(r -> r.send()).compose(r -> {
            Promise<MultiMap> end = Promise.promise();
            r.handler(b -> {
                received.appendBuffer(b);
                if (!firstArrived.future().isComplete() && received.length() > 10) {
                    first.setInput(received.getBytes(10, received.length()));
                    try {
                        int n = first.inflate(inflated);
                        if (n == chunk(0).length()) {
                            firstArrived.complete(); // the first chunk, whole, while the service still writes
                        }
                    } catch (java.util.zip.DataFormatException e) {
                        firstArrived.fail(e);
                    }
                }
            });
            r.endHandler(v -> end.complete(r.headers()));
            return end.future();
        }));
        MultiMap headers = done.await(10, TimeUnit.SECONDS);
        assertEquals("gzip", headers.get("content-encoding"));
        StringBuilder expected = new StringBuilder();
        for (int i = 0; i < 50; i++) {
            expected.append(chunk(i));
        }
        assertEquals(expected.toString(), gunzip(received));
        byte[] whole = expected.toString().getBytes(StandardCharsets.UTF_8);
        assertArrayEquals(whole, gunzip(received).getBytes(StandardCharsets.UTF_8));
    }
}
