package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.outbound.MeshJavaHttpClient;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mesh.javaHttpClient()}: the JDK's client whose requests take the mesh's outbound path (route, cluster,
 * retries, metrics) to loopback servers, with the JDK client's streaming, timeout and cancel behaviour.
 */
class MeshJavaHttpClientTest {
    /** Larger than every buffer on the way (the mesh's write queues, the sockets'), so that back-pressure shows. */
    static final int BIG = 64 * 1024 * 1024;
    /** What may be held between a stalled end and the other: far below {@link #BIG}. */
    static final int BOUND = 16 * 1024 * 1024;

    Vertx vertx;
    Mesh mesh;
    final List<StreamInfo> recorded = new CopyOnWriteArrayList<>();
    final CompletableFuture<Void> hung = new CompletableFuture<>();
    final CompletableFuture<Void> upstreamClosed = new CompletableFuture<>();
    /** The request to /held, paused until the test resumes it. */
    final Promise<HttpServerRequest> held = Promise.promise();
    /** The bytes /big has written so far. */
    final AtomicLong written = new AtomicLong();
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

    /**
     * A server on 127.0.0.1 named {@code name} that answers {@code status}: /hang never answers, /held reads its
     * body once resumed, /big streams {@link #BIG} bytes as the client takes them,
     * /endless streams until its connection closes, /cut closes its connection in the
     * body, /moved redirects (302) to its {@code to} parameter or /there, /loop to itself, /nowhere (307) nowhere,
     * anything else echoes what it saw.
     */
    int server(String name, int status) throws Exception {
        HttpServer s = vertx.createHttpServer().requestHandler(req -> {
            req.connection().closeHandler(v -> upstreamClosed.complete(null));
            switch (req.path()) {
                case "/hang" -> hung.complete(null);
                case "/held" -> {
                    req.pause();
                    held.complete(req);
                    req.body().onSuccess(b -> req.response().end(name + ":" + b.length()));
                }
                case "/big" -> writeBig(req.response().setChunked(true));
                case "/endless" -> writeEndless(req.response().setChunked(true));
                case "/cut" -> req.response().setChunked(true).write("first").onComplete(v -> req.connection().close());
                case "/moved", "/loop" -> req.response().setStatusCode(302)
                        .putHeader("location", req.path().equals("/loop") ? "/loop"
                                : req.getParam("to", "/there?from=moved")).end();
                case "/nowhere" -> req.response().setStatusCode(307).end(); // a redirect without a Location
                default -> req.body().onSuccess(body -> req.response().setStatusCode(status)
                        .putHeader("x-served-by", name)
                        .putHeader("x-seen-host", String.valueOf(req.authority()))
                        .putHeader("x-seen-path", req.uri())
                        .putHeader("x-seen-attempt", String.valueOf(req.getHeader("x-envoy-attempt-count")))
                        .putHeader("x-seen-request-id", String.valueOf(req.getHeader("x-request-id")))
                        .putHeader("x-seen-user-agent", String.valueOf(req.getHeader("user-agent")))
                        .putHeader("x-seen-caller", req.headers().getAll("x-caller"))
                        .end(name + ":" + body.length()));
            }
        });
        s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        return s.actualPort();
    }

    /** Writes the rest of {@link #BIG} while the response's write queue has room, then waits for it to drain. */
    void writeBig(HttpServerResponse resp) {
        Buffer chunk = Buffer.buffer(new byte[16 * 1024]);
        while (!resp.writeQueueFull() && written.get() < BIG) {
            resp.write(chunk);
            written.addAndGet(chunk.length());
        }
        if (written.get() >= BIG) {
            resp.end();
        } else {
            resp.drainHandler(v -> writeBig(resp));
        }
    }

    /** Writes while the response's write queue has room, again once it drains, until the connection closes. */
    static void writeEndless(HttpServerResponse resp) {
        Buffer chunk = Buffer.buffer(new byte[16 * 1024]);
        while (!resp.closed() && !resp.writeQueueFull()) {
            resp.write(chunk);
        }
        if (!resp.closed()) {
            resp.drainHandler(v -> writeEndless(resp));
        }
    }

    Mesh mesh(String config, int adminPort) throws Exception {
        Path file = dir.resolve("mesh.yaml");
        Files.writeString(file, config);
        DefaultMesh m = (DefaultMesh) Mesh.create(vertx, new MeshOptions().setWorkloadName("productpage-v1")
                .setApp("productpage").setVersion("v1").setConfigFile(file.toString()).setAdminPort(adminPort));
        m.addObserver(recorded::add);
        m.start().await(10, TimeUnit.SECONDS);
        mesh = m;
        return m;
    }

    static HttpRequest.Builder to(String pathAndQuery) {
        return HttpRequest.newBuilder(URI.create("http://reviews:9080" + pathAndQuery));
    }

    StreamInfo lastRecorded() throws Exception {
        for (int i = 0; i < 100 && recorded.isEmpty(); i++) {
            Thread.sleep(20);
        }
        return recorded.get(recorded.size() - 1);
    }

    /** Once {@code count} has not grown for a while (the stalled pipeline is full): its value. */
    static long settled(LongSupplier count) throws InterruptedException {
        long last = -1;
        for (int i = 0; i < 50 && count.getAsLong() != last; i++) {
            last = count.getAsLong();
            Thread.sleep(200);
        }
        return count.getAsLong();
    }

    @Test
    void aRequestToAServiceNameIsRoutedToAnEndpointOfItsClusterAsAJdkRequest() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        HttpClient client = mesh.javaHttpClient();
        HttpRequest request = to("/reviews/0?user=jason").header("x-caller", "one").header("x-caller", "two")
                .POST(HttpRequest.BodyPublishers.ofString("hello")).build();
        HttpResponse<String> r = client.send(request, HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode());
        assertEquals("reviews-a:5", r.body());
        assertEquals("reviews:9080", r.headers().firstValue("x-seen-host").orElseThrow());
        assertEquals("/reviews/0?user=jason", r.headers().firstValue("x-seen-path").orElseThrow());
        assertEquals(List.of("one", "two"), r.headers().allValues("x-seen-caller"));
        assertEquals("1", r.headers().firstValue("x-seen-attempt").orElseThrow());
        assertEquals(36, r.headers().firstValue("x-seen-request-id").orElseThrow().length());
        assertTrue(r.headers().firstValue("x-envoy-upstream-service-time").isPresent());
        // the JDK client's User-Agent, as the upstream would see it from the JDK's own client
        assertEquals("Java-http-client/" + System.getProperty("java.version"),
                r.headers().firstValue("x-seen-user-agent").orElseThrow());
        assertSame(request, r.request());
        assertEquals(request.uri(), r.uri());
        assertEquals(HttpClient.Version.HTTP_1_1, r.version());
        assertTrue(r.previousResponse().isEmpty());
        assertTrue(r.sslSession().isEmpty());
        StreamInfo info = lastRecorded();
        assertEquals(StreamInfo.Direction.OUTBOUND, info.direction());
        assertEquals("outbound|9080||reviews.default.svc.cluster.local", info.upstreamCluster());
        // an unknown host on the port has no route: the router's 404, as through mesh.httpClient()
        assertEquals(404, client.send(HttpRequest.newBuilder(URI.create("http://ratings:9080/")).build(),
                HttpResponse.BodyHandlers.discarding()).statusCode());
        assertEquals(java.util.Set.of(ResponseFlag.NO_ROUTE_FOUND), lastRecorded().responseFlags());
    }

    @Test
    void istiosDefaultRetryHidesAnInstanceAnswering503() throws Exception {
        int bad = server("reviews-bad", 503);
        int good = server("reviews-good", 200);
        mesh(MeshWebClientTest.config(MeshWebClientTest.ISTIO_RETRY, bad, good), -1);
        HttpClient client = mesh.javaHttpClient();
        Map<String, Integer> seen = new HashMap<>();
        for (int i = 0; i < 10; i++) {
            HttpResponse<String> r = client.send(to("/reviews/0").build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), "request " + i);
            seen.merge(r.headers().firstValue("x-served-by").orElseThrow(), 1, Integer::sum);
        }
        assertEquals(Map.of("reviews-good", 10), seen);
        assertTrue(recorded.stream().anyMatch(s -> s.attemptCount() == 2));
    }

    @Test
    void streamedRequestBodiesGoUpstreamWhole() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        HttpClient client = mesh.javaHttpClient();
        // of unknown length: sent chunked
        byte[] data = new byte[300_000];
        HttpResponse<String> r = client.send(to("/").POST(HttpRequest.BodyPublishers.ofInputStream(
                () -> new java.io.ByteArrayInputStream(data))).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals("reviews-a:300000", r.body());
        List<byte[]> parts = new ArrayList<>(Collections.nCopies(40, new byte[10_000]));
        r = client.send(to("/").POST(HttpRequest.BodyPublishers.ofByteArrays(parts)).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals("reviews-a:400000", r.body());
        // of a known length
        r = client.sendAsync(to("/").POST(HttpRequest.BodyPublishers.ofByteArray(data)).build(),
                HttpResponse.BodyHandlers.ofString()).get(10, TimeUnit.SECONDS);
        assertEquals("reviews-a:300000", r.body());
    }

    @Test
    void anUpstreamThatDoesNotReadHoldsTheRequestBodyPublisherBack() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        AtomicLong read = new AtomicLong();
        InputStream body = new InputStream() {
            @Override
            public int read() {
                return read.getAndIncrement() < BIG ? 0 : -1;
            }

            @Override
            public int read(byte[] b, int off, int len) {
                int n = (int) Math.min(len, BIG - read.get());
                if (n <= 0) {
                    return -1;
                }
                read.addAndGet(n);
                return n;
            }
        };
        CompletableFuture<HttpResponse<String>> f = mesh.javaHttpClient().sendAsync(
                to("/held").POST(HttpRequest.BodyPublishers.ofInputStream(() -> body)).build(),
                HttpResponse.BodyHandlers.ofString());
        HttpServerRequest upstream = held.future().await(10, TimeUnit.SECONDS);
        long stalled = settled(read::get);
        assertTrue(stalled < BOUND, "the publisher was read " + stalled + " bytes ahead of a paused upstream");
        upstream.resume();
        assertEquals("reviews-a:" + BIG, f.get(30, TimeUnit.SECONDS).body());
    }

    @Test
    void aLargeResponseReadSlowlyThroughAnInputStreamHoldsTheUpstreamBack() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        HttpResponse<InputStream> r = mesh.javaHttpClient().send(to("/big").build(),
                HttpResponse.BodyHandlers.ofInputStream());
        assertEquals(200, r.statusCode());
        try (InputStream in = r.body()) {
            long total = in.readNBytes(64 * 1024).length;
            long ahead = settled(written::get);
            assertTrue(ahead < BOUND, "the upstream wrote " + ahead + " bytes ahead of a reader that stopped");
            byte[] buf = new byte[64 * 1024];
            for (int n; (n = in.read(buf)) >= 0; ) {
                total += n;
            }
            assertEquals(BIG, total);
        }
    }

    @Test
    @Timeout(60) // a body subscriber never told of the failure would wait forever
    void aResponseBodyCutUpstreamFailsTheBodySubscriberWithAnIOException() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        HttpClient client = mesh.javaHttpClient();
        assertThrows(java.io.IOException.class, () -> client.send(to("/cut").build(),
                HttpResponse.BodyHandlers.ofString()));
        // through an InputStream: the headers came, the read fails
        HttpResponse<InputStream> r = client.send(to("/cut").build(), HttpResponse.BodyHandlers.ofInputStream());
        assertEquals(200, r.statusCode());
        try (InputStream in = r.body()) {
            assertThrows(java.io.IOException.class, in::readAllBytes);
        }
    }

    @Test
    void theRequestsTimeoutFailsItWithTheJdksTimeoutExceptionAndEndsTheExchangeUpstream() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        HttpRequest request = to("/hang").timeout(Duration.ofMillis(300)).build();
        HttpTimeoutException e = assertThrows(HttpTimeoutException.class,
                () -> mesh.javaHttpClient().send(request, HttpResponse.BodyHandlers.ofString()));
        assertEquals("request timed out", e.getMessage());
        upstreamClosed.get(10, TimeUnit.SECONDS);
        assertTrue(lastRecorded().responseFlags().contains(ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION));
    }

    @Test
    void cancellingTheFutureOfSendAsyncResetsTheRequest() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        CompletableFuture<HttpResponse<String>> f = mesh.javaHttpClient().sendAsync(to("/hang").build(),
                HttpResponse.BodyHandlers.ofString());
        hung.get(10, TimeUnit.SECONDS);
        assertTrue(f.cancel(true));
        upstreamClosed.get(10, TimeUnit.SECONDS);
        assertTrue(lastRecorded().responseFlags().contains(ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION));
    }

    @Test
    void sendOnAnEventLoopIsRefusedAndSendAsyncWorksThere() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        HttpClient client = mesh.javaHttpClient();
        CompletableFuture<Throwable> refused = new CompletableFuture<>();
        CompletableFuture<HttpResponse<String>> async = new CompletableFuture<>();
        vertx.getOrCreateContext().runOnContext(v -> {
            try {
                client.send(to("/").build(), HttpResponse.BodyHandlers.ofString());
                refused.complete(null);
            } catch (Exception e) {
                refused.complete(e);
            }
            client.sendAsync(to("/").build(), HttpResponse.BodyHandlers.ofString()).whenComplete((r, t) -> {
                if (t != null) {
                    async.completeExceptionally(t);
                } else {
                    async.complete(r);
                }
            });
        });
        Throwable t = refused.get(10, TimeUnit.SECONDS);
        assertInstanceOf(IllegalStateException.class, t);
        assertTrue(t.getMessage().contains("event loop"), t.getMessage());
        assertEquals("reviews-a:0", async.get(10, TimeUnit.SECONDS).body());
    }

    @Test
    void itsRequestsAreCountedInIstioRequestsTotalAsTheSourcesOwn() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), 0);
        HttpClient client = mesh.javaHttpClient();
        for (int i = 0; i < 3; i++) {
            assertEquals(200, client.send(to("/").build(), HttpResponse.BodyHandlers.discarding()).statusCode());
        }
        HttpClient plain = HttpClient.newHttpClient(); // the admin server, not through the mesh
        HttpRequest scrape = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + mesh.adminPort()
                + "/stats/prometheus")).build();
        String line = "";
        for (int i = 0; i < 50 && !line.endsWith(" 3"); i++) {
            line = plain.send(scrape, HttpResponse.BodyHandlers.ofString()).body().lines()
                    .filter(l -> l.startsWith("istio_requests_total{")).findFirst().orElse("");
            Thread.sleep(i == 0 ? 0 : 100);
        }
        assertTrue(line.contains("reporter=\"source\""), line);
        assertTrue(line.contains("source_workload=\"productpage-v1\""), line);
        // the cluster has no istio metadata: as Istio's client side (which never reads the cluster's name), the Host
        assertTrue(line.contains("destination_service=\"reviews:9080\""), line);
        assertTrue(line.contains("response_code=\"200\""), line);
        assertTrue(line.endsWith(" 3"), line);
    }

    /** {@code body}'s bytes from a publisher that says they are {@code length} long. */
    static HttpRequest.BodyPublisher claiming(String body, long length) {
        HttpRequest.BodyPublisher bytes = HttpRequest.BodyPublishers.ofString(body);
        return new HttpRequest.BodyPublisher() {
            @Override
            public long contentLength() {
                return length;
            }

            @Override
            public void subscribe(java.util.concurrent.Flow.Subscriber<? super java.nio.ByteBuffer> s) {
                bytes.subscribe(s);
            }
        };
    }

    @Test
    @Timeout(60) // a request whose body falls short of its content-length would wait for the rest
    void aPublisherThatGivesMoreOrFewerBytesThanItsContentLengthFailsTheRequestAsTheJdksClient() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        HttpClient client = mesh.javaHttpClient();
        java.io.IOException more = assertThrows(java.io.IOException.class, () -> client.send(
                to("/").POST(claiming("hello world", 5)).build(), HttpResponse.BodyHandlers.ofString()));
        assertTrue(more.getMessage().contains("Too many bytes"), more.getMessage());
        java.io.IOException fewer = assertThrows(java.io.IOException.class, () -> client.send(
                to("/").POST(claiming("hello", 11)).build(), HttpResponse.BodyHandlers.ofString()));
        assertTrue(fewer.getMessage().contains("Too few bytes"), fewer.getMessage());
        // the connections stay sound: the next request reads what it sent
        assertEquals("reviews-a:5", client.send(to("/").POST(HttpRequest.BodyPublishers.ofString("hello")).build(),
                HttpResponse.BodyHandlers.ofString()).body());
    }

    @Test
    void theBodyHandlerIsAppliedOffTheEventLoopAsTheSubscriberIsCalled() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        CompletableFuture<String> applied = new CompletableFuture<>();
        HttpResponse<String> r = mesh.javaHttpClient().send(to("/").build(), info -> {
            applied.complete(Thread.currentThread().getName());
            return HttpResponse.BodySubscribers.ofString(java.nio.charset.StandardCharsets.UTF_8);
        });
        assertEquals("reviews-a:0", r.body());
        String thread = applied.get(10, TimeUnit.SECONDS);
        assertTrue(thread.startsWith("inmesh-java-http-client-"), thread);
    }

    @Test
    @Timeout(60) // a caller blocked where the body is delivered would wait for it forever
    void aCallerThatBlocksOnTheBodyInADependentStageOrAMappingSubscriberGetsItAsFromTheJdksClient()
            throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        HttpClient client = mesh.javaHttpClient();
        HttpRequest hello = to("/").POST(HttpRequest.BodyPublishers.ofString("hello")).build();
        // a dependent stage that reads the stream: the JDK completes sendAsync's dependents off its body's delivery
        assertEquals("reviews-a:5", client.sendAsync(hello, HttpResponse.BodyHandlers.ofInputStream())
                .thenApply(r -> readAll(r.body())).get(10, TimeUnit.SECONDS));
        // a mapper that blocks on the stream, as BodySubscribers.mapping's Javadoc allows
        HttpResponse<String> mapped = client.send(hello, info -> HttpResponse.BodySubscribers.mapping(
                HttpResponse.BodySubscribers.ofInputStream(), MeshJavaHttpClientTest::readAll));
        assertEquals("reviews-a:5", mapped.body());
        assertEquals("reviews-a:5", client.sendAsync(hello, HttpResponse.BodyHandlers.ofLines())
                .thenApply(r -> r.body().collect(java.util.stream.Collectors.joining("/")))
                .get(10, TimeUnit.SECONDS));
        // the bodies given whole, or as a publisher, as before
        assertEquals("reviews-a:5", new String(client.sendAsync(hello, HttpResponse.BodyHandlers.ofByteArray())
                .thenApply(HttpResponse::body).get(10, TimeUnit.SECONDS), java.nio.charset.StandardCharsets.UTF_8));
        HttpResponse<java.util.concurrent.Flow.Publisher<List<java.nio.ByteBuffer>>> published =
                client.send(hello, HttpResponse.BodyHandlers.ofPublisher());
        Recording recording = new Recording(Long.MAX_VALUE, 1);
        published.body().subscribe(recording);
        assertEquals(11L, recording.body.get(10, TimeUnit.SECONDS));
    }

    @Test
    @Timeout(60)
    void aPassedThroughRequestWhoseConnectFailsThrowsTheJdksConnectExceptionAndABlackHoledOneAClosedConnection()
            throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        int closed;
        try (var socket = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            closed = socket.getLocalPort();
        }
        HttpClient client = mesh.javaHttpClient();
        // a port without listener, relayed as bytes: no HTTP answer, the JDK client's exception for a connect that
        // failed, a name that does not resolve included
        for (String host : List.of("127.0.0.1", "no-such-host.invalid")) {
            HttpRequest request = HttpRequest.newBuilder(URI.create("http://" + host + ":" + closed + "/x")).build();
            assertThrows(java.net.ConnectException.class,
                    () -> client.send(request, HttpResponse.BodyHandlers.ofString()), host);
        }
        mesh.close().await(10, TimeUnit.SECONDS);
        Path file = dir.resolve("mesh.yaml");
        mesh = Mesh.create(vertx, new MeshOptions().setConfigFile(file.toString()).setAdminPort(-1)
                .setOutboundTrafficPolicy(MeshOptions.OutboundTrafficPolicy.REGISTRY_ONLY));
        mesh.start().await(10, TimeUnit.SECONDS);
        // REGISTRY_ONLY: the BlackHoleCluster's tcp_proxy closes the connection
        IOException e = assertThrows(IOException.class, () -> mesh.javaHttpClient().send(HttpRequest.newBuilder(
                URI.create("http://127.0.0.1:" + a + "/x")).build(), HttpResponse.BodyHandlers.ofString()));
        assertFalse(e instanceof java.net.ConnectException, e.toString());
    }

    static String readAll(InputStream in) {
        try (in) {
            return new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void aBodySubscriberThatCancelsHearsNoMoreOfTheBody() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        Recording cancelling = new Recording(Long.MAX_VALUE, 0) {
            volatile boolean cancelled;

            @Override
            public void onNext(List<java.nio.ByteBuffer> item) {
                if (cancelled) {
                    signals.add("onNext after cancel");
                    return;
                }
                try {
                    Thread.sleep(200); // the body keeps coming meanwhile, all of it asked for
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                cancelled = true;
                subscription.cancel();
                body.complete(-1L);
            }
        };
        HttpResponse<Long> r = mesh.javaHttpClient().sendAsync(to("/endless").build(), info -> cancelling)
                .get(10, TimeUnit.SECONDS);
        assertEquals(-1L, r.body());
        upstreamClosed.get(10, TimeUnit.SECONDS); // reset, not left open in the pool
        assertEquals(0, settled(() -> cancelling.signals.size()), "signals after cancel: " + cancelling.signals);
    }

    /**
     * A body subscriber that signals as a Reactive Streams subscriber may: {@code onSubscribe} asks for
     * {@code first}, each {@code onNext} asks for {@code next}; what it hears is kept in {@link #signals}.
     */
    static class Recording implements HttpResponse.BodySubscriber<Long> {
        final List<String> signals = new CopyOnWriteArrayList<>();
        final CompletableFuture<Long> body = new CompletableFuture<>();
        final AtomicLong bytes = new AtomicLong();
        final long first;
        final long next;
        java.util.concurrent.Flow.Subscription subscription;

        Recording(long first, long next) {
            this.first = first;
            this.next = next;
        }

        @Override
        public java.util.concurrent.CompletionStage<Long> getBody() {
            return body;
        }

        @Override
        public void onSubscribe(java.util.concurrent.Flow.Subscription s) {
            subscription = s;
            s.request(first);
        }

        @Override
        public void onNext(List<java.nio.ByteBuffer> item) {
            if (!signals.isEmpty()) {
                signals.add("onNext after " + signals.get(0));
            }
            item.forEach(b -> bytes.addAndGet(b.remaining()));
            subscription.request(next);
        }

        @Override
        public void onError(Throwable t) {
            signals.add("onError " + t.getClass().getSimpleName());
            body.completeExceptionally(t);
        }

        @Override
        public void onComplete() {
            signals.add("onComplete");
            body.complete(bytes.get());
        }
    }

    @Test
    @Timeout(60)
    void aBodySubscribersRequestOfZeroFailsItWithAnIllegalArgumentExceptionAndNothingFollows() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        // rule 3.9: request(n <= 0) is signalled with onError(IllegalArgumentException); the body then stops (1.7)
        Recording endless = new Recording(Long.MAX_VALUE, 0);
        java.util.concurrent.ExecutionException e = assertThrows(java.util.concurrent.ExecutionException.class,
                () -> mesh.javaHttpClient().sendAsync(to("/endless").build(), info -> endless).get(10,
                        TimeUnit.SECONDS));
        assertInstanceOf(IllegalArgumentException.class, e.getCause());
        upstreamClosed.get(10, TimeUnit.SECONDS); // reset, not left open in the pool
        settled(() -> endless.signals.size());
        assertEquals(List.of("onError IllegalArgumentException"), endless.signals);
        // asked for as onSubscribe's first call too
        Recording first = new Recording(-1, 1);
        e = assertThrows(java.util.concurrent.ExecutionException.class, () -> mesh.javaHttpClient()
                .sendAsync(to("/").build(), info -> first).get(10, TimeUnit.SECONDS));
        assertInstanceOf(IllegalArgumentException.class, e.getCause());
        assertEquals(List.of("onError IllegalArgumentException"), first.signals);
    }

    @Test
    @Timeout(60)
    void aBodySubscribersDemandSummingPastLongMaxValueIsUnboundedAndTheBodyComesWhole() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        // rule 3.17: Long.MAX_VALUE, asked for again with each item, stays "effectively unbounded"
        Recording twice = new Recording(Long.MAX_VALUE, Long.MAX_VALUE);
        HttpResponse<Long> r = mesh.javaHttpClient().sendAsync(to("/big").build(), info -> twice)
                .get(30, TimeUnit.SECONDS);
        assertEquals(BIG, r.body());
        assertEquals(List.of("onComplete"), twice.signals);
        Recording summing = new Recording(1, Long.MAX_VALUE - 1);
        written.set(0);
        r = mesh.javaHttpClient().sendAsync(to("/big").build(), info -> summing).get(30, TimeUnit.SECONDS);
        assertEquals(BIG, r.body());
    }

    @Test
    @Timeout(60)
    void aRequestBodyPublisherIsCancelledAfterTheRequestItIsIn() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        CompletableFuture<Void> entered = new CompletableFuture<>();
        CompletableFuture<Boolean> cancelledDuringRequest = new CompletableFuture<>();
        java.util.concurrent.atomic.AtomicBoolean inRequest = new java.util.concurrent.atomic.AtomicBoolean();
        // a publisher that blocks in request(n), as one reading a slow stream there: Flow's rule 2.7 has the
        // subscriber's calls to it serial, so the cancel of a failed exchange comes once that request(n) returned
        HttpRequest.BodyPublisher blocking = new HttpRequest.BodyPublisher() {
            @Override
            public long contentLength() {
                return -1;
            }

            @Override
            public void subscribe(java.util.concurrent.Flow.Subscriber<? super java.nio.ByteBuffer> s) {
                s.onSubscribe(new java.util.concurrent.Flow.Subscription() {
                    @Override
                    public void request(long n) {
                        inRequest.set(true);
                        entered.complete(null);
                        try {
                            Thread.sleep(500);
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                        inRequest.set(false);
                    }

                    @Override
                    public void cancel() {
                        cancelledDuringRequest.complete(inRequest.get());
                    }
                });
            }
        };
        CompletableFuture<HttpResponse<String>> f = mesh.javaHttpClient().sendAsync(to("/hang").POST(blocking)
                .build(), HttpResponse.BodyHandlers.ofString());
        entered.get(10, TimeUnit.SECONDS);
        assertTrue(f.cancel(true));
        assertEquals(false, cancelledDuringRequest.get(10, TimeUnit.SECONDS));
    }

    @Test
    @Timeout(60)
    void theClientsThreadsEndWhenTheMeshClosesAndARequestAfterFailsWithAnIOException() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        HttpClient client = mesh.javaHttpClient();
        CompletableFuture<String> thread = new CompletableFuture<>();
        assertEquals("reviews-a:0", client.send(to("/").build(), info -> {
            thread.complete(Thread.currentThread().getName());
            return HttpResponse.BodySubscribers.ofString(java.nio.charset.StandardCharsets.UTF_8);
        }).body());
        // inmesh-java-http-client-<client>-<thread>: this client's threads
        String name = thread.get(10, TimeUnit.SECONDS);
        String prefix = name.substring(0, name.lastIndexOf('-') + 1);
        mesh.close().await(10, TimeUnit.SECONDS);
        LongSupplier threads = () -> Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().startsWith(prefix)).count();
        long alive = threads.getAsLong();
        for (int i = 0; i < 100 && alive > 0; i++) {
            Thread.sleep(100);
            alive = threads.getAsLong();
        }
        assertEquals(0, alive, "threads of " + prefix + " left after the mesh closed");
        java.io.IOException e = assertThrows(java.io.IOException.class,
                () -> client.send(to("/").build(), HttpResponse.BodyHandlers.ofString()));
        assertTrue(e.getMessage().contains("the mesh is closed"), e.getMessage());
    }

    @Test
    void redirectsAreFollowedAsTheJdksClientWithThePolicyItWasMadeWith() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        // NEVER, the JDK's default: the 302 is the response
        HttpClient never = mesh.javaHttpClient();
        assertEquals(HttpClient.Redirect.NEVER, never.followRedirects());
        assertEquals(302, never.send(to("/moved").build(), HttpResponse.BodyHandlers.ofString()).statusCode());
        HttpClient normal = mesh.javaHttpClient(HttpClient.Redirect.NORMAL);
        assertEquals(HttpClient.Redirect.NORMAL, normal.followRedirects());
        HttpResponse<String> r = normal.send(to("/moved").build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode());
        assertEquals("/there?from=moved", r.headers().firstValue("x-seen-path").orElseThrow());
        assertEquals(URI.create("http://reviews:9080/there?from=moved"), r.uri());
        assertEquals(r.uri(), r.request().uri());
        HttpResponse<String> moved = r.previousResponse().orElseThrow();
        assertEquals(302, moved.statusCode());
        assertEquals(URI.create("http://reviews:9080/moved"), moved.uri());
        assertEquals(null, moved.body());
        assertTrue(moved.previousResponse().isEmpty());
        // each a request of its own through the mesh
        assertEquals("outbound|9080||reviews.default.svc.cluster.local", lastRecorded().upstreamCluster());
        // a loop is followed 4 times, as the JDK's client under its limit of 5, then its 302 is the response
        r = normal.send(to("/loop").build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(302, r.statusCode());
        int previous = 0;
        for (HttpResponse<String> p = r; p.previousResponse().isPresent(); p = p.previousResponse().get()) {
            previous++;
        }
        assertEquals(4, previous);
        // a redirect without a Location fails the request, as the JDK's client fails it; under NEVER it is an answer
        IOException e = assertThrows(IOException.class,
                () -> normal.send(to("/nowhere").build(), HttpResponse.BodyHandlers.ofString()));
        assertEquals("Invalid redirection", e.getMessage());
        assertEquals(307, never.send(to("/nowhere").build(), HttpResponse.BodyHandlers.ofString()).statusCode());
    }

    @Test
    void cancellingTheFutureOfSendAsyncResetsTheRedirectFollowed() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        CompletableFuture<HttpResponse<String>> f = mesh.javaHttpClient(HttpClient.Redirect.NORMAL)
                .sendAsync(to("/moved?to=/hang").build(), HttpResponse.BodyHandlers.ofString());
        hung.get(10, TimeUnit.SECONDS);
        assertTrue(f.cancel(true));
        upstreamClosed.get(10, TimeUnit.SECONDS);
    }

    @Test
    void aNullRequestOrBodyHandlerIsRefusedAtOnceAsTheJdksClientRefusesItAndNothingIsSent() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        HttpClient client = mesh.javaHttpClient();
        assertThrows(NullPointerException.class, () -> client.sendAsync(to("/").build(), null));
        assertThrows(NullPointerException.class, () -> client.sendAsync(null, HttpResponse.BodyHandlers.ofString()));
        assertThrows(NullPointerException.class, () -> client.send(to("/").build(), null));
        assertEquals("reviews-a:0", client.send(to("/").build(), HttpResponse.BodyHandlers.ofString()).body());
        lastRecorded();
        assertEquals(1, recorded.size(), "the requests sent: " + recorded);
    }

    /** The JDK 21 lifecycle, which JDK 17 code reaches through the client's own class or {@link AutoCloseable}. */
    static MeshJavaHttpClient lifecycle(HttpClient client) {
        return (MeshJavaHttpClient) client;
    }

    /** {@code client.close()}: on JDK 21 and later {@link HttpClient}'s own method, as a caller's code calls it. */
    static void close(HttpClient client) {
        try {
            if (Runtime.version().feature() >= 21) {
                HttpClient.class.getMethod("close").invoke(client);
            } else {
                ((AutoCloseable) client).close();
            }
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    @Timeout(60)
    void shutdownLetsTheRequestsSentRunToCompletionAndRefusesTheNextAsTheJdk21Client() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        MeshJavaHttpClient client = lifecycle(mesh.javaHttpClient(HttpClient.Redirect.NORMAL));
        assertFalse(client.isTerminated());
        assertFalse(client.awaitTermination(Duration.ofMillis(50)), "terminated without a shutdown");
        // in flight: a redirect, then the request that follows it, held upstream
        CompletableFuture<HttpResponse<String>> f = client.sendAsync(to("/moved?to=/held").build(),
                HttpResponse.BodyHandlers.ofString());
        HttpServerRequest req = held.future().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        client.shutdown();
        IOException e = assertThrows(IOException.class,
                () -> client.send(to("/").build(), HttpResponse.BodyHandlers.ofString()));
        assertEquals("closed", e.getMessage());
        assertFalse(client.isTerminated());
        assertFalse(client.awaitTermination(Duration.ofMillis(200)), "terminated with a request in flight");
        req.resume();
        assertEquals("reviews-a:0", f.get(10, TimeUnit.SECONDS).body());
        assertTrue(client.awaitTermination(Duration.ofSeconds(10)));
        assertTrue(client.isTerminated());
        assertTrue(client.awaitTermination(Duration.ZERO));
        assertThrows(NullPointerException.class, () -> client.awaitTermination(null));
        // the mesh is not closed: another client of it sends on
        assertEquals("reviews-a:0", mesh.javaHttpClient().send(to("/").build(),
                HttpResponse.BodyHandlers.ofString()).body());
    }

    @Test
    @Timeout(60)
    void aShutDownClientEndsOnlyOnceTheResponseBodiesAreDelivered() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        MeshJavaHttpClient client = lifecycle(mesh.javaHttpClient());
        HttpResponse<InputStream> r = client.send(to("/big").build(), HttpResponse.BodyHandlers.ofInputStream());
        client.shutdown();
        try (InputStream in = r.body()) {
            long total = in.readNBytes(64 * 1024).length;
            assertFalse(client.awaitTermination(Duration.ofMillis(200)), "terminated with a body not read");
            byte[] buf = new byte[64 * 1024];
            for (int n; (n = in.read(buf)) >= 0; ) {
                total += n;
            }
            assertEquals(BIG, total);
        }
        assertTrue(client.awaitTermination(Duration.ofSeconds(10)));
    }

    @Test
    @Timeout(60)
    void shutdownNowFailsTheRequestsInFlightWithAnIOExceptionAndResetsThemUpstream() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        MeshJavaHttpClient client = lifecycle(mesh.javaHttpClient());
        HttpResponse<InputStream> streaming = client.send(to("/endless").build(),
                HttpResponse.BodyHandlers.ofInputStream());
        CompletableFuture<HttpResponse<String>> waiting = client.sendAsync(to("/hang").build(),
                HttpResponse.BodyHandlers.ofString());
        hung.get(10, TimeUnit.SECONDS);
        try (InputStream in = streaming.body()) {
            assertEquals(1000, in.readNBytes(1000).length);
            client.shutdownNow();
            IOException e = assertThrows(IOException.class, in::readAllBytes);
            // the JDK's stream: "closed", with what failed the body as its cause
            assertEquals("shutdownNow", e.getCause().getMessage(), String.valueOf(e));
        }
        ExecutionException e = assertThrows(ExecutionException.class, () -> waiting.get(10, TimeUnit.SECONDS));
        assertInstanceOf(IOException.class, e.getCause());
        assertEquals("shutdownNow", e.getCause().getMessage());
        assertTrue(client.awaitTermination(Duration.ofSeconds(10)));
        upstreamClosed.get(10, TimeUnit.SECONDS);
    }

    @Test
    @Timeout(60)
    void closeWaitsForTheRequestsInFlightAndWhenInterruptedShutsDownNow() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        HttpClient client = mesh.javaHttpClient();
        CompletableFuture<HttpResponse<String>> f = client.sendAsync(to("/held").build(),
                HttpResponse.BodyHandlers.ofString());
        HttpServerRequest req = held.future().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        CompletableFuture<Void> closing = CompletableFuture.runAsync(() -> close(client));
        assertThrows(TimeoutException.class, () -> closing.get(200, TimeUnit.MILLISECONDS));
        req.resume();
        closing.get(10, TimeUnit.SECONDS);
        assertEquals("reviews-a:0", f.getNow(null).body());
        assertTrue(lifecycle(client).isTerminated());
        close(client); // closed already: returns at once

        // a caller's thread interrupted in close(): what is in flight fails at once, and the interrupt is kept
        HttpClient other = mesh.javaHttpClient();
        CompletableFuture<HttpResponse<String>> hanging = other.sendAsync(to("/hang").build(),
                HttpResponse.BodyHandlers.ofString());
        hung.get(10, TimeUnit.SECONDS);
        CompletableFuture<Boolean> interruptedAfter = new CompletableFuture<>();
        Thread closer = new Thread(() -> {
            close(other);
            interruptedAfter.complete(Thread.currentThread().isInterrupted());
        });
        closer.start();
        assertThrows(TimeoutException.class, () -> interruptedAfter.get(200, TimeUnit.MILLISECONDS));
        closer.interrupt();
        assertTrue(interruptedAfter.get(10, TimeUnit.SECONDS));
        ExecutionException e = assertThrows(ExecutionException.class, () -> hanging.get(10, TimeUnit.SECONDS));
        assertEquals("shutdownNow", e.getCause().getMessage());
        assertTrue(lifecycle(other).isTerminated());
    }
}
