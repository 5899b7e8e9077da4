package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.ok;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.tomakehurst.wiremock.WireMockServer;
import dev.inmesh.api.config.core.StringMatcher;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.rbac.Permission;
import dev.inmesh.api.config.rbac.Principal;
import dev.inmesh.api.config.rbac.Rbac;
import dev.inmesh.runtime.upstream.ClusterManager;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The router runs the connection manager's RBAC filters after choosing the route and before anything goes upstream,
 * on the in-JVM client's outbound requests as on the proxy's: a denied request is answered 403 by the filter, with
 * none of the route's response header rules, and never reaches the cluster.
 */
class RouterRbacTest {
    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    /** A connection manager whose one RBAC filter DENYs requests to port 9080 whose path starts with /admin. */
    private static RbacFilter.Chain denyAdminOn9080() {
        Rbac deny = new Rbac(new Rbac.Rules(Rbac.Action.DENY, Map.of("admin-9080", new Rbac.Policy(List.of(
                new Permission.And(List.of(new Permission.DestinationPort(9080), new Permission.UrlPath(
                        new StringMatcher.Prefix("/admin", false))))), List.of(new Principal.Any())))), "", null, "");
        return RbacFilter.Chain.compile(HttpConnectionManager.of("outbound_0.0.0.0_9080", "r", List.of(
                HttpFilter.of("envoy.filters.http.rbac", "envoy.extensions.filters.http.rbac.v3.RBAC").withRbac(deny),
                        HttpFilter.of("envoy.filters.http.router", ""))));
    }

    private static RouterRequest outbound(String path) {
        return outbound(path, io.vertx.core.MultiMap.caseInsensitiveMultiMap());
    }

    private static RouterRequest outbound(String path, io.vertx.core.MultiMap headers) {
        return new RouterRequest(dev.inmesh.runtime.stats.StreamInfo.Direction.OUTBOUND,
                io.vertx.core.http.HttpMethod.GET, path, "reviews:9080", "http", headers, null, "10.1.0.7:0", null,
                new dev.inmesh.api.config.core.SocketAddress("reviews", 9080), "HTTP/1.1")
                .rbac(denyAdminOn9080(), null);
    }

    @Test
    void aDeniedRequestIsAnswered403ByTheFilterAndNeverReachesTheCluster() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("app")));
        ClusterManager clusters = rig.clusters(cluster("c", wm.port()));
        RouteTable table = RouterRig.routeToC("", "response_headers_to_add: [{header: {key: x-route, value: r}}]",
                "");
        RouterRig.Result denied = rig.call(rig.router(), outbound("/admin/users"), table, clusters);
        assertEquals(403, denied.status());
        assertEquals("RBAC: access denied", denied.body());
        assertEquals("rbac_access_denied_matched_policy[admin-9080]", denied.info().responseCodeDetails());
        assertTrue(denied.info().responseFlags().isEmpty(), String.valueOf(denied.info().responseFlags()));
        assertEquals("c", denied.info().upstreamCluster());
        // as Envoy's local reply, which applies the route entry's response header rules to a filter's answer too
        assertEquals("r", denied.headers().get("x-route"));
        assertEquals(0, wm.getAllServeEvents().size());

        RouterRig.Result allowed = rig.call(rig.router(), outbound("/reviews/0"), table, clusters);
        assertEquals(200, allowed.status());
        assertEquals("app", allowed.body());
        assertEquals(1, wm.getAllServeEvents().size());
    }

    @Test
    void aDeniedGrpcRequestGetsEnvoysTrailersOnlyAnswerPermissionDeniedWithTheBodyAsItsMessage() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("app")));
        ClusterManager clusters = rig.clusters(cluster("c", wm.port()));
        RouterRig.Result denied = rig.call(rig.router(), outbound("/admin/pkg.Svc/Call",
                io.vertx.core.MultiMap.caseInsensitiveMultiMap().add("content-type", "application/grpc")),
                RouterRig.routeToC("", "", ""), clusters);
        assertEquals(200, denied.status(), "gRPC's local replies are trailers-only, status 200");
        assertEquals("7", denied.header("grpc-status"), "403 is PERMISSION_DENIED");
        assertEquals("RBAC: access denied", denied.header("grpc-message"));
        assertEquals("application/grpc", denied.header("content-type"));
        assertEquals("", denied.body() == null ? "" : denied.body());
        assertEquals("rbac_access_denied_matched_policy[admin-9080]", denied.info().responseCodeDetails());
        assertEquals(0, wm.getAllServeEvents().size());
    }

    @Test
    void aHostHeaderMatcherReadsTheAuthorityAsEnvoyWhoseHostIsAnotherNameOfIt() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("app")));
        ClusterManager clusters = rig.clusters(cluster("c", wm.port()));
        Rbac deny = new Rbac(new Rbac.Rules(Rbac.Action.DENY, Map.of("host", new Rbac.Policy(List.of(
                new Permission.Header(new dev.inmesh.api.config.route.HeaderMatcher("host",
                        new dev.inmesh.api.config.route.HeaderMatcher.Value(new StringMatcher.Exact("reviews:9080",
                                false)), false, false))), List.of(new Principal.Any())))), "", null, "");
        RbacFilter.Chain chain = RbacFilter.Chain.compile(HttpConnectionManager.of("outbound_0.0.0.0_9080", "r",
                List.of(HttpFilter.of("envoy.filters.http.rbac", "envoy.extensions.filters.http.rbac.v3.RBAC")
                        .withRbac(deny), HttpFilter.of("envoy.filters.http.router", ""))));
        // an HTTP/2 request (or the in-JVM client's) has its authority and no host header
        RouterRequest h2 = new RouterRequest(dev.inmesh.runtime.stats.StreamInfo.Direction.OUTBOUND,
                io.vertx.core.http.HttpMethod.GET, "/", "reviews:9080", "http",
                io.vertx.core.MultiMap.caseInsensitiveMultiMap(), null, "10.1.0.7:0", null,
                new dev.inmesh.api.config.core.SocketAddress("reviews", 9080), "HTTP/2").rbac(chain, null);
        RouterRig.Result denied = rig.call(rig.router(), h2, RouterRig.routeToC("", "", ""), clusters);
        assertEquals(403, denied.status());
        assertEquals("rbac_access_denied_matched_policy[host]", denied.info().responseCodeDetails());
        assertEquals("reviews:9080", h2.header("host"));
        assertEquals("reviews:9080", h2.firstHeader("host"));
        assertEquals(0, wm.getAllServeEvents().size());
    }
}
