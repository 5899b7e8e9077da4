package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.net.NetSocket;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A connection manager's {@code proxy_100_continue} on the in-JVM paths. With it, as Envoy's, a request's
 * {@code Expect: 100-continue} goes upstream and the upstream's first {@code 100 Continue} reaches the caller (the mesh
 * client's continue handler); an upstream that refuses the body from the head (417) is the answer, and the body is
 * never sent; once a 100 was relayed the request is not retried. Without it the mesh answers the expectation itself
 * and takes it off the request. In-process, the upstream of {@code mesh.inbound(...)} is the service's handler: with
 * the field it reads the expectation and answers it; without it the mesh has answered before the handler runs.
 */
class MeshProxy100ContinueTest {
    @TempDir
    Path dir;
    final Vertx vertx = Vertx.vertx();
    final List<StreamInfo> recorded = new CopyOnWriteArrayList<>();
    /** The upstream, and the in-process service. */
    final ContinueUpstream service = new ContinueUpstream();
    DefaultMesh mesh;
    int upstream;

    @BeforeEach
    void setUp() {
        upstream = vertx.createHttpServer().requestHandler(service).listen(0, "127.0.0.1").await()
                .actualPort();
    }

    @AfterEach
    void tearDown() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /**
     * A mesh with {@link MeshWebClientTest#virtualInbound} and {@link MeshGrpcClientTest#config}'s outbound listener
     * (host {@code greeter}, port 9090) to the upstream, retrying resets, both connection managers with
     * {@code proxy_100_continue} or without it.
     */
    void mesh(boolean proxy100Continue) throws Exception {
        String field = proxy100Continue ? "proxy_100_continue: true" : "";
        String inbound = MeshWebClientTest.virtualInbound(field, """
                                  routes:
                                  - {match: {prefix: /}, route: {cluster: "inbound|9080||", timeout: 0s}}
                    """);
        String outbound = MeshGrpcClientTest.config("",
                ", retry_policy: {retry_on: \"reset,connect-failure\", num_retries: 2}", Integer.toString(upstream))
                .replace("stat_prefix: outbound_0.0.0.0_9090\n",
                        "stat_prefix: outbound_0.0.0.0_9090\n" + " ".repeat(10) + field + "\n");
        // one list of listeners: the outbound one after the inbound one
        String yaml = inbound + outbound.substring(outbound.indexOf("  - name: 0.0.0.0_9090"));
        mesh = MeshGrpcClientTest.start(vertx, dir, yaml, recorded);
    }

    /** What one mesh client request to {@code path} saw: its continue handler's calls, its response, its body. */
    record Outcome(int continues, HttpClientResponse response, String body) {}

    /** Sends the head with {@code Expect: 100-continue}, and the body only once the continue handler runs. */
    Outcome expectContinue(String path) throws Exception {
        return expectContinue("greeter", 9090, path);
    }

    /** {@link #expectContinue(String)} to {@code host:port}. */
    Outcome expectContinue(String host, int port, String path) throws Exception {
        AtomicInteger continues = new AtomicInteger();
        var client = mesh.httpClient();
        HttpClientResponse resp = client.request(new RequestOptions().setMethod(HttpMethod.POST).setHost(host)
                .setPort(port).setURI(path).putHeader("expect", "100-continue")
                .putHeader("content-length", "4")).compose(r -> {
                    r.continueHandler(v -> {
                        if (continues.incrementAndGet() == 1) {
                            r.end("body");
                        }
                    });
                    r.sendHead();
                    return r.response();
                }).await(10, TimeUnit.SECONDS);
        String body = resp.body().await(10, TimeUnit.SECONDS).toString();
        return new Outcome(continues.get(), resp, body);
    }

    @Test
    void withProxy100ContinueTheUpstreamsContinueReachesTheMeshClientsContinueHandler() throws Exception {
        mesh(true);
        Outcome o = expectContinue("/accept");
        assertEquals(200, o.response.statusCode());
        assertEquals("http/1.1 100-continue body", o.body);
        assertEquals("100-continue", o.response.getHeader("x-expect"), "the expectation went upstream");
        assertEquals(1, o.continues);
        // the upstream's second 100 goes nowhere: the continue handler runs once, as Envoy relays the first only
        Outcome twice = expectContinue("/twice");
        assertEquals(200, twice.response.statusCode());
        assertEquals(1, twice.continues);
    }

    @Test
    void withProxy100ContinueAnUpstreamThatRefusesTheBodyIsTheAnswerAndTheBodyIsNotSent() throws Exception {
        mesh(true);
        try (var severe = new dev.inmesh.runtime.testing.SevereLogs()) {
            Outcome o = expectContinue("/refuse");
            assertEquals(417, o.response.statusCode());
            assertEquals("no", o.body);
            assertEquals(0, o.continues, "no 100 came: the caller is not told to send its body");
            assertEquals(0, service.bodiesRead.get());
            // the upstream request the router ends without its body is not an error in the application's logs
            Thread.sleep(200);
            assertEquals(List.of(), severe.records());
        }
    }

    @Test
    void withProxy100ContinueARequestIsNotRetriedOnceAContinueWasRelayed() throws Exception {
        mesh(true);
        // a reset, which the route retries, after the upstream's 100 Continue went to the caller: answered as it is
        Outcome o = expectContinue("/drop");
        // the close came between the 100 and the final head: a connection termination (UC), as Envoy's codec reads it
        assertEquals(503, o.response.statusCode());
        assertEquals(List.of("/drop"), service.requests);
        assertEquals(1, o.continues);
        // without the expectation, the same reset is retried (the upstream then answers: no 100 to send)
        service.requests.clear();
        var plain = mesh.webClient().post(9090, "greeter", "/drop").sendBuffer(Buffer.buffer("body"))
                .await(10, TimeUnit.SECONDS);
        assertEquals(200, plain.statusCode());
        assertEquals(List.of("/drop"), service.requests);
    }

    @Test
    void withoutProxy100ContinueTheMeshAnswersTheExpectationAndTakesItOff() throws Exception {
        mesh(false);
        Outcome o = expectContinue("/refuse");
        // the upstream never saw the expectation: it read the body the mesh's own 100 Continue asked for
        assertEquals(200, o.response.statusCode());
        assertEquals("http/1.1 null body", o.body);
        assertEquals("null", o.response.getHeader("x-expect"));
        assertEquals(1, o.continues);
    }

    @Test
    void aRequestRelayedAsBytesTakesItsExpectationUpstreamAsATcpProxyRelaysIt() throws Exception {
        mesh(false);
        // no listener for the upstream's own port: a sidecar's tcp_proxy relays the request's bytes (PassthroughCluster),
        // its expectation with them, and the 100 Continue (or the refusal) the caller gets is the upstream's
        Outcome refused = expectContinue("127.0.0.1", upstream, "/refuse");
        assertEquals(417, refused.response.statusCode());
        assertEquals(0, refused.continues, "no 100 came: the caller is not told to send its body");
        assertEquals(0, service.bodiesRead.get());
        Outcome o = expectContinue("127.0.0.1", upstream, "/accept");
        assertEquals(200, o.response.statusCode());
        assertEquals("http/1.1 100-continue body", o.body);
        assertEquals(1, o.continues);
        assertEquals("PassthroughCluster", recorded.get(recorded.size() - 1).upstreamCluster());
    }

    /**
     * Sends {@code head} (with {@code Expect: 100-continue}) to the in-process server, the body only after a 100
     * Continue, and returns what came back: the 100s and the answer, or the answer alone.
     */
    String rawExpectContinue(int port, String path) throws Exception {
        CompletableFuture<String> done = new CompletableFuture<>();
        NetSocket s = vertx.createNetClient().connect(port, "127.0.0.1").await(10, TimeUnit.SECONDS);
        StringBuilder got = new StringBuilder();
        boolean[] sent = {false};
        s.handler(b -> {
            got.append(b.toString());
            if (!sent[0] && got.toString().startsWith("HTTP/1.1 100 Continue\r\n\r\n")) {
                sent[0] = true;
                s.write("body");
            }
            String g = got.toString();
            int finalAt = g.lastIndexOf("HTTP/1.1 ");
            if (finalAt >= 0 && !g.startsWith("HTTP/1.1 100", finalAt) && g.indexOf("\r\n\r\n", finalAt) > 0
                    && (g.endsWith("body") || g.endsWith("no"))) {
                done.complete(g);
            }
        });
        s.write("POST " + path + " HTTP/1.1\r\nhost: reviews\r\nexpect: 100-continue\r\ncontent-length: 4\r\n\r\n");
        try {
            return done.get(10, TimeUnit.SECONDS);
        } finally {
            s.close();
        }
    }

    int inboundServer() {
        return vertx.createHttpServer().requestHandler(mesh.inbound(service)).listen(0, "127.0.0.1").await()
                .actualPort();
    }

    @Test
    void inProcessWithProxy100ContinueTheServiceAnswersTheExpectation() throws Exception {
        mesh(true);
        int port = inboundServer();
        String accepted = rawExpectContinue(port, "/accept");
        assertTrue(accepted.startsWith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"), accepted);
        assertTrue(accepted.contains("x-expect: 100-continue\r\n"), accepted);
        // the service refuses the body from the head: its 417 is the answer, with no 100 before it
        String refused = rawExpectContinue(port, "/refuse");
        assertTrue(refused.startsWith("HTTP/1.1 417 Expectation Failed\r\n"), refused);
        assertEquals(1, service.bodiesRead.get());
    }

    @Test
    void inProcessWithoutProxy100ContinueTheMeshAnswersBeforeTheServiceRuns() throws Exception {
        mesh(false);
        int port = inboundServer();
        String r = rawExpectContinue(port, "/refuse");
        // one 100, the mesh's; the service never saw the expectation, so it read the body
        assertTrue(r.startsWith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"), r);
        assertTrue(r.contains("x-expect: null\r\n"), r);
        assertEquals(r.indexOf("100 Continue"), r.lastIndexOf("100 Continue"), r);
        assertEquals(1, service.bodiesRead.get());
    }

    /** A POST of "body" to {@code path} by {@code mesh.javaHttpClient()}, with {@code expectContinue(true)}. */
    java.net.http.HttpResponse<String> jdkExpectContinue(String path, AtomicInteger subscribed) throws Exception {
        java.net.http.HttpRequest.BodyPublisher body = java.net.http.HttpRequest.BodyPublishers.ofString("body");
        java.net.http.HttpRequest.BodyPublisher counted = new java.net.http.HttpRequest.BodyPublisher() {
            @Override
            public long contentLength() {
                return body.contentLength();
            }

            @Override
            public void subscribe(java.util.concurrent.Flow.Subscriber<? super java.nio.ByteBuffer> s) {
                subscribed.incrementAndGet();
                body.subscribe(s);
            }
        };
        return mesh.javaHttpClient().send(java.net.http.HttpRequest.newBuilder(
                        java.net.URI.create("http://greeter:9090" + path)).expectContinue(true).POST(counted).build(),
                java.net.http.HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void theJdkClientsExpectContinueSendsTheBodyOnceA100ComesAndNotWhenTheUpstreamRefusesIt() throws Exception {
        mesh(true);
        AtomicInteger subscribed = new AtomicInteger();
        java.net.http.HttpResponse<String> r = jdkExpectContinue("/accept", subscribed);
        assertEquals(200, r.statusCode());
        assertEquals("http/1.1 100-continue body", r.body());
        assertEquals(1, subscribed.get());
        r = jdkExpectContinue("/refuse", subscribed);
        assertEquals(417, r.statusCode());
        assertEquals("no", r.body());
        assertEquals(1, subscribed.get(), "the publisher of the refused body was not read");
        assertEquals(1, service.bodiesRead.get());
    }

    @Test
    void theJdkClientsExpectContinueIsAnsweredByTheMeshWithoutProxy100Continue() throws Exception {
        mesh(false);
        AtomicInteger subscribed = new AtomicInteger();
        java.net.http.HttpResponse<String> r = jdkExpectContinue("/refuse", subscribed);
        assertEquals(200, r.statusCode(), "the expectation was the mesh's to answer, taken off upstream");
        assertEquals("http/1.1 null body", r.body());
        assertEquals(1, subscribed.get());
    }

    @Test
    @org.junit.jupiter.api.Timeout(60) // without the JDK's wait for the 100, the request would hang
    void theJdkClientsExpectContinueSendsTheBodyAnywayWhenNo100ComesWithinItsWait() throws Exception {
        mesh(true);
        AtomicInteger subscribed = new AtomicInteger();
        java.net.http.HttpResponse<String> r = jdkExpectContinue("/silent", subscribed);
        assertEquals(200, r.statusCode());
        assertEquals("http/1.1 100-continue body", r.body(), "the expectation went upstream, then the body");
        assertEquals(1, subscribed.get());
        assertEquals(1, service.bodiesRead.get());
    }

    @Test
    void aRequestAfterOneWhoseBodyTheUpstreamRefusedIsAnsweredOnAConnectionOfItsOwn() throws Exception {
        mesh(true);
        assertEquals(417, expectContinue("/refuse").response.statusCode());
        // the refused request's connection, on which the upstream waits for the body its head announced, is not
        // used again: the next request would be read as that body (and never answered)
        var next = mesh.webClient().post(9090, "greeter", "/accept").sendBuffer(Buffer.buffer("body"))
                .await(10, TimeUnit.SECONDS);
        assertEquals(200, next.statusCode());
        assertEquals("http/1.1 null body", next.bodyAsString());
        // the same through the JDK's client, which leaves the refused body unsent
        AtomicInteger subscribed = new AtomicInteger();
        assertEquals(417, jdkExpectContinue("/refuse", subscribed).statusCode());
        java.net.http.HttpResponse<String> r = jdkExpectContinue("/accept", subscribed);
        assertEquals(200, r.statusCode());
        assertEquals("http/1.1 100-continue body", r.body());
        assertEquals(1, subscribed.get(), "the body of the refused request was not read");
    }
}
