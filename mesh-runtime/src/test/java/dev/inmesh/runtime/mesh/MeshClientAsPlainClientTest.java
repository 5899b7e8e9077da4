package dev.inmesh.runtime.mesh;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.testing.MeshFixture;
import dev.inmesh.runtime.upstream.RawHttp1Upstream;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Promise;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpClosedException;
import io.vertx.core.http.HttpConnectOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.http.StreamResetException;
import io.vertx.core.net.SelfSignedCertificate;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;
import io.vertx.ext.web.multipart.MultipartForm;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The mesh's clients where a service swaps them for plain Vert.x ones: what a plain client does with timeouts,
 * resets, forms, redirects, 100-continue, virtual hosts, TLS and closing, the mesh's does too. The requests go to a
 * loopback server through PassthroughCluster (no listener for its port, ALLOW_ANY): no route timeout applies.
 */
class MeshClientAsPlainClientTest extends MeshFixture {
    final List<StreamInfo> recorded = new CopyOnWriteArrayList<>();
    /** Completed when a request to /hang reached the server. */
    final CompletableFuture<Void> hung = new CompletableFuture<>();
    /** Completed when a connection to the server closes. */
    final CompletableFuture<Void> upstreamClosed = new CompletableFuture<>();
    int port;
    /** How many requests the server was sent. */
    final AtomicInteger served = new AtomicInteger();

    @BeforeEach
    void setUp() throws Exception {
        port = server(new HttpServerOptions(), this::handle);
        startMesh("static_resources: {}\n", recorded::add);
    }


    int server(HttpServerOptions options, io.vertx.core.Handler<HttpServerRequest> handler) throws Exception {
        HttpServer s = vertx.createHttpServer(options).requestHandler(handler);
        s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        return s.actualPort();
    }

    /** /hang never answers, /trickle sends its headers and one chunk, anything else echoes. */
    void handle(HttpServerRequest req) {
        served.incrementAndGet();
        req.connection().closeHandler(v -> upstreamClosed.complete(null));
        switch (req.path()) {
            case "/hang" -> hung.complete(null);
            case "/trickle" -> req.response().setChunked(true).write("first");
            case "/moved" -> req.response().setStatusCode(302).putHeader("location", "/there").end();
            case "/form" -> {
                req.setExpectMultipart(true);
                StringBuilder files = new StringBuilder();
                req.uploadHandler(u -> u.handler(b -> files.append(u.filename()).append('=').append(b)));
                req.end().onSuccess(v -> req.response().putHeader("x-type", req.getHeader("content-type"))
                        .end(req.formAttributes().get("a") + "," + req.formAttributes().get("b") + "," + files));
            }
            default -> req.body().onSuccess(b -> req.response().putHeader("x-uri", req.uri())
                    .putHeader("x-authority", String.valueOf(req.authority()))
                    .putHeader("x-expect", String.valueOf(req.getHeader("expect"))).end(b));
        }
    }

    StreamInfo lastRecorded() throws Exception {
        for (int i = 0; i < 100 && recorded.isEmpty(); i++) {
            Thread.sleep(20);
        }
        return recorded.get(recorded.size() - 1);
    }

    static Throwable failure(Future<?> f) throws Exception {
        try {
            f.toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            return e.getCause();
        }
        throw new AssertionError("the request did not fail");
    }

    /** The request's status, what of its body came, how the body ended, and what the mesh recorded. */
    record Outcome(int status, String body, Throwable failure, StreamInfo info) {}

    private Outcome rawCall(String answer) throws Exception {
        recorded.clear();
        try (RawHttp1Upstream server = new RawHttp1Upstream(answer)) {
            Promise<Throwable> ended = Promise.promise();
            StringBuilder body = new StringBuilder();
            HttpClientResponse resp = mesh.httpClient().request(new RequestOptions().setHost("127.0.0.1")
                            .setPort(server.port()).setURI("/"))
                    .compose(HttpClientRequest::send)
                    .onSuccess(r -> {
                        r.handler(b -> body.append(b.toString(StandardCharsets.ISO_8859_1)));
                        r.exceptionHandler(ended::tryComplete);
                        r.endHandler(v -> ended.tryComplete(null));
                    }).await(10, TimeUnit.SECONDS);
            Throwable failure = ended.future().await(10, TimeUnit.SECONDS);
            for (int i = 0; i < 250 && recorded.isEmpty(); i++) {
                Thread.sleep(20);
            }
            assertEquals(1, recorded.size(), "one request recorded");
            return new Outcome(resp.statusCode(), body.toString(), failure, recorded.get(0));
        }
    }

    /**
     * What reaches an HTTP/1.1 upstream is framed as a plain client frames it and a sidecar's Envoy then forwards it:
     * a request ended without a body goes without {@code content-length} when its method has no body (GET, HEAD,
     * DELETE) and with {@code content-length: 0} otherwise, as Envoy's HTTP/1 codec adds it; an empty body sent is
     * {@code content-length: 0}, a whole one its length, and a chunked one goes chunked, as the client sent it.
     */
    @Test
    void anUpstreamRequestIsFramedAsAPlainClientSendsItAndEnvoysHttp1CodecForwardsIt() throws Exception {
        record Case(HttpMethod method, String body, boolean chunked, String length, String rest) {}
        List<Case> cases = List.of(
                new Case(HttpMethod.GET, null, false, null, ""),
                new Case(HttpMethod.HEAD, null, false, null, ""),
                new Case(HttpMethod.DELETE, null, false, null, ""),
                new Case(HttpMethod.OPTIONS, null, false, "0", ""),
                new Case(HttpMethod.POST, null, false, "0", ""),
                new Case(HttpMethod.GET, "", false, "0", ""),
                new Case(HttpMethod.POST, "", false, "0", ""),
                new Case(HttpMethod.POST, "hello", false, "5", "hello"),
                new Case(HttpMethod.POST, "hello", true, null, "5\r\nhello\r\n0\r\n\r\n"));
        try (RawHttp1Upstream server = new RawHttp1Upstream(
                "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")) {
            for (int i = 0; i < cases.size(); i++) {
                Case c = cases.get(i);
                String what = c.method() + " " + c.body() + (c.chunked() ? " chunked" : "");
                HttpClientRequest req = mesh.httpClient().request(new RequestOptions().setMethod(c.method())
                        .setHost("127.0.0.1").setPort(server.port()).setURI("/")).await(10, TimeUnit.SECONDS);
                req.setChunked(c.chunked());
                HttpClientResponse resp = (c.body() == null ? req.send() : req.send(c.body()))
                        .await(10, TimeUnit.SECONDS);
                assertEquals(200, resp.statusCode(), what);
                String got = server.request(i);
                int end = got.indexOf("\r\n\r\n");
                List<String> head = List.of(got.substring(0, end).toLowerCase().split("\r\n"));
                assertEquals((c.method() + " / HTTP/1.1").toLowerCase(), head.get(0), what);
                assertEquals(c.length() == null ? List.of() : List.of("content-length: " + c.length()),
                        head.stream().filter(h -> h.startsWith("content-length:")).toList(), what);
                assertEquals(c.chunked() ? List.of("transfer-encoding: chunked") : List.of(),
                        head.stream().filter(h -> h.startsWith("transfer-encoding:")).toList(), what);
                assertEquals(c.rest(), got.substring(end + 4), what);
            }
        }
    }

    /**
     * An HTTP/1 body the upstream cut off (its connection closed before the {@code content-length} or the last chunk,
     * or a chunk that cannot be read) fails as a plain client's does, and is recorded as Envoy's HTTP/1 codec reports
     * the end of input in the middle of a message: a protocol error once the response started.
     */
    @Test
    void aBodyCutOffOrUnreadableAfterTheHeadersIsAProtocolErrorOnceTheResponseStartedAsEnvoysCodecReportsIt()
            throws Exception {
        for (String answer : new String[] {
            "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\nabc\r\n0\r\n\r\n",
            // a chunk size Netty's decoder would read wrapped (as 3): the chunks before it go on, then the cut
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n100000003\r\nabc\r\n0\r\n\r\n",
            // the same at the body's first size line, in the read of the head: the head goes on, as Envoy's codec
            // passes it before it parses a chunk, then the cut
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n100000003\r\nabc\r\n0\r\n\r\n"}) {
            Outcome o = rawCall(answer);
            String what = answer.replace("\r\n", "|");
            assertEquals(200, o.status(), what);
            assertTrue(o.failure() != null, what + ": the body fails");
            assertEquals(answer.contains("\n\r\n100000003") ? "" : "abc", o.body(), what);
            assertEquals(java.util.Set.of(ResponseFlag.UPSTREAM_PROTOCOL_ERROR), o.info().responseFlags(), what);
            assertEquals("upstream_reset_after_response_started{protocol_error}", o.info().responseCodeDetails(),
                    what);
            assertEquals(200, o.info().responseCode(), what);
        }
    }

    @Test
    void aBodyThatEndsWithTheConnectionWhenItHasNoLengthIsWhole() throws Exception {
        Outcome o = rawCall("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nabc");
        assertEquals(null, o.failure());
        assertEquals("abc", o.body());
        assertEquals(java.util.Set.of(), o.info().responseFlags());
        assertEquals("via_upstream", o.info().responseCodeDetails());
    }

    @Test
    void aRequestTimeoutFailsTheRequestAndTheMeshResetsTheUpstream() throws Exception {
        WebClient client = mesh.webClient();
        Throwable t = failure(client.get(port, "127.0.0.1", "/hang").timeout(300).send());
        // as a plain client fails it: a TimeoutException with Vert.x's message
        assertInstanceOf(TimeoutException.class, t);
        assertEquals("The timeout period of 300ms has been exceeded while executing GET /hang for server 127.0.0.1:"
                + port, t.getMessage());
        // the upstream request is not left hanging: as Envoy resets it when its downstream goes away
        upstreamClosed.get(10, TimeUnit.SECONDS);
        StreamInfo info = lastRecorded();
        assertEquals(0, info.responseCode());
        assertTrue(info.responseFlags().contains(ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION));
        // a gRPC caller that went away is recorded with code 0 too, not as a trailers-only 200
        recorded.clear();
        assertInstanceOf(TimeoutException.class, failure(client.post(port, "127.0.0.1", "/hang")
                .putHeader("content-type", "application/grpc").timeout(300).sendBuffer(Buffer.buffer("x"))));
        assertEquals(0, lastRecorded().responseCode());
    }

    @Test
    void theHttpClientsRequestOptionsTimeoutFailsTheRequestToo() throws Exception {
        HttpClient client = mesh.httpClient();
        Throwable t = failure(client.request(new RequestOptions().setHost("127.0.0.1").setPort(port).setURI("/hang")
                .setTimeout(300)).compose(HttpClientRequest::send));
        assertInstanceOf(TimeoutException.class, t);
        // an idle timeout given on the request
        t = failure(client.request(new RequestOptions().setHost("127.0.0.1").setPort(port).setURI("/hang"))
                .compose(r -> r.idleTimeout(300).send()));
        assertInstanceOf(TimeoutException.class, t);
        // once the headers came, the request timeout is over, as Vert.x's
        assertEquals(200, mesh.webClient().get(port, "127.0.0.1", "/x").timeout(300).send()
                .await(10, TimeUnit.SECONDS).statusCode());
    }

    @Test
    void anIdleTimeoutReplacedFromAThreadOutsideVertxIsTheOneInForce() throws Exception {
        HttpClient client = mesh.httpClient();
        // this thread is no Vert.x thread: the request's timer runs on its context all the same
        HttpClientRequest replaced = client.request(new RequestOptions().setHost("127.0.0.1").setPort(port)
                .setURI("/hang")).await(10, TimeUnit.SECONDS);
        replaced.idleTimeout(60_000).idleTimeout(300);
        Throwable t = failure(replaced.send());
        assertInstanceOf(TimeoutException.class, t);
        assertTrue(t.getMessage().startsWith("The timeout period of 300ms"), t.getMessage());
        // the mesh reset the upstream, as for a timeout set on the context
        upstreamClosed.get(10, TimeUnit.SECONDS);
    }

    @Test
    void aResetWhileTheBodyStreamsFailsTheBodyAndResetsTheUpstream() throws Exception {
        HttpClient client = mesh.httpClient();
        Promise<Throwable> failed = Promise.promise();
        client.request(new RequestOptions().setHost("127.0.0.1").setPort(port).setURI("/trickle"))
                .compose(HttpClientRequest::send)
                .onSuccess(resp -> {
                    resp.exceptionHandler(failed::tryComplete);
                    resp.handler(b -> resp.request().reset());
                });
        assertInstanceOf(StreamResetException.class, failed.future().await(10, TimeUnit.SECONDS));
        upstreamClosed.get(10, TimeUnit.SECONDS);
        assertTrue(lastRecorded().responseFlags().contains(ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION));
    }

    @Test
    void aResetBeforeTheResponseEndsTheExchangeUpstream() throws Exception {
        HttpClient client = mesh.httpClient();
        Throwable t = failure(client.request(new RequestOptions().setHost("127.0.0.1").setPort(port).setURI("/hang"))
                .compose(r -> {
                    r.end();
                    vertx.setTimer(200, id -> r.reset());
                    return r.response();
                }));
        assertInstanceOf(StreamResetException.class, t);
        upstreamClosed.get(10, TimeUnit.SECONDS);
        assertTrue(lastRecorded().responseFlags().contains(ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION));
    }

    @Test
    void aResponseBodyFlowsToItsHandlersUnlessPaused() throws Exception {
        HttpClient client = mesh.httpClient();
        Promise<String> body = Promise.promise();
        Promise<Void> ended = Promise.promise();
        StringBuilder seen = new StringBuilder();
        client.request(new RequestOptions().setHost("127.0.0.1").setPort(port).setURI("/flows"))
                .compose(r -> r.send("abc"))
                .onSuccess(resp -> {
                    // as a plain response: no resume needed
                    resp.handler(seen::append);
                    resp.endHandler(v -> body.complete(seen.toString()));
                });
        assertEquals("abc", body.future().await(10, TimeUnit.SECONDS));
        StringBuilder later = new StringBuilder();
        var resp = client.request(new RequestOptions().setHost("127.0.0.1").setPort(port).setURI("/paused"))
                .compose(r -> r.send("xyz")).await(10, TimeUnit.SECONDS);
        resp.pause();
        resp.handler(later::append);
        resp.endHandler(ended::complete);
        Thread.sleep(200);
        assertEquals("", later.toString());
        resp.resume();
        ended.future().await(10, TimeUnit.SECONDS);
        assertEquals("xyz", later.toString());
    }

    /**
     * As a plain Vert.x response (HttpEventHandler keeps its chunk handler beside the body it gathers):
     * {@code body()} gathers the body and the caller's own handler still has each chunk.
     */
    @Test
    void bodyKeepsTheHandlerTheCallerSet() throws Exception {
        HttpClient client = mesh.httpClient();
        StringBuilder seen = new StringBuilder();
        String body = onEventLoop(vertx, () -> client.request(new RequestOptions().setHost("127.0.0.1").setPort(port)
                        .setURI("/both")).compose(r -> r.send("abc")).compose(resp -> {
                            resp.handler(seen::append);
                            return resp.body();
                        })).await(10, TimeUnit.SECONDS).toString();
        assertEquals("abc", body);
        assertEquals("abc", seen.toString(), "the caller's handler had the body too");
    }

    @Test
    void formsAreEncodedAsAPlainClientEncodesThem() throws Exception {
        WebClient client = mesh.webClient();
        HttpResponse<Buffer> r = client.post(port, "127.0.0.1", "/form")
                .sendForm(MultiMap.caseInsensitiveMultiMap().add("a", "1").add("b", "x y"))
                .await(10, TimeUnit.SECONDS);
        assertEquals("1,x y,", r.bodyAsString());
        assertEquals("application/x-www-form-urlencoded", r.getHeader("x-type"));
        r = client.post(port, "127.0.0.1", "/form")
                .sendMultipartForm(MultipartForm.create().attribute("a", "2").attribute("b", "z")
                        .textFileUpload("f", "f.txt", Buffer.buffer("hello"), "text/plain"))
                .await(10, TimeUnit.SECONDS);
        assertEquals("2,z,f.txt=hello", r.bodyAsString());
        assertTrue(r.getHeader("x-type").startsWith("multipart/form-data; boundary="), r.getHeader("x-type"));
    }

    @Test
    void anHttpClientRequestFollowsRedirectsWhenAskedTo() throws Exception {
        HttpClient client = mesh.httpClient();
        RequestOptions moved = new RequestOptions().setHost("127.0.0.1").setPort(port).setURI("/moved");
        var followed = client.request(new RequestOptions(moved).setFollowRedirects(true))
                .compose(HttpClientRequest::send).await(10, TimeUnit.SECONDS);
        assertEquals(200, followed.statusCode());
        assertEquals("/there", followed.getHeader("x-uri"));
        assertEquals(1, followed.request().numberOfRedirections());
        // not asked: the redirect is the answer
        assertEquals(302, client.request(moved).compose(HttpClientRequest::send).await(10, TimeUnit.SECONDS)
                .statusCode());
    }

    @Test
    void expect100ContinueGoesOnToAPassedThroughServerWhose100TheCallerGets() throws Exception {
        // no listener: a sidecar's tcp_proxy relays the expectation with the request's bytes, and the server's own
        // 100 Continue back (MeshProxy100ContinueTest has the connection manager's cases)
        int answers100 = server(new HttpServerOptions().setHandle100ContinueAutomatically(true), this::handle);
        HttpClient client = mesh.httpClient();
        var resp = client.request(new RequestOptions().setMethod(HttpMethod.POST).setHost("127.0.0.1")
                .setPort(answers100).setURI("/c").putHeader("expect", "100-continue")).compose(r -> {
                    r.continueHandler(v -> r.end("after continue"));
                    r.sendHead();
                    return r.response();
                }).await(10, TimeUnit.SECONDS);
        assertEquals("after continue", resp.body().await(10, TimeUnit.SECONDS).toString());
        assertEquals("100-continue", resp.getHeader("x-expect"));
    }

    @Test
    void aVirtualHostRequestGoesToTheNamedServerWithTheVirtualHostAsAuthority() throws Exception {
        HttpResponse<Buffer> r = mesh.webClient().get(port, "127.0.0.1", "/v").virtualHost("vh.example").send()
                .await(10, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode());
        assertEquals("vh.example:" + port, r.getHeader("x-authority"));
    }

    @Test
    void httpsToAnAddressWithoutListenerGoesThroughWithTlsToThatAddress() throws Exception {
        SelfSignedCertificate cert = SelfSignedCertificate.create("localhost");
        int tls = server(new HttpServerOptions().setSsl(true).setKeyCertOptions(cert.keyCertOptions()),
                req -> req.response().end("tls " + req.isSSL() + " " + req.uri()));
        WebClient client = mesh.webClient(new WebClientOptions().setTrustAll(true).setVerifyHost(false));
        HttpResponse<Buffer> r = client.getAbs("https://127.0.0.1:" + tls + "/secure?q=1").send()
                .await(10, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode());
        assertEquals("tls true /secure?q=1", r.bodyAsString());
    }

    @Test
    void aClientWhoseOptionsSetSslSendsItsRequestsOverTlsAsAPlainOneDoes() throws Exception {
        SelfSignedCertificate cert = SelfSignedCertificate.create("localhost");
        int tls = server(new HttpServerOptions().setSsl(true).setKeyCertOptions(cert.keyCertOptions()),
                req -> req.response().end("tls " + req.isSSL() + " " + req.uri()));
        // a request that says nothing of TLS takes the client's setting, as with a plain Vert.x client
        HttpClient client = mesh.httpClient(new HttpClientOptions().setSsl(true).setTrustAll(true)
                .setVerifyHost(false));
        // on an event loop: no listener has the address, so the mesh relays this TLS with a plain Vert.x client,
        // whose response drops the chunks that come before body() is asked for
        assertEquals("200 tls true /s", onEventLoop(vertx, () -> client.request(HttpMethod.GET, tls, "127.0.0.1", "/s")
                .compose(HttpClientRequest::send)
                .compose(resp -> resp.body().map(b -> resp.statusCode() + " " + b))).await(10, TimeUnit.SECONDS));
        WebClient web = mesh.webClient(new WebClientOptions().setSsl(true).setTrustAll(true).setVerifyHost(false));
        assertEquals("tls true /w", web.get(tls, "127.0.0.1", "/w").send().await(10, TimeUnit.SECONDS)
                .bodyAsString());
        // the request's own setting still wins
        var clear = client.request(new RequestOptions().setHost("127.0.0.1").setPort(port).setURI("/c").setSsl(false))
                .compose(HttpClientRequest::send).await(10, TimeUnit.SECONDS);
        assertEquals("/c", clear.getHeader("x-uri"));
    }

    @Test
    void requestsBeforeTheMeshHasItsConfigurationOrAfterItClosedFailAndNeverGoPastIt() throws Exception {
        Path file = dir.resolve("other.yaml");
        Files.writeString(file, "static_resources: {}\n");
        Mesh other = Mesh.create(vertx, new MeshOptions().setConfigFile(file.toString()).setAdminPort(-1));
        WebClient client = other.webClient(); // made before start: fine
        Throwable early = failure(client.get(port, "127.0.0.1", "/x").send());
        assertInstanceOf(IllegalStateException.class, early);
        assertEquals("the mesh is not started: send requests once mesh.start() has completed", early.getMessage());
        assertEquals(early.getMessage(), failure(other.webSocketClient().connect(port, "127.0.0.1", "/ws"))
                .getMessage());
        other.start().await(10, TimeUnit.SECONDS);
        assertEquals(200, client.get(port, "127.0.0.1", "/x").send().await(10, TimeUnit.SECONDS).statusCode());
        assertEquals("start(): the mesh was started already", failure(other.start()).getMessage());
        Future<Void> closing = other.close();
        assertSame(closing, other.close());
        closing.await(10, TimeUnit.SECONDS);
        assertEquals("Client is closed", failure(client.get(port, "127.0.0.1", "/x").send()).getMessage());
        Throwable late = failure(other.httpClient().request(HttpMethod.GET, port, "127.0.0.1", "/x"));
        assertInstanceOf(IllegalStateException.class, late);
        assertEquals("the mesh is closed", late.getMessage());
        assertEquals("start(): the mesh is closed; create a new one", failure(other.start()).getMessage());
        // only the request made while the mesh had its configuration reached the server
        assertEquals(1, served.get());
    }

    @Test
    void requestsWhileStartWaitsForAFirstConfigurationFailSayingSo() throws Exception {
        Mesh waiting = Mesh.create(vertx, new MeshOptions().setXdsAddress("127.0.0.1:1")
                .setXdsInitialFetchTimeoutSeconds(0).setAdminPort(-1));
        try {
            Future<Void> start = waiting.start(); // no server: it waits with no end
            Throwable t = failure(waiting.webClient().get(port, "127.0.0.1", "/x").send());
            assertEquals("the mesh has no configuration yet: send requests once mesh.start() has completed",
                    t.getMessage());
            assertTrue(!start.isComplete() && !waiting.isReady());
            assertEquals(0, served.get());
        } finally {
            waiting.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void aRequestRefusesChangesOnceEndedAndABodyWrittenWithoutFramingAsAPlainOneDoes() throws Exception {
        HttpClient client = mesh.httpClient();
        RequestOptions o = new RequestOptions().setHost("127.0.0.1").setPort(port).setURI("/e");
        HttpClientRequest r = client.request(o).await(10, TimeUnit.SECONDS);
        // a body written before the end says how it is framed: chunked or a content-length, as Vert.x asks
        IllegalStateException unframed = assertThrows(IllegalStateException.class, () -> r.write("x"));
        assertTrue(unframed.getMessage().startsWith("You must set the Content-Length header"), unframed.getMessage());
        r.end("body");
        // once ended, nothing of it changes any more: Vert.x's exception, not a header silently left out
        for (Runnable change : List.<Runnable>of(() -> r.putHeader("x-late", "1"), () -> r.setChunked(true),
                () -> r.exceptionHandler(t -> { }), () -> r.setFollowRedirects(true), r::sendHead)) {
            assertEquals("Request already complete", assertThrows(IllegalStateException.class, change::run)
                    .getMessage());
        }
        r.exceptionHandler(null); // letting a handler go is fine, as with Vert.x
        assertEquals("Request already complete", failure(r.end()).getMessage());
        assertEquals("body", r.response().compose(HttpClientResponse::body).await(10, TimeUnit.SECONDS).toString());
        HttpClientRequest chunked = client.request(o).await(10, TimeUnit.SECONDS).setChunked(true);
        chunked.write("a");
        assertEquals("Cannot set chunked after data has been written on request",
                assertThrows(IllegalStateException.class, () -> chunked.setChunked(false)).getMessage());
        chunked.end("b");
        assertEquals("ab", chunked.response().compose(HttpClientResponse::body).await(10, TimeUnit.SECONDS)
                .toString());
    }

    @Test
    void whatWouldGoPastTheMeshFailsNamingTheMethod() throws Exception {
        HttpClient client = mesh.httpClient();
        // a connection of its own would reach the server with no route, policy or mTLS: refused, not delegated
        // (HttpClient does not offer connect; the client is an HttpClientAgent, which does)
        Throwable connect = failure(((io.vertx.core.http.HttpClientAgent) client).connect(new HttpConnectOptions()
                .setHost("127.0.0.1").setPort(port)));
        assertInstanceOf(UnsupportedOperationException.class, connect);
        assertTrue(connect.getMessage().startsWith("connect(HttpConnectOptions): "), connect.getMessage());
        HttpClientRequest r = client.request(HttpMethod.GET, port, "127.0.0.1", "/x").await(10, TimeUnit.SECONDS);
        assertTrue(assertThrows(UnsupportedOperationException.class, r::connection).getMessage()
                .startsWith("connection(): "));
        io.vertx.core.http.HttpClientResponse resp = r.send().await(10, TimeUnit.SECONDS);
        assertEquals(200, resp.statusCode());
        // nor the upstream connection's socket, which the mesh pools
        assertTrue(assertThrows(UnsupportedOperationException.class, resp::netSocket).getMessage()
                .startsWith("netSocket(): "));
    }

    @Test
    void closingTheClientFailsItsRequestsInFlightAndLaterOnes() throws Exception {
        WebClient client = mesh.webClient();
        assertInstanceOf(HttpClosedException.class, failureOnClose(client, () -> {
            client.close();
            return Future.succeededFuture();
        }));
        upstreamClosed.get(10, TimeUnit.SECONDS);
        Throwable later = failure(client.get(port, "127.0.0.1", "/x").send());
        assertInstanceOf(IllegalStateException.class, later);
        assertEquals("Client is closed", later.getMessage());
    }

    @Test
    void theMeshLetsGoOfTheClientsThatWereClosed() throws Exception {
        DefaultMesh m = (DefaultMesh) mesh;
        int before = m.openClients();
        for (int i = 0; i < 50; i++) {
            WebClient client = mesh.webClient();
            assertEquals(200, client.get(port, "127.0.0.1", "/x").send().await(10, TimeUnit.SECONDS).statusCode());
            client.close();
        }
        HttpClient kept = mesh.httpClient();
        mesh.httpClient().close().await(10, TimeUnit.SECONDS);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (m.openClients() != before + 1 && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        // only the client still open is held, so a caller that makes and closes a client per request leaks none
        assertEquals(before + 1, m.openClients());
        kept.close().await(10, TimeUnit.SECONDS);
    }

    @Test
    void closingTheMeshFailsRequestsInFlight() throws Exception {
        assertInstanceOf(HttpClosedException.class, failureOnClose(mesh.webClient(), mesh::close));
    }

    /** How a request that reached the server fails when {@code close} runs. */
    Throwable failureOnClose(WebClient client, java.util.function.Supplier<Future<Void>> close) throws Exception {
        Future<HttpResponse<Buffer>> waiting = client.get(port, "127.0.0.1", "/hang").send();
        hung.get(10, TimeUnit.SECONDS);
        close.get().await(10, TimeUnit.SECONDS);
        return failure(waiting);
    }

    /**
     * An upstream passed through (no listener for its port) that resets its connection (RST) once it read the request
     * closes the caller's connection, as a sidecar's tcp_proxy closes it, with no HTTP answer; it is counted as before
     * (UC), and, as in a sidecar's logs, is no error in the application's: nothing is logged SEVERE.
     */
    @Test
    void aPassedThroughUpstreamConnectionResetClosesTheCallersAndIsNotLoggedAsAnError() throws Exception {
        try (java.net.ServerSocket server = new java.net.ServerSocket(0, 10, java.net.InetAddress.getLoopbackAddress());
             var severe = new dev.inmesh.runtime.testing.SevereLogs()) {
            Thread resetter = new Thread(() -> {
                try (java.net.Socket s = server.accept()) {
                    s.getInputStream().read(new byte[4096]); // the request's head
                    s.setSoLinger(true, 0); // closed with a RST
                } catch (java.io.IOException e) {
                    // the test ended
                }
            }, "resetter");
            resetter.setDaemon(true);
            resetter.start();
            recorded.clear();
            Throwable t = assertThrows(Throwable.class, () -> mesh.httpClient().request(new RequestOptions()
                    .setHost("127.0.0.1").setPort(server.getLocalPort()).setURI("/")).compose(HttpClientRequest::send)
                    .await(10, TimeUnit.SECONDS));
            assertInstanceOf(io.vertx.core.http.HttpClosedException.class, t);
            assertTrue(lastRecorded().responseFlags().contains(ResponseFlag.UPSTREAM_CONNECTION_TERMINATION),
                    lastRecorded().toString());
            Thread.sleep(200);
            assertEquals(List.of(), severe.records());
        }
    }
}
