package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.xds.ads.XdsFixtures;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Server initialization as Envoy's: {@code start()} completes, and the admin's {@code /ready} says {@code LIVE},
 * only once the first configuration's clusters with health checks had their first round. The upstream holds each
 * check's request until the test answers it.
 */
class MeshInitializationTest {
    private Vertx vertx;
    private Mesh mesh;
    private WebClient plain;
    /** The health checks the upstream received and has not answered. */
    private final LinkedBlockingQueue<HttpServerRequest> held = new LinkedBlockingQueue<>();
    private int upstreamPort;

    @TempDir
    Path dir;

    @BeforeEach
    void setUp() throws Exception {
        vertx = Vertx.vertx();
        plain = WebClient.create(vertx);
        HttpServer upstream = vertx.createHttpServer().requestHandler(held::add);
        upstreamPort = upstream.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    @AfterEach
    void tearDown() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** Cluster {@code name} of one host, the upstream, with an HTTP health check whose timeout the test outlasts. */
    private String cluster(String name, boolean checked) {
        return """
                  - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
                    name: %s
                    type: STATIC
                    connect_timeout: 1s
                    load_assignment:
                      cluster_name: %s
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                """.formatted(name, name, upstreamPort) + (checked ? """
                    health_checks:
                    - timeout: 60s
                      interval: 60s
                      unhealthy_threshold: 1
                      healthy_threshold: 1
                      http_health_check: {path: /healthz}
                """ : "");
    }

    /** A mesh of configuration {@code yaml}, its admin server on a free port, started. */
    private Future<Void> start(String yaml) throws Exception {
        Path file = dir.resolve("mesh.yaml");
        Files.writeString(file, yaml);
        mesh = Mesh.create(vertx, new MeshOptions().setConfigFile(file.toString()).setAdminPort(0));
        return mesh.start();
    }

    private int adminPort() {
        return ((DefaultMesh) mesh).adminPort();
    }

    private HttpResponse<Buffer> admin(String path) throws Exception {
        return plain.get(adminPort(), "127.0.0.1", path).send().await(10, TimeUnit.SECONDS);
    }

    @Test
    void aMeshWithoutAConfigurationSourceSaysSoAndItsClientSendsAsAPlainClient() throws Exception {
        java.util.List<String> warnings = new java.util.concurrent.CopyOnWriteArrayList<>();
        java.util.logging.Handler handler = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord r) {
                if (r.getLevel() == java.util.logging.Level.WARNING) {
                    warnings.add(r.getMessage());
                }
            }

            @Override
            public void flush() {}

            @Override
            public void close() {}
        };
        java.util.logging.Logger log = java.util.logging.Logger.getLogger(DefaultMesh.class.getName());
        log.addHandler(handler);
        try {
            mesh = Mesh.create(vertx, new MeshOptions().setAdminPort(0));
            mesh.start().await(10, TimeUnit.SECONDS);
        } finally {
            log.removeHandler(handler);
        }
        assertTrue(warnings.stream().anyMatch(w -> w.startsWith("no mesh configuration: neither inmesh.config.file")),
                warnings.toString());
        HttpServer answering = vertx.createHttpServer().requestHandler(r -> r.response().end("plain"));
        int port = answering.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        assertEquals("plain", mesh.webClient().get(port, "127.0.0.1", "/").send().await(10, TimeUnit.SECONDS)
                .bodyAsString());
    }

    @Test
    void startAndReadyWaitForTheFirstHealthCheckOfTheFirstConfiguration() throws Exception {
        Future<Void> started = start("resources:\n" + cluster("checked", true) + cluster("plain", false));
        HttpServerRequest check = held.poll(10, TimeUnit.SECONDS);
        assertEquals("/healthz", check.path());
        XdsFixtures.await(() -> adminPort() > 0, Duration.ofSeconds(10), "the admin server bound");

        assertFalse(started.isComplete());
        assertFalse(mesh.isReady());
        HttpResponse<Buffer> ready = admin("/ready");
        assertEquals(503, ready.statusCode());
        assertEquals("PRE_INITIALIZING\n", ready.bodyAsString());
        assertEquals(503, admin("/healthz/ready").statusCode());
        assertTrue(admin("/stats?filter=^server.state$").bodyAsString().contains("server.state: 2"));

        check.response().end("ok");
        started.await(10, TimeUnit.SECONDS);
        assertTrue(mesh.isReady());
        ready = admin("/ready");
        assertEquals(200, ready.statusCode());
        assertEquals("LIVE\n", ready.bodyAsString());
    }

    @Test
    void aStaticClusterWithHealthChecksHoldsTheStartToo() throws Exception {
        String yaml = "static_resources:\n  clusters:\n" + cluster("checked", true)
                .replace("  - \"@type\": type.googleapis.com/envoy.config.cluster.v3.Cluster\n    name:", "  - name:");
        Future<Void> started = start(yaml);
        HttpServerRequest check = held.poll(10, TimeUnit.SECONDS);
        XdsFixtures.await(() -> adminPort() > 0, Duration.ofSeconds(10), "the admin server bound");
        assertFalse(started.isComplete());
        assertEquals(503, admin("/ready").statusCode());

        check.response().setStatusCode(503).end(); // a failed first check completes the round too
        started.await(10, TimeUnit.SECONDS);
        assertEquals(200, admin("/ready").statusCode());
    }

    /** The next held check of cluster {@code name} (its :authority, the cluster's name), the others held still. */
    private HttpServerRequest checkOf(String name) throws Exception {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() < end) {
            for (HttpServerRequest r : held) {
                if (name.equals(r.authority().host()) && held.remove(r)) {
                    return r;
                }
            }
            Thread.sleep(20);
        }
        throw new AssertionError("no check of " + name + " within 10 s");
    }

    /**
     * A configuration applied while the first one's clusters initialize is waited for too, as Envoy's init helper
     * waits for a cluster CDS adds, or updates, before it completes: here a new cluster with health checks, and a
     * cluster of the first configuration that gains them.
     */
    @Test
    void aClusterAddedOrGivenChecksBeforeTheStartCompletedHoldsItToo() throws Exception {
        Future<Void> started = start("resources:\n" + cluster("checked", true) + cluster("plain", false));
        HttpServerRequest first = checkOf("checked");
        Files.writeString(dir.resolve("mesh.yaml"), "resources:\n" + cluster("checked", true)
                + cluster("plain", true) + cluster("added", true));
        HttpServerRequest plain = checkOf("plain");
        HttpServerRequest added = checkOf("added");

        first.response().end("ok");
        plain.response().end("ok");
        Thread.sleep(200); // a start completed by the first configuration's checks would have completed
        assertFalse(started.isComplete());
        assertFalse(mesh.isReady());
        assertEquals("PRE_INITIALIZING\n", admin("/ready").bodyAsString());

        added.response().end("ok");
        started.await(10, TimeUnit.SECONDS);
        assertEquals("LIVE\n", admin("/ready").bodyAsString());
    }

    @Test
    void withoutHealthChecksNothingWaits() throws Exception {
        start("resources:\n" + cluster("plain", false)).await(10, TimeUnit.SECONDS);
        assertTrue(mesh.isReady());
        assertEquals("LIVE\n", admin("/ready").bodyAsString());
        assertTrue(held.isEmpty());
    }

    @Test
    void aMeshClosedWhileItsClustersInitializeFailsItsStart() throws Exception {
        Future<Void> started = start("resources:\n" + cluster("checked", true));
        held.poll(10, TimeUnit.SECONDS);
        assertFalse(started.isComplete());
        mesh.close().await(10, TimeUnit.SECONDS); // its checkers stop, which ends the wait
        XdsFixtures.await(started::isComplete, Duration.ofSeconds(10), "the start completed");
        assertTrue(started.failed(), "a closed mesh did not start");
        assertTrue(started.cause().getMessage().contains("closed"), started.cause().getMessage());
        mesh = null;
    }

    @Test
    void aMeshWhoseStartFailedIsNotReadyThoughItsConfigurationWasApplied() throws Exception {
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1,
                java.net.InetAddress.getByName("127.0.0.1"))) {
            Path file = dir.resolve("mesh.yaml");
            Files.writeString(file, "resources:\n" + cluster("plain", false));
            mesh = Mesh.create(vertx, new MeshOptions().setConfigFile(file.toString())
                    .setAdminPort(taken.getLocalPort()));
            Future<Void> started = mesh.start();
            XdsFixtures.await(started::isComplete, Duration.ofSeconds(10), "the start completed");
            assertTrue(started.failed(), "the admin port is taken");
            assertFalse(mesh.isReady(), "its requests fail: a readiness probe answering with it must fail too");
        }
    }

    @Test
    void aClosedMeshIsNotReady() throws Exception {
        start("resources:\n" + cluster("plain", false)).await(10, TimeUnit.SECONDS);
        assertTrue(mesh.isReady());
        mesh.close().await(10, TimeUnit.SECONDS);
        assertFalse(mesh.isReady());
        mesh = null;
    }
}
