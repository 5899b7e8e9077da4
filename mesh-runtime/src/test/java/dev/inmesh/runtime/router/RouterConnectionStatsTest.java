package dev.inmesh.runtime.router;

import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.CommonHttpProtocolOptions;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.http.HttpServerOptions;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** A cluster's connection-lifetime counters, counted where Envoy's pool counts them. */
class RouterConnectionStatsTest {
    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    /**
     * {@code upstream_cx_max_requests}: as Envoy's pool, once per connection given its last request under
     * {@code max_requests_per_connection} (2 here): five requests one after the other take three connections, two of
     * which were given their last one; over HTTP/1.1 and over HTTP/2.
     */
    @Test
    void aConnectionGivenItsLastRequestCountsInUpstreamCxMaxRequests() throws Exception {
        int port = rig.vertx.createHttpServer(new HttpServerOptions().setHttp2ClearTextEnabled(true))
                .requestHandler(req -> req.response().end("ok")).listen(0, "127.0.0.1").toCompletionStage()
                .toCompletableFuture().get(10, TimeUnit.SECONDS).actualPort();
        for (boolean h2 : new boolean[] {false, true}) {
            PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
            Router router = rig.router();
            router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
            var clusters = rig.clusters(Cluster.builder("c", DiscoveryType.STATIC).lbPolicy(LbPolicy.ROUND_ROBIN)
                    .connectTimeout(Duration.ofSeconds(2)).loadAssignment(RouterRig.hosts("c", port)).http2(h2)
                    .commonHttpProtocolOptions(new CommonHttpProtocolOptions(null, null, 2)).build());
            for (int i = 0; i < 5; i++) {
                assertEquals(200, rig.call(router, get("/" + i), routeToC(""), clusters).status());
            }
            assertEquals(2.0, reg.get("envoy_cluster_upstream_cx_max_requests").tag("cluster_name", "c").gauge()
                    .value(), h2 ? "HTTP/2" : "HTTP/1.1");
            assertEquals(3.0, reg.get("envoy_cluster_upstream_cx_total").tag("cluster_name", "c").functionCounter()
                    .count(), h2 ? "HTTP/2" : "HTTP/1.1");
        }
    }

    /**
     * {@code upstream_cx_close_notify}: as Envoy's HTTP/1 pool, each answer that ends its connection
     * ({@code Connection: close}, or HTTP/1.0 without keep-alive) counts once; a kept connection's answers do not.
     */
    @Test
    void anHttp1AnswerThatClosesItsConnectionCountsInUpstreamCxCloseNotify() throws Exception {
        int port = rig.vertx.createHttpServer().requestHandler(req -> {
            if (req.path().equals("/close")) {
                req.response().putHeader("connection", "close");
            }
            req.response().end("ok");
        }).listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS).actualPort();
        PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        Router router = rig.router();
        router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
        var clusters = rig.clusters(RouterRig.cluster("c", port));
        for (String path : new String[] {"/keep", "/close", "/keep", "/close"}) {
            assertEquals(200, rig.call(router, get(path), routeToC(""), clusters).status());
        }
        assertEquals(2.0, reg.get("envoy_cluster_upstream_cx_close_notify").tag("cluster_name", "c").gauge().value());
    }
}
