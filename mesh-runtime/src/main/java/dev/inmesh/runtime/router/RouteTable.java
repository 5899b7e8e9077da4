package dev.inmesh.runtime.router;

import dev.inmesh.api.config.route.ClusterSpecifier;
import dev.inmesh.api.config.route.DirectResponseAction;
import dev.inmesh.api.config.route.RedirectAction;
import dev.inmesh.api.config.route.RouteAction;
import dev.inmesh.api.config.route.RouteConfiguration;
import dev.inmesh.api.config.route.VirtualHost;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * A compiled {@link RouteConfiguration}: immutable, built once per configuration, safe to share between threads.
 *
 * <p>Virtual host selection follows Envoy: the Host header, lower-cased (and without its port when
 * {@code ignore_port_in_host_matching}), is looked up among exact domains (a hash lookup), then among suffix
 * wildcards ({@code *.example.com}) longest first, then prefix wildcards ({@code example.*}) longest first, then the
 * {@code *} virtual host. A wildcard never matches an empty part. Each step is one hash lookup per distinct wildcard
 * length, so the cost does not grow with the number of virtual hosts. Routes are then tried in list order.
 */
public final class RouteTable {
    private final RouteConfiguration config;
    private final Map<String, CompiledVirtualHost> exact = new HashMap<>();
    /** Suffix wildcards by the suffix's length, longest first. */
    private final WildcardLevel[] suffixes;
    /** Prefix wildcards by the prefix's length, longest first. */
    private final WildcardLevel[] prefixes;
    private final CompiledVirtualHost fallback;
    private final List<CompiledVirtualHost> all = new ArrayList<>();

    private RouteTable(RouteConfiguration config) {
        this.config = config;
        TreeMap<Integer, Map<String, CompiledVirtualHost>> sfx = new TreeMap<>((a, b) -> b - a);
        TreeMap<Integer, Map<String, CompiledVirtualHost>> pfx = new TreeMap<>((a, b) -> b - a);
        CompiledVirtualHost star = null;
        for (VirtualHost vh : config.virtualHosts()) {
            CompiledVirtualHost c = new CompiledVirtualHost(vh);
            all.add(c);
            for (String d : vh.domains()) {
                String domain = d.toLowerCase(Locale.ROOT);
                if (domain.equals("*")) {
                    star = c;
                } else if (domain.startsWith("*")) {
                    String s = domain.substring(1);
                    sfx.computeIfAbsent(s.length(), k -> new HashMap<>()).put(s, c);
                } else if (domain.endsWith("*")) {
                    String p = domain.substring(0, domain.length() - 1);
                    pfx.computeIfAbsent(p.length(), k -> new HashMap<>()).put(p, c);
                } else {
                    exact.put(domain, c);
                }
            }
        }
        this.fallback = star;
        this.suffixes = sfx.entrySet().stream().map(e -> new WildcardLevel(e.getKey(), e.getValue()))
                .toArray(WildcardLevel[]::new);
        this.prefixes = pfx.entrySet().stream().map(e -> new WildcardLevel(e.getKey(), e.getValue()))
                .toArray(WildcardLevel[]::new);
    }

    /** Compiles a route configuration (validated by its record) into a table. */
    public static RouteTable compile(RouteConfiguration config) {
        return new RouteTable(config);
    }

    public RouteConfiguration config() {
        return config;
    }

    public String name() {
        return config.name();
    }

    /** The virtual host for a Host header value, or null. */
    public VirtualHost virtualHost(String authority) {
        CompiledVirtualHost vh = findVirtualHost(authority);
        return vh == null ? null : vh.config;
    }

    CompiledVirtualHost findVirtualHost(String authority) {
        String host = authority == null ? "" : authority;
        if (config.ignorePortInHostMatching()) {
            host = stripPort(host);
        }
        host = lowerAscii(host);
        CompiledVirtualHost vh = exact.get(host);
        if (vh != null) {
            return vh;
        }
        int len = host.length();
        for (WildcardLevel level : suffixes) {
            if (len > level.length) {
                vh = level.domains.get(host.substring(len - level.length));
                if (vh != null) {
                    return vh;
                }
            }
        }
        for (WildcardLevel level : prefixes) {
            if (len > level.length) {
                vh = level.domains.get(host.substring(0, level.length));
                if (vh != null) {
                    return vh;
                }
            }
        }
        return fallback;
    }

    /**
     * Routes a request. {@code random} is the request's random value: it picks among weighted clusters
     * ({@code random % total}) and decides runtime fractions ({@code random % denominator < numerator}).
     */
    public RouteResult route(RouteRequest req, long random) {
        CompiledVirtualHost vh = findVirtualHost(req.authority());
        if (vh == null) {
            return new RouteResult.NoRoute(null);
        }
        String full = req.path() == null ? "" : req.path();
        int q = full.indexOf('?');
        int hash = full.indexOf('#');
        int pathEnd = q >= 0 ? (hash >= 0 ? Math.min(q, hash) : q) : (hash >= 0 ? hash : full.length());
        String pathOnly = full.substring(0, pathEnd);
        String query = q >= 0 ? full.substring(q + 1, hash > q ? hash : full.length()) : null;
        CompiledRoute r = vh.select(req, pathOnly, query, random);
        if (r == null) {
            return new RouteResult.NoRoute(vh.config);
        }
        if (r.route.action() instanceof RouteAction a) {
            String cluster;
            ClusterSpecifier.ClusterWeight picked = null;
            ClusterSpecifier spec = a.cluster();
            if (spec instanceof ClusterSpecifier.Named n) {
                cluster = n.cluster();
            } else if (spec instanceof ClusterSpecifier.FromHeader h) {
                String v = req.header(h.header().toLowerCase(Locale.ROOT));
                cluster = v == null ? "" : v;
            } else {
                picked = pickWeighted((ClusterSpecifier.Weighted) spec, random);
                cluster = picked.clusterHeader().isEmpty() ? picked.name()
                        : headerOrEmpty(req, picked.clusterHeader());
            }
            String newPath = r.rewritePath(full, pathOnly, a.prefixRewrite());
            return new RouteResult.Forward(vh.config, r.route, a, cluster, picked, newPath, a.hostRewriteLiteral());
        } else if (r.route.action() instanceof RedirectAction redirect) {
            return new RouteResult.Redirect(vh.config, r.route, redirect.responseCode(),
                    Redirects.location(redirect, r, req, full, pathOnly));
        }
        DirectResponseAction d = (DirectResponseAction) r.route.action();
        return new RouteResult.DirectResponse(vh.config, r.route, d.status(), d.body());
    }

    private static String headerOrEmpty(RouteRequest req, String name) {
        String v = req.header(name.toLowerCase(Locale.ROOT));
        return v == null ? "" : v;
    }

    /** Whether one header condition holds, for tools that check headers outside a route. */
    public static boolean headerMatches(dev.inmesh.api.config.route.HeaderMatcher m,
                                        java.util.function.Function<String, String> headers) {
        return HeaderMatchers.compile(m).matches(headers);
    }

    /** Envoy's weighted pick: the first cluster whose cumulative range holds {@code random % total}. */
    static ClusterSpecifier.ClusterWeight pickWeighted(ClusterSpecifier.Weighted w, long random) {
        long total = w.totalWeight();
        long selected = Long.remainderUnsigned(random, total);
        long begin = 0;
        for (ClusterSpecifier.ClusterWeight c : w.clusters()) {
            long end = begin + c.weight();
            if (selected >= begin && selected < end) {
                return c;
            }
            begin = end;
        }
        throw new IllegalStateException("weights sum to " + total + " but no cluster holds " + selected);
    }

    /** The host without a trailing {@code :port} (IPv6 literals in brackets keep their colons). */
    static String stripPort(String host) {
        int colon = host.lastIndexOf(':');
        if (colon < 0) {
            return host;
        }
        int bracket = host.lastIndexOf(']');
        if (bracket > colon) {
            return host;
        }
        for (int i = colon + 1; i < host.length(); i++) {
            if (!Character.isDigit(host.charAt(i))) {
                return host;
            }
        }
        return colon + 1 == host.length() ? host : host.substring(0, colon);
    }

    private static String lowerAscii(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c >= 'A' && c <= 'Z') {
                return s.toLowerCase(Locale.ROOT);
            }
        }
        return s;
    }

    private record WildcardLevel(int length, Map<String, CompiledVirtualHost> domains) {}
}
