package dev.inmesh.runtime.router;

import static dev.inmesh.runtime.router.RouterRig.cluster;
import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.upstream.ClusterManager;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.MultiMap;
import io.vertx.core.http.HttpServer;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Envoy's request hedging on per-try timeout ({@code hedge_on_per_try_timeout},
 * {@code x-envoy-hedge-on-per-try-timeout}): the attempt that timed out stays in flight beside its retry, the first
 * answer that is not itself retried wins and the other attempts are reset.
 */
class RouterHedgeTest {
    private static final String HEDGED = "hedge_policy: {hedge_on_per_try_timeout: true}";

    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    /** One answer of the upstream: after {@code delayMillis}, {@code status} with body {@code attempt N}. */
    private record Answer(long delayMillis, int status) {}

    /**
     * Two loopback upstreams that share one script: the n-th request either receives (from 0) gets the n-th answer.
     * Each request's headers, the port that took it and whether its stream was reset before it was answered are kept.
     */
    private final class Upstreams {
        final Map<Integer, MultiMap> headers = new ConcurrentHashMap<>();
        final Map<Integer, Integer> ports = new ConcurrentHashMap<>();
        final Map<Integer, CompletableFuture<Void>> resets = new ConcurrentHashMap<>();
        final ClusterManager clusters;

        Upstreams(Answer... answers) throws Exception {
            AtomicInteger arrivals = new AtomicInteger();
            int[] listening = new int[2];
            for (int i = 0; i < 2; i++) {
                HttpServer server = rig.vertx.createHttpServer().requestHandler(req -> {
                    int n = arrivals.getAndIncrement();
                    headers.put(n, MultiMap.caseInsensitiveMultiMap().addAll(req.headers()));
                    ports.put(n, req.localAddress().port());
                    CompletableFuture<Void> reset = new CompletableFuture<>();
                    resets.put(n, reset);
                    Answer a = answers[Math.min(n, answers.length - 1)];
                    boolean[] answered = {false};
                    req.response().closeHandler(v -> {
                        if (!answered[0]) {
                            reset.complete(null);
                        }
                    });
                    rig.vertx.setTimer(Math.max(1, a.delayMillis), t -> {
                        if (!req.response().closed()) {
                            answered[0] = true;
                            req.response().setStatusCode(a.status).end("attempt " + n);
                        }
                    });
                });
                server.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
                listening[i] = server.actualPort();
            }
            clusters = rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, null, null, listening));
        }

        /** Waits up to 5 s until the upstreams have received {@code n} requests. */
        void awaitArrivals(int n) throws InterruptedException {
            long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            while (resets.size() < n && System.nanoTime() - end < 0) {
                Thread.sleep(10);
            }
            assertEquals(n, resets.size(), "requests received by the upstreams");
        }

        /** Whether the n-th request's stream was reset before it was answered (waits up to 5 s for it). */
        boolean reset(int n) {
            try {
                resets.get(n).get(5, TimeUnit.SECONDS);
                return true;
            } catch (Exception e) {
                return false;
            }
        }
    }

    /** A router whose clusters' statistics are in {@code reg}. */
    private Router countingIn(PrometheusMeterRegistry reg) {
        Router router = rig.router();
        router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
        return router;
    }

    private static double stat(PrometheusMeterRegistry reg, String name) {
        var g = reg.find("envoy_cluster_" + name).tag("cluster_name", "c").gauge();
        return g == null ? 0 : g.value();
    }

    @Test
    void aSlowFirstAttemptIsHedgedAndTheRetrysAnswerWinsWhileTheFirstIsReset() throws Exception {
        Upstreams up = new Upstreams(new Answer(4000, 200), new Answer(0, 200));
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        Router router = countingIn(reg);
        var r = rig.call(router, get("/x"), routeToC("timeout: 10s, retry_policy: {retry_on: 5xx, num_retries: 1, "
                + "per_try_timeout: 0.2s}, " + HEDGED, "", "include_attempt_count_in_response: true"), up.clusters);
        assertEquals(200, r.status());
        assertEquals("attempt 1", r.body());
        assertEquals("2", r.header("x-envoy-attempt-count"));
        assertEquals(2, r.info().attemptCount());
        assertTrue(r.info().upstreamHost().endsWith(":" + up.ports.get(1)), r.info().upstreamHost());
        assertTrue(r.elapsedMillis() < 3500, "answered after " + r.elapsedMillis());
        assertTrue(up.reset(0), "the first attempt's stream is reset once the retry won");
        // as Envoy's router: under hedging each attempt is told the route timeout, not the per-try one
        long expected = Long.parseLong(up.headers.get(1).get("x-envoy-expected-rq-timeout-ms"));
        assertTrue(expected > 9000 && expected <= 10000, "expected timeout " + expected);
        assertEquals(0.0, stat(reg, "upstream_rq_per_try_timeout"), "a soft per-try timeout is not counted");
        assertEquals(1.0, stat(reg, "upstream_rq_retry"));
    }

    @Test
    void theFirstAttemptStillWinsWhenItAnswersAfterTheHedgeStartedButFirst() throws Exception {
        Upstreams up = new Upstreams(new Answer(600, 200), new Answer(4000, 200));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 1, "
                + "per_try_timeout: 0.2s}, " + HEDGED), up.clusters);
        assertEquals(200, r.status());
        assertEquals("attempt 0", r.body());
        assertEquals(2, r.info().attemptCount());
        assertTrue(r.info().upstreamHost().endsWith(":" + up.ports.get(0)), "the access log names the winner's "
                + "host: " + r.info().upstreamHost());
        assertTrue(r.elapsedMillis() < 3500, "answered after " + r.elapsedMillis());
        assertTrue(up.reset(1), "the hedged retry's stream is reset once the first answered");
    }

    /**
     * As Envoy: a retry's retriable answer is retried (the first attempt still in flight); the first attempt's answer
     * then wins over the retry of the retry.
     */
    @Test
    void aRetriable503OfTheHedgeIsRetriedWhileTheFirstAttemptIsInFlight() throws Exception {
        Upstreams up = new Upstreams(new Answer(700, 200), new Answer(0, 503), new Answer(4000, 200));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 2, "
                + "per_try_timeout: 0.2s}, " + HEDGED), up.clusters);
        assertEquals(200, r.status());
        assertEquals("attempt 0", r.body());
        assertEquals(3, r.info().attemptCount());
        assertTrue(up.reset(2), "the third attempt is reset");
    }

    /**
     * As Envoy: with no retry left, a retriable answer of one attempt is dropped while another may still answer; the
     * request ran out of retries (URX) all the same.
     */
    @Test
    void aRetriable503WithNoRetryLeftWaitsForTheAttemptStillInFlight() throws Exception {
        Upstreams up = new Upstreams(new Answer(600, 200), new Answer(0, 503));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 1, "
                + "per_try_timeout: 0.2s}, " + HEDGED), up.clusters);
        assertEquals(200, r.status());
        assertEquals("attempt 0", r.body());
        assertEquals(2, r.info().attemptCount());
        assertEquals(Set.of(ResponseFlag.UPSTREAM_RETRY_LIMIT_EXCEEDED), r.info().responseFlags());
    }

    /** When every attempt in flight answers a retriable status, the last one is passed on as it is. */
    @Test
    void theLastRetriableAnswerIsPassedOnWhenNoAttemptIsLeft() throws Exception {
        Upstreams up = new Upstreams(new Answer(500, 503), new Answer(0, 503));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 1, "
                + "per_try_timeout: 0.2s}, " + HEDGED), up.clusters);
        assertEquals(503, r.status());
        assertEquals("attempt 0", r.body());
        assertEquals("via_upstream", r.info().responseCodeDetails());
    }

    /**
     * As Envoy, the route timeout ends every attempt in flight: each counts in {@code upstream_rq_timeout}, none in
     * {@code upstream_rq_per_try_timeout}.
     */
    @Test
    void theRouteTimeoutResetsEveryHedgedAttempt() throws Exception {
        Upstreams up = new Upstreams(new Answer(4000, 200));
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        Router router = countingIn(reg);
        var r = rig.call(router, get("/x"), routeToC("timeout: 0.6s, retry_policy: {retry_on: 5xx, num_retries: 1, "
                + "per_try_timeout: 0.2s}, " + HEDGED), up.clusters);
        assertEquals(504, r.status());
        assertEquals("upstream_response_timeout", r.info().responseCodeDetails());
        assertEquals(2, r.info().attemptCount());
        assertTrue(up.reset(0) && up.reset(1), "both attempts are reset");
        assertEquals(2.0, stat(reg, "upstream_rq_timeout"));
        assertEquals(0.0, stat(reg, "upstream_rq_per_try_timeout"));
    }

    /** Without a hedge policy (Envoy's default) the per-try timeout resets the attempt before its retry. */
    @Test
    void withoutHedgingThePerTryTimeoutStillResetsTheAttempt() throws Exception {
        Upstreams up = new Upstreams(new Answer(600, 200), new Answer(4000, 200), new Answer(0, 200));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 2, "
                + "per_try_timeout: 0.2s}"), up.clusters);
        assertEquals(200, r.status());
        assertEquals("attempt 2", r.body(), "the first attempt was not left to answer");
        assertEquals(3, r.info().attemptCount());
        assertTrue(up.reset(0) && up.reset(1));
    }

    /**
     * As Envoy's router under the virtual host's {@code include_is_timeout_retry_header}: a retry that follows a
     * per-try timeout says {@code x-envoy-is-timeout-retry: true}, one that follows a 503 {@code false}, and the first
     * attempt gets none.
     */
    @Test
    void eachRetrySaysWhetherItFollowsAPerTryTimeout() throws Exception {
        Upstreams up = new Upstreams(new Answer(4000, 200), new Answer(0, 503), new Answer(0, 200));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 2, "
                + "per_try_timeout: 0.2s}", "", "include_is_timeout_retry_header: true"), up.clusters);
        assertEquals("attempt 2", r.body());
        assertEquals(null, up.headers.get(0).get("x-envoy-is-timeout-retry"));
        assertEquals("true", up.headers.get(1).get("x-envoy-is-timeout-retry"));
        assertEquals("false", up.headers.get(2).get("x-envoy-is-timeout-retry"));
    }

    /**
     * Each retry carries its own {@code x-envoy-is-timeout-retry}, as Envoy's router passes it to each
     * {@code doRetry}: the hedged first attempt's retriable 503, which comes while the timeout retry is in flight, is
     * not retried (Envoy retries an upstream request once) and tells the next timeout retry nothing.
     */
    @Test
    void aHedgedAttemptsRetriable503DoesNotChangeWhatTheNextTimeoutRetrySays() throws Exception {
        Upstreams up = new Upstreams(new Answer(300, 503), new Answer(4000, 200), new Answer(0, 200));
        var r = rig.call(rig.router(), get("/x"), routeToC("timeout: 10s, retry_policy: {retry_on: 5xx, "
                + "num_retries: 2, per_try_timeout: 0.2s}, " + HEDGED, "", "include_is_timeout_retry_header: true"),
                up.clusters);
        assertEquals("attempt 2", r.body());
        assertEquals(3, up.headers.size());
        assertEquals("true", up.headers.get(1).get("x-envoy-is-timeout-retry"));
        assertEquals("true", up.headers.get(2).get("x-envoy-is-timeout-retry"));
    }

    /** A hedge is a retry after a per-try timeout too; without the virtual host's setting no attempt is told. */
    @Test
    void aHedgeSaysItFollowsAPerTryTimeoutOnlyWhenTheVirtualHostAsks() throws Exception {
        Upstreams up = new Upstreams(new Answer(4000, 200), new Answer(0, 200));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 1, "
                + "per_try_timeout: 0.2s}, " + HEDGED, "", "include_is_timeout_retry_header: true"), up.clusters);
        assertEquals("attempt 1", r.body());
        assertEquals("true", up.headers.get(1).get("x-envoy-is-timeout-retry"));
        Upstreams quiet = new Upstreams(new Answer(4000, 200), new Answer(0, 200));
        r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 1, "
                + "per_try_timeout: 0.2s}, " + HEDGED), quiet.clusters);
        assertEquals("attempt 1", r.body());
        assertFalse(quiet.headers.get(1).contains("x-envoy-is-timeout-retry"));
    }

    /** As Envoy's router, a trusted caller's header says "true" or "false" over the route's hedge policy. */
    @Test
    void aTrustedCallersHeaderTurnsHedgingOnOrOff() throws Exception {
        Upstreams on = new Upstreams(new Answer(600, 200), new Answer(4000, 200));
        var r = rig.call(rig.router(RouterRig.trusted(), null), get("/x", "x-envoy-hedge-on-per-try-timeout", "true"),
                routeToC("retry_policy: {retry_on: 5xx, num_retries: 1, per_try_timeout: 0.2s}"), on.clusters);
        assertEquals("attempt 0", r.body());
        assertFalse(on.headers.get(0).contains("x-envoy-hedge-on-per-try-timeout"), "not sent upstream");

        Upstreams off = new Upstreams(new Answer(600, 200), new Answer(0, 200));
        r = rig.call(rig.router(RouterRig.trusted(), null), get("/x", "x-envoy-hedge-on-per-try-timeout", "false"),
                routeToC("retry_policy: {retry_on: 5xx, num_retries: 1, per_try_timeout: 0.2s}, " + HEDGED),
                off.clusters);
        assertEquals("attempt 1", r.body());
        assertTrue(off.reset(0), "the per-try timeout reset the first attempt");
    }

    @Test
    void anUntrustedCallersHeaderIsIgnored() throws Exception {
        Upstreams up = new Upstreams(new Answer(600, 200), new Answer(0, 200));
        var r = rig.call(rig.router(), get("/x", "x-envoy-hedge-on-per-try-timeout", "true"),
                routeToC("retry_policy: {retry_on: 5xx, num_retries: 1, per_try_timeout: 0.2s}"), up.clusters);
        assertEquals("attempt 1", r.body());
    }

    /** As Envoy, a hedge policy of the virtual host applies to its routes that have none of their own. */
    @Test
    void theVirtualHostsHedgePolicyAppliesToItsRoutes() throws Exception {
        Upstreams up = new Upstreams(new Answer(600, 200), new Answer(4000, 200));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 1, "
                + "per_try_timeout: 0.2s}", "", HEDGED), up.clusters);
        assertEquals("attempt 0", r.body());
    }

    private static void awaitStat(PrometheusMeterRegistry reg, String name, double value) throws Exception {
        long end = System.nanoTime() + 5_000_000_000L;
        while (stat(reg, name) != value && System.nanoTime() < end) {
            Thread.sleep(10);
        }
        assertEquals(value, stat(reg, name), name);
    }

    /**
     * As Envoy's router on a downstream reset (onDestroy's resetAll): every attempt in flight, the hedged one too, is
     * reset, and each gives back its upstream_rq_active.
     */
    @Test
    void theCallerLeavingMidHedgeResetsEveryAttempt() throws Exception {
        Upstreams up = new Upstreams(new Answer(4000, 200), new Answer(4000, 200));
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        Router router = countingIn(reg);
        RouterRequest req = get("/x");
        var f = rig.start(router, req, routeToC("retry_policy: {retry_on: 5xx, num_retries: 1, "
                + "per_try_timeout: 0.2s}, " + HEDGED), up.clusters);
        awaitStat(reg, "upstream_rq_active", 2);
        up.awaitArrivals(2); // the router counts an attempt active before its request reaches the upstream
        router.cancel(req);
        var r = RouterRig.await(f);
        assertEquals(Set.of(ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION), r.info().responseFlags());
        assertTrue(up.reset(0) && up.reset(1), "both attempts are reset");
        awaitStat(reg, "upstream_rq_active", 0);
    }

    /**
     * As Envoy's onPerTryTimeoutCommon, which hedges a per-try idle timeout as a per-try timeout: the idle attempt
     * is left in flight (not counted in upstream_rq_per_try_idle_timeout) until the retry beside it wins.
     */
    @Test
    void aPerTryIdleTimeoutHedgesToo() throws Exception {
        Upstreams up = new Upstreams(new Answer(600, 200), new Answer(0, 200));
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        Router router = countingIn(reg);
        var r = rig.call(router, get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 1, "
                + "per_try_idle_timeout: 0.2s}, " + HEDGED), up.clusters);
        assertEquals("attempt 1", r.body());
        assertTrue(up.reset(0), "the idle attempt is reset once the retry won");
        assertEquals(0.0, stat(reg, "upstream_rq_per_try_idle_timeout"));
        awaitStat(reg, "upstream_rq_active", 0);
    }

    /**
     * An attempt a per-try timeout left in flight whose answer the codec cannot read is a protocol error of its
     * connection, counted in {@code upstream_cx_protocol_error} as any attempt's (Envoy counts it in the codec,
     * whichever attempt the connection carried), while the retry beside it still wins.
     */
    @Test
    void aHedgedAttemptsProtocolErrorIsCounted() throws Exception {
        AtomicInteger arrivals = new AtomicInteger();
        try (java.net.ServerSocket server = new java.net.ServerSocket(0, 10,
                java.net.InetAddress.getLoopbackAddress())) {
            Thread accept = new Thread(() -> {
                for (int i = 0; i < 2 && !server.isClosed(); i++) {
                    try {
                        java.net.Socket s = server.accept();
                        int n = arrivals.getAndIncrement();
                        Thread t = new Thread(() -> answer(s, n), "hedge-raw-" + n);
                        t.setDaemon(true);
                        t.start();
                    } catch (java.io.IOException e) {
                        return; // closed: the test ended
                    }
                }
            }, "hedge-raw");
            accept.setDaemon(true);
            accept.start();
            var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
            Router router = countingIn(reg);
            ClusterManager clusters = rig.clusters(cluster("c", server.getLocalPort()));
            var r = rig.call(router, get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 1, "
                    + "per_try_timeout: 0.2s}, " + HEDGED), clusters);
            assertEquals(200, r.status());
            assertEquals("ok", r.body());
            assertEquals(2, arrivals.get());
            assertEquals(1.0, stat(reg, "upstream_cx_protocol_error"), "the first attempt's unreadable answer");
        }
    }

    /**
     * The {@code n}th connection's answer to its request: the first's, after the per-try timeout, a status line the
     * codec cannot read; the second's, 2 s after its request, 200 {@code ok}.
     */
    private static void answer(java.net.Socket s, int n) {
        try (s) {
            s.setSoTimeout(5_000);
            var in = s.getInputStream();
            StringBuilder head = new StringBuilder();
            while (head.indexOf("\r\n\r\n") < 0) {
                int b = in.read();
                if (b < 0) {
                    return;
                }
                head.append((char) b);
            }
            Thread.sleep(n == 0 ? 400 : 2_000); // the bad answer long before the good one
            String answer = n == 0 ? "HTTX/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
                    : "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
            s.getOutputStream().write(answer.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            s.getOutputStream().flush();
            Thread.sleep(300);
        } catch (java.io.IOException | InterruptedException e) {
            // reset by the router, or the test ended
        }
    }
}
