package dev.inmesh.runtime.router;

import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.api.config.core.HeaderMutations;
import dev.inmesh.api.config.core.HeaderValueOption;
import dev.inmesh.api.config.route.ClusterSpecifier;
import dev.inmesh.api.config.route.DirectResponseAction;
import dev.inmesh.api.config.route.HeaderMutationPerRoute;
import dev.inmesh.api.config.route.RedirectAction;
import dev.inmesh.api.config.route.RequestMirrorPolicy;
import dev.inmesh.api.config.route.RouteAction;
import dev.inmesh.api.config.route.RetryPolicy;
import dev.inmesh.api.config.route.RouteConfiguration;
import dev.inmesh.api.config.route.VirtualHost;
import dev.inmesh.runtime.runtime.RuntimeSnapshot;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
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
    private final DomainIndex exact;
    /** Suffix wildcards by the suffix's length, longest first. */
    private final WildcardLevel[] suffixes;
    /** Prefix wildcards by the prefix's length, longest first. */
    private final WildcardLevel[] prefixes;
    private final CompiledVirtualHost fallback;
    /** Whether a virtual host has a {@code require_tls}: only then does a request's scheme count before its route. */
    private final boolean tlsRequired;
    private final List<CompiledVirtualHost> all = new ArrayList<>();
    /** The header conditions of every retry policy in the table (virtual hosts' and routes'), compiled once. */
    private final Map<RetryPolicy, RetryState.Conditions> retryConditions = new IdentityHashMap<>();
    /**
     * The RBAC filters' per-route configs in force on each route that has any (its own, else its virtual host's, by
     * filter name, as Envoy picks the most specific), compiled once.
     */
    private final Map<dev.inmesh.api.config.route.Route, Map<String, RbacFilter>> rbacPerRoute =
            new IdentityHashMap<>();

    /**
     * The local rate limit filters' configs in force on each route that has any (its own, else its virtual host's,
     * by filter name), each with its bucket: one per route config, one per virtual host config shared by its routes.
     */
    private final Map<dev.inmesh.api.config.route.Route, Map<String, LocalRateLimitFilter.Limit>> localRateLimits =
            new IdentityHashMap<>();

    /**
     * The global rate limit filter's {@code rate_limits} of each route that has any (its own or its virtual host's),
     * compiled.
     */
    private final Map<dev.inmesh.api.config.route.Route, RateLimitFilter.Policy> rateLimitPolicies =
            new IdentityHashMap<>();

    /**
     * The header values of every level (route configuration, virtual hosts, routes, weighted clusters) that are
     * formats, compiled: the header rules' and the per-route configs' of the header mutation (query parameter
     * values too) and local rate limit filters.
     */
    private final HeaderFormats headerFormats;

    /**
     * The share each mirror policy of the table with a runtime key copies, by identity, the runtime's value compiled
     * in ({@link #mirrorFraction}).
     */
    private final Map<RequestMirrorPolicy, FractionalPercent> mirrorFractions = new IdentityHashMap<>();

    private RouteTable(RouteConfiguration config, LocalRateLimitFilter.Buckets.Session buckets, String where,
                       RuntimeSnapshot runtime) {
        this.config = config;
        this.headerFormats = headerFormats(config);
        this.tlsRequired = config.virtualHosts().stream()
                .anyMatch(vh -> vh.requireTls() != VirtualHost.TlsRequirement.NONE);
        TreeMap<Integer, Map<String, CompiledVirtualHost>> sfx = new TreeMap<>((a, b) -> b - a);
        TreeMap<Integer, Map<String, CompiledVirtualHost>> pfx = new TreeMap<>((a, b) -> b - a);
        CompiledVirtualHost star = null;
        Map<String, CompiledVirtualHost> exactDomains = new HashMap<>();
        Interner interner = new Interner(runtime);
        for (VirtualHost vh : config.virtualHosts()) {
            CompiledVirtualHost c = new CompiledVirtualHost(vh, interner);
            all.add(c);
            compileRetryConditions(vh.retryPolicy());
            LuaFilter.compilePerRoute("virtual host " + vh.name(), vh.lua());
            for (int i = 0; i < vh.routes().size(); i++) {
                dev.inmesh.api.config.route.Route r = vh.routes().get(i);
                if (r.action() instanceof RouteAction a) {
                    compileRetryConditions(a.retryPolicy());
                    for (RequestMirrorPolicy m : a.requestMirrorPolicies()) {
                        if (m.runtimeKey() != null) {
                            mirrorFractions.put(m, runtime.fraction(m.runtimeKey(), m.runtimeFraction()));
                        }
                    }
                }
                compileRbacPerRoute(vh, r);
                LuaFilter.compilePerRoute("virtual host " + vh.name() + " routes[" + i + "]", r.lua());
                compileLocalRateLimits(vh, r, where + "/" + vh.name(), i, buckets);
                RateLimitFilter.Policy policy = RateLimitFilter.Policy.compile(vh, r);
                if (policy != null) {
                    rateLimitPolicies.put(r, policy);
                }
            }
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
                    exactDomains.put(domain, c);
                }
            }
        }
        this.fallback = star;
        this.exact = new DomainIndex(exactDomains);
        this.suffixes = sfx.entrySet().stream().map(e -> new WildcardLevel(e.getKey(), e.getValue()))
                .toArray(WildcardLevel[]::new);
        this.prefixes = pfx.entrySet().stream().map(e -> new WildcardLevel(e.getKey(), e.getValue()))
                .toArray(WildcardLevel[]::new);
    }

    /**
     * The formats of the header values to add of every level of a route configuration, request's and response's: its
     * header rules, and those of the per-route configs of the header mutation filter ({@link HeaderMutationFilter},
     * with its query parameter values) and of the local rate limit filter ({@link LocalRateLimitFilter}), which Envoy
     * formats as well.
     */
    private static HeaderFormats headerFormats(RouteConfiguration config) {
        List<List<HeaderValueOption>> out = new ArrayList<>();
        List<List<HeaderMutationPerRoute.QueryParameterMutation>> queries = new ArrayList<>();
        java.util.function.Consumer<HeaderMutations> level = m -> {
            out.add(m.requestHeadersToAdd());
            out.add(m.responseHeadersToAdd());
        };
        java.util.function.Consumer<Map<String, dev.inmesh.api.config.route.FilterPerRoute>> perRoute = m -> {
            for (dev.inmesh.api.config.route.FilterPerRoute p : m.values()) {
                if (p instanceof HeaderMutationPerRoute h) {
                    out.addAll(HeaderMutationFilter.appends(h.mutations()));
                    queries.add(h.mutations().query());
                }
            }
        };
        java.util.function.Consumer<Map<String, dev.inmesh.api.config.route.LocalRateLimit>> limits = m -> {
            for (dev.inmesh.api.config.route.LocalRateLimit l : m.values()) {
                out.add(l.responseHeadersToAdd());
                out.add(l.requestHeadersToAddWhenNotEnforced());
            }
        };
        level.accept(config.headers());
        perRoute.accept(config.filterConfigs());
        for (VirtualHost vh : config.virtualHosts()) {
            level.accept(vh.headers());
            perRoute.accept(vh.filterConfigs());
            limits.accept(vh.localRateLimit());
            for (dev.inmesh.api.config.route.Route r : vh.routes()) {
                level.accept(r.headers());
                perRoute.accept(r.filterConfigs());
                limits.accept(r.localRateLimit());
                if (r.action() instanceof RouteAction a && a.cluster() instanceof ClusterSpecifier.Weighted w) {
                    w.clusters().forEach(c -> level.accept(c.headers()));
                }
            }
        }
        return HeaderFormats.compile(out, queries);
    }

    /** The header values of the table's levels that are formats, compiled ({@link HeaderMutator}). */
    public HeaderFormats headerFormats() {
        return headerFormats;
    }

    private void compileRetryConditions(RetryPolicy policy) {
        if (policy != null) {
            retryConditions.computeIfAbsent(policy, RetryState.Conditions::of);
        }
    }

    private void compileRbacPerRoute(VirtualHost vh, dev.inmesh.api.config.route.Route r) {
        if (vh.rbac().isEmpty() && r.rbac().isEmpty()) {
            return;
        }
        Map<String, dev.inmesh.api.config.rbac.Rbac> merged = new HashMap<>(vh.rbac());
        merged.putAll(r.rbac());
        Map<String, RbacFilter> compiled = new HashMap<>();
        merged.forEach((name, config) -> compiled.put(name, RbacFilter.compile(name, config)));
        rbacPerRoute.put(r, Map.copyOf(compiled));
    }

    private void compileLocalRateLimits(VirtualHost vh, dev.inmesh.api.config.route.Route r, String where, int index,
                                        LocalRateLimitFilter.Buckets.Session buckets) {
        if (vh.localRateLimit().isEmpty() && r.localRateLimit().isEmpty()) {
            return;
        }
        Map<String, LocalRateLimitFilter.Limit> limits = new HashMap<>();
        vh.localRateLimit().forEach((name, c) -> limits.put(name,
                new LocalRateLimitFilter.Limit(c, buckets.limiter(where + "//" + name, c))));
        r.localRateLimit().forEach((name, c) -> limits.put(name,
                new LocalRateLimitFilter.Limit(c, buckets.limiter(where + "/" + index + "/" + name, c))));
        localRateLimits.put(r, Map.copyOf(limits));
    }

    /**
     * The config (with its bucket) of the local rate limit filter {@code filterName} on a request's route: the
     * route's own, else its virtual host's; null when neither has one (or no route matched), so the filter's own
     * applies.
     */
    LocalRateLimitFilter.Limit localRateLimit(RouteResult result, String filterName) {
        if (localRateLimits.isEmpty()) {
            return null;
        }
        dev.inmesh.api.config.route.Route r = result instanceof RouteResult.Forward f ? f.route()
                : result instanceof RouteResult.Redirect d ? d.route()
                : result instanceof RouteResult.DirectResponse d ? d.route() : null;
        Map<String, LocalRateLimitFilter.Limit> m = r == null ? null : localRateLimits.get(r);
        return m == null ? null : m.get(filterName);
    }

    /**
     * The global rate limit filter's {@code rate_limits} of a route (its own and its virtual host's), compiled; null
     * when neither has any.
     */
    RateLimitFilter.Policy rateLimitPolicy(dev.inmesh.api.config.route.Route route) {
        return rateLimitPolicies.isEmpty() || route == null ? null : rateLimitPolicies.get(route);
    }

    /**
     * The RBAC filters' per-route configs ({@code RBACPerRoute}) in force for a routed request, compiled, by the name
     * of the filter each replaces; empty when its route and virtual host have none (or no route matched).
     */
    Map<String, RbacFilter> rbacPerRoute(RouteResult result) {
        dev.inmesh.api.config.route.Route r = result instanceof RouteResult.Forward f ? f.route()
                : result instanceof RouteResult.Redirect d ? d.route()
                : result instanceof RouteResult.DirectResponse d ? d.route() : null;
        Map<String, RbacFilter> m = r == null ? null : rbacPerRoute.get(r);
        return m == null ? Map.of() : m;
    }

    /** A retry policy of this table with its header conditions compiled (compiled now if it is not the table's). */
    RetryState.Conditions retryConditions(RetryPolicy policy) {
        RetryState.Conditions c = policy == null ? RetryState.Conditions.NONE : retryConditions.get(policy);
        return c != null ? c : RetryState.Conditions.of(policy);
    }

    /**
     * The share of requests a mirror policy of this table copies: the runtime's value of its runtime key, compiled in,
     * else its own {@code runtime_fraction}; null for all.
     */
    FractionalPercent mirrorFraction(RequestMirrorPolicy policy) {
        return policy.runtimeKey() == null ? policy.runtimeFraction()
                : mirrorFractions.getOrDefault(policy, policy.runtimeFraction());
    }

    /** Compiles a route configuration (validated by its record) into a table, without runtime values. */
    public static RouteTable compile(RouteConfiguration config) {
        return compile(config, new LocalRateLimitFilter.Buckets().session(), "", RuntimeSnapshot.EMPTY);
    }

    /**
     * Compiles a route configuration, taking the buckets of its local rate limit configs from {@code buckets} at
     * {@code where} (the table's place: its RDS name, or its connection manager's for an inline one), and the values
     * of the runtime keys its routes name (their {@code runtime_fraction}, weighted clusters' {@code
     * runtime_key_prefix} and mirror policies' {@code runtime_fraction}) from {@code runtime}, once.
     */
    public static RouteTable compile(RouteConfiguration config, LocalRateLimitFilter.Buckets.Session buckets,
                                     String where, RuntimeSnapshot runtime) {
        return new RouteTable(config, buckets, where, runtime);
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
        String host = hostKey(authority);
        int slot = exact.slot(host);
        return slot >= 0 ? exact.vhost(slot) : findWildcard(host);
    }

    /** The Host header as domains are compared: lower case, without the port when the table ignores it. */
    private String hostKey(String authority) {
        String host = authority == null ? "" : authority;
        if (config.ignorePortInHostMatching()) {
            host = stripPort(host);
        }
        return lowerAscii(host);
    }

    /** The virtual host of a suffix wildcard, a prefix wildcard or {@code *}, for a host no exact domain took. */
    private CompiledVirtualHost findWildcard(String host) {
        CompiledVirtualHost vh;
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
        String host = hostKey(req.authority());
        int slot = exact.slot(host);
        CompiledVirtualHost vh = slot >= 0 ? null : findWildcard(host);
        if (slot < 0 && vh == null) {
            return new RouteResult.NoRoute(null);
        }
        String full = req.path() == null ? "" : req.path();
        if (tlsRequired) {
            RouteResult redirect = tlsRedirect((slot >= 0 ? exact.vhost(slot) : vh).config, req, full);
            if (redirect != null) {
                return redirect;
            }
        }
        int q = full.indexOf('?');
        int hash = full.indexOf('#');
        int pathEnd = q >= 0 ? (hash >= 0 ? Math.min(q, hash) : q) : (hash >= 0 ? hash : full.length());
        String pathOnly = full.substring(0, pathEnd);
        String query = q >= 0 ? full.substring(q + 1, hash > q ? hash : full.length()) : null;
        // an exact domain's routes come from the index's slot, not through the virtual host: one read less
        CompiledRoute r = slot >= 0
                ? CompiledVirtualHost.select(exact.prefixes(slot), exact.matches(slot), exact.routes(slot), req,
                        pathOnly, query, random)
                : CompiledVirtualHost.select(vh.prefixes, vh.matches, vh.routes, req, pathOnly, query, random);
        if (r == null) {
            return new RouteResult.NoRoute(slot >= 0 ? exact.vhost(slot).config : vh.config);
        }
        RouteAction a = r.action;
        if (a != null) {
            String cluster = r.namedCluster;
            ClusterSpecifier.ClusterWeight picked = null;
            if (cluster != null) {
                // a named cluster: nothing more to read
            } else if (a.cluster() instanceof ClusterSpecifier.FromHeader h) {
                cluster = headerOrEmpty(req, h.header());
            } else {
                picked = r.pickWeighted(random);
                if (picked == null) {
                    // as Envoy's weighted pick, which finds no cluster when the runtime's weights sum to 0
                    return new RouteResult.NoRoute(r.virtualHost);
                }
                cluster = picked.clusterHeader().isEmpty() ? picked.name()
                        : headerOrEmpty(req, picked.clusterHeader());
            }
            String newPath = r.rewritePath(full, pathOnly, r.prefixRewrite);
            // the route's own Host rewrites; a picked weighted cluster's literal goes before them (HeaderMutator)
            String newHost = r.rewriteHost(req, pathOnly);
            return new RouteResult.Forward(r.virtualHost, r.route, a, cluster, picked, newPath, newHost);
        } else if (r.route.action() instanceof RedirectAction redirect) {
            return new RouteResult.Redirect(r.virtualHost, r.route, redirect.responseCode(),
                    Redirects.location(redirect, r, req, full, pathOnly));
        }
        DirectResponseAction d = (DirectResponseAction) r.route.action();
        // RFC 9110 10.2.2: a 201 or 3xx names a resource; Envoy names the request's own URL
        String location = d.status() == 201 || d.status() >= 300 && d.status() < 400
                ? Redirects.requestUrl(r, req, full, pathOnly) : null;
        return new RouteResult.DirectResponse(r.virtualHost, r.route, d.status(), d.body(), location);
    }

    /**
     * The route of Envoy's redirect for a virtual host's {@code require_tls}: no name, no header rules, no filter
     * configs of its own.
     */
    static final dev.inmesh.api.config.route.Route TLS_REDIRECT = dev.inmesh.api.config.route.Route.of(
            dev.inmesh.api.config.route.RouteMatch.prefix("/"),
            new RedirectAction("https", null, 0, null, null, null, 301, false));

    /**
     * As Envoy's virtual host with {@code require_tls}, before its routes: a request whose {@code x-forwarded-proto}
     * (the connection manager set it, else the connection's scheme) is not {@code https} gets a 301 to the same Host
     * and path on {@code https}, every such request ({@code ALL}) or those not marked {@code x-envoy-internal: true}
     * ({@code EXTERNAL_ONLY}). Null: the routes decide.
     */
    private static RouteResult tlsRedirect(VirtualHost vh, RouteRequest req, String fullPath) {
        if (vh.requireTls() == VirtualHost.TlsRequirement.NONE) {
            return null;
        }
        String proto = req.header("x-forwarded-proto");
        if (proto == null) {
            proto = req.scheme();
        }
        if (proto == null || proto.equals("https") || vh.requireTls() == VirtualHost.TlsRequirement.EXTERNAL_ONLY
                && "true".equals(req.header("x-envoy-internal"))) {
            return null;
        }
        String host = req.authority() == null ? "" : req.authority();
        return new RouteResult.Redirect(null, TLS_REDIRECT, 301, "https://" + host + fullPath);
    }

    /**
     * The request's own URL as a redirect that changes nothing builds it (scheme, Host with its port, path and
     * query): what Envoy's {@code router_check_tool} reports as a direct response's redirect.
     */
    public static String requestUrl(RouteRequest req) {
        String full = req.path() == null ? "" : req.path();
        return Redirects.requestUrl(null, req, full, full);
    }

    /** A {@code cluster_header}'s cluster: the header's first value, as Envoy reads it; "" when absent. */
    private static String headerOrEmpty(RouteRequest req, String name) {
        String v = req.firstHeader(name.toLowerCase(Locale.ROOT));
        return v == null ? "" : v;
    }

    /** Whether one header condition holds, for tools that check headers outside a route. */
    public static boolean headerMatches(dev.inmesh.api.config.route.HeaderMatcher m,
                                        java.util.function.Function<String, String> headers) {
        return HeaderMatchers.compile(m).matches(headers);
    }

    /**
     * The cluster a named or weighted specifier picks ({@link #pickWeighted} with {@code random}); null for one
     * that names no cluster itself (from a header, a plugin).
     */
    public static String pickCluster(ClusterSpecifier spec, long random) {
        if (spec instanceof ClusterSpecifier.Named n) {
            return n.cluster();
        }
        return spec instanceof ClusterSpecifier.Weighted w ? pickWeighted(w, random).name() : null;
    }

    /** Envoy's weighted pick: the first cluster whose cumulative range holds {@code random % total}. */
    public static ClusterSpecifier.ClusterWeight pickWeighted(ClusterSpecifier.Weighted w, long random) {
        return pickWeighted(w, null, w.totalWeight(), random);
    }

    /**
     * The first cluster of {@code w} whose cumulative range holds {@code random % total}, the ranges made of
     * {@code weights} (by the cluster's index; null: the clusters' own weights), which sum to {@code total} (above 0).
     */
    static ClusterSpecifier.ClusterWeight pickWeighted(ClusterSpecifier.Weighted w, long[] weights, long total,
                                                       long random) {
        long selected = Long.remainderUnsigned(random, total);
        long begin = 0;
        for (int i = 0; i < w.clusters().size(); i++) {
            long end = begin + (weights == null ? w.clusters().get(i).weight() : weights[i]);
            if (selected >= begin && selected < end) {
                return w.clusters().get(i);
            }
            begin = end;
        }
        throw new IllegalStateException("weights sum to " + total + " but no cluster holds " + selected);
    }

    /**
     * The host without its port, as Envoy's virtual host lookup drops it: from the last {@code :} outside an IPv6
     * literal's brackets, whatever follows it (an empty or non-numeric port too).
     */
    static String stripPort(String host) {
        int colon = host.lastIndexOf(':');
        return colon < 0 || host.lastIndexOf(']') > colon ? host : host.substring(0, colon);
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

    /**
     * Exact domains in an open-addressed table. A slot is four consecutive references (16 bytes with compressed
     * references, so a cache line holds four): the domain and what a selection reads of its virtual host (routes,
     * their prefixes, their conditions), so that a probe reads one line, then the key (its cached hash, then its
     * bytes) and the routes side by side. A {@link HashMap} reads
     * bucket, node, key and value one after the other: that chain is what a lookup costs when the table is too large
     * to stay in cache. The virtual host itself, needed only when no route matches, is in a parallel array.
     */
    static final class DomainIndex {
        private static final int KEY = 0;
        private static final int ROUTES = 1;
        private static final int PREFIXES = 2;
        private static final int MATCHES = 3;
        private static final int STRIDE = 4;

        /** STRIDE references per slot; a null key is an empty slot. */
        private final Object[] slots;
        private final CompiledVirtualHost[] vhosts;
        private final int mask;

        DomainIndex(Map<String, CompiledVirtualHost> domains) {
            // At most a quarter full: a probe that passes another domain's slot reads that domain's key (a cache
            // miss in a large table), and at up to half full one lookup in three did; 16 bytes a slot, so 64 to 128
            // bytes of slots per domain.
            int capacity = Integer.highestOneBit(Math.max(4, domains.size() * 4 - 1)) << 1;
            slots = new Object[capacity * STRIDE];
            vhosts = new CompiledVirtualHost[capacity];
            mask = capacity - 1;
            for (Map.Entry<String, CompiledVirtualHost> entry : domains.entrySet()) {
                int i = spread(entry.getKey().hashCode()) & mask;
                while (slots[i * STRIDE + KEY] != null) {
                    i = (i + 1) & mask;
                }
                int at = i * STRIDE;
                CompiledVirtualHost vh = entry.getValue();
                slots[at + KEY] = entry.getKey();
                slots[at + ROUTES] = vh.routes;
                slots[at + PREFIXES] = vh.prefixes;
                slots[at + MATCHES] = vh.matches;
                vhosts[i] = vh;
            }
        }

        CompiledVirtualHost get(String key) {
            int slot = slot(key);
            return slot < 0 ? null : vhost(slot);
        }

        /** The slot of {@code key}, or -1. */
        int slot(String key) {
            int h = key.hashCode();
            for (int i = spread(h) & mask; ; i = (i + 1) & mask) {
                String k = (String) slots[i * STRIDE + KEY];
                if (k == null) {
                    return -1;
                }
                if (k.hashCode() == h && k.equals(key)) {
                    return i;
                }
            }
        }

        CompiledVirtualHost vhost(int slot) {
            return vhosts[slot];
        }

        CompiledRoute[] routes(int slot) {
            return (CompiledRoute[]) slots[slot * STRIDE + ROUTES];
        }

        String[] prefixes(int slot) {
            return (String[]) slots[slot * STRIDE + PREFIXES];
        }

        CompiledMatch[] matches(int slot) {
            return (CompiledMatch[]) slots[slot * STRIDE + MATCHES];
        }

        private static int spread(int h) {
            return (h ^ (h >>> 16)) * 0x9E3779B1;
        }
    }

    private record WildcardLevel(int length, Map<String, CompiledVirtualHost> domains) {}

    /**
     * One instance per table build: equal strings and equal header conditions of different routes become one object,
     * which keeps a large table small and its hot parts in cache (Istio repeats {@code /} and the same header
     * matches across thousands of virtual hosts).
     */
    static final class Interner {
        /** The runtime whose values the table's routes take. */
        final RuntimeSnapshot runtime;
        private final Map<String, String> strings = new HashMap<>();
        private final Map<List<String>, String[]> prefixLists = new HashMap<>();
        private final Map<dev.inmesh.api.config.route.RouteMatch, CompiledMatch> matches = new HashMap<>();
        private final Map<List<CompiledMatch>, CompiledMatch[]> matchLists = new HashMap<>();
        private final Map<List<dev.inmesh.api.config.route.HeaderMatcher>, HeaderMatchers.Compiled> headers =
                new HashMap<>();

        Interner(RuntimeSnapshot runtime) {
            this.runtime = runtime;
        }

        /** An interner whose routes take no runtime values (their defaults). */
        Interner() {
            this(RuntimeSnapshot.EMPTY);
        }

        String intern(String s) {
            return strings.computeIfAbsent(s, k -> k);
        }

        /**
         * One array for equal lists of route prefixes, and one for equal lists of conditions: virtual hosts of one
         * mesh mostly share their route shapes (Istio's default route is {@code /} alone), so the arrays a selection
         * reads first are usually in cache.
         */
        String[] prefixes(String[] ps) {
            return prefixLists.computeIfAbsent(java.util.Arrays.asList(ps), k -> ps);
        }

        CompiledMatch[] matches(CompiledMatch[] ms) {
            return matchLists.computeIfAbsent(java.util.Arrays.asList(ms), k -> ms);
        }

        /** One compiled condition for equal route matches (records: equal by content). */
        CompiledMatch match(dev.inmesh.api.config.route.RouteMatch m) {
            return matches.computeIfAbsent(m, k -> new CompiledMatch(k, this));
        }

        /** One condition for all of a route's header matchers (ANDed), or null when it has none. */
        HeaderMatchers.Compiled headerMatchers(List<dev.inmesh.api.config.route.HeaderMatcher> ms) {
            return ms.isEmpty() ? null : headers.computeIfAbsent(ms, HeaderMatchers::compileAll);
        }
    }
}
