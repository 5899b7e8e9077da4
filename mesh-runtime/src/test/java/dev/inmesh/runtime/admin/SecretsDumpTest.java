package dev.inmesh.runtime.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inmesh.runtime.tls.WorkloadIdentity;
import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.upstream.TestCertificates.Issued;
import dev.inmesh.runtime.xds.DynamicState;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.EnvoyJson;
import dev.inmesh.runtime.xds.Parsers;
import dev.inmesh.runtime.xds.ResourceBundle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The config dump's {@code SecretsConfigDump}: the SDS secrets the configuration names, as Envoy dumps those Istio's
 * agent serves it ({@code dynamic_active_secrets}, the PEMs as {@code inline_bytes}, the private key redacted).
 */
class SecretsDumpTest {
    private static final String SDS = """
            sds_config: {api_config_source: {api_type: GRPC, transport_api_version: V3,
              grpc_services: [{envoy_grpc: {cluster_name: sds-grpc}}]}}""";
    /** After an ISTIO_MUTUAL cluster (Istio's default and ROOTCA), a listener whose TLS has file SDS names. */
    private static final String RESOURCES = TestCertificates.ISTIO_MUTUAL_CLUSTER + """
            - "@type": type.googleapis.com/envoy.config.listener.v3.Listener
              name: 0.0.0.0_8443
              address: {socket_address: {address: 0.0.0.0, port_value: 8443}}
              filter_chains:
              - transport_socket:
                  name: envoy.transport_sockets.tls
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
                    require_client_certificate: true
                    common_tls_context:
                      tls_certificate_sds_secret_configs: [{name: "file-cert:%2$s~%3$s", %1$s}]
                      validation_context_sds_secret_config: {name: "file-root:%4$s", %1$s}
                filters:
                - name: envoy.filters.network.tcp_proxy
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                    stat_prefix: gateway
                    cluster: "outbound|9080||reviews.default.svc.cluster.local"
            """;

    @TempDir
    Path dir;
    private Issued ca;
    private Path identityDir;
    private WorkloadIdentity identity;
    private Path gatewayCert;
    private Path gatewayKey;
    private Path gatewayCa;
    private ResourceBundle bundle;

    @BeforeEach
    void configuration() throws Exception {
        ca = TestCertificates.ca("mesh-ca");
        Issued own = TestCertificates.issue(ca, "productpage", List.of(),
                List.of("spiffe://cluster.local/ns/default/sa/bookinfo-productpage"));
        identityDir = TestCertificates.identityDirectory(dir, own, ca);
        identity = new WorkloadIdentity(identityDir);
        Issued gateway = TestCertificates.issue(ca, "gateway", List.of("gateway.example.com"), List.of());
        gatewayCert = Files.writeString(dir.resolve("gateway.pem"), gateway.certificatePem());
        gatewayKey = Files.writeString(dir.resolve("gateway-key.pem"), gateway.keyPem());
        gatewayCa = Files.writeString(dir.resolve("ca.pem"), ca.certificatePem());
        String text = RESOURCES.formatted(SDS, gatewayCert, gatewayKey, gatewayCa);
        bundle = Parsers.withIdentity(identity, () -> EnvoyConfigReader.read(text));
    }

    private JsonNode dump(ConfigDumpBuilder.Query query) throws Exception {
        return EnvoyJson.tree(ConfigDumpBuilder.json(bundle, DynamicState.NONE, identity, "n", Instant.EPOCH, query));
    }

    private JsonNode secrets() throws Exception {
        JsonNode configs = dump(ConfigDumpBuilder.Query.ALL).get("configs");
        JsonNode last = configs.get(configs.size() - 1);
        assertEquals("type.googleapis.com/envoy.admin.v3.SecretsConfigDump", last.get("@type").asText(),
                "as Envoy's, the secrets come last");
        return last.get("dynamic_active_secrets");
    }

    private static String base64(String text) {
        return Base64.getEncoder().encodeToString(text.getBytes(StandardCharsets.UTF_8));
    }

    private static String read(Path p) throws Exception {
        return Files.readString(p);
    }

    @Test
    void eachSecretTheConfigurationNamesIsAnActiveSecretWithItsFilesAndTheKeyRedacted() throws Exception {
        JsonNode active = secrets();
        List<String> names = new ArrayList<>();
        active.forEach(s -> names.add(s.get("name").asText()));
        String fileCert = "file-cert:" + gatewayCert + "~" + gatewayKey;
        String fileRoot = "file-root:" + gatewayCa;
        assertEquals(List.of("default", "ROOTCA", fileCert, fileRoot), names);

        JsonNode def = active.get(0);
        assertEquals("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
                def.at("/secret/@type").asText());
        assertEquals("default", def.at("/secret/name").asText());
        assertEquals(base64(read(identityDir.resolve("cert-chain.pem"))),
                def.at("/secret/tls_certificate/certificate_chain/inline_bytes").asText());
        assertEquals(base64("[redacted]"), def.at("/secret/tls_certificate/private_key/inline_bytes").asText());
        assertFalse(def.get("version_info").asText().isEmpty());
        Instant chainTime = Files.getLastModifiedTime(identityDir.resolve("cert-chain.pem")).toInstant();
        Instant keyTime = Files.getLastModifiedTime(identityDir.resolve("key.pem")).toInstant();
        // to the millisecond, as Envoy writes its times
        assertEquals((keyTime.isAfter(chainTime) ? keyTime : chainTime).truncatedTo(ChronoUnit.MILLIS),
                Instant.parse(def.get("last_updated").asText()), "the newest of its files");

        JsonNode root = active.get(1);
        assertEquals(base64(ca.certificatePem()), root.at("/secret/validation_context/trusted_ca/inline_bytes")
                .asText());
        assertFalse(root.at("/secret").has("tls_certificate"));
        assertEquals(base64(read(gatewayCert)), active.get(2).at("/secret/tls_certificate/certificate_chain/"
                + "inline_bytes").asText());
        assertEquals(base64("[redacted]"), active.get(2).at("/secret/tls_certificate/private_key/inline_bytes")
                .asText());
        assertEquals(base64(read(gatewayCa)), active.get(3).at("/secret/validation_context/trusted_ca/inline_bytes")
                .asText());
        assertFalse(dump(ConfigDumpBuilder.Query.ALL).toString().contains(base64(read(gatewayKey))),
                "no private key anywhere in the dump");
    }

    @Test
    void aRotatedFileChangesTheVersionAndTheContentWhileAnUnchangedOneKeepsThem() throws Exception {
        JsonNode before = secrets();
        assertEquals(before, secrets(), "nothing changed: the same dump");

        Issued next = TestCertificates.issue(ca, "productpage", List.of(),
                List.of("spiffe://cluster.local/ns/default/sa/bookinfo-productpage"));
        Files.writeString(identityDir.resolve("key.pem"), next.keyPem());
        Files.writeString(identityDir.resolve("cert-chain.pem"), next.certificatePem());
        Instant later = Instant.now().plusSeconds(60);
        Files.setLastModifiedTime(identityDir.resolve("cert-chain.pem"), FileTime.from(later));

        JsonNode after = secrets();
        assertNotEquals(before.get(0).get("version_info"), after.get(0).get("version_info"));
        assertEquals(base64(next.certificatePem()),
                after.get(0).at("/secret/tls_certificate/certificate_chain/inline_bytes").asText());
        assertEquals(later.truncatedTo(ChronoUnit.MILLIS), Instant.parse(after.get(0).get("last_updated").asText()));
        assertEquals(before.get(1), after.get(1), "the root did not rotate");
    }

    @Test
    void resourceAndNameRegexSelectSecretsAsTheyDoOtherResources() throws Exception {
        JsonNode entries = dump(new ConfigDumpBuilder.Query(false, "dynamic_active_secrets", null, null))
                .get("configs");
        assertEquals(4, entries.size());
        assertEquals("type.googleapis.com/envoy.admin.v3.SecretsConfigDump.DynamicSecret",
                entries.get(0).get("@type").asText());

        JsonNode some = dump(new ConfigDumpBuilder.Query(false, "dynamic_active_secrets", null, "ROOTCA"))
                .get("configs");
        assertEquals(1, some.size());
        assertEquals("ROOTCA", some.get(0).get("name").asText());

        JsonNode masked = dump(new ConfigDumpBuilder.Query(false, null, "dynamic_active_secrets", null))
                .get("configs");
        assertEquals(1, masked.size(), "only the secrets' dump has that field");
        assertEquals(4, masked.get(0).get("dynamic_active_secrets").size());
    }

    @Test
    void theDumpReadsBackIntoTheSameResources() throws Exception {
        String json = ConfigDumpBuilder.json(bundle, DynamicState.NONE, identity, "n", Instant.EPOCH,
                ConfigDumpBuilder.Query.ALL);
        ResourceBundle back = Parsers.withIdentity(identity, () -> EnvoyConfigReader.read(json));
        assertEquals(bundle.clusters(), back.clusters());
        assertEquals(bundle.listeners(), back.listeners());
    }

    @Test
    void withoutAnIdentityOnlyTheFileNamesAreSecretsAndWithNoneTheSectionIsEmpty() throws Exception {
        String json = ConfigDumpBuilder.json(bundle, DynamicState.NONE, null, "n", Instant.EPOCH,
                ConfigDumpBuilder.Query.ALL);
        JsonNode configs = EnvoyJson.tree(json).get("configs");
        JsonNode active = configs.get(configs.size() - 1).get("dynamic_active_secrets");
        assertEquals(2, active.size());
        assertEquals("file-cert:" + gatewayCert + "~" + gatewayKey, active.get(0).get("name").asText());

        JsonNode none = EnvoyJson.tree(ConfigDumpBuilder.json(ResourceBundle.EMPTY, "n", Instant.EPOCH))
                .get("configs");
        assertEquals("type.googleapis.com/envoy.admin.v3.SecretsConfigDump",
                none.get(none.size() - 1).get("@type").asText());
        assertEquals(1, none.get(none.size() - 1).size());
    }
}
