package dev.inmesh.runtime.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.inmesh.api.config.core.StringMatcher;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.rbac.Permission;
import dev.inmesh.api.config.rbac.Principal;
import dev.inmesh.api.config.rbac.Rbac;
import dev.inmesh.api.config.route.HeaderMatcher;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * What the route and the filters before the router see of a request's headers: as Envoy's connection manager cleans
 * them (ConnectionManagerUtility::mutateRequestHeaders, source/common/http/conn_manager_utility.cc) before it picks
 * the route (conn_manager_impl.cc, decodeHeaders: mutateRequestHeaders, then refreshCachedRoute), the hop-by-hop
 * headers and a caller's {@code x-forwarded-client-cert} (SANITIZE) are gone by then; on the standalone proxy's
 * requests as on the in-JVM client's, which share the router.
 */
class RouterHeaderSanitizingTest {
    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    /**
     * A route table of one virtual host: a route answering its name for each {@code name: matchers} pair of
     * {@code routes} (the route's {@code headers}, flow YAML), then one answering {@code clean}.
     */
    private static RouteTable answering(String... routes) {
        StringBuilder yaml = new StringBuilder("name: r\nvirtual_hosts:\n- name: vh\n  domains: [\"*\"]\n  routes:\n");
        for (int i = 0; i + 1 < routes.length; i += 2) {
            yaml.append("  - match: {prefix: /, headers: ").append(routes[i + 1]).append("}\n")
                    .append("    direct_response: {status: 200, body: {inline_string: ").append(routes[i])
                    .append("}}\n");
        }
        return RouterRig.table(yaml
                + "  - match: {prefix: /}\n    direct_response: {status: 200, body: {inline_string: clean}}\n");
    }

    /** A route for requests that have {@code header}, answering {@code seen}; any other answers {@code clean}. */
    private static RouteTable presentRoute(String header) {
        return answering("seen", "[{name: " + header + ", present_match: true}]");
    }

    private String answer(RouteTable table, String... headers) {
        return rig.call(rig.router(), RouterRig.get("/x", headers), table, rig.clusters()).body();
    }

    @Test
    void noRouteMatchesAHopByHopHeaderEnvoysConnectionManagerTakesOffBeforeRouting() {
        assertEquals("clean", answer(presentRoute("connection"), "connection", "keep-alive"));
        assertEquals("clean", answer(presentRoute("connection"), "connection", "close"));
        assertEquals("clean", answer(presentRoute("keep-alive"), "keep-alive", "timeout=5"));
        assertEquals("clean", answer(presentRoute("proxy-connection"), "proxy-connection", "keep-alive"));
        assertEquals("clean", answer(presentRoute("transfer-encoding"), "transfer-encoding", "chunked"));
        // an upgrade header on a request that is no upgrade (its connection does not name upgrade)
        assertEquals("clean", answer(presentRoute("upgrade"), "upgrade", "foo"));
        assertEquals("clean", answer(presentRoute("upgrade"), "connection", "keep-alive", "upgrade", "foo"));
        // a te without trailers goes too
        assertEquals("clean", answer(presentRoute("te"), "te", "gzip, deflate"));
        assertEquals("seen", answer(presentRoute("x-plain"), "x-plain", "p"), "any other header is routed on");
    }

    @Test
    void aRouteSeesTheTeEnvoyKeepsTrailersAlone() {
        RouteTable table = answering("trailers", "[{name: te, string_match: {exact: trailers}}]");
        assertEquals("trailers", answer(table, "te", "gzip, trailers"));
    }

    @Test
    void aPlaintextCallersForwardedClientCertSteersNoRouteUnderSanitize() {
        assertEquals("clean", answer(presentRoute("x-forwarded-client-cert"), "x-forwarded-client-cert",
                "By=spiffe://cluster.local/ns/default/sa/reviews;URI=spiffe://cluster.local/ns/default/sa/admin"));
    }

    @Test
    void anUpgradeIsRoutedOnItsConnectionAndUpgradeButNotOnTheOtherHopByHopHeaders() {
        // as Envoy's connection manager, which keeps an upgrade's connection and upgrade (and its te, taken off only
        // in the branch of a request that is no upgrade) and takes keep-alive and proxy-connection off any request
        RouteTable table = answering("keep-alive", "[{name: keep-alive, present_match: true}]",
                "xfcc", "[{name: x-forwarded-client-cert, present_match: true}]",
                "upgrade", "[{name: upgrade, string_match: {exact: websocket}},"
                        + " {name: connection, present_match: true}, {name: te, string_match: {exact: gzip}}]");
        RouterRequest req = RouterRig.get("/ws", "connection", "keep-alive, Upgrade", "upgrade", "websocket",
                "keep-alive", "timeout=5", "proxy-connection", "keep-alive", "te", "gzip",
                "x-forwarded-client-cert", "Hash=00");
        Router.Relay relay = rig.router().relay(req.websocketUpgrade(true), table, rig.clusters(), () -> { }).result();
        assertNotNull(relay.refusal());
        assertEquals(200, relay.refusal().status());
        assertEquals("upgrade", relay.refusal().localBody().toString());
        assertNull(req.header("keep-alive"));
        assertNull(req.header("proxy-connection"));
        assertEquals("websocket", req.header("upgrade"));
    }

    @Test
    void aRefusedUpgradeIsMatchedWithoutItsHopByHopHeaders() {
        // an upgrade the connection manager does not take: 403 where a route matched it, else 404; only a route for
        // its keep-alive could match it, which Envoy's connection manager took off before routing
        RouteTable table = RouterRig.table("name: r\nvirtual_hosts:\n- name: vh\n  domains: [\"*\"]\n  routes:\n"
                + "  - match: {prefix: /, headers: [{name: keep-alive, present_match: true}]}\n"
                + "    direct_response: {status: 200}\n");
        RouterRequest req = RouterRig.get("/ws", "connection", "upgrade", "upgrade", "foo", "keep-alive", "1");
        assertEquals(404, rig.router().upgradeRefused(req, table, rig.clusters(), false).status());
    }

    @Test
    void aSpoofedForwardedClientCertDoesNotSatisfyAnRbacHeaderMatcherUnderSanitize() {
        // an ALLOW policy for requests whose x-forwarded-client-cert names the admin's identity: Envoy's RBAC filter
        // runs after the connection manager removed a plaintext caller's, so the caller cannot write its own way in
        Rbac allowAdmin = new Rbac(new Rbac.Rules(Rbac.Action.ALLOW, Map.of("admin", new Rbac.Policy(
                List.of(new Permission.Any()), List.of(new Principal.Header(new HeaderMatcher("x-forwarded-client-cert",
                        new HeaderMatcher.Value(new StringMatcher.Contains("sa/admin", false)), false, false)))))),
                "", null, "");
        RbacFilter.Chain chain = RbacFilter.Chain.compile(HttpConnectionManager.of("outbound_0.0.0.0_9080", "r",
                List.of(HttpFilter.of("envoy.filters.http.rbac", "envoy.extensions.filters.http.rbac.v3.RBAC")
                        .withRbac(allowAdmin), HttpFilter.of("envoy.filters.http.router", ""))));
        RouterRequest spoofed = RouterRig.get("/x", "x-forwarded-client-cert",
                "URI=spiffe://cluster.local/ns/default/sa/admin").rbac(chain, null);
        RouterRig.Result r = rig.call(rig.router(), spoofed, answering(), rig.clusters());
        assertEquals(403, r.status());
        assertEquals("rbac_access_denied_matched_policy[none]", r.info().responseCodeDetails());
    }
}
