package dev.inmesh.interception.proxy;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.tracing.TestOtlpCollector;
import dev.inmesh.runtime.xds.IstioTracing;
import io.opentelemetry.proto.trace.v1.Span;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The standalone proxy traces as a sidecar with istiod's Zipkin tracing: a request to the workload
 * ({@code virtualInbound}) is a server span, one from it (an outbound listener) a client span, each a child of the
 * caller's B3 context whose own context the next hop receives; the spans reach the Zipkin collector (a Vert.x server
 * on loopback) through its cluster; a request its caller did not sample goes on with {@code x-b3-sampled: 0} and no
 * span. With istiod's OpenTelemetry tracing, the same spans carry W3C {@code traceparent} and reach an OTLP gRPC
 * collector (grpc-java on loopback).
 */
@Timeout(60)
class ProxyTracingTest {
    private static final String TRACE_ID = "463ac35c9f6413ad";
    private static final String CALLER_SPAN = "a2fb4a1d1a96d312";

    private final Vertx vertx = Vertx.vertx();
    private final List<JsonArray> reports = new CopyOnWriteArrayList<>();
    private final List<MultiMap> seen = new CopyOnWriteArrayList<>();
    private StandaloneProxy proxy;
    @TempDir
    Path dir;

    @AfterEach
    void close() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    // (on ports freePort hands out, as the listeners' are: a port 0 the kernel picks may be one handed out just before
    // for a listener not bound yet)
    private int app() throws Exception {
        return vertx.createHttpServer().requestHandler(req -> {
            seen.add(MultiMap.caseInsensitiveMultiMap().addAll(req.headers()));
            req.response().end("app");
        }).listen(LoopbackProxy.freePort(), "127.0.0.1").await().actualPort();
    }

    private int collector() throws Exception {
        return vertx.createHttpServer().requestHandler(req -> req.body().onSuccess(b -> {
            reports.add(new JsonArray(b));
            req.response().setStatusCode(202).end();
        })).listen(LoopbackProxy.freePort(), "127.0.0.1").await().actualPort();
    }

    private static String listener(String name, String direction, int port, String cluster, String operation) {
        return IstioTracing.listener(name, "127.0.0.1", port, direction, IstioTracing.tracing(100,
                IstioTracing.CLUSTER), operation, cluster);
    }

    private void start(int inbound, int outbound, int app, int collector) throws Exception {
        String config = "static_resources:\n  listeners:\n"
                + (listener("virtualInbound", "INBOUND", inbound, "inbound|9080||",
                        "reviews.default.svc.cluster.local:9080/*")
                + listener("0.0.0.0_9080", "OUTBOUND", outbound, "outbound|9080||ratings.default.svc.cluster.local",
                        "ratings.default.svc.cluster.local:9080/*")).indent(2)
                + "  clusters:\n" + (IstioTracing.staticCluster("inbound|9080||", app)
                + IstioTracing.staticCluster("outbound|9080||ratings.default.svc.cluster.local", app)
                + IstioTracing.collectorCluster(collector)).indent(2);
        Path file = Files.writeString(dir.resolve("proxy.yaml"), config);
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(file, -1, -1, 1, null, AdminHook.NONE)
                .withIdentity(new WorkloadInfo("reviews-v1", "default", "reviews", "v1"), null,
                        "sidecar~10.1.2.3~reviews-v1-abc.default~default.svc.cluster.local"));
    }

    private int send(HttpClient client, int port, String sampled) throws Exception {
        RequestOptions ro = new RequestOptions().setHost("127.0.0.1").setPort(port).setURI("/reviews/0")
                .putHeader("host", "reviews").putHeader("x-b3-traceid", TRACE_ID)
                .putHeader("x-b3-spanid", CALLER_SPAN).putHeader("x-b3-sampled", sampled);
        return onEventLoop(vertx, () -> client.request(ro)
                .compose(req -> req.send().compose(resp -> resp.body().map(b -> resp.statusCode()))))
                .await(10, TimeUnit.SECONDS);
    }

    private List<JsonObject> awaitSpans(int n) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (true) {
            proxy.tracing().flush();
            List<JsonObject> all = new ArrayList<>();
            for (JsonArray r : reports) {
                for (int i = 0; i < r.size(); i++) {
                    all.add(r.getJsonObject(i));
                }
            }
            if (all.size() >= n) {
                return all;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("not " + n + " spans within 10 s: " + all);
            }
            Thread.sleep(20);
        }
    }

    @Test
    void inboundAndOutboundRequestsAreServerAndClientSpansOfTheCallersTrace() throws Exception {
        int inbound = LoopbackProxy.freePort();
        int outbound = LoopbackProxy.freePort();
        start(inbound, outbound, app(), collector());
        HttpClient client = vertx.createHttpClient();
        assertEquals(200, send(client, inbound, "1"));
        assertEquals(200, send(client, outbound, "1"));
        client.close().await(10, TimeUnit.SECONDS);

        MultiMap toApp = seen.get(0);
        MultiMap toRatings = seen.get(1);
        for (MultiMap up : List.of(toApp, toRatings)) {
            assertEquals(TRACE_ID, up.get("x-b3-traceid"));
            assertEquals(CALLER_SPAN, up.get("x-b3-parentspanid"));
            assertNotEquals(CALLER_SPAN, up.get("x-b3-spanid"));
            assertEquals("1", up.get("x-b3-sampled"));
        }
        assertNull(toApp.get("x-envoy-decorator-operation"), "an inbound hop passes no operation to the app");
        assertEquals("ratings.default.svc.cluster.local:9080/*", toRatings.get("x-envoy-decorator-operation"));

        List<JsonObject> spans = awaitSpans(2);
        JsonObject server = spans.stream().filter(s -> s.getString("kind").equals("SERVER")).findFirst().get();
        JsonObject clientSpan = spans.stream().filter(s -> s.getString("kind").equals("CLIENT")).findFirst().get();
        assertEquals(toApp.get("x-b3-spanid"), server.getString("id"));
        assertEquals(CALLER_SPAN, server.getString("parentId"));
        assertEquals(TRACE_ID, server.getString("traceId"));
        assertEquals("reviews.default.svc.cluster.local:9080/*", server.getString("name"));
        assertEquals("inbound|9080||", server.getJsonObject("tags").getString("upstream_cluster"));
        assertEquals(toRatings.get("x-b3-spanid"), clientSpan.getString("id"));
        assertEquals("ratings.default.svc.cluster.local:9080/*", clientSpan.getString("name"));
        JsonObject tags = clientSpan.getJsonObject("tags");
        assertEquals("outbound|9080||ratings.default.svc.cluster.local", tags.getString("upstream_cluster"));
        assertEquals("http://reviews/reviews/0", tags.getString("http.url"));
        assertEquals("200", tags.getString("http.status_code"));
        assertEquals("sidecar~10.1.2.3~reviews-v1-abc.default~default.svc.cluster.local", tags.getString("node_id"));
        assertEquals(new JsonObject().put("serviceName", "reviews.default").put("ipv4", "10.1.2.3").put("port", 0),
                clientSpan.getJsonObject("localEndpoint"));
        assertEquals(2L, proxy.tracing().stats().values().get("tracing.zipkin.spans_sent"));
        io.micrometer.prometheusmetrics.PrometheusMeterRegistry registry =
                new io.micrometer.prometheusmetrics.PrometheusMeterRegistry(
                        io.micrometer.prometheusmetrics.PrometheusConfig.DEFAULT);
        proxy.tracing().publish(registry); // as the proxy command publishes them
        assertTrue(registry.scrape().contains("envoy_tracing_zipkin_spans_sent 2.0"), registry.scrape());
        assertFalse(registry.scrape().contains("envoy_tracing_opentelemetry_"),
                "no OpenTelemetry tracer is configured: none of its statistics, as Envoy builds no driver");
    }

    /**
     * meshConfig's {@code defaultConfig.tracing.zipkin.address}: istiod writes sampling but no provider, and Istio's
     * agent puts the Zipkin tracer and its {@code zipkin} cluster in the bootstrap, which reports the spans.
     */
    @Test
    void theBootstrapsTracerReportsForConnectionManagersThatNameNoProvider() throws Exception {
        int inbound = LoopbackProxy.freePort();
        String config = IstioTracing.BOOTSTRAP + """
                node:
                  id: sidecar~10.9.8.7~reviews-v2-xyz.shop~shop.svc.cluster.local
                  cluster: reviews.shop
                  locality: {region: eu, zone: eu-west-1a}
                static_resources:
                  listeners:
                """ + IstioTracing.listener("virtualInbound", "127.0.0.1", inbound, "INBOUND", """
                tracing:
                  client_sampling: {value: 100}
                  random_sampling: {value: 100}
                  overall_sampling: {value: 100}
                """, "reviews:9080/*", "inbound|9080||").indent(2) + "  clusters:\n"
                + (IstioTracing.staticCluster("inbound|9080||", app())
                + IstioTracing.staticCluster("zipkin", collector())).indent(2);
        Path file = Files.writeString(dir.resolve("proxy.yaml"), config);
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(file, -1, -1, 1, null, AdminHook.NONE)
                .withIdentity(new WorkloadInfo("reviews-v1", "default", "reviews", "v1"), null,
                        "sidecar~10.1.2.3~reviews-v1-abc.default~default.svc.cluster.local"));
        HttpClient client = vertx.createHttpClient();
        assertEquals(200, send(client, inbound, "1"));
        client.close().await(10, TimeUnit.SECONDS);
        JsonObject span = awaitSpans(1).get(0);
        assertEquals("SERVER", span.getString("kind"));
        assertEquals(TRACE_ID, span.getString("traceId"));
        assertEquals(seen.get(0).get("x-b3-spanid"), span.getString("id"));
        assertEquals("reviews:9080/*", span.getString("name"));
        // Envoy's local node is the bootstrap's: it names the span, over the proxy's flags
        assertEquals("sidecar~10.9.8.7~reviews-v2-xyz.shop~shop.svc.cluster.local",
                span.getJsonObject("tags").getString("node_id"));
        assertEquals("eu-west-1a", span.getJsonObject("tags").getString("zone"));
        assertEquals(new JsonObject().put("serviceName", "reviews.shop").put("ipv4", "10.9.8.7").put("port", 0),
                span.getJsonObject("localEndpoint"));
    }

    @Test
    void anUnsampledRequestIsPassedOnWithItsDecisionAndReportsNoSpan() throws Exception {
        int inbound = LoopbackProxy.freePort();
        start(inbound, LoopbackProxy.freePort(), app(), collector());
        HttpClient client = vertx.createHttpClient();
        assertEquals(200, send(client, inbound, "0"));
        client.close().await(10, TimeUnit.SECONDS);
        MultiMap toApp = seen.get(0);
        assertEquals("0", toApp.get("x-b3-sampled"));
        assertEquals(TRACE_ID, toApp.get("x-b3-traceid"));
        assertEquals(CALLER_SPAN, toApp.get("x-b3-parentspanid"));
        proxy.tracing().flush();
        assertEquals(0L, proxy.tracing().stats().values().get("tracing.zipkin.spans_sent"));
        assertTrue(reports.isEmpty());
    }

    @Test
    void withOpenTelemetryTheInboundAndOutboundSpansReachAnOtlpCollectorOverGrpcInTheCallersW3cTrace()
            throws Exception {
        String trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        String caller = "00f067aa0ba902b7";
        int inbound = LoopbackProxy.freePort();
        int outbound = LoopbackProxy.freePort();
        int app = app();
        try (TestOtlpCollector collector = new TestOtlpCollector()) {
            String tracing = IstioTracing.openTelemetry(100, IstioTracing.OTLP_GRPC);
            String config = "static_resources:\n  listeners:\n"
                    + (IstioTracing.listener("virtualInbound", "127.0.0.1", inbound, "INBOUND", tracing,
                            "reviews.default.svc.cluster.local:9080/*", "inbound|9080||")
                    + IstioTracing.listener("0.0.0.0_9080", "127.0.0.1", outbound, "OUTBOUND", tracing,
                            "ratings.default.svc.cluster.local:9080/*",
                            "outbound|9080||ratings.default.svc.cluster.local")).indent(2)
                    + "  clusters:\n" + (IstioTracing.staticCluster("inbound|9080||", app)
                    + IstioTracing.staticCluster("outbound|9080||ratings.default.svc.cluster.local", app)
                    + IstioTracing.grpcCluster(IstioTracing.OTEL_CLUSTER, collector.port())).indent(2);
            Path file = Files.writeString(dir.resolve("proxy.yaml"), config);
            proxy = StandaloneProxy.start(new StandaloneProxy.Settings(file, -1, -1, 1, null, AdminHook.NONE)
                    .withIdentity(new WorkloadInfo("reviews-v1", "default", "reviews", "v1"), null,
                            "sidecar~10.1.2.3~reviews-v1-abc.default~default.svc.cluster.local"));
            HttpClient client = vertx.createHttpClient();
            // the caller's request to this workload, then the workload's own request on, with the context it got
            RequestOptions in = new RequestOptions().setHost("127.0.0.1").setPort(inbound).setURI("/reviews/0")
                    .putHeader("host", "reviews").putHeader("traceparent", "00-" + trace + "-" + caller + "-01");
            assertEquals(200, onEventLoop(vertx, () -> client.request(in).compose(req -> req.send()
                    .compose(resp -> resp.body().map(b -> resp.statusCode())))).await(10, TimeUnit.SECONDS));
            String toApp = seen.get(0).get("traceparent");
            RequestOptions out = new RequestOptions().setHost("127.0.0.1").setPort(outbound).setURI("/ratings/0")
                    .putHeader("host", "ratings").putHeader("traceparent", toApp);
            assertEquals(200, onEventLoop(vertx, () -> client.request(out).compose(req -> req.send()
                    .compose(resp -> resp.body().map(b -> resp.statusCode())))).await(10, TimeUnit.SECONDS));
            client.close().await(10, TimeUnit.SECONDS);
            String toRatings = seen.get(1).get("traceparent");
            assertTrue(toApp.startsWith("00-" + trace + "-") && toApp.endsWith("-01"), toApp);
            assertTrue(toRatings.startsWith("00-" + trace + "-") && toRatings.endsWith("-01"), toRatings);
            assertNull(seen.get(0).get("x-b3-traceid"), "no B3 headers with this tracer");

            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (collector.spans().size() < 2) {
                assertTrue(System.nanoTime() < deadline, "two spans at the collector within 10 s");
                proxy.tracing().flush();
                Thread.sleep(20);
            }
            Span server = collector.spans().stream().filter(s -> s.getKind() == Span.SpanKind.SPAN_KIND_SERVER)
                    .findFirst().orElseThrow();
            Span clientSpan = collector.spans().stream().filter(s -> s.getKind() == Span.SpanKind.SPAN_KIND_CLIENT)
                    .findFirst().orElseThrow();
            assertEquals(trace, TestOtlpCollector.hex(server.getTraceId()));
            assertEquals(caller, TestOtlpCollector.hex(server.getParentSpanId()));
            assertEquals(toApp.substring(36, 52), TestOtlpCollector.hex(server.getSpanId()));
            assertEquals("reviews.default.svc.cluster.local:9080/*", server.getName());
            assertEquals(trace, TestOtlpCollector.hex(clientSpan.getTraceId()));
            assertEquals(toApp.substring(36, 52), TestOtlpCollector.hex(clientSpan.getParentSpanId()),
                    "the server span's context, which the workload passed on, is the client span's parent");
            assertEquals(toRatings.substring(36, 52), TestOtlpCollector.hex(clientSpan.getSpanId()));
            assertEquals("ratings.default.svc.cluster.local:9080/*", clientSpan.getName());
            assertEquals("sidecar~10.1.2.3~reviews-v1-abc.default~default.svc.cluster.local",
                    TestOtlpCollector.attribute(clientSpan, "node_id"));
            assertEquals("reviews.default", collector.requests.get(0).getResourceSpans(0).getResource()
                    .getAttributes(0).getValue().getStringValue());
            assertEquals(IstioTracing.OTEL_HOST, collector.authorities.get(0));
            io.micrometer.prometheusmetrics.PrometheusMeterRegistry registry =
                    new io.micrometer.prometheusmetrics.PrometheusMeterRegistry(
                            io.micrometer.prometheusmetrics.PrometheusConfig.DEFAULT);
            proxy.tracing().publish(registry);
            assertTrue(registry.scrape().contains("envoy_tracing_opentelemetry_spans_sent 2.0"), registry.scrape());
            assertFalse(registry.scrape().contains("envoy_tracing_zipkin_"), "no Zipkin tracer is configured");
        }
    }

    /**
     * A listener without {@code traffic_direction} traces as Envoy's ingress, which takes it for inbound: a server
     * span named by the caller's decorated operation, its route's decorator told back in the response and not sent
     * on; a direct response's span has the downstream's scheme in {@code http.url}.
     */
    @Test
    void aListenerWithoutTrafficDirectionMakesServerSpansAndALocalReplysUrlHasTheScheme() throws Exception {
        int port = LoopbackProxy.freePort();
        String listener = IstioTracing.listener("plain", "127.0.0.1", port, "INBOUND",
                        IstioTracing.tracing(100, IstioTracing.CLUSTER), "reviews:9080/*", "inbound|9080||")
                .replace("  traffic_direction: INBOUND\n", "")
                .replaceAll("(?m)^( *)- match: \\{prefix: /\\}", "$1- match: {prefix: /direct}\n"
                        + "$1  direct_response: {status: 200}\n$1- match: {prefix: /}");
        assertTrue(!listener.contains("traffic_direction") && listener.contains("direct_response"), listener);
        String config = "static_resources:\n  listeners:\n" + listener.indent(2) + "  clusters:\n"
                + (IstioTracing.staticCluster("inbound|9080||", app()) + IstioTracing.collectorCluster(collector()))
                .indent(2);
        Path file = Files.writeString(dir.resolve("proxy.yaml"), config);
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(file, -1, -1, 1, null, AdminHook.NONE));
        HttpClient client = vertx.createHttpClient();
        RequestOptions ro = new RequestOptions().setHost("127.0.0.1").setPort(port).setURI("/reviews/0")
                .putHeader("host", "reviews").putHeader("x-b3-traceid", TRACE_ID)
                .putHeader("x-b3-spanid", CALLER_SPAN).putHeader("x-b3-sampled", "1")
                .putHeader("x-envoy-decorator-operation", "callers-op");
        MultiMap answered = onEventLoop(vertx, () -> client.request(ro)
                .compose(req -> req.send().compose(resp -> resp.body().map(b -> resp.headers()))))
                .await(10, TimeUnit.SECONDS);
        RequestOptions unnamed = new RequestOptions().setHost("127.0.0.1").setPort(port).setURI("/reviews/1")
                .putHeader("host", "reviews").putHeader("x-client-trace-id", "c1");
        MultiMap told = onEventLoop(vertx, () -> client.request(unnamed)
                .compose(req -> req.send().compose(resp -> resp.body().map(b -> resp.headers()))))
                .await(10, TimeUnit.SECONDS);
        RequestOptions direct = new RequestOptions().setHost("127.0.0.1").setPort(port).setURI("/direct")
                .putHeader("host", "reviews");
        onEventLoop(vertx, () -> client.request(direct).compose(req -> req.send().compose(HttpClientResponse::body)))
                .await(10, TimeUnit.SECONDS);
        client.close().await(10, TimeUnit.SECONDS);
        assertNull(seen.get(0).get("x-envoy-decorator-operation"), "ingress passes no operation upstream");
        assertEquals("reviews:9080/*", told.get("x-envoy-decorator-operation"), "ingress tells its operation");
        List<JsonObject> spans = awaitSpans(3);
        JsonObject server = spans.stream().filter(s -> s.getJsonObject("tags").getString("http.url")
                .endsWith("/reviews/0")).findFirst().orElseThrow();
        assertEquals("SERVER", server.getString("kind"));
        assertEquals("callers-op", server.getString("name"));
        assertNull(answered.get("x-envoy-decorator-operation"), "the caller named the operation itself");
        JsonObject local = spans.stream().filter(s -> s.getJsonObject("tags").getString("http.url")
                .endsWith("/direct")).findFirst().orElseThrow();
        assertEquals("SERVER", local.getString("kind"));
        assertEquals("http://reviews/direct", local.getJsonObject("tags").getString("http.url"));
    }
}
