package dev.inmesh.runtime.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.xds.DynamicState;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.EnvoyJson;
import dev.inmesh.runtime.xds.ResourceBundle;
import dev.inmesh.runtime.xds.ResourceType;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;

public class ConfigDumpBuilderTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Two listeners (HTTP through RDS, TCP proxy) and a route configuration, as an xDS-like document. */
    static final String LISTENERS_AND_ROUTES = """
            resources:
            - "@type": type.googleapis.com/envoy.config.listener.v3.Listener
              name: 0.0.0.0_9080
              address: {socket_address: {address: 0.0.0.0, port_value: 9080}}
              traffic_direction: OUTBOUND
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
            - "@type": type.googleapis.com/envoy.config.listener.v3.Listener
              name: 10.96.0.9_3306
              address: {socket_address: {address: 10.96.0.9, port_value: 3306}}
              traffic_direction: OUTBOUND
              filter_chains:
              - filters:
                - name: envoy.filters.network.tcp_proxy
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                    stat_prefix: "outbound|3306||mysql.default.svc.cluster.local"
                    cluster: "outbound|3306||mysql.default.svc.cluster.local"
            - "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
              name: "9080"
              virtual_hosts:
              - name: reviews.default.svc.cluster.local:9080
                domains: [reviews.default.svc.cluster.local, reviews, reviews.default.svc, "10.96.12.7"]
                routes:
                - match: {prefix: /}
                  route: {cluster: "outbound|9080||reviews.default.svc.cluster.local", timeout: 0s}
                  metadata:
                    filter_metadata:
                      istio: {config: /apis/networking.istio.io/v1alpha3/namespaces/default/virtual-service/reviews}
              - name: allow_any
                domains: ["*"]
                routes:
                - name: allow_any
                  match: {prefix: /}
                  route: {cluster: PassthroughCluster}
            """;

    static ResourceBundle bundle() throws Exception {
        ResourceBundle read = EnvoyConfigReader.read(LISTENERS_AND_ROUTES);
        ResourceBundle.Version v1 = new ResourceBundle.Version("2026-11-28T13:00:00Z/7",
                Instant.parse("2026-11-28T13:00:00Z"));
        ResourceBundle.Version v2 = new ResourceBundle.Version("2026-11-28T13:05:00Z/8",
                Instant.parse("2026-11-28T13:05:00.250Z"));
        ResourceBundle.Builder b = ResourceBundle.builder();
        read.listeners().values().forEach(l -> b.add(l, v1, read.message(ResourceType.LISTENER, l.name())));
        read.routes().values().forEach(r -> b.add(r, v2, read.message(ResourceType.ROUTE, r.name())));
        return b.build();
    }

    @Test
    void aDumpLoadsBackIntoTheSameResourcesAndVersions() throws Exception {
        ResourceBundle original = bundle();

        ResourceBundle back = EnvoyConfigReader.read(ConfigDumpBuilder.json(original, "node-1", Instant.EPOCH));

        assertEquals(original.listeners(), back.listeners());
        assertEquals(original.routes(), back.routes());
        assertEquals(original.versions(), back.versions());
        assertEquals(original.messages(), back.messages());
    }

    @Test
    void aRouteConfigurationsMostSpecificHeaderMutationsWinsIsInTheDump() throws Exception {
        ResourceBundle read = EnvoyConfigReader.read(LISTENERS_AND_ROUTES.replace("""
                  name: "9080"
                """, """
                  name: "9080"
                  most_specific_header_mutations_wins: true
                """));
        JsonNode routes = EnvoyJson.tree(ConfigDumpBuilder.json(read, "n", Instant.EPOCH)).get("configs").get(5);
        assertEquals("type.googleapis.com/envoy.admin.v3.RoutesConfigDump", routes.get("@type").asText());
        assertEquals(true, routes.findValue("most_specific_header_mutations_wins").asBoolean(), routes.toString());
    }

    @Test
    void theDumpHasEnvoysShape() throws Exception {
        JsonNode dump = EnvoyJson.tree(ConfigDumpBuilder.json(bundle(), "sidecar~10.0.0.1~a.default~default.svc",
                Instant.parse("2026-11-28T12:00:00Z")));

        JsonNode configs = dump.get("configs");
        assertEquals("type.googleapis.com/envoy.admin.v3.BootstrapConfigDump", configs.get(0).get("@type").asText());
        assertEquals("sidecar~10.0.0.1~a.default~default.svc",
                configs.get(0).get("bootstrap").get("node").get("id").asText());
        assertEquals("type.googleapis.com/envoy.admin.v3.ClustersConfigDump", configs.get(1).get("@type").asText());
        assertEquals("type.googleapis.com/envoy.admin.v3.EndpointsConfigDump", configs.get(2).get("@type").asText());
        JsonNode listeners = configs.get(3);
        assertEquals("type.googleapis.com/envoy.admin.v3.ListenersConfigDump", listeners.get("@type").asText());
        assertEquals("2026-11-28T13:00:00Z/7", listeners.get("version_info").asText());
        JsonNode first = listeners.get("dynamic_listeners").get(0);
        assertEquals("0.0.0.0_9080", first.get("name").asText());
        assertEquals("2026-11-28T13:00:00Z/7", first.get("active_state").get("version_info").asText());
        assertEquals("2026-11-28T13:00:00Z", first.get("active_state").get("last_updated").asText());
        assertEquals("type.googleapis.com/envoy.config.listener.v3.Listener",
                first.get("active_state").get("listener").get("@type").asText());
        assertEquals("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
                + ".HttpConnectionManager", first.get("active_state").get("listener").get("filter_chains").get(0)
                .get("filters").get(0).get("typed_config").get("@type").asText());
        // as an Istio sidecar's Envoy: an empty scoped routes' dump between listeners and routes
        assertEquals("{\"@type\":\"type.googleapis.com/envoy.admin.v3.ScopedRoutesConfigDump\"}",
                configs.get(4).toString());
        JsonNode routes = configs.get(5);
        assertEquals("type.googleapis.com/envoy.admin.v3.RoutesConfigDump", routes.get("@type").asText());
        assertEquals("type.googleapis.com/envoy.admin.v3.SecretsConfigDump", configs.get(6).get("@type").asText());
        assertEquals(7, configs.size());
        // without an xDS server, the node still has the proxy's user agent
        assertEquals("inmesh", configs.get(0).get("bootstrap").get("node").get("user_agent_name").asText());
        JsonNode route = routes.get("dynamic_route_configs").get(0);
        assertEquals("2026-11-28T13:05:00Z/8", route.get("version_info").asText());
        assertEquals("2026-11-28T13:05:00.250Z", route.get("last_updated").asText());
        assertEquals("9080", route.get("route_config").get("name").asText());
    }

    @Test
    void resourcesBuiltInCodeWithoutAMessageAreLeftOut() throws Exception {
        ResourceBundle read = EnvoyConfigReader.read(LISTENERS_AND_ROUTES);
        ResourceBundle codeOnly = ResourceBundle.builder()
                .add(read.routes().get("9080"), new ResourceBundle.Version("1", Instant.EPOCH)).build();

        JsonNode dump = EnvoyJson.tree(ConfigDumpBuilder.json(codeOnly, "n", Instant.EPOCH));

        assertEquals(null, routesDump(dump).get("dynamic_route_configs"));
    }

    @Test
    void aBootstrapsStaticResourcesAreDumpedAsStaticAndReadBackAsStatic() throws Exception {
        ResourceBundle bootstrap = EnvoyConfigReader.read(
                java.nio.file.Path.of("src/test/resources/istio/bootstrap.json"));

        String json = ConfigDumpBuilder.json(bootstrap, "n", Instant.EPOCH);

        JsonNode configs = EnvoyJson.tree(json).get("configs");
        JsonNode clusters = configs.get(1);
        assertEquals(null, clusters.get("dynamic_active_clusters"));
        assertEquals(java.util.List.of("prometheus_stats", "agent"),
                names(clusters.get("static_clusters"), "cluster"));
        assertEquals(true, clusters.get("static_clusters").get(0).has("last_updated"));
        JsonNode listeners = configs.get(3);
        assertEquals(null, listeners.get("dynamic_listeners"));
        assertEquals(java.util.List.of("0.0.0.0_15090", "0.0.0.0_15021"),
                names(listeners.get("static_listeners"), "listener"));
        ResourceBundle back = EnvoyConfigReader.read(json);
        assertEquals(bootstrap.clusters(), back.clusters());
        assertEquals(bootstrap.listeners(), back.listeners());
        assertEquals(true, back.isStatic(ResourceType.CLUSTER, "agent"));
        assertEquals(true, back.isStatic(ResourceType.LISTENER, "0.0.0.0_15021"));
        // as Envoy's dump, the bootstrap's layered_runtime, which reads back into the same runtime
        assertEquals("global config", configs.get(0).at("/bootstrap/layered_runtime/layers/0/name").asText());
        assertEquals(bootstrap.runtime(), back.runtime());
        // as Envoy's: a dump's version_info is its xDS API's, which static resources do not have
        assertEquals("", clusters.path("version_info").asText(""));
        assertEquals("", listeners.path("version_info").asText(""));
        // with include_eds, as Envoy's: each static cluster's hosts, from its own load_assignment, as static ones
        JsonNode eds = EnvoyJson.tree(ConfigDumpBuilder.json(bootstrap, DynamicState.NONE, "n", Instant.EPOCH,
                new ConfigDumpBuilder.Query(true, null, null, null))).get("configs").get(2);
        assertEquals(java.util.List.of("prometheus_stats", "agent"),
                eds.get("static_endpoint_configs").findValuesAsText("cluster_name"));
        assertEquals(15000, eds.at("/static_endpoint_configs/0/endpoint_config/endpoints/0/lb_endpoints/0/endpoint"
                + "/address/socket_address/port_value").asInt());
        assertEquals(null, eds.get("dynamic_endpoint_configs"));
        assertEquals(java.util.List.of("endpoint_config"),
                iterable(eds.get("static_endpoint_configs").get(0).fieldNames()));
        // read back (as a dump of Envoy's), the same clusters, the endpoints those of their own load assignments
        ResourceBundle withEds = EnvoyConfigReader.read(ConfigDumpBuilder.json(bootstrap, DynamicState.NONE, "n",
                Instant.EPOCH, new ConfigDumpBuilder.Query(true, null, null, null)));
        assertEquals(bootstrap.clusters(), withEds.clusters());
        withEds.endpoints().forEach((name, cla) -> assertEquals(bootstrap.clusters().get(name).loadAssignment(), cla));
    }

    /**
     * An inbound listener whose two chains (TLS and plaintext) carry the same inline route configuration, as an item
     * of a {@code resources} list.
     */
    public static final String INBOUND = """
            - "@type": type.googleapis.com/envoy.config.listener.v3.Listener
              name: virtualInbound
              address: {socket_address: {address: 0.0.0.0, port_value: 15006}}
              traffic_direction: INBOUND
              filter_chains:
              - filter_chain_match: {destination_port: 9080, transport_protocol: tls}
                filters: [%1$s]
              - filter_chain_match: {destination_port: 9080, transport_protocol: raw_buffer}
                filters: [%1$s]
            """.formatted("""
            {name: envoy.filters.network.http_connection_manager, typed_config: {
              "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager,
              stat_prefix: "inbound_0.0.0.0_9080",
              route_config: {name: "inbound|9080||", validate_clusters: false, virtual_hosts: [{name: "inbound|http|9080",
                domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: "inbound|9080||"}}]}]},
              http_filters: [{name: envoy.filters.http.router, typed_config: {
                "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}]}}""");

    @Test
    void theListenersInlineRouteConfigurationsAreDumpedAsStaticOncePerConnectionManagerAndNotReadBack()
            throws Exception {
        ResourceBundle read = EnvoyConfigReader.read(LISTENERS_AND_ROUTES + INBOUND);
        ResourceBundle.Version v = new ResourceBundle.Version("3", Instant.parse("2026-11-28T14:00:00Z"));
        ResourceBundle.Builder b = ResourceBundle.builder();
        read.listeners().values().forEach(l -> b.add(l, v, read.message(ResourceType.LISTENER, l.name())));
        read.routes().values().forEach(r -> b.add(r, v, read.message(ResourceType.ROUTE, r.name())));
        ResourceBundle bundle = b.build();

        String json = ConfigDumpBuilder.json(bundle, "n", Instant.EPOCH);

        // as Envoy's: one static route configuration provider per connection manager with an inline route_config
        JsonNode routes = routesDump(EnvoyJson.tree(json));
        assertEquals(List.of("9080"), names(routes.get("dynamic_route_configs"), "route_config"));
        JsonNode statics = routes.get("static_route_configs");
        assertEquals(List.of("inbound|9080||", "inbound|9080||"), names(statics, "route_config"));
        assertEquals("2026-11-28T14:00:00Z", statics.get(0).get("last_updated").asText());
        assertEquals("type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
                statics.get(0).get("route_config").get("@type").asText());
        // a dump with them (a name repeated, as in a real sidecar's) reads back into the same resources: the
        // listeners carry them, they are no route configurations of their own
        ResourceBundle back = EnvoyConfigReader.read(json);
        assertEquals(bundle.listeners(), back.listeners());
        assertEquals(bundle.routes(), back.routes());
        // name_regex selects them by their names, as the others
        JsonNode only = EnvoyJson.tree(ConfigDumpBuilder.json(bundle, DynamicState.NONE, "n", Instant.EPOCH,
                new ConfigDumpBuilder.Query(false, "static_route_configs", null, "inbound.*")));
        assertEquals(2, only.get("configs").size());
        assertEquals("type.googleapis.com/envoy.admin.v3.RoutesConfigDump.StaticRouteConfig",
                only.get("configs").get(0).get("@type").asText());
    }

    @Test
    void anIstioBootstrapsUnnamedInlineRouteConfigurationsAreDumpedAndTheDumpReadsBack() throws Exception {
        ResourceBundle bootstrap = EnvoyConfigReader.read(
                java.nio.file.Path.of("src/test/resources/istio/bootstrap.json"));

        String json = ConfigDumpBuilder.json(bootstrap, "n", Instant.EPOCH);

        // the Prometheus (15090) and health (15021) listeners' route configurations have no name
        JsonNode statics = routesDump(EnvoyJson.tree(json)).get("static_route_configs");
        assertEquals(2, statics.size());
        assertEquals(List.of("backend"), names(statics.get(0).get("route_config").get("virtual_hosts"), null));
        assertEquals(bootstrap.routes(), EnvoyConfigReader.read(json).routes());
    }

    @Test
    void aClustersLoadBalancingPolicyIsDumpedAsItCame() throws Exception {
        ResourceBundle read = EnvoyConfigReader.read("""
                resources:
                - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
                  name: lb
                  type: STATIC
                  lb_policy: LOAD_BALANCING_POLICY_CONFIG
                  load_balancing_policy:
                    policies:
                    - typed_extension_config:
                        name: mine
                        typed_config:
                          "@type": type.googleapis.com/xds.type.v3.TypedStruct
                          type_url: type.googleapis.com/com.example.MyBalancer
                          value: {spread: 3}
                    - typed_extension_config:
                        name: envoy.load_balancing_policies.round_robin
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin
                          slow_start_config: {slow_start_window: 60s}
                """);
        assertEquals(dev.inmesh.api.config.cluster.LbPolicy.ROUND_ROBIN, read.clusters().get("lb").lbPolicy());
        ResourceBundle bundle = ResourceBundle.builder().add(read.clusters().get("lb"),
                new ResourceBundle.Version("1", Instant.EPOCH), read.message(ResourceType.CLUSTER, "lb")).build();

        JsonNode cluster = EnvoyJson.tree(ConfigDumpBuilder.json(bundle, "n", Instant.EPOCH)).findValue("cluster");
        assertEquals("LOAD_BALANCING_POLICY_CONFIG", cluster.get("lb_policy").asText());
        JsonNode policies = cluster.get("load_balancing_policy").get("policies");
        assertEquals(2, policies.size());
        JsonNode mine = policies.get(0).get("typed_extension_config");
        assertEquals("mine", mine.get("name").asText());
        assertEquals("type.googleapis.com/com.example.MyBalancer", mine.get("typed_config").get("type_url").asText());
        assertEquals(3, mine.get("typed_config").get("value").get("spread").asInt());
        JsonNode rr = policies.get(1).get("typed_extension_config").get("typed_config");
        assertEquals("type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin",
                rr.get("@type").asText());
        assertEquals("60s", rr.get("slow_start_config").get("slow_start_window").asText());
    }

    @Test
    void aClusterWithAPolicyOfATypeNoOneHereKnowsStillDumps() throws Exception {
        // over ADS an entry Envoy skips may be of a type whose schema no one here has
        var message = io.envoyproxy.envoy.config.cluster.v3.Cluster.newBuilder().setName("lb")
                .setType(io.envoyproxy.envoy.config.cluster.v3.Cluster.DiscoveryType.STATIC)
                .setLoadBalancingPolicy(io.envoyproxy.envoy.config.cluster.v3.LoadBalancingPolicy.newBuilder()
                        .addPolicies(policy(com.google.protobuf.Any.newBuilder()
                                .setTypeUrl("type.googleapis.com/com.example.MyBalancer")
                                .setValue(com.google.protobuf.ByteString.copyFromUtf8("\n\u0001x")).build()))
                        .addPolicies(policy(com.google.protobuf.Any.pack(io.envoyproxy.envoy.extensions
                                .load_balancing_policies.random.v3.Random.getDefaultInstance()))))
                .build();
        var parsed = new dev.inmesh.runtime.xds.ClusterParser().parse(message);
        assertEquals(dev.inmesh.api.config.cluster.LbPolicy.RANDOM, parsed.lbPolicy());
        ResourceBundle bundle = ResourceBundle.builder().add(parsed, new ResourceBundle.Version("1", Instant.EPOCH),
                message).build();

        // its bytes have no JSON: the entry names its type in a TypedStruct, as the JSON reader keeps such a type
        JsonNode cluster = EnvoyJson.tree(ConfigDumpBuilder.json(bundle, "n", Instant.EPOCH)).findValue("cluster");
        JsonNode policies = cluster.get("load_balancing_policy").get("policies");
        JsonNode unknown = policies.get(0).get("typed_extension_config").get("typed_config");
        assertEquals("type.googleapis.com/xds.type.v3.TypedStruct", unknown.get("@type").asText());
        assertEquals("type.googleapis.com/com.example.MyBalancer", unknown.get("type_url").asText());
        assertEquals("type.googleapis.com/envoy.extensions.load_balancing_policies.random.v3.Random",
                policies.get(1).get("typed_extension_config").get("typed_config").get("@type").asText());
    }

    private static io.envoyproxy.envoy.config.cluster.v3.LoadBalancingPolicy.Policy policy(
            com.google.protobuf.Any config) {
        return io.envoyproxy.envoy.config.cluster.v3.LoadBalancingPolicy.Policy.newBuilder().setTypedExtensionConfig(
                io.envoyproxy.envoy.config.core.v3.TypedExtensionConfig.newBuilder().setName("p")
                        .setTypedConfig(config)).build();
    }

    @Test
    void aClustersPrivateKeyIsRedactedAsEnvoyRedactsSensitiveFields() throws Exception {
        TestCertificates.Issued ca = TestCertificates.ca("ca");
        TestCertificates.Issued client = TestCertificates.issue(ca, "client", List.of("client"), List.of());
        String keyBody = client.keyPem().lines().filter(l -> !l.startsWith("-----")).findFirst().orElseThrow();
        ResourceBundle read = EnvoyConfigReader.read("""
                resources:
                - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
                  name: tls
                  type: STATIC
                  transport_socket:
                    name: envoy.transport_sockets.tls
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
                      sni: backend.example.com
                      common_tls_context:
                        tls_certificates:
                        - certificate_chain: {inline_string: %s}
                          private_key: {inline_string: %s}
                        validation_context:
                          trusted_ca: {inline_string: %s}
                """.formatted(JSON.writeValueAsString(client.certificatePem()),
                JSON.writeValueAsString(client.keyPem()), JSON.writeValueAsString(ca.certificatePem())));
        ResourceBundle bundle = ResourceBundle.builder().add(read.clusters().get("tls"),
                new ResourceBundle.Version("1", Instant.EPOCH), read.message(ResourceType.CLUSTER, "tls")).build();

        for (String json : List.of(ConfigDumpBuilder.json(bundle, "n", Instant.EPOCH),
                ConfigDumpBuilder.json(bundle, DynamicState.NONE, "n", Instant.EPOCH,
                        new ConfigDumpBuilder.Query(false, "dynamic_active_clusters", null, null)))) {
            assertFalse(json.contains(keyBody), json);
            JsonNode tls = EnvoyJson.tree(json).findValue("common_tls_context");
            JsonNode certificate = tls.get("tls_certificates").get(0);
            assertEquals("[redacted]", certificate.get("private_key").get("inline_string").asText());
            // what is not secret stays as configured
            assertEquals(client.certificatePem(), certificate.get("certificate_chain").get("inline_string").asText());
            assertEquals(ca.certificatePem(),
                    tls.get("validation_context").get("trusted_ca").get("inline_string").asText());
        }
    }

    @Test
    void anEndpointsDumpEntryHoldsTheLoadAssignmentAloneAsEnvoysDoes() throws Exception {
        // Envoy builds its endpoints dump from the cluster manager's hosts, each entry only an endpoint_config:
        // no version_info or last_updated, even for a load assignment EDS sent with a version
        ResourceBundle read = EnvoyConfigReader.read("""
                resources:
                - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
                  name: reviews
                  type: EDS
                  eds_cluster_config: {eds_config: {ads: {}}}
                - "@type": type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment
                  cluster_name: reviews
                  endpoints:
                  - lb_endpoints:
                    - endpoint: {address: {socket_address: {address: 10.244.0.12, port_value: 9080}}}
                - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
                  name: local
                  type: STATIC
                  load_assignment:
                    cluster_name: local
                    endpoints:
                    - lb_endpoints:
                      - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 8080}}}
                """);
        ResourceBundle.Version v = new ResourceBundle.Version("7", Instant.parse("2026-11-28T13:00:00Z"));
        ResourceBundle.Builder b = ResourceBundle.builder();
        read.clusters().values().forEach(c -> b.add(c, v, read.message(ResourceType.CLUSTER, c.name())));
        read.endpoints().values().forEach(e -> b.add(e, v, read.message(ResourceType.ENDPOINT, e.clusterName())));
        JsonNode eds = EnvoyJson.tree(ConfigDumpBuilder.json(b.build(), DynamicState.NONE, "n", Instant.EPOCH,
                new ConfigDumpBuilder.Query(true, null, null, null))).get("configs").get(2);

        JsonNode entries = eds.get("dynamic_endpoint_configs");
        assertEquals(2, entries.size(), eds.toString());
        for (JsonNode entry : entries) {
            assertEquals(java.util.List.of("endpoint_config"), java.util.List.copyOf(iterable(entry.fieldNames())),
                    entry.toString());
        }
    }

    private static <T> java.util.List<T> iterable(java.util.Iterator<T> it) {
        java.util.List<T> out = new java.util.ArrayList<>();
        it.forEachRemaining(out::add);
        return out;
    }

    @Test
    void xdsResourcesStayDynamic() throws Exception {
        JsonNode configs = EnvoyJson.tree(ConfigDumpBuilder.json(bundle(), "n", Instant.EPOCH)).get("configs");

        assertEquals(null, configs.get(3).get("static_listeners"));
        assertEquals(2, configs.get(3).get("dynamic_listeners").size());
    }

    @Test
    void warmingAndRejectedEntriesAreKeptOrLeftOutByNameRegexAsTheOthers() throws Exception {
        ResourceBundle b = bundle();
        var listener = b.message(ResourceType.LISTENER, "0.0.0.0_9080");
        ResourceBundle.Version v3 = new ResourceBundle.Version("9", Instant.parse("2026-11-28T14:00:00Z"));
        DynamicState dynamic = new DynamicState(java.util.Map.of("0.0.0.0_9080", new DynamicState.Held(listener, v3)),
                java.util.Map.of(), java.util.Map.of(ResourceBundle.key(ResourceType.LISTENER, "10.96.0.9_3306"),
                        new DynamicState.Failure(null, "9", v3.lastUpdated(), "bad")));

        JsonNode all = EnvoyJson.tree(ConfigDumpBuilder.json(b, dynamic, "n", Instant.EPOCH,
                new ConfigDumpBuilder.Query(false, "dynamic_listeners", null, null))).get("configs");
        JsonNode some = EnvoyJson.tree(ConfigDumpBuilder.json(b, dynamic, "n", Instant.EPOCH,
                new ConfigDumpBuilder.Query(false, "dynamic_listeners", null, "10\\..*"))).get("configs");

        assertEquals(2, all.size(), "one entry per listener name, as Envoy's");
        assertEquals("9", all.get(0).get("warming_state").get("version_info").asText());
        assertEquals("2026-11-28T13:00:00Z/7", all.get(0).get("active_state").get("version_info").asText());
        assertEquals("bad", all.get(1).get("error_state").get("details").asText());
        assertEquals("2026-11-28T14:00:00Z", all.get(1).get("error_state").get("last_update_attempt").asText());
        assertEquals(1, some.size());
        assertEquals("10.96.0.9_3306", some.get(0).get("name").asText());
        assertEquals(true, some.get(0).has("error_state"));
        assertEquals(false, some.toString().contains("warming_state"));
    }

    /**
     * A cluster whose version in force waits for its first health checks and whose next version waits for its load
     * assignment: one warming entry, the next version, as Envoy's warming clusters hold one cluster per name (an update
     * of a warming cluster replaces it there).
     */
    @Test
    void aWarmingClusterWhoseNextVersionWaitsToo() throws Exception {
        ResourceBundle read = EnvoyConfigReader.read("""
                resources:
                - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
                  name: c
                  type: STATIC
                  load_assignment:
                    cluster_name: c
                    endpoints:
                    - lb_endpoints:
                      - endpoint: {address: {socket_address: {address: 10.0.0.1, port_value: 80}}}
                """);
        ResourceBundle bundle = ResourceBundle.builder().add(read.clusters().get("c"),
                new ResourceBundle.Version("1", Instant.EPOCH), read.message(ResourceType.CLUSTER, "c")).build();
        var next = ((io.envoyproxy.envoy.config.cluster.v3.Cluster) read.message(ResourceType.CLUSTER, "c"))
                .toBuilder().setConnectTimeout(com.google.protobuf.Duration.newBuilder().setSeconds(3)).build();
        DynamicState dynamic = new DynamicState(java.util.Map.of(), java.util.Map.of("c", new DynamicState.Held(next,
                new ResourceBundle.Version("2", Instant.EPOCH))), java.util.Map.of())
                .withClustersWarmingInUse(java.util.Set.of("c"));

        JsonNode clusters = EnvoyJson.tree(ConfigDumpBuilder.json(bundle, dynamic, "n", Instant.EPOCH,
                new ConfigDumpBuilder.Query(false, null, null, null))).get("configs").get(1);

        assertEquals(1, clusters.get("dynamic_warming_clusters").size(), clusters.toString());
        assertEquals("2", clusters.get("dynamic_warming_clusters").get(0).get("version_info").asText());
        assertEquals(null, clusters.get("dynamic_active_clusters"));
    }

    @Test
    void aRejectedListenerWithATypeNoOneKnowsStillPrints() throws Exception {
        var unknown = io.envoyproxy.envoy.config.listener.v3.Listener.newBuilder().setName("l")
                .addFilterChains(io.envoyproxy.envoy.config.listener.v3.FilterChain.newBuilder()
                        .addFilters(io.envoyproxy.envoy.config.listener.v3.Filter.newBuilder().setName("f")
                                .setTypedConfig(com.google.protobuf.Any.newBuilder()
                                        .setTypeUrl("type.googleapis.com/example.NoSuchFilter")
                                        .setValue(com.google.protobuf.ByteString.copyFromUtf8("\n\u0001x")))))
                .build();
        DynamicState dynamic = new DynamicState(java.util.Map.of(), java.util.Map.of(), java.util.Map.of(
                ResourceBundle.key(ResourceType.LISTENER, "l"), new DynamicState.Failure(unknown, "3", Instant.EPOCH,
                        "filter f: unknown type")));

        JsonNode entry = EnvoyJson.tree(ConfigDumpBuilder.json(bundle(), dynamic, "n", Instant.EPOCH,
                new ConfigDumpBuilder.Query(false, "dynamic_listeners", null, "l"))).get("configs").get(0);

        assertEquals("filter f: unknown type", entry.get("error_state").get("details").asText());
        assertEquals(null, entry.get("error_state").get("failed_configuration"), "JSON cannot print it");
    }

    private static java.util.List<String> names(JsonNode list, String inner) {
        java.util.List<String> out = new java.util.ArrayList<>();
        list.forEach(e -> out.add((inner == null ? e : e.get(inner)).get("name").asText()));
        return out;
    }

    /** The dump's RoutesConfigDump, found by its type. */
    private static JsonNode routesDump(JsonNode dump) {
        for (JsonNode config : dump.get("configs")) {
            if (config.get("@type").asText().endsWith(".RoutesConfigDump")) {
                return config;
            }
        }
        throw new AssertionError("no RoutesConfigDump in " + dump);
    }
}
