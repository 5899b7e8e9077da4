package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.ok;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;
import static dev.inmesh.runtime.router.RouterRig.breakers;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static dev.inmesh.runtime.router.RouterRig.sequence;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.http.Fault;
import dev.inmesh.api.config.cluster.CircuitBreakers;
import dev.inmesh.api.config.cluster.HealthCheck;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.cluster.OutlierDetection;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.Host;
import dev.inmesh.runtime.upstream.LocalOriginFailure;
import dev.inmesh.runtime.upstream.RawHttp1Upstream;
import dev.inmesh.runtime.upstream.UpstreamCluster;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class RouterBreakerTest {
    private static final String RETRY_EVERYTHING = "retry_policy: {retry_on: \"5xx,reset,connect-failure,"
            + "gateway-error,refused-stream\", num_retries: 3}";

    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    private static void assertOverflow(RouterRig.Result r) {
        assertEquals(503, r.status());
        assertEquals("true", r.header("x-envoy-overloaded"));
        assertEquals("upstream connect error or disconnect/reset before headers. reset reason: overflow", r.body());
        assertEquals(Set.of(ResponseFlag.UPSTREAM_OVERFLOW), r.info().responseFlags());
        assertEquals("upstream_reset_before_response_started{overflow}", r.info().responseCodeDetails());
    }

    @Test
    void aRequestBeyondMaxRequestsAnswers503UoWithOverloadedAndIsNotRetried() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(urlEqualTo("/slow")).willReturn(ok("slow").withFixedDelay(400)));
        wm.stubFor(any(urlEqualTo("/fast")).willReturn(ok("fast")));
        ClusterManager clusters = rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, breakers(1024, 1024, 1, 3), null,
                wm.port()));
        RouteTable table = routeToC(RETRY_EVERYTHING);
        Router router = rig.router();
        CompletableFuture<RouterRig.Result> slow = rig.start(router, get("/slow"), table, clusters);
        // the slot is taken once /slow has its connection (as Envoy's pool attaches it): wait for that, else /fast
        // may attach first
        awaitActiveRequests(clusters, 1);
        RouterRig.Result over = rig.call(router, get("/fast"), table, clusters);
        assertOverflow(over);
        // refused once its connection was up, as Envoy's pool attaches it: an attempt was made, none sent
        assertEquals(1, over.info().attemptCount());
        assertEquals(200, RouterRig.await(slow).status());
        wm.verify(0, anyRequestedFor(urlEqualTo("/fast")));
        wm.verify(1, anyRequestedFor(urlEqualTo("/slow")));
        // The slot is back: the next request goes through.
        assertEquals(200, rig.call(router, get("/fast"), table, clusters).status());
        assertEquals(0, clusters.cluster("c").circuitBreakers().activeRequests());
    }

    @Test
    void aRequestBeyondMaxPendingRequestsAnswers503UoAndIsNotRetried() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(urlEqualTo("/slow")).willReturn(ok("slow").withFixedDelay(500)));
        wm.stubFor(any(urlEqualTo("/fast")).willReturn(ok("fast")));
        ClusterManager clusters = rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, breakers(1, 1, 1024, 3), null,
                wm.port()));
        RouteTable table = routeToC(RETRY_EVERYTHING);
        Router router = rig.router();
        // Warm up: one connection open and idle, so the first slow request is active, not pending.
        assertEquals(200, rig.call(router, get("/fast"), table, clusters).status());
        wm.resetRequests();
        CompletableFuture<RouterRig.Result> first = rig.start(router, get("/slow"), table, clusters);
        CompletableFuture<RouterRig.Result> second = rig.start(router, get("/slow"), table, clusters);
        RouterRig.Result over = rig.call(router, get("/fast"), table, clusters);
        assertOverflow(over);
        assertEquals(200, RouterRig.await(first).status());
        assertEquals(200, RouterRig.await(second).status());
        wm.verify(0, anyRequestedFor(urlEqualTo("/fast")));
        wm.verify(2, anyRequestedFor(urlEqualTo("/slow")));
    }

    /**
     * A listening socket whose accept queue is full, so that a connect to it hangs (its SYN dropped) until the
     * connect timeout: a connection that never opens.
     */
    private static final class Blackhole implements AutoCloseable {
        final java.net.ServerSocket server;
        final List<java.nio.channels.SocketChannel> fill = new java.util.ArrayList<>();

        Blackhole() throws Exception {
            server = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress());
            for (int i = 0; i < 4; i++) {
                var c = java.nio.channels.SocketChannel.open();
                c.configureBlocking(false);
                c.connect(server.getLocalSocketAddress());
                fill.add(c);
            }
        }

        int port() {
            return server.getLocalPort();
        }

        @Override
        public void close() throws Exception {
            for (var c : fill) {
                c.close();
            }
            server.close();
        }
    }

    @Test
    void aRequestWaitingForANewConnectionIsPendingAndMaxPendingRequestsRefusesTheNext() throws Exception {
        for (boolean h2 : new boolean[] {false, true}) {
            for (long maxPending : new long[] {0, 1}) {
                try (Blackhole hole = new Blackhole()) {
                    var c = dev.inmesh.api.config.cluster.Cluster.builder("c",
                                    dev.inmesh.api.config.cluster.DiscoveryType.STATIC)
                            .lbPolicy(LbPolicy.ROUND_ROBIN).connectTimeout(Duration.ofSeconds(3))
                            .circuitBreakers(breakers(1024, maxPending, 1024, 3))
                            .loadAssignment(RouterRig.hosts("c", hole.port())).http2(h2).build();
                    ClusterManager clusters = rig.clusters(c);
                    var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
                    Router router = rig.router();
                    router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
                    RouteTable table = routeToC("");
                    // as Envoy's pool: no connection is ready for any of them, so each is pending, and those
                    // beyond max_pending_requests are refused at once (0: every one)
                    List<CompletableFuture<RouterRig.Result>> calls = new java.util.ArrayList<>();
                    for (int i = 0; i < 3; i++) {
                        calls.add(rig.start(router, get("/x"), table, clusters));
                    }
                    String what = (h2 ? "h2" : "http/1.1") + ", max_pending_requests " + maxPending;
                    for (int i = (int) maxPending; i < 3; i++) {
                        RouterRig.Result r = RouterRig.await(calls.get(i));
                        assertOverflow(r);
                        assertTrue(r.elapsedMillis() < 2000, what + ": refused, not left waiting");
                    }
                    assertEquals(maxPending, clusters.cluster("c").circuitBreakers().pendingRequests(), what);
                    assertEquals(maxPending, stat(reg, "upstream_rq_pending_active"), what);
                    assertEquals(3 - maxPending, stat(reg, "upstream_rq_pending_overflow"), what);
                    for (int i = 0; i < maxPending; i++) {
                        assertEquals(503, RouterRig.await(calls.get(i)).status(), what); // its connect timed out
                    }
                    awaitStat(reg, "upstream_rq_pending_active", 0);
                    assertEquals(0, clusters.cluster("c").circuitBreakers().pendingRequests(), what);
                }
            }
        }
    }

    @Test
    void aRequestHandedAnIdleConnectionOfAnotherEventLoopIsNeitherPendingNorAConnectionOverflow() throws Exception {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(urlEqualTo("/fast")).willReturn(ok("fast")));
        ClusterManager clusters = rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, breakers(1, 1024, 1024, 3), null,
                wm.port()));
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        Router router = rig.router();
        router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
        RouteTable table = routeToC("");
        assertEquals(200, rig.call(router, get("/fast"), table, clusters).status());
        assertEquals(1, stat(reg, "upstream_rq_pending_total"));
        // the one connection, idle, lives on the rig's event loop; requests from the others are handed it there
        List<io.vertx.core.Context> contexts = new java.util.ArrayList<>();
        for (int i = 0; i < 4; i++) {
            contexts.add(((io.vertx.core.internal.VertxInternal) rig.vertx).createEventLoopContext());
        }
        for (int i = 0; i < 12; i++) {
            CompletableFuture<Integer> status = new CompletableFuture<>();
            contexts.get(i % contexts.size()).runOnContext(v -> router.forward(get("/fast"), table, clusters)
                    .onComplete(ar -> {
                        if (ar.failed()) {
                            status.completeExceptionally(ar.cause());
                        } else {
                            ar.result().body().onComplete(b -> {
                                router.complete(ar.result(), b.result().length()); // as the mesh's clients end it
                                status.complete(ar.result().status());
                            });
                        }
                    }));
            assertEquals(200, status.get(5, java.util.concurrent.TimeUnit.SECONDS));
            // the pool has the connection back once it counted the exchange off on the connection's loop (the answer
            // may reach the caller just before): a generous grace, for a loaded machine
            Thread.sleep(100);
        }
        awaitActiveRequests(clusters, 0);
        assertEquals(1, stat(reg, "upstream_rq_pending_total"), "only the first request waited, for the connection");
        assertEquals(0, stat(reg, "upstream_cx_overflow"));
        assertEquals(1, stat(reg, "upstream_cx_total"), "one connection");
    }

    /** Waits up to 5 s for cluster c's max_requests breaker to count {@code n} active requests. */
    private static void awaitActiveRequests(ClusterManager clusters, long n) {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (clusters.cluster("c").circuitBreakers().activeRequests() != n && System.nanoTime() < deadline) {
            java.util.concurrent.locks.LockSupport.parkNanos(5_000_000L);
        }
        assertEquals(n, clusters.cluster("c").circuitBreakers().activeRequests());
    }

    /** A cluster statistic of cluster c: a counter (Envoy names ending in _total) or a gauge. */
    private static double stat(PrometheusMeterRegistry reg, String name) {
        var search = reg.find("envoy_cluster_" + name).tag("cluster_name", "c");
        return name.endsWith("_total") ? search.functionCounter().count() : search.gauge().value();
    }

    private static void awaitStat(PrometheusMeterRegistry reg, String name, double value) {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (stat(reg, name) != value && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        assertEquals(value, stat(reg, name), name);
    }

    @Test
    void theRemainingGaugesComeAndGoWithTrackRemainingWhenTheClusterIsUpdatedAsWithEnvoysNewClusterInfo() {
        WireMockServer one = rig.wiremock();
        one.stubFor(any(anyUrl()).willReturn(ok("one")));
        java.util.function.Function<Boolean, dev.inmesh.api.config.cluster.Cluster> withTracking =
                track -> cluster("c", LbPolicy.ROUND_ROBIN, new CircuitBreakers(List.of(new CircuitBreakers.Thresholds(
                        CircuitBreakers.RoutingPriority.DEFAULT, 5, 1024, 1024, 3, null, track,
                        CircuitBreakers.Thresholds.NO_LIMIT))), null, one.port());
        ClusterManager clusters = rig.clusters(withTracking.apply(false));
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        Router router = rig.router();
        router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
        RouteTable table = routeToC(RETRY_EVERYTHING);
        java.util.function.Supplier<Boolean> tracked = () -> reg.find(
                "envoy_cluster_circuit_breakers_default_remaining_cx").tag("cluster_name", "c").gauge() != null;
        assertEquals(200, rig.call(router, get("/"), table, clusters).status());
        assertFalse(tracked.get());
        clusters = clusters.update(java.util.Map.of("c", withTracking.apply(true)), java.util.Map.of());
        assertEquals(200, rig.call(router, get("/"), table, clusters).status());
        assertTrue(tracked.get(), "track_remaining set by an update");
        assertEquals(4, stat(reg, "circuit_breakers_default_remaining_cx"), "the connection kept alive is open");
        clusters = clusters.update(java.util.Map.of("c", withTracking.apply(false)), java.util.Map.of());
        assertEquals(200, rig.call(router, get("/"), table, clusters).status());
        assertFalse(tracked.get(), "track_remaining taken off by an update");
        assertEquals(0, stat(reg, "circuit_breakers_default_cx_open"));
    }

    @Test
    void aHostWithoutAPoolBeyondMaxConnectionPoolsAnswers503UhAndIsNotRetried() {
        WireMockServer one = rig.wiremock();
        WireMockServer two = rig.wiremock();
        one.stubFor(any(anyUrl()).willReturn(ok("one")));
        two.stubFor(any(anyUrl()).willReturn(ok("two")));
        // one pool for the whole cluster: the first host's keeps it; the other host has no idle pool of its own to
        // free, so Envoy's ConnPoolMap gives it none and the router answers no healthy upstream
        CircuitBreakers limits = new CircuitBreakers(List.of(new CircuitBreakers.Thresholds(
                CircuitBreakers.RoutingPriority.DEFAULT, 1024, 1024, 1024, 3, null, true, 1)));
        ClusterManager clusters = rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, limits, null, one.port(),
                two.port()));
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        Router router = rig.router();
        router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
        RouteTable table = routeToC(RETRY_EVERYTHING);
        RouterRig.Result first = rig.call(router, get("/"), table, clusters);
        RouterRig.Result second = rig.call(router, get("/"), table, clusters);
        RouterRig.Result refused = first.status() == 503 ? first : second;
        assertEquals(200, (refused == first ? second : first).status());
        assertEquals(503, refused.status());
        assertEquals("no healthy upstream", refused.body());
        assertEquals(Set.of(ResponseFlag.NO_HEALTHY_UPSTREAM), refused.info().responseFlags());
        assertEquals(null, refused.header("x-envoy-overloaded"));
        assertEquals(1, one.getAllServeEvents().size() + two.getAllServeEvents().size(), "not retried");
        assertEquals(1, stat(reg, "upstream_cx_pool_overflow"));
        assertEquals(1, stat(reg, "circuit_breakers_default_cx_pool_open"));
        assertEquals(0, stat(reg, "circuit_breakers_default_remaining_cx_pools"));
        assertEquals(1, clusters.cluster("c").circuitBreakers().openConnectionPools());
    }

    @Test
    void pendingRequestsAndTheBreakersAtTheirLimitsShowInEnvoysStatistics() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(urlEqualTo("/slow")).willReturn(ok("slow").withFixedDelay(500)));
        wm.stubFor(any(urlEqualTo("/fast")).willReturn(ok("fast")));
        // one connection, one request waiting for it, one request active on it (a waiting request holds no
        // max_requests slot, as Envoy's); track_remaining as Istio sets it
        CircuitBreakers limits = new CircuitBreakers(List.of(new CircuitBreakers.Thresholds(
                CircuitBreakers.RoutingPriority.DEFAULT, 1, 1, 1, 3, null, true)));
        ClusterManager clusters = rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, limits, null, wm.port()));
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        Router router = rig.router();
        router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
        RouteTable table = routeToC("");
        // the first request waits for the cluster's first connection; the next finds it idle
        assertEquals(200, rig.call(router, get("/fast"), table, clusters).status());
        assertEquals(1, stat(reg, "upstream_rq_pending_total"));
        assertEquals(200, rig.call(router, get("/fast"), table, clusters).status());
        assertEquals(1, stat(reg, "upstream_rq_pending_total"));
        // the first waited for a connection max_connections allowed
        assertEquals(0, stat(reg, "upstream_cx_overflow"));
        assertEquals(0, stat(reg, "circuit_breakers_default_rq_open"));
        assertEquals(1, stat(reg, "circuit_breakers_default_remaining_rq"));
        assertEquals(3, stat(reg, "circuit_breakers_default_remaining_retries"));

        // a slow request holds the only connection: the next one waits for it, and every breaker is at its limit
        CompletableFuture<RouterRig.Result> first = rig.start(router, get("/slow"), table, clusters);
        awaitStat(reg, "upstream_rq_active", 1);
        CompletableFuture<RouterRig.Result> second = rig.start(router, get("/slow"), table, clusters);
        awaitStat(reg, "upstream_rq_pending_active", 1);
        assertEquals(2, stat(reg, "upstream_rq_pending_total"));
        // the waiting request is pending, not yet active nor one of the cluster's or the host's requests: Envoy's
        // pool counts upstream_rq_total and upstream_rq_active (and the host's rq_active, which least request
        // reads) when it attaches a request to a connection
        assertEquals(1, stat(reg, "upstream_rq_active"));
        assertEquals(3, stat(reg, "upstream_rq_total"));
        assertEquals(1, clusters.cluster("c").hosts().iterator().next().stats().activeRequests());
        // as Envoy's pool: the connection it would open for the waiting request is refused by max_connections
        // (counted on the event loop just after the request began to wait: awaited, not read at once)
        awaitStat(reg, "upstream_cx_overflow", 1);
        awaitStat(reg, "circuit_breakers_default_rq_pending_open", 1);
        awaitStat(reg, "circuit_breakers_default_rq_open", 1);
        awaitStat(reg, "circuit_breakers_default_cx_open", 1);
        awaitStat(reg, "circuit_breakers_default_remaining_pending", 0);
        awaitStat(reg, "circuit_breakers_default_remaining_rq", 0);
        awaitStat(reg, "circuit_breakers_default_remaining_cx", 0);
        assertEquals(0, stat(reg, "circuit_breakers_default_rq_retry_open"));
        // the HIGH priority's breakers are published too (Envoy's defaults, none in use)
        assertEquals(0, stat(reg, "circuit_breakers_high_rq_open"));
        assertEquals(200, RouterRig.await(first).status());
        assertEquals(200, RouterRig.await(second).status());
        assertEquals(0, stat(reg, "upstream_rq_pending_active"));
        assertEquals(0, stat(reg, "circuit_breakers_default_rq_pending_open"));
        assertEquals(0, stat(reg, "circuit_breakers_default_rq_open"));
        assertEquals(1, stat(reg, "circuit_breakers_default_remaining_rq"));
        assertEquals(0, stat(reg, "upstream_rq_pending_failure_eject"));
        assertEquals(0, clusters.cluster("c").circuitBreakers().pendingRequests());
    }

    @Test
    void overHttp2OnlyTheRequestThatWaitsForTheConnectionIsPending() throws Exception {
        io.vertx.core.http.HttpServer server = rig.vertx.createHttpServer(new io.vertx.core.http.HttpServerOptions()
                .setHost("127.0.0.1").setPort(0).setHttp2ClearTextEnabled(true));
        server.requestHandler(req -> req.response().end("h2"));
        int port = server.listen().toCompletionStage().toCompletableFuture()
                .get(5, java.util.concurrent.TimeUnit.SECONDS).actualPort();
        var h2 = dev.inmesh.api.config.cluster.Cluster.builder("c", dev.inmesh.api.config.cluster.DiscoveryType.STATIC)
                .lbPolicy(LbPolicy.ROUND_ROBIN).connectTimeout(Duration.ofSeconds(2))
                .loadAssignment(RouterRig.hosts("c", port)).http2(true).build();
        ClusterManager clusters = rig.clusters(h2);
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        Router router = rig.router();
        router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
        for (int i = 0; i < 3; i++) {
            assertEquals("h2", rig.call(router, get("/x"), routeToC(""), clusters).body());
        }
        assertEquals(1, stat(reg, "upstream_rq_pending_total"));
        assertEquals(0, stat(reg, "upstream_rq_pending_active"));
    }

    @Test
    void aRequestWhoseConnectionFailsWhileItWaitsIsAPendingFailure() {
        ClusterManager clusters = rig.clusters(cluster("c", RouterRig.closedPort()));
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        Router router = rig.router();
        router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
        assertEquals(503, rig.call(router, get("/x"), routeToC(""), clusters).status());
        assertEquals(1, stat(reg, "upstream_rq_pending_total"));
        assertEquals(1, stat(reg, "upstream_rq_pending_failure_eject"));
        assertEquals(0, stat(reg, "upstream_rq_pending_active"));
        // never attached to a connection, it is none of the cluster's nor the host's requests, as in Envoy's pool
        assertEquals(0, stat(reg, "upstream_rq_total"));
        assertEquals(0L, clusters.cluster("c").hosts().iterator().next().stats().totalRequests());
        // Envoy publishes what remains only when the thresholds ask for it
        assertTrue(reg.find("envoy_cluster_circuit_breakers_default_remaining_rq").gauges().isEmpty());
        assertEquals(0, stat(reg, "circuit_breakers_default_cx_open"));
    }

    @Test
    void aRetryBeyondMaxRetriesIsNotMadeAndTheResponseIsFlaggedUo() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(503).withBody("no"), ok("fine"));
        ClusterManager clusters = rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, breakers(1024, 1024, 1024, 0), null,
                wm.port()));
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        Router router = rig.router();
        router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
        var r = rig.call(router, get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 2}"), clusters);
        assertEquals(503, r.status());
        assertEquals("no", r.body());
        assertEquals(1, r.info().attemptCount());
        assertEquals(Set.of(ResponseFlag.UPSTREAM_OVERFLOW), r.info().responseFlags());
        wm.verify(1, anyRequestedFor(urlEqualTo("/x")));
        assertEquals(0, clusters.cluster("c").circuitBreakers().activeRetries());
        // as Envoy: upstream_rq_retry_overflow, not the pending overflow a refused request counts
        assertEquals(1, reg.find("envoy_cluster_upstream_rq_retry_overflow").tag("cluster_name", "c").gauge()
                .value());
        assertEquals(0, reg.find("envoy_cluster_upstream_rq_pending_overflow").tag("cluster_name", "c").gauge()
                .value());
        assertEquals(0, reg.find("envoy_cluster_upstream_rq_retry").tag("cluster_name", "c").gauge().value());
    }

    @Test
    void anAnswerWithImmediateHealthCheckFailFailsTheHostInItsClustersHealthChecksAsEnvoysRouterDoes()
            throws Exception {
        WireMockServer draining = rig.wiremock();
        WireMockServer good = rig.wiremock();
        for (WireMockServer wm : List.of(draining, good)) {
            wm.stubFor(any(urlEqualTo("/health")).willReturn(ok()));
        }
        draining.stubFor(any(urlEqualTo("/x")).willReturn(ok("draining")
                .withHeader("x-envoy-immediate-health-check-fail", "true")));
        good.stubFor(any(urlEqualTo("/x")).willReturn(ok("good")));
        // an hour between checks: only the first check of each host runs during the test
        HealthCheck hc = new HealthCheck(Duration.ofSeconds(2), Duration.ofHours(1), null, 0, null, 3, 2,
                Duration.ofHours(1), null, null, null, null, true, new HealthCheck.Http("", "/health", null, null,
                null, null, null, false));
        ClusterManager clusters = rig.clusters(cluster("c", draining.port(), good.port()).toBuilder()
                .healthCheck(hc).build());
        UpstreamCluster c = clusters.clusters().get("c");
        awaitTrue(() -> c.hosts().stream().noneMatch(Host::failedActiveHealthCheck) && !c.warming(),
                "both hosts checked");
        Host bad = c.hosts().stream().filter(h -> h.address().port() == draining.port()).findFirst().orElseThrow();
        RouteTable table = routeToC("");
        Router router = rig.router();
        int answered = 0;
        for (int i = 0; i < 2 && answered == 0; i++) {
            RouterRig.Result r = rig.call(router, get("/x"), table, clusters);
            assertEquals(200, r.status()); // the answer itself is passed on
            answered += "draining".equals(r.body()) ? 1 : 0;
        }
        assertEquals(1, answered);
        awaitTrue(bad::failedActiveHealthCheck, "failed whatever unhealthy_threshold says");
        assertTrue(bad.excluded());
        for (int i = 0; i < 10; i++) {
            assertEquals("good", rig.call(router, get("/x"), table, clusters).body());
        }
    }

    private static void awaitTrue(java.util.function.BooleanSupplier condition, String what) throws Exception {
        for (int i = 0; i < 500 && !condition.getAsBoolean(); i++) {
            Thread.sleep(10);
        }
        assertTrue(condition.getAsBoolean(), what);
    }

    @Test
    void aHostAnswering503FiveTimesInARowIsEjectedAndNoLongerPicked() {
        WireMockServer bad = rig.wiremock();
        WireMockServer good = rig.wiremock();
        bad.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(503)));
        good.stubFor(any(anyUrl()).willReturn(ok("good")));
        OutlierDetection od = new OutlierDetection(5, Duration.ofSeconds(60), Duration.ofSeconds(60),
                Duration.ofSeconds(300), 100, 100, 0, 5, 100, 1900, 0, 0, false, 5, 0, 0, 85, 0, 0, 5, 50);
        ClusterManager clusters = rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, null, od, bad.port(),
                good.port()));
        RouteTable table = routeToC("");
        Router router = rig.router();
        for (int i = 0; i < 30; i++) {
            rig.call(router, get("/x"), table, clusters);
        }
        bad.verify(5, anyRequestedFor(urlEqualTo("/x")));
        good.verify(25, anyRequestedFor(urlEqualTo("/x")));
        UpstreamCluster c = clusters.cluster("c");
        assertEquals(1, c.outlierDetector().activeEjections());
        for (Host h : c.hosts()) {
            assertEquals(h.address().port() == bad.port(), h.outlier().ejected(), h.toString());
        }
    }

    @Test
    void aBodyTheUpstreamCutsAfterItsHeadersIsReportedToOutlierDetectionAsAResetAsEnvoysRouterReportsAnyReset()
            throws Exception {
        // consecutive_5xx 1: the 200 is a success, the reset after it (a 503 when not split) ejects the host
        OutlierDetection fiveXx = new OutlierDetection(1, Duration.ofSeconds(60), Duration.ofSeconds(60),
                Duration.ofSeconds(300), 100, 100, 0, 5, 100, 1900, 0, 0, false, 5, 0, 0, 85, 0, 0, 5, 50);
        // split: a local-origin failure, consecutive_local_origin_failure 1
        OutlierDetection split = new OutlierDetection(5, Duration.ofSeconds(60), Duration.ofSeconds(60),
                Duration.ofSeconds(300), 100, 100, 0, 5, 100, 1900, 0, 0, true, 1, 100, 0, 85, 0, 0, 5, 50);
        for (OutlierDetection od : List.of(fiveXx, split)) {
            for (boolean cut : new boolean[] {false, true}) {
                String answer = "HTTP/1.1 200 OK\r\ncontent-length: " + (cut ? 10 : 3) + "\r\n\r\nabc";
                try (RawHttp1Upstream upstream = new RawHttp1Upstream(answer)) {
                    ClusterManager clusters = rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, null, od,
                            upstream.port()));
                    RouterRig.Result r = rig.call(rig.router(), get("/x"), routeToC(""), clusters);
                    String what = (od.splitExternalLocalOriginErrors() ? "split, " : "") + (cut ? "cut" : "whole");
                    assertEquals(200, r.status(), what);
                    assertEquals(cut ? "UPE" : "-", r.flags(), what);
                    Host h = clusters.cluster("c").hosts().iterator().next();
                    assertEquals(cut, h.outlier().ejected(), what);
                }
            }
        }
    }

    @Test
    void aHostAnsweringGrpcUnavailableFiveTimesInARowIsEjected() {
        // As Envoy, a gRPC request's grpc-status in the response headers counts as the HTTP status it maps to.
        WireMockServer bad = rig.wiremock();
        WireMockServer good = rig.wiremock();
        bad.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(200).withHeader("content-type",
                "application/grpc").withHeader("grpc-status", "14")));
        good.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(200).withHeader("content-type",
                "application/grpc").withHeader("grpc-status", "0")));
        OutlierDetection od = new OutlierDetection(5, Duration.ofSeconds(60), Duration.ofSeconds(60),
                Duration.ofSeconds(300), 100, 100, 0, 5, 100, 1900, 0, 0, false, 5, 0, 0, 85, 0, 0, 5, 50);
        ClusterManager clusters = rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, null, od, bad.port(),
                good.port()));
        Router router = rig.router();
        for (int i = 0; i < 30; i++) {
            rig.call(router, get("/pkg.Svc/M", "content-type", "application/grpc"), routeToC(""), clusters);
        }
        bad.verify(5, anyRequestedFor(urlEqualTo("/pkg.Svc/M")));
        assertEquals(1, clusters.cluster("c").outlierDetector().activeEjections());
    }

    @Test
    void aGrpcErrorStatusOnANonGrpcRequestIsNotCountedAsAFailure() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(200).withHeader("grpc-status", "14")));
        OutlierDetection od = new OutlierDetection(1, Duration.ofSeconds(60), Duration.ofSeconds(60),
                Duration.ofSeconds(300), 100, 100, 0, 5, 100, 1900, 0, 0, false, 5, 0, 0, 85, 0, 0, 5, 50);
        ClusterManager clusters = rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, null, od, wm.port()));
        rig.call(rig.router(), get("/x"), routeToC(""), clusters);
        assertEquals(0, clusters.cluster("c").outlierDetector().activeEjections());
    }

    @Test
    void aHostThatCannotBeReachedIsEjectedAfterFiveConnectFailures() {
        WireMockServer good = rig.wiremock();
        good.stubFor(any(anyUrl()).willReturn(ok("good")));
        int closed = RouterRig.closedPort();
        OutlierDetection od = new OutlierDetection(5, Duration.ofSeconds(60), Duration.ofSeconds(60),
                Duration.ofSeconds(300), 100, 100, 0, 5, 100, 1900, 0, 0, false, 5, 0, 0, 85, 0, 0, 5, 50);
        ClusterManager clusters = rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, null, od, closed, good.port()));
        Router router = rig.router();
        int failures = 0;
        for (int i = 0; i < 20; i++) {
            if (rig.call(router, get("/x"), routeToC(""), clusters).status() == 503) {
                failures++;
            }
        }
        assertEquals(5, failures);
        assertEquals(1, clusters.cluster("c").outlierDetector().activeEjections());
    }

    @Test
    void withSplitLocalOriginErrorsAnAttemptThatConnectedEndsARunOfLocalOriginFailures() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(503)));
        OutlierDetection od = new OutlierDetection(5, Duration.ofSeconds(60), Duration.ofSeconds(60),
                Duration.ofSeconds(300), 100, 100, 0, 5, 100, 1900, 0, 0, true, 5, 100, 0, 85, 0, 0, 5, 50);
        ClusterManager clusters = rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, null, od, wm.port()));
        Host h = clusters.cluster("c").hosts().iterator().next();
        for (int i = 0; i < 4; i++) {
            h.outlier().reportLocalOriginFailure(LocalOriginFailure.CONNECT_FAILED);
        }
        assertEquals(503, rig.call(rig.router(), get("/x"), routeToC(""), clusters).status());
        h.outlier().reportLocalOriginFailure(LocalOriginFailure.CONNECT_FAILED);
        assertFalse(h.outlier().ejected(), "the answered attempt connected: one local-origin failure since");
    }

    @Test
    void everyExchangeGivesBackItsSlotsWhateverHowItEnded() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/retried", aResponse().withStatus(503), ok());
        wm.stubFor(any(urlEqualTo("/reset")).willReturn(aResponse().withFault(Fault.CONNECTION_RESET_BY_PEER)));
        wm.stubFor(any(urlEqualTo("/slow")).willReturn(ok().withFixedDelay(400)));
        wm.stubFor(any(urlEqualTo("/limit")).willReturn(aResponse().withStatus(503)));
        ClusterManager clusters = rig.clusters(cluster("c", wm.port()));
        RouteTable table = routeToC("timeout: 0.2s, " + RETRY_EVERYTHING);
        Router router = rig.router();
        for (String path : new String[] {"/retried", "/reset", "/slow", "/limit"}) {
            rig.call(router, get(path), table, clusters);
        }
        UpstreamCluster c = clusters.cluster("c");
        assertEquals(0, c.circuitBreakers().activeRequests());
        assertEquals(0, c.circuitBreakers().activeRetries());
        for (Host h : c.hosts()) {
            assertEquals(0, h.activeRequests());
        }
        assertFalse(rig.observed().isEmpty());
        assertTrue(rig.observed().stream().allMatch(i -> i.upstreamCluster().equals("c")));
    }
    @Test
    void manyConcurrentExchangesFromPlainThreadsAllAnswerAndGiveBackTheirSlots() throws Exception {
        java.util.Set<String> failedOnce = java.util.concurrent.ConcurrentHashMap.newKeySet();
        io.vertx.core.http.HttpServer server = rig.vertx.createHttpServer().requestHandler(req -> {
            // every third path fails its first attempt: the router retries it
            if (Integer.parseInt(req.path().substring(2)) % 3 == 0 && failedOnce.add(req.path())) {
                req.response().setStatusCode(503).end();
            } else {
                req.response().end("body-" + req.path());
            }
        });
        int port = server.listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture()
                .get(5, java.util.concurrent.TimeUnit.SECONDS).actualPort();
        // Envoy's default max_retries (3 retries in flight) would refuse many of these retries: raise it.
        ClusterManager clusters = rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, breakers(1024, 1024, 1024, 1024),
                null, port));
        RouteTable table = routeToC("retry_policy: {retry_on: 5xx, num_retries: 3}");
        Router router = rig.router();
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(4);
        try {
            java.util.List<java.util.concurrent.Future<String>> results = new java.util.ArrayList<>();
            for (int i = 0; i < 200; i++) {
                String path = "/r" + i;
                results.add(pool.submit(() -> router.forward(get(path), table, clusters)
                        .compose(resp -> resp.body().map(b -> {
                            router.complete(resp, b.length());
                            return b.length() == 0 ? resp.status() + " " + resp.flags() + " (empty)" : b.toString();
                        }))
                        .toCompletionStage().toCompletableFuture()
                        .get(10, java.util.concurrent.TimeUnit.SECONDS)));
            }
            for (int i = 0; i < 200; i++) {
                assertEquals("body-/r" + i, results.get(i).get(20, java.util.concurrent.TimeUnit.SECONDS));
            }
        } finally {
            pool.shutdownNow();
        }
        UpstreamCluster c = clusters.cluster("c");
        assertEquals(0, c.circuitBreakers().activeRequests());
        assertEquals(0, c.circuitBreakers().activeRetries());
        for (Host h : c.hosts()) {
            assertEquals(0, h.activeRequests());
        }
        assertEquals(200, rig.observed().size());
    }
}
