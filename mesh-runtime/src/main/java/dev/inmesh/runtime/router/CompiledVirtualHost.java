package dev.inmesh.runtime.router;

import dev.inmesh.api.config.route.Route;
import dev.inmesh.api.config.route.VirtualHost;
import java.util.ArrayList;
import java.util.List;

/** A virtual host with its routes compiled, in list order. */
final class CompiledVirtualHost {
    final VirtualHost config;
    final CompiledRoute[] routes;

    CompiledVirtualHost(VirtualHost config) {
        this.config = config;
        List<CompiledRoute> rs = new ArrayList<>(config.routes().size());
        for (Route r : config.routes()) {
            rs.add(new CompiledRoute(r, this));
        }
        this.routes = rs.toArray(new CompiledRoute[0]);
    }

    /** The first route that matches, or null. */
    CompiledRoute select(RouteRequest req, String pathOnly, String query, long random) {
        for (CompiledRoute r : routes) {
            if (r.matches(req, pathOnly, query, random)) {
                return r;
            }
        }
        return null;
    }
}
