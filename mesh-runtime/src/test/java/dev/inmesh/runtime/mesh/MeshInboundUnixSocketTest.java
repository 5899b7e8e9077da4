package dev.inmesh.runtime.mesh;

import static dev.inmesh.runtime.mesh.MeshAccessLogTest.lines;
import static dev.inmesh.runtime.mesh.MeshAccessLogTest.textLogger;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.testing.MeshFixture;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.net.SocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@code mesh.inbound} on a server listening on a Unix domain socket: its peer has no IP, so, as Envoy names a Unix
 * socket's peer by the socket's own path, the request is from the socket's path; the connection manager's
 * {@code internal_address_config.unix_sockets} decides whether it is internal. A Lua script's stream info prints
 * the connection's addresses as Envoy does.
 */
class MeshInboundUnixSocketTest extends MeshFixture {
    private HttpClient client;

    @AfterEach
    void closeClient() throws Exception {
        if (client != null) {
            client.close().await(10, TimeUnit.SECONDS);
        }
    }

    /** Starts the mesh with these connection manager fields and an inbound server on a Unix socket; its path. */
    private Path start(String hcmFields, Path log) throws Exception {
        Path file = dir.resolve("config.yaml");
        String fields = hcmFields.replace("\n", "\n          ") + "\n" + textLogger(log, "%DOWNSTREAM_REMOTE_ADDRESS%");
        Files.writeString(file, MeshWebClientTest.virtualInbound(fields.strip(),
                """
                              routes:
                              - {name: all, match: {prefix: /}, route: {cluster: "inbound|9080||", timeout: 0s}}
                """));
        mesh = Mesh.create(vertx, new MeshOptions().setConfigFile(file.toString()).setAdminPort(-1));
        mesh.start().await(10, TimeUnit.SECONDS);
        inbound = vertx.createHttpServer().requestHandler(mesh.inbound(req -> req.response()
                .end("internal=" + req.getHeader("x-envoy-internal") + " xff=" + req.getHeader("x-forwarded-for"))));
        Path socket = dir.resolve("app.sock");
        inbound.listen(SocketAddress.domainSocketAddress(socket.toString())).await(10, TimeUnit.SECONDS);
        client = vertx.createHttpClient();
        return socket;
    }

    private String get(Path socket) throws Exception {
        return client.request(new RequestOptions().setServer(SocketAddress.domainSocketAddress(socket.toString()))
                        .setMethod(HttpMethod.GET).setHost("svc").setPort(80).setURI("/"))
                .compose(r -> r.send().compose(HttpClientResponse::body))
                .await(10, TimeUnit.SECONDS).toString();
    }

    @Test
    void aSidecarsConnectionManagerServesAUnixSocketPeerAndLogsTheSocketsPath() throws Exception {
        Path log = dir.resolve("access.log");
        Path socket = start("", log);
        assertEquals("internal=null xff=null", get(socket));
        assertEquals(List.of(socket.toString()), lines(log, 1));
    }

    @Test
    void anEdgeConnectionManagerTakesAUnixSocketPeerForInternalOnlyWhenToldTo() throws Exception {
        Path log = dir.resolve("access.log");
        Path socket = start("use_remote_address: true\ninternal_address_config: {unix_sockets: true}\n", log);
        // no IP to append to x-forwarded-for, and internal as the configuration says
        assertEquals("internal=true xff=null", get(socket));
        assertEquals(List.of(socket.toString()), lines(log, 1));
    }

    @Test
    void aLuaScriptReadsTheConnectionsAddressesAsEnvoyPrintsThem() throws Exception {
        Path file = dir.resolve("lua.yaml");
        Files.writeString(file, """
                static_resources:
                  listeners:
                  - name: virtualInbound
                    address: {socket_address: {address: 0.0.0.0, port_value: 15006}}
                    traffic_direction: INBOUND
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.http_connection_manager
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                          stat_prefix: inbound_0.0.0.0_9080
                          http_filters:
                          - name: envoy.filters.http.lua
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
                              default_source_code:
                                inline_string: |
                                  function envoy_on_request(h)
                                    local si = h:streamInfo()
                                    h:headers():add("x-info", si:downstreamLocalAddress() .. "|"
                                      .. si:downstreamDirectRemoteAddress())
                                  end
                          - name: envoy.filters.http.router
                            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                          route_config:
                            name: inbound|9080||
                            validate_clusters: false
                            virtual_hosts:
                            - name: all
                              domains: ["*"]
                              routes:
                              - {match: {prefix: /}, route: {cluster: "inbound|9080||", timeout: 0s}}
                """);
        mesh = Mesh.create(vertx, new MeshOptions().setConfigFile(file.toString()).setAdminPort(-1));
        mesh.start().await(10, TimeUnit.SECONDS);
        inbound = vertx.createHttpServer().requestHandler(mesh.inbound(req -> req.response()
                .end(req.getHeader("x-info"))));
        Path socket = dir.resolve("app.sock");
        inbound.listen(SocketAddress.domainSocketAddress(socket.toString())).await(10, TimeUnit.SECONDS);
        client = vertx.createHttpClient();
        assertEquals(socket + "|" + socket, get(socket), "a Unix socket's path for both ends");
        HttpServer v6 = vertx.createHttpServer().requestHandler(mesh.inbound(req -> req.response()
                .end(req.getHeader("x-info"))));
        int port = v6.listen(0, "::1").await(10, TimeUnit.SECONDS).actualPort();
        try {
            String info = client.request(HttpMethod.GET, port, "::1", "/")
                    .compose(r -> r.send().compose(HttpClientResponse::body)).await(10, TimeUnit.SECONDS).toString();
            assertTrue(info.matches("\\[::1]:" + port + "\\|\\[::1]:[0-9]+"), "IPv6 in brackets: " + info);
        } finally {
            v6.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void anEdgeConnectionManagerTakesAUnixSocketPeerForExternalByDefault() throws Exception {
        Path log = dir.resolve("access.log");
        Path socket = start("use_remote_address: true\n", log);
        assertEquals("internal=null xff=null", get(socket));
    }
}
