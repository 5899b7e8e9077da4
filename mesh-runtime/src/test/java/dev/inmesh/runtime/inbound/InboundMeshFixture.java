package dev.inmesh.runtime.inbound;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

/**
 * A mesh of workload {@code reviews-v1} configured from a file, and the application's server on 127.0.0.1 behind
 * {@code mesh.inbound}, its service answering {@code service}: what the tests of the in-JVM inbound side start.
 */
abstract class InboundMeshFixture {
    /**
     * A {@code virtualInbound} listener's head, at the indentation of a {@code static_resources} {@code listeners}
     * item, to which its {@code filter_chains} items are appended (indented by 4).
     */
    static final String VIRTUAL_INBOUND = """
              - name: virtualInbound
                address: {socket_address: {address: 0.0.0.0, port_value: 15006}}
                traffic_direction: INBOUND
            """;

    @TempDir
    Path dir;
    Vertx vertx;
    Mesh mesh;
    /** The application's server's port, once {@link #serve} started it. */
    int port;

    @BeforeEach
    void startVertx() {
        vertx = Vertx.vertx();
    }

    @AfterEach
    void stopMesh() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /**
     * Starts the mesh from {@code yaml} (closing one a test started before), then the application's server on
     * 127.0.0.1 with {@code mesh.inboundServerOptions}, its requests through {@code mesh.inbound}.
     */
    void serve(String yaml) throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        Path file = dir.resolve("inbound.yaml");
        Files.writeString(file, yaml);
        mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("reviews-v1").setApp("reviews")
                .setNamespace("default").setConfigFile(file.toString()).setAdminPort(-1));
        mesh.start().await(10, TimeUnit.SECONDS);
        started(mesh);
        port = vertx.createHttpServer(mesh.inboundServerOptions(new HttpServerOptions().setPort(0)
                        .setHost("127.0.0.1")))
                .requestHandler(mesh.inbound(req -> req.response().end("service")))
                .listen().await(10, TimeUnit.SECONDS).actualPort();
    }

    /**
     * Sends {@code request} (one byte a char) to the application's server and returns all it answered until it closed
     * the connection.
     */
    String exchange(String request) throws Exception {
        try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write(request.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
            return new String(s.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.ISO_8859_1);
        }
    }

    /** What a test does with the mesh once started, before the server is: nothing by default. */
    void started(Mesh started) {
    }
}
