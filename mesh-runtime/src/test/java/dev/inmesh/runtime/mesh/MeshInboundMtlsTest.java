package dev.inmesh.runtime.mesh;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.upstream.TestCertificates.Issued;
import dev.inmesh.runtime.xds.ads.XdsTestServer;
import dev.inmesh.runtime.xds.sds.SdsTestServer;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.net.SocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The in-JVM inbound side under Istio's STRICT PeerAuthentication: {@code mesh.inboundServerOptions(port)} has the
 * application's own Vert.x server terminate the {@code virtualInbound} chain's mTLS (the workload identity directory's
 * certificate, clients of the mesh's CA in its trust domain, a client certificate required), so that an Istio
 * sidecar's client reaches {@code mesh.inbound(...)} as {@code mutual_tls}, with the chain's
 * {@code x-forwarded-client-cert}; other clients fail the handshake; a rotated certificate is presented from the next
 * handshake on. A PERMISSIVE port keeps plain HTTP; a STRICT one without an identity directory is an error that says
 * which setting is missing.
 */
@Timeout(60)
class MeshInboundMtlsTest {
    private static final String REVIEWS = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews";
    private static final String PRODUCTPAGE = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage";
    private static final Issued MESH_CA = TestCertificates.ca("cluster.local");
    private static final Issued OWN = TestCertificates.issue(MESH_CA, "reviews", List.of(), List.of(REVIEWS));
    private static final Issued ROTATED = TestCertificates.issue(MESH_CA, "reviews-rotated", List.of(),
            List.of(REVIEWS));
    private static final Issued CALLER = TestCertificates.issue(MESH_CA, "productpage", List.of(),
            List.of(PRODUCTPAGE));
    /** A certificate of the mesh's CA for a workload of another trust domain. */
    private static final Issued FOREIGN = TestCertificates.issue(MESH_CA, "foreign", List.of(),
            List.of("spiffe://other.domain/ns/default/sa/productpage"));
    private static final Issued OTHER_CA = TestCertificates.ca("other-ca");
    /** The productpage identity, from a CA the mesh does not trust. */
    private static final Issued IMPOSTOR = TestCertificates.issue(OTHER_CA, "productpage", List.of(),
            List.of(PRODUCTPAGE));

    private final Vertx vertx = Vertx.vertx();
    /** A plain client (not the mesh's), held for the whole test: Vert.x closes a client no longer referenced. */
    private final io.vertx.ext.web.client.WebClient plain = io.vertx.ext.web.client.WebClient.create(vertx);
    private final List<StreamInfo> requests = new CopyOnWriteArrayList<>();
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
     * Istio's {@code virtualInbound} for {@code port}: its mTLS HTTP chain (transport {@code tls}, Istio's HTTP ALPN
     * names, SDS {@code default} and {@code ROOTCA}, the trust domain's SPIFFE prefix, a client certificate
     * required, APPEND_FORWARD with the subject, URI and DNS), and, when {@code permissive}, its plaintext chain.
     * Each chain's route adds {@code x-chain} to the response, naming the transport the chain was chosen for.
     */
    private static String config(int port, boolean permissive) {
        String sds = "sds_config: {api_config_source: {api_type: GRPC, grpc_services: [{envoy_grpc: "
                + "{cluster_name: sds-grpc}}]}, initial_fetch_timeout: 0s}";
        String chains = """
                    - name: 0.0.0.0_%1$d
                      filter_chain_match:
                        destination_port: %1$d
                        transport_protocol: tls
                        application_protocols: [istio-http/1.0, istio-http/1.1, istio-h2]
                      transport_socket:
                        name: envoy.transport_sockets.tls
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
                          common_tls_context:
                            tls_params: {tls_minimum_protocol_version: TLSv1_2, tls_maximum_protocol_version: TLSv1_3}
                            alpn_protocols: [h2, http/1.1]
                            tls_certificate_sds_secret_configs: [{name: default, %2$s}]
                            combined_validation_context:
                              default_validation_context:
                                match_subject_alt_names: [{prefix: "spiffe://cluster.local/"}]
                              validation_context_sds_secret_config: {name: ROOTCA, %2$s}
                          require_client_certificate: true
                """.formatted(port, sds) + hcm(port, "tls");
        if (permissive) {
            chains += """
                    - name: 0.0.0.0_%d
                      filter_chain_match: {destination_port: %d, transport_protocol: raw_buffer}
                """.formatted(port, port) + hcm(port, "raw_buffer");
        }
        return """
                static_resources:
                  listeners:
                  - name: virtualInbound
                    address: {socket_address: {address: 0.0.0.0, port_value: 15006}}
                    use_original_dst: true
                    traffic_direction: INBOUND
                    filter_chains:
                """ + chains;
    }

    /** The filters of an inbound HTTP chain as Istio writes them, whose route adds {@code x-chain: chain}. */
    private static String hcm(int port, String chain) {
        return """
                      filters:
                      - name: envoy.filters.network.http_connection_manager
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                          stat_prefix: inbound_0.0.0.0_%1$d
                          forward_client_cert_details: APPEND_FORWARD
                          set_current_client_cert_details: {subject: true, dns: true, uri: true}
                          http_filters:
                          - name: envoy.filters.http.router
                            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                          route_config:
                            name: inbound|%1$d||
                            validate_clusters: false
                            virtual_hosts:
                            - name: inbound|http|%1$d
                              domains: ["*"]
                              routes:
                              - match: {prefix: /}
                                route: {cluster: "inbound|%1$d||", timeout: 0s}
                                response_headers_to_add: [{header: {key: x-chain, value: %2$s}}]
                """.formatted(port, chain);
    }

    private Mesh mesh(String config, Path identity) throws Exception {
        Path file = Files.writeString(dir.resolve("mesh.yaml"), config);
        MeshOptions o = new MeshOptions().setWorkloadName("reviews-v1").setApp("reviews").setVersion("v1")
                .setConfigFile(file.toString()).setAdminPort(-1);
        if (identity != null) {
            o.setIdentityDir(identity.toString());
        }
        mesh = Mesh.create(vertx, o);
        ((DefaultMesh) mesh).addObserver(requests::add);
        mesh.start().await(10, TimeUnit.SECONDS);
        return mesh;
    }

    /**
     * The application's server on {@code port} with the mesh's options for it, behind {@code mesh.inbound}: it
     * answers with the {@code x-forwarded-client-cert} and {@code x-forwarded-proto} it was given.
     */
    private HttpServerOptions serve(int port) throws Exception {
        HttpServerOptions options = mesh.inboundServerOptions(new HttpServerOptions().setPort(port)
                .setHost("127.0.0.1"));
        vertx.createHttpServer(options).requestHandler(mesh.inbound(req -> req.response().end("xfcc="
                        + req.getHeader("x-forwarded-client-cert") + "\nproto=" + req.getHeader("x-forwarded-proto"))))
                .listen().await(10, TimeUnit.SECONDS);
        return options;
    }

    /** What a GET / got: its status, x-chain, body, and the subject of the server's certificate. */
    private record Answer(int status, String chain, String body, String serverSubject, HttpVersion version) {}

    /**
     * GET / as an Istio sidecar's client: its istio.alpn names for the protocol ({@code istio-h2, istio, h2} or
     * {@code istio-http/1.1, istio, http/1.1}), presenting {@code own} (none: null); a new connection each time.
     */
    private Answer get(int port, Issued own, boolean http2) throws Exception {
        HttpClient c = vertx.createHttpClient(TestCertificates.istioClientOptions(own, MESH_CA, http2));
        try {
            return onEventLoop(vertx, () -> c.request(new RequestOptions()
                            .setServer(SocketAddress.inetSocketAddress(port, "127.0.0.1"))
                            .setHost("reviews").setPort(9080).setURI("/"))
                    .compose(req -> req.send().compose(resp -> resp.body().map(b -> {
                        String subject;
                        try {
                            subject = ((X509Certificate) req.connection().peerCertificates().get(0))
                                    .getSubjectX500Principal().getName();
                        } catch (Exception e) {
                            subject = "none";
                        }
                        return new Answer(resp.statusCode(), resp.getHeader("x-chain"), b.toString(), subject,
                                resp.version());
                    }))))
                    .await(10, TimeUnit.SECONDS);
        } finally {
            c.close().await(10, TimeUnit.SECONDS);
        }
    }

    private String label(String label) {
        Matcher m = Pattern.compile("^istio_requests_total\\{[^}]*\\b" + label + "=\"([^\"]*)\"", Pattern.MULTILINE)
                .matcher(((DefaultMesh) mesh).registry().scrape());
        assertTrue(m.find(), ((DefaultMesh) mesh).registry().scrape());
        return m.group(1);
    }

    private void awaitRequests(int n) throws InterruptedException {
        for (int i = 0; i < 200 && requests.size() < n; i++) {
            Thread.sleep(25);
        }
    }

    @Test
    void anIstioClientOfTheMeshsCaReachesTheApplicationThroughTheStrictChainAsMutualTls() throws Exception {
        int port = XdsTestServer.freePort();
        mesh(config(port, false), TestCertificates.identityDirectory(dir, OWN, MESH_CA));
        assertTrue(serve(port).isSsl());
        Answer a = get(port, CALLER, false);
        assertEquals(200, a.status(), a.body());
        assertEquals("CN=reviews", a.serverSubject());
        // the TLS chain's route, chosen by the ALPN the client offered (istio-http/1.1), not the negotiated http/1.1
        assertEquals("tls", a.chain());
        // APPEND_FORWARD with the subject, URI and DNS: this hop's element, By the workload's own SPIFFE id
        assertTrue(a.body().startsWith("xfcc=By=" + REVIEWS + ";Hash="), a.body());
        assertTrue(a.body().contains(";Subject=\"CN=productpage\";URI=" + PRODUCTPAGE + "\n"), a.body());
        assertTrue(a.body().endsWith("proto=https"), a.body());
        awaitRequests(1);
        assertEquals("mutual_tls", label("connection_security_policy"));
        assertEquals(PRODUCTPAGE, label("source_principal"));
        assertEquals(REVIEWS, label("destination_principal"));
        // the access log's TLS operators read the TLS the service's server terminated
        StreamInfo in = requests.get(0);
        assertEquals("CN=productpage|CN=reviews", dev.inmesh.runtime.accesslog.CommandFormat.compile(
                "%DOWNSTREAM_PEER_SUBJECT%|%DOWNSTREAM_LOCAL_SUBJECT%", false)
                .format(dev.inmesh.runtime.accesslog.AccessLogEntry.of(in, in.log())));
    }

    /**
     * A caller offering none of the chain's ALPN protocols ({@code h2, http/1.1}), as Istio's HTTP/1.0 clients
     * ({@code istio-http/1.0, istio, http/1.0}), is served without ALPN, as Envoy's listener goes on with the
     * handshake when nothing is in common ({@code alpnSelectCallback}, {@code SSL_TLSEXT_ERR_NOACK}), where the
     * JDK's server answered it with a {@code no_application_protocol} alert.
     */
    @Test
    void aClientOfferingNoneOfTheChainsProtocolsIsServedWithoutAlpn() throws Exception {
        int port = XdsTestServer.freePort();
        mesh(config(port, false), TestCertificates.identityDirectory(dir, OWN, MESH_CA));
        serve(port);
        String answer = TestCertificates.tlsGet(port, CALLER, MESH_CA, null, "istio-http/1.0", "istio");
        assertTrue(answer.startsWith("HTTP/1.1 200") && answer.contains("x-chain: tls")
                && answer.endsWith("proto=https"), answer);
    }

    /**
     * In a JVM of its own, as an application starts (the JDK reads its TLS servers' SNI setting once, at their first
     * handshake, which other tests have had in this one): the server the mesh's options make for a STRICT port takes
     * an Istio sidecar's connection, whose SNI ({@code outbound_.9080_._.HOST}) is no DNS name.
     */
    @Test
    @Timeout(120) // a second JVM starts: on a loaded machine that alone took over 30 s
    void anIstioSidecarsConnectionWhoseSniIsNoDnsNameIsTaken() throws Exception {
        int port = XdsTestServer.freePort();
        Path config = Files.writeString(dir.resolve("mesh.yaml"), config(port, false));
        Path id = TestCertificates.identityDirectory(dir, OWN, MESH_CA);
        Path out = dir.resolve("application.out");
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp",
                System.getProperty("java.class.path"), Application.class.getName(), config.toString(), id.toString(),
                Integer.toString(port)).redirectErrorStream(true).redirectOutput(out.toFile()).start();
        try {
            for (int i = 0; i < 900 && !Files.readString(out).contains(Application.LISTENING) && p.isAlive(); i++) {
                Thread.sleep(100);
            }
            String answer = TestCertificates.istioSidecarGet(port, CALLER, MESH_CA,
                    "outbound_.9080_._.reviews.default.svc.cluster.local");
            assertTrue(answer.startsWith("HTTP/1.1 200") && answer.contains("x-chain: tls")
                    && answer.endsWith("proto=https"), answer + "\n" + Files.readString(out));
        } finally {
            p.destroy();
            p.waitFor(10, TimeUnit.SECONDS);
        }
    }

    /** The application of {@link #anIstioSidecarsConnectionWhoseSniIsNoDnsNameIsTaken}: config, identity, port. */
    static final class Application {
        static final String LISTENING = "listening";

        public static void main(String[] args) throws Exception {
            Vertx vertx = Vertx.vertx();
            Mesh mesh = Mesh.create(vertx, new MeshOptions().setConfigFile(args[0]).setIdentityDir(args[1])
                    .setAdminPort(-1));
            mesh.start().await(30, TimeUnit.SECONDS);
            vertx.createHttpServer(mesh.inboundServerOptions(new HttpServerOptions().setHost("127.0.0.1")
                            .setPort(Integer.parseInt(args[2]))))
                    .requestHandler(mesh.inbound(req -> req.response().end("proto="
                            + req.getHeader("x-forwarded-proto"))))
                    .listen().await(30, TimeUnit.SECONDS);
            System.out.println(LISTENING);
            Thread.sleep(60_000); // until the test ends it, at most a minute
            System.exit(0);
        }
    }

    @Test
    void anHttp2IstioClientIsServedOverH2ThroughTheStrictChain() throws Exception {
        int port = XdsTestServer.freePort();
        mesh(config(port, false), TestCertificates.identityDirectory(dir, OWN, MESH_CA));
        serve(port);
        Answer a = get(port, CALLER, true);
        assertEquals(200, a.status(), a.body());
        assertEquals(HttpVersion.HTTP_2, a.version());
        assertEquals("tls", a.chain());
    }

    @Test
    void clientsWithoutACertificateOfTheMeshInItsTrustDomainFailTheHandshake() throws Exception {
        int port = XdsTestServer.freePort();
        mesh(config(port, false), TestCertificates.identityDirectory(dir, OWN, MESH_CA));
        serve(port);
        assertThrows(Exception.class, () -> get(port, null, false), "no client certificate");
        assertThrows(Exception.class, () -> get(port, IMPOSTOR, false), "a certificate of another CA");
        assertThrows(Exception.class, () -> get(port, FOREIGN, false), "a SPIFFE id outside spiffe://cluster.local/");
        // a plaintext client gets no HTTP answer from a TLS-only port
        assertThrows(Exception.class, () -> plain.get(port, "127.0.0.1", "/").send().await(10, TimeUnit.SECONDS));
        assertEquals(200, get(port, CALLER, false).status());
        awaitRequests(1);
        assertEquals(1, requests.size(), requests.toString());
    }

    @Test
    void aRotatedWorkloadCertificateIsPresentedFromTheNextHandshakeOnWithoutRestartingTheServer() throws Exception {
        int port = XdsTestServer.freePort();
        Path id = TestCertificates.identityDirectory(dir, OWN, MESH_CA);
        mesh(config(port, false), id);
        serve(port);
        assertEquals("CN=reviews", get(port, CALLER, false).serverSubject());
        Files.writeString(id.resolve("key.pem"), ROTATED.keyPem());
        Files.writeString(id.resolve("cert-chain.pem"), ROTATED.certificatePem());
        Answer last = null;
        // the identity files are looked at every second; each call is a new connection, so a new handshake
        for (int i = 0; i < 100 && (last == null || !last.serverSubject().contains("rotated")); i++) {
            Thread.sleep(100);
            last = get(port, CALLER, false);
            assertEquals(200, last.status(), last.body());
        }
        assertEquals("CN=reviews-rotated", last.serverSubject());
        assertTrue(last.body().startsWith("xfcc=By=" + REVIEWS + ";"), last.body());
    }

    @Test
    void aPermissivePortKeepsPlainHttpOnItsPlaintextChain() throws Exception {
        int port = XdsTestServer.freePort();
        mesh(config(port, true), TestCertificates.identityDirectory(dir, OWN, MESH_CA));
        assertFalse(serve(port).isSsl());
        var r = plain.get(port, "127.0.0.1", "/").send().await(10, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode());
        assertEquals("raw_buffer", r.getHeader("x-chain"));
        assertEquals("xfcc=null\nproto=http", r.bodyAsString());
        awaitRequests(1);
        assertEquals("none", label("connection_security_policy"));
    }

    /**
     * With no identity directory, the STRICT chain's {@code default} and {@code ROOTCA} come from an SDS server
     * (the bootstrap's {@code sds-grpc}, as Istio's agent's): a new version of {@code default} is pushed to the
     * chain's TLS on its arrival, before its ACK, so the handshake right after the ACK presents it.
     */
    @Test
    void aRotatedSdsSecretIsPresentedFromTheHandshakeAfterItsAck() throws Exception {
        try (var sds = SdsTestServer.start()) {
            sds.set("1", SdsTestServer.certificate("default", OWN),
                    SdsTestServer.root("ROOTCA", MESH_CA));
            int port = XdsTestServer.freePort();
            mesh(config(port, false) + "  clusters:\n" + sds.sdsGrpcCluster(), null);
            serve(port);
            assertEquals("CN=reviews", get(port, CALLER, false).serverSubject());

            sds.set("2", SdsTestServer.certificate("default", ROTATED),
                    SdsTestServer.root("ROOTCA", MESH_CA));
            sds.awaitRequest(r -> r.getVersionInfo().equals("2") && r.getResourceNamesList().equals(
                    List.of("default")) && !r.getResponseNonce().isEmpty(), Duration.ofSeconds(10));
            Answer a = get(port, CALLER, false); // a new connection
            assertEquals(200, a.status(), a.body());
            assertEquals("CN=reviews-rotated", a.serverSubject());
        }
    }

    /**
     * Over ADS ({@code sds_config: {ads: {}}}): once a rotated {@code default} was pushed to the chain's TLS, a new
     * configuration that leaves {@code virtualInbound} as it was (another cluster comes) compiles the listener again
     * from its resource, parsed before the rotation: its TLS starts with the secret's version held now, so the next
     * handshake still presents the rotated certificate.
     */
    @Test
    void aListenerCompiledAgainAfterARotationOverAdsPresentsTheRotatedCertificate() throws Exception {
        int port = XdsTestServer.freePort();
        var yaml = new com.fasterxml.jackson.databind.ObjectMapper(
                new com.fasterxml.jackson.dataformat.yaml.YAMLFactory()).readTree(config(port, false).replaceAll(
                "sds_config: \\{api_config_source: .*\\}", "sds_config: {ads: {}, resource_api_version: V3}}"));
        var listener = dev.inmesh.runtime.xds.EnvoyJson.toMessage(yaml.path("static_resources").path("listeners")
                .get(0), io.envoyproxy.envoy.config.listener.v3.Listener.class);
        try (XdsTestServer server = XdsTestServer.start()) {
            server.set(inbound("1", List.of(), listener, "s1", OWN));
            mesh = Mesh.create(vertx, new MeshOptions().setXdsAddress("127.0.0.1:" + server.port())
                    .setAdminPort(-1));
            mesh.start().await(20, TimeUnit.SECONDS);
            serve(port);
            assertEquals("CN=reviews", get(port, CALLER, false).serverSubject());
            server.set(inbound("1", List.of(), listener, "s2", ROTATED));
            server.awaitRequest(r -> r.getTypeUrl().endsWith(".Secret") && r.getVersionInfo().equals("s2"),
                    Duration.ofSeconds(10));
            assertEquals("CN=reviews-rotated", get(port, CALLER, false).serverSubject());

            server.set(inbound("2", List.of(dev.inmesh.runtime.xds.ads.XdsFixtures.staticCluster("other", 9)),
                    listener, "s2", ROTATED));
            server.awaitRequest(r -> r.getTypeUrl().endsWith(".Listener") && r.getVersionInfo().equals("2"),
                    Duration.ofSeconds(10));
            Answer a = get(port, CALLER, false);
            assertEquals(200, a.status(), a.body());
            assertEquals("CN=reviews-rotated", a.serverSubject());
        }
    }

    /** {@code clusters} and {@code listener} of {@code version}, and the secrets of {@code own} as {@code secrets}. */
    private static io.envoyproxy.controlplane.cache.v3.Snapshot inbound(
            String version, List<io.envoyproxy.envoy.config.cluster.v3.Cluster> clusters,
            io.envoyproxy.envoy.config.listener.v3.Listener listener, String secrets, Issued own) {
        return io.envoyproxy.controlplane.cache.v3.Snapshot.create(clusters, version, List.of(), version,
                List.of(listener), version, List.of(), version, List.of(SdsTestServer.certificate("default", own),
                        SdsTestServer.root("ROOTCA", MESH_CA)), secrets);
    }

    @Test
    void withoutInboundConfigurationTheServerStaysPlain() throws Exception {
        mesh = Mesh.create(vertx, new MeshOptions().setAdminPort(-1));
        mesh.start().await(10, TimeUnit.SECONDS);
        HttpServerOptions o = mesh.inboundServerOptions(9080);
        assertFalse(o.isSsl());
        assertEquals(9080, o.getPort());
    }

    @Test
    void aStrictPortWithoutAnIdentityDirectoryIsAnErrorNamingTheSetting() throws Exception {
        int port = XdsTestServer.freePort();
        mesh(config(port, false), null);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> mesh.inboundServerOptions(port));
        assertTrue(e.getMessage().contains("inmesh.identity.dir") && e.getMessage().contains("port " + port),
                e.getMessage());
    }

    @Test
    void theBaseOptionsAreCopiedNotChanged() throws Exception {
        int port = XdsTestServer.freePort();
        mesh(config(port, false), TestCertificates.identityDirectory(dir, OWN, MESH_CA));
        HttpServerOptions base = new HttpServerOptions().setPort(port).setHost("127.0.0.1").setIdleTimeout(7);
        HttpServerOptions o = mesh.inboundServerOptions(base);
        assertTrue(o.isSsl());
        assertEquals(7, o.getIdleTimeout());
        assertEquals("127.0.0.1", o.getHost());
        assertFalse(base.isSsl());
    }
}
