package dev.inmesh.runtime.router;

import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.CommonHttpProtocolOptions;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.upstream.RawHttp1Upstream;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.http.HttpServerOptions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
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
     * A cluster of one host answering with the client port of the connection that carried each request (and the
     * request's {@code connection} header after it), {@code /slow} a second late; its statistics in {@code reg}.
     */
    private ClusterManager portsCluster(PrometheusMeterRegistry reg, Router router, boolean h2,
                                        CommonHttpProtocolOptions lifetimes) throws Exception {
        int port = rig.vertx.createHttpServer(new HttpServerOptions().setHttp2ClearTextEnabled(true))
                .requestHandler(req -> {
                    String answer = req.connection().remoteAddress().port() + " " + req.getHeader("connection");
                    if (req.path().equals("/slow")) {
                        rig.vertx.setTimer(1000, t -> req.response().end(answer));
                    } else {
                        req.response().end(answer);
                    }
                }).listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS)
                .actualPort();
        router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
        return rig.clusters(Cluster.builder("c", DiscoveryType.STATIC).lbPolicy(LbPolicy.ROUND_ROBIN)
                .connectTimeout(Duration.ofSeconds(2)).loadAssignment(RouterRig.hosts("c", port)).http2(h2)
                .commonHttpProtocolOptions(lifetimes).build());
    }

    /** The body of a request to {@code path} through {@code router}, answered 200. */
    private String body(Router router, String path, ClusterManager clusters) throws Exception {
        RouterRig.Result r = rig.call(router, get(path), routeToC(""), clusters);
        assertEquals(200, r.status());
        return r.body();
    }

    /** Waits until cluster c's counter {@code name} in {@code reg} is at least {@code n}, and gives it. */
    private static double counted(PrometheusMeterRegistry reg, String name, double n) throws InterruptedException {
        java.util.function.DoubleSupplier stat = () -> reg.get("envoy_cluster_" + name).tag("cluster_name", "c")
                .gauge().value();
        for (int i = 0; i < 250 && stat.getAsDouble() < n; i++) {
            Thread.sleep(20);
        }
        return stat.getAsDouble();
    }

    /**
     * {@code max_connection_duration}, each connection's own timer from its connect, as Envoy's
     * (ActiveClient::onConnectionDurationTimeout): at that age the connection counts in
     * {@code upstream_cx_max_duration_reached} and drains. A request it carries then goes on to its answer, and the
     * connection takes no request after it, whatever Vert.x's pool cleaner would see; over HTTP/1.1 and HTTP/2.
     */
    @Test
    void aConnectionAtItsMaxConnectionDurationDrainsAndCountsInUpstreamCxMaxDurationReached() throws Exception {
        for (boolean h2 : new boolean[] {false, true}) {
            PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
            Router router = rig.router();
            var clusters = portsCluster(reg, router, h2,
                    new CommonHttpProtocolOptions(null, Duration.ofMillis(300), 0));
            String slow = body(router, "/slow", clusters); // its connection reached 300 ms while it was answered
            assertEquals(1.0, counted(reg, "upstream_cx_max_duration_reached", 1), h2 ? "HTTP/2" : "HTTP/1.1");
            assertEquals(1.0, counted(reg, "upstream_cx_destroy_local", 1), "the old connection closed once answered");
            String next = body(router, "/", clusters);
            assertNotEquals(slow.split(" ")[0], next.split(" ")[0], h2 ? "HTTP/2" : "HTTP/1.1");
        }
    }

    /**
     * {@code idle_timeout}, each connection's own timer while it carries no request, in milliseconds (0.3 s is not a
     * second), as Envoy's codec client (CodecClient::onIdleTimeout): the connection closes and counts in
     * {@code upstream_cx_idle_timeout}; one busy longer than that stays.
     */
    @Test
    void anIdleTimeoutUnderASecondClosesTheConnectionAndCountsInUpstreamCxIdleTimeout() throws Exception {
        for (boolean h2 : new boolean[] {false, true}) {
            PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
            Router router = rig.router();
            var clusters = portsCluster(reg, router, h2,
                    new CommonHttpProtocolOptions(Duration.ofMillis(300), null, 0));
            String slow = body(router, "/slow", clusters); // busy for a second: not idle
            String first = body(router, "/", clusters);
            assertEquals(slow.split(" ")[0], first.split(" ")[0], h2 ? "HTTP/2" : "HTTP/1.1");
            assertEquals(1.0, counted(reg, "upstream_cx_idle_timeout", 1), h2 ? "HTTP/2" : "HTTP/1.1");
            assertEquals(1.0, counted(reg, "upstream_cx_destroy_local", 1));
            assertNotEquals(first.split(" ")[0], body(router, "/", clusters).split(" ")[0]);
        }
    }

    /**
     * {@code idle_timeout} counts from the end of the connection's last request: requests closer together than it keep
     * one connection open however long they go on (its timer, pending across them, waits the rest when it is due),
     * and it closes once they stop.
     */
    @Test
    void requestsCloserTogetherThanTheIdleTimeoutKeepTheirConnectionAndItClosesOnceTheyStop() throws Exception {
        PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        Router router = rig.router();
        var clusters = portsCluster(reg, router, false, new CommonHttpProtocolOptions(Duration.ofMillis(400), null, 0));
        List<String> ports = new ArrayList<>();
        for (int i = 0; i < 8; i++) { // about 1.2 s in all, three times the idle timeout
            ports.add(body(router, "/", clusters).split(" ")[0]);
            Thread.sleep(150);
        }
        assertEquals(1, ports.stream().distinct().count(), ports.toString());
        assertEquals(1.0, counted(reg, "upstream_cx_idle_timeout", 1));
    }

    /**
     * {@code max_requests_per_connection} over HTTP/1.1, as Envoy's HTTP/1 pool: the last request goes as it is (no
     * {@code connection: close} is added), and the connection drains and closes after its answer.
     */
    @Test
    void theLastRequestOfAConnectionGoesWithoutConnectionClose() throws Exception {
        for (long max : new long[] {1, 2}) {
            PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
            Router router = rig.router();
            var clusters = portsCluster(reg, router, false, new CommonHttpProtocolOptions(null, null, max));
            List<String> answers = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                answers.add(body(router, "/", clusters));
            }
            for (String a : answers) {
                assertEquals("null", a.split(" ")[1], "max " + max + ": " + answers);
            }
            assertEquals(4 / max, answers.stream().map(a -> a.split(" ")[0]).distinct().count(), answers.toString());
            assertEquals(4.0 / max, counted(reg, "upstream_cx_max_requests", 4.0 / max));
            assertEquals(4.0 / max, counted(reg, "upstream_cx_destroy_local", 4.0 / max), "closed by the proxy");
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

    /**
     * An answer whose {@code Connection} lists {@code close} among other tokens, or with {@code Proxy-Connection:
     * close}, ends its connection as Envoy reads it ({@code shouldCloseConnection}): the next request goes on a new
     * connection, not on the one the server is closing (which answered it 503 UC before), and each counts in
     * {@code upstream_cx_close_notify}.
     */
    @Test
    void anAnswerListingCloseInItsConnectionHeaderOrWithProxyConnectionCloseEndsItsConnection() throws Exception {
        for (String closing : new String[] {"Upgrade: h2c\r\nConnection: Upgrade, close", "Proxy-Connection: close"}) {
            try (RawHttp1Upstream upstream = new RawHttp1Upstream(
                    "HTTP/1.1 200 OK\r\n" + closing + "\r\ncontent-length: 2\r\n\r\nok")) {
                PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
                Router router = rig.router();
                router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
                var clusters = rig.clusters(RouterRig.cluster("c", upstream.port()));
                for (int i = 0; i < 2; i++) {
                    assertEquals(200, rig.call(router, get("/" + i), routeToC(""), clusters).status(), closing);
                }
                assertEquals(2, upstream.requests().size(), closing);
                assertEquals(2.0, reg.get("envoy_cluster_upstream_cx_close_notify").tag("cluster_name", "c").gauge()
                        .value(), closing);
            }
        }
    }

    /** Cluster c's statistics in {@code reg}, by Envoy's name, once {@code upstream_cx_destroy} reached {@code n}. */
    private static java.util.function.ToDoubleFunction<String> afterDestroyed(PrometheusMeterRegistry reg, int n)
            throws InterruptedException {
        java.util.function.ToDoubleFunction<String> stat = name -> reg.get("envoy_cluster_" + name)
                .tag("cluster_name", "c").gauge().value();
        for (int i = 0; i < 250 && stat.applyAsDouble("upstream_cx_destroy") < n; i++) {
            Thread.sleep(20);
        }
        assertEquals(n, stat.applyAsDouble("upstream_cx_destroy"));
        return stat;
    }

    /**
     * {@code upstream_cx_destroy_with_active_rq} and its local and remote forms: as Envoy's pool
     * (ConnPoolImplBase::onConnectionEvent), a connection that closed while its request was not done (its response
     * not whole) counts there by the side that closed it; one that closed after its answer, whole or delimited by the
     * close itself, does not.
     */
    @Test
    void aConnectionClosedWithItsRequestNotDoneCountsInUpstreamCxDestroyWithActiveRqByTheSideThatClosedIt()
            throws Exception {
        String[][] answers = {
            // the upstream closes 1000 bytes into a body of 100000: its close cuts the request short
            {"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + "a".repeat(1000), "1"},
            // a whole answer, then the upstream's close
            {"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", "0"},
            // a body the close delimits: the close completes it
            {"HTTP/1.1 200 OK\r\n\r\nok", "0"}};
        for (String[] answer : answers) {
            try (RawHttp1Upstream upstream = new RawHttp1Upstream(answer[0])) {
                PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
                Router router = rig.router();
                router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
                assertEquals(200, rig.call(router, get("/"), routeToC(""),
                        rig.clusters(RouterRig.cluster("c", upstream.port()))).status());
                var stat = afterDestroyed(reg, 1);
                double active = Double.parseDouble(answer[1]);
                String what = answer[0].replace("\r\n", "|");
                assertEquals(1, stat.applyAsDouble("upstream_cx_destroy_remote"), what);
                assertEquals(active, stat.applyAsDouble("upstream_cx_destroy_with_active_rq"), what);
                assertEquals(active, stat.applyAsDouble("upstream_cx_destroy_remote_with_active_rq"), what);
                assertEquals(0, stat.applyAsDouble("upstream_cx_destroy_local_with_active_rq"), what);
            }
        }
        // the route timeout resets a request awaiting its answer, which takes its HTTP/1 connection down: the
        // proxy's close, with the request active
        int slow = rig.vertx.createHttpServer().requestHandler(req -> { }).listen(0, "127.0.0.1")
                .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS).actualPort();
        PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        Router router = rig.router();
        router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
        assertEquals(504, rig.call(router, get("/"), routeToC("timeout: 0.2s"),
                rig.clusters(RouterRig.cluster("c", slow))).status());
        var stat = afterDestroyed(reg, 1);
        assertEquals(1, stat.applyAsDouble("upstream_cx_destroy_local_with_active_rq"));
        assertEquals(1, stat.applyAsDouble("upstream_cx_destroy_with_active_rq"));
        assertEquals(0, stat.applyAsDouble("upstream_cx_destroy_remote_with_active_rq"));
    }

    /**
     * {@code upstream_rq_tx_reset}: as Envoy's HTTP/2 pool (MultiplexedActiveClientBase::onStreamReset), a stream the
     * proxy reset, here the one the route timeout gave up, counts once; the connection stays, no stream was reset by
     * the upstream ({@code upstream_rq_rx_reset}), and an answered request counts in neither.
     */
    @Test
    void anHttp2StreamTheRouteTimeoutResetCountsInUpstreamRqTxReset() throws Exception {
        int port = rig.vertx.createHttpServer(new HttpServerOptions().setHttp2ClearTextEnabled(true))
                .requestHandler(req -> {
                    if (req.path().equals("/ok")) {
                        req.response().end("ok");
                    }
                }).listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS)
                .actualPort();
        PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        Router router = rig.router();
        router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
        var clusters = rig.clusters(Cluster.builder("c", DiscoveryType.STATIC).lbPolicy(LbPolicy.ROUND_ROBIN)
                .connectTimeout(Duration.ofSeconds(2)).loadAssignment(RouterRig.hosts("c", port)).http2(true)
                .build());
        assertEquals(200, rig.call(router, get("/ok"), routeToC("timeout: 0.5s"), clusters).status());
        assertEquals(504, rig.call(router, get("/held"), routeToC("timeout: 0.2s"), clusters).status());
        java.util.function.ToDoubleFunction<String> stat = name -> reg.get("envoy_cluster_" + name)
                .tag("cluster_name", "c").gauge().value();
        for (int i = 0; i < 250 && stat.applyAsDouble("upstream_rq_tx_reset") == 0; i++) {
            Thread.sleep(20);
        }
        assertEquals(1, stat.applyAsDouble("upstream_rq_tx_reset"));
        assertEquals(0, stat.applyAsDouble("upstream_rq_rx_reset"));
        assertEquals(0, stat.applyAsDouble("upstream_cx_destroy"), "the connection stays");
        assertEquals(0, stat.applyAsDouble("upstream_cx_destroy_with_active_rq"));
    }
}
