package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.ok;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static dev.inmesh.runtime.router.RouterRig.closedPort;
import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static dev.inmesh.runtime.router.RouterRig.sequence;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.http.Fault;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.HostStats;
import io.vertx.core.http.HttpServer;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A host's {@code rq_success} and {@code rq_error} ({@code /clusters}) as Envoy's router charges them: not only the
 * answers it passes on by their status, but every attempt it retries away and every end it answers for itself.
 */
class RouterHostStatsTest {
    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    private static Map<String, Long> stats(ClusterManager clusters) {
        return stats(clusters, "c");
    }

    private static Map<String, Long> stats(ClusterManager clusters, String cluster) {
        Map<String, Long> m = new TreeMap<>();
        for (HostStats.Stat s : clusters.cluster(cluster).hosts().iterator().next().stats().all()) {
            m.put(s.name(), s.value());
        }
        return m;
    }

    @Test
    void eachFailedConnectOfARetriedRequestIsAnErrorOfItsHost() {
        ClusterManager clusters = rig.clusters(cluster("c", closedPort()));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: connect-failure, "
                + "num_retries: 2}"), clusters);
        assertEquals(503, r.status());
        assertEquals(3, r.info().attemptCount());
        Map<String, Long> s = stats(clusters);
        assertEquals(3L, s.get("cx_connect_fail"));
        assertEquals(3L, s.get("cx_total"), "as Envoy's pool, a connection counts as it is made, before it connects");
        assertEquals(3L, s.get("rq_error"), s.toString());
        assertEquals(0L, s.get("rq_success"));
    }

    @Test
    void anAnswerRetriedAwayIsAnErrorWhateverItsStatusAndTheOnePassedOnASuccess() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(409), ok("fine"));
        ClusterManager clusters = rig.clusters(cluster("c", wm.port()));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: retriable-4xx, "
                + "num_retries: 1}"), clusters);
        assertEquals(200, r.status());
        Map<String, Long> s = stats(clusters);
        assertEquals(1L, s.get("rq_error"), s.toString());
        assertEquals(1L, s.get("rq_success"), s.toString());
        assertEquals(2L, s.get("rq_total"));
    }

    @Test
    void aResetAndARouteTimeoutTheRouterAnswersForAreErrorsOfTheHost() throws Exception {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(urlEqualTo("/reset")).willReturn(aResponse().withFault(Fault.CONNECTION_RESET_BY_PEER)));
        ClusterManager clusters = rig.clusters(cluster("c", wm.port()));
        var reset = rig.call(rig.router(), get("/reset"), routeToC(""), clusters);
        assertEquals(503, reset.status());
        assertEquals(1L, stats(clusters).get("rq_error"));

        HttpServer slow = rig.vertx.createHttpServer().requestHandler(req -> { }); // never answers
        slow.listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        ClusterManager slowClusters = rig.clusters(cluster("c", slow.actualPort()));
        var timedOut = rig.call(rig.router(), get("/slow"), routeToC("timeout: 0.2s"), slowClusters);
        assertEquals(504, timedOut.status());
        Map<String, Long> s = stats(slowClusters);
        assertEquals(1L, s.get("rq_timeout"));
        assertEquals(1L, s.get("rq_error"), s.toString());
        assertEquals(0L, s.get("rq_success"));
    }

    @Test
    void aGrpcAnswerIsChargedByTheStatusOfItsTrailers() throws Exception {
        HttpServer grpc = rig.vertx.createHttpServer(new io.vertx.core.http.HttpServerOptions()
                .setHttp2ClearTextEnabled(true)).requestHandler(req -> {
            String status = req.path().endsWith("Fail") ? "14" : "0";
            req.response().putHeader("content-type", "application/grpc").putTrailer("grpc-status", status)
                    .end(io.vertx.core.buffer.Buffer.buffer(new byte[] {0, 0, 0, 0, 0}));
        });
        grpc.listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        ClusterManager clusters = rig.clusters(dev.inmesh.api.config.cluster.Cluster.builder("c",
                dev.inmesh.api.config.cluster.DiscoveryType.STATIC).connectTimeout(java.time.Duration.ofSeconds(2))
                .loadAssignment(RouterRig.hosts("c", grpc.actualPort())).http2(true).build());
        for (String method : new String[] {"/pkg.S/Fail", "/pkg.S/Fine", "/pkg.S/Fine"}) {
            var r = rig.call(rig.router(), RouterRig.request(io.vertx.core.http.HttpMethod.POST, method,
                    "\0\0\0\0\0", "content-type", "application/grpc", "te", "trailers"), routeToC(""), clusters);
            assertEquals(200, r.status());
        }
        Map<String, Long> s = stats(clusters);
        assertEquals(1L, s.get("rq_error"), s.toString());
        assertEquals(2L, s.get("rq_success"), s.toString());
    }

    @Test
    void aMirroredGrpcCopyIsChargedByItsTrailersAsItsOwnRouterChargesIt() throws Exception {
        HttpServer shadow = rig.vertx.createHttpServer(new io.vertx.core.http.HttpServerOptions()
                .setHttp2ClearTextEnabled(true)).requestHandler(req -> req.response()
                .putHeader("content-type", "application/grpc").putTrailer("grpc-status", "14")
                .end(io.vertx.core.buffer.Buffer.buffer(new byte[] {0, 0, 0, 0, 0})));
        shadow.listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(urlEqualTo("/pkg.S/M")).willReturn(ok()));
        ClusterManager clusters = rig.clusters(cluster("c", wm.port()), dev.inmesh.api.config.cluster.Cluster
                .builder("m", dev.inmesh.api.config.cluster.DiscoveryType.STATIC)
                .connectTimeout(java.time.Duration.ofSeconds(2)).loadAssignment(RouterRig.hosts("m",
                        shadow.actualPort())).http2(true).build());
        rig.call(rig.router(), RouterRig.request(io.vertx.core.http.HttpMethod.POST, "/pkg.S/M", "\0\0\0\0\0",
                "content-type", "application/grpc", "te", "trailers"), routeToC("request_mirror_policies: "
                + "[{cluster: m}]"), clusters);
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (stats(clusters, "m").get("rq_error") == 0 && System.nanoTime() < end) {
            Thread.sleep(10);
        }
        assertEquals(1L, stats(clusters, "m").get("rq_error"), "UNAVAILABLE in the copy's trailers");
        assertEquals(0L, stats(clusters, "m").get("rq_success"));
    }

    @Test
    void aGrpcBodyTheUpstreamResetsIsAnErrorAndOneTheRouteTimeoutCutsIsChargedNowhere() throws Exception {
        HttpServer grpc = rig.vertx.createHttpServer(new io.vertx.core.http.HttpServerOptions()
                .setHttp2ClearTextEnabled(true)).requestHandler(req -> {
            req.response().putHeader("content-type", "application/grpc").setChunked(true)
                    .write(io.vertx.core.buffer.Buffer.buffer(new byte[] {0, 0, 0, 0, 0}));
            if (req.path().endsWith("Reset")) {
                rig.vertx.setTimer(50, t -> req.response().reset(2));
            } // else: the stream stays open, its trailers never come
        });
        grpc.listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        ClusterManager clusters = rig.clusters(dev.inmesh.api.config.cluster.Cluster.builder("c",
                dev.inmesh.api.config.cluster.DiscoveryType.STATIC).connectTimeout(java.time.Duration.ofSeconds(2))
                .loadAssignment(RouterRig.hosts("c", grpc.actualPort())).http2(true).build());
        var cut = rig.call(rig.router(), RouterRig.request(io.vertx.core.http.HttpMethod.POST, "/pkg.S/Slow",
                "\0\0\0\0\0", "content-type", "application/grpc", "te", "trailers"), routeToC("timeout: 0.3s"),
                clusters);
        assertEquals(200, cut.status());
        assertEquals(Map.of("rq_error", 0L, "rq_success", 0L), Map.of("rq_error", stats(clusters).get("rq_error"),
                "rq_success", stats(clusters).get("rq_success")), "as Envoy's router: a route timeout after the headers"
                + " charges nothing");
        rig.call(rig.router(), RouterRig.request(io.vertx.core.http.HttpMethod.POST, "/pkg.S/Reset",
                "\0\0\0\0\0", "content-type", "application/grpc", "te", "trailers"), routeToC(""), clusters);
        assertEquals(1L, stats(clusters).get("rq_error"), "a body the upstream reset: its host's error");
    }
}
