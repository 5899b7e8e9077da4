package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.ok;
import static com.github.tomakehurst.wiremock.client.WireMock.postRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static dev.inmesh.runtime.router.RouterRig.closedPort;
import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static dev.inmesh.runtime.router.RouterRig.sequence;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.http.Fault;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.upstream.ClusterManager;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.http.HttpMethod;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.random.RandomGenerator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class RouterRetryTest {
    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    private ClusterManager one(WireMockServer wm) {
        return rig.clusters(cluster("c", wm.port()));
    }

    @Test
    void retriesA503WhoseCodeIsListedInRetriableStatusCodes() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(503), ok("fine"));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: retriable-status-codes, "
                + "num_retries: 1, retriable_status_codes: [503]}"), one(wm));
        assertEquals(200, r.status());
        assertEquals("fine", r.body());
        assertEquals(2, r.info().attemptCount());
        assertEquals(Set.of(), r.info().responseFlags());
        wm.verify(2, anyRequestedFor(urlEqualTo("/x")));
    }

    @Test
    void doesNotRetryA503WhenNoConditionCoversIt() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(503).withBody("down"), ok("fine"));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: \"connect-failure,"
                + "retriable-status-codes\", num_retries: 3, retriable_status_codes: [502]}"), one(wm));
        assertEquals(503, r.status());
        assertEquals("down", r.body());
        assertEquals(1, r.info().attemptCount());
        assertEquals("-", r.flags(), "a response that was not retriable is not a retry limit");
        wm.verify(1, anyRequestedFor(urlEqualTo("/x")));
    }

    @Test
    void doesNotRetryWithoutARetryPolicy() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(503), ok("fine"));
        var r = rig.call(rig.router(), get("/x"), routeToC(""), one(wm));
        assertEquals(503, r.status());
        wm.verify(1, anyRequestedFor(urlEqualTo("/x")));
    }

    @Test
    void returnsTheLastResponseUnchangedWithUrxWhenRetriesRunOut() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(urlEqualTo("/x")).willReturn(aResponse().withStatus(503).withHeader("x-from", "upstream")
                .withHeader("content-type", "application/json").withBody("{\"busy\":true}")));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 2}"),
                one(wm));
        assertEquals(503, r.status());
        assertEquals("{\"busy\":true}", r.body());
        assertEquals("upstream", r.header("x-from"));
        assertEquals("application/json", r.header("content-type"));
        assertEquals(null, r.header("x-envoy-overloaded"));
        assertEquals(Set.of(ResponseFlag.UPSTREAM_RETRY_LIMIT_EXCEEDED), r.info().responseFlags());
        assertEquals(3, r.info().attemptCount());
        assertEquals("via_upstream", r.info().responseCodeDetails());
        assertEquals("c", r.info().upstreamCluster());
        assertEquals("127.0.0.1:" + wm.port(), r.info().upstreamHost());
        wm.verify(3, anyRequestedFor(urlEqualTo("/x")));
    }

    @Test
    void aWholeBodyLargerThanTheRetryBufferIsNotRetriedAndCountsAsRetryOrShadowAbandonedAsInEnvoy() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(503), ok("fine"));
        PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        Router router = rig.router();
        router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
        String table = "retry_policy: {retry_on: 5xx, num_retries: 1}";
        var big = rig.call(router, RouterRig.request(HttpMethod.POST, "/x",
                "a".repeat(RequestBodyStream.RETRY_BUFFER_LIMIT + 1)), routeToC(table), one(wm));
        assertEquals(503, big.status()); // as Envoy: not kept, so not retried, and answered as it is (no URX)
        assertEquals(1, big.info().attemptCount());
        assertEquals(Set.of(), big.info().responseFlags());
        assertEquals(1.0, reg.find("envoy_cluster_retry_or_shadow_abandoned").tag("cluster_name", "c").gauge()
                .value());
        // one within the limit is still retried
        wm.resetScenarios();
        var small = rig.call(router, RouterRig.request(HttpMethod.POST, "/x",
                "a".repeat(RequestBodyStream.RETRY_BUFFER_LIMIT)), routeToC(table), one(wm));
        assertEquals(200, small.status());
        assertEquals(2, small.info().attemptCount());
        assertEquals(1.0, reg.find("envoy_cluster_retry_or_shadow_abandoned").tag("cluster_name", "c").gauge()
                .value());
    }

    @Test
    void aStreamedBodyThatOutgrowsTheRetryBufferWhileARetryBacksOffIsAnswered507AsInEnvoy() throws Exception {
        java.util.concurrent.CompletableFuture<Void> answered = new java.util.concurrent.CompletableFuture<>();
        var server = rig.vertx.createHttpServer().requestHandler(req -> {
            req.response().setStatusCode(503).end(); // at once, while the body still comes
            answered.complete(null);
        });
        server.listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        // the longest back-off of a 5 s base: the retry waits while the body grows past the limit
        RandomGenerator longest = RouterRig.topOfRange(new ArrayList<>());
        PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        Router router = rig.router(Router.Options.DEFAULTS, longest);
        router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
        RouterRequest req = RouterRig.request(HttpMethod.POST, "/x", null);
        RequestBodyStream body = new RequestBodyStream();
        req.bodyStream(body);
        rig.ctx.runOnContext(v -> body.write(io.vertx.core.buffer.Buffer.buffer("start")));
        var result = rig.start(router, req, routeToC("retry_policy: {retry_on: 5xx, num_retries: 1, "
                + "retry_back_off: {base_interval: 5s}}"), rig.clusters(cluster("c", server.actualPort())));
        answered.get(10, TimeUnit.SECONDS);
        // the 503 reached the router, whose retry now backs off (counted in upstream_rq_retry when it starts to)
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (retries(reg) < 1 && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertEquals(1.0, retries(reg), "the retry backs off");
        rig.ctx.runOnContext(v -> body.write(io.vertx.core.buffer.Buffer.buffer(
                new byte[RequestBodyStream.RETRY_BUFFER_LIMIT])));
        var r = RouterRig.await(result);
        assertEquals(507, r.status());
        assertEquals("exceeded request buffer limit while retrying upstream", r.body());
        assertEquals("request_payload_exceeded_retry_buffer_limit", r.info().responseCodeDetails());
        assertEquals(1, r.info().attemptCount());
        assertEquals(1.0, reg.find("envoy_cluster_retry_or_shadow_abandoned").tag("cluster_name", "c").gauge()
                .value());
        assertTrue(r.elapsedMillis() < 4000, "no retry was waited for");
    }

    /** Calls {@code /x} on a route that retries 5xx twice, keeping cluster statistics in {@code reg}. */
    private RouterRig.Result callRetrying5xxTwice(WireMockServer wm, PrometheusMeterRegistry reg) {
        Router router = rig.router();
        router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
        return rig.call(router, get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 2}"), one(wm));
    }

    /** Cluster {@code c}'s retry statistics by Envoy name (0 for one never registered). */
    private static Map<String, Double> retryStats(PrometheusMeterRegistry reg) {
        Map<String, Double> out = new TreeMap<>();
        for (String name : List.of("upstream_rq_retry", "upstream_rq_retry_backoff_exponential",
                "upstream_rq_retry_success", "upstream_rq_retry_limit_exceeded")) {
            var g = reg.find("envoy_cluster_" + name).tag("cluster_name", "c").gauge();
            out.put(name, g == null ? 0 : g.value());
        }
        return out;
    }

    @Test
    void aRetryThatEndsInAnAnswerNotRetriedCountsAsUpstreamRqRetrySuccessAsEnvoyCountsIt() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(503), aResponse().withStatus(404));
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        var r = callRetrying5xxTwice(wm, reg);
        assertEquals(404, r.status());
        assertEquals(Map.of("upstream_rq_retry", 1.0, "upstream_rq_retry_backoff_exponential", 1.0,
                "upstream_rq_retry_success", 1.0, "upstream_rq_retry_limit_exceeded", 0.0), retryStats(reg));
    }

    /**
     * As Envoy, which keeps a retry state for any policy with conditions: with no retry allowed ({@code num_retries: 0},
     * or a trusted caller's {@code x-envoy-max-retries: 0}) a retriable answer has run out of retries (URX).
     */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void aRetriableAnswerWithNoRetryAllowedHasRunOutOfRetries(boolean header) {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(urlEqualTo("/x")).willReturn(aResponse().withStatus(503)));
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        Router router = header ? rig.router(RouterRig.trusted(), null) : rig.router();
        router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
        var r = rig.call(router, header ? get("/x", "x-envoy-max-retries", "0") : get("/x"), routeToC(
                "retry_policy: {retry_on: 5xx, num_retries: " + (header ? 2 : 0) + "}"), one(wm));
        assertEquals(503, r.status());
        assertEquals(1, r.info().attemptCount());
        assertEquals("URX", r.flags());
        assertEquals(Map.of("upstream_rq_retry", 0.0, "upstream_rq_retry_backoff_exponential", 0.0,
                "upstream_rq_retry_success", 0.0, "upstream_rq_retry_limit_exceeded", 1.0), retryStats(reg));
    }

    @Test
    void retriesThatRunOutCountAsUpstreamRqRetryLimitExceededNotAsSuccess() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(urlEqualTo("/x")).willReturn(aResponse().withStatus(503)));
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        var r = callRetrying5xxTwice(wm, reg);
        assertEquals(3, r.info().attemptCount());
        assertEquals(Map.of("upstream_rq_retry", 2.0, "upstream_rq_retry_backoff_exponential", 2.0,
                "upstream_rq_retry_success", 0.0, "upstream_rq_retry_limit_exceeded", 1.0), retryStats(reg));
    }

    /** Cluster {@code c}'s response counts by Envoy name: the answer's and those retried away (0 when never kept). */
    private static Map<String, Double> responseStats(PrometheusMeterRegistry reg) {
        Map<String, Double> out = new TreeMap<>();
        for (String series : List.of("upstream_rq_xx", "retry_upstream_rq")) {
            for (String cls : List.of("2xx", "5xx")) {
                var g = reg.find("envoy_cluster_" + series).tag("cluster_name", "c").tag("response_code_class", cls)
                        .gauge();
                out.put(series + "{" + cls + "}", g == null ? 0 : g.value());
            }
        }
        for (String name : List.of("upstream_rq_completed", "retry_upstream_rq_completed")) {
            var g = reg.find("envoy_cluster_" + name).tag("cluster_name", "c").gauge();
            out.put(name, g == null ? 0 : g.value());
        }
        // and by code: upstream_rq_503, retry.upstream_rq_503
        for (String series : List.of("upstream_rq_code", "retry_upstream_rq_code")) {
            var g = reg.find("envoy_cluster_" + series).tag("cluster_name", "c").tag("response_code", "503").gauge();
            out.put(series + "{503}", g == null ? 0 : g.value());
        }
        return out;
    }

    @Test
    void aResponseRetriedAwayCountsUnderTheRetryScopeAndOnlyTheAnswerUnderUpstreamRq() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(503), ok("fine"));
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        assertEquals(200, callRetrying5xxTwice(wm, reg).status());
        assertEquals(Map.of("upstream_rq_xx{2xx}", 1.0, "upstream_rq_xx{5xx}", 0.0, "retry_upstream_rq{2xx}", 0.0,
                "retry_upstream_rq{5xx}", 1.0, "upstream_rq_completed", 1.0, "retry_upstream_rq_completed", 1.0,
                "upstream_rq_code{503}", 0.0, "retry_upstream_rq_code{503}", 1.0), responseStats(reg));
    }

    @Test
    void whenRetriesRunOutTheLastResponseIsTheAnswersCountAndTheOthersTheRetryScopes() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(urlEqualTo("/x")).willReturn(aResponse().withStatus(503)));
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        assertEquals(503, callRetrying5xxTwice(wm, reg).status());
        assertEquals(Map.of("upstream_rq_xx{2xx}", 0.0, "upstream_rq_xx{5xx}", 1.0, "retry_upstream_rq{2xx}", 0.0,
                "retry_upstream_rq{5xx}", 2.0, "upstream_rq_completed", 1.0, "retry_upstream_rq_completed", 2.0,
                "upstream_rq_code{503}", 1.0, "retry_upstream_rq_code{503}", 2.0), responseStats(reg));
    }

    @Test
    void retriesAConnectionResetByThePeer() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withFault(Fault.CONNECTION_RESET_BY_PEER), ok("fine"));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: reset, num_retries: 1}"),
                one(wm));
        assertEquals(200, r.status());
        assertEquals("fine", r.body());
        assertEquals(2, r.info().attemptCount());
        wm.verify(2, anyRequestedFor(urlEqualTo("/x")));
    }

    @Test
    void aResetOnTheLastOfSeveralAttemptsSaysTheRequestWasRetried() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(aResponse().withFault(Fault.CONNECTION_RESET_BY_PEER)));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: reset, num_retries: 1}"),
                one(wm));
        assertEquals(503, r.status());
        assertEquals("upstream connect error or disconnect/reset before headers. retried and the latest reset "
                + "reason: connection termination", r.body());
        assertEquals(2, r.info().attemptCount());
    }

    @Test
    void aResetWithoutARetryConditionAnswers503WithUc() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withFault(Fault.CONNECTION_RESET_BY_PEER), ok("fine"));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: connect-failure, "
                + "num_retries: 1}"), one(wm));
        assertEquals(503, r.status());
        assertEquals("upstream connect error or disconnect/reset before headers. reset reason: connection "
                + "termination", r.body());
        assertEquals("UC", r.flags());
        wm.verify(1, anyRequestedFor(urlEqualTo("/x")));
    }

    @Test
    void retriesARefusedConnectionUntilRetriesRunOutThenAnswers503WithUfAndUrx() {
        var clusters = rig.clusters(cluster("c", closedPort()));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: connect-failure, "
                + "num_retries: 2}"), clusters);
        assertEquals(503, r.status());
        assertEquals("upstream connect error or disconnect/reset before headers. retried and the latest reset "
                + "reason: remote connection failure, transport failure reason: delayed connect error: Connection "
                + "refused", r.body());
        assertEquals(3, r.info().attemptCount());
        assertEquals(Set.of(ResponseFlag.UPSTREAM_CONNECTION_FAILURE, ResponseFlag.UPSTREAM_RETRY_LIMIT_EXCEEDED),
                r.info().responseFlags());
        // printed as current Envoy prints them: in the order its router sets them, the retry outcome first
        assertEquals("URX,UF", ResponseFlag.format(r.info().responseFlags()));
    }

    @Test
    void retriesARefusedConnectionOnTheOtherHost() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("fine")));
        int closed = closedPort();
        // Round robin from the first host: the refused one is tried first.
        var clusters = rig.clusters(() -> 0L, cluster("c", closed, wm.port()));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: connect-failure, "
                + "num_retries: 1}"), clusters);
        assertEquals(200, r.status());
        assertEquals(2, r.info().attemptCount());
        assertEquals("127.0.0.1:" + wm.port(), r.info().upstreamHost());
        assertEquals("-", r.flags());
    }

    @Test
    void resendsTheBufferedRequestBodyOnARetry() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(503), ok("fine"));
        var r = rig.call(rig.router(), RouterRig.request(HttpMethod.POST, "/x", "payload-123"),
                routeToC("retry_policy: {retry_on: 5xx, num_retries: 1}"), one(wm));
        assertEquals(200, r.status());
        wm.verify(2, postRequestedFor(urlEqualTo("/x"))
                .withRequestBody(com.github.tomakehurst.wiremock.client.WireMock.equalTo("payload-123")));
    }

    @Test
    void gatewayErrorRetries502ButNot500() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/a", aResponse().withStatus(502), ok("fine"));
        sequence(wm, "/b", aResponse().withStatus(500), ok("fine"));
        var table = routeToC("retry_policy: {retry_on: gateway-error, num_retries: 1}");
        var clusters = one(wm);
        assertEquals(200, rig.call(rig.router(), get("/a"), table, clusters).status());
        assertEquals(500, rig.call(rig.router(), get("/b"), table, clusters).status());
        wm.verify(2, anyRequestedFor(urlEqualTo("/a")));
        wm.verify(1, anyRequestedFor(urlEqualTo("/b")));
    }

    @Test
    void retriable4xxRetriesA409ButNotA404() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/a", aResponse().withStatus(409), ok("fine"));
        sequence(wm, "/b", aResponse().withStatus(404), ok("fine"));
        var table = routeToC("retry_policy: {retry_on: retriable-4xx, num_retries: 1}");
        var clusters = one(wm);
        assertEquals(200, rig.call(rig.router(), get("/a"), table, clusters).status());
        assertEquals(404, rig.call(rig.router(), get("/b"), table, clusters).status());
        wm.verify(2, anyRequestedFor(urlEqualTo("/a")));
        wm.verify(1, anyRequestedFor(urlEqualTo("/b")));
    }

    @Test
    void retriableHeadersRetriesAResponseCarryingAMatchingHeader() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(200).withHeader("x-try-again", "yes"), ok("fine"));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: retriable-headers, "
                + "num_retries: 1, retriable_headers: [{name: x-try-again, string_match: {exact: \"yes\"}}]}"),
                one(wm));
        assertEquals("fine", r.body());
        wm.verify(2, anyRequestedFor(urlEqualTo("/x")));
    }

    @Test
    void retriesTheGrpcStatusNamedByRetryOn() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(200).withHeader("grpc-status", "14"),
                aResponse().withStatus(200).withHeader("grpc-status", "0").withBody("ok"));
        sequence(wm, "/y", aResponse().withStatus(200).withHeader("grpc-status", "13"),
                aResponse().withStatus(200).withHeader("grpc-status", "0"));
        var table = routeToC("retry_policy: {retry_on: \"unavailable,cancelled\", num_retries: 1}");
        var clusters = one(wm);
        assertEquals("0", rig.call(rig.router(), get("/x"), table, clusters).header("grpc-status"));
        assertEquals("13", rig.call(rig.router(), get("/y"), table, clusters).header("grpc-status"));
        wm.verify(2, anyRequestedFor(urlEqualTo("/x")));
        wm.verify(1, anyRequestedFor(urlEqualTo("/y")));
    }

    @Test
    void retriesAnUpstream503ThatSaysItIsOverloadedAsAny503() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(503).withHeader("x-envoy-overloaded", "true"), ok("fine"));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 3}"),
                one(wm));
        assertEquals(200, r.status());
        wm.verify(2, anyRequestedFor(urlEqualTo("/x")));
    }

    @Test
    void retriesARateLimitedResponseOnlyUnderEnvoyRatelimited() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(503).withHeader("x-envoy-ratelimited", "true"), ok("fine"));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 3}"),
                one(wm));
        assertEquals(503, r.status());
        wm.verify(1, anyRequestedFor(urlEqualTo("/x")));
        wm.resetScenarios();
        r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: envoy-ratelimited, "
                + "num_retries: 3}"), one(wm));
        assertEquals(200, r.status());
        wm.verify(3, anyRequestedFor(urlEqualTo("/x")));
    }

    /**
     * Envoy loads {@code previous_hosts} without {@code host_selection_retry_max_attempts} and then picks again once
     * (its default); the route configuration was refused.
     */
    @Test
    void previousHostsWithoutHostSelectionRetryMaxAttemptsLoadsAndPicksAgainOnce() {
        List<WireMockServer> servers = List.of(rig.wiremock(), rig.wiremock());
        servers.forEach(s -> s.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(503))));
        var clusters = rig.clusters(new Random(7), RouterRig.cluster("c", LbPolicy.RANDOM, null, null,
                servers.get(0).port(), servers.get(1).port()));
        var table = routeToC("retry_policy: {retry_on: 5xx, num_retries: 1, "
                + "retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts}]}");
        var policy = new RetryState(table.route(get("/x"), 0) instanceof RouteResult.Forward f
                ? f.action().retryPolicy() : null, -1, null, null, new Random(1));
        assertEquals(2, policy.hostSelectionAttempts(), "the first pick and one more");
        var r = rig.call(rig.router(), get("/x"), table, clusters);
        assertEquals(503, r.status());
        assertEquals(2, r.info().attemptCount());
    }

    @Test
    void sendsEachAttemptToADifferentHostWithPreviousHosts() {
        List<WireMockServer> servers = List.of(rig.wiremock(), rig.wiremock(), rig.wiremock());
        servers.forEach(s -> s.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(503))));
        var clusters = rig.clusters(new Random(7), RouterRig.cluster("c", LbPolicy.RANDOM, null, null,
                servers.get(0).port(), servers.get(1).port(), servers.get(2).port()));
        var table = routeToC("retry_policy: {retry_on: 5xx, num_retries: 2, host_selection_retry_max_attempts: 60, "
                + "retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts}]}");
        for (int i = 0; i < 5; i++) {
            var r = rig.call(rig.router(), get("/x" + i), table, clusters);
            assertEquals(3, r.info().attemptCount());
            for (WireMockServer s : servers) {
                s.verify(1, anyRequestedFor(urlEqualTo("/x" + i)));
            }
        }
    }

    /**
     * Cluster {@code c} with one host per priority, in a locality of its own (as Istio's locality failover lays
     * them out), each answering 503.
     */
    private ClusterManager onePerPriority(List<WireMockServer> servers) {
        List<dev.inmesh.api.config.endpoint.LocalityLbEndpoints> groups = new ArrayList<>();
        for (int p = 0; p < servers.size(); p++) {
            servers.get(p).stubFor(any(anyUrl()).willReturn(aResponse().withStatus(503)));
            groups.add(new dev.inmesh.api.config.endpoint.LocalityLbEndpoints(
                    new dev.inmesh.api.config.endpoint.Locality("region", "zone-" + p, ""),
                    List.of(dev.inmesh.api.config.endpoint.LbEndpoint.of("127.0.0.1", servers.get(p).port())), 1, p,
                    null));
        }
        return rig.clusters(dev.inmesh.api.config.cluster.Cluster.builder("c",
                dev.inmesh.api.config.cluster.DiscoveryType.STATIC).lbPolicy(LbPolicy.ROUND_ROBIN)
                .connectTimeout(java.time.Duration.ofSeconds(2))
                .loadAssignment(new dev.inmesh.api.config.endpoint.ClusterLoadAssignment("c", groups,
                        dev.inmesh.api.config.endpoint.ClusterLoadAssignment.DEFAULT_OVERPROVISIONING_FACTOR)).build());
    }

    /** How many requests for {@code path} each server got, in order. */
    private static List<Integer> attemptsPerServer(List<WireMockServer> servers, String path) {
        List<Integer> counts = new ArrayList<>();
        for (WireMockServer s : servers) {
            counts.add(s.findAll(anyRequestedFor(urlEqualTo(path))).size());
        }
        return counts;
    }

    /** Istio's retry policy for a VirtualService with {@code retryRemoteLocalities: true}, with {@code num_retries}. */
    private static String remoteLocalities(int numRetries, int updateFrequency) {
        return "retry_policy: {retry_on: \"connect-failure,refused-stream,unavailable,cancelled,5xx\", num_retries: "
                + numRetries + ", retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts, "
                + "typed_config: {\"@type\": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3"
                + ".PreviousHostsPredicate}}], host_selection_retry_max_attempts: 5, retry_priority: {name: "
                + "envoy.retry_priorities.previous_priorities, typed_config: {\"@type\": type.googleapis.com/envoy"
                + ".extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig, update_frequency: "
                + updateFrequency + "}}}";
    }

    @Test
    void previousPrioritiesSendsTheThirdAttemptToTheNextPriorityAtIstiosUpdateFrequencyOfTwo() {
        List<WireMockServer> servers = List.of(rig.wiremock(), rig.wiremock(), rig.wiremock());
        ClusterManager clusters = onePerPriority(servers);
        // all hosts healthy: priority 0 takes every request, so the first two attempts go there; the third leaves
        // out the priorities of those two, and priority 1 takes it all
        var r = rig.call(rig.router(), get("/x"), routeToC(remoteLocalities(2, 2)), clusters);
        assertEquals(503, r.status());
        assertEquals(3, r.info().attemptCount());
        assertEquals(List.of(2, 1, 0), attemptsPerServer(servers, "/x"));
        // the state is the request's: the next request starts over at priority 0
        rig.call(rig.router(), get("/y"), routeToC(remoteLocalities(2, 2)), clusters);
        assertEquals(List.of(2, 1, 0), attemptsPerServer(servers, "/y"));
    }

    @Test
    void previousPrioritiesAtAnUpdateFrequencyOfOneWalksThePrioritiesAndStartsOverWhenAllWereTried() {
        List<WireMockServer> servers = List.of(rig.wiremock(), rig.wiremock(), rig.wiremock());
        ClusterManager clusters = onePerPriority(servers);
        var r = rig.call(rig.router(), get("/x"), routeToC(remoteLocalities(4, 1)), clusters);
        assertEquals(5, r.info().attemptCount());
        // 0, 1, 2; then no priority is left, the attempts are forgotten and the cluster's own load applies (0), and
        // the fifth attempt leaves out priority 0 again (1)
        assertEquals(List.of(2, 2, 1), attemptsPerServer(servers, "/x"));
    }

    @Test
    void withoutARetryPriorityEveryAttemptStaysInTheHealthyFirstPriority() {
        List<WireMockServer> servers = List.of(rig.wiremock(), rig.wiremock(), rig.wiremock());
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 2, "
                + "retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts}], "
                + "host_selection_retry_max_attempts: 5}"), onePerPriority(servers));
        assertEquals(3, r.info().attemptCount());
        assertEquals(List.of(3, 0, 0), attemptsPerServer(servers, "/x"));
    }

    /**
     * Cluster {@code c} of one locality with a host per server, each answering 503, whose {@code envoy.lb} metadata
     * is the matching entry of {@code lbMetadata}; its ROUND_ROBIN balancer starts at the first host (its random
     * start draws 0), so that picks go 0, 1, 2, ... in turn.
     */
    private ClusterManager withLbMetadata(List<WireMockServer> servers, List<Map<String, Object>> lbMetadata) {
        List<dev.inmesh.api.config.endpoint.LbEndpoint> eps = new ArrayList<>();
        for (int i = 0; i < servers.size(); i++) {
            servers.get(i).stubFor(any(anyUrl()).willReturn(aResponse().withStatus(503)));
            eps.add(new dev.inmesh.api.config.endpoint.LbEndpoint(new dev.inmesh.api.config.core.SocketAddress(
                    "127.0.0.1", servers.get(i).port()), "", null, 1, new dev.inmesh.api.config.core.Metadata(
                    Map.of("envoy.lb", lbMetadata.get(i)))));
        }
        return rig.clusters(() -> 0L, dev.inmesh.api.config.cluster.Cluster.builder("c",
                dev.inmesh.api.config.cluster.DiscoveryType.STATIC).lbPolicy(LbPolicy.ROUND_ROBIN)
                .connectTimeout(java.time.Duration.ofSeconds(2))
                .loadAssignment(new dev.inmesh.api.config.endpoint.ClusterLoadAssignment("c", List.of(
                        new dev.inmesh.api.config.endpoint.LocalityLbEndpoints(
                                dev.inmesh.api.config.endpoint.Locality.EMPTY, eps, 1, 0)),
                        dev.inmesh.api.config.endpoint.ClusterLoadAssignment.DEFAULT_OVERPROVISIONING_FACTOR)).build());
    }

    /**
     * Envoy's {@code omit_canary_hosts}: a retry passes over a canary host; the first attempt, which consults no
     * retry host predicate, still goes to it.
     */
    @Test
    void omitCanaryHostsSendsRetriesAwayFromTheCanaryHost() {
        List<WireMockServer> servers = List.of(rig.wiremock(), rig.wiremock());
        var clusters = withLbMetadata(servers, List.of(Map.of("canary", true), Map.of("canary", false)));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 2, "
                + "host_selection_retry_max_attempts: 3, retry_host_predicate: [{name: "
                + "envoy.retry_host_predicates.omit_canary_hosts, typed_config: {\"@type\": type.googleapis.com/"
                + "envoy.extensions.retry.host.omit_canary_hosts.v3.OmitCanaryHostsPredicate}}]}"), clusters);
        assertEquals(3, r.info().attemptCount());
        // round robin would send the third attempt back to the canary (host 0): it is passed over for host 1
        assertEquals(List.of(1, 2), attemptsPerServer(servers, "/x"));
    }

    /**
     * Envoy's {@code omit_host_metadata}: a retry passes over a host whose {@code envoy.lb} metadata has every label
     * of the predicate's (a list value holding it counts); a host missing one is taken.
     */
    @Test
    void omitHostMetadataSendsRetriesAwayFromHostsWithAllItsLabels() {
        List<WireMockServer> servers = List.of(rig.wiremock(), rig.wiremock(), rig.wiremock());
        var clusters = withLbMetadata(servers, List.of(Map.of("stage", List.of("blue", "green"), "zone", "a"),
                Map.of("stage", "green", "zone", "a"), Map.of("stage", "green")));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 1, "
                + "host_selection_retry_max_attempts: 5, retry_host_predicate: [{name: "
                + "envoy.retry_host_predicates.omit_host_metadata, typed_config: {\"@type\": type.googleapis.com/"
                + "envoy.extensions.retry.host.omit_host_metadata.v3.OmitHostMetadataConfig, metadata_match: {"
                + "filter_metadata: {envoy.lb: {stage: green, zone: a}, other: {x: 1}}}}}]}"), clusters);
        assertEquals(2, r.info().attemptCount());
        // the retry passes over host 1, next in turn, which has both labels (as host 0, whose stage list holds
        // green), for host 2, which lacks the zone
        assertEquals(List.of(1, 0, 1), attemptsPerServer(servers, "/x"));
    }

    @Test
    void withoutPreviousHostsARetryMayReturnToTheSameHost() {
        List<WireMockServer> servers = List.of(rig.wiremock(), rig.wiremock(), rig.wiremock());
        servers.forEach(s -> s.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(503))));
        // RANDOM with a draw that is always 0: every pick is the first host unless a predicate rejects it.
        var clusters = rig.clusters(() -> 0L, RouterRig.cluster("c", LbPolicy.RANDOM, null, null,
                servers.get(0).port(), servers.get(1).port(), servers.get(2).port()));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 2}"), clusters);
        assertEquals(3, r.info().attemptCount());
        servers.get(0).verify(3, anyRequestedFor(urlEqualTo("/x")));
    }

    @Test
    void backOffWaitsAFullyJitteredExponentialTimeCappedAtTheMax() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(503)));
        List<Long> bounds = new ArrayList<>();
        RandomGenerator top = RouterRig.topOfRange(bounds);
        var r = rig.call(rig.router(Router.Options.DEFAULTS, top), get("/x"), routeToC(
                "retry_policy: {retry_on: 5xx, num_retries: 4, retry_back_off: {base_interval: 0.08s, "
                        + "max_interval: 0.2s}}"), one(wm));
        assertEquals(5, r.info().attemptCount());
        assertEquals(List.of(80L, 160L, 200L, 200L), bounds, "ceilings: base x 2^(n-1), capped at max");
        long waited = 79 + 159 + 199 + 199;
        assertTrue(r.elapsedMillis() >= waited, "waited " + r.elapsedMillis() + " ms, at least " + waited);
        assertTrue(r.elapsedMillis() < waited + 5000, "waited " + r.elapsedMillis() + " ms");
    }

    /**
     * Envoy's {@code rate_limited_retry_back_off}: a retried response's reset header (the first of the list within
     * {@code max_interval}) makes its retry wait that interval plus up to half of it, counted as
     * {@code upstream_rq_retry_backoff_ratelimited}; a later retry without one waits the exponential back-off from its
     * first step.
     */
    @Test
    void aRetriedResponsesResetHeaderSetsThatRetrysBackOffAsEnvoysRateLimitedRetryBackOff() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(503).withHeader("Retry-After", "600")
                .withHeader("X-RateLimit-Reset", "1"), aResponse().withStatus(503), ok("fine"));
        List<Long> bounds = new ArrayList<>();
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        Router router = rig.router(Router.Options.DEFAULTS, RouterRig.bottomOfRange(bounds));
        router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
        var r = rig.call(router, get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 2, "
                + "rate_limited_retry_back_off: {reset_headers: [{name: retry-after}, {name: X-RateLimit-Reset, "
                + "format: SECONDS}], max_interval: 60s}}"), one(wm));
        assertEquals(200, r.status());
        assertEquals(3, r.info().attemptCount());
        // retry-after's 600 s is past max_interval: x-ratelimit-reset's 1 s, jittered by up to half of it, then
        // the exponential back-off's first ceiling (25 ms)
        assertEquals(List.of(500L, 25L), bounds);
        assertTrue(r.elapsedMillis() >= 1000, "waited " + r.elapsedMillis() + " ms");
        var g = reg.find("envoy_cluster_upstream_rq_retry_backoff_ratelimited").tag("cluster_name", "c").gauge();
        assertEquals(1.0, g == null ? 0 : g.value());
        assertEquals(1.0, reg.find("envoy_cluster_upstream_rq_retry_backoff_exponential").tag("cluster_name", "c")
                .gauge().value());
        assertEquals(2.0, reg.find("envoy_cluster_upstream_rq_retry").tag("cluster_name", "c").gauge().value());
    }

    /**
     * A retry waiting out a long rate-limited back-off (here 100 s) whose request the route timeout ends has its
     * back-off timer cancelled then, as Envoy's router destroys its retry state, and the timer with it, when the
     * request is done: the ended exchange, its request and its body are not held until the timer would have fired.
     */
    @Test
    void theRouteTimeoutCancelsTheTimerOfARetryWaitingOutARateLimitedBackOff() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(503).withHeader("Retry-After", "100")));
        List<Long> backOffTimers = new java.util.concurrent.CopyOnWriteArrayList<>();
        Set<Long> cancelled = java.util.concurrent.ConcurrentHashMap.newKeySet();
        io.vertx.core.Vertx watched = (io.vertx.core.Vertx) java.lang.reflect.Proxy.newProxyInstance(
                getClass().getClassLoader(), new Class<?>[] {io.vertx.core.Vertx.class}, (proxy, m, args) -> {
                    Object out;
                    try {
                        out = m.invoke(rig.vertx, args);
                    } catch (java.lang.reflect.InvocationTargetException e) {
                        throw e.getCause();
                    }
                    if (m.getName().equals("setTimer") && (long) args[0] >= 100_000 && (long) args[0] < 150_000) {
                        backOffTimers.add((Long) out);
                    } else if (m.getName().equals("cancelTimer")) {
                        cancelled.add((Long) args[0]);
                    }
                    return out;
                });
        Router router = new Router(watched, Router.Options.DEFAULTS, rig.observed::add, null);
        var r = rig.call(router, get("/x"), routeToC("timeout: 0.3s, retry_policy: {retry_on: 5xx, num_retries: 1, "
                + "rate_limited_retry_back_off: {reset_headers: [{name: retry-after}]}}"), one(wm));
        assertEquals(504, r.status());
        assertEquals(1, backOffTimers.size(), "the retry's back-off of 100 to 150 s");
        assertTrue(cancelled.containsAll(backOffTimers), "cancelled: " + cancelled + ", back-off: " + backOffTimers);
    }

    @Test
    void backOffDefaultsTo25MsBaseAnd250MsMax() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(503)));
        List<Long> bounds = new ArrayList<>();
        RandomGenerator low = RouterRig.bottomOfRange(bounds);
        var r = rig.call(rig.router(Router.Options.DEFAULTS, low), get("/x"),
                routeToC("retry_policy: {retry_on: 5xx, num_retries: 6}"), one(wm));
        assertEquals(7, r.info().attemptCount());
        assertEquals(List.of(25L, 50L, 100L, 200L, 250L, 250L), bounds);
    }

    @Test
    void ignoresXEnvoyMaxRetriesFromAnUntrustedCaller() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(503)));
        var r = rig.call(rig.router(), get("/x", "x-envoy-max-retries", "3", "x-envoy-retry-on", "5xx"),
                routeToC("retry_policy: {retry_on: 5xx, num_retries: 1}"), one(wm));
        assertEquals(2, r.info().attemptCount());
        wm.verify(2, anyRequestedFor(urlEqualTo("/x")));
        assertTrue(wm.getAllServeEvents().stream()
                .noneMatch(e -> e.getRequest().containsHeader("x-envoy-max-retries")), "never forwarded");
    }

    @Test
    void honoursXEnvoyMaxRetriesFromATrustedCaller() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(503)));
        var r = rig.call(rig.router(RouterRig.trusted(), null), get("/x", "x-envoy-max-retries", "3"),
                routeToC("retry_policy: {retry_on: 5xx, num_retries: 1}"), one(wm));
        assertEquals(4, r.info().attemptCount());
        wm.verify(4, anyRequestedFor(urlEqualTo("/x")));
        assertTrue(wm.getAllServeEvents().stream()
                .noneMatch(e -> e.getRequest().containsHeader("x-envoy-max-retries")), "never forwarded");
    }

    @Test
    void honoursXEnvoyRetryOnFromATrustedCallerOnARouteWithoutRetryPolicy() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(503), ok("fine"));
        var r = rig.call(rig.router(RouterRig.trusted(), null), get("/x", "x-envoy-retry-on", "5xx"),
                routeToC(""), one(wm));
        assertEquals(200, r.status(), "Envoy retries once by default when x-envoy-retry-on asks");
        assertEquals(2, r.info().attemptCount());
    }
    /** An h2c server that refuses the first {@code refusals} streams with REFUSED_STREAM, then answers 200. */
    private int refusingH2Server(int refusals, java.util.concurrent.atomic.AtomicInteger seen) throws Exception {
        return resettingH2Server(io.netty.handler.codec.http2.Http2Error.REFUSED_STREAM, refusals, seen);
    }

    /** An h2c server that resets the first {@code resets} streams with {@code code}, then answers 200. */
    private int resettingH2Server(io.netty.handler.codec.http2.Http2Error code, int resets,
                                  java.util.concurrent.atomic.AtomicInteger seen) throws Exception {
        io.vertx.core.http.HttpServer server = rig.vertx.createHttpServer(new io.vertx.core.http.HttpServerOptions()
                .setHost("127.0.0.1").setPort(0).setHttp2ClearTextEnabled(true));
        server.requestHandler(req -> {
            if (seen.incrementAndGet() <= resets) {
                req.response().reset(code.code());
            } else {
                req.response().end("accepted");
            }
        });
        return server.listen().toCompletionStage().toCompletableFuture().get(5, java.util.concurrent.TimeUnit.SECONDS)
                .actualPort();
    }

    private static dev.inmesh.api.config.cluster.Cluster h2(int port) {
        return dev.inmesh.api.config.cluster.Cluster.builder("c", dev.inmesh.api.config.cluster.DiscoveryType.STATIC)
                .lbPolicy(LbPolicy.ROUND_ROBIN).connectTimeout(java.time.Duration.ofSeconds(2))
                .loadAssignment(RouterRig.hosts("c", port)).http2(true).build();
    }

    @Test
    void retriesAStreamTheUpstreamRefused() throws Exception {
        var seen = new java.util.concurrent.atomic.AtomicInteger();
        int port = refusingH2Server(1, seen);
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: refused-stream, num_retries: 1}"),
                rig.clusters(h2(port)));
        assertEquals(200, r.status());
        assertEquals("accepted", r.body());
        assertEquals(2, r.info().attemptCount());
        assertEquals(2, seen.get());
    }

    @Test
    void gatewayErrorAlsoRetriesARefusedStream() throws Exception {
        var seen = new java.util.concurrent.atomic.AtomicInteger();
        int port = refusingH2Server(1, seen);
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: gateway-error, num_retries: 1}"),
                rig.clusters(h2(port)));
        assertEquals(200, r.status());
        assertEquals(2, seen.get());
    }

    @Test
    void aRefusedStreamWithoutARetryConditionAnswers503WithUr() throws Exception {
        var seen = new java.util.concurrent.atomic.AtomicInteger();
        int port = refusingH2Server(5, seen);
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: retriable-4xx, num_retries: 1}"),
                rig.clusters(h2(port)));
        assertEquals(503, r.status());
        assertEquals("upstream connect error or disconnect/reset before headers. reset reason: remote refused "
                + "stream reset", r.body());
        assertEquals(Set.of(ResponseFlag.UPSTREAM_REMOTE_RESET), r.info().responseFlags());
        assertEquals(1, seen.get());
    }

    /**
     * As Envoy's router, {@code reset-before-request} retries a failure only while no reset attempt of the request had
     * been sent: once one was (here a refused stream, retried under {@code refused-stream}), a later attempt's connect
     * failure is not retried under it. (An attempt answered, say 503, does not count: Envoy looks only at resets.)
     */
    @Test
    void resetBeforeRequestNoLongerRetriesOnceAResetAttemptWasSent() throws Exception {
        var seen = new java.util.concurrent.atomic.AtomicInteger();
        int refusing = refusingH2Server(100, seen);
        var clusters = rig.clusters(dev.inmesh.api.config.cluster.Cluster.builder("c",
                dev.inmesh.api.config.cluster.DiscoveryType.STATIC).lbPolicy(LbPolicy.ROUND_ROBIN)
                .connectTimeout(java.time.Duration.ofSeconds(2))
                .loadAssignment(RouterRig.hosts("c", refusing, RouterRig.closedPort())).http2(true).build());
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: \"reset-before-request,"
                + "refused-stream\", num_retries: 5}"), clusters);
        assertEquals(503, r.status());
        assertTrue(r.info().attemptCount() <= 3, "attempts " + r.info().attemptCount());
        assertEquals("UF", r.flags(), "the connect failure after the refused stream ends it, with retries left");
        assertEquals(1, seen.get());
    }

    /**
     * A stream the upstream resets with another code than REFUSED_STREAM is Envoy's remote reset: 503 with UR and
     * {@code remote reset} (not a connection termination, UC), retried under {@code reset} but not
     * {@code refused-stream}.
     */
    @Test
    void aStreamTheUpstreamResetsIsARemoteReset() throws Exception {
        var seen = new java.util.concurrent.atomic.AtomicInteger();
        int port = resettingH2Server(io.netty.handler.codec.http2.Http2Error.INTERNAL_ERROR, 1, seen);
        ClusterManager clusters = rig.clusters(h2(port));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: refused-stream, "
                + "num_retries: 1}"), clusters);
        assertEquals(503, r.status());
        assertEquals("upstream connect error or disconnect/reset before headers. reset reason: remote reset",
                r.body());
        assertEquals(Set.of(ResponseFlag.UPSTREAM_REMOTE_RESET), r.info().responseFlags());
        assertEquals("upstream_reset_before_response_started{remote_reset}", r.info().responseCodeDetails());
        assertEquals(1, seen.get());
        seen.set(0);
        var retried = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: reset, num_retries: 1}"),
                clusters);
        assertEquals(200, retried.status());
        assertEquals(2, retried.info().attemptCount());
    }

    /**
     * An h2c server whose first connection answers its first stream with a GOAWAY naming no stream as processed (as a
     * server going away does with streams it will not serve), and answers 200 on any later connection.
     */
    private int goingAwayH2Server(java.util.concurrent.atomic.AtomicInteger seen) throws Exception {
        io.vertx.core.http.HttpServer server = rig.vertx.createHttpServer(new io.vertx.core.http.HttpServerOptions()
                .setHost("127.0.0.1").setPort(0).setHttp2ClearTextEnabled(true));
        server.requestHandler(req -> {
            if (seen.incrementAndGet() == 1) {
                req.connection().goAway(0, 0);
            } else {
                req.response().end("accepted");
            }
        });
        return server.listen().toCompletionStage().toCompletableFuture().get(5, java.util.concurrent.TimeUnit.SECONDS)
                .actualPort();
    }

    @Test
    void aStreamAGracefulGoAwayKeptThenAClosedConnectionEndedIsAConnectionTermination() throws Exception {
        // the upstream sends GOAWAY(NO_ERROR) naming the stream as processed, then closes its connection unanswered:
        // Vert.x's exception copies the GOAWAY's debug data after it is released, which hung the request unanswered
        io.vertx.core.http.HttpServer server = rig.vertx.createHttpServer(new io.vertx.core.http.HttpServerOptions()
                .setHost("127.0.0.1").setPort(0).setHttp2ClearTextEnabled(true));
        server.requestHandler(req -> {
            req.connection().goAway(0, req.streamId(), io.vertx.core.buffer.Buffer.buffer("bye"));
            rig.vertx.setTimer(50, t -> req.connection().close());
        });
        int port = server.listen().toCompletionStage().toCompletableFuture().get(5,
                java.util.concurrent.TimeUnit.SECONDS).actualPort();
        var r = rig.call(rig.router(), get("/x"), routeToC(""), rig.clusters(h2(port)));
        assertEquals(503, r.status(), r.body());
        assertEquals("upstream connect error or disconnect/reset before headers. reset reason: connection "
                + "termination", r.body());
    }

    @Test
    void aStreamAGoAwayLeftUnprocessedIsRetriedAsARefusedStream() throws Exception {
        var seen = new java.util.concurrent.atomic.AtomicInteger();
        int port = goingAwayH2Server(seen);
        // Istio's default retry_on: refused-stream, not reset, covers it, as Envoy's codec reports such a stream
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: \"connect-failure,"
                        + "refused-stream,unavailable,cancelled,retriable-status-codes\", num_retries: 2}"),
                rig.clusters(h2(port)));
        assertEquals(200, r.status(), r.body());
        assertEquals("accepted", r.body());
        assertEquals(2, r.info().attemptCount());
        // without a retry, the caller hears of a refused stream
        seen.set(0);
        r = rig.call(rig.router(), get("/x"), routeToC(""), rig.clusters(h2(goingAwayH2Server(seen))));
        assertEquals(503, r.status());
        assertEquals("upstream connect error or disconnect/reset before headers. reset reason: remote refused "
                + "stream reset", r.body());
    }

    @Test
    void honoursXEnvoyRetriableHeaderNamesFromATrustedCallerAsNameOnlyMatchers() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(200).withHeader("X-Try-Again", "whatever"), ok("fine"));
        var r = rig.call(rig.router(RouterRig.trusted(), null), get("/x", "x-envoy-retry-on", "retriable-headers",
                "x-envoy-retriable-header-names", " x-other , x-try-again"), routeToC(""), one(wm));
        assertEquals("fine", r.body());
        assertEquals(2, r.info().attemptCount());
        assertTrue(wm.getAllServeEvents().stream()
                .noneMatch(e -> e.getRequest().containsHeader("x-envoy-retriable-header-names")), "never forwarded");
    }

    @Test
    void xEnvoyRetryOnTakesOnlyHttpConditionsAndXEnvoyRetryGrpcOnOnlyGrpcOnes() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(503).withHeader("grpc-status", "14")));
        var trusted = rig.router(RouterRig.trusted(), null);
        var clusters = one(wm);
        // as Envoy, each header is read with its own list: a condition from the other list is ignored
        assertEquals(1, rig.call(trusted, get("/a", "x-envoy-retry-grpc-on", "5xx"), routeToC(""), clusters)
                .info().attemptCount());
        assertEquals(1, rig.call(trusted, get("/b", "x-envoy-retry-on", "unavailable"), routeToC(""), clusters)
                .info().attemptCount());
        assertEquals(2, rig.call(trusted, get("/c", "x-envoy-retry-grpc-on", "unavailable"), routeToC(""), clusters)
                .info().attemptCount());
    }

    @Test
    void honoursXEnvoyRetriableStatusCodesFromATrustedCaller() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(418), ok("fine"));
        var r = rig.call(rig.router(RouterRig.trusted(), null), get("/x", "x-envoy-retriable-status-codes", "418"),
                routeToC("retry_policy: {retry_on: retriable-status-codes, num_retries: 1, "
                        + "retriable_status_codes: [503]}"), one(wm));
        assertEquals(200, r.status());
        assertEquals(2, r.info().attemptCount());
    }

    @Test
    void ignoresXEnvoyRetriableStatusCodesFromAnUntrustedCaller() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(418), ok("fine"));
        var r = rig.call(rig.router(), get("/x", "x-envoy-retriable-status-codes", "418"),
                routeToC("retry_policy: {retry_on: retriable-status-codes, num_retries: 1, "
                        + "retriable_status_codes: [503]}"), one(wm));
        assertEquals(418, r.status());
    }
    @Test
    void retriesOnlyRequestsMatchingRetriableRequestHeaders() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(503)));
        var table = routeToC("retry_policy: {retry_on: 5xx, num_retries: 1, retriable_request_headers: "
                + "[{name: x-idempotent, string_match: {exact: \"true\"}}]}");
        var clusters = one(wm);
        assertEquals(2, rig.call(rig.router(), get("/a", "x-idempotent", "true"), table, clusters).info()
                .attemptCount());
        assertEquals(1, rig.call(rig.router(), get("/b"), table, clusters).info().attemptCount());
        wm.verify(2, anyRequestedFor(urlEqualTo("/a")));
        wm.verify(1, anyRequestedFor(urlEqualTo("/b")));
    }
    @Test
    void aRetriedResponseWhoseBodyNeverEndsDoesNotHoldItsConnection() throws Exception {
        var seen = new java.util.concurrent.atomic.AtomicInteger();
        io.vertx.core.http.HttpServer server = rig.vertx.createHttpServer().requestHandler(req -> {
            if (seen.incrementAndGet() == 1) {
                // 503 with a chunked body that never ends
                req.response().setStatusCode(503).setChunked(true).write("partial");
            } else {
                req.response().end("fine");
            }
        });
        int port = server.listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture()
                .get(5, java.util.concurrent.TimeUnit.SECONDS).actualPort();
        // One connection per host: the retry needs the connection of the first attempt, or a new one.
        var clusters = rig.clusters(RouterRig.cluster("c", LbPolicy.ROUND_ROBIN, RouterRig.breakers(1, 1024, 1024, 3),
                null, port));
        var r = rig.call(rig.router(), get("/x"), routeToC("timeout: 2s, retry_policy: {retry_on: 5xx, num_retries: 1}"),
                clusters);
        assertEquals(200, r.status());
        assertEquals("fine", r.body());
        assertEquals(2, seen.get());
    }

    /** Cluster c's upstream_rq_retry in {@code reg}, 0 before it is kept. */
    private static double retries(PrometheusMeterRegistry reg) {
        var m = reg.find("envoy_cluster_upstream_rq_retry").tag("cluster_name", "c").meter();
        return m == null ? 0 : m.measure().iterator().next().getValue();
    }
}
