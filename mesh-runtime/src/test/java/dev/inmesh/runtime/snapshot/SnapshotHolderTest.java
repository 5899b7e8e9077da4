package dev.inmesh.runtime.snapshot;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.InvalidResourceException;
import dev.inmesh.runtime.xds.ResourceBundle;
import dev.inmesh.runtime.xds.ResourceType;
import java.util.List;
import org.junit.jupiter.api.Test;

class SnapshotHolderTest {
    static final String LISTENER = """
            - name: 0.0.0.0_9080
              address: {socket_address: {address: 0.0.0.0, port_value: 9080}}
              bind_to_port: false
              filter_chains:
              - filters:
                - name: envoy.filters.network.http_connection_manager
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                    stat_prefix: outbound_0.0.0.0_9080
                    rds: {route_config_name: "9080"}
                    http_filters:
                    - name: envoy.filters.http.router
                      typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
            - name: 10.0.0.9_3306
              address: {socket_address: {address: 10.0.0.9, port_value: 3306}}
              filter_chains:
              - filters:
                - name: envoy.filters.network.tcp_proxy
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                    stat_prefix: mysql
                    cluster: "outbound|3306||mysql.default.svc.cluster.local"
            """;

    static ResourceBundle bundle(String yaml) throws Exception {
        return EnvoyConfigReader.read(yaml);
    }

    @Test
    void runtimeValuesSetInTheAdminLayerRecompileTheRoutesAndStayAcrossConfigurations() throws Exception {
        String bootstrap = """
                static_resources: {}
                layered_runtime: {layers: [{name: s, static_layer: {k: 1}}, {name: admin, admin_layer: {}}]}
                ---
                name: r
                virtual_hosts: []
                """;
        SnapshotHolder holder = new SnapshotHolder();
        holder.apply(bundle(bootstrap));
        MeshSnapshot before = holder.current();
        assertEquals(1, before.runtime().integer("k", 0));
        holder.modifyRuntime(java.util.Map.of("k", "2", "other", "3"));
        MeshSnapshot after = holder.current();
        assertEquals(2, after.runtime().integer("k", 0));
        assertTrue(after.routeTable("r") != before.routeTable("r"), "the route tables took the new values");
        assertSame(before.resources(), after.resources());
        assertSame(before.clusterManager(), after.clusterManager());
        // a new configuration keeps the admin layer's values, as Envoy's runtime is apart from its xDS
        holder.apply(bundle(bootstrap.replace("k: 1", "k: 5")));
        assertEquals(2, holder.current().runtime().integer("k", 0));
        holder.modifyRuntime(java.util.Map.of("k", ""));
        assertEquals(5, holder.current().runtime().integer("k", 0));
        assertEquals(3, holder.current().runtime().integer("other", 0));
        // no admin layer: Envoy's words, and nothing changes
        holder.apply(bundle(bootstrap.replace(", {name: admin, admin_layer: {}}", "")));
        MeshSnapshot without = holder.current();
        assertEquals("No admin layer specified", assertThrows(IllegalStateException.class,
                () -> holder.modifyRuntime(java.util.Map.of("k", "9"))).getMessage());
        assertSame(without, holder.current());
        assertEquals(0, without.runtime().integer("other", 0));
    }

    @Test
    void aListenerIsFoundByExactAddressThenByPort() throws Exception {
        MeshSnapshot s = SnapshotCompiler.compile(bundle(LISTENER), 1);
        assertEquals("10.0.0.9_3306", s.listenerFor("10.0.0.9", 3306).listener().name());
        assertEquals("0.0.0.0_9080", s.listenerFor("10.0.0.7", 9080).listener().name());
        assertEquals(null, s.listenerFor("10.0.0.7", 3306));
    }

    @Test
    void aListenerIsFoundByEachOfItsAdditionalAddressesToo() throws Exception {
        String at = "  address: {socket_address: {address: 10.0.0.9, port_value: 3306}}\n";
        MeshSnapshot s = SnapshotCompiler.compile(bundle(LISTENER.replace(at, at + """
                  additional_addresses:
                  - address: {socket_address: {address: "fd00:0:0:0::9", port_value: 3306}}
                  - address: {socket_address: {address: "::", port_value: 3307}}
                """)), 1);
        // an IPv6 address is found in the form a connection's destination is printed in (RFC 5952)
        assertEquals("10.0.0.9_3306", s.listenerFor("fd00::9", 3306).listener().name());
        assertEquals("10.0.0.9_3306", s.listenerFor("10.0.0.9", 3306).listener().name());
        assertEquals("10.0.0.9_3306", s.listenerFor("10.0.0.7", 3307).listener().name(), "its wildcard address");
        assertEquals(null, s.listenerFor("fd00::8", 3306));
    }

    @Test
    void anRdsNameWithoutItsRouteConfigurationServesAnEmptyTable() throws Exception {
        MeshSnapshot s = SnapshotCompiler.compile(bundle(LISTENER), 1);
        var chain = s.listenerFor("10.0.0.7", 9080).listener().filterChains().get(0);
        assertNotNull(s.routeTable(chain));
        assertTrue(s.routeTable(chain).config().virtualHosts().isEmpty());
    }

    @Test
    void aBadBundleIsRejectedByNameAndTheLastGoodSnapshotKeepsServing() throws Exception {
        SnapshotHolder holder = new SnapshotHolder();
        assertFalse(holder.ready());
        MeshSnapshot good = holder.apply(bundle("""
                name: "9080"
                virtual_hosts:
                - {name: a, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: c}}]}
                """));
        assertTrue(holder.ready());
        InvalidResourceException e = assertThrows(InvalidResourceException.class, () -> holder.apply(bundle("""
                name: "9080"
                validate_clusters: true
                virtual_hosts:
                - {name: a, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: missing}}]}
                """)));
        assertEquals("RouteConfiguration \"9080\": virtual_hosts[0].routes[0].route.cluster: unknown cluster "
                + "'missing' (validate_clusters is on)", e.getMessage());
        assertSame(good, holder.current());
    }

    @Test
    void anInlineRouteConfigurationsUnknownClusterIsNamedByTheChainsAndVirtualHostsPlaces() throws Exception {
        SnapshotHolder holder = new SnapshotHolder();
        InvalidResourceException e = assertThrows(InvalidResourceException.class, () -> holder.apply(bundle("""
                name: front
                address: {socket_address: {address: 127.0.0.1, port_value: 8080}}
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: front
                      route_config:
                        name: local
                        virtual_hosts:
                        - {name: other, domains: [other], routes: [{match: {prefix: /}, direct_response: {status: 200}}]}
                        - {name: pp, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: productpagee}}]}
                      http_filters:
                      - name: envoy.filters.http.router
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                """)));
        assertTrue(e.getMessage().startsWith("Listener \"front\": filter_chains[0].route_config: RouteConfiguration "
                + "\"local\": virtual_hosts[1].routes[0].route.cluster: unknown cluster 'productpagee'"),
                e.getMessage());
    }

    @Test
    void aBundleARegisteredCheckRefusesIsRejectedByNameAndCheckingPublishesNothing() throws Exception {
        SnapshotHolder holder = new SnapshotHolder();
        List<MeshSnapshot> published = new java.util.ArrayList<>();
        holder.onUpdate(published::add);
        MeshSnapshot good = holder.apply(bundle(LISTENER));
        holder.addCheck(b -> {
            if (!b.listeners().containsKey("0.0.0.0_9080")) {
                throw new InvalidResourceException(ResourceType.LISTENER, "10.0.0.9_3306", "address",
                        "cannot bind '10.0.0.9:3306': Cannot assign requested address");
            }
        });
        ResourceBundle without = ResourceBundle.builder().from(bundle(LISTENER))
                .remove(ResourceType.LISTENER, "0.0.0.0_9080").build();
        InvalidResourceException e = assertThrows(InvalidResourceException.class, () -> holder.apply(without));
        assertEquals("10.0.0.9_3306", e.resourceName());
        assertSame(good, holder.current(), "the last good snapshot keeps serving");
        assertThrows(InvalidResourceException.class, () -> holder.check(without));
        holder.check(bundle(LISTENER));
        assertSame(good, holder.current(), "checking publishes nothing");
        assertEquals(List.of(good), published);
    }

    @Test
    void underValidateClustersAnUnknownMirrorClusterIsRejectedAsEnvoyRejectsAnUnknownShadowCluster()
            throws Exception {
        SnapshotHolder holder = new SnapshotHolder();
        String routes = """
                name: "9080"
                validate_clusters: true
                virtual_hosts:
                - {name: a, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: c,
                    request_mirror_policies: [{cluster: c}, {cluster_header: x-m}, {cluster: %s}]}}]}
                """;
        holder.apply(bundle(routes.formatted("c") + CLUSTER_C));
        InvalidResourceException e = assertThrows(InvalidResourceException.class,
                () -> holder.apply(bundle(routes.formatted("missing") + CLUSTER_C)));
        assertEquals("RouteConfiguration \"9080\": virtual_hosts[0].routes[0].route.request_mirror_policies[2]"
                + ".cluster: unknown shadow cluster 'missing' (validate_clusters is on)", e.getMessage());
    }

    /** A listener whose connection manager has its route table inline, sending everything to {@code cluster}. */
    static String inlineListener(String validateClusters, String cluster) {
        return """
                name: 0.0.0.0_8080
                address: {socket_address: {address: 0.0.0.0, port_value: 8080}}
                bind_to_port: false
                filter_chains:
                - name: http
                  filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: outbound_0.0.0.0_8080
                      route_config:
                        name: inline-8080
                        %s
                        virtual_hosts:
                        - {name: a, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: "%s"}}]}
                      http_filters:
                      - name: envoy.filters.http.router
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                """.formatted(validateClusters, cluster);
    }

    static final String CLUSTER_C = """
            ---
            name: c
            type: STATIC
            connect_timeout: 1s
            """;

    @Test
    void anInlineRouteConfigWithoutValidateClustersChecksItsClustersAsEnvoysDefaultForRouteConfigIsTrue()
            throws Exception {
        SnapshotHolder holder = new SnapshotHolder();
        MeshSnapshot good = holder.apply(bundle(inlineListener("", "c") + CLUSTER_C));
        assertTrue(good.routeTable(good.listener("0.0.0.0_8080").listener().filterChains().get(0)).config()
                .validateClusters());
        InvalidResourceException e = assertThrows(InvalidResourceException.class,
                () -> holder.apply(bundle(inlineListener("", "missing") + CLUSTER_C)));
        assertEquals(dev.inmesh.runtime.xds.ResourceType.LISTENER, e.type());
        assertEquals("0.0.0.0_8080", e.resourceName());
        assertTrue(e.getMessage().contains("RouteConfiguration \"inline-8080\""), e.getMessage());
        assertTrue(e.getMessage().contains("unknown cluster 'missing'"), e.getMessage());
        assertSame(good, holder.current(), "the last good snapshot keeps serving");
    }

    @Test
    void anInlineRouteConfigSayingValidateClustersFalseLoadsWithAnUnknownCluster() throws Exception {
        MeshSnapshot s = SnapshotCompiler.compile(bundle(inlineListener("validate_clusters: false", "missing")), 1);
        assertNotNull(s.listener("0.0.0.0_8080"));
        assertThrows(InvalidResourceException.class, () -> SnapshotCompiler.compile(
                bundle(inlineListener("validate_clusters: true", "missing")), 1));
    }

    @Test
    void anRdsRouteConfigWithoutValidateClustersLoadsWithAnUnknownClusterAsEnvoysRdsDefaultIsFalse()
            throws Exception {
        MeshSnapshot s = SnapshotCompiler.compile(bundle(LISTENER + """
                ---
                name: "9080"
                virtual_hosts:
                - {name: a, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: missing}}]}
                """), 1);
        assertFalse(s.routeTable("9080").config().validateClusters());
    }

    @Test
    void eachPublishedSnapshotCountsUpAndNotifies() throws Exception {
        SnapshotHolder holder = new SnapshotHolder();
        long[] seen = new long[1];
        holder.onUpdate(s -> seen[0] = s.generation());
        holder.apply(bundle(LISTENER));
        holder.apply(bundle(LISTENER));
        assertEquals(2, holder.current().generation());
        assertEquals(2, seen[0]);
    }

    /** Clusters {@code names}, each STATIC with one endpoint, {@code timeout} its connect timeout. */
    static String clusters(String timeout, String... names) {
        StringBuilder b = new StringBuilder("resources:\n");
        for (String n : names) {
            b.append("""
                    - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
                      name: %s
                      type: STATIC
                      connect_timeout: %s
                      load_assignment: {cluster_name: %s, endpoints: [{lb_endpoints: [{endpoint: {address:
                        {socket_address: {address: 127.0.0.1, port_value: 1}}}}]}]}
                    """.formatted(n, timeout, n));
        }
        return b.toString();
    }

    /**
     * As Envoy's cluster and listener managers count {@code cluster_added}, {@code cluster_modified},
     * {@code cluster_removed} and {@code listener_added}, ...: a resource whose config is unchanged is no update,
     * though the snapshot is new.
     */
    @Test
    void eachPublishedSnapshotCountsTheClustersAndListenersItAddsChangesAndRemoves() throws Exception {
        var registry = new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
        SnapshotHolder holder = new SnapshotHolder();
        holder.stats().bind(registry);
        java.util.function.ToLongFunction<String> value = n -> (long) registry.get(n).gauge().value();

        holder.apply(ResourceBundle.builder().from(bundle(clusters("1s", "a", "b"))).from(bundle(LISTENER)).build());
        holder.apply(bundle(clusters("2s", "a", "c")));
        holder.apply(bundle(clusters("2s", "a", "c")));

        assertEquals(3, value.applyAsLong("envoy_cluster_manager_cluster_added"));
        assertEquals(1, value.applyAsLong("envoy_cluster_manager_cluster_modified"), "a, not when unchanged");
        assertEquals(1, value.applyAsLong("envoy_cluster_manager_cluster_removed"));
        assertEquals(2, value.applyAsLong("envoy_cluster_manager_active_clusters"));
        assertEquals(0, value.applyAsLong("envoy_cluster_manager_warming_clusters"));
        assertEquals(2, value.applyAsLong("envoy_listener_manager_listener_added"));
        assertEquals(0, value.applyAsLong("envoy_listener_manager_listener_modified"));
        assertEquals(2, value.applyAsLong("envoy_listener_manager_listener_removed"));
        assertEquals(0, value.applyAsLong("envoy_listener_manager_total_listeners_active"));
        assertEquals(null, registry.find("envoy_cluster_manager_cds_update_success").gauge(),
                "no CDS subscription: none of its statistics, as Envoy's");
    }

    /**
     * As Envoy's cluster manager, which counts {@code cluster_added}, {@code cluster_modified} and
     * {@code cluster_removed} only in its CDS updates ({@code addOrUpdateCluster}, {@code removeCluster} of a cluster
     * added through the API), not as it loads a bootstrap's {@code static_resources} clusters; while its listener
     * manager counts a static listener in {@code listener_added}, as it adds every listener through
     * {@code addOrUpdateListener}.
     */
    @Test
    void aBootstrapsStaticClustersAreNotCountedAsAddedButItsStaticListenersAre() throws Exception {
        var registry = new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
        SnapshotHolder holder = new SnapshotHolder();
        holder.stats().bind(registry);
        java.util.function.ToLongFunction<String> value = n -> (long) registry.get(n).gauge().value();
        String bootstrap = "static_resources:\n  listeners:\n" + LISTENER.indent(2) + "  clusters:\n"
                + clusters("1s", "static").replace("resources:\n", "").indent(2);
        ResourceBundle statics = bundle(bootstrap);
        assertTrue(statics.isStatic(ResourceType.CLUSTER, "static"));

        holder.apply(ResourceBundle.builder().from(statics).from(bundle(clusters("1s", "dynamic"))).build());
        holder.apply(statics);

        assertEquals(1, value.applyAsLong("envoy_cluster_manager_cluster_added"), "dynamic only");
        assertEquals(1, value.applyAsLong("envoy_cluster_manager_cluster_removed"), "dynamic");
        assertEquals(0, value.applyAsLong("envoy_cluster_manager_cluster_modified"));
        assertEquals(1, value.applyAsLong("envoy_cluster_manager_active_clusters"), "the static one is active");
        assertFalse(statics.listeners().isEmpty());
        assertEquals(statics.listeners().size(), value.applyAsLong("envoy_listener_manager_listener_added"),
                "the static listeners");
    }

    /**
     * As Envoy's cluster manager loads a bootstrap's {@code static_resources} clusters straight into its active
     * clusters (a static cluster with health checks too), {@code warming_clusters} counts only a cluster from xDS (or
     * code) that waits for its first health checks, as {@code /clusters} and {@code /config_dump} show them.
     */
    @Test
    void aBootstrapsClusterWaitingForItsFirstHealthChecksIsActiveNotWarming() throws Exception {
        var registry = new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
        SnapshotHolder holder = new SnapshotHolder();
        holder.stats().bind(registry);
        java.util.function.ToLongFunction<String> value = n -> (long) registry.get(n).gauge().value();
        String checks = "  health_checks:\n  - {timeout: 1s, interval: 1s, unhealthy_threshold: 1, healthy_threshold: 1,"
                + " tcp_health_check: {}}\n";
        String bootstrap = "static_resources:\n  clusters:\n"
                + (clusters("1s", "static").replace("resources:\n", "") + checks).indent(2);
        holder.apply(ResourceBundle.builder().from(bundle(bootstrap))
                .from(bundle(clusters("1s", "dynamic") + checks)).build());
        assertTrue(holder.current().clusterManager().clusters().get("static").warming());
        assertTrue(holder.current().clusterManager().clusters().get("dynamic").warming());

        assertEquals(1, value.applyAsLong("envoy_cluster_manager_warming_clusters"), "dynamic only");
        assertEquals(1, value.applyAsLong("envoy_cluster_manager_active_clusters"), "static");
    }
    /**
     * Closing the holder ends its initialization's wait, as closing the clusters ends their warming (the mesh's start
     * then fails, the proxy's listeners stop waiting): so it does when the configuration in force holds a cluster back
     * for its load assignment ({@code held}), which no manager's initialization would end.
     */
    @Test
    void closingEndsTheInitializationAlsoWhileAClusterIsHeldForItsLoadAssignment() throws Exception {
        String checks = "  health_checks:\n  - {timeout: 1s, interval: 1s, unhealthy_threshold: 1, healthy_threshold: 1,"
                + " tcp_health_check: {}}\n";
        SnapshotHolder warming = new SnapshotHolder();
        warming.apply(bundle(clusters("1s", "a") + checks)); // no Vert.x: its checks never run
        assertFalse(warming.initialized().isComplete());
        warming.close();
        assertTrue(warming.initialized().isComplete(), "the warming ended by the close");

        SnapshotHolder held = new SnapshotHolder();
        held.apply(bundle(clusters("1s", "a") + checks));
        held.apply(bundle(clusters("1s", "a") + checks), true);
        assertFalse(held.initialized().isComplete());
        held.close();
        assertTrue(held.initialized().isComplete(), "the wait for the held cluster ended by the close");
    }
}
