package dev.inmesh.runtime.router;

import static dev.inmesh.runtime.router.RouterRig.breakers;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.cluster.OutlierDetection;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.Host;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Promise;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A request that waits for a connection (a pending request) and is given up before it has one, as Envoy's router
 * cancels it: it leaves the pool's queue at once, no longer counts under {@code max_pending_requests}, counts in
 * {@code upstream_rq_cancelled}, and the connection that frees next goes to the request still waiting.
 */
class RouterPendingCancelTest {
    private final RouterRig rig = new RouterRig();
    private final List<String> received = new CopyOnWriteArrayList<>();
    /** Completed by a test to let {@code /hold} answer. */
    private final Promise<Void> release = Promise.promise();
    private final PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private ClusterManager clusters;
    private Router router;
    private int port;

    @BeforeEach
    void upstream() throws Exception {
        HttpServer server = rig.vertx.createHttpServer(new HttpServerOptions().setHost("127.0.0.1").setPort(0));
        server.requestHandler(req -> {
            received.add(req.path());
            if (req.path().equals("/hold")) {
                release.future().onComplete(v -> req.response().end("held"));
            } else {
                req.response().end("ok");
            }
        });
        port = server.listen().toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS).actualPort();
        // one connection, one request waiting for it
        clusters = rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, breakers(1, 1, 1024, 3), null, port));
        router = rig.router();
        router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
    }

    @AfterEach
    void close() {
        release.tryComplete();
        rig.close();
    }

    private double stat(String name) {
        var search = reg.find("envoy_cluster_" + name).tag("cluster_name", "c");
        return name.endsWith("_total") ? search.functionCounter().count() : search.gauge().value();
    }

    private void awaitStat(String name, double value) {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (stat(name) != value && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        assertEquals(value, stat(name), name);
    }

    /** Starts {@code /hold}, which holds the cluster's one connection until {@link #release} completes. */
    private CompletableFuture<RouterRig.Result> holdTheConnection() {
        CompletableFuture<RouterRig.Result> held = rig.start(router, get("/hold"), routeToC(""), clusters);
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (!received.contains("/hold") && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        assertEquals(List.of("/hold"), received);
        return held;
    }

    /**
     * After the one that was given up, the next request may wait (not 503 UO), and gets the connection once it frees:
     * the connection does not go to the request that was already answered.
     */
    private void theNextRequestWaitsAndGetsTheConnection(CompletableFuture<RouterRig.Result> held) {
        CompletableFuture<RouterRig.Result> next = rig.start(router, get("/next"), routeToC(""), clusters);
        awaitStat("upstream_rq_pending_active", 1);
        rig.vertx.runOnContext(v -> release.complete());
        assertEquals(200, RouterRig.await(held).status());
        RouterRig.Result r = RouterRig.await(next);
        assertEquals(200, r.status());
        assertEquals("ok", r.body());
        assertEquals(List.of("/hold", "/next"), received);
        assertEquals(0, stat("upstream_rq_pending_active"));
        assertEquals(1, stat("upstream_rq_cancelled"));
        assertEquals(0, clusters.cluster("c").circuitBreakers().pendingRequests());
    }

    @Test
    void aPendingRequestTheRouteTimeoutEndsLeavesThePoolAndTheNextOneWaitsInItsPlace() {
        CompletableFuture<RouterRig.Result> held = holdTheConnection();
        RouterRig.Result timedOut = rig.call(router, get("/gave-up"), routeToC("timeout: 0.1s"), clusters);
        assertEquals(504, timedOut.status());
        assertEquals(Set.of(ResponseFlag.UPSTREAM_REQUEST_TIMEOUT), timedOut.info().responseFlags());
        // its wait ended with its answer, as Envoy's pending request destroyed on cancel
        assertEquals(0, stat("upstream_rq_pending_active"));
        assertEquals(1, stat("upstream_rq_cancelled"));
        assertEquals(0, clusters.cluster("c").circuitBreakers().pendingRequests());
        theNextRequestWaitsAndGetsTheConnection(held);
    }

    @Test
    void aPendingRequestTheRouteTimeoutEndsIsNoTimeoutOfItsHostForOutlierDetection() {
        // consecutive_5xx 1: a timeout charged to the host (a 504 when local-origin errors are not split) would eject
        // it; Envoy's router reports none for a request still waiting for a connection, its upstream request having
        // no host until the pool is ready
        OutlierDetection fiveXx = new OutlierDetection(1, Duration.ofSeconds(60), Duration.ofSeconds(60),
                Duration.ofSeconds(300), 100, 100, 0, 5, 100, 1900, 0, 0, false, 5, 0, 0, 85, 0, 0, 5, 50);
        clusters = rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, breakers(1, 1, 1024, 3), fiveXx, port));
        CompletableFuture<RouterRig.Result> held = holdTheConnection();
        RouterRig.Result timedOut = rig.call(router, get("/gave-up"), routeToC("timeout: 0.1s"), clusters);
        assertEquals(504, timedOut.status());
        Host h = clusters.cluster("c").hosts().iterator().next();
        assertFalse(h.outlier().ejected(), "a pending request's timeout is not its host's");
        rig.vertx.runOnContext(v -> release.complete());
        assertEquals(200, RouterRig.await(held).status());
        assertFalse(h.outlier().ejected());
    }

    @Test
    void aPendingRequestWhoseCallerLeftLeavesThePoolAndTheNextOneWaitsInItsPlace() {
        CompletableFuture<RouterRig.Result> held = holdTheConnection();
        RouterRequest leaving = get("/gave-up");
        CompletableFuture<RouterRig.Result> left = rig.start(router, leaving, routeToC(""), clusters);
        awaitStat("upstream_rq_pending_active", 1);
        router.cancel(leaving);
        RouterRig.Result r = RouterRig.await(left);
        assertEquals(Set.of(ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION), r.info().responseFlags());
        assertEquals(0, stat("upstream_rq_pending_active"));
        assertEquals(1, stat("upstream_rq_cancelled"));
        theNextRequestWaitsAndGetsTheConnection(held);
    }
}
