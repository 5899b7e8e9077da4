package dev.inmesh.runtime.router;

import dev.inmesh.api.config.route.Route;
import dev.inmesh.api.config.route.VirtualHost;

/**
 * A virtual host with its routes compiled, in list order. Beside the routes it keeps each route's case-sensitive
 * prefix (or null) in one array, so that the routes a path cannot match are passed over without reading them: with
 * many virtual hosts the compiled routes are rarely in cache, and the shared prefix strings usually are.
 */
final class CompiledVirtualHost {
    final VirtualHost config;
    final CompiledRoute[] routes;
    final String[] prefixes;

    CompiledVirtualHost(VirtualHost config, RouteTable.Interner interner) {
        this.config = config;
        int n = config.routes().size();
        this.routes = new CompiledRoute[n];
        String[] ps = new String[n];
        for (int i = 0; i < n; i++) {
            Route r = config.routes().get(i);
            CompiledRoute c = new CompiledRoute(r, config, interner);
            routes[i] = c;
            ps[i] = c.pathKind == CompiledRoute.PATH_PREFIX && c.caseSensitive ? c.pathValue : null;
        }
        this.prefixes = interner.prefixes(ps);
    }

    /** The first of a virtual host's routes that matches, or null. */
    static CompiledRoute select(String[] prefixes, CompiledRoute[] routes, RouteRequest req, String pathOnly,
                                String query, long random) {
        for (int i = 0; i < prefixes.length; i++) {
            String p = prefixes[i];
            if (p != null && !pathOnly.startsWith(p)) {
                continue;
            }
            CompiledRoute r = routes[i];
            if (r.matches(req, pathOnly, query, random)) {
                return r;
            }
        }
        return null;
    }
}
