package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static dev.inmesh.runtime.router.RouterRig.get;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.tomakehurst.wiremock.WireMockServer;
import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.route.FaultInjection;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.upstream.ClusterManager;
import io.vertx.core.http.HttpMethod;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Envoy's fault filter in the router: after the route is chosen and before the upstream, a delay waits on a timer and
 * an abort answers locally, the route's config overriding its virtual host's and the connection manager's filter's.
 */
class RouterFaultTest {
    private static final String FAULT_TYPE =
            "\"@type\": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault";
    private final RouterRig rig = new RouterRig();
    private WireMockServer wm;
    private ClusterManager clusters;

    @BeforeEach
    void upstream() {
        wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(200).withBody("upstream")));
        clusters = rig.clusters(cluster("c", wm.port()));
    }

    @AfterEach
    void close() {
        rig.close();
    }

    /** A connection manager with a fault filter of the given config (Istio's: {@link FaultInjection#NONE}). */
    private static HttpConnectionManager hcm(FaultInjection filter) {
        return HttpConnectionManager.of("outbound_0.0.0.0_9080", "9080", List.of(
                HttpFilter.of("envoy.filters.http.fault", "envoy.extensions.filters.http.fault.v3.HTTPFault")
                        .withFault(filter), HttpFilter.of("envoy.filters.http.router", "")));
    }

    /** A request through a connection manager whose fault filter is Istio's empty one. */
    private static RouterRequest istio(RouterRequest req) {
        return req.faultFilter(hcm(FaultInjection.NONE));
    }

    /** One virtual host of every domain whose one route, to cluster c, has the given HTTPFault fields (flow YAML). */
    private static RouteTable routeWithFault(String fault) {
        return routeWithFault(fault, "15s");
    }

    private static RouteTable routeWithFault(String fault, String timeout) {
        return RouterRig.table("name: r\nvirtual_hosts:\n- name: vh\n  domains: [\"*\"]\n  routes:\n"
                + "  - match: {prefix: /}\n    route: {cluster: c, timeout: " + timeout + "}\n"
                + "    typed_per_filter_config:\n      envoy.filters.http.fault: {" + FAULT_TYPE + ", " + fault
                + "}\n");
    }

    private static final String ABORT_503 = "abort: {http_status: 503, percentage: {numerator: 100}}";

    @Test
    void anAbortForEveryRequestAnswersItsStatusAndNeverReachesTheUpstream() {
        var r = rig.call(rig.router(), istio(get("/x")), routeWithFault(ABORT_503), clusters);
        assertEquals(503, r.status());
        assertEquals("fault filter abort", r.body());
        assertEquals("text/plain", r.header("content-type"));
        assertEquals(Set.of(ResponseFlag.FAULT_INJECTED), r.info().responseFlags());
        assertEquals("FI", r.flags());
        assertEquals("fault_filter_abort", r.info().responseCodeDetails());
        // as Envoy's: the request counts for the route's cluster, which it never reached
        assertEquals("c", r.info().upstreamCluster());
        assertEquals(0, wm.findAll(anyRequestedFor(anyUrl())).size());
    }

    @Test
    void anAbortCarriesTheRouteEntrysResponseHeaderRulesWhichARedirectRouteHasNoneOf() {
        // Envoy's local reply applies the route entry's response header rules; a redirect or direct response route
        // has no route entry
        String fault = "    typed_per_filter_config:\n      envoy.filters.http.fault: {" + FAULT_TYPE + ", "
                + ABORT_503 + "}\n    response_headers_to_add: [{header: {key: x-route, value: r}}]\n";
        RouteTable t = RouterRig.table("name: r\nvirtual_hosts:\n- name: vh\n  domains: [\"*\"]\n  routes:\n"
                + "  - match: {prefix: /moved}\n    redirect: {path_redirect: /new}\n" + fault
                + "  - match: {prefix: /fixed}\n    direct_response: {status: 200}\n" + fault
                + "  - match: {prefix: /}\n    route: {cluster: c}\n" + fault);
        var forwarded = rig.call(rig.router(), istio(get("/x")), t, clusters);
        assertEquals(503, forwarded.status());
        assertEquals("r", forwarded.header("x-route"));
        for (String path : new String[] {"/moved", "/fixed"}) {
            var r = rig.call(rig.router(), istio(get(path)), t, clusters);
            assertEquals(503, r.status(), path);
            assertEquals("fault filter abort", r.body(), path);
            assertEquals(null, r.header("x-route"), path);
        }
    }

    @Test
    void aDelayWaitsOnATimerAndThenTheUpstreamAnswers() {
        var r = rig.call(rig.router(), istio(get("/x")), routeWithFault(
                "delay: {fixed_delay: 0.2s, percentage: {numerator: 1000000, denominator: MILLION}}"), clusters);
        assertEquals(200, r.status());
        assertEquals("upstream", r.body());
        assertEquals("DI", r.flags());
        assertTrue(r.elapsedMillis() >= 200 && r.elapsedMillis() < 5_000, "took " + r.elapsedMillis() + " ms");
        assertTrue(r.info().durationMillis() >= 200, "logged " + r.info().durationMillis() + " ms");
        // the upstream's own time does not include the delay, as Envoy's router measures it from when it has the
        // request
        assertTrue(r.info().upstreamServiceTimeMillis() <= r.info().durationMillis() - 200,
                "upstream " + r.info().upstreamServiceTimeMillis() + " of " + r.info().durationMillis() + " ms");
        assertEquals(1, wm.findAll(anyRequestedFor(anyUrl())).size());
    }

    @Test
    void theDelayDoesNotCountAgainstTheRouteTimeoutAsTheFaultFilterRunsBeforeTheRouter() {
        // the route's timeout is 1 s; a 1.2 s delay before it leaves the upstream all of it
        var r = rig.call(rig.router(), istio(get("/x")), routeWithFault(
                "delay: {fixed_delay: 1.2s, percentage: {numerator: 100}}", "1s"), clusters);
        assertEquals(200, r.status());
        assertEquals("DI", r.flags());
        // and the upstream is told it has (nearly) all of the second
        var seen = wm.findAll(anyRequestedFor(anyUrl())).get(0).getHeader("x-envoy-expected-rq-timeout-ms");
        assertTrue(Long.parseLong(seen) > 500, seen);
    }

    @Test
    void aDelayAndAnAbortDelayThenAbort() {
        var r = rig.call(rig.router(), istio(get("/x")), routeWithFault(
                "delay: {fixed_delay: 0.2s, percentage: {numerator: 100}}, " + ABORT_503), clusters);
        assertEquals(503, r.status());
        assertEquals("DI,FI", r.flags());
        assertTrue(r.elapsedMillis() >= 200, "took " + r.elapsedMillis() + " ms");
        assertEquals(0, wm.findAll(anyRequestedFor(anyUrl())).size());
    }

    @Test
    void aPercentageOfZeroOrUnsetNeverFaults() {
        for (String fault : new String[] {"abort: {http_status: 503, percentage: {numerator: 0}}",
                "abort: {http_status: 503}", "delay: {fixed_delay: 5s}"}) {
            RouteTable t = routeWithFault(fault);
            for (int i = 0; i < 20; i++) {
                var r = rig.call(rig.router(), istio(get("/x")), t, clusters);
                assertEquals(200, r.status(), fault);
                assertEquals("-", r.flags(), fault);
            }
        }
    }

    @Test
    void aPercentageIsDrawnFromTheRoutersRandomValue() {
        // 30 of 100: Envoy's random % 100 < 30
        RouteTable t = routeWithFault("abort: {http_status: 503, percentage: {numerator: 30}}");
        assertEquals(503, rig.call(rig.router(null, fixed(129)), istio(get("/x")), t, clusters).status());
        assertEquals(200, rig.call(rig.router(null, fixed(130)), istio(get("/x")), t, clusters).status());
    }

    /** A random source that always draws {@code v}. */
    private static java.util.random.RandomGenerator fixed(long v) {
        return () -> v;
    }

    @Test
    void theFaultsHeadersLimitItToTheRequestsThatMatchThem() {
        RouteTable t = routeWithFault(ABORT_503 + ", headers: [{name: x-fault, string_match: {exact: \"on\"}}]");
        assertEquals(200, rig.call(rig.router(), istio(get("/x")), t, clusters).status());
        assertEquals(200, rig.call(rig.router(), istio(get("/x", "x-fault", "off")), t, clusters).status());
        assertEquals(503, rig.call(rig.router(), istio(get("/x", "x-fault", "on")), t, clusters).status());
    }

    @Test
    void theRoutesFaultBeatsItsVirtualHostsWhichBeatsTheFilters() {
        FaultInjection filter = new FaultInjection(null, null, FaultInjection.Abort.http(500),
                new FractionalPercent(100, FractionalPercent.Denominator.HUNDRED), List.of(), null);
        RouteTable t = RouterRig.table("""
                name: r
                virtual_hosts:
                - name: vh
                  domains: [svc.local]
                  typed_per_filter_config:
                    envoy.filters.http.fault: {%1$s, abort: {http_status: 502, percentage: {numerator: 100}}}
                  routes:
                  - match: {prefix: /own}
                    route: {cluster: c}
                    typed_per_filter_config:
                      envoy.filters.http.fault: {%1$s, abort: {http_status: 503, percentage: {numerator: 100}}}
                  - match: {prefix: /}
                    route: {cluster: c}
                - name: other
                  domains: ["*"]
                  routes:
                  - match: {prefix: /}
                    route: {cluster: c}
                """.formatted(FAULT_TYPE));
        assertEquals(503, rig.call(rig.router(), get("/own").faultFilter(hcm(filter)), t, clusters).status());
        assertEquals(502, rig.call(rig.router(), get("/x").faultFilter(hcm(filter)), t, clusters).status());
        RouterRequest elsewhere = new RouterRequest(dev.inmesh.runtime.stats.StreamInfo.Direction.OUTBOUND,
                HttpMethod.GET, "/x", "elsewhere", "http", io.vertx.core.MultiMap.caseInsensitiveMultiMap(), null,
                "127.0.0.1:50000", "127.0.0.1:15001", null, "HTTP/1.1").faultFilter(hcm(filter));
        assertEquals(500, rig.call(rig.router(), elsewhere, t, clusters).status());
    }

    @Test
    void withoutAFaultFilterInTheConnectionManagerARoutesFaultDoesNothing() {
        var r = rig.call(rig.router(), get("/x"), routeWithFault(ABORT_503), clusters);
        assertEquals(200, r.status());
        assertEquals("-", r.flags());
    }

    @Test
    void aGrpcAbortAnswersAGrpcCallTrailersOnlyWithItsStatus() {
        RouteTable t = routeWithFault("abort: {grpc_status: 14, percentage: {numerator: 100}}");
        var r = rig.call(rig.router(), istio(get("/pkg.Svc/Call", "content-type", "application/grpc")), t,
                clusters);
        assertEquals(200, r.status());
        assertEquals("14", r.header("grpc-status"));
        assertEquals("fault filter abort", r.header("grpc-message"));
        assertEquals("application/grpc", r.header("content-type"));
        assertEquals("FI", r.flags());
        // an HTTP abort of a gRPC call: the status it maps to (503: UNAVAILABLE)
        var h = rig.call(rig.router(), istio(get("/pkg.Svc/Call", "content-type", "application/grpc")),
                routeWithFault(ABORT_503), clusters);
        assertEquals(200, h.status());
        assertEquals("14", h.header("grpc-status"));
        // a gRPC abort of a plain request: 200 with the body
        var p = rig.call(rig.router(), istio(get("/x")), t, clusters);
        assertEquals(200, p.status());
        assertEquals("fault filter abort", p.body());
    }

    @Test
    void maxActiveFaultsLetsNoMoreRequestsIntoAFaultThanItSays() {
        RouteTable none = routeWithFault(ABORT_503 + ", max_active_faults: 0");
        assertEquals(200, rig.call(rig.router(), istio(get("/x")), none, clusters).status());
        RouteTable one = routeWithFault("delay: {fixed_delay: 3s, percentage: {numerator: 100}}, "
                + "max_active_faults: 1");
        Router router = rig.router();
        CompletableFuture<RouterRig.Result> delayed = rig.start(router, istio(get("/x")), one, clusters);
        // the first is in its delay: the second goes through at once
        long t0 = System.nanoTime();
        waitUntil(() -> router.activeFaults("outbound_0.0.0.0_9080") == 1);
        var second = rig.call(router, istio(get("/x")), one, clusters);
        assertEquals("-", second.flags());
        assertTrue((System.nanoTime() - t0) / 1_000_000 < 2_000, "the second was not delayed");
        assertEquals("DI", RouterRig.await(delayed).flags());
        // once over, it no longer counts
        waitUntil(() -> router.activeFaults("outbound_0.0.0.0_9080") == 0);
        assertEquals("DI", rig.call(router, istio(get("/x")), one, clusters).flags());
    }

    @Test
    void aCallerThatLeavesDuringTheDelayEndsItWithDcAndTheUpstreamNeverHearsOfIt() {
        RouteTable t = routeWithFault("delay: {fixed_delay: 5s, percentage: {numerator: 100}}");
        Router router = rig.router();
        RouterRequest req = istio(get("/x"));
        CompletableFuture<RouterRig.Result> call = rig.start(router, req, t, clusters);
        waitUntil(() -> router.activeFaults("outbound_0.0.0.0_9080") == 1);
        router.cancel(req);
        var r = RouterRig.await(call);
        assertEquals(0, r.status());
        assertEquals("DI,DC", r.flags());
        assertTrue(r.elapsedMillis() < 4_000, "took " + r.elapsedMillis() + " ms");
        assertEquals(0, router.activeFaults("outbound_0.0.0.0_9080"));
        assertEquals(0, wm.findAll(anyRequestedFor(anyUrl())).size());
    }

    @Test
    void aHeaderAbortAnswersWithTheStatusTheRequestsHeaderNames() {
        RouteTable t = routeWithFault("abort: {header_abort: {}, percentage: {numerator: 100}}");
        var r = rig.call(rig.router(), istio(get("/x", "x-envoy-fault-abort-request", "429")), t, clusters);
        assertEquals(429, r.status());
        assertEquals("fault filter abort", r.body());
        assertEquals("FI", r.flags());
        // the HTTP status wins over a gRPC one; a gRPC status alone answers a gRPC call trailers-only
        assertEquals(418, rig.call(rig.router(), istio(get("/x", "x-envoy-fault-abort-request", "418",
                "x-envoy-fault-abort-grpc-request", "5")), t, clusters).status());
        var g = rig.call(rig.router(), istio(get("/pkg.Svc/Call", "content-type", "application/grpc",
                "x-envoy-fault-abort-grpc-request", "5")), t, clusters);
        assertEquals(200, g.status());
        assertEquals("5", g.header("grpc-status"));
        // no header, a status out of 200..599 or not a number: no abort
        for (String v : new String[] {null, "199", "600", "abc", "-500", ""}) {
            var n = rig.call(rig.router(), istio(withHeader("x-envoy-fault-abort-request", v)), t, clusters);
            assertEquals(200, n.status(), v);
            assertEquals("-", n.flags(), v);
        }
        assertEquals(6, wm.findAll(anyRequestedFor(anyUrl())).size()); // only those not aborted
    }

    @Test
    void thePercentageHeaderLowersAHeaderFaultsPercentageButNeverRaisesIt() {
        // 50 of 100: Envoy's random % 100 < 50; the header's numerator is taken when lower than the config's
        RouteTable t = routeWithFault("abort: {header_abort: {}, percentage: {numerator: 50}}");
        String[] abort = {"x-envoy-fault-abort-request", "503"};
        assertEquals(503, rig.call(rig.router(null, fixed(30)), istio(get("/x", abort)), t, clusters).status());
        assertEquals(200, rig.call(rig.router(null, fixed(30)), istio(get("/x", abort[0], abort[1],
                "x-envoy-fault-abort-request-percentage", "20")), t, clusters).status());
        assertEquals(200, rig.call(rig.router(null, fixed(70)), istio(get("/x", abort)), t, clusters).status());
        assertEquals(200, rig.call(rig.router(null, fixed(70)), istio(get("/x", abort[0], abort[1],
                "x-envoy-fault-abort-request-percentage", "100")), t, clusters).status());
        // a percentage that is not an unsigned 32-bit number leaves the config's
        assertEquals(503, rig.call(rig.router(null, fixed(30)), istio(get("/x", abort[0], abort[1],
                "x-envoy-fault-abort-request-percentage", "4294967296")), t, clusters).status());
        // a fixed abort reads no percentage header
        assertEquals(503, rig.call(rig.router(null, fixed(30)), istio(get("/x",
                "x-envoy-fault-abort-request-percentage", "0")), routeWithFault(
                "abort: {http_status: 503, percentage: {numerator: 50}}"), clusters).status());
        // a header delay's own percentage header
        RouteTable d = routeWithFault("delay: {header_delay: {}, percentage: {numerator: 50}}");
        assertEquals("-", rig.call(rig.router(null, fixed(30)), istio(get("/x", "x-envoy-fault-delay-request", "1",
                "x-envoy-fault-delay-request-percentage", "30")), d, clusters).flags());
        assertEquals("DI", rig.call(rig.router(null, fixed(30)), istio(get("/x", "x-envoy-fault-delay-request", "1",
                "x-envoy-fault-delay-request-percentage", "31")), d, clusters).flags());
    }

    @Test
    void aHeaderDelayWaitsTheMillisecondsTheRequestsHeaderNames() {
        RouteTable t = routeWithFault("delay: {header_delay: {}, percentage: {numerator: 100}}");
        var r = rig.call(rig.router(), istio(get("/x", "x-envoy-fault-delay-request", "200")), t, clusters);
        assertEquals(200, r.status());
        assertEquals("upstream", r.body());
        assertEquals("DI", r.flags());
        assertTrue(r.elapsedMillis() >= 200 && r.elapsedMillis() < 5_000, "took " + r.elapsedMillis() + " ms");
        // no header, 0, or not a number: no delay
        for (String v : new String[] {null, "0", "1.5", "x"}) {
            var n = rig.call(rig.router(), istio(withHeader("x-envoy-fault-delay-request", v)), t, clusters);
            assertEquals("-", n.flags(), v);
        }
    }

    @Test
    void downstreamNodesAndUpstreamClusterLeaveOtherRequestsOut() {
        RouteTable nodes = routeWithFault(ABORT_503 + ", downstream_nodes: [productpage, reviews]");
        assertEquals(200, rig.call(rig.router(), istio(get("/x")), nodes, clusters).status());
        assertEquals(200, rig.call(rig.router(), istio(get("/x", "x-envoy-downstream-service-node", "ratings")),
                nodes, clusters).status());
        assertEquals(503, rig.call(rig.router(), istio(get("/x", "x-envoy-downstream-service-node", "reviews")),
                nodes, clusters).status());
        // the route forwards to cluster c
        assertEquals(200, rig.call(rig.router(), istio(get("/x")), routeWithFault(ABORT_503
                + ", upstream_cluster: other"), clusters).status());
        assertEquals(503, rig.call(rig.router(), istio(get("/x")), routeWithFault(ABORT_503
                + ", upstream_cluster: c"), clusters).status());
    }

    /** A GET of /x with header {@code name} set to {@code value}, or without it when null. */
    private static RouterRequest withHeader(String name, String value) {
        return value == null ? get("/x") : get("/x", name, value);
    }

    private static void waitUntil(java.util.function.BooleanSupplier c) {
        long end = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        while (!c.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("condition not met in 5 s");
            }
            try {
                Thread.sleep(5);
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
        }
    }
}
