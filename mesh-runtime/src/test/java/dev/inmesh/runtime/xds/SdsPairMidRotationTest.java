package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.UpstreamTlsContext;
import dev.inmesh.api.config.listener.DownstreamTlsContext;
import dev.inmesh.runtime.tls.WorkloadIdentity;
import dev.inmesh.runtime.upstream.TestCertificates;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A certificate and key of an SDS name (the workload identity's {@code default}, {@code file-cert:CERT~KEY}) parsed
 * between the two renames of a rotation (the key new, the chain still old) are read again, so that the resource is
 * not rejected for a pair Envoy would have had whole from its SDS secret; a pair that stays mismatched still rejects
 * it by name. The parser's pause between two reads is replaced by the test, so that the rotation ends while it waits.
 */
class SdsPairMidRotationTest {
    private static final ClusterParser PARSER = new ClusterParser();
    private static final TestCertificates.Issued CA = TestCertificates.ca("mesh-root");
    private static final TestCertificates.Issued OLD = TestCertificates.issue(CA, "old", List.of(),
            List.of("spiffe://cluster.local/ns/default/sa/old"));
    private static final TestCertificates.Issued NEW = TestCertificates.issue(CA, "new", List.of(),
            List.of("spiffe://cluster.local/ns/default/sa/new"));

    @TempDir
    Path dir;
    Path id;
    /** How many times the parser paused before reading a pair again. */
    final AtomicInteger pauses = new AtomicInteger();

    @BeforeEach
    void identity() throws IOException {
        id = TestCertificates.identityDirectory(dir, OLD, CA);
    }

    @AfterEach
    void restorePause() {
        CommonTlsParser.rereadPause = CommonTlsParser::pause;
    }

    /** Pauses without waiting, running {@code onFirst} (the writer's next step) at the first pause. */
    private void pause(Runnable onFirst) {
        CommonTlsParser.rereadPause = () -> {
            if (pauses.incrementAndGet() == 1) {
                onFirst.run();
            }
        };
    }

    private static void write(Path file, String text) {
        try {
            Files.writeString(file, text);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private UpstreamTlsContext parseCluster() throws Exception {
        var json = ClusterParserTest.proto(UpstreamTlsParserTest.istioCluster(UpstreamTlsParserTest.ISTIO_MUTUAL));
        return Parsers.withIdentity(new WorkloadIdentity(id), () -> PARSER.parse(json)).tls();
    }

    private String clusterError() throws Exception {
        var json = ClusterParserTest.proto(UpstreamTlsParserTest.istioCluster(UpstreamTlsParserTest.ISTIO_MUTUAL));
        return assertThrows(InvalidResourceException.class,
                () -> Parsers.withIdentity(new WorkloadIdentity(id), () -> PARSER.parse(json))).getMessage();
    }

    @Test
    void aClusterParsedBetweenTheKeysAndTheChainsRenameTakesThePairOnceTheChainIsWritten() throws Exception {
        write(id.resolve("key.pem"), NEW.keyPem()); // the writer's first rename; the chain is still OLD's
        pause(() -> write(id.resolve("cert-chain.pem"), NEW.certificatePem()));
        UpstreamTlsContext tls = parseCluster();
        assertEquals(1, pauses.get());
        assertEquals(NEW.certificatePem(), tls.certificateChain());
        assertEquals(NEW.keyPem(), tls.privateKey());
        assertEquals(CA.certificatePem(), tls.trustedCa());
    }

    @Test
    void aListenerOfAFileCertNameParsedMidRotationTakesThePairOnceItMatches() throws Exception {
        Path cert = id.resolve("cert-chain.pem");
        Path key = id.resolve("key.pem");
        write(key, NEW.keyPem());
        pause(() -> write(cert, NEW.certificatePem()));
        var listener = DownstreamTlsParserTest.listener("""
                {"commonTlsContext": {"tlsCertificateSdsSecretConfigs": [{"name": "file-cert:%s~%s"}]}}"""
                .formatted(cert, key));
        DownstreamTlsContext tls = new ListenerParser().parse(listener).filterChains().get(0).tlsContext();
        assertEquals(1, pauses.get());
        assertEquals(NEW.certificatePem(), tls.certificateChain());
        assertEquals(NEW.keyPem(), tls.privateKey());
    }

    @Test
    void aPairThatStaysMismatchedRejectsTheClusterByNameAndTheNextClusterOfItWaitsNoMore() throws Exception {
        write(id.resolve("key.pem"), NEW.keyPem());
        pause(() -> { });
        String e = clusterError();
        assertTrue(e.contains("outbound|443||api.example.com") && e.contains("common_tls_context.tls_certificates: "
                + "not a usable PEM certificate chain and private key: the private key is not the certificate's"), e);
        assertEquals(CommonTlsParser.REREADS, pauses.get());

        // the same files, unchanged: rejected at once, not after another wait
        assertTrue(clusterError().contains("the private key is not the certificate's"));
        assertEquals(CommonTlsParser.REREADS, pauses.get());

        // once the chain is written, the pair is taken without a pause
        write(id.resolve("cert-chain.pem"), NEW.certificatePem());
        assertEquals(NEW.certificatePem(), parseCluster().certificateChain());
        assertEquals(CommonTlsParser.REREADS, pauses.get());
    }

    @Test
    void aParseOnAnEventLoopDoesNotWaitForThePair() throws Exception {
        write(id.resolve("key.pem"), NEW.keyPem());
        pause(() -> write(id.resolve("cert-chain.pem"), NEW.certificatePem()));
        Vertx vertx = Vertx.vertx();
        try {
            CompletableFuture<String> error = new CompletableFuture<>();
            vertx.runOnContext(v -> {
                try {
                    parseCluster();
                    error.complete("parsed");
                } catch (Exception e) {
                    error.complete(e.getMessage());
                }
            });
            assertTrue(error.get(10, TimeUnit.SECONDS).contains("the private key is not the certificate's"));
            assertEquals(0, pauses.get());
        } finally {
            vertx.close().await(10, TimeUnit.SECONDS);
        }
    }
}
