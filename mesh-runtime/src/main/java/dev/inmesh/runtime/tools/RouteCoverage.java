package dev.inmesh.runtime.tools;

import com.google.protobuf.TextFormat;
import dev.inmesh.api.config.route.ClusterSpecifier;
import dev.inmesh.api.config.route.Route;
import dev.inmesh.api.config.route.RouteAction;
import dev.inmesh.api.config.route.RouteConfiguration;
import dev.inmesh.api.config.route.VirtualHost;
import dev.inmesh.runtime.router.RouteResult;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.UUID;

/**
 * The route coverage of route table tests, as Envoy's {@code router_check_tool} measures it. A route is covered when
 * a test checks one of its fields and finds it as expected: {@code cluster_name}, {@code virtual_cluster_name},
 * {@code virtual_host_name}, {@code path_rewrite} or {@code host_rewrite} of a forwarding route, {@code path_redirect}
 * or {@code code_redirect} of a redirect or direct response (header checks cover nothing). Each cluster of a weighted
 * split counts as a route of its own. The comprehensive measure ({@code --covall}) counts the share of those five, or
 * two, fields that the tests covered for each route.
 */
public final class RouteCoverage {

    /** A checked field that counts towards coverage, by the name the test file gives it. */
    public enum Field {
        CLUSTER("cluster_name"), VIRTUAL_CLUSTER("virtual_cluster_name"), VIRTUAL_HOST("virtual_host_name"),
        PATH_REWRITE("path_rewrite"), HOST_REWRITE("host_rewrite"), PATH_REDIRECT("path_redirect"),
        CODE_REDIRECT("code_redirect");

        private final String field;

        Field(String field) {
            this.field = field;
        }

        public String field() {
            return field;
        }
    }

    /** The fields of a forwarding route, and of a redirect or direct response, that the tests can cover. */
    private static final int FORWARD_FIELDS = 5;
    private static final int ANSWER_FIELDS = 2;

    private final RouteConfiguration config;
    /** The configuration as written, whose route matches the list of routes without a test prints. */
    private final io.envoyproxy.envoy.config.route.v3.RouteConfiguration source;
    /** What the tests covered, by route (or the cluster of a weighted split, which Envoy counts as a route). */
    private final Map<Object, Set<Field>> covered = new IdentityHashMap<>();
    private final Set<Route> coveredRoutes = Collections.newSetFromMap(new IdentityHashMap<>());

    RouteCoverage(RouteConfiguration config, io.envoyproxy.envoy.config.route.v3.RouteConfiguration source) {
        this.config = config;
        this.source = Objects.requireNonNull(source, "source");
    }

    /**
     * Adds the fields a test found as expected in the decision it had; {@code original} gives the configuration's
     * route, or weighted cluster, for those of the table that decided (one made from another parse of it).
     */
    void add(RouteResult result, Set<Field> fields, java.util.function.UnaryOperator<Object> original) {
        Route route = RouteResult.routeOf(result);
        if (fields.isEmpty() || route == null) {
            return;
        }
        Object key = result instanceof RouteResult.Forward f && f.weightedCluster() != null
                ? f.weightedCluster() : route;
        covered.computeIfAbsent(original.apply(key), k -> EnumSet.noneOf(Field.class)).addAll(fields);
        coveredRoutes.add((Route) original.apply(route));
    }

    /** The routes the coverage counts: each cluster of a weighted split as one. */
    int routes() {
        int n = 0;
        for (VirtualHost vh : config.virtualHosts()) {
            for (Route r : vh.routes()) {
                n += r.action() instanceof RouteAction a && a.cluster() instanceof ClusterSpecifier.Weighted w
                        ? w.clusters().size() : 1;
            }
        }
        return n;
    }

    /**
     * The coverage in percent, as router_check_tool computes it (a {@code float}): the routes a test covered, or with
     * {@code comprehensive} the share of each route's fields that the tests covered, over the routes. A route
     * configuration without routes has no coverage (NaN, as in Envoy's tool).
     */
    public float percent(boolean comprehensive) {
        double sum = 0;
        for (Map.Entry<Object, Set<Field>> e : covered.entrySet()) {
            boolean forward = !(e.getKey() instanceof Route r) || r.action() instanceof RouteAction;
            sum += comprehensive ? (double) e.getValue().size() / (forward ? FORWARD_FIELDS : ANSWER_FIELDS) : 1;
        }
        return (float) (100 * sum / routes());
    }

    /**
     * The routes no test covered, in the order of the configuration, as router_check_tool lists them: with
     * {@code --covall} by their match ({@code Missing test for host: H, route: MATCH}), with
     * {@code --detailed-coverage} by the name that tool gives each route, its own and a new UUID
     * ({@code Missing test for host: H, route name: NAME-UUID}, {@code -UUID} when it has none).
     */
    public List<String> missing(boolean byMatch) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < config.virtualHosts().size(); i++) {
            VirtualHost vh = config.virtualHosts().get(i);
            for (int j = 0; j < vh.routes().size(); j++) {
                Route r = vh.routes().get(j);
                if (!coveredRoutes.contains(r)) {
                    out.add("Missing test for host: " + vh.name() + (byMatch
                            ? ", route: " + matchText(source.getVirtualHosts(i).getRoutes(j).getMatch())
                            : ", route name: " + r.name() + "-" + UUID.randomUUID()));
                }
            }
        }
        return out;
    }

    /**
     * A route's match as router_check_tool prints it: in protobuf text format, a field a line, nested messages
     * indented, ending with a line break. As that tool, which makes a {@code runtime_fraction} of 0% testable before
     * it measures coverage, a numerator of 0 reads 1.
     */
    static String matchText(io.envoyproxy.envoy.config.route.v3.RouteMatch m) {
        if (m.hasRuntimeFraction() && m.getRuntimeFraction().getDefaultValue().getNumerator() == 0) {
            var b = m.toBuilder();
            b.getRuntimeFractionBuilder().getDefaultValueBuilder().setNumerator(1);
            m = b.build();
        }
        return TextFormat.printer().printToString(m);
    }
}
