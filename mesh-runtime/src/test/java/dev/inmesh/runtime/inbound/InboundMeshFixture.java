package dev.inmesh.runtime.inbound;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.testing.MeshFixture;
import io.vertx.core.http.HttpServerOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * A mesh of workload {@code reviews-v1} configured from a file, and the application's server on 127.0.0.1 behind
 * {@code mesh.inbound}, its service answering {@code service}: what the tests of the in-JVM inbound side start (the
 * Vert.x, the mesh and their closing are {@link MeshFixture}'s).
 */
abstract class InboundMeshFixture extends MeshFixture {
    /**
     * A {@code virtualInbound} listener's head, at the indentation of a {@code static_resources} {@code listeners}
     * item, to which its {@code filter_chains} items are appended (indented by 4).
     */
    static final String VIRTUAL_INBOUND = """
              - name: virtualInbound
                address: {socket_address: {address: 0.0.0.0, port_value: 15006}}
                traffic_direction: INBOUND
            """;

    /** The application's server's port, once {@link #serve} started it. */
    int port;

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

    /**
     * Pushes {@code yaml} to the running mesh, as its configuration file changing does, and waits until it is
     * applied.
     */
    void push(String yaml) throws Exception {
        var snapshots = ((dev.inmesh.runtime.mesh.DefaultMesh) mesh).snapshots();
        var before = snapshots.current();
        Files.writeString(dir.resolve("inbound.yaml"), yaml);
        for (int i = 0; i < 500 && snapshots.current() == before; i++) {
            Thread.sleep(20);
        }
        if (snapshots.current() == before) {
            throw new AssertionError("the change is not applied");
        }
    }

    /** A connection to the application's server from {@code source}. */
    java.net.Socket connect(String source) throws Exception {
        java.net.Socket s = new java.net.Socket();
        s.bind(new java.net.InetSocketAddress(java.net.InetAddress.getByName(source), 0));
        s.connect(new java.net.InetSocketAddress("127.0.0.1", port), 5000);
        s.setSoTimeout(10_000);
        return s;
    }

    /**
     * Sends an HTTP/1.1 {@code request} on {@code s}, and reads its answer, whose body is a content-length's: its head
     * and body, or what came before the connection closed.
     */
    static String request(java.net.Socket s, String request) throws Exception {
        s.getOutputStream().write(request.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        java.io.InputStream in = s.getInputStream();
        StringBuilder head = new StringBuilder();
        while (!head.toString().endsWith("\r\n\r\n")) {
            int c = in.read();
            if (c < 0) {
                return head.toString();
            }
            head.append((char) c);
        }
        java.util.regex.Matcher length = java.util.regex.Pattern.compile("(?i)content-length: *(\\d+)")
                .matcher(head);
        byte[] body = in.readNBytes(length.find() ? Integer.parseInt(length.group(1)) : 0);
        return head + new String(body, java.nio.charset.StandardCharsets.US_ASCII);
    }

    /** What a test does with the mesh once started, before the server is: nothing by default. */
    void started(Mesh started) {
    }
}
