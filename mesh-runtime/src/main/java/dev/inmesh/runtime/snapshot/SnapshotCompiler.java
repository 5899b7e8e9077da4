package dev.inmesh.runtime.snapshot;

import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.api.config.listener.TcpProxy;
import dev.inmesh.api.config.route.ClusterSpecifier;
import dev.inmesh.api.config.route.Route;
import dev.inmesh.api.config.route.RouteAction;
import dev.inmesh.api.config.route.RouteConfiguration;
import dev.inmesh.api.config.route.VirtualHost;
import dev.inmesh.runtime.accesslog.AccessLogs;
import dev.inmesh.runtime.listener.FilterChainSelector;
import dev.inmesh.runtime.router.LocalRateLimitFilter;
import dev.inmesh.runtime.router.RbacFilter;
import dev.inmesh.runtime.router.RouteTable;
import dev.inmesh.runtime.runtime.RuntimeSnapshot;
import dev.inmesh.runtime.xds.InvalidResourceException;
import dev.inmesh.runtime.xds.ResourceBundle;
import dev.inmesh.runtime.xds.ResourceType;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Compiles a {@link ResourceBundle} into a {@link MeshSnapshot}: route tables, inline route tables, the connection
 * managers' RBAC filters and the filter chains' RBAC network filters, listener indexes by address and port. Checks what spans resources: a route configuration with {@code validate_clusters} may only
 * name known clusters (as Envoy, the whole configuration is rejected otherwise; for a route table inline in a
 * listener, the listener is) when it loads, not again when a cluster it names goes, and a TCP proxy's clusters must
 * exist. The parsers resolve an unset
 * {@code validate_clusters} as Envoy does: on for an inline {@code route_config}, off for RDS. An RDS name with no route configuration yet compiles to an empty table (every request 404 NR), as Envoy
 * serves while a route is missing.
 */
public final class SnapshotCompiler {
    private SnapshotCompiler() {}

    /**
     * Compiles a bundle, its runtime its bootstrap's layers with no admin values; fails with the first resource that
     * cannot be used, by name.
     */
    public static MeshSnapshot compile(ResourceBundle bundle, long generation) throws InvalidResourceException {
        List<InvalidResourceException> problems = validate(bundle);
        if (!problems.isEmpty()) {
            throw problems.get(0);
        }
        return compileUnchecked(bundle, generation);
    }

    /**
     * Compiles a bundle as {@link #compile(ResourceBundle, long)}, its local rate limit filters' buckets taken from
     * {@code buckets} (the buckets of the snapshot before, where unchanged), its routes taking their runtime values
     * from {@code runtime}, checking only what {@code loaded} (the bundle of the snapshot before) does not hold as it
     * is ({@link #validate(ResourceBundle, ResourceBundle)}).
     */
    public static MeshSnapshot compile(ResourceBundle bundle, ResourceBundle loaded, long generation,
                                       LocalRateLimitFilter.Buckets.Session buckets, RuntimeSnapshot runtime)
            throws InvalidResourceException {
        List<InvalidResourceException> problems = validate(bundle, loaded);
        if (!problems.isEmpty()) {
            throw problems.get(0);
        }
        return compileUnchecked(bundle, generation, buckets, runtime);
    }

    /** Every cross-reference problem of a bundle, each naming its resource. */
    public static List<InvalidResourceException> validate(ResourceBundle bundle) {
        return validate(bundle, ResourceBundle.EMPTY);
    }

    /**
     * Every cross-reference problem of a bundle's route configurations and listeners that {@code loaded} does not
     * hold as they are: as in Envoy, {@code validate_clusters} is checked when a route table loads (an RDS update, a
     * listener with its inline table), and a cluster deleted later (a CDS update) leaves a route table that names it
     * loaded, its routes to it answered as routes to an unknown cluster.
     */
    public static List<InvalidResourceException> validate(ResourceBundle bundle, ResourceBundle loaded) {
        List<InvalidResourceException> out = new ArrayList<>();
        for (RouteConfiguration rc : bundle.routes().values()) {
            if (loadedAsIs(rc, loaded.routes().get(rc.name()))) {
                continue;
            }
            InvalidResourceException e = checkClusters(rc, bundle, false);
            if (e != null) {
                out.add(e);
            }
        }
        for (Listener l : bundle.listeners().values()) {
            if (loadedAsIs(l, loaded.listeners().get(l.name()))) {
                continue;
            }
            List<FilterChain> chains = l.allFilterChains();
            for (int i = 0; i < chains.size(); i++) {
                FilterChain c = chains.get(i);
                if (c.filter() instanceof HttpConnectionManager hcm && hcm.routeConfig() != null) {
                    InvalidResourceException e = checkClusters(hcm.routeConfig(), bundle, true);
                    if (e != null) {
                        // the chain by its place, as the parser names a field (the default one after the others)
                        String chain = c == l.defaultFilterChain() ? "default_filter_chain"
                                : "filter_chains[" + i + "]";
                        out.add(new InvalidResourceException(ResourceType.LISTENER, l.name(),
                                chain + (c.name().isEmpty() ? "" : " (" + c.name() + ")") + ".route_config",
                                e.getMessage()));
                    }
                }
            }
        }
        return out;
    }

    private static boolean loadedAsIs(Object resource, Object loaded) {
        return resource == loaded || resource.equals(loaded);
    }

    private static InvalidResourceException checkClusters(RouteConfiguration rc, ResourceBundle bundle,
                                                          boolean inline) {
        if (!rc.validateClusters()) {
            return null;
        }
        for (int v = 0; v < rc.virtualHosts().size(); v++) {
            VirtualHost vh = rc.virtualHosts().get(v);
            for (int i = 0; i < vh.routes().size(); i++) {
                Route r = vh.routes().get(i);
                if (!(r.action() instanceof RouteAction a)) {
                    continue;
                }
                List<String> names = new ArrayList<>();
                if (a.cluster() instanceof ClusterSpecifier.Named n) {
                    names.add(n.cluster());
                } else if (a.cluster() instanceof ClusterSpecifier.Weighted w) {
                    w.clusters().stream().filter(c -> !c.name().isEmpty()).forEach(c -> names.add(c.name()));
                }
                String at = "virtual_hosts[" + v + "].routes[" + i + "].route.";
                for (String name : names) {
                    if (!bundle.clusters().containsKey(name)) {
                        return unknownCluster(rc, at + "cluster", "unknown cluster '" + name + "'", inline);
                    }
                }
                // as Envoy: a mirror's cluster named in the route is checked too (one named by a header cannot be)
                for (int m = 0; m < a.requestMirrorPolicies().size(); m++) {
                    String name = a.requestMirrorPolicies().get(m).cluster();
                    if (name != null && !bundle.clusters().containsKey(name)) {
                        return unknownCluster(rc, at + "request_mirror_policies[" + m + "].cluster",
                                "unknown shadow cluster '" + name + "'", inline);
                    }
                }
            }
        }
        return null;
    }

    private static InvalidResourceException unknownCluster(RouteConfiguration rc, String field, String what,
                                                           boolean inline) {
        return new InvalidResourceException(ResourceType.ROUTE, rc.name(), field, what + " (validate_clusters is on"
                + (inline ? ", as it is by default in an inline route_config)" : ")"));
    }

    static MeshSnapshot compileUnchecked(ResourceBundle bundle, long generation) {
        return compileUnchecked(bundle, generation, new LocalRateLimitFilter.Buckets().session(),
                RuntimeSnapshot.of(bundle.runtime(), Map.of()));
    }

    /**
     * Compiles a bundle, its local rate limit filters' buckets taken from {@code buckets}, its routes' runtime values
     * from {@code runtime}.
     */
    static MeshSnapshot compileUnchecked(ResourceBundle bundle, long generation,
                                         LocalRateLimitFilter.Buckets.Session buckets, RuntimeSnapshot runtime) {
        Map<String, RouteTable> tables = new HashMap<>();
        for (RouteConfiguration rc : bundle.routes().values()) {
            tables.put(rc.name(), RouteTable.compile(rc, buckets, "rds/" + rc.name(), runtime));
        }
        Map<HttpConnectionManager, LocalRateLimitFilter> rateLimits = new IdentityHashMap<>();
        Map<HttpConnectionManager, dev.inmesh.runtime.tracing.Tracer> tracers = new IdentityHashMap<>();
        Map<FilterChain, RouteTable> inline = new IdentityHashMap<>();
        Map<HttpConnectionManager, RbacFilter.Chain> rbac = new IdentityHashMap<>();
        Map<HttpConnectionManager, List<dev.inmesh.runtime.router.LuaFilter>> lua = new IdentityHashMap<>();
        Map<HttpConnectionManager, dev.inmesh.runtime.accesslog.LocalReply> localReplies = new IdentityHashMap<>();
        Map<HttpConnectionManager, dev.inmesh.runtime.router.HeaderMutationFilter> headerMutations =
                new IdentityHashMap<>();
        Map<FilterChain, RbacFilter.Network> networkRbac = new IdentityHashMap<>();
        Map<Object, AccessLogs> accessLogs = new IdentityHashMap<>();
        Map<Object, dev.inmesh.runtime.stats.StatsOverrides> statsOverrides = new IdentityHashMap<>();
        Map<String, FilterChainSelector> byName = new HashMap<>();
        Map<String, FilterChainSelector> byAddress = new HashMap<>();
        Map<Integer, FilterChainSelector> byPort = new HashMap<>();
        boolean istioStats = MeshSnapshot.hasIstioStats(bundle.listeners().values());
        for (Listener l : bundle.listeners().values()) {
            FilterChainSelector sel = new FilterChainSelector(l);
            byName.put(l.name(), sel);
            // the listener is found by each of its addresses (its additional ones too, as Envoy listens on them)
            for (dev.inmesh.api.config.core.SocketAddress a : l.addresses()) {
                String ip = a.address();
                if (ip.equals("0.0.0.0") || ip.equals("::")) {
                    byPort.putIfAbsent(a.port(), sel);
                } else {
                    // in the form a connection's destination is printed in (RFC 5952 for IPv6)
                    byte[] literal = dev.inmesh.runtime.net.IpLiterals.parse(ip);
                    String key = literal == null ? ip : dev.inmesh.runtime.net.IpLiterals.format(literal);
                    byAddress.put(key + ":" + a.port(), sel);
                }
            }
            if (!l.accessLogs().isEmpty()) {
                accessLogs.put(l, AccessLogs.compile(l.accessLogs()));
            }
            List<FilterChain> chains = l.allFilterChains();
            for (int i = 0; i < chains.size(); i++) {
                FilterChain c = chains.get(i);
                String where = "listener/" + l.name() + "/" + i;
                if (c.checksConnections()) {
                    networkRbac.put(c, RbacFilter.Network.compile(c, buckets, where));
                }
                AccessLogs logs = AccessLogs.compile(MeshSnapshot.accessLogConfigs(c.filter()), c.name());
                if (!logs.isEmpty()) {
                    accessLogs.put(c.filter(), logs);
                }
                if (c.filter() instanceof HttpConnectionManager hcm) {
                    rbac.put(hcm, RbacFilter.Chain.compile(hcm));
                    lua.put(hcm, dev.inmesh.runtime.router.LuaFilter.compile(hcm));
                    headerMutations.put(hcm, dev.inmesh.runtime.router.HeaderMutationFilter.compile(hcm));
                    if (hcm.localReply() != null) {
                        localReplies.put(hcm, dev.inmesh.runtime.accesslog.LocalReply.compile(hcm.localReply()));
                    }
                    LocalRateLimitFilter limiter = LocalRateLimitFilter.compile(hcm, where, buckets);
                    if (!limiter.isEmpty()) {
                        rateLimits.put(hcm, limiter);
                    }
                    dev.inmesh.runtime.tracing.Tracer tracer = dev.inmesh.runtime.tracing.Tracer.compile(hcm.tracing(),
                            bundle.tracer());
                    if (tracer != null) {
                        tracers.put(hcm, tracer);
                    }
                    statsOverrides.put(hcm, dev.inmesh.runtime.stats.StatsOverrides.of(hcm.istioStats(),
                            istioStats));
                    if (hcm.routeConfig() != null) {
                        inline.put(c, RouteTable.compile(hcm.routeConfig(), buckets, where, runtime));
                    } else {
                        tables.computeIfAbsent(hcm.rdsRouteConfigName(),
                                n -> RouteTable.compile(RouteConfiguration.of(n, List.of())));
                    }
                } else if (c.filter() instanceof TcpProxy) {
                    // TCP proxies name clusters only, checked when a connection arrives; Istio's TCP metrics are
                    // recorded as the chain's stats filter overrides them (not at all without one, where another
                    // chain has one)
                    statsOverrides.put(c, dev.inmesh.runtime.stats.StatsOverrides.of(c.istioStats(), istioStats));
                }
            }
        }
        return new MeshSnapshot(generation, Instant.now(), bundle, Map.copyOf(tables), inline, Map.copyOf(byName),
                Map.copyOf(byAddress), Map.copyOf(byPort), null, rbac, networkRbac, rateLimits,
                tracers, accessLogs, statsOverrides, istioStats, lua, localReplies, headerMutations, runtime);
    }
}
