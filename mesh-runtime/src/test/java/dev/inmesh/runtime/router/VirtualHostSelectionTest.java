package dev.inmesh.runtime.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;

import org.junit.jupiter.api.Test;

class VirtualHostSelectionTest {
    static final String DOMAINS = """
            name: r
            virtual_hosts:
            - {name: exact, domains: ["api.example.com"], routes: [{match: {prefix: /}, route: {cluster: exact}}]}
            - {name: suffix-long, domains: ["*.api.example.com"], routes: [{match: {prefix: /}, route: {cluster: s2}}]}
            - {name: suffix, domains: ["*.example.com"], routes: [{match: {prefix: /}, route: {cluster: s1}}]}
            - {name: dash, domains: ["*-bar.foo.com"], routes: [{match: {prefix: /}, route: {cluster: dash}}]}
            - {name: prefix, domains: ["api.*"], routes: [{match: {prefix: /}, route: {cluster: p1}}]}
            - {name: prefix-long, domains: ["api.exam*"], routes: [{match: {prefix: /}, route: {cluster: p2}}]}
            - {name: middle, domains: ["foo.*.com"], routes: [{match: {prefix: /}, route: {cluster: m}}]}
            - {name: stars, domains: ["*.bar.*", "a*b*"], routes: [{match: {prefix: /}, route: {cluster: st}}]}
            - {name: default, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: default}}]}
            """;

    @Test
    void anExactDomainWinsOverEveryWildcard() {
        assertEquals("exact", Routes.vhost(Routes.table(DOMAINS), "api.example.com"));
    }

    @Test
    void domainsMatchWithoutRegardToCase() {
        assertEquals("exact", Routes.vhost(Routes.table(DOMAINS), "API.Example.COM"));
    }

    @Test
    void theLongestSuffixWildcardWins() {
        var t = Routes.table(DOMAINS);
        assertEquals("suffix-long", Routes.vhost(t, "v1.api.example.com"));
        assertEquals("suffix", Routes.vhost(t, "www.example.com"));
    }

    @Test
    void aSuffixWildcardComesBeforeAPrefixWildcard() {
        // api.other.org has no suffix match, so the prefix wildcard api.* applies
        var t = Routes.table(DOMAINS);
        assertEquals("prefix", Routes.vhost(t, "api.other.org"));
        assertEquals("suffix", Routes.vhost(t, "api.x.example.com"));
    }

    @Test
    void theLongestPrefixWildcardWins() {
        assertEquals("prefix-long", Routes.vhost(Routes.table(DOMAINS), "api.examples.org"));
    }

    @Test
    void aWildcardNeverMatchesAnEmptyPart() {
        var t = Routes.table(DOMAINS);
        assertEquals("dash", Routes.vhost(t, "baz-bar.foo.com"));
        assertEquals("default", Routes.vhost(t, "-bar.foo.com"));
        assertEquals("default", Routes.vhost(t, ".example.com"));
        assertEquals("default", Routes.vhost(t, "api."));
    }

    /**
     * As Envoy's RouteMatcher (source/common/router/config_impl.cc): a leading {@code *} makes a suffix wildcard,
     * else a trailing one a prefix wildcard; any other {@code *} is a character of the name.
     */
    @Test
    void aStarInsideADomainIsACharacterOfAnExactName() {
        var t = Routes.table(DOMAINS);
        assertEquals("middle", Routes.vhost(t, "FOO.*.com"));
        assertEquals("default", Routes.vhost(t, "foo.x.com"));
        assertEquals("stars", Routes.vhost(t, "x.bar.*"), "a suffix wildcard: .bar.*");
        assertEquals("default", Routes.vhost(t, "x.bar.com"));
        assertEquals("stars", Routes.vhost(t, "a*bc"), "a prefix wildcard: a*b");
        assertEquals("default", Routes.vhost(t, "axbc"));
    }

    @Test
    void theStarVirtualHostTakesEverythingElse() {
        assertEquals("default", Routes.vhost(Routes.table(DOMAINS), "other.org"));
    }

    @Test
    void withoutAStarVirtualHostAnUnknownHostHasNoRoute() {
        var t = Routes.table("""
                name: r
                virtual_hosts:
                - {name: a, domains: ["a"], routes: [{match: {prefix: /}, route: {cluster: a}}]}
                """);
        var res = t.route(Routes.req("b", "/"), 0);
        assertInstanceOf(RouteResult.NoRoute.class, res);
        assertNull(res.virtualHost());
    }

    @Test
    void thePortInHostIsComparedVerbatimByDefault() {
        var t = Routes.table("""
                name: r
                virtual_hosts:
                - {name: a, domains: ["reviews"], routes: [{match: {prefix: /}, route: {cluster: a}}]}
                - {name: p, domains: ["reviews:9080"], routes: [{match: {prefix: /}, route: {cluster: p}}]}
                """);
        assertEquals("p", Routes.vhost(t, "reviews:9080"));
        assertEquals("a", Routes.vhost(t, "reviews"));
        assertNull(Routes.vhost(t, "reviews:80"));
    }

    @Test
    void ignorePortInHostMatchingDropsThePort() {
        var t = Routes.table("""
                name: r
                ignore_port_in_host_matching: true
                virtual_hosts:
                - {name: a, domains: ["reviews"], routes: [{match: {prefix: /}, route: {cluster: a}}]}
                - {name: v6, domains: ["[::1]"], routes: [{match: {prefix: /}, route: {cluster: v6}}]}
                """);
        assertEquals("a", Routes.vhost(t, "reviews:9080"));
        assertEquals("v6", Routes.vhost(t, "[::1]:9080"));
        assertEquals("v6", Routes.vhost(t, "[::1]"));
        // as Envoy: whatever follows the last colon is the port, even none or not a number
        assertEquals("a", Routes.vhost(t, "reviews:"));
        assertEquals("a", Routes.vhost(t, "Reviews:http"));
        assertEquals("v6", Routes.vhost(t, "[::1]:"));
    }

    @Test
    void noMatchingRouteInTheVirtualHostIsNoRoute() {
        var t = Routes.table("""
                name: r
                virtual_hosts:
                - {name: a, domains: ["*"], routes: [{match: {prefix: /api}, route: {cluster: a}}]}
                """);
        var res = t.route(Routes.req("x", "/web"), 0);
        assertInstanceOf(RouteResult.NoRoute.class, res);
        assertEquals("a", res.virtualHost().name());
    }

    @Test
    void manyVirtualHostsAreFoundByIndex() {
        StringBuilder sb = new StringBuilder("name: r\nvirtual_hosts:\n");
        for (int i = 0; i < 2000; i++) {
            sb.append("- {name: vh").append(i).append(", domains: [\"svc").append(i)
                    .append(".ns.svc.cluster.local\", \"*.w").append(i).append(".io\"], routes: [{match: {prefix: /},"
                            + " route: {cluster: c").append(i).append("}}]}\n");
        }
        var t = Routes.table(sb.toString());
        assertEquals("vh1234", Routes.vhost(t, "svc1234.ns.svc.cluster.local"));
        assertEquals("vh77", Routes.vhost(t, "x.w77.io"));
    }
}
