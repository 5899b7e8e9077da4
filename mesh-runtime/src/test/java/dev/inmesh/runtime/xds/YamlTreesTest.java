package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * YAML as Envoy reads it: aliases are the values their anchors marked, keys tagged {@code !ignore} are left out (the
 * place to declare anchors, as Envoy's documentation shows), a merge key is refused; everything else as Jackson's
 * YAML reader reads it, or, when asked, its scalars as Envoy types them.
 */
class YamlTreesTest {
    /** Two clusters sharing their timeout and endpoint through anchors declared under an ignored key. */
    private static final String BOOTSTRAP = """
            !ignore shared:
              timeout: &timeout 0.25s
              endpoint: &endpoint
                endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 9080}}}
            static_resources:
              clusters:
              - name: a
                type: STATIC
                connect_timeout: *timeout
                load_assignment: {cluster_name: a, endpoints: [{lb_endpoints: [*endpoint]}]}
              - name: b
                type: STATIC
                connect_timeout: *timeout
                load_assignment: {cluster_name: b, endpoints: [{lb_endpoints: [*endpoint]}]}
            """;

    @Test
    void aliasesAreTheirAnchorsValuesAndIgnoredKeysAreLeftOut() throws Exception {
        JsonNode tree = EnvoyJson.tree(BOOTSTRAP);
        assertFalse(tree.has("shared"), tree.toString());
        JsonNode clusters = tree.path("static_resources").path("clusters");
        assertEquals("0.25s", clusters.path(1).path("connect_timeout").asText());
        String at = "/load_assignment/endpoints/0/lb_endpoints/0";
        JsonNode endpoint = clusters.path(0).at(at);
        assertEquals(9080, endpoint.at("/endpoint/address/socket_address/port_value").asInt(), endpoint.toString());
        assertEquals(endpoint, clusters.path(1).at(at));
        // copies: changing one leaves the other
        ((com.fasterxml.jackson.databind.node.ObjectNode) endpoint).put("load_balancing_weight", 2);
        assertFalse(clusters.path(1).at(at).has("load_balancing_weight"));
    }

    @Test
    void aBootstrapWithAnchorsIsReadAsEnvoyReadsIt() throws Exception {
        ResourceBundle bundle = EnvoyConfigReader.read(BOOTSTRAP);
        for (String name : List.of("a", "b")) {
            Cluster c = bundle.clusters().get(name);
            assertEquals(Duration.ofMillis(250), c.connectTimeout(), name);
            ClusterLoadAssignment cla = c.loadAssignment();
            assertEquals(9080, cla.endpoints().get(0).lbEndpoints().get(0).address().port(), name);
        }
    }

    @Test
    void aMergeKeyAndAnAliasWithoutAnchorAreRefusedByName() throws Exception {
        JsonProcessingException merge = assertThrows(JsonProcessingException.class,
                () -> EnvoyJson.tree("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n"));
        assertTrue(merge.getMessage().contains("merge key (<<)"), merge.getMessage());
        JsonProcessingException alias = assertThrows(JsonProcessingException.class,
                () -> EnvoyJson.tree("a: *nowhere\n"));
        assertTrue(alias.getMessage().contains("*nowhere"), alias.getMessage());
        // a quoted "<<" is a key like any other
        assertEquals(1, EnvoyJson.tree("\"<<\": 1\n").path("<<").asInt());
    }

    @Test
    void anchorsAreEachDocumentsOwn() throws Exception {
        List<JsonNode> docs = EnvoyJson.documents("a: &x 1\nb: *x\n---\na: &x 2\nb: *x\n");
        assertEquals(1, docs.get(0).path("b").asInt());
        assertEquals(2, docs.get(1).path("b").asInt());
        assertThrows(JsonProcessingException.class, () -> EnvoyJson.documents("a: &x 1\n---\nb: *x\n"));
    }

    /** Without anchors or tags, each YAML file of the project reads as Jackson's own tree reader reads it. */
    @Test
    void everyOtherDocumentReadsAsJacksonReadsIt() throws Exception {
        List<Path> files;
        try (Stream<Path> walk = Stream.of(Path.of("src/test/resources"), Path.of("../interception-native/src"),
                Path.of("../samples")).filter(Files::isDirectory).flatMap(YamlTreesTest::walk)) {
            files = walk.filter(f -> !f.toString().contains("/target/"))
                    .filter(f -> f.toString().endsWith(".yaml") || f.toString().endsWith(".yml")).toList();
        }
        String scalars = """
                ints: [0, -1, 2147483648, 9223372036854775808, 0x1f, 0o17, 017, 1_000, +3]
                floats: [1.5, -0.0, 1e3, 6.02e+23, 1.0e-3]
                others: [true, False, yes, no, on, off, null, ~, Null, "", '1', "true", 2001-12-14, !!str 5]
                nested: {a: [{b: {c: [1, [2, [3]]]}}], "quoted key": 'v', 5: five}
                """;
        List<String> texts = new ArrayList<>(List.of(scalars));
        for (Path f : files) {
            texts.add(Files.readString(f));
        }
        int read = 0;
        for (String text : texts) {
            List<JsonNode> expected;
            try {
                expected = jacksons(text);
            } catch (java.io.IOException e) {
                // not YAML (a template): refused too
                assertThrows(JsonProcessingException.class, () -> YamlTrees.documents(text, false), text);
                continue;
            }
            assertEquals(expected, YamlTrees.documents(text, false), text);
            read++;
        }
        assertTrue(read >= 5, "read " + read);
    }

    private static Stream<Path> walk(Path dir) {
        try {
            return Files.walk(dir).filter(Files::isRegularFile);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void scalarsAreTypedAsEnvoyTypesThemWhenAsked() throws Exception {
        JsonNode n = YamlTrees.documents("""
                ints: [0, -1, 2147483647, -2147483648, 2147483648, 0x1f, 017, 08, +3, 9223372036854775808]
                bools: [y, Yes, NO, on, OFF, True, yEs]
                nulls: [~, null, NULL, "null"]
                empty:
                strings: [1.50, 1e3, .inf, "5", '5', !!str 5, abc, ! 5]
                tagged: [!custom "5"]
                block: |
                  123
                """, true).get(0);
        JsonNode expected = new ObjectMapper().readTree("""
                {"ints": [0, -1, 2147483647, -2147483648, "2147483648", 31, 15, "08", 3, "9223372036854775808"],
                 "bools": [true, true, false, true, false, true, "yEs"],
                 "nulls": [null, null, null, "null"],
                 "empty": null,
                 "strings": ["1.50", "1e3", ".inf", "5", "5", 5, "abc", "5"],
                 "tagged": [5],
                 "block": "123\\n"}
                """);
        assertEquals(expected, n);
    }

    /** Jackson's reading: one tree per document, empty and null ones left out. */
    private static List<JsonNode> jacksons(String text) throws Exception {
        ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
        List<JsonNode> docs = new ArrayList<>();
        try (JsonParser p = yaml.getFactory().createParser(text)) {
            while (p.nextToken() != null) {
                JsonNode n = yaml.readTree(p);
                if (n != null && !n.isMissingNode() && !n.isNull()) {
                    docs.add(n);
                }
            }
        }
        return docs;
    }
}
