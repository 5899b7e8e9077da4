package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import io.vertx.core.Vertx;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The in-JVM mesh applies a bootstrap's {@code stats_config.stats_matcher} and {@code histogram_bucket_settings} as the
 * standalone proxy does.
 */
class MeshStatsMatcherTest {
    @TempDir
    Path dir;

    /** The mesh's envoy_cluster* and envoy_http* meters once one request went through it. */
    private List<String> envoyMeters(String statsConfig) throws Exception {
        return afterARequest(statsConfig, mesh -> mesh.registry().getMeters().stream().map(m -> m.getId().getName())
                .filter(n -> n.startsWith("envoy_cluster") || n.startsWith("envoy_http")).distinct().sorted()
                .toList());
    }

    /** What {@code read} reads of the mesh of a bootstrap with {@code statsConfig} once one request went through it. */
    private <T> T afterARequest(String statsConfig, java.util.function.Function<DefaultMesh, T> read)
            throws Exception {
        Path file = dir.resolve("bootstrap" + statsConfig.length() + ".yaml");
        Vertx vertx = Vertx.vertx();
        try {
            int backend = vertx.createHttpServer().requestHandler(r -> r.response().end("ok"))
                    .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
            Files.writeString(file, MeshWebClientTest.config("", backend) + statsConfig);
            Mesh mesh = Mesh.create(vertx, new MeshOptions().setConfigFile(file.toString()).setAdminPort(-1));
            try {
                mesh.start().await(10, TimeUnit.SECONDS);
                assertEquals(200, mesh.webClient().get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS)
                        .statusCode());
                return read.apply((DefaultMesh) mesh);
            } finally {
                mesh.close().await(10, TimeUnit.SECONDS);
            }
        } finally {
            vertx.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void theClustersStatisticsExistOnlyWhenTheMatcherKeepsThem() throws Exception {
        List<String> all = envoyMeters("");
        assertTrue(all.contains("envoy_cluster_upstream_rq_total") && all.contains("envoy_http_downstream_rq_total"),
                all.toString());
        // the connection manager's kept (not the codecs', http1.* and http2.*), the cluster's not made
        List<String> some = envoyMeters("""
                stats_config:
                  stats_matcher:
                    inclusion_list:
                      patterns: [{prefix: cluster_manager}, {prefix: "http."}]
                """);
        assertEquals(all.stream().filter(n -> n.startsWith("envoy_cluster_manager_") || n.startsWith("envoy_http_"))
                .toList(), some);
        assertTrue(some.contains("envoy_http_downstream_rq_total"), some.toString());
    }

    @Test
    void theHistogramBucketSettingsGiveTheMeshsHistogramsTheirBuckets() throws Exception {
        String served = afterARequest("""
                stats_config:
                  histogram_bucket_settings:
                  - match: {suffix: upstream_rq_time}
                    buckets: [20, 5]
                """, mesh -> mesh.registry().scrape());
        List<String> bounds = served.lines().filter(l -> l.startsWith("envoy_cluster_upstream_rq_time_bucket{"))
                .map(l -> l.replaceAll(".*le=\"([^\"]*)\".*", "$1")).distinct().toList();
        assertEquals(List.of("5.0", "20.0", "+Inf"), bounds, served);
        // no rule matches http.outbound_0.0.0.0_9080.downstream_rq_time: Envoy's default buckets
        assertTrue(served.contains("envoy_http_downstream_rq_time_bucket{http_conn_manager_prefix="
                + "\"outbound_0.0.0.0_9080\",le=\"3600000.0\"}"), served);
    }
}
