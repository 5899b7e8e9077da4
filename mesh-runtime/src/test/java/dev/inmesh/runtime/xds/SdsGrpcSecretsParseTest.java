package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.UpstreamTlsContext;
import dev.inmesh.api.config.cluster.UpstreamTlsContext.SanType;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.runtime.tls.WorkloadIdentity;
import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.xds.sds.SdsSecretManager;
import dev.inmesh.runtime.xds.sds.SdsTestServer;
import io.vertx.core.Vertx;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An ISTIO_MUTUAL cluster as istiod writes it (SDS {@code default} and {@code ROOTCA} from the {@code sds-grpc}
 * cluster) parsed with an SDS client takes the certificate, key and CAs the SDS server sent, keeps the combined
 * context's SAN matchers, and keeps the secrets' sources (in memory) for their rotations; a workload identity
 * directory still serves the two names when there is one, and without either they are refused by name as before.
 */
class SdsGrpcSecretsParseTest {
    private static final ClusterParser PARSER = new ClusterParser();
    private static final TestCertificates.Issued CA = TestCertificates.ca("mesh-root");
    private static final TestCertificates.Issued CLIENT = TestCertificates.issue(CA, "productpage", List.of(),
            List.of("spiffe://cluster.local/ns/default/sa/productpage"));
    private static final TestCertificates.Issued OTHER = TestCertificates.issue(CA, "other", List.of(),
            List.of("spiffe://cluster.local/ns/default/sa/other"));

    @TempDir
    Path dir;
    Vertx vertx;
    SdsTestServer server;
    SdsSecretManager sds;

    @BeforeEach
    void start() throws Exception {
        server = SdsTestServer.start();
        server.set("1", SdsTestServer.certificate("default", CLIENT), SdsTestServer.root("ROOTCA", CA));
        vertx = Vertx.vertx();
        sds = new SdsSecretManager(vertx, SdsTestServer.NODE,
                Map.of("sds-grpc", new SocketAddress("127.0.0.1", server.port())));
    }

    @AfterEach
    void stop() {
        sds.close();
        server.close();
        vertx.close().await();
    }

    private static String istioMutual() {
        return UpstreamTlsParserTest.istioCluster(UpstreamTlsParserTest.ISTIO_MUTUAL);
    }

    @Test
    void istiosSecretsComeFromTheSdsServer() throws Exception {
        var json = ClusterParserTest.proto(istioMutual());

        UpstreamTlsContext tls = Parsers.withSds(sds, () -> PARSER.parse(json)).tls();

        assertEquals(CLIENT.certificatePem(), tls.certificateChain());
        assertEquals(CLIENT.keyPem(), tls.privateKey());
        assertEquals(CA.certificatePem(), tls.trustedCa());
        assertTrue(tls.subjectAltNames().stream().anyMatch(m -> m.type() == SanType.URI));
        // no file: the TLS context reads rotations from the secrets held in memory
        assertEquals(List.of(), List.copyOf(tls.sdsFiles().paths()));
        assertEquals("default", tls.sdsFiles().certificateSecret().name());
        assertEquals(CLIENT.keyPem(), tls.sdsFiles().certificateSecret().current().privateKey());
        assertEquals(CA.certificatePem(), tls.sdsFiles().validationSecret().current().trustedCa());
    }

    @Test
    void aWorkloadIdentityDirectoryStillServesIstiosNames() throws Exception {
        Path id = TestCertificates.identityDirectory(dir, OTHER, CA);
        var json = ClusterParserTest.proto(istioMutual());

        UpstreamTlsContext tls = Parsers.withIdentity(new WorkloadIdentity(id),
                () -> Parsers.withSds(sds, () -> PARSER.parse(json))).tls();

        assertEquals(OTHER.certificatePem(), tls.certificateChain());
        assertEquals(id.resolve("cert-chain.pem").toString(), tls.sdsFiles().certificateChain());
        assertEquals(List.of(), sds.active(), "nothing asked of the SDS server");
    }

    @Test
    void aCertificateNamedAsAValidationContextIsRefusedByName() throws Exception {
        var json = ClusterParserTest.proto(istioMutual().replace("\"name\": \"ROOTCA\"", "\"name\": \"default\""));

        String e = assertThrows(InvalidResourceException.class,
                () -> Parsers.withSds(sds, () -> PARSER.parse(json))).getMessage();

        assertTrue(e.contains("SDS secret \"default\" is a tls_certificate, not a validation_context"), e);
    }

    @Test
    void withoutAnSdsClientIstiosSecretsAreRefusedAsBefore() {
        String e = assertThrows(InvalidResourceException.class,
                () -> PARSER.parse(ClusterParserTest.proto(istioMutual()))).getMessage();
        assertTrue(e.contains("SDS secret \"default\" is not supported"), e);
    }
}
