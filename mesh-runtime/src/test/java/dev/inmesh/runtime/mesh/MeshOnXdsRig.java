package dev.inmesh.runtime.mesh;

import dev.inmesh.api.Mesh;
import dev.inmesh.runtime.xds.ads.XdsTestServer;
import io.vertx.core.Vertx;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;

/**
 * What a test of a mesh on a control plane starts with: Vert.x and a java-control-plane server on loopback; the mesh
 * a test makes goes in {@link #mesh} and is closed after it.
 */
abstract class MeshOnXdsRig {
    Vertx vertx;
    XdsTestServer server;
    Mesh mesh;

    @BeforeEach
    void startRig() throws Exception {
        vertx = Vertx.vertx();
        server = XdsTestServer.start();
    }

    @AfterEach
    void stopRig() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        server.close();
        vertx.close().await(10, TimeUnit.SECONDS);
    }
}
