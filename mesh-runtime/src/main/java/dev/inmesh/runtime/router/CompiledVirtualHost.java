package dev.inmesh.runtime.router;

import dev.inmesh.api.config.route.Route;
import dev.inmesh.api.config.route.VirtualHost;

/**
 * A virtual host with its routes compiled, in list order. Beside the routes it keeps, in two arrays, what decides
 * whether each route matches: its case-sensitive prefix (or null) and its compiled conditions. Both arrays are
 * shared by the virtual hosts whose routes have the same conditions (in a mesh most do), so that a selection reads
 * them from cache and reads only the one route that matched: with many virtual hosts the routes themselves are
 * rarely in cache.
 */
final class CompiledVirtualHost {
    final VirtualHost config;
    final CompiledRoute[] routes;
    final String[] prefixes;
    final CompiledMatch[] matches;

    CompiledVirtualHost(VirtualHost config, RouteTable.Interner interner) {
        this.config = config;
        int n = config.routes().size();
        this.routes = new CompiledRoute[n];
        String[] ps = new String[n];
        CompiledMatch[] ms = new CompiledMatch[n];
        for (int i = 0; i < n; i++) {
            Route r = config.routes().get(i);
            CompiledRoute c = new CompiledRoute(r, config, interner);
            routes[i] = c;
            ms[i] = c.match;
            ps[i] = c.match.requiredPrefix();
        }
        this.prefixes = interner.prefixes(ps);
        this.matches = interner.matches(ms);
    }

    /** The first of a virtual host's routes that matches, or null. */
    static CompiledRoute select(String[] prefixes, CompiledMatch[] matches, CompiledRoute[] routes, RouteRequest req,
                                String pathOnly, String query, long random) {
        for (int i = 0; i < prefixes.length; i++) {
            String p = prefixes[i];
            if (p != null && !pathOnly.startsWith(p)) {
                continue;
            }
            if (matches[i].matches(req, pathOnly, query, random)) {
                return routes[i];
            }
        }
        return null;
    }
}
