package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.upstream.TestCertificates;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.ext.web.client.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An Istio DestinationRule's {@code tls.mode: SIMPLE} with {@code caCertificates}, end to end: the application's plain
 * HTTP request through {@code mesh.webClient()} reaches a loopback TLS server, which the mesh verifies against the CA
 * file of Istio's {@code file-root:} secret, sending the SNI Istio sets.
 */
class MeshUpstreamTlsTest {
    private static final TestCertificates.Issued CA = TestCertificates.ca("egress-ca");
    private static final TestCertificates.Issued SERVER = TestCertificates.issue(CA, "reviews.example.com",
            List.of("reviews.example.com"), List.of());

    private final Vertx vertx = Vertx.vertx();
    private Mesh mesh;
    @TempDir
    Path dir;

    @AfterEach
    void tearDown() throws Exception {
        if (mesh != null) {
            mesh.close().await(5, TimeUnit.SECONDS);
        }
        vertx.close().await(5, TimeUnit.SECONDS);
    }

    private Mesh mesh(int port, String caFile, String san) throws Exception {
        Path file = dir.resolve("mesh.yaml");
        Files.writeString(file, MeshWebClientTest.config("", port) + """
                    transport_socket:
                      name: envoy.transport_sockets.tls
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
                        sni: reviews.example.com
                        common_tls_context:
                          combined_validation_context:
                            default_validation_context: {match_subject_alt_names: [{exact: %s}]}
                            validation_context_sds_secret_config:
                              name: "file-root:%s"
                              sds_config:
                                api_config_source:
                                  api_type: GRPC
                                  grpc_services: [{envoy_grpc: {cluster_name: sds-grpc}}]
                """.formatted(san, caFile));
        mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("productpage-v1").setApp("productpage")
                .setVersion("v1").setConfigFile(file.toString()).setAdminPort(-1));
        mesh.start().await(10, TimeUnit.SECONDS);
        return mesh;
    }

    private int tlsServer() throws Exception {
        HttpServer s = vertx.createHttpServer(new HttpServerOptions().setSsl(true).setSni(true)
                .setKeyCertOptions(new PemKeyCertOptions().setCertValue(Buffer.buffer(SERVER.certificatePem()))
                        .setKeyValue(Buffer.buffer(SERVER.keyPem()))))
                .requestHandler(req -> req.response().end("tls " + req.isSSL() + " sni "
                        + req.connection().indicatedServerName()));
        s.listen(0, "127.0.0.1").await(5, TimeUnit.SECONDS);
        return s.actualPort();
    }

    @Test
    void aPlainRequestOfTheApplicationGoesUpstreamOverVerifiedTls() throws Exception {
        Path ca = Files.writeString(dir.resolve("ca.pem"), CA.certificatePem());
        mesh(tlsServer(), ca.toString(), "reviews.example.com");
        HttpResponse<Buffer> r = mesh.webClient().get(9080, "reviews", "/").send().await(5, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode());
        assertEquals("tls true sni reviews.example.com", r.bodyAsString());
    }

    @Test
    void aServerCertificateWithoutTheSanTheDestinationRuleNamesIsRefusedWith503() throws Exception {
        Path ca = Files.writeString(dir.resolve("ca.pem"), CA.certificatePem());
        mesh(tlsServer(), ca.toString(), "db.example.com");
        HttpResponse<Buffer> r = mesh.webClient().get(9080, "reviews", "/").send().await(5, TimeUnit.SECONDS);
        assertEquals(503, r.statusCode());
        assertTrue(r.bodyAsString().contains("connect"), r.bodyAsString());
    }
}
