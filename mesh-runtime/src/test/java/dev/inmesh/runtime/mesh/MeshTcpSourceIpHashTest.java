package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.net.SelfSignedCertificate;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A {@code tcp_proxy} chain's {@code hash_policy} {@code source_ip} (istiod's for a DestinationRule's
 * {@code consistentHash.useSourceIp} on a TCP port) in front of a RING_HASH cluster: the mesh client's requests, plain
 * or over its own TLS, all go to one host, as every connection of one pod does through its sidecar; without it they
 * spread over the hosts.
 */
class MeshTcpSourceIpHashTest {
    private static final int REQUESTS = 30;
    private Vertx vertx;
    private Mesh mesh;
    @TempDir
    Path dir;

    @AfterEach
    void tearDown() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /**
     * Three servers (plain, or TLS) answering their own name, a listener on 127.0.0.1:{@code port} relaying with
     * {@code tcp_proxy} (with {@code hash} added) to a RING_HASH cluster of them, and a mesh on that.
     */
    private void start(int port, boolean tls, String hash) throws Exception {
        vertx = Vertx.vertx();
        SelfSignedCertificate cert = SelfSignedCertificate.create("db.mesh.invalid");
        StringBuilder hosts = new StringBuilder();
        for (int i = 0; i < 3; i++) {
            String name = "host" + i;
            HttpServerOptions options = tls ? new HttpServerOptions().setSsl(true)
                    .setKeyCertOptions(cert.keyCertOptions()) : new HttpServerOptions();
            int p = vertx.createHttpServer(options).requestHandler(req -> req.response().end(name))
                    .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
            hosts.append("      - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ")
                    .append(p).append("}}}\n");
        }
        Path file = dir.resolve("mesh.yaml");
        Files.writeString(file, """
                static_resources:
                  listeners:
                  - name: db
                    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.tcp_proxy
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                          stat_prefix: db
                          cluster: db
                %s
                  clusters:
                  - name: db
                    type: STATIC
                    connect_timeout: 1s
                    lb_policy: RING_HASH
                    load_assignment:
                      cluster_name: db
                      endpoints:
                      - lb_endpoints:
                """.formatted(port, hash) + hosts.toString().indent(4));
        DefaultMesh m = (DefaultMesh) Mesh.create(vertx, new MeshOptions().setConfigFile(file.toString())
                .setAdminPort(-1));
        m.start().await(10, TimeUnit.SECONDS);
        mesh = m;
    }

    private static final String SOURCE_IP = "          hash_policy: [{source_ip: {}}]";

    /** The names of the hosts that answered {@link #REQUESTS} requests to {@code url}. */
    private Set<String> answered(String url) throws Exception {
        WebClient client = mesh.webClient(new WebClientOptions().setTrustAll(true).setVerifyHost(false));
        Set<String> names = new HashSet<>();
        for (int i = 0; i < REQUESTS; i++) {
            var r = client.getAbs(url).send().await(10, TimeUnit.SECONDS);
            assertEquals(200, r.statusCode(), r.bodyAsString());
            names.add(r.bodyAsString());
        }
        return names;
    }

    @Test
    void plainRequestsThroughATcpChainHashingTheSourceIpAllGoToOneHost() throws Exception {
        int port = 19761;
        start(port, false, SOURCE_IP);
        assertEquals(1, answered("http://127.0.0.1:" + port + "/").size());
    }

    @Test
    void relayedTlsThroughATcpChainHashingTheSourceIpAllGoesToOneHost() throws Exception {
        int port = 19762;
        start(port, true, SOURCE_IP);
        assertEquals(1, answered("https://127.0.0.1:" + port + "/").size());
    }

    @Test
    void withoutTheHashPolicyTheRingSpreadsTheRequests() throws Exception {
        // a request without a hash takes a random place on the ring: 30 on one of three hosts by chance is 3^-29
        int port = 19763;
        start(port, false, "");
        assertTrue(answered("http://127.0.0.1:" + port + "/").size() > 1);
    }
}
