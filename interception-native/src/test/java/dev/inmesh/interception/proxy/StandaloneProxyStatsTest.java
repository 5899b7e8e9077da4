package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The standalone proxy counts Envoy's per-cluster upstream statistics as the in-JVM mode does. */
class StandaloneProxyStatsTest {
    @TempDir
    Path dir;

    /**
     * The proxy with a listener {@code plain} on {@code port} routing to cluster {@code c} at {@code backend},
     * counting its statistics into {@code registry}.
     */
    private StandaloneProxy start(int port, int backend, PrometheusMeterRegistry registry) throws Exception {
        return start(port, backend, registry, "");
    }

    /** The same, with these more fields of cluster {@code c} (block YAML at the cluster's indentation). */
    private StandaloneProxy start(int port, int backend, PrometheusMeterRegistry registry, String clusterFields)
            throws Exception {
        Path config = dir.resolve("proxy.yaml");
        Files.writeString(config, "static_resources:\n  listeners:\n" + Http1RequestsTest.listener("plain",
                port, "") + Http1RequestsTest.clusterC(backend) + clusterFields);
        MeshMetrics metrics = MeshMetrics.create(registry, WorkloadInfo.UNKNOWN);
        return StandaloneProxy.start(new StandaloneProxy.Settings(config, -1, -1, 1, metrics::record,
                AdminHook.NONE).withStats(metrics::tcpConnection, metrics::upstream)
                .withDownstreamStats(metrics::connectionManager, metrics::listener));
    }

    /** Three requests through the proxy on {@code port}, each answered 200. */
    private static void sendThree(io.vertx.core.http.HttpClient client, int port) throws Exception {
        for (int i = 0; i < 3; i++) {
            int status = get(client, port, "/x").await(10, TimeUnit.SECONDS).statusCode();
            assertEquals(200, status);
        }
    }

    @Test
    void requestsThroughTheProxyCountInTheClustersUpstreamStats() throws Exception {
        Vertx backends = Vertx.vertx();
        StandaloneProxy proxy = null;
        try {
            HttpServer s = backends.createHttpServer().requestHandler(req -> req.response().end("ok"));
            int backend = s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
            int port = LoopbackProxy.freePort();
            PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
            proxy = start(port, backend, registry);
            io.vertx.core.http.HttpClient client = backends.createHttpClient();
            sendThree(client, port);
            client.close().await(10, TimeUnit.SECONDS); // held until here: Vert.x closes a client no longer referenced
            // the statistics are counted once each exchange has ended, just after its response went out
            String expected = "envoy_cluster_upstream_rq_total{cluster_name=\"c\"} 3.0";
            String scrape = scrape(registry, expected);
            assertTrue(scrape.contains(expected), "scrape:\n" + scrape);
            // the first request waited for the cluster's first connection; the breakers are published, none open
            assertTrue(scrape.contains("envoy_cluster_upstream_rq_pending_total{cluster_name=\"c\"} 1.0"),
                    "scrape:\n" + scrape);
            assertTrue(scrape.contains("envoy_cluster_circuit_breakers_default_rq_open{cluster_name=\"c\"} 0.0"),
                    "scrape:\n" + scrape);
        } finally {
            if (proxy != null) {
                proxy.close();
            }
            backends.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void aRequestWhoseClientResetsWhileItWaitsForAConnectionIsCancelledAndTheNextWaitsInItsPlace() throws Exception {
        Vertx backends = Vertx.vertx();
        StandaloneProxy proxy = null;
        try {
            java.util.List<String> received = new java.util.concurrent.CopyOnWriteArrayList<>();
            io.vertx.core.Promise<Void> release = io.vertx.core.Promise.promise();
            HttpServer s = backends.createHttpServer().requestHandler(req -> {
                received.add(req.path());
                if (req.path().equals("/hold")) {
                    release.future().onComplete(v -> req.response().end("held"));
                } else {
                    req.response().end("ok");
                }
            });
            int backend = s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
            int port = LoopbackProxy.freePort();
            PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
            // one upstream connection, one request waiting for it
            proxy = start(port, backend, registry, "    circuit_breakers:\n      thresholds:\n"
                    + "      - {max_connections: 1, max_pending_requests: 1}\n");
            io.vertx.core.http.HttpClient client = backends.createHttpClient();
            var held = get(client, port, "/hold");
            for (long deadline = System.nanoTime() + 10_000_000_000L; !received.contains("/hold")
                    && System.nanoTime() < deadline; ) {
                Thread.sleep(10);
            }
            assertEquals(java.util.List.of("/hold"), received, "the first request holds the one connection");
            String pending = "envoy_cluster_upstream_rq_pending_active{cluster_name=\"c\"} ";
            try (java.net.Socket leaving = new java.net.Socket("127.0.0.1", port)) {
                leaving.setSoLinger(true, 0); // closed with a reset (a FIN alone half-closes, awaiting the answer)
                leaving.getOutputStream().write("GET /gone HTTP/1.1\r\nhost: svc\r\n\r\n"
                        .getBytes(java.nio.charset.StandardCharsets.US_ASCII));
                String scrape = scrape(registry, pending + "1.0");
                assertTrue(scrape.contains(pending + "1.0"), "scrape:\n" + scrape);
            }
            // its client reset the connection: as Envoy on a downstream reset, its pending request is cancelled
            String cancelled = "envoy_cluster_upstream_rq_cancelled{cluster_name=\"c\"} 1.0";
            String scrape = scrape(registry, cancelled);
            assertTrue(scrape.contains(cancelled), "scrape:\n" + scrape);
            assertTrue(scrape.contains(pending + "0.0"), "scrape:\n" + scrape);
            // the next request may wait (not 503 UO), and has the connection once it frees
            var next = get(client, port, "/next");
            scrape(registry, pending + "1.0");
            backends.runOnContext(v -> release.complete());
            assertEquals(200, held.await(10, TimeUnit.SECONDS).statusCode());
            assertEquals(200, next.await(10, TimeUnit.SECONDS).statusCode());
            assertEquals(java.util.List.of("/hold", "/next"), received);
        } finally {
            if (proxy != null) {
                proxy.close();
            }
            backends.close().await(10, TimeUnit.SECONDS);
        }
    }

    /** A GET of {@code path} from host {@code svc} through the proxy on {@code port}. */
    private static io.vertx.core.Future<io.vertx.core.http.HttpClientResponse> get(io.vertx.core.http.HttpClient client,
                                                                                   int port, String path) {
        return client.request(new io.vertx.core.http.RequestOptions().setHost("127.0.0.1").setPort(port)
                .setURI(path).putHeader("host", "svc")).compose(req -> req.send());
    }

    /** The registry's scrape once it holds {@code expected} (or after 15 s, as it is then). */
    private static String scrape(PrometheusMeterRegistry registry, String expected) throws InterruptedException {
        String scrape = registry.scrape();
        for (long deadline = System.nanoTime() + 15_000_000_000L; !scrape.contains(expected)
                && System.nanoTime() < deadline; scrape = registry.scrape()) {
            Thread.sleep(20);
        }
        return scrape;
    }

    @Test
    void requestsThroughTheProxyAndItsConnectionsFillEnvoysHistogramsInTheirBuckets() throws Exception {
        Vertx backends = Vertx.vertx();
        StandaloneProxy proxy = null;
        try {
            // answers after 60 ms and closes each upstream connection, whose length then counts
            HttpServer s = backends.createHttpServer().requestHandler(req -> backends.setTimer(60,
                    t -> req.response().putHeader("connection", "close").end("ok")));
            int backend = s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
            int port = LoopbackProxy.freePort();
            PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
            proxy = start(port, backend, registry);
            io.vertx.core.http.HttpClient client = backends.createHttpClient(
                    new io.vertx.core.http.PoolOptions().setHttp1MaxSize(1));
            sendThree(client, port);
            // the one downstream connection, of three requests of 60 ms or more, closes
            client.close().await(10, TimeUnit.SECONDS);
            String cluster = "cluster_name=\"c\"";
            String hcm = "http_conn_manager_prefix=\"plain\"";
            String listener = "listener_address=\"127.0.0.1_" + port + "\"";
            // the upstream connections' lengths count as their closes are seen, which may come after the client's
            scrape(registry, "envoy_cluster_upstream_cx_length_ms_count{" + cluster + "} 3\n");
            String scrape = scrape(registry, "envoy_listener_downstream_cx_length_ms_count{" + listener + "} 1");
            for (String h : new String[] {"envoy_cluster_upstream_rq_time{" + cluster,
                "envoy_http_downstream_rq_time{" + hcm, "envoy_cluster_upstream_cx_length_ms{" + cluster}) {
                String name = h.substring(0, h.indexOf('{'));
                String tag = h.substring(h.indexOf('{') + 1);
                // Envoy's default buckets; 60 ms or more each: none at or below 50 ms, all below 1 s
                for (double le : MeshMetrics.BUCKETS) {
                    assertTrue(scrape.contains(name + "_bucket{" + tag + ",le=\"" + le + "\"} "), le + ":\n" + scrape);
                }
                assertTrue(scrape.contains(name + "_bucket{" + tag + ",le=\"50.0\"} 0\n"), h + ":\n" + scrape);
                assertTrue(scrape.contains(name + "_bucket{" + tag + ",le=\"1000.0\"} 3\n"), h + ":\n" + scrape);
                assertTrue(scrape.contains(name + "_count{" + tag + "} 3\n"), h + ":\n" + scrape);
            }
            assertTrue(scrape.contains("envoy_cluster_upstream_cx_connect_ms_count{" + cluster + "} 3\n"), scrape);
            assertTrue(scrape.contains("envoy_cluster_upstream_cx_connect_ms_bucket{" + cluster
                    + ",le=\"1000.0\"} 3\n"), scrape);
            // the downstream connection lasted the three requests: more than 100 ms
            for (String h : new String[] {"envoy_http_downstream_cx_length_ms{" + hcm,
                "envoy_listener_downstream_cx_length_ms{" + listener}) {
                String name = h.substring(0, h.indexOf('{'));
                String tag = h.substring(h.indexOf('{') + 1);
                assertTrue(scrape.contains(name + "_count{" + tag + "} 1\n"), h + ":\n" + scrape);
                assertTrue(scrape.contains(name + "_bucket{" + tag + ",le=\"100.0\"} 0\n"), h + ":\n" + scrape);
                assertTrue(scrape.contains(name + "_bucket{" + tag + ",le=\"+Inf\"} 1\n"), h + ":\n" + scrape);
            }
        } finally {
            if (proxy != null) {
                proxy.close();
            }
            backends.close().await(10, TimeUnit.SECONDS);
        }
    }
}
