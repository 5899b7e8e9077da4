package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.core.MetadataMatcher;
import dev.inmesh.api.config.core.StringMatcher;
import dev.inmesh.api.config.extauthz.ExtAuthz;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.rbac.Rbac;
import dev.inmesh.api.config.route.ExtAuthzPerRoute;
import dev.inmesh.runtime.router.IstioExtAuthz;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Envoy's ext_authz HTTP filter as istiod writes it for an AuthorizationPolicy with {@code action: CUSTOM}
 * ({@link IstioExtAuthz}): the shadow RBAC filter and the ext_authz filter after it load, for an HTTP and a gRPC
 * extension provider; what Inmesh does not do is refused by its path.
 */
class ExtAuthzParserTest {

    private static String refused(String filters) {
        return assertThrows(EnvoyConfigReader.ConfigReadException.class, () -> EnvoyConfigReader.read(
                EnvoyValidationTest.listenerWithHttpFilters(filters))).getMessage();
    }

    @Test
    void istiosCustomPolicyWithAnHttpProviderLoadsAsItsShadowRbacFilterThenItsExtAuthzFilter() {
        HttpConnectionManager h = IstioRateLimit.hcm(IstioExtAuthz.SHADOW + IstioExtAuthz.http("600s", true)
                + EnvoyValidationTest.ROUTER);
        List<HttpFilter> filters = h.authorizationFilters();
        assertEquals(2, filters.size());
        Rbac shadow = filters.get(0).rbac();
        assertNull(shadow.rules(), "nothing enforced");
        assertEquals("istio_ext_authz_", shadow.shadowRulesStatPrefix());
        assertEquals(Rbac.Action.DENY, shadow.shadowRules().action());
        assertTrue(shadow.shadowRules().policies()
                .containsKey("istio-ext-authz-ns[default]-policy[ext-authz]-rule[0]"));

        ExtAuthz c = filters.get(1).extAuthz();
        assertEquals("envoy.filters.http.ext_authz", filters.get(1).name());
        assertTrue(c.failureModeAllow());
        assertEquals(403, c.statusOnError(), "Envoy's default");
        assertFalse(c.clearRouteCache());
        assertEquals(List.of(new StringMatcher.Exact("x-ext-authz", true)), c.allowedHeaders());
        assertEquals(new MetadataMatcher("envoy.filters.http.rbac",
                List.of("istio_ext_authz_shadow_effective_policy_id"),
                new MetadataMatcher.ValueMatcher.StringMatch(new StringMatcher.Prefix("istio-ext-authz", false)),
                false), c.filterEnabledMetadata());
        ExtAuthz.HttpService s = (ExtAuthz.HttpService) c.service();
        assertEquals(IstioExtAuthz.CLUSTER, s.cluster());
        assertEquals(Duration.ofSeconds(600), s.timeout());
        assertEquals("/check", s.pathPrefix());
        assertEquals(List.of(new ExtAuthz.Header("x-ext-authz-added", "from-istio")), s.headersToAdd());
        assertEquals(List.of(new StringMatcher.Exact("x-user", true)), s.allowedUpstreamHeaders());
        assertEquals(List.of(new StringMatcher.Exact("x-denied-reason", true)), s.allowedClientHeaders());
        assertEquals(List.of(new StringMatcher.Exact("x-authz-decision", true)), s.allowedClientHeadersOnSuccess());
    }

    @Test
    void istiosCustomPolicyWithAGrpcProviderLoadsWithItsAuthorityTimeoutAndStatusOnError() {
        HttpConnectionManager h = IstioRateLimit.hcm(IstioExtAuthz.SHADOW + IstioExtAuthz.grpc("0.5s", false)
                + EnvoyValidationTest.ROUTER);
        ExtAuthz c = h.authorizationFilters().get(1).extAuthz();
        assertEquals(503, c.statusOnError());
        assertTrue(c.clearRouteCache());
        assertTrue(c.allowedHeaders().isEmpty());
        assertEquals(new ExtAuthz.GrpcService(IstioExtAuthz.CLUSTER, "ext-authz.foo.svc.cluster.local",
                Duration.ofMillis(500)), c.service());
    }

    /** Older istiods put the allowed headers in the HTTP service's authorization request. */
    @Test
    void theHttpServicesOlderAllowedHeadersAreTheSameList() {
        String older = IstioExtAuthz.http("10s", false).replace("""
                    allowed_headers:
                      patterns:
                      - {exact: x-ext-authz, ignore_case: true}
                """, "").replace("""
                      authorization_request:
                """, """
                      authorization_request:
                        allowed_headers:
                          patterns:
                          - {exact: x-ext-authz}
                """);
        ExtAuthz c = IstioRateLimit.hcm(older + EnvoyValidationTest.ROUTER).authorizationFilters().get(0).extAuthz();
        assertEquals(List.of(new StringMatcher.Exact("x-ext-authz", false)), c.allowedHeaders());
    }

    /** A provider's {@code includeRequestBodyInCheck}: the filter holds the body and sends it in the check. */
    @Test
    void istiosIncludeRequestBodyInCheckLoadsAsWithRequestBody() {
        ExtAuthz grpc = IstioRateLimit.hcm(IstioExtAuthz.SHADOW + IstioExtAuthz.withBody(
                IstioExtAuthz.grpc("1s", false), 4096, true, true) + EnvoyValidationTest.ROUTER)
                .authorizationFilters().get(1).extAuthz();
        assertEquals(new ExtAuthz.BufferSettings(4096, true, true), grpc.withRequestBody());
        ExtAuthz http = IstioRateLimit.hcm(IstioExtAuthz.withBody(IstioExtAuthz.http("10s", false), 2048, false,
                false) + EnvoyValidationTest.ROUTER).authorizationFilters().get(0).extAuthz();
        assertEquals(new ExtAuthz.BufferSettings(2048, false, false), http.withRequestBody());
        assertNull(IstioRateLimit.hcm(IstioExtAuthz.http("10s", false) + EnvoyValidationTest.ROUTER)
                .authorizationFilters().get(0).extAuthz().withRequestBody(), "unset: checked on the headers");
    }

    @Test
    void whatInmeshDoesNotDoIsRefusedByItsPath() {
        String empty = refused(IstioExtAuthz.http("10s", false).replace("    transport_api_version: V3\n",
                "    transport_api_version: V3\n    with_request_body: {max_request_bytes: 0}\n")
                + EnvoyValidationTest.ROUTER);
        assertTrue(empty.contains("http_filters[0].typed_config.with_request_body.max_request_bytes"), empty);
        String google = refused(IstioExtAuthz.grpc("1s", false).replace("""
                      envoy_grpc:
                        authority: ext-authz.foo.svc.cluster.local
                """, """
                      google_grpc: {target_uri: "127.0.0.1:8000", stat_prefix: ext_authz}
                      envoy_grpc:
                """).replace("        cluster_name: ", "        cluster_name: ") + EnvoyValidationTest.ROUTER);
        assertTrue(google.contains("http_filters[0].typed_config.grpc_service"), google);
        String namespace = refused(IstioExtAuthz.http("10s", false).replace("filter: envoy.filters.http.rbac",
                "filter: istio_authn") + EnvoyValidationTest.ROUTER);
        assertTrue(namespace.contains("http_filters[0].typed_config.filter_enabled_metadata.filter"), namespace);
        String afterFault = refused("""
                - name: envoy.filters.http.fault
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault}
                """ + IstioExtAuthz.http("10s", false) + EnvoyValidationTest.ROUTER);
        assertTrue(afterFault.contains("http_filters[1].name") && afterFault.contains("after a fault or CORS"),
                afterFault);
    }

    /** For a gRPC provider istiod also writes the network filter on TCP chains, after its shadow RBAC filter. */
    @Test
    void theExtAuthzNetworkFilterOfAGrpcProviderLoadsAfterItsShadowRbacNetworkFilter() throws Exception {
        var listener = EnvoyConfigReader.read("""
                name: virtualInbound
                address: {socket_address: {address: 0.0.0.0, port_value: 15006}}
                filter_chains:
                - filters:
                """ + IstioExtAuthz.tcp("2s").indent(2) + """
                  - name: envoy.filters.network.tcp_proxy
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                      stat_prefix: InboundPassthroughClusterIpv4
                      cluster: InboundPassthroughClusterIpv4
                """).listeners().values().iterator().next();
        var chain = listener.filterChains().get(0);
        assertEquals(1, chain.rbac().size());
        assertEquals("istio_ext_authz_", chain.rbac().get(0).rbac().shadowRulesStatPrefix());
        var e = chain.extAuthz().get(0);
        assertEquals(1, e.after(), "after the shadow RBAC filter");
        assertEquals("tcp.", e.statPrefix());
        assertEquals(new ExtAuthz.GrpcService(IstioExtAuthz.CLUSTER, "ext-authz.foo.svc.cluster.local",
                Duration.ofSeconds(2)), e.service());
        assertEquals("envoy.filters.network.rbac", e.filterEnabledMetadata().filter());
    }

    /**
     * A route configuration whose virtual host and route carry an ExtAuthzPerRoute with the fields (flow YAML; empty
     * for none) of {@code vhost} and {@code route}.
     */
    private static String perRoute(String vhost, String route) {
        return """
                name: "9080"
                virtual_hosts:
                - name: reviews
                  domains: ["*"]
                  typed_per_filter_config:
                    envoy.filters.http.ext_authz: %s
                  routes:
                  - match: {prefix: /}
                    route: {cluster: c}
                    typed_per_filter_config:
                      envoy.filters.http.ext_authz: %s
                """.formatted(extAuthzPerRoute(vhost), extAuthzPerRoute(route));
    }

    private static String extAuthzPerRoute(String fields) {
        return "{\"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute"
                + (fields.isEmpty() ? "" : ", " + fields) + "}";
    }

    @Test
    void anExtAuthzPerRouteIsReadByTheFiltersNameOnAVirtualHostAndARoute() throws Exception {
        var rc = EnvoyConfigReader.read(perRoute("disabled: true", "check_settings: {context_extensions: "
                + "{tier: gold}, disable_request_body_buffering: true}")).routes().values().iterator().next();
        var vh = rc.virtualHosts().get(0);
        assertEquals(ExtAuthzPerRoute.DISABLED, vh.extAuthz().get("envoy.filters.http.ext_authz"));
        assertEquals(new ExtAuthzPerRoute(false, java.util.Map.of("tier", "gold"), true),
                vh.routes().get(0).extAuthz().get("envoy.filters.http.ext_authz"));
        // disabled: false is valid in Envoy's proto: the filter checks these requests whatever the virtual host says
        var enabled = EnvoyConfigReader.read(perRoute("disabled: true", "disabled: false")).routes().values()
                .iterator().next().virtualHosts().get(0).routes().get(0).extAuthz().get("envoy.filters.http.ext_authz");
        assertEquals(new ExtAuthzPerRoute(false, null, false), enabled);
    }

    @Test
    void aPerRouteWithRequestBodyAndAnEmptyOverrideAreRefusedByTheirPath() {
        String at = "virtual_hosts[0].routes[0].typed_per_filter_config[envoy.filters.http.ext_authz].";
        String m = assertThrows(EnvoyConfigReader.ConfigReadException.class, () -> EnvoyConfigReader.read(perRoute(
                "disabled: true", "check_settings: {with_request_body: {max_request_bytes: 10}}"))).getMessage();
        assertTrue(m.contains(at + "check_settings.with_request_body: not supported by Inmesh"), m);
        m = assertThrows(EnvoyConfigReader.ConfigReadException.class, () -> EnvoyConfigReader.read(perRoute(
                "disabled: true", ""))).getMessage();
        assertTrue(m.contains(at + "override: unset (expected: disabled or check_settings)"), m);
    }
}
