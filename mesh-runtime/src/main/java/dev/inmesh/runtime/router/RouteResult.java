package dev.inmesh.runtime.router;

import dev.inmesh.api.config.route.ClusterSpecifier;
import dev.inmesh.api.config.route.Route;
import dev.inmesh.api.config.route.RouteAction;
import dev.inmesh.api.config.route.VirtualHost;

/** What a route table decided for one request. */
public sealed interface RouteResult {
    /** The route a result came from, or null when none matched. */
    static dev.inmesh.api.config.route.Route routeOf(RouteResult r) {
        if (r instanceof Forward f) {
            return f.route();
        } else if (r instanceof Redirect d) {
            return d.route();
        } else if (r instanceof DirectResponse d) {
            return d.route();
        }
        return null;
    }

    /** The operation of the route a result came from ({@code decorator.operation}), or null. */
    static String decorator(RouteResult r) {
        dev.inmesh.api.config.route.Route route = routeOf(r);
        return route == null ? null : route.decorator();
    }


    /** The virtual host chosen, or null when none matched the Host header. */
    VirtualHost virtualHost();

    /** No virtual host or no route matched: Envoy answers 404 with response flag NR. */
    record NoRoute(VirtualHost virtualHost) implements RouteResult {}

    /**
     * Forward upstream.
     *
     * @param cluster the cluster name; empty when a {@code cluster_header} was absent (503 NC)
     * @param weightedCluster the entry of a weighted split that was picked, or null
     * @param rewrittenPath the path after rewrites (query kept), or null when unchanged
     * @param rewrittenHost the Host after the route action's own rewrites ({@code host_rewrite_literal}, ...), or null
     *     when they leave it; the picked weighted cluster's {@code host_rewrite_literal} is its own
     *     ({@link #weightedHost})
     */
    record Forward(VirtualHost virtualHost, Route route, RouteAction action, String cluster,
                   ClusterSpecifier.ClusterWeight weightedCluster, String rewrittenPath, String rewrittenHost)
            implements RouteResult {
        /** The picked weighted cluster's {@code host_rewrite_literal}, or null. */
        public String weightedHost() {
            return weightedCluster == null ? null : weightedCluster.hostRewriteLiteral();
        }
    }

    /** Answer with a redirect to {@code location}. */
    record Redirect(VirtualHost virtualHost, Route route, int status, String location) implements RouteResult {}

    /**
     * Answer directly.
     *
     * @param location the {@code Location} of a 201 or 3xx answer (the request's own URL), null for other statuses
     */
    record DirectResponse(VirtualHost virtualHost, Route route, int status, String body, String location)
            implements RouteResult {}
}
