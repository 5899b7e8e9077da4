package dev.inmesh.runtime.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.admin.AdminServer;
import dev.inmesh.runtime.admin.ConfigDumpBuilder;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.EnvoyJson;
import dev.inmesh.runtime.xds.ResourceBundle;
import dev.inmesh.runtime.xds.ads.NodeBuilder;
import dev.inmesh.runtime.xds.ads.NodeOptions;
import io.vertx.core.Vertx;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class ProxyConfigCommandTest {
    /** Listeners (HTTP over RDS, inline routes, TCP, a virtual outbound with TLS chains) and two route configs. */
    static final String RESOURCES = """
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
            - "@type": type.googleapis.com/envoy.config.listener.v3.Listener
              name: virtualOutbound
              address: {socket_address: {address: 0.0.0.0, port_value: 15001}}
              traffic_direction: OUTBOUND
              use_original_dst: true
              filter_chains:
              - filter_chain_match: {prefix_ranges: [{address_prefix: 10.244.0.194, prefix_len: 32}]}
                filters:
                - name: envoy.filters.network.tcp_proxy
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                    stat_prefix: BlackHoleCluster
                    cluster: BlackHoleCluster
              - filter_chain_match:
                  transport_protocol: raw_buffer
                  application_protocols: [http/1.0, http/1.1, h2c]
                  destination_port: 8080
                name: inline
                filters:
                - name: envoy.filters.network.http_connection_manager
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                    stat_prefix: inline
                    route_config:
                      name: inline
                      validate_clusters: false
                      virtual_hosts:
                      - name: all
                        domains: ["*"]
                        routes:
                        - match: {prefix: /}
                          route: {cluster: PassthroughCluster}
                    http_filters:
                    - name: envoy.filters.http.router
                      typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
              default_filter_chain:
                name: PassthroughFilterChain
                filters:
                - name: envoy.filters.network.tcp_proxy
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                    stat_prefix: PassthroughCluster
                    cluster: PassthroughCluster
            - "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
              name: "9080"
              virtual_hosts:
              - name: reviews.default.svc.cluster.local:9080
                domains: [reviews.default.svc.cluster.local, reviews, reviews.default.svc, reviews.default,
                          "10.96.12.7", "reviews.default.svc.cluster.local:9080"]
                routes:
                - match: {prefix: /}
                  route: {cluster: "outbound|9080|v2|reviews.default.svc.cluster.local", timeout: 0s}
                  metadata:
                    filter_metadata:
                      istio: {config: /apis/networking.istio.io/v1alpha3/namespaces/default/virtual-service/reviews}
              - name: ratings.default.svc.cluster.local:9080
                domains: [ratings.default.svc.cluster.local]
                routes:
                - match: {path: /ratings/0}
                  route: {cluster: "outbound|9080||ratings.default.svc.cluster.local"}
                - match: {safe_regex: {regex: "/ratings/[0-9]+"}}
                  route: {cluster: "outbound|9080||ratings.default.svc.cluster.local"}
              - name: allow_any
                domains: ["*"]
                routes:
                - name: allow_any
                  match: {prefix: /}
                  route: {cluster: PassthroughCluster}
            - "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
              name: "15010"
              virtual_hosts:
              - name: istiod.istio-system.svc.cluster.local:15010
                domains: [istiod.istio-system.svc.cluster.local]
            """;

    @TempDir
    Path dir;
    private Path dump;
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();

    @BeforeEach
    void writeDump() throws Exception {
        dump = dir.resolve("config_dump.json");
        Files.writeString(dump, ConfigDumpBuilder.json(EnvoyConfigReader.read(RESOURCES), "node", Instant.EPOCH));
    }

    private int run(String... args) {
        ProxyConfigCommand c = new ProxyConfigCommand();
        c.out = new PrintStream(out, true, StandardCharsets.UTF_8);
        c.err = new PrintStream(err, true, StandardCharsets.UTF_8);
        return new CommandLine(c).execute(args);
    }

    private String out() {
        return out.toString(StandardCharsets.UTF_8);
    }

    @Test
    void listsListenersInIstioctlsTable() {
        assertEquals(0, run("listener", "-f", dump.toString()), err.toString());
        assertEquals("""
                ADDRESSES PORT  MATCH                                      DESTINATION
                10.96.0.9 3306  ALL                                        Cluster: outbound|3306||mysql.default.svc.cluster.local
                0.0.0.0   9080  ALL                                        Route: 9080
                0.0.0.0   15001 Trans: raw_buffer; App: HTTP; Addr: *:8080 PassthroughCluster
                0.0.0.0   15001 ALL                                        PassthroughCluster
                0.0.0.0   15001 Addr: 10.244.0.194/32                      Non-HTTP/Non-TCP
                """, out());
    }

    @Test
    void takesIstioctlsAliasesOfEachType() {
        String[][] aliases = {{"listener", "listeners", "l"}, {"route", "routes", "r"},
            {"cluster", "clusters", "c"}, {"endpoint", "endpoints", "ep"}, {"secret", "secrets", "s"},
            {"bootstrap", "b"}, {"all", "a"}};
        for (String[] names : aliases) {
            int code = run(names[0], "-f", dump.toString());
            String expected = out() + err;
            assertTrue(code <= 1 && !expected.isEmpty(), names[0] + ": " + code + " " + expected);
            for (String alias : names) {
                out.reset();
                err.reset();
                assertEquals(code, run(alias, "-f", dump.toString()), alias + ": " + err);
                assertEquals(expected, out() + err, alias);
            }
            out.reset();
            err.reset();
        }
        // log (alias o) sets a running proxy's levels: not from a file, under either name
        assertEquals(2, run("log", "-f", dump.toString()));
        String logErr = err.toString();
        err.reset();
        assertEquals(2, run("o", "-f", dump.toString()));
        assertEquals(logErr, err.toString());
        assertEquals(2, run("x", "-f", dump.toString()));
        assertTrue(err.toString().contains("unknown type 'x'"), err.toString());
    }

    @Test
    void verboseFalsePrintsIstioctlsShortListenerAndRouteTables() {
        // istioctl's --verbose (default true); =false: a row per listener with its type, per route configuration
        // with its number of virtual hosts
        assertEquals(0, run("listener", "-f", dump.toString(), "--verbose=false"), err.toString());
        assertEquals("""
                ADDRESSES PORT  TYPE
                10.96.0.9 3306  TCP
                0.0.0.0   9080  HTTP
                0.0.0.0   15001 HTTP+TCP
                """, out());
        out.reset();
        assertEquals(0, run("route", "-f", dump.toString(), "--verbose=false"), err.toString());
        assertEquals("""
                NAME       VIRTUAL HOSTS
                9080       3
                15010      1
                inline     1
                """, out());
        out.reset();
        assertEquals(0, run("all", "-f", dump.toString(), "--verbose=false"), err.toString());
        assertTrue(out().contains("""
                NAME                     ADDRESSES PORT  TYPE
                listener/10.96.0.9_3306  10.96.0.9 3306  TCP
                listener/0.0.0.0_9080    0.0.0.0   9080  HTTP
                listener/virtualOutbound 0.0.0.0   15001 HTTP+TCP

                NAME             VIRTUAL HOSTS
                route/9080       3
                route/15010      1
                route/inline     1
                """), out());
        out.reset();
        // the flag alone, or =true, is the default
        assertEquals(0, run("listener", "-f", dump.toString(), "--verbose"), err.toString());
        assertTrue(out().startsWith("ADDRESSES PORT  MATCH "), out());
    }

    @Test
    void filtersListenersByPortAddressAndType() {
        assertEquals(0, run("listener", "-f", dump.toString(), "--port", "9080"));
        assertEquals("""
                ADDRESSES PORT MATCH DESTINATION
                0.0.0.0   9080 ALL   Route: 9080
                """, out());
        out.reset();
        assertEquals(0, run("listeners", "-f", dump.toString(), "--address", "10.96.0.9", "--type", "tcp"));
        assertTrue(out().contains("10.96.0.9 3306"), out());
        assertEquals(2, out().lines().count(), out());
    }

    @Test
    void listsRoutesInIstioctlsTable() {
        assertEquals(0, run("route", "-f", dump.toString()), err.toString());
        assertEquals("""
                NAME      VHOST NAME                                      DOMAINS                                   MATCH                     VIRTUAL SERVICE
                9080      reviews.default.svc.cluster.local:9080          reviews, reviews.default + 1 more...      /*                        reviews.default
                9080      ratings.default.svc.cluster.local:9080          ratings.default.svc.cluster.local         /ratings/0               \s
                9080      ratings.default.svc.cluster.local:9080          ratings.default.svc.cluster.local         regex /ratings/[0-9]+    \s
                15010     istiod.istio-system.svc.cluster.local:15010     istiod.istio-system.svc.cluster.local     /*                        404
                """, out());
    }

    @Test
    void listsTheListenersInlineRouteConfigurationsAfterTheOnesFromRdsAsIstioctl() throws Exception {
        // Istio's inbound chains carry their route configuration inline; Envoy dumps it in static_route_configs,
        // once per connection manager, and istioctl lists those too
        String inbound = dev.inmesh.runtime.admin.ConfigDumpBuilderTest.INBOUND;
        Files.writeString(dump, ConfigDumpBuilder.json(EnvoyConfigReader.read(RESOURCES + inbound), "node",
                Instant.EPOCH));

        assertEquals(0, run("route", "-f", dump.toString()), err.toString());
        assertTrue(out().endsWith("""
                15010              istiod.istio-system.svc.cluster.local:15010     istiod.istio-system.svc.cluster.local     /*                        404
                inbound|9080||     inbound|http|9080                               *                                         /*                       \s
                inbound|9080||     inbound|http|9080                               *                                         /*                       \s
                """), out());
        out.reset();
        assertEquals(0, run("route", "-f", dump.toString(), "--name", "inbound|9080||", "-o", "json"));
        assertEquals(2, EnvoyJson.tree(out()).size(), out());
        // a dump of the inbound listener alone: its inline route configuration is listed, not "no routes found"
        Files.writeString(dump, ConfigDumpBuilder.json(EnvoyConfigReader.read("resources:\n" + inbound), "node",
                Instant.EPOCH));
        out.reset();
        assertEquals(0, run("route", "-f", dump.toString()), err.toString());
        assertTrue(out().startsWith("NAME               VHOST NAME"), out());
        assertEquals(3, out().lines().count(), out());
    }

    @Test
    void filtersRoutesByName() {
        assertEquals(0, run("route", "-f", dump.toString(), "--name", "15010"));
        assertEquals("""
                NAME      VHOST NAME                                      DOMAINS                                   MATCH     VIRTUAL SERVICE
                15010     istiod.istio-system.svc.cluster.local:15010     istiod.istio-system.svc.cluster.local     /*        404
                """, out());
    }

    @Test
    void printsSelectedResourcesAsJsonInIstioctlsFieldNames() throws Exception {
        assertEquals(0, run("listener", "-f", dump.toString(), "--port", "3306", "-o", "json"));
        String json = out();
        assertTrue(json.startsWith("[\n    {\n        \"name\": \"10.96.0.9_3306\",\n"), json);
        assertTrue(json.contains("\"portValue\": 3306"), json);
        ResourceBundle back = EnvoyConfigReader.read(json);
        assertEquals(EnvoyConfigReader.read(RESOURCES).listeners().get("10.96.0.9_3306"),
                back.listeners().get("10.96.0.9_3306"));
    }

    @Test
    void listsTheDynamicListenersBeforeTheStaticOnesInJsonAsIstioctl() throws Exception {
        // Envoy dumps static_listeners before dynamic_listeners; istioctl lists the active dynamic ones first
        Path both = Files.writeString(dir.resolve("both.json"), """
                {"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
                  "static_listeners": [{"listener": {
                    "@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "static_15021",
                    "address": {"socket_address": {"address": "0.0.0.0", "port_value": 15021}},
                    "filter_chains": [{"filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {
                      "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                      "stat_prefix": "s", "cluster": "c"}}]}]}}],
                  "dynamic_listeners": [{"name": "dynamic_9080", "active_state": {"listener": {
                    "@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "dynamic_9080",
                    "address": {"socket_address": {"address": "0.0.0.0", "port_value": 9080}},
                    "filter_chains": [{"filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {
                      "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                      "stat_prefix": "d", "cluster": "c"}}]}]}}}]}]}
                """);
        for (String format : new String[] {"json", "yaml"}) {
            out.reset();
            assertEquals(0, run("listener", "-f", both.toString(), "-o", format), err.toString());
            var names = EnvoyConfigReader.read(out()).listeners().keySet();
            assertEquals(java.util.List.of("dynamic_9080", "static_15021"), java.util.List.copyOf(names), out());
        }
    }

    @Test
    void printsSelectedResourcesAsYaml() throws Exception {
        assertEquals(0, run("route", "-f", dump.toString(), "--name", "15010", "-o", "yaml"));
        assertEquals("""
                - name: "15010"
                  virtualHosts:
                  - domains:
                    - istiod.istio-system.svc.cluster.local
                    name: istiod.istio-system.svc.cluster.local:15010
                """, out());
        assertEquals(1, EnvoyConfigReader.read(out()).routes().size());
    }

    @Test
    void allPrintsEveryTableAndTheWholeDumpAsJson() throws Exception {
        assertEquals(0, run("all", "-f", dump.toString()));
        assertTrue(out().startsWith("Envoy Version: 0.0.0\n\nNAME "), out());
        assertTrue(out().contains("\n\nNAME                     ADDRESSES PORT"), out());
        assertTrue(out().contains("\nNAME            VHOST NAME"), out());
        out.reset();
        assertEquals(0, run("all", "-f", dump.toString(), "-o", "json"));
        ResourceBundle back = EnvoyConfigReader.read(out());
        assertEquals(EnvoyConfigReader.read(RESOURCES).listeners(), back.listeners());
    }

    @Test
    void aFileThatCannotBeReadIsNamedWithWhy() {
        Path missing = dir.resolve("missing.json");
        assertEquals(2, run("cluster", "-f", missing.toString()));
        assertEquals("proxy-config: " + missing + ": cannot read: no such file\n", err.toString());
    }

    @Test
    void readsTheDumpFromAnAdminServer() throws Exception {
        Vertx vertx = Vertx.vertx();
        try {
            SnapshotHolder holder = new SnapshotHolder();
            holder.apply(EnvoyConfigReader.read(RESOURCES));
            AdminServer admin = AdminServer.builder(vertx).snapshots(holder)
                    .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.CONFIG_DUMP)).build();
            admin.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
            assertEquals(0, run("listener", "--admin", "127.0.0.1:" + admin.port(0), "--port", "9080"),
                    err.toString());
            String table = """
                    ADDRESSES PORT MATCH DESTINATION
                    0.0.0.0   9080 ALL   Route: 9080
                    """;
            assertEquals(table, out());
            out.reset();
            // the admin URL as a proxy prints it ("admin http://127.0.0.10:15000/") works as well
            assertEquals(0, run("listener", "--admin", "http://127.0.0.1:" + admin.port(0) + "/", "--port", "9080"),
                    err.toString());
            assertEquals(table, out());
            assertEquals(2, run("listener", "--admin", "https://127.0.0.1:" + admin.port(0)));
            assertTrue(err.toString().contains("--admin https://127.0.0.1:" + admin.port(0)
                    + ": not HOST:PORT or http://HOST:PORT"), err.toString());
        } finally {
            vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void bootstrapPrintsTheBootstrapDumpAsJsonByDefaultAndItsVersionsShortAsIstioctl() throws Exception {
        assertEquals(0, run("bootstrap", "-f", dump.toString()), err.toString());
        assertEquals("""
                {
                    "bootstrap": {
                        "node": {
                            "id": "node",
                            "userAgentName": "inmesh",
                            "userAgentVersion": "dev"
                        }
                    },
                    "lastUpdated": "1970-01-01T00:00:00Z"
                }
                """, out());
        out.reset();
        assertEquals(0, run("bootstrap", "-f", dump.toString(), "-o", "yaml"));
        assertEquals("""
                bootstrap:
                  node:
                    id: node
                    userAgentName: inmesh
                    userAgentVersion: dev
                lastUpdated: "1970-01-01T00:00:00Z"
                """, out());
        out.reset();
        assertEquals(0, run("bootstrap", "-f", dump.toString(), "-o", "short"));
        assertEquals("Envoy Version: 0.0.0\n", out());

        Vertx vertx = Vertx.vertx();
        try {
            SnapshotHolder holder = new SnapshotHolder();
            holder.apply(EnvoyConfigReader.read(RESOURCES));
            AdminServer admin = AdminServer.builder(vertx).snapshots(holder).nodeId("sidecar~10.0.0.1~a.ns~ns.svc")
                    .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.CONFIG_DUMP)).build();
            admin.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
            out.reset();
            assertEquals(0, run("bootstrap", "--admin", "127.0.0.1:" + admin.port(0)), err.toString());
            assertTrue(out().contains("\"id\": \"sidecar~10.0.0.1~a.ns~ns.svc\""), out());
        } finally {
            vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void theBootstrapOfAProxysConfigDumpShowsTheNodeItPresentsToIstiodAsEnvoysDoes() throws Exception {
        Vertx vertx = Vertx.vertx();
        try {
            SnapshotHolder holder = new SnapshotHolder();
            holder.apply(EnvoyConfigReader.read(RESOURCES));
            NodeOptions node = new NodeOptions("productpage-v1-6c8f9b5d47-q7wzt", "default", "10.244.0.21", null,
                    "Kubernetes", null, null, java.util.Map.of("app", "productpage", "version", "v1"),
                    "productpage-v1", "REDIRECT", null, java.util.Map.of());
            AdminServer admin = AdminServer.builder(vertx).snapshots(holder).nodeId("sidecar~10.0.0.1~a.ns~ns.svc")
                    .node(() -> NodeBuilder.build(node, "0.1.0-SNAPSHOT"))
                    .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.CONFIG_DUMP)).build();
            admin.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
            // istioctl proxy-config bootstrap -o short reads the node's metadata and its build version
            assertEquals(0, run("bootstrap", "--admin", "127.0.0.1:" + admin.port(0), "-o", "short"), err.toString());
            // as istioctl's, with the labels in one column: the proxy build is Inmesh's, as ISTIO_PROXY_SHA names it
            assertEquals("Istio Version:       " + NodeOptions.ISTIO_VERSION + "\n"
                    + "Istio Proxy Version: 0.1.0-SNAPSHOT\n"
                    + "Envoy Version:       0.1.0-SNAPSHOT\n", out());
            out.reset();
            assertEquals(0, run("bootstrap", "--admin", "127.0.0.1:" + admin.port(0)), err.toString());
            var n = EnvoyJson.tree(out()).path("bootstrap").path("node");
            assertEquals(node.nodeId(), n.path("id").asText());
            assertEquals("productpage.default", n.path("cluster").asText());
            assertEquals("inmesh", n.path("userAgentName").asText());
            assertEquals("REDIRECT", n.path("metadata").path("INTERCEPTION_MODE").asText());
            assertEquals("productpage", n.path("metadata").path("LABELS").path("app").asText());
        } finally {
            vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void logListsAndSetsTheProxysLogLevelsAsIstioctl() throws Exception {
        Vertx vertx = Vertx.vertx();
        try {
            AdminServer admin = AdminServer.builder(vertx).snapshots(new SnapshotHolder())
                    .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.LOGGING)).build();
            admin.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
            String at = "127.0.0.1:" + admin.port(0);

            assertEquals(0, run("log", "--admin", at), err.toString());
            assertTrue(out().startsWith("active loggers:\n"), out());
            assertTrue(out().contains("\n  upstream: "), out());
            out.reset();
            assertEquals(0, run("log", "--admin", at, "--level", "error,upstream:debug,ns::xds=warn"), err.toString());
            assertTrue(out().contains("\n  router: error\n"), "every logger first: " + out());
            assertTrue(out().contains("\n  upstream: debug\n"), out());
            assertTrue(out().contains("\n  xds: warning\n"), out());
            out.reset();
            assertEquals(0, run("log", "--admin", at, "-r"), err.toString());
            assertTrue(out().lines().skip(1).filter(l -> !l.isEmpty()).allMatch(l -> l.endsWith(": warning")), out());

            err.reset();
            assertEquals(2, run("log", "--admin", at, "--level", "nosuch:debug"));
            assertTrue(err.toString().contains("unrecognized logger name: nosuch"), err.toString());
            assertEquals(2, run("log", "--admin", at, "--level", "loud"));
            assertTrue(err.toString().contains("unrecognized logging level: loud"), err.toString());
            assertEquals(2, run("log", "--admin", at, "--level", "debug", "-r"));
            assertEquals(2, run("log", "--admin", at, "-o", "json"));
            assertEquals(2, run("log", "-f", dump.toString()));
            assertEquals(2, run("log", "--admin", "127.0.0.1:1"), "an admin server that is not there");
            assertEquals(0, run("log", "--admin", at, "--level", "info"), "the levels as they were");
        } finally {
            vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void aDashReadsTheDumpFromTheStandardInputAsIstioctl() throws Exception {
        ProxyConfigCommand c = new ProxyConfigCommand();
        c.in = new java.io.ByteArrayInputStream(Files.readAllBytes(dump));
        c.out = new PrintStream(out, true, StandardCharsets.UTF_8);
        c.err = new PrintStream(err, true, StandardCharsets.UTF_8);

        assertEquals(0, new CommandLine(c).execute("listener", "-f", "-", "--port", "9080"), err.toString());

        assertEquals("""
                ADDRESSES PORT MATCH DESTINATION
                0.0.0.0   9080 ALL   Route: 9080
                """, out());
    }

    @Test
    void anAdminServerThatDoesNotAnswerIsNamedWithTheReason() throws Exception {
        int closed;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            closed = s.getLocalPort();
        }

        assertEquals(2, run("listener", "--admin", "127.0.0.1:" + closed));

        String message = err.toString();
        assertTrue(message.startsWith("proxy-config: http://127.0.0.1:" + closed
                + "/config_dump?mask=dynamic_listeners,static_listeners: cannot reach the admin server: "
                + "connection refused\n"), message);
    }

    @Test
    void badArgumentsAndUnreadableInputExitWithTwo() throws Exception {
        assertEquals(2, run("nosuch", "-f", dump.toString()));
        assertEquals(2, run("listener"));
        assertEquals(2, run("listener", "-f", dir.resolve("missing.json").toString()));
        err.reset();
        assertEquals(2, run("listener", "-f", dump.toString(), "-o", "xml"));
        assertEquals("proxy-config: output format \"xml\" not supported\n", err.toString(), "as istioctl words it");
        err.reset();
        Path bad = dir.resolve("bad.json");
        Files.writeString(bad, "{\"configs\": [{\"@type\": \"type.googleapis.com/envoy.admin.v3.RoutesConfigDump\","
                + " \"dynamic_route_configs\": [{\"route_config\": {\"name\": \"x\", \"virtual_hosts\": 7}}]}]}");
        assertEquals(2, run("route", "-f", bad.toString()));
        assertTrue(err.toString().contains(bad.toString()), err.toString());
    }
}
