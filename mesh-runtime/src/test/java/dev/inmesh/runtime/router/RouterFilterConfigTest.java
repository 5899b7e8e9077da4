package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.ok;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import com.github.tomakehurst.wiremock.WireMockServer;
import dev.inmesh.api.config.listener.RouterFilterConfig;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.upstream.ClusterManager;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The router filter's own config: {@code respect_expected_rq_timeout} and {@code strict_check_headers}. */
class RouterFilterConfigTest {
    private static final RouterFilterConfig RESPECT_EXPECTED = new RouterFilterConfig(false, true, List.of());
    private static final RouterFilterConfig STRICT = new RouterFilterConfig(false, false,
            List.of("x-envoy-max-retries", "x-envoy-retry-on", "x-envoy-retry-grpc-on",
                    "x-envoy-upstream-rq-timeout-ms"));

    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    private ClusterManager slow(int delayMillis) {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("late").withFixedDelay(delayMillis)));
        return rig.clusters(cluster("c", wm.port()));
    }

    @Test
    void withRespectExpectedRqTimeoutTheCallersExpectedTimeoutIsTheRouteTimeout() {
        ClusterManager clusters = slow(700);
        // the previous hop's router waits 150 ms: so does this one, before its x-envoy-upstream-rq-timeout-ms
        var r = rig.call(rig.router(RouterRig.trusted(), null), get("/x", "x-envoy-expected-rq-timeout-ms", "150",
                "x-envoy-upstream-rq-timeout-ms", "5000").routerFilter(RESPECT_EXPECTED), routeToC("timeout: 0s"),
                clusters);
        assertEquals(504, r.status());
        assertEquals(Set.of(ResponseFlag.UPSTREAM_REQUEST_TIMEOUT), r.info().responseFlags());
        // without the expected header, x-envoy-upstream-rq-timeout-ms still counts
        var upstreamHeader = rig.call(rig.router(RouterRig.trusted(), null), get("/x",
                "x-envoy-upstream-rq-timeout-ms", "150").routerFilter(RESPECT_EXPECTED), routeToC("timeout: 0s"),
                clusters);
        assertEquals(504, upstreamHeader.status());
    }

    /** An internal request (x-forwarded-for in 10.0.0.0/8, use_remote_address false) with the given headers. */
    private static RouterRequest internal(String... headers) {
        String[] all = new String[headers.length + 2];
        all[0] = "x-forwarded-for";
        all[1] = "10.1.2.3";
        System.arraycopy(headers, 0, all, 2, headers.length);
        var hcm = dev.inmesh.api.config.listener.HttpConnectionManager.of("outbound_0.0.0.0_9080", "r",
                List.of(dev.inmesh.api.config.listener.HttpFilter.of("envoy.filters.http.router", "")))
                .withInternalAddresses(List.of(new dev.inmesh.api.config.core.CidrRange("10.0.0.0", 8)));
        return get("/x", all).internal(hcm);
    }

    private static String upstreamHeader(WireMockServer wm, int i, String name) {
        var r = wm.getAllServeEvents().get(i).getRequest();
        return r.containsHeader(name) ? r.getHeader(name) : null;
    }

    @Test
    void withRespectExpectedRqTimeoutTheUpstreamTimeoutHeaderItDidNotReadGoesOn() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("late").withFixedDelay(300)));
        ClusterManager clusters = rig.clusters(cluster("c", wm.port()));
        // the expected header wins (1000 ms, so the 300 ms answer comes): the router never read
        // x-envoy-upstream-rq-timeout-ms, which goes upstream as Envoy's does; the per-try one it always consumes
        var r = rig.call(rig.router(), internal("x-envoy-expected-rq-timeout-ms", "1000",
                "x-envoy-upstream-rq-timeout-ms", "100", "x-envoy-upstream-rq-per-try-timeout-ms", "900")
                .routerFilter(RESPECT_EXPECTED), routeToC("timeout: 0s"), clusters);
        assertEquals(200, r.status());
        assertEquals("100", upstreamHeader(wm, 0, "x-envoy-upstream-rq-timeout-ms"));
        assertNull(upstreamHeader(wm, 0, "x-envoy-upstream-rq-per-try-timeout-ms"));
        // an expected header Envoy cannot parse is still the one it looks at: the other is not read, and goes on
        var invalid = rig.call(rig.router(), internal("x-envoy-expected-rq-timeout-ms", "soon",
                "x-envoy-upstream-rq-timeout-ms", "100").routerFilter(RESPECT_EXPECTED), routeToC("timeout: 0s"),
                clusters);
        assertEquals(200, invalid.status());
        // without the expected header, or without respect_expected_rq_timeout, the router reads it and consumes it
        var noExpected = rig.call(rig.router(), internal("x-envoy-upstream-rq-timeout-ms", "1000")
                .routerFilter(RESPECT_EXPECTED), routeToC("timeout: 0s"), clusters);
        assertEquals(200, noExpected.status());
        var noRespect = rig.call(rig.router(), internal("x-envoy-expected-rq-timeout-ms", "1000",
                "x-envoy-upstream-rq-timeout-ms", "1000"), routeToC("timeout: 0s"), clusters);
        assertEquals(200, noRespect.status());
        var events = wm.getAllServeEvents();
        assertEquals(4, events.size());
        // WireMock lists its serve events newest first
        assertEquals("100", upstreamHeader(wm, 2, "x-envoy-upstream-rq-timeout-ms"));
        assertNull(upstreamHeader(wm, 1, "x-envoy-upstream-rq-timeout-ms"));
        assertNull(upstreamHeader(wm, 0, "x-envoy-upstream-rq-timeout-ms"));
    }

    @Test
    void withoutRespectExpectedRqTimeoutTheCallersExpectedTimeoutIsIgnored() {
        ClusterManager clusters = slow(300);
        var r = rig.call(rig.router(RouterRig.trusted(), null), get("/x", "x-envoy-expected-rq-timeout-ms", "50"),
                routeToC("timeout: 0s"), clusters);
        assertEquals(200, r.status());
        // nor does an untrusted caller's count with it
        var untrusted = rig.call(rig.router(), get("/x", "x-envoy-expected-rq-timeout-ms", "50")
                .routerFilter(RESPECT_EXPECTED), routeToC("timeout: 0s"), clusters);
        assertEquals(200, untrusted.status());
    }

    @Test
    void strictCheckHeadersAnswersAnInvalidControlHeader400() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("x")));
        ClusterManager clusters = rig.clusters(cluster("c", wm.port()));
        String[][] invalid = {{"x-envoy-max-retries", "three"}, {"x-envoy-upstream-rq-timeout-ms", "-5"},
                {"x-envoy-retry-on", "5xx,bogus"}, {"x-envoy-retry-on", "unavailable"},
                {"x-envoy-retry-grpc-on", "5xx"}};
        for (String[] h : invalid) {
            var r = rig.call(rig.router(RouterRig.trusted(), null), get("/x", h[0], h[1]).routerFilter(STRICT),
                    routeToC(""), clusters);
            assertEquals(400, r.status(), h[0] + ": " + h[1]);
            assertEquals("invalid header '" + h[0] + "' with value '" + h[1] + "'", r.body());
            assertEquals(Set.of(ResponseFlag.INVALID_ENVOY_REQUEST_HEADERS), r.info().responseFlags());
        }
        assertEquals(0, wm.getAllServeEvents().size(), "none went upstream");
        // valid values go through
        var valid = rig.call(rig.router(RouterRig.trusted(), null), get("/x", "x-envoy-max-retries", "2",
                "x-envoy-retry-on", "5xx, connect-failure", "x-envoy-retry-grpc-on", "unavailable",
                "x-envoy-upstream-rq-timeout-ms", "3000").routerFilter(STRICT), routeToC(""), clusters);
        assertEquals(200, valid.status());
        // a header it does not name, and an invalid value without the check, are ignored as before
        var unnamed = rig.call(rig.router(RouterRig.trusted(), null), get("/x",
                "x-envoy-upstream-rq-per-try-timeout-ms", "soon").routerFilter(STRICT), routeToC(""), clusters);
        assertEquals(200, unnamed.status());
        var unchecked = rig.call(rig.router(RouterRig.trusted(), null), get("/x", "x-envoy-max-retries", "three"),
                routeToC(""), clusters);
        assertEquals(200, unchecked.status());
        // an untrusted caller's control headers are taken off, never checked
        var untrusted = rig.call(rig.router(), get("/x", "x-envoy-max-retries", "three").routerFilter(STRICT),
                routeToC(""), clusters);
        assertEquals(200, untrusted.status());
    }
}
