package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.inbound.InboundHandler;
import dev.inmesh.runtime.router.IstioRbac;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mesh.inbound(handler)} under Istio's AuthorizationPolicies: the {@code virtualInbound} connection manager
 * carries istiod's DENY and ALLOW RBAC filters; a request they deny is answered {@code 403 RBAC: access denied}
 * without calling the application, logged with {@code rbac_access_denied_matched_policy[...]} and counted in Istio's
 * metrics as a 403 and in the connection manager's {@code rbac.*} statistics; an allowed request reaches it.
 */
class MeshInboundRbacTest {
    static final String CONFIG = IstioRbac.first(IstioRbac.DENY_THEN_ALLOW,
            MeshWebClientTest.virtualInbound("", """
                                  routes:
                                  - {match: {prefix: /}, route: {cluster: "inbound|9080||", timeout: 0s}}
                    """));

    @TempDir
    Path dir;
    final Vertx vertx = Vertx.vertx();
    /** A plain client (not the mesh's), held for the whole test: Vert.x closes a client no longer referenced. */
    final WebClient plain = WebClient.create(vertx);
    final AtomicInteger appCalls = new AtomicInteger();
    Mesh mesh;

    @AfterEach
    void stop() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** A server on loopback whose requests go through {@code inbound} to an application that counts its calls. */
    private int serve(java.util.function.Function<io.vertx.core.Handler<io.vertx.core.http.HttpServerRequest>,
            io.vertx.core.Handler<io.vertx.core.http.HttpServerRequest>> inbound) {
        return vertx.createHttpServer().requestHandler(inbound.apply(req -> {
            appCalls.incrementAndGet();
            req.response().end("app");
        })).listen(0, "127.0.0.1").await().actualPort();
    }

    private HttpResponse<Buffer> call(int port, HttpMethod method, String uri, boolean token) {
        var r = plain.request(method, port, "127.0.0.1", uri);
        if (token) {
            r.putHeader("x-token", "secret");
        }
        return r.send().await();
    }

    private String admin(String path, String expected) throws Exception {
        return admin(plain, mesh.adminPort(), path, expected);
    }

    /** The admin server's answer to {@code path} once it has {@code expected} (at most about 5 s), else the last. */
    static String admin(WebClient plain, int adminPort, String path, String expected) throws Exception {
        return admin(plain, adminPort, path, body -> body.contains(expected));
    }

    /** The admin server's answer to {@code path} once {@code ready} holds for it (at most about 5 s), else the last. */
    static String admin(WebClient plain, int adminPort, String path, java.util.function.Predicate<String> ready)
            throws Exception {
        String body = "";
        for (int i = 0; i < 100 && !ready.test(body); i++) {
            if (i > 0) {
                Thread.sleep(50);
            }
            body = plain.get(adminPort, "127.0.0.1", path).send().await(10, TimeUnit.SECONDS).bodyAsString();
        }
        return body;
    }

    @Test
    void aDenialCarriesTheRoutesResponseHeaderRulesAsEnvoysLocalReplyAppliesThem() throws Exception {
        Path file = Files.writeString(dir.resolve("mesh.yaml"), IstioRbac.first(IstioRbac.DENY_THEN_ALLOW,
                MeshWebClientTest.virtualInbound("", """
                                  routes:
                                  - match: {prefix: /}
                                    route: {cluster: "inbound|9080||", timeout: 0s}
                                    response_headers_to_add: [{header: {key: x-route, value: r}}]
                    """)));
        mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("reviews-v1").setApp("reviews")
                .setNamespace("default").setConfigFile(file.toString()).setAdminPort(0));
        mesh.start().await(10, TimeUnit.SECONDS);
        int port = serve(mesh::inbound);

        HttpResponse<Buffer> denied = call(port, HttpMethod.GET, "/reviews/0", false);
        assertEquals(403, denied.statusCode());
        assertEquals("r", denied.getHeader("x-route"));
        assertEquals("r", call(port, HttpMethod.GET, "/reviews/0", true).getHeader("x-route"), "as the app's answer");
    }

    @Test
    void istiosDenyAndAllowPoliciesAnswerDeniedRequests403WithoutCallingTheApplication() throws Exception {
        Path file = Files.writeString(dir.resolve("mesh.yaml"), CONFIG);
        mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("reviews-v1").setApp("reviews")
                .setNamespace("default").setConfigFile(file.toString()).setAdminPort(0));
        mesh.start().await(10, TimeUnit.SECONDS);
        int port = serve(mesh::inbound);

        HttpResponse<Buffer> allowed = call(port, HttpMethod.GET, "/reviews/0", true);
        assertEquals(200, allowed.statusCode());
        assertEquals("app", allowed.bodyAsString());
        assertEquals(200, call(port, HttpMethod.GET, "/reviews/0?sort=asc", true).statusCode(),
                "url_path does not see the query");
        HttpResponse<Buffer> noToken = call(port, HttpMethod.GET, "/reviews/0", false);
        assertEquals(403, noToken.statusCode());
        assertEquals("RBAC: access denied", noToken.bodyAsString());
        assertEquals("text/plain", noToken.getHeader("content-type"));
        assertEquals(403, call(port, HttpMethod.POST, "/reviews/0", true).statusCode());
        assertEquals(403, call(port, HttpMethod.GET, "/admin/users", true).statusCode());
        assertEquals(2, appCalls.get(), "a denied request never reaches the application");

        // both filters share the connection manager's rbac.* counters: the DENY filter allowed four and denied one,
        // the ALLOW filter, which the fifth never reached, allowed two and denied two
        String p = "http.inbound_0.0.0.0_9080.";
        String stats = admin("/stats?filter=rbac", p + "rbac.denied: 3");
        assertTrue(stats.contains(p + "rbac.allowed: 6\n") && stats.contains(p + "rbac.denied: 3\n"), stats);
        String prom = admin("/stats/prometheus", "response_code=\"403\"");
        assertTrue(prom.lines().anyMatch(l -> l.startsWith("istio_requests_total{")
                && l.contains("reporter=\"destination\"") && l.contains("response_code=\"403\"")
                && l.contains("response_flags=\"-\"") && l.endsWith(" 3")), prom);
    }

    /**
     * {@link #CONFIG} as istiod writes it for a workload that also serves a TCP port: the port's chain led by the
     * RBAC network filters ({@link IstioRbac#TCP_DENY_THEN_ALLOW}) before its tcp_proxy, and that port's cluster.
     */
    static final String WITH_TCP_CHAIN = CONFIG.replace("    filter_chains:\n", "    filter_chains:\n"
            + "    - name: 0.0.0.0_3306\n"
            + "      filter_chain_match: {destination_port: 3306}\n"
            + "      filters:\n"
            + IstioRbac.TCP_DENY_THEN_ALLOW.indent(6)
            + """
                  - name: envoy.filters.network.tcp_proxy
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                      stat_prefix: inbound|3306||
                      cluster: inbound|3306||
            """) + """
              clusters:
              - name: inbound|3306||
                type: STATIC
                connect_timeout: 1s
                load_assignment:
                  cluster_name: inbound|3306||
                  endpoints:
                  - lb_endpoints:
                    - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 3306}}}
            """;

    @Test
    void aVirtualInboundWhoseTcpChainCarriesIstiosNetworkRbacLoadsAndItsHttpPoliciesStillDecide() throws Exception {
        Path file = Files.writeString(dir.resolve("mesh.yaml"), WITH_TCP_CHAIN);
        mesh = Mesh.create(vertx, new MeshOptions().setAdminPort(0).setWorkloadName("reviews-v1").setApp("reviews")
                .setNamespace("default").setConfigFile(file.toString()));
        // the in-JVM side has no TCP connections to check: the chain loads, its filters run in the proxy only
        mesh.start().await(10, TimeUnit.SECONDS);
        int port = serve(mesh::inbound);
        assertEquals(200, call(port, HttpMethod.GET, "/reviews/0", true).statusCode());
        assertEquals(403, call(port, HttpMethod.GET, "/reviews/0", false).statusCode());
        assertEquals(1, appCalls.get());
    }

    /**
     * Istio's connection manager normalizes paths ({@code normalize_path: true}): Envoy's RBAC filters read the
     * normalized path, so dot segments and encoded dots cannot walk around a DENY on {@code /admin} to reach an
     * application that resolves them itself (as Vert.x Web's router does).
     */
    @Test
    void theRbacFiltersReadThePathAsTheConnectionManagerNormalizedItSoDotSegmentsDoNotEscapeADeny()
            throws Exception {
        SnapshotHolder snapshots = new SnapshotHolder();
        snapshots.apply(EnvoyConfigReader.read(IstioRbac.first(IstioRbac.DENY_ADMIN, MeshWebClientTest.virtualInbound(
                "normalize_path: true", """
                                  routes:
                                  - {match: {prefix: /}, route: {cluster: "inbound|9080||", timeout: 0s}}
                    """))));
        List<StreamInfo> logged = new CopyOnWriteArrayList<>();
        int port = serve(app -> new InboundHandler(app, snapshots, logged::add));
        assertEquals(200, call(port, HttpMethod.GET, "/public/x", false).statusCode());
        for (String walk : List.of("/public/%2e%2e/admin/users", "/public/../admin/users", "/%61dmin/users")) {
            HttpResponse<Buffer> r = call(port, HttpMethod.GET, walk, false);
            assertEquals(403, r.statusCode(), walk);
            assertEquals("RBAC: access denied", r.bodyAsString(), walk);
        }
        assertEquals(400, call(port, HttpMethod.GET, "/admin%00", false).statusCode(),
                "an encoded NUL is refused, as Envoy's normalization refuses it");
        assertEquals(1, appCalls.get(), "only /public/x reached the application");
        for (int i = 0; i < 100 && logged.size() < 5; i++) {
            Thread.sleep(20);
        }
        assertTrue(logged.stream().anyMatch(s -> s.responseCode() == 400
                && s.responseCodeDetails().equals("path_normalization_failed")), logged.toString());
        // the access log has the path as normalized, as Envoy logs :path after its normalization
        assertEquals(List.of("/admin/users", "/admin/users", "/admin/users"), logged.stream()
                .filter(s -> s.responseCode() == 403).map(StreamInfo::path).toList());
        snapshots.close();
    }

    /**
     * Envoy's connection manager rewrites {@code :path} in place as it normalizes it, so the application routes the
     * path the RBAC filters checked: a path parameter on a dot-dot segment ({@code /admin/..;/x}, which Envoy's
     * normalization takes as {@code ..}) is {@code /x} to the policy and to Vert.x Web's router alike, which would
     * otherwise take it for a path under {@code /admin}.
     */
    @Test
    void theServiceGetsThePathAsTheConnectionManagerNormalizedItAsEnvoyRewritesPathInPlace() throws Exception {
        SnapshotHolder snapshots = new SnapshotHolder();
        snapshots.apply(EnvoyConfigReader.read(IstioRbac.first(IstioRbac.DENY_ADMIN, MeshWebClientTest.virtualInbound(
                "normalize_path: true", """
                                  routes:
                                  - {match: {prefix: /}, route: {cluster: "inbound|9080||", timeout: 0s}}
                    """))));
        io.vertx.ext.web.Router web = io.vertx.ext.web.Router.router(vertx);
        web.route("/admin*").handler(rc -> rc.response().end("admin"));
        web.route().handler(rc -> rc.response().end(rc.request().uri() + " " + rc.request().path() + " "
                + rc.request().query()));
        int port = vertx.createHttpServer().requestHandler(new InboundHandler(web, snapshots, s -> {}))
                .listen(0, "127.0.0.1").await().actualPort();
        assertEquals("/x /x null", call(port, HttpMethod.GET, "/admin/..;/x",
                false).bodyAsString());
        assertEquals("/b?q=1 /b q=1", call(port, HttpMethod.GET, "/public/%2e%2e/a/./../b?q=1", false)
                .bodyAsString());
        assertEquals("/public/x /public/x null", call(port, HttpMethod.GET, "/public/x", false).bodyAsString());
        snapshots.close();
    }

    @Test
    void theAccessLogNamesThePolicyThatDeniedAndNoResponseFlagAsEnvoys() throws Exception {
        SnapshotHolder snapshots = new SnapshotHolder();
        snapshots.apply(EnvoyConfigReader.read(CONFIG));
        List<StreamInfo> logged = new CopyOnWriteArrayList<>();
        int port = serve(app -> new InboundHandler(app, snapshots, logged::add));
        call(port, HttpMethod.GET, "/admin", true);
        call(port, HttpMethod.GET, "/reviews/0", false);
        call(port, HttpMethod.GET, "/reviews/0", true);
        for (int i = 0; i < 100 && logged.size() < 3; i++) {
            Thread.sleep(20);
        }
        assertEquals(3, logged.size());
        StreamInfo admin = logged.stream().filter(s -> s.path().equals("/admin")).findFirst().orElseThrow();
        assertEquals(403, admin.responseCode());
        assertEquals("rbac_access_denied_matched_policy[ns[default]-policy[deny-admin]-rule[0]]",
                admin.responseCodeDetails());
        assertTrue(admin.responseFlags().isEmpty(), "Envoy's RBAC filter sets no response flag: "
                + admin.responseFlags());
        assertEquals("inbound|9080||", admin.upstreamCluster(), "counted for the route's cluster");
        // as Envoy's: no upstream host and no attempt, the service never reached
        assertNull(admin.upstreamHost());
        assertEquals(0, admin.attemptCount());
        StreamInfo noToken = logged.stream().filter(s -> s.responseCode() == 403 && s.path().equals("/reviews/0"))
                .findFirst().orElseThrow();
        assertEquals("rbac_access_denied_matched_policy[none]", noToken.responseCodeDetails());
        StreamInfo ok = logged.stream().filter(s -> s.responseCode() == 200).findFirst().orElseThrow();
        assertEquals("via_upstream", ok.responseCodeDetails());
        assertEquals(1, appCalls.get());
        snapshots.close();
    }

    /**
     * Envoy's {@code authenticated} without {@code principal_name} matches any connection with TLS, a client that
     * presented no certificate included; a plaintext one never.
     */
    @Test
    void onATlsServerACallerWithoutACertificateIsAuthenticatedWithoutAPrincipalNameAsEnvoys() throws Exception {
        var ca = dev.inmesh.runtime.upstream.TestCertificates.ca("cluster.local");
        SnapshotHolder snapshots = new SnapshotHolder();
        snapshots.apply(EnvoyConfigReader.read(IstioRbac.first("""
                - name: envoy.filters.http.rbac
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
                    rules:
                      policies:
                        tls-only: {permissions: [{any: true}], principals: [{authenticated: {}}]}
                """, MeshWebClientTest.virtualInbound("", """
                                  routes:
                                  - {match: {prefix: /}, route: {cluster: "inbound|9080||", timeout: 0s}}
                    """))));
        io.vertx.core.Handler<io.vertx.core.http.HttpServerRequest> app = new InboundHandler(req -> {
            appCalls.incrementAndGet();
            req.response().end("app");
        }, snapshots, s -> { });
        // a TLS server that asks no client certificate
        int tlsPort = vertx.createHttpServer(dev.inmesh.runtime.upstream.TestCertificates.requiringClientCertificate(
                dev.inmesh.runtime.upstream.TestCertificates.issue(ca, "reviews", List.of("localhost"), List.of()), ca)
                .setClientAuth(io.vertx.core.http.ClientAuth.NONE)).requestHandler(app)
                .listen(0, "127.0.0.1").await().actualPort();
        int plainPort = vertx.createHttpServer().requestHandler(app).listen(0, "127.0.0.1").await().actualPort();
        var client = vertx.createHttpClient(new io.vertx.core.http.HttpClientOptions().setSsl(true)
                .setVerifyHost(false).setTrustOptions(new io.vertx.core.net.PemTrustOptions()
                        .addCertValue(Buffer.buffer(ca.certificatePem()))));
        try {
            assertEquals(200, client.request(HttpMethod.GET, tlsPort, "127.0.0.1", "/details/0")
                    .compose(r -> r.send()).await(10, TimeUnit.SECONDS).statusCode());
        } finally {
            client.close();
        }
        assertEquals(403, call(plainPort, HttpMethod.GET, "/details/0", false).statusCode());
        assertEquals(1, appCalls.get());
        snapshots.close();
    }

    @Test
    void onATlsServerTheCallersCertificateIsTheAuthenticatedPrincipal() throws Exception {
        var ca = dev.inmesh.runtime.upstream.TestCertificates.ca("cluster.local");
        var own = dev.inmesh.runtime.upstream.TestCertificates.issue(ca, "reviews", List.of("localhost"),
                List.of("spiffe://cluster.local/ns/default/sa/bookinfo-reviews"));
        SnapshotHolder snapshots = new SnapshotHolder();
        snapshots.apply(EnvoyConfigReader.read(CONFIG));
        List<StreamInfo> logged = new CopyOnWriteArrayList<>();
        int port = vertx.createHttpServer(dev.inmesh.runtime.upstream.TestCertificates.requiringClientCertificate(
                own, ca)).requestHandler(new InboundHandler(req -> {
                    appCalls.incrementAndGet();
                    req.response().end("app");
                }, snapshots, logged::add)).listen(0, "127.0.0.1").await().actualPort();
        java.util.function.Function<String, Integer> getAs = sa -> {
            var cert = dev.inmesh.runtime.upstream.TestCertificates.issue(ca, sa, List.of(),
                    List.of("spiffe://cluster.local/ns/default/sa/" + sa));
            var client = vertx.createHttpClient(new io.vertx.core.http.HttpClientOptions().setSsl(true)
                    .setVerifyHost(false).setTrustOptions(new io.vertx.core.net.PemTrustOptions()
                            .addCertValue(Buffer.buffer(ca.certificatePem())))
                    .setKeyCertOptions(new io.vertx.core.net.PemKeyCertOptions()
                            .setCertValue(Buffer.buffer(cert.certificatePem()))
                            .setKeyValue(Buffer.buffer(cert.keyPem()))));
            try {
                return client.request(HttpMethod.GET, port, "127.0.0.1", "/details/0")
                        .compose(r -> r.send()).await(10, TimeUnit.SECONDS).statusCode();
            } catch (Exception e) {
                throw new AssertionError(e);
            } finally {
                client.close();
            }
        };
        // no x-token and a path the loopback policy does not allow: only productpage's principal lets it through
        assertEquals(200, getAs.apply("bookinfo-productpage"));
        assertEquals(403, getAs.apply("bookinfo-ratings"));
        assertEquals(1, appCalls.get());
        for (int i = 0; i < 100 && logged.size() < 2; i++) {
            Thread.sleep(20);
        }
        assertTrue(logged.stream().anyMatch(s -> s.responseCode() == 403
                && s.responseCodeDetails().equals("rbac_access_denied_matched_policy[none]")), logged.toString());
        snapshots.close();
    }
}
