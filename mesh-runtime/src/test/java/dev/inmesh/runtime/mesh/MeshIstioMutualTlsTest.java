package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.upstream.TestCertificates.Issued;
import io.netty.handler.ssl.DelegatingSslContext;
import io.netty.handler.ssl.SslContext;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.net.JdkSSLEngineOptions;
import io.vertx.core.spi.tls.SslContextFactory;
import io.vertx.ext.web.client.HttpResponse;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLEngine;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Istio's mesh mTLS from the in-JVM client, with the workload identity from files ({@code inmesh.identity.dir}): a
 * cluster shaped as istiod writes an ISTIO_MUTUAL one (SDS {@code default} and {@code ROOTCA}, a SPIFFE SAN
 * matcher, ALPN {@code istio-peer-exchange, istio}) reaches a loopback TLS server that requires a client certificate
 * of the mesh's CA, offering the ALPN an Istio sidecar offers; a server without the SAN fails the connection (UF),
 * and rotated identity files are presented from a later connection on.
 */
@Timeout(60)
class MeshIstioMutualTlsTest {
    private static final String RATINGS = "spiffe://cluster.local/ns/default/sa/bookinfo-ratings";
    private static final String PRODUCTPAGE = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage";
    private static final Issued MESH_CA = TestCertificates.ca("cluster.local");
    private static final Issued SERVER = TestCertificates.issue(MESH_CA, "ratings", List.of(), List.of(RATINGS));
    private static final Issued CLIENT = TestCertificates.issue(MESH_CA, "productpage", List.of(),
            List.of(PRODUCTPAGE));
    private static final Issued ROTATED = TestCertificates.issue(MESH_CA, "productpage-rotated", List.of(),
            List.of(PRODUCTPAGE));

    private final Vertx vertx = Vertx.vertx();
    /** The ALPN lists the server was offered, one per handshake. */
    private final List<List<String>> offered = new CopyOnWriteArrayList<>();
    private final List<StreamInfo> requests = new CopyOnWriteArrayList<>();
    private Mesh mesh;
    /** How long the mesh waits for missing identity files (inmesh.identity.wait-seconds). */
    private int identityWaitSeconds = 15;
    /** The mesh's admin port: none, or 0 for an ephemeral one. */
    private int adminPort = -1;
    /** The cluster's connect_timeout, which its TLS handshake counts in. */
    private String connectTimeout = "1s";
    @TempDir
    Path dir;

    @AfterEach
    void tearDown() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** The identity directory with Istio's file names: the client's chain and key, the mesh's root. */
    private Path identity(Issued own) throws Exception {
        return TestCertificates.identityDirectory(dir, own, MESH_CA);
    }

    /**
     * The mesh whose cluster to {@code port} has istiod's ISTIO_MUTUAL transport socket, expecting {@code san}. Its
     * SNI is a DNS name: the JDK's TLS servers refuse Istio's own ({@code outbound_.9080_._.HOST}), which
     * {@link #istiosSniIsSentAsItIs} sees on the wire.
     */
    private Mesh mesh(int port, String san, Path identity) throws Exception {
        return mesh(port, san, identity, "reviews.default.svc.cluster.local");
    }

    private Mesh mesh(int port, String san, Path identity, String sni) throws Exception {
        Path file = dir.resolve("mesh.yaml");
        // an outbound connection manager as istiod writes it, which takes WebSocket upgrades
        Files.writeString(file, MeshWebClientTest.config("", port)
                .replace("connect_timeout: 1s", "connect_timeout: " + connectTimeout)
                .replaceAll("( *)stat_prefix: (.*)\n",
                "$1stat_prefix: $2\n$1upgrade_configs: [{upgrade_type: websocket}]\n") + """
                    transport_socket:
                      name: envoy.transport_sockets.tls
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
                        sni: "%s"
                        common_tls_context:
                          tls_params: {tls_minimum_protocol_version: TLSv1_2, tls_maximum_protocol_version: TLSv1_3}
                          alpn_protocols: [istio-peer-exchange, istio]
                          tls_certificate_sds_secret_configs:
                          - name: default
                            sds_config:
                              api_config_source:
                                api_type: GRPC
                                grpc_services: [{envoy_grpc: {cluster_name: sds-grpc}}]
                          combined_validation_context:
                            default_validation_context:
                              match_subject_alt_names: [{exact: "%s"}]
                            validation_context_sds_secret_config:
                              name: ROOTCA
                              sds_config:
                                api_config_source:
                                  api_type: GRPC
                                  grpc_services: [{envoy_grpc: {cluster_name: sds-grpc}}]
                """.formatted(sni, san));
        MeshOptions o = new MeshOptions().setWorkloadName("productpage-v1").setApp("productpage").setVersion("v1")
                .setConfigFile(file.toString()).setAdminPort(adminPort);
        if (identity != null) {
            o.setIdentityDir(identity.toString()).setIdentityWaitSeconds(identityWaitSeconds);
        }
        mesh = Mesh.create(vertx, o);
        ((DefaultMesh) mesh).addObserver(requests::add);
        mesh.start().await(10, TimeUnit.SECONDS);
        return mesh;
    }

    /**
     * A TLS server with the ratings identity requiring a client certificate of the mesh's CA, answering with the
     * client's subject; it records the ALPN each client offers and picks http/1.1 from it, as an Istio sidecar's
     * inbound chain (alpn_protocols h2, http/1.1) would for these clients.
     */
    private int server() throws Exception {
        return vertx.createHttpServer(TestCertificates.requiringClientCertificate(SERVER, MESH_CA)
                        .setSslEngineOptions(new RecordingEngineOptions(offered)))
                .requestHandler(TestCertificates::answerClientSubject)
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    private String call() throws Exception {
        HttpResponse<Buffer> r = mesh.webClient().get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS);
        return r.statusCode() + " " + r.bodyAsString();
    }

    @Test
    void theAdminConfigDumpShowsIstiosSecretsFromTheIdentityDirectoryAsEnvoysDoes() throws Exception {
        adminPort = 0;
        Path identity = identity(CLIENT);
        mesh(server(), RATINGS, identity);
        java.net.http.HttpResponse<String> r = java.net.http.HttpClient.newHttpClient().send(
                java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + mesh.adminPort()
                        + "/config_dump?resource=dynamic_active_secrets")).build(),
                java.net.http.HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), r.body());
        var secrets = dev.inmesh.runtime.xds.EnvoyJson.tree(r.body()).get("configs");
        assertEquals(2, secrets.size(), r.body());
        assertEquals("default", secrets.get(0).get("name").asText());
        assertEquals(java.util.Base64.getEncoder().encodeToString(CLIENT.certificatePem().getBytes(
                java.nio.charset.StandardCharsets.UTF_8)),
                secrets.get(0).at("/secret/tls_certificate/certificate_chain/inline_bytes").asText());
        assertEquals("ROOTCA", secrets.get(1).get("name").asText());
        assertEquals(java.util.Base64.getEncoder().encodeToString(MESH_CA.certificatePem().getBytes(
                java.nio.charset.StandardCharsets.UTF_8)),
                secrets.get(1).at("/secret/validation_context/trusted_ca/inline_bytes").asText());
    }

    @Test
    void anIstioMutualClusterPresentsTheWorkloadIdentityAndOffersIstiosAlpn() throws Exception {
        mesh(server(), RATINGS, identity(CLIENT));
        assertEquals("200 client=CN=productpage", call());
        // as an Istio sidecar's HTTP/1.1 connection through its istio.alpn filter: the inbound HTTP chain's names
        assertEquals(List.of("istio-http/1.1", "istio", "http/1.1"), offered.get(0));
    }

    /** A WebSocket through the mesh's WebSocket client speaks the cluster's mTLS, as its HTTP requests do. */
    @Test
    void aWebSocketToAnIstioMutualClusterPresentsTheWorkloadIdentity() throws Exception {
        int port = vertx.createHttpServer(TestCertificates.requiringClientCertificate(SERVER, MESH_CA)
                        .setSslEngineOptions(new RecordingEngineOptions(offered)))
                .webSocketHandler(ws -> ws.textMessageHandler(m -> {
                    String client;
                    try {
                        client = ((java.security.cert.X509Certificate) ws.sslSession().getPeerCertificates()[0])
                                .getSubjectX500Principal().getName();
                    } catch (Exception e) {
                        client = "none";
                    }
                    ws.writeTextMessage("client=" + client);
                }))
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        // the JVM's first WebSocket over TLS is slow to handshake on a loaded machine (over 1 s, then ~50 ms)
        connectTimeout = "10s";
        mesh(port, RATINGS, identity(CLIENT));
        io.vertx.core.http.WebSocket ws = mesh.webSocketClient().connect(
                new io.vertx.core.http.WebSocketConnectOptions().setHost("reviews").setPort(9080).setURI("/ws"))
                .await(10, TimeUnit.SECONDS);
        io.vertx.core.Promise<String> said = io.vertx.core.Promise.promise();
        ws.textMessageHandler(said::tryComplete);
        ws.writeTextMessage("who?");
        assertEquals("client=CN=productpage", said.future().await(10, TimeUnit.SECONDS));
        assertEquals(List.of("istio-http/1.1", "istio", "http/1.1"), offered.get(0));
        ws.close().await(10, TimeUnit.SECONDS);
        for (int i = 0; i < 200 && requests.isEmpty(); i++) {
            Thread.sleep(25);
        }
        StreamInfo info = requests.get(0);
        assertEquals(101, info.responseCode());
        // the WebSocket's frames as sent: "who?" (10 bytes, masked) and the client's close (8), not their TLS records
        assertEquals(18, info.bytesReceived(), info.toString());
    }

    @Test
    void aServerWithoutTheSpiffeIdTheClusterNamesFailsTheConnection() throws Exception {
        mesh(server(), "spiffe://cluster.local/ns/default/sa/bookinfo-details", identity(CLIENT));
        assertEquals(503, Integer.parseInt(call().substring(0, 3)));
        for (int i = 0; i < 200 && requests.isEmpty(); i++) {
            Thread.sleep(25);
        }
        assertTrue(requests.get(0).responseFlags().contains(ResponseFlag.UPSTREAM_CONNECTION_FAILURE),
                requests.get(0).toString());
    }

    @Test
    void aRotatedIdentityIsPresentedFromALaterConnectionOn() throws Exception {
        Path id = identity(CLIENT);
        mesh(server(), RATINGS, id);
        assertEquals("200 client=CN=productpage", call());
        Files.writeString(id.resolve("key.pem"), ROTATED.keyPem());
        Files.writeString(id.resolve("cert-chain.pem"), ROTATED.certificatePem());
        String last = null;
        // the files are looked at every second; a pooled connection keeps the old certificate until it closes
        for (int i = 0; i < 100 && (last == null || !last.contains("rotated")); i++) {
            Thread.sleep(100);
            last = call();
        }
        assertEquals("200 client=CN=productpage-rotated", last);
    }

    @Test
    void withoutAnIdentityDirectoryIstiosSecretsAreRefusedByName() throws Exception {
        Exception e = assertThrows(Exception.class, () -> mesh(server(), RATINGS, null));
        assertTrue(e.getMessage().contains("\"default\"") && e.getMessage().contains("inmesh.identity.dir"),
                e.getMessage());
    }

    @Test
    void identityFilesWrittenAfterTheStartAreWaitedForBeforeTheConfigurationIsRead() throws Exception {
        int server = server();
        Path id = Files.createDirectories(dir.resolve("identity"));
        // Istio's agent writes the files once istiod signed the certificate, after the application started
        Thread writer = new Thread(() -> {
            try {
                Thread.sleep(500);
                identity(CLIENT);
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
        writer.start();
        long start = System.nanoTime();
        mesh(server, RATINGS, id);
        writer.join();
        assertTrue(System.nanoTime() - start >= 400_000_000L, "started before the files were there");
        assertEquals("200 client=CN=productpage", call());
    }

    @Test
    void aConfigurationWithoutTlsThatReadsTheIdentityStartsWithoutWaitingForItsFiles() throws Exception {
        // the directory is set (the default 15 s wait applies) but Istio's agent has written nothing into it yet
        Path id = Files.createDirectories(dir.resolve("identity"));
        Path file = dir.resolve("plain.yaml");
        Files.writeString(file, """
                static_resources:
                  clusters:
                  - name: plain
                    type: STATIC
                    load_assignment:
                      cluster_name: plain
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 9}}}
                """);
        MeshOptions options = new MeshOptions().setConfigFile(file.toString()).setAdminPort(-1)
                .setIdentityDir(id.toString());
        assertEquals(15, options.getIdentityWaitSeconds());
        mesh = Mesh.create(vertx, options);
        mesh.start().await(5, TimeUnit.SECONDS); // far below the wait: nothing reads the files
        assertTrue(mesh.isReady());
    }

    @Test
    void aMissingIdentityFileRejectsTheClusterByNameOnceTheWaitIsOver() throws Exception {
        identityWaitSeconds = 1;
        Path id = identity(CLIENT);
        Files.delete(id.resolve("root-cert.pem"));
        Exception e = assertThrows(Exception.class, () -> mesh(server(), RATINGS, id));
        assertTrue(e.getMessage().contains("outbound|9080||reviews.default.svc.cluster.local")
                && e.getMessage().contains("root-cert.pem"), e.getMessage());
    }

    @Test
    void istiosSniIsSentAsItIs() throws Exception {
        // a server that keeps the first bytes of each connection (the ClientHello) and closes it
        var hello = new java.util.concurrent.CompletableFuture<String>();
        int port = vertx.createNetServer().connectHandler(so -> so.handler(b -> {
            hello.complete(b.toString(java.nio.charset.StandardCharsets.ISO_8859_1));
            so.close();
        })).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        mesh(port, RATINGS, identity(CLIENT), "outbound_.9080_._.reviews.default.svc.cluster.local");
        assertEquals(503, Integer.parseInt(call().substring(0, 3)));
        assertTrue(hello.get(10, TimeUnit.SECONDS).contains("outbound_.9080_._.reviews.default.svc.cluster.local"));
    }

    /**
     * The JDK's engines, each recording the ALPN list its client offers and picking http/1.1 from it (none when it
     * is not offered).
     */
    private static final class RecordingEngineOptions extends JdkSSLEngineOptions {
        private final List<List<String>> offered;

        RecordingEngineOptions(List<List<String>> offered) {
            this.offered = offered;
        }

        @Override
        public JdkSSLEngineOptions copy() {
            return this;
        }

        @Override
        public SslContextFactory sslContextFactory() {
            SslContextFactory base = super.sslContextFactory();
            return (SslContextFactory) Proxy.newProxyInstance(getClass().getClassLoader(),
                    new Class<?>[] {SslContextFactory.class}, (self, method, args) -> {
                        Object out;
                        try {
                            out = method.invoke(base, args);
                        } catch (InvocationTargetException e) {
                            throw e.getCause();
                        }
                        if (out instanceof SslContext context) {
                            return new DelegatingSslContext(context) {
                                @Override
                                protected void initEngine(SSLEngine engine) {
                                    engine.setHandshakeApplicationProtocolSelector((e, protocols) -> {
                                        offered.add(List.copyOf(protocols));
                                        return protocols.contains("http/1.1") ? "http/1.1" : "";
                                    });
                                }
                            };
                        }
                        return out == base ? self : out;
                    });
        }
    }
}
