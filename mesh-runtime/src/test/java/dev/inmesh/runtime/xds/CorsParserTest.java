package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.api.config.core.StringMatcher;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.route.CorsPolicy;
import dev.inmesh.api.config.route.RouteConfiguration;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Envoy's CORS policies as Istio writes a VirtualService's corsPolicy (in a route's {@code typed_per_filter_config}),
 * the older {@code cors} fields of virtual hosts and route actions, and the CORS filter in a connection manager.
 */
class CorsParserTest {

    /** The route configuration istiod sends for a VirtualService with a corsPolicy, as istioctl prints it. */
    private static final String ISTIO_ROUTES = """
            {"name": "9080", "validateClusters": false, "virtualHosts": [{
              "name": "ratings.default.svc.cluster.local:9080",
              "domains": ["ratings.default.svc.cluster.local", "ratings"],
              "routes": [{
                "match": {"prefix": "/", "caseSensitive": true},
                "route": {"cluster": "outbound|9080|v1|ratings.default.svc.cluster.local", "timeout": "0s"},
                "typedPerFilterConfig": {"envoy.filters.http.cors": {
                  "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
                  "allowOriginStringMatch": [{"exact": "https://example.com"}, {"prefix": "https://app."},
                                             {"safeRegex": {"regex": "https://.*\\\\.example\\\\.org"}}],
                  "allowMethods": "POST,GET", "allowHeaders": "X-Foo-Bar", "exposeHeaders": "X-Expose",
                  "maxAge": "86400", "allowCredentials": false,
                  "filterEnabled": {"defaultValue": {"numerator": 100}},
                  "forwardNotMatchingPreflights": true}}
              }]}]}
            """;

    private static RouteConfiguration routes(String text) throws EnvoyConfigReader.ConfigReadException {
        return EnvoyConfigReader.read(text).routes().values().iterator().next();
    }

    private static String refused(String text) {
        return assertThrows(EnvoyConfigReader.ConfigReadException.class, () -> EnvoyConfigReader.read(text))
                .getMessage();
    }

    @Test
    void istiosCorsPolicyIsReadFromTheRoutesTypedPerFilterConfig() throws Exception {
        CorsPolicy p = routes(ISTIO_ROUTES).virtualHosts().get(0).routes().get(0).cors();
        assertEquals(List.of(new StringMatcher.Exact("https://example.com", false),
                new StringMatcher.Prefix("https://app.", false),
                new StringMatcher.SafeRegex("https://.*\\.example\\.org")), p.allowOrigins());
        assertEquals("POST,GET", p.allowMethods());
        assertEquals("X-Foo-Bar", p.allowHeaders());
        assertEquals("X-Expose", p.exposeHeaders());
        assertEquals("86400", p.maxAge());
        assertEquals(Boolean.FALSE, p.allowCredentials());
        assertEquals(new FractionalPercent(100, FractionalPercent.Denominator.HUNDRED), p.filterEnabled());
        assertNull(p.shadowEnabled());
        assertNull(p.allowPrivateNetworkAccess());
        assertEquals(Boolean.TRUE, p.forwardNotMatchingPreflights());
        assertFalse(p.legacy());
    }

    @Test
    void theOlderCorsFieldsOfAVirtualHostAndARouteActionAreRead() throws Exception {
        var vh = routes("""
                name: "9080"
                virtual_hosts:
                - name: reviews
                  domains: ["*"]
                  cors: {allow_origin_string_match: [{exact: "https://a"}], allow_methods: GET,
                         shadow_enabled: {default_value: {numerator: 5}, runtime_key: cors.shadow}}
                  routes:
                  - match: {prefix: /}
                    route: {cluster: c, cors: {allow_origin_string_match: [{suffix: ".b", ignore_case: true}],
                            allow_private_network_access: true}}
                """).virtualHosts().get(0);
        assertTrue(vh.cors().legacy());
        assertEquals("GET", vh.cors().allowMethods());
        assertEquals(new FractionalPercent(5, FractionalPercent.Denominator.HUNDRED), vh.cors().shadowEnabled());
        CorsPolicy route = vh.routes().get(0).cors();
        assertTrue(route.legacy());
        assertEquals(List.of(new StringMatcher.Suffix(".b", true)), route.allowOrigins());
        assertEquals(Boolean.TRUE, route.allowPrivateNetworkAccess());
    }

    @Test
    void aVirtualHostsTypedPolicyIsReadAndPutsItsCorsFieldAside() throws Exception {
        var vh = routes(EnvoyValidationTest.oneRoute("route: {cluster: c}").replace("  routes:",
                "  cors: {allow_methods: GET}\n  typed_per_filter_config:\n    envoy.filters.http.cors:\n"
                        + "      \"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy\n"
                        + "      allow_methods: PUT\n  routes:")).virtualHosts().get(0);
        assertEquals("PUT", vh.cors().allowMethods());
        assertFalse(vh.cors().legacy());
    }

    @Test
    void istiosCorsFilterRunsInTheConnectionManagerAndADisabledOneDoesNot() throws Exception {
        String router = "- name: envoy.filters.http.router\n  typed_config: {\"@type\": type.googleapis.com/"
                + "envoy.extensions.filters.http.router.v3.Router}\n";
        String cors = "- name: envoy.filters.http.cors\n  typed_config: {\"@type\": type.googleapis.com/"
                + "envoy.extensions.filters.http.cors.v3.Cors}\n";
        assertTrue(hcm(EnvoyValidationTest.listenerWithHttpFilters(cors + router)).corsFilter());
        var disabled = hcm(EnvoyValidationTest.listenerWithHttpFilters(cors + "  disabled: true\n" + router));
        assertFalse(disabled.corsFilter());
    }

    private static HttpConnectionManager hcm(String listener) throws Exception {
        return (HttpConnectionManager) EnvoyConfigReader.read(listener).listeners().values().iterator().next()
                .filterChains().get(0).filter();
    }

    @Test
    void aSecondPolicyAndAnUnsetOriginMatcherAreRefusedByName() {
        String two = EnvoyValidationTest.oneRoute("""
                route: {cluster: c}
                typed_per_filter_config:
                  envoy.filters.http.cors:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy
                    allow_methods: GET
                  cors2:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy
                    allow_methods: PUT
                """);
        String m = refused(two);
        assertTrue(m.contains("virtual_hosts[0].routes[0].typed_per_filter_config[") && m.contains(
                "a second CORS policy (expected: one; Inmesh runs one CORS filter)"), m);
        String noMatcher = EnvoyValidationTest.oneRoute("""
                route: {cluster: c, cors: {allow_origin_string_match: [{}]}}
                """);
        m = refused(noMatcher);
        assertTrue(m.contains("virtual_hosts[0].routes[0].route.cors.allow_origin_string_match[0]"), m);
    }
}
