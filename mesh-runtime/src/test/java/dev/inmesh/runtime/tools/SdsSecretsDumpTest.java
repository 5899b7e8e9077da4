package dev.inmesh.runtime.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.google.protobuf.ByteString;
import dev.inmesh.runtime.admin.ConfigDumpBuilder;
import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.xds.DynamicState;
import dev.inmesh.runtime.xds.EnvoyJson;
import dev.inmesh.runtime.xds.ResourceBundle;
import dev.inmesh.runtime.xds.sds.SdsSecretManager;
import dev.inmesh.runtime.xds.sds.SdsTestServer;
import io.envoyproxy.envoy.config.core.v3.ApiConfigSource;
import io.envoyproxy.envoy.config.core.v3.ConfigSource;
import io.envoyproxy.envoy.config.core.v3.DataSource;
import io.envoyproxy.envoy.config.core.v3.GrpcService;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.Secret;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.TlsCertificate;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The config dump's {@code SecretsConfigDump} lists the secrets fetched over SDS as Envoy's secret manager dumps its
 * SDS providers: a taken one in {@code dynamic_active_secrets} with the server's {@code version_info}, when it came
 * and the secret, its private key redacted; one asked for and not arrived in {@code dynamic_warming_secrets}, its
 * name alone. {@code proxy-config secret} then shows them ACTIVE and WARMING, as istioctl shows Envoy's.
 */
@Timeout(60)
class SdsSecretsDumpTest {
    private final Vertx vertx = Vertx.vertx();

    @AfterEach
    void close() throws Exception {
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** A secret config naming {@code name} on sds-grpc, waiting {@code waitMillis} for it (0: the manager's wait). */
    private static SdsSecretConfig named(String name, long waitMillis) {
        return SdsSecretConfig.newBuilder().setName(name).setSdsConfig(ConfigSource.newBuilder()
                .setInitialFetchTimeout(com.google.protobuf.util.Durations.fromMillis(waitMillis))
                .setApiConfigSource(ApiConfigSource.newBuilder().setApiType(ApiConfigSource.ApiType.GRPC)
                        .addGrpcServices(GrpcService.newBuilder().setEnvoyGrpc(
                                GrpcService.EnvoyGrpc.newBuilder().setClusterName("sds-grpc"))))).build();
    }

    @Test
    void fetchedSecretsAreDumpedActiveWithTheServersVersionAndMissingOnesWarming() throws Exception {
        var ca = TestCertificates.ca("cluster.local");
        var own = TestCertificates.issue(ca, "productpage", List.of(),
                List.of("spiffe://cluster.local/ns/default/sa/bookinfo-productpage"));
        Instant before = Instant.now();
        try (SdsTestServer server = SdsTestServer.start();
             SdsSecretManager sds = new SdsSecretManager(vertx, SdsTestServer.NODE, Map.of("sds-grpc",
                     new dev.inmesh.api.config.core.SocketAddress("127.0.0.1", server.port())),
                     Duration.ofSeconds(20))) {
            // as Istio's agent sends them: inline_bytes
            server.set("v-42", Secret.newBuilder().setName("default").setTlsCertificate(TlsCertificate.newBuilder()
                    .setCertificateChain(DataSource.newBuilder().setInlineBytes(
                            ByteString.copyFromUtf8(own.certificatePem())))
                    .setPrivateKey(DataSource.newBuilder().setInlineBytes(ByteString.copyFromUtf8(own.keyPem()))))
                    .build());
            sds.await(named("default", 0));
            assertThrows(IllegalArgumentException.class, () -> sds.await(named("ROOTCA", 200)));

            String json = ConfigDumpBuilder.json(ResourceBundle.EMPTY, DynamicState.NONE.withSdsSecrets(sds),
                    null, "n", Instant.EPOCH, ConfigDumpBuilder.Query.ALL);
            JsonNode secrets = ProxyConfigWriter.section(EnvoyJson.tree(json), "SecretsConfigDump");
            JsonNode active = secrets.get("dynamic_active_secrets").get(0);
            assertEquals("default", active.get("name").asText());
            assertEquals("v-42", active.get("version_info").asText());
            assertTrue(!Instant.parse(active.get("last_updated").asText()).isBefore(before.minusSeconds(1)),
                    active.toString());
            assertEquals("[redacted]", new String(java.util.Base64.getDecoder().decode(
                    active.at("/secret/tls_certificate/private_key/inline_bytes").asText())), active.toString());
            assertEquals(own.certificatePem(), new String(java.util.Base64.getDecoder().decode(
                    active.at("/secret/tls_certificate/certificate_chain/inline_bytes").asText())));
            JsonNode warming = secrets.get("dynamic_warming_secrets").get(0);
            assertEquals("ROOTCA", warming.get("name").asText());
            assertEquals("ROOTCA", warming.at("/secret/name").asText());
            assertEquals(1, secrets.get("dynamic_active_secrets").size());
            assertEquals(1, secrets.get("dynamic_warming_secrets").size());

            List<ProxyConfigWriter.SecretRow> rows = ProxyConfigWriter.secrets(secrets, Instant.now());
            assertEquals(List.of("ROOTCA WARMING false", "default ACTIVE true"), rows.stream()
                    .map(r -> r.name() + " " + r.status() + " " + r.valid()).toList());
        }
    }
}
