package dev.inmesh.runtime.inbound;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.stats.PeerMetadata;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.client.HttpRequest;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mesh.inbound(handler)} as the inbound side of an Istio sidecar treats a request before the application sees
 * it, and the response on its way back: the headers Envoy's connection manager and Istio's metadata exchange add,
 * take off or keep.
 */
class InboundHandlerTest {
    /** Istio's virtualInbound for port 9080, to the service ({@code inbound|9080||}). */
    static final String INBOUND = """
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
                      internal_address_config:
                        cidr_ranges: [{address_prefix: 10.0.0.0, prefix_len: 8}]
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
                          - match:
                              prefix: /pseudo
                              headers:
                              - {name: ":method", string_match: {exact: POST}}
                              - {name: ":authority", string_match: {prefix: "127.0.0.1:"}}
                              - {name: ":path", string_match: {suffix: "?x=1"}}
                              - {name: ":scheme", string_match: {exact: http}}
                            direct_response: {status: 200, body: {inline_string: pseudo}}
                          - {match: {prefix: /}, route: {cluster: "inbound|9080||", timeout: 0s}}
            """;

    @TempDir
    Path dir;
    Vertx vertx;
    /** A plain client (not the mesh's), held for the whole test: Vert.x closes a client no longer referenced. */
    WebClient plain;
    Mesh mesh;
    int port;

    @BeforeEach
    void start() throws Exception {
        vertx = Vertx.vertx();
        plain = WebClient.create(vertx);
        Path file = dir.resolve("inbound.yaml");
        Files.writeString(file, INBOUND);
        mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("reviews-v1").setApp("reviews")
                .setVersion("v1").setNamespace("default").setConfigFile(file.toString()).setAdminPort(-1));
        mesh.start().await(10, TimeUnit.SECONDS);
        // the service answers with the request headers it was given, as JSON
        HttpServer server = vertx.createHttpServer().requestHandler(mesh.inbound(req -> {
            JsonObject seen = new JsonObject();
            req.headers().forEach(e -> seen.put(e.getKey().toLowerCase(java.util.Locale.ROOT), e.getValue()));
            req.response().putHeader("content-type", "application/json").end(seen.encode());
        }));
        port = server.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    @AfterEach
    void stop() throws Exception {
        if (ownSnapshots != null) {
            ownSnapshots.close();
        }
        mesh.close().await(10, TimeUnit.SECONDS);
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    private HttpResponse<Buffer> call(String... headerPairs) throws Exception {
        HttpRequest<Buffer> r = plain.get(port, "127.0.0.1", "/reviews/0");
        MultiMap h = r.headers();
        for (int i = 0; i + 1 < headerPairs.length; i += 2) {
            h.add(headerPairs[i], headerPairs[i + 1]);
        }
        return r.send().await(10, TimeUnit.SECONDS);
    }

    private JsonObject seen(String... headerPairs) throws Exception {
        HttpResponse<Buffer> r = call(headerPairs);
        assertEquals(200, r.statusCode(), r.bodyAsString());
        return r.bodyAsJsonObject();
    }

    /** The configuration the handlers of {@link #rawCaller} route by, once one is made; closed after each test. */
    dev.inmesh.runtime.snapshot.SnapshotHolder ownSnapshots;
    /** The raw callers' client, held: Vert.x closes a client no longer referenced. */
    io.vertx.core.net.NetClient net;

    /**
     * A connection to a server of its own whose requests go through an {@link InboundHandler} (configured as
     * {@link #INBOUND}) to {@code app}, finished requests to {@code observer}: a caller writing raw HTTP/1.1.
     */
    private io.vertx.core.net.NetSocket rawCaller(io.vertx.core.Handler<io.vertx.core.http.HttpServerRequest> app,
                                                  java.util.function.Consumer<StreamInfo> observer) throws Exception {
        ownSnapshots = new dev.inmesh.runtime.snapshot.SnapshotHolder();
        ownSnapshots.apply(dev.inmesh.runtime.xds.EnvoyConfigReader.read(INBOUND));
        int own = vertx.createHttpServer().requestHandler(new InboundHandler(app, ownSnapshots, observer))
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        net = vertx.createNetClient();
        return net.connect(own, "127.0.0.1").await(10, TimeUnit.SECONDS);
    }

    @Test
    void theConnectionManagerWritesItsServerHeaderAndADateOnTheServicesAnswersAndItsOwn() throws Exception {
        // as Envoy's connection manager on every response: server_name (default envoy) over the service's own
        // server header (OVERWRITE), a date when there is none
        HttpResponse<Buffer> served = call("x", "y");
        assertEquals("envoy", served.getHeader("server"));
        assertNotNull(served.getHeader("date"));
        HttpResponse<Buffer> local = plain.post(port, "127.0.0.1", "/pseudo?x=1").send()
                .await(10, TimeUnit.SECONDS);
        assertEquals("pseudo", local.bodyAsString());
        assertEquals("envoy", local.getHeader("server"));
        assertNotNull(local.getHeader("date"));
    }

    @Test
    void theServiceReadsNoHopByHopHeaderAsEnvoysConnectionManagerTakesThemOff() throws Exception {
        JsonObject seen = seen("keep-alive", "timeout=5", "proxy-connection", "keep-alive", "connection",
                "keep-alive", "upgrade", "foo", "te", "gzip, trailers");
        assertNull(seen.getString("keep-alive"), seen.encode());
        assertNull(seen.getString("proxy-connection"), seen.encode());
        assertNull(seen.getString("connection"), seen.encode());
        assertNull(seen.getString("upgrade"), seen.encode());
        assertEquals("trailers", seen.getString("te"), seen.encode());
        assertNull(seen("te", "gzip").getString("te"));
    }

    /** As Envoy's connection manager (mutateRequestHeaders): a Referer that is no URI reference does not go on. */
    @Test
    void theServiceReadsNoRefererTheConnectionManagerTakesOff() throws Exception {
        assertNull(seen("referer", "http://[bad").getString("referer"));
        assertEquals("/page", seen("referer", "/page").getString("referer"));
    }

    @Test
    void theConnectionManagersViaIsAppendedToTheRequestTheServiceReadsAndToItsAnswer() throws Exception {
        ownSnapshots = new dev.inmesh.runtime.snapshot.SnapshotHolder();
        ownSnapshots.apply(dev.inmesh.runtime.xds.EnvoyConfigReader.read(INBOUND.replaceFirst(
                "( +)stat_prefix: (.*)\n", "$1stat_prefix: $2\n$1via: inbound-proxy\n"
                        + "$1server_header_transformation: PASS_THROUGH\n")));
        int own = vertx.createHttpServer().requestHandler(new InboundHandler(
                        req -> req.response().end(String.join("|", req.headers().getAll("via"))), ownSnapshots,
                        info -> { }))
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        HttpResponse<Buffer> r = plain.get(own, "127.0.0.1", "/").putHeader("via", "1.1 caller").send()
                .await(10, TimeUnit.SECONDS);
        assertEquals("1.1 caller, inbound-proxy", r.bodyAsString());
        assertEquals("inbound-proxy", r.getHeader("via"));
        assertNull(r.getHeader("server"), "PASS_THROUGH: the service wrote none");
    }

    @Test
    void istiosRequestAndResponseBytesAreTheBytesOfTheWholeRequestAndResponseAsTheyCrossedTheWire() throws Exception {
        // as Istio's stats read Envoy's downstream bytes meter: heads and bodies, the metadata exchange header too
        var registry = new io.micrometer.prometheusmetrics.PrometheusMeterRegistry(
                io.micrometer.prometheusmetrics.PrometheusConfig.DEFAULT);
        var metrics = dev.inmesh.runtime.stats.MeshMetrics.create(registry, WorkloadInfo.UNKNOWN);
        java.util.concurrent.CountDownLatch recorded = new java.util.concurrent.CountDownLatch(1);
        var socket = rawCaller(req -> req.body().onSuccess(b -> req.response().putHeader("x-a", "b").end("hello")),
                info -> {
                    metrics.record(info);
                    recorded.countDown();
                });
        String request = "POST /x HTTP/1.1\r\nhost: a\r\nx-envoy-peer-metadata: Cg0K\r\ncontent-length: 3\r\n\r\nabc";
        Buffer got = Buffer.buffer();
        socket.handler(got::appendBuffer);
        socket.write(request).await(10, TimeUnit.SECONDS);
        assertTrue(recorded.await(10, TimeUnit.SECONDS));
        for (int i = 0; i < 100 && !got.toString().endsWith("hello"); i++) {
            Thread.sleep(20);
        }
        assertTrue(got.toString().startsWith("HTTP/1.1 200 OK\r\n"), got.toString());
        String scrape = registry.scrape();
        assertTrue(scrape.contains("istio_request_bytes_sum{") && scrape.contains("} " + request.length() + ".0\n"),
                request.length() + " bytes sent: " + scrape);
        assertTrue(scrape.contains("} " + got.length() + ".0\n"), got.length() + " bytes answered: " + scrape);
    }

    @Test
    void aCallerThatLeavesAfterTheResponseHeadIsRecordedWithTheCodeItWasSentAndDc() throws Exception {
        // as Envoy's stream info keeps the code of the head it encoded: Istio's response_code is 200 (with DC), not 0
        java.util.concurrent.CompletableFuture<StreamInfo> recorded = new java.util.concurrent.CompletableFuture<>();
        var socket = rawCaller(req -> req.response().setChunked(true).write("part"), recorded::complete);
        Buffer got = Buffer.buffer();
        socket.handler(got::appendBuffer);
        socket.write("GET /x HTTP/1.1\r\nhost: a\r\n\r\n").await(10, TimeUnit.SECONDS);
        for (int i = 0; i < 250 && !got.toString().contains("part"); i++) {
            Thread.sleep(20);
        }
        assertTrue(got.toString().startsWith("HTTP/1.1 200 OK\r\n"), got.toString());
        socket.close().await(10, TimeUnit.SECONDS);
        StreamInfo info = recorded.get(10, TimeUnit.SECONDS);
        assertEquals(200, info.responseCode(), info.toString());
        assertEquals("DC", dev.inmesh.runtime.stats.ResponseFlag.format(info.responseFlags()));
        var registry = new io.micrometer.prometheusmetrics.PrometheusMeterRegistry(
                io.micrometer.prometheusmetrics.PrometheusConfig.DEFAULT);
        dev.inmesh.runtime.stats.MeshMetrics.create(registry, WorkloadInfo.UNKNOWN).record(info);
        String scrape = registry.scrape();
        assertTrue(scrape.contains("response_code=\"200\"") && scrape.contains("response_flags=\"DC\""), scrape);
    }

    @Test
    void aCallerThatLeavesBeforeAnyAnswerIsRecordedWithCodeZeroAndDc() throws Exception {
        // as Envoy's: no head was encoded, so no code; the stream ended by the caller's disconnect
        java.util.concurrent.CompletableFuture<StreamInfo> recorded = new java.util.concurrent.CompletableFuture<>();
        java.util.concurrent.CountDownLatch arrived = new java.util.concurrent.CountDownLatch(1);
        var socket = rawCaller(req -> arrived.countDown(), recorded::complete);
        socket.write("GET /x HTTP/1.1\r\nhost: a\r\n\r\n").await(10, TimeUnit.SECONDS);
        assertTrue(arrived.await(10, TimeUnit.SECONDS));
        socket.close().await(10, TimeUnit.SECONDS);
        StreamInfo info = recorded.get(10, TimeUnit.SECONDS);
        assertEquals(0, info.responseCode(), info.toString());
        assertEquals("DC", dev.inmesh.runtime.stats.ResponseFlag.format(info.responseFlags()));
        assertEquals("downstream_remote_disconnect", info.responseCodeDetails());
    }

    @Test
    void theServiceSeesXForwardedProtoSetWhenTheCallerSentNoneAndKeptWhenItDid() throws Exception {
        assertEquals("http", seen().getString("x-forwarded-proto"));
        assertEquals("https", seen("x-forwarded-proto", "https").getString("x-forwarded-proto"));
    }

    @Test
    void routeHeaderMatchersSeeThePseudoHeadersMethodAuthorityPathAndScheme() throws Exception {
        var post = plain.post(port, "127.0.0.1", "/pseudo?x=1").send().await(10, TimeUnit.SECONDS);
        assertEquals("pseudo", post.bodyAsString());
        var get = plain.get(port, "127.0.0.1", "/pseudo?x=1").send().await(10, TimeUnit.SECONDS);
        assertEquals(200, get.statusCode());
        assertNotNull(get.bodyAsJsonObject(), "a GET is not the POST route's: the service answers");
    }

    @Test
    void envoysControlHeadersFromTheCallerDoNotReachTheService() throws Exception {
        // a sidecar's inbound request is external to Envoy (no single trusted x-forwarded-for): these go
        JsonObject seen = seen("x-envoy-retry-on", "5xx", "x-envoy-max-retries", "9",
                "x-envoy-upstream-rq-timeout-ms", "1", "x-envoy-upstream-rq-per-try-timeout-ms", "1",
                "x-envoy-expected-rq-timeout-ms", "15000", "x-envoy-internal", "true", "x-envoy-force-trace", "1",
                "x-envoy-retriable-status-codes", "503", "x-envoy-ip-tags", "internal",
                "x-envoy-attempt-count", "2", "x-custom", "kept");
        for (String gone : new String[] {"x-envoy-retry-on", "x-envoy-max-retries", "x-envoy-upstream-rq-timeout-ms",
            "x-envoy-upstream-rq-per-try-timeout-ms", "x-envoy-expected-rq-timeout-ms", "x-envoy-internal",
            "x-envoy-force-trace", "x-envoy-retriable-status-codes", "x-envoy-ip-tags"}) {
            assertNull(seen.getString(gone), gone + " in " + seen);
        }
        // what Envoy does not clean stays: the caller's attempt count, the application's own headers
        assertEquals("2", seen.getString("x-envoy-attempt-count"));
        assertEquals("kept", seen.getString("x-custom"));
    }

    @Test
    void anInternalCallersControlHeadersReachTheServiceAsASidecarsRouterLeavesThem() throws Exception {
        // x-forwarded-for one address of internal_address_config: Envoy keeps the control headers, its router
        // consumes those it reads, and the rest reach the service with x-envoy-internal: true
        String[] control = {"x-envoy-retry-on", "5xx", "x-envoy-upstream-rq-timeout-ms", "1",
            "x-envoy-internal", "no", "x-envoy-force-trace", "1", "x-envoy-ip-tags", "internal"};
        String[] internal = new String[control.length + 2];
        System.arraycopy(control, 0, internal, 0, control.length);
        internal[control.length] = "x-forwarded-for";
        internal[control.length + 1] = "10.0.0.7";
        JsonObject seen = seen(internal);
        assertEquals("true", seen.getString("x-envoy-internal"));
        assertEquals("1", seen.getString("x-envoy-force-trace"));
        assertEquals("internal", seen.getString("x-envoy-ip-tags"));
        assertNull(seen.getString("x-envoy-retry-on"), "the router's own");
        assertNull(seen.getString("x-envoy-upstream-rq-timeout-ms"), "the router's own");
        // two addresses, or one outside the ranges: external, cleaned
        internal[control.length + 1] = "10.0.0.7, 10.0.0.8";
        assertNull(seen(internal).getString("x-envoy-force-trace"));
        internal[control.length + 1] = "192.168.0.7";
        JsonObject outside = seen(internal);
        assertNull(outside.getString("x-envoy-force-trace"));
        assertNull(outside.getString("x-envoy-internal"));
    }

    @Test
    void aForwardedClientCertFromAPlaintextCallerDoesNotReachTheService() throws Exception {
        // without mTLS Envoy's connection manager removes it whatever forward_client_cert_details says (but
        // ALWAYS_FORWARD_ONLY): a plaintext caller cannot claim an identity the application would trust
        JsonObject seen = seen("x-forwarded-client-cert",
                "By=spiffe://cluster.local/ns/default/sa/reviews;URI=spiffe://cluster.local/ns/default/sa/admin");
        assertNull(seen.getString("x-forwarded-client-cert"), seen.encode());
    }

    @Test
    void aCallerThatSentItsPeerMetadataGetsThisWorkloadsInTheResponse() throws Exception {
        WorkloadInfo caller = new WorkloadInfo("productpage-v1", "default", "productpage", "v1");
        HttpResponse<Buffer> r = call("x-envoy-peer-metadata", PeerMetadata.encode(caller, "Kubernetes"),
                "x-envoy-peer-metadata-id", "sidecar~10.1.0.7~productpage-v1-abc.default~default.svc.cluster.local");
        assertEquals(200, r.statusCode());
        // the request's are taken off before the service
        assertNull(r.bodyAsJsonObject().getString("x-envoy-peer-metadata"));
        assertNull(r.bodyAsJsonObject().getString("x-envoy-peer-metadata-id"));
        // the response names this workload, so that the caller's sidecar can label destination_*
        assertNotNull(r.getHeader("x-envoy-peer-metadata-id"));
        WorkloadInfo self = PeerMetadata.decode(r.getHeader("x-envoy-peer-metadata"));
        assertEquals("reviews-v1", self.workload());
        assertEquals("default", self.namespace());
        assertEquals("reviews", self.app());
        assertEquals("v1", self.version());
        // a caller outside the mesh (no metadata exchange) gets none, as from Istio's sidecar
        HttpResponse<Buffer> plain = call();
        assertNull(plain.getHeader("x-envoy-peer-metadata"));
        assertNull(plain.getHeader("x-envoy-peer-metadata-id"));
    }

    @Test
    void theInboundClustersIstioServiceNamesTheDestinationServiceOfTheRequest() throws Exception {
        // Istio's inbound cluster carries the service its port belongs to; its stats label the request with it
        Path file = dir.resolve("inbound-service.yaml");
        Files.writeString(file, INBOUND + """
                  clusters:
                  - name: inbound|9080||
                    type: ORIGINAL_DST
                    lb_policy: CLUSTER_PROVIDED
                    connect_timeout: 10s
                    metadata:
                      filter_metadata:
                        istio:
                          services:
                          - {host: reviews.default.svc.cluster.local, name: reviews, namespace: default}
                """);
        Mesh m = Mesh.create(vertx, new MeshOptions().setWorkloadName("reviews-v1").setApp("reviews")
                .setNamespace("default").setConfigFile(file.toString()).setAdminPort(-1));
        java.util.List<StreamInfo> recorded = new java.util.concurrent.CopyOnWriteArrayList<>();
        ((dev.inmesh.runtime.mesh.DefaultMesh) m).addObserver(recorded::add);
        m.start().await(10, TimeUnit.SECONDS);
        try {
            HttpServer server = vertx.createHttpServer().requestHandler(m.inbound(req -> req.response().end("ok")));
            int p = server.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
            assertEquals(200, plain.get(p, "127.0.0.1", "/").send().await(10, TimeUnit.SECONDS).statusCode());
            for (int i = 0; i < 250 && recorded.isEmpty(); i++) {
                Thread.sleep(20);
            }
            StreamInfo in = recorded.get(0);
            assertEquals("reviews.default.svc.cluster.local", in.destinationService());
            assertEquals("reviews", in.destinationServiceName());
            assertEquals("default", in.destinationServiceNamespace());
            assertEquals("inbound|9080||", in.upstreamCluster());
        } finally {
            m.close().await(10, TimeUnit.SECONDS);
        }
    }

    /** Starts a mesh on the given configuration, whose access log entries go to {@code recorded}. */
    private Mesh startMesh(String name, String config, java.util.List<StreamInfo> recorded) throws Exception {
        Path file = dir.resolve(name);
        Files.writeString(file, config);
        Mesh m = Mesh.create(vertx, new MeshOptions().setWorkloadName("reviews-v1").setApp("reviews")
                .setNamespace("default").setConfigFile(file.toString()).setAdminPort(-1));
        ((dev.inmesh.runtime.mesh.DefaultMesh) m).addObserver(recorded::add);
        m.start().await(10, TimeUnit.SECONDS);
        return m;
    }

    @Test
    void theServiceGetsTheRoutesRewritesAndTheOriginalPathUnlessTheRouterSuppressesEnvoyHeaders() throws Exception {
        String catchAll = "              - {match: {prefix: /}, route: {cluster: \"inbound|9080||\", timeout: 0s}}\n";
        String rewritten = "              - {match: {prefix: /reviews/}, route: {cluster: \"inbound|9080||\", "
                + "prefix_rewrite: /r/, host_rewrite_literal: reviews.internal}}\n";
        String router = "typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}";
        for (boolean suppress : new boolean[] {false, true}) {
            String config = INBOUND.replace(catchAll, rewritten + catchAll);
            if (suppress) {
                config = config.replace(router, router.replace("Router}", "Router, suppress_envoy_headers: true}"));
            }
            java.util.List<StreamInfo> recorded = new java.util.concurrent.CopyOnWriteArrayList<>();
            Mesh m = startMesh("rewrites-" + suppress + ".yaml", config, recorded);
            try {
                HttpServer server = vertx.createHttpServer().requestHandler(m.inbound(req -> req.response().end(
                        new JsonObject().put("uri", req.uri()).put("path", req.path()).put("query", req.query())
                                .put("param", req.getParam("x")).put("authority", req.authority().toString())
                                .put("host", req.headers().get("host")).put("absolute", req.absoluteURI())
                                .put("original", req.headers().get("x-envoy-original-path")).encode())));
                int p = server.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
                JsonObject seen = plain.get(p, "127.0.0.1", "/reviews/0?x=1").send().await(10, TimeUnit.SECONDS)
                        .bodyAsJsonObject();
                assertEquals("/r/0?x=1", seen.getString("uri"));
                assertEquals("/r/0", seen.getString("path"));
                assertEquals("x=1", seen.getString("query"));
                assertEquals("1", seen.getString("param"));
                assertEquals("reviews.internal", seen.getString("authority"));
                assertEquals("reviews.internal", seen.getString("host"));
                assertEquals("http://reviews.internal/r/0?x=1", seen.getString("absolute"));
                assertEquals(suppress ? null : "/reviews/0?x=1", seen.getString("original"));
                // as the router's requests: the original path is recorded while x-envoy-original-path keeps it
                for (int i = 0; i < 250 && recorded.isEmpty(); i++) {
                    Thread.sleep(20);
                }
                assertEquals(suppress ? "/r/0?x=1" : "/reviews/0?x=1", recorded.get(0).path(), "suppress: " + suppress);
                // a route without rewrites leaves the request as it came
                JsonObject other = plain.get(p, "127.0.0.1", "/ratings/0").send().await(10, TimeUnit.SECONDS)
                        .bodyAsJsonObject();
                assertEquals("/ratings/0", other.getString("uri"));
                assertEquals("127.0.0.1:" + p, other.getString("host"));
                assertNull(other.getString("original"));
                server.close().await(10, TimeUnit.SECONDS);
            } finally {
                m.close().await(10, TimeUnit.SECONDS);
            }
        }
    }

    @Test
    void aRewriteThatSetsAQueryGivesTheServiceItsParameters() throws Exception {
        String catchAll = "              - {match: {prefix: /}, route: {cluster: \"inbound|9080||\", timeout: 0s}}\n";
        String rewritten = "              - {match: {prefix: /legacy}, route: {cluster: \"inbound|9080||\", "
                + "prefix_rewrite: \"/v2?from=legacy\"}}\n";
        Mesh m = startMesh("query-rewrite.yaml", INBOUND.replace(catchAll, rewritten + catchAll),
                new java.util.concurrent.CopyOnWriteArrayList<>());
        try {
            HttpServer server = vertx.createHttpServer().requestHandler(m.inbound(req -> req.response().end(
                    new JsonObject().put("query", req.query()).put("param", req.getParam("from"))
                            .put("params", req.params().size()).put("same", req.params() == req.params())
                            .put("semicolon", req.params(true).get("from")).encode())));
            int p = server.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
            JsonObject seen = plain.get(p, "127.0.0.1", "/legacy").send().await(10, TimeUnit.SECONDS)
                    .bodyAsJsonObject();
            assertEquals("from=legacy", seen.getString("query"));
            // the parameters are the rewritten query's, as the service behind a sidecar reads them
            assertEquals("legacy", seen.getString("param"));
            assertEquals(1, seen.getInteger("params"));
            assertEquals(true, seen.getBoolean("same"));
            assertEquals("legacy", seen.getString("semicolon"));
            server.close().await(10, TimeUnit.SECONDS);
        } finally {
            m.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void aRoutesCorsPolicyAnswersPreflightsBeforeTheServiceAndMarksItsAnswers() throws Exception {
        String catchAll = "              - {match: {prefix: /}, route: {cluster: \"inbound|9080||\", timeout: 0s}}\n";
        String policy = "{\"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy, "
                + "allow_origin_string_match: [{prefix: \"https://shop.\"}], allow_methods: PUT, "
                + "expose_headers: x-total}";
        java.util.List<StreamInfo> recorded = new java.util.concurrent.CopyOnWriteArrayList<>();
        Mesh m = startMesh("cors.yaml", INBOUND.replace("          http_filters:\n", "          http_filters:\n"
                + "          - {name: envoy.filters.http.cors, typed_config: "
                + "{\"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}}\n")
                .replace(catchAll, "              - {match: {prefix: /}, route: {cluster: \"inbound|9080||\"}, "
                        + "typed_per_filter_config: {envoy.filters.http.cors: " + policy + "}}\n"), recorded);
        java.util.concurrent.atomic.AtomicInteger served = new java.util.concurrent.atomic.AtomicInteger();
        try {
            HttpServer server = vertx.createHttpServer().requestHandler(m.inbound(req -> {
                served.incrementAndGet();
                req.response().putHeader("access-control-allow-origin", "*").end("served");
            }));
            int p = server.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
            var preflight = plain.request(io.vertx.core.http.HttpMethod.OPTIONS, p, "127.0.0.1", "/x")
                    .putHeader("origin", "https://shop.example").putHeader("access-control-request-method", "PUT")
                    .send().await(10, TimeUnit.SECONDS);
            assertEquals(200, preflight.statusCode());
            assertEquals("https://shop.example", preflight.getHeader("access-control-allow-origin"));
            assertEquals("PUT", preflight.getHeader("access-control-allow-methods"));
            assertEquals("x-total", preflight.getHeader("access-control-expose-headers"));
            assertEquals(0, served.get());
            var actual = plain.get(p, "127.0.0.1", "/x").putHeader("origin", "https://shop.example")
                    .send().await(10, TimeUnit.SECONDS);
            assertEquals("served", actual.bodyAsString());
            // over the service's own header, as Envoy's filter sets it
            assertEquals("https://shop.example", actual.getHeader("access-control-allow-origin"));
            assertEquals("x-total", actual.getHeader("access-control-expose-headers"));
            for (int i = 0; i < 250 && recorded.size() < 2; i++) {
                Thread.sleep(20);
            }
            assertEquals("cors_response", recorded.get(0).responseCodeDetails());
        } finally {
            m.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void aLocalRateLimitRefusalAfterTheCorsFilterCarriesItsHeadersAsEnvoysLocalReplyPassesThatFilter()
            throws Exception {
        String catchAll = "              - {match: {prefix: /}, route: {cluster: \"inbound|9080||\", timeout: 0s}}\n";
        String policy = "{\"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy, "
                + "allow_origin_string_match: [{exact: \"https://shop.example\"}], expose_headers: x-total}";
        // the CORS filter, then the local rate limit filter where Istio's INSERT_BEFORE the router puts it
        String filters = "          - {name: envoy.filters.http.cors, typed_config: "
                + "{\"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}}\n"
                + dev.inmesh.runtime.xds.IstioRateLimit.enforced("rl", 1, "").indent(10);
        java.util.List<StreamInfo> recorded = new java.util.concurrent.CopyOnWriteArrayList<>();
        String route = "              - {match: {prefix: /}, route: {cluster: \"inbound|9080||\"}, "
                + "response_headers_to_add: [{header: {key: x-route, value: r}}], "
                + "typed_per_filter_config: {envoy.filters.http.cors: " + policy + "}}\n";
        Mesh m = startMesh("cors-rl.yaml", INBOUND.replace("          http_filters:\n", "          http_filters:\n"
                + filters).replace(catchAll, route), recorded);
        try {
            HttpServer server = vertx.createHttpServer().requestHandler(m.inbound(req -> req.response().end("served")));
            int p = server.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
            var first = plain.get(p, "127.0.0.1", "/x").putHeader("origin", "https://shop.example")
                    .send().await(10, TimeUnit.SECONDS);
            assertEquals("served", first.bodyAsString());
            assertEquals("https://shop.example", first.getHeader("access-control-allow-origin"));
            var refused = plain.get(p, "127.0.0.1", "/x").putHeader("origin", "https://shop.example")
                    .send().await(10, TimeUnit.SECONDS);
            assertEquals(429, refused.statusCode());
            assertEquals("local_rate_limited", refused.bodyAsString());
            // the CORS filter saw the request before the refusal: its answer lets the page read the 429
            assertEquals("https://shop.example", refused.getHeader("access-control-allow-origin"));
            assertEquals("x-total", refused.getHeader("access-control-expose-headers"));
            // as Envoy's local reply: the route entry's response header rules too
            assertEquals("r", refused.getHeader("x-route"));
            var other = plain.get(p, "127.0.0.1", "/x").putHeader("origin", "https://evil.example")
                    .send().await(10, TimeUnit.SECONDS);
            assertEquals(429, other.statusCode());
            assertNull(other.getHeader("access-control-allow-origin"));
        } finally {
            m.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void aCorsFilterBeforeTheFaultFilterAnswersPreflightsBeforeAnyFaultAndMarksTheAbort() throws Exception {
        String catchAll = "              - {match: {prefix: /}, route: {cluster: \"inbound|9080||\", timeout: 0s}}\n";
        String policy = "{\"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy, "
                + "allow_origin_string_match: [{exact: \"https://shop.example\"}], allow_methods: PUT}";
        String abort = "{\"@type\": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault, "
                + "abort: {http_status: 503, percentage: {numerator: 100}}}";
        // the CORS filter first, as older Istio releases wrote them
        String filters = "          - {name: envoy.filters.http.cors, typed_config: "
                + "{\"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}}\n"
                + "          - {name: envoy.filters.http.fault, typed_config: "
                + "{\"@type\": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault}}\n";
        String route = "              - {match: {prefix: /}, route: {cluster: \"inbound|9080||\"}, "
                + "typed_per_filter_config: {envoy.filters.http.cors: " + policy + ", envoy.filters.http.fault: "
                + abort + "}}\n";
        java.util.List<StreamInfo> recorded = new java.util.concurrent.CopyOnWriteArrayList<>();
        Mesh m = startMesh("cors-fault.yaml", INBOUND.replace("          http_filters:\n",
                "          http_filters:\n" + filters).replace(catchAll, route), recorded);
        java.util.concurrent.atomic.AtomicInteger served = new java.util.concurrent.atomic.AtomicInteger();
        try {
            int p = serveCounting(m, served);
            var preflight = plain.request(io.vertx.core.http.HttpMethod.OPTIONS, p, "127.0.0.1", "/x")
                    .putHeader("origin", "https://shop.example").putHeader("access-control-request-method", "PUT")
                    .send().await(10, TimeUnit.SECONDS);
            assertEquals(200, preflight.statusCode());
            assertEquals("PUT", preflight.getHeader("access-control-allow-methods"));
            var aborted = plain.get(p, "127.0.0.1", "/x").putHeader("origin", "https://shop.example")
                    .send().await(10, TimeUnit.SECONDS);
            assertEquals(503, aborted.statusCode());
            assertEquals("fault filter abort", aborted.bodyAsString());
            assertEquals("https://shop.example", aborted.getHeader("access-control-allow-origin"));
            assertEquals(0, served.get());
        } finally {
            m.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void aRoutesFaultDelaysOrAbortsTheRequestBeforeTheServiceSeesIt() throws Exception {
        String fault = "                typed_per_filter_config:\n                  envoy.filters.http.fault:\n"
                + "                    \"@type\": "
                + "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault\n";
        String catchAll = "              - {match: {prefix: /}, route: {cluster: \"inbound|9080||\", timeout: 0s}}\n";
        java.util.List<StreamInfo> recorded = new java.util.concurrent.CopyOnWriteArrayList<>();
        Mesh m = startMesh("fault.yaml", INBOUND.replace("          http_filters:\n", """
                          http_filters:
                          - name: envoy.filters.http.fault
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                """).replace(catchAll, "              - match: {prefix: /broken}\n"
                + "                route: {cluster: \"inbound|9080||\"}\n" + fault
                + "                    abort: {http_status: 503, percentage: {numerator: 100}}\n"
                + "                response_headers_to_add: [{header: {key: x-route, value: r}}]\n"
                + "              - match: {prefix: /moved}\n"
                + "                redirect: {path_redirect: /new}\n" + fault
                + "                    abort: {http_status: 503, percentage: {numerator: 100}}\n"
                + "                response_headers_to_add: [{header: {key: x-route, value: r}}]\n"
                + "              - match: {prefix: /slow}\n"
                + "                route: {cluster: \"inbound|9080||\"}\n" + fault
                + "                    delay: {fixed_delay: 0.3s, percentage: {numerator: 100}}\n" + catchAll),
                recorded);
        java.util.concurrent.atomic.AtomicInteger served = new java.util.concurrent.atomic.AtomicInteger();
        try {
            HttpServer server = vertx.createHttpServer().requestHandler(m.inbound(req -> {
                served.incrementAndGet();
                req.body().onSuccess(b -> req.response().end("got " + b));
            }));
            int p = server.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
            var broken = plain.get(p, "127.0.0.1", "/broken").send().await(10, TimeUnit.SECONDS);
            assertEquals(503, broken.statusCode());
            assertEquals("fault filter abort", broken.bodyAsString());
            assertEquals("r", broken.getHeader("x-route"));
            // as Envoy's local reply: the route entry's response header rules, which a redirect route has none of
            var moved = plain.get(p, "127.0.0.1", "/moved").send().await(10, TimeUnit.SECONDS);
            assertEquals(503, moved.statusCode());
            assertNull(moved.getHeader("x-route"));
            assertEquals(0, served.get());
            long t0 = System.nanoTime();
            // the body the caller sent during the delay reaches the service after it
            var slow = plain.post(p, "127.0.0.1", "/slow").sendBuffer(Buffer.buffer("payload"))
                    .await(10, TimeUnit.SECONDS);
            long took = (System.nanoTime() - t0) / 1_000_000;
            assertEquals("got payload", slow.bodyAsString());
            assertTrue(took >= 300 && took < 4_000, "took " + took + " ms");
            for (int i = 0; i < 250 && recorded.size() < 3; i++) {
                Thread.sleep(20);
            }
            assertEquals(java.util.List.of("FI", "FI", "DI"), recorded.stream()
                    .map(i -> dev.inmesh.runtime.stats.ResponseFlag.format(i.responseFlags())).toList());
            assertEquals("fault_filter_abort", recorded.get(0).responseCodeDetails());
        } finally {
            m.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void headerFaultsForTheDownstreamNodesTheyNameAbortOrDelayWithWhatTheRequestsHeadersSay() throws Exception {
        String catchAll = "              - {match: {prefix: /}, route: {cluster: \"inbound|9080||\", timeout: 0s}}\n";
        Mesh m = startMesh("header-fault.yaml", INBOUND.replace("          http_filters:\n", """
                          http_filters:
                          - name: envoy.filters.http.fault
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                """).replace(catchAll, "              - match: {prefix: /}\n"
                + "                route: {cluster: \"inbound|9080||\"}\n"
                + "                typed_per_filter_config:\n                  envoy.filters.http.fault:\n"
                + "                    \"@type\": "
                + "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault\n"
                + "                    abort: {header_abort: {}, percentage: {numerator: 100}}\n"
                + "                    delay: {header_delay: {}, percentage: {numerator: 100}}\n"
                + "                    downstream_nodes: [productpage]\n"), new java.util.ArrayList<>());
        java.util.concurrent.atomic.AtomicInteger served = new java.util.concurrent.atomic.AtomicInteger();
        try {
            int p = serveCounting(m, served);
            // another node's request is left out
            var other = plain.get(p, "127.0.0.1", "/").putHeader("x-envoy-downstream-service-node", "ratings")
                    .putHeader("x-envoy-fault-abort-request", "418").send().await(10, TimeUnit.SECONDS);
            assertEquals(200, other.statusCode());
            var aborted = plain.get(p, "127.0.0.1", "/").putHeader("x-envoy-downstream-service-node", "productpage")
                    .putHeader("x-envoy-fault-abort-request", "418").send().await(10, TimeUnit.SECONDS);
            assertEquals(418, aborted.statusCode());
            assertEquals("fault filter abort", aborted.bodyAsString());
            assertEquals(1, served.get());
            long t0 = System.nanoTime();
            var delayed = plain.get(p, "127.0.0.1", "/").putHeader("x-envoy-downstream-service-node", "productpage")
                    .putHeader("x-envoy-fault-delay-request", "300").send().await(10, TimeUnit.SECONDS);
            long took = (System.nanoTime() - t0) / 1_000_000;
            assertEquals("served", delayed.bodyAsString());
            assertTrue(took >= 300 && took < 4_000, "took " + took + " ms");
        } finally {
            m.close().await(10, TimeUnit.SECONDS);
        }
    }

    /** Serves {@code served} through the mesh's inbound handler on a loopback port, counting requests; its port. */
    private int serveCounting(Mesh m, java.util.concurrent.atomic.AtomicInteger served) throws Exception {
        HttpServer server = vertx.createHttpServer().requestHandler(m.inbound(req -> {
            served.incrementAndGet();
            req.response().end("served");
        }));
        return server.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }
}
