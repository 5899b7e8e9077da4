package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.upstream.TestCertificates.Issued;
import dev.inmesh.runtime.xds.ads.AdsOptions;
import dev.inmesh.runtime.xds.ads.NodeOptions;
import dev.inmesh.runtime.xds.sds.SdsSecretManager;
import dev.inmesh.runtime.xds.sds.SdsTestServer;
import io.envoyproxy.envoy.config.core.v3.ConfigSource;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.vertx.core.Vertx;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The standalone proxy beside Istio's agent: a bootstrap whose static {@code sds-grpc} cluster is the agent's SDS
 * server (java-control-plane's SecretDiscoveryService, on loopback or on a Unix socket as the agent's
 * {@code ./var/run/secrets/workload-spiffe-uds/socket}) and an inbound mTLS listener naming {@code default} and
 * {@code ROOTCA} on it, as Istio's inbound chains do. A caller of the mesh's CA is shown the certificate the server
 * sent, then a rotated one from a later handshake on; a secret sent after the start is waited for.
 */
@Timeout(60)
class StandaloneProxySdsTest {
    private static final Issued MESH_CA = TestCertificates.ca("cluster.local");
    private static final Issued OWN = TestCertificates.issue(MESH_CA, "ratings", List.of(),
            List.of("spiffe://cluster.local/ns/default/sa/bookinfo-ratings"));
    private static final Issued ROTATED = TestCertificates.issue(MESH_CA, "ratings-rotated", List.of(),
            List.of("spiffe://cluster.local/ns/default/sa/bookinfo-ratings"));
    private static final Issued CALLER = TestCertificates.issue(MESH_CA, "productpage", List.of(),
            List.of("spiffe://cluster.local/ns/default/sa/bookinfo-productpage"));
    private static final String SDS_CONFIG = SdsTestServer.SDS_GRPC_CONFIG;

    private final Vertx vertx = Vertx.vertx();
    private final int app = vertx.createHttpServer().requestHandler(req -> req.response().end("ok"))
            .listen(0, "127.0.0.1").await().actualPort();
    private SdsTestServer sds;
    private StandaloneProxy proxy;
    @TempDir
    Path dir;

    @AfterEach
    void tearDown() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        if (sds != null) {
            sds.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** The inbound mTLS listener on {@code port}, its certificate and CAs from sds-grpc; YAML list at column 2. */
    private static String listener(int port) {
        return listener(port, SDS_CONFIG);
    }

    /** The same, the secrets' {@code sds_config} {@code config} (YAML at column 0). */
    private static String listener(int port, String config) {
        String tls = """
                transport_socket:
                  name: envoy.transport_sockets.tls
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
                    require_client_certificate: true
                    common_tls_context:
                      tls_certificate_sds_secret_configs:
                      - name: default
                %s
                      validation_context_sds_secret_config:
                        name: ROOTCA
                %s
                """.formatted(config.indent(8).stripTrailing(), config.indent(8).stripTrailing());
        return Http1RequestsTest.listener("inbound", port, "")
                .replaceFirst("    - filters:\n", "    - " + tls.indent(6).substring(6) + "      filters:\n");
    }

    /** The bootstrap's static cluster sds-grpc at {@code at}, as Istio's agent writes it; YAML list at column 2. */
    private static String sdsGrpc(String at) {
        return SdsTestServer.sdsGrpcCluster(at);
    }

    /** A bootstrap with the inbound mTLS listener on {@code port} and sds-grpc at {@code at}. */
    private void start(int port, String at) throws Exception {
        Path file = Files.writeString(dir.resolve("envoy-rev.yaml"), "static_resources:\n  listeners:\n"
                + listener(port) + Http1RequestsTest.clusterC(app) + sdsGrpc(at));
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(file, -1, -1, 1, null, AdminHook.NONE));
    }

    /**
     * GET / over mTLS as a sidecar of the mesh calls: {@link #CALLER}'s certificate, the proxy's checked against the
     * mesh's CA; the subject the proxy presented and the answer's status line.
     */
    private static String call(int port) throws Exception {
        var tls = TestCertificates.clientContext(CALLER, MESH_CA);
        try (var socket = (javax.net.ssl.SSLSocket) tls.getSocketFactory().createSocket("127.0.0.1", port)) {
            socket.setSoTimeout(10_000);
            socket.getOutputStream().write("GET / HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n"
                    .getBytes(StandardCharsets.US_ASCII));
            String answer = new String(socket.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
            return ((X509Certificate) socket.getSession().getPeerCertificates()[0]).getSubjectX500Principal()
                    .getName() + " " + answer.lines().findFirst().orElse("");
        }
    }

    @Test
    void anInboundMtlsListenerPresentsTheSdsServersCertificateAndARotatedOneFromTheHandshakeAfterItsAck()
            throws Exception {
        sds = SdsTestServer.start();
        sds.set("1", SdsTestServer.certificate("default", OWN), SdsTestServer.root("ROOTCA", MESH_CA));
        int port = LoopbackProxy.freePort();
        start(port, "{socket_address: {address: 127.0.0.1, port_value: " + sds.port() + "}}");
        assertEquals("CN=ratings HTTP/1.1 200 OK", call(port));

        sds.set("2", SdsTestServer.certificate("default", ROTATED), SdsTestServer.root("ROOTCA", MESH_CA));
        sds.awaitRequest(r -> r.getVersionInfo().equals("2") && r.getResourceNamesList().equals(List.of("default")),
                Duration.ofSeconds(10));
        // pushed to the listener's TLS on its arrival, before the ACK: the next handshake presents it
        assertEquals("CN=ratings-rotated HTTP/1.1 200 OK", call(port));
    }

    @Test
    void secretsSentAfterTheStartOverTheAgentsUnixSocketAreWaitedForBeforeTheListenersAreBound() throws Exception {
        assumeTrue(SdsTestServer.unixSockets(), "no epoll here for the test's SDS server");
        Path socket = Files.createDirectories(dir.resolve("var/run/secrets/workload-spiffe-uds")).resolve("socket");
        sds = SdsTestServer.startOn(socket);
        Thread later = sds.setOnceAsked("default", "1", SdsTestServer.certificate("default", OWN),
                SdsTestServer.root("ROOTCA", MESH_CA));
        int port = LoopbackProxy.freePort();
        start(port, "{pipe: {path: " + socket + "}}");
        later.join();

        assertEquals("CN=ratings HTTP/1.1 200 OK", call(port));
    }

    @Test
    void aListenerFromTheControlPlaneTakesItsSecretsFromTheBootstrapsSdsCluster() throws Exception {
        sds = SdsTestServer.start();
        sds.set("1", SdsTestServer.certificate("default", OWN), SdsTestServer.root("ROOTCA", MESH_CA));
        assertEquals("CN=ratings HTTP/1.1 200 OK", fromControlPlane(listener(port())));
    }

    private int port;

    private int port() throws Exception {
        port = LoopbackProxy.freePort();
        return port;
    }

    /**
     * Runs the proxy with Istio's agent's bootstrap (sds-grpc, no listener) and a control plane serving
     * {@code listener} (on {@link #port}) and cluster c; what an mTLS call to the listener sees once it answers.
     */
    private String fromControlPlane(String listener) throws Exception {
        try (TestControlPlane istiod = new TestControlPlane(new java.net.InetSocketAddress("127.0.0.1", 0))) {
            serve(istiod, "1", listener);
            startWith(istiod);
            return callUntil(port, "200");
        }
    }

    /** Starts the proxy with Istio's agent's bootstrap (sds-grpc, no listener) and {@code istiod}. */
    private void startWith(TestControlPlane istiod) throws Exception {
        // Istio's agent's bootstrap: no listener of its own, sds-grpc among its static clusters
        Path file = Files.writeString(dir.resolve("envoy-rev.yaml"), "static_resources:\n  clusters:\n"
                + sdsGrpc("{socket_address: {address: 127.0.0.1, port_value: " + sds.port() + "}}"));
        startOn(file, istiod);
    }

    /** The proxy with the bootstrap {@code file} (null: none) and its configuration from {@code istiod}. */
    private void startOn(Path file, TestControlPlane istiod) throws Exception {
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(file, -1, -1, 1, null, AdminHook.NONE)
                .withXds(AdsOptions.of(NodeOptions.of("ratings-v1-abc", "default", "127.0.0.1"),
                        AdsOptions.XdsServer.plaintext("127.0.0.1", istiod.port()))));
    }

    /** {@link #call} until what it sees contains {@code part} (a refused connection counts as seen), or 10 s. */
    private static String callUntil(int port, String part) throws Exception {
        String seen = null;
        for (int i = 0; i < 100 && (seen == null || !seen.contains(part)); i++) {
            Thread.sleep(100);
            try {
                seen = call(port);
            } catch (java.io.IOException notYet) {
                seen = notYet.toString();
            }
        }
        return seen;
    }

    /**
     * With a control plane and no bootstrap ({@code --xds-address} alone), a listener whose secrets have
     * {@code sds_config: {ads: {}}} takes them on the ADS stream from java-control-plane's snapshot cache, and a
     * rotated certificate from the handshake after its ACK on.
     */
    @Test
    void aListenerFromTheControlPlaneTakesItsSecretsOnTheAdsStreamAndARotatedOneLater() throws Exception {
        int port = port();
        String ads = "sds_config: {ads: {}, resource_api_version: V3}";
        List<Listener> listeners = TestControlPlane.parse(List.of(listener(port, ads).stripIndent()), Listener.class);
        List<Cluster> clusters = TestControlPlane.parse(List.of(ProxyConfigUpdateTest.cluster("c", app)),
                Cluster.class);
        try (TestControlPlane istiod = new TestControlPlane(new java.net.InetSocketAddress("127.0.0.1", 0))) {
            istiod.serve("1", listeners, List.of(), clusters, List.of(), List.of(SdsTestServer.certificate(
                    "default", OWN), SdsTestServer.root("ROOTCA", MESH_CA)));
            startOn(null, istiod);
            assertEquals("CN=ratings HTTP/1.1 200 OK", callUntil(port, "200"));

            istiod.serve("2", listeners, List.of(), clusters, List.of(), List.of(SdsTestServer.certificate(
                    "default", ROTATED), SdsTestServer.root("ROOTCA", MESH_CA)));
            awaitSecretAck(istiod, "2");
            // pushed to the listener's TLS on its arrival, before the ACK: the next handshake presents it
            assertEquals("CN=ratings-rotated HTTP/1.1 200 OK", call(port));
        }
    }

    /** Waits until the proxy ACKs the Secret type's {@code version} on the ADS stream, or 10 s. */
    private static void awaitSecretAck(TestControlPlane istiod, String version) throws Exception {
        for (int i = 0; i < 200 && istiod.requests.stream().noneMatch(r -> r.getTypeUrl().equals(
                SdsSecretManager.SECRET_TYPE_URL) && r.getVersionInfo().equals(version) && !r.hasErrorDetail()); i++) {
            Thread.sleep(50);
        }
    }

    @Test
    void aSecretTheControlPlaneNoLongerNamesHasItsStreamEndedAndANewOneOpensWhenNamedAgain() throws Exception {
        sds = SdsTestServer.start();
        sds.set("1", SdsTestServer.certificate("default", OWN), SdsTestServer.root("ROOTCA", MESH_CA));
        String listener = listener(port());
        try (TestControlPlane istiod = new TestControlPlane(new java.net.InetSocketAddress("127.0.0.1", 0))) {
            serve(istiod, "1", listener);
            startWith(istiod);
            assertEquals("CN=ratings HTTP/1.1 200 OK", callUntil(port, "200"));

            serve(istiod, "2", null); // the listener goes: nothing names the secrets
            for (int i = 0; i < 200 && sds.ended.size() < 2; i++) {
                Thread.sleep(50);
            }
            assertEquals(2, sds.ended.size(), "both secrets' streams end");

            long opened = sds.requests.stream().filter(r -> r.getResponseNonce().isEmpty()).count();
            serve(istiod, "3", listener);
            assertEquals("CN=ratings HTTP/1.1 200 OK", callUntil(port, "200"));
            assertEquals(opened + 2, sds.requests.stream().filter(r -> r.getResponseNonce().isEmpty()).count(),
                    "a new stream for each secret named again");
        }
    }

    @Test
    void aCloseWhoseConfigurationSourceTimesOutStillClosesTheSdsClientAndTheAdminServer() throws Exception {
        sds = SdsTestServer.start();
        sds.set("1", SdsTestServer.certificate("default", OWN), SdsTestServer.root("ROOTCA", MESH_CA));
        int port = LoopbackProxy.freePort();
        AtomicReference<SdsSecretManager> manager = new AtomicReference<>();
        java.util.concurrent.atomic.AtomicBoolean adminClosed = new java.util.concurrent.atomic.AtomicBoolean();
        Path file = Files.writeString(dir.resolve("envoy-rev.yaml"), "static_resources:\n  listeners:\n"
                + listener(port) + Http1RequestsTest.clusterC(app)
                + sdsGrpc("{socket_address: {address: 127.0.0.1, port_value: " + sds.port() + "}}"));
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(file, -1, -1, 1, null,
                (vertx, snapshots, addresses, drain, xds, secrets) -> {
                    manager.set(secrets);
                    return () -> adminClosed.set(true);
                }));
        assertEquals("CN=ratings HTTP/1.1 200 OK", call(port));

        // a reload that waits for a secret the server does not have (15 s): the source's close waits for it
        Files.writeString(file, Files.readString(file).replace("name: default", "name: kubernetes://missing"));
        sds.awaitRequest(r -> r.getResourceNamesList().equals(List.of("kubernetes://missing")),
                Duration.ofSeconds(10));
        StandaloneProxy closing = proxy;
        proxy = null;
        assertThrows(java.util.concurrent.TimeoutException.class, closing::close);

        var e = assertThrows(IllegalArgumentException.class,
                () -> manager.get().await(SdsSecretConfig.newBuilder().setName("default").setSdsConfig(
                        dev.inmesh.runtime.xds.EnvoyJson.toMessage(new com.fasterxml.jackson.databind.ObjectMapper(
                                new com.fasterxml.jackson.dataformat.yaml.YAMLFactory()).readTree(SDS_CONFIG)
                                .path("sds_config"), ConfigSource.class)).build()));
        assertTrue(e.getMessage().endsWith("the SDS client is closed"), e.getMessage());
        assertTrue(adminClosed.get(), "the admin server is closed too");
    }

    /**
     * A bootstrap whose listener on {@code port} routes {@code /plain} to cluster c (plaintext) and {@code /tls} to
     * cluster mtls, whose TLS to {@code upstream} (the mesh's CA trusted) presents the client certificate
     * {@code client} from sds-grpc at {@code at}, waited for {@code initial_fetch_timeout: 0.5s}.
     */
    private Path bootstrapWithTlsCluster(int port, int upstream, String at) throws Exception {
        Path ca = Files.writeString(dir.resolve("ca.pem"), MESH_CA.certificatePem());
        String routes = Http1RequestsTest.listener("outbound", port, "").replace("""
                              - match: {prefix: /}
                                route: {cluster: c}
                """, """
                              - match: {prefix: /plain}
                                route: {cluster: c}
                              - match: {prefix: /tls}
                                route: {cluster: mtls}
                """);
        String mtls = """
                  - name: mtls
                    type: STATIC
                    connect_timeout: 1s
                    load_assignment:
                      cluster_name: mtls
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                    transport_socket:
                      name: envoy.transport_sockets.tls
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
                        common_tls_context:
                          validation_context: {trusted_ca: {filename: %s}}
                          tls_certificate_sds_secret_configs:
                          - name: client
                %s
                """.formatted(upstream, ca, SDS_CONFIG.replace("0s", "0.5s").indent(12).stripTrailing());
        return Files.writeString(dir.resolve("envoy-rev.yaml"), "static_resources:\n  listeners:\n" + routes
                + Http1RequestsTest.clusterC(app) + mtls + sdsGrpc(at));
    }

    /** An HTTP server requiring a client certificate of the mesh's CA, answering with its subject; its port. */
    private int mtlsUpstream() {
        Issued server = TestCertificates.issue(MESH_CA, "upstream", List.of("localhost"), List.of());
        return vertx.createHttpServer(TestCertificates.requiringClientCertificate(server, MESH_CA))
                .requestHandler(TestCertificates::answerClientSubject).listen(0, "127.0.0.1").await().actualPort();
    }

    /**
     * Istio's bootstrap shape: a cluster's client certificate from sds-grpc, whose Unix socket is not there. As
     * Envoy's cluster once its secret's initial fetch timed out, the proxy starts, serves its other routes, and
     * the cluster's requests fail to connect (503 UF, Envoy's NotReadySslSocket), never in plaintext.
     */
    @Test
    void aClusterWhoseSdsSecretDoesNotArriveInTimeLeavesTheProxyServingAndItsRequestsFailToConnect()
            throws Exception {
        int port = LoopbackProxy.freePort();
        Path file = bootstrapWithTlsCluster(port, mtlsUpstream(), "{pipe: {path: " + dir.resolve("no/socket") + "}}");
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(file, -1, -1, 1, null, AdminHook.NONE));

        assertEquals("HTTP/1.1 200 OK", get(port, "/plain").lines().findFirst().orElse(""));
        String tls = get(port, "/tls");
        assertTrue(tls.startsWith("HTTP/1.1 503"), tls);
        assertTrue(tls.contains("upstream connect error"), tls);
    }

    /** The same with an SDS server that sends the secret only later: the cluster's requests then take it. */
    @Test
    void aClusterWhoseSdsSecretArrivesAfterItsTimeoutTakesItThen() throws Exception {
        sds = SdsTestServer.start();
        int port = LoopbackProxy.freePort();
        Path file = bootstrapWithTlsCluster(port, mtlsUpstream(),
                "{socket_address: {address: 127.0.0.1, port_value: " + sds.port() + "}}");
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(file, -1, -1, 1, null, AdminHook.NONE));
        assertEquals("HTTP/1.1 200 OK", get(port, "/plain").lines().findFirst().orElse(""));
        assertTrue(get(port, "/tls").startsWith("HTTP/1.1 503"));

        sds.set("1", SdsTestServer.certificate("client", CALLER));
        String seen = "";
        for (int i = 0; i < 100 && !seen.startsWith("HTTP/1.1 200"); i++) {
            Thread.sleep(100);
            seen = get(port, "/tls");
        }
        assertTrue(seen.startsWith("HTTP/1.1 200") && seen.endsWith("client=CN=productpage"), seen);
    }

    /** GET {@code path} from the proxy's listener with host svc; the whole answer. */
    private static String get(int port, String path) throws Exception {
        return Http1RequestsTest.exchange(port, "GET " + path + " HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n");
    }

    /** Has the control plane serve {@code listener} (none when null) on {@link #port}, and cluster c. */
    private void serve(TestControlPlane istiod, String version, String listener) throws Exception {
        istiod.serve(version, listener == null ? List.of()
                : TestControlPlane.parse(List.of(listener.stripIndent()), Listener.class),
                List.of(), TestControlPlane.parse(List.of(ProxyConfigUpdateTest.cluster("c", app)),
                        Cluster.class), List.of());
    }
}
