package dev.inmesh.runtime.router;

import dev.inmesh.api.config.route.ClusterSpecifier;
import dev.inmesh.api.config.route.RegexRewrite;
import dev.inmesh.api.config.route.Route;
import dev.inmesh.api.config.route.RouteAction;
import dev.inmesh.runtime.lb.RegexRewriter;

/** One route compiled: its match conditions (shared, see {@link CompiledMatch}), its action and its rewrites. */
final class CompiledRoute {
    final Route route;
    /** The virtual host the route belongs to. */
    final dev.inmesh.api.config.route.VirtualHost virtualHost;
    /** The route action, or null for a redirect or a direct response. */
    final RouteAction action;
    /** The cluster of a {@code cluster:} action, or null. */
    final String namedCluster;
    /** The action's {@code prefix_rewrite} and {@code host_rewrite_literal} (null without an action). */
    final String prefixRewrite;
    final String hostRewrite;
    /** The route's match conditions, shared with the table's other routes that have the same. */
    final CompiledMatch match;
    /** The path's {@code regex_rewrite} (an action's or a redirect's), or null. */
    private final RegexRewriter rewriteRegex;
    /** The action's {@code host_rewrite_header} (lower case), or null. */
    private final String hostRewriteHeader;
    /** The action's {@code host_rewrite_path_regex}, or null. */
    private final RegexRewriter hostRewriteRegex;
    /**
     * The weights of the action's weighted clusters when the runtime gives them ({@code runtime_key_prefix}: each
     * cluster's {@code PREFIX.NAME}, else its own weight), by index; null otherwise, the clusters' own weights then.
     */
    private final long[] runtimeWeights;
    /** The sum of {@link #runtimeWeights}. */
    private final long runtimeTotal;

    CompiledRoute(Route route, dev.inmesh.api.config.route.VirtualHost virtualHost, RouteTable.Interner interner) {
        this.route = route;
        this.virtualHost = virtualHost;
        this.action = route.action() instanceof RouteAction a ? a : null;
        this.namedCluster = action != null && action.cluster() instanceof ClusterSpecifier.Named n
                ? interner.intern(n.cluster()) : null;
        this.prefixRewrite = action == null ? null : action.prefixRewrite();
        this.hostRewrite = action == null ? null : action.hostRewriteLiteral();
        this.match = interner.match(route.match());
        RegexRewrite rr = action != null ? action.regexRewrite()
                : route.action() instanceof dev.inmesh.api.config.route.RedirectAction r ? r.regexRewrite() : null;
        this.rewriteRegex = rr == null ? null : RegexRewriter.of(rr);
        this.hostRewriteHeader = action == null ? null : action.hostRewriteHeader();
        this.hostRewriteRegex = action == null || action.hostRewritePathRegex() == null ? null
                : RegexRewriter.of(action.hostRewritePathRegex());
        if (action != null && action.cluster() instanceof ClusterSpecifier.Weighted w
                && w.runtimeKeyPrefix() != null) {
            // as Envoy's weighted pick, which reads each cluster's weight from the runtime when the split has a prefix
            long[] weights = new long[w.clusters().size()];
            long total = 0;
            for (int i = 0; i < weights.length; i++) {
                ClusterSpecifier.ClusterWeight c = w.clusters().get(i);
                weights[i] = interner.runtime.integer(w.runtimeKeyPrefix() + "." + c.name(), c.weight());
                total = total + weights[i] < 0 ? Long.MAX_VALUE : total + weights[i];
            }
            this.runtimeWeights = weights;
            this.runtimeTotal = total;
        } else {
            this.runtimeWeights = null;
            this.runtimeTotal = 0;
        }
    }

    /**
     * The cluster of the action's weighted clusters that {@code random} picks ({@link RouteTable#pickWeighted}), with
     * the runtime's weights when the split reads them; null when those sum to 0 or past a uint32, where Envoy's pick
     * finds none.
     */
    ClusterSpecifier.ClusterWeight pickWeighted(long random) {
        ClusterSpecifier.Weighted w = (ClusterSpecifier.Weighted) action.cluster();
        if (runtimeWeights == null) {
            return RouteTable.pickWeighted(w, random);
        }
        return runtimeTotal == 0 || runtimeTotal > 0xFFFFFFFFL ? null
                : RouteTable.pickWeighted(w, runtimeWeights, runtimeTotal, random);
    }

    /**
     * The Host the action rewrites a request to, as Envoy's route entry: {@code host_rewrite_literal}; else
     * {@code host_rewrite_header}'s first value; else {@code host_rewrite_path_regex} applied to the path without its
     * query; null when there is none or it comes out empty (the Host is then left as it is).
     */
    String rewriteHost(RouteRequest req, String pathOnly) {
        if (hostRewrite != null) {
            return hostRewrite;
        }
        String host = null;
        if (hostRewriteHeader != null) {
            host = req.firstHeader(hostRewriteHeader);
        } else if (hostRewriteRegex != null) {
            host = hostRewriteRegex.apply(pathOnly);
        }
        return host == null || host.isEmpty() ? null : host;
    }

    /**
     * The path after {@code prefix_rewrite} or {@code regex_rewrite}, query kept; null when the route does not
     * rewrite, or when its {@code regex_rewrite} leaves no path: as Envoy's {@code rewritePathByPrefixOrRegex}
     * (source/common/router/config_impl.cc), a rewrite that fails changes nothing, and the request (a redirect's
     * location too) keeps its path.
     */
    String rewritePath(String fullPath, String pathOnly, String prefixRewrite) {
        if (prefixRewrite != null) {
            return prefixRewrite + fullPath.substring(Math.min(match.matchedLength(pathOnly), fullPath.length()));
        }
        if (rewriteRegex != null) {
            String rewritten = rewriteRegex.apply(pathOnly);
            return rewritten.isEmpty() ? null : rewritten + fullPath.substring(pathOnly.length());
        }
        return null;
    }
}
