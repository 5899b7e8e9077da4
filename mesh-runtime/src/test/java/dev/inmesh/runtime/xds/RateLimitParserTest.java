package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.core.HeaderValueOption;
import dev.inmesh.api.config.core.StringMatcher;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.ratelimit.GlobalRateLimit;
import dev.inmesh.api.config.route.HeaderMatcher;
import dev.inmesh.api.config.route.QueryParameterMatcher;
import dev.inmesh.api.config.route.RateLimit;
import dev.inmesh.api.config.route.RouteAction;
import dev.inmesh.api.config.route.RouteConfiguration;
import dev.inmesh.runtime.admin.ConfigDumpBuilder;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Envoy's global rate limit filter ({@code envoy.filters.http.ratelimit}) and the virtual hosts' and routes'
 * {@code rate_limits} as Istio's "Enabling Rate Limits using Envoy" task writes them, and the fields and places
 * Inmesh refuses by name.
 */
class RateLimitParserTest {

    private static final String RBAC = LocalRateLimitParserTest.RBAC;
    private static final String FAULT = LocalRateLimitParserTest.FAULT;

    private static String refused(String text) {
        return LocalRateLimitParserTest.refused(text);
    }

    private static String refusedFilter(String extra) {
        return refused(EnvoyValidationTest.listenerWithHttpFilters(IstioGlobalRateLimit.filter("0.1s", false)
                + extra.strip().indent(4) + EnvoyValidationTest.ROUTER));
    }

    /** A route configuration whose virtual host has {@code vhostFields} and whose one route {@code routeFields}. */
    private static String routes(String vhostFields, String routeFields) {
        return """
                name: "9080"
                virtual_hosts:
                - name: "productpage"
                  domains: ["*"]
                """ + vhostFields.stripTrailing().indent(2) + """
                  routes:
                  - match: {prefix: /}
                    route:
                      cluster: "outbound|9080||productpage.default.svc.cluster.local"
                """ + routeFields.stripTrailing().indent(6);
    }

    @Test
    void istiosTaskLoadsWithTheFilterBeforeTheRouterAndTheVirtualHostsRateLimits() throws Exception {
        HttpConnectionManager h = IstioRateLimit.hcm(RBAC + FAULT + IstioGlobalRateLimit.filter("10s", true)
                + EnvoyValidationTest.ROUTER);
        GlobalRateLimit c = h.globalRateLimitFilter().globalRateLimit();
        assertEquals("envoy.filters.http.ratelimit", h.globalRateLimitFilter().name());
        assertEquals("ratelimit", c.domain());
        assertTrue(c.failureModeDeny());
        assertEquals(Duration.ofSeconds(10), c.timeout());
        assertEquals(IstioGlobalRateLimit.CLUSTER, c.cluster());
        assertEquals("ratelimit.default.svc.cluster.local", c.authority());
        assertEquals(0, c.stage());
        assertEquals(GlobalRateLimit.RequestType.BOTH, c.requestType());
        assertEquals(429, c.rateLimitedStatus());
        assertEquals(500, c.statusOnError());
        assertTrue(c.xEnvoyRateLimitedHeader(), "x-envoy-ratelimited unless disabled");
        assertFalse(c.xRateLimitHeaders());

        RouteConfiguration rc = EnvoyConfigReader.read(routes(IstioGlobalRateLimit.VIRTUAL_HOST_RATE_LIMITS, ""))
                .routes().get("9080");
        List<RateLimit> vh = rc.virtualHosts().get(0).rateLimits();
        assertEquals(List.of(
                new RateLimit(0, "", List.of(new RateLimit.RequestHeaders(":path", "PATH", false))),
                new RateLimit(0, "", List.of(new RateLimit.GenericKey("per-user", "generic_key"),
                        new RateLimit.RequestHeaders("x-user", "USER", false))),
                new RateLimit(0, "", List.of(new RateLimit.RemoteAddress(), new RateLimit.HeaderValueMatch(
                        "header_match", "get", true, List.of(new HeaderMatcher(":method",
                        new HeaderMatcher.Value(new StringMatcher.Exact("GET", false)), false, false)))))), vh);
        RouteAction a = (RouteAction) rc.virtualHosts().get(0).routes().get(0).action();
        assertTrue(a.rateLimits().isEmpty());
        assertFalse(a.includeVhRateLimits());
    }

    @Test
    void aRoutesOwnRateLimitsAndItsIncludeVhRateLimitsAndTheFiltersOtherFieldsAreRead() throws Exception {
        RouteConfiguration rc = EnvoyConfigReader.read(routes("", """
                include_vh_rate_limits: true
                rate_limits:
                - stage: 2
                  disable_key: k
                  actions:
                  - destination_cluster: {}
                  - request_headers: {header_name: x-tenant, descriptor_key: tenant, skip_if_absent: true}
                  - header_value_match:
                      descriptor_key: beta
                      descriptor_value: "no"
                      expect_match: false
                      headers: [{name: x-beta, present_match: true}]
                """)).routes().get("9080");
        RouteAction a = (RouteAction) rc.virtualHosts().get(0).routes().get(0).action();
        assertTrue(a.includeVhRateLimits());
        assertEquals(List.of(new RateLimit(2, "k", List.of(new RateLimit.DestinationCluster(),
                new RateLimit.RequestHeaders("x-tenant", "tenant", true),
                new RateLimit.HeaderValueMatch("beta", "no", false, List.of(new HeaderMatcher("x-beta",
                        new HeaderMatcher.Present(true), false, false)))))), a.rateLimits());

        GlobalRateLimit c = IstioRateLimit.hcm("""
                - name: envoy.filters.http.ratelimit
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit
                    domain: d
                    stage: 2
                    request_type: external
                    enable_x_ratelimit_headers: DRAFT_VERSION_03
                    disable_x_envoy_ratelimited_header: true
                    rate_limited_status: {code: ServiceUnavailable}
                    status_on_error: {code: BadGateway}
                    response_headers_to_add: [{header: {key: x-limited, value: "yes"}}]
                    rate_limit_service:
                      grpc_service: {envoy_grpc: {cluster_name: rl}}
                      transport_api_version: V3
                """ + EnvoyValidationTest.ROUTER).globalRateLimitFilter().globalRateLimit();
        assertEquals(2, c.stage());
        assertEquals(GlobalRateLimit.RequestType.EXTERNAL, c.requestType());
        assertEquals(GlobalRateLimit.DEFAULT_TIMEOUT, c.timeout(), "Envoy's default 20 ms");
        assertEquals("rl", c.authority(), "the cluster's name when unset");
        assertTrue(c.xRateLimitHeaders());
        assertFalse(c.xEnvoyRateLimitedHeader());
        assertEquals(503, c.rateLimitedStatus());
        assertEquals(502, c.statusOnError());
        assertEquals("x-limited", c.responseHeadersToAdd().get(0).key());
    }

    @Test
    void statusOnErrorKeepsAStatusBelow400AsEnvoyKeepsAnyFinalOneWhileRateLimitedStatusBelow400Means429()
            throws Exception {
        GlobalRateLimit c = IstioRateLimit.hcm("""
                - name: envoy.filters.http.ratelimit
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit
                    domain: d
                    rate_limited_status: {code: OK}
                    status_on_error: {code: OK}
                    rate_limit_service:
                      grpc_service: {envoy_grpc: {cluster_name: rl}}
                      transport_api_version: V3
                """ + EnvoyValidationTest.ROUTER).globalRateLimitFilter().globalRateLimit();
        assertEquals(429, c.rateLimitedStatus(), "Envoy's rate_limited_status: below 400 means 429");
        assertEquals(200, c.statusOnError(), "Envoy's status_on_error: any status from 100 to 511 is kept");
    }

    /**
     * As Envoy's filter configures them with the router's header parser (ratelimit.h,
     * {@code HeaderParser::configure}): a value with a command is kept as the format it is, one without is its
     * literal, an operator Envoy does not know is refused by path.
     */
    @Test
    void responseHeadersToAddAreSubstitutionFormatStrings() throws Exception {
        GlobalRateLimit c = IstioRateLimit.hcm(IstioGlobalRateLimit.filter("1s", false)
                + IstioGlobalRateLimit.RESPONSE_HEADERS_TO_ADD
                + "    - header: {key: x-literal, value: \"100%%\"}\n" + EnvoyValidationTest.ROUTER)
                .globalRateLimitFilter().globalRateLimit();
        assertEquals(new HeaderValueOption("x-limited", "%REQ(x-user)% %RESPONSE_CODE% %RESP(x-rl-reason)% 100%%",
                HeaderValueOption.AppendAction.OVERWRITE_IF_EXISTS_OR_ADD, false, true),
                c.responseHeadersToAdd().get(0));
        assertEquals(new HeaderValueOption("x-literal", "100%", HeaderValueOption.AppendAction.APPEND_IF_EXISTS_OR_ADD,
                false), c.responseHeadersToAdd().get(1));
        String m = refusedFilter("response_headers_to_add: [{header: {key: x, value: \"%NOT_ENVOYS%\"}}]");
        assertTrue(m.contains("http_filters[0].typed_config.response_headers_to_add[0].header.value"), m);
    }

    @Test
    void aDisabledFilterRunsNowhereButItsConfigIsStillChecked() throws Exception {
        String disabled = IstioGlobalRateLimit.filter("1s", false) + "  disabled: true\n";
        assertNull(IstioRateLimit.hcm(disabled + EnvoyValidationTest.ROUTER).globalRateLimitFilter());
        String m = refused(EnvoyValidationTest.listenerWithHttpFilters(disabled.replace("domain: "
                + "ratelimit", "domain: \"\"") + EnvoyValidationTest.ROUTER));
        assertTrue(m.contains("http_filters[0].typed_config.domain"), m);
    }

    @Test
    void whatInmeshDoesNotImplementInTheFilterIsRefusedByName() {
        for (String field : List.of("rate_limited_as_resource_exhausted: true", "stat_prefix: x",
                "filter_enabled: {default_value: {numerator: 1}}", "filter_enforced: {default_value: {numerator: 1}}")) {
            String name = field.substring(0, field.indexOf(':'));
            String m = refusedFilter(field);
            assertTrue(m.contains("http_filters[0].typed_config." + name) && m.contains("not supported by Inmesh"),
                    m);
        }
        String m = refused(EnvoyValidationTest.listenerWithHttpFilters(IstioGlobalRateLimit.filter("1s", false)
                .replace("envoy_grpc:", "google_grpc:").replace("cluster_name: " + IstioGlobalRateLimit.CLUSTER,
                        "target_uri: x").replace("authority: ratelimit.default.svc.cluster.local", "stat_prefix: y")
                + EnvoyValidationTest.ROUTER));
        assertTrue(m.contains("rate_limit_service.grpc_service.google_grpc"), m);
        m = refused(EnvoyValidationTest.listenerWithHttpFilters(IstioGlobalRateLimit.filter("1s", false)
                .replace("transport_api_version: V3", "transport_api_version: AUTO") + EnvoyValidationTest.ROUTER));
        assertTrue(m.contains("rate_limit_service.transport_api_version"), m);
    }

    @Test
    void theMaskedRemoteAddressAndQueryParameterValueMatchActionsAreReadWithEnvoysDefaults() throws Exception {
        RouteConfiguration rc = EnvoyConfigReader.read(routes("", """
                rate_limits:
                - actions:
                  - masked_remote_address: {}
                  - masked_remote_address: {v4_prefix_mask_len: 24, v6_prefix_mask_len: 64}
                  - query_parameter_value_match:
                      descriptor_value: free
                      query_parameters: [{name: tier, string_match: {exact: free}}, {name: debug, present_match: true}]
                  - query_parameter_value_match:
                      descriptor_key: plan
                      descriptor_value: other
                      expect_match: false
                      query_parameters: [{name: paid}]
                """)).routes().get("9080");
        RouteAction a = (RouteAction) rc.virtualHosts().get(0).routes().get(0).action();
        assertEquals(List.of(new RateLimit.MaskedRemoteAddress(32, 128), new RateLimit.MaskedRemoteAddress(24, 64),
                new RateLimit.QueryParameterValueMatch("query_match", "free", true, List.of(
                        new QueryParameterMatcher("tier", new StringMatcher.Exact("free", false)),
                        new QueryParameterMatcher("debug", null))),
                new RateLimit.QueryParameterValueMatch("plan", "other", false,
                        List.of(new QueryParameterMatcher("paid", null)))), a.rateLimits().get(0).actions());
        for (String action : List.of("masked_remote_address: {v4_prefix_mask_len: 33}",
                "masked_remote_address: {v6_prefix_mask_len: 129}",
                "query_parameter_value_match: {descriptor_value: v, query_parameters: []}",
                "query_parameter_value_match: {query_parameters: [{name: q}]}")) {
            String m = refused(routes("rate_limits: [{actions: [{" + action + "}]}]", ""));
            assertTrue(m.contains("virtual_hosts[0].rate_limits[0].actions[0]."
                    + action.substring(0, action.indexOf(':'))), action + ": " + m);
        }
    }

    @Test
    void actionsInmeshDoesNotImplementAndALimitOverrideAreRefusedByTheirFieldPath() {
        for (String action : List.of("source_cluster: {}", "metadata: {descriptor_key: k, metadata_key: {key: f, "
                        + "path: [{key: p}]}}", "dynamic_metadata: {descriptor_key: k, metadata_key: {key: f, path: "
                        + "[{key: p}]}}")) {
            String name = action.substring(0, action.indexOf(':'));
            String m = refused(routes("rate_limits: [{actions: [{" + action + "}]}]", ""));
            assertTrue(m.contains("virtual_hosts[0].rate_limits[0].actions[0]." + name)
                    && m.contains("not supported by Inmesh"), m);
        }
        String m = refused(routes("", "rate_limits: [{actions: [{remote_address: {}}], limit: {dynamic_metadata: "
                + "{metadata_key: {key: f, path: [{key: p}]}}}}]"));
        assertTrue(m.contains("routes[0].route.rate_limits[0].limit"), m);
        m = refused(routes("rate_limits: [{actions: []}]", ""));
        assertTrue(m.contains("rate_limits[0].actions"), m);
    }

    @Test
    void aGlobalRateLimitFilterBeforeTheAuthorizationFiltersOrASecondOneIsRefusedByName() {
        String m = refused(EnvoyValidationTest.listenerWithHttpFilters(IstioGlobalRateLimit.filter("1s", false)
                + RBAC + EnvoyValidationTest.ROUTER));
        assertTrue(m.contains("http_filters[1].name") && m.contains("after a global rate limit filter"), m);
        m = refused(EnvoyValidationTest.listenerWithHttpFilters(IstioGlobalRateLimit.filter("1s", false)
                + IstioGlobalRateLimit.filter("1s", true) + EnvoyValidationTest.ROUTER));
        assertTrue(m.contains("http_filters[1].name") && m.contains("a second global rate limit filter"), m);
    }

    @Test
    void aGlobalRateLimitFilterBetweenTheFaultAndCorsFiltersIsRefusedByNameBeforeOrAfterBothLoads() throws Exception {
        String cors = """
                - name: envoy.filters.http.cors
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}
                """;
        String m = refused(EnvoyValidationTest.listenerWithHttpFilters(FAULT + IstioGlobalRateLimit.filter("1s", false)
                + cors + EnvoyValidationTest.ROUTER));
        assertTrue(m.contains("http_filters[1].name") && m.contains("between the fault and CORS filters"), m);
        var after = EnvoyConfigReader.read(EnvoyValidationTest.listenerWithHttpFilters(FAULT + cors
                + IstioGlobalRateLimit.filter("1s", false) + EnvoyValidationTest.ROUTER));
        var before = EnvoyConfigReader.read(EnvoyValidationTest.listenerWithHttpFilters(
                IstioGlobalRateLimit.filter("1s", false) + FAULT + cors + EnvoyValidationTest.ROUTER));
        assertTrue(hcm(after).globalRateLimitLast());
        assertFalse(hcm(before).globalRateLimitLast());
        // after both, with a local rate limit filter there too: Inmesh runs the local one first
        String local = IstioRateLimit.enforced("local", 10, "");
        m = refused(EnvoyValidationTest.listenerWithHttpFilters(FAULT + cors + IstioGlobalRateLimit.filter("1s", false)
                + local + EnvoyValidationTest.ROUTER));
        assertTrue(m.contains("http_filters[2].name") && m.contains("before the local rate limit filter"), m);
        EnvoyConfigReader.read(EnvoyValidationTest.listenerWithHttpFilters(FAULT + cors + local
                + IstioGlobalRateLimit.filter("1s", false) + EnvoyValidationTest.ROUTER));
    }

    private static dev.inmesh.api.config.listener.HttpConnectionManager hcm(ResourceBundle b) {
        return (dev.inmesh.api.config.listener.HttpConnectionManager) b.listeners().values().iterator().next()
                .filterChains().get(0).filter();
    }

    /** A {@code typed_per_filter_config} entry of the filter's per-route type with {@code fields}. */
    private static String perRoute(String fields) {
        return "typed_per_filter_config: {envoy.filters.http.ratelimit: {\"@type\": "
                + "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute, " + fields + "}}";
    }

    @Test
    void aRateLimitPerRoutesVhRateLimitsIsReadOnTheVirtualHostAndRouteAndItsOtherFieldsAreRefusedByName()
            throws Exception {
        RouteConfiguration rc = EnvoyConfigReader.read(routes(perRoute("vh_rate_limits: IGNORE"),
                "").replace("    route:\n", "    " + perRoute("vh_rate_limits: INCLUDE") + "\n    route:\n"))
                .routes().get("9080");
        assertEquals(java.util.Map.of("envoy.filters.http.ratelimit", RateLimit.VhRateLimits.IGNORE),
                rc.virtualHosts().get(0).vhRateLimits());
        assertEquals(java.util.Map.of("envoy.filters.http.ratelimit", RateLimit.VhRateLimits.INCLUDE),
                rc.virtualHosts().get(0).routes().get(0).vhRateLimits());
        for (String field : List.of("override_option: INCLUDE_POLICY", "domain: other",
                "rate_limits: [{actions: [{remote_address: {}}]}]")) {
            String name = field.substring(0, field.indexOf(':'));
            String m = refused(routes(perRoute(field), ""));
            assertTrue(m.contains("typed_per_filter_config[envoy.filters.http.ratelimit]." + name)
                    && m.contains("not supported by Inmesh"), m);
        }
    }

    @Test
    void theTasksListenerAndRoutesDumpBackAndLoadAgainIntoTheSameConfig() throws Exception {
        for (String text : List.of(EnvoyValidationTest.listenerWithHttpFilters(RBAC
                        + IstioGlobalRateLimit.filter("10s", true) + EnvoyValidationTest.ROUTER),
                routes(IstioGlobalRateLimit.VIRTUAL_HOST_RATE_LIMITS, """
                        include_vh_rate_limits: true
                        rate_limits: [{stage: 1, actions: [{destination_cluster: {}}]}]
                        """))) {
            ResourceBundle original = EnvoyConfigReader.read(text);
            ResourceBundle back = EnvoyConfigReader.read(ConfigDumpBuilder.json(original, "node-1", Instant.EPOCH));
            assertEquals(original.listeners(), back.listeners());
            assertEquals(original.routes(), back.routes());
            assertEquals(original.messages(), back.messages());
        }
    }
}
