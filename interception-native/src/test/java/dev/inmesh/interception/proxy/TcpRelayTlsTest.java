package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.WebSocketClient;
import io.vertx.core.http.WebSocketConnectOptions;
import io.vertx.core.net.NetServer;
import io.vertx.core.net.NetServerOptions;
import io.vertx.core.net.SelfSignedCertificate;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * tcp_proxy to a cluster with a TLS transport socket, as Envoy's: the client's plain bytes go to the upstream over
 * TLS, with the cluster's SNI, verified against its trusted CA; an upstream the CA does not vouch for gets nothing. A
 * WebSocket relay to a cluster with {@code auto_sni} and {@code auto_san_validation} connects as Envoy's router does
 * for an upgrade: the request's host (without its port) is the SNI, and the certificate must have a SAN naming it.
 * A host whose {@code transport_socket_matches} entry is TLS is relayed over TLS too.
 */
@Timeout(30)
class TcpRelayTlsTest {
    private final Vertx vertx = Vertx.vertx();
    private final SelfSignedCertificate serverCert = SelfSignedCertificate.create("upstream.example.com");
    private final SelfSignedCertificate otherCert = SelfSignedCertificate.create("other.example.com");
    private NetServer upstream;
    private LoopbackProxy proxy;

    @BeforeEach
    void start() throws Exception {
        upstream = vertx.createNetServer(new NetServerOptions().setSsl(true).setSni(true)
                .setKeyCertOptions(serverCert.keyCertOptions()))
                .connectHandler(so -> so.handler(data -> so.write(Buffer.buffer("sni="
                        + so.indicatedServerName() + " " + data).toString()).onComplete(v -> so.close())));
        upstream.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
    }

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
        serverCert.delete();
        otherCert.delete();
    }

    private final io.micrometer.prometheusmetrics.PrometheusMeterRegistry reg =
            new io.micrometer.prometheusmetrics.PrometheusMeterRegistry(
                    io.micrometer.prometheusmetrics.PrometheusConfig.DEFAULT);
    private final dev.inmesh.runtime.stats.MeshMetrics metrics = dev.inmesh.runtime.stats.MeshMetrics.create(reg,
            dev.inmesh.runtime.stats.WorkloadInfo.UNKNOWN);

    /** The access log lines of the relayed connections. */
    private final java.util.List<String> tcpLines = new java.util.concurrent.CopyOnWriteArrayList<>();
    private final java.util.List<dev.inmesh.runtime.stats.TcpStreamInfo> tcpInfos =
            new java.util.concurrent.CopyOnWriteArrayList<>();

    /** A TLS transport socket with the upstream's SNI, verified against {@code trustedCaFile}, as YAML lines. */
    private static String tlsSocket(String trustedCaFile, int indent) {
        return tlsSocket(trustedCaFile, "", indent);
    }

    /** The same, with {@code certificates} the common_tls_context's {@code tls_certificates} (empty: none). */
    private static String tlsSocket(String trustedCaFile, String certificates, int indent) {
        return """
                transport_socket:
                  name: envoy.transport_sockets.tls
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
                    sni: upstream.example.com
                    common_tls_context:
                      validation_context: {trusted_ca: {filename: "%s"}}
                """.formatted(trustedCaFile).indent(indent) + (certificates.isEmpty() ? ""
                : ("      tls_certificates: " + certificates + "\n").indent(indent));
    }

    private String relay(String trustedCaFile) throws Exception {
        return relay(port -> TcpRelayTest.config(port, "", tlsSocket(trustedCaFile, 4), upstream.actualPort()));
    }

    /** The bytes a client gets back for "ping" through a proxy of the configuration made for its port. */
    private String relay(java.util.function.IntFunction<String> config) throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        int port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy(config.apply(port));
        proxy.router.upstreamStats(metrics::upstream);
        proxy.server.tcpMetrics(metrics::tcpConnection);
        var text = dev.inmesh.runtime.accesslog.AccessLog.create(dev.inmesh.runtime.accesslog.AccessLog.Format.TEXT,
                tcpLines::add);
        proxy.server.tcpAccessLog(c -> {
            tcpInfos.add(c);
            text.log(c);
        });
        try (Socket s = new Socket()) {
            s.connect(proxy.addresses.get(0), 2_000);
            s.setSoTimeout(10_000);
            s.getOutputStream().write("ping".getBytes(StandardCharsets.UTF_8));
            s.getOutputStream().flush();
            InputStream in = s.getInputStream();
            ByteArrayOutputStream got = new ByteArrayOutputStream();
            byte[] buf = new byte[256];
            try {
                for (int n; (n = in.read(buf)) > 0; ) {
                    got.write(buf, 0, n);
                }
            } catch (java.net.SocketException reset) {
                // closed as a failed connect closes it: what came before is what the client got
            }
            return got.toString(StandardCharsets.UTF_8);
        }
    }

    @Test
    void thePlainBytesOfTheClientReachTheUpstreamOverTlsWithTheClustersSni() throws Exception {
        assertEquals("sni=upstream.example.com ping", relay(serverCert.certificatePath()));
    }

    @Test
    void aHostWhoseTransportSocketMatchIsTlsGetsTheClientsBytesOverTlsAsThatMatchSays() throws Exception {
        // the cluster's own socket is plaintext; the host's envoy.transport_socket_match metadata picks the TLS match
        String matches = """
                    transport_socket_matches:
                    - name: tlsMode-istio
                      match: {tlsMode: istio}
                %s
                    - name: tlsMode-disabled
                      match: {}
                      transport_socket: {name: envoy.transport_sockets.raw_buffer}
                """.formatted(tlsSocket(serverCert.certificatePath(), 6).stripTrailing());
        String labelled = "              metadata: {filter_metadata: {envoy.transport_socket_match: "
                + "{tlsMode: istio}}}\n";
        assertEquals("sni=upstream.example.com ping", relay(port -> TcpRelayTest.config(port, "", matches,
                upstream.actualPort()) + labelled));
    }

    @Test
    void anUpstreamWhoseCertificateTheTrustedCaDoesNotVouchForGetsNothing() throws Exception {
        assertEquals("", relay(otherCert.certificatePath()));
    }

    @Test
    void aRelayWhoseUpstreamHandshakeFailedLogsWhyAsItsTransportFailureReason() throws Exception {
        assertEquals("sni=upstream.example.com ping", relay(serverCert.certificatePath()));
        assertEquals("", relay(otherCert.certificatePath()));
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while (tcpLines.size() < 2 && System.nanoTime() < end) {
            Thread.sleep(10);
        }
        assertEquals(2, tcpLines.size(), tcpLines.toString());
        assertTrue(tcpLines.get(0).contains(" 0 - - - \"-\" "), tcpLines.get(0));
        assertTrue(tcpLines.get(1).contains(
                " - - \"TLS_error:|CERTIFICATE_VERIFY_FAILED:verify_chain:TLS_error_end\" "), tcpLines.get(1));
    }

    @Test
    void theRelaysUpstreamHandshakesCountInTheClustersSslStatistics() throws Exception {
        assertEquals("sni=upstream.example.com ping", relay(serverCert.certificatePath()));
        assertEquals("", relay(otherCert.certificatePath()));
        String scrape = reg.scrape();
        assertTrue(scrape.contains("envoy_cluster_ssl_handshake{cluster_name=\"backend\"} 1.0\n"), scrape);
        assertTrue(scrape.contains("envoy_cluster_ssl_fail_verify_error{cluster_name=\"backend\"} 1.0\n"), scrape);
    }

    private static String sni(io.vertx.core.http.ServerWebSocket ws) {
        try {
            var names = ((javax.net.ssl.ExtendedSSLSession) ws.sslSession()).getRequestedServerNames();
            return names.isEmpty() ? "none" : ((javax.net.ssl.SNIHostName) names.get(0)).getAsciiName();
        } catch (ClassCastException e) {
            return "?";
        }
    }

    private void webSocketProxy(boolean sanValidation) throws Exception {
        HttpServer upstream = vertx.createHttpServer(new HttpServerOptions().setSsl(true).setSni(true)
                .setKeyCertOptions(serverCert.keyCertOptions()))
                .webSocketHandler(ws -> {
                    String sni = sni(ws);
                    ws.textMessageHandler(m -> ws.writeTextMessage("sni=" + sni + " " + m));
                });
        upstream.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        int port = LoopbackProxy.freePort();
        String tls = """
                    connect_timeout: 5s
                    typed_extension_protocol_options:
                      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                        upstream_http_protocol_options: {auto_sni: true, auto_san_validation: %s}
                        explicit_http_config: {http_protocol_options: {}}
                    transport_socket:
                      name: envoy.transport_sockets.tls
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
                """.formatted(sanValidation);
        proxy = new LoopbackProxy("static_resources:\n  listeners:\n"
                + Http1RequestsTest.listener("http", port, "upgrade_configs: [{upgrade_type: websocket}]")
                + Http1RequestsTest.clusterC(upstream.actualPort()).replace("    connect_timeout: 1s\n", tls));
    }

    private String webSocketExchange() throws Exception {
        // closed at the end, which holds it until then: Vert.x closes a client no longer referenced, its sockets too
        WebSocketClient ws = vertx.createWebSocketClient();
        try {
            var socket = ws.connect(new WebSocketConnectOptions().setHost("127.0.0.1")
                    .setPort(proxy.addresses.get(0).getPort()).setURI("/ws").addHeader("host", "svc:80"))
                    .await(10, TimeUnit.SECONDS);
            var reply = io.vertx.core.Promise.<String>promise();
            socket.textMessageHandler(reply::tryComplete);
            socket.writeTextMessage("hello");
            String got = reply.future().await(10, TimeUnit.SECONDS);
            socket.close();
            return got;
        } finally {
            ws.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void aWebSocketRelayWithAutoSniSendsTheRequestsHostWithoutItsPortAsTheSni() throws Exception {
        webSocketProxy(false);
        assertEquals("sni=svc hello", webSocketExchange());
    }

    @Test
    void aWebSocketRelayWithAutoSanValidationRefusesACertificateWithoutASanNamingTheHost() throws Exception {
        webSocketProxy(true); // the server's certificate has no SAN at all
        Exception e = org.junit.jupiter.api.Assertions.assertThrows(Exception.class, this::webSocketExchange);
        assertTrue(String.valueOf(e.getMessage()).contains("503"), String.valueOf(e));
    }

    @Test
    void anOutboundConnectionOverIstiosMutualTlsIsLabelledWithBothIdentities(@org.junit.jupiter.api.io.TempDir
                                                                             java.nio.file.Path dir) throws Exception {
        // as Istio's client-side stats: source_principal the URI SAN of the certificate the proxy presented,
        // destination_principal the server's, and the destination's namespace the one the server's identity names
        var ca = dev.inmesh.runtime.upstream.TestCertificates.ca("cluster.local");
        var server = dev.inmesh.runtime.upstream.TestCertificates.issue(ca, "mongo", java.util.List.of(),
                java.util.List.of("spiffe://cluster.local/ns/db/sa/mongo"));
        var client = dev.inmesh.runtime.upstream.TestCertificates.issue(ca, "pod", java.util.List.of(),
                java.util.List.of("spiffe://cluster.local/ns/default/sa/pod"));
        int mtls = vertx.createNetServer(new NetServerOptions().setSsl(true)
                .setClientAuth(io.vertx.core.http.ClientAuth.REQUIRED)
                .setKeyCertOptions(new io.vertx.core.net.PemKeyCertOptions()
                        .setCertValue(Buffer.buffer(server.certificatePem()))
                        .setKeyValue(Buffer.buffer(server.keyPem())))
                .setTrustOptions(new io.vertx.core.net.PemTrustOptions()
                        .addCertValue(Buffer.buffer(ca.certificatePem()))))
                .connectHandler(so -> so.handler(data -> so.write("pong").onComplete(v -> so.close())))
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        java.nio.file.Path caFile = java.nio.file.Files.writeString(dir.resolve("ca.pem"), ca.certificatePem());
        java.nio.file.Path certFile = java.nio.file.Files.writeString(dir.resolve("cert.pem"),
                client.certificatePem());
        java.nio.file.Path keyFile = java.nio.file.Files.writeString(dir.resolve("key.pem"), client.keyPem());
        String certificates = "[{certificate_chain: {filename: \"%s\"}, private_key: {filename: \"%s\"}}]"
                .formatted(certFile, keyFile);
        assertEquals("pong", relay(port -> TcpRelayTest.config(port, "", tlsSocket(caFile.toString(), certificates,
                4), mtls)));
        var opened = reg.get("istio_tcp_connections_opened").counter().getId();
        assertEquals("spiffe://cluster.local/ns/default/sa/pod", opened.getTag("source_principal"));
        assertEquals("spiffe://cluster.local/ns/db/sa/mongo", opened.getTag("destination_principal"));
        assertEquals("db", opened.getTag("destination_workload_namespace"));
        assertEquals("unknown", opened.getTag("connection_security_policy"), "the source side's");
        // the access log's %UPSTREAM_PEER_URI_SAN% and %UPSTREAM_LOCAL_URI_SAN%, as Envoy's for a tcp_proxy connection
        for (int i = 0; i < 200 && tcpInfos.isEmpty(); i++) {
            Thread.sleep(25);
        }
        assertEquals("spiffe://cluster.local/ns/db/sa/mongo", tcpInfos.get(0).upstreamPeerPrincipal());
        assertEquals("spiffe://cluster.local/ns/default/sa/pod", tcpInfos.get(0).upstreamLocalPrincipal());
    }

    @Test
    void aTcpProxyConnectionOffersTheClustersAlpnButIstioPeerExchange() throws Exception {
        // Istio's ISTIO_MUTUAL cluster's names: istio, which an Istio sidecar's inbound TCP chain takes, is in the
        // ClientHello; istio-peer-exchange is not (its metadata exchange frame would reach the application)
        var hello = new java.util.concurrent.CompletableFuture<String>();
        int capture = vertx.createNetServer().connectHandler(so -> so.handler(b -> {
            hello.complete(b.toString(StandardCharsets.ISO_8859_1));
            so.close();
        })).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        proxy = new LoopbackProxy(TcpRelayTest.config(LoopbackProxy.freePort(), "", """
                transport_socket:
                  name: envoy.transport_sockets.tls
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
                    common_tls_context: {alpn_protocols: [istio-peer-exchange, istio]}
                """.indent(4), capture));
        try (Socket s = new Socket()) {
            s.connect(proxy.addresses.get(0), 2_000);
            s.getOutputStream().write("ping".getBytes(StandardCharsets.UTF_8));
            // the ALPN extension's list: each name after its length
            String sent = hello.get(10, TimeUnit.SECONDS);
            assertTrue(sent.contains("\u0005istio"), "istio offered");
            assertTrue(!sent.contains("istio-peer-exchange"), "istio-peer-exchange not offered");
        }
    }
}
