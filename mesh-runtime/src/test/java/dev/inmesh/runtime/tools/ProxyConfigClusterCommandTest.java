package dev.inmesh.runtime.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.inmesh.runtime.admin.ConfigDumpBuilder;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.EnvoyJson;
import dev.inmesh.runtime.xds.ResourceBundle;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code proxy-config cluster|endpoint} end to end, from a config dump holding CDS and EDS resources. */
class ProxyConfigClusterCommandTest {
    @TempDir
    Path dir;
    private Path dump;
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();

    /** A dump as Envoy's admin writes it, with the clusters and load assignments of ProxyConfigWriterTest. */
    static String dumpJson() throws Exception {
        JsonNodeFactory f = JsonNodeFactory.instance;
        ObjectNode root = f.objectNode();
        ArrayNode configs = root.putArray("configs");
        ObjectNode clusters = configs.addObject();
        clusters.put("@type", "type.googleapis.com/envoy.admin.v3.ClustersConfigDump");
        ArrayNode active = clusters.putArray("dynamic_active_clusters");
        for (JsonNode c : EnvoyJson.tree(ProxyConfigWriterTest.CLUSTERS)) {
            ObjectNode entry = active.addObject();
            entry.put("version_info", "7");
            ObjectNode cluster = ((ObjectNode) c).deepCopy();
            cluster.put("@type", "type.googleapis.com/envoy.config.cluster.v3.Cluster");
            entry.set("cluster", cluster);
            entry.put("last_updated", "2026-11-28T13:00:00Z");
        }
        ObjectNode endpoints = configs.addObject();
        endpoints.put("@type", "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump");
        ArrayNode eds = endpoints.putArray("dynamic_endpoint_configs");
        for (JsonNode e : EnvoyJson.tree(ProxyConfigWriterTest.ENDPOINTS)) {
            ObjectNode entry = eds.addObject();
            entry.put("version_info", "8");
            ObjectNode cla = ((ObjectNode) e).deepCopy();
            cla.put("@type", "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment");
            entry.set("endpoint_config", cla);
            entry.put("last_updated", "2026-11-28T13:00:01Z");
        }
        return root.toString();
    }

    @BeforeEach
    void writeDump() throws Exception {
        dump = dir.resolve("config_dump.json");
        Files.writeString(dump, dumpJson());
    }

    private int run(String... args) {
        ProxyConfigCommand c = new ProxyConfigCommand();
        c.out = new PrintStream(out, true, StandardCharsets.UTF_8);
        c.err = new PrintStream(err, true, StandardCharsets.UTF_8);
        return new CommandLine(c).execute(args);
    }

    @Test
    void listsClustersInIstioctlsTable() {
        assertEquals(0, run("cluster", "-f", dump.toString()), err.toString());
        assertEquals("""
                SERVICE FQDN                          PORT     SUBSET     DIRECTION     TYPE             DESTINATION RULE
                                                      9080     -          inbound       ORIGINAL_DST    \s
                BlackHoleCluster                      -        -          -             STATIC          \s
                PassthroughCluster                    -        -          -             ORIGINAL_DST    \s
                reviews.default.svc.cluster.local     9080     -          outbound      EDS             \s
                reviews.default.svc.cluster.local     9080     v1         outbound      EDS             \s
                reviews.default.svc.cluster.local     9080     v2         outbound      EDS              reviews.default
                """, out.toString(StandardCharsets.UTF_8));
    }

    @Test
    void filtersClustersByFqdnPortSubsetAndDirection() {
        assertEquals(0, run("cluster", "-f", dump.toString(), "--fqdn", "reviews", "--port", "9080", "--subset", "v1",
                "--direction", "outbound"), err.toString());
        assertEquals("""
                SERVICE FQDN                          PORT     SUBSET     DIRECTION     TYPE     DESTINATION RULE
                reviews.default.svc.cluster.local     9080     v1         outbound      EDS     \s
                """, out.toString(StandardCharsets.UTF_8));
    }

    @Test
    void listsEndpointsInIstioctlsTable() {
        assertEquals(0, run("endpoint", "-f", dump.toString(), "--port", "9080", "--status", "healthy"),
                err.toString());
        assertEquals("""
                ENDPOINT              STATUS      OUTLIER CHECK     CLUSTER
                10.244.0.193:9080     HEALTHY     OK                outbound|9080|v2|reviews.default.svc.cluster.local
                10.244.0.193:9080     HEALTHY     OK                outbound|9080||reviews.default.svc.cluster.local
                """, out.toString(StandardCharsets.UTF_8));
    }

    @Test
    void aClusterWithALoadBalancingPolicyIsListedAndPrintedAsItCame() throws Exception {
        ResourceBundle read = EnvoyConfigReader.read("""
                resources:
                - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
                  name: outbound|9080||ratings.default.svc.cluster.local
                  type: STATIC
                  lb_policy: LOAD_BALANCING_POLICY_CONFIG
                  load_balancing_policy:
                    policies:
                    - typed_extension_config:
                        name: envoy.load_balancing_policies.least_request
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest
                          choice_count: 3
                """);
        Files.writeString(dump, ConfigDumpBuilder.json(read, "node", Instant.EPOCH));

        assertEquals(0, run("cluster", "-f", dump.toString()), err.toString());
        assertEquals(true, out.toString(StandardCharsets.UTF_8).contains("ratings.default.svc.cluster.local"));
        out.reset();
        assertEquals(0, run("cluster", "-f", dump.toString(), "-o", "json"), err.toString());
        JsonNode policy = EnvoyJson.tree(out.toString(StandardCharsets.UTF_8)).get(0).get("loadBalancingPolicy")
                .get("policies").get(0).get("typedExtensionConfig").get("typedConfig");
        assertEquals("type.googleapis.com/envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest",
                policy.get("@type").asText());
        assertEquals(3, policy.get("choiceCount").asInt());
    }

    @Test
    void aDumpWithClustersAndEndpointsLoadsBackThroughTheConfigDumpBuilder() throws Exception {
        ResourceBundle read = EnvoyConfigReader.read(dumpJson());

        ResourceBundle back = EnvoyConfigReader.read(ConfigDumpBuilder.json(read, "node", Instant.EPOCH));

        assertEquals(read.clusters(), back.clusters());
        assertEquals(read.endpoints(), back.endpoints());
        // the versions of all but the load assignments, whose dump entries carry none, as Envoy's
        var versions = new java.util.LinkedHashMap<>(read.versions());
        versions.keySet().removeIf(k -> k.startsWith("ClusterLoadAssignment/"));
        var backVersions = new java.util.LinkedHashMap<>(back.versions());
        backVersions.keySet().removeIf(k -> k.startsWith("ClusterLoadAssignment/"));
        assertEquals(versions, backVersions);
    }
}
