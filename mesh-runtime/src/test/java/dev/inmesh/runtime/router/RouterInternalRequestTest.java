package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.ok;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.verification.LoggedRequest;
import dev.inmesh.api.config.core.CidrRange;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.rbac.Permission;
import dev.inmesh.api.config.rbac.Principal;
import dev.inmesh.api.config.rbac.Rbac;
import dev.inmesh.api.config.route.HeaderMatcher;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.upstream.ClusterManager;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Envoy's internal requests: with {@code use_remote_address: false}, a request whose {@code x-forwarded-for} is one
 * address of the connection manager's {@code internal_address_config} keeps its {@code x-envoy-*} control headers,
 * which the router honours, and gets {@code x-envoy-internal: true}; any other loses them before its filters run.
 */
class RouterInternalRequestTest {
    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    /** A connection manager that takes 10.0.0.0/8 for internal, with the given filters before its router. */
    private static HttpConnectionManager hcm(List<CidrRange> internal, List<HttpFilter> filters) {
        List<HttpFilter> all = new java.util.ArrayList<>(filters);
        all.add(HttpFilter.of("envoy.filters.http.router", ""));
        return HttpConnectionManager.of("outbound_0.0.0.0_9080", "r", all).withInternalAddresses(internal);
    }

    private static final List<CidrRange> TEN = List.of(new CidrRange("10.0.0.0", 8));

    private static RouterRequest from(String xff, List<CidrRange> internal, String... headers) {
        String[] all = new String[headers.length + 2];
        all[0] = "x-forwarded-for";
        all[1] = xff;
        System.arraycopy(headers, 0, all, 2, headers.length);
        return get("/x", all).internal(hcm(internal, List.of()));
    }

    private ClusterManager one(WireMockServer wm) {
        return rig.clusters(cluster("c", wm.port()));
    }

    private static String header(LoggedRequest r, String name) {
        return r.containsHeader(name) ? r.getHeader(name) : null;
    }

    @Test
    void anInternalRequestsControlHeadersAreHonouredAndItsUpstreamIsToldItIsInternal() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("late").withFixedDelay(700)));
        var r = rig.call(rig.router(), from("10.1.2.3", TEN, "x-envoy-upstream-rq-timeout-ms", "150"),
                routeToC("timeout: 0s"), one(wm));
        assertEquals(504, r.status(), "the caller's timeout, as Envoy's router takes it from an internal caller");
        assertEquals(Set.of(ResponseFlag.UPSTREAM_REQUEST_TIMEOUT), r.info().responseFlags());

        WireMockServer quick = rig.wiremock();
        quick.stubFor(any(anyUrl()).willReturn(ok()));
        rig.call(rig.router(), from(" 10.1.2.3 ", TEN, "x-envoy-retry-on", "5xx", "x-envoy-force-trace", "1",
                "x-envoy-internal", "no"), routeToC(""), one(quick));
        LoggedRequest up = quick.getAllServeEvents().get(0).getRequest();
        assertEquals("true", header(up, "x-envoy-internal"));
        assertNull(header(up, "x-envoy-retry-on"), "the router consumes what it reads");
        assertEquals("1", header(up, "x-envoy-force-trace"), "the rest goes on, as Envoy's does for an internal one");
    }

    @Test
    void theRouteConfigurationsInternalOnlyHeadersAreCleanedOffAnExternalRequestOnly() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok()));
        RouteTable table = RouterRig.table("name: r\ninternal_only_headers: [X-Secret]\nvirtual_hosts:\n- name: vh\n"
                + "  domains: [\"*\"]\n  routes:\n  - match: {prefix: /}\n    route: {cluster: c}\n");
        rig.call(rig.router(), from("10.1.2.3", TEN, "x-secret", "s", "x-other", "o"), table, one(wm));
        rig.call(rig.router(), from("192.168.1.1", TEN, "x-secret", "s", "x-other", "o"), table, one(wm));
        var events = wm.getAllServeEvents();
        java.util.Map<String, String> secretByInternal = new java.util.HashMap<>();
        for (var e : events) {
            secretByInternal.put(String.valueOf(header(e.getRequest(), "x-envoy-internal")),
                    header(e.getRequest(), "x-secret"));
            assertEquals("o", header(e.getRequest(), "x-other"));
        }
        assertEquals("s", secretByInternal.get("true"), "an internal request keeps it");
        assertTrue(secretByInternal.containsKey("null"));
        assertNull(secretByInternal.get("null"), "an external one loses it");
    }

    @Test
    void aRequestIsExternalWithSeveralForwardedAddressesOneOutOfTheRangesOrNoInternalAddressConfig() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("late").withFixedDelay(300)));
        RouterRequest[] external = {
            from("10.1.2.3, 10.1.2.4", TEN, "x-envoy-upstream-rq-timeout-ms", "50", "x-envoy-internal", "true"),
            from("192.168.1.1", TEN, "x-envoy-upstream-rq-timeout-ms", "50", "x-envoy-internal", "true"),
            from("10.1.2.3", List.of(), "x-envoy-upstream-rq-timeout-ms", "50", "x-envoy-internal", "true"),
            from("not-an-ip", List.of(new CidrRange("0.0.0.0", 0)), "x-envoy-upstream-rq-timeout-ms", "50",
                    "x-envoy-internal", "true")};
        for (RouterRequest req : external) {
            assertEquals(200, rig.call(rig.router(), req, routeToC("timeout: 0s"), one(wm)).status());
        }
        for (var e : wm.getAllServeEvents()) {
            assertNull(header(e.getRequest(), "x-envoy-internal"));
            assertNull(header(e.getRequest(), "x-envoy-upstream-rq-timeout-ms"));
        }
    }

    @Test
    void anExternalCallersControlHeadersAreGoneBeforeTheFiltersSeeThem() {
        // as Envoy's connection manager cleans an external request before its filters: a DENY on a caller's
        // x-envoy-internal never sees one from outside, and sees the connection manager's on an internal request
        Rbac deny = new Rbac(new Rbac.Rules(Rbac.Action.DENY, Map.of("internal", new Rbac.Policy(List.of(
                new Permission.Header(new HeaderMatcher("x-envoy-internal", new HeaderMatcher.Present(true), false,
                        false))), List.of(new Principal.Any())))), "", null, "");
        HttpConnectionManager m = hcm(TEN, List.of(
                HttpFilter.of("envoy.filters.http.rbac", "envoy.extensions.filters.http.rbac.v3.RBAC").withRbac(deny)));
        RbacFilter.Chain chain = RbacFilter.Chain.compile(m);
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok()));
        var outside = rig.call(rig.router(), get("/x", "x-envoy-internal", "true").internal(m).rbac(chain, null),
                routeToC(""), one(wm));
        assertEquals(200, outside.status());
        var inside = rig.call(rig.router(), get("/x", "x-forwarded-for", "10.0.0.9").internal(m).rbac(chain, null),
                routeToC(""), one(wm));
        assertEquals(403, inside.status());
    }

    @Test
    void anHonouredAltResponseHeaderTurnsATimeoutInto204() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("late").withFixedDelay(700)));
        var r = rig.call(rig.router(), from("10.1.2.3", TEN, "x-envoy-upstream-rq-timeout-alt-response", "1"),
                routeToC("timeout: 0.15s"), one(wm));
        assertEquals(204, r.status());
        assertEquals("", r.body());
        assertNull(r.header("content-length"));
        assertTrue(r.info().responseFlags().contains(ResponseFlag.UPSTREAM_REQUEST_TIMEOUT));
        assertFalse(wm.getAllServeEvents().get(0).getRequest()
                .containsHeader("x-envoy-upstream-rq-timeout-alt-response"));
        // from an external caller it is ignored
        var external = rig.call(rig.router(), from("172.16.0.1", TEN, "x-envoy-upstream-rq-timeout-alt-response", "1"),
                routeToC("timeout: 0.15s"), one(wm));
        assertEquals(504, external.status());
    }
}
