package dev.inmesh.benchmarks;

import dev.inmesh.api.config.core.HeaderMutations;
import dev.inmesh.api.config.core.StringMatcher;
import dev.inmesh.api.config.route.HeaderMatcher;
import dev.inmesh.api.config.route.PathMatcher;
import dev.inmesh.api.config.route.Route;
import dev.inmesh.api.config.route.RouteAction;
import dev.inmesh.api.config.route.RouteConfiguration;
import dev.inmesh.api.config.route.RouteMatch;
import dev.inmesh.api.config.route.VirtualHost;
import dev.inmesh.runtime.router.RouteRequest;
import dev.inmesh.runtime.router.RouteResult;
import dev.inmesh.runtime.router.RouteTable;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Route selection: one request through a route table of N virtual hosts with 10 routes each (Istio-like domains,
 * the match on the last route but one: a header match and nine prefixes before it). Requests cycle over many hosts
 * so that the lookup is not served from one cache line.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class RouteSelectionBenchmark {

    @Param({"10", "100", "1000", "10000"})
    public int virtualHosts;

    /**
     * How many distinct virtual hosts the requests go to: 0 for as many as the 1 024 requests reach (every request a
     * different service: the table's size shows through the cache), or a fixed number (a hot set of services: the
     * table's size alone, the cache held equal).
     */
    @Param({"0"})
    public int distinctHosts;

    private RouteTable table;
    private Request[] requests;
    private int next;

    @Setup(Level.Trial)
    public void setUp() {
        table = RouteTable.compile(routeConfiguration("bench", virtualHosts));
        requests = new Request[1024];
        for (int i = 0; i < requests.length; i++) {
            int spread = distinctHosts == 0 ? virtualHosts : Math.min(distinctHosts, virtualHosts);
            int vh = (int) ((i * 2654435761L) % spread * (virtualHosts / spread));
            requests[i] = new Request("svc" + vh + ".ns" + (vh % 7) + ".svc.cluster.local:9080", "/api/v9/items/" + i,
                    i % 2 == 0 ? "jason" : null);
        }
    }

    @Benchmark
    public RouteResult selectRoute() {
        Request r = requests[next++ & (requests.length - 1)];
        return table.route(r, next);
    }

    /**
     * The virtual host lookup alone (Host header to virtual host, through the domain index), without matching routes:
     * what the table's size costs the index, apart from what it costs to read the chosen virtual host's routes.
     */
    @Benchmark
    public Object virtualHostLookup() {
        Request r = requests[next++ & (requests.length - 1)];
        return table.virtualHost(r.authority());
    }

    /** An Istio-shaped route configuration of {@code n} virtual hosts with 10 routes each. */
    public static RouteConfiguration routeConfiguration(String name, int n) {
        List<VirtualHost> vhs = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            String fqdn = "svc" + i + ".ns" + (i % 7) + ".svc.cluster.local";
            String shortName = "svc" + i;
            List<String> domains = List.of(fqdn, fqdn + ":9080", shortName + ".ns" + (i % 7), shortName + ".ns"
                    + (i % 7) + ":9080", "10." + (i >> 16 & 255) + "." + (i >> 8 & 255) + "." + (i & 255),
                    "10." + (i >> 16 & 255) + "." + (i >> 8 & 255) + "." + (i & 255) + ":9080");
            List<Route> routes = new ArrayList<>(10);
            for (int r = 0; r < 8; r++) {
                routes.add(Route.of(RouteMatch.prefix("/api/v" + r + "/"), RouteAction.toCluster("outbound|9080|v" + r
                        + "|" + fqdn)));
            }
            routes.add(Route.of(new RouteMatch(new PathMatcher.Prefix("/"), true,
                    List.of(new HeaderMatcher("end-user", new HeaderMatcher.Value(new StringMatcher.Exact("jason",
                            false)), false, false)), List.of(), null, false),
                    RouteAction.toCluster("outbound|9080|v2|" + fqdn)).withName("jason"));
            routes.add(Route.of(RouteMatch.prefix("/"), RouteAction.toCluster("outbound|9080||" + fqdn)));
            vhs.add(VirtualHost.of(fqdn + ":9080", domains, routes));
        }
        return new RouteConfiguration(name, vhs, false, false, HeaderMutations.NONE);
    }

    record Request(String authority, String path, String endUser) implements RouteRequest {
        @Override
        public String method() {
            return "GET";
        }

        @Override
        public String scheme() {
            return "http";
        }

        @Override
        public String header(String lowerCaseName) {
            return lowerCaseName.equals("end-user") ? endUser : null;
        }
    }
}
