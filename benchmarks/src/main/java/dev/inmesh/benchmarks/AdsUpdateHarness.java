package dev.inmesh.benchmarks;

import com.google.protobuf.util.Durations;
import dev.inmesh.runtime.router.RouteRequest;
import dev.inmesh.runtime.router.RouteResult;
import dev.inmesh.runtime.router.RouteTable;
import dev.inmesh.runtime.snapshot.MeshSnapshot;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.xds.ads.AdsClient;
import dev.inmesh.runtime.xds.ads.AdsOptions;
import dev.inmesh.runtime.xds.ads.NodeOptions;
import io.envoyproxy.controlplane.cache.v3.SimpleCache;
import io.envoyproxy.controlplane.cache.v3.Snapshot;
import io.envoyproxy.controlplane.server.V3DiscoveryServer;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.core.v3.Address;
import io.envoyproxy.envoy.config.core.v3.AggregatedConfigSource;
import io.envoyproxy.envoy.config.core.v3.ConfigSource;
import io.envoyproxy.envoy.config.core.v3.SocketAddress;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.endpoint.v3.Endpoint;
import io.envoyproxy.envoy.config.endpoint.v3.LbEndpoint;
import io.envoyproxy.envoy.config.endpoint.v3.LocalityLbEndpoints;
import io.envoyproxy.envoy.config.listener.v3.Filter;
import io.envoyproxy.envoy.config.listener.v3.FilterChain;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.config.route.v3.RouteAction;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.config.route.v3.RouteMatch;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.envoyproxy.envoy.extensions.filters.http.router.v3.Router;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.Rds;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.vertx.core.Vertx;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * ADS update latency: the time from an xDS server's snapshot change to the change being visible in the
 * {@link SnapshotHolder} (the next request's lookup), with a mesh of CLUSTERS EDS clusters, ENDPOINTS endpoints in
 * all, one outbound listener and a route configuration of one virtual host per service. java-control-plane's server
 * runs in the same JVM on loopback. Measures the first sync, route changes and endpoint changes.
 *
 * <pre>
 * mvn -B -ntp -pl benchmarks -am package -DskipTests
 * java -cp benchmarks/target/benchmarks.jar dev.inmesh.benchmarks.AdsUpdateHarness [CLUSTERS] [ENDPOINTS] [ROUNDS]
 * </pre>
 * Defaults: 1 000 clusters, 10 000 endpoints, 50 rounds. Without the cluster and load assignment parsers, clusters
 * are NACKed and only route changes are measured.
 */
public final class AdsUpdateHarness {
    private static final String GROUP = "bench";

    private AdsUpdateHarness() {}

    public static void main(String[] args) throws Exception {
        int clusters = args.length > 0 ? Integer.parseInt(args[0]) : 1000;
        int endpoints = args.length > 1 ? Integer.parseInt(args[1]) : 10_000;
        int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 50;
        int perCluster = Math.max(1, endpoints / clusters);

        SimpleCache<String> cache = new SimpleCache<>(node -> GROUP);
        Server server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(new V3DiscoveryServer(cache).getAggregatedDiscoveryServiceImpl())
                .maxInboundMessageSize(64 << 20)
                .build().start();
        Vertx vertx = Vertx.vertx();
        try {
            List<Cluster> cds = new ArrayList<>();
            List<ClusterLoadAssignment> eds = new ArrayList<>();
            for (int i = 0; i < clusters; i++) {
                cds.add(cluster(name(i)));
                eds.add(endpoints(name(i), i * perCluster, perCluster));
            }
            List<Listener> lds = List.of(listener());
            cache.setSnapshot(GROUP, Snapshot.create(cds, "c0", eds, "e0", lds, "l0", List.of(routes(clusters, -1,
                    0)), "r0", List.of(), "s0"));

            SnapshotHolder holder = new SnapshotHolder();
            AdsClient client = new AdsClient(vertx, AdsOptions.of(NodeOptions.of("bench-0", "default", "10.0.0.1"),
                    AdsOptions.XdsServer.plaintext("127.0.0.1", server.getPort())), holder);
            long t0 = System.nanoTime();
            client.start().await(60, TimeUnit.SECONDS);
            double firstSync = (System.nanoTime() - t0) / 1e6;
            System.out.printf("ADS update harness: %d clusters, %d endpoints (%d per cluster), %d route changes "
                    + "and %d endpoint changes%n", clusters, perCluster * clusters, perCluster, rounds, rounds);
            System.out.printf("first sync (connect to ready)   %8.1f ms%n", firstSync);
            boolean withEds = holder.current().endpoints(name(0)) != null;
            if (!withEds) {
                System.out.println("(no cluster or load assignment parser yet: CDS is NACKed, endpoint changes are "
                        + "skipped, route changes still measured)");
            }

            double[] routeMs = new double[rounds];
            double[] edsMs = new double[rounds];
            for (int r = 1; r <= rounds; r++) {
                // route change: service 0 now goes to the cluster of service r
                String target = name(r % clusters);
                int round = r;
                routeMs[r - 1] = measure(holder, s -> target.equals(clusterFor(s, name(0))),
                        () -> cache.setSnapshot(GROUP, Snapshot.create(cds, "c0", eds, "e0", lds, "l0",
                                List.of(routes(clusters, 0, round)), "r" + round, List.of(), "s0")));
                if (!withEds) {
                    continue;
                }
                // endpoint change: cluster 1 gets one endpoint more
                List<ClusterLoadAssignment> eds2 = new ArrayList<>(eds);
                eds2.set(1, endpoints(name(1), 1_000_000, perCluster + r));
                int expected = perCluster + r;
                RouteConfiguration rc = routes(clusters, 0, round);
                edsMs[r - 1] = measure(holder, s -> hosts(s, name(1)) == expected,
                        () -> cache.setSnapshot(GROUP, Snapshot.create(cds, "c0", eds2, "e" + round, lds, "l0",
                                List.of(rc), "r" + round, List.of(), "s0")));
            }
            report("route change -> visible", routeMs);
            if (withEds) {
                report("endpoint change -> visible", edsMs);
            }
            client.close().await(10, TimeUnit.SECONDS);
        } finally {
            vertx.close().await(10, TimeUnit.SECONDS);
            server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    /** Runs a change and waits for the first snapshot that shows it; milliseconds. */
    static double measure(SnapshotHolder holder, Predicate<MeshSnapshot> visible, Runnable change) throws Exception {
        CompletableFuture<Long> seen = new CompletableFuture<>();
        holder.onUpdate(s -> {
            if (!seen.isDone() && visible.test(s)) {
                seen.complete(System.nanoTime());
            }
        });
        long t0 = System.nanoTime();
        change.run();
        long t1 = seen.get(60, TimeUnit.SECONDS);
        return (t1 - t0) / 1e6;
    }

    static void report(String what, double[] ms) {
        double[] s = ms.clone();
        Arrays.sort(s);
        System.out.printf("%-32s p50 %7.1f ms   p90 %7.1f ms   max %7.1f ms   (n=%d)%n", what,
                s[(int) (s.length * 0.5)], s[Math.min(s.length - 1, (int) (s.length * 0.9))], s[s.length - 1],
                s.length);
    }

    static String name(int i) {
        return "outbound|8080||svc-" + i + ".default.svc.cluster.local";
    }

    static String host(String cluster) {
        return cluster.substring(cluster.lastIndexOf('|') + 1);
    }

    static String clusterFor(MeshSnapshot s, String cluster) {
        RouteTable t = s.routeTable("8080");
        if (t == null) {
            return null;
        }
        RouteResult r = t.route(new Get(host(cluster)), 0);
        return r instanceof RouteResult.Forward f ? f.cluster() : null;
    }

    static int hosts(MeshSnapshot s, String cluster) {
        var cla = s.endpoints(cluster);
        return cla == null ? -1 : cla.endpoints().stream().mapToInt(l -> l.lbEndpoints().size()).sum();
    }

    static Cluster cluster(String name) {
        return Cluster.newBuilder().setName(name).setType(Cluster.DiscoveryType.EDS)
                .setConnectTimeout(Durations.fromSeconds(1))
                .setEdsClusterConfig(Cluster.EdsClusterConfig.newBuilder().setServiceName(name)
                        .setEdsConfig(ConfigSource.newBuilder().setAds(AggregatedConfigSource.getDefaultInstance())))
                .build();
    }

    static ClusterLoadAssignment endpoints(String cluster, int first, int n) {
        LocalityLbEndpoints.Builder l = LocalityLbEndpoints.newBuilder();
        for (int i = first; i < first + n; i++) {
            String ip = "10." + ((i >> 16) & 255) + "." + ((i >> 8) & 255) + "." + (i & 255);
            l.addLbEndpoints(LbEndpoint.newBuilder().setEndpoint(Endpoint.newBuilder().setAddress(Address.newBuilder()
                    .setSocketAddress(SocketAddress.newBuilder().setAddress(ip).setPortValue(8080)))));
        }
        return ClusterLoadAssignment.newBuilder().setClusterName(cluster).addEndpoints(l).build();
    }

    static Listener listener() {
        HttpConnectionManager hcm = HttpConnectionManager.newBuilder().setStatPrefix("outbound_0.0.0.0_8080")
                .setRds(Rds.newBuilder().setRouteConfigName("8080").setConfigSource(ConfigSource.newBuilder()
                        .setAds(AggregatedConfigSource.getDefaultInstance())))
                .addHttpFilters(HttpFilter.newBuilder().setName("envoy.filters.http.router")
                        .setTypedConfig(com.google.protobuf.Any.pack(Router.getDefaultInstance())))
                .build();
        return Listener.newBuilder().setName("0.0.0.0_8080")
                .setAddress(Address.newBuilder().setSocketAddress(SocketAddress.newBuilder().setAddress("0.0.0.0")
                        .setPortValue(8080)))
                .addFilterChains(FilterChain.newBuilder().addFilters(Filter.newBuilder()
                        .setName("envoy.filters.network.http_connection_manager")
                        .setTypedConfig(com.google.protobuf.Any.pack(hcm))))
                .build();
    }

    /** One virtual host per service; service {@code changed} goes to the cluster of service {@code to}. */
    static RouteConfiguration routes(int clusters, int changed, int to) {
        RouteConfiguration.Builder b = RouteConfiguration.newBuilder().setName("8080");
        for (int i = 0; i < clusters; i++) {
            String target = i == changed ? name(to % clusters) : name(i);
            b.addVirtualHosts(VirtualHost.newBuilder().setName(host(name(i)) + ":8080").addDomains(host(name(i)))
                    .addRoutes(Route.newBuilder().setMatch(RouteMatch.newBuilder().setPrefix("/"))
                            .setRoute(RouteAction.newBuilder().setCluster(target))));
        }
        return b.build();
    }

    record Get(String authority) implements RouteRequest {
        @Override
        public String path() {
            return "/";
        }

        @Override
        public String method() {
            return "GET";
        }

        @Override
        public String scheme() {
            return "http";
        }

        @Override
        public String header(String lowerCaseName) {
            return null;
        }
    }
}
