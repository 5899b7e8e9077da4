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
    /** A certificate for the name the application calls, {@code reviews}. */
    private static final TestCertificates.Issued REVIEWS = TestCertificates.issue(CA, "reviews", List.of("reviews"),
            List.of());

    private final Vertx vertx = Vertx.vertx();
    private Mesh mesh;
    @TempDir
    Path dir;

    @AfterEach
    void tearDown() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    private Mesh mesh(int port, String caFile, String san) throws Exception {
        return mesh(port, caFile, "sni: reviews.example.com", "{match_subject_alt_names: [{exact: " + san + "}]}", "");
    }

    /**
     * The mesh with the cluster's TLS: {@code sni} a line of the UpstreamTlsContext or empty, {@code defaultContext}
     * its default validation context, {@code clusterLines} more lines of the cluster.
     */
    private Mesh mesh(int port, String caFile, String sni, String defaultContext, String clusterLines)
            throws Exception {
        Path file = dir.resolve("mesh.yaml");
        Files.writeString(file, MeshWebClientTest.config("", port) + clusterLines + """
                    transport_socket:
                      name: envoy.transport_sockets.tls
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
                        %s
                        common_tls_context:
                          combined_validation_context:
                            default_validation_context: %s
                            validation_context_sds_secret_config:
                              name: "file-root:%s"
                              sds_config:
                                api_config_source:
                                  api_type: GRPC
                                  grpc_services: [{envoy_grpc: {cluster_name: sds-grpc}}]
                """.formatted(sni, defaultContext, caFile));
        mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("productpage-v1").setApp("productpage")
                .setVersion("v1").setConfigFile(file.toString()).setAdminPort(-1));
        mesh.start().await(10, TimeUnit.SECONDS);
        return mesh;
    }

    private int tlsServer() throws Exception {
        return tlsServer(SERVER);
    }

    private int tlsServer(TestCertificates.Issued cert) throws Exception {
        HttpServer s = vertx.createHttpServer(new HttpServerOptions().setSsl(true).setSni(true)
                .setKeyCertOptions(new PemKeyCertOptions().setCertValue(Buffer.buffer(cert.certificatePem()))
                        .setKeyValue(Buffer.buffer(cert.keyPem()))))
                .requestHandler(req -> req.response().end("tls " + req.isSSL() + " sni "
                        + req.connection().indicatedServerName()));
        s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        return s.actualPort();
    }

    @Test
    void aPlainRequestOfTheApplicationGoesUpstreamOverVerifiedTls() throws Exception {
        Path ca = Files.writeString(dir.resolve("ca.pem"), CA.certificatePem());
        mesh(tlsServer(), ca.toString(), "reviews.example.com");
        HttpResponse<Buffer> r = mesh.webClient().get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode());
        assertEquals("tls true sni reviews.example.com", r.bodyAsString());
    }

    @Test
    void aServerCertificateWithoutTheSanTheDestinationRuleNamesIsRefusedWith503() throws Exception {
        Path ca = Files.writeString(dir.resolve("ca.pem"), CA.certificatePem());
        mesh(tlsServer(), ca.toString(), "db.example.com");
        HttpResponse<Buffer> r = mesh.webClient().get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS);
        assertEquals(503, r.statusCode());
        assertTrue(r.bodyAsString().contains("connect"), r.bodyAsString());
    }

    @Test
    void istiosSimpleTlsWithoutSniSendsAndChecksTheHostTheApplicationCalls() throws Exception {
        Path ca = Files.writeString(dir.resolve("ca.pem"), CA.certificatePem());
        // as Istio writes a DestinationRule's tls {mode: SIMPLE, caCertificates} without sni
        mesh(tlsServer(REVIEWS), ca.toString(), "", "{}", """
                    typed_extension_protocol_options:
                      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                        upstream_http_protocol_options: {auto_sni: true, auto_san_validation: true}
                        use_downstream_protocol_config: {http_protocol_options: {}, http2_protocol_options: {}}
                """);
        HttpResponse<Buffer> r = mesh.webClient().get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode());
        assertEquals("tls true sni reviews", r.bodyAsString());
        // the other name of the route's virtual host is not in the server's certificate
        HttpResponse<Buffer> other = mesh.webClient().get(9080, "reviews.default.svc.cluster.local", "/").send()
                .await(10, TimeUnit.SECONDS);
        assertEquals(503, other.statusCode());
    }
}
