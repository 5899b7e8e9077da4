package dev.inmesh.runtime.identity;

import static dev.inmesh.runtime.identity.TestIstioCa.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.xds.ads.AdsOptions;
import io.grpc.Status;
import io.vertx.core.Vertx;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.PKCS8EncodedKeySpec;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.bouncycastle.asn1.DERIA5String;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The workload identity directory filled from Istio's CA, as Istio's agent fills OUTPUT_CERTS. */
class IstioCaClientTest {
    static final String SPIFFE = "spiffe://cluster.local/ns/bookinfo/sa/reviews";

    @TempDir
    Path tmp;
    Path dir;
    Path token;
    Vertx vertx;
    TestIstioCa ca;
    IstioCaClient client;

    @BeforeEach
    void setUp() throws Exception {
        vertx = Vertx.vertx();
        dir = tmp.resolve("certs");
        token = tmp.resolve("istio-token");
        Files.writeString(token, "tok-1\n");
    }

    @AfterEach
    void tearDown() throws Exception {
        if (client != null) {
            client.close().await(10, TimeUnit.SECONDS);
        }
        if (ca != null) {
            ca.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    IstioCaOptions plaintext(MeshOptions.IdentityKeyType keyType) {
        return new IstioCaOptions(new AdsOptions.XdsServer("127.0.0.1", ca.port(), false, null, token, true),
                "cluster-7", null, "bookinfo", "reviews", keyType, dir, null, Duration.ofMillis(100),
                Duration.ofMillis(400));
    }

    @Test
    void theDirectoryHoldsTheChainTheKeyAndTheRootSignedForTheSpiffeIdentityOverTlsWithTheBearerToken()
            throws Exception {
        TestCertificates.Issued serverCert = null;
        Path ca0 = tmp.resolve("istiod-ca.pem");
        TestCertificates.Issued istiodCa = TestCertificates.ca("istiod-root");
        serverCert = TestCertificates.issue(istiodCa, "istiod", List.of("localhost"), List.of());
        Files.writeString(ca0, istiodCa.certificatePem());
        Path chain = Files.writeString(tmp.resolve("istiod.pem"), serverCert.certificatePem());
        Path key = Files.writeString(tmp.resolve("istiod-key.pem"), serverCert.keyPem());
        ca = new TestIstioCa("tok-1", chain, key);
        IstioCaOptions options = new IstioCaOptions(AdsOptions.XdsServer.tls("localhost", ca.port(), ca0, token),
                "cluster-7", null, "bookinfo", "reviews", null, dir, null, null, null);
        client = new IstioCaClient(vertx, options);
        client.start().await(20, TimeUnit.SECONDS);

        TestIstioCa.Call call = ca.calls().get(0);
        assertEquals("Bearer tok-1", call.authorization());
        assertEquals("cluster-7", call.clusterId());
        assertEquals(86_400, call.validitySeconds(), "Istio's default SECRET_TTL, 24 h");
        Extension san = TestIstioCa.sanOf(call.csr());
        assertTrue(san.isCritical(), "the only name of a CSR with no subject");
        assertEquals(0, call.csr().getSubject().getRDNs().length);
        assertEquals(List.of(SPIFFE), uris(GeneralNames.getInstance(san.getParsedValue())));

        List<X509Certificate> certs = certificates(Files.readString(dir.resolve("cert-chain.pem")));
        assertEquals(2, certs.size(), "the leaf and the root, as the CA answered them");
        X509Certificate leaf = certs.get(0);
        assertEquals(List.of(List.of(6, SPIFFE)), List.copyOf(leaf.getSubjectAlternativeNames()).stream()
                .map(List::copyOf).toList());
        assertEquals(ca.caPem(), Files.readString(dir.resolve("root-cert.pem")));
        assertEquals(certs.get(1), certificates(ca.caPem()).get(0));
        assertEquals(2048, ((RSAPublicKey) leaf.getPublicKey()).getModulus().bitLength(), "Istio's default key");
        assertKeyMatches(Files.readString(dir.resolve("key.pem")), leaf, "RSA", "SHA256withRSA");
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve("key.pem"))));
        assertEquals("rw-r--r--", PosixFilePermissions.toString(
                Files.getPosixFilePermissions(dir.resolve("cert-chain.pem"))));
        try (var files = Files.list(dir)) {
            assertEquals(List.of("cert-chain.pem", "key.pem", "root-cert.pem"),
                    files.map(p -> p.getFileName().toString()).sorted().toList(), "no temporary file left");
        }
    }

    @Test
    void anEcKeyWhenAskedForAndStartTriesAgainWhileTheCaIsUnavailable() throws Exception {
        ca = new TestIstioCa("tok-1", null, null);
        ca.failures.add(Status.UNAVAILABLE);
        ca.failures.add(Status.UNAVAILABLE.withDescription("no leader"));
        client = new IstioCaClient(vertx, plaintext(MeshOptions.IdentityKeyType.EC));
        client.start().await(20, TimeUnit.SECONDS);

        assertEquals(3, ca.calls().size());
        X509Certificate leaf = certificates(Files.readString(dir.resolve("cert-chain.pem"))).get(0);
        assertEquals("EC", leaf.getPublicKey().getAlgorithm());
        assertKeyMatches(Files.readString(dir.resolve("key.pem")), leaf, "EC", "SHA256withECDSA");
    }

    @Test
    void startFailsClearlyAtOnceWhenTheCaRefusesTheTokenAndWritesNothing() throws Exception {
        ca = new TestIstioCa("another-token", null, null);
        client = new IstioCaClient(vertx, plaintext(null));
        Exception e = assertThrows(Exception.class, () -> client.start().await(20, TimeUnit.SECONDS));
        assertInstanceOf(IllegalStateException.class, e);
        assertTrue(e.getMessage().contains(SPIFFE) && e.getMessage().contains("UNAUTHENTICATED")
                && e.getMessage().contains("authenticate failure"), e.getMessage());
        assertEquals(1, ca.calls().size(), "a refusal is not tried again");
        assertFalse(Files.exists(dir.resolve("key.pem")));
    }

    @Test
    void startFailsAfterFiveTriesWhenTheCaStaysUnavailable() throws Exception {
        ca = new TestIstioCa("tok-1", null, null);
        for (int i = 0; i < 10; i++) {
            ca.failures.add(Status.UNAVAILABLE);
        }
        client = new IstioCaClient(vertx, plaintext(null).withRetry(Duration.ofMillis(10), Duration.ofMillis(40)));
        Exception e = assertThrows(Exception.class, () -> client.start().await(30, TimeUnit.SECONDS));
        assertTrue(e.getMessage().contains("UNAVAILABLE"), e.getMessage());
        assertEquals(5, ca.calls().size());
    }

    @Test
    void closeWhileStartWaitsToTryAgainFailsTheStart() throws Exception {
        ca = new TestIstioCa("tok-1", null, null);
        ca.failures.add(Status.UNAVAILABLE);
        client = new IstioCaClient(vertx, plaintext(null).withRetry(Duration.ofSeconds(60), Duration.ofSeconds(60)));
        var start = client.start();
        assertTrue(await(() -> ca.calls().size() == 1, 10), "the first try was made");
        Thread.sleep(500); // its failure answered: the next try waits a minute
        client.close().await(10, TimeUnit.SECONDS);
        client = null;
        Exception e = assertThrows(Exception.class, () -> start.await(10, TimeUnit.SECONDS));
        assertTrue(String.valueOf(e.getMessage()).contains("closed before the first workload certificate"),
                e.toString());
        assertEquals(1, ca.calls().size());
    }

    @Test
    void closeWhileTheCaAnswersTheFirstRequestFailsTheStartAndWritesNothing() throws Exception {
        ca = new TestIstioCa("tok-1", null, null);
        client = new IstioCaClient(vertx, plaintext(null));
        IstioCaClient closing = client;
        ca.onCall = closing::close;
        Exception e = assertThrows(Exception.class, () -> client.start().await(10, TimeUnit.SECONDS));
        assertTrue(String.valueOf(e.getMessage()).contains("closed before the first workload certificate"),
                e.toString());
        assertEquals(1, ca.calls().size());
        assertFalse(Files.exists(dir.resolve("cert-chain.pem")));
    }

    @Test
    void theCertificateIsRenewedAtHalfItsLifetime() throws Exception {
        ca = new TestIstioCa("tok-1", null, null);
        client = new IstioCaClient(vertx, plaintext(null).withCertTtl(Duration.ofSeconds(2)));
        client.start().await(20, TimeUnit.SECONDS);
        String first = Files.readString(dir.resolve("cert-chain.pem"));
        String firstKey = Files.readString(dir.resolve("key.pem"));

        assertTrue(await(() -> ca.calls().size() >= 3, 20), "renewed twice: " + ca.calls().size());
        List<TestIstioCa.Call> calls = ca.calls();
        assertEquals(2, calls.get(1).validitySeconds());
        long gap = Duration.between(calls.get(0).at(), calls.get(1).at()).toMillis();
        assertTrue(gap >= 500, "renewed at about 1 s of a 2 s certificate, not at once: " + gap + " ms");
        assertTrue(await(() -> !read("cert-chain.pem").equals(first), 10));
        client.close().await(10, TimeUnit.SECONDS); // the files change no more once it completes
        client = null;
        assertNotEquals(firstKey, Files.readString(dir.resolve("key.pem")), "a new key for each certificate");
        X509Certificate leaf = certificates(Files.readString(dir.resolve("cert-chain.pem"))).get(0);
        assertKeyMatches(Files.readString(dir.resolve("key.pem")), leaf, "RSA", "SHA256withRSA");
    }

    @Test
    void closeStopsTheRenewalsAndLeavesTheFiles() throws Exception {
        ca = new TestIstioCa("tok-1", null, null);
        client = new IstioCaClient(vertx, plaintext(null).withCertTtl(Duration.ofSeconds(2)));
        client.start().await(20, TimeUnit.SECONDS);
        client.close().await(10, TimeUnit.SECONDS);
        client = null;
        Thread.sleep(2500); // the renewal was due about 1 s after the start
        assertEquals(1, ca.calls().size());
        assertTrue(Files.exists(dir.resolve("key.pem")));
    }

    @Test
    void aFailedRenewalIsTriedAgainWithGrowingDelaysWhileTheFilesOfTheLastCertificateStay() throws Exception {
        ca = new TestIstioCa("tok-1", null, null);
        client = new IstioCaClient(vertx, plaintext(null).withCertTtl(Duration.ofSeconds(2)));
        client.start().await(20, TimeUnit.SECONDS);
        String first = read("cert-chain.pem");
        String firstKey = read("key.pem");
        List<Boolean> filesKept = new java.util.concurrent.CopyOnWriteArrayList<>();
        ca.failures.add(Status.UNAVAILABLE);
        ca.failures.add(Status.PERMISSION_DENIED.withDescription("not now"));
        ca.failures.add(Status.INTERNAL);
        ca.onCall = () -> filesKept.add(read("cert-chain.pem").equals(first) && read("key.pem").equals(firstKey));

        assertTrue(await(() -> ca.calls().size() >= 5, 20), "three failures, then a renewal: " + ca.calls());
        assertTrue(await(() -> !read("cert-chain.pem").equals(first), 10));
        List<TestIstioCa.Call> calls = ca.calls();
        assertEquals(List.of(true, true, true, true), List.copyOf(filesKept).subList(0, 4),
                "the files while the CA failed");
        assertEquals(List.of(Status.Code.UNAVAILABLE, Status.Code.PERMISSION_DENIED, Status.Code.INTERNAL,
                Status.Code.OK), calls.subList(1, 5).stream().map(c -> c.answered().getCode()).toList());
        List<Long> gaps = new ArrayList<>();
        for (int i = 1; i < 4; i++) {
            gaps.add(Duration.between(calls.get(i).at(), calls.get(i + 1).at()).toMillis());
        }
        // 100, 200, 400 ms, each less up to 10 %
        assertTrue(gaps.get(0) >= 90 && gaps.get(1) >= 180 && gaps.get(2) >= 360, "back-off: " + gaps);
        client.close().await(10, TimeUnit.SECONDS);
        client = null;
        X509Certificate leaf = certificates(read("cert-chain.pem")).get(0);
        assertKeyMatches(read("key.pem"), leaf, "RSA", "SHA256withRSA");
    }

    @Test
    void anAnswerWithoutTheRootIsRefused() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> IstioCaClient.checkChain(List.of("only-a-leaf")));
        assertTrue(e.getMessage().contains("at least two"), e.getMessage());
    }

    @Test
    void theRenewalIsDueWhenHalfTheLifetimeFromItsArrivalIsLeftGiveOrTakeOnePercent() {
        java.time.Instant created = java.time.Instant.parse("2026-01-01T00:00:00Z");
        IstioCaClient.Issued issued = new IstioCaClient.Issued(created, created.plus(Duration.ofHours(24)));
        long hour = Duration.ofHours(1).toMillis();
        assertEquals(12 * hour, IstioCaClient.rotationDelayMillis(issued, created, 0, true));
        assertEquals(12 * hour - (long) (0.01 * 24 * hour), IstioCaClient.rotationDelayMillis(issued, created,
                0.9999999999, true), 5);
        assertEquals(12 * hour + (long) (0.01 * 24 * hour), IstioCaClient.rotationDelayMillis(issued, created,
                0.9999999999, false), 5);
        assertEquals(2 * hour, IstioCaClient.rotationDelayMillis(issued, created.plus(Duration.ofHours(10)), 0,
                false));
        assertEquals(0, IstioCaClient.rotationDelayMillis(issued, created.plus(Duration.ofHours(13)), 0, false));
    }

    private String read(String name) {
        try {
            return Files.readString(dir.resolve(name));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    static List<String> uris(GeneralNames names) {
        List<String> out = new ArrayList<>();
        for (GeneralName n : names.getNames()) {
            assertEquals(GeneralName.uniformResourceIdentifier, n.getTagNo());
            out.add(DERIA5String.getInstance(n.getName()).getString());
        }
        return out;
    }

    static List<X509Certificate> certificates(String pem) throws Exception {
        return CertificateFactory.getInstance("X.509")
                .generateCertificates(new ByteArrayInputStream(pem.getBytes(StandardCharsets.US_ASCII))).stream()
                .map(c -> (X509Certificate) c).toList();
    }

    /** The PKCS#8 PEM key signs what the certificate's public key verifies. */
    static void assertKeyMatches(String keyPem, X509Certificate cert, String algorithm, String signature)
            throws Exception {
        assertTrue(keyPem.startsWith("-----BEGIN PRIVATE KEY-----\n"), keyPem);
        PrivateKey key = KeyFactory.getInstance(algorithm).generatePrivate(new PKCS8EncodedKeySpec(Base64
                .getMimeDecoder().decode(keyPem.replace("-----BEGIN PRIVATE KEY-----", "")
                        .replace("-----END PRIVATE KEY-----", ""))));
        Signature s = Signature.getInstance(signature);
        s.initSign(key);
        s.update(new byte[] {1, 2, 3});
        byte[] sig = s.sign();
        s.initVerify(cert.getPublicKey());
        s.update(new byte[] {1, 2, 3});
        assertTrue(s.verify(sig), "the key is the certificate's");
    }
}
