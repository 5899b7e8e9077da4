package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.xds.IstioRateLimit;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.RequestOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The standalone proxy runs Envoy's local rate limit filter as Istio's "Enabling Rate Limits using Envoy" task
 * configures it: the filter first in the connection manager (a TypedStruct with only its stat prefix), the token
 * bucket in the virtual host. Four requests a minute reach the application; the fifth is answered
 * {@code 429 local_rate_limited} with {@code x-local-rate-limit: true}, logged with response flag RL and counted in
 * {@code http_local_rate_limiter.http_local_rate_limit.*} and Istio's metrics.
 */
@Timeout(60)
class ProxyLocalRateLimitTest {
    private final Vertx vertx = Vertx.vertx();
    private final AtomicInteger appCalls = new AtomicInteger();
    private final List<StreamInfo> requests = new CopyOnWriteArrayList<>();
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

    private static String config(int port, int app) {
        return ("static_resources:\n  listeners:\n" + """
                  - name: virtualInbound
                    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
                    traffic_direction: INBOUND
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.http_connection_manager
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                          stat_prefix: inbound_0.0.0.0_9080
                          route_config:
                            name: inbound|9080||
                            virtual_hosts:
                            - name: inbound|http|9080
                              domains: ["*"]
                """ + IstioRateLimit.VIRTUAL_HOST_CONFIG.indent(14) + """
                              routes:
                              - match: {prefix: /}
                                route: {cluster: "inbound|9080||"}
                          http_filters:
                """ + (IstioRateLimit.FILTER + """
                - name: envoy.filters.http.router
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                """).indent(10) + """
                  clusters:
                  - name: inbound|9080||
                    type: STATIC
                    connect_timeout: 1s
                    load_assignment:
                      cluster_name: inbound|9080||
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                """).formatted(port, app);
    }

    @Test
    void istiosTaskLetsFourRequestsAMinuteThroughAndAnswersTheFifth429() throws Exception {
        int app = vertx.createHttpServer().requestHandler(req -> {
            appCalls.incrementAndGet();
            req.response().end("reviews");
        }).listen(0, "127.0.0.1").await().actualPort();
        int port = LoopbackProxy.freePort();
        Path file = Files.writeString(dir.resolve("proxy.yaml"), config(port, app));
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(file, -1, -1, 1, s -> {
            requests.add(s);
            metrics.record(s);
        }, AdminHook.NONE).withDownstreamStats(metrics::connectionManager, metrics::listener));
        HttpClient client = vertx.createHttpClient();
        List<String> got = new java.util.ArrayList<>();
        for (int i = 0; i < 5; i++) {
            got.add(client.request(new RequestOptions().setHost("127.0.0.1").setPort(port).setURI("/reviews/" + i)
                            .putHeader("host", "reviews"))
                    .compose(req -> req.send().compose(resp -> resp.body().map(b -> resp.statusCode() + " " + b
                            + " " + resp.getHeader("x-local-rate-limit")))).await(10, TimeUnit.SECONDS));
        }
        client.close().await(5, TimeUnit.SECONDS);
        assertEquals(List.of("200 reviews null", "200 reviews null", "200 reviews null", "200 reviews null",
                "429 local_rate_limited true"), got);
        assertEquals(4, appCalls.get(), "the refused request never reached the application");

        StreamInfo refused = null;
        for (int i = 0; i < 200 && refused == null; i++) {
            refused = requests.stream().filter(s -> s.responseCode() == 429).findFirst().orElse(null);
            if (refused == null) {
                Thread.sleep(25);
            }
        }
        assertTrue(refused != null, String.valueOf(requests));
        assertEquals("RL", ResponseFlag.format(refused.responseFlags()));
        assertEquals("local_rate_limited", refused.responseCodeDetails());
        assertEquals("inbound|9080||", refused.upstreamCluster());

        String scrape = registry.scrape();
        String p = "{local_http_ratelimit_prefix=\"http_local_rate_limiter\"}";
        assertTrue(scrape.contains("envoy_http_local_rate_limit_enabled" + p + " 5.0")
                && scrape.contains("envoy_http_local_rate_limit_ok" + p + " 4.0")
                && scrape.contains("envoy_http_local_rate_limit_rate_limited" + p + " 1.0")
                && scrape.contains("envoy_http_local_rate_limit_enforced" + p + " 1.0"), scrape);
        assertTrue(scrape.lines().anyMatch(l -> l.startsWith("istio_requests_total{")
                && l.contains("response_code=\"429\"") && l.contains("response_flags=\"RL\"")), scrape);
    }
}
