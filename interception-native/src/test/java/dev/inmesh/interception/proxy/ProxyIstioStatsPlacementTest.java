package dev.inmesh.interception.proxy;

import static dev.inmesh.runtime.snapshot.IstioStatsPlacementTest.httpListener;
import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.RequestOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The standalone proxy records Istio's metrics where Istio's stats filter is: in a configuration such as istiod's,
 * whose bootstrap listeners for Prometheus scrapes (15090) and readiness probes (15021) have only the router, their
 * requests are in no metric; in a configuration with no stats filter anywhere, every listener's requests are.
 */
@Timeout(60)
class ProxyIstioStatsPlacementTest {
    private final Vertx vertx = Vertx.vertx();
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final MeshMetrics metrics = MeshMetrics.create(registry, WorkloadInfo.UNKNOWN);
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

    private static final String STATS_FILTER = """
            - name: istio.stats
              typed_config:
                "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                type_url: type.googleapis.com/stats.PluginConfig
                value: {}
            """;

    /** Starts the proxy with a probe listener (only the router) and an inbound one; answers their ports. */
    private int[] start(String inboundFilters) throws Exception {
        int app = vertx.createHttpServer().requestHandler(req -> req.response().end("ok"))
                .listen(0, "127.0.0.1").await().actualPort();
        int probe = LoopbackProxy.freePort();
        int inbound = LoopbackProxy.freePort();
        String yaml = "static_resources:\n  listeners:\n" + (httpListener("agent", probe, "")
                + httpListener("inbound", inbound, inboundFilters)).indent(2) + """
                  clusters:
                  - name: app
                    type: STATIC
                    connect_timeout: 1s
                    load_assignment:
                      cluster_name: app
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                """.formatted(app);
        Path file = Files.writeString(dir.resolve("proxy.yaml"), yaml);
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(file, -1, -1, 1, metrics::record,
                AdminHook.NONE));
        return new int[] {probe, inbound};
    }

    private void get(int port, String host) throws Exception {
        HttpClient client = vertx.createHttpClient();
        RequestOptions o = new RequestOptions().setHost("127.0.0.1").setPort(port).setURI("/healthz/ready")
                .putHeader("host", host);
        assertEquals("ok", onEventLoop(vertx, () -> client.request(o)
                .compose(req -> req.send().compose(resp -> resp.body().map(Object::toString))))
                .await(10, TimeUnit.SECONDS));
        client.close().await(10, TimeUnit.SECONDS);
    }

    /** The scrape once a request to {@code host} is in it (at most 5 s), or as it is then. */
    private String scrapeWith(String host) throws Exception {
        String scrape = registry.scrape();
        long deadline = System.currentTimeMillis() + 5000;
        while (!scrape.contains("destination_service=\"" + host + "\"") && System.currentTimeMillis() < deadline) {
            Thread.sleep(10);
            scrape = registry.scrape();
        }
        return scrape;
    }

    @Test
    void aListenerWithoutTheStatsFilterRecordsNoIstioMetricWhereAnotherHasIt() throws Exception {
        int[] ports = start(STATS_FILTER);
        get(ports[0], "probe.local");
        get(ports[1], "reviews.local");
        String scrape = scrapeWith("reviews.local");
        assertTrue(scrape.lines().anyMatch(l -> l.startsWith("istio_requests_total{")
                && l.contains("destination_service=\"reviews.local\"")), scrape);
        // the probe's request ended before the inbound one was sent: it would be there by now
        assertFalse(scrape.contains("probe.local"), scrape);
    }

    @Test
    void withoutTheStatsFilterAnywhereEveryListenerRecords() throws Exception {
        int[] ports = start("");
        get(ports[0], "probe.local");
        get(ports[1], "reviews.local");
        String scrape = scrapeWith("reviews.local");
        for (String host : new String[] {"probe.local", "reviews.local"}) {
            assertTrue(scrapeWith(host).lines().anyMatch(l -> l.startsWith("istio_requests_total{")
                    && l.contains("destination_service=\"" + host + "\"")), scrape);
        }
    }
}
