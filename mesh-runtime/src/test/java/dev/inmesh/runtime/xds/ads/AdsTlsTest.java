package dev.inmesh.runtime.xds.ads;

import static dev.inmesh.runtime.xds.ads.XdsFixtures.await;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.clusterFor;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.listener;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.route;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.snapshot.SnapshotHolder;
import io.envoyproxy.controlplane.cache.v3.Snapshot;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.net.SelfSignedCertificate;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** TLS to the xDS server (istiod's 15012) with a CA file and a service account token as bearer. */
class AdsTlsTest {
    static final Duration WAIT = Duration.ofSeconds(10);

    @TempDir
    Path dir;
    Vertx vertx;
    SelfSignedCertificate cert;
    XdsTestServer server;
    AdsClient client;

    @BeforeEach
    void setUp() throws Exception {
        vertx = Vertx.vertx();
        cert = SelfSignedCertificate.create("localhost");
    }

    @AfterEach
    void tearDown() throws Exception {
        if (client != null) {
            client.close().await(10, TimeUnit.SECONDS);
        }
        if (server != null) {
            server.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
        cert.delete();
    }

    static Snapshot config(String version, String cluster) {
        return Snapshot.create(List.of(), version, List.of(), version,
                List.of(listener("0.0.0.0_9080", 9080, "9080")), version, List.of(route("9080", cluster)), version,
                List.of(), version);
    }

    AdsOptions options(int port, Path token) {
        return AdsOptions.of(NodeOptions.of("p", "default", "10.0.0.1"),
                AdsOptions.XdsServer.tls("localhost", port, Path.of(cert.certificatePath()), token))
                .withBackoff(Duration.ofMillis(50), Duration.ofMillis(200));
    }

    @Test
    void theClientTrustsTheServerThroughItsCaFileAndSendsTheTokenAsBearer() throws Exception {
        Path token = dir.resolve("token");
        Files.writeString(token, "tok-1\n");
        server = XdsTestServer.startTls(Path.of(cert.certificatePath()), Path.of(cert.privateKeyPath()));
        server.set(config("1", "c1"));
        SnapshotHolder holder = new SnapshotHolder();
        client = new AdsClient(vertx, options(server.port(), token), holder);
        Future<Void> first = client.start();
        first.await(WAIT.toSeconds(), TimeUnit.SECONDS);
        assertTrue(first.succeeded(), () -> String.valueOf(first.cause()));
        assertEquals("c1", clusterFor(holder.current(), "9080", "/"));
        assertEquals("Bearer tok-1", server.authorizations.get(0));

        // the token is read again on reconnect (Kubernetes rotates it)
        int port = server.port();
        Files.writeString(token, "tok-2\n");
        server.close();
        server = null;
        await(() -> !client.status().connected(), WAIT, "disconnected");
        XdsTestServer restarted = XdsTestServer.startTls(port, Path.of(cert.certificatePath()),
                Path.of(cert.privateKeyPath()));
        server = restarted;
        restarted.set(config("2", "c2"));
        await(() -> "c2".equals(clusterFor(holder.current(), "9080", "/")), WAIT, "resynced over TLS");
        assertEquals("Bearer tok-2", restarted.authorizations.get(0));
    }

    @Test
    void aServerWhoseCertificateTheCaDoesNotSignIsNotTrusted() throws Exception {
        SelfSignedCertificate other = SelfSignedCertificate.create("localhost");
        try {
            server = XdsTestServer.startTls(Path.of(other.certificatePath()), Path.of(other.privateKeyPath()));
            server.set(config("1", "c1"));
            SnapshotHolder holder = new SnapshotHolder();
            client = new AdsClient(vertx, options(server.port(), null), holder);
            client.start();
            await(() -> !client.status().lastError().isEmpty(), WAIT, "a TLS failure");
            assertFalse(holder.ready());
            assertTrue(server.responses.isEmpty());
        } finally {
            other.delete();
        }
    }
}
