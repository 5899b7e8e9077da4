package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.router.RequestBodyStream;
import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.grpc.client.GrpcClientResponse;
import io.vertx.grpc.common.GrpcStatus;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Vert.x's gRPC client over {@code mesh.httpClient()}, to a gRPC-speaking HTTP/2 server on 127.0.0.1: calls, streams,
 * statuses in trailers and the mesh's own answers reach it as they would through a sidecar, and a cluster that uses its
 * downstream's protocol (as Istio's clusters for detected ports and its PassthroughCluster do) sends its calls over
 * h2c.
 */
class MeshGrpcClientTest {
    static final String CLUSTER = "outbound|9090||greeter.default.svc.cluster.local";
    static final String H2 = protocolOptions("explicit_http_config: {http2_protocol_options: {}}");
    static final String DOWNSTREAM = protocolOptions(
            "use_downstream_protocol_config: {http_protocol_options: {}, http2_protocol_options: {}}");

    Vertx vertx;
    DefaultMesh mesh;
    final List<StreamInfo> recorded = new CopyOnWriteArrayList<>();
    /** The HTTP version of each request the server saw. */
    final List<HttpVersion> seen = new CopyOnWriteArrayList<>();
    /** Completed by the caller once it has the first message of /test.Svc/Stream; the stream ends only then. */
    final CompletableFuture<Void> firstReceived = new CompletableFuture<>();
    @TempDir
    Path dir;

    @BeforeEach
    void setUp() {
        vertx = Vertx.vertx();
    }

    @AfterEach
    void tearDown() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    static String protocolOptions(String config) {
        return "    typed_extension_protocol_options:\n"
                + "      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n"
                + "        \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n"
                + "        " + config + "\n";
    }

    /** One gRPC message: uncompressed, its length, its bytes. */
    static Buffer message(String s) {
        Buffer b = Buffer.buffer(s);
        return Buffer.buffer().appendByte((byte) 0).appendInt(b.length()).appendBuffer(b);
    }

    /** A gRPC server by hand: Unary answers one message, Stream two (the second once the first was received). */
    int server() throws Exception {
        HttpServer s = vertx.createHttpServer().requestHandler(this::handle);
        s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        return s.actualPort();
    }

    void handle(HttpServerRequest req) {
        seen.add(req.version());
        req.body().onSuccess(body -> {
            var resp = req.response().putHeader("content-type", "application/grpc");
            if (req.version() != HttpVersion.HTTP_2) {
                resp.setChunked(true); // what a gRPC server would not take; the test reads the version seen
            }
            switch (req.path()) {
                case "/test.Svc/Unary" -> resp.write(message("hello " + body.length())).onSuccess(v ->
                        resp.putTrailer("grpc-status", "0").end());
                case "/test.Svc/Stream" -> resp.write(message("one")).onSuccess(v ->
                        firstReceived.whenComplete((x, t) -> resp.write(message("two"))
                                .onSuccess(w -> resp.putTrailer("grpc-status", "0").end())));
                default -> resp.putTrailer("grpc-status", "8").putTrailer("grpc-message", "too much").end();
            }
        });
    }

    void mesh(String protocolOptions, String endpoint) throws Exception {
        mesh = start(vertx, dir, config(protocolOptions, "", endpoint), recorded);
    }

    /**
     * A mesh whose listener on 9090 routes {@code greeter} to one endpoint of {@link #CLUSTER} with no route timeout;
     * {@code routeAction} adds to the route's action (starting with a comma), {@code protocolOptions} to the cluster.
     */
    static String config(String protocolOptions, String routeAction, String endpoint) {
        return """
                static_resources:
                  listeners:
                  - name: 0.0.0.0_9090
                    address: {socket_address: {address: 0.0.0.0, port_value: 9090}}
                    bind_to_port: false
                    traffic_direction: OUTBOUND
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.http_connection_manager
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                          stat_prefix: outbound_0.0.0.0_9090
                          http_filters:
                          - name: envoy.filters.http.router
                            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                          route_config:
                            name: "9090"
                            virtual_hosts:
                            - name: greeter
                              domains: [greeter, "greeter:9090"]
                              routes:
                              - match: {prefix: /}
                                route: {cluster: "%1$s", timeout: 0s%4$s}
                  clusters:
                  - name: "%1$s"
                    type: STATIC
                    connect_timeout: 1s
                %2$s
                    load_assignment:
                      cluster_name: "%1$s"
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %3$s}}}
                """.formatted(CLUSTER, protocolOptions, endpoint, routeAction);
    }

    /** Starts a mesh from {@code yaml} (no admin server), its requests recorded in {@code recorded}. */
    static DefaultMesh start(Vertx vertx, Path dir, String yaml, List<StreamInfo> recorded) throws Exception {
        Path file = dir.resolve("mesh.yaml");
        Files.writeString(file, yaml);
        DefaultMesh m = (DefaultMesh) Mesh.create(vertx, new MeshOptions().setConfigFile(file.toString())
                .setAdminPort(-1));
        m.addObserver(recorded::add);
        m.start().await(10, TimeUnit.SECONDS);
        return m;
    }

    /** Vert.x's gRPC client over the mesh's HTTP client, set for HTTP/2 with prior knowledge as gRPC's own is. */
    GrpcClient grpcClient() {
        return GrpcClient.client(vertx, mesh.httpClient(new HttpClientOptions()
                .setProtocolVersion(HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false)));
    }

    /** What a call ended with: its messages and status, and the status message. */
    record Call(List<String> messages, GrpcStatus status, String statusMessage) {}

    Call call(SocketAddress to, String method) throws Exception {
        List<String> messages = new CopyOnWriteArrayList<>();
        return grpcClient().request(to).compose(req -> {
            req.fullMethodName(method);
            return req.send(Buffer.buffer("hi"));
        }).compose(resp -> {
            resp.handler(m -> {
                messages.add(m.toString());
                firstReceived.complete(null);
            });
            return resp.end().transform(ar -> Future.succeededFuture(
                    new Call(messages, resp.status(), resp.statusMessage())));
        }).await(10, TimeUnit.SECONDS);
    }

    StreamInfo lastRecorded() throws Exception {
        for (int i = 0; i < 100 && recorded.isEmpty(); i++) {
            Thread.sleep(20);
        }
        return recorded.get(recorded.size() - 1);
    }

    static final SocketAddress GREETER = SocketAddress.inetSocketAddress(9090, "greeter");

    @Test
    void aVertxGrpcClientOverTheMeshClientCallsAnH2cCluster() throws Exception {
        mesh(H2, Integer.toString(server()));
        Call c = call(GREETER, "test.Svc/Unary");
        assertEquals(List.of("hello 7"), c.messages());
        assertEquals(GrpcStatus.OK, c.status());
        assertEquals(List.of(HttpVersion.HTTP_2), seen);
        StreamInfo info = lastRecorded();
        assertEquals(CLUSTER, info.upstreamCluster());
        assertEquals("0", info.grpcStatus()); // from the trailers
        assertEquals(-1, info.requestMessages(), "no gRPC statistics filter: the messages are not counted");
        assertTrue(!mesh.registry().scrape().contains("istio_request_messages_total"));
        // Envoy's histograms of the cluster: its h2c connection's connect, the call's time
        for (String h : new String[] {"envoy_cluster_upstream_cx_connect_ms", "envoy_cluster_upstream_rq_time"}) {
            assertEquals(1, mesh.registry().get(h).tag("cluster_name", CLUSTER).summary().count(), h);
        }
    }

    @Test
    void withIstiodsGrpcStatsFilterTheMessagesEachWaySentAreCountedInIstiosMetrics() throws Exception {
        // istiod's gRPC statistics filter: it emits its filter state, from which Istio's stats count messages
        String filter = """
                          - name: envoy.filters.http.grpc_stats
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig
                              emit_filter_state: true
                              stats_for_all_methods: false
                """;
        String router = "          - name: envoy.filters.http.router\n";
        String yaml = config(H2, "", Integer.toString(server()));
        assertTrue(yaml.contains(router), yaml);
        mesh = start(vertx, dir, yaml.replace(router, filter + router), recorded);
        List<String> messages = new CopyOnWriteArrayList<>();
        GrpcStatus status = grpcClient().request(GREETER).compose(req -> {
            req.fullMethodName("test.Svc/Stream");
            req.write(Buffer.buffer("a"));
            req.write(Buffer.buffer("b"));
            req.end(Buffer.buffer("c"));
            return req.response();
        }).compose(resp -> {
            resp.handler(m -> {
                messages.add(m.toString());
                firstReceived.complete(null);
            });
            return resp.end().map(v -> resp.status());
        }).await(10, TimeUnit.SECONDS);
        assertEquals(GrpcStatus.OK, status);
        assertEquals(List.of("one", "two"), messages);
        StreamInfo info = lastRecorded();
        assertEquals(3, info.requestMessages());
        assertEquals(2, info.responseMessages());
        String prom = mesh.registry().scrape();
        assertTrue(prom.lines().anyMatch(l -> l.startsWith("istio_request_messages_total{") && l.endsWith(" 3.0")),
                prom);
        assertTrue(prom.lines().anyMatch(l -> l.startsWith("istio_response_messages_total{") && l.endsWith(" 2.0")),
                prom);
    }

    @Test
    void aServerStreamsMessagesReachTheCallerBeforeTheStreamEnds() throws Exception {
        mesh(H2, Integer.toString(server()));
        // the server sends its second message only once the caller has the first: nothing waits for the end
        Call c = call(GREETER, "test.Svc/Stream");
        assertEquals(List.of("one", "two"), c.messages());
        assertEquals(GrpcStatus.OK, c.status());
    }

    @Test
    void theUpstreamsStatusInTrailersReachesTheCallerAndTheMetrics() throws Exception {
        mesh(H2, Integer.toString(server()));
        Call c = call(GREETER, "test.Svc/Busy");
        assertEquals(GrpcStatus.RESOURCE_EXHAUSTED, c.status());
        StreamInfo info = lastRecorded();
        assertEquals(200, info.responseCode());
        assertEquals("8", info.grpcStatus());
    }

    @Test
    void theMeshsOwnAnswersReachTheCallerAsTrailersOnlyStatuses() throws Exception {
        // no route: 404, UNIMPLEMENTED
        mesh(H2, Integer.toString(server()));
        assertEquals(GrpcStatus.UNIMPLEMENTED, call(SocketAddress.inetSocketAddress(9090, "other"),
                "test.Svc/Unary").status());
        assertEquals("12", lastRecorded().grpcStatus());
        mesh.close().await(10, TimeUnit.SECONDS);
        // nothing listens: 503 UF, UNAVAILABLE with Envoy's reason as its message
        int closed;
        try (var socket = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            closed = socket.getLocalPort();
        }
        mesh(H2, Integer.toString(closed));
        Call c = call(GREETER, "test.Svc/Unary");
        assertEquals(GrpcStatus.UNAVAILABLE, c.status());
        assertEquals("upstream connect error or disconnect/reset before headers. reset reason: remote connection "
                + "failure, transport failure reason: delayed connect error: Connection refused", c.statusMessage());
        assertEquals("14", lastRecorded().grpcStatus());
    }

    @Test
    void aClusterThatUsesItsDownstreamsProtocolSendsHttp2CallersOverH2cAndOthersOverHttp11() throws Exception {
        mesh(DOWNSTREAM, Integer.toString(server()));
        Call c = call(GREETER, "test.Svc/Unary");
        assertEquals(GrpcStatus.OK, c.status());
        assertEquals(List.of(HttpVersion.HTTP_2), seen);
        assertEquals("HTTP/2", lastRecorded().protocol());
        // a client in HTTP/1.1 (the default), and one for HTTP/2 that would upgrade (which Envoy does not take)
        assertEquals(200, mesh.webClient().post(9090, "greeter", "/test.Svc/Unary").sendBuffer(Buffer.buffer("x"))
                .await(10, TimeUnit.SECONDS).statusCode());
        assertEquals(200, io.vertx.ext.web.client.WebClient.wrap(mesh.httpClient(new HttpClientOptions()
                        .setProtocolVersion(HttpVersion.HTTP_2))).post(9090, "greeter", "/test.Svc/Unary")
                .sendBuffer(Buffer.buffer("x")).await(10, TimeUnit.SECONDS).statusCode());
        assertEquals(List.of(HttpVersion.HTTP_2, HttpVersion.HTTP_1_1, HttpVersion.HTTP_1_1), seen);
    }

    @Test
    void aPassedThroughCallKeepsTheCallersHttp2AsIstiosPassthroughClusterDoes() throws Exception {
        int port = server();
        mesh(H2, Integer.toString(server())); // a listener for 9090 only: the server's own port passes through
        Call c = call(SocketAddress.inetSocketAddress(port, "127.0.0.1"), "test.Svc/Unary");
        assertEquals(GrpcStatus.OK, c.status());
        assertEquals("PassthroughCluster", lastRecorded().upstreamCluster());
        assertEquals(List.of(HttpVersion.HTTP_2), seen);
    }

    /**
     * Request bodies through {@code mesh.httpClient()} go upstream as they are written, as through Envoy's router:
     * client-streaming and bidirectional gRPC calls progress before the caller ends its stream, a large upload streams
     * with back-pressure, a retry resends what was kept of the body and goes on with the rest, and a body that outgrows
     * the retry buffer is not retried ({@code retry_or_shadow_abandoned}).
     */
    @Nested
    class StreamingRequestBodies {
        /** A mesh that routes {@code greeter:9090} to one loopback host, with {@code route} added to the action. */
        void mesh(String protocolOptions, String route, int port) throws Exception {
            mesh = start(vertx, dir, config(protocolOptions, route,
                    Integer.toString(port)), recorded);
        }

        int server(Consumer<HttpServerRequest> handler) throws Exception {
            var s = vertx.createHttpServer().requestHandler(handler::accept);
            s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
            return s.actualPort();
        }

        /** Splits a gRPC body into its messages (uncompressed), handing each on as it is whole. */
        static io.vertx.core.Handler<Buffer> grpcMessages(Consumer<String> onMessage) {
            Buffer[] pending = {Buffer.buffer()};
            return chunk -> {
                Buffer p = pending[0].appendBuffer(chunk);
                int at = 0;
                while (p.length() - at >= 5) {
                    int len = p.getInt(at + 1);
                    if (p.length() - at - 5 < len) {
                        break;
                    }
                    onMessage.accept(p.getString(at + 5, at + 5 + len));
                    at += 5 + len;
                }
                pending[0] = p.getBuffer(at, p.length());
            };
        }

        /**
         * A gRPC server by hand: Echo answers each message as it comes (a bidirectional call); Collect sends its response
         * headers on the first message and its one answer when the call ends (a client-streaming call).
         */
        void grpc(HttpServerRequest req) {
            var resp = req.response().putHeader("content-type", "application/grpc");
            List<String> got = new ArrayList<>();
            req.handler(grpcMessages(m -> {
                got.add(m);
                if (req.path().equals("/test.Svc/Echo")) {
                    resp.write(message("echo:" + m));
                } else if (got.size() == 1) {
                    resp.writeHead();
                }
            }));
            req.endHandler(v -> {
                if (req.path().equals("/test.Svc/Collect")) {
                    resp.write(message(String.join("+", got)));
                }
                resp.putTrailer("grpc-status", "0").end();
            });
        }

        @Test
        void aClientStreamingCallHasItsResponseHeadersBeforeItSendsItsSecondMessage() throws Exception {
            mesh(H2, "", server(this::grpc));
            List<String> messages = new CopyOnWriteArrayList<>();
            GrpcStatus status = grpcClient().request(GREETER).compose(req -> {
                req.fullMethodName("test.Svc/Collect");
                req.write(Buffer.buffer("one"));
                // the server sends its headers once it has the first message: only then does the second go
                return req.response().compose(resp -> {
                    resp.handler(m -> messages.add(m.toString()));
                    req.write(Buffer.buffer("two"));
                    req.end();
                    return resp.end().map(v -> resp.status());
                });
            }).await(10, TimeUnit.SECONDS);
            assertEquals(GrpcStatus.OK, status);
            assertEquals(List.of("one+two"), messages);
            StreamInfo info = lastRecorded();
            assertEquals("0", info.grpcStatus());
            assertEquals(2 * (5 + 3), info.bytesReceived()); // two messages, counted as they went
        }

        @Test
        void aBidirectionalCallGetsEachAnswerBeforeItSendsTheNextMessage() throws Exception {
            mesh(H2, "", server(this::grpc));
            List<String> messages = new CopyOnWriteArrayList<>();
            GrpcStatus status = grpcClient().request(GREETER).compose(req -> {
                req.fullMethodName("test.Svc/Echo");
                Promise<Void> done = Promise.promise();
                req.response().onSuccess(resp -> {
                    resp.handler(m -> {
                        messages.add(m.toString());
                        if (messages.size() == 1) {
                            req.write(Buffer.buffer("two")); // each side waits for the other
                        } else {
                            req.end();
                        }
                    });
                    resp.end().onComplete(ar -> done.complete());
                });
                req.write(Buffer.buffer("one"));
                return done.future().compose(v -> req.response()).map(GrpcClientResponse::status);
            }).await(10, TimeUnit.SECONDS);
            assertEquals(GrpcStatus.OK, status);
            assertEquals(List.of("echo:one", "echo:two"), messages);
            StreamInfo info = lastRecorded();
            assertEquals(200, info.responseCode());
            assertEquals("0", info.grpcStatus());
        }

        /** Bytes that are not all alike, the same for the same seed. */
        static byte[] bytes(int n, long seed) {
            byte[] b = new byte[n];
            new Random(seed).nextBytes(b);
            return b;
        }

        /** Writes {@code body} in {@code chunk}-sized writes, waiting for the drain handler whenever the queue is full. */
        static void pump(HttpClientRequest req, byte[] body, int chunk, AtomicInteger at, Runnable onLast) {
            while (at.get() < body.length) {
                if (req.writeQueueFull()) {
                    req.drainHandler(v -> pump(req, body, chunk, at, onLast));
                    return;
                }
                int from = at.get();
                int to = Math.min(body.length, from + chunk);
                at.set(to);
                req.write(Buffer.buffer(java.util.Arrays.copyOfRange(body, from, to)));
            }
            onLast.run();
        }

        @Test
        void aLargeUploadStreamsUpstreamWithBackPressureAndArrivesByteForByte() throws Exception {
            byte[] body = bytes(6 * 1024 * 1024, 7);
            ByteArrayOutputStream received = new ByteArrayOutputStream();
            AtomicBoolean callerEnded = new AtomicBoolean();
            AtomicInteger written = new AtomicInteger();
            AtomicInteger writtenWhenResumed = new AtomicInteger();
            CompletableFuture<Boolean> firstBytesBeforeTheEnd = new CompletableFuture<>();
            int port = server(req -> {
                req.handler(b -> {
                    synchronized (received) {
                        received.writeBytes(b.getBytes());
                    }
                    if (firstBytesBeforeTheEnd.complete(!callerEnded.get())) {
                        // the server stops reading for a while: the caller must find the queue full and wait
                        req.pause();
                        vertx.setTimer(300, id -> {
                            writtenWhenResumed.set(written.get());
                            req.resume();
                        });
                    }
                });
                req.endHandler(v -> req.response().end(Integer.toString(received.size())));
            });
            mesh(H2, "", port);
            HttpClient client = mesh.httpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
                    .setHttp2ClearTextUpgrade(false));
            HttpClientResponse resp = client.request(HttpMethod.POST, 9090, "greeter", "/upload").compose(req -> {
                req.setChunked(true); // as a plain Vert.x request asks of a body written before its end, HTTP/2 too
                pump(req, body, 64 * 1024, written, () -> {
                    callerEnded.set(true);
                    req.end();
                });
                return req.response();
            }).await(10, TimeUnit.SECONDS);
            assertEquals(Integer.toString(body.length), resp.body().await(10, TimeUnit.SECONDS).toString());
            assertTrue(firstBytesBeforeTheEnd.get(), "the upstream had the body's first bytes before the caller ended it");
            // the upstream's flow control held the caller back: far from all of it was written while the server waited
            assertTrue(writtenWhenResumed.get() < body.length / 2, writtenWhenResumed + " bytes written");
            synchronized (received) {
                assertArrayEquals(body, received.toByteArray());
            }
            assertEquals(body.length, lastRecorded().bytesReceived());
        }

        @Test
        void aCallerOutsideVertxThatSetsItsDrainHandlerOnlyAfterTheQueueDrainedIsStillToldToGoOn() throws Exception {
            AtomicInteger got = new AtomicInteger();
            CompletableFuture<Void> head = new CompletableFuture<>();
            mesh("", "", server(req -> {
                head.complete(null);
                req.handler(b -> got.addAndGet(b.length()));
                req.endHandler(v -> req.response().end(Integer.toString(got.get())));
            }));
            // made on this thread: the request's context runs on this thread's event loop, which a context of its own
            // made here shares
            HttpClientRequest req = mesh.httpClient().request(HttpMethod.PUT, 9090, "greeter", "/file")
                    .await(10, TimeUnit.SECONDS);
            Context loop = vertx.getOrCreateContext();
            req.setChunked(true);
            req.sendHead();
            head.get(10, TimeUnit.SECONDS); // the attempt has its connection: what is written goes to it
            // the event loop is held while the caller writes, so that its chunk waits there to be handed on
            CountDownLatch hold = new CountDownLatch(1);
            loop.runOnContext(v -> {
                try {
                    hold.await(5, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            req.write(Buffer.buffer(bytes(RequestBodyStream.HIGH_WATER, 4)));
            assertTrue(req.writeQueueFull());
            hold.countDown();
            // the chunk is handed on and the upstream has it before the caller, still on its way, sets its handler
            for (int i = 0; i < 250 && got.get() < RequestBodyStream.HIGH_WATER; i++) {
                Thread.sleep(20);
            }
            assertEquals(RequestBodyStream.HIGH_WATER, got.get());
            Promise<Void> settled = Promise.promise();
            loop.runOnContext(v -> settled.complete()); // after what the event loop had to do
            settled.future().await(10, TimeUnit.SECONDS);
            CompletableFuture<Void> drained = new CompletableFuture<>();
            req.drainHandler(v -> drained.complete(null));
            drained.get(10, TimeUnit.SECONDS);
            req.end();
            HttpClientResponse resp = req.response().await(10, TimeUnit.SECONDS);
            assertEquals(Integer.toString(RequestBodyStream.HIGH_WATER), resp.body().await(10, TimeUnit.SECONDS)
                    .toString());
        }

        /**
         * An HTTP/1.1 server that answers 503 to the first request as soon as it has {@code failAfter} bytes of its body,
         * and to each later one its body's length once it ended; {@code onFirstBytes} hears of each request's first bytes
         * with its number.
         */
        int failingFirst(int failAfter, List<byte[]> bodies, Consumer<Integer> onFirstBytes) throws Exception {
            AtomicInteger n = new AtomicInteger();
            return server(req -> {
                int i = n.incrementAndGet();
                ByteArrayOutputStream got = new ByteArrayOutputStream();
                AtomicBoolean first = new AtomicBoolean(true);
                req.handler(b -> {
                    got.writeBytes(b.getBytes());
                    if (first.getAndSet(false)) {
                        onFirstBytes.accept(i);
                    }
                    if (i == 1 && got.size() >= failAfter && !req.response().ended()) {
                        req.response().setStatusCode(503).end();
                    }
                });
                req.endHandler(v -> {
                    bodies.add(got.toByteArray());
                    if (i > 1) {
                        req.response().end(Integer.toString(got.size()));
                    }
                });
            });
        }

        static final String RETRY_5XX = ", retry_policy: {retry_on: 5xx, num_retries: 1}";

        @Test
        void aRetryOfAStreamedBodyWithinTheLimitResendsWhatWasSentThenTheRest() throws Exception {
            byte[] head = bytes(200 * 1024, 1);
            byte[] tail = bytes(100 * 1024, 2);
            List<byte[]> bodies = new CopyOnWriteArrayList<>();
            CompletableFuture<Void> retryHasTheHead = new CompletableFuture<>();
            mesh("", RETRY_5XX, failingFirst(1, bodies, i -> {
                if (i == 2) {
                    retryHasTheHead.complete(null);
                }
            }));
            HttpClient client = mesh.httpClient();
            HttpClientResponse resp = client.request(HttpMethod.PUT, 9090, "greeter", "/file").compose(req -> {
                req.setChunked(true);
                req.write(Buffer.buffer(head));
                // the rest goes only once the first attempt was answered 503 and the retry had the start again
                retryHasTheHead.thenRun(() -> req.end(Buffer.buffer(tail)));
                return req.response();
            }).await(10, TimeUnit.SECONDS);
            assertEquals(200, resp.statusCode());
            assertEquals(Integer.toString(head.length + tail.length),
                    resp.body().await(10, TimeUnit.SECONDS).toString());
            byte[] whole = new byte[head.length + tail.length];
            System.arraycopy(head, 0, whole, 0, head.length);
            System.arraycopy(tail, 0, whole, head.length, tail.length);
            assertArrayEquals(whole, bodies.get(bodies.size() - 1));
            StreamInfo info = lastRecorded();
            assertEquals(2, info.attemptCount());
            assertEquals(whole.length, info.bytesReceived());
            assertEquals(0.0, abandoned());
        }

        @Test
        void aStreamedBodyPastTheRetryBufferLimitIsNotRetriedAndCountsAsRetryOrShadowAbandoned() throws Exception {
            byte[] body = bytes(RequestBodyStream.RETRY_BUFFER_LIMIT + 512 * 1024, 3);
            List<byte[]> bodies = new CopyOnWriteArrayList<>();
            AtomicInteger requests = new AtomicInteger();
            // the first attempt is answered 503 once the upstream has more than the limit: the router gave up retrying
            mesh("", RETRY_5XX, failingFirst(RequestBodyStream.RETRY_BUFFER_LIMIT + 1, bodies,
                    i -> requests.incrementAndGet()));
            HttpClient client = mesh.httpClient();
            HttpClientResponse resp = client.request(HttpMethod.PUT, 9090, "greeter", "/file").compose(req -> {
                req.setChunked(true);
                pump(req, body, 64 * 1024, new AtomicInteger(), req::end);
                return req.response();
            }).await(10, TimeUnit.SECONDS);
            assertEquals(503, resp.statusCode());
            StreamInfo info = lastRecordedAfter(resp);
            assertEquals(1, info.attemptCount());
            assertFalse(info.responseFlags().contains(dev.inmesh.runtime.stats.ResponseFlag.UPSTREAM_RETRY_LIMIT_EXCEEDED));
            assertEquals(1.0, abandoned());
            Thread.sleep(100);
            assertEquals(1, requests.get()); // no retry was sent
        }

        StreamInfo lastRecordedAfter(HttpClientResponse resp) throws Exception {
            resp.body().await(10, TimeUnit.SECONDS);
            return lastRecorded();
        }

        /** The cluster's {@code retry_or_shadow_abandoned}. */
        double abandoned() {
            var g = mesh.registry().find("envoy_cluster_retry_or_shadow_abandoned").tag("cluster_name", CLUSTER).gauge();
            assertTrue(g != null, "the statistic is registered");
            return g.value();
        }

        @Test
        void aBodyEndedAtOnceStillGoesWholeWithItsLength() throws Exception {
            List<String> lengths = new CopyOnWriteArrayList<>();
            mesh("", "", server(req -> {
                lengths.add(req.getHeader("content-length"));
                assertNull(req.getHeader("transfer-encoding"));
                req.body().onSuccess(b -> req.response().end(b));
            }));
            String body = mesh.httpClient().request(HttpMethod.POST, 9090, "greeter", "/x")
                    .compose(req -> req.send(Buffer.buffer("whole")))
                    .compose(HttpClientResponse::body).await(10, TimeUnit.SECONDS).toString();
            assertEquals("whole", body);
            assertEquals(List.of("5"), lengths);
        }
    }
}
