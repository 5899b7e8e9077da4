package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.equalTo;
import static com.github.tomakehurst.wiremock.client.WireMock.getRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.ok;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static dev.inmesh.runtime.router.RouterRig.sequence;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.tomakehurst.wiremock.WireMockServer;
import dev.inmesh.api.config.route.RouteAction;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.upstream.ClusterManager;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.http.HttpServer;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class RouterTimeoutTest {
    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    private ClusterManager one(WireMockServer wm) {
        return rig.clusters(cluster("c", wm.port()));
    }

    @Test
    void theRouteTimeoutAnswers504UpstreamRequestTimeoutWithUt() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("late").withFixedDelay(1500)));
        var r = rig.call(rig.router(), get("/x"), routeToC("timeout: 0.2s"), one(wm));
        assertEquals(504, r.status());
        assertEquals("upstream request timeout", r.body());
        assertEquals(Set.of(ResponseFlag.UPSTREAM_REQUEST_TIMEOUT), r.info().responseFlags());
        assertEquals("upstream_response_timeout", r.info().responseCodeDetails());
        assertEquals("c", r.info().upstreamCluster());
        assertTrue(r.elapsedMillis() >= 190 && r.elapsedMillis() < 1400, "answered after " + r.elapsedMillis());
    }

    @Test
    void theRouteTimeoutIsNeverRetried() throws Exception {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("late").withFixedDelay(600)));
        var r = rig.call(rig.router(), get("/x"), routeToC("timeout: 0.2s, retry_policy: {retry_on: "
                + "\"5xx,reset,gateway-error\", num_retries: 3}"), one(wm));
        assertEquals(504, r.status());
        assertEquals(1, r.info().attemptCount());
        Thread.sleep(150);
        wm.verify(1, anyRequestedFor(urlEqualTo("/x")));
    }

    @Test
    void theRouteTimeoutCoversAllAttemptsAndBackOffs() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("late").withFixedDelay(600)));
        var r = rig.call(rig.router(), get("/x"), routeToC("timeout: 0.45s, retry_policy: {retry_on: 5xx, "
                + "num_retries: 20, per_try_timeout: 0.1s}"), one(wm));
        assertEquals(504, r.status());
        assertEquals("upstream_response_timeout", r.info().responseCodeDetails());
        assertTrue(r.info().responseFlags().contains(ResponseFlag.UPSTREAM_REQUEST_TIMEOUT));
        assertTrue(r.info().attemptCount() >= 2 && r.info().attemptCount() <= 5,
                "attempts " + r.info().attemptCount());
        assertTrue(r.elapsedMillis() >= 440 && r.elapsedMillis() < 2000, "answered after " + r.elapsedMillis());
    }

    /** A per-try timeout and a per-try idle timeout end an attempt that waits for its response the same way. */
    @ParameterizedTest
    @ValueSource(strings = {"per_try_timeout", "per_try_idle_timeout"})
    void aPerTryTimeoutIsRetriedAndTheNextAttemptAnswers(String field) {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", ok("late").withFixedDelay(2000), ok("fast"));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 1, "
                + field + ": 0.15s}"), one(wm));
        assertEquals(200, r.status());
        assertEquals("fast", r.body());
        assertEquals(2, r.info().attemptCount());
        assertTrue(r.elapsedMillis() < 1800, "the slow attempt was abandoned: " + r.elapsedMillis());
    }

    /**
     * As Envoy's upstream request arms it once its connection pool is ready: the time a request waits for a
     * connection (here behind another request on the host's only connection) is not part of its try.
     */
    @Test
    void thePerTryTimeoutStartsOnceTheAttemptHasItsConnection() {
        WireMockServer wm = rig.wiremock();
        // (each answer 1.2 s, the try 2 s: a try counted from the wait for the connection would last 2.4 s, and
        // one counted from the connection keeps 0.8 s of margin on a loaded machine)
        wm.stubFor(any(urlEqualTo("/slow")).willReturn(ok("slow").withFixedDelay(1200)));
        wm.stubFor(any(urlEqualTo("/fast")).willReturn(ok("fast")));
        ClusterManager clusters = rig.clusters(cluster("c", dev.inmesh.api.config.cluster.LbPolicy.ROUND_ROBIN,
                RouterRig.breakers(1, 1024, 1024, 3), null, wm.port()));
        RouteTable table = routeToC("retry_policy: {retry_on: connect-failure, num_retries: 1, "
                + "per_try_timeout: 2s}");
        Router router = rig.router();
        // one connection open and idle: the first slow request takes it, the second waits for it
        assertEquals(200, rig.call(router, get("/fast"), table, clusters).status());
        var first = rig.start(router, get("/slow"), table, clusters);
        var second = RouterRig.await(rig.start(router, get("/slow"), table, clusters));
        assertEquals(200, RouterRig.await(first).status());
        assertEquals(200, second.status(), "the wait for the connection counted in the try: " + second.body());
        assertEquals("slow", second.body());
        assertEquals(1, second.info().attemptCount());
        assertTrue(second.elapsedMillis() >= 2300, "answered after " + second.elapsedMillis());
    }

    @ParameterizedTest
    @ValueSource(strings = {"per_try_timeout", "per_try_idle_timeout"})
    void aPerTryTimeoutWithRetriesExhaustedAnswers504WithUtAndUrx(String field) {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("late").withFixedDelay(800)));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: gateway-error, "
                + "num_retries: 1, " + field + ": 0.1s}"), one(wm));
        assertEquals(504, r.status());
        assertEquals("upstream request timeout", r.body());
        assertEquals("upstream_" + field, r.info().responseCodeDetails());
        assertEquals(Set.of(ResponseFlag.UPSTREAM_REQUEST_TIMEOUT, ResponseFlag.UPSTREAM_RETRY_LIMIT_EXCEEDED),
                r.info().responseFlags());
        assertEquals("URX,UT", ResponseFlag.format(r.info().responseFlags()));
        assertEquals(2, r.info().attemptCount());
    }

    /**
     * As Envoy's upstream request arms both per-try timers once the request has ended: a request body that pauses
     * longer than the per-try idle timeout while it streams is not cut by it.
     */
    @ParameterizedTest
    @ValueSource(strings = {"per_try_timeout", "per_try_idle_timeout"})
    void thePerTryTimersStartOnceTheStreamedRequestBodyHasEnded(String field) {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("done")));
        RouterRequest req = RouterRig.request(io.vertx.core.http.HttpMethod.POST, "/x", null);
        RequestBodyStream body = new RequestBodyStream();
        req.bodyStream(body);
        // (a 1 s try, so that the answer after the body's end is in time on a loaded machine; the body pauses 2 s)
        var result = rig.start(rig.router(), req, routeToC("retry_policy: {retry_on: connect-failure, "
                + "num_retries: 1, " + field + ": 1s}"), one(wm));
        rig.ctx.runOnContext(v -> {
            body.write(io.vertx.core.buffer.Buffer.buffer("first "));
            rig.vertx.setTimer(2000, id -> {
                body.write(io.vertx.core.buffer.Buffer.buffer("last"));
                body.end();
            });
        });
        var r = RouterRig.await(result);
        assertEquals(200, r.status(), "cut while the body streamed: " + r.info().responseCodeDetails() + " after "
                + r.elapsedMillis());
        assertEquals("done", r.body());
        assertEquals(1, r.info().attemptCount());
    }

    /**
     * Envoy counts every per-try timeout, retried or not, in {@code upstream_rq_per_try_timeout} (an idle one in
     * {@code upstream_rq_per_try_idle_timeout}), and not in {@code upstream_rq_timeout}, the route timeout's.
     */
    @ParameterizedTest
    @ValueSource(strings = {"per_try_timeout", "per_try_idle_timeout"})
    void eachPerTryTimeoutCountsInItsOwnClusterStatistic(String field) {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("late").withFixedDelay(800)));
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        Router router = rig.router();
        router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
        var r = rig.call(router, get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 1, " + field
                + ": 0.1s}"), one(wm));
        assertEquals(504, r.status());
        assertEquals(2, r.info().attemptCount());
        assertEquals(2.0, stat(reg, "upstream_rq_" + field));
        assertEquals(0.0, stat(reg, field.equals("per_try_timeout") ? "upstream_rq_per_try_idle_timeout"
                : "upstream_rq_per_try_timeout"));
        assertEquals(0.0, stat(reg, "upstream_rq_timeout"));
    }

    /**
     * Envoy's {@code upstream_rq_timeout} counts the upstream requests the route timeout ends: none while a retry
     * waits for its back-off (the caller still gets 504 UT), and one whose response is still streaming.
     */
    @Test
    void theRouteTimeoutCountsUpstreamRqTimeoutOnlyForAnUpstreamRequestItEnds() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(urlEqualTo("/503")).willReturn(aResponse().withStatus(503)));
        // (a 1 s route timeout: the 503 and the dribbling response's headers come well within it on a loaded
        // machine, the back-off of 2 s and the body of 3 s well after it)
        wm.stubFor(any(urlEqualTo("/dribble")).willReturn(ok("x".repeat(1000)).withChunkedDribbleDelay(20, 3000)));
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        java.util.random.RandomGenerator longestBackOff = RouterRig.topOfRange(new java.util.ArrayList<>());
        Router router = rig.router(Router.Options.DEFAULTS, longestBackOff);
        router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
        var backingOff = rig.call(router, get("/503"), routeToC("timeout: 1s, retry_policy: {retry_on: 5xx, "
                + "num_retries: 1, retry_back_off: {base_interval: 2s}}"), one(wm));
        assertEquals(504, backingOff.status());
        assertEquals(Set.of(ResponseFlag.UPSTREAM_REQUEST_TIMEOUT), backingOff.info().responseFlags());
        assertEquals(1, backingOff.info().attemptCount());
        assertEquals(0.0, stat(reg, "upstream_rq_timeout"), "no upstream request was waiting");
        var streaming = rig.call(router, get("/dribble"), routeToC("timeout: 1s"), one(wm));
        assertEquals(200, streaming.status());
        assertEquals(null, streaming.body(), "the body was cut");
        assertEquals(1.0, stat(reg, "upstream_rq_timeout"), "the streaming response's request timed out");
    }

    /** Cluster {@code c}'s statistic by Envoy name (0 for one never registered). */
    private static double stat(PrometheusMeterRegistry reg, String name) {
        var g = reg.find("envoy_cluster_" + name).tag("cluster_name", "c").gauge();
        return g == null ? 0 : g.value();
    }

    @ParameterizedTest
    @ValueSource(strings = {"per_try_timeout", "per_try_idle_timeout"})
    void aPerTryTimeoutWithoutARetryConditionAnswers504AtOnce(String field) {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("late").withFixedDelay(800)));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: connect-failure, "
                + "num_retries: 1, " + field + ": 0.1s}"), one(wm));
        assertEquals(504, r.status());
        assertEquals(Set.of(ResponseFlag.UPSTREAM_REQUEST_TIMEOUT), r.info().responseFlags());
        assertEquals(1, r.info().attemptCount());
    }

    @Test
    void aZeroRouteTimeoutLetsASlowUpstreamAnswer() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("late").withFixedDelay(300)));
        var r = rig.call(rig.router(), get("/x"), routeToC("timeout: 0s"), one(wm));
        assertEquals(200, r.status());
        assertEquals("late", r.body());
    }

    @Test
    void aTrustedCallerMaySetTheRouteTimeout() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("late").withFixedDelay(700)));
        var r = rig.call(rig.router(RouterRig.trusted(), null), get("/x", "x-envoy-upstream-rq-timeout-ms", "150"),
                routeToC("timeout: 0s"), one(wm));
        assertEquals(504, r.status());
        assertEquals(Set.of(ResponseFlag.UPSTREAM_REQUEST_TIMEOUT), r.info().responseFlags());
    }

    @Test
    void anUntrustedCallerCannotSetTheRouteTimeout() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("late").withFixedDelay(300)));
        var r = rig.call(rig.router(), get("/x", "x-envoy-upstream-rq-timeout-ms", "50"), routeToC("timeout: 0s"),
                one(wm));
        assertEquals(200, r.status());
    }

    @Test
    void completingAnExchangeCancelsItsRouteTimer() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("quick")));
        var r = rig.call(rig.router(), get("/x"), routeToC("timeout: 15s"), one(wm));
        assertEquals(200, r.status());
        assertEquals(-1, r.response().exchange.routeTimer, "no 15 s timer left behind per request");
    }

    @Test
    void aResponseThatAnswersInTimeIsNotCutByTheRouteTimeoutLater() throws Exception {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("quick")));
        // (1 s, for the first request's answer to be in time on a loaded machine)
        var r = rig.call(rig.router(), get("/x"), routeToC("timeout: 1s"), one(wm));
        assertEquals(200, r.status());
        Thread.sleep(1200);
        assertEquals(Set.of(), r.info().responseFlags());
        assertEquals(1, rig.observed().size(), "recorded once");
    }
    @Test
    void theRouteTimeoutAlsoCutsABodyThatIsStillStreaming() {
        WireMockServer wm = rig.wiremock();
        // a cold JVM's first request through the router can take longer than the timeout: one request first
        wm.stubFor(any(anyUrl()).willReturn(ok("warm")));
        assertEquals(200, rig.call(rig.router(), get("/x"), routeToC(""), one(wm)).status());
        // (1 s: the headers come well within it on a loaded machine, the 3 s body well after it)
        wm.stubFor(any(anyUrl()).willReturn(ok("x".repeat(1000)).withChunkedDribbleDelay(20, 3000)));
        var r = rig.call(rig.router(), get("/x"), routeToC("timeout: 1s"), one(wm));
        assertEquals(200, r.status(), "the headers were in time");
        assertEquals(null, r.body(), "the body was cut");
        // as Envoy's router: the timeout it reset the response for, not a reset of the upstream's
        assertEquals(Set.of(ResponseFlag.UPSTREAM_REQUEST_TIMEOUT), r.info().responseFlags(), r.flags());
        assertEquals("upstream_response_timeout", r.info().responseCodeDetails());
        assertTrue(r.elapsedMillis() < 2800, "cut after " + r.elapsedMillis());
    }
    @Test
    void aTrustedCallerMaySetThePerTryTimeout() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", ok("late").withFixedDelay(800), ok("fast"));
        var r = rig.call(rig.router(RouterRig.trusted(), null), get("/x", "x-envoy-upstream-rq-per-try-timeout-ms",
                "100"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 1}"), one(wm));
        assertEquals("fast", r.body());
        assertEquals(2, r.info().attemptCount());
    }
    @Test
    void theConnectionManagersStreamIdleTimeoutAnswers504StreamTimeoutWithSiOnceTheRequestWasWhole() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("late").withFixedDelay(1500)));
        var r = rig.call(rig.router(), get("/x").streamIdleTimeout(Duration.ofMillis(200)), routeToC(""), one(wm));
        // Envoy's connection manager: 504 when the whole request was read (a GET), 408 while it still arrives
        assertEquals(504, r.status());
        assertEquals("stream timeout", r.body());
        assertEquals(Set.of(ResponseFlag.STREAM_IDLE_TIMEOUT), r.info().responseFlags());
        assertEquals("SI", r.flags());
        assertEquals("stream_idle_timeout", r.info().responseCodeDetails());
        assertTrue(r.elapsedMillis() >= 190 && r.elapsedMillis() < 1400, "answered after " + r.elapsedMillis());
    }

    @Test
    void theStreamIdleTimeoutAnswers408WhileTheRequestBodyStillArrives() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("late")));
        RouterRequest req = RouterRig.request(io.vertx.core.http.HttpMethod.POST, "/x", null)
                .streamIdleTimeout(Duration.ofMillis(300));
        RequestBodyStream body = new RequestBodyStream();
        req.bodyStream(body);
        var result = rig.start(rig.router(), req, routeToC(""), one(wm));
        rig.ctx.runOnContext(v -> body.write(io.vertx.core.buffer.Buffer.buffer("first, and then nothing")));
        var r = RouterRig.await(result);
        assertEquals(408, r.status());
        assertEquals("stream timeout", r.body());
        assertEquals("SI", r.flags());
    }

    @Test
    void theConnectionManagersMaxStreamDurationAnswers504DownstreamDurationTimeoutWithoutAFlag() {
        WireMockServer wm = rig.wiremock();
        // a cold JVM's first request through the router (class loading, the first connection) can take longer than
        // the timing bound below on a loaded machine: one request first
        wm.stubFor(any(anyUrl()).willReturn(ok("warm")));
        assertEquals(200, rig.call(rig.router(), get("/x"), routeToC(""), one(wm)).status());
        wm.stubFor(any(anyUrl()).willReturn(ok("late").withFixedDelay(1500)));
        var r = rig.call(rig.router(), get("/x").maxStreamDuration(Duration.ofMillis(200)), routeToC(""), one(wm));
        assertEquals(504, r.status(), "the whole request was read");
        assertEquals("downstream duration timeout", r.body());
        assertEquals(Set.of(), r.info().responseFlags());
        assertEquals("max_duration_timeout", r.info().responseCodeDetails());
        assertTrue(r.elapsedMillis() >= 190 && r.elapsedMillis() < 1400, "answered after " + r.elapsedMillis());
        assertEquals(-1, r.response().exchange.durationTimer);
        // a gRPC caller gets DEADLINE_EXCEEDED, as from Envoy
        var grpc = rig.call(rig.router(), get("/x", "content-type", "application/grpc")
                .maxStreamDuration(Duration.ofMillis(200)), routeToC(""), one(wm));
        assertEquals(200, grpc.status());
        assertEquals("4", grpc.headers().get("grpc-status"));
    }

    @Test
    void aRoutesOwnZeroMaxStreamDurationLiftsTheConnectionManagersAndAnAnswerInTimeCancelsIt() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("late").withFixedDelay(400)));
        var r = rig.call(rig.router(), get("/x").maxStreamDuration(Duration.ofMillis(150)),
                routeToC("max_stream_duration: {max_stream_duration: 0s}"), one(wm));
        assertEquals(200, r.status());
        assertEquals("late", r.body());
        var inTime = rig.call(rig.router(), get("/x").maxStreamDuration(Duration.ofSeconds(30)), routeToC(""),
                one(wm));
        assertEquals(200, inTime.status());
        assertEquals(-1, inTime.response().exchange.durationTimer, "no timer left behind");
    }

    @Test
    void aRoutesOwnMaxStreamDurationReplacesTheConnectionManagersEitherWay() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("late").withFixedDelay(1500)));
        // none on the connection manager: the route's own ends the request
        var own = rig.call(rig.router(), get("/x"), routeToC("max_stream_duration: {max_stream_duration: 0.2s}"),
                one(wm));
        assertEquals(504, own.status());
        assertEquals("downstream duration timeout", own.body());
        assertEquals("max_duration_timeout", own.info().responseCodeDetails());
        assertTrue(own.elapsedMillis() >= 150 && own.elapsedMillis() < 1400, "answered after " + own.elapsedMillis());
        // a longer one on the connection manager does not keep it going
        var shorter = rig.call(rig.router(), get("/x").maxStreamDuration(Duration.ofSeconds(30)),
                routeToC("max_stream_duration: {max_stream_duration: 0.2s}"), one(wm));
        assertEquals(504, shorter.status());
        assertTrue(shorter.elapsedMillis() < 1400, "answered after " + shorter.elapsedMillis());
        // nor does a shorter one cut the route's longer one
        wm.stubFor(any(anyUrl()).willReturn(ok("in time").withFixedDelay(400)));
        var longer = rig.call(rig.router(), get("/x").maxStreamDuration(Duration.ofMillis(150)),
                routeToC("max_stream_duration: {max_stream_duration: 5s}"), one(wm));
        assertEquals(200, longer.status());
        assertEquals("in time", longer.body());
        assertEquals(-1, longer.response().exchange.durationTimer, "no timer left behind");
    }

    @Test
    void aRouteWithMaxStreamDurationHasNoRouteTimeoutAsEnvoysNewerTimeouts() {
        // Envoy's FilterUtility::finalTimeout: a route that sets max_stream_duration uses none of its timeout
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("in time").withFixedDelay(600)));
        var r = rig.call(rig.router(), get("/x"), routeToC("timeout: 0.2s, max_stream_duration: "
                + "{max_stream_duration: 5s}"), one(wm));
        assertEquals(200, r.status());
        assertEquals("in time", r.body());
        // with no duration of its own either, nothing bounds it but the connection manager's
        var none = rig.call(rig.router(), get("/x"), routeToC("timeout: 0.2s, max_stream_duration: {}"), one(wm));
        assertEquals(200, none.status());
        // without max_stream_duration the route timeout stands
        var timed = rig.call(rig.router(), get("/x"), routeToC("timeout: 0.2s"), one(wm));
        assertEquals(504, timed.status());
    }

    @Test
    void theRoutesIdleTimeoutOverridesTheConnectionManagers() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("late").withFixedDelay(500)));
        // the route's own, against the connection manager's default of 5 minutes
        var cut = rig.call(rig.router(), get("/x"), routeToC("idle_timeout: 0.2s"), one(wm));
        assertEquals(504, cut.status());
        assertEquals("stream_idle_timeout", cut.info().responseCodeDetails());
        // 0 on the route turns the connection manager's off
        var r = rig.call(rig.router(), get("/x").streamIdleTimeout(Duration.ofMillis(150)),
                routeToC("idle_timeout: 0s"), one(wm));
        assertEquals(200, r.status());
        assertEquals("late", r.body());
    }

    @Test
    void aZeroStreamIdleTimeoutLetsASlowUpstreamAnswer() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("late").withFixedDelay(300)));
        var r = rig.call(rig.router(), get("/x").streamIdleTimeout(Duration.ZERO), routeToC(""), one(wm));
        assertEquals(200, r.status());
        assertEquals(null, r.response().exchange.streamIdle, "no timer at all");
    }

    @Test
    void eachBodyChunkRestartsTheStreamIdleTimeout() {
        WireMockServer wm = rig.wiremock();
        // 10 chunks over 3 s: the body takes three times the idle timeout, no gap comes near it (0.3 s of 1 s)
        wm.stubFor(any(anyUrl()).willReturn(ok("x".repeat(100)).withChunkedDribbleDelay(10, 3000)));
        var r = rig.call(rig.router(), get("/x").streamIdleTimeout(Duration.ofSeconds(1)), routeToC(""), one(wm));
        assertEquals(200, r.status());
        assertEquals("x".repeat(100), r.body());
        assertEquals(Set.of(), r.info().responseFlags());
        assertTrue(r.elapsedMillis() >= 2000, "the body streamed for " + r.elapsedMillis());
    }

    /** An upstream that sends its headers and a first chunk at once, and the rest {@code gapMillis} later. */
    private ClusterManager stalling(long gapMillis) throws Exception {
        HttpServer server = rig.vertx.createHttpServer().requestHandler(req -> {
            req.response().setChunked(true).write("first");
            rig.vertx.setTimer(gapMillis, t -> req.response().end("rest"));
        });
        server.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        return rig.clusters(cluster("c", server.actualPort()));
    }

    /** The stream idle timeout (SI) and the connection manager's max_stream_duration (no flag) cut a response alike. */
    @ParameterizedTest
    @ValueSource(strings = {"stream_idle_timeout", "max_duration_timeout"})
    void aStreamTimeoutAfterTheResponseStartedResetsIt(String details) throws Exception {
        boolean idle = details.equals("stream_idle_timeout");
        // (1 s: the headers come well within it on a loaded machine, the rest 3 s later)
        RouterRequest req = idle ? get("/x").streamIdleTimeout(Duration.ofSeconds(1))
                : get("/x").maxStreamDuration(Duration.ofSeconds(1));
        var r = rig.call(rig.router(), req, routeToC(""), stalling(3000));
        assertEquals(200, r.status(), "the headers were in time");
        assertEquals(null, r.body(), "the body was cut");
        assertEquals(idle ? Set.of(ResponseFlag.STREAM_IDLE_TIMEOUT) : Set.of(), r.info().responseFlags(),
                "not UC: the router cut it");
        assertEquals(details, r.info().responseCodeDetails());
        assertTrue(r.elapsedMillis() < 2800, "cut after " + r.elapsedMillis());
    }

    @Test
    void completingAnExchangeCancelsItsStreamIdleTimer() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("quick")));
        var r = rig.call(rig.router(), get("/x"), routeToC(""), one(wm));
        assertEquals(200, r.status());
        assertEquals(false, r.response().exchange.streamIdle.pending(), "no 5 min timer left behind per request");
    }

    @Test
    void aLocalReplyCancelsTheStreamIdleTimer() {
        WireMockServer wm = rig.wiremock();
        var r = rig.call(rig.router(), get("/x").streamIdleTimeout(Duration.ofMillis(200)),
                routeToC("timeout: 0.1s"), rig.clusters(cluster("c", RouterRig.closedPort())));
        assertEquals(503, r.status());
        assertEquals(false, r.response().exchange.streamIdle.pending());
    }

    @Test
    void eachBodyChunkRestartsThePerTryIdleTimeout() {
        WireMockServer wm = rig.wiremock();
        // 10 chunks over 3 s, 0.3 s apart: three times the idle timeout, no gap near it on a loaded machine
        wm.stubFor(any(anyUrl()).willReturn(ok("x".repeat(100)).withChunkedDribbleDelay(10, 3000)));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 1, "
                + "per_try_idle_timeout: 1s}"), one(wm));
        assertEquals("x".repeat(100), r.body());
        assertEquals(Set.of(), r.info().responseFlags());
        assertEquals(false, r.response().exchange.perTryIdle.pending(), "no timer left behind");
    }

    @Test
    void aPerTryIdleTimeoutAfterTheResponseStartedCutsIt() throws Exception {
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 1, "
                + "per_try_idle_timeout: 1s}"), stalling(3000));
        assertEquals(200, r.status(), "the headers were in time");
        assertEquals(null, r.body(), "the body was cut");
        assertEquals(Set.of(ResponseFlag.UPSTREAM_REQUEST_TIMEOUT), r.info().responseFlags());
        assertEquals("upstream_per_try_idle_timeout", r.info().responseCodeDetails());
        assertEquals(1, r.info().attemptCount(), "a response already passed on is not retried");
    }

    private static final String GRPC_ROUTE = "timeout: 5s, max_stream_duration: {grpc_timeout_header_max: 0s}";

    @Test
    void underMaxStreamDurationAGrpcCallersDeadlineIsTheStreamsDurationAndEndsItWithDeadlineExceeded() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok().withFixedDelay(1500)));
        var r = rig.call(rig.router(), get("/pkg.Svc/M", "content-type", "application/grpc", "grpc-timeout", "200m"),
                routeToC(GRPC_ROUTE), one(wm));
        // as Envoy's connection manager: the caller's deadline runs the stream's duration timer, not the router's
        // route timeout, so the answer is its downstream duration timeout with DEADLINE_EXCEEDED (not UNAVAILABLE)
        assertEquals(200, r.status(), "a gRPC caller gets the timeout as a trailers-only gRPC response");
        assertEquals("4", r.header("grpc-status"));
        assertEquals("downstream duration timeout", r.header("grpc-message"));
        assertEquals("max_duration_timeout", r.info().responseCodeDetails());
        assertEquals(200, r.info().responseCode());
        assertEquals("4", r.info().grpcStatus(), "the metrics' grpc_response_status");
        assertEquals(Set.of(), r.info().responseFlags());
        assertTrue(r.elapsedMillis() < 1400, "answered after " + r.elapsedMillis());
    }

    @Test
    void theGrpcTimeoutHeaderOffsetIsTakenOffTheCallersDeadline() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok().withFixedDelay(1500)));
        // 3 s asked for, 2.8 s of it kept back: the stream ends after about 0.2 s, before the upstream's answer
        // after 1.5 s (which a deadline of the whole 3 s would let through)
        var r = rig.call(rig.router(), get("/pkg.Svc/M", "content-type", "application/grpc", "grpc-timeout", "3S"),
                routeToC("max_stream_duration: {grpc_timeout_header_max: 0s, grpc_timeout_header_offset: 2.8s}"),
                one(wm));
        assertEquals("4", r.header("grpc-status"));
        assertEquals("max_duration_timeout", r.info().responseCodeDetails());
        assertTrue(r.elapsedMillis() < 1400, "answered after " + r.elapsedMillis());
    }

    @Test
    void theOffsetIsTakenOffTheCappedDeadlineAsEnvoysConnectionManagerTakesIt() {
        RouteAction a = RouteAction.toCluster("c").withMaxStreamDuration(Duration.ofSeconds(5),
                Duration.ofSeconds(1));
        String grpc = "application/grpc";
        assertEquals(Duration.ofMillis(1500), Router.maxStreamDuration(a, get("/", "content-type", grpc,
                "grpc-timeout", "2500m")));
        assertEquals(Duration.ZERO, Router.maxStreamDuration(a, get("/", "content-type", grpc, "grpc-timeout",
                "800m")), "an offset not shorter than the deadline leaves the stream out of time");
        assertEquals(Duration.ofSeconds(4), Router.maxStreamDuration(a, get("/", "content-type", grpc,
                "grpc-timeout", "7S")), "7 s capped to 5 s, then less 1 s");
        assertEquals(null, Router.maxStreamDuration(a, get("/", "content-type", grpc)),
                "no header: no stream duration from it");
        assertEquals(Duration.ZERO, Router.routeTimeout(a, get("/", "content-type", grpc, "grpc-timeout", "2500m")),
                "no route timeout under max_stream_duration, nor the caller's deadline: the stream's duration bounds");
    }

    @Test
    void aGrpcTimeoutIsCappedByTheRoutesMaximum() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok().withFixedDelay(1500)));
        var r = rig.call(rig.router(), get("/pkg.Svc/M", "content-type", "application/grpc+proto", "grpc-timeout",
                "10S"), routeToC("max_grpc_timeout: 0.2s"), one(wm));
        // the legacy max_grpc_timeout (Istio's outbound routes) sets the router's route timeout: 504 UNAVAILABLE
        assertEquals("14", r.header("grpc-status"));
        assertEquals(Set.of(ResponseFlag.UPSTREAM_REQUEST_TIMEOUT), r.info().responseFlags());
        assertTrue(r.elapsedMillis() < 1400, "answered after " + r.elapsedMillis());
    }

    @Test
    void theDeprecatedGrpcTimeoutOffsetIsTakenOffTheCallersDeadlineBeforeTheCapWhenItIsShorter() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok()));
        String route = "max_grpc_timeout: 5s, grpc_timeout_offset: 0.8s";
        // 1 s less 0.8 s: the route timeout, and the deadline the upstream learns, are 200 ms
        assertEquals(200, rig.call(rig.router(), get("/pkg.Svc/M", "content-type", "application/grpc",
                "grpc-timeout", "1S"), routeToC(route), one(wm)).status());
        // not shorter than the caller's 500 ms: not taken off (Envoy leaves a deadline of 0 or less alone)
        assertEquals(200, rig.call(rig.router(), get("/pkg.Svc/N", "content-type", "application/grpc",
                "grpc-timeout", "500m"), routeToC(route), one(wm)).status());
        // 9 s less 0.8 s is over the 5 s cap: the cap
        assertEquals(200, rig.call(rig.router(), get("/pkg.Svc/O", "content-type", "application/grpc",
                "grpc-timeout", "9S"), routeToC(route), one(wm)).status());
        wm.verify(getRequestedFor(urlEqualTo("/pkg.Svc/M")).withHeader("grpc-timeout", equalTo("200m")));
        wm.verify(getRequestedFor(urlEqualTo("/pkg.Svc/N")).withHeader("grpc-timeout", equalTo("500m")));
        wm.verify(getRequestedFor(urlEqualTo("/pkg.Svc/O")).withHeader("grpc-timeout", equalTo("5000m")));
    }

    @Test
    void theGrpcTimeoutHeaderIsIgnoredWithoutAMaximumOnTheRoute() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("done").withFixedDelay(300)));
        assertEquals(200, rig.call(rig.router(), get("/a", "content-type", "application/grpc", "grpc-timeout",
                "50m"), routeToC("timeout: 5s"), one(wm)).status());
        assertEquals(200, rig.call(rig.router(), get("/a", "content-type", "application/json", "grpc-timeout",
                "50m"), routeToC("max_grpc_timeout: 5s"), one(wm)).status(), "max_grpc_timeout is for gRPC only");
    }

    @Test
    void underMaxStreamDurationAnyRequestsGrpcTimeoutBoundsItsStreamAsEnvoyReadsTheHeader() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("done").withFixedDelay(1500)));
        var r = rig.call(rig.router(), get("/b", "content-type", "application/json", "grpc-timeout", "100m"),
                routeToC(GRPC_ROUTE), one(wm));
        assertEquals(504, r.status());
        assertEquals("downstream duration timeout", r.body());
        assertTrue(r.elapsedMillis() < 1400, "answered after " + r.elapsedMillis());
    }

    private static String upstreamGrpcTimeout(WireMockServer wm) {
        var events = wm.getAllServeEvents();
        return events.get(0).getRequest().getHeader("grpc-timeout");
    }

    /** The grpc-timeout a gRPC call on a route with {@code routeFields} sends upstream. */
    private String sentGrpcTimeout(String routeFields, String... headers) {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok()));
        String[] h = java.util.stream.Stream.concat(java.util.stream.Stream.of("content-type", "application/grpc"),
                java.util.Arrays.stream(headers)).toArray(String[]::new);
        rig.call(rig.router(), get("/pkg.Svc/M", h), routeToC(routeFields), one(wm));
        return upstreamGrpcTimeout(wm);
    }

    /** A grpc-timeout that is what remained of {@code millis} when the attempt started (a few ms less). */
    private static void assertRemaining(long millis, String v) {
        assertTrue(v != null && v.endsWith("m"), v);
        long ms = Long.parseLong(v.substring(0, v.length() - 1));
        assertTrue(ms <= millis && ms > millis - 1000, v + " for " + millis + " ms");
    }

    @Test
    void grpcTimeoutIsRewrittenUpstreamToTheCappedTimeout() {
        // the router enforces 5 s: so must the server
        assertRemaining(5000, sentGrpcTimeout("max_grpc_timeout: 5s", "grpc-timeout", "10S"));
    }

    @Test
    void grpcTimeoutIsSetUpstreamFromTheMaximumWhenTheCallerSentNone() {
        assertRemaining(300_000, sentGrpcTimeout("max_grpc_timeout: 300s"));
    }

    @Test
    void grpcTimeoutUpstreamIsThePerTryTimeoutWhenShorter() {
        assertEquals("250m", sentGrpcTimeout("max_grpc_timeout: 5s, retry_policy: {retry_on: 5xx, "
                + "per_try_timeout: 0.25s}", "grpc-timeout", "10S"));
    }

    @Test
    void underMaxStreamDurationTheGrpcTimeoutSentUpstreamIsTheStreamsDeadline() {
        // as Envoy's connection manager: capped by grpc_timeout_header_max, less the offset
        assertEquals("3000m", sentGrpcTimeout("timeout: 5s, max_stream_duration: {grpc_timeout_header_max: 3s}",
                "grpc-timeout", "10S"));
        assertEquals("1500m", sentGrpcTimeout("max_stream_duration: {grpc_timeout_header_max: 0s, "
                + "grpc_timeout_header_offset: 0.5s}", "grpc-timeout", "2S"));
        assertEquals(null, sentGrpcTimeout("max_stream_duration: {grpc_timeout_header_max: 0s}"),
                "none made up without the caller's");
        // the route's own duration, with or without the caller's grpc-timeout (no grpc_timeout_header_max)
        assertEquals("3000m", sentGrpcTimeout("max_stream_duration: {max_stream_duration: 3s}", "grpc-timeout",
                "10S"));
        assertEquals("3000m", sentGrpcTimeout("max_stream_duration: {max_stream_duration: 3s}"));
    }

    @Test
    void grpcTimeoutIsForwardedUnchangedWithoutMaxGrpcTimeout() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok()));
        // a plain route does not rewrite it; nor max_grpc_timeout for a request that is not gRPC; nor
        // max_stream_duration without grpc_timeout_header_max
        String[][] cases = {{"application/grpc", "timeout: 5s, max_stream_duration: {max_stream_duration: 0s}"},
            {"application/grpc", "timeout: 5s"}, {"application/json", "max_grpc_timeout: 5s"},
            {"application/json", "max_stream_duration: {grpc_timeout_header_max: 3s}"}};
        for (String[] c : cases) {
            wm.resetRequests();
            rig.call(rig.router(), get("/pkg.Svc/M", "content-type", c[0], "grpc-timeout", "10S"), routeToC(c[1]),
                    one(wm));
            assertEquals("10S", upstreamGrpcTimeout(wm), c[0] + " with " + c[1]);
        }
    }

    @Test
    void grpcTimeoutValuesAreWrittenInTheSmallestUnitThatFits() {
        assertEquals("5000m", Grpc.timeoutValue(5_000));
        assertEquals("99999999m", Grpc.timeoutValue(99_999_999));
        assertEquals("100000S", Grpc.timeoutValue(100_000_000));
        assertEquals("1666666M", Grpc.timeoutValue(100_000_000_000L));
        assertEquals("99999999H", Grpc.timeoutValue(Long.MAX_VALUE));
    }

    @Test
    void grpcTimeoutValuesAreReadWithTheirUnits() {
        assertEquals(7_200_000, Router.grpcTimeoutMillis("2H"));
        assertEquals(180_000, Router.grpcTimeoutMillis("3M"));
        assertEquals(4_000, Router.grpcTimeoutMillis("4S"));
        assertEquals(5, Router.grpcTimeoutMillis("5m"));
        assertEquals(1, Router.grpcTimeoutMillis("1u"));
        assertEquals(2, Router.grpcTimeoutMillis("1500000n"));
        assertEquals(-1, Router.grpcTimeoutMillis("123456789S"), "at most 8 digits' worth");
        assertEquals(-1, Router.grpcTimeoutMillis("5x"));
        assertEquals(-1, Router.grpcTimeoutMillis("S"));
        assertEquals(-1, Router.grpcTimeoutMillis("-1S"));
        // as Envoy's getGrpcTimeout, through absl's SimpleAtoi: a plus and leading zeros are taken
        assertEquals(1_000, Router.grpcTimeoutMillis("+1S"));
        assertEquals(1_000, Router.grpcTimeoutMillis("000000001S"));
    }
}
