package dev.inmesh.runtime.router;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.inmesh.api.config.route.PathMatcher;
import dev.inmesh.api.config.route.RouteAction;
import dev.inmesh.api.config.route.Route;
import dev.inmesh.api.config.route.RouteMatch;
import dev.inmesh.api.config.route.VirtualHost;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class DomainIndexTest {

    private static CompiledVirtualHost vhost(String name) {
        VirtualHost vh = VirtualHost.of(name, List.of(name),
                List.of(Route.of(RouteMatch.prefix("/"), RouteAction.toCluster(name))));
        return new CompiledVirtualHost(vh, new RouteTable.Interner());
    }

    @Test
    void findsEveryKeyAndNothingElseAmongManyAndAmongEqualHashes() {
        Map<String, CompiledVirtualHost> domains = new HashMap<>();
        for (int i = 0; i < 5_000; i++) {
            String d = "svc" + i + ".ns.svc.cluster.local:9080";
            domains.put(d, vhost(d));
        }
        // "Aa" and "BB" have the same String hash, and so do their combinations
        for (String d : new String[] {"AaAa", "AaBB", "BBAa", "BBBB"}) {
            domains.put(d, vhost(d));
        }
        RouteTable.DomainIndex index = new RouteTable.DomainIndex(domains);
        domains.forEach((d, vh) -> assertSame(vh, index.get(d), d));
        assertNull(index.get("svc5000.ns.svc.cluster.local:9080"));
        assertNull(index.get("AaAaAa"));
        assertNull(index.get(""));
        assertNull(new RouteTable.DomainIndex(Map.of()).get("any"));
    }

    @Test
    void virtualHostsWithTheSameRouteConditionsShareThemAndKeepTheirOwnRoutes() {
        RouteTable.Interner interner = new RouteTable.Interner();
        List<Route> shape = List.of(Route.of(RouteMatch.prefix("/api/"), RouteAction.toCluster("a")),
                Route.of(new RouteMatch(new PathMatcher.Path("/exact"), true, List.of(), List.of(), null, false),
                        RouteAction.toCluster("b")),
                Route.of(RouteMatch.prefix("/"), RouteAction.toCluster("c")));
        CompiledVirtualHost one = new CompiledVirtualHost(VirtualHost.of("one", List.of("one"), shape), interner);
        CompiledVirtualHost two = new CompiledVirtualHost(VirtualHost.of("two", List.of("two"), shape), interner);
        CompiledVirtualHost other = new CompiledVirtualHost(VirtualHost.of("other", List.of("other"),
                List.of(Route.of(RouteMatch.prefix("/"), RouteAction.toCluster("c")))), interner);
        assertArrayEquals(new String[] {"/api/", null, "/"}, one.prefixes);
        assertSame(one.prefixes, two.prefixes);
        // and their conditions: equal route matches compile once, so a selection reads only the route that matched
        assertSame(one.matches, two.matches);
        assertSame(one.routes[2].match, other.routes[0].match);
        assertNotSame(one.routes, two.routes);
        assertNotSame(one.routes[0], two.routes[0]);
        assertArrayEquals(new String[] {"/"}, other.prefixes);
    }
}
