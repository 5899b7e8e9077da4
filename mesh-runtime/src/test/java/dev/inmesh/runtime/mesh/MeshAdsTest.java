package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.xds.ads.XdsFixtures;
import io.envoyproxy.controlplane.cache.v3.Snapshot;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.ext.web.client.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A mesh on a control plane (a java-control-plane server): {@code inmesh.xds.initial-fetch-timeout-seconds}, how long
 * {@code start()} waits for a control plane that has no configuration for this node yet (no snapshot until the test
 * sets one), and {@code inmesh.xds.delta}, the configuration taken over incremental xDS.
 */
class MeshAdsTest extends MeshOnXdsRig {

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

    /**
     * With nothing from the control plane within the initial fetch timeouts (CDS's, then LDS's), the mesh is LIVE on
     * an empty configuration, as Envoy's server: its CDS and LDS subscriptions' init targets are ready on the fetch
     * timeout (GrpcSubscriptionImpl::onConfigUpdateFailed, FetchTimedout), so its cluster manager and init manager
     * initialize and it starts its workers with no listener.
     */
    @Test
    void afterTheInitialFetchTimeoutsWithNothingFromTheServerTheMeshIsLive() throws Exception {
        mesh = Mesh.create(vertx, options().setAdminPort(0).setXdsInitialFetchTimeoutSeconds(1));
        mesh.start().await(10, TimeUnit.SECONDS);
        assertTrue(mesh.isReady());
        int admin = ((DefaultMesh) mesh).adminPort();
        io.vertx.ext.web.client.WebClient plain = io.vertx.ext.web.client.WebClient.create(vertx);
        HttpResponse<Buffer> ready = plain.get(admin, "127.0.0.1", "/ready").send().await(10, TimeUnit.SECONDS);
        assertEquals(200, ready.statusCode());
        assertEquals("LIVE\n", ready.bodyAsString());
        assertTrue(plain.get(admin, "127.0.0.1", "/stats?filter=^server.state$").send().await(10, TimeUnit.SECONDS)
                .bodyAsString().contains("server.state: 0"));
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
    void aStartThatFailsLetsGoOfWhatItStartedTheControlPlanesStreamToo() throws Exception {
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            mesh = Mesh.create(vertx, options().setAdminPort(taken.getLocalPort()).setXdsInitialFetchTimeoutSeconds(0));
            Future<Void> started = mesh.start();
            Throwable e = started.toCompletionStage().toCompletableFuture().handle((v, t) -> t)
                    .get(10, TimeUnit.SECONDS);
            assertTrue(e instanceof java.net.BindException, String.valueOf(e));
            // the ADS client the failed start began goes (or never connects), where it stayed connected (and
            // reconnecting) for good: three seconds are enough for it to connect and send its first request
            Thread.sleep(3_000);
            assertEquals(0, server.openStreams.get(), "ADS streams still open after the failed start");
        }
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

    private int upstream(String name) throws Exception {
        HttpServer s = vertx.createHttpServer().requestHandler(req -> req.response().end(name));
        return s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    private static Snapshot snapshot(String version, String cluster, int a, int b) {
        return Snapshot.create(List.of(XdsFixtures.staticCluster("a", a), XdsFixtures.staticCluster("b", b)),
                version, List.of(), version, List.of(XdsFixtures.listener("0.0.0.0_9080", 9080, "9080")), version,
                List.of(XdsFixtures.route("9080", cluster)), version, List.of(), version);
    }

    private String get() throws Exception {
        HttpResponse<Buffer> r = mesh.webClient().get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode());
        return r.bodyAsString();
    }

    @Test
    void aMeshOnDeltaXdsRoutesByWhatTheServerSendsAndByItsChanges() throws Exception {
        int a = upstream("a");
        int b = upstream("b");
        server.set(snapshot("1", "a", a, b));
        mesh = Mesh.create(vertx, new MeshOptions().setAdminPort(-1).setXdsAddress("127.0.0.1:" + server.port())
                .setXdsDelta(true));
        mesh.start().await(10, TimeUnit.SECONDS);
        assertEquals("a", get());
        assertFalse(server.deltaRequests.isEmpty());
        assertTrue(server.requests.isEmpty(), "no state of the world stream: " + server.requests);

        server.set(snapshot("2", "b", a, b));
        long end = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        String seen = get();
        while (!seen.equals("b") && System.nanoTime() < end) {
            Thread.sleep(20);
            seen = get();
        }
        assertEquals("b", seen, "the route change applies to the next request");
    }

    @Test
    void theSettingIsReadAndStateOfTheWorldIsTheDefault() {
        assertFalse(new MeshOptions().isXdsDelta());
        assertTrue(MeshSettings.from(new io.smallrye.config.SmallRyeConfigBuilder()
                .withSources(new io.smallrye.config.EnvConfigSource(Map.of("INMESH_XDS_DELTA", "true"), 300))
                .build()).isXdsDelta());
        assertTrue(DefaultMesh.adsOptions(new MeshOptions().setXdsAddress("127.0.0.1:15010").setXdsDelta(true),
                new dev.inmesh.runtime.stats.WorkloadInfo("w", "default", "", ""), "Kubernetes", "NONE").delta());
        assertFalse(DefaultMesh.adsOptions(new MeshOptions().setXdsAddress("127.0.0.1:15010"),
                new dev.inmesh.runtime.stats.WorkloadInfo("w", "default", "", ""), "Kubernetes", "NONE").delta());
    }
}
