package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.ok;
import static dev.inmesh.runtime.router.RouterRig.breakers;
import static dev.inmesh.runtime.router.RouterRig.closedPort;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.verification.LoggedRequest;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.cluster.OutlierDetection;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.upstream.ClusterManager;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.MultiMap;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import java.time.Duration;
import java.util.List;
import java.util.random.RandomGenerator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Envoy's request mirroring ({@code request_mirror_policies}, Istio's {@code mirror}): the copy goes to the mirror
 * cluster as the request goes upstream, with {@code -shadow} on its host, and nothing of it reaches the caller.
 */
class RouterMirrorTest {
    private final RouterRig rig = new RouterRig();
    private final PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final MeshMetrics metrics = MeshMetrics.create(reg, WorkloadInfo.UNKNOWN);
    private WireMockServer primary;
    private WireMockServer shadow;

    @BeforeEach
    void servers() {
        primary = rig.wiremock();
        primary.stubFor(any(anyUrl()).willReturn(ok("primary")));
        shadow = rig.wiremock();
        shadow.stubFor(any(anyUrl()).willReturn(ok("mirror")));
    }

    @AfterEach
    void close() {
        rig.close();
    }

    /** A router whose requests draw {@code random} (null: any), counting cluster statistics in {@link #reg}. */
    private Router router(RandomGenerator random) {
        Router r = rig.router(Router.Options.DEFAULTS, random);
        r.upstreamStats(metrics::upstream);
        return r;
    }

    /** Route {@code /} to cluster {@code c} with these mirror policies (flow YAML list items) and action fields. */
    private static RouteTable mirrored(String policies, String more) {
        return RouterRig.routeToC("request_mirror_policies: [" + policies + "]" + (more.isEmpty() ? "" : ", " + more));
    }

    private ClusterManager clusters() {
        return rig.clusters(cluster("c", primary.port()), cluster("m", shadow.port()));
    }

    /** A request to {@code ratings:9080} with a body (null: none). */
    private static RouterRequest request(HttpMethod method, String path, String body) {
        MultiMap h = MultiMap.caseInsensitiveMultiMap().add("x-request-id", "rid-1");
        return new RouterRequest(StreamInfo.Direction.OUTBOUND, method, path, "ratings:9080", "http", h,
                body == null ? null : Buffer.buffer(body), "127.0.0.1:50000", "127.0.0.1:15001", null, "HTTP/1.1");
    }

    /** Waits until {@code wm} received {@code n} requests; returns them. */
    private static List<LoggedRequest> received(WireMockServer wm, int n) throws InterruptedException {
        for (int i = 0; i < 100; i++) {
            List<LoggedRequest> all = wm.findAll(com.github.tomakehurst.wiremock.client.WireMock.anyRequestedFor(
                    anyUrl()));
            if (all.size() >= n) {
                return all;
            }
            Thread.sleep(50);
        }
        throw new AssertionError(wm.port() + " did not receive " + n + " requests");
    }

    /**
     * What {@code wm} received, after a copy that is sent (a request with {@code x-mirror-cluster: m}) arrived: copies
     * that were to come would have come first.
     */
    private List<LoggedRequest> receivedAfterAControlCopy(Router router, WireMockServer wm) throws Exception {
        int before = wm.findAll(com.github.tomakehurst.wiremock.client.WireMock.anyRequestedFor(anyUrl())).size();
        RouterRequest control = request(HttpMethod.GET, "/control", null);
        control.headers.set("x-mirror-cluster", "m");
        rig.call(router, control, mirrored("{cluster_header: x-mirror-cluster}", ""), clusters());
        received(wm, before + 1);
        Thread.sleep(100);
        return wm.findAll(com.github.tomakehurst.wiremock.client.WireMock.anyRequestedFor(anyUrl())).stream()
                .filter(r -> !r.getUrl().equals("/control")).toList();
    }

    /** A statistic of cluster {@code cluster} as scraped, 0 when it was never set. */
    private double stat(String name, String cluster) {
        String prefix = name + "{cluster_name=\"" + cluster + "\"} ";
        return reg.scrape().lines().filter(l -> l.startsWith(prefix)).mapToDouble(l -> Double.parseDouble(
                l.substring(prefix.length()))).findFirst().orElse(0);
    }

    private void awaitStat(String name, String cluster, double expected) {
        awaitValue(() -> stat(name, cluster), expected, name);
    }

    /** Waits up to 5 s for {@code value} to be {@code expected}, then asserts it is. */
    private static void awaitValue(java.util.function.DoubleSupplier value, double expected, String what) {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (value.getAsDouble() != expected && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        assertEquals(expected, value.getAsDouble(), what);
    }

    @Test
    void theMirrorGetsTheRequestAsRewrittenForUpstreamWithAShadowHostAndTheCallerOnlyThePrimarysAnswer()
            throws Exception {
        RouteTable table = RouterRig.table("name: r\nvirtual_hosts:\n- name: vh\n  domains: [\"*\"]\n  routes:\n"
                + "  - match: {prefix: /api/}\n    route: {cluster: c, prefix_rewrite: /v2/, "
                + "request_mirror_policies: [{cluster: m}]}\n"
                + "    request_headers_to_add: [{header: {key: x-added, value: by-route}}]\n");
        var r = rig.call(router(null), request(HttpMethod.POST, "/api/rate?x=1", "{\"stars\":5}"), table,
                clusters());
        assertEquals(200, r.status());
        assertEquals("primary", r.body());
        LoggedRequest copy = received(shadow, 1).get(0);
        LoggedRequest sent = received(primary, 1).get(0);
        assertEquals("POST", copy.getMethod().getName());
        assertEquals("/v2/rate?x=1", copy.getUrl());
        assertEquals("{\"stars\":5}", copy.getBodyAsString());
        assertEquals("ratings-shadow:9080", copy.getHeader("Host"), "as Envoy: -shadow before the port");
        assertEquals("ratings:9080", sent.getHeader("Host"));
        assertEquals("by-route", copy.getHeader("x-added"));
        assertEquals("rid-1", copy.getHeader("x-request-id"));
        assertEquals("15000", copy.getHeader("x-envoy-expected-rq-timeout-ms"), "the route timeout bounds the copy");
        // the copy is not the caller's: one exchange in the access log and metrics, the mirror's cluster stats count it
        // (its completion once its answer reached the router, after the upstream logged it)
        awaitStat("envoy_cluster_upstream_rq_completed", "m", 1.0);
        assertEquals(1, rig.observed().size());
        assertEquals("c", rig.observed().get(0).upstreamCluster());
        assertEquals(1.0, stat("envoy_cluster_upstream_rq_total", "m"));
        assertEquals(1.0, stat("envoy_cluster_upstream_rq_completed", "m"));
        assertEquals(1.0, stat("envoy_cluster_upstream_rq_total", "c"));
    }

    @Test
    void aCopyThatWaitsForTheMirrorClustersFirstConnectionIsPendingThereAsTheAttemptIsInItsCluster()
            throws Exception {
        rig.call(router(null), request(HttpMethod.GET, "/x", null), mirrored("{cluster: m}", ""), clusters());
        received(shadow, 1);
        Thread.sleep(100);
        assertEquals(1.0, stat("envoy_cluster_upstream_rq_pending_total", "c"));
        assertEquals(1.0, stat("envoy_cluster_upstream_rq_pending_total", "m"));
        assertEquals(0.0, stat("envoy_cluster_upstream_rq_pending_active", "m"));
    }

    @Test
    void disableShadowHostSuffixAppendKeepsTheHostAsItIs() throws Exception {
        rig.call(router(null), request(HttpMethod.GET, "/x", null),
                mirrored("{cluster: m, disable_shadow_host_suffix_append: true}", ""), clusters());
        LoggedRequest copy = received(shadow, 1).get(0);
        assertEquals("ratings:9080", copy.getHeader("Host"));
        assertEquals("", copy.getBodyAsString());
    }

    @Test
    void aSlowMirrorNeitherDelaysTheCallerNorOutlivesTheRouteTimeout() throws Exception {
        shadow.stubFor(any(anyUrl()).willReturn(ok("late").withFixedDelay(3000)));
        var r = rig.call(router(null), request(HttpMethod.GET, "/x", null), mirrored("{cluster: m}", "timeout: 0.5s"),
                clusters());
        assertEquals(200, r.status());
        assertEquals("primary", r.body());
        assertTrue(r.elapsedMillis() < 2500, "the caller waited for the mirror: " + r.elapsedMillis() + " ms");
        assertEquals("-", r.flags());
        for (int i = 0; i < 60 && stat("envoy_cluster_upstream_rq_timeout", "m") == 0; i++) {
            Thread.sleep(50);
        }
        assertEquals(1.0, stat("envoy_cluster_upstream_rq_timeout", "m"), "the copy is reset at the route timeout");
        assertEquals(0.0, stat("envoy_cluster_upstream_rq_timeout", "c"));
        // the copy's timeout is counted an instant before it is released
        awaitStat("envoy_cluster_upstream_rq_active", "m", 0.0);
    }

    @Test
    void aCopyTheRouteTimeoutEndsWhileItWaitsForAConnectionIsCancelledAtOnce() throws Exception {
        shadow.stubFor(any(com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo("/hold"))
                .willReturn(ok("held").withFixedDelay(1500)));
        // the mirror cluster has one connection, which the first copy holds: the second copy waits for it; with
        // consecutive_5xx 1, a timeout charged to the mirror's host would eject it
        OutlierDetection fiveXx = new OutlierDetection(1, Duration.ofSeconds(60), Duration.ofSeconds(60),
                Duration.ofSeconds(300), 100, 100, 0, 5, 100, 1900, 0, 0, false, 5, 0, 0, 85, 0, 0, 5, 50);
        ClusterManager clusters = rig.clusters(cluster("c", primary.port()),
                cluster("m", LbPolicy.ROUND_ROBIN, breakers(1, 1, 1024, 3), fiveXx, shadow.port()));
        Router router = router(null);
        assertEquals(200, rig.call(router, request(HttpMethod.GET, "/hold", null), mirrored("{cluster: m}", ""),
                clusters).status());
        received(shadow, 1);
        assertEquals(200, rig.call(router, request(HttpMethod.GET, "/gave-up", null),
                mirrored("{cluster: m}", "timeout: 0.2s"), clusters).status());
        for (int i = 0; i < 100 && stat("envoy_cluster_upstream_rq_cancelled", "m") == 0; i++) {
            Thread.sleep(10);
        }
        // at its route timeout, before the connection frees: no longer pending, as Envoy's cancelled request
        assertEquals(1.0, stat("envoy_cluster_upstream_rq_cancelled", "m"));
        assertEquals(0.0, stat("envoy_cluster_upstream_rq_pending_active", "m"));
        assertEquals(0, clusters.cluster("m").circuitBreakers().pendingRequests());
        // as Envoy's shadow router, whose upstream request has no host until its pool is ready: no timeout reported
        assertFalse(clusters.cluster("m").hosts().iterator().next().outlier().ejected(),
                "a pending copy's timeout is not its host's");
        assertEquals(1, shadow.findAll(com.github.tomakehurst.wiremock.client.WireMock.anyRequestedFor(anyUrl()))
                .size(), "the cancelled copy was not sent");
    }

    @Test
    void aFailingMirrorChangesNothingForTheCallerNotEvenItsRetries() throws Exception {
        shadow.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(503)));
        var r = rig.call(router(null), request(HttpMethod.GET, "/x", null),
                mirrored("{cluster: m}, {cluster: down}", "retry_policy: {retry_on: 5xx, num_retries: 2}"),
                rig.clusters(cluster("c", primary.port()), cluster("m", shadow.port()),
                        cluster("down", closedPort())));
        assertEquals(200, r.status());
        assertEquals("primary", r.body());
        assertEquals(1, r.info().attemptCount());
        assertEquals("-", r.flags());
        received(shadow, 1);
        for (int i = 0; i < 60 && stat("envoy_cluster_upstream_cx_connect_fail", "down") == 0; i++) {
            Thread.sleep(50);
        }
        assertEquals(1.0, stat("envoy_cluster_upstream_cx_connect_fail", "down"));
        // as Envoy's pool, which counts a request when it attaches it to a connection: the copy that had none is
        // neither one of the mirror cluster's requests nor active there; the one that had its connection is
        assertEquals(0.0, stat("envoy_cluster_upstream_rq_total", "down"));
        assertEquals(0.0, stat("envoy_cluster_upstream_rq_active", "down"));
        assertEquals(1.0, stat("envoy_cluster_upstream_rq_total", "m"));
        assertEquals(1, received(primary, 1).size(), "the mirror's 503 is not retried");
        assertEquals(0.0, stat("envoy_cluster_upstream_rq_retry", "c"));
    }

    @Test
    void aFractionIsDecidedWithTheRequestsRandomValueAndZeroSendsNone() throws Exception {
        String half = "{cluster: m, runtime_fraction: {default_value: {numerator: 500000, denominator: MILLION}}}";
        rig.call(router(() -> 400_000L), request(HttpMethod.GET, "/in", null), mirrored(half, ""), clusters());
        rig.call(router(() -> 600_000L), request(HttpMethod.GET, "/out", null), mirrored(half, ""), clusters());
        rig.call(router(null), request(HttpMethod.GET, "/zero", null),
                mirrored("{cluster: m, runtime_fraction: {default_value: {numerator: 0}}}", ""), clusters());
        List<LoggedRequest> copies = receivedAfterAControlCopy(router(null), shadow);
        assertEquals(List.of("/in"), copies.stream().map(LoggedRequest::getUrl).toList());
    }

    @Test
    void aMissingMirrorClusterOrAnAbsentClusterHeaderSendsNothingAndTheCallerIsServed() throws Exception {
        var r = rig.call(router(null), request(HttpMethod.GET, "/missing", null), mirrored("{cluster: nope}", ""),
                clusters());
        assertEquals(200, r.status());
        var noHeader = rig.call(router(null), request(HttpMethod.GET, "/noheader", null),
                mirrored("{cluster_header: x-mirror-cluster}", ""), clusters());
        assertEquals(200, noHeader.status());
        assertEquals(List.of(), receivedAfterAControlCopy(router(null), shadow));
    }

    @Test
    void eachPolicySendsItsOwnCopy() throws Exception {
        WireMockServer other = rig.wiremock();
        other.stubFor(any(anyUrl()).willReturn(ok()));
        rig.call(router(null), request(HttpMethod.PUT, "/x", "body"), mirrored("{cluster: m}, {cluster: m2}", ""),
                rig.clusters(cluster("c", primary.port()), cluster("m", shadow.port()),
                        cluster("m2", other.port())));
        assertEquals("body", received(shadow, 1).get(0).getBodyAsString());
        assertEquals("body", received(other, 1).get(0).getBodyAsString());
        assertEquals("PUT", received(other, 1).get(0).getMethod().getName());
    }

    @Test
    void aCopyTheMirrorsCircuitBreakerRefusesIsDroppedAndCountedThere() throws Exception {
        shadow.stubFor(any(anyUrl()).willReturn(ok().withFixedDelay(1500)));
        Router router = router(null);
        ClusterManager cm = rig.clusters(cluster("c", primary.port()),
                cluster("m", LbPolicy.ROUND_ROBIN, breakers(100, 100, 1, 3), null, shadow.port()));
        RouteTable table = mirrored("{cluster: m}", "");
        assertEquals(200, rig.call(router, request(HttpMethod.GET, "/1", null), table, cm).status());
        received(shadow, 1);
        var second = rig.call(router, request(HttpMethod.GET, "/2", null), table, cm);
        assertEquals(200, second.status());
        assertEquals("-", second.flags());
        // refused once its connection is up (the first copy holds the only max_requests slot), after the answer
        awaitStat("envoy_cluster_upstream_rq_pending_overflow", "m", 1.0);
        assertEquals(0.0, stat("envoy_cluster_upstream_rq_pending_overflow", "c"));
        Thread.sleep(1700);
        assertEquals(1, received(shadow, 1).size());
    }

    /**
     * A copy waiting for the mirror cluster's only connection holds none of its {@code max_requests}, as Envoy's pool
     * counts a request only once attached to a connection: with {@code max_requests} 1 the second copy waits its turn
     * and is sent. Before, the first copy's slot, held from the start, refused it.
     */
    @Test
    void aCopyWaitingForTheMirrorsConnectionHoldsNoRequestSlot() throws Exception {
        shadow.stubFor(any(anyUrl()).willReturn(ok().withFixedDelay(300)));
        Router router = router(null);
        ClusterManager cm = rig.clusters(cluster("c", primary.port()),
                cluster("m", LbPolicy.ROUND_ROBIN, breakers(1, 10, 1, 3), null, shadow.port()));
        RouteTable table = mirrored("{cluster: m}", "");
        assertEquals(200, rig.call(router, request(HttpMethod.GET, "/1", null), table, cm).status());
        assertEquals(200, rig.call(router, request(HttpMethod.GET, "/2", null), table, cm).status());
        assertEquals(2, received(shadow, 2).size());
        assertEquals(0.0, stat("envoy_cluster_upstream_rq_pending_overflow", "m"));
        awaitValue(() -> cm.cluster("m").circuitBreakers().activeRequests(), 0, "every slot given back");
    }

    @Test
    void aStreamedBodyIsMirroredWholeOnceItEnds() throws Exception {
        RouterRequest req = request(HttpMethod.POST, "/s", null);
        RequestBodyStream body = new RequestBodyStream();
        req.bodyStream(body);
        var result = rig.start(router(null), req, mirrored("{cluster: m}", ""), clusters());
        rig.ctx.runOnContext(v -> body.write(Buffer.buffer("ab")));
        rig.ctx.runOnContext(v -> {
            body.write(Buffer.buffer("cd"));
            body.end();
        });
        assertEquals(200, RouterRig.await(result).status());
        assertEquals("abcd", received(shadow, 1).get(0).getBodyAsString());
        assertEquals("abcd", received(primary, 1).get(0).getBodyAsString());
    }

    @Test
    void aStreamedBodyLargerThanTheBufferIsNotMirroredAndCountsAsRetryOrShadowAbandonedAsInEnvoy()
            throws Exception {
        Router router = router(null);
        RouterRequest req = request(HttpMethod.POST, "/big", null);
        RequestBodyStream body = new RequestBodyStream();
        req.bodyStream(body);
        var result = rig.start(router, req, mirrored("{cluster: m}", ""), clusters());
        int half = RequestBodyStream.RETRY_BUFFER_LIMIT / 2 + 1;
        rig.ctx.runOnContext(v -> body.write(Buffer.buffer(new byte[half])));
        rig.ctx.runOnContext(v -> {
            body.write(Buffer.buffer(new byte[half]));
            body.end();
        });
        assertEquals(200, RouterRig.await(result).status());
        assertEquals(2 * half, received(primary, 1).get(0).getBody().length, "the primary gets it all");
        assertEquals(1.0, stat("envoy_cluster_retry_or_shadow_abandoned", "c"));
        assertEquals(List.of(), receivedAfterAControlCopy(router, shadow));
    }

    @Test
    void aWholeBodyLargerThanTheBufferIsNotMirroredEither() throws Exception {
        Router router = router(null);
        var r = rig.call(router, request(HttpMethod.POST, "/big",
                "a".repeat(RequestBodyStream.RETRY_BUFFER_LIMIT + 1)), mirrored("{cluster: m}", ""), clusters());
        assertEquals(200, r.status());
        assertEquals(1.0, stat("envoy_cluster_retry_or_shadow_abandoned", "c"));
        assertEquals(List.of(), receivedAfterAControlCopy(router, shadow));
    }

    @Test
    void aBodyOverTheRoutesBufferLimitIsNotMirroredAndOneWithinItIs() throws Exception {
        Router router = router(null);
        RouteTable table = RouterRig.routeToC("request_mirror_policies: [{cluster: m}]",
                "per_request_buffer_limit_bytes: 1024", "");
        assertEquals(200, rig.call(router, request(HttpMethod.POST, "/big", "a".repeat(1025)), table, clusters())
                .status());
        assertEquals(1.0, stat("envoy_cluster_retry_or_shadow_abandoned", "c"));
        assertEquals(200, rig.call(router, request(HttpMethod.POST, "/small", "a".repeat(1024)), table, clusters())
                .status());
        assertEquals(List.of("/small"), receivedAfterAControlCopy(router, shadow).stream()
                .map(LoggedRequest::getUrl).toList());
    }

    @Test
    void noCopyIsSentWhenThePrimaryHasNoHealthyHostAsInEnvoy() throws Exception {
        Router router = router(null);
        var r = rig.call(router, request(HttpMethod.GET, "/x", null), mirrored("{cluster: m}", ""),
                rig.clusters(cluster("c"), cluster("m", shadow.port())));
        assertEquals(503, r.status());
        assertEquals("UH", r.flags());
        assertNull(r.info().upstreamHost());
        assertEquals(List.of(), receivedAfterAControlCopy(router, shadow));
    }
}
