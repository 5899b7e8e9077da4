package dev.inmesh.runtime.inbound;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import io.vertx.core.Vertx;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mesh.inbound} picks the {@code virtualInbound} chain by its {@code source_type} as Envoy does: a caller is
 * local ({@code SAME_IP_OR_LOOPBACK}) from 127.0.0.1 or from the server's own address, and external from any other
 * address, 127.0.0.6 (Istio's passthrough source) among them.
 */
class InboundSourceTypeTest {
    private static final String CHAIN = """
                - filter_chain_match: {source_type: %s}
                  filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: inbound_0.0.0.0_9080
                      http_filters:
                      - name: envoy.filters.http.router
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                      route_config:
                        name: %s
                        virtual_hosts:
                        - name: all
                          domains: ["*"]
                          routes:
                          - {match: {prefix: /}, direct_response: {status: 200, body: {inline_string: %s}}}
            """;

    @TempDir
    Path dir;
    Vertx vertx;
    Mesh mesh;
    int port;

    @BeforeEach
    void start() throws Exception {
        vertx = Vertx.vertx();
        Path file = dir.resolve("inbound.yaml");
        Files.writeString(file, """
                static_resources:
                  listeners:
                  - name: virtualInbound
                    address: {socket_address: {address: 0.0.0.0, port_value: 15006}}
                    traffic_direction: INBOUND
                    filter_chains:
                """ + CHAIN.formatted("SAME_IP_OR_LOOPBACK", "local", "local")
                + CHAIN.formatted("EXTERNAL", "external", "external"));
        mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("reviews-v1").setApp("reviews")
                .setNamespace("default").setConfigFile(file.toString()).setAdminPort(-1));
        mesh.start().await(10, TimeUnit.SECONDS);
        port = vertx.createHttpServer().requestHandler(mesh.inbound(req -> req.response().end("service")))
                .listen(0, "127.0.0.1").await(5, TimeUnit.SECONDS).actualPort();
    }

    @AfterEach
    void stop() throws Exception {
        mesh.close().await(10, TimeUnit.SECONDS);
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    private String from(String sourceIp) throws Exception {
        WebClientOptions options = new WebClientOptions();
        options.setLocalAddress(sourceIp);
        WebClient client = WebClient.create(vertx, options);
        try {
            return client.get(port, "127.0.0.1", "/").send().await(5, TimeUnit.SECONDS).bodyAsString();
        } finally {
            client.close();
        }
    }

    @Test
    void aCallerFrom127001IsLocalAndOneFromAnotherLoopbackAddressIsExternal() throws Exception {
        assertEquals("local", from("127.0.0.1"));
        assertEquals("external", from("127.0.0.6"));
    }
}
