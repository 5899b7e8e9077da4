package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.route.FaultInjection;
import dev.inmesh.api.config.route.RouteConfiguration;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * Envoy's fault filter config as Istio writes it: empty in the connection manager's filters, a delay or an abort in
 * the {@code typed_per_filter_config} of a route (or virtual host); what Inmesh does not implement is refused by name.
 */
class FaultParserTest {

    /** The route configuration istiod sends for a VirtualService with a fault, as istioctl prints it. */
    private static final String ISTIO_ROUTES = """
            {"name": "9080", "validateClusters": false, "virtualHosts": [{
              "name": "ratings.default.svc.cluster.local:9080",
              "domains": ["ratings.default.svc.cluster.local", "ratings"],
              "includeRequestAttemptCount": true,
              "routes": [{
                "match": {"prefix": "/", "caseSensitive": true,
                          "headers": [{"name": "end-user", "stringMatch": {"exact": "jason"}}]},
                "route": {"cluster": "outbound|9080|v1|ratings.default.svc.cluster.local", "timeout": "0s",
                          "maxGrpcTimeout": "0s"},
                "metadata": {"filterMetadata": {"istio": {"config":
                    "/apis/networking.istio.io/v1alpha3/namespaces/default/virtual-service/ratings"}}},
                "decorator": {"operation": "ratings.default.svc.cluster.local:9080/*"},
                "typedPerFilterConfig": {"envoy.filters.http.fault": {
                  "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
                  "delay": {"fixedDelay": "7s", "percentage": {"numerator": 1000000, "denominator": "MILLION"}}}}
              }, {
                "match": {"prefix": "/", "caseSensitive": true},
                "route": {"cluster": "outbound|9080|v1|ratings.default.svc.cluster.local", "timeout": "0s"},
                "typedPerFilterConfig": {"envoy.filters.http.fault": {
                  "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
                  "abort": {"httpStatus": 500, "percentage": {"numerator": 500000, "denominator": "MILLION"}}}}
              }]}]}
            """;

    private static RouteConfiguration routes(String text) throws EnvoyConfigReader.ConfigReadException {
        return EnvoyConfigReader.read(text).routes().values().iterator().next();
    }

    private static String refused(String text) {
        return assertThrows(EnvoyConfigReader.ConfigReadException.class, () -> EnvoyConfigReader.read(text))
                .getMessage();
    }

    /** A route configuration whose one route has the given {@code typed_per_filter_config} (YAML map entries). */
    private static String routeWithConfigs(String entries) {
        return EnvoyValidationTest.oneRoute("route: {cluster: c}\ntyped_per_filter_config:\n"
                + entries.stripTrailing().indent(2));
    }

    /** A route configuration whose one route carries {@code fault} (flow YAML of an HTTPFault's fields). */
    private static String routeWithFault(String fault) {
        return routeWithConfigs("envoy.filters.http.fault:\n  \"@type\": "
                + "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault\n  " + fault);
    }

    /** A listener whose connection manager has the given filters before the router. */
    private static String listener(String filters) {
        return EnvoyValidationTest.listenerWithHttpFilters(filters + EnvoyValidationTest.ROUTER);
    }

    private static HttpConnectionManager hcm(String listener) throws EnvoyConfigReader.ConfigReadException {
        return (HttpConnectionManager) EnvoyConfigReader.read(listener).listeners().get("0.0.0.0_9080")
                .filterChains().get(0).filter();
    }

    @Test
    void istiosDelayAndAbortPerRouteAreParsedWhereTheRouteTableWasRefused() throws Exception {
        var routes = routes(ISTIO_ROUTES).virtualHosts().get(0).routes();
        FaultInjection delay = routes.get(0).fault();
        assertEquals(Duration.ofSeconds(7), delay.delay());
        assertEquals(new FractionalPercent(1_000_000, FractionalPercent.Denominator.MILLION), delay.delayPercent());
        assertNull(delay.abort());
        FaultInjection abort = routes.get(1).fault();
        assertEquals(FaultInjection.Abort.http(500), abort.abort());
        assertEquals(new FractionalPercent(500_000, FractionalPercent.Denominator.MILLION), abort.abortPercent());
        assertNull(abort.delay());
    }

    @Test
    void aPercentageLeftUnsetIsNoneAsEnvoysDefault() throws Exception {
        FaultInjection f = routes(routeWithFault("abort: {http_status: 503}")).virtualHosts().get(0).routes().get(0)
                .fault();
        assertEquals(0, f.abortPercent().numerator());
    }

    @Test
    void aNumeratorAboveTwoToThe31IsReadUnsignedAsEnvoyReadsItsUint32() throws Exception {
        FaultInjection f = routes(routeWithFault("abort: {http_status: 503, percentage: {numerator: 4294967295}}"))
                .virtualHosts().get(0).routes().get(0).fault();
        assertEquals(4_294_967_295L, f.abortPercent().numerator());
    }

    @Test
    void aGrpcAbortHeadersMaxActiveFaultsAndAVirtualHostsFaultAreParsed() throws Exception {
        String text = """
                name: "9080"
                virtual_hosts:
                - name: vh
                  domains: ["*"]
                  typed_per_filter_config:
                    envoy.filters.http.fault:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                      abort: {grpc_status: 14, percentage: {numerator: 100}}
                      headers: [{name: x-fault, present_match: true}]
                      max_active_faults: 3
                      abort_percent_runtime: fault.http.abort.mine
                  routes:
                  - match: {prefix: /}
                    route: {cluster: c}
                """;
        var vh = routes(text).virtualHosts().get(0);
        assertNull(vh.routes().get(0).fault());
        assertEquals(FaultInjection.Abort.grpc(14), vh.fault().abort());
        assertEquals("x-fault", vh.fault().headers().get(0).name());
        assertEquals(3L, vh.fault().maxActiveFaults());
    }

    @Test
    void aResponseRateLimitIsAFixedRateOrTheHeadersWithItsPercentage() throws Exception {
        FaultInjection fixed = routes(routeWithFault(
                "response_rate_limit: {fixed_limit: {limit_kbps: 1}, percentage: {numerator: 50}}")).virtualHosts().get(0).routes().get(0).fault();
        assertEquals(new FaultInjection.ResponseRateLimit(1, new FractionalPercent(50,
                FractionalPercent.Denominator.HUNDRED)), fixed.responseRateLimit());
        FaultInjection header = routes(routeWithFault("response_rate_limit: {header_limit: {}, percentage: "
                + "{numerator: 7, denominator: TEN_THOUSAND}}\n  response_rate_limit_percent_runtime: "
                + "fault.http.rate_limit.response_percent")).virtualHosts().get(0).routes().get(0).fault();
        assertTrue(header.responseRateLimit().header());
        assertEquals(new FractionalPercent(7, FractionalPercent.Denominator.TEN_THOUSAND),
                header.responseRateLimit().percentage());
        // as Envoy's FaultRateLimit, an unset percentage is 0%: the limit applies to no request
        FaultInjection never = routes(routeWithFault("response_rate_limit: {fixed_limit: {limit_kbps: 64}}"))
                .virtualHosts().get(0).routes().get(0).fault();
        assertEquals(0, never.responseRateLimit().percentage().numerator());
        assertEquals(64, never.responseRateLimit().limitKbps());
    }

    @Test
    void whatInmeshDoesNotImplementIsRefusedByName() {
        String[][] cases = {
                {"response_rate_limit: {fixed_limit: {limit_kbps: 0}}", "response_rate_limit.fixed_limit.limit_kbps: "
                        + "0 (expected: >= 1)"},
                {"response_rate_limit: {percentage: {numerator: 100}}", "response_rate_limit.limit_type: unset "
                        + "(expected: fixed_limit or header_limit)"},
                {"delay: {percentage: {numerator: 100}}", "delay.fault_delay_secifier: unset (expected: "
                        + "fixed_delay or header_delay)"},
                {"abort: {percentage: {numerator: 100}}", "abort.error_type: unset (expected: http_status, "
                        + "grpc_status or header_abort)"},
                {"abort: {http_status: 600}", "abort.http_status: 600 (expected: >= 200 and < 600)"},
                {"abort: {http_status: 199}", "abort.http_status: 199 (expected: >= 200 and < 600)"},
        };
        String at = "RouteConfiguration \"9080\": virtual_hosts[0].routes[0].typed_per_filter_config["
                + "envoy.filters.http.fault].";
        for (String[] c : cases) {
            String m = refused(routeWithFault(c[0]));
            assertTrue(m.contains(at + c[1]), c[0] + " -> " + m);
        }
    }

    @Test
    void anotherFiltersPerRouteConfigIsStillRefusedByName() {
        String text = routeWithConfigs("""
                envoy.filters.http.csrf:
                  "@type": type.googleapis.com/envoy.extensions.filters.http.csrf.v3.CsrfPolicy
                  filter_enabled: {default_value: {numerator: 100}}
                """);
        String m = refused(text);
        assertTrue(m.contains("virtual_hosts[0].routes[0].typed_per_filter_config[envoy.filters.http.csrf]: "
                + "envoy.extensions.filters.http.csrf.v3.CsrfPolicy is not supported by Inmesh"), m);
    }

    @Test
    void aFaultConfigWrappedInATypedStructIsRefusedForItsWrapper() {
        String m = refused(routeWithConfigs("""
                envoy.filters.http.fault:
                  "@type": type.googleapis.com/xds.type.v3.TypedStruct
                  type_url: type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                  value: {abort: {http_status: 503}}
                """));
        assertTrue(m.contains("typed_per_filter_config[envoy.filters.http.fault].@type: "
                + "type.googleapis.com/xds.type.v3.TypedStruct (expected: HTTPFault)"), m);
    }

    @Test
    void istiosEmptyFaultFilterRunsAndInjectsNothingOfItsOwn() throws Exception {
        var h = hcm(listener("""
                - name: envoy.filters.http.fault
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault}
                """));
        assertSame(FaultInjection.NONE, h.faultFilter().fault());
        assertEquals("envoy.filters.http.fault", h.faultFilter().name());
    }

    @Test
    void aFaultFilterWithItsOwnAbortAppliesToEveryRouteAndADisabledOneDoesNotRun() throws Exception {
        var h = hcm(listener("""
                - name: envoy.filters.http.fault
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                    abort: {http_status: 503, percentage: {numerator: 100}}
                """));
        assertEquals(FaultInjection.Abort.http(503), h.faultFilter().fault().abort());
        var disabled = hcm(listener("""
                - name: envoy.filters.http.fault
                  disabled: true
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                    abort: {http_status: 503, percentage: {numerator: 100}}
                """));
        assertNull(disabled.faultFilter());
    }

    @Test
    void aSecondFaultFilterAndAFilterLevelHeaderAbortAreRefused() {
        String m = refused(listener("""
                - name: envoy.filters.http.fault
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault}
                - name: fault2
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault}
                """));
        assertTrue(m.contains("http_filters[1].name: fault2: a second fault filter is not supported"), m);
    }

    @Test
    void headerFaultsUpstreamClusterDownstreamNodesAndClusterStatsAreParsedOnRoutesAndOnTheFilter()
            throws Exception {
        FaultInjection f = routes(routeWithFault("delay: {header_delay: {}, percentage: {numerator: 50}}\n"
                + "  abort: {header_abort: {}, percentage: {numerator: 20}}\n  upstream_cluster: c\n"
                + "  downstream_nodes: [a, b]\n  disable_downstream_cluster_stats: true"))
                .virtualHosts().get(0).routes().get(0).fault();
        assertTrue(f.headerDelay());
        assertNull(f.delay());
        assertEquals(new FractionalPercent(50, FractionalPercent.Denominator.HUNDRED), f.delayPercent());
        assertSame(FaultInjection.Abort.HEADER, f.abort());
        assertTrue(f.abort().header());
        assertEquals(new FractionalPercent(20, FractionalPercent.Denominator.HUNDRED), f.abortPercent());
        assertEquals("c", f.upstreamCluster());
        assertEquals(java.util.List.of("a", "b"), f.downstreamNodes());
        assertEquals(false, f.downstreamClusterStats());
        // the connection manager's own fault filter takes them too
        HttpConnectionManager hcm = hcm(listener("""
                - name: envoy.filters.http.fault
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                    abort: {header_abort: {}, percentage: {numerator: 100}}
                    downstream_nodes: [productpage]
                """));
        FaultInjection filter = hcm.faultFilter().fault();
        assertTrue(filter.abort().header());
        assertEquals(java.util.List.of("productpage"), filter.downstreamNodes());
        assertEquals("", filter.upstreamCluster());
        assertTrue(filter.downstreamClusterStats());
        // a fixed fault counts per downstream cluster unless told not to, as Envoy's default
        assertTrue(routes(routeWithFault("abort: {http_status: 503}")).virtualHosts().get(0).routes().get(0)
                .fault().downstreamClusterStats());
    }
}
