package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.upstream.TestCertificates.Issued;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.ext.web.client.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Istio's auto mTLS from the in-JVM client: a cluster without a DestinationRule, as istiod writes it, carries the
 * {@code transport_socket_matches} {@code tlsMode-istio} (mTLS on SDS {@code default} and {@code ROOTCA}) and
 * {@code tlsMode-disabled} (plaintext), and the endpoints of pods with a sidecar carry
 * {@code envoy.transport_socket_match: {tlsMode: istio}}. With the workload identity directory the labelled endpoint
 * gets mTLS with the workload's certificate, the other plaintext; without it the labelled endpoint's requests fail,
 * and an identity directory whose files are unusable rejects the cluster, rather than sending the labelled endpoint's
 * requests in plaintext.
 */
@Timeout(60)
class MeshIstioAutoMtlsTest {
    private static final String RATINGS = "spiffe://cluster.local/ns/default/sa/bookinfo-ratings";
    private static final Issued MESH_CA = TestCertificates.ca("cluster.local");
    private static final Issued SERVER = TestCertificates.issue(MESH_CA, "ratings", List.of(), List.of(RATINGS));
    private static final Issued CLIENT = TestCertificates.issue(MESH_CA, "productpage", List.of(),
            List.of("spiffe://cluster.local/ns/default/sa/bookinfo-productpage"));

    /** Istio's SDS source of its secrets: the agent's {@code sds-grpc} cluster, which Inmesh does not call. */
    private static final String SDS = "{api_config_source: {api_type: GRPC, grpc_services: [{envoy_grpc: "
            + "{cluster_name: sds-grpc}}]}}";

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

    private Path identity() throws Exception {
        return TestCertificates.identityDirectory(dir, CLIENT, MESH_CA);
    }

    /**
     * A mesh whose cluster has istiod's auto mTLS matches, an endpoint on {@code sidecarPort} labelled
     * {@code tlsMode: istio} and one on {@code plainPort} without. The match's SNI is a DNS name here: the JDK's TLS
     * server of this test refuses Istio's {@code outbound_.9080_._.HOST} (MeshIstioMutualTlsTest shows it sent).
     */
    private void start(int sidecarPort, int plainPort, Path identity) throws Exception {
        Path file = dir.resolve("mesh.yaml");
        Files.writeString(file, MeshWebClientTest.config("") + """
                          - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %2$d}}}
                            metadata: {filter_metadata: {envoy.transport_socket_match: {tlsMode: istio}}}
                          - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %3$d}}}
                    transport_socket_matches:
                    - name: tlsMode-istio
                      match: {tlsMode: istio}
                      transport_socket:
                        name: envoy.transport_sockets.tls
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
                          sni: reviews.default.svc.cluster.local
                          common_tls_context:
                            alpn_protocols: [istio-peer-exchange, istio]
                            tls_certificate_sds_secret_configs:
                            - name: default
                              sds_config: %1$s
                            combined_validation_context:
                              default_validation_context:
                                match_subject_alt_names: [{exact: "%4$s"}]
                              validation_context_sds_secret_config:
                                name: ROOTCA
                                sds_config: %1$s
                    - name: tlsMode-disabled
                      match: {}
                      transport_socket: {name: envoy.transport_sockets.raw_buffer}
                """.formatted(SDS, sidecarPort, plainPort, RATINGS));
        MeshOptions o = new MeshOptions().setWorkloadName("productpage-v1").setApp("productpage").setVersion("v1")
                .setConfigFile(file.toString()).setAdminPort(-1);
        if (identity != null) {
            o.setIdentityDir(identity.toString());
        }
        mesh = Mesh.create(vertx, o);
        mesh.start().await(10, TimeUnit.SECONDS);
    }

    /** The ratings pod's sidecar: mTLS only, a client certificate of the mesh's CA required. */
    private int sidecar() throws Exception {
        return vertx.createHttpServer(TestCertificates.requiringClientCertificate(SERVER, MESH_CA))
                .requestHandler(TestCertificates::answerClientSubject)
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    /** A pod without a sidecar: plaintext. */
    private int plain() throws Exception {
        return vertx.createHttpServer().requestHandler(req -> req.response().end("plain"))
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    /** What four requests (round robin over the two endpoints) got back. */
    private Set<String> answers() throws Exception {
        Set<String> out = new TreeSet<>();
        for (int i = 0; i < 4; i++) {
            HttpResponse<Buffer> r = mesh.webClient().get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS);
            out.add(r.statusCode() + " " + r.bodyAsString());
        }
        return out;
    }

    @Test
    void withTheIdentityTheSidecarsEndpointGetsMtlsAndTheOtherPlaintext() throws Exception {
        start(sidecar(), plain(), identity());
        assertEquals(Set.of("200 client=CN=productpage", "200 plain"), answers());
    }

    @Test
    void withoutTheIdentityTheSidecarsEndpointIsNeverSentPlaintextItsRequestsFail() throws Exception {
        // a labelled endpoint that would answer plaintext (a PERMISSIVE server): as Envoy's connections to a host
        // whose SDS secret has not come, its requests fail (503) rather than fall to the plaintext match
        int permissive = vertx.createHttpServer().requestHandler(req -> req.response().end("sent in plaintext"))
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        start(permissive, plain(), null);
        Set<String> got = answers();
        assertTrue(got.contains("200 plain") && got.stream().anyMatch(a -> a.startsWith("503")), got.toString());
        assertTrue(got.stream().noneMatch(a -> a.contains("sent in plaintext")), got.toString());
    }

    @Test
    void anUnusableIdentityRejectsTheClusterRatherThanFallingBackToPlaintext() throws Exception {
        Path id = identity();
        Files.writeString(id.resolve("root-cert.pem"), "not a certificate");
        Exception e = assertThrows(Exception.class, () -> start(sidecar(), plain(), id));
        assertTrue(e.getMessage().contains("outbound|9080||reviews.default.svc.cluster.local")
                && e.getMessage().contains("transport_socket_matches[0]"), e.getMessage());
    }
}
