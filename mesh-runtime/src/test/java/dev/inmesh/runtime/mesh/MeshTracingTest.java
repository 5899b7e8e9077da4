package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.tracing.TestOtlpCollector;
import dev.inmesh.runtime.tracing.TraceReporting;
import dev.inmesh.runtime.xds.IstioTracing;
import io.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
import io.opentelemetry.proto.trace.v1.Span;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Tracing in-JVM, as istiod configures it with a Zipkin provider: the mesh client's outbound requests get client
 * spans that are children of the context the application passes on, {@code mesh.inbound} gives server spans whose
 * context the application sees, and the spans reach a Zipkin collector (a Vert.x server on loopback) as v2 JSON
 * through the collector's cluster; a request its caller did not sample goes on with {@code x-b3-sampled: 0} and no
 * span. With istiod's OpenTelemetry provider, {@code mesh.inbound} continues the caller's W3C trace, the mesh client's
 * request made while handling it is its child, whose {@code traceparent} the next hop receives, and both spans reach
 * an OTLP collector (grpc-java on loopback) over gRPC through the collector's cluster, or over OTLP/HTTP, under the
 * tracer's {@code service.name}.
 */
@Timeout(60)
class MeshTracingTest {
    private static final String TRACE_ID = "463ac35c9f6413ad48485a3953bb6124";
    private static final String CALLER_SPAN = "a2fb4a1d1a96d312";
    private static final String W3C_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
    private static final String W3C_CALLER = "00f067aa0ba902b7";

    @TempDir
    Path dir;
    final Vertx vertx = Vertx.vertx();
    /** A plain client (not the mesh's), held for the whole test: Vert.x closes a client no longer referenced. */
    final WebClient plain = WebClient.create(vertx);
    /** The reports the collector received, each a JSON list of spans. */
    final List<JsonArray> reports = new CopyOnWriteArrayList<>();
    /** The headers of the requests the application received. */
    final List<MultiMap> seen = new CopyOnWriteArrayList<>();
    Mesh mesh;
    TestOtlpCollector otlp;

    @AfterEach
    void stop() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        if (otlp != null) {
            otlp.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** A Zipkin collector: takes v2 JSON at {@code /api/v2/spans} with 202, as Zipkin does. */
    private int collector() {
        return vertx.createHttpServer().requestHandler(req -> req.body().onSuccess(b -> {
            if (req.method().name().equals("POST") && req.path().equals("/api/v2/spans")
                    && "zipkin.istio-system.svc.cluster.local".equals(req.authority().host())
                    && "application/json".equals(req.getHeader("content-type"))) {
                reports.add(new JsonArray(b));
                req.response().setStatusCode(202).end();
            } else {
                req.response().setStatusCode(400).end();
            }
        })).listen(0, "127.0.0.1").await().actualPort();
    }

    /** The application (ratings), which keeps the headers it received. */
    private int app() {
        return vertx.createHttpServer().requestHandler(req -> {
            seen.add(MultiMap.caseInsensitiveMultiMap().addAll(req.headers()));
            req.response().end("ratings");
        }).listen(0, "127.0.0.1").await().actualPort();
    }

    /**
     * An outbound listener for ratings:9080 and a {@code virtualInbound} for this workload, each with istiod's
     * tracing and a route decorator as istiod writes it, and the collector's cluster.
     */
    private static String config(int ratings, int collector, double sampling) {
        return config(ratings, IstioTracing.tracing(sampling, IstioTracing.CLUSTER),
                IstioTracing.collectorCluster(collector));
    }

    /** As {@link #config(int, int, double)}, with {@code tracing} and the collector's cluster {@code collector}. */
    private static String config(int ratings, String tracing, String collector) {
        return "static_resources:\n  listeners:\n" + (IstioTracing.listener("0.0.0.0_9080", "0.0.0.0", 9080,
                        "OUTBOUND", tracing, "ratings.default.svc.cluster.local:9080/*",
                        "outbound|9080||ratings.default.svc.cluster.local")
                + IstioTracing.listener("virtualInbound", "0.0.0.0", 15006, "INBOUND", tracing,
                        "reviews.default.svc.cluster.local:9080/*", "inbound|9080||")).indent(2)
                + "  clusters:\n" + (IstioTracing.staticCluster("outbound|9080||ratings.default.svc.cluster.local",
                        ratings) + collector).indent(2);
    }

    private void start(String config) throws Exception {
        Path file = Files.writeString(dir.resolve("mesh.yaml"), config);
        mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("reviews-v1").setApp("reviews")
                .setNamespace("default").setPodIp("127.0.0.1").setPodName("reviews-v1-abc")
                .setConfigFile(file.toString()).setAdminPort(0));
        mesh.start().await(10, TimeUnit.SECONDS);
    }

    private TraceReporting tracing() {
        return ((DefaultMesh) mesh).tracing();
    }

    private static void await(BooleanSupplier done, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!done.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("not within 10 s: " + what);
            }
            Thread.sleep(20);
        }
    }

    private List<JsonObject> spans() {
        List<JsonObject> all = new ArrayList<>();
        for (JsonArray r : reports) {
            for (int i = 0; i < r.size(); i++) {
                all.add(r.getJsonObject(i));
            }
        }
        return all;
    }

    @Test
    void theMeshClientsRequestIsAClientSpanChildOfTheContextTheApplicationPassedOn() throws Exception {
        int ratings = app();
        start(config(ratings, collector(), 100));
        HttpResponse<Buffer> r = mesh.webClient().get(9080, "ratings", "/ratings/0")
                .putHeader("x-b3-traceid", TRACE_ID).putHeader("x-b3-spanid", CALLER_SPAN)
                .putHeader("x-b3-sampled", "1").putHeader("user-agent", "productpage")
                .send().await(10, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode());

        MultiMap up = seen.get(0);
        assertEquals(TRACE_ID, up.get("x-b3-traceid"), "the caller's trace goes on");
        assertEquals(CALLER_SPAN, up.get("x-b3-parentspanid"), "the caller's span is the parent");
        String spanId = up.get("x-b3-spanid");
        assertEquals(16, spanId.length());
        assertNotEquals(CALLER_SPAN, spanId, "a span of its own (shared_span_context: false)");
        assertEquals("1", up.get("x-b3-sampled"));
        assertEquals("ratings.default.svc.cluster.local:9080/*", up.get("x-envoy-decorator-operation"),
                "the route's operation names the next hop's server span");

        tracing().flush();
        await(() -> !reports.isEmpty(), "a report to the collector");
        JsonObject span = spans().get(0);
        assertEquals(TRACE_ID, span.getString("traceId"));
        assertEquals(spanId, span.getString("id"));
        assertEquals(CALLER_SPAN, span.getString("parentId"));
        assertEquals("CLIENT", span.getString("kind"));
        assertEquals("ratings.default.svc.cluster.local:9080/*", span.getString("name"));
        assertEquals(new JsonObject().put("serviceName", "reviews.default").put("ipv4", "127.0.0.1").put("port", 0),
                span.getJsonObject("localEndpoint"));
        JsonObject tags = span.getJsonObject("tags");
        assertEquals("GET", tags.getString("http.method"));
        assertEquals("http://ratings:9080/ratings/0", tags.getString("http.url"));
        assertEquals("200", tags.getString("http.status_code"));
        assertEquals("outbound|9080||ratings.default.svc.cluster.local", tags.getString("upstream_cluster"));
        assertFalse(tags.containsKey("upstream_address"), "Envoy tags the host only on an upstream span");
        assertEquals("productpage", tags.getString("user_agent"));
        assertEquals("proxy", tags.getString("component"));
        assertEquals("-", tags.getString("response_flags"));
        assertEquals("reviews", tags.getString("istio.canonical_service"));
        assertEquals(up.get("x-request-id"), tags.getString("guid:x-request-id"));
        assertEquals('9', up.get("x-request-id").charAt(14), "the request id says: sampled");
        assertNull(tags.getString("error"));
        await(() -> tracing().stats().values().get("tracing.zipkin.reports_sent") == 1, "reports_sent 1");
        assertEquals(1L, tracing().stats().values().get("tracing.zipkin.spans_sent"));
    }

    /**
     * Envoy's {@code %TRACE_ID%} is the request's span's trace id, and {@code %STREAM_ID%} its request id (Envoy's
     * HTTP stream id provider).
     */
    @Test
    void anAccessLogsTraceIdIsTheRequestsTraceAndItsStreamIdTheRequestId() throws Exception {
        start(config(app(), collector(), 100));
        List<dev.inmesh.runtime.stats.StreamInfo> recorded = new CopyOnWriteArrayList<>();
        ((DefaultMesh) mesh).addObserver(recorded::add);
        var format = dev.inmesh.runtime.accesslog.CommandFormat.compile("%TRACE_ID% %STREAM_ID%", false);
        mesh.webClient().get(9080, "ratings", "/ratings/0").putHeader("x-b3-traceid", TRACE_ID)
                .putHeader("x-b3-spanid", CALLER_SPAN).putHeader("x-b3-sampled", "1").send()
                .await(10, TimeUnit.SECONDS);
        await(() -> recorded.size() == 1, "the request recorded");
        var traced = recorded.get(0);
        assertEquals(TRACE_ID + " " + seen.get(0).get("x-request-id"),
                format.format(dev.inmesh.runtime.accesslog.AccessLogEntry.of(traced, traced.log())));
    }

    @Test
    void aRequestItsCallerDidNotSampleGoesOnWithItsDecisionAndNoSpan() throws Exception {
        start(config(app(), collector(), 100));
        HttpResponse<Buffer> r = mesh.webClient().get(9080, "ratings", "/ratings/0")
                .putHeader("x-b3-traceid", TRACE_ID).putHeader("x-b3-spanid", CALLER_SPAN)
                .putHeader("x-b3-sampled", "0").send().await(10, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode());
        MultiMap up = seen.get(0);
        assertEquals("0", up.get("x-b3-sampled"));
        assertEquals(TRACE_ID, up.get("x-b3-traceid"));
        assertEquals(CALLER_SPAN, up.get("x-b3-parentspanid"));
        tracing().flush();
        assertEquals(0L, tracing().stats().values().get("tracing.zipkin.spans_sent"));
        assertTrue(reports.isEmpty());
    }

    @Test
    void aReportThatCannotConnectIsDroppedAndCountedInTheCollectorsClusterAsEnvoysAsyncClientAnswersIt()
            throws Exception {
        int closed;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            closed = s.getLocalPort();
        }
        start(config(app(), closed, 100));
        assertEquals(200, mesh.webClient().get(9080, "ratings", "/ratings/0").send().await(10, TimeUnit.SECONDS)
                .statusCode());
        tracing().flush();
        // Envoy's async client answers a failed connection itself (503), which its reporter counts as dropped
        await(() -> tracing().stats().values().get("tracing.zipkin.reports_dropped") == 1, "reports_dropped 1");
        assertEquals(0L, tracing().stats().values().get("tracing.zipkin.reports_failed"));
        String zipkin = MeshInboundRbacTest.admin(plain, mesh.adminPort(),
                "/stats?filter=zipkin.istio-system.svc.cluster.local.upstream_cx_connect_fail",
                "zipkin.istio-system.svc.cluster.local.upstream_cx_connect_fail: 1\n");
        assertTrue(zipkin.contains("|zipkin.istio-system.svc.cluster.local.upstream_cx_connect_fail: 1\n"), zipkin);
    }

    @Test
    void fiveSpansAreSentInOneReportWithoutWaitingForTheFlushTimer() throws Exception {
        start(config(app(), collector(), 100));
        WebClient client = mesh.webClient();
        for (int i = 0; i < 5; i++) {
            assertEquals(200, client.get(9080, "ratings", "/ratings/" + i).send().await(10, TimeUnit.SECONDS)
                    .statusCode());
        }
        // Envoy's min_flush_spans: the fifth span sends the buffer
        await(() -> spans().size() == 5, "five spans in one report");
        assertEquals(1, reports.size());
        String stats = MeshInboundRbacTest.admin(plain, mesh.adminPort(), "/stats?filter=tracing.zipkin",
                "tracing.zipkin.reports_sent: 1");
        assertTrue(stats.contains("tracing.zipkin.spans_sent: 5\n")
                && stats.contains("tracing.zipkin.timer_flushed: 0\n")
                && stats.contains("tracing.zipkin.reports_failed: 0\n"), stats);
        // the report went through the collector's cluster, as Envoy's async client's request: counted there
        String zipkin = MeshInboundRbacTest.admin(plain, mesh.adminPort(),
                "/stats?filter=zipkin.istio-system.svc.cluster.local.upstream_rq",
                "zipkin.istio-system.svc.cluster.local.upstream_rq_completed: 1\n");
        assertTrue(zipkin.contains("|zipkin.istio-system.svc.cluster.local.upstream_rq_total: 1\n")
                && zipkin.contains("|zipkin.istio-system.svc.cluster.local.upstream_rq_202: 1\n"), zipkin);
        for (JsonObject s : spans()) {
            assertNull(s.getString("parentId"), "a trace the mesh client began: root spans");
            assertEquals(32, s.getString("traceId").length(), "trace_id_128bit");
            assertEquals(s.getString("traceId").substring(16), s.getString("id"));
        }
    }

    @Test
    void randomSamplingOfZeroTracesNothingButStillPropagatesTheDecision() throws Exception {
        start(config(app(), collector(), 0));
        assertEquals(200, mesh.webClient().get(9080, "ratings", "/").send().await(10, TimeUnit.SECONDS)
                .statusCode());
        MultiMap up = seen.get(0);
        assertEquals("0", up.get("x-b3-sampled"));
        assertEquals(32, up.get("x-b3-traceid").length());
        assertEquals('4', up.get("x-request-id").charAt(14), "the request id says: not traced");
        tracing().flush();
        assertEquals(0L, tracing().stats().values().get("tracing.zipkin.spans_sent"));
    }

    @Test
    void meshInboundGivesAServerSpanWhoseContextTheApplicationSees() throws Exception {
        start(config(app(), collector(), 100));
        int port = vertx.createHttpServer().requestHandler(mesh.inbound(req -> {
            seen.add(MultiMap.caseInsensitiveMultiMap().addAll(req.headers()));
            req.response().end("reviews");
        })).listen(0, "127.0.0.1").await().actualPort();
        HttpResponse<Buffer> r = plain.get(port, "127.0.0.1", "/reviews/0").putHeader("x-b3-traceid", TRACE_ID)
                .putHeader("x-b3-spanid", CALLER_SPAN).putHeader("x-b3-sampled", "1")
                .putHeader("x-envoy-decorator-operation", "reviews.default.svc.cluster.local:9080/*")
                .send().await(10, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode());
        MultiMap app = seen.get(0);
        assertEquals(TRACE_ID, app.get("x-b3-traceid"));
        assertEquals(CALLER_SPAN, app.get("x-b3-parentspanid"));
        String spanId = app.get("x-b3-spanid");
        assertNotEquals(CALLER_SPAN, spanId);
        assertNull(app.get("x-envoy-decorator-operation"), "taken by the server span, not passed on");

        tracing().flush();
        await(() -> !reports.isEmpty(), "a report to the collector");
        JsonObject span = spans().get(0);
        assertEquals("SERVER", span.getString("kind"));
        assertEquals(spanId, span.getString("id"));
        assertEquals(CALLER_SPAN, span.getString("parentId"));
        assertEquals(TRACE_ID, span.getString("traceId"));
        assertEquals("reviews.default.svc.cluster.local:9080/*", span.getString("name"));
        JsonObject tags = span.getJsonObject("tags");
        assertEquals("200", tags.getString("http.status_code"));
        assertEquals("inbound|9080||", tags.getString("upstream_cluster"));
        assertEquals("127.0.0.1", tags.getString("peer.address"), "the caller's IP, without its port");
        assertEquals("sidecar~127.0.0.1~reviews-v1-abc.default~default.svc.cluster.local", tags.getString("node_id"));
    }

    /**
     * An application that does not pass the B3 headers on: the mesh client's request made while {@code mesh.inbound}
     * handles a traced request (on its Vert.x context) is still a child of the server span, in the same trace.
     */
    @Test
    void theMeshClientsRequestMadeWhileHandlingATracedOneIsAChildOfItsServerSpan() throws Exception {
        start(config(app(), collector(), 100));
        WebClient client = mesh.webClient();
        List<MultiMap> inbound = new CopyOnWriteArrayList<>();
        int port = vertx.createHttpServer().requestHandler(mesh.inbound(req -> {
            inbound.add(MultiMap.caseInsensitiveMultiMap().addAll(req.headers()));
            client.get(9080, "ratings", "/ratings/0").send().onComplete(ar -> req.response()
                    .end(ar.succeeded() ? ar.result().bodyAsString() : "failed"));
        })).listen(0, "127.0.0.1").await().actualPort();
        HttpResponse<Buffer> r = plain.get(port, "127.0.0.1", "/reviews/0").putHeader("x-b3-traceid", TRACE_ID)
                .putHeader("x-b3-spanid", CALLER_SPAN).putHeader("x-b3-sampled", "1")
                .send().await(10, TimeUnit.SECONDS);
        assertEquals("ratings", r.bodyAsString());
        String serverSpan = inbound.get(0).get("x-b3-spanid");
        MultiMap toRatings = seen.get(0);
        assertEquals(TRACE_ID, toRatings.get("x-b3-traceid"), "the inbound request's trace");
        assertEquals(serverSpan, toRatings.get("x-b3-parentspanid"), "the server span is the parent");
        assertNotEquals(serverSpan, toRatings.get("x-b3-spanid"));

        tracing().flush();
        await(() -> spans().size() == 2, "the server and the client span");
        JsonObject clientSpan = spans().stream().filter(s -> s.getString("kind").equals("CLIENT")).findFirst().get();
        assertEquals(serverSpan, clientSpan.getString("parentId"));
        assertEquals(TRACE_ID, clientSpan.getString("traceId"));

        // outside a traced request's context (a plain call from the test thread), a trace of its own
        seen.clear();
        client.get(9080, "ratings", "/ratings/1").send().await(10, TimeUnit.SECONDS);
        assertNotEquals(TRACE_ID, seen.get(0).get("x-b3-traceid"));
        assertNull(seen.get(0).get("x-b3-parentspanid"));
    }

    /**
     * The decorated operation travels back as Envoy's does: the server span's route names it in the response's
     * {@code x-envoy-decorator-operation}, and a client span takes its name from the upstream's, which the application
     * does not see.
     */
    @Test
    void theServerSpansOperationGoesBackInTheResponseAndNamesTheClientSpan() throws Exception {
        int ratings = vertx.createHttpServer().requestHandler(req -> req.response()
                .putHeader("x-envoy-decorator-operation", "ratings-v1:9080/ratings/*").end("ratings"))
                .listen(0, "127.0.0.1").await().actualPort();
        start(config(ratings, collector(), 100));
        HttpResponse<Buffer> r = mesh.webClient().get(9080, "ratings", "/ratings/0").send()
                .await(10, TimeUnit.SECONDS);
        assertNull(r.getHeader("x-envoy-decorator-operation"), "taken by the client span");
        int port = vertx.createHttpServer().requestHandler(mesh.inbound(req -> req.response().end("reviews")))
                .listen(0, "127.0.0.1").await().actualPort();
        HttpResponse<Buffer> in = plain.get(port, "127.0.0.1", "/reviews/0").send().await(10, TimeUnit.SECONDS);
        assertEquals("reviews.default.svc.cluster.local:9080/*", in.getHeader("x-envoy-decorator-operation"));

        tracing().flush();
        await(() -> spans().size() == 2, "the client and the server span");
        JsonObject clientSpan = spans().stream().filter(s -> s.getString("kind").equals("CLIENT")).findFirst().get();
        assertEquals("ratings-v1:9080/ratings/*", clientSpan.getString("name"));
    }

    /**
     * As Envoy's connection manager, an outbound one that traces takes the upstream's
     * {@code x-envoy-decorator-operation} off the response also for a request that got no span, its trace context
     * being malformed: the header names a client span and is not the application's.
     */
    @Test
    void theUpstreamsDecoratedOperationIsTakenOffTheResponseOfARequestWithoutASpan() throws Exception {
        int ratings = vertx.createHttpServer().requestHandler(req -> req.response()
                .putHeader("x-envoy-decorator-operation", "ratings-v1:9080/ratings/*").end("ratings"))
                .listen(0, "127.0.0.1").await().actualPort();
        start(config(ratings, collector(), 100));
        HttpResponse<Buffer> r = mesh.webClient().get(9080, "ratings", "/ratings/0")
                .putHeader("x-b3-traceid", "not-hex").putHeader("x-b3-spanid", "0000000000000002")
                .send().await(10, TimeUnit.SECONDS);
        assertEquals("ratings", r.bodyAsString());
        assertNull(r.getHeader("x-envoy-decorator-operation"), "taken off, though no span took it");
        tracing().flush();
        assertEquals(List.of(), spans(), "a malformed context: no span");
    }

    /** The application: for each request, a mesh client call to ratings that does not pass the headers on. */
    private int reviews() {
        WebClient client = mesh.webClient();
        return vertx.createHttpServer().requestHandler(mesh.inbound(req -> {
            seen.add(MultiMap.caseInsensitiveMultiMap().addAll(req.headers()));
            client.get(9080, "ratings", "/ratings/0").send().onComplete(ar -> req.response()
                    .end(ar.succeeded() ? ar.result().bodyAsString() : "failed"));
        })).listen(0, "127.0.0.1").await().actualPort();
    }

    private HttpResponse<Buffer> call(int port) throws Exception {
        return plain.get(port, "127.0.0.1", "/reviews/0")
                .putHeader("traceparent", "00-" + W3C_TRACE + "-" + W3C_CALLER + "-01")
                .putHeader("tracestate", "congo=t61rcWkgMzE").send().await(10, TimeUnit.SECONDS);
    }

    @Test
    void theServerAndClientSpansOfARequestReachTheCollectorOverGrpcLinkedInTheCallersTrace() throws Exception {
        TestOtlpCollector collector = otlp = new TestOtlpCollector();
        start(config(app(), IstioTracing.openTelemetry(100, IstioTracing.OTLP_GRPC),
                IstioTracing.grpcCluster(IstioTracing.OTEL_CLUSTER, collector.port())));
        assertEquals("ratings", call(reviews()).bodyAsString());

        MultiMap app = seen.get(0);
        MultiMap toRatings = seen.get(1);
        String serverSpan = app.get("traceparent").substring(36, 52);
        assertTrue(app.get("traceparent").matches("00-" + W3C_TRACE + "-[0-9a-f]{16}-01"), app.get("traceparent"));
        assertNotEquals(W3C_CALLER, serverSpan);
        assertEquals("congo=t61rcWkgMzE", app.get("tracestate"));
        String clientSpan = toRatings.get("traceparent").substring(36, 52);
        assertTrue(toRatings.get("traceparent").matches("00-" + W3C_TRACE + "-[0-9a-f]{16}-01"));
        assertNotEquals(serverSpan, clientSpan);
        assertEquals("congo=t61rcWkgMzE", toRatings.get("tracestate"), "the caller's tracestate goes on");
        assertNull(toRatings.get("x-b3-traceid"), "no B3 headers with this tracer");

        tracing().flush();
        await(() -> collector.spans().size() == 2, "the server and the client span at the collector");
        Span server = collector.spans().stream().filter(s -> s.getKind() == Span.SpanKind.SPAN_KIND_SERVER)
                .findFirst().orElseThrow();
        Span client = collector.spans().stream().filter(s -> s.getKind() == Span.SpanKind.SPAN_KIND_CLIENT)
                .findFirst().orElseThrow();
        assertEquals(W3C_TRACE, TestOtlpCollector.hex(server.getTraceId()));
        assertEquals(serverSpan, TestOtlpCollector.hex(server.getSpanId()));
        assertEquals(W3C_CALLER, TestOtlpCollector.hex(server.getParentSpanId()), "the caller's span is the parent");
        assertEquals("reviews.default.svc.cluster.local:9080/*", server.getName());
        assertEquals(W3C_TRACE, TestOtlpCollector.hex(client.getTraceId()));
        assertEquals(clientSpan, TestOtlpCollector.hex(client.getSpanId()));
        assertEquals(serverSpan, TestOtlpCollector.hex(client.getParentSpanId()), "the server span is the parent");
        assertEquals("ratings.default.svc.cluster.local:9080/*", client.getName());
        assertEquals("outbound|9080||ratings.default.svc.cluster.local",
                TestOtlpCollector.attribute(client, "upstream_cluster"));
        assertEquals("200", TestOtlpCollector.attribute(client, "http.status_code"));
        assertEquals("reviews", TestOtlpCollector.attribute(client, "istio.canonical_service"));
        assertEquals("inbound|9080||", TestOtlpCollector.attribute(server, "upstream_cluster"));
        assertTrue(client.getEndTimeUnixNano() >= client.getStartTimeUnixNano());
        ExportTraceServiceRequest first = collector.requests.get(0);
        assertEquals("service.name", first.getResourceSpans(0).getResource().getAttributes(0).getKey());
        assertEquals("reviews.default", first.getResourceSpans(0).getResource().getAttributes(0).getValue()
                .getStringValue());
        assertEquals(IstioTracing.OTEL_HOST, collector.authorities.get(0), "envoy_grpc.authority");
        assertTrue(collector.userAgents.get(0).startsWith("OTel-OTLP-Exporter-Inmesh/"),
                "the OTLP exporter's user-agent, as Envoy's OTel-OTLP-Exporter-Envoy/: " + collector.userAgents);
        await(() -> tracing().openTelemetryStats().values().get("tracing.opentelemetry.grpc_reports_success")
                == collector.requests.size(), "the exports counted as taken");
        assertEquals(2L, tracing().openTelemetryStats().values().get("tracing.opentelemetry.spans_sent"));
        String stats = MeshInboundRbacTest.admin(plain, mesh.adminPort(), "/stats?filter=tracing.opentelemetry",
                "tracing.opentelemetry.spans_sent: 2");
        assertTrue(stats.contains("tracing.opentelemetry.spans_dropped: 0\n"), stats);
    }

    @Test
    void withOtlpHttpTheSpansArePostedAsProtobufToTheUrisPathWithItsHostAndHeaders() throws Exception {
        List<ExportTraceServiceRequest> posted = new CopyOnWriteArrayList<>();
        List<String> refused = new CopyOnWriteArrayList<>();
        int port = vertx.createHttpServer().requestHandler(req -> req.body().onSuccess(b -> {
            if (req.method().name().equals("POST") && req.path().equals("/v1/traces")
                    && IstioTracing.OTEL_HOST.equals(req.authority().host())
                    && "application/x-protobuf".equals(req.getHeader("content-type"))
                    && "bookinfo".equals(req.getHeader("x-tenant"))
                    && String.valueOf(req.getHeader("user-agent")).startsWith("OTel-OTLP-Exporter-Inmesh/")) {
                try {
                    posted.add(ExportTraceServiceRequest.parseFrom(b.getBytes()));
                } catch (com.google.protobuf.InvalidProtocolBufferException e) {
                    req.response().setStatusCode(400).end();
                    return;
                }
                req.response().putHeader("content-type", "application/x-protobuf").end();
            } else {
                refused.add(req.method() + " " + req.uri() + " " + req.headers().entries());
                req.response().setStatusCode(400).end();
            }
        })).listen(0, "127.0.0.1").await().actualPort();
        String cluster = "outbound|4318||opentelemetry-collector.observability.svc.cluster.local";
        start(config(app(), IstioTracing.openTelemetry(100, IstioTracing.otlpHttp(cluster)),
                IstioTracing.staticCluster(cluster, port)));
        assertEquals("ratings", call(reviews()).bodyAsString());
        tracing().flush();
        await(() -> posted.stream().mapToInt(r -> r.getResourceSpans(0).getScopeSpans(0).getSpansCount()).sum() == 2,
                "two spans posted");
        // Envoy counts any answer as a success: the posts this collector took and any it refused
        await(() -> tracing().openTelemetryStats().values().get("tracing.opentelemetry.http_reports_success")
                == posted.size() + refused.size(), "the posts counted");
        assertEquals(List.of(), refused, "every post well-formed");
        assertEquals(0L, tracing().openTelemetryStats().values().get("tracing.opentelemetry.http_reports_failed"));
    }

    /** A mirror cluster's application, which keeps the headers of the copies it received in {@code into}. */
    private int mirrorApp(List<MultiMap> into) {
        return vertx.createHttpServer().requestHandler(req -> {
            into.add(MultiMap.caseInsensitiveMultiMap().addAll(req.headers()));
            req.response().end("mirror");
        }).listen(0, "127.0.0.1").await().actualPort();
    }

    /**
     * {@code config} with the outbound route to ratings mirrored as istiod writes a VirtualService's {@code mirrors}:
     * to {@code outbound|9080|v2|...} with {@code trace_sampled: false}, and to {@code outbound|9080|v3|...} with
     * none, each a cluster of its own at its port.
     */
    private static String mirrored(String config, int v2, int v3) {
        String route = "ratings.default.svc.cluster.local\", timeout: 0s}";
        String v2Cluster = "outbound|9080|v2|ratings.default.svc.cluster.local";
        String v3Cluster = "outbound|9080|v3|ratings.default.svc.cluster.local";
        assertTrue(config.contains(route));
        return config.replace(route, "ratings.default.svc.cluster.local\", timeout: 0s, request_mirror_policies: ["
                        + "{cluster: \"" + v2Cluster + "\", trace_sampled: false}, {cluster: \"" + v3Cluster + "\"}]}")
                + (IstioTracing.staticCluster(v2Cluster, v2) + IstioTracing.staticCluster(v3Cluster, v3)).indent(2);
    }

    /** Waits for one copy in {@code copies}; returns it. */
    private static MultiMap copy(List<MultiMap> copies) throws InterruptedException {
        await(() -> !copies.isEmpty(), "a mirrored copy");
        return copies.get(0);
    }

    @Test
    void eachMirroredCopyCarriesASpanOfItsOwnChildOfTheRequestsSampledAsItsPolicySays() throws Exception {
        List<MultiMap> v2 = new CopyOnWriteArrayList<>();
        List<MultiMap> v3 = new CopyOnWriteArrayList<>();
        start(mirrored(config(app(), collector(), 100), mirrorApp(v2), mirrorApp(v3)));
        assertEquals(200, mesh.webClient().get(9080, "ratings", "/ratings/0")
                .putHeader("x-b3-traceid", TRACE_ID).putHeader("x-b3-spanid", CALLER_SPAN)
                .putHeader("x-b3-sampled", "1").send().await(10, TimeUnit.SECONDS).statusCode());

        MultiMap up = seen.get(0);
        String spanId = up.get("x-b3-spanid");
        assertEquals("1", up.get("x-b3-sampled"));
        MultiMap unsampled = copy(v2);
        assertEquals(TRACE_ID, unsampled.get("x-b3-traceid"), "the request's trace");
        assertEquals(spanId, unsampled.get("x-b3-parentspanid"), "a child of the request's span");
        assertEquals(16, unsampled.get("x-b3-spanid").length());
        assertNotEquals(spanId, unsampled.get("x-b3-spanid"), "a span of its own");
        assertEquals("0", unsampled.get("x-b3-sampled"), "trace_sampled: false");
        MultiMap asTheRequest = copy(v3);
        assertEquals(TRACE_ID, asTheRequest.get("x-b3-traceid"));
        assertEquals(spanId, asTheRequest.get("x-b3-parentspanid"));
        assertNotEquals(spanId, asTheRequest.get("x-b3-spanid"));
        assertNotEquals(unsampled.get("x-b3-spanid"), asTheRequest.get("x-b3-spanid"), "one span per copy");
        assertEquals("1", asTheRequest.get("x-b3-sampled"), "no trace_sampled: the request's decision");
        assertEquals("ratings-shadow:9080", asTheRequest.get("host"));
    }

    @Test
    void withTheOpenTelemetryTracerAMirroredCopysTraceparentIsItsOwnSpansUnsampledByItsPolicy() throws Exception {
        TestOtlpCollector collector = otlp = new TestOtlpCollector();
        List<MultiMap> v2 = new CopyOnWriteArrayList<>();
        List<MultiMap> v3 = new CopyOnWriteArrayList<>();
        start(mirrored(config(app(), IstioTracing.openTelemetry(100, IstioTracing.OTLP_GRPC),
                IstioTracing.grpcCluster(IstioTracing.OTEL_CLUSTER, collector.port())), mirrorApp(v2), mirrorApp(v3)));
        assertEquals(200, mesh.webClient().get(9080, "ratings", "/ratings/0")
                .putHeader("traceparent", "00-" + W3C_TRACE + "-" + W3C_CALLER + "-01")
                .putHeader("tracestate", "congo=t61rcWkgMzE").send().await(10, TimeUnit.SECONDS).statusCode());

        String span = seen.get(0).get("traceparent").substring(36, 52);
        MultiMap unsampled = copy(v2);
        assertTrue(unsampled.get("traceparent").matches("00-" + W3C_TRACE + "-[0-9a-f]{16}-00"),
                unsampled.get("traceparent"));
        assertNotEquals(span, unsampled.get("traceparent").substring(36, 52), "a span of its own");
        assertEquals("congo=t61rcWkgMzE", unsampled.get("tracestate"));
        MultiMap asTheRequest = copy(v3);
        assertTrue(asTheRequest.get("traceparent").matches("00-" + W3C_TRACE + "-[0-9a-f]{16}-01"),
                asTheRequest.get("traceparent"));
        assertNotEquals(span, asTheRequest.get("traceparent").substring(36, 52));
    }
}
