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

    @Test
    void requestsThroughTheProxyCountInTheClustersUpstreamStats() throws Exception {
        Vertx backends = Vertx.vertx();
        StandaloneProxy proxy = null;
        try {
            HttpServer s = backends.createHttpServer().requestHandler(req -> req.response().end("ok"));
            int backend = s.listen(0, "127.0.0.1").await(5, TimeUnit.SECONDS).actualPort();
            int port = LoopbackProxy.freePort();
            Path config = dir.resolve("proxy.yaml");
            Files.writeString(config, "static_resources:\n  listeners:\n" + Http1RequestsTest.listener("plain",
                    port, "") + Http1RequestsTest.clusterC(backend));
            PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
            MeshMetrics metrics = MeshMetrics.create(registry, WorkloadInfo.UNKNOWN);
            proxy = StandaloneProxy.start(new StandaloneProxy.Settings(config, -1, -1, 1, metrics::record,
                    AdminHook.NONE).withStats(metrics::tcpConnectionOpened, metrics::upstream));
            io.vertx.core.http.HttpClient client = backends.createHttpClient();
            for (int i = 0; i < 3; i++) {
                int status = client.request(new io.vertx.core.http.RequestOptions().setHost("127.0.0.1").setPort(port)
                        .setURI("/x").putHeader("host", "svc")).compose(req -> req.send())
                        .await(5, TimeUnit.SECONDS).statusCode();
                assertEquals(200, status);
            }
            client.close().await(5, TimeUnit.SECONDS); // held until here: Vert.x closes a client no longer referenced
            // the statistics are counted once each exchange has ended, just after its response went out
            String expected = "envoy_cluster_upstream_rq_total{cluster_name=\"c\"} 3.0";
            String scrape = registry.scrape();
            for (long deadline = System.nanoTime() + 5_000_000_000L; !scrape.contains(expected)
                    && System.nanoTime() < deadline; scrape = registry.scrape()) {
                Thread.sleep(20);
            }
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
}
