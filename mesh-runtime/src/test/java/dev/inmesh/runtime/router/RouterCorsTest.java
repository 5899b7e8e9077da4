package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.request;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import com.github.tomakehurst.wiremock.WireMockServer;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.runtime.upstream.ClusterManager;
import io.vertx.core.http.HttpMethod;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Envoy's CORS filter in the router, with policies as Istio writes a VirtualService's corsPolicy: a preflight from an
 * allowed origin is answered without the upstream, other requests from it get the allow-origin headers, and a
 * route's policy is consulted before its virtual host's.
 */
class RouterCorsTest {
    private static final String CORS_TYPE =
            "\"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy";
    private static final String ALLOWED = "https://app.example.com";
    /** The policy istiod writes for allowOrigins [exact], allowMethods, allowHeaders, exposeHeaders, maxAge 24h. */
    private static final String ISTIO_POLICY = "allow_origin_string_match: [{exact: \"" + ALLOWED + "\"}], "
            + "allow_methods: \"GET,POST\", allow_headers: \"x-custom,content-type\", expose_headers: x-trace, "
            + "max_age: \"86400\", allow_credentials: true, forward_not_matching_preflights: true, "
            + "filter_enabled: {default_value: {numerator: 100, denominator: HUNDRED}}";

    private final RouterRig rig = new RouterRig();
    /** The upstream: its own allow-origin header, which the filter replaces for allowed origins. */
    private final WireMockServer wm = rig.wiremock();
    private final ClusterManager clusters = rig.clusters(cluster("c", wm.port()));

    RouterCorsTest() {
        wm.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(200).withBody("upstream")
                .withHeader("access-control-allow-origin", "https://from-upstream").withHeader("x-upstream", "kept")));
    }

    @AfterEach
    void closeRig() {
        rig.close();
    }

    /** Istio's connection manager: the CORS filter, then the router. */
    private static final HttpConnectionManager ISTIO_HCM = HttpConnectionManager.of("outbound_0.0.0.0_9080", "9080",
            List.of(HttpFilter.of("envoy.filters.http.cors", "envoy.extensions.filters.http.cors.v3.Cors")
                    .withCors(true), HttpFilter.of("envoy.filters.http.router", "")));

    /** Istio's connection manager filters: the CORS filter, then the router. */
    private static RouterRequest istio(RouterRequest req) {
        return req.corsFilter(ISTIO_HCM);
    }

    /** One virtual host (with the given extra YAML lines) whose one route to c has the given CORS policy (or none). */
    private static RouteTable table(String hostExtra, String routePolicy) {
        return RouterRig.table("name: r\nvirtual_hosts:\n- name: vh\n  domains: [\"*\"]\n" + hostExtra
                + "  routes:\n  - match: {prefix: /}\n    route: {cluster: c}\n"
                + (routePolicy == null ? "" : "    typed_per_filter_config:\n      envoy.filters.http.cors: {"
                + CORS_TYPE + ", " + routePolicy + "}\n"));
    }

    private static RouteTable routePolicy(String policy) {
        return table("", policy);
    }

    private static RouterRequest preflight(String origin, String... more) {
        String[] h = new String[4 + more.length];
        h[0] = "origin";
        h[1] = origin;
        h[2] = "access-control-request-method";
        h[3] = "POST";
        System.arraycopy(more, 0, h, 4, more.length);
        return request(HttpMethod.OPTIONS, "/x", null, h);
    }

    private int upstreamRequests() {
        return wm.findAll(anyRequestedFor(anyUrl())).size();
    }

    @Test
    void aPolicyOnlyShadowEnabledCountsTheOriginsAndChangesNothing() {
        // Envoy's filter: with filter_enabled off and shadow_enabled on, origins are counted (cors.origin_valid,
        // cors.origin_invalid) and the request goes on as without CORS
        var registry = new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
        var stats = dev.inmesh.runtime.stats.MeshMetrics.create(registry, dev.inmesh.runtime.stats.WorkloadInfo.UNKNOWN)
                .connectionManager(ISTIO_HCM).withCorsFilter();
        String shadow = "allow_origin_string_match: [{exact: \"" + ALLOWED + "\"}], "
                + "filter_enabled: {default_value: {numerator: 0}}, shadow_enabled: {default_value: {numerator: 100}}";
        var allowed = rig.call(rig.router(), istio(request(HttpMethod.GET, "/x", null, "origin", ALLOWED))
                .downstreamStats(stats), routePolicy(shadow), clusters);
        assertEquals("https://from-upstream", allowed.header("access-control-allow-origin"));
        var preflight = rig.call(rig.router(), istio(preflight("https://evil.example")).downstreamStats(stats),
                routePolicy(shadow), clusters);
        assertEquals("upstream", preflight.body());
        var off = rig.call(rig.router(), istio(request(HttpMethod.GET, "/x", null, "origin", ALLOWED))
                .downstreamStats(stats), routePolicy(shadow.replace("numerator: 100", "numerator: 0")), clusters);
        assertEquals("https://from-upstream", off.header("access-control-allow-origin"));
        assertEquals(1.0, registry.get("envoy_http_cors_origin_valid").gauge().value());
        assertEquals(1.0, registry.get("envoy_http_cors_origin_invalid").gauge().value());
        assertEquals(3, upstreamRequests());
    }

    @Test
    void aPreflightsAnswerIsNotALocalReplyTheLocalReplyConfigRewrites() {
        // Envoy's CORS filter encodes its answer itself, where sendLocalReply's rewrite does not run
        var format = new dev.inmesh.api.config.listener.LocalReplyConfig.BodyFormat(
                new dev.inmesh.api.config.listener.AccessLogConfig.Text("formatted %RESPONSE_CODE%", false), null);
        var localReply = dev.inmesh.runtime.accesslog.LocalReply.compile(
                new dev.inmesh.api.config.listener.LocalReplyConfig(List.of(), format));
        var r = rig.call(rig.router(), istio(preflight(ALLOWED)).localReply(localReply), routePolicy(ISTIO_POLICY),
                clusters);
        assertEquals(200, r.status());
        assertEquals("", r.body());
        assertEquals(ALLOWED, r.header("access-control-allow-origin"));
    }

    @Test
    void aPreflightFromAnAllowedOriginIsAnsweredHereAndNeverReachesTheUpstream() {
        var r = rig.call(rig.router(), istio(preflight(ALLOWED)), routePolicy(ISTIO_POLICY), clusters);
        assertEquals(200, r.status());
        assertEquals("", r.body());
        assertEquals(ALLOWED, r.header("access-control-allow-origin"));
        assertEquals("GET,POST", r.header("access-control-allow-methods"));
        assertEquals("x-custom,content-type", r.header("access-control-allow-headers"));
        assertEquals("86400", r.header("access-control-max-age"));
        assertEquals("true", r.header("access-control-allow-credentials"));
        // as Envoy's answer, which passes the filter's own encoding too: it marks any answer to an allowed origin
        assertEquals("x-trace", r.header("access-control-expose-headers"));
        assertEquals(0, upstreamRequests());
        // logged as a local reply with Envoy's details, for the route's cluster
        assertEquals("cors_response", r.info().responseCodeDetails());
        assertEquals("c", r.info().upstreamCluster());
        assertEquals("-", r.flags());
    }

    @Test
    void aCorsFilterBeforeTheFaultFilterAnswersPreflightsBeforeAnyFaultAndMarksTheAbort() {
        // fault then CORS (Istio's order today): the abort comes first; CORS then fault (older Istio's): the preflight
        // is answered before the fault, and the abort passes the CORS filter's encoding, as in Envoy's chain
        String cors = "- {name: envoy.filters.http.cors, typed_config: "
                + "{\"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}}\n";
        String fault = "- {name: envoy.filters.http.fault, typed_config: "
                + "{\"@type\": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault}}\n";
        String router = "- {name: envoy.filters.http.router, typed_config: "
                + "{\"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}\n";
        RouteTable t = RouterRig.table("name: r\nvirtual_hosts:\n- name: vh\n  domains: [\"*\"]\n  routes:\n"
                + "  - match: {prefix: /}\n    route: {cluster: c}\n    typed_per_filter_config:\n"
                + "      envoy.filters.http.cors: {" + CORS_TYPE + ", " + ISTIO_POLICY + "}\n"
                + "      envoy.filters.http.fault: {\"@type\": type.googleapis.com/envoy.extensions.filters.http.fault"
                + ".v3.HTTPFault, abort: {http_status: 503, percentage: {numerator: 100}}}\n");
        HttpConnectionManager istioNow = dev.inmesh.runtime.xds.IstioRateLimit.hcm(fault + cors + router);
        HttpConnectionManager corsFirst = dev.inmesh.runtime.xds.IstioRateLimit.hcm(cors + fault + router);
        var aborted = rig.call(rig.router(), preflight(ALLOWED).faultFilter(istioNow).corsFilter(istioNow), t,
                clusters);
        assertEquals(503, aborted.status());
        assertNull(aborted.header("access-control-allow-origin"));

        var answered = rig.call(rig.router(), preflight(ALLOWED).faultFilter(corsFirst).corsFilter(corsFirst), t,
                clusters);
        assertEquals(200, answered.status());
        assertEquals("cors_response", answered.info().responseCodeDetails());
        assertEquals("GET,POST", answered.header("access-control-allow-methods"));
        var marked = rig.call(rig.router(), get("/x", "origin", ALLOWED).faultFilter(corsFirst)
                .corsFilter(corsFirst), t, clusters);
        assertEquals(503, marked.status());
        assertEquals("fault filter abort", marked.body());
        assertEquals(ALLOWED, marked.header("access-control-allow-origin"));
        assertEquals("x-trace", marked.header("access-control-expose-headers"));
        assertEquals(0, upstreamRequests());
    }

    @Test
    void aPreflightFromAnotherOriginGoesUpstreamUnchanged() {
        var r = rig.call(rig.router(), istio(preflight("https://evil.example")), routePolicy(ISTIO_POLICY), clusters);
        assertEquals("upstream", r.body());
        assertEquals(1, upstreamRequests());
        assertEquals("https://from-upstream", r.header("access-control-allow-origin"));
        assertEquals("via_upstream", r.info().responseCodeDetails());
    }

    @Test
    void aPreflightFromAnotherOriginIsAnsweredWithoutAllowOriginWhenNotForwarded() {
        var r = rig.call(rig.router(), istio(preflight("https://evil.example")), routePolicy(
                ISTIO_POLICY.replace("forward_not_matching_preflights: true", "forward_not_matching_preflights: "
                        + "false")), clusters);
        assertEquals(200, r.status());
        assertEquals(0, upstreamRequests());
        assertNull(r.header("access-control-allow-origin"));
        assertEquals("GET,POST", r.header("access-control-allow-methods"));
    }

    @Test
    void anActualRequestFromAnAllowedOriginGetsAllowOriginCredentialsAndExposeHeaders() {
        var r = rig.call(rig.router(), istio(get("/x", "origin", ALLOWED)), routePolicy(ISTIO_POLICY), clusters);
        assertEquals("upstream", r.body());
        assertEquals(ALLOWED, r.header("access-control-allow-origin")); // over the upstream's own
        assertEquals("true", r.header("access-control-allow-credentials"));
        assertEquals("x-trace", r.header("access-control-expose-headers"));
        assertNull(r.header("access-control-allow-methods"));
        assertEquals("kept", r.header("x-upstream")); // the upstream's other headers stay
        // a simple request with its origin still goes upstream
        assertEquals(ALLOWED, wm.findAll(anyRequestedFor(anyUrl())).get(0).getHeader("origin"));
    }

    @Test
    void aRequestFromAnotherOriginGetsNoCorsHeaders() {
        var r = rig.call(rig.router(), istio(get("/x", "origin", "https://evil.example")), routePolicy(ISTIO_POLICY),
                clusters);
        assertEquals("https://from-upstream", r.header("access-control-allow-origin"));
        assertNull(r.header("access-control-allow-credentials"));
        assertNull(r.header("access-control-expose-headers"));
    }

    @Test
    void aLocalReplyOfTheRouterAfterTheFilterGetsTheHeadersToo() {
        var r = rig.call(rig.router(), istio(get("/x", "origin", ALLOWED)), RouterRig.table(
                "name: r\nvirtual_hosts:\n- name: vh\n  domains: [\"*\"]\n  routes:\n  - match: {prefix: /}\n"
                        + "    route: {cluster: missing}\n    typed_per_filter_config:\n      "
                        + "envoy.filters.http.cors: {" + CORS_TYPE + ", " + ISTIO_POLICY + "}\n"), clusters);
        assertEquals(503, r.status());
        assertEquals(ALLOWED, r.header("access-control-allow-origin"));
    }

    @Test
    void theRoutesPolicyIsConsultedBeforeItsVirtualHostsFieldByField() {
        RouteTable t = table("  typed_per_filter_config:\n    envoy.filters.http.cors: {" + CORS_TYPE
                + ", allow_origin_string_match: [{prefix: \"https://host.\"}], allow_methods: PUT, max_age: \"60\"}\n",
                "allow_origin_string_match: [{safe_regex: {regex: \"https://[a-z]+\\\\.route\\\\.example\"}}], "
                        + "max_age: \"5\"");
        var fromRoute = rig.call(rig.router(), istio(preflight("https://a.route.example")), t, clusters);
        assertEquals("https://a.route.example", fromRoute.header("access-control-allow-origin"));
        assertEquals("5", fromRoute.header("access-control-max-age"));
        assertEquals("PUT", fromRoute.header("access-control-allow-methods")); // the virtual host's, unset on the route
        var fromHost = rig.call(rig.router(), istio(preflight("https://host.example")), t, clusters);
        assertEquals(1, upstreamRequests()); // the route's origins are in force: forwarded
        assertEquals("https://from-upstream", fromHost.header("access-control-allow-origin"));
    }

    @Test
    void theOlderCorsFieldsApplyOnlyWhereNoTypedPerFilterPolicyDoes() {
        String legacyHost = "  cors: {allow_origin_string_match: [{exact: \"" + ALLOWED + "\"}], allow_methods: GET}\n";
        var legacy = rig.call(rig.router(), istio(preflight(ALLOWED)), table(legacyHost, null), clusters);
        assertEquals(200, legacy.status());
        assertEquals("GET", legacy.header("access-control-allow-methods"));
        assertEquals(0, upstreamRequests());
        // a route's typed policy puts the virtual host's cors field out of force altogether
        var typed = rig.call(rig.router(), istio(preflight(ALLOWED)), table(legacyHost,
                "allow_origin_string_match: [{exact: \"https://other.example\"}]"), clusters);
        assertEquals(1, upstreamRequests());
        assertEquals("https://from-upstream", typed.header("access-control-allow-origin"));
    }

    @Test
    void withoutTheCorsFilterInTheConnectionManagerPoliciesDoNothing() {
        var r = rig.call(rig.router(), preflight(ALLOWED), routePolicy(ISTIO_POLICY), clusters);
        assertEquals(1, upstreamRequests());
        assertEquals("https://from-upstream", r.header("access-control-allow-origin"));
    }

    @Test
    void aPolicyEnabledForNoRequestsDoesNothing() {
        var r = rig.call(rig.router(), istio(preflight(ALLOWED)), routePolicy(ISTIO_POLICY.replace(
                "numerator: 100", "numerator: 0")), clusters);
        assertEquals(1, upstreamRequests());
        assertEquals("https://from-upstream", r.header("access-control-allow-origin"));
    }

    @Test
    void aWildcardEchoesTheRequestedMethodAndHeadersAndAStarOriginAllowsAny() {
        var r = rig.call(rig.router(), istio(preflight("https://any.example", "access-control-request-headers",
                "x-a,x-b")), routePolicy("allow_origin_string_match: [{exact: \"*\"}], allow_methods: \"*\", "
                + "allow_headers: \"*\""), clusters);
        assertEquals(200, r.status());
        assertEquals("https://any.example", r.header("access-control-allow-origin"));
        assertEquals("POST", r.header("access-control-allow-methods"));
        assertEquals("x-a,x-b", r.header("access-control-allow-headers"));
    }

    @Test
    void privateNetworkAccessIsGrantedOnlyWhenAskedForAndAllowed() {
        var r = rig.call(rig.router(), istio(preflight(ALLOWED, "access-control-request-private-network", "true")),
                routePolicy(ISTIO_POLICY + ", allow_private_network_access: true"), clusters);
        assertEquals("true", r.header("access-control-allow-private-network"));
        var not = rig.call(rig.router(), istio(preflight(ALLOWED)), routePolicy(ISTIO_POLICY
                + ", allow_private_network_access: true"), clusters);
        assertNull(not.header("access-control-allow-private-network"));
    }
}
