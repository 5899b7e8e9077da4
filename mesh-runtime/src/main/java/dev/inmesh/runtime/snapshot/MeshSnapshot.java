package dev.inmesh.runtime.snapshot;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.listener.AccessLogConfig;
import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.api.config.listener.NetworkFilter;
import dev.inmesh.runtime.accesslog.AccessLogs;
import dev.inmesh.runtime.accesslog.LocalReply;
import dev.inmesh.runtime.listener.ConnectionInfo;
import dev.inmesh.runtime.listener.FilterChainSelector;
import dev.inmesh.runtime.router.HeaderMutationFilter;
import dev.inmesh.runtime.router.LocalRateLimitFilter;
import dev.inmesh.runtime.router.LuaFilter;
import dev.inmesh.runtime.router.RbacFilter;
import dev.inmesh.runtime.router.RouteTable;
import dev.inmesh.runtime.runtime.RuntimeSnapshot;
import dev.inmesh.runtime.stats.StatsOverrides;
import dev.inmesh.runtime.tracing.Tracer;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.UpstreamEnvironment;
import dev.inmesh.runtime.xds.ResourceBundle;
import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * One immutable, compiled view of the whole configuration: what every request reads. Built by
 * {@link SnapshotCompiler}; never changed after.
 */
public final class MeshSnapshot {
    private final long generation;
    private final Instant createdAt;
    private final ResourceBundle resources;
    private final Map<String, RouteTable> routeTables;
    private final Map<FilterChain, RouteTable> inlineRouteTables;
    private final Map<String, FilterChainSelector> listeners;
    private final Map<String, FilterChainSelector> listenersByAddress;
    private final Map<Integer, FilterChainSelector> listenersByPort;
    private final ClusterManager clusterManager;
    /** The compiled RBAC filters of every connection manager of the listeners, by identity. */
    private final Map<HttpConnectionManager, RbacFilter.Chain> rbac;
    /** The compiled RBAC network filters of the filter chains that have some, by identity. */
    private final Map<FilterChain, RbacFilter.Network> networkRbac;
    /** The local rate limit filters of the connection managers that run one, by identity. */
    private final Map<HttpConnectionManager, LocalRateLimitFilter> rateLimits;
    /** The compiled tracing of the connection managers that trace, by identity. */
    private final Map<HttpConnectionManager, Tracer> tracers;
    /**
     * The compiled Istio metric overrides of the connection managers and the TCP proxies' filter chains, by identity.
     */
    private final Map<Object, StatsOverrides> statsOverrides;
    /**
     * Whether some listener has an Istio stats filter ({@link #hasIstioStats}): Istio's metrics are then recorded
     * only where one is.
     */
    private final boolean istioStats;
    /** The compiled access logs of the connection managers and TCP proxies that name some, by identity. */
    private final Map<Object, AccessLogs> accessLogs;
    /** The compiled Lua filters of the connection managers that run some, by identity. */
    private final Map<HttpConnectionManager, List<LuaFilter>> lua;
    /** The compiled {@code local_reply_config} of the connection managers that have one, by identity. */
    private final Map<HttpConnectionManager, LocalReply> localReplies;
    /** The compiled header mutation filters of the connection managers that run one, by identity. */
    private final Map<HttpConnectionManager, HeaderMutationFilter> headerMutations;
    /** The runtime whose values the route tables took. */
    private final RuntimeSnapshot runtime;

    MeshSnapshot(long generation, Instant createdAt, ResourceBundle resources, Map<String, RouteTable> routeTables,
                 Map<FilterChain, RouteTable> inlineRouteTables, Map<String, FilterChainSelector> listeners,
                 Map<String, FilterChainSelector> listenersByAddress,
                 Map<Integer, FilterChainSelector> listenersByPort, ClusterManager clusterManager,
                 Map<HttpConnectionManager, RbacFilter.Chain> rbac,
                 Map<FilterChain, RbacFilter.Network> networkRbac,
                 Map<HttpConnectionManager, LocalRateLimitFilter> rateLimits,
                 Map<HttpConnectionManager, Tracer> tracers, Map<Object, AccessLogs> accessLogs,
                 Map<Object, StatsOverrides> statsOverrides, boolean istioStats,
                 Map<HttpConnectionManager, List<LuaFilter>> lua,
                 Map<HttpConnectionManager, LocalReply> localReplies,
                 Map<HttpConnectionManager, HeaderMutationFilter> headerMutations, RuntimeSnapshot runtime) {
        this.generation = generation;
        this.createdAt = createdAt;
        this.resources = resources;
        this.routeTables = routeTables;
        this.inlineRouteTables = inlineRouteTables;
        this.listeners = listeners;
        this.listenersByAddress = listenersByAddress;
        this.listenersByPort = listenersByPort;
        this.clusterManager = clusterManager;
        this.rbac = rbac;
        this.networkRbac = networkRbac;
        this.rateLimits = rateLimits;
        this.tracers = tracers;
        this.accessLogs = accessLogs;
        this.statsOverrides = statsOverrides;
        this.istioStats = istioStats;
        this.lua = lua;
        this.localReplies = localReplies;
        this.headerMutations = headerMutations;
        this.runtime = runtime;
    }

    /** The same compiled configuration with a cluster manager. */
    MeshSnapshot withClusters(ClusterManager cm) {
        return new MeshSnapshot(generation, createdAt, resources, routeTables, inlineRouteTables, listeners,
                listenersByAddress, listenersByPort, cm, rbac,
                networkRbac, rateLimits, tracers, accessLogs, statsOverrides, istioStats, lua, localReplies,
                headerMutations, runtime);
    }

    /** The upstream clusters of this snapshot (hosts, balancers, breakers, pools). */
    public ClusterManager clusterManager() {
        return clusterManager;
    }

    /** An empty snapshot: no listeners, routes or clusters. */
    public static MeshSnapshot empty() {
        return SnapshotCompiler.compileUnchecked(ResourceBundle.EMPTY, 0).withClusters(
                ClusterManager.create(new UpstreamEnvironment(null, null, null, null), Map.of(), Map.of()));
    }

    /** Counts up by one with each snapshot a holder publishes. */
    public long generation() {
        return generation;
    }

    public Instant createdAt() {
        return createdAt;
    }

    /**
     * The runtime in force: the layers of the bundle's {@code layered_runtime}, the admin layer's values those of
     * {@code /runtime_modify}, which the route tables took.
     */
    public RuntimeSnapshot runtime() {
        return runtime;
    }

    /** The resources this snapshot was compiled from, with their versions. */
    public ResourceBundle resources() {
        return resources;
    }

    /** A route table by its RDS name, or null. */
    public RouteTable routeTable(String name) {
        return routeTables.get(name);
    }

    /** The route table of a filter chain's HTTP connection manager (RDS or inline), or null for a TCP chain. */
    public RouteTable routeTable(FilterChain chain) {
        if (!(chain.filter() instanceof dev.inmesh.api.config.listener.HttpConnectionManager hcm)) {
            return null;
        }
        return hcm.rdsRouteConfigName() != null ? routeTables.get(hcm.rdsRouteConfigName())
                : inlineRouteTables.get(chain);
    }

    /**
     * The RBAC filters of a connection manager, compiled with this snapshot ({@link RbacFilter.Chain#NONE} when it
     * runs none). A connection manager of another snapshot (a connection accepted before this one was published) is
     * compiled on the spot: once per connection, never per request.
     */
    public RbacFilter.Chain rbac(HttpConnectionManager hcm) {
        if (hcm == null) {
            return RbacFilter.Chain.NONE;
        }
        RbacFilter.Chain c = rbac.get(hcm);
        return c != null ? c : RbacFilter.Chain.compile(hcm);
    }

    /**
     * The Lua filters of a connection manager that run a script, compiled with this snapshot, in chain order (empty
     * when it runs none). A connection manager of another snapshot is compiled on the spot.
     */
    public List<LuaFilter> lua(HttpConnectionManager hcm) {
        if (hcm == null) {
            return List.of();
        }
        List<LuaFilter> l = lua.get(hcm);
        return l != null ? l : LuaFilter.compile(hcm);
    }

    /**
     * The {@code local_reply_config} of a connection manager, compiled with this snapshot; null when it has none
     * (its local replies go as they are). A connection manager of another snapshot is compiled on the spot.
     */
    public LocalReply localReply(HttpConnectionManager hcm) {
        if (hcm == null || hcm.localReply() == null) {
            return null;
        }
        LocalReply r = localReplies.get(hcm);
        return r != null ? r : LocalReply.compile(hcm.localReply());
    }

    /**
     * The header mutation filter of a connection manager, compiled with this snapshot ({@link HeaderMutationFilter#NONE}
     * when it runs none). A connection manager of another snapshot is compiled on the spot.
     */
    public HeaderMutationFilter headerMutation(HttpConnectionManager hcm) {
        if (hcm == null) {
            return HeaderMutationFilter.NONE;
        }
        HeaderMutationFilter f = headerMutations.get(hcm);
        return f != null ? f : HeaderMutationFilter.compile(hcm);
    }

    /**
     * The local rate limit filter of one of this snapshot's connection managers, compiled with its bucket
     * ({@link LocalRateLimitFilter#NONE} when it runs none). Every caller takes the connection manager from this
     * snapshot (a proxy connection keeps the filter it was accepted with), so the lookup is by identity.
     */
    public LocalRateLimitFilter localRateLimit(HttpConnectionManager hcm) {
        LocalRateLimitFilter f = hcm == null ? null : rateLimits.get(hcm);
        return f != null ? f : LocalRateLimitFilter.NONE;
    }

    /** The tracing of this snapshot's connection managers that trace, compiled. */
    public java.util.Collection<Tracer> tracers() {
        return tracers.values();
    }

    /**
     * The tracing of one of this snapshot's connection managers, compiled once ({@link Tracer#compile}); null when it
     * traces no request. A connection manager of another snapshot is compiled on the spot.
     */
    public Tracer tracer(HttpConnectionManager hcm) {
        if (hcm == null || hcm.tracing() == null) {
            return null;
        }
        Tracer t = tracers.get(hcm);
        return t != null ? t : Tracer.compile(hcm.tracing(), resources.tracer());
    }

    /**
     * The metric overrides of one of this snapshot's connection managers' Istio stats filter, compiled once
     * ({@link StatsOverrides#of}: {@link StatsOverrides#OFF} when it has none and another listener has one,
     * {@link StatsOverrides#NONE} when none has one); one of another snapshot is compiled on the spot.
     */
    public StatsOverrides statsOverrides(HttpConnectionManager hcm) {
        if (hcm == null) {
            return StatsOverrides.NONE;
        }
        StatsOverrides o = statsOverrides.get(hcm);
        return o != null ? o : StatsOverrides.of(hcm.istioStats(), istioStats);
    }

    /**
     * The metric overrides of the Istio stats network filter of one of this snapshot's filter chains (Istio's TCP
     * metrics), compiled once as a connection manager's ({@link #statsOverrides(HttpConnectionManager)}); one of
     * another snapshot's chains is compiled on the spot.
     */
    public StatsOverrides statsOverrides(FilterChain chain) {
        if (chain == null) {
            // no chain (the in-JVM client's passthrough with no listener for it): none has the filter
            return istioStats ? StatsOverrides.OFF : StatsOverrides.NONE;
        }
        StatsOverrides o = statsOverrides.get(chain);
        return o != null ? o : StatsOverrides.of(chain.istioStats(), istioStats);
    }

    /**
     * Whether some filter chain of {@code listeners} has Istio's stats filter: as a network filter, or as an HTTP
     * filter of its connection manager. As istiod writes them, Istio's metrics are then recorded only where one is;
     * a configuration with none anywhere (written by hand, or Inmesh's samples) has them recorded everywhere.
     */
    static boolean hasIstioStats(java.util.Collection<Listener> listeners) {
        for (Listener l : listeners) {
            for (FilterChain c : l.allFilterChains()) {
                if (c.istioStats() != null
                        || c.filter() instanceof HttpConnectionManager hcm && hcm.istioStats() != null) {
                    return true;
                }
            }
        }
        return false;
    }

    /**
     * The access logs of one of this snapshot's connection managers or TCP proxies, compiled once
     * ({@link AccessLogs#NONE} when it names none); one of another snapshot is compiled on the spot.
     */
    public AccessLogs accessLogs(NetworkFilter filter) {
        return accessLogs(filter, accessLogConfigs(filter));
    }

    /**
     * A listener's own access logs (where a connection no filter chain takes is written), compiled once
     * ({@link AccessLogs#NONE} when it names none); one of another snapshot is compiled on the spot.
     */
    public AccessLogs accessLogs(Listener listener) {
        return accessLogs(listener, listener == null ? List.of() : listener.accessLogs());
    }

    /** The logs compiled for {@code owner} (by identity), else {@code configs} compiled now; none for none. */
    private AccessLogs accessLogs(Object owner, List<AccessLogConfig> configs) {
        if (configs.isEmpty()) {
            return AccessLogs.NONE;
        }
        AccessLogs logs = accessLogs.get(owner);
        return logs != null ? logs : AccessLogs.compile(configs);
    }

    /** The {@code access_log} of a connection manager or TCP proxy; empty for none (or a null filter). */
    static List<AccessLogConfig> accessLogConfigs(NetworkFilter filter) {
        if (filter instanceof HttpConnectionManager hcm) {
            return hcm.accessLogs();
        } else if (filter instanceof dev.inmesh.api.config.listener.TcpProxy tcp) {
            return tcp.accessLogs();
        }
        return List.of();
    }

    /**
     * The RBAC, external authorization and local rate limit network filters of a filter chain, compiled with this
     * snapshot ({@link RbacFilter.Network#NONE} when it has none of them); a chain of another snapshot is compiled on
     * the spot, once per connection (its rate limit filters with full buckets of their own).
     */
    public RbacFilter.Network networkRbac(FilterChain chain) {
        if (chain == null || !chain.checksConnections()) {
            return RbacFilter.Network.NONE;
        }
        RbacFilter.Network n = networkRbac.get(chain);
        return n != null ? n : RbacFilter.Network.compile(chain);
    }

    public Cluster cluster(String name) {
        return resources.clusters().get(name);
    }

    public ClusterLoadAssignment endpoints(String clusterName) {
        return resources.endpoints().get(clusterName);
    }

    /** A listener by name, with its chain selector, or null. */
    public FilterChainSelector listener(String name) {
        return listeners.get(name);
    }

    /**
     * The listener that takes a connection to {@code ip:port}, as a {@code use_original_dst} listener hands it
     * over: the listener bound to exactly that address, else the one on {@code 0.0.0.0} (or {@code ::}) with that
     * port; null when neither exists. A listener's {@code additional_addresses} count as its own; an IPv6
     * {@code ip} is in RFC 5952's form, as a connection's destination is printed.
     */
    public FilterChainSelector listenerFor(String ip, int port) {
        FilterChainSelector exact = listenersByAddress.get(ip + ":" + port);
        return exact != null ? exact : listenersByPort.get(port);
    }

    /** The chain of the listener for {@code c}'s original destination, or null. */
    public FilterChain filterChainFor(ConnectionInfo c) {
        FilterChainSelector l = listenerFor(c.destinationIp(), c.destinationPort());
        return l == null ? null : l.select(c);
    }

    /** All listeners, by name. */
    public Map<String, Listener> listeners() {
        return resources.listeners();
    }
}
