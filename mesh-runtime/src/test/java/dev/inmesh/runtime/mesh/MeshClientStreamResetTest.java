package dev.inmesh.runtime.mesh;

import static dev.inmesh.runtime.mesh.MeshGrpcClientTest.GREETER;
import static dev.inmesh.runtime.mesh.MeshGrpcClientTest.H2;
import static dev.inmesh.runtime.mesh.MeshGrpcClientTest.config;
import static dev.inmesh.runtime.mesh.MeshGrpcClientTest.message;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.testing.MeshFixture;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClosedException;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.http.StreamResetException;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.common.GrpcError;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Resets of a stream through {@code mesh.httpClient()}, on either side. Once its response started, a stream whose
 * upstream fails (reset, connection gone, cut by the route timeout) is reset towards the caller, as Envoy's router
 * resets its downstream then: the caller's request and response fail as a plain Vert.x client's do on such a reset,
 * so that its body, its {@code end()} and a gRPC call over it complete. A caller that cancels its call before any
 * answer leaves the exchange as Envoy's router is left: response code 0 and DC, no upstream failure.
 */
class MeshClientStreamResetTest extends MeshFixture {
    static final String CLUSTER = MeshGrpcClientTest.CLUSTER;

    DefaultMesh started;
    final List<StreamInfo> recorded = new CopyOnWriteArrayList<>();
    /** Completed by the caller once it has the first message; the upstream fails its stream only then. */
    final CompletableFuture<Void> callerHasFirst = new CompletableFuture<>();
    /** Completed by the upstream once a request it holds unanswered came with its first chunk of body. */
    volatile CompletableFuture<Void> bodyArrived = new CompletableFuture<>();
    /** What the upstream saw of the requests it held unanswered: the reset of each. */
    final List<Throwable> upstreamSaw = new CopyOnWriteArrayList<>();

    /**
     * A gRPC server by hand that fails its stream on purpose: Reset sends its headers and one message, then, once the
     * caller has it, RST_STREAM INTERNAL_ERROR; ResetOnSecond sends them too, and resets so when the request's second
     * message came; Close closes its connection once the caller has the first message; Hold sends them and holds the
     * stream open; Collect reads the request and never answers. Anything else answers one message and status 0.
     */
    int upstream() throws Exception {
        var s = vertx.createHttpServer().requestHandler(this::handle);
        s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        return s.actualPort();
    }

    void handle(HttpServerRequest req) {
        var resp = req.response().putHeader("content-type", "application/grpc");
        resp.setChunked(req.version() != HttpVersion.HTTP_2);
        switch (req.path()) {
            case "/test.Svc/Reset" -> resp.write(message("first")).onSuccess(v ->
                    callerHasFirst.whenComplete((x, t) -> resp.reset(2)));
            case "/test.Svc/ResetOnSecond" -> {
                resp.write(message("first"));
                long[] received = {0};
                req.handler(b -> {
                    received[0] += b.length();
                    if (received[0] == 2 * message("go").length()) {
                        resp.reset(2);
                    }
                });
            }
            case "/test.Svc/Close" -> resp.write(message("first")).onSuccess(v ->
                    callerHasFirst.whenComplete((x, t) -> req.connection().close()));
            case "/test.Svc/Hold" -> resp.write(message("first"));
            case "/test.Svc/Collect" -> {
                req.handler(b -> bodyArrived.complete(null));
                req.exceptionHandler(upstreamSaw::add);
            }
            default -> req.body().onSuccess(b -> resp.write(message("ok")).onSuccess(v ->
                    resp.putTrailer("grpc-status", "0").end()));
        }
    }

    void mesh(String yaml) throws Exception {
        started = startMesh(yaml, recorded::add);
    }

    static HttpClientOptions http2() {
        return new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false);
    }

    GrpcClient grpcClient() {
        return GrpcClient.client(vertx, mesh.httpClient(http2()));
    }

    /** How a gRPC call ended: the messages it had, the errors its error handler heard, and its end's failure. */
    record Outcome(List<String> messages, List<GrpcError> errors, Throwable failure) {}

    /** Calls {@code method} with one message; its end must come within 5 s, failed or not. */
    Outcome grpcCall(String method) throws Exception {
        List<String> messages = new CopyOnWriteArrayList<>();
        List<GrpcError> errors = new CopyOnWriteArrayList<>();
        Future<Void> end = grpcClient().request(GREETER).compose(req -> {
            req.fullMethodName(method);
            return req.send(Buffer.buffer("go"));
        }).compose(resp -> {
            resp.handler(m -> {
                messages.add(m.toString());
                callerHasFirst.complete(null);
            });
            resp.errorHandler(errors::add);
            return Future.succeededFuture(resp.end());
        }).await(5, TimeUnit.SECONDS);
        return new Outcome(messages, errors, failure(end));
    }

    StreamInfo lastRecorded() throws Exception {
        for (int i = 0; i < 250 && recorded.isEmpty(); i++) {
            Thread.sleep(20);
        }
        return recorded.get(recorded.size() - 1);
    }

    /**
     * A gRPC call of {@code method} whose stream fails after its first message: the caller has that message, then
     * its call ends failed (it does not wait for ever), and the request is recorded with {@code flag} and
     * {@code details}, its status the response's.
     */
    Outcome assertEndsFailedAfterItsFirstMessage(String method, ResponseFlag flag, String details) throws Exception {
        Outcome o = grpcCall(method);
        assertEquals(List.of("first"), o.messages());
        assertInstanceOf(HttpClosedException.class, o.failure());
        StreamInfo info = lastRecorded();
        assertEquals(200, info.responseCode());
        assertEquals(Set.of(flag), info.responseFlags());
        assertEquals(details, info.responseCodeDetails());
        return o;
    }

    @Test
    void aGrpcCallWhoseStreamTheUpstreamResetsAfterItsFirstMessageEndsFailed() throws Exception {
        mesh(config(H2, "", Integer.toString(upstream())));
        Outcome o = assertEndsFailedAfterItsFirstMessage("test.Svc/Reset", ResponseFlag.UPSTREAM_REMOTE_RESET,
                "upstream_reset_after_response_started{remote_reset}");
        // the caller's stream was reset (NO_ERROR, as Envoy's codec resets a stream it ends: INTERNAL), then closed
        assertEquals(List.of(GrpcError.INTERNAL), o.errors());
    }

    @Test
    void aGrpcServerStreamEndsFailedWhenItsUpstreamConnectionCloses() throws Exception {
        mesh(config(H2, "", Integer.toString(upstream())));
        assertEndsFailedAfterItsFirstMessage("test.Svc/Close", ResponseFlag.UPSTREAM_CONNECTION_TERMINATION,
                "upstream_reset_after_response_started{connection_termination}");
    }

    @Test
    void aGrpcServerStreamOverAnHttp1UpstreamEndsFailedWhenItsConnectionClosesMidBody() throws Exception {
        mesh(config("", "", Integer.toString(upstream())));
        assertEndsFailedAfterItsFirstMessage("test.Svc/Close", ResponseFlag.UPSTREAM_PROTOCOL_ERROR,
                "upstream_reset_after_response_started{protocol_error}");
    }

    @Test
    void aGrpcServerStreamTheRouteTimeoutCutsEndsFailed() throws Exception {
        mesh(config(H2, "", Integer.toString(upstream())).replace("timeout: 0s", "timeout: 0.5s"));
        long start = System.nanoTime();
        assertEndsFailedAfterItsFirstMessage("test.Svc/Hold", ResponseFlag.UPSTREAM_REQUEST_TIMEOUT,
                "upstream_response_timeout");
        assertTrue(System.nanoTime() - start >= 400_000_000L, "cut by the route timeout");
    }

    /**
     * What a plain client's request and response heard of a reset stream, how the response's futures ended, and how
     * a write of the request after it did.
     */
    record Heard(List<Throwable> request, List<Throwable> response, Throwable end, Throwable body, Throwable write) {}

    /**
     * A ResetOnSecond call through {@code client} whose request is still open when the upstream resets the stream,
     * once the caller had the response's head: the exceptions its request and response heard, the failures of the
     * response's {@code end()} and {@code body()}, and that of a write after.
     */
    Heard resetHeard(HttpClient client, RequestOptions options) throws Exception {
        List<Throwable> request = new CopyOnWriteArrayList<>();
        List<Throwable> response = new CopyOnWriteArrayList<>();
        HttpClientRequest req = client.request(options.setMethod(HttpMethod.POST).setURI("/test.Svc/ResetOnSecond"))
                .await(5, TimeUnit.SECONDS);
        req.putHeader("content-type", "application/grpc").putHeader("te", "trailers").setChunked(true);
        req.exceptionHandler(request::add);
        req.write(message("go")); // not ended
        List<Future<?>> ends = new CopyOnWriteArrayList<>();
        // its handlers set as it comes, on its context (a plain client's body flows from then on); then the second
        // message, on which the upstream resets the stream
        req.response().onSuccess(r -> {
            r.exceptionHandler(response::add);
            ends.add(r.body());
            ends.add(r.end());
            req.write(message("go"));
        }).await(5, TimeUnit.SECONDS);
        Throwable bodyFailure = failure(ends.get(0));
        Throwable end = failure(ends.get(1));
        for (int i = 0; i < 100 && response.size() < 2; i++) {
            Thread.sleep(10); // the close that follows the reset
        }
        Thread.sleep(100); // nothing more comes
        Throwable write = failure(req.write(message("late")));
        return new Heard(request, response, end, bodyFailure, write);
    }

    /** How {@code f} failed (null: it succeeded), within 5 s. */
    static Throwable failure(Future<?> f) throws Exception {
        return f.transform(ar -> Future.succeededFuture(ar.cause())).await(5, TimeUnit.SECONDS);
    }

    static List<Class<?>> classes(List<Throwable> ts) {
        return ts.stream().<Class<?>>map(Throwable::getClass).toList();
    }

    @Test
    void aCallersRequestAndResponseFailAsAPlainVertxClientsDoOnAStreamResetAfterTheResponseStarted()
            throws Exception {
        int port = upstream();
        mesh(config(H2, "", Integer.toString(port)));
        Heard direct = resetHeard(vertx.createHttpClient(http2()),
                new RequestOptions().setHost("127.0.0.1").setPort(port));
        Heard meshed = resetHeard(mesh.httpClient(http2()), new RequestOptions().setHost("greeter").setPort(9090));
        // Vert.x's own: the reset, then the stream's close; the request still open hears the reset
        assertEquals(List.of(StreamResetException.class, HttpClosedException.class), classes(direct.response()));
        assertEquals(List.of(StreamResetException.class), classes(direct.request()));
        assertEquals(classes(direct.response()), classes(meshed.response()));
        assertEquals(classes(direct.request()), classes(meshed.request()));
        assertEquals("Stream was closed", meshed.response().get(1).getMessage());
        // the mesh resets its caller's stream as Envoy's HTTP/2 codec resets a stream it ends: NO_ERROR
        assertEquals(0, ((StreamResetException) meshed.response().get(0)).getCode());
        assertInstanceOf(StreamResetException.class, meshed.end());
        assertInstanceOf(StreamResetException.class, meshed.body());
        assertInstanceOf(StreamResetException.class, direct.end());
        assertInstanceOf(StreamResetException.class, direct.body());
        // the request, which had not ended, is done: what it writes now fails
        assertTrue(direct.write() != null);
        assertTrue(meshed.write() != null);
    }

    /**
     * An HTTP/2 server that answers every request with DATA after its head, whatever the method and status: the
     * status is the path's last segment ({@code /204}), else 200. Only a GET's 200 ends its stream; the others wait
     * for the client's reset. The RST_STREAM codes it reads go to {@code resets}.
     */
    io.netty.channel.Channel bodyOnEveryAnswer(io.netty.channel.EventLoopGroup group, List<Long> resets)
            throws Exception {
        return new io.netty.bootstrap.ServerBootstrap().group(group)
                .channel(io.netty.channel.socket.nio.NioServerSocketChannel.class)
                .childHandler(new io.netty.channel.ChannelInitializer<io.netty.channel.Channel>() {
                    @Override
                    protected void initChannel(io.netty.channel.Channel ch) {
                        ch.pipeline().addLast(io.netty.handler.codec.http2.Http2FrameCodecBuilder.forServer().build(),
                                new io.netty.channel.ChannelInboundHandlerAdapter() {
                                    @Override
                                    public void channelRead(io.netty.channel.ChannelHandlerContext ctx, Object msg) {
                                        if (msg instanceof io.netty.handler.codec.http2.Http2HeadersFrame h) {
                                            String path = h.headers().path().toString();
                                            String status = path.matches("/\\d{3}") ? path.substring(1) : "200";
                                            // a GET's 200 ends with its body; the others stay open after it
                                            boolean ends = status.equals("200")
                                                    && "GET".contentEquals(h.headers().method());
                                            var head = new io.netty.handler.codec.http2.DefaultHttp2Headers()
                                                    .status(status);
                                            ctx.write(new io.netty.handler.codec.http2.DefaultHttp2HeadersFrame(head)
                                                    .stream(h.stream()));
                                            ctx.writeAndFlush(new io.netty.handler.codec.http2.DefaultHttp2DataFrame(
                                                    io.netty.buffer.Unpooled.copiedBuffer("body",
                                                            java.nio.charset.StandardCharsets.US_ASCII), ends)
                                                    .stream(h.stream()));
                                        } else if (msg instanceof io.netty.handler.codec.http2.Http2ResetFrame r) {
                                            resets.add(r.errorCode());
                                        }
                                        io.netty.util.ReferenceCountUtil.release(msg);
                                    }
                                });
                    }
                }).bind("127.0.0.1", 0).sync().channel();
    }

    @Test
    void dataAnHttp2UpstreamSendsOnAnAnswerToHeadOrA204OrA304GoesToNoCallerAndItsStreamIsReset() throws Exception {
        var group = new io.netty.channel.nio.NioEventLoopGroup(1);
        List<Long> resets = new CopyOnWriteArrayList<>();
        try {
            var server = bodyOnEveryAnswer(group, resets);
            int port = ((java.net.InetSocketAddress) server.localAddress()).getPort();
            mesh(config(H2, "", Integer.toString(port)));
            HttpClient client = mesh.httpClient();
            for (var c : List.of(List.of("HEAD", "/", "200"), List.of("GET", "/204", "204"),
                    List.of("GET", "/304", "304"))) {
                recorded.clear();
                var resp = client.request(new RequestOptions().setMethod(HttpMethod.valueOf(c.get(0)))
                        .setHost("greeter").setPort(9090).setURI(c.get(1)))
                        .compose(req -> req.send()).await(5, TimeUnit.SECONDS);
                assertEquals(Integer.parseInt(c.get(2)), resp.statusCode());
                // the head alone is the answer: its body is empty and it ends
                assertEquals(0, resp.body().await(5, TimeUnit.SECONDS).length(), c.toString());
                StreamInfo info = lastRecorded();
                // as Envoy's codec refuses such DATA: the upstream stream reset, an upstream protocol error
                assertEquals(Set.of(ResponseFlag.UPSTREAM_PROTOCOL_ERROR), info.responseFlags(), c.toString());
                assertEquals("upstream_reset_after_response_started{protocol_error}", info.responseCodeDetails());
                assertEquals(0, info.bytesSent());
            }
            for (int i = 0; i < 250 && resets.size() < 3; i++) {
                Thread.sleep(20);
            }
            assertEquals(List.of(1L, 1L, 1L), resets, "RST_STREAM PROTOCOL_ERROR for each");
            recorded.clear();
            var get = client.request(new RequestOptions().setHost("greeter").setPort(9090).setURI("/"))
                    .compose(req -> req.send()).await(5, TimeUnit.SECONDS);
            assertEquals("body", get.body().await(5, TimeUnit.SECONDS).toString(), "a GET's answer keeps its body");
            assertEquals(Set.of(), lastRecorded().responseFlags());
        } finally {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        }
    }

    @Test
    void anHttp11CallersResponseFailsAsItsConnectionClosedWhenItsUpstreamStreamIsReset() throws Exception {
        mesh(config(H2, "", Integer.toString(upstream())));
        Heard meshed = resetHeard(mesh.httpClient(), new RequestOptions().setHost("greeter").setPort(9090));
        // Envoy closes an HTTP/1 caller's connection: Vert.x's HTTP/1 client hears of that once
        assertEquals(List.of(HttpClosedException.class), classes(meshed.response()));
        assertEquals("Connection was closed", meshed.response().get(0).getMessage());
        assertEquals(List.of(HttpClosedException.class), classes(meshed.request()));
        assertInstanceOf(HttpClosedException.class, meshed.end());
        assertInstanceOf(HttpClosedException.class, meshed.body());
    }

    /**
     * A caller that cancels its client-streaming call before any answer, on a connection the cluster already had: as
     * Envoy's upstream request, which drops its callbacks before it resets its stream, the reset is the caller's, not
     * the upstream's. Response code 0 and DC alone, no 503 counted, and nothing for outlier detection, which would
     * otherwise eject the healthy host after three such calls.
     */
    @Test
    void aCallersCancelOfAStreamingCallOnAWarmConnectionIsTheCallersLeavingNotAnUpstreamReset() throws Exception {
        String outlier = "    outlier_detection: {consecutive_5xx: 3, interval: 1s, base_ejection_time: 30s, "
                + "max_ejection_percent: 100}\n";
        mesh(config(H2 + outlier, "", Integer.toString(upstream())));
        GrpcClient client = grpcClient();
        // the cluster's connection, warm
        assertEquals(List.of("ok"), grpcCall("test.Svc/Unary").messages());
        for (int i = 0; i < 5; i++) {
            bodyArrived = new CompletableFuture<>();
            int before = recorded.size();
            var req = client.request(GREETER).await(5, TimeUnit.SECONDS);
            req.fullMethodName("test.Svc/Collect");
            req.write(Buffer.buffer("a"));
            bodyArrived.get(5, TimeUnit.SECONDS); // the upstream has the stream and its first message
            req.cancel();
            for (int k = 0; k < 250 && recorded.size() == before; k++) {
                Thread.sleep(20);
            }
            StreamInfo info = recorded.get(before);
            assertEquals(0, info.responseCode(), "call " + i);
            assertEquals(Set.of(ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION), info.responseFlags(), "call " + i);
            assertEquals("downstream_remote_disconnect", info.responseCodeDetails(), "call " + i);
        }
        for (int k = 0; k < 100 && upstreamSaw.size() < 5; k++) {
            Thread.sleep(20);
        }
        assertEquals(5, upstreamSaw.size(), "the upstream saw each stream reset");
        upstreamSaw.forEach(t -> assertInstanceOf(StreamResetException.class, t));
        var registry = started.registry();
        assertNull(registry.find("envoy_cluster_upstream_rq_code").tag("cluster_name", CLUSTER)
                .tag("response_code", "503").gauge(), "no 503 counted");
        var ejected = registry.find("envoy_cluster_outlier_detection_ejections_enforced_total")
                .tag("cluster_name", CLUSTER).functionCounter();
        assertEquals(0.0, ejected == null ? 0.0 : ejected.count());
        // the host still serves
        Outcome after = grpcCall("test.Svc/Unary");
        assertEquals(List.of("ok"), after.messages());
        assertNull(after.failure());
    }
}
