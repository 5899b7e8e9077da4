package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.ok;
import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.hosts;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static dev.inmesh.runtime.router.RouterRig.sequence;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.tomakehurst.wiremock.WireMockServer;
import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.CommonHttpProtocolOptions;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.upstream.ClusterManager;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.http.HttpServer;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A cluster's {@code common_http_protocol_options.max_stream_duration} and a trusted caller's
 * {@code x-envoy-upstream-stream-duration-ms}: each upstream request's own limit, as Envoy's router applies it.
 */
class RouterUpstreamStreamDurationTest {
    private final RouterRig rig = new RouterRig();
    private final PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final MeshMetrics metrics = MeshMetrics.create(reg, WorkloadInfo.UNKNOWN);

    @AfterEach
    void close() {
        rig.close();
    }

    private ClusterManager cluster(Duration maxStreamDuration, int port) {
        return rig.clusters(Cluster.builder("c", DiscoveryType.STATIC).lbPolicy(LbPolicy.ROUND_ROBIN)
                .connectTimeout(Duration.ofSeconds(2)).loadAssignment(hosts("c", port))
                .commonHttpProtocolOptions(new CommonHttpProtocolOptions(null, null, 0, maxStreamDuration)).build());
    }

    private Router router(Router.Options options) {
        Router r = rig.router(options, null);
        r.upstreamStats(metrics::upstream);
        return r;
    }

    private double reached() {
        return sample("envoy_cluster_upstream_rq_max_duration_reached{cluster_name=\"c\"} ");
    }

    private double sample(String prefix) {
        return reg.scrape().lines().filter(l -> l.startsWith(prefix))
                .mapToDouble(l -> Double.parseDouble(l.substring(prefix.length()))).findFirst().orElse(0);
    }

    @Test
    void theClustersMaxStreamDurationResetsASlowRequestAndAnswers504WithUmsdr() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("late").withFixedDelay(1500)));
        var r = rig.call(router(Router.Options.DEFAULTS), get("/x"), routeToC(""),
                cluster(Duration.ofMillis(200), wm.port()));
        assertEquals(504, r.status(), "the whole request was read");
        assertEquals("upstream max stream duration reached", r.body());
        assertEquals(Set.of(ResponseFlag.UPSTREAM_MAX_STREAM_DURATION_REACHED), r.info().responseFlags());
        assertEquals("UMSDR", r.flags());
        assertEquals("upstream_max_stream_duration_reached", r.info().responseCodeDetails());
        assertTrue(r.elapsedMillis() < 1400, "answered after " + r.elapsedMillis());
        assertEquals(1.0, reached());
        // as Envoy's router, the local reply is not charged to the cluster as an upstream answer
        assertEquals(0.0, sample("envoy_cluster_upstream_rq_completed{cluster_name=\"c\"} "));
        assertEquals(0.0, sample("envoy_cluster_upstream_rq_xx{cluster_name=\"c\",response_code_class=\"5xx\"} "));
        assertEquals(-1, r.response().exchange.upstreamDurationTimer);
    }

    @Test
    void eachAttemptHasItsOwnLimitAndAResetRetryConditionRetriesIt() {
        WireMockServer wm = rig.wiremock();
        // 1 s each: the retry reaches WireMock on a new connection, which a loaded machine may take 300 ms to answer
        sequence(wm, "/x", ok("late").withFixedDelay(3000), ok("quick"));
        var r = rig.call(router(Router.Options.DEFAULTS), get("/x"),
                routeToC("retry_policy: {retry_on: reset, num_retries: 1}"), cluster(Duration.ofMillis(1000),
                        wm.port()));
        assertEquals(200, r.status());
        assertEquals("quick", r.body());
        assertEquals(2, r.info().attemptCount());
        assertEquals(1.0, reached());
        // without the condition it is not retried
        sequence(wm, "/y", ok("late").withFixedDelay(3000), ok("quick"));
        var once = rig.call(router(Router.Options.DEFAULTS), get("/y"),
                routeToC("retry_policy: {retry_on: connect-failure, num_retries: 1}"),
                cluster(Duration.ofMillis(1000), wm.port()));
        assertEquals(504, once.status());
        assertEquals(1, once.info().attemptCount());
    }

    @Test
    void aResponseAlreadyPassedOnIsCut() throws Exception {
        // the headers must come back within the limit on a first connection: 1 s, the rest 4 s late
        HttpServer server = rig.vertx.createHttpServer().requestHandler(req -> {
            req.response().setChunked(true).write("first");
            rig.vertx.setTimer(4000, t -> req.response().end("rest"));
        });
        server.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        var r = rig.call(router(Router.Options.DEFAULTS), get("/x"), routeToC(""),
                cluster(Duration.ofMillis(1000), server.actualPort()));
        assertEquals(200, r.status(), "the headers were in time");
        assertNull(r.body(), "the body was cut");
        assertEquals(Set.of(ResponseFlag.UPSTREAM_MAX_STREAM_DURATION_REACHED), r.info().responseFlags(),
                "not UC: the router cut it");
        assertEquals("upstream_max_stream_duration_reached", r.info().responseCodeDetails());
        assertTrue(r.elapsedMillis() < 3500, "cut after " + r.elapsedMillis());
    }

    @Test
    void aTrustedCallersHeaderReplacesTheClustersLimitAndIsNotSentOn() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("in time").withFixedDelay(400)));
        // no limit on the cluster: the caller's 150 ms apply
        var own = rig.call(router(RouterRig.trusted()), get("/x", "x-envoy-upstream-stream-duration-ms", "150"),
                routeToC(""), cluster(Duration.ZERO, wm.port()));
        assertEquals(504, own.status());
        assertEquals("upstream_max_stream_duration_reached", own.info().responseCodeDetails());
        // 0 lifts the cluster's
        var lifted = rig.call(router(RouterRig.trusted()), get("/x", "x-envoy-upstream-stream-duration-ms", "0"),
                routeToC(""), cluster(Duration.ofMillis(150), wm.port()));
        assertEquals(200, lifted.status());
        assertEquals("in time", lifted.body());
        // an untrusted caller's is taken off and changes nothing
        var untrusted = rig.call(router(Router.Options.DEFAULTS), get("/x", "x-envoy-upstream-stream-duration-ms",
                "150"), routeToC(""), cluster(Duration.ZERO, wm.port()));
        assertEquals(200, untrusted.status());
        assertTrue(wm.findAll(anyRequestedFor(anyUrl())).stream()
                .noneMatch(q -> q.containsHeader("x-envoy-upstream-stream-duration-ms")), "never sent on");
    }
}
