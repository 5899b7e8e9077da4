package dev.inmesh.runtime.router;

import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.hosts;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.cluster.UpstreamTlsContext;
import dev.inmesh.api.config.cluster.UpstreamTlsContext.SanType;
import dev.inmesh.api.config.cluster.UpstreamTlsContext.SubjectAltNameMatcher;
import dev.inmesh.api.config.core.StringMatcher;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.upstream.TestCertificates.Issued;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.ClientAuth;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.core.net.PemTrustOptions;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * TLS origination as Envoy's {@code envoy.transport_sockets.tls} on a cluster: the router's plain request reaches a
 * loopback TLS server, which answers with the SNI it saw, the protocol and its client certificate's name.
 */
class RouterUpstreamTlsTest {
    private static final Issued CA = TestCertificates.ca("test-ca");
    private static final Issued OTHER_CA = TestCertificates.ca("other-ca");
    private static final Issued SERVER = TestCertificates.issue(CA, "api.example.com",
            List.of("api.example.com"), List.of("spiffe://example.com/api"));
    private static final Issued WILDCARD = TestCertificates.issue(CA, "wildcard", List.of("*.example.com"), List.of());
    private static final Issued CLIENT = TestCertificates.issue(CA, "client", List.of("client.example.com"),
            List.of());

    private final RouterRig rig = new RouterRig();
    private final AtomicInteger served = new AtomicInteger();
    private HttpServer server;

    @AfterEach
    void close() {
        rig.close();
    }

    private int tlsServer(boolean requireClientCert, boolean alpn) throws Exception {
        return tlsServer(SERVER, requireClientCert, alpn);
    }

    private int tlsServer(Issued cert, boolean requireClientCert, boolean alpn) throws Exception {
        HttpServerOptions o = new HttpServerOptions().setSsl(true).setSni(true).setUseAlpn(alpn)
                .setKeyCertOptions(new PemKeyCertOptions().setCertValue(Buffer.buffer(cert.certificatePem()))
                        .setKeyValue(Buffer.buffer(cert.keyPem())));
        if (requireClientCert) {
            o.setClientAuth(ClientAuth.REQUIRED)
                    .setTrustOptions(new PemTrustOptions().addCertValue(Buffer.buffer(CA.certificatePem())));
        }
        server = rig.vertx.createHttpServer(o).requestHandler(req -> {
            served.incrementAndGet();
            req.response().end("sni=" + req.connection().indicatedServerName() + " " + req.version()
                    + " client=" + (requireClientCert ? "verified" : "none"));
        }).listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        return server.actualPort();
    }

    private ClusterManager cluster(int port, boolean http2, UpstreamTlsContext tls) {
        return rig.clusters(new Cluster("c", DiscoveryType.STATIC, "", LbPolicy.ROUND_ROBIN, null,
                Duration.ofSeconds(2), null, null, null, null, hosts("c", port), null, null, null, http2, false, null,
                null, tls));
    }

    private static UpstreamTlsContext tls(String sni, Issued clientCert, Issued trustedCa,
                                          List<SubjectAltNameMatcher> sans) {
        return new UpstreamTlsContext(sni, clientCert == null ? null : clientCert.certificatePem(),
                clientCert == null ? null : clientCert.keyPem(), trustedCa == null ? null : trustedCa.certificatePem(),
                false, sans, List.of(), null, null);
    }

    private RouterRig.Result call(ClusterManager clusters) {
        return rig.call(rig.router(), get("/"), routeToC("retry_policy: {retry_on: connect-failure, num_retries: 2}"),
                clusters);
    }

    @Test
    void aPlainRequestReachesTheTlsUpstreamWhoseCertificateIsNotVerifiedWithoutAValidationContext()
            throws Exception {
        // the server's CA is unknown to the cluster: Envoy verifies nothing without trusted_ca
        var r = call(cluster(tlsServer(false, false), false, tls("", null, null, List.of())));
        assertEquals(200, r.status());
        assertEquals("sni=null HTTP_1_1 client=none", r.body());
    }

    @Test
    void theServerSeesTheConfiguredSniAndNoneWithout() throws Exception {
        int port = tlsServer(false, false);
        assertEquals("sni=api.example.com HTTP_1_1 client=none",
                call(cluster(port, false, tls("api.example.com", null, null, List.of()))).body());
        assertEquals("sni=null HTTP_1_1 client=none", call(cluster(port, false, tls("", null, null, List.of())))
                .body());
    }

    @Test
    void aServerCertificateOfAnotherCaFailsTheConnectionWith503UfAndItsRetriesEnd() throws Exception {
        var r = call(cluster(tlsServer(false, false), false, tls("api.example.com", null, OTHER_CA, List.of())));
        assertEquals(503, r.status());
        assertTrue(r.flags().contains("UF"), r.flags());
        assertEquals(0, served.get());
    }

    @Test
    void theConnectTimeoutCoversTheTlsHandshakeOfAServerThatNeverAnswersIt() throws Exception {
        try (ServerSocket silent = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
            ClusterManager clusters = rig.clusters(new Cluster("c", DiscoveryType.STATIC, "", LbPolicy.ROUND_ROBIN,
                    null, Duration.ofMillis(300), null, null, null, null, hosts("c", silent.getLocalPort()), null, null,
                    null, false, false, null, null, tls("", null, null, List.of())));
            // the TCP connect succeeds (the backlog takes it); the handshake never ends
            var r = rig.call(rig.router(), get("/"), routeToC(""), clusters);
            assertEquals(503, r.status());
            assertTrue(r.flags().contains("UF"), r.flags());
            assertTrue(r.elapsedMillis() < 3000, r.elapsedMillis() + " ms");
        }
    }

    @Test
    void aTrustedChainIsAcceptedWithoutCheckingTheHostNameAgainstTheCertificate() throws Exception {
        // the host is 127.0.0.1 and the SNI another name: neither is in the certificate, as Envoy does not check
        var r = call(cluster(tlsServer(false, false), false, tls("other.example.org", null, CA, List.of())));
        assertEquals(200, r.status());
    }

    @Test
    void theSanMatchersMustMatchOneSanOfTheServersCertificate() throws Exception {
        int port = tlsServer(false, false);
        var dns = new SubjectAltNameMatcher(SanType.DNS, new StringMatcher.Exact("api.example.com", false));
        var uri = new SubjectAltNameMatcher(SanType.URI, new StringMatcher.Prefix("spiffe://example.com/", false));
        var wrong = new SubjectAltNameMatcher(SanType.DNS, new StringMatcher.Exact("db.example.com", false));
        // a URI matcher does not match the same text as a DNS SAN
        var wrongType = new SubjectAltNameMatcher(SanType.URI, new StringMatcher.Exact("api.example.com", false));
        assertEquals(200, call(cluster(port, false, tls("", null, CA, List.of(wrong, dns)))).status());
        assertEquals(200, call(cluster(port, false, tls("", null, CA, List.of(uri)))).status());
        var r = call(cluster(port, false, tls("", null, CA, List.of(wrong, wrongType))));
        assertEquals(503, r.status());
        assertTrue(r.flags().contains("UF"), r.flags());
    }

    @Test
    void anExactDnsMatcherMatchesAWildcardSanForOneLabelOnly() throws Exception {
        int port = tlsServer(WILDCARD, false, false);
        for (String name : List.of("api.example.com", "a.b.example.com", "example.com")) {
            var m = new SubjectAltNameMatcher(SanType.DNS, new StringMatcher.Exact(name, false));
            assertEquals(name.equals("api.example.com") ? 200 : 503,
                    call(cluster(port, false, tls("", null, CA, List.of(m)))).status(), name);
        }
    }

    @Test
    void mutualTlsPresentsTheClientCertificateTheServerRequires() throws Exception {
        int port = tlsServer(true, false);
        assertEquals(503, call(cluster(port, false, tls("", null, CA, List.of()))).status());
        var r = call(cluster(port, false, tls("", CLIENT, CA, List.of())));
        assertEquals(200, r.status());
        assertEquals("sni=null HTTP_1_1 client=verified", r.body());
    }

    @Test
    void anHttp2ClusterSpeaksH2OverTlsThroughAlpn() throws Exception {
        var r = call(cluster(tlsServer(false, true), true, tls("api.example.com", null, CA, List.of())));
        assertEquals(200, r.status());
        assertEquals("sni=api.example.com HTTP_2 client=none", r.body());
    }
}
