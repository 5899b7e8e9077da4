package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.ext.web.client.WebClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Envoy's connection manager statistics ({@code http.<stat_prefix>.*}) on the in-JVM paths: the outbound client's
 * requests count in the outbound listener's connection manager, {@code mesh.inbound(...)}'s in the
 * {@code virtualInbound} chain's, read from the admin server's {@code /stats} and {@code /stats/prometheus} (under
 * Istio's bootstrap's stats tags).
 */
class MeshDownstreamStatsTest {
    Vertx vertx;
    /**
     * A plain client (not the mesh's) that does not follow redirects, held for the whole test: Vert.x closes a client
     * no longer referenced.
     */
    WebClient plain;
    Mesh mesh;
    @TempDir
    Path dir;

    @BeforeEach
    void setUp() {
        vertx = Vertx.vertx();
        plain = WebClient.create(vertx, new io.vertx.ext.web.client.WebClientOptions().setFollowRedirects(false));
    }

    @AfterEach
    void tearDown() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    private int server() throws Exception {
        HttpServer s = vertx.createHttpServer().requestHandler(req -> req.response().end("ok"));
        s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        return s.actualPort();
    }

    /**
     * Starts the mesh on bootstrap {@code config} with Istio's bootstrap's {@code stats_config}, whose stats tags name
     * the tags of {@code /stats/prometheus} as a sidecar's Envoy names them ({@code cluster_name}, ...).
     */
    private Mesh start(String config) throws Exception {
        Path file = dir.resolve("mesh.yaml");
        Files.writeString(file, config + Files.readString(Path.of("src/test/resources/istio/stats_config.yaml")));
        mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("productpage-v1").setApp("productpage")
                .setConfigFile(file.toString()).setAdminPort(0));
        mesh.start().await(10, TimeUnit.SECONDS);
        return mesh;
    }

    /** The admin server's {@code path}, once it holds {@code expected} (or after 5 s, as it is then). */
    private String admin(String path, String expected) throws Exception {
        String body = "";
        long deadline = System.currentTimeMillis() + 5000;
        while (!body.contains(expected) && System.currentTimeMillis() < deadline) {
            body = plain.get(mesh.adminPort(), "127.0.0.1", path).send().await(10, TimeUnit.SECONDS).bodyAsString();
            if (!body.contains(expected)) {
                Thread.sleep(20);
            }
        }
        return body;
    }

    /** Each of {@code expected} ({@code name: value}, after the prefix {@code p}) is a line of {@code stats}. */
    private static void assertStats(String stats, String p, String... expected) {
        for (String e : expected) {
            assertTrue(stats.contains(p + e + "\n"), e + " in\n" + stats);
        }
    }

    @Test
    void theOutboundClientsRequestsCountInTheOutboundConnectionManagersStatsAsASidecarsWould() throws Exception {
        int a = server();
        String cors = "{\"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy, "
                + "allow_origin_string_match: [{exact: \"https://shop.example\"}]}";
        start(MeshWebClientTest.config("""
                                typed_per_filter_config:
                                  envoy.filters.http.cors: %s
                                  envoy.filters.http.fault:
                                    "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                                    headers: [{name: end-user, string_match: {exact: jason}}]
                                    abort: {http_status: 503, percentage: {numerator: 100}}
                """.formatted(cors), a).replace("          http_filters:\n", """
                          http_filters:
                          - name: envoy.filters.http.fault
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                          - name: envoy.filters.http.cors
                            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}
                """));
        WebClient client = mesh.webClient();
        assertEquals(200, client.get(9080, "reviews", "/").putHeader("origin", "https://shop.example").send()
                .await(10, TimeUnit.SECONDS).statusCode());
        assertEquals(200, client.get(9080, "reviews", "/").putHeader("origin", "https://evil.example").send()
                .await(10, TimeUnit.SECONDS).statusCode());
        assertEquals(404, client.get(9080, "ratings", "/").send().await(10, TimeUnit.SECONDS).statusCode());
        // counted also under the caller's downstream cluster, as Envoy's fault.<downstream_cluster>.aborts_injected
        assertEquals(503, client.get(9080, "reviews", "/").putHeader("end-user", "jason")
                .putHeader("x-envoy-downstream-service-cluster", "productpage").send()
                .await(10, TimeUnit.SECONDS).statusCode());

        String p = "http.outbound_0.0.0.0_9080.";
        String stats = admin("/stats?filter=^http\\.", p + "downstream_rq_completed: 4");
        assertStats(stats, p, "downstream_rq_total: 4", "downstream_rq_http1_total: 4", "downstream_rq_2xx: 2",
                "downstream_rq_4xx: 1", "downstream_rq_5xx: 1", "downstream_rq_active: 0", "no_route: 1",
                "fault.aborts_injected: 1", "fault.delays_injected: 0", "fault.active_faults: 0",
                "fault.productpage.aborts_injected: 1", "fault.productpage.delays_injected: 0",
                "cors.origin_valid: 1", "cors.origin_invalid: 1");
        // no downstream connection in-process
        assertTrue(stats.contains(p + "downstream_cx_total: 0\n"), stats);
        String gauges = admin("/stats?type=Gauges&filter=^http\\.", p + "downstream_rq_active");
        assertTrue(gauges.contains(p + "fault.active_faults: 0\n") && !gauges.contains("rq_total"), gauges);

        String prom = admin("/stats/prometheus", "envoy_http_downstream_rq_total");
        String tag = "http_conn_manager_prefix=\"outbound_0.0.0.0_9080\"";
        assertTrue(prom.contains("envoy_http_downstream_rq_total{" + tag + "} 4\n"), prom);
        assertTrue(prom.contains("envoy_http_downstream_rq{" + tag + ",response_code_class=\"2xx\"} 2\n"), prom);
        assertTrue(prom.contains("envoy_http_no_route{" + tag + "} 1\n"), prom);
        assertTrue(prom.contains("envoy_http_fault_aborts_injected{" + tag + "} 1\n"), prom);
        assertTrue(prom.contains("envoy_http_fault_productpage_aborts_injected{" + tag + "} 1\n"), prom);
        assertTrue(prom.contains("envoy_http_downstream_rq_active{" + tag + "} 0\n"), prom);
    }

    /**
     * As Envoy makes a connection manager's statistics and its filters' with their configs when it builds the
     * listener: in {@code /stats} and {@code /stats/prometheus} at 0 before any request, a route's local rate limit
     * config's (under its own stat prefix) too.
     */
    @Test
    void aConnectionManagersAndItsFiltersStatsAreThereAtZeroBeforeItsFirstRequest() throws Exception {
        String perRoute = dev.inmesh.runtime.xds.IstioRateLimit.VIRTUAL_HOST_CONFIG.replace(
                "stat_prefix: http_local_rate_limiter", "stat_prefix: reviews_limit").indent(14);
        start(MeshWebClientTest.virtualInbound("", """
                              routes:
                              - match: {prefix: /reviews}
                                route: {cluster: "inbound|9080||", timeout: 0s}
                """ + perRoute).replace("""
                          http_filters:
                """, """
                          http_filters:
                """ + (dev.inmesh.runtime.xds.IstioRateLimit.FILTER + """
                - name: envoy.filters.http.fault
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault}
                - name: envoy.filters.http.cors
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}
                - name: envoy.filters.http.compressor
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor
                    response_direction_config: {}
                    compressor_library:
                      name: text_optimized
                      typed_config: {"@type": type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip}
                """).indent(10)));

        String p = "http.inbound_0.0.0.0_9080.";
        String stats = admin("/stats", p + "downstream_rq_total: 0");
        assertStats(stats, p, "downstream_rq_total: 0", "downstream_rq_2xx: 0", "no_route: 0",
                "fault.aborts_injected: 0", "fault.active_faults: 0", "cors.origin_valid: 0",
                "compressor.text_optimized.gzip.response.compressed: 0",
                "compressor.text_optimized.gzip.request.not_compressed: 0",
                "compressor.text_optimized.gzip.header_compressor_used: 0");
        assertStats(stats, "", "http_local_rate_limiter.http_local_rate_limit.enabled: 0",
                "reviews_limit.http_local_rate_limit.enabled: 0");
        String prom = admin("/stats/prometheus", "envoy_http_downstream_rq_total");
        assertTrue(prom.contains("envoy_http_downstream_rq_total{http_conn_manager_prefix=\"inbound_0.0.0.0_9080\"}"
                + " 0\n"), prom);
        assertTrue(prom.contains("envoy_http_compressor_text_optimized_gzip_response_compressed{"
                + "http_conn_manager_prefix=\"inbound_0.0.0.0_9080\"} 0\n"), prom);
        assertTrue(prom.contains("envoy_http_local_rate_limit_enabled{local_http_ratelimit_prefix=\"reviews_limit\"}"
                + " 0\n"), prom);
    }

    @Test
    void theInboundHandlersRequestsCountInTheVirtualInboundConnectionManagersStats() throws Exception {
        start(MeshWebClientTest.virtualInbound("", """
                              routes:
                              - {match: {prefix: /blocked}, direct_response: {status: 403}}
                              - {match: {prefix: /old}, redirect: {path_redirect: /new}}
                              - {match: {prefix: /reviews}, route: {cluster: "inbound|9080||", timeout: 0s}}
                """));
        HttpServer inbound = vertx.createHttpServer().requestHandler(mesh.inbound(req -> req.response().end("app")));
        inbound.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        int port = inbound.actualPort();
        assertEquals(200, plain.get(port, "127.0.0.1", "/reviews/0").send().await(10, TimeUnit.SECONDS)
                .statusCode());
        assertEquals(403, plain.get(port, "127.0.0.1", "/blocked").send().await(10, TimeUnit.SECONDS)
                .statusCode());
        assertEquals(301, plain.get(port, "127.0.0.1", "/old").send().await(10, TimeUnit.SECONDS).statusCode());
        assertEquals(404, plain.request(HttpMethod.GET, port, "127.0.0.1", "/other").send()
                .await(10, TimeUnit.SECONDS).statusCode());

        String p = "http.inbound_0.0.0.0_9080.";
        String stats = admin("/stats?filter=^http\\.", p + "downstream_rq_completed: 4");
        assertStats(stats, p, "downstream_rq_total: 4", "downstream_rq_2xx: 1", "downstream_rq_3xx: 1",
                "downstream_rq_4xx: 2", "downstream_rq_active: 0", "no_route: 1", "rq_direct_response: 1",
                "rq_redirect: 1");
        String prom = admin("/stats/prometheus", "envoy_http_downstream_rq_total");
        assertTrue(prom.contains("envoy_http_downstream_rq_total{http_conn_manager_prefix=\"inbound_0.0.0.0_9080\"}"
                + " 4\n"), prom);
        // each response sent whole is timed, local replies too
        assertTrue(prom.contains("envoy_http_downstream_rq_time_count{http_conn_manager_prefix="
                + "\"inbound_0.0.0.0_9080\"} 4\n"), prom);
    }

    @Test
    void aFaultPastMaxActiveFaultsIsNotInjectedAndCountsAsAnOverflow() throws Exception {
        int a = server();
        start(MeshWebClientTest.config("", a).replace("          http_filters:\n", """
                          http_filters:
                          - name: envoy.filters.http.fault
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                              delay: {fixed_delay: 3s, percentage: {numerator: 100}}
                              max_active_faults: 1
                """));
        WebClient client = mesh.webClient();
        var delayed = client.get(9080, "reviews", "/").send();
        String p = "http.outbound_0.0.0.0_9080.";
        String during = admin("/stats?filter=fault", p + "fault.active_faults: 1");
        assertTrue(during.contains(p + "fault.active_faults: 1\n"), during);
        long t0 = System.nanoTime();
        assertEquals(200, client.get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS).statusCode());
        assertTrue((System.nanoTime() - t0) / 1_000_000 < 2000, "the second request was not delayed");
        assertEquals(200, delayed.await(10, TimeUnit.SECONDS).statusCode());
        String after = admin("/stats?filter=fault", p + "fault.active_faults: 0");
        assertStats(after, p, "fault.delays_injected: 1", "fault.faults_overflow: 1", "fault.active_faults: 0");
    }

    /** The events of a response read through {@code client}: "headers", then "chunk N" for each, then "end". */
    static java.util.List<String> readThrough(io.vertx.core.http.HttpClient client, int port, String host,
                                              String... headers) throws Exception {
        java.util.List<String> events = new java.util.concurrent.CopyOnWriteArrayList<>();
        io.vertx.core.Promise<Void> ended = io.vertx.core.Promise.promise();
        client.request(HttpMethod.GET, port, host, "/").compose(r -> {
            for (int i = 0; i < headers.length; i += 2) {
                r.putHeader(headers[i], headers[i + 1]);
            }
            return r.send();
        }).onSuccess(resp -> {
            events.add("headers");
            resp.handler(b -> events.add("chunk " + b.length()));
            resp.endHandler(v -> {
                events.add("end");
                ended.tryComplete();
            });
        }).onFailure(ended::tryFail);
        ended.future().await(20, TimeUnit.SECONDS);
        return events;
    }

    /**
     * A 4 KiB body at 4 KiB/s: one 50 ms interval's worth (204 bytes) goes at once, the rest over at least 0.9 s, in
     * many chunks, all after the headers, which are not delayed.
     */
    static void assertRateLimited(java.util.List<String> events, long elapsedMillis) {
        assertEquals("headers", events.get(0), events.toString());
        assertEquals("end", events.get(events.size() - 1), events.toString());
        long bytes = events.stream().filter(e -> e.startsWith("chunk ")).mapToLong(e -> Long.parseLong(
                e.substring(6))).sum();
        assertEquals(4096, bytes, events.toString());
        assertTrue(events.size() - 2 >= 10, "released over many fills: " + events);
        assertTrue(elapsedMillis >= 900, elapsedMillis + " ms");
    }

    @Test
    void aResponseRateLimitSendsTheHeadersAtOnceAndTheBodyAtItsRate() throws Exception {
        HttpServer s = vertx.createHttpServer().requestHandler(req -> req.response().end(
                io.vertx.core.buffer.Buffer.buffer(new byte[4096])));
        s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        start(MeshWebClientTest.config("", s.actualPort()).replace("          http_filters:\n", """
                          http_filters:
                          - name: envoy.filters.http.fault
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                              response_rate_limit: {fixed_limit: {limit_kbps: 4}, percentage: {numerator: 100}}
                """));
        long t0 = System.nanoTime();
        java.util.List<String> events = readThrough(mesh.httpClient(), 9080, "reviews");
        assertRateLimited(events, (System.nanoTime() - t0) / 1_000_000);
        String p = "http.outbound_0.0.0.0_9080.";
        String stats = admin("/stats?filter=fault", p + "fault.active_faults: 0");
        assertStats(stats, p, "fault.response_rl_injected: 1", "fault.active_faults: 0", "fault.delays_injected: 0");
    }

    @Test
    void aResponseRateLimitOnTheInboundSideSendsTheServicesHeadersAtOnceAndItsBodyAtItsRate() throws Exception {
        start(MeshWebClientTest.virtualInbound("", """
                              routes:
                              - match: {prefix: /}
                                route: {cluster: "inbound|9080||", timeout: 0s}
                                typed_per_filter_config:
                                  envoy.filters.http.fault:
                                    "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                                    response_rate_limit: {header_limit: {}, percentage: {numerator: 100}}
                """).replace("          http_filters:\n", """
                          http_filters:
                          - name: envoy.filters.http.fault
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                """));
        HttpServer inbound = vertx.createHttpServer().requestHandler(mesh.inbound(req -> req.response().end(
                io.vertx.core.buffer.Buffer.buffer(new byte[4096]))));
        inbound.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        io.vertx.core.http.HttpClient client = vertx.createHttpClient();
        // the header_limit's rate is the request's x-envoy-fault-throughput-response
        long t0 = System.nanoTime();
        java.util.List<String> events = readThrough(client, inbound.actualPort(), "127.0.0.1",
                "x-envoy-fault-throughput-response", "4");
        assertRateLimited(events, (System.nanoTime() - t0) / 1_000_000);
        // without the header, a header_limit limits nothing
        assertEquals(4096, plain.get(inbound.actualPort(), "127.0.0.1", "/").send().await(10, TimeUnit.SECONDS)
                .body().length());
        String p = "http.inbound_0.0.0.0_9080.";
        String stats = admin("/stats?filter=fault", p + "fault.active_faults: 0");
        assertStats(stats, p, "fault.response_rl_injected: 1", "fault.active_faults: 0");
    }

    static final String HISTOGRAM_CLUSTER = "cluster_name=\"outbound|9080||reviews.default.svc.cluster.local\"";
    static final String HISTOGRAM_HCM = "http_conn_manager_prefix=\"outbound_0.0.0.0_9080\"";

    /**
     * Envoy's histograms on the in-JVM client's path, as a sidecar's {@code /stats/prometheus} serves them under
     * Istio's stats tags: the cluster's {@code upstream_rq_time}, {@code upstream_cx_connect_ms} and
     * {@code upstream_cx_length_ms}, the connection manager's {@code downstream_rq_time}, with Envoy's default buckets.
     */
    @Test
    void anUpstreamAnsweringAfter60msPutsTheRequestsInTheBucketsAbove50msOfUpstreamAndDownstreamRqTime()
            throws Exception {
        // answers after 60 ms, and closes each connection, whose length then counts
        HttpServer s = vertx.createHttpServer().requestHandler(req -> vertx.setTimer(60,
                t -> req.response().putHeader("connection", "close").end("ok")));
        int port = s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        start(MeshWebClientTest.config("", port));
        WebClient client = mesh.webClient();
        for (int i = 0; i < 3; i++) {
            assertEquals(200, client.get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS).statusCode());
        }

        String prom = admin("/stats/prometheus", "envoy_cluster_upstream_cx_length_ms_count{" + HISTOGRAM_CLUSTER + "} 3\n");
        for (String h : new String[] {"envoy_cluster_upstream_rq_time", "envoy_http_downstream_rq_time"}) {
            String tag = h.startsWith("envoy_cluster") ? HISTOGRAM_CLUSTER : HISTOGRAM_HCM;
            assertTrue(prom.contains("# TYPE " + h + " histogram\n"), prom);
            // Envoy's default buckets, each bound in Envoy's form
            for (String le : new String[] {"0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500",
                "5000", "10000", "30000", "60000", "300000", "600000", "1800000", "3600000", "+Inf"}) {
                assertTrue(prom.contains(h + "_bucket{" + tag + ",le=\"" + le + "\"} "), le + " of " + h + ":\n" + prom);
            }
            // 60 ms or more: none at or below 50 ms, all well below 1 s
            assertTrue(prom.contains(h + "_bucket{" + tag + ",le=\"50\"} 0\n"), h + ":\n" + prom);
            assertTrue(prom.contains(h + "_bucket{" + tag + ",le=\"1000\"} 3\n"), h + ":\n" + prom);
            assertTrue(prom.contains(h + "_count{" + tag + "} 3\n"), h + ":\n" + prom);
            assertTrue(prom.contains(h + "_sum{" + tag + "} "), h + ":\n" + prom);
            assertFalse(prom.contains(h + "_max"), "as Envoy's: no _max\n" + prom);
        }
        // each request had a new connection, timed from the wait for it; each lasted more than 50 ms (60 ms)
        assertTrue(prom.contains("envoy_cluster_upstream_cx_length_ms_bucket{" + HISTOGRAM_CLUSTER + ",le=\"50\"} 0\n"), prom);
        assertTrue(prom.contains("envoy_cluster_upstream_cx_connect_ms_count{" + HISTOGRAM_CLUSTER + "} 3\n"), prom);
        assertTrue(prom.contains("envoy_cluster_upstream_cx_connect_ms_bucket{" + HISTOGRAM_CLUSTER + ",le=\"1000\"} 3\n"),
                prom);

        // usedonly keeps a histogram written, filter finds it by its family's name
        String used = admin("/stats/prometheus?usedonly&filter=rq_time", "envoy_http_downstream_rq_time_count");
        assertTrue(used.contains("envoy_cluster_upstream_rq_time_count{" + HISTOGRAM_CLUSTER + "} 3\n"), used);
        assertFalse(used.contains("upstream_rq_total"), used);
        // /stats lists the histograms after the counters and gauges, as Envoy's, by Envoy's names; its counters
        // still reset
        String stats = admin("/stats", "upstream_rq_total");
        String c = "cluster.outbound|9080||reviews.default.svc.cluster.local.";
        assertTrue(stats.contains("\n" + c + "upstream_rq_time: P0(nan,"), stats);
        String buckets = admin("/stats?filter=reviews.*upstream_rq_time$&histogram_buckets=cumulative", "B1000(0,3)");
        assertTrue(buckets.startsWith(c + "upstream_rq_time: B0.5(0,0) B1(0,0) B5(0,0) B10(0,0) B25(0,0) B50(0,0) "),
                buckets);
        assertEquals("OK", plain.post(mesh.adminPort(), "127.0.0.1", "/reset_counters").send()
                .await(10, TimeUnit.SECONDS).bodyAsString().strip());
        String reset = admin("/stats?filter=upstream_rq_total", "upstream_rq_total: 0");
        assertTrue(reset.contains("cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_rq_total: 0\n"),
                reset);
    }
}
