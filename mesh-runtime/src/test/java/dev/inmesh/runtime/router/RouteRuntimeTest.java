package dev.inmesh.runtime.router;

import static dev.inmesh.runtime.router.Routes.cluster;
import static dev.inmesh.runtime.router.Routes.req;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.api.config.route.RequestMirrorPolicy;
import dev.inmesh.api.config.route.RouteAction;
import dev.inmesh.runtime.snapshot.SnapshotCompiler;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import org.junit.jupiter.api.Test;

/**
 * The runtime keys a route configuration names take the values of the bootstrap's {@code layered_runtime}, as Envoy's
 * route entry asks its runtime snapshot: a route's {@code runtime_fraction} ({@code featureEnabled(runtime_key,
 * default_value)}), a weighted split's {@code runtime_key_prefix} ({@code getInteger(PREFIX.NAME, weight)}) and a
 * mirror policy's {@code runtime_fraction}.
 */
class RouteRuntimeTest {
    /** The route configuration {@code r} of {@code routes} (flow YAML list items), with this bootstrap runtime. */
    private static RouteTable table(String layeredRuntime, String routes) throws Exception {
        String bootstrap = layeredRuntime.isEmpty() ? "static_resources: {}\n"
                : "static_resources: {}\nlayered_runtime: " + layeredRuntime + "\n";
        var bundle = EnvoyConfigReader.read(bootstrap + "---\nname: r\nvirtual_hosts:\n- name: vh\n  domains: [\"*\"]\n"
                + "  routes:\n" + routes.indent(2));
        return SnapshotCompiler.compile(bundle, 1).routeTable("r");
    }

    private static final String FRACTIONS = """
            - {name: rf0, match: {prefix: /rf, runtime_fraction: {default_value: {numerator: 0}, runtime_key: rk.zero}}, route: {cluster: rf0}}
            - {name: rf100, match: {prefix: /rf, runtime_fraction: {default_value: {numerator: 100}, runtime_key: rk.hundred}}, route: {cluster: rf100}}
            """;

    @Test
    void aRuntimeFractionTakesItsKeysValueInTheRuntimeOverItsDefault() throws Exception {
        RouteTable withRuntime = table("{layers: [{name: static, static_layer: {rk.zero: 100, rk.hundred: 0}}]}",
                FRACTIONS);
        RouteTable without = table("", FRACTIONS);
        for (long random : new long[] {0, 42, 99, 12345}) {
            assertEquals("rf0", cluster(withRuntime, req("h", "/rf"), random), "random " + random);
            assertEquals("rf100", cluster(without, req("h", "/rf"), random), "random " + random);
        }
        // a fractional percent in the runtime is the fraction itself
        RouteTable fraction = table("{layers: [{name: s, static_layer: {rk.zero: {numerator: 25}}}]}", FRACTIONS);
        assertEquals("rf0", cluster(fraction, req("h", "/rf"), 124));
        assertEquals("rf100", cluster(fraction, req("h", "/rf"), 125));
    }

    private static final String SPLIT = """
            - match: {prefix: /}
              route:
                weighted_clusters:
                  runtime_key_prefix: split
                  clusters: [{name: a, weight: 1}, {name: b, weight: 99}]
            """;

    @Test
    void aWeightedSplitWithAPrefixTakesEachClustersWeightFromTheRuntime() throws Exception {
        RouteTable t = table("{layers: [{name: s, static_layer: {split: {a: 100, b: 0}}}]}", SPLIT);
        for (long random : new long[] {0, 1, 50, 99}) {
            assertEquals("a", cluster(t, req("h", "/"), random), "random " + random);
        }
        // a cluster the runtime has no value for keeps its own weight: 1 of 100 to a, then b
        RouteTable some = table("{layers: [{name: s, static_layer: {split.a: 1, other: 5}}]}", SPLIT);
        assertEquals("a", cluster(some, req("h", "/"), 0));
        assertEquals("b", cluster(some, req("h", "/"), 1));
        // without a prefix the runtime is not asked
        RouteTable noPrefix = table("{layers: [{name: s, static_layer: {split: {a: 100, b: 0}}}]}",
                SPLIT.replace("runtime_key_prefix: split", "total_weight: 100"));
        assertEquals("b", cluster(noPrefix, req("h", "/"), 1));
    }

    @Test
    void weightsTheRuntimeMakesSumToZeroFindNoCluster() throws Exception {
        RouteTable t = table("{layers: [{name: s, static_layer: {split: {a: 0, b: 0}}}]}", SPLIT);
        assertEquals(RouteResult.NoRoute.class, t.route(req("h", "/"), 0).getClass());
    }

    @Test
    void aMirrorPoliciesShareIsItsKeysValueInTheRuntime() throws Exception {
        String routes = """
                - match: {prefix: /}
                  route:
                    cluster: c
                    request_mirror_policies:
                    - {cluster: m1, runtime_fraction: {default_value: {numerator: 100}, runtime_key: mirror.off}}
                    - {cluster: m2, runtime_fraction: {default_value: {numerator: 5}, runtime_key: mirror.unset}}
                    - {cluster: m3}
                """;
        RouteTable t = table("{layers: [{name: s, static_layer: {mirror.off: 0}}]}", routes);
        var policies = ((RouteAction) t.config().virtualHosts().get(0).routes().get(0).action())
                .requestMirrorPolicies();
        assertEquals(new FractionalPercent(0, FractionalPercent.Denominator.HUNDRED),
                t.mirrorFraction(policies.get(0)));
        assertEquals(new FractionalPercent(5, FractionalPercent.Denominator.HUNDRED),
                t.mirrorFraction(policies.get(1)));
        RequestMirrorPolicy all = policies.get(2);
        assertNull(t.mirrorFraction(all));
        assertTrue(RequestMirror.sampled(t.mirrorFraction(all), 12345));
        assertTrue(!RequestMirror.sampled(t.mirrorFraction(policies.get(0)), 0));
    }
}
