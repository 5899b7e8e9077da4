package dev.inmesh.runtime.inbound;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A request {@code mesh.inbound} forwards to the service is bounded by its route's stream duration, as a sidecar's
 * connection manager bounds it: a caller's {@code grpc-timeout} under istiod's inbound route
 * ({@code max_stream_duration: {max_stream_duration: 0s, grpc_timeout_header_max: 0s}}), or the route's own
 * {@code max_stream_duration}. The service here answers only after 5 s.
 */
class InboundStreamDurationTest {
    private static final String CONFIG = """
            static_resources:
              listeners:
              - name: virtualInbound
                address: {socket_address: {address: 0.0.0.0, port_value: 15006}}
                traffic_direction: INBOUND
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: inbound_0.0.0.0_9080
                      http_filters:
                      - name: envoy.filters.http.router
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                      route_config:
                        name: inbound|9080||
                        validate_clusters: false
                        virtual_hosts:
                        - name: inbound|http|9080
                          domains: ["*"]
                          routes:
                          - match: {prefix: /bounded}
                            route: {cluster: "inbound|9080||", timeout: 0s, max_stream_duration: {max_stream_duration: 0.3s}}
                          - match: {prefix: /}
                            route:
                              cluster: "inbound|9080||"
                              timeout: 0s
                              max_stream_duration: {max_stream_duration: 0s, grpc_timeout_header_max: 0s}
            """;

    Vertx vertx;
    SnapshotHolder snapshots;
    HttpClient client;
    int port;
    final List<StreamInfo> logged = new CopyOnWriteArrayList<>();

    @BeforeEach
    void start() throws Exception {
        vertx = Vertx.vertx();
        snapshots = new SnapshotHolder();
        snapshots.apply(EnvoyConfigReader.read(CONFIG));
        port = vertx.createHttpServer().requestHandler(new InboundHandler(this::serve, snapshots, logged::add))
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        client = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
                .setHttp2ClearTextUpgrade(false));
    }

    @AfterEach
    void stop() throws Exception {
        snapshots.close();
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** What the service's late answer to {@code /bounded/late} and {@code /started/late} came to. */
    final java.util.concurrent.CompletableFuture<String> lateAnswer = new java.util.concurrent.CompletableFuture<>();

    /**
     * The service: a slow answer, gRPC's for a gRPC request; {@code /started} begins its answer at once. A
     * {@code .../late} path answers after 600 ms without looking whether its response is still its own.
     */
    private void serve(HttpServerRequest req) {
        var resp = req.response();
        if (req.path().endsWith("/seen")) {
            resp.putHeader("x-seen", String.valueOf(req.getHeader("grpc-timeout"))).putHeader("grpc-status", "0")
                    .end();
            return;
        }
        if (req.path().endsWith("/told")) {
            resp.closeHandler(v -> serviceTold.complete(req.version()));
            return; // never answers
        }
        if (req.path().startsWith("/started")) {
            resp.setChunked(true).write("begun");
        }
        if (req.path().endsWith("/late")) {
            vertx.setTimer(600, id -> {
                try {
                    if (!req.path().startsWith("/started")) {
                        resp.setStatusCode(201).putHeader("x-late", "yes").putTrailer("x-trailer", "yes");
                    }
                    var write = resp.write("late");
                    var end = resp.end("!");
                    io.vertx.core.Future.join(write, end).onComplete(ar -> lateAnswer.complete(
                            "write " + (write.failed() ? "failed" : "written")
                                    + ", end " + (end.failed() ? "failed" : "written")));
                } catch (RuntimeException e) {
                    lateAnswer.complete("threw " + e);
                }
            });
            return;
        }
        vertx.setTimer(5000, id -> {
            if (!resp.ended() && !resp.closed()) {
                resp.putHeader("grpc-status", "0").end();
            }
        });
    }

    private record Answer(int status, MultiMap headers, long millis) {}

    private Answer call(String path, String... headers) throws Exception {
        RequestOptions o = new RequestOptions().setMethod(HttpMethod.POST).setHost("127.0.0.1").setPort(port)
                .setURI(path);
        for (int i = 0; i < headers.length; i += 2) {
            o.putHeader(headers[i], headers[i + 1]);
        }
        long t0 = System.nanoTime();
        return onEventLoop(vertx, () -> client.request(o).compose(r -> r.send(Buffer.buffer(new byte[5])))
                .compose(r -> r.body().map(b -> new Answer(r.statusCode(), r.headers(),
                        (System.nanoTime() - t0) / 1_000_000)))).await(10, TimeUnit.SECONDS);
    }

    /**
     * As Envoy's connection manager under a route's {@code max_stream_duration}, the service learns the deadline the
     * stream has as its {@code grpc-timeout}: the caller's (capped), else the route's duration; a request that is not
     * gRPC keeps its headers.
     */
    @Test
    void theServiceGetsTheStreamsDeadlineAsItsGrpcTimeout() throws Exception {
        assertEquals("1000m", call("/seen", "content-type", "application/grpc", "grpc-timeout", "1S").headers()
                .get("x-seen"));
        assertEquals("300m", call("/bounded/seen", "content-type", "application/grpc").headers().get("x-seen"));
        assertEquals("300m", call("/bounded/seen", "content-type", "application/grpc", "grpc-timeout", "5S")
                .headers().get("x-seen"), "the route's duration, shorter than the caller's deadline");
        assertEquals("null", call("/bounded/seen").headers().get("x-seen"), "not gRPC");
    }

    @Test
    void aGrpcCallersDeadlineEndsTheCallWithDeadlineExceededInTheServicesPlace() throws Exception {
        Answer a = call("/pkg.Svc/Slow", "content-type", "application/grpc", "grpc-timeout", "300m");
        assertEquals(200, a.status());
        assertEquals("4", a.headers().get("grpc-status"), "DEADLINE_EXCEEDED");
        assertEquals("downstream duration timeout", a.headers().get("grpc-message"));
        // trailers-only, as Envoy's gRPC local reply over HTTP/2: no content-length
        assertNull(a.headers().get("content-length"));
        assertTrue(a.millis() < 4000, "at its deadline, not the service's answer: " + a.millis() + " ms");
        StreamInfo info = logged(1);
        assertEquals("max_duration_timeout", info.responseCodeDetails());
        assertEquals(java.util.Set.of(), info.responseFlags(), "no flag, as Envoy's onStreamMaxDurationReached sets");
    }

    @Test
    void theRoutesOwnStreamDurationAnswers504ToARequestReadWhole() throws Exception {
        Answer a = call("/bounded");
        assertEquals(504, a.status());
        assertTrue(a.millis() < 4000, a.millis() + " ms");
    }

    @Test
    void anAnswerAlreadyBegunIsResetAtTheDeadline() throws Exception {
        long t0 = System.nanoTime();
        Throwable failed = null;
        try {
            call("/started", "content-type", "application/grpc", "grpc-timeout", "300m");
        } catch (Exception e) {
            failed = e;
        }
        assertTrue(failed != null, "reset, not answered");
        assertTrue((System.nanoTime() - t0) / 1_000_000 < 4000, "at the deadline");
    }

    /**
     * As a sidecar's application sees its stream reset once the connection manager answered in its place or cut its
     * answer: what the service still does with its response fails (a failed future), where Vert.x's response would
     * throw that it has already been written.
     */
    @Test
    void whatTheServiceWritesAfterTheDeadlineAnsweredFailsWithoutThrowing() throws Exception {
        Answer a = call("/bounded/late");
        assertEquals(504, a.status());
        assertEquals(null, a.headers().get("x-late"));
        assertEquals("write failed, end failed", lateAnswer.get(10, TimeUnit.SECONDS));
    }

    @Test
    void whatTheServiceWritesAfterTheDeadlineResetItsAnswerFailsWithoutThrowing() throws Exception {
        assertThrows(Exception.class, () -> call("/started/late", "grpc-timeout", "300m"));
        assertEquals("write failed, end failed", lateAnswer.get(10, TimeUnit.SECONDS));
    }

    /** Completed by the service's close handler of a {@code .../told} request, which it never answers. */
    final java.util.concurrent.CompletableFuture<HttpVersion> serviceTold =
            new java.util.concurrent.CompletableFuture<>();

    /**
     * As a sidecar's application sees its stream reset (HTTP/2) or its connection closed (HTTP/1) when the connection
     * manager answers in its place at the deadline, the service's close handler runs then (over HTTP/1.1 too, whose
     * keep-alive connection would not close): the service may stop the work no one waits for.
     */
    @Test
    void theServiceIsToldAtTheDeadlineThatItsStreamIsGone() throws Exception {
        HttpClient http1 = vertx.createHttpClient(new HttpClientOptions().setKeepAlive(true));
        RequestOptions o = new RequestOptions().setMethod(HttpMethod.POST).setHost("127.0.0.1").setPort(port)
                .setURI("/bounded/told");
        int status = onEventLoop(vertx, () -> http1.request(o).compose(r -> r.send(Buffer.buffer(new byte[5])))
                .compose(r -> r.body().map(b -> r.statusCode()))).await(10, TimeUnit.SECONDS);
        assertEquals(504, status);
        assertEquals(HttpVersion.HTTP_1_1, serviceTold.get(2, TimeUnit.SECONDS));
    }

    /** The {@code n}-th request logged, waiting for it. */
    private StreamInfo logged(int n) throws InterruptedException {
        for (int i = 0; i < 250 && logged.size() < n; i++) {
            Thread.sleep(20);
        }
        return logged.get(n - 1);
    }
}
