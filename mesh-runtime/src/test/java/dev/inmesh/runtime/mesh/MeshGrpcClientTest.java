package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.common.GrpcStatus;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
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
    Mesh mesh;
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
            mesh.close().await(5, TimeUnit.SECONDS);
        }
        vertx.close().await(5, TimeUnit.SECONDS);
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
        s.listen(0, "127.0.0.1").await(5, TimeUnit.SECONDS);
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
        Path file = dir.resolve("mesh.yaml");
        Files.writeString(file, """
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
                                route: {cluster: "%1$s", timeout: 0s}
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
                """.formatted(CLUSTER, protocolOptions, endpoint));
        DefaultMesh m = (DefaultMesh) Mesh.create(vertx, new MeshOptions().setConfigFile(file.toString())
                .setAdminPort(-1));
        m.addObserver(recorded::add);
        m.start().await(10, TimeUnit.SECONDS);
        mesh = m;
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
        }).await(5, TimeUnit.SECONDS);
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
        mesh.close().await(5, TimeUnit.SECONDS);
        // nothing listens: 503 UF, UNAVAILABLE with Envoy's reason as its message
        int closed;
        try (var socket = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            closed = socket.getLocalPort();
        }
        mesh(H2, Integer.toString(closed));
        Call c = call(GREETER, "test.Svc/Unary");
        assertEquals(GrpcStatus.UNAVAILABLE, c.status());
        assertEquals("upstream connect error or disconnect/reset before headers. reset reason: connection failure",
                c.statusMessage());
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
                .await(5, TimeUnit.SECONDS).statusCode());
        assertEquals(200, io.vertx.ext.web.client.WebClient.wrap(mesh.httpClient(new HttpClientOptions()
                        .setProtocolVersion(HttpVersion.HTTP_2))).post(9090, "greeter", "/test.Svc/Unary")
                .sendBuffer(Buffer.buffer("x")).await(5, TimeUnit.SECONDS).statusCode());
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
}
