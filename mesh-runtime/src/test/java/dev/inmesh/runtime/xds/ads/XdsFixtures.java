package dev.inmesh.runtime.xds.ads;

import com.google.protobuf.Message;
import dev.inmesh.runtime.router.RouteRequest;
import dev.inmesh.runtime.router.RouteResult;
import dev.inmesh.runtime.router.RouteTable;
import dev.inmesh.runtime.snapshot.MeshSnapshot;
import dev.inmesh.runtime.xds.EnvoyJson;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import java.time.Duration;
import java.util.function.BooleanSupplier;

/** Envoy resources for ADS tests and benchmarks, written as YAML. */
public final class XdsFixtures {
    private XdsFixtures() {}

    /** An outbound listener on {@code 0.0.0.0:port} whose connection manager asks RDS for {@code rds}. */
    public static Listener listener(String name, int port, String rds) {
        return parse("""
                name: "%s"
                address: {socket_address: {address: 0.0.0.0, port_value: %d}}
                bind_to_port: false
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: outbound_%d
                      rds: {route_config_name: "%s"}
                      http_filters:
                      - name: envoy.filters.http.router
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                """.formatted(name, port, port, rds), Listener.class);
    }

    /**
     * An outbound listener on {@code 0.0.0.0:port} whose connection manager has its route table {@code routeName}
     * inline ({@code route_config}, no {@code validate_clusters}), sending everything to {@code cluster}.
     */
    public static Listener inlineListener(String name, int port, String routeName, String cluster) {
        return inlineListener(name, port, routeName, "{prefix: /}", cluster);
    }

    /** As {@link #inlineListener(String, int, String, String)}, its one route matching by {@code match} (YAML). */
    public static Listener inlineListener(String name, int port, String routeName, String match, String cluster) {
        return parse("""
                name: "%s"
                address: {socket_address: {address: 0.0.0.0, port_value: %d}}
                bind_to_port: false
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: outbound_%d
                      route_config:
                        name: "%s"
                        virtual_hosts:
                        - {name: all, domains: ["*"], routes: [{match: %s, route: {cluster: "%s"}}]}
                      http_filters:
                      - name: envoy.filters.http.router
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                """.formatted(name, port, port, routeName, match, cluster), Listener.class);
    }

    /** A route configuration sending everything to {@code cluster}. */
    public static RouteConfiguration route(String name, String cluster) {
        return parse("""
                name: "%s"
                virtual_hosts:
                - {name: all, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: "%s"}}]}
                """.formatted(name, cluster), RouteConfiguration.class);
    }

    /** A STATIC cluster of one endpoint, {@code 127.0.0.1:port}. */
    public static Cluster staticCluster(String name, int port) {
        return parse("""
                name: "%1$s"
                type: STATIC
                connect_timeout: 1s
                load_assignment:
                  cluster_name: "%1$s"
                  endpoints:
                  - lb_endpoints:
                    - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %2$d}}}
                """.formatted(name, port), Cluster.class);
    }

    /** A route configuration whose second route has an invalid RE2 regex. */
    public static RouteConfiguration badRoute(String name) {
        return parse("""
                name: "%s"
                virtual_hosts:
                - name: all
                  domains: ["*"]
                  routes:
                  - {match: {prefix: /ok}, route: {cluster: c1}}
                  - {match: {safe_regex: {regex: "a("}}, route: {cluster: c1}}
                """.formatted(name), RouteConfiguration.class);
    }

    /** An EDS cluster. */
    public static Cluster edsCluster(String name) {
        return parse("""
                name: "%s"
                type: EDS
                connect_timeout: 1s
                eds_cluster_config: {eds_config: {ads: {}}, service_name: "%s"}
                """.formatted(name, name), Cluster.class);
    }

    /** A load assignment of {@code n} endpoints {@code 10.x.y.z:8080}, starting at {@code 10.0.0.1}. */
    public static ClusterLoadAssignment endpoints(String cluster, int n) {
        ClusterLoadAssignment.Builder b = ClusterLoadAssignment.newBuilder().setClusterName(cluster);
        var locality = io.envoyproxy.envoy.config.endpoint.v3.LocalityLbEndpoints.newBuilder();
        for (int i = 1; i <= n; i++) {
            String ip = "10." + ((i >> 16) & 255) + "." + ((i >> 8) & 255) + "." + (i & 255);
            locality.addLbEndpoints(io.envoyproxy.envoy.config.endpoint.v3.LbEndpoint.newBuilder()
                    .setEndpoint(io.envoyproxy.envoy.config.endpoint.v3.Endpoint.newBuilder()
                            .setAddress(io.envoyproxy.envoy.config.core.v3.Address.newBuilder()
                                    .setSocketAddress(io.envoyproxy.envoy.config.core.v3.SocketAddress.newBuilder()
                                            .setAddress(ip).setPortValue(8080)))));
        }
        return b.addEndpoints(locality).build();
    }

    static <M extends Message> M parse(String yaml, Class<M> type) {
        try {
            return EnvoyJson.toMessage(EnvoyJson.tree(yaml), type);
        } catch (Exception e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }

    /** The name of a listener, route configuration or cluster, or a load assignment's cluster_name. */
    public static String name(Message m) {
        return (String) m.getField(m.getDescriptorForType().findFieldByName(
                m instanceof ClusterLoadAssignment ? "cluster_name" : "name"));
    }

    /** The cluster a GET of {@code path} goes to through route table {@code name}, or null when none. */
    public static String clusterFor(MeshSnapshot s, String routeName, String path) {
        RouteTable t = s.routeTable(routeName);
        if (t == null) {
            return null;
        }
        RouteResult r = t.route(new Get("example.com", path), 0);
        return r instanceof RouteResult.Forward f ? f.cluster() : null;
    }

    /** Waits until {@code condition} holds. */
    public static void await(BooleanSupplier condition, Duration timeout, String what) throws InterruptedException {
        long end = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("timed out after " + timeout + " waiting for " + what);
            }
            Thread.sleep(5);
        }
    }

    record Get(String authority, String path) implements RouteRequest {
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
