package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.ok;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static dev.inmesh.runtime.router.RouterRig.sequence;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.github.tomakehurst.wiremock.WireMockServer;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The request buffer limit, as Envoy's router takes it: the route's {@code per_request_buffer_limit_bytes}, else its
 * virtual host's, capped by the listener's {@code per_connection_buffer_limit_bytes} (1 MiB when it sets none). A
 * body over it is neither retried nor mirrored.
 */
class RouterRequestBufferLimitTest {
    private static final String RETRY_5XX = "retry_policy: {retry_on: 5xx, num_retries: 1}";
    private final RouterRig rig = new RouterRig();
    private final PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private WireMockServer wm;
    private Router router;

    @BeforeEach
    void start() {
        wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(503), ok("fine"));
        router = rig.router();
        router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
    }

    @AfterEach
    void close() {
        rig.close();
    }

    /**
     * POSTs {@code bytes} bytes to {@code /x}, which answers 503 and then 200, through a route that retries 5xx once,
     * with these route and virtual host fields, from a listener with this limit (null: none set).
     */
    private RouterRig.Result post(int bytes, String routeFields, String virtualHostFields, Long listenerLimit) {
        wm.resetScenarios();
        RouterRequest req = RouterRig.request(HttpMethod.POST, "/x", "a".repeat(bytes))
                .listenerBufferLimit(listenerLimit);
        return rig.call(router, req, routeToC(RETRY_5XX, routeFields, virtualHostFields), rig.clusters(
                cluster("c", wm.port())));
    }

    private double abandoned() {
        return reg.find("envoy_cluster_retry_or_shadow_abandoned").tag("cluster_name", "c").gauge().value();
    }

    @Test
    void aBodyOverTheRoutesLimitIsNotRetriedAndOneWithinItIs() {
        var big = post(2048, "per_request_buffer_limit_bytes: 1024", "", null);
        assertEquals(503, big.status()); // answered as it is: not kept, so not retried (no URX)
        assertEquals(1, big.info().attemptCount());
        assertEquals("-", big.flags());
        assertEquals(1.0, abandoned());
        var small = post(512, "per_request_buffer_limit_bytes: 1024", "", null);
        assertEquals(200, small.status());
        assertEquals(2, small.info().attemptCount());
        var atTheLimit = post(1024, "per_request_buffer_limit_bytes: 1024", "", null);
        assertEquals(200, atTheLimit.status());
        assertEquals(1.0, abandoned());
    }

    @Test
    void theVirtualHostsLimitAppliesToARouteWithoutOne() {
        var big = post(2048, "", "per_request_buffer_limit_bytes: 1024", null);
        assertEquals(503, big.status());
        assertEquals(1, big.info().attemptCount());
        assertEquals(1.0, abandoned());
        assertEquals(200, post(512, "", "per_request_buffer_limit_bytes: 1024", null).status());
    }

    @Test
    void theRoutesLimitWinsOverTheVirtualHostsEvenWhenLarger() {
        var r = post(2048, "per_request_buffer_limit_bytes: 4096", "per_request_buffer_limit_bytes: 1024", null);
        assertEquals(200, r.status());
        assertEquals(2, r.info().attemptCount());
    }

    @Test
    void aListenerLimitSmallerThanTheRoutesWins() {
        var r = post(2048, "per_request_buffer_limit_bytes: 4096", "", 1024L);
        assertEquals(503, r.status());
        assertEquals(1, r.info().attemptCount());
        assertEquals(1.0, abandoned());
    }

    @Test
    void theListenersLimitAloneAppliesWhenNoRouteSetsOne() {
        assertEquals(503, post(2048, "", "", 1024L).status());
        assertEquals(200, post(1024, "", "", 1024L).status());
    }

    @Test
    void aRouteMayKeepMoreThanEnvoysDefaultWhenTheListenerAllowsIt() {
        int overDefault = RequestBodyStream.RETRY_BUFFER_LIMIT + 1;
        // as Envoy: the listener's default 1 MiB still caps a larger route limit
        assertEquals(503, post(overDefault, "per_request_buffer_limit_bytes: 4194304", "", null).status());
        // a listener with a larger limit, or with 0 (none of its own), lets the route's apply
        assertEquals(200, post(overDefault, "per_request_buffer_limit_bytes: 4194304", "", 8L << 20).status());
        assertEquals(200, post(overDefault, "per_request_buffer_limit_bytes: 4194304", "", 0L).status());
    }

    @Test
    void aStreamedBodyThatOutgrowsTheRoutesLimitIsNotRetried() throws Exception {
        wm.resetScenarios();
        RouterRequest req = RouterRig.request(HttpMethod.POST, "/x", null);
        RequestBodyStream body = new RequestBodyStream();
        req.bodyStream(body);
        var result = rig.start(router, req, routeToC(RETRY_5XX, "per_request_buffer_limit_bytes: 1024", ""),
                rig.clusters(cluster("c", wm.port())));
        rig.ctx.runOnContext(v -> {
            body.write(Buffer.buffer(new byte[800]));
            body.write(Buffer.buffer(new byte[800]));
            body.end();
        });
        var r = RouterRig.await(result);
        assertEquals(503, r.status());
        assertEquals(1, r.info().attemptCount());
        assertEquals(1.0, abandoned());
    }
}
