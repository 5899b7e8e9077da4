package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.ok;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;
import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.github.tomakehurst.wiremock.WireMockServer;
import dev.inmesh.api.config.cluster.CircuitBreakers;
import dev.inmesh.api.config.cluster.CommonHttpProtocolOptions;
import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.LbConfig;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.core.Metadata;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.UpstreamEnvironment;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * An ORIGINAL_DST cluster's {@code use_http_header}: the request names its destination, as Envoy's; and its hosts'
 * lifetime: a host stays while its pool holds a connection, as Envoy's cleanup keeps it.
 */
class RouterOriginalDstTest {
    private final RouterRig rig = new RouterRig();
    private final PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final MeshMetrics metrics = MeshMetrics.create(reg, WorkloadInfo.UNKNOWN);
    private ClusterManager clusters;

    @AfterEach
    void close() {
        if (clusters != null) {
            clusters.close();
        }
        rig.close();
    }

    /** Cluster {@code c}, ORIGINAL_DST with {@code use_http_header}, and a router that counts its statistics. */
    private Router router(Cluster.Builder c) {
        Cluster od = c.lbPolicy(LbPolicy.CLUSTER_PROVIDED)
                .lbConfig(new LbConfig.OriginalDst(0, LbConfig.OriginalDst.DEFAULT_HEADER))
                .connectTimeout(Duration.ofSeconds(2)).circuitBreakers(CircuitBreakers.DEFAULTS)
                .metadata(Metadata.EMPTY).build();
        Router router = rig.router();
        router.upstreamStats(metrics::upstream);
        clusters = ClusterManager.create(new UpstreamEnvironment(rig.vertx, null, null, null, metrics::upstream),
                Map.of("c", od), Map.of());
        return router;
    }

    private static Cluster.Builder originalDst() {
        return Cluster.builder("c", DiscoveryType.ORIGINAL_DST);
    }

    /** Cluster {@code c}'s statistic {@code envoy_cluster_<name>}. */
    private double stat(String name) {
        return reg.find("envoy_cluster_" + name).tag("cluster_name", "c").meter().measure().iterator().next()
                .getValue();
    }

    @Test
    void aRequestIsSentWhereItsOriginalDstHostHeaderSaysAndAnInvalidOneIsCounted() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(urlEqualTo("/x")).willReturn(ok("here")));
        Router router = router(originalDst());
        var r = rig.call(router, get("/x", "x-envoy-original-dst-host", "127.0.0.1:" + wm.port()), routeToC(""),
                clusters);
        assertEquals(200, r.status());
        assertEquals("here", r.body());
        assertEquals("127.0.0.1:" + wm.port(), r.info().upstreamHost());
        wm.verify(1, anyRequestedFor(urlEqualTo("/x")));

        // a value that is no IP:PORT: counted, and the connection's own destination taken (none here: 503 UH)
        var invalid = rig.call(router, get("/x", "x-envoy-original-dst-host", "reviews:9080"), routeToC(""),
                clusters);
        assertEquals(503, invalid.status());
        assertEquals("UH", invalid.flags());
        assertEquals(1.0, stat("original_dst_host_invalid"));
    }

    @Test
    void aHostStaysWhileItsPoolHoldsAConnectionAndGoesOnceItsLastOneClosed() throws Exception {
        // as Envoy's cleanup under original_dst_rely_on_idle_timeout (on by default): a host not picked since the last
        // sweep stays while a pool holds a connection to it, and goes once the cluster's idle_timeout closed them
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(urlEqualTo("/x")).willReturn(ok("here")));
        Router router = router(originalDst().cleanupInterval(Duration.ofMillis(100))
                .commonHttpProtocolOptions(new CommonHttpProtocolOptions(Duration.ofSeconds(2), Duration.ZERO, 0)));
        var to = get("/x", "x-envoy-original-dst-host", "127.0.0.1:" + wm.port());
        assertEquals(200, rig.call(router, to, routeToC(""), clusters).status());
        Thread.sleep(600); // a few sweeps, the connection idle in the pool
        assertEquals(1, clusters.cluster("c").hosts().size(), "kept for its pooled connection");
        assertEquals(200, rig.call(router, get("/x", "x-envoy-original-dst-host", "127.0.0.1:" + wm.port()),
                routeToC(""), clusters).status());
        assertEquals(1.0, stat("upstream_cx_total"), "the second request on the first one's connection");
        long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(10);
        while (!clusters.cluster("c").hosts().isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        assertEquals(0, clusters.cluster("c").hosts().size(), "gone once the idle timeout closed its connection");
        assertEquals(0.0, stat("upstream_cx_active"));
    }
}
