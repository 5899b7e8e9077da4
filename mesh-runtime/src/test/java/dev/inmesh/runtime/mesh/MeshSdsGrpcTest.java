package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.upstream.TestCertificates.Issued;
import dev.inmesh.runtime.xds.sds.SdsSecret;
import dev.inmesh.runtime.xds.sds.SdsSecretManager;
import dev.inmesh.runtime.xds.sds.SdsTestServer;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.ext.web.client.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Istio's mesh mTLS from the in-JVM client with the workload's certificate from an SDS server, as an Istio sidecar
 * has it from its agent: a bootstrap whose static {@code sds-grpc} cluster points at java-control-plane's
 * SecretDiscoveryService on loopback, and an ISTIO_MUTUAL cluster naming {@code default} and {@code ROOTCA} on it.
 * The TLS server sees the certificate the SDS server sent, and a rotated one from a later connection on.
 */
@Timeout(60)
class MeshSdsGrpcTest {
    static final String RATINGS = "spiffe://cluster.local/ns/default/sa/bookinfo-ratings";
    static final String PRODUCTPAGE = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage";
    static final Issued MESH_CA = TestCertificates.ca("cluster.local");
    static final Issued SERVER = TestCertificates.issue(MESH_CA, "ratings", List.of(), List.of(RATINGS));
    static final Issued CLIENT = TestCertificates.issue(MESH_CA, "productpage", List.of(),
            List.of(PRODUCTPAGE));
    static final Issued ROTATED = TestCertificates.issue(MESH_CA, "productpage-rotated", List.of(),
            List.of(PRODUCTPAGE));
    private static final String SDS_CONFIG = SdsTestServer.SDS_GRPC_CONFIG;

    private final Vertx vertx = Vertx.vertx();
    private Mesh mesh;
    private SdsTestServer sds;
    @TempDir
    Path dir;

    @AfterEach
    void tearDown() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        if (sds != null) {
            sds.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    private static String indent(String text, int spaces) {
        return text.indent(spaces).stripTrailing();
    }

    /** A bootstrap as Istio's: the ISTIO_MUTUAL cluster to {@code port}, and sds-grpc at the SDS server. */
    private Mesh mesh(int port) throws Exception {
        Path file = dir.resolve("bootstrap.yaml");
        // a TLS handshake counts in connect_timeout: room for the first one of a loaded machine
        Files.writeString(file, MeshWebClientTest.config("", port).replace("connect_timeout: 1s",
                "connect_timeout: 5s") + """
                    transport_socket:
                      name: envoy.transport_sockets.tls
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
                        sni: reviews.default.svc.cluster.local
                        common_tls_context:
                          alpn_protocols: [istio-peer-exchange, istio]
                          tls_certificate_sds_secret_configs:
                          - name: default
                %s
                          combined_validation_context:
                            default_validation_context:
                              match_subject_alt_names: [{exact: "%s"}]
                            validation_context_sds_secret_config:
                              name: ROOTCA
                %s
                """.formatted(indent(SDS_CONFIG, 12), RATINGS, indent(SDS_CONFIG, 14)) + sds.sdsGrpcCluster());
        mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("productpage-v1").setApp("productpage")
                .setVersion("v1").setConfigFile(file.toString()).setAdminPort(-1));
        mesh.start().await(30, TimeUnit.SECONDS);
        return mesh;
    }

    /** A TLS server with the ratings identity requiring a client certificate of the mesh's CA. */
    private int server() throws Exception {
        return vertx.createHttpServer(TestCertificates.requiringClientCertificate(SERVER, MESH_CA))
                .requestHandler(TestCertificates::answerClientSubject)
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    private String call() throws Exception {
        HttpResponse<Buffer> r = mesh.webClient().get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS);
        return r.statusCode() + " " + r.bodyAsString();
    }

    /** The SDS server with the client's secrets, and a mesh that has called the TLS server with them. */
    private void meshWithItsSecrets() throws Exception {
        sds = SdsTestServer.start();
        sds.set("1", SdsTestServer.certificate("default", CLIENT), SdsTestServer.root("ROOTCA", MESH_CA));
        mesh(server());
        assertEquals("200 client=CN=productpage", call());
    }

    @Test
    void anIstioMutualClusterPresentsTheCertificateTheSdsServerSent() throws Exception {
        meshWithItsSecrets(); // which calls with them
    }

    @Test
    void aRotatedSecretIsPresentedFromTheNextConnectionOnOnceAcked() throws Exception {
        meshWithItsSecrets();

        sds.set("2", SdsTestServer.certificate("default", ROTATED), SdsTestServer.root("ROOTCA", MESH_CA));
        sds.awaitRequest(r -> r.getVersionInfo().equals("2") && r.getResourceNamesList().equals(List.of("default")),
                Duration.ofSeconds(10));
        // pushed to the cluster's TLS on its arrival, before the ACK: the pool's next connection presents it
        assertEquals("200 client=CN=productpage-rotated", call());
    }

    @Test
    void theSecretsAreKeptInMemoryWithNoFileWrittenForThem() throws Exception {
        KeysOnDisk disk = KeysOnDisk.fromNow();

        meshWithItsSecrets();
        sds.set("2", SdsTestServer.certificate("default", ROTATED), SdsTestServer.root("ROOTCA", MESH_CA));
        sds.awaitRequest(r -> r.getVersionInfo().equals("2") && r.getResourceNamesList().equals(List.of("default")),
                Duration.ofSeconds(10));

        assertEquals(List.of(), disk.filesHolding(CLIENT.keyPem(), ROTATED.keyPem()),
                "no key of the SDS secrets is written to disk");
        assertEquals(ROTATED.keyPem(), ((DefaultMesh) mesh).sds().active().get(0).privateKey());
    }

    @Test
    void aSecretNoClusterNamesAnyMoreHasItsStreamEndedAndANewOneOpensWhenNamedAgain() throws Exception {
        meshWithItsSecrets();
        SdsSecretManager secrets = ((DefaultMesh) mesh).sds();
        Path file = dir.resolve("bootstrap.yaml");
        String withTls = Files.readString(file);
        int tls = withTls.indexOf("    transport_socket:");
        String plain = withTls.substring(0, tls) + withTls.substring(withTls.indexOf("  - name: sds-grpc"));

        Files.writeString(file, plain);
        awaitTrue(() -> secrets.active().isEmpty() && sds.ended.size() == 2, "both streams end");
        assertEquals(List.of(), secrets.warming());

        int opened = firstRequests("default");
        Files.writeString(file, withTls);
        awaitTrue(() -> firstRequests("default") == opened + 1 && secrets.active().size() == 2,
                "a new stream for each secret named again");
        assertEquals(List.of("default", "ROOTCA"), secrets.active().stream().map(SdsSecret::name).toList());
    }

    /** The requests that opened a stream for {@code name}: the first of each stream has no nonce. */
    private int firstRequests(String name) {
        return (int) sds.requests.stream().filter(r -> r.getResponseNonce().isEmpty()
                && r.getResourceNamesList().equals(List.of(name))).count();
    }

    private static void awaitTrue(java.util.function.BooleanSupplier condition, String what) throws Exception {
        for (int i = 0; i < 200 && !condition.getAsBoolean(); i++) {
            Thread.sleep(50);
        }
        assertTrue(condition.getAsBoolean(), what);
    }

    @Test
    void aSecretSentAfterTheStartIsWaitedForBeforeTheConfigurationIsRead() throws Exception {
        sds = SdsTestServer.start();
        int port = server();
        Thread later = sds.setOnceAsked("default", "1", SdsTestServer.certificate("default", CLIENT),
                SdsTestServer.root("ROOTCA", MESH_CA));
        mesh(port);
        later.join();

        assertEquals("200 client=CN=productpage", call());
    }
}
