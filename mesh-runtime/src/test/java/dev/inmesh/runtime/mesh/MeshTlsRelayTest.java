package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.testing.MeshFixture;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.net.SelfSignedCertificate;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * An {@code https://} request through the mesh's client to a destination whose listener relays TLS with
 * {@code tcp_proxy} (Istio's chains for a TLS or HTTPS port, matched by SNI, and its TCP listeners on a service IP):
 * the caller's own TLS goes to a host of the chain's cluster, as Envoy relays TLS it does not terminate, with the
 * request's host as SNI; with no host to relay to, the connection is closed with no answer, as Envoy's
 * {@code tcp_proxy} closes it.
 */
class MeshTlsRelayTest extends MeshFixture {
    private final List<StreamInfo> recorded = new CopyOnWriteArrayList<>();
    private int tlsPort;

    @BeforeEach
    void setUp() throws Exception {
        SelfSignedCertificate cert = SelfSignedCertificate.create("api.mesh.invalid");
        HttpServer server = vertx.createHttpServer(new HttpServerOptions().setSsl(true).setSni(true)
                .setKeyCertOptions(cert.keyCertOptions())).requestHandler(req -> req.response()
                .end("tls sni=" + req.connection().indicatedServerName() + " " + req.uri()))
                .webSocketHandler(ws -> ws.textMessageHandler(m -> ws.writeTextMessage("wss sni="
                        + ((javax.net.ssl.ExtendedSSLSession) ws.sslSession()).getRequestedServerNames().stream()
                                .map(n -> ((javax.net.ssl.SNIHostName) n).getAsciiName()).toList()
                        + " host=" + ws.headers().get("host") + " origin=" + ws.headers().get("origin") + " "
                        + ws.uri() + " " + m)));
        tlsPort = server.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        startMesh("static_resources:\n  listeners:\n"
                + tcpListener("0.0.0.0", 8443, "server_names: [api.mesh.invalid]", "outbound|8443||api.mesh.invalid")
                + tcpListener("127.0.0.2", 9443, "", "outbound|9443||kube")
                + tcpListener("127.0.0.3", 9443, "", "outbound|9443||empty")
                + tcpListener("0.0.0.0", tlsPort, "server_names: [localhost]", "outbound|443||headless")
                + "  clusters:\n" + cluster("outbound|8443||api.mesh.invalid", tlsPort)
                + "  - {name: \"outbound|443||headless\", type: ORIGINAL_DST, lb_policy: CLUSTER_PROVIDED, "
                + "connect_timeout: 1s}\n"
                + cluster("outbound|9443||kube", tlsPort) + cluster("outbound|9443||empty", -1), recorded::add);
    }


    /** A listener on {@code ip:port} whose TLS chain (with {@code match} added) relays to {@code cluster}. */
    static String tcpListener(String ip, int port, String match, String cluster) {
        return """
                  - name: %s_%d
                    address: {socket_address: {address: %s, port_value: %d}}
                    filter_chains:
                    - filter_chain_match: {transport_protocol: tls%s}
                      filters:
                      - name: envoy.filters.network.tcp_proxy
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                          stat_prefix: %s
                          cluster: "%s"
                """.formatted(ip, port, ip, port, match.isEmpty() ? "" : ", " + match, cluster, cluster);
    }

    /** A STATIC cluster with one host on 127.0.0.1:{@code port}, or none when the port is negative. */
    static String cluster(String name, int port) {
        String hosts = port < 0 ? "[]" : "[{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, "
                + "port_value: " + port + "}}}}]}]";
        return """
                  - name: "%s"
                    type: STATIC
                    connect_timeout: 1s
                    load_assignment: {cluster_name: "%s", endpoints: %s}
                """.formatted(name, name, hosts);
    }

    private WebClient client() {
        return mesh.webClient(new WebClientOptions().setTrustAll(true).setVerifyHost(false));
    }

    @Test
    void tlsToAHostNameMatchedBySniGoesToTheChainsClusterWithThatNameAsSni() throws Exception {
        HttpResponse<Buffer> r = client().getAbs("https://api.mesh.invalid:8443/repos?page=2").send()
                .await(10, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode(), r.bodyAsString());
        assertEquals("tls sni=api.mesh.invalid /repos?page=2", r.bodyAsString());
    }

    @Test
    void tlsToAServiceIpWithATcpListenerGoesToItsClustersHost() throws Exception {
        HttpResponse<Buffer> r = client().getAbs("https://127.0.0.2:9443/api").send().await(10, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode(), r.bodyAsString());
        assertEquals("tls sni=null /api", r.bodyAsString());
    }

    @Test
    void tlsToAHostNameWhoseChainRelaysToAnOriginalDstClusterGoesToTheNamedAddress() throws Exception {
        // Istio's chain for a headless service's TLS port: the caller's own destination, here a name to resolve
        HttpResponse<Buffer> r = client().getAbs("https://localhost:" + tlsPort + "/pods").send()
                .await(10, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode(), r.bodyAsString());
        // the chain matched the name; the JDK itself sends no SNI for a name without a dot
        assertEquals("tls sni=null /pods", r.bodyAsString());
    }

    /** A {@code wss://} WebSocket from the mesh's WebSocket client: the caller's TLS relayed as an https request's. */
    @Test
    void aWebSocketsOwnTlsToAHostNameMatchedBySniGoesToTheChainsCluster() throws Exception {
        io.vertx.core.http.WebSocketClient client = mesh.webSocketClient(new io.vertx.core.http.WebSocketClientOptions()
                .setTrustAll(true).setVerifyHost(false));
        io.vertx.core.http.WebSocket ws = client.connect(new io.vertx.core.http.WebSocketConnectOptions()
                .setSsl(true).setHost("api.mesh.invalid").setPort(8443).setURI("/stream"))
                .await(10, TimeUnit.SECONDS);
        io.vertx.core.Promise<String> said = io.vertx.core.Promise.promise();
        ws.textMessageHandler(said::tryComplete);
        ws.writeTextMessage("hi");
        // the origin a plain client derives from the host it named, not from the address the mesh relays to
        assertEquals("wss sni=[api.mesh.invalid] host=api.mesh.invalid:8443 origin=https://api.mesh.invalid:8443 "
                + "/stream hi",
                said.future().await(10, TimeUnit.SECONDS));
        // with no host to relay to, the tcp_proxy closes the connection (tcp_proxy.cc, Filter::onInitFailure): no
        // HTTP answer, the handshake fails as a plain client's whose connection closes under it
        io.vertx.core.net.NetServer closing = vertx.createNetServer()
                .connectHandler(so -> so.handler(head -> so.close()));
        int closingPort = closing.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        Throwable plain = org.junit.jupiter.api.Assertions.assertThrows(Throwable.class, () -> vertx
                .createWebSocketClient().connect(closingPort, "127.0.0.1", "/stream").await(10, TimeUnit.SECONDS));
        Throwable e = org.junit.jupiter.api.Assertions.assertThrows(Throwable.class, () -> client.connect(
                new io.vertx.core.http.WebSocketConnectOptions().setSsl(true).setHost("127.0.0.3").setPort(9443)
                        .setURI("/stream")).await(10, TimeUnit.SECONDS));
        assertEquals(plain.getClass(), e.getClass(), String.valueOf(e));
        StreamInfo info = recorded.get(recorded.size() - 1);
        assertEquals(0, info.responseCode(), info.toString());
        assertEquals(java.util.Set.of(ResponseFlag.NO_HEALTHY_UPSTREAM), info.responseFlags());
        assertEquals("outbound|9443||empty", info.upstreamCluster());
    }

    @Test
    void tlsWithNoHostToRelayToHasItsConnectionClosedAsATcpProxyClosesIt() throws Exception {
        // a tcp_proxy answers no HTTP: with no host, it closes the connection (tcp_proxy.cc, Filter::onInitFailure)
        Throwable t = org.junit.jupiter.api.Assertions.assertThrows(Throwable.class,
                () -> client().getAbs("https://127.0.0.3:9443/api").send().await(10, TimeUnit.SECONDS));
        org.junit.jupiter.api.Assertions.assertInstanceOf(io.vertx.core.http.HttpClosedException.class, t);
        StreamInfo info = recorded.get(recorded.size() - 1);
        assertEquals(java.util.Set.of(ResponseFlag.NO_HEALTHY_UPSTREAM), info.responseFlags());
        assertEquals("outbound|9443||empty", info.upstreamCluster());
    }
}
