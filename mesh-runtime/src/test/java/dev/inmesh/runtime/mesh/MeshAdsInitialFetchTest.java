package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.xds.ads.XdsFixtures;
import dev.inmesh.runtime.xds.ads.XdsTestServer;
import io.envoyproxy.controlplane.cache.v3.Snapshot;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@code inmesh.xds.initial-fetch-timeout-seconds}: how long {@code start()} waits for a control plane that has no
 * configuration for this node yet (here: a java-control-plane server with no snapshot until the test sets one).
 */
class MeshAdsInitialFetchTest {
    private Vertx vertx;
    private XdsTestServer server;
    private Mesh mesh;

    @BeforeEach
    void setUp() throws Exception {
        vertx = Vertx.vertx();
        server = XdsTestServer.start();
    }

    @AfterEach
    void tearDown() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        server.close();
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    private MeshOptions options() {
        return new MeshOptions().setAdminPort(-1).setXdsAddress("127.0.0.1:" + server.port());
    }

    @Test
    void startGoesOnWithoutTheConfigurationOnceTheTimeoutIsOver() throws Exception {
        mesh = Mesh.create(vertx, options().setXdsInitialFetchTimeoutSeconds(1));
        long begin = System.nanoTime();
        // the default (15 s) would still be waiting at the end of this await
        mesh.start().await(10, TimeUnit.SECONDS);
        long tookMillis = Duration.ofNanos(System.nanoTime() - begin).toMillis();
        assertTrue(tookMillis >= 900, "started after " + tookMillis + " ms, before the timeout");
    }

    @Test
    void zeroWaitsForTheFirstConfigurationWithNoEnd() throws Exception {
        mesh = Mesh.create(vertx, options().setXdsInitialFetchTimeoutSeconds(0));
        Future<Void> started = mesh.start();
        server.awaitRequest(r -> r.getTypeUrl().endsWith("Cluster"), Duration.ofSeconds(10));
        assertThrows(java.util.concurrent.TimeoutException.class, () -> started.await(2, TimeUnit.SECONDS));
        assertFalse(started.isComplete(), "started with no configuration");

        server.set(Snapshot.create(List.of(), "1", List.of(), "1",
                List.of(XdsFixtures.listener("0.0.0.0_9080", 9080, "9080")), "1",
                List.of(XdsFixtures.route("9080", "c1")), "1", List.of(), "1"));
        started.await(10, TimeUnit.SECONDS);
        assertTrue(started.succeeded());
    }

    @Test
    void theSettingIsReadAndChecked() {
        assertEquals(0, MeshSettings.from(new io.smallrye.config.SmallRyeConfigBuilder()
                .withSources(new io.smallrye.config.EnvConfigSource(
                        java.util.Map.of("INMESH_XDS_INITIAL_FETCH_TIMEOUT_SECONDS", "0"), 300))
                .build()).getXdsInitialFetchTimeoutSeconds());
        assertEquals(15, new MeshOptions().getXdsInitialFetchTimeoutSeconds());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new MeshOptions().setXdsInitialFetchTimeoutSeconds(-1));
        assertEquals("inmesh.xds.initial-fetch-timeout-seconds: -1 (expected: >= 0; 0 waits with no end)",
                e.getMessage());
        assertEquals(Duration.ZERO, DefaultMesh.adsOptions(options().setXdsInitialFetchTimeoutSeconds(0),
                new dev.inmesh.runtime.stats.WorkloadInfo("w", "default", "", ""), "Kubernetes", "NONE")
                .initialFetchTimeout());
    }
}
