package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
 * {@code virtualInbound} chain's, read from the admin server's {@code /stats} and {@code /stats/prometheus}.
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
            mesh.close().await(5, TimeUnit.SECONDS);
        }
        vertx.close().await(5, TimeUnit.SECONDS);
    }

    private int server() throws Exception {
        HttpServer s = vertx.createHttpServer().requestHandler(req -> req.response().end("ok"));
        s.listen(0, "127.0.0.1").await(5, TimeUnit.SECONDS);
        return s.actualPort();
    }

    private Mesh start(String config) throws Exception {
        Path file = dir.resolve("mesh.yaml");
        Files.writeString(file, config);
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
            body = plain.get(mesh.adminPort(), "127.0.0.1", path).send().await(5, TimeUnit.SECONDS).bodyAsString();
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
                .await(5, TimeUnit.SECONDS).statusCode());
        assertEquals(200, client.get(9080, "reviews", "/").putHeader("origin", "https://evil.example").send()
                .await(5, TimeUnit.SECONDS).statusCode());
        assertEquals(404, client.get(9080, "ratings", "/").send().await(5, TimeUnit.SECONDS).statusCode());
        assertEquals(503, client.get(9080, "reviews", "/").putHeader("end-user", "jason").send()
                .await(5, TimeUnit.SECONDS).statusCode());

        String p = "http.outbound_0.0.0.0_9080.";
        String stats = admin("/stats?filter=^http\\.", p + "downstream_rq_completed: 4");
        assertStats(stats, p, "downstream_rq_total: 4", "downstream_rq_http1_total: 4", "downstream_rq_2xx: 2",
                "downstream_rq_4xx: 1", "downstream_rq_5xx: 1", "downstream_rq_active: 0", "no_route: 1",
                "fault.aborts_injected: 1", "fault.delays_injected: 0", "fault.active_faults: 0",
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
        assertTrue(prom.contains("envoy_http_downstream_rq_active{" + tag + "} 0\n"), prom);
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
        inbound.listen(0, "127.0.0.1").await(5, TimeUnit.SECONDS);
        int port = inbound.actualPort();
        assertEquals(200, plain.get(port, "127.0.0.1", "/reviews/0").send().await(5, TimeUnit.SECONDS)
                .statusCode());
        assertEquals(403, plain.get(port, "127.0.0.1", "/blocked").send().await(5, TimeUnit.SECONDS)
                .statusCode());
        assertEquals(301, plain.get(port, "127.0.0.1", "/old").send().await(5, TimeUnit.SECONDS).statusCode());
        assertEquals(404, plain.request(HttpMethod.GET, port, "127.0.0.1", "/other").send()
                .await(5, TimeUnit.SECONDS).statusCode());

        String p = "http.inbound_0.0.0.0_9080.";
        String stats = admin("/stats?filter=^http\\.", p + "downstream_rq_completed: 4");
        assertStats(stats, p, "downstream_rq_total: 4", "downstream_rq_2xx: 1", "downstream_rq_3xx: 1",
                "downstream_rq_4xx: 2", "downstream_rq_active: 0", "no_route: 1", "rq_direct_response: 1",
                "rq_redirect: 1");
        String prom = admin("/stats/prometheus", "envoy_http_downstream_rq_total");
        assertTrue(prom.contains("envoy_http_downstream_rq_total{http_conn_manager_prefix=\"inbound_0.0.0.0_9080\"}"
                + " 4\n"), prom);
    }

    @Test
    void aFaultPastMaxActiveFaultsIsNotInjectedAndCountsAsAnOverflow() throws Exception {
        int a = server();
        start(MeshWebClientTest.config("", a).replace("          http_filters:\n", """
                          http_filters:
                          - name: envoy.filters.http.fault
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                              delay: {fixed_delay: 1s, percentage: {numerator: 100}}
                              max_active_faults: 1
                """));
        WebClient client = mesh.webClient();
        var delayed = client.get(9080, "reviews", "/").send();
        String p = "http.outbound_0.0.0.0_9080.";
        String during = admin("/stats?filter=fault", p + "fault.active_faults: 1");
        assertTrue(during.contains(p + "fault.active_faults: 1\n"), during);
        long t0 = System.nanoTime();
        assertEquals(200, client.get(9080, "reviews", "/").send().await(5, TimeUnit.SECONDS).statusCode());
        assertTrue((System.nanoTime() - t0) / 1_000_000 < 900, "the second request was not delayed");
        assertEquals(200, delayed.await(5, TimeUnit.SECONDS).statusCode());
        String after = admin("/stats?filter=fault", p + "fault.active_faults: 0");
        assertStats(after, p, "fault.delays_injected: 1", "fault.faults_overflow: 1", "fault.active_faults: 0");
    }
}
