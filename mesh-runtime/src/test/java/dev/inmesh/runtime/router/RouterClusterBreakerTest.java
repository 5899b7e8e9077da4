package dev.inmesh.runtime.router;

import static dev.inmesh.runtime.router.RouterRig.breakers;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.core.Http2ProtocolOptions;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.CircuitBreakerState;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.function.LongSupplier;
import java.util.random.RandomGenerator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@code max_connections} and {@code max_pending_requests} of a cluster of several hosts bound the cluster's total, as
 * Envoy's connection pools ask the cluster's resource manager: a host's pool opens a connection only while the
 * cluster's are under {@code max_connections}, unless it has none at all (then it always may, so that its waiting
 * requests are not stranded); a request that finds no connection ready waits only while the cluster's pending requests
 * are under {@code max_pending_requests}, else it overflows with 503 UO. Each request is sent once the previous one
 * has reached its upstream or begun to wait, so that the counts are Envoy's, whatever the timing.
 *
 * <p>{@code max_requests} counts what Envoy's pool counts ({@code ConnPoolImplBase::attachStreamToClient}): requests
 * attached to an upstream connection, per attempt. A request waiting for a connection, or a retry in its back-off,
 * holds no slot; a request whose connection is up while the breaker is full goes back unsent, answered 503 UO and
 * never retried; every slot is given back when its attempt ends.
 */
class RouterClusterBreakerTest {
    private static final String RETRY_5XX_RESET = "retry_policy: {retry_on: \"5xx,reset\", num_retries: 3}";

    private final RouterRig rig = new RouterRig();
    /** The requests the upstreams hold, unanswered until the test answers them. */
    private final List<HttpServerRequest> held = Collections.synchronizedList(new ArrayList<>());
    /** The connections the upstreams accepted. */
    private final AtomicInteger accepted = new AtomicInteger();
    private final PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);

    @AfterEach
    void close() {
        rig.close();
    }

    @Test
    void twoHostsWithMaxConnectionsOneAndMaxPendingOneOpenOneConnectionEachAndLetOneRequestWait() {
        int[] ports = {holdingUpstream(), holdingUpstream()};
        twoHostsOneConnectionOnePending(rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, breakers(1, 1, 1024, 3), null,
                ports)));
    }

    @Test
    void overHttp2WithOneStreamPerConnectionTwoHostsAlsoOpenOneConnectionEachAndLetOneRequestWait() {
        int[] ports = {holdingUpstream(), holdingUpstream()};
        // max_concurrent_streams 1: a connection carries one request at a time, as an HTTP/1.1 one
        twoHostsOneConnectionOnePending(rig.clusters(Cluster.builder("c", DiscoveryType.STATIC)
                .lbPolicy(LbPolicy.ROUND_ROBIN).circuitBreakers(breakers(1, 1, 1024, 3))
                .loadAssignment(RouterRig.hosts("c", ports)).http2(true)
                .http2ProtocolOptions(new Http2ProtocolOptions(4096, 1, null, null)).build()));
    }

    /** Five requests, one after the other, to a cluster of two hosts with max_connections 1, max_pending 1. */
    private void twoHostsOneConnectionOnePending(ClusterManager clusters) {
        Router router = router();
        CircuitBreakerState breakers = clusters.cluster("c").circuitBreakers();
        RouteTable table = routeToC("");
        List<CompletableFuture<RouterRig.Result>> calls = new ArrayList<>();
        // round robin: the first request to each host opens its connection, the second past max_connections, as
        // Envoy lets a host's pool with no connection open one
        calls.add(rig.start(router, get("/1"), table, clusters));
        await(held::size, 1);
        calls.add(rig.start(router, get("/2"), table, clusters));
        await(held::size, 2);
        // the third finds its host's connection busy and may not open another: it waits (max_pending_requests 1)
        calls.add(rig.start(router, get("/3"), table, clusters));
        await(breakers::pendingRequests, 1);
        // the fourth and fifth find the cluster's one pending request: 503 UO, whichever host they were for
        RouterRig.Result fourth = RouterRig.await(rig.start(router, get("/4"), table, clusters));
        RouterRig.Result fifth = RouterRig.await(rig.start(router, get("/5"), table, clusters));
        for (RouterRig.Result over : List.of(fourth, fifth)) {
            assertEquals(503, over.status());
            assertEquals(Set.of(ResponseFlag.UPSTREAM_OVERFLOW), over.info().responseFlags());
        }
        assertEquals(2, accepted.get());
        assertEquals(2, stat("upstream_rq_pending_overflow"));
        assertEquals(0, stat("upstream_rq_active_overflow"), "max_pending_requests, not max_requests");
        // the second host's first connection and the third request's were past max_connections
        assertEquals(2, stat("upstream_cx_overflow"));
        answerAll(3, calls);
        // the waiting request went on the first host's connection once its request was answered
        assertEquals(2, accepted.get());
        assertEquals(0, breakers.pendingRequests());
        assertEquals(3, stat("upstream_rq_pending_total"));
        // the next requests find their host's connection idle: they take it at once, none waits
        for (int i = 6; i <= 9; i++) {
            CompletableFuture<RouterRig.Result> next = rig.start(router, get("/" + i), table, clusters);
            answerAll(1, List.of(next));
        }
        assertEquals(2, accepted.get());
        assertEquals(3, stat("upstream_rq_pending_total"));
    }

    @Test
    void threeHostsWithMaxConnectionsTwoOpenThreeConnectionsAndTheOtherRequestsWaitForThem() {
        int[] ports = {holdingUpstream(), holdingUpstream(), holdingUpstream()};
        ClusterManager clusters = rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, breakers(2, 1024, 1024, 3), null,
                ports));
        Router router = router();
        CircuitBreakerState breakers = clusters.cluster("c").circuitBreakers();
        RouteTable table = routeToC("");
        List<CompletableFuture<RouterRig.Result>> calls = new ArrayList<>();
        for (int i = 1; i <= 3; i++) {
            calls.add(rig.start(router, get("/" + i), table, clusters));
            await(held::size, i);
        }
        // each host opened its first connection, the third past max_connections 2; the next three requests, one for
        // each host, find their host's connection busy and the cluster's at max_connections: they wait
        for (int i = 4; i <= 6; i++) {
            calls.add(rig.start(router, get("/" + i), table, clusters));
            await(breakers::pendingRequests, i - 3);
        }
        assertEquals(3, accepted.get());
        assertEquals(3, breakers.openConnections());
        assertEquals(4, stat("upstream_cx_overflow"));
        assertEquals(0, stat("upstream_rq_pending_overflow"));
        answerAll(6, calls);
        assertEquals(3, accepted.get());
    }

    /**
     * Istio's {@code tcp.maxConnections 1, http.http2MaxRequests 1, http1MaxPendingRequests 10}: the second and
     * third requests wait for the one connection and are served in turn, as Envoy serves them. Before, the first
     * request held the only slot from routing on and the others were answered 503 UO at once.
     */
    @Test
    void withOneConnectionAndMaxRequestsOneTheNextRequestsWaitTheirTurn() {
        ClusterManager clusters = rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, breakers(1, 10, 1, 3), null,
                holdingUpstream()));
        Router router = router();
        CircuitBreakerState breakers = clusters.cluster("c").circuitBreakers();
        RouteTable table = routeToC("");
        List<CompletableFuture<RouterRig.Result>> calls = new ArrayList<>();
        calls.add(rig.start(router, get("/1"), table, clusters));
        await(held::size, 1);
        calls.add(rig.start(router, get("/2"), table, clusters));
        calls.add(rig.start(router, get("/3"), table, clusters));
        await(breakers::pendingRequests, 2);
        for (int i = 1; i <= 3; i++) {
            // one at a time on the connection, the only one holding a slot
            await(held::size, 1);
            assertEquals(1, breakers.activeRequests());
            assertEquals("/" + i, held.get(0).path());
            held.remove(0).response().end("ok");
        }
        for (var call : calls) {
            assertEquals(200, RouterRig.await(call).status());
        }
        assertEquals(1, accepted.get());
        assertTrue(stat("upstream_rq_pending_total") >= 2, "the second and third waited");
        assertEquals(0, stat("upstream_rq_pending_overflow"));
        await(breakers::activeRequests, 0);
    }

    /**
     * With two connections allowed and {@code max_requests} 1, the second request opens its connection, and once it
     * is up while the first is active, goes back unsent: 503 UO with {@code x-envoy-overloaded}, counted in
     * {@code upstream_rq_active_overflow} and {@code upstream_rq_pending_overflow} as Envoy's pool counts its
     * {@code Overflow}, and not retried though the
     * route retries 5xx and resets. Before, it was refused at routing, without a connection.
     */
    @Test
    void aRequestWhoseConnectionIsUpWhileMaxRequestsAreActiveOverflowsUnsentAndIsNotRetried() {
        ClusterManager clusters = rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, breakers(2, 10, 1, 3), null,
                holdingUpstream()));
        Router router = router();
        RouteTable table = routeToC(RETRY_5XX_RESET);
        CompletableFuture<RouterRig.Result> first = rig.start(router, get("/1"), table, clusters);
        await(held::size, 1);
        RouterRig.Result over = RouterRig.await(rig.start(router, get("/2"), table, clusters));
        assertEquals(503, over.status());
        assertEquals("true", over.header("x-envoy-overloaded"));
        assertEquals(Set.of(ResponseFlag.UPSTREAM_OVERFLOW), over.info().responseFlags());
        assertEquals("upstream_reset_before_response_started{overflow}", over.info().responseCodeDetails());
        assertEquals(1, over.info().attemptCount());
        assertEquals(2, stat("upstream_cx_total"), "its own connection was opened");
        assertEquals(1, held.size(), "nothing was sent on it");
        // Envoy 1.38's upstream_rq_active_overflow, and the pending overflow Envoy counted before (and still does
        // with skip_pending_overflow_count_on_active_rq off)
        assertEquals(1, stat("upstream_rq_active_overflow"));
        assertEquals(1, stat("upstream_rq_pending_overflow"));
        assertEquals(0, stat("upstream_rq_retry"));
        held.remove(0).response().end("ok");
        assertEquals(200, RouterRig.await(first).status());
        await(clusters.cluster("c").circuitBreakers()::activeRequests, 0);
    }

    /**
     * A {@code max_requests} refusal comes once the request has its host's connection: as Envoy's pool fails it naming
     * that host and its router charges the 503 to it, the host counts it in {@code rq_error} and the access log's
     * {@code %UPSTREAM_HOST%} names it. A {@code max_pending_requests} refusal comes before any connection, and Envoy's
     * pool fails it with no host: nothing is charged to a host and {@code %UPSTREAM_HOST%} is empty.
     */
    @Test
    void aMaxRequestsRefusalIsAnErrorOfItsHostAndAPendingOverflowOfNone() {
        ClusterManager clusters = rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, breakers(2, 10, 1, 3), null,
                holdingUpstream()));
        Router router = router();
        RouteTable table = routeToC("");
        CompletableFuture<RouterRig.Result> first = rig.start(router, get("/1"), table, clusters);
        await(held::size, 1);
        RouterRig.Result over = RouterRig.await(rig.start(router, get("/2"), table, clusters));
        assertEquals(503, over.status());
        var host = clusters.cluster("c").hosts().iterator().next();
        assertEquals(host.addressString(), over.info().upstreamHost());
        assertEquals(1L, hostStat(host, "rq_error"));
        held.remove(0).response().end("ok");
        assertEquals(200, RouterRig.await(first).status());

        ClusterManager none = rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, breakers(1, 0, 1024, 3), null,
                holdingUpstream()));
        RouterRig.Result pending = rig.call(router, get("/3"), table, none);
        assertEquals(503, pending.status());
        assertEquals(Set.of(ResponseFlag.UPSTREAM_OVERFLOW), pending.info().responseFlags());
        assertEquals(null, pending.info().upstreamHost());
        assertEquals(0L, hostStat(none.cluster("c").hosts().iterator().next(), "rq_error"));
    }

    private static long hostStat(dev.inmesh.runtime.upstream.Host host, String name) {
        for (var s : host.stats().all()) {
            if (s.name().equals(name)) {
                return s.value();
            }
        }
        throw new AssertionError("no " + name);
    }

    /**
     * A retry in its back-off holds no slot, as Envoy's router has no upstream request then: with {@code max_requests}
     * 1, a request sent while the first waits out its back-off (its longest, 2 s) goes through; the first's retry
     * then gets the slot.
     */
    @Test
    void aRetryInItsBackOffLetsAnotherRequestThrough() {
        AtomicInteger firsts = new AtomicInteger();
        ClusterManager clusters = rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, breakers(1, 10, 1, 3), null,
                upstream(req -> req.response().setStatusCode(
                        req.path().equals("/first") && firsts.incrementAndGet() == 1 ? 503 : 200).end())));
        Router router = router(Router.Options.DEFAULTS, RouterRig.topOfRange(new ArrayList<>()));
        RouteTable table = routeToC("retry_policy: {retry_on: 5xx, num_retries: 1, "
                + "retry_back_off: {base_interval: 2s}}");
        CompletableFuture<RouterRig.Result> first = rig.start(router, get("/first"), table, clusters);
        await(() -> (long) stat("upstream_rq_retry"), 1);
        assertEquals(0, clusters.cluster("c").circuitBreakers().activeRequests(), "none held in the back-off");
        RouterRig.Result second = rig.call(router, get("/second"), table, clusters);
        assertEquals(200, second.status());
        assertTrue(!first.isDone(), "the first still backs off");
        RouterRig.Result retried = RouterRig.await(first);
        assertEquals(200, retried.status());
        assertEquals(2, retried.info().attemptCount());
        assertEquals(0, stat("upstream_rq_pending_overflow"));
    }

    /**
     * Timeouts (before and after the connection), resets, retries and overflows each give back what they took: after
     * a burst of them no request, pending request or retry is left counted.
     */
    @Test
    void noSlotIsLeftAfterABurstOfTimeoutsResetsAndOverflows() {
        ClusterManager clusters = rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, breakers(2, 3, 2, 3), null,
                upstream(req -> {
                    switch (req.path()) {
                        case "/reset" -> req.connection().close();
                        case "/hold" -> held.add(req);
                        default -> req.response().end("ok");
                    }
                })));
        Router router = router();
        RouteTable table = routeToC("timeout: 0.3s, " + RETRY_5XX_RESET);
        List<CompletableFuture<RouterRig.Result>> calls = new ArrayList<>();
        String[] paths = {"/hold", "/reset", "/ok", "/hold", "/reset", "/ok"};
        for (int i = 0; i < 24; i++) {
            calls.add(rig.start(router, get(paths[i % paths.length]), table, clusters));
        }
        Set<Integer> statuses = new java.util.TreeSet<>();
        for (var call : calls) {
            statuses.add(RouterRig.await(call).status());
        }
        assertTrue(statuses.contains(504), "some timed out: " + statuses);
        assertTrue(stat("upstream_rq_pending_overflow") > 0, "some overflowed");
        CircuitBreakerState breakers = clusters.cluster("c").circuitBreakers();
        await(breakers::activeRequests, 0);
        await(breakers::pendingRequests, 0);
        await(breakers::activeRetries, 0);
        assertEquals(0, stat("upstream_rq_active"));
    }

    /** An HTTP/1.1 and h2c upstream that holds each request; returns its port. */
    private int holdingUpstream() {
        return upstream(held::add);
    }

    /** An HTTP/1.1 and h2c upstream whose requests go to {@code handler}; returns its port. */
    private int upstream(Consumer<HttpServerRequest> handler) {
        HttpServer server = rig.vertx.createHttpServer(new HttpServerOptions().setHttp2ClearTextEnabled(true))
                .connectionHandler(c -> accepted.incrementAndGet())
                .requestHandler(handler::accept);
        try {
            return server.listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS)
                    .actualPort();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    /** A router that counts in {@link #reg}. */
    private Router router() {
        return router(Router.Options.DEFAULTS, null);
    }

    /** A router with {@code options}, drawing from {@code random} (null: its own), that counts in {@link #reg}. */
    private Router router(Router.Options options, RandomGenerator random) {
        Router router = random == null ? rig.router() : rig.router(options, random);
        router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
        return router;
    }

    /**
     * Answers the held requests, and those that come after them, until {@code total} were answered; then each of
     * {@code calls} must have answered 200.
     */
    private void answerAll(int total, List<CompletableFuture<RouterRig.Result>> calls) {
        int answered = 0;
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (answered < total && System.nanoTime() < deadline) {
            HttpServerRequest next = null;
            synchronized (held) {
                if (!held.isEmpty()) {
                    next = held.remove(0);
                }
            }
            if (next == null) {
                Thread.onSpinWait();
                continue;
            }
            next.response().end("ok");
            answered++;
        }
        assertEquals(total, answered, "requests answered");
        for (var call : calls) {
            assertEquals(200, RouterRig.await(call).status());
        }
    }

    private static void await(LongSupplier value, long expected) {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (value.getAsLong() != expected && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        assertEquals(expected, value.getAsLong());
    }

    /** A statistic of cluster c: a counter (Envoy names ending in _total) or a gauge. */
    private double stat(String name) {
        var search = reg.find("envoy_cluster_" + name).tag("cluster_name", "c");
        if (name.endsWith("_total")) {
            var counter = search.functionCounter();
            return counter == null ? 0 : counter.count();
        }
        var gauge = search.gauge();
        return gauge == null ? 0 : gauge.value();
    }
}
