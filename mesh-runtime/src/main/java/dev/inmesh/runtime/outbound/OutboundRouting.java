package dev.inmesh.runtime.outbound;

import dev.inmesh.runtime.stats.DownstreamStats;
import java.util.function.Function;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.PathNormalization;
import dev.inmesh.api.config.listener.ServerHeader;
import dev.inmesh.api.config.listener.TcpProxy;
import dev.inmesh.api.config.route.ClusterSpecifier;
import dev.inmesh.api.config.route.HashPolicy;
import dev.inmesh.api.config.route.Route;
import dev.inmesh.api.config.route.RouteAction;
import dev.inmesh.api.config.route.RouteConfiguration;
import dev.inmesh.api.config.route.RouteMatch;
import dev.inmesh.api.config.route.VirtualHost;
import dev.inmesh.runtime.listener.ConnectionInfo;
import dev.inmesh.runtime.listener.FilterChainSelector;
import dev.inmesh.runtime.net.IpLiterals;
import dev.inmesh.runtime.router.RouteTable;
import dev.inmesh.runtime.snapshot.MeshSnapshot;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.UpstreamEnvironment;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Decides how an outbound request from this workload to {@code host:port} is handled, as Istio's sidecar would for
 * a connection to that address: the listener bound to {@code ip:port}, else the one on {@code 0.0.0.0:port}, else
 * {@code virtualOutbound}'s chains, else the outbound traffic policy (PassthroughCluster for ALLOW_ANY, a 502 for
 * REGISTRY_ONLY). An HTTP connection manager chain gives its route table; a TCP proxy chain sends the request to its
 * cluster.
 */
public final class OutboundRouting {
    public static final String PASSTHROUGH = "PassthroughCluster";
    public static final String BLACKHOLE = "BlackHoleCluster";

    private final MeshOptions.OutboundTrafficPolicy policy;
    private final ClusterManager passthroughClusters;
    private final Map<String, RouteTable> singleClusterTables = new ConcurrentHashMap<>();
    private final Function<HttpConnectionManager, DownstreamStats> stats;

    /** Where a request goes: a route table and the clusters it names, or a blackhole. */
    /**
     * What to do with requests to one destination; {@code hcm}: the chosen HTTP connection manager (its path
     * normalization and server header), null when a TCP chain or the passthrough takes the request; {@code stats}:
     * that connection manager's statistics, null when there is none or no statistics are kept;
     * {@code listenerBufferLimit}: the {@code per_connection_buffer_limit_bytes} of the listener whose chain takes the
     * request, null when it sets none or no listener does; {@code tcpChain}: the {@code tcp_proxy} chain that takes
     * it, whose Istio stats filter says whether Istio's metrics record it, null for none.
     */
    public record Decision(RouteTable table, ClusterManager clusters, boolean blackhole, HttpConnectionManager hcm,
                           DownstreamStats stats, ClusterSpecifier tlsRelay, Long listenerBufferLimit,
                           boolean tlsRelayHashSourceIp, FilterChain tcpChain) {
        Decision(RouteTable table, ClusterManager clusters, boolean blackhole) {
            this(table, clusters, blackhole, null, null, null, null, false, null);
        }

        Decision(RouteTable table, ClusterManager clusters, boolean blackhole, HttpConnectionManager hcm,
                 DownstreamStats stats, Long listenerBufferLimit) {
            this(table, clusters, blackhole, hcm, stats, null, listenerBufferLimit, false, null);
        }

        /** The same, relayed by the {@code tcp_proxy} of {@code chain} (its Istio stats filter's metrics). */
        Decision withTcpChain(FilterChain chain) {
            return new Decision(table, clusters, blackhole, hcm, stats, tlsRelay, listenerBufferLimit,
                    tlsRelayHashSourceIp, chain);
        }

        /**
         * For a TLS connection ({@code https://}): the clusters of the {@code tcp_proxy} chain that relays it, as
         * Envoy relays TLS it cannot read (Istio's chains matched by SNI for a TLS or HTTPS port); null when it is
         * passed through to the address the caller named, blackholed, or routed as plain HTTP.
         */
        public ClusterSpecifier tlsRelay() {
            return tlsRelay;
        }

        /** The connection manager's path normalization, or none. */
        public PathNormalization paths() {
            return hcm == null ? PathNormalization.NONE : hcm.pathNormalization();
        }

        /** Whether the request goes to {@code PassthroughCluster}: to the address the caller named. */
        public boolean passthrough() {
            return table != null && PASSTHROUGH.equals(table.name());
        }

        /** The connection manager's server header, or null (the upstream's goes through). */
        public ServerHeader serverHeader() {
            return hcm == null ? null : hcm.serverHeader();
        }
    }

    public OutboundRouting(MeshOptions.OutboundTrafficPolicy policy, UpstreamEnvironment env) {
        this(policy, env, null);
    }

    /**
     * @param stats the statistics of a connection manager ({@code MeshMetrics#connectionManager}), looked up once
     *     per decision; null when none are kept
     */
    public OutboundRouting(MeshOptions.OutboundTrafficPolicy policy, UpstreamEnvironment env,
                           Function<HttpConnectionManager, DownstreamStats> stats) {
        this.policy = policy;
        this.stats = stats;
        // as Istio's PassthroughCluster: the caller's protocol goes on (use_downstream_protocol_config)
        Cluster passthrough = Cluster.builder(PASSTHROUGH, DiscoveryType.ORIGINAL_DST)
                .lbPolicy(LbPolicy.CLUSTER_PROVIDED).connectTimeout(Duration.ofSeconds(10)).useDownstreamProtocol(true)
                .build();
        this.passthroughClusters = ClusterManager.create(env, Map.of(PASSTHROUGH, passthrough), Map.of());
    }

    /** Decisions of the current snapshot by {@code host:port}: the same destination decides the same way. */
    private volatile DecisionCache cache = new DecisionCache(null);

    /** A destination, as the cache's key: no string to build and hash per request. */
    private record Destination(String host, int port, boolean tls) {}

    private record DecisionCache(MeshSnapshot snapshot, Map<Destination, Decision> byDestination) {
        DecisionCache(MeshSnapshot snapshot) {
            this(snapshot, new ConcurrentHashMap<>());
        }
    }

    /**
     * How to handle a request to {@code host:port} under the given snapshot. Decisions are remembered per snapshot
     * (a new snapshot starts afresh), so that a request does not select a filter chain again.
     */
    public Decision decide(MeshSnapshot snapshot, String host, int port, String sourceIp) {
        return decide(snapshot, host, port, sourceIp, false);
    }

    /**
     * How to handle a request to {@code host:port}, sent in clear or, with {@code tls}, over the caller's own TLS:
     * then the filter chain is chosen as for a TLS connection whose SNI is {@code host} (none for an IP literal).
     */
    public Decision decide(MeshSnapshot snapshot, String host, int port, String sourceIp, boolean tls) {
        DecisionCache c = cache;
        if (c.snapshot != snapshot) {
            c = new DecisionCache(snapshot);
            cache = c;
        }
        Map<Destination, Decision> m = c.byDestination;
        Destination key = new Destination(host, port, tls);
        Decision d = m.get(key);
        if (d == null) {
            d = decideUncached(snapshot, host, port, sourceIp, tls);
            if (m.size() < MAX_CACHED_DESTINATIONS) {
                m.put(key, d);
            }
        }
        return d;
    }

    /** Destinations remembered per snapshot; past this, decisions are made for each request. */
    static final int MAX_CACHED_DESTINATIONS = 4096;

    private Decision decideUncached(MeshSnapshot snapshot, String host, int port, String sourceIp, boolean tls) {
        String ip = IpLiterals.isLiteral(host) ? host : "0.0.0.0";
        FilterChainSelector listener = snapshot.listenerFor(ip, port);
        if (listener == null) {
            listener = snapshot.listener("virtualOutbound");
        }
        ConnectionInfo conn = tls ? ConnectionInfo.tls(ip, port, IpLiterals.isLiteral(host) ? "" : host, sourceIp, 0)
                : ConnectionInfo.http(ip, port, sourceIp, 0);
        FilterChain chain = listener == null ? null : listener.select(conn);
        if (chain == null) {
            return policy == MeshOptions.OutboundTrafficPolicy.ALLOW_ANY ? passthrough(snapshot, null)
                    : new Decision(null, null, true);
        }
        // as Envoy, whose connection takes the buffer limit of the listener it is handed to
        Long bufferLimit = listener.listener().perConnectionBufferLimitBytes();
        if (chain.filter() instanceof HttpConnectionManager hcm) {
            return new Decision(snapshot.routeTable(chain), snapshot.clusterManager(), false, hcm,
                    stats == null ? null : stats.apply(hcm), bufferLimit);
        }
        return relayed(snapshot, (TcpProxy) chain.filter(), tls, bufferLimit, chain.name()).withTcpChain(chain);
    }

    /** The decision for a request the {@code tcp_proxy} {@code tcp} (of the chain {@code chainName}) relays. */
    private Decision relayed(MeshSnapshot snapshot, TcpProxy tcp, boolean tls, Long bufferLimit, String chainName) {
        String cluster = tcp.cluster() instanceof ClusterSpecifier.Named n ? n.cluster() : null;
        if (tls && !BLACKHOLE.equals(cluster) && !PASSTHROUGH.equals(cluster)) {
            return new Decision(null, snapshot.clusterManager(), false, null, null, tcp.cluster(), bufferLimit,
                    tcp.hashSourceIp(), null);
        }
        if (cluster == null) {
            // weighted TCP clusters: route by the same weights through a one-route table
            return new Decision(singleClusterTables.computeIfAbsent((tcp.hashSourceIp() ? "hashed:" : "weighted:")
                    + chainName, k -> table(k, tcp.cluster(), tcp.hashSourceIp())), snapshot.clusterManager(),
                    false, null, null, bufferLimit);
        }
        if (cluster.equals(BLACKHOLE)) {
            return new Decision(null, null, true);
        }
        if (cluster.equals(PASSTHROUGH) && snapshot.clusterManager().cluster(PASSTHROUGH) == null) {
            return passthrough(snapshot, bufferLimit);
        }
        if (tcp.hashSourceIp()) {
            // hash_policy source_ip: the table's one route hashes the request's source IP, as the TCP proxy would
            return new Decision(singleClusterTables.computeIfAbsent("hashed:" + cluster,
                    k -> table(cluster, new ClusterSpecifier.Named(cluster), true)), snapshot.clusterManager(), false,
                    null, null, bufferLimit);
        }
        return new Decision(singleClusterTables.computeIfAbsent(cluster,
                k -> table(k, new ClusterSpecifier.Named(k))), snapshot.clusterManager(), false, null, null,
                bufferLimit);
    }

    private Decision passthrough(MeshSnapshot snapshot, Long bufferLimit) {
        ClusterManager cm = snapshot.clusterManager().cluster(PASSTHROUGH) != null ? snapshot.clusterManager()
                : passthroughClusters;
        return new Decision(singleClusterTables.computeIfAbsent(PASSTHROUGH,
                k -> table(k, new ClusterSpecifier.Named(k))), cm, false, null, null, bufferLimit);
    }

    /** A route table that sends everything to one cluster with no timeout, as a TCP proxy would. */
    private static RouteTable table(String name, ClusterSpecifier cluster) {
        return table(name, cluster, false);
    }

    /** The same, its route hashing the request's source IP when {@code hashSourceIp}. */
    private static RouteTable table(String name, ClusterSpecifier cluster, boolean hashSourceIp) {
        RouteAction action = RouteAction.to(cluster).withTimeout(Duration.ZERO)
                .withHashPolicies(hashSourceIp ? List.of(new HashPolicy.SourceIp(false)) : List.of());
        return RouteTable.compile(RouteConfiguration.of(name, List.of(VirtualHost.of(name, List.of("*"),
                List.of(Route.of(RouteMatch.prefix("/"), action))))));
    }

    public void close() {
        passthroughClusters.close();
    }
}
