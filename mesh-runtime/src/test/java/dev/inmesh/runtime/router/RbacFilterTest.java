package dev.inmesh.runtime.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.core.CidrRange;
import dev.inmesh.api.config.core.StringMatcher;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.rbac.Permission;
import dev.inmesh.api.config.rbac.Principal;
import dev.inmesh.api.config.rbac.Rbac;
import dev.inmesh.api.config.route.HeaderMatcher;
import dev.inmesh.runtime.stats.DownstreamStats;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Envoy's RBAC filter, compiled: each permission and principal kind against a request and its connection, and the
 * ALLOW, DENY, LOG and shadow semantics, with the policy that decided named as Envoy names it.
 */
class RbacFilterTest {
    private static final String PRODUCTPAGE = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage";

    /** A request as route matching reads it: method, path with query, authority, and headers. */
    private record Req(String method, String path, Map<String, String> headers) implements RouteRequest {
        @Override
        public String authority() {
            return "reviews:9080";
        }

        @Override
        public String scheme() {
            return "http";
        }

        @Override
        public String header(String name) {
            return switch (name) {
                case ":method" -> method;
                case ":path" -> path;
                case ":authority" -> authority();
                default -> headers.get(name);
            };
        }
    }

    private static Map<String, String> headers(String... pairs) {
        Map<String, String> h = new LinkedHashMap<>();
        for (int i = 0; i + 1 < pairs.length; i += 2) {
            h.put(pairs[i], pairs[i + 1]);
        }
        return h;
    }

    /** GET {@code path} from 10.1.0.7 to 10.1.0.9:9080, plaintext, with {@code headers}. */
    private static RbacFilter.Subject get(String path, String... headers) {
        return new RbacFilter.Subject(new Req("GET", path, headers(headers)), "10.1.0.9", 9080, "10.1.0.7", null,
                () -> null);
    }

    private static RbacFilter.Subject withPeer(RbacFilter.PeerIdentity peer) {
        return new RbacFilter.Subject(new Req("GET", "/", Map.of()), "10.1.0.9", 9080, "10.1.0.7",
                "outbound_.9080_._.reviews.default.svc.cluster.local", () -> peer);
    }

    private static Rbac rules(Rbac.Action action, Map<String, Rbac.Policy> policies) {
        return new Rbac(new Rbac.Rules(action, policies), "", null, "");
    }

    private static Rbac.Policy policy(Permission permission, Principal principal) {
        return new Rbac.Policy(List.of(permission), List.of(principal));
    }

    /** Whether an ALLOW filter of one policy with {@code permission} (any principal) lets the request through. */
    private static boolean permits(Permission permission, RbacFilter.Subject s) {
        return RbacFilter.compile("rbac", rules(Rbac.Action.ALLOW, Map.of("p", policy(permission,
                new Principal.Any())))).check(s, null) == null;
    }

    /** Whether an ALLOW filter of one policy with {@code principal} (any permission) lets the request through. */
    private static boolean admits(Principal principal, RbacFilter.Subject s) {
        return RbacFilter.compile("rbac", rules(Rbac.Action.ALLOW, Map.of("p", policy(new Permission.Any(),
                principal)))).check(s, null) == null;
    }

    private static final String ROUTER = """
            - name: envoy.filters.http.router
              typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
            """;

    /** The statistics of an inbound connection manager {@code inbound_0.0.0.0_9080}, in {@code registry}. */
    private static DownstreamStats stats(SimpleMeterRegistry registry) {
        return MeshMetrics.create(registry, WorkloadInfo.UNKNOWN).connectionManager(
                HttpConnectionManager.of("inbound_0.0.0.0_9080", "r", List.of()));
    }

    /** The RBAC filters of a connection manager whose {@code http_filters} are {@code rbacFilters}, then a router. */
    private static RbacFilter.Chain chain(String rbacFilters) throws EnvoyConfigReader.ConfigReadException {
        var bundle = EnvoyConfigReader.read("""
                name: l
                address: {socket_address: {address: 0.0.0.0, port_value: 9080}}
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: inbound_0.0.0.0_9080
                      rds: {route_config_name: r}
                      http_filters:
                """ + (rbacFilters + ROUTER).indent(8));
        return RbacFilter.Chain.compile((HttpConnectionManager) bundle.listeners().get("l").filterChains().get(0)
                .filter());
    }

    @Test
    void anUnexpectedFailureInsideAChainWithAnExternalAuthorizerRefusesTheRequestNeverLetsItThrough()
            throws Exception {
        RbacFilter.Chain chain = chain(IstioExtAuthz.SHADOW + IstioExtAuthz.http("0.5s", false));
        RouteRequest broken = new RouteRequest() {
            @Override
            public String authority() {
                return "reviews:9080";
            }

            @Override
            public String path() {
                throw new IllegalStateException("broken request");
            }

            @Override
            public String method() {
                return "GET";
            }

            @Override
            public String scheme() {
                return "http";
            }

            @Override
            public String header(String lowerCaseName) {
                throw new IllegalStateException("broken request");
            }
        };
        var verdict = chain.authorize(new RbacFilter.Subject(broken, "10.1.0.9", 9080, "10.1.0.7", null, () -> null),
                new MultiMapHeaders(io.vertx.core.MultiMap.caseInsensitiveMultiMap()), names -> { }, null,
                new RouteResult.DirectResponse(null, null, 200, "", null), stats(new SimpleMeterRegistry()), null);
        assertTrue(verdict.succeeded());
        RbacFilter.Denial denial = verdict.result().denial();
        assertEquals(403, denial.status());
        assertEquals("ext_authz_error", denial.details());
        assertTrue(denial.external(), "UAEX");
    }

    private static HeaderMatcher exact(String name, String value) {
        return new HeaderMatcher(name, new HeaderMatcher.Value(new StringMatcher.Exact(value, false)), false, false);
    }

    @Test
    void headerPermissionsReadPseudoHeadersAndJoinRepeatedValuesAsTheRoutesMatchers() {
        assertTrue(permits(new Permission.Header(exact(":method", "GET")), get("/")));
        assertFalse(permits(new Permission.Header(exact(":method", "POST")), get("/")));
        // :path is the whole path, query included
        assertTrue(permits(new Permission.Header(new HeaderMatcher(":path", new HeaderMatcher.Value(
                new StringMatcher.Suffix("?x=1", false)), false, false)), get("/a?x=1")));
        assertTrue(permits(new Permission.Header(exact("x-a", "1,2")), get("/", "x-a", "1,2")));
        // a missing header matches only present_match: false, as a route's header matcher
        assertFalse(permits(new Permission.Header(exact("x-missing", "")), get("/")));
        assertTrue(permits(new Permission.Header(new HeaderMatcher("x-missing", new HeaderMatcher.Present(false),
                false, false)), get("/")));
    }

    @Test
    void aUrlPathIsThePathWithoutItsQueryOrFragment() {
        Permission p = new Permission.UrlPath(new StringMatcher.Exact("/reviews/0", false));
        assertTrue(permits(p, get("/reviews/0?token=1")));
        assertTrue(permits(p, get("/reviews/0#top")));
        assertFalse(permits(p, get("/reviews/00")));
        assertTrue(admits(new Principal.UrlPath(new StringMatcher.SafeRegex("/reviews/[0-9]+")),
                get("/reviews/12?x")));
    }

    /**
     * Istio's paths with {@code {*}} and {@code {**}} come as Envoy URI templates: {@code *} is one whole segment,
     * {@code **} any rest (empty included), a variable a segment or its own pattern, a suffix ends the last segment;
     * the query and fragment are not part of the path, and the whole path must match.
     */
    @Test
    void aUriTemplatePermissionMatchesThePathWithoutItsQueryAsEnvoysTemplates() {
        Permission oneSegment = new Permission.UriTemplate("/books/*/reviews");
        assertTrue(permits(oneSegment, get("/books/12/reviews?page=2")));
        assertFalse(permits(oneSegment, get("/books/12/13/reviews")), "* is one segment");
        assertFalse(permits(oneSegment, get("/books//reviews")), "* is not empty");
        assertFalse(permits(oneSegment, get("/books/12/reviews/x")), "the whole path matches");
        Permission rest = new Permission.UriTemplate("/static/**");
        assertTrue(permits(rest, get("/static/")));
        assertTrue(permits(rest, get("/static/css/a.css")));
        assertFalse(permits(rest, get("/static")));
        Permission suffix = new Permission.UriTemplate("/img/*.png");
        assertTrue(permits(suffix, get("/img/a.b.png")));
        assertFalse(permits(suffix, get("/img/a.jpg")));
        assertFalse(permits(suffix, get("/img/x/a.png")));
        Permission variables = new Permission.UriTemplate("/{lang}/docs/{rest=v1/**}");
        assertTrue(permits(variables, get("/en/docs/v1/a/b")));
        assertFalse(permits(variables, get("/en/docs/v2/a")));
        Permission trailing = new Permission.UriTemplate("/a/*/");
        assertTrue(permits(trailing, get("/a/b/")));
        assertFalse(permits(trailing, get("/a/b")));
        assertTrue(permits(new Permission.UriTemplate("/v1.0/$(x)+"), get("/v1.0/$(x)+")),
                "literal characters are not regex operators");
        assertFalse(permits(new Permission.UriTemplate("/v1.0/x"), get("/v1a0/x")));
    }

    @Test
    void destinationAddressPortPortRangeAndServerNameAreTheConnections() {
        assertTrue(permits(new Permission.DestinationIp(new CidrRange("10.1.0.0", 16)), get("/")));
        assertFalse(permits(new Permission.DestinationIp(new CidrRange("10.2.0.0", 16)), get("/")));
        assertTrue(permits(new Permission.DestinationPort(9080), get("/")));
        assertFalse(permits(new Permission.DestinationPort(8080), get("/")));
        assertTrue(permits(new Permission.DestinationPortRange(9000, 9081), get("/")));
        assertFalse(permits(new Permission.DestinationPortRange(9000, 9080), get("/")), "the end is excluded");
        Permission sni = new Permission.RequestedServerName(new StringMatcher.Suffix(".svc.cluster.local", false));
        assertTrue(permits(sni, withPeer(null)));
        assertFalse(permits(sni, get("/")), "plaintext: the SNI is empty");
        assertTrue(permits(new Permission.RequestedServerName(new StringMatcher.Exact("", false)), get("/")));
    }

    @Test
    void andOrAndNotCombinePermissionsAndPrincipals() {
        Permission get = new Permission.Header(exact(":method", "GET"));
        Permission reviews = new Permission.UrlPath(new StringMatcher.Prefix("/reviews", false));
        assertTrue(permits(new Permission.And(List.of(get, reviews)), get("/reviews/0")));
        assertFalse(permits(new Permission.And(List.of(get, reviews)), get("/ratings/0")));
        assertTrue(permits(new Permission.Or(List.of(reviews, get)), get("/ratings/0")));
        assertFalse(permits(new Permission.Not(get), get("/")));
        Principal loopback = new Principal.RemoteAddress(Principal.AddressKind.DIRECT_REMOTE_IP,
                new CidrRange("127.0.0.0", 8));
        assertTrue(admits(new Principal.Not(loopback), get("/")));
        assertFalse(admits(new Principal.And(List.of(new Principal.Any(), loopback)), get("/")));
        assertTrue(admits(new Principal.Or(List.of(loopback, new Principal.Any())), get("/")));
        assertTrue(admits(new Principal.Header(exact("x-token", "secret")), get("/", "x-token", "secret")));
    }

    @Test
    void directRemoteIpIsThePeerAndRemoteIpTheLastForwardedAddressAsEnvoyWithoutTrustedHops() {
        Principal direct = new Principal.RemoteAddress(Principal.AddressKind.DIRECT_REMOTE_IP,
                new CidrRange("10.1.0.7", 32));
        Principal source = new Principal.RemoteAddress(Principal.AddressKind.SOURCE_IP, new CidrRange("10.1.0.0",
                24));
        Principal remote = new Principal.RemoteAddress(Principal.AddressKind.REMOTE_IP, new CidrRange("192.0.2.0",
                24));
        RbacFilter.Subject forwarded = get("/", "x-forwarded-for", "203.0.113.1, 192.0.2.44");
        assertTrue(admits(direct, forwarded));
        assertTrue(admits(source, forwarded));
        assertTrue(admits(remote, forwarded));
        assertFalse(admits(remote, get("/")), "without x-forwarded-for it is the peer");
        assertTrue(admits(new Principal.RemoteAddress(Principal.AddressKind.REMOTE_IP, new CidrRange("10.1.0.7",
                32)), get("/", "x-forwarded-for", "not-an-ip")));
    }

    @Test
    void authenticatedMatchesUriSansThenDnsSansThenTheSubjectAndNeverAPeerWithoutACertificate() {
        RbacFilter.PeerIdentity productpage = new RbacFilter.PeerIdentity(List.of(PRODUCTPAGE),
                List.of("productpage.default.svc"), "CN=productpage,O=cluster.local");
        assertTrue(admits(new Principal.Authenticated(new StringMatcher.Exact(PRODUCTPAGE, false)),
                withPeer(productpage)));
        assertTrue(admits(new Principal.Authenticated(new StringMatcher.SafeRegex(".*/ns/default/.*")),
                withPeer(productpage)), "Istio's namespaces");
        assertTrue(admits(new Principal.Authenticated(new StringMatcher.Exact("productpage.default.svc", false)),
                withPeer(productpage)));
        assertTrue(admits(new Principal.Authenticated(new StringMatcher.Prefix("CN=productpage", false)),
                withPeer(new RbacFilter.PeerIdentity(List.of(), List.of(), "CN=productpage,O=cluster.local"))));
        assertFalse(admits(new Principal.Authenticated(new StringMatcher.SafeRegex(".*/ns/other/.*")),
                withPeer(productpage)));
        assertTrue(admits(new Principal.Authenticated(null), withPeer(productpage)));
        assertFalse(admits(new Principal.Authenticated(null), withPeer(null)));
        // as Envoy's: a TLS peer without a certificate is authenticated with no SANs and an empty subject
        RbacFilter.PeerIdentity noCertificate = RbacFilter.PeerIdentity.of(true, null);
        assertEquals(RbacFilter.PeerIdentity.NO_CERTIFICATE, noCertificate);
        assertNull(RbacFilter.PeerIdentity.of(false, null), "no TLS");
        assertTrue(admits(new Principal.Authenticated(null), withPeer(noCertificate)));
        assertTrue(admits(new Principal.Authenticated(new StringMatcher.SafeRegex(".*")), withPeer(noCertificate)));
        assertFalse(admits(new Principal.Authenticated(new StringMatcher.SafeRegex(".+")), withPeer(noCertificate)),
                "Istio's principals: [\"*\"] needs a certificate");
        assertFalse(admits(new Principal.Authenticated(new StringMatcher.SafeRegex(".*")), get("/")),
                "plaintext is never authenticated");
    }

    @Test
    void allowDeniesWhatMatchesNoPolicyDenyWhatMatchesOneAndLogNothing() {
        Map<String, Rbac.Policy> admin = Map.of("admin", policy(new Permission.UrlPath(new StringMatcher.Prefix(
                "/admin", false)), new Principal.Any()));
        RbacFilter allow = RbacFilter.compile("rbac", rules(Rbac.Action.ALLOW, admin));
        assertNull(allow.check(get("/admin/x"), null));
        assertEquals("rbac_access_denied_matched_policy[none]", allow.check(get("/other"), null));
        RbacFilter deny = RbacFilter.compile("rbac", rules(Rbac.Action.DENY, admin));
        assertEquals("rbac_access_denied_matched_policy[admin]", deny.check(get("/admin/x"), null));
        assertNull(deny.check(get("/other"), null));
        RbacFilter log = RbacFilter.compile("rbac", rules(Rbac.Action.LOG, admin));
        assertNull(log.check(get("/admin/x"), null));
        assertNull(log.check(get("/other"), null));
        assertEquals("rbac_access_denied_matched_policy[none]", RbacFilter.compile("rbac",
                rules(Rbac.Action.ALLOW, Map.of())).check(get("/"), null), "ALLOW without policies denies all");
        assertNull(RbacFilter.compile("rbac", Rbac.ALLOW_ALL).check(get("/"), null), "no rules: all allowed");
    }

    @Test
    void theDeniedRequestNamesTheFirstMatchingPolicyByName() {
        Rbac.Policy any = policy(new Permission.Any(), new Principal.Any());
        RbacFilter deny = RbacFilter.compile("rbac", rules(Rbac.Action.DENY, Map.of("b-second", any,
                "a-first", any, "c-third", any)));
        assertEquals("rbac_access_denied_matched_policy[a-first]", deny.check(get("/"), null));
    }

    @Test
    void aPolicyNamesWhitespaceIsAnUnderscoreInTheDetailsAsEnvoyKeepsAnAccessLogLineOneField() {
        Rbac.Policy any = policy(new Permission.Any(), new Principal.Any());
        RbacFilter deny = RbacFilter.compile("rbac", rules(Rbac.Action.DENY, Map.of("deny all\tof\r\nit now",
                any)));
        assertEquals("rbac_access_denied_matched_policy[deny_all_of__it_now]", deny.check(get("/"), null));
        RbacFilter.Network network = RbacFilter.Network.compile(dev.inmesh.api.config.listener.FilterChain.of(null,
                null, dev.inmesh.api.config.listener.TcpProxy.of("tcp",
                        new dev.inmesh.api.config.route.ClusterSpecifier.Named("c"))).withRbac(List.of(
                                new dev.inmesh.api.config.rbac.NetworkRbac("tcp.", rules(Rbac.Action.DENY,
                                        Map.of("no tcp", any))))));
        assertEquals("rbac_access_denied_matched_policy[no_tcp]", network.check(RbacFilter.Subject.connection(
                "10.1.0.9", 9080, "10.1.0.7", null, () -> null), null));
    }

    @Test
    void shadowRulesAreCountedAndNeverDenyAndEnforcedRulesAreCountedUnderTheirPrefixes() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        DownstreamStats stats = stats(registry);
        Map<String, Rbac.Policy> admin = Map.of("admin", policy(new Permission.UrlPath(new StringMatcher.Prefix(
                "/admin", false)), new Principal.Any()));
        RbacFilter shadowOnly = RbacFilter.compile("rbac", new Rbac(null, "", new Rbac.Rules(Rbac.Action.DENY,
                admin), "istio_dry_run_deny_"));
        assertNull(shadowOnly.check(get("/admin"), stats), "a shadow DENY never denies");
        assertNull(shadowOnly.check(get("/other"), stats));
        assertEquals(1, stats.rbac("istio_dry_run_deny_", true).denied());
        assertEquals(1, stats.rbac("istio_dry_run_deny_", true).allowed());
        assertEquals(0, stats.rbac("", false).allowed() + stats.rbac("", false).denied(),
                "no rules: nothing enforced is counted");

        RbacFilter enforced = RbacFilter.compile("rbac", new Rbac(new Rbac.Rules(Rbac.Action.ALLOW, admin), "mine_",
                null, ""));
        enforced.check(get("/admin"), stats);
        enforced.check(get("/other"), stats);
        enforced.check(get("/other"), stats);
        assertEquals(1, stats.rbac("mine_", false).allowed());
        assertEquals(2, stats.rbac("mine_", false).denied());
        assertTrue(registry.find("envoy_http_rbac_mine__denied").tag("http_conn_manager_prefix",
                "inbound_0.0.0.0_9080").meter() != null);
        assertTrue(registry.find("envoy_http_rbac_istio_dry_run_deny__shadow_denied").meter() != null);
    }

    @Test
    void istiosDenyThenAllowFiltersRunInOrderAndARoutesRbacPerRouteReplacesAFilterByName() throws Exception {
        RbacFilter.Chain chain = chain(IstioRbac.DENY_THEN_ALLOW);
        RbacFilter.Subject loopbackWithToken = new RbacFilter.Subject(new Req("GET", "/reviews/0",
                headers("x-token", "secret")), "127.0.0.1", 9080, "127.0.0.1", null, () -> null);
        assertNull(chain.check(loopbackWithToken, null, null, null));
        RbacFilter.Subject admin = new RbacFilter.Subject(new Req("GET", "/admin", headers("x-token", "secret")),
                "127.0.0.1", 9080, "127.0.0.1", null, () -> null);
        assertEquals("rbac_access_denied_matched_policy[ns[default]-policy[deny-admin]-rule[0]]",
                chain.check(admin, null, null, null), "the DENY filter runs first");
        assertEquals("rbac_access_denied_matched_policy[none]", chain.check(get("/reviews/0"), null, null, null));
        assertNull(chain.check(withPeer(new RbacFilter.PeerIdentity(List.of(PRODUCTPAGE), List.of(), "")), null,
                null, null), "productpage's certificate is allowed");

        // per route: /open's RBACPerRoute without rbac allows everything; elsewhere the virtual host's DENY of all
        // replaces both filters (they share one name)
        RouteTable table = RouteTable.compile(EnvoyConfigReader.read(IstioRbac.PER_ROUTE).routes().get("9080"));
        for (String path : List.of("/open", "/reviews/0")) {
            Req r = new Req("GET", path, headers("x-token", "secret"));
            String denied = chain.check(new RbacFilter.Subject(r, "127.0.0.1", 9080, "127.0.0.1", null, () -> null),
                    table, table.route(r, 0), null);
            assertEquals(path.equals("/open") ? null : "rbac_access_denied_matched_policy[all]", denied, path);
        }
    }

    @Test
    void aFilterWhoseConfigAnRbacPerRouteReplacedCountsUnderItsOwnStatPrefixesAsEnvoys() throws Exception {
        DownstreamStats stats = stats(new SimpleMeterRegistry());
        RbacFilter.Chain chain = chain(IstioRbac.DENY_ADMIN);
        // the virtual host's RBACPerRoute (a DENY of all) with stat prefixes and shadow rules of its own
        String perRoute = IstioRbac.PER_ROUTE.replace("      rbac:\n        rules:\n", """
                      rbac:
                        rules_stat_prefix: route_
                        shadow_rules: {action: DENY}
                        shadow_rules_stat_prefix: route_dry_
                        rules:
                """);
        RouteTable table = RouteTable.compile(EnvoyConfigReader.read(perRoute).routes().get("9080"));
        Req r = new Req("GET", "/reviews/0", Map.of());
        assertEquals("rbac_access_denied_matched_policy[all]", chain.check(new RbacFilter.Subject(r, "127.0.0.1",
                9080, "127.0.0.1", null, () -> null), table, table.route(r, 0), stats));
        assertEquals(1, stats.rbac("", false).denied(), "the filter's own (empty) rules_stat_prefix");
        assertEquals(1, stats.rbac("istio_dry_run_allow_", true).allowed(), "the filter's shadow_rules_stat_prefix");
        assertEquals(0, stats.rbac("route_", false).denied());
        assertEquals(0, stats.rbac("route_dry_", true).allowed());
    }
}
