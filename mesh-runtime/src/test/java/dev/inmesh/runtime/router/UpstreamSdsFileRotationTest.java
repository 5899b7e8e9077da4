package dev.inmesh.runtime.router;

import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.hosts;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.cluster.UpstreamTlsContext;
import dev.inmesh.api.config.core.SdsFiles;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.upstream.TestCertificates.Issued;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A cluster's client certificate and trusted CAs from Istio's file SDS names ({@code file-cert:CERT~KEY},
 * {@code file-root:CA}) follow their files, as Istio's agent serves a rotated file to Envoy again: a new connection
 * presents the new client certificate and checks the server against the new CAs, without a new cluster version; a
 * rotated file that is not a usable PEM keeps the last good one.
 */
@Timeout(60)
class UpstreamSdsFileRotationTest {
    private static final Issued CA = TestCertificates.ca("test-ca");
    private static final Issued OTHER_CA = TestCertificates.ca("other-ca");
    private static final Issued SERVER = TestCertificates.issue(CA, "api.example.com", List.of("api.example.com"),
            List.of());
    private static final Issued FIRST = TestCertificates.issue(CA, "first", List.of("first.example.com"), List.of());
    private static final Issued SECOND = TestCertificates.issue(CA, "second-client", List.of("second.example.com"),
            List.of());

    private final RouterRig rig = new RouterRig();

    @TempDir
    Path dir;

    @AfterEach
    void close() {
        rig.close();
    }

    /** A TLS server asking for a client certificate of CA, answering with its subject. */
    private int server() throws Exception {
        return rig.vertx.createHttpServer(TestCertificates.requiringClientCertificate(SERVER, CA))
                .requestHandler(TestCertificates::answerClientSubject)
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    /**
     * A cluster to the server whose TLS is as the parser makes it from file-cert:CERT~KEY and file-root:CA, the files
     * holding FIRST's certificate and key and {@code trusted}'s certificate.
     */
    private ClusterManager cluster(Issued trusted) throws Exception {
        Path cert = write("cert-chain.pem", FIRST.certificatePem());
        Path key = write("key.pem", FIRST.keyPem());
        Path ca = write("root-cert.pem", trusted.certificatePem());
        int port = server();
        UpstreamTlsContext tls = new UpstreamTlsContext("", Files.readString(cert), Files.readString(key),
                Files.readString(ca), false, List.of(), List.of(), null, null, false, false,
                new SdsFiles(cert.toString(), key.toString(), ca.toString()));
        return rig.clusters(Cluster.builder("c", DiscoveryType.STATIC).lbPolicy(LbPolicy.ROUND_ROBIN)
                .connectTimeout(Duration.ofSeconds(2)).loadAssignment(hosts("c", port)).tls(tls).build());
    }

    private Path write(String name, String text) throws Exception {
        return Files.writeString(dir.resolve(name), text);
    }

    private String call(ClusterManager clusters) {
        var r = rig.call(rig.router(), get("/"), routeToC(""), clusters);
        return r.status() + " " + r.body();
    }

    /** Calls until the answer passes {@code done} (the watcher looks every second), at most 10 s. */
    private String callUntil(ClusterManager clusters, Predicate<String> done) throws Exception {
        String last = null;
        for (int i = 0; i < 100; i++) {
            last = call(clusters);
            if (done.test(last)) {
                return last;
            }
            Thread.sleep(100);
        }
        return last;
    }

    @Test
    void aRotatedClientCertificateIsPresentedOnTheNextConnectionAndABrokenOneKeepsTheLastGood() throws Exception {
        ClusterManager clusters = cluster(CA);
        Path cert = dir.resolve("cert-chain.pem");
        Path key = dir.resolve("key.pem");
        assertEquals("200 client=CN=first", call(clusters));

        // the key first, then its certificate: a pair that does not match is not taken meanwhile
        Files.writeString(key, SECOND.keyPem());
        Thread.sleep(2500);
        assertEquals("200 client=CN=first", call(clusters));
        Files.writeString(cert, SECOND.certificatePem());
        assertEquals("200 client=CN=second-client", callUntil(clusters, s -> s.contains("second")));

        Files.writeString(cert, "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n");
        Thread.sleep(2500); // more than two looks
        assertEquals("200 client=CN=second-client", call(clusters));
    }

    @Test
    void aRotatedCaFileChecksTheServerOfTheNextConnection() throws Exception {
        ClusterManager clusters = cluster(OTHER_CA);
        // the server's chain does not lead to the CA file's: a connect failure
        assertEquals(503, rig.call(rig.router(), get("/"), routeToC(""), clusters).status());

        Files.writeString(dir.resolve("root-cert.pem"), CA.certificatePem());
        assertEquals("200 client=CN=first", callUntil(clusters, s -> s.startsWith("200")));
    }
}
