package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.core.CidrRange;
import dev.inmesh.api.config.core.StringMatcher;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.rbac.Permission;
import dev.inmesh.api.config.rbac.Principal;
import dev.inmesh.api.config.rbac.Rbac;
import dev.inmesh.runtime.router.IstioRbac;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Envoy's RBAC HTTP filter config as istiod writes it for AuthorizationPolicies: its filters are taken (where the
 * listener was refused by the filter's name), its policies read into records, its per-route form parsed; what
 * Inmesh cannot evaluate is refused by name with its field path.
 */
class RbacParserTest {

    private static String listener(String filters) {
        return EnvoyValidationTest.listenerWithHttpFilters(filters + EnvoyValidationTest.ROUTER);
    }

    private static HttpConnectionManager hcm(String listener) throws EnvoyConfigReader.ConfigReadException {
        return (HttpConnectionManager) EnvoyConfigReader.read(listener).listeners().get("0.0.0.0_9080")
                .filterChains().get(0).filter();
    }

    static String refused(String text) {
        return assertThrows(EnvoyConfigReader.ConfigReadException.class, () -> EnvoyConfigReader.read(text))
                .getMessage();
    }

    /** One RBAC filter whose {@code rules} has one policy with the given permission and principal (flow YAML). */
    static String policy(String permission, String principal) {
        return """
                - name: envoy.filters.http.rbac
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
                    rules:
                      policies:
                        p:
                          permissions: [%s]
                          principals: [%s]
                """.formatted(permission, principal);
    }

    @Test
    void istiosDenyAndAllowFiltersAreTakenInOrderWithTheirPoliciesWhereTheListenerWasRefused() throws Exception {
        HttpConnectionManager h = hcm(listener(IstioRbac.DENY_THEN_ALLOW));
        List<HttpFilter> rbac = h.rbacFilters();
        assertEquals(2, rbac.size());
        assertEquals("envoy.filters.http.rbac", rbac.get(0).name());
        Rbac deny = rbac.get(0).rbac();
        assertEquals(Rbac.Action.DENY, deny.rules().action());
        assertEquals("istio_dry_run_allow_", deny.shadowRulesStatPrefix());
        assertNull(deny.shadowRules());
        Rbac.Policy admin = deny.rules().policies().get("ns[default]-policy[deny-admin]-rule[0]");
        var and = assertInstanceOf(Permission.And.class, admin.permissions().get(0));
        var or = assertInstanceOf(Permission.Or.class, and.rules().get(0));
        assertEquals(new Permission.UrlPath(new StringMatcher.Prefix("/admin", false)), or.rules().get(0));
        assertEquals(new Principal.And(List.of(new Principal.Any())), admin.principals().get(0));

        Rbac allow = rbac.get(1).rbac();
        assertEquals(Rbac.Action.ALLOW, allow.rules().action(), "ALLOW is the default action, which istiod omits");
        // kept in name order: the order in which the policy that decided is named
        assertEquals(List.of("ns[default]-policy[allow-loopback-token]-rule[0]",
                "ns[default]-policy[allow-productpage]-rule[0]"), List.copyOf(allow.rules().policies().keySet()));
        Principal productpage = allow.rules().policies().get("ns[default]-policy[allow-productpage]-rule[0]")
                .principals().get(0);
        assertEquals(new Principal.And(List.of(new Principal.Or(List.of(new Principal.Authenticated(
                new StringMatcher.Exact("spiffe://cluster.local/ns/default/sa/bookinfo-productpage", false)))))),
                productpage);
        Principal loopback = allow.rules().policies().get("ns[default]-policy[allow-loopback-token]-rule[0]")
                .principals().get(0);
        var ids = assertInstanceOf(Principal.And.class, loopback).ids();
        assertEquals(new Principal.Or(List.of(new Principal.RemoteAddress(Principal.AddressKind.DIRECT_REMOTE_IP,
                new CidrRange("127.0.0.0", 8)))), ids.get(0));
        var header = assertInstanceOf(Principal.Header.class,
                assertInstanceOf(Principal.Or.class, ids.get(1)).ids().get(0));
        assertEquals("x-token", header.header().name());
    }

    @Test
    void everyPermissionAndPrincipalKindIstioWritesIsRead() throws Exception {
        Rbac r = hcm(listener(policy("""
                {and_rules: {rules: [{any: true}, {not_rule: {destination_port: 8080}},
                  {destination_port_range: {start: 9000, end: 9100}}, {destination_ip: {address_prefix: 10.0.0.0,
                  prefix_len: 8}}, {requested_server_name: {suffix: .svc.cluster.local}},
                  {header: {name: ":path", string_match: {prefix: /api}}}]}}""", """
                {or_ids: {ids: [{source_ip: {address_prefix: 10.1.0.0, prefix_len: 16}},
                  {remote_ip: {address_prefix: 192.0.2.0, prefix_len: 24}}, {not_id: {any: true}},
                  {authenticated: {}}, {url_path: {path: {safe_regex: {regex: "/v[0-9]+/.*"}}}},
                  {authenticated: {principal_name: {safe_regex: {regex: ".*/ns/default/.*"}}}}]}}"""))).rbacFilters()
                .get(0).rbac();
        Rbac.Policy p = r.rules().policies().get("p");
        List<Permission> rules = ((Permission.And) p.permissions().get(0)).rules();
        assertEquals(new Permission.Any(), rules.get(0));
        assertEquals(new Permission.Not(new Permission.DestinationPort(8080)), rules.get(1));
        assertEquals(new Permission.DestinationPortRange(9000, 9100), rules.get(2));
        assertEquals(new Permission.DestinationIp(new CidrRange("10.0.0.0", 8)), rules.get(3));
        assertEquals(new Permission.RequestedServerName(new StringMatcher.Suffix(".svc.cluster.local", false)),
                rules.get(4));
        assertEquals(":path", ((Permission.Header) rules.get(5)).header().name());
        List<Principal> ids = ((Principal.Or) p.principals().get(0)).ids();
        assertEquals(new Principal.RemoteAddress(Principal.AddressKind.SOURCE_IP, new CidrRange("10.1.0.0", 16)),
                ids.get(0));
        assertEquals(new Principal.RemoteAddress(Principal.AddressKind.REMOTE_IP, new CidrRange("192.0.2.0", 24)),
                ids.get(1));
        assertEquals(new Principal.Not(new Principal.Any()), ids.get(2));
        assertEquals(new Principal.Authenticated(null), ids.get(3), "no principal_name: any authenticated peer");
        assertEquals(new Principal.UrlPath(new StringMatcher.SafeRegex("/v[0-9]+/.*")), ids.get(4));
        assertEquals(new Principal.Authenticated(new StringMatcher.SafeRegex(".*/ns/default/.*")), ids.get(5));
    }

    @Test
    void noRulesShadowRulesAndTheirStatPrefixesAreRead() throws Exception {
        Rbac r = hcm(listener("""
                - name: envoy.filters.http.rbac
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
                    rules_stat_prefix: enforced_
                    shadow_rules:
                      action: DENY
                      policies:
                        dry: {permissions: [{any: true}], principals: [{any: true}]}
                    shadow_rules_stat_prefix: istio_dry_run_deny_
                - name: envoy.filters.http.rbac
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
                    rules: {action: LOG}
                """)).rbacFilters().get(0).rbac();
        assertNull(r.rules(), "no rules: every request is allowed");
        assertEquals("enforced_", r.rulesStatPrefix());
        assertEquals(Rbac.Action.DENY, r.shadowRules().action());
        assertEquals("istio_dry_run_deny_", r.shadowRulesStatPrefix());
    }

    @Test
    void whatInmeshCannotEvaluateIsRefusedByNameWithItsFieldPath() {
        String at = "http_filters[0].typed_config.";
        // the JWT filter's metadata is read (JwtAuthnParserTest); another filter's is not kept
        String m = refused(listener(policy("{any: true}", "{metadata: {filter: istio_authn, "
                + "path: [{key: source.principal}], value: {string_match: {exact: x}}}}")));
        assertTrue(m.contains(at + "rules.policies[p].principals[0].metadata.filter: \"istio_authn\" is not "
                + "supported by Inmesh"), m);
        m = refused(listener(policy("{any: true}", "{filter_state: {key: io.istio.peer_principal, "
                + "string_match: {exact: x}}}")));
        assertTrue(m.contains(at + "rules.policies[p].principals[0].filter_state: not supported"), m);
        m = refused(listener(policy("{and_rules: {rules: [{metadata: {filter: f, path: [{key: k}], value: "
                + "{string_match: {exact: x}}}}]}}", "{any: true}")));
        assertTrue(m.contains(at + "rules.policies[p].permissions[0].and_rules.rules[0].metadata: not "
                + "supported"), m);
        m = refused(listener(policy("{any: true}", "{any: true}").replace("          principals:",
                "          condition: {const_expr: {bool_value: true}}\n          principals:")));
        assertTrue(m.contains(at + "rules.policies[p].condition: not supported"), m);
        m = refused(listener(policy("{any: false}", "{any: true}")));
        assertTrue(m.contains(at + "rules.policies[p].permissions[0].any: false (expected: true)"), m);
        m = refused(listener(policy("{any: true}", "{any: true}").replace("      policies:",
                "      audit_logging_options: {audit_condition: ON_DENY}\n      policies:")));
        assertTrue(m.contains(at + "rules.audit_logging_options: not supported"), m);
        m = refused(listener("""
                - name: envoy.filters.http.rbac
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
                    matcher:
                      matcher_list:
                        matchers:
                        - predicate: {single_predicate: {input: {name: i, typed_config: {"@type": type.googleapis.com/envoy.type.matcher.v3.HttpRequestHeaderMatchInput, header_name: x}}, value_match: {exact: y}}}
                          on_match: {action: {name: a, typed_config: {"@type": type.googleapis.com/envoy.config.rbac.v3.Action, name: deny, action: DENY}}}
                """));
        assertTrue(m.contains(at + "matcher: not supported"), m);
        m = refused(listener(policy("{any: true}", "{any: true}").replace("    rules:",
                "    track_per_rule_stats: true\n    rules:")));
        assertTrue(m.contains(at + "track_per_rule_stats: not supported"), m);
        m = refused(listener(policy("{any: true}", "{any: true}").replace("          principals: [{any: true}]\n",
                "          principals: []\n")));
        assertTrue(m.contains(at + "rules.policies[p].principals: [] (expected: at least one principal)"), m);
    }

    @Test
    void anAddressThatIsNotAnIpOrAnEmptyOrReversedPortRangeIsRefusedWithItsPathAsEnvoyRefusesIt() {
        String at = "http_filters[0].typed_config.rules.policies[p].";
        String m = refused(listener(policy("{any: true}",
                "{or_ids: {ids: [{direct_remote_ip: {address_prefix: reviews.default, prefix_len: 32}}]}}")));
        assertTrue(m.contains(at + "principals[0].or_ids.ids[0].direct_remote_ip.address_prefix: \"reviews.default\""
                + " (expected: an IPv4 or IPv6 address)"), m);
        m = refused(listener(policy("{destination_ip: {address_prefix: \"10.0.0\", prefix_len: 8}}", "{any: true}")));
        assertTrue(m.contains(at + "permissions[0].destination_ip.address_prefix: \"10.0.0\""), m);
        m = refused(listener(policy("{destination_port_range: {start: 9100, end: 9000}}", "{any: true}")));
        assertTrue(m.contains(at + "permissions[0].destination_port_range.end: 9000 (expected: above start, 9100)"),
                m);
        m = refused(listener(policy("{destination_port_range: {start: 9000, end: 9000}}", "{any: true}")));
        assertTrue(m.contains(at + "permissions[0].destination_port_range.end: 9000"), m);
        m = refused(listener(policy("{destination_port_range: {start: -1, end: 70000}}", "{any: true}")));
        assertTrue(m.contains(at + "permissions[0].destination_port_range.start: -1 (expected: 0..65536)"), m);
    }

    /** istiod's permission for {@code paths: ["/books/{*}/reviews", "/static/{**}"]} (Istio 1.22's templates). */
    static String uriTemplate(String template) {
        return "{uri_template: {name: uri-template, typed_config: {\"@type\": type.googleapis.com/"
                + "envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig, path_template: \"" + template
                + "\"}}}";
    }

    @Test
    void istiosPathTemplatesAreReadAsUriTemplatePermissionsAndABadTemplateIsRefusedWithItsPath() throws Exception {
        var p = hcm(listener(policy("{or_rules: {rules: [" + uriTemplate("/books/*/reviews") + ", "
                + uriTemplate("/static/**") + "]}}", "{any: true}"))).rbacFilters().get(0).rbac().rules().policies()
                .get("p").permissions().get(0);
        assertEquals(new Permission.Or(List.of(new Permission.UriTemplate("/books/*/reviews"),
                new Permission.UriTemplate("/static/**"))), p);
        String at = "http_filters[0].typed_config.rules.policies[p].permissions[0].uri_template.typed_config.";
        for (String bad : List.of("books/*", "/a/**/*", "/a//b", "/a/b*c", "/{1x}", "/{a}/{a}", "/a/{x=}",
                "/{a}/{b}/{c}/{d}/{e}/{f}", "/a/*.x/b", "/a b")) {
            String m = refused(listener(policy(uriTemplate(bad), "{any: true}")));
            assertTrue(m.contains(at + "path_template: \"" + bad + "\" "), bad + ": " + m);
        }
        String m = refused(listener(policy("{uri_template: {name: t, typed_config: {\"@type\": "
                + "type.googleapis.com/google.protobuf.Empty}}}", "{any: true}")));
        assertTrue(m.contains("permissions[0].uri_template.typed_config.@type: google.protobuf.Empty (expected: "
                + "envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig)"), m);
    }

    @Test
    void anRbacFilterAfterTheFaultFilterIsRefusedAsInmeshRunsRbacFirst() {
        String m = refused(listener("""
                - name: envoy.filters.http.fault
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault}
                """ + IstioRbac.DENY_ADMIN));
        assertTrue(m.contains("http_filters[1].name: envoy.filters.http.rbac after a fault or CORS filter is not "
                + "supported"), m);
    }

    @Test
    void aDisabledRbacFilterIsCheckedButDoesNotRun() throws Exception {
        assertTrue(hcm(listener(IstioRbac.DENY_ADMIN.replace("  typed_config:", "  disabled: true\n  typed_config:")))
                .rbacFilters().isEmpty());
        String m = refused(listener(policy("{any: true}", "{custom: {name: c, typed_config: {\"@type\": "
                + "type.googleapis.com/google.protobuf.Empty}}}").replace("  typed_config:\n    \"@type\": "
                + "type.googleapis.com/envoy.extensions.filters.http.rbac",
                "  disabled: true\n  typed_config:\n    \"@type\": type.googleapis.com/envoy.extensions.filters.http.rbac")));
        assertTrue(m.contains("principals[0].custom: not supported"), m);
    }

    @Test
    void anRbacPerRouteOnARouteOrVirtualHostIsReadByTheFiltersName() throws Exception {
        String text = IstioRbac.PER_ROUTE;
        var vh = EnvoyConfigReader.read(text).routes().get("9080").virtualHosts().get(0);
        assertEquals(Rbac.Action.DENY, vh.rbac().get("envoy.filters.http.rbac").rules().action());
        assertSame(Rbac.ALLOW_ALL, vh.routes().get(0).rbac().get("envoy.filters.http.rbac"),
                "an RBACPerRoute without rbac disables the filter's policy on the route, as Envoy");
        assertTrue(vh.routes().get(1).rbac().isEmpty());
        String m = refused(text.replace("rbac:\n        rules:", "rbac:\n        matcher: {}\n        rules:"));
        assertTrue(m.contains("typed_per_filter_config[envoy.filters.http.rbac].rbac.matcher: not supported"), m);
    }
}
