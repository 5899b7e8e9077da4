package dev.inmesh.runtime.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import dev.inmesh.runtime.admin.AdminServer;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import io.vertx.core.Vertx;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code proxy-config endpoint|all --admin} against a stand-in for Envoy's admin server (which leaves EDS out of
 * {@code /config_dump} unless asked with {@code ?include_eds} and answers {@code /clusters?format=json} in JSON), and
 * against Inmesh's own admin server; and the endpoint view from {@code /clusters?format=json} files.
 */
class ProxyConfigEndpointCommandTest {
    /** {@code /clusters?format=json} as Envoy writes it: one host ejected by outlier detection. */
    static final String CLUSTERS_JSON = """
            {"cluster_statuses":[{"name":"outbound|9080||reviews.default.svc.cluster.local","added_via_api":true,
             "host_statuses":[
              {"address":{"socket_address":{"address":"10.244.0.12","port_value":9080}},
               "health_status":{"failed_outlier_check":true,"eds_health_status":"HEALTHY"},"weight":1},
              {"address":{"socket_address":{"address":"10.244.0.13","port_value":9080}},
               "health_status":{"eds_health_status":"HEALTHY"},"weight":1}]},
             {"name":"BlackHoleCluster","host_statuses":[]}]}
            """;

    /** The text form of the same {@code /clusters}, as an admin server without {@code ?format=json} answers. */
    static final List<String> CLUSTERS_TEXT = List.of(
            "outbound|9080||reviews.default.svc.cluster.local::default_priority::max_connections::4294967295",
            "outbound|9080||reviews.default.svc.cluster.local::added_via_api::true",
            "outbound|9080||reviews.default.svc.cluster.local::10.244.0.12:9080::rq_active::0",
            "outbound|9080||reviews.default.svc.cluster.local::10.244.0.12:9080::rq_total::104",
            "outbound|9080||reviews.default.svc.cluster.local::10.244.0.12:9080::health_flags::/failed_outlier_check",
            "outbound|9080||reviews.default.svc.cluster.local::10.244.0.12:9080::weight::1",
            "outbound|9080||reviews.default.svc.cluster.local::10.244.0.12:9080::region::",
            "outbound|9080||reviews.default.svc.cluster.local::10.244.0.13:9080::health_flags::/failed_eds_health",
            "outbound|9080||reviews.default.svc.cluster.local::10.244.0.13:9080::weight::1");

    static final String TABLE = """
            ENDPOINT             STATUS      OUTLIER CHECK     CLUSTER
            10.244.0.12:9080     HEALTHY     FAILED            outbound|9080||reviews.default.svc.cluster.local
            10.244.0.13:9080     HEALTHY     OK                outbound|9080||reviews.default.svc.cluster.local
            """;

    /** istioctl's {@code -o json}: the ClusterStatus objects holding a selected host, in proto JSON names. */
    static final String JSON = """
            [
                {
                    "name": "outbound|9080||reviews.default.svc.cluster.local",
                    "addedViaApi": true,
                    "hostStatuses": [
                        {
                            "address": {
                                "socketAddress": {
                                    "address": "10.244.0.12",
                                    "portValue": 9080
                                }
                            },
                            "healthStatus": {
                                "failedOutlierCheck": true,
                                "edsHealthStatus": "HEALTHY"
                            },
                            "weight": 1
                        },
                        {
                            "address": {
                                "socketAddress": {
                                    "address": "10.244.0.13",
                                    "portValue": 9080
                                }
                            },
                            "healthStatus": {
                                "edsHealthStatus": "HEALTHY"
                            },
                            "weight": 1
                        }
                    ]
                }
            ]
            """;

    @TempDir
    Path dir;
    private final ProxyConfigRun pc = new ProxyConfigRun();
    private final List<String> requests = new CopyOnWriteArrayList<>();
    private HttpServer envoy;
    private String withEds;
    private String withoutEds;

    @BeforeEach
    void startEnvoyStandIn() throws Exception {
        withEds = ProxyConfigClusterCommandTest.dumpJson();
        // the dump's last section is its EDS one
        withoutEds = withEds.replaceAll(
                ",\\{\"@type\":\"type.googleapis.com/envoy.admin.v3.EndpointsConfigDump\".*]}]}", "]}");
        envoy = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        envoy.createContext("/", x -> {
            String uri = x.getRequestURI().toString();
            requests.add(uri);
            String body;
            String type = "application/json";
            if (x.getRequestURI().getPath().equals("/config_dump")) {
                body = uri.contains("include_eds") ? withEds : withoutEds;
            } else if (uri.equals("/clusters?format=json")) {
                body = CLUSTERS_JSON;
            } else if (x.getRequestURI().getPath().equals("/clusters")) {
                body = String.join("\n", CLUSTERS_TEXT) + "\n";
                type = "text/plain";
            } else {
                body = "invalid path\n";
            }
            byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
            x.getResponseHeaders().add("content-type", type);
            x.sendResponseHeaders(body.startsWith("invalid") ? 404 : 200, bytes.length);
            x.getResponseBody().write(bytes);
            x.close();
        });
        envoy.start();
    }

    @AfterEach
    void stop() {
        envoy.stop(0);
    }

    private String envoyAdmin() {
        return "127.0.0.1:" + envoy.getAddress().getPort();
    }

    @Test
    void theStandInLeavesEdsOutUnlessAsked() {
        assertTrue(withEds.contains("EndpointsConfigDump"));
        assertTrue(!withoutEds.contains("EndpointsConfigDump") && withoutEds.contains("ClustersConfigDump"),
                withoutEds);
    }

    @Test
    void endpointAsksEnvoyForClustersAsJsonAndShowsTheOutlierCheck() {
        assertEquals(0, pc.run("endpoint", "--admin", envoyAdmin()), pc.err());
        assertEquals(TABLE, pc.out());
        assertEquals(List.of("/clusters?format=json"), requests);
    }

    @Test
    void endpointAsJsonPrintsTheClusterStatusesOfAnAdminServer() {
        assertEquals(0, pc.run("endpoint", "--admin", envoyAdmin(), "--address", "10.244.0.12", "-o", "json"),
                pc.err());
        assertEquals(JSON, pc.out());
    }

    @Test
    void allAsksEnvoyForTheDumpWithEds() {
        assertEquals(0, pc.run("all", "--admin", envoyAdmin()), pc.err());
        assertEquals(List.of("/config_dump?include_eds=true"), requests);
        assertTrue(pc.out().contains("endpoint/10.244.0.193:9080"), pc.out());
    }

    @Test
    void allAsJsonOrYamlPrintsTheDumpEnvoyGivesUnaskedWithoutEds() {
        for (String format : List.of("json", "yaml")) {
            requests.clear();
            pc.reset();
            assertEquals(0, pc.run("all", "--admin", envoyAdmin(), "-o", format), pc.err());
            assertEquals(List.of("/config_dump"), requests, format);
            assertTrue(pc.out().contains("ClustersConfigDump") && !pc.out().contains("EndpointsConfigDump"),
                    pc.out());
        }
    }

    @Test
    void tablesAskForTheirSectionsOfTheDump() {
        assertEquals(0, pc.run("cluster", "--admin", envoyAdmin()), pc.err());
        assertEquals(List.of("/config_dump?mask=dynamic_active_clusters,dynamic_warming_clusters,static_clusters"),
                requests);
    }

    @Test
    void endpointFromAClustersJsonFileShowsTheOutlierCheckAndItsClusterStatuses() throws Exception {
        Path f = dir.resolve("clusters.json");
        Files.writeString(f, CLUSTERS_JSON);
        assertEquals(0, pc.run("endpoint", "-f", f.toString()), pc.err());
        assertEquals(TABLE, pc.out());
        pc.reset();
        assertEquals(0, pc.run("endpoint", "-f", f.toString(), "--status", "healthy", "-o", "json"), pc.err());
        assertEquals(JSON, pc.out());
    }

    @Test
    void endpointFromAConfigDumpPrintsClusterStatusesBuiltFromEds() throws Exception {
        Path f = dir.resolve("dump.json");
        Files.writeString(f, withEds);
        assertEquals(0, pc.run("endpoint", "-f", f.toString(), "--address", "10.244.0.192", "-o", "json"),
                pc.err());
        assertTrue(pc.out().startsWith("""
                [
                    {
                        "name": "outbound|9080||reviews.default.svc.cluster.local",
                        "addedViaApi": true,
                        "hostStatuses": [
                """), pc.out());
        assertTrue(pc.out().contains("\"edsHealthStatus\": \"UNHEALTHY\""), pc.out());
    }

    @Test
    void endpointReadsTheTextFormOfAnAdminServerWithoutFormatJson() throws Exception {
        // an admin server that answers /clusters in its text form whatever the query (as Inmesh's did)
        HttpServer old = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        old.createContext("/clusters", x -> {
            byte[] bytes = (String.join("\n", CLUSTERS_TEXT) + "\n").getBytes(StandardCharsets.UTF_8);
            x.getResponseHeaders().add("content-type", "text/plain");
            x.sendResponseHeaders(200, bytes.length);
            x.getResponseBody().write(bytes);
            x.close();
        });
        old.start();
        try {
            assertEquals(0, pc.run("endpoint", "--admin", "127.0.0.1:" + old.getAddress().getPort()), pc.err());
            assertEquals("""
                    ENDPOINT             STATUS        OUTLIER CHECK     CLUSTER
                    10.244.0.12:9080     HEALTHY       FAILED            outbound|9080||reviews.default.svc.cluster.local
                    10.244.0.13:9080     UNHEALTHY     OK                outbound|9080||reviews.default.svc.cluster.local
                    """, pc.out());
        } finally {
            old.stop(0);
        }
    }

    @Test
    void endpointReadsInmeshsOwnAdminServerInJson() throws Exception {
        Vertx vertx = Vertx.vertx();
        try {
            AdminServer admin = AdminServer.builder(vertx).snapshots(new SnapshotHolder())
                    .clusterStatus(new dev.inmesh.runtime.admin.ClusterStatusSource() {
                        @Override
                        public List<String> clusterStatusLines() {
                            return List.of();
                        }

                        @Override
                        public io.envoyproxy.envoy.admin.v3.Clusters clusters() {
                            try {
                                var b = io.envoyproxy.envoy.admin.v3.Clusters.newBuilder();
                                com.google.protobuf.util.JsonFormat.parser().merge(CLUSTERS_JSON, b);
                                return b.build();
                            } catch (com.google.protobuf.InvalidProtocolBufferException e) {
                                throw new IllegalStateException(e);
                            }
                        }
                    })
                    .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.CLUSTERS)).build();
            admin.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
            assertEquals(0, pc.run("endpoint", "--admin", "127.0.0.1:" + admin.port(0)), pc.err());
            assertEquals(TABLE, pc.out());
        } finally {
            vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }
}
