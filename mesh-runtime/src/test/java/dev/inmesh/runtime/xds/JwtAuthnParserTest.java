package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.core.MetadataMatcher;
import dev.inmesh.api.config.core.StringMatcher;
import dev.inmesh.api.config.jwt.JwtAuthentication;
import dev.inmesh.api.config.jwt.JwtAuthentication.JwtRequirement;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.rbac.Principal;
import dev.inmesh.api.config.route.PathMatcher;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Envoy's JWT authentication filter ({@code envoy.filters.http.jwt_authn}) as istiod writes it for a
 * RequestAuthentication, and the RBAC {@code metadata} principals it writes for AuthorizationPolicies with
 * {@code requestPrincipals} and {@code request.auth.claims[...]}; what Inmesh does not do is refused by its path.
 */
class JwtAuthnParserTest {

    private static String refused(String filters) {
        return assertThrows(EnvoyConfigReader.ConfigReadException.class, () -> EnvoyConfigReader.read(
                EnvoyValidationTest.listenerWithHttpFilters(filters))).getMessage();
    }

    @Test
    void istiosRequestAuthenticationLoadsWithItsInlineJwksAndItsOneRuleForEveryPath() {
        HttpConnectionManager h = IstioRateLimit.hcm(IstioJwt.FILTER + IstioJwt.REQUIRE_PRINCIPAL
                + EnvoyValidationTest.ROUTER);
        JwtAuthentication c = h.jwtAuthnFilter().jwtAuthn();
        assertEquals("envoy.filters.http.jwt_authn", h.jwtAuthnFilter().name());
        JwtAuthentication.JwtProvider p = c.providers().get("origins-0");
        assertEquals(IstioJwt.ISSUER, p.issuer());
        assertEquals(IstioJwt.jwks(), p.localJwks());
        assertEquals("payload", p.payloadInMetadata());
        assertEquals(List.of("permission", "scope"), p.spaceDelimitedClaims());
        assertEquals(60, p.clockSkewSeconds(), "Envoy's default clock skew");
        assertFalse(p.forward());
        assertTrue(c.bypassCorsPreflight());
        assertEquals(1, c.rules().size());
        assertEquals(new PathMatcher.Prefix("/"), c.rules().get(0).match().path());
        assertEquals(new JwtRequirement.RequiresAny(List.of(new JwtRequirement.ProviderName("origins-0"),
                new JwtRequirement.AllowMissing())), c.rules().get(0).requires());
        assertEquals(1, h.rbacFilters().size(), "the RBAC filter after it loads too");
    }

    @Test
    void requestPrincipalsBecomeMetadataPrincipalsOnTheJwtFiltersPayload() {
        HttpConnectionManager h = IstioRateLimit.hcm(IstioJwt.FILTER + IstioJwt.REQUIRE_PRINCIPAL
                + IstioJwt.REQUIRE_GROUP + EnvoyValidationTest.ROUTER);
        Principal principal = h.rbacFilters().get(0).rbac().rules().policies()
                .get("ns[default]-policy[require-jwt]-rule[0]").principals().get(0);
        Principal.And and = (Principal.And) ((Principal.And) principal).ids().get(0);
        MetadataMatcher iss = ((Principal.Metadata) and.ids().get(0)).metadata();
        assertEquals("envoy.filters.http.jwt_authn", iss.filter());
        assertEquals(List.of("payload", "iss"), iss.path());
        assertEquals(new MetadataMatcher.ValueMatcher.StringMatch(new StringMatcher.SafeRegex(".+")), iss.value());

        Principal group = ((Principal.And) h.rbacFilters().get(1).rbac().rules().policies()
                .get("ns[default]-policy[require-group]-rule[0]").principals().get(0)).ids().get(0);
        MetadataMatcher m = ((Principal.Metadata) group).metadata();
        assertEquals(List.of("payload", "groups"), m.path());
        MetadataMatcher.ValueMatcher admins = new MetadataMatcher.ValueMatcher.StringMatch(
                new StringMatcher.Exact("admins", false));
        assertEquals(new MetadataMatcher.ValueMatcher.Or(List.of(new MetadataMatcher.ValueMatcher.ListOneOf(admins),
                admins)), m.value());
    }

    @Test
    void providerFieldsAreTakenAsEnvoyDefinesThem() {
        HttpConnectionManager h = IstioRateLimit.hcm(IstioJwt.filter("""
                audiences: [bookinfo.com]
                forward: true
                from_headers: [{name: x-jwt-assertion, value_prefix: "Token "}]
                from_params: [jwt]
                from_cookies: [session]
                forward_payload_header: x-jwt-payload
                pad_forward_payload_header: true
                clock_skew_seconds: 5
                claim_to_headers: [{header_name: x-jwt-group, claim_name: org.group}]
                jwt_cache_config: {jwt_cache_size: 10}
                """) + EnvoyValidationTest.ROUTER);
        JwtAuthentication.JwtProvider p = h.jwtAuthnFilter().jwtAuthn().providers().get("origins-0");
        assertEquals(List.of("bookinfo.com"), p.audiences());
        assertTrue(p.forward());
        assertEquals(List.of(new JwtAuthentication.JwtHeader("x-jwt-assertion", "Token ")), p.fromHeaders());
        assertEquals(List.of("jwt"), p.fromParams());
        assertEquals(List.of("session"), p.fromCookies());
        assertEquals("x-jwt-payload", p.forwardPayloadHeader());
        assertTrue(p.padForwardPayloadHeader());
        assertEquals(5, p.clockSkewSeconds());
        assertEquals(List.of(new JwtAuthentication.ClaimToHeader("x-jwt-group", "org.group")), p.claimToHeaders());
    }

    @Test
    void whatInmeshDoesNotDoIsRefusedByItsPath() {
        String remote = "remote_jwks: {http_uri: {uri: \"https://example.com/jwks\", cluster: jwks, timeout: 5s}}";
        JwtAuthentication.RemoteJwks r = IstioRateLimit.hcm(IstioJwt.FILTER.replaceAll(
                "local_jwks:\\n\\s+inline_string: '[^']*'", remote) + EnvoyValidationTest.ROUTER).jwtAuthnFilter()
                .jwtAuthn().providers().get("origins-0").remoteJwks();
        assertEquals(new JwtAuthentication.RemoteJwks("https://example.com/jwks", "jwks",
                java.time.Duration.ofSeconds(5), java.time.Duration.ofMinutes(10)), r, "Envoy's 10 minutes of cache");
        String m = refused(IstioJwt.FILTER.replaceAll("local_jwks:\\n\\s+inline_string: '[^']*'",
                remote.replace("5s}}", "5s}, async_fetch: {}}")) + EnvoyValidationTest.ROUTER);
        assertTrue(m.contains("http_filters[0].typed_config.providers[origins-0].remote_jwks.async_fetch"), m);
        m = refused(IstioJwt.filter("clear_route_cache: true") + EnvoyValidationTest.ROUTER);
        assertTrue(m.contains("providers[origins-0].clear_route_cache: true is not supported"), m);
        m = refused(IstioJwt.filter("subjects: {prefix: spiffe://}") + EnvoyValidationTest.ROUTER);
        assertTrue(m.contains("providers[origins-0].subjects"), m);
        m = refused(IstioJwt.FILTER.replace("bypass_cors_preflight: true",
                "bypass_cors_preflight: true\n    requirement_map: {r: {provider_name: origins-0}}")
                + EnvoyValidationTest.ROUTER);
        assertTrue(m.contains("http_filters[0].typed_config.requirement_map"), m);
        m = refused(IstioJwt.FILTER.replace("- provider_name: origins-0", "- provider_name: origins-9")
                + EnvoyValidationTest.ROUTER);
        assertTrue(m.contains("rules[0].requires.requires_any.requirements[0].provider_name: origins-9"), m);
        m = refused(IstioJwt.FILTER.replaceAll("(?s)requires:.*?allow_missing: \\{\\}", "requirement_name: r")
                + EnvoyValidationTest.ROUTER);
        assertTrue(m.contains("http_filters[0].typed_config.rules[0].requirement_name"), m);
    }

    @Test
    void theJwtFilterRunsBeforeTheRbacFiltersAndTheRateLimitFilterIsNotBetweenThem() {
        String m = refused(IstioJwt.REQUIRE_PRINCIPAL + IstioJwt.FILTER + EnvoyValidationTest.ROUTER);
        assertTrue(m.contains("http_filters[1].name") && m.contains("after an RBAC, external authorization, fault or CORS filter"), m);
        m = refused(IstioJwt.FILTER + IstioRateLimit.enforced("rl", 1, "") + IstioJwt.REQUIRE_PRINCIPAL
                + EnvoyValidationTest.ROUTER);
        assertTrue(m.contains("http_filters[1].name") && m.contains("between the JWT authentication, RBAC"), m);
        // first or last, the rate limit filter loads
        assertTrue(IstioRateLimit.hcm(IstioRateLimit.enforced("rl", 1, "") + IstioJwt.FILTER
                + IstioJwt.REQUIRE_PRINCIPAL + EnvoyValidationTest.ROUTER).localRateLimitFirst());
        assertFalse(IstioRateLimit.hcm(IstioJwt.FILTER + IstioJwt.REQUIRE_PRINCIPAL
                + IstioRateLimit.enforced("rl", 1, "") + EnvoyValidationTest.ROUTER).localRateLimitFirst());
        m = refused(IstioJwt.FILTER + IstioJwt.FILTER + EnvoyValidationTest.ROUTER);
        assertTrue(m.contains("http_filters[1].name") && m.contains("a second JWT authentication filter"), m);
    }

    @Test
    void metadataPrincipalsOfOtherFiltersAndOtherValueMatchersStayRefused() {
        String m = refused(IstioJwt.REQUIRE_GROUP.replace("filter: envoy.filters.http.jwt_authn",
                "filter: istio_authn") + EnvoyValidationTest.ROUTER);
        assertTrue(m.contains("principals[0].and_ids.ids[0].metadata.filter: \"istio_authn\" is not supported"), m);
        m = refused(IstioJwt.REQUIRE_GROUP.replace("- string_match: {exact: admins}", "- double_match: {exact: 1}")
                + EnvoyValidationTest.ROUTER);
        assertTrue(m.contains("metadata.value.or_match.value_matchers[1].double_match"), m);
        // the RBAC network filter has no request, and no JWT filter before it
        m = assertThrows(EnvoyConfigReader.ConfigReadException.class, () -> EnvoyConfigReader.read("""
                name: tcp
                address: {socket_address: {address: 0.0.0.0, port_value: 9000}}
                filter_chains:
                - filters:
                  - name: envoy.filters.network.rbac
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC
                      stat_prefix: tcp.
                      rules:
                        policies:
                          p:
                            permissions: [{any: true}]
                            principals:
                            - metadata:
                                filter: envoy.filters.http.jwt_authn
                                path: [{key: payload}, {key: iss}]
                                value: {string_match: {exact: x}}
                  - name: envoy.filters.network.tcp_proxy
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                      stat_prefix: tcp
                      cluster: c
                """)).getMessage();
        assertTrue(m.contains("principals[0].metadata") && m.contains("network RBAC filter"), m);
    }
}
