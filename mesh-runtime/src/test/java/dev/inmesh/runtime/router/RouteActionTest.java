package dev.inmesh.runtime.router;

import static dev.inmesh.runtime.router.Routes.cluster;
import static dev.inmesh.runtime.router.Routes.req;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

class RouteActionTest {

    private static RouteTable one(String route) {
        return routes(route);
    }

    /** A table of one virtual host for any Host with {@code routes} (flow YAML maps), in order. */
    private static RouteTable routes(String... routes) {
        return Routes.table("name: r\nvirtual_hosts:\n- name: vh\n  domains: [\"*\"]\n  routes:\n  - "
                + String.join("\n  - ", routes) + "\n");
    }

    @Test
    void weightedClustersPickByRandomModTotalInListOrder() {
        var t = one("{match: {prefix: /}, route: {weighted_clusters: {clusters: [{name: a, weight: 10}, "
                + "{name: zero, weight: 0}, {name: b, weight: 30}]}}}");
        assertEquals("a", cluster(t, req("h", "/"), 0));
        assertEquals("a", cluster(t, req("h", "/"), 9));
        assertEquals("b", cluster(t, req("h", "/"), 10));
        assertEquals("b", cluster(t, req("h", "/"), 39));
        assertEquals("a", cluster(t, req("h", "/"), 40));
    }

    @Test
    void aTotalWeightOtherThanTheSumOfTheWeightsIsIgnoredAndTheSumDecides() {
        var t = one("{match: {prefix: /}, route: {weighted_clusters: {total_weight: 100, clusters: [{name: v1, "
                + "weight: 50}, {name: v3, weight: 40}]}}}");
        assertEquals("v1", cluster(t, req("h", "/"), 49));
        assertEquals("v3", cluster(t, req("h", "/"), 89));
        assertEquals("v1", cluster(t, req("h", "/"), 90), "90 % 90: the sum, not total_weight, is the modulus");
    }

    @Test
    void aClusterOfWeightZeroIsNeverPicked() {
        var t = one("{match: {prefix: /}, route: {weighted_clusters: {clusters: [{name: zero, weight: 0}, "
                + "{name: a, weight: 1}]}}}");
        Map<String, Integer> counts = new HashMap<>();
        for (long r = 0; r < 100; r++) {
            counts.merge(cluster(t, req("h", "/"), r), 1, Integer::sum);
        }
        assertEquals(Map.of("a", 100), counts);
    }

    @Test
    void weightedSplitHoldsItsProportionsOverAFullCycle() {
        var t = one("{match: {prefix: /}, route: {weighted_clusters: {clusters: [{name: v1, weight: 80}, "
                + "{name: v3, weight: 20}]}}}");
        Map<String, Integer> counts = new HashMap<>();
        for (long r = 0; r < 1000; r++) {
            counts.merge(cluster(t, req("h", "/"), r), 1, Integer::sum);
        }
        assertEquals(800, counts.get("v1"));
        assertEquals(200, counts.get("v3"));
    }

    @Test
    void clusterHeaderNamesTheClusterAndItsAbsenceLeavesNone() {
        var t = one("{match: {prefix: /}, route: {cluster_header: x-cluster}}");
        assertEquals("blue", cluster(t, req("h", "/").with("x-cluster", "blue")));
        var res = (RouteResult.Forward) t.route(req("h", "/"), 0);
        assertEquals("", res.cluster());
    }

    @Test
    void aClusterHeaderSentTwiceNamesTheClusterByItsFirstValueAsEnvoyReadsIt() {
        var t = one("{match: {prefix: /}, route: {cluster_header: x-cluster}}");
        assertEquals("blue", cluster(t, req("h", "/").with("x-cluster", "blue").with("X-Cluster", "green")));
        var w = one("{match: {prefix: /}, route: {weighted_clusters: {clusters: [{cluster_header: x-cluster, "
                + "weight: 1}]}}}");
        assertEquals("blue", cluster(w, req("h", "/").with("x-cluster", "blue").with("x-cluster", "green")));
        // as the router gets it (the in-JVM client, mesh.inbound, the proxy): a Vert.x header map
        var headers = io.vertx.core.MultiMap.caseInsensitiveMultiMap().add("x-cluster", "blue")
                .add("x-cluster", "green");
        var routed = new RouterRequest(dev.inmesh.runtime.stats.StreamInfo.Direction.OUTBOUND,
                io.vertx.core.http.HttpMethod.GET, "/", "h", "http", headers, null, "10.0.0.2:41000",
                "10.0.0.1:9080", null, "HTTP/1.1");
        assertEquals("blue", cluster(t, routed));
    }

    @Test
    void prefixRewriteReplacesTheMatchedPrefixAndKeepsTheQuery() {
        var t = one("{match: {prefix: /old/}, route: {cluster: c, prefix_rewrite: /new/}}");
        var f = (RouteResult.Forward) t.route(req("h", "/old/a/b?x=1&y=2"), 0);
        assertEquals("/new/a/b?x=1&y=2", f.rewrittenPath());
    }

    @Test
    void prefixRewriteOnAnExactPathReplacesTheWholePath() {
        var t = one("{match: {path: /exact}, route: {cluster: c, prefix_rewrite: /other}}");
        assertEquals("/other?q", ((RouteResult.Forward) t.route(req("h", "/exact?q"), 0)).rewrittenPath());
    }

    @Test
    void regexRewriteAppliesToThePathAndKeepsTheQuery() {
        var t = one("{match: {prefix: /}, route: {cluster: c, regex_rewrite: {pattern: {regex: \"^/service/([^/]+)(/.*)$\"}, "
                + "substitution: \"\\\\2/instance/\\\\1\"}}}");
        var f = (RouteResult.Forward) t.route(req("h", "/service/foo/v1/api?x=y"), 0);
        assertEquals("/v1/api/instance/foo?x=y", f.rewrittenPath());
    }

    @Test
    void aRegexRewriteGroupIsOneDigitAndOneBeyondThePatternsGroupsLeavesThePathAsEnvoysRe2Does() {
        // \\12 is group 1 then a literal 2, even when the pattern has twelve groups
        var t = one("{match: {prefix: /}, route: {cluster: c, regex_rewrite: {pattern: {regex: "
                + "\"^/(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)(l)$\"}, substitution: \"/\\\\12\"}}}");
        assertEquals("/a2?q", ((RouteResult.Forward) t.route(req("h", "/abcdefghijkl?q"), 0)).rewrittenPath());
        // a group the pattern does not have: RE2 replaces nothing, the path goes on as it came
        var beyond = one("{match: {prefix: /}, route: {cluster: c, regex_rewrite: {pattern: {regex: "
                + "\"^/(a)(b)$\"}, substitution: \"/\\\\3\"}}}");
        assertEquals("/ab?q", ((RouteResult.Forward) beyond.route(req("h", "/ab?q"), 0)).rewrittenPath());
    }

    @Test
    void aRegexRewriteThatLeavesNoPathLeavesThePathAsItCameAsEnvoysDoes() {
        // Envoy's rewritePathByPrefixOrRegex: an empty result is a rewrite that failed, and the path is not touched
        var t = one("{match: {prefix: /rre}, route: {cluster: c, regex_rewrite: {pattern: {regex: \"^.*$\"}, "
                + "substitution: \"\"}}}");
        var f = (RouteResult.Forward) t.route(req("h", "/rre/x?q=1"), 0);
        assertNull(f.rewrittenPath());
        SimpleHeaders h = new SimpleHeaders();
        h.set(":path", "/rre/x?q=1");
        HeaderMutator.finalizeRequest(f, t, h, h.pathAndHost());
        assertEquals("/rre/x?q=1", h.first(":path"));
        assertNull(h.first("x-envoy-original-path"), "no rewrite, no original path");
    }

    @Test
    void aRouteWithoutRewriteLeavesThePathAlone() {
        var t = one("{match: {prefix: /}, route: {cluster: c}}");
        assertNull(((RouteResult.Forward) t.route(req("h", "/a"), 0)).rewrittenPath());
    }

    @Test
    void rewritesSetTheOriginalPathHeaderAndHostRewriteLiteralSetsHost() {
        var t = one("{match: {prefix: /a}, route: {cluster: c, prefix_rewrite: /b, host_rewrite_literal: up.internal}}");
        SimpleHeaders h = new SimpleHeaders();
        h.set(":path", "/a/1");
        h.set(":authority", "front");
        var f = (RouteResult.Forward) t.route(req("front", "/a/1"), 0);
        HeaderMutator.finalizeRequest(f, t, h, h.pathAndHost());
        assertEquals("/b/1", h.first(":path"));
        assertEquals("up.internal", h.first(":authority"));
        assertEquals("/a/1", h.first("x-envoy-original-path"));
    }

    @Test
    void headerMutationsApplyFromRouteToRouteConfigurationSoTheLeastSpecificOverwriteWins() {
        var t = Routes.table("""
                name: r
                request_headers_to_add: [{header: {key: x-level, value: config}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}]
                request_headers_to_remove: [x-secret]
                virtual_hosts:
                - name: vh
                  domains: ["*"]
                  request_headers_to_add: [{header: {key: x-level, value: vhost}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}]
                  routes:
                  - match: {prefix: /}
                    route: {cluster: c}
                    request_headers_to_add:
                    - {header: {key: x-level, value: route}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
                    - {header: {key: x-added, value: one}}
                    - {header: {key: x-added, value: two}}
                    - {header: {key: x-kept, value: new}, append_action: ADD_IF_ABSENT}
                    - {header: {key: x-only-if, value: new}, append_action: OVERWRITE_IF_EXISTS}
                    response_headers_to_add: [{header: {key: x-resp, value: r}}]
                """);
        SimpleHeaders h = new SimpleHeaders();
        h.set("x-secret", "s");
        h.set("x-kept", "old");
        var f = (RouteResult.Forward) t.route(req("h", "/"), 0);
        HeaderMutator.finalizeRequest(f, t, h, h.pathAndHost());
        assertEquals("config", h.joined("x-level"));
        assertEquals("one,two", h.joined("x-added"));
        assertEquals("old", h.joined("x-kept"));
        assertNull(h.joined("x-only-if"));
        assertNull(h.joined("x-secret"));
        SimpleHeaders resp = new SimpleHeaders();
        HeaderMutator.finalizeResponse(f, t, resp);
        assertEquals("r", resp.joined("x-resp"));
    }

    @Test
    void mostSpecificHeaderMutationsWinsLetsTheRouteOverwriteTheVirtualHostTheConfigurationAndTheWeightedCluster() {
        var t = Routes.table("""
                name: r
                most_specific_header_mutations_wins: true
                request_headers_to_add: [{header: {key: x-level, value: config}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}]
                response_headers_to_add: [{header: {key: x-level, value: config}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}]
                virtual_hosts:
                - name: vh
                  domains: ["*"]
                  request_headers_to_add:
                  - {header: {key: x-level, value: vhost}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
                  - {header: {key: x-vhost, value: vhost}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
                  response_headers_to_add: [{header: {key: x-level, value: vhost}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}]
                  routes:
                  - match: {prefix: /}
                    route:
                      weighted_clusters:
                        clusters:
                        - name: c
                          weight: 1
                          request_headers_to_add:
                          - {header: {key: x-level, value: weighted}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
                          - {header: {key: x-vhost, value: weighted}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
                          response_headers_to_add:
                          - {header: {key: x-level, value: weighted}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
                    request_headers_to_add: [{header: {key: x-level, value: route}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}]
                    response_headers_to_add: [{header: {key: x-level, value: route}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}]
                """);
        SimpleHeaders h = new SimpleHeaders();
        var f = (RouteResult.Forward) t.route(req("h", "/"), 0);
        HeaderMutator.finalizeRequest(f, t, h, h.pathAndHost());
        assertEquals("route", h.joined("x-level"));
        assertEquals("vhost", h.joined("x-vhost"), "as Envoy's: the weighted cluster's rules first, whatever the order");
        SimpleHeaders resp = new SimpleHeaders();
        HeaderMutator.finalizeResponse(f, t, resp);
        assertEquals("route", resp.joined("x-level"));
    }

    @Test
    void aRedirectKeepsTheQueryUnlessStripped() {
        var t = routes("{match: {prefix: /keep}, redirect: {path_redirect: /kept}}",
                "{match: {prefix: /strip}, redirect: {path_redirect: /stripped, strip_query: true}}",
                "{match: {prefix: /own}, redirect: {path_redirect: \"/own?mine=1\", strip_query: true}}",
                "{match: {prefix: /pre/}, redirect: {prefix_rewrite: /post/, response_code: PERMANENT_REDIRECT}}",
                "{match: {prefix: /host}, redirect: {host_redirect: other.example, port_redirect: 8443, "
                        + "scheme_redirect: https}}");
        assertEquals("http://h:8080/kept?a=1", location(t, "h:8080", "/keep?a=1"));
        assertEquals("http://h/stripped", location(t, "h", "/strip?a=1"));
        assertEquals("http://h/own?mine=1", location(t, "h", "/own?a=1"));
        assertEquals("http://h/post/x?q", location(t, "h", "/pre/x?q"));
        assertEquals(308, ((RouteResult.Redirect) t.route(req("h", "/pre/x"), 0)).status());
        assertEquals("https://other.example:8443/host", location(t, "h:80", "/host"));
        assertEquals(301, ((RouteResult.Redirect) t.route(req("h", "/keep"), 0)).status());
    }

    @Test
    void aRedirectWhoseRegexRewriteLeavesNoPathKeepsTheRequestsPath() {
        // as Envoy's finalizePathHeaderForRedirect: an empty rewrite leaves the path, whose query strip_query may drop
        String emptied = "regex_rewrite: {pattern: {regex: \"^.*$\"}, substitution: \"\"}";
        var t = routes("{match: {prefix: /rgxempty}, redirect: {" + emptied + "}}",
                "{match: {prefix: /stripped}, redirect: {" + emptied + ", strip_query: true}}",
                "{match: {prefix: /rgx}, redirect: {regex_rewrite: {pattern: {regex: \"^/rgx/(.*)$\"}, "
                        + "substitution: \"\\\\1\"}}}");
        assertEquals("http://h/rgxempty?q=1", location(t, "h", "/rgxempty?q=1"));
        assertEquals("http://h/stripped/a", location(t, "h", "/stripped/a?q=1"));
        // a result without its leading slash gets one, as Envoy's newUri gives it
        assertEquals("http://h/a?q=1", location(t, "h", "/rgx/a?q=1"));
    }

    private static String location(RouteTable t, String authority, String path) {
        return ((RouteResult.Redirect) t.route(req(authority, path), 0)).location();
    }

    @Test
    void aDirectResponseAnswersWithItsStatusAndBody() {
        var t = one("{match: {prefix: /}, direct_response: {status: 418, body: {inline_string: teapot}}}");
        var d = assertInstanceOf(RouteResult.DirectResponse.class, t.route(req("h", "/"), 0));
        assertEquals(418, d.status());
        assertEquals("teapot", d.body());
        assertNull(d.location());
    }

    @Test
    void aDirectResponseOf201Or3xxHasTheRequestsUrlAsLocation() {
        assertEquals("http://h:8080/made?x=1", directResponseLocation(201, "h:8080", "/made?x=1"));
        assertEquals("http://h/moved/a", directResponseLocation(307, "h", "/moved/a"));
        assertNull(directResponseLocation(200, "h", "/ok"));
    }

    private static String directResponseLocation(int status, String authority, String path) {
        var t = one("{match: {prefix: /}, direct_response: {status: " + status + "}}");
        return ((RouteResult.DirectResponse) t.route(req(authority, path), 0)).location();
    }
}
