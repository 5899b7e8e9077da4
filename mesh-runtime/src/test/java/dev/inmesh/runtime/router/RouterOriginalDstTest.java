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

/** An ORIGINAL_DST cluster's {@code use_http_header}: the request names its destination, as Envoy's. */
class RouterOriginalDstTest {
    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    @Test
    void aRequestIsSentWhereItsOriginalDstHostHeaderSaysAndAnInvalidOneIsCounted() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(urlEqualTo("/x")).willReturn(ok("here")));
        Cluster od = Cluster.builder("c", DiscoveryType.ORIGINAL_DST).lbPolicy(LbPolicy.CLUSTER_PROVIDED)
                .lbConfig(new LbConfig.OriginalDst(0, LbConfig.OriginalDst.DEFAULT_HEADER))
                .connectTimeout(Duration.ofSeconds(2)).circuitBreakers(CircuitBreakers.DEFAULTS)
                .metadata(Metadata.EMPTY).build();
        PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        MeshMetrics metrics = MeshMetrics.create(reg, WorkloadInfo.UNKNOWN);
        Router router = rig.router();
        router.upstreamStats(metrics::upstream);
        var clusters = ClusterManager.create(new UpstreamEnvironment(rig.vertx, null, null, null, metrics::upstream),
                Map.of("c", od), Map.of());
        try {
            send(router, clusters, wm, reg);
        } finally {
            clusters.close();
        }
    }

    private void send(Router router, ClusterManager clusters, WireMockServer wm, PrometheusMeterRegistry reg) {

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
        assertEquals(1.0, reg.find("envoy_cluster_original_dst_host_invalid").tag("cluster_name", "c").gauge()
                .value());
    }
}
