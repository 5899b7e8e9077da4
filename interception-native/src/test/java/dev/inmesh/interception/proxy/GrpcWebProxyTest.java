package dev.inmesh.interception.proxy;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Envoy's gRPC-Web filter in the standalone proxy, on loopback: a connection manager with
 * {@code envoy.filters.http.grpc_web} (as istiod writes it for a port named {@code grpc-web}) in front of a gRPC
 * server over h2c (its cluster HTTP/2, as Istio makes it), called as a browser's gRPC-Web client calls it over
 * HTTP/1.1.
 */
@Timeout(30)
class GrpcWebProxyTest {
    private Vertx backends;
    private LoopbackProxy proxy;
    private HttpClient client;
    private int proxyPort;
    /** What the gRPC server saw of the last request to each path: its version, headers and body. */
    private final Map<String, Seen> seen = new ConcurrentHashMap<>();

    private record Seen(HttpVersion version, MultiMap headers, Buffer body) {}

    /** A gRPC message frame: flag 0, 4-byte big-endian length, the message. */
    private static Buffer frame(String message) {
        byte[] m = message.getBytes(StandardCharsets.UTF_8);
        return Buffer.buffer().appendByte((byte) 0).appendInt(m.length).appendBytes(m);
    }

    /** The message of the gRPC frame at {@code at} of {@code b}. */
    private static String message(Buffer b, int at) {
        return b.getString(at + 5, at + 5 + b.getInt(at + 1));
    }

    /**
     * A gRPC server (h2c): {@code /echo.Echo/Say} answers "echo: " and the request's message, grpc-status 0;
     * {@code /echo.Echo/Missing} a message and then grpc-status 5 with a grpc-message; {@code /down} (not gRPC) 503
     * with a text body; any other path (a plain HTTP request) 200 {@code plain} as text.
     */
    private int grpcServer() throws Exception {
        return backends.createHttpServer().requestHandler(req -> req.body().onSuccess(body -> {
            seen.put(req.path(), new Seen(req.version(), MultiMap.caseInsensitiveMultiMap().addAll(req.headers()),
                    body));
            answer(req, body);
        })).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    private static void answer(HttpServerRequest req, Buffer body) {
        var resp = req.response();
        switch (req.path()) {
            case "/echo.Echo/Say" -> resp.putHeader("content-type", "application/grpc")
                    .putTrailer("grpc-status", "0").end(frame("echo: " + message(body, 0)));
            case "/echo.Echo/Missing" -> resp.putHeader("content-type", "application/grpc+proto")
                    .putTrailer("grpc-status", "5").putTrailer("grpc-message", "no such thing")
                    .end(frame("partial"));
            case "/down" -> resp.setStatusCode(503).putHeader("content-type", "text/plain").end("upstream down");
            default -> resp.putHeader("content-type", "text/plain").end("plain " + req.method() + " "
                    + req.getHeader("content-type"));
        }
    }

    @BeforeEach
    void start() throws Exception {
        backends = Vertx.vertx();
        int grpc = grpcServer();
        proxyPort = LoopbackProxy.freePort();
        String yaml = """
                static_resources:
                  listeners:
                  - name: grpc-web
                    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
                    traffic_direction: INBOUND
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.http_connection_manager
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                          stat_prefix: inbound_0.0.0.0_8080
                          route_config:
                            name: inbound|8080||
                            virtual_hosts:
                            - name: inbound|http|8080
                              domains: ["*"]
                              routes:
                              - match: {prefix: /}
                                route: {cluster: inbound|8080||}
                          http_filters:
                          - name: envoy.filters.http.grpc_web
                            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb}
                          - name: envoy.filters.http.cors
                            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}
                          - name: envoy.filters.http.compressor
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor
                              response_direction_config: {common_config: {min_content_length: 1}}
                              compressor_library:
                                name: gzip
                                typed_config:
                                  "@type": type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip
                          - name: envoy.filters.http.router
                            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                  clusters:
                  - name: inbound|8080||
                    type: STATIC
                    connect_timeout: 1s
                    typed_extension_protocol_options:
                      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                        explicit_http_config: {http2_protocol_options: {}}
                    load_assignment:
                      cluster_name: inbound|8080||
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                """.formatted(proxyPort, grpc);
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

    private record Answer(int status, MultiMap headers, Buffer body, MultiMap trailers) {}

    private static RequestOptions post(String path, String contentType) {
        return new RequestOptions().setMethod(HttpMethod.POST).setURI(path).putHeader("content-type", contentType)
                .putHeader("x-grpc-web", "1").putHeader("x-user-agent", "grpc-web-javascript/0.1");
    }

    private Answer call(RequestOptions options, Buffer body) throws Exception {
        return onEventLoop(backends, () -> answer(client.request(options).compose(req -> req.send(body))))
                .await(10, TimeUnit.SECONDS);
    }

    private static Future<Answer> answer(Future<io.vertx.core.http.HttpClientResponse> response) {
        return response.compose(r -> r.body().map(b -> new Answer(r.statusCode(), r.headers(), b, r.trailers())));
    }

    /** The lines of the gRPC-Web trailers frame at {@code at} of {@code body}, after checking its flag and length. */
    private static String trailerFrame(Buffer body, int at) {
        assertEquals(0x80, body.getUnsignedByte(at), "the trailers frame's flag");
        assertEquals(body.length() - at - 5, body.getInt(at + 1), "its length: the rest of the body");
        return body.getString(at + 5, body.length());
    }

    private StreamInfo awaitRequest() throws InterruptedException {
        for (int i = 0; i < 100 && proxy.requests.isEmpty(); i++) {
            Thread.sleep(20);
        }
        assertEquals(1, proxy.requests.size());
        return proxy.requests.get(0);
    }

    @Test
    void aBinaryGrpcWebCallReachesTheGrpcServerOverH2AndGetsItsMessageAndTheTrailersFrame() throws Exception {
        Answer a = call(post("/echo.Echo/Say", "application/grpc-web+proto"), frame("hi"));
        assertEquals(200, a.status());
        assertEquals("application/grpc-web+proto", a.headers().get("content-type"));
        assertEquals("echo: hi", message(a.body(), 0));
        int trailersAt = 5 + a.body().getInt(1);
        assertEquals("grpc-status:0\r\n", trailerFrame(a.body(), trailersAt));
        assertTrue(a.trailers().isEmpty(), "the trailers are in the body, not sent as HTTP trailers");

        Seen up = seen.get("/echo.Echo/Say");
        assertEquals(HttpVersion.HTTP_2, up.version(), "the upstream speaks gRPC: HTTP/2");
        assertEquals("application/grpc", up.headers().get("content-type"));
        assertEquals("trailers", up.headers().get("te"));
        assertEquals("identity,deflate,gzip", up.headers().get("grpc-accept-encoding"));
        assertEquals("1", up.headers().get("x-grpc-web"), "passed on, as Envoy's filter leaves it");
        assertEquals("grpc-web-javascript/0.1", up.headers().get("x-user-agent"));
        assertEquals(frame("hi"), up.body());

        StreamInfo info = awaitRequest();
        assertEquals("0", info.grpcStatus(), "counted as the gRPC request it became upstream");
    }

    @Test
    void aGrpcWebAnswerIsNotGzippedByACompressorBeforeTheRouterAsEnvoysSeesTheUpstreamsGrpc() throws Exception {
        Answer a = call(post("/echo.Echo/Say", "application/grpc-web+proto").putHeader("accept-encoding", "gzip"),
                frame("zip?"));
        assertNull(a.headers().get("content-encoding"));
        assertNull(a.headers().get("vary"), "application/grpc is not a type the compressor compresses");
        assertEquals("echo: zip?", message(a.body(), 0));
        assertEquals("grpc-status:0\r\n", trailerFrame(a.body(), 5 + a.body().getInt(1)));
    }

    @Test
    void aGrpcWebCallOverH2cIsTranslatedAsOverHttp1() throws Exception {
        HttpClient h2 = backends.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
                .setHttp2ClearTextUpgrade(false).setDefaultHost("127.0.0.1").setDefaultPort(proxyPort));
        Answer a = onEventLoop(backends, () -> answer(h2.request(post("/echo.Echo/Missing", "application/grpc-web"))
                .compose(req -> req.send(frame("h2"))))).await(10, TimeUnit.SECONDS);
        assertEquals("application/grpc-web+proto", a.headers().get("content-type"));
        assertEquals("partial", message(a.body(), 0));
        assertEquals("grpc-status:5\r\ngrpc-message:no such thing\r\n",
                trailerFrame(a.body(), 5 + a.body().getInt(1)));
        assertTrue(a.trailers().isEmpty(), "no HTTP/2 trailers either");
        h2.close().await(10, TimeUnit.SECONDS); // held until here: Vert.x closes a client no longer referenced
    }

    @Test
    void aTextCallStreamedInOddChunksIsDecodedAndItsAnswerIsBase64() throws Exception {
        String text = Base64.getEncoder().encodeToString(frame("streamed in odd pieces").getBytes());
        RequestOptions options = post("/echo.Echo/Say", "application/grpc-web-text")
                .putHeader("accept", "application/grpc-web-text");
        // chunks of 1, 2, 3, 5 and 7 characters, one every 20 ms (so the body streams), then the rest
        Answer a = streamed(options, req -> writeChunks(req, text, new int[] {1, 2, 3, 5, 7}, 0, 0));
        assertEquals(200, a.status());
        assertEquals("application/grpc-web-text+proto", a.headers().get("content-type"));
        assertEquals(frame("streamed in odd pieces"), seen.get("/echo.Echo/Say").body(), "decoded upstream");
        String body = a.body().toString(StandardCharsets.US_ASCII);
        // each frame is base64 on its own (as Envoy's filter encodes them), so padding may end each one
        String first = Base64.getEncoder().encodeToString(frame("echo: streamed in odd pieces").getBytes());
        assertTrue(body.startsWith(first), body);
        Buffer trailers = Buffer.buffer(Base64.getDecoder().decode(body.substring(first.length())));
        assertEquals("grpc-status:0\r\n", trailerFrame(trailers, 0));
    }

    @Test
    void aWholeTextCallIsDecodedAndItsLengthIsNotTheOneTheClientSent() throws Exception {
        Buffer text = Buffer.buffer(Base64.getEncoder().encode(frame("whole").getBytes()));
        Answer a = call(post("/echo.Echo/Say", "application/grpc-web-text+proto"), text);
        assertEquals(200, a.status());
        assertEquals("application/grpc-web+proto", a.headers().get("content-type"), "binary: accept asked no text");
        assertEquals("echo: whole", message(a.body(), 0));
        Seen up = seen.get("/echo.Echo/Say");
        assertEquals(frame("whole"), up.body());
        // the client's length (of the base64) was dropped, and none stands in for it: as Envoy's gRPC-Web filter
        // removes it, the body goes in DATA frames that no content-length describes
        assertEquals(null, up.headers().get("content-length"));
    }

    /** A call whose chunked body {@code writer} writes (and ends) as it likes. */
    private Answer streamed(RequestOptions options, java.util.function.Consumer<HttpClientRequest> writer)
            throws Exception {
        Promise<Answer> done = Promise.promise();
        client.request(options).onSuccess(req -> {
            req.setChunked(true);
            answer(req.response()).onComplete(done);
            writer.accept(req);
        }).onFailure(done::fail);
        return done.future().await(10, TimeUnit.SECONDS);
    }

    private void writeChunks(HttpClientRequest req, String text, int[] sizes, int at, int i) {
        if (i == sizes.length) {
            req.end(text.substring(at));
            return;
        }
        req.write(text.substring(at, at + sizes[i]));
        backends.setTimer(20, t -> writeChunks(req, text, sizes, at + sizes[i], i + 1));
    }

    @Test
    void aGrpcErrorFromUpstreamArrivesInTheTrailersFrame() throws Exception {
        Answer a = call(post("/echo.Echo/Missing", "application/grpc-web"), frame("?"));
        assertEquals(200, a.status());
        assertEquals("application/grpc-web+proto", a.headers().get("content-type"));
        assertEquals("partial", message(a.body(), 0));
        assertEquals("grpc-status:5\r\ngrpc-message:no such thing\r\n",
                trailerFrame(a.body(), 5 + a.body().getInt(1)));
        assertEquals("5", awaitRequest().grpcStatus(), "the upstream's status, as it sent it");
    }

    @Test
    void aNonGrpcAnswerKeepsItsStatusAndBecomesGrpcStatusAndMessageAsEnvoyAnswersIt() throws Exception {
        Answer a = call(post("/down", "application/grpc-web"), frame("?"));
        assertEquals(503, a.status());
        assertEquals("application/grpc-web+proto", a.headers().get("content-type"));
        assertEquals("14", a.headers().get("grpc-status"), "UNAVAILABLE, mapped from 503");
        assertEquals("upstream down", a.headers().get("grpc-message"));
        assertEquals("0", a.headers().get("content-length"));
        assertEquals(0, a.body().length());
    }

    @Test
    void aTextBodyThatIsNotBase64IsAnswered400WithEnvoysDetailsAndNeverReachesTheServer() throws Exception {
        Answer a = call(post("/echo.Echo/Say", "application/grpc-web-text"), Buffer.buffer("AAA*"));
        assertEquals(400, a.status());
        assertEquals("13", a.headers().get("grpc-status"), "INTERNAL, mapped from 400");
        assertEquals("Bad gRPC-web request, invalid base64 data.", a.headers().get("grpc-message"));
        assertEquals(0, a.body().length());
        assertEquals("grpc_base_64_decode_failed", awaitRequest().responseCodeDetails());
        assertFalse(seen.containsKey("/echo.Echo/Say"));
    }

    @Test
    void aStreamedTextBodyWhoseLengthIsNotAMultipleOfFourIsAnswered400() throws Exception {
        Answer a = streamed(post("/echo.Echo/Say", "application/grpc-web-text"), req -> {
            req.write("AAAA");
            backends.setTimer(50, t -> req.end("AA"));
        });
        assertEquals(400, a.status());
        assertEquals("13", a.headers().get("grpc-status"));
        assertEquals("grpc_base_64_decode_failed_bad_size", awaitRequest().responseCodeDetails());
    }

    @Test
    void aCharacterOutsideBase64InTheMiddleOfAStreamedBodyEndsItWith400AndTheConnectionAfterIt() throws Exception {
        Answer a = streamed(post("/echo.Echo/Say", "application/grpc-web-text"), req -> {
            req.write("AAAA");
            backends.setTimer(50, t -> {
                req.write("A*AA");
                backends.setTimer(50, t2 -> req.end("AAAA"));
            });
        });
        assertEquals(400, a.status());
        assertEquals("13", a.headers().get("grpc-status"));
        assertEquals("Bad gRPC-web request, invalid base64 data.", a.headers().get("grpc-message"));
        assertEquals("grpc_base_64_decode_failed", awaitRequest().responseCodeDetails());
    }

    @Test
    void aPlainHttpRequestOnTheSameListenerPassesUntouched() throws Exception {
        Answer a = call(new RequestOptions().setMethod(HttpMethod.POST).setURI("/plain")
                .putHeader("content-type", "application/json"), Buffer.buffer("{}"));
        assertEquals(200, a.status());
        assertEquals("text/plain", a.headers().get("content-type"));
        assertEquals("plain POST application/json", a.body().toString());
        assertNull(a.headers().get("grpc-status"));
        Seen up = seen.get("/plain");
        assertNull(up.headers().get("te"));
        assertEquals("2", up.headers().get("content-length"));
        // a sub-type Envoy's filter does not implement passes untouched too
        Answer json = call(post("/json", "application/grpc-web+json"), Buffer.buffer("{}"));
        assertEquals("plain POST application/grpc-web+json", json.body().toString());
        for (String s : List.of("/plain", "/json")) {
            assertNull(seen.get(s).headers().get("grpc-accept-encoding"), s);
        }
    }
}
