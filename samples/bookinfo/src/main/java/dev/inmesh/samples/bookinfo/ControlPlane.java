package dev.inmesh.samples.bookinfo;

import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.ResourceBundle;
import dev.inmesh.runtime.xds.ResourceType;
import io.envoyproxy.controlplane.cache.v3.SimpleCache;
import io.envoyproxy.controlplane.cache.v3.Snapshot;
import io.envoyproxy.controlplane.server.V3DiscoveryServer;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.config.route.v3.WeightedCluster;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A small xDS control plane for bookinfo, in istiod's place: it serves the resources of the mesh directory over ADS
 * (gRPC, plaintext, java-control-plane's server) to every node alike, and can shift the reviews weights live, which
 * pushes a new route configuration {@code 9080} to every connected mesh. Listeners, route configurations, clusters
 * and endpoints are served as the files give them (the messages they were parsed from).
 */
public final class ControlPlane implements AutoCloseable {
    /** istiod's plaintext xDS port. */
    public static final int DEFAULT_PORT = 15010;
    static final String ROUTE_NAME = "9080";
    static final String REVIEWS_VHOST = "reviews.default.svc.cluster.local:9080";
    private static final String GROUP = "bookinfo";

    private final ResourceBundle config;
    private final Server server;
    private final SimpleCache<String> cache;
    private long version;
    private Map<String, Integer> reviewsWeights;

    /** istiod's gRPC keepalive interval ({@code --keepaliveInterval}, Istio's pkg/keepalive: 30 s). */
    static final Duration KEEPALIVE_INTERVAL = Duration.ofSeconds(30);
    /** How long istiod waits for the answer to its keepalive PING ({@code --keepaliveTimeout}: 10 s). */
    static final Duration KEEPALIVE_TIMEOUT = Duration.ofSeconds(10);

    /**
     * Reads {@code meshDir} and serves it on {@code host:port} (port 0 picks a free port), with istiod's keepalive.
     *
     * @throws EnvoyConfigReader.ConfigReadException when the directory does not read as Envoy configuration
     * @throws IOException when the port cannot be bound
     */
    public static ControlPlane start(Path meshDir, String host, int port)
            throws EnvoyConfigReader.ConfigReadException, IOException {
        return start(meshDir, host, port, KEEPALIVE_INTERVAL);
    }

    /**
     * As {@link #start(Path, String, int)}, with {@code keepalive} for istiod's keepalive interval. As istiod's
     * gRPC server (Istio's pilot/pkg/grpc ServerOptions), it pings a connection idle that long, and permits its
     * clients a PING every half of it: a sidecar pings every 30 s (its bootstrap's {@code connection_keepalive}),
     * which grpc-java's default policy (one PING in 5 minutes) would answer, on the third, with a GOAWAY
     * {@code ENHANCE_YOUR_CALM} ({@code too_many_pings}) that ends every stream on the connection.
     */
    static ControlPlane start(Path meshDir, String host, int port, Duration keepalive)
            throws EnvoyConfigReader.ConfigReadException, IOException {
        ResourceBundle config = EnvoyConfigReader.read(meshDir);
        SimpleCache<String> cache = new SimpleCache<>(node -> GROUP);
        V3DiscoveryServer discovery = new V3DiscoveryServer(cache);
        Server server = NettyServerBuilder.forAddress(new InetSocketAddress(host, port))
                .keepAliveTime(keepalive.toMillis(), TimeUnit.MILLISECONDS)
                .keepAliveTimeout(KEEPALIVE_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)
                .permitKeepAliveTime(keepalive.toMillis() / 2, TimeUnit.MILLISECONDS)
                .addService(discovery.getAggregatedDiscoveryServiceImpl())
                .addService(discovery.getClusterDiscoveryServiceImpl())
                .addService(discovery.getEndpointDiscoveryServiceImpl())
                .addService(discovery.getListenerDiscoveryServiceImpl())
                .addService(discovery.getRouteDiscoveryServiceImpl())
                .build();
        ControlPlane cp = new ControlPlane(config, server, cache);
        cp.publish(cp.weightsInFiles());
        server.start();
        return cp;
    }

    private ControlPlane(ResourceBundle config, Server server, SimpleCache<String> cache) {
        this.config = config;
        this.server = server;
        this.cache = cache;
    }

    /** The port the server listens on. */
    public int port() {
        return server.getPort();
    }

    /** The version of the snapshot being served: {@code bookinfo-N}, N counting from 1. */
    public synchronized String version() {
        return GROUP + "-" + version;
    }

    /** The reviews weights being served, by subset ({@code v1}, {@code v2}, {@code v3}). */
    public synchronized Map<String, Integer> reviewsWeights() {
        return reviewsWeights;
    }

    /**
     * Serves new weights for the reviews split (the weighted route of the reviews virtual host): every connected
     * mesh gets route configuration {@code 9080} again, with these weights.
     *
     * @param weights by subset; each of the split's subsets must be given, with weights >= 0 and some above 0
     */
    public synchronized void setReviewsWeights(Map<String, Integer> weights) {
        Map<String, Integer> current = weightsInFiles();
        if (!weights.keySet().equals(current.keySet())) {
            throw new IllegalArgumentException("weights: " + weights.keySet() + " (expected: " + current.keySet()
                    + ")");
        }
        int total = 0;
        for (Map.Entry<String, Integer> e : weights.entrySet()) {
            if (e.getValue() == null || e.getValue() < 0) {
                throw new IllegalArgumentException("weight of " + e.getKey() + ": " + e.getValue()
                        + " (expected: >= 0)");
            }
            total += e.getValue();
        }
        if (total <= 0) {
            throw new IllegalArgumentException("weights: " + weights + " (expected: a total above 0)");
        }
        publish(new LinkedHashMap<>(weights));
    }

    /** Moves {@code percent} points of reviews traffic from one subset to another (as far as there is). */
    public synchronized void shiftReviews(String from, String to, int percent) {
        Map<String, Integer> w = new LinkedHashMap<>(reviewsWeights);
        if (!w.containsKey(from) || !w.containsKey(to)) {
            throw new IllegalArgumentException("subsets: " + from + ", " + to + " (expected: " + w.keySet() + ")");
        }
        int moved = Math.min(Math.max(0, percent), w.get(from));
        w.put(from, w.get(from) - moved);
        w.put(to, w.get(to) + moved);
        publish(w);
    }

    private synchronized void publish(Map<String, Integer> weights) {
        List<Cluster> clusters = new ArrayList<>();
        for (String name : config.clusters().keySet()) {
            clusters.add((Cluster) config.message(ResourceType.CLUSTER, name));
        }
        List<ClusterLoadAssignment> endpoints = new ArrayList<>();
        for (String name : config.endpoints().keySet()) {
            endpoints.add((ClusterLoadAssignment) config.message(ResourceType.ENDPOINT, name));
        }
        List<Listener> listeners = new ArrayList<>();
        for (String name : config.listeners().keySet()) {
            listeners.add((Listener) config.message(ResourceType.LISTENER, name));
        }
        List<RouteConfiguration> routes = new ArrayList<>();
        for (String name : config.routes().keySet()) {
            RouteConfiguration rc = (RouteConfiguration) config.message(ResourceType.ROUTE, name);
            routes.add(name.equals(ROUTE_NAME) ? withReviewsWeights(rc, weights) : rc);
        }
        version++;
        reviewsWeights = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(weights));
        cache.setSnapshot(GROUP, Snapshot.create(clusters, endpoints, listeners, routes, List.of(),
                GROUP + "-" + version));
    }

    /** The weights of the reviews split as the files give them, by subset. */
    public Map<String, Integer> weightsInFiles() {
        Map<String, Integer> w = new LinkedHashMap<>();
        WeightedCluster split = reviewsSplit(routeConfig().toBuilder());
        for (WeightedCluster.ClusterWeight c : split.getClustersList()) {
            w.put(subset(c.getName()), c.getWeight().getValue());
        }
        return w;
    }

    private RouteConfiguration routeConfig() {
        RouteConfiguration rc = (RouteConfiguration) config.message(ResourceType.ROUTE, ROUTE_NAME);
        if (rc == null) {
            throw new IllegalStateException("no route configuration " + ROUTE_NAME + " in the mesh directory");
        }
        return rc;
    }

    private static WeightedCluster reviewsSplit(RouteConfiguration.Builder rc) {
        for (var vh : rc.getVirtualHostsList()) {
            if (vh.getName().equals(REVIEWS_VHOST)) {
                for (var route : vh.getRoutesList()) {
                    if (route.hasRoute() && route.getRoute().hasWeightedClusters()) {
                        return route.getRoute().getWeightedClusters();
                    }
                }
            }
        }
        throw new IllegalStateException("no weighted route in virtual host " + REVIEWS_VHOST);
    }

    private static RouteConfiguration withReviewsWeights(RouteConfiguration rc, Map<String, Integer> weights) {
        RouteConfiguration.Builder b = rc.toBuilder();
        for (var vh : b.getVirtualHostsBuilderList()) {
            if (!vh.getName().equals(REVIEWS_VHOST)) {
                continue;
            }
            for (var route : vh.getRoutesBuilderList()) {
                if (route.hasRoute() && route.getRoute().hasWeightedClusters()) {
                    for (var c : route.getRouteBuilder().getWeightedClustersBuilder().getClustersBuilderList()) {
                        c.getWeightBuilder().setValue(weights.get(subset(c.getName())));
                    }
                }
            }
        }
        return b.build();
    }

    /** The subset of a cluster named {@code outbound|PORT|SUBSET|FQDN}. */
    static String subset(String cluster) {
        String[] parts = cluster.split("\\|", -1);
        return parts.length == 4 ? parts[2] : cluster;
    }

    /** Stops serving: streams get 5 s to finish, then are cut. */
    @Override
    public void close() {
        server.shutdown();
        try {
            if (!server.awaitTermination(5, TimeUnit.SECONDS)) {
                server.shutdownNow();
            }
        } catch (InterruptedException e) {
            server.shutdownNow();
            Thread.currentThread().interrupt();
        }
    }

    /** Serves {@code samples/bookinfo/mesh/} on 127.0.0.1:15010 until interrupted. */
    public static void main(String[] args) throws Exception {
        Bookinfo.quietLogging();
        Path dir = args.length > 0 ? Path.of(args[0]) : Bookinfo.defaultMeshDir();
        ControlPlane cp = start(dir, "127.0.0.1", DEFAULT_PORT);
        System.out.println("bookinfo control plane: ADS on 127.0.0.1:" + cp.port() + ", serving " + dir
                + " (reviews " + cp.reviewsWeights() + ")");
        Runtime.getRuntime().addShutdownHook(new Thread(cp::close, "control-plane-shutdown"));
        cp.server.awaitTermination();
    }
}
