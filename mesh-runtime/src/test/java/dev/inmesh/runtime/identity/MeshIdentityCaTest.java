package dev.inmesh.runtime.identity;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import io.vertx.core.Vertx;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A mesh whose settings enable the CA client starts once the identity directory is filled. */
class MeshIdentityCaTest {
    @TempDir
    Path tmp;
    Vertx vertx = Vertx.vertx();
    TestIstioCa ca;
    Mesh mesh;

    @AfterEach
    void tearDown() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        if (ca != null) {
            ca.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    @Test
    void startCompletesWithTheIdentityDirectoryFilled() throws Exception {
        ca = new TestIstioCa(null, null, null);
        Path dir = tmp.resolve("certs");
        mesh = Mesh.create(vertx, new MeshOptions().setAdminPort(-1).setNamespace("bookinfo")
                .setClusterId("east").setIdentityDir(dir.toString()).setIdentityCaEnabled(true)
                .setIdentityCaAddress("127.0.0.1:" + ca.port()).setIdentityServiceAccount("productpage"));
        mesh.start().await(20, TimeUnit.SECONDS);

        X509Certificate leaf = IstioCaClientTest.certificates(Files.readString(dir.resolve("cert-chain.pem")))
                .get(0);
        assertEquals(List.of(List.of(6, "spiffe://cluster.local/ns/bookinfo/sa/productpage")),
                leaf.getSubjectAlternativeNames().stream().map(List::copyOf).toList());
        assertTrue(Files.exists(dir.resolve("key.pem")) && Files.exists(dir.resolve("root-cert.pem")));
        assertEquals("east", ca.calls().get(0).clusterId());
        assertEquals(null, ca.calls().get(0).authorization(), "no token file, no bearer");
    }

    @Test
    void startFailsWhenTheCaRefusesAndWhenTheSettingsAreIncomplete() throws Exception {
        ca = new TestIstioCa("tok-1", null, null);
        Path token = Files.writeString(tmp.resolve("token"), "wrong");
        // a token is sent over TLS only: a plaintext CA here sees none, which this CA refuses
        mesh = Mesh.create(vertx, new MeshOptions().setAdminPort(-1).setXdsTokenFile(token.toString())
                .setIdentityDir(tmp.resolve("certs").toString()).setIdentityCaEnabled(true)
                .setIdentityCaAddress("127.0.0.1:" + ca.port()));
        Exception e = assertThrows(Exception.class, () -> mesh.start().await(20, TimeUnit.SECONDS));
        assertTrue(e.getMessage().contains("UNAUTHENTICATED"), e.getMessage());
        assertFalse(Files.exists(tmp.resolve("certs").resolve("key.pem")));
        mesh.close().await(10, TimeUnit.SECONDS);

        mesh = Mesh.create(vertx, new MeshOptions().setAdminPort(-1).setIdentityCaEnabled(true)
                .setIdentityDir(tmp.resolve("certs").toString()).setXdsAddress("127.0.0.1:15010"));
        Exception settings = assertThrows(Exception.class, () -> mesh.start().await(20, TimeUnit.SECONDS));
        assertTrue(settings.getMessage().startsWith("inmesh.identity.ca.address: none"), settings.getMessage());
    }
}
