package dev.inmesh.runtime.testing;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.mesh.DefaultMesh;
import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a test of the in-JVM mesh starts: a Vert.x, the mesh a test makes from a file in {@code dir}, and, for the
 * inbound side, the application's server behind it; closed after each test, the server first (a subclass's own
 * {@code @AfterEach} runs before this one's).
 */
public abstract class MeshFixture {
    protected Vertx vertx;
    protected Mesh mesh;
    /** The application's server, when a test keeps one here to be closed before the mesh; else null. */
    protected HttpServer inbound;

    @TempDir
    protected Path dir;

    @BeforeEach
    void startVertx() {
        vertx = Vertx.vertx();
    }

    @AfterEach
    void closeMesh() throws Exception {
        if (inbound != null) {
            inbound.close().await(10, TimeUnit.SECONDS);
        }
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /**
     * Starts the mesh from {@code yaml}, written to {@code mesh.yaml} in {@code dir}, with no admin port, each request
     * it records handed to {@code observer}; it is {@link #mesh}, closed after the test.
     */
    protected DefaultMesh startMesh(String yaml, Consumer<StreamInfo> observer) throws Exception {
        Path file = Files.writeString(dir.resolve("mesh.yaml"), yaml);
        DefaultMesh m = (DefaultMesh) Mesh.create(vertx, new MeshOptions().setConfigFile(file.toString())
                .setAdminPort(-1));
        m.addObserver(observer);
        mesh = m;
        m.start().await(10, TimeUnit.SECONDS);
        return m;
    }
}
