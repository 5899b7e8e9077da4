package dev.inmesh.interception.proxy;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.http.WebSocketClient;
import io.vertx.core.http.WebSocketConnectOptions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** HTTP through a plain listener of the standalone proxy on loopback, to Vert.x servers, via the shared router. */
@Timeout(30)
class HttpBridgeTest {
    private Vertx backends;
    private final List<HttpServer> servers = new ArrayList<>();
    private final AtomicInteger badHits = new AtomicInteger();
    private LoopbackProxy proxy;
    private HttpClient client;
    private int proxyPort;
    private String yaml;

    private int server(String name, int status) throws Exception {
        HttpServer s = backends.createHttpServer()
                .webSocketHandler(ws -> ws.handler(b -> ws.writeTextMessage(b.toString().equals("headers?")
                        ? ws.headers().get("x-forwarded-client-cert") + " " + ws.headers().get("x-envoy-retry-on")
                        : name + " echo " + b)))
                .requestHandler(req -> {
                    if (req.path().equals("/bidi")) {
                        // answers each piece of the request body as it comes, before the body ends
                        req.response().setChunked(true);
                        req.handler(b -> {
                            if (b.length() > 0) { // an empty DATA frame may end the stream
                                req.response().write("got " + b + "\n");
                            }
                        });
                        req.endHandler(v -> req.response().end("end\n"));
                        return;
                    }
                    if (req.path().equals("/slow-read")) {
                        slowRead(req);
                        return;
                    }
                    if (status >= 500) {
                        badHits.incrementAndGet();
                    }
                    req.body().onSuccess(body -> {
                        req.response().putHeader("x-upstream-version", req.version().name());
                        if (req.path().equals("/grpc")) {
                            // a gRPC answer: one message, the status in the trailers
                            req.response().putHeader("content-type", "application/grpc")
                                    .putTrailer("grpc-status", "7").end(Buffer.buffer().appendByte((byte) 0)
                                            .appendInt(2).appendString("no"));
                            return;
                        }
                        if (req.path().equals("/dated")) {
                            req.response().putHeader("date", "Sun, 06 Nov 1994 08:49:37 GMT");
                        }
                        if (req.path().equals("/slow-head")) {
                            backends.setTimer(3000, t -> req.response().end("late"));
                            return;
                        }
                        if (req.path().equals("/stall") || req.path().equals("/trickle")) {
                            // the head and a first chunk at once; then one more chunk after 3 s, or ten 100 ms apart
                            boolean stall = req.path().equals("/stall");
                            req.response().setChunked(true).write("first\n");
                            int[] left = {stall ? 1 : 10};
                            backends.setPeriodic(stall ? 3000 : 100, id -> {
                                if (--left[0] <= 0) {
                                    backends.cancelTimer(id);
                                    req.response().end("last\n");
                                } else {
                                    req.response().write("more\n");
                                }
                            });
                            return;
                        }
                        if (req.path().equals("/4k")) {
                            req.response().end(Buffer.buffer(new byte[4096]));
                            return;
                        }
                        if (req.path().equals("/chunked")) {
                            req.response().setChunked(true);
                            for (int i = 0; i < 100; i++) {
                                req.response().write("chunk " + i + "\n");
                            }
                            req.response().end();
                            return;
                        }
                        req.response().setStatusCode(status).end(name + " " + req.method() + " " + req.path()
                                + " body=" + body + " host=" + req.authority());
                    });
                });
        servers.add(s);
        return s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    /** Bytes of the last /slow-read body, checked byte for byte ((i % 251) at offset i); -1 on a wrong byte. */
    private final java.util.concurrent.atomic.AtomicLong slowReadBytes = new java.util.concurrent.atomic.AtomicLong();
    /** Completed when /slow-read's head arrived upstream. */
    private final CompletableFuture<Void> slowReadHead = new CompletableFuture<>();
    /** Completed by the test to let /slow-read's upstream start reading the body. */
    private final CompletableFuture<Void> slowReadGo = new CompletableFuture<>();

    /**
     * Reads nothing of the body until the test says so, then reads it a chunk at a time, checking each byte, and
     * answers with how many bytes it read.
     */
    private void slowRead(io.vertx.core.http.HttpServerRequest req) {
        req.pause();
        slowReadBytes.set(0);
        req.handler(b -> {
            long at = slowReadBytes.get();
            for (int i = 0; i < b.length() && at >= 0; i++, at++) {
                if (b.getByte(i) != (byte) (at % 251)) {
                    at = -1;
                }
            }
            slowReadBytes.set(at);
            backends.setTimer(1, t -> req.fetch(1)); // one chunk at a time, a timer apart
        });
        req.endHandler(v -> req.response().end("read " + slowReadBytes.get()));
        slowReadHead.complete(null);
        slowReadGo.thenRun(() -> req.fetch(1));
    }

    @BeforeEach
    void start() throws Exception {
        backends = Vertx.vertx();
        int v1 = server("v1", 200);
        int v1bad = server("v1-bad", 503);
        int v2 = server("v2", 200);
        proxyPort = LoopbackProxy.freePort();
        yaml = """
                static_resources:
                  listeners:
                  - name: http
                    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
                    traffic_direction: OUTBOUND
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.http_connection_manager
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                          stat_prefix: http
                          upgrade_configs: [{upgrade_type: websocket}]
                          internal_address_config:
                            cidr_ranges: [{address_prefix: 10.0.0.0, prefix_len: 8}]
                          route_config:
                            name: r
                            virtual_hosts:
                            - name: reviews
                              domains: ["reviews", "reviews:*", "127.0.0.1:*"]
                              routes:
                              - match: {prefix: /, headers: [{name: x-version, string_match: {exact: v2}}]}
                                route: {cluster: v2}
                              - match: {prefix: /}
                                route:
                                  cluster: v1
                                  retry_policy:
                                    retry_on: retriable-status-codes
                                    retriable_status_codes: [503]
                                    num_retries: 2
                                    retry_host_predicate:
                                    - name: envoy.retry_host_predicates.previous_hosts
                                      typed_config: {"@type": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate}
                                    host_selection_retry_max_attempts: 5
                          http_filters:
                          - name: envoy.filters.http.router
                            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                  clusters:
                  - name: v1
                    type: STATIC
                    connect_timeout: 1s
                    load_assignment:
                      cluster_name: v1
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                  - name: v2
                    type: STATIC
                    connect_timeout: 1s
                    typed_extension_protocol_options:
                      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                        use_downstream_protocol_config: {http_protocol_options: {}, http2_protocol_options: {}}
                    load_assignment:
                      cluster_name: v2
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                """.formatted(proxyPort, v1, v1bad, v2);
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

    private static final class Answer {
        final int status;
        final String body;

        Answer(int status, String body) {
            this.status = status;
            this.body = body;
        }
    }

    private Answer send(HttpClient c, RequestOptions options, String body) throws Exception {
        return onEventLoop(backends, () -> c.request(options).compose(req -> body == null ? req.send() : req.send(body))
                .compose(resp -> resp.body().map(b -> new Answer(resp.statusCode(), b.toString()))))
                .await(10, TimeUnit.SECONDS);
    }

    /** The observer hears of a request once its response was written: wait for it, boundedly. */
    private void awaitRequests(int n) throws InterruptedException {
        for (int i = 0; i < 100 && proxy.requests.size() < n; i++) {
            Thread.sleep(20);
        }
        assertEquals(n, proxy.requests.size());
    }

    @Test
    void requestsAreRoutedByHeaderAndRetriedPastA503() throws Exception {
        for (int i = 0; i < 6; i++) {
            Answer a = send(client, new RequestOptions().setURI("/r/" + i).putHeader("host", "reviews"), null);
            assertEquals(200, a.status);
            assertEquals("v1 GET /r/" + i + " body= host=reviews", a.body);
        }
        assertTrue(badHits.get() >= 1, "the 503 host was never tried");
        Answer v2 = send(client, new RequestOptions().setMethod(HttpMethod.POST).setURI("/post")
                .putHeader("host", "reviews").putHeader("x-version", "v2"), "payload");
        assertEquals("v2 POST /post body=payload host=reviews", v2.body);
        awaitRequests(7);
        long retried = proxy.requests.stream().filter(s -> s.attemptCount() == 2).count();
        assertEquals(badHits.get(), retried);
        // the observer hears of each request after its response went out, so the sixth v1 request may be heard of
        // after the v2 one: find it by its cluster, not by its place
        List<StreamInfo> v2s = proxy.requests.stream().filter(s -> "v2".equals(s.upstreamCluster())).toList();
        assertEquals(1, v2s.size(), proxy.requests.toString());
        assertEquals(StreamInfo.Direction.OUTBOUND, v2s.get(0).direction());
    }

    @Test
    void aMirroredRouteSendsTheStreamedRequestToTheMirrorWithAShadowHostAndAnswersFromThePrimary()
            throws Exception {
        CompletableFuture<String> copy = new CompletableFuture<>();
        HttpServer mirror = backends.createHttpServer().requestHandler(req -> req.body().onSuccess(body -> {
            copy.complete(req.method() + " " + req.uri() + " host=" + req.authority() + " body=" + body);
            backends.setTimer(4000, t -> req.response().setStatusCode(503).end("mirror"));
        }));
        servers.add(mirror);
        int mirrorPort = mirror.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        proxy.close();
        proxy = new LoopbackProxy(yaml.replace("""
                              - match: {prefix: /, headers: [{name: x-version, string_match: {exact: v2}}]}
                """, """
                              - match: {prefix: /mirrored}
                                route: {cluster: v2, request_mirror_policies: [{cluster: m}]}
                              - match: {prefix: /, headers: [{name: x-version, string_match: {exact: v2}}]}
                """) + """
                  - name: m
                    type: STATIC
                    connect_timeout: 1s
                    load_assignment:
                      cluster_name: m
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                """.formatted(mirrorPort));
        long t0 = System.nanoTime();
        // chunked, its body written after its head: the proxy streams it to the router
        Answer a = onEventLoop(backends, () -> client.request(new RequestOptions().setMethod(HttpMethod.POST)
                .setURI("/mirrored/1").putHeader("host", "reviews:9080")).compose(req -> {
                    req.setChunked(true);
                    req.write("first,");
                    return req.end("second").compose(v -> req.response());
                }).compose(resp -> resp.body().map(b -> new Answer(resp.statusCode(), b.toString()))))
                .await(10, TimeUnit.SECONDS);
        assertEquals(200, a.status);
        assertEquals("v2 POST /mirrored/1 body=first,second host=reviews:9080", a.body);
        assertTrue((System.nanoTime() - t0) / 1_000_000 < 3000, "the caller did not wait for the mirror");
        assertEquals("POST /mirrored/1 host=reviews-shadow:9080 body=first,second", copy.get(10, TimeUnit.SECONDS));
        awaitRequests(1);
        assertEquals("v2", proxy.requests.get(0).upstreamCluster());
        assertEquals("-", ResponseFlag.format(proxy.requests.get(0).responseFlags()));
    }

    @Test
    void aBodyOverTheListenersBufferLimitIsNotRetriedAndOneWithinItIs() throws Exception {
        proxy.close();
        proxy = new LoopbackProxy(yaml.replace("    traffic_direction: OUTBOUND\n",
                "    traffic_direction: OUTBOUND\n    per_connection_buffer_limit_bytes: 1024\n"));
        // v1's two hosts in turn: each request that reaches the one answering 503 is answered so, not retried
        for (int i = 0; i < 4; i++) {
            Answer a = send(client, new RequestOptions().setMethod(HttpMethod.POST).setURI("/big/" + i)
                    .putHeader("host", "reviews"), "b".repeat(2048));
            assertTrue(a.status == 200 || a.status == 503, "status " + a.status);
        }
        awaitRequests(4);
        assertTrue(badHits.get() >= 1, "the 503 host was never tried");
        assertEquals(badHits.get(), proxy.requests.stream().filter(r -> r.responseCode() == 503).count());
        assertTrue(proxy.requests.stream().allMatch(r -> r.attemptCount() == 1), "no request was retried");
        for (int i = 0; i < 4; i++) {
            Answer a = send(client, new RequestOptions().setMethod(HttpMethod.POST).setURI("/small/" + i)
                    .putHeader("host", "reviews"), "s".repeat(1024));
            assertEquals(200, a.status);
        }
    }

    @Test
    void anInternalCallersRouteTimeoutIsHonouredAndAnExternalOnesIsNot() throws Exception {
        // x-forwarded-for one address of the connection manager's internal_address_config: Envoy's router takes the
        // caller's x-envoy-upstream-rq-timeout-ms (the upstream answers /slow-head after 3 s)
        long t0 = System.nanoTime();
        Answer internal = send(client, new RequestOptions().setURI("/slow-head").putHeader("host", "reviews")
                .putHeader("x-forwarded-for", "10.0.0.1").putHeader("x-envoy-upstream-rq-timeout-ms", "200"), null);
        assertEquals(504, internal.status);
        assertEquals("upstream request timeout", internal.body);
        assertTrue(System.nanoTime() - t0 < 2_500_000_000L, "answered at the caller's timeout");
        Answer external = send(client, new RequestOptions().setURI("/slow-head").putHeader("host", "reviews")
                .putHeader("x-forwarded-for", "10.0.0.1, 10.0.0.2")
                .putHeader("x-envoy-upstream-rq-timeout-ms", "200"), null);
        assertEquals(200, external.status, "two forwarded addresses: external, its control headers dropped");
    }

    @Test
    void aRequestWithoutARouteGetsEnvoys404() throws Exception {
        Answer a = send(client, new RequestOptions().setURI("/").putHeader("host", "ratings"), null);
        assertEquals(404, a.status);
        awaitRequests(1);
        assertEquals("NR", proxy.requests.get(0).responseFlags().iterator().next().code());
    }

    @Test
    void aStreamedResponseIsStreamedBackChunked() throws Exception {
        String[] encoding = new String[1];
        Buffer body = onEventLoop(backends, () -> client.request(new RequestOptions().setURI("/chunked")
                .putHeader("host", "reviews").putHeader("x-version", "v2")).compose(r -> r.send()).compose(resp -> {
                    encoding[0] = resp.getHeader("transfer-encoding");
                    return resp.body();
                })).await(10, TimeUnit.SECONDS);
        assertEquals("chunked", encoding[0]);
        assertEquals(100, body.toString().lines().count());
    }

    /** The proxy again, its connection manager with {@code stream_idle_timeout: 0.4s}. */
    private void withStreamIdleTimeout() throws Exception {
        proxy.close();
        proxy = new LoopbackProxy(yaml.replace("stat_prefix: http\n", "stat_prefix: http\n"
                + "          stream_idle_timeout: 1s\n")); // ten times the trickle's gaps, a third of the stall
    }

    /**
     * The proxy again, with {@code filter} first among its HTTP filters, and v2's route line replaced by
     * {@code v2Route} (empty: kept).
     */
    private void withFilterFirst(String filter, String v2Route) throws Exception {
        proxy.close();
        String route = "                route: {cluster: v2}\n";
        proxy = new LoopbackProxy(yaml.replace("          http_filters:\n", "          http_filters:\n" + filter)
                .replace(route, v2Route.isEmpty() ? route : v2Route));
    }

    @Test
    void aRoutesCorsPolicyAnswersPreflightsAndMarksAnswersAsIstiosSidecarDoes() throws Exception {
        // Istio's shape: the CORS filter before the router, the policy in the route's config
        withFilterFirst("""
                          - name: envoy.filters.http.cors
                            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}
                """, "                route: {cluster: v2}\n"
                + "                typed_per_filter_config:\n                  envoy.filters.http.cors:\n"
                + "                    \"@type\": type.googleapis.com/"
                + "envoy.extensions.filters.http.cors.v3.CorsPolicy\n"
                + "                    allow_origin_string_match: [{exact: \"https://shop.example\"}]\n"
                + "                    allow_methods: \"GET,PUT\"\n                    allow_credentials: true\n");
        io.vertx.core.http.HttpClientResponse preflight = onEventLoop(backends, () -> client.request(
                new RequestOptions().setMethod(io.vertx.core.http.HttpMethod.OPTIONS).setURI("/p")
                .putHeader("host", "reviews").putHeader("x-version", "v2").putHeader("origin", "https://shop.example")
                .putHeader("access-control-request-method", "PUT")).compose(req -> req.send())
                .compose(resp -> resp.body().map(b -> resp))).await(10, TimeUnit.SECONDS);
        assertEquals(200, preflight.statusCode());
        assertEquals("https://shop.example", preflight.getHeader("access-control-allow-origin"));
        assertEquals("GET,PUT", preflight.getHeader("access-control-allow-methods"));
        assertEquals("true", preflight.getHeader("access-control-allow-credentials"));
        io.vertx.core.http.HttpClientResponse actual = onEventLoop(backends, () -> client.request(new RequestOptions()
                .setURI("/a").putHeader("host", "reviews").putHeader("x-version", "v2")
                .putHeader("origin", "https://shop.example"))
                .compose(req -> req.send()).compose(resp -> resp.body().map(b -> resp))).await(10, TimeUnit.SECONDS);
        assertEquals(200, actual.statusCode());
        assertEquals("https://shop.example", actual.getHeader("access-control-allow-origin"));
        // a preflight from another origin goes upstream, as Envoy's default
        Answer other = send(client, new RequestOptions().setMethod(io.vertx.core.http.HttpMethod.OPTIONS)
                .setURI("/o").putHeader("host", "reviews").putHeader("x-version", "v2")
                .putHeader("origin", "https://evil.example").putHeader("access-control-request-method", "PUT"), null);
        assertEquals("v2 OPTIONS /o body= host=reviews", other.body);
        awaitRequests(3);
        assertEquals(List.of("cors_response", "via_upstream", "via_upstream"), proxy.requests.stream()
                .map(i -> i.responseCodeDetails()).toList());
    }

    /** The connection manager's filters with Istio's empty fault filter first, for routes to configure. */
    private static final String FAULT_FILTER = """
                      http_filters:
                      - name: envoy.filters.http.fault
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
            """;

    @Test
    void aRoutesFaultDelaysOrAbortsRequestsAsIstiosSidecarDoes() throws Exception {
        // Istio's shape: an empty fault filter before the router, the delay or abort in each route's config
        String fault = "\n                  envoy.filters.http.fault:\n                    \"@type\": "
                + "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault\n                    ";
        proxy.close();
        proxy = new LoopbackProxy(yaml.replace("          http_filters:\n", FAULT_FILTER).replace("              routes:\n", "              routes:\n"
                + "              - match: {prefix: /broken}\n"
                + "                route: {cluster: v1}\n"
                + "                typed_per_filter_config:" + fault
                + "abort: {http_status: 418, percentage: {numerator: 1000000, denominator: MILLION}}\n")
                .replace("                route: {cluster: v2}\n", "                route: {cluster: v2, timeout: 1s}\n"
                        + "                typed_per_filter_config:" + fault
                        + "delay: {fixed_delay: 1.2s, percentage: {numerator: 100}}\n"));
        Answer broken = send(client, new RequestOptions().setURI("/broken").putHeader("host", "reviews"), null);
        assertEquals(418, broken.status);
        assertEquals("fault filter abort", broken.body);
        long t0 = System.nanoTime();
        Answer slow = send(client, new RequestOptions().setURI("/slow").putHeader("host", "reviews")
                .putHeader("x-version", "v2"), null);
        long took = (System.nanoTime() - t0) / 1_000_000;
        // the 1.2 s delay comes before the route's 1 s timeout starts, as Envoy's fault filter runs before its router
        assertEquals(200, slow.status);
        assertEquals("v2 GET /slow body= host=reviews", slow.body);
        assertTrue(took >= 1_200 && took < 6_000, "took " + took + " ms");
        assertEquals(200, send(client, new RequestOptions().setURI("/r").putHeader("host", "reviews"), null).status);
        awaitRequests(3);
        assertEquals(List.of("FI", "DI", "-"), proxy.requests.stream()
                .map(i -> ResponseFlag.format(i.responseFlags())).toList());
    }

    @Test
    void aRoutesResponseRateLimitSendsTheHeadersAtOnceAndTheBodyAtItsRate() throws Exception {
        proxy.close();
        proxy = new LoopbackProxy(yaml.replace("          http_filters:\n", FAULT_FILTER).replace("              routes:\n", """
                              routes:
                              - match: {prefix: /4k}
                                route: {cluster: v1}
                                typed_per_filter_config:
                                  envoy.filters.http.fault:
                                    "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                                    response_rate_limit: {fixed_limit: {limit_kbps: 4}, percentage: {numerator: 100}}
                """));
        List<String> events = new java.util.concurrent.CopyOnWriteArrayList<>();
        long t0 = System.nanoTime();
        onEventLoop(backends, () -> client.request(new RequestOptions().setURI("/4k").putHeader("host", "reviews"))
                .compose(req -> req.send()).compose(resp -> {
                    events.add("headers");
                    resp.handler(b -> events.add("chunk " + b.length()));
                    return resp.end();
                })).await(20, TimeUnit.SECONDS);
        long took = (System.nanoTime() - t0) / 1_000_000;
        // 4 KiB at 4 KiB/s: one 50 ms interval's worth (204 bytes) at once, the rest over at least 0.9 s, in many
        // chunks, all after the headers, which are not delayed
        assertEquals("headers", events.get(0), events.toString());
        assertEquals(4096, events.stream().skip(1).mapToLong(e -> Long.parseLong(e.substring(6))).sum());
        assertTrue(events.size() - 1 >= 10, "released over many fills: " + events);
        assertTrue(took >= 900, "took " + took + " ms");
        awaitRequests(1);
    }

    @Test
    void theConnectionManagersStreamIdleTimeoutAnswers504BeforeTheResponseToAWholeRequest() throws Exception {
        withStreamIdleTimeout();
        long t0 = System.nanoTime();
        Answer a = send(client, new RequestOptions().setURI("/slow-head").putHeader("host", "reviews")
                .putHeader("x-version", "v2"), null);
        assertEquals(504, a.status);
        assertEquals("stream timeout", a.body);
        assertTrue((System.nanoTime() - t0) / 1_000_000 < 2500, "answered before the upstream");
        awaitRequests(1);
        assertEquals("SI", ResponseFlag.format(proxy.requests.get(0).responseFlags()));
        assertEquals("stream_idle_timeout", proxy.requests.get(0).responseCodeDetails());
    }

    @Test
    void theStreamIdleTimeoutCutsAStalledBodyButNotATrickle() throws Exception {
        withStreamIdleTimeout();
        RequestOptions trickle = new RequestOptions().setURI("/trickle").putHeader("host", "reviews")
                .putHeader("x-version", "v2");
        // 1 s of body, a chunk every 100 ms: each one is activity
        assertEquals(11, send(client, trickle, null).body.lines().count());
        RequestOptions stall = new RequestOptions().setURI("/stall").putHeader("host", "reviews")
                .putHeader("x-version", "v2");
        Throwable failed = null;
        try {
            send(client, stall, null);
        } catch (Exception e) {
            failed = e;
        }
        assertNotNull(failed, "the stalled body was cut");
        awaitRequests(2);
        assertEquals("SI", ResponseFlag.format(proxy.requests.get(1).responseFlags()));
    }

    @Test
    void keepAliveConnectionsServeManyRequestsInOrder() throws Exception {
        List<Future<Answer>> all = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            String path = "/k/" + i;
            all.add(onEventLoop(backends, () -> client.request(new RequestOptions().setURI(path)
                    .putHeader("host", "reviews").putHeader("x-version", "v2")).compose(r -> r.send())
                    .compose(r -> r.body().map(b -> new Answer(r.statusCode(), b.toString())))));
        }
        for (int i = 0; i < 20; i++) {
            assertEquals("v2 GET /k/" + i + " body= host=reviews", all.get(i).await(10, TimeUnit.SECONDS).body);
        }
    }

    @Test
    void anH2cConnectionWhoseClientClosesItsSideIsClosedAsEnvoyClosesIt() throws Exception {
        try (java.net.Socket s = new java.net.Socket("127.0.0.1", proxyPort)) {
            s.setSoTimeout(5000);
            // the preface and an empty SETTINGS frame, then the client's FIN
            s.getOutputStream().write(ProtocolDetector.H2_PREFACE.getBytes(
                    java.nio.charset.StandardCharsets.US_ASCII));
            s.getOutputStream().write(new byte[] {0, 0, 0, 4, 0, 0, 0, 0, 0});
            s.shutdownOutput();
            java.io.InputStream in = s.getInputStream();
            byte[] buf = new byte[1024];
            // the proxy's SETTINGS (and ACK), then its FIN; a timeout here is a connection left half open
            while (in.read(buf) >= 0) {
                // skip what the proxy sends before it closes
            }
        }
    }

    @Test
    void theConnectionManagersHttp2ProtocolOptionsAreWhatItsH2cConnectionsAdvertise() throws Exception {
        proxy.close();
        proxy = new LoopbackProxy(yaml.replace("stat_prefix: http\n", "stat_prefix: http\n"
                + "          http2_protocol_options: {max_concurrent_streams: 7, hpack_table_size: 0,\n"
                + "            initial_stream_window_size: 1048576, initial_connection_window_size: 4194304}\n"));
        java.util.Map<Integer, Long> settings = new java.util.HashMap<>();
        long connectionIncrement = advertised(settings, 4_194_304L - 65_535);
        assertEquals(7L, settings.get(3)); // SETTINGS_MAX_CONCURRENT_STREAMS: max_concurrent_streams
        assertEquals(0L, settings.get(1)); // SETTINGS_HEADER_TABLE_SIZE: hpack_table_size
        assertEquals(1_048_576L, settings.get(4)); // SETTINGS_INITIAL_WINDOW_SIZE: initial_stream_window_size
        // the connection's window starts at 65535: the proxy raises it to initial_connection_window_size
        assertEquals(4_194_304L - 65_535, connectionIncrement);
    }

    @Test
    void withoutWindowSizesTheConnectionsWindowIsTheDefaultOneLargerThanAStreamsSoOneStalledStreamHoldsNoOther()
            throws Exception {
        java.util.Map<Integer, Long> settings = new java.util.HashMap<>();
        long connectionIncrement = advertised(settings, 1_048_576L - 65_535);
        assertTrue(settings.getOrDefault(4, 65_535L) == 65_535L, "the stream window stays HTTP/2's: " + settings);
        assertEquals(1_048_576L - 65_535, connectionIncrement, "the connection's is raised to 1 MiB");
    }

    /**
     * What the proxy advertises on a new h2c connection: its SETTINGS into {@code settings}, and the sum of its
     * connection WINDOW_UPDATEs, read until it reaches {@code increment} (a frame missing: the read times out).
     */
    private long advertised(java.util.Map<Integer, Long> settings, long increment) throws Exception {
        long connectionIncrement = 0;
        try (java.net.Socket s = new java.net.Socket("127.0.0.1", proxyPort)) {
            s.setSoTimeout(5000);
            s.getOutputStream().write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                    .getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            s.getOutputStream().write(new byte[] {0, 0, 0, 4, 0, 0, 0, 0, 0}); // the client's empty SETTINGS
            s.getOutputStream().flush();
            java.io.DataInputStream in = new java.io.DataInputStream(s.getInputStream());
            // the proxy's SETTINGS, its ACK of ours and the connection's WINDOW_UPDATEs, in some order
            for (int frames = 0; frames < 10 && (settings.isEmpty() || connectionIncrement < increment); frames++) {
                int length = in.readUnsignedShort() << 8 | in.readUnsignedByte();
                int type = in.readUnsignedByte();
                int flags = in.readUnsignedByte();
                int stream = in.readInt() & 0x7fff_ffff;
                java.nio.ByteBuffer payload = java.nio.ByteBuffer.wrap(in.readNBytes(length));
                if (type == 4 && (flags & 1) == 0) {
                    while (payload.remaining() >= 6) {
                        settings.put(payload.getShort() & 0xffff, payload.getInt() & 0xffff_ffffL);
                    }
                } else if (type == 8 && stream == 0) {
                    connectionIncrement += payload.getInt() & 0x7fff_ffff;
                }
            }
        }
        return connectionIncrement;
    }

    /**
     * As Envoy answers a gRPC request itself (prepareLocalReply and encodeLocalReply, source/common/http/utility.cc):
     * trailers-only, with no {@code content-length} over h2c; over HTTP/1.1, the {@code content-length: 0} Envoy's
     * codec writes on a head that ends the stream (source/common/http/http1/codec_impl.cc).
     */
    @Test
    void aGrpcLocalReplyHasNoContentLengthOverH2cAndItsZeroOverHttp1() throws Exception {
        HttpClient h2 = backends.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
                .setHttp2ClearTextUpgrade(false));
        RequestOptions noRoute = new RequestOptions().setMethod(HttpMethod.POST).setURI("/pkg.Svc/Call")
                .setServer(io.vertx.core.net.SocketAddress.inetSocketAddress(proxyPort, "127.0.0.1"))
                .setHost("ratings").setPort(proxyPort).putHeader("content-type", "application/grpc");
        for (HttpClient c : List.of(h2, client)) {
            var resp = onEventLoop(backends, () -> c.request(noRoute).compose(r -> r.send())
                    .compose(r -> r.body().map(b -> r))).await(10, TimeUnit.SECONDS);
            assertEquals(200, resp.statusCode());
            assertEquals("12", resp.getHeader("grpc-status"), "UNIMPLEMENTED, for the 404 NR");
            assertEquals(c == h2 ? null : "0", resp.getHeader("content-length"), resp.version().name());
        }
        h2.close().await(10, TimeUnit.SECONDS);
    }

    @Test
    void h2cWithPriorKnowledgeIsServed() throws Exception {
        HttpClient h2 = backends.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
                .setHttp2ClearTextUpgrade(false).setDefaultHost("127.0.0.1").setDefaultPort(proxyPort));
        List<Future<Answer>> all = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            RequestOptions o = new RequestOptions().setURI("/h2/" + i).putHeader("x-version", "v2")
                    .setServer(io.vertx.core.net.SocketAddress.inetSocketAddress(proxyPort, "127.0.0.1"))
                    .setHost("reviews").setPort(proxyPort);
            all.add(onEventLoop(backends, () -> h2.request(o).compose(r -> r.send())
                    .compose(r -> r.body().map(b -> new Answer(r.statusCode(), b.toString() + " "
                            + r.version())))));
        }
        for (int i = 0; i < 5; i++) {
            Answer a = all.get(i).await(10, TimeUnit.SECONDS);
            assertEquals(200, a.status);
            assertTrue(a.body.startsWith("v2 GET /h2/" + i + " "), a.body);
            assertTrue(a.body.endsWith("HTTP_2"), a.body);
        }
        awaitRequests(5);
        assertEquals("HTTP/2", proxy.requests.get(0).protocol());
        h2.close().await(10, TimeUnit.SECONDS); // held until here: Vert.x closes a client no longer referenced
    }

    @Test
    void aClusterThatUsesTheDownstreamsProtocolSendsH2cRequestsOverH2cAndTheirTrailersBack() throws Exception {
        HttpClient h2 = backends.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
                .setHttp2ClearTextUpgrade(false).setDefaultHost("127.0.0.1").setDefaultPort(proxyPort));
        // v2 uses the downstream's protocol (as Istio's clusters for detected ports): h2c in, h2c out
        var resp = onEventLoop(backends, () -> h2.request(toReviews("/grpc").setMethod(HttpMethod.POST)
                .putHeader("x-version", "v2").putHeader("content-type", "application/grpc"))
                .compose(r -> r.send(Buffer.buffer().appendByte((byte) 0).appendInt(0)))
                .compose(r -> r.body().map(b -> r))).await(10, TimeUnit.SECONDS);
        assertEquals("HTTP_2", resp.getHeader("x-upstream-version"));
        assertEquals(7, resp.body().await(1, TimeUnit.SECONDS).length());
        assertEquals("7", resp.getTrailer("grpc-status")); // the upstream's trailers, passed on
        awaitRequests(1);
        StreamInfo info = proxy.requests.get(0);
        assertEquals("HTTP/2", info.protocol());
        assertEquals("7", info.grpcStatus());
        // HTTP/1.1 in, HTTP/1.1 out; and v1, which names no protocol, takes HTTP/1.1 whatever comes in
        assertEquals("HTTP_1_1", client.request(toReviews("/x").putHeader("x-version", "v2"))
                .compose(r -> r.send()).await(10, TimeUnit.SECONDS)
                .getHeader("x-upstream-version"));
        assertEquals("HTTP_1_1", h2.request(toReviews("/x"))
                .compose(r -> r.send()).await(10, TimeUnit.SECONDS).getHeader("x-upstream-version"));
        h2.close().await(10, TimeUnit.SECONDS); // held until here: Vert.x closes a client no longer referenced
    }

    /** A request for {@code reviews} (its authority), sent to the proxy. */
    private RequestOptions toReviews(String uri) {
        return new RequestOptions().setURI(uri).setHost("reviews").setPort(proxyPort)
                .setServer(io.vertx.core.net.SocketAddress.inetSocketAddress(proxyPort, "127.0.0.1"));
    }

    /** Writes raw bytes on a new connection to the proxy. */
    private java.net.Socket raw(String text) throws Exception {
        java.net.Socket s = new java.net.Socket("127.0.0.1", proxyPort);
        s.setSoTimeout(10_000);
        s.getOutputStream().write(text.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        s.getOutputStream().flush();
        return s;
    }

    /** Reads one HTTP/1.1 response with a content-length (or none: no body) and returns status line and body. */
    static String readResponse(java.io.InputStream in) throws Exception {
        String whole = readWholeResponse(in);
        int headEnd = whole.indexOf("\r\n\r\n") + 4;
        return whole.substring(0, whole.indexOf("\r\n")) + " | " + whole.substring(headEnd);
    }

    /**
     * Reads one HTTP/1.1 response with a content-length (or none: no body) and returns it whole: its head, the blank
     * line, its body.
     */
    static String readWholeResponse(java.io.InputStream in) throws Exception {
        StringBuilder head = new StringBuilder();
        while (!head.toString().endsWith("\r\n\r\n")) {
            int c = in.read();
            if (c < 0) {
                throw new java.io.EOFException("after " + head);
            }
            head.append((char) c);
        }
        int length = 0;
        for (String line : head.toString().split("\r\n")) {
            if (line.toLowerCase(java.util.Locale.ROOT).startsWith("content-length:")) {
                length = Integer.parseInt(line.substring(15).trim());
            }
        }
        byte[] body = in.readNBytes(length);
        return head + new String(body, java.nio.charset.StandardCharsets.US_ASCII);
    }

    @Test
    void pipelinedRequestsAreAnsweredInOrder() throws Exception {
        StringBuilder requests = new StringBuilder();
        for (int i = 0; i < 5; i++) {
            // the third goes nowhere: a local reply (404) between forwarded ones
            String host = i == 2 ? "ratings" : "reviews";
            requests.append("GET /p/").append(i).append(" HTTP/1.1\r\nhost: ").append(host)
                    .append("\r\nx-version: v2\r\n\r\n");
        }
        try (java.net.Socket s = raw(requests.toString())) {
            var in = new java.io.BufferedInputStream(s.getInputStream());
            for (int i = 0; i < 5; i++) {
                String r = readResponse(in);
                if (i == 2) {
                    assertTrue(r.startsWith("HTTP/1.1 404 "), r);
                } else {
                    assertEquals("HTTP/1.1 200 OK | v2 GET /p/" + i + " body= host=reviews", r);
                }
            }
            // and the connection is still good for more
            s.getOutputStream().write("GET /p/5 HTTP/1.1\r\nhost: reviews\r\nx-version: v2\r\n\r\n"
                    .getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            assertEquals("HTTP/1.1 200 OK | v2 GET /p/5 body= host=reviews", readResponse(in));
        }
    }

    @Test
    void aPipelinedContinueWaitsForTheAnswerBeforeIt() throws Exception {
        try (java.net.Socket s = raw("GET /first HTTP/1.1\r\nhost: reviews\r\nx-version: v2\r\n\r\n"
                + "POST /second HTTP/1.1\r\nhost: reviews\r\nx-version: v2\r\nexpect: 100-continue\r\n"
                + "content-length: 5\r\n\r\n")) {
            var in = new java.io.BufferedInputStream(s.getInputStream());
            assertEquals("HTTP/1.1 200 OK | v2 GET /first body= host=reviews", readResponse(in));
            assertEquals("HTTP/1.1 100 Continue | ", readResponse(in));
            s.getOutputStream().write("hello".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            assertEquals("HTTP/1.1 200 OK | v2 POST /second body=hello host=reviews", readResponse(in));
        }
    }

    @Test
    void withIstiodsGrpcStatsFilterTheProxyCountsEachCallsMessagesWholeOrStreamed() throws Exception {
        withFilterFirst("""
                          - name: envoy.filters.http.grpc_stats
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig
                              emit_filter_state: true
                              stats_for_all_methods: false
                """, "");
        HttpClient h2 = backends.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
                .setHttp2ClearTextUpgrade(false).setDefaultHost("127.0.0.1").setDefaultPort(proxyPort));
        Buffer two = Buffer.buffer().appendByte((byte) 0).appendInt(1).appendString("a")
                .appendByte((byte) 0).appendInt(0);
        var resp = onEventLoop(backends, () -> h2.request(toReviews("/grpc").setMethod(HttpMethod.POST)
                .putHeader("x-version", "v2").putHeader("content-type", "application/grpc"))
                .compose(r -> r.send(two)).compose(r -> r.body().map(b -> r))).await(10, TimeUnit.SECONDS);
        assertEquals("7", resp.getTrailer("grpc-status"));
        awaitRequests(1);
        assertEquals(2, proxy.requests.get(0).requestMessages());
        assertEquals(1, proxy.requests.get(0).responseMessages(), "the upstream's one message");
        // streamed, each message's prefix split across writes
        var req = h2.request(toReviews("/bidi").setMethod(HttpMethod.POST).putHeader("x-version", "v2")
                .putHeader("content-type", "application/grpc")).await(10, TimeUnit.SECONDS);
        var ended = req.response().compose(r -> r.body()).toCompletionStage().toCompletableFuture();
        Buffer three = Buffer.buffer().appendBuffer(two).appendByte((byte) 1).appendInt(3).appendString("zip");
        req.setChunked(true);
        for (int at = 0; at < three.length(); at += 3) {
            req.write(three.getBuffer(at, Math.min(three.length(), at + 3)));
        }
        req.end();
        ended.get(10, TimeUnit.SECONDS);
        awaitRequests(2);
        assertEquals(3, proxy.requests.get(1).requestMessages());
        assertEquals(0, proxy.requests.get(1).responseMessages(), "a body that is not gRPC has none");
        h2.close().await(10, TimeUnit.SECONDS);
    }

    @Test
    void aClientStreamingH2cCallIsAnsweredBeforeTheClientEndsItsStream() throws Exception {
        HttpClient h2 = backends.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
                .setHttp2ClearTextUpgrade(false));
        var firstAnswer = new java.util.concurrent.CompletableFuture<String>();
        StringBuilder all = new StringBuilder();
        var ended = new java.util.concurrent.CompletableFuture<String>();
        // as a client-streaming gRPC call: the upstream answers the first message while the second is still to come
        var req = h2.request(toReviews("/bidi").setMethod(HttpMethod.POST).putHeader("x-version", "v2")
                .putHeader("content-type", "application/grpc")).await(10, TimeUnit.SECONDS);
        req.response().onSuccess(resp -> {
            resp.handler(b -> {
                synchronized (all) {
                    all.append(b);
                    firstAnswer.complete(all.toString());
                }
            });
            resp.endHandler(v -> {
                synchronized (all) {
                    ended.complete(all.toString());
                }
            });
        });
        req.setChunked(true).write("one");
        assertEquals("got one\n", firstAnswer.get(10, TimeUnit.SECONDS));
        req.end("two");
        assertEquals("got one\ngot two\nend\n", ended.get(10, TimeUnit.SECONDS));
        awaitRequests(1);
        assertEquals(6, proxy.requests.get(0).bytesReceived());
        h2.close().await(10, TimeUnit.SECONDS); // held until here: Vert.x closes a client no longer referenced
    }

    @Test
    void anHttp1ResponseThatStartsBeforeItsRequestEndedClosesTheConnectionAfterIt() throws Exception {
        try (java.net.Socket s = raw("POST /bidi HTTP/1.1\r\nhost: reviews\r\nx-version: v2\r\n"
                + "transfer-encoding: chunked\r\n\r\n3\r\none\r\n")) {
            var in = new java.io.BufferedInputStream(s.getInputStream());
            StringBuilder got = new StringBuilder();
            while (!got.toString().contains("got one")) {
                int c = in.read();
                assertTrue(c >= 0, got.toString());
                got.append((char) c);
            }
            // answered while the body still comes: as Envoy's HTTP/1 codec, the connection ends with this exchange
            assertTrue(got.toString().toLowerCase(java.util.Locale.ROOT).contains("connection: close"), got.toString());
            s.getOutputStream().write("3\r\ntwo\r\n0\r\n\r\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            got.append(new String(in.readAllBytes(), java.nio.charset.StandardCharsets.US_ASCII)); // to the close
            assertTrue(got.toString().endsWith("got two\n\r\n4\r\nend\n\r\n0\r\n\r\n"), got.toString());
        }
    }

    @Test
    void aLargeChunkedUploadStreamsWithBackPressureByteForByte() throws Exception {
        // what the proxy reads from the client
        java.util.concurrent.atomic.AtomicLong read = new java.util.concurrent.atomic.AtomicLong();
        proxy.server.http1Hook(ch -> ch.pipeline().addFirst(new io.netty.channel.ChannelInboundHandlerAdapter() {
            @Override
            public void channelRead(io.netty.channel.ChannelHandlerContext ctx, Object msg) {
                read.addAndGet(((io.netty.buffer.ByteBuf) msg).readableBytes());
                ctx.fireChannelRead(msg);
            }
        }));
        // twice what the proxy used to buffer whole: the kernel's socket buffers on both sides of the proxy may hold
        // several MB whatever the proxy does (4.3 MB measured here), so half of this leaves room for them
        int total = 32 * 1024 * 1024;
        try (java.net.Socket s = raw("POST /slow-read HTTP/1.1\r\nhost: reviews\r\nx-version: v2\r\n"
                + "transfer-encoding: chunked\r\n\r\n")) {
            var writer = java.util.concurrent.CompletableFuture.runAsync(() -> {
                try {
                    var out = s.getOutputStream();
                    byte[] chunk = new byte[64 * 1024];
                    for (int sent = 0; sent < total; sent += chunk.length) {
                        for (int i = 0; i < chunk.length; i++) {
                            chunk[i] = (byte) ((sent + i) % 251);
                        }
                        out.write((Integer.toHexString(chunk.length) + "\r\n")
                                .getBytes(java.nio.charset.StandardCharsets.US_ASCII));
                        out.write(chunk);
                        out.write(new byte[] {'\r', '\n'});
                    }
                    out.write("0\r\n\r\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
                    out.flush();
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            // the head goes upstream before the body ended (it used to wait for the whole body)
            slowReadHead.get(10, TimeUnit.SECONDS);
            // the upstream reads nothing yet: the proxy stops reading from the client once its buffers are full
            long before;
            long after = read.get();
            do {
                before = after;
                Thread.sleep(300);
                after = read.get();
            } while (after != before);
            assertTrue(after < total / 2, "the proxy read " + after + " of " + total + " bytes");
            slowReadGo.complete(null);
            writer.get(20, TimeUnit.SECONDS);
            var in = new java.io.BufferedInputStream(s.getInputStream());
            assertEquals("HTTP/1.1 200 OK | read " + total, readResponse(in));
        }
        awaitRequests(1);
        assertTrue(proxy.requests.get(0).bytesReceived() == total, "" + proxy.requests.get(0).bytesReceived());
    }

    @Test
    void aBodyLargerThan16MiBIsNotRefusedAsEnvoySetsNoLimit() throws Exception {
        int total = 17 * 1024 * 1024;
        byte[] body = new byte[total];
        for (int i = 0; i < total; i++) {
            body[i] = (byte) (i % 251);
        }
        slowReadGo.complete(null);
        try (java.net.Socket s = raw("POST /slow-read HTTP/1.1\r\nhost: reviews\r\nx-version: v2\r\n"
                + "content-length: " + total + "\r\n\r\n")) {
            var writer = java.util.concurrent.CompletableFuture.runAsync(() -> {
                try {
                    s.getOutputStream().write(body);
                    s.getOutputStream().flush();
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            var in = new java.io.BufferedInputStream(s.getInputStream());
            assertEquals("HTTP/1.1 200 OK | read " + total, readResponse(in));
            writer.get(20, TimeUnit.SECONDS);
        }
    }

    @Test
    void anH2cClientThatEndsItsSideHasItsStreamsResetAtOnceNotAfterTheDrainTime() throws Exception {
        // as Envoy's connection manager on the downstream's close: every stream is reset then (the graceful close that
        // a drain gives an HTTP/2 connection, GOAWAY and up to the drain time for its streams, is for a client still
        // there); the upstream answers /slow-head after 3 s, the drain time is 5 s
        proxy.requests.clear();
        var hpack = new io.netty.handler.codec.http2.DefaultHttp2HeadersEncoder();
        long start = System.nanoTime();
        try (java.net.Socket s = raw("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")) {
            var out = s.getOutputStream();
            out.write(Http2Wire.frame(4, 0, 0, new byte[0])); // SETTINGS
            out.write(Http2Wire.frame(1, 0x5, 1, ProxyHttp2HeaderOverflowTest.block(hpack,
                    "/slow-head", "reviews", "x-version", "v2"))); // HEADERS, END_STREAM | END_HEADERS
            out.flush();
            Thread.sleep(300); // the request went upstream
            s.shutdownOutput();
            var in = s.getInputStream();
            while (in.read() >= 0) {
                // the proxy's SETTINGS and whatever else it sent before it closed
            }
        }
        StreamInfo reset = proxy.logged(0);
        long ms = (System.nanoTime() - start) / 1_000_000;
        assertTrue(ms < 2500, "closed and logged after " + ms + " ms");
        assertEquals(0, reset.responseCode());
        assertEquals(java.util.Set.of(ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION), reset.responseFlags());
        assertEquals("downstream_remote_disconnect", reset.responseCodeDetails());
    }

    @Test
    void anH2cStreamTheClientResetsIsLoggedDrWithTheCodecsDetailsNotDc() throws Exception {
        // as Envoy's connection manager when its HTTP/2 codec reads the client's RST_STREAM: DR and
        // http2.remote_reset (a closed connection is DC, downstream_remote_disconnect); before its answer (the
        // upstream answers /slow-head after 3 s) and after its answer began (/stall's last chunk comes after 3 s)
        proxy.requests.clear();
        try (var severe = new dev.inmesh.runtime.testing.SevereLogs(); Http2Wire h2 = Http2Wire.client(proxyPort)) {
            h2.headers(1, true, get("/slow-head"));
            Thread.sleep(300); // the request went upstream
            h2.reset(1, 8); // CANCEL
            StreamInfo reset = proxy.logged(0);
            assertEquals(java.util.Set.of(ResponseFlag.DOWNSTREAM_REMOTE_RESET), reset.responseFlags());
            assertEquals("http2.remote_reset", reset.responseCodeDetails());
            // the connection stays: a stream whose answer began
            h2.headers(3, true, get("/stall"));
            assertEquals(Http2Wire.HEADERS, h2.next().type());
            h2.reset(3, 8);
            StreamInfo cut = proxy.logged(200);
            assertEquals(java.util.Set.of(ResponseFlag.DOWNSTREAM_REMOTE_RESET), cut.responseFlags());
            assertEquals("http2.remote_reset", cut.responseCodeDetails());
            assertEquals(List.of(), severe.records(), "a client's reset is no error of the proxy's");
        }
    }

    /** An h2c GET of {@code path} to reviews v2, as names and values for {@link Http2Wire#headers}. */
    private static String[] get(String path) {
        return new String[] {":method", "GET", ":scheme", "http", ":path", path, ":authority", "reviews",
            "x-version", "v2"};
    }

    @Test
    void aClientThatEndsItsSideBeforeItsAnswerHasItsRequestResetAndLoggedDcAsEnvoyHasNoHalfClose() throws Exception {
        // as Envoy's connection manager, whose connections turn the end of input into a close: the request waiting
        // for its answer (a client that closed its socket looks the same) is reset upstream, not answered, 0 DC
        proxy.requests.clear();
        try (java.net.Socket s = raw("GET /slow-head HTTP/1.1\r\nhost: reviews\r\nx-version: v2\r\n\r\n")) {
            Thread.sleep(300); // the request went upstream, which answers after 3 s
            s.shutdownOutput();
            assertEquals(-1, s.getInputStream().read(), "closed without an answer");
        }
        StreamInfo reset = proxy.logged(0);
        assertEquals(0, reset.responseCode());
        assertEquals(java.util.Set.of(ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION), reset.responseFlags());
        assertEquals("downstream_remote_disconnect", reset.responseCodeDetails());
        // half-closed before any request
        try (java.net.Socket s = raw("")) {
            s.shutdownOutput();
            assertEquals(-1, s.getInputStream().read());
        }
        // half-closed while idle: closed at once
        try (java.net.Socket s = raw("GET /h/1 HTTP/1.1\r\nhost: reviews\r\nx-version: v2\r\n\r\n")) {
            var in = new java.io.BufferedInputStream(s.getInputStream());
            assertEquals("HTTP/1.1 200 OK | v2 GET /h/1 body= host=reviews", readResponse(in));
            s.shutdownOutput();
            assertEquals(-1, in.read());
        }
    }

    @Test
    void aClientThatEndsItsSideMidBodyHasItsRequestResetUpstreamAndItsConnectionClosed() throws Exception {
        // the rest of the body can never come: as Envoy on a downstream close, the upstream request is reset (the
        // upstream would otherwise wait for the body and hold its connection) and the request logged 0 DC
        for (String request : new String[] {
            "POST /mid-body HTTP/1.1\r\nhost: reviews\r\nx-version: v2\r\ncontent-length: 10\r\n\r\nabc",
            "POST /mid-chunked HTTP/1.1\r\nhost: reviews\r\nx-version: v2\r\ntransfer-encoding: chunked\r\n\r\n"
                    + "3\r\nabc\r\n",
            // pipelined behind a request being answered: it never goes upstream, and the first is reset too
            "GET /slow-head HTTP/1.1\r\nhost: reviews\r\nx-version: v2\r\n\r\n"
                    + "POST /queued HTTP/1.1\r\nhost: reviews\r\nx-version: v2\r\ncontent-length: 10\r\n\r\nabc"}) {
            proxy.requests.clear();
            try (java.net.Socket s = raw(request)) {
                Thread.sleep(300); // the head went upstream, the body waits for its rest
                s.shutdownOutput();
                assertEquals(-1, s.getInputStream().read(), request);
            }
            StreamInfo reset = proxy.logged(0);
            assertTrue(reset.responseFlags().contains(ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION), request);
            assertEquals(1, proxy.requests.size(), "the queued request is not logged: it never began");
        }
    }

    @Test
    void everyResponseCarriesADateAsEnvoysConnectionManagerWritesItAndAnUpstreamsOwnIsKept() throws Exception {
        java.util.regex.Pattern imfFixdate = java.util.regex.Pattern.compile(
                "\r\ndate: [A-Z][a-z]{2}, \\d{2} [A-Z][a-z]{2} \\d{4} \\d{2}:\\d{2}:\\d{2} GMT\r\n");
        try (java.net.Socket s = raw("GET /d HTTP/1.1\r\nhost: reviews\r\nx-version: v2\r\n\r\n"
                + "GET /d HTTP/1.1\r\nhost: ratings\r\n\r\n"
                + "GET /dated HTTP/1.1\r\nhost: reviews\r\nx-version: v2\r\nconnection: close\r\n\r\n")) {
            String all = new String(s.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.US_ASCII);
            String[] answers = all.split("(?=HTTP/1.1 )");
            assertEquals(3, answers.length, all);
            assertTrue(answers[0].startsWith("HTTP/1.1 200 ") && imfFixdate.matcher(answers[0]).find(), answers[0]);
            // a local reply too (no route)
            assertTrue(answers[1].startsWith("HTTP/1.1 404 ") && imfFixdate.matcher(answers[1]).find(), answers[1]);
            assertTrue(answers[2].contains("\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"), answers[2]);
            assertEquals(1, answers[2].split("\r\ndate: ", -1).length - 1, answers[2]);
        }
        // and a codec error's answer
        try (java.net.Socket s = raw("GET /d HTTP/1.1\r\nhost: reviews\r\nbad header: x\r\n\r\n")) {
            String refused = new String(s.getInputStream().readAllBytes(),
                    java.nio.charset.StandardCharsets.US_ASCII);
            assertTrue(refused.startsWith("HTTP/1.1 400 ") && imfFixdate.matcher(refused).find(), refused);
        }
    }

    @Test
    void aResponseIsWrittenWithOneFlush() throws Exception {
        List<Integer> flushes = new java.util.concurrent.CopyOnWriteArrayList<>();
        AtomicInteger count = new AtomicInteger();
        proxy.server.http1Hook(ch -> ch.pipeline().addFirst(new io.netty.channel.ChannelOutboundHandlerAdapter() {
            @Override
            public void flush(io.netty.channel.ChannelHandlerContext ctx) {
                count.incrementAndGet();
                ctx.flush();
            }
        }));
        try (java.net.Socket s = raw("")) {
            var in = new java.io.BufferedInputStream(s.getInputStream());
            for (int i = 0; i < 5; i++) {
                count.set(0);
                s.getOutputStream().write(("GET /f/" + i + " HTTP/1.1\r\nhost: reviews\r\nx-version: v2\r\n\r\n")
                        .getBytes(java.nio.charset.StandardCharsets.US_ASCII));
                assertEquals("HTTP/1.1 200 OK | v2 GET /f/" + i + " body= host=reviews", readResponse(in));
                Thread.sleep(50); // a late flush would show up here
                flushes.add(count.get());
            }
        }
        assertEquals(List.of(1, 1, 1, 1, 1), flushes);
    }

    @Test
    void anH2cUpgradeIsServedAsHttp11ThroughTheRouterAsEnvoyServesIt() throws Exception {
        // Java's HttpClient asks for h2c on every plain request; the proxy must not relay it as bytes
        java.net.http.HttpClient jdk = java.net.http.HttpClient.newBuilder()
                .connectTimeout(java.time.Duration.ofSeconds(5)).build();
        var r = jdk.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + proxyPort
                + "/h2c")).header("x-version", "v2").timeout(java.time.Duration.ofSeconds(5)).build(),
                java.net.http.HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode());
        assertEquals(java.net.http.HttpClient.Version.HTTP_1_1, r.version());
        assertTrue(r.body().startsWith("v2 GET /h2c"), r.body());
        awaitRequests(1); // routed: the router saw it
    }

    @Test
    void anUpgradeTheConnectionManagerDoesNotEnableIsAnswered403() throws Exception {
        proxy.close();
        proxy = new LoopbackProxy(yaml.replace("          upgrade_configs: [{upgrade_type: websocket}]\n", ""));
        WebSocketClient ws = backends.createWebSocketClient();
        var failed = ws.connect(new WebSocketConnectOptions().setHost("127.0.0.1").setPort(proxyPort)
                .setURI("/ws").addHeader("host", "reviews").addHeader("x-version", "v2"))
                .transform(ar -> io.vertx.core.Future.succeededFuture(ar.failed() ? ar.cause().getMessage() : "open"))
                .await(10, TimeUnit.SECONDS);
        ws.close().await(10, TimeUnit.SECONDS); // held until here: Vert.x closes a client no longer referenced
        assertTrue(failed.contains("403"), failed);
        // and an upgrade to anything but websocket, even where websocket is enabled
        proxy.close();
        proxy = new LoopbackProxy(yaml);
        var stats = proxy.withStats();
        try (java.net.Socket s = new java.net.Socket("127.0.0.1", proxyPort)) {
            s.setSoTimeout(5000);
            s.getOutputStream().write(("GET /x HTTP/1.1\r\nhost: reviews\r\nconnection: upgrade\r\n"
                    + "upgrade: something\r\n\r\n").getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            String answer = new String(s.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.US_ASCII);
            assertTrue(answer.startsWith("HTTP/1.1 403 "), answer);
        }
        // counted as Envoy counts it (the statistic was not there); no upgrade was taken
        assertEquals(1, LoopbackProxy.stat(stats, "http", "downstream_rq_ws_on_non_ws_route"));
        assertEquals(0, LoopbackProxy.stat(stats, "http", "downstream_cx_upgrades_total"));
    }

    /**
     * An upgrade the connection manager does not take whose route does not match, and a {@code CONNECT}, which no
     * prefix or path route matches, are answered by the router: 404 NR {@code route_not_found}, as Envoy answers 403
     * {@code upgrade_failed} only when a route matched (both got 403). The connection closes after either.
     */
    @Test
    void anUpgradeOrAConnectNoRouteMatchesIsAnswered404NR() throws Exception {
        for (String request : List.of("GET /x HTTP/1.1\r\nhost: nowhere\r\nconnection: upgrade\r\n"
                + "upgrade: something\r\n\r\n", "CONNECT reviews:443 HTTP/1.1\r\nhost: reviews:443\r\n\r\n")) {
            proxy.requests.clear();
            String answer = Http1RequestsTest.exchange(proxyPort, request);
            assertTrue(answer.startsWith("HTTP/1.1 404 ") && answer.contains("\r\nconnection: close\r\n"), answer);
            var info = proxy.logged(404);
            assertEquals("route_not_found", info.responseCodeDetails());
            assertEquals("NR", dev.inmesh.runtime.stats.ResponseFlag.format(info.responseFlags()));
            // with the request id the connection manager made before it answered, as Envoy's (it had none)
            assertTrue(info.requestId() != null && info.requestId().length() > 30, String.valueOf(info.requestId()));
        }
    }

    /**
     * As Envoy answers a HEAD request itself (encodeLocalReply, source/common/http/utility.cc): the reply's headers
     * alone, their content-length the body's (none for an empty body), and 0 body bytes in the access log. The
     * answer to the GET pipelined behind it follows its head at once.
     */
    @Test
    void aLocalReplyToAHeadRequestIsItsHeadersAloneWithTheContentLengthOfItsBody() throws Exception {
        restartWithRoutes("""
                - match: {prefix: /direct}
                  direct_response: {status: 200, body: {inline_string: direct-body}}
                """);
        String answer = Http1RequestsTest.exchange(proxyPort, "HEAD /direct HTTP/1.1\r\nhost: reviews\r\n\r\n"
                + "HEAD /x HTTP/1.1\r\nhost: nowhere\r\n\r\n"
                + "GET /direct HTTP/1.1\r\nhost: reviews\r\nconnection: close\r\n\r\n");
        String[] answers = answer.split("(?=HTTP/1.1 )");
        assertEquals(3, answers.length, answer);
        assertTrue(answers[0].startsWith("HTTP/1.1 200 ") && answers[0].contains("\r\ncontent-length: 11\r\n")
                && answers[0].endsWith("\r\n\r\n"), answer);
        assertTrue(answers[1].startsWith("HTTP/1.1 404 ") && !answers[1].contains("content-length")
                && answers[1].endsWith("\r\n\r\n"), answer);
        assertTrue(answers[2].endsWith("\r\n\r\ndirect-body"), answer);
        awaitRequests(3);
        assertEquals(List.of("HEAD 0", "HEAD 0", "GET 11"), proxy.requests.stream()
                .map(i -> i.method() + " " + i.bytesSent()).toList());
    }

    /**
     * As Envoy's connection manager cleans a request before it picks the route (mutateRequestHeaders, then
     * refreshCachedRoute, conn_manager_impl.cc): the hop-by-hop headers of a request that is no upgrade, and a
     * plaintext caller's {@code x-forwarded-client-cert} (SANITIZE), never steer it; any other header does.
     */
    @Test
    void noRouteMatchesTheHopByHopHeadersOrAPlaintextCallersForwardedClientCert() throws Exception {
        StringBuilder routes = new StringBuilder();
        for (String name : List.of("connection", "keep-alive", "proxy-connection", "upgrade", "te",
                "x-forwarded-client-cert", "x-steer")) {
            routes.append("- match: {prefix: /steer, headers: [{name: ").append(name)
                    .append(", present_match: true}]}\n  direct_response: {status: 418}\n");
        }
        restartWithRoutes(routes + "- match: {prefix: /steer}\n  direct_response: {status: 200}\n");
        List<String> sent = List.of("connection: keep-alive", "keep-alive: timeout=5",
                "proxy-connection: keep-alive", "upgrade: foo", "te: gzip",
                "x-forwarded-client-cert: URI=spiffe://cluster.local/ns/a/sa/admin", "x-steer: 1");
        StringBuilder requests = new StringBuilder();
        for (String header : sent) {
            requests.append("GET /steer HTTP/1.1\r\nhost: reviews\r\n").append(header).append("\r\n\r\n");
        }
        String answer = Http1RequestsTest.exchange(proxyPort, requests
                + "GET /steer HTTP/1.1\r\nhost: reviews\r\nconnection: close\r\n\r\n");
        List<String> statuses = java.util.Arrays.stream(answer.split("(?=HTTP/1.1 )"))
                .map(a -> a.substring(9, 12)).toList();
        assertEquals(List.of("200", "200", "200", "200", "200", "200", "418", "200"), statuses, answer);
    }

    /** Restarts the proxy with {@code routes} (YAML list items) first in the reviews virtual host. */
    private void restartWithRoutes(String routes) throws Exception {
        proxy.close();
        String list = "              routes:\n";
        proxy = new LoopbackProxy(yaml.replace(list, list + routes.indent(14)));
    }

    /**
     * As Envoy's connection manager gives an HTTP/1 request (which has no {@code :scheme}) the one of a valid
     * {@code x-forwarded-proto} (mutateRequestHeaders, conn_manager_utility.cc), which a redirect keeps
     * (Utility::newUri): a caller's {@code x-forwarded-proto: https} makes an {@code https} location.
     */
    @Test
    void aRedirectKeepsTheSchemeOfTheCallersForwardedProto() throws Exception {
        restartWithRoutes("- {match: {prefix: /moved}, redirect: {host_redirect: other.example, path_redirect: /new}}");
        String answer = Http1RequestsTest.exchange(proxyPort, "GET /moved HTTP/1.1\r\nhost: reviews\r\n"
                + "x-forwarded-proto: https\r\n\r\n"
                + "GET /moved HTTP/1.1\r\nhost: reviews\r\nconnection: close\r\n\r\n");
        String[] answers = answer.split("(?=HTTP/1.1 )");
        assertEquals(2, answers.length, answer);
        assertTrue(answers[0].contains("\r\nlocation: https://other.example/new\r\n"), answer);
        assertTrue(answers[1].contains("\r\nlocation: http://other.example/new\r\n"), answer);
    }

    /** Opens a WebSocket to the reviews service through the proxy (v2), sends {@code message}; the first reply. */
    private String webSocketReply(WebSocketConnectOptions extra, String message) throws Exception {
        // closed at the end, which holds it until then: Vert.x closes a client no longer referenced, its sockets too
        WebSocketClient ws = backends.createWebSocketClient();
        try {
            var socket = ws.connect(extra.setHost("127.0.0.1").setPort(proxyPort).setURI("/ws")
                    .addHeader("host", "reviews").addHeader("x-version", "v2")).await(10, TimeUnit.SECONDS);
            var reply = io.vertx.core.Promise.<String>promise();
            socket.textMessageHandler(reply::tryComplete);
            socket.writeTextMessage(message);
            try {
                return reply.future().await(10, TimeUnit.SECONDS);
            } finally {
                socket.close();
            }
        } finally {
            ws.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void aWebSocketUpgradePassesThrough() throws Exception {
        assertEquals("v2 echo hello", webSocketReply(new WebSocketConnectOptions(), "hello"));
    }

    @Test
    void aWebSocketUpgradeFromAPlaintextCallerLosesItsForwardedClientCertAndEnvoyControlHeaders() throws Exception {
        assertEquals("null null", webSocketReply(new WebSocketConnectOptions()
                .addHeader("x-forwarded-client-cert", "By=spiffe://forged;Hash=00")
                .addHeader("x-envoy-retry-on", "5xx"), "headers?"));
    }
}
