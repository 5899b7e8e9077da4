package dev.inmesh.interception.proxy;

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
 * The standalone proxy records Istio's metrics as its connection manager's {@code istio.stats} filter overrides them,
 * as istiod writes a Telemetry resource's {@code overrides}: REQUEST_COUNT disabled ({@code drop}), the
 * {@code request_protocol} tag removed from every metric ({@code tags_to_remove}).
 */
@Timeout(60)
class ProxyIstioStatsOverridesTest {
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

    @Test
    void aDroppedMetricIsNotScrapedAndARemovedTagIsEmpty() throws Exception {
        int app = vertx.createHttpServer().requestHandler(req -> req.response().end("reviews"))
                .listen(0, "127.0.0.1").await().actualPort();
        int port = LoopbackProxy.freePort();
        Path file = Files.writeString(dir.resolve("proxy.yaml"), ProxyLocalRateLimitTest.inboundConfig(port, app, "",
                """
                - name: istio.stats
                  typed_config:
                    "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                    type_url: type.googleapis.com/stats.PluginConfig
                    value:
                      metrics:
                      - {name: requests_total, drop: true}
                      - {tags_to_remove: [request_protocol]}
                """));
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(file, -1, -1, 1, metrics::record,
                AdminHook.NONE));
        HttpClient client = vertx.createHttpClient();
        RequestOptions o = new RequestOptions().setHost("127.0.0.1").setPort(port).setURI("/").putHeader("host",
                "reviews");
        assertEquals("reviews", onEventLoop(vertx, () -> client.request(o)
                .compose(req -> req.send().compose(resp -> resp.body().map(Object::toString))))
                .await(10, TimeUnit.SECONDS));
        client.close().await(10, TimeUnit.SECONDS);
        String scrape = "";
        long deadline = System.currentTimeMillis() + 5000;
        // wait for both series: they are recorded one after the other
        while (!(scrape.contains("istio_request_duration_milliseconds_count{")
                && scrape.contains("istio_response_bytes_count{")) && System.currentTimeMillis() < deadline) {
            Thread.sleep(10);
            scrape = registry.scrape();
        }
        String s = scrape;
        assertFalse(s.contains("istio_requests_total"), s);
        assertTrue(s.lines().anyMatch(l -> l.startsWith("istio_request_duration_milliseconds_count{")
                && l.contains("request_protocol=\"\"") && l.contains("response_code=\"200\"")), s);
        assertTrue(s.lines().anyMatch(l -> l.startsWith("istio_response_bytes_count{")
                && l.contains("request_protocol=\"\"")), s);
    }
}
