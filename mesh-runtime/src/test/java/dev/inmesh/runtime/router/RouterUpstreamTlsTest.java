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
import dev.inmesh.runtime.accesslog.AccessLog;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.upstream.TestCertificates.Issued;
import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.MultiMap;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.ClientAuth;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.core.net.PemTrustOptions;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * TLS origination as Envoy's {@code envoy.transport_sockets.tls} on a cluster: the router's plain request reaches a
 * loopback TLS server, which answers with the SNI it saw, the protocol and its client certificate's name.
 */
class RouterUpstreamTlsTest {
    /**
     * The clusters' connect timeout, which covers the TLS handshake as Envoy's does: room for a JVM's first
     * handshakes on a loaded machine (a 2 s one ran out once under a parallel build); no test here times out on it.
     */
    private static final Duration HANDSHAKE_ROOM = Duration.ofSeconds(10);

    private static final Issued CA = TestCertificates.ca("test-ca");
    private static final Issued OTHER_CA = TestCertificates.ca("other-ca");
    private static final Issued SERVER = TestCertificates.issue(CA, "api.example.com",
            List.of("api.example.com"), List.of("spiffe://example.com/api"));
    private static final Issued WILDCARD = TestCertificates.issue(CA, "wildcard", List.of("*.example.com"), List.of());
    private static final Issued CLIENT = TestCertificates.issue(CA, "client", List.of("client.example.com"),
            List.of());
    /** Istio's workload certificates: the server's and the client's SPIFFE identities. */
    private static final Issued ISTIO_SERVER = TestCertificates.issue(CA, "reviews", List.of(),
            List.of("spiffe://cluster.local/ns/bookinfo/sa/reviews"));
    private static final Issued ISTIO_CLIENT = TestCertificates.issue(CA, "productpage", List.of(),
            List.of("spiffe://cluster.local/ns/default/sa/productpage"));

    private final RouterRig rig = new RouterRig();
    private final AtomicInteger served = new AtomicInteger();
    private final AtomicInteger connections = new AtomicInteger();
    private final AtomicInteger closed = new AtomicInteger();
    /** Each request's SNI and authority, as the server saw them. */
    private final java.util.Queue<String> snis = new java.util.concurrent.ConcurrentLinkedQueue<>();
    private HttpServer server;
    /** The cluster statistics of {@link #countingRouter()}. */
    private final io.micrometer.prometheusmetrics.PrometheusMeterRegistry reg =
            new io.micrometer.prometheusmetrics.PrometheusMeterRegistry(
                    io.micrometer.prometheusmetrics.PrometheusConfig.DEFAULT);

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
        server = rig.vertx.createHttpServer(o).connectionHandler(c -> {
            connections.incrementAndGet();
            c.closeHandler(v -> closed.incrementAndGet());
        })
                .requestHandler(req -> {
            snis.add(req.connection().indicatedServerName() + " " + req.authority());
            served.incrementAndGet();
            req.response().end("sni=" + req.connection().indicatedServerName() + " " + req.version()
                    + " client=" + (requireClientCert ? "verified" : "none"));
        }).listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        return server.actualPort();
    }

    private ClusterManager cluster(int port, boolean http2, UpstreamTlsContext tls) {
        return rig.clusters(config(port, http2, tls));
    }

    private static Cluster config(int port, boolean http2, UpstreamTlsContext tls) {
        return Cluster.builder("c", DiscoveryType.STATIC).lbPolicy(LbPolicy.ROUND_ROBIN).connectTimeout(HANDSHAKE_ROOM)
                .loadAssignment(hosts("c", port)).http2(http2).tls(tls).build();
    }

    private void awaitClosed(int n) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (closed.get() < n && System.nanoTime() < end) {
            Thread.sleep(10);
        }
        assertEquals(n, closed.get());
    }

    private static UpstreamTlsContext tls(String sni, Issued clientCert, Issued trustedCa,
                                          List<SubjectAltNameMatcher> sans) {
        return new UpstreamTlsContext(sni, clientCert == null ? null : clientCert.certificatePem(),
                clientCert == null ? null : clientCert.keyPem(), trustedCa == null ? null : trustedCa.certificatePem(),
                false, sans, List.of(), null, null);
    }

    /** A GET of / whose Host (authority) is {@code authority}. */
    private RouterRig.Result callWithHost(ClusterManager clusters, String authority) {
        var req = new RouterRequest(StreamInfo.Direction.OUTBOUND, HttpMethod.GET, "/", authority, "http",
                MultiMap.caseInsensitiveMultiMap(), null, "127.0.0.1:50000", "127.0.0.1:15001", null, "HTTP/1.1");
        return rig.call(rig.router(), req, routeToC(""), clusters);
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
            ClusterManager clusters = rig.clusters(Cluster.builder("c", DiscoveryType.STATIC)
                    .lbPolicy(LbPolicy.ROUND_ROBIN).connectTimeout(Duration.ofMillis(300))
                    .loadAssignment(hosts("c", silent.getLocalPort())).tls(tls("", null, null, List.of())).build());
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
    void anIpAddressSanIsMatchedInItsShortestTextAsEnvoyPrintsIt() throws Exception {
        int port = tlsServer(TestCertificates.issueForIps(CA, "ips", List.of("2001:db8:0:0:0:0:0:1", "10.0.0.7")),
                false, false);
        for (String ip : List.of("2001:db8::1", "10.0.0.7", "2001:db8:0:0:0:0:0:1")) {
            var m = new SubjectAltNameMatcher(SanType.IP_ADDRESS, new StringMatcher.Exact(ip, false));
            assertEquals(ip.equals("2001:db8:0:0:0:0:0:1") ? 503 : 200,
                    call(cluster(port, false, tls("", null, CA, List.of(m)))).status(), ip);
        }
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
    void anExactDnsMatcherComparesNamesIgnoringCaseAndMatchesAPartialWildcardSanAsEnvoy() throws Exception {
        int port = tlsServer(false, false);
        var upper = new SubjectAltNameMatcher(SanType.DNS, new StringMatcher.Exact("API.Example.com", false));
        assertEquals(200, call(cluster(port, false, tls("", null, CA, List.of(upper)))).status());
        // a URI SAN is no DNS name: its exact matcher compares the text as it is
        var uri = new SubjectAltNameMatcher(SanType.URI, new StringMatcher.Exact("SPIFFE://example.com/api", false));
        assertEquals(503, call(cluster(port, false, tls("", null, CA, List.of(uri)))).status());
        server.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        port = tlsServer(TestCertificates.issue(CA, "partial", List.of("api*.example.com"), List.of()), false, false);
        for (String name : List.of("api-v2.example.com", "web.example.com", "api.v2.example.com")) {
            var m = new SubjectAltNameMatcher(SanType.DNS, new StringMatcher.Exact(name, false));
            assertEquals(name.equals("api-v2.example.com") ? 200 : 503,
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

    /** The reason the access log's text and JSON lines carry for an exchange. */
    private static void assertReason(String expected, RouterRig.Result r) {
        assertEquals(expected, r.info().upstreamTransportFailureReason(), r.flags());
        String text = AccessLog.create(AccessLog.Format.TEXT, line -> { }).format(r.info());
        assertTrue(text.contains(" \"" + (expected == null ? "-" : expected) + "\" "), text);
        String json = AccessLog.create(AccessLog.Format.JSON, line -> { }).format(r.info());
        assertTrue(json.contains("\"upstream_transport_failure_reason\":"
                + (expected == null ? "null" : "\"" + expected + "\"")), json);
    }

    @Test
    void theAccessLogNamesWhyTheFinalAttemptsUpstreamTlsHandshakeFailed() throws Exception {
        int port = tlsServer(true, false);
        var wrong = new SubjectAltNameMatcher(SanType.DNS, new StringMatcher.Exact("db.example.com", false));
        var untrusted = call(cluster(port, false, tls("", CLIENT, OTHER_CA, List.of())));
        assertEquals(503, untrusted.status());
        assertReason("TLS_error:|CERTIFICATE_VERIFY_FAILED:verify_chain:TLS_error_end", untrusted);
        // and the local reply's body and details, as Envoy's router writes them
        assertEquals("upstream connect error or disconnect/reset before headers. retried and the latest reset reason: "
                + "connection failure, transport failure reason: "
                + "TLS_error:|CERTIFICATE_VERIFY_FAILED:verify_chain:TLS_error_end", untrusted.body());
        assertEquals("upstream_reset_before_response_started{connection_failure|"
                + "TLS_error:|CERTIFICATE_VERIFY_FAILED:verify_chain:TLS_error_end}",
                untrusted.info().responseCodeDetails());
        assertReason("TLS_error:|CERTIFICATE_VERIFY_FAILED:verify_SAN_list:TLS_error_end",
                call(cluster(port, false, tls("", CLIENT, CA, List.of(wrong)))));
        assertReason("TLS_error:|CERTIFICATE_VERIFY_FAILED:verify_SAN_list:TLS_error_end",
                callWithHost(cluster(port, false, tls("", CLIENT, CA, List.of()).withAutoSni(false, true)),
                        "db.example.com"));
        // the server refuses a connection without the client certificate it requires (TLS 1.2: during the handshake)
        // with the alert its TLS stack chooses: JDK 17's server sends bad_certificate, JDK 25's handshake_failure
        var noClientCert = call(cluster(port, false, tls12(new UpstreamTlsContext("", null, null,
                CA.certificatePem(), false, List.of(), List.of(), null, null))));
        String alert = noClientCert.info().upstreamTransportFailureReason();
        assertTrue(List.of("TLS_error:|ALERT_BAD_CERTIFICATE:TLS_error_end",
                "TLS_error:|ALERT_HANDSHAKE_FAILURE:TLS_error_end").contains(alert), alert);
        assertReason(alert, noClientCert);
        var ok = call(cluster(port, false, tls("", CLIENT, CA, List.of())));
        assertEquals(200, ok.status());
        assertReason(null, ok);
        assertEquals(1, served.get());
    }

    @Test
    void theAccessLogNamesATlsVersionTheServerDoesNotSpeak() throws Exception {
        HttpServerOptions o = new HttpServerOptions().setSsl(true)
                .setEnabledSecureTransportProtocols(java.util.Set.of("TLSv1.3"))
                .setKeyCertOptions(new PemKeyCertOptions().setCertValue(Buffer.buffer(SERVER.certificatePem()))
                        .setKeyValue(Buffer.buffer(SERVER.keyPem())));
        server = rig.vertx.createHttpServer(o).requestHandler(req -> req.response().end())
                .listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        var r = call(cluster(server.actualPort(), false, tls12(tls("", null, CA, List.of()))));
        assertEquals(503, r.status());
        assertReason("TLS_error:|ALERT_PROTOCOL_VERSION:TLS_error_end", r);
    }

    @Test
    void aRetryThatSucceedsAfterAFailedTlsHandshakeLogsNoTransportFailureReason() throws Exception {
        int bad = tlsServer(TestCertificates.issue(OTHER_CA, "bad", List.of("api.example.com"), List.of()), false,
                false);
        int good = tlsServer(false, false);
        ClusterManager clusters = rig.clusters(Cluster.builder("c", DiscoveryType.STATIC).lbPolicy(LbPolicy.ROUND_ROBIN)
                .connectTimeout(HANDSHAKE_ROOM).loadAssignment(hosts("c", bad, good)).tls(tls("", null, CA, List.of()))
                .build());
        boolean retried = false;
        for (int i = 0; i < 4; i++) {
            var r = call(clusters);
            assertEquals(200, r.status());
            assertReason(null, r);
            retried |= r.info().attemptCount() == 2;
        }
        assertTrue(retried);
    }

    /** A router that counts its clusters' statistics in {@link #reg}. */
    private Router countingRouter() {
        Router router = rig.router();
        router.upstreamStats(dev.inmesh.runtime.stats.MeshMetrics.create(reg,
                dev.inmesh.runtime.stats.WorkloadInfo.UNKNOWN)::upstream);
        return router;
    }

    @Test
    void theClustersSslStatisticsCountEachUpstreamHandshakeByOutcome() throws Exception {
        Router router = countingRouter();
        RouteTable retried = routeToC("retry_policy: {retry_on: connect-failure, num_retries: 2}");
        int port = tlsServer(true, false);
        var wrong = new SubjectAltNameMatcher(SanType.DNS, new StringMatcher.Exact("db.example.com", false));
        // three attempts each: the chain, the SAN matchers, the client certificate the server requires (TLS 1.2)
        for (UpstreamTlsContext failing : List.of(tls("", CLIENT, OTHER_CA, List.of()),
                tls("", CLIENT, CA, List.of(wrong)), tls12(tls("", null, CA, List.of())))) {
            assertEquals(503, rig.call(router, get("/"), retried, cluster(port, false, failing)).status());
        }
        ClusterManager good = cluster(port, false, tls("", CLIENT, CA, List.of()));
        for (int i = 0; i < 2; i++) {
            assertEquals(200, rig.call(router, get("/"), retried, good).status());
        }
        String scrape = reg.scrape();
        // one handshake: the second request takes the kept-alive connection
        for (String line : List.of("envoy_cluster_ssl_handshake{cluster_name=\"c\"} 1.0",
                "envoy_cluster_ssl_fail_verify_error{cluster_name=\"c\"} 3.0",
                "envoy_cluster_ssl_fail_verify_san{cluster_name=\"c\"} 3.0",
                "envoy_cluster_ssl_connection_error{cluster_name=\"c\"} 3.0",
                "envoy_cluster_upstream_cx_connect_fail{cluster_name=\"c\"} 9.0")) {
            assertTrue(scrape.contains(line + "\n"), line + " in\n" + scrape);
        }
    }

    @Test
    void aPlaintextClusterHasNoSslStatistics() throws Exception {
        Router router = countingRouter();
        var plain = rig.wiremock();
        plain.stubFor(com.github.tomakehurst.wiremock.client.WireMock.any(
                com.github.tomakehurst.wiremock.client.WireMock.anyUrl())
                .willReturn(com.github.tomakehurst.wiremock.client.WireMock.ok("plain")));
        assertEquals(200, rig.call(router, get("/"), routeToC(""), cluster(plain.port(), false, null)).status());
        String scrape = reg.scrape();
        assertTrue(scrape.contains("envoy_cluster_upstream_cx_total{cluster_name=\"c\"} 1.0"), scrape);
        assertTrue(!scrape.contains("envoy_cluster_ssl_"), scrape);
    }

    @Test
    void anOutboundRequestOverIstiosMutualTlsIsLabelledWithBothIdentitiesAndTheServersNamespace() throws Exception {
        // as Istio's client-side stats: source_principal is the URI SAN of the certificate this side presented,
        // destination_principal the server's, and the destination's workload and service namespaces the one the
        // server's identity names (no metadata exchange answered here)
        var metrics = dev.inmesh.runtime.stats.MeshMetrics.create(reg,
                dev.inmesh.runtime.stats.StreamInfos.PRODUCTPAGE);
        ClusterManager clusters = cluster(tlsServer(ISTIO_SERVER, true, false), false,
                tls("", ISTIO_CLIENT, CA, List.of()));
        for (int i = 0; i < 2; i++) { // a new connection, then the same one kept alive
            var r = call(clusters);
            assertEquals(200, r.status(), r.body());
            assertEquals("spiffe://cluster.local/ns/default/sa/productpage", r.info().upstreamLocalPrincipal());
            assertEquals("spiffe://cluster.local/ns/bookinfo/sa/reviews", r.info().upstreamPeerPrincipal());
            metrics.record(r.info());
        }
        String line = reg.scrape().lines().filter(l -> l.startsWith("istio_requests_total{")).findFirst()
                .orElseThrow();
        for (String label : List.of("source_principal=\"spiffe://cluster.local/ns/default/sa/productpage\"",
                "destination_principal=\"spiffe://cluster.local/ns/bookinfo/sa/reviews\"",
                "destination_workload_namespace=\"bookinfo\"", "destination_service_namespace=\"bookinfo\"",
                "source_workload_namespace=\"default\"", "connection_security_policy=\"unknown\"")) {
            assertTrue(line.contains(label), label + " in " + line);
        }
        assertTrue(line.endsWith("} 2.0"), line);
    }

    @Test
    void anOutboundRequestOverUpstreamTlsHasTheServersUriSanAsDestinationPrincipal() throws Exception {
        var metrics = dev.inmesh.runtime.stats.MeshMetrics.create(reg, dev.inmesh.runtime.stats.WorkloadInfo.UNKNOWN);
        for (boolean h2 : new boolean[] {false, true}) {
            ClusterManager clusters = cluster(tlsServer(false, h2), h2, tls("", null, CA, List.of()));
            // a new connection, then the same one kept alive
            for (int i = 0; i < 2; i++) {
                var r = call(clusters);
                assertEquals(200, r.status());
                assertEquals("spiffe://example.com/api", r.info().upstreamPeerPrincipal(), "h2 " + h2);
                metrics.record(r.info());
            }
        }
        String scrape = reg.scrape();
        assertTrue(scrape.contains("destination_principal=\"spiffe://example.com/api\""), scrape);
        assertTrue(scrape.contains("source_principal=\"unknown\""), scrape);
        assertTrue(!scrape.contains("destination_principal=\"unknown\""), scrape);
        // a server certificate without a URI SAN names no principal
        var none = call(cluster(tlsServer(WILDCARD, false, false), false, tls("", null, null, List.of())));
        assertEquals(200, none.status());
        assertEquals(null, none.info().upstreamPeerPrincipal());
        metrics.record(none.info());
        assertTrue(reg.scrape().contains("destination_principal=\"unknown\""), reg.scrape());
    }

    /** A context whose TLS versions are at most 1.2. */
    private static UpstreamTlsContext tls12(UpstreamTlsContext c) {
        return new UpstreamTlsContext(c.sni(), c.certificateChain(), c.privateKey(), c.trustedCa(),
                c.systemRootCerts(), c.subjectAltNames(), c.alpnProtocols(), null,
                UpstreamTlsContext.TlsVersion.TLSv1_2, c.autoSni(), c.autoSanValidation());
    }

    @Test
    void anHttp2ClusterSpeaksH2OverTlsThroughAlpn() throws Exception {
        var r = call(cluster(tlsServer(false, true), true, tls("api.example.com", null, CA, List.of())));
        assertEquals(200, r.status());
        assertEquals("sni=api.example.com HTTP_2 client=none", r.body());
    }

    /**
     * An HTTP/2 cluster's TLS server that selects no protocol through ALPN (it answers with nothing) is spoken to over
     * HTTP/1.1, one request at a time on a kept-alive connection: Vert.x cannot speak h2 without ALPN, and such a
     * listener may be one Envoy's h2 would reach (one that selects http/1.1 is refused: HostPoolTest).
     */
    @Test
    void anHttp2ClusterWhoseServerSelectsNoProtocolThroughAlpnSendsOneRequestAtATimeOnAKeptAliveConnection()
            throws Exception {
        ClusterManager clusters = cluster(tlsServer(false, false), true, tls("api.example.com", null, CA, List.of()));
        for (int i = 0; i < 3; i++) {
            var r = call(clusters);
            assertEquals(200, r.status(), r.flags());
            assertEquals("sni=api.example.com HTTP_1_1 client=none", r.body());
        }
        assertEquals(1, connections.get());
    }

    @Test
    void autoSniSendsEachRequestsHostWithoutItsPortOnConnectionsOfThatHostOnly() throws Exception {
        int port = tlsServer(WILDCARD, false, false);
        // the configured sni gives way to the request's host
        ClusterManager clusters = cluster(port, false, tls("api.example.com", null, null, List.of())
                .withAutoSni(true, false));
        assertEquals("sni=a.example.com HTTP_1_1 client=none", callWithHost(clusters, "a.example.com:8443").body());
        assertEquals("sni=b.example.com HTTP_1_1 client=none", callWithHost(clusters, "b.example.com").body());
        assertEquals(2, connections.get());
        // the same host again takes its connection, kept alive
        assertEquals("sni=a.example.com HTTP_1_1 client=none", callWithHost(clusters, "a.example.com").body());
        assertEquals("sni=b.example.com HTTP_1_1 client=none", callWithHost(clusters, "b.example.com").body());
        assertEquals(2, connections.get());
        assertEquals(4, served.get());
    }

    @Test
    void autoSniSendsTheConfiguredSniForARequestWhoseHostIsAnIpAddressAsEnvoySendsNoIpAsSni() throws Exception {
        int port = tlsServer(false, false);
        ClusterManager clusters = cluster(port, false, tls("api.example.com", null, null, List.of())
                .withAutoSni(true, false));
        for (String host : List.of("10.0.0.7:8443", "10.0.0.7", "[2001:db8::1]:8443", "[::1]")) {
            assertEquals("sni=api.example.com HTTP_1_1 client=none", callWithHost(clusters, host).body(), host);
        }
        assertEquals("sni=a.example.com HTTP_1_1 client=none", callWithHost(clusters, "a.example.com").body());
    }

    @Test
    void autoSniTakesTheHostAfterTheRoutesHostRewrite() throws Exception {
        int port = tlsServer(false, false);
        ClusterManager clusters = cluster(port, false, tls("", null, CA, List.of()).withAutoSni(true, true));
        var r = rig.call(rig.router(), get("/"), routeToC("host_rewrite_literal: api.example.com"), clusters);
        assertEquals(200, r.status());
        assertEquals("sni=api.example.com HTTP_1_1 client=none", r.body());
    }

    @Test
    void autoSanValidationAcceptsOnlyAServerCertificateWithASanOfTheRequestsHost() throws Exception {
        int port = tlsServer(false, false);
        for (Issued ca : new Issued[] {CA, null}) {
            // with a trusted CA as without one: Envoy checks the SAN list of the request's host either way
            ClusterManager clusters = cluster(port, false, tls("", null, ca, List.of()).withAutoSni(true, true));
            assertEquals(200, callWithHost(clusters, "API.example.com").status());
            var r = callWithHost(clusters, "db.example.com");
            assertEquals(503, r.status());
            assertTrue(r.flags().contains("UF"), r.flags());
        }
        assertEquals(2, served.get());
    }

    @Test
    void autoSanValidationMatchesAnIpHostAgainstTheIpSansInTheirShortestText() throws Exception {
        int port = tlsServer(TestCertificates.issueForIps(CA, "ips", List.of("2001:db8:0:0:0:0:0:1", "10.0.0.7")),
                false, false);
        ClusterManager clusters = cluster(port, false, tls("", null, CA, List.of()).withAutoSni(true, true));
        for (String host : List.of("10.0.0.7:8443", "[2001:db8::1]:8443", "[2001:db8::1]", "10.0.0.8")) {
            assertEquals(host.startsWith("10.0.0.8") ? 503 : 200, callWithHost(clusters, host).status(), host);
        }
    }

    @Test
    void autoSanValidationMatchesAWildcardSanForOneLabelAndKeepsTheConfiguredSniWithoutAutoSni()
            throws Exception {
        int port = tlsServer(WILDCARD, false, false);
        ClusterManager clusters = cluster(port, false, tls("fixed.example.org", null, CA, List.of())
                .withAutoSni(false, true));
        var ok = callWithHost(clusters, "api.example.com");
        assertEquals(200, ok.status());
        assertEquals("sni=fixed.example.org HTTP_1_1 client=none", ok.body());
        assertEquals(503, callWithHost(clusters, "a.b.example.com").status());
    }

    @Test
    void aMirrorCopyToAnAutoSniClusterSendsItsShadowHostAsSniAndChecksItsSan() throws Exception {
        int port = tlsServer(TestCertificates.issue(CA, "shadow", List.of("api.example.com-shadow"), List.of()),
                false, false);
        UpstreamTlsContext auto = tls("", null, CA, List.of()).withAutoSni(true, true);
        Cluster mirror = Cluster.builder("m", DiscoveryType.STATIC).lbPolicy(LbPolicy.ROUND_ROBIN)
                .connectTimeout(HANDSHAKE_ROOM).loadAssignment(hosts("m", port)).tls(auto).build();
        ClusterManager clusters = rig.clusters(config(port, false, tls("", null, CA, List.of())), mirror);
        var req = new RouterRequest(StreamInfo.Direction.OUTBOUND, HttpMethod.GET, "/", "api.example.com", "http",
                MultiMap.caseInsensitiveMultiMap(), null, "127.0.0.1:50000", "127.0.0.1:15001", null, "HTTP/1.1");
        // as Envoy, whose copy goes through a router of its own: its host, -shadow appended, is its SNI and its SAN
        var r = rig.call(rig.router(), req, routeToC("request_mirror_policies: [{cluster: m}]"), clusters);
        assertEquals(200, r.status());
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (snis.size() < 2 && System.nanoTime() < end) {
            Thread.sleep(10);
        }
        assertTrue(snis.contains("api.example.com-shadow api.example.com-shadow"), snis.toString());

        // a copy whose shadow host no SAN of the mirror's certificate names is not sent
        snis.clear();
        var other = new RouterRequest(StreamInfo.Direction.OUTBOUND, HttpMethod.GET, "/", "example.com", "http",
                MultiMap.caseInsensitiveMultiMap(), null, "127.0.0.1:50000", "127.0.0.1:15001", null, "HTTP/1.1");
        assertEquals(200, rig.call(rig.router(), other, routeToC("request_mirror_policies: [{cluster: m}]"),
                clusters).status());
        Thread.sleep(300);
        assertEquals(List.of("null example.com"), List.copyOf(snis));
    }

    @Test
    void aMirrorCopysFailedHandshakeCountsInTheMirrorClustersSslStatistics() throws Exception {
        int port = tlsServer(false, false);
        var wrong = new SubjectAltNameMatcher(SanType.DNS, new StringMatcher.Exact("db.example.com", false));
        Cluster mirror = Cluster.builder("m", DiscoveryType.STATIC).lbPolicy(LbPolicy.ROUND_ROBIN)
                .connectTimeout(HANDSHAKE_ROOM).loadAssignment(hosts("m", port)).tls(tls("", null, CA, List.of(wrong)))
                .build();
        ClusterManager clusters = rig.clusters(config(port, false, tls("", null, CA, List.of())), mirror);
        var r = rig.call(countingRouter(), get("/"), routeToC("request_mirror_policies: [{cluster: m}]"), clusters);
        assertEquals(200, r.status());
        String line = "envoy_cluster_ssl_fail_verify_san{cluster_name=\"m\"} 1.0\n";
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (!reg.scrape().contains(line) && System.nanoTime() < end) {
            Thread.sleep(10);
        }
        assertTrue(reg.scrape().contains(line), reg.scrape());
        assertTrue(reg.scrape().contains("envoy_cluster_ssl_handshake{cluster_name=\"c\"} 1.0\n"), reg.scrape());
    }

    @Test
    void eachHostKeepsThePoolOfEveryHostNameWellPastSixtyFourNames() throws Exception {
        // the bound is HostPool.MAX_HOST_NAMES, and at it only an idle pool is freed (HostPoolTest)
        int port = tlsServer(WILDCARD, false, false);
        ClusterManager clusters = cluster(port, false, tls("", null, null, List.of()).withAutoSni(true, false));
        for (int i = 0; i < 65; i++) {
            assertEquals(200, callWithHost(clusters, "h" + i + ".example.com").status());
        }
        assertEquals(65, connections.get());
        assertEquals(0, closed.get());
        // the first name keeps its connection
        assertEquals("sni=h0.example.com HTTP_1_1 client=none", callWithHost(clusters, "h0.example.com").body());
        assertEquals(65, connections.get());
        assertEquals(0, closed.get());
    }

    @Test
    void anUpdateThatDropsAutoSniClosesTheConnectionsMadeForEachHostName() throws Exception {
        int port = tlsServer(WILDCARD, false, false);
        ClusterManager clusters = cluster(port, false, tls("", null, null, List.of()).withAutoSni(true, false));
        assertEquals("sni=a.example.com HTTP_1_1 client=none", callWithHost(clusters, "a.example.com").body());
        ClusterManager next = clusters.update(Map.of("c", config(port, false, tls("", null, null, List.of()))),
                Map.of());
        awaitClosed(1);
        assertEquals("sni=null HTTP_1_1 client=none", callWithHost(next, "a.example.com").body());
        next.close();
    }
}
