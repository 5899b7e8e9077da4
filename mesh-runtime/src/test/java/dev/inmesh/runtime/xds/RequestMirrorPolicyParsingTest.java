package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.api.config.route.RequestMirrorPolicy;
import dev.inmesh.api.config.route.RouteAction;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@code RouteAction.request_mirror_policies} as Istio sends them for a VirtualService's mirror, and plain. */
class RequestMirrorPolicyParsingTest {

    private static List<RequestMirrorPolicy> mirrors(String routeJson) throws Exception {
        ResourceBundle b = EnvoyConfigReader.read("""
                {"name": "9080", "virtual_hosts": [{"name": "reviews", "domains": ["reviews"],
                  "routes": [{"match": {"prefix": "/"}, "route": %s}]}]}
                """.formatted(routeJson));
        var action = (RouteAction) b.routes().get("9080").virtualHosts().get(0).routes().get(0).action();
        return action.requestMirrorPolicies();
    }

    @Test
    void istiosMirrorWithAPercentageParsesIntoItsClusterAndFractionOfAMillion() throws Exception {
        // Istio's shape for mirror: {host: reviews, subset: v2} with mirrorPercentage: {value: 50.0}
        var m = mirrors("""
                {"cluster": "outbound|9080|v1|reviews.default.svc.cluster.local", "timeout": "0s",
                 "request_mirror_policies": [{"cluster": "outbound|9080|v2|reviews.default.svc.cluster.local",
                   "runtime_fraction": {"default_value": {"numerator": 500000, "denominator": "MILLION"}},
                   "trace_sampled": false}],
                 "max_stream_duration": {"max_stream_duration": "0s", "grpc_timeout_header_max": "0s"}}
                """);
        assertEquals(List.of(new RequestMirrorPolicy("outbound|9080|v2|reviews.default.svc.cluster.local", null,
                new FractionalPercent(500000, FractionalPercent.Denominator.MILLION), false, false)), m);
    }

    @Test
    void aPlainPolicyMirrorsEveryRequestAndTheOtherFormsKeepTheirFields() throws Exception {
        var m = mirrors("""
                {"cluster": "a", "request_mirror_policies": [
                  {"cluster": "b"},
                  {"cluster_header": "x-mirror-cluster", "disable_shadow_host_suffix_append": true},
                  {"cluster": "c", "runtime_fraction": {"default_value": {"numerator": 25}, "runtime_key": "k"},
                   "trace_sampled": true}]}
                """);
        assertEquals(List.of(RequestMirrorPolicy.to("b"),
                new RequestMirrorPolicy(null, "x-mirror-cluster", null, true, null),
                new RequestMirrorPolicy("c", null, new FractionalPercent(25, FractionalPercent.Denominator.HUNDRED),
                        false, true, "k")), m);
    }

    @Test
    void aRouteWithoutMirrorsHasNone() throws Exception {
        assertEquals(List.of(), mirrors("{\"cluster\": \"a\"}"));
    }
}
