package dev.inmesh.interception.proxy;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.accesslog.AccessLog;
import dev.inmesh.runtime.router.IstioExtAuthz;
import dev.inmesh.runtime.router.IstioRbac;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.NetworkRbacStats;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.stats.TcpStreamInfo;
import dev.inmesh.runtime.tls.WorkloadIdentity;
import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.upstream.TestCertificates.Issued;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.core.net.PemTrustOptions;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.net.SocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The standalone proxy enforces Istio's AuthorizationPolicies on its inbound mTLS chain: istiod's DENY and ALLOW RBAC
 * filters in the chain's connection manager, with the caller's identity from the certificate it presented in the
 * mTLS the proxy terminated. productpage's certificate is allowed; another workload's is denied (no ALLOW policy
 * matched), and so is productpage on a path a DENY policy names: {@code 403 RBAC: access denied}, the application
 * never called, the policy in the access log.
 */
@Timeout(60)
class ProxyRbacTest {
    private static final Issued MESH_CA = TestCertificates.ca("cluster.local");
    private static final Issued OWN = TestCertificates.issue(MESH_CA, "reviews", List.of(),
            List.of("spiffe://cluster.local/ns/default/sa/bookinfo-reviews"));
    private static final Issued PRODUCTPAGE = TestCertificates.issue(MESH_CA, "productpage", List.of(),
            List.of("spiffe://cluster.local/ns/default/sa/bookinfo-productpage"));
    private static final Issued RATINGS = TestCertificates.issue(MESH_CA, "ratings", List.of(),
            List.of("spiffe://cluster.local/ns/default/sa/bookinfo-ratings"));

    private final Vertx vertx = Vertx.vertx();
    private final List<StreamInfo> requests = new CopyOnWriteArrayList<>();
    private final List<TcpStreamInfo> connections = new CopyOnWriteArrayList<>();
    private final AtomicInteger appCalls = new AtomicInteger();
    private final int app = vertx.createHttpServer().requestHandler(req -> {
        appCalls.incrementAndGet();
        req.response().end("reviews");
    }).listen(0, "127.0.0.1").await().actualPort();
    private StandaloneProxy proxy;
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final MeshMetrics metrics = MeshMetrics.create(registry, WorkloadInfo.UNKNOWN);
    @TempDir
    Path dir;

    @AfterEach
    void close() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    private int start() throws Exception {
        int port = LoopbackProxy.freePort();
        // Istio's inbound mTLS chain, its connection manager led by istiod's RBAC filters
        start(IstioRbac.first(IstioRbac.DENY_THEN_ALLOW, IstioInboundMtlsTest.config(port, app)));
        return port;
    }

    private void start(String config) throws Exception {
        Path file = Files.writeString(dir.resolve("proxy.yaml"), config);
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(file, -1, -1, 1, requests::add, AdminHook.NONE)
                .withWorkloadIdentity(new WorkloadIdentity(TestCertificates.identityDirectory(dir, OWN, MESH_CA)))
                .withNetworkStats(metrics).withTcpAccessLog(connections::add)
                .withStats(metrics::tcpConnection, metrics::upstream));
    }

    /** The value of a meter of {@link #registry}'s Prometheus page, or -1 when it is not there. */
    private double scraped(String series) {
        return registry.scrape().lines().filter(l -> l.startsWith(series + " ")).findFirst()
                .map(l -> Double.parseDouble(l.substring(series.length() + 1))).orElse(-1.0);
    }

    /**
     * The status and body of {@code GET path} from the proxy as an Istio sidecar presenting {@code own}; with
     * {@code own} null, a TLS client that presents no certificate.
     */
    private String get(int port, Issued own, String path) throws Exception {
        HttpClientOptions o = new HttpClientOptions().setSsl(true).setVerifyHost(false).setUseAlpn(true)
                .setTrustOptions(new PemTrustOptions().addCertValue(Buffer.buffer(MESH_CA.certificatePem())));
        if (own != null) {
            o.setKeyCertOptions(new PemKeyCertOptions().setCertValue(Buffer.buffer(own.certificatePem()))
                    .setKeyValue(Buffer.buffer(own.keyPem())));
        }
        o.getSslOptions().setApplicationLayerProtocols(List.of("istio-http/1.1", "istio", "http/1.1"));
        HttpClient c = vertx.createHttpClient(o);
        try {
            return onEventLoop(vertx, () -> c.request(new RequestOptions()
                            .setServer(SocketAddress.inetSocketAddress(port, "127.0.0.1"))
                            .setHost("svc").setPort(9080).setURI(path))
                    .compose(req -> req.send().compose(resp -> resp.body().map(b -> resp.statusCode() + " " + b))))
                    .await(10, TimeUnit.SECONDS);
        } finally {
            c.close().await(10, TimeUnit.SECONDS);
        }
    }

    private StreamInfo logged(String path, int status) throws InterruptedException {
        for (int i = 0; i < 200; i++) {
            for (StreamInfo s : requests) {
                if (s.path().equals(path) && s.responseCode() == status) {
                    return s;
                }
            }
            Thread.sleep(25);
        }
        throw new AssertionError("no " + status + " for " + path + " in " + requests);
    }

    /**
     * istiod's CUSTOM policy of a gRPC provider on the mTLS chain: the authorizer gets the caller's SPIFFE identity as
     * {@code source.principal} and the one the proxy presented as {@code destination.principal}, as Envoy's check.
     */
    @Test
    void aGrpcAuthorizerGetsTheCallersAndTheProxysIdentitiesOfAnMtlsRequest() throws Exception {
        List<io.envoyproxy.envoy.service.auth.v3.AttributeContext> asked = new CopyOnWriteArrayList<>();
        io.grpc.Server grpc = ProxyExtAuthzTest.grpcAuthorizer(request -> {
            asked.add(request.getAttributes());
            return io.envoyproxy.envoy.service.auth.v3.CheckResponse.newBuilder()
                    .setStatus(com.google.rpc.Status.newBuilder().setCode(0)).build();
        });
        try {
            int port = LoopbackProxy.freePort();
            start(IstioRbac.first(IstioExtAuthz.SHADOW + IstioExtAuthz.grpc("5s", false),
                    IstioInboundMtlsTest.config(port, app)) + IstioExtAuthz.cluster(grpc.getPort(), true));

            assertEquals("200 reviews", get(port, PRODUCTPAGE, "/secure/x"));
            assertEquals("spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
                    asked.get(0).getSource().getPrincipal());
            assertEquals("spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
                    asked.get(0).getDestination().getPrincipal());
        } finally {
            grpc.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void theCallersCertificateDecidesAndADeniedRequestNeverReachesTheApplication() throws Exception {
        int port = start();
        assertEquals("200 reviews", get(port, PRODUCTPAGE, "/"));
        assertEquals("403 RBAC: access denied", get(port, RATINGS, "/"));
        assertEquals("403 RBAC: access denied", get(port, PRODUCTPAGE, "/admin"));
        assertEquals(1, appCalls.get());

        StreamInfo none = logged("/", 403);
        assertEquals("rbac_access_denied_matched_policy[none]", none.responseCodeDetails());
        assertTrue(none.responseFlags().isEmpty(), String.valueOf(none.responseFlags()));
        assertEquals("spiffe://cluster.local/ns/default/sa/bookinfo-ratings", none.downstreamPeerPrincipal());
        StreamInfo admin = logged("/admin", 403);
        assertEquals("rbac_access_denied_matched_policy[ns[default]-policy[deny-admin]-rule[0]]",
                admin.responseCodeDetails());
        assertEquals("c", admin.upstreamCluster(), "counted for the route's cluster");
        assertEquals("via_upstream", logged("/", 200).responseCodeDetails());
    }

    @Test
    void aWebSocketUpgradeTheProxyRelaysItselfIsDeniedAsAnyRequest() throws Exception {
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy plain = new LoopbackProxy("static_resources:\n  listeners:\n" + IstioRbac.first(
                IstioRbac.DENY_ADMIN, Http1RequestsTest.listener("http", port,
                        "upgrade_configs: [{upgrade_type: websocket}]")) + Http1RequestsTest.clusterC(app))) {
            String answer = upgrade(port, "svc");
            assertTrue(answer.startsWith("HTTP/1.1 403"), answer);
            for (int i = 0; i < 100 && plain.requests.isEmpty(); i++) {
                Thread.sleep(20);
            }
            assertEquals("rbac_access_denied_matched_policy[ns[default]-policy[deny-admin]-rule[0]]",
                    plain.requests.get(0).responseCodeDetails());
            // a host no virtual host takes: the RBAC filters still run first, as before Envoy's router
            String noRoute = upgrade(port, "other");
            assertTrue(noRoute.startsWith("HTTP/1.1 403"), noRoute);
            assertEquals(0, appCalls.get(), "the upgrade never reached the application");
        }
    }

    @Test
    void aDeniedWebSocketUpgradeCarriesTheRoutesResponseHeaderRulesAsAnyDeniedRequest() throws Exception {
        int port = LoopbackProxy.freePort();
        String listener = Http1RequestsTest.listener("http", port, "upgrade_configs: [{upgrade_type: websocket}]")
                .replaceFirst("(?m)^( *)route: \\{cluster: c\\}$",
                        "$1route: {cluster: c}\n$1response_headers_to_add: [{header: {key: x-route, value: r}}]");
        try (LoopbackProxy plain = new LoopbackProxy("static_resources:\n  listeners:\n" + IstioRbac.first(
                IstioRbac.DENY_ADMIN, listener) + Http1RequestsTest.clusterC(app))) {
            // as Envoy's local reply, which applies the route entry's response header rules
            String answer = upgrade(port, "svc").toLowerCase(java.util.Locale.ROOT);
            assertTrue(answer.startsWith("http/1.1 403"), answer);
            assertTrue(answer.contains("\r\nx-route: r\r\n"), answer);
            assertEquals(0, appCalls.get(), "the upgrade never reached the application");
        }
    }

    /**
     * A header value of bytes that are not UTF-8 (obs-text, which HTTP/1 takes) is matched by a {@code safe_regex} as
     * Latin-1 text, each byte a character: an ALLOW policy for every caller but guests ({@code not_id} of a regex) denies
     * {@code x-role: guest\xff}. Envoy's RE2 took such a value for no match, so the negated matcher let it through
     * (CVE-2026-73552; its fix matches such a value as Latin-1).
     */
    @Test
    void aSafeRegexMatchesAHeaderValueOfBytesThatAreNotUtf8AsLatin1AndANegatedMatchDeniesIt() throws Exception {
        int port = LoopbackProxy.freePort();
        String allowAllButGuests = """
                - name: envoy.filters.http.rbac
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
                    rules:
                      action: ALLOW
                      policies:
                        ns[default]-policy[no-guests]-rule[0]:
                          permissions: [{any: true}]
                          principals:
                          - not_id: {header: {name: x-role, string_match: {safe_regex: {regex: "guest.*"}}}}
                """;
        try (LoopbackProxy plain = new LoopbackProxy("static_resources:\n  listeners:\n" + IstioRbac.first(
                allowAllButGuests, Http1RequestsTest.listener("http", port, "")) + Http1RequestsTest.clusterC(app))) {
            assertTrue(requestWithRole(port, "admin".getBytes(java.nio.charset.StandardCharsets.US_ASCII))
                    .startsWith("HTTP/1.1 200"));
            assertTrue(requestWithRole(port, "guest".getBytes(java.nio.charset.StandardCharsets.US_ASCII))
                    .startsWith("HTTP/1.1 403"));
            for (byte[] role : List.of(new byte[] {'g', 'u', 'e', 's', 't', (byte) 0xff},
                    new byte[] {'g', 'u', 'e', 's', 't', (byte) 0x85}, new byte[] {'g', 'u', 'e', 's', 't',
                            (byte) 0xc3, (byte) 0x28})) {
                String answer = requestWithRole(port, role);
                assertTrue(answer.startsWith("HTTP/1.1 403"), java.util.Arrays.toString(role) + ": " + answer);
            }
            assertEquals(1, appCalls.get(), "only the admin reached the application");
        }
    }

    /** The head of the proxy's answer to {@code GET /} for host {@code svc} with {@code x-role} of the given bytes. */
    private static String requestWithRole(int port, byte[] role) throws Exception {
        try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
            s.setSoTimeout(10_000);
            java.io.ByteArrayOutputStream head = new java.io.ByteArrayOutputStream();
            head.writeBytes("GET / HTTP/1.1\r\nhost: svc\r\nx-role: ".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            head.writeBytes(role);
            head.writeBytes("\r\nconnection: close\r\n\r\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            s.getOutputStream().write(head.toByteArray());
            return new String(s.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.ISO_8859_1);
        }
    }

    /** The head of the proxy's answer to a WebSocket upgrade of {@code /admin} for {@code host}. */
    private static String upgrade(int port, String host) throws Exception {
        try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write(("GET /admin HTTP/1.1\r\nhost: " + host + "\r\nconnection: Upgrade\r\n"
                    + "upgrade: websocket\r\nsec-websocket-version: 13\r\n"
                    + "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
                    .getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            byte[] buf = new byte[4096];
            int n = s.getInputStream().read(buf);
            return new String(buf, 0, Math.max(0, n), java.nio.charset.StandardCharsets.US_ASCII);
        }
    }

    /**
     * An upstream on 127.0.0.1 that echoes the first 5 bytes of each connection, counting its connections in
     * {@code connections}; closing it stops it.
     */
    static java.net.ServerSocket echoUpstream(AtomicInteger connections) throws Exception {
        java.net.ServerSocket upstream = new java.net.ServerSocket(0, 50, java.net.InetAddress.getByName("127.0.0.1"));
        Thread echo = new Thread(() -> {
            while (!upstream.isClosed()) {
                try (java.net.Socket c = upstream.accept()) {
                    connections.incrementAndGet();
                    c.setSoTimeout(10_000);
                    byte[] buf = new byte[5];
                    int n = c.getInputStream().readNBytes(buf, 0, buf.length);
                    c.getOutputStream().write(buf, 0, n);
                } catch (java.io.IOException e) {
                    // closed by the test, or a client gone
                }
            }
        });
        echo.setDaemon(true);
        echo.start();
        return upstream;
    }

    /**
     * One line to the proxy from {@code source} (a loopback address): the line echoed back, or null when the proxy
     * closed the connection without answering.
     */
    static String echo(int port, String source) throws Exception {
        try (java.net.Socket s = new java.net.Socket()) {
            s.bind(new java.net.InetSocketAddress(source, 0));
            s.connect(new java.net.InetSocketAddress("127.0.0.1", port), 5_000);
            s.setSoTimeout(10_000);
            s.getOutputStream().write("ping\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            byte[] buf = new byte[5];
            int n = 0;
            try {
                for (int r; n < buf.length && (r = s.getInputStream().read(buf, n, buf.length - n)) > 0; ) {
                    n += r;
                }
            } catch (java.net.SocketException reset) {
                return null; // closed with unread bytes: a reset
            }
            return n == 0 ? null : new String(buf, 0, n, java.nio.charset.StandardCharsets.US_ASCII);
        }
    }

    @Test
    void aTcpProxyChainsNetworkRbacRelaysAnAllowedSourceAndClosesADeniedOneWithoutConnectingUpstream()
            throws Exception {
        AtomicInteger upstreamConnections = new AtomicInteger();
        try (java.net.ServerSocket upstream = echoUpstream(upstreamConnections)) {
            int port = LoopbackProxy.freePort();
            // a tcp_proxy chain led by istiod's network RBAC filters: 127.0.0.2 denied by a DENY policy, 127.0.0.1
            // allowed by an ALLOW policy, 127.0.0.3 matching none of them
            start(TcpRelayTest.config(port, "", "", upstream.getLocalPort()).replace(
                    "    - filters:\n", "    - filters:\n" + IstioRbac.TCP_DENY_THEN_ALLOW.indent(6)));

            assertEquals("ping\n", echo(port, "127.0.0.1"));
            assertEquals(null, echo(port, "127.0.0.2"));
            assertEquals(null, echo(port, "127.0.0.3"));
            assertEquals("ping\n", echo(port, "127.0.0.1"));
            Thread.sleep(200); // a connect the proxy would have started for a denied client has had its time
            assertEquals(2, upstreamConnections.get(), "denied connections never reach the upstream");

            // both filters count under their stat prefix tcp.: Envoy's tcp.rbac.allowed and tcp.rbac.denied
            NetworkRbacStats stats = metrics.networkRbac("tcp.");
            assertEquals(2, stats.denied(), "one by the DENY filter, one by the ALLOW filter");
            assertEquals(5, stats.allowed(), "the DENY filter let three through, the ALLOW filter two");
            assertEquals(2, stats.shadow("istio_dry_run_deny_", false), "the dry run would have denied 127.0.0.1");
            assertEquals(1, stats.shadow("istio_dry_run_deny_", true));
            assertEquals(2.0, scraped("envoy_rbac_denied{rbac_stat_prefix=\"tcp\"}"));
            assertEquals(2.0, scraped("envoy_rbac_istio_dry_run_deny__shadow_denied{rbac_stat_prefix=\"tcp\"}"));

            // each connection has its access log line; a denied one, as Envoy's, names the policy that denied it in
            // %CONNECTION_TERMINATION_DETAILS%, with no upstream host, no flag and nothing relayed
            for (int i = 0; i < 200 && connections.size() < 4; i++) {
                Thread.sleep(25);
            }
            Map<String, List<String>> lines = new java.util.TreeMap<>();
            AccessLog text = AccessLog.create(AccessLog.Format.TEXT, line -> { });
            for (TcpStreamInfo c : connections) {
                lines.computeIfAbsent(c.downstreamRemoteAddress().replaceAll(":\\d+$", ""), k -> new ArrayList<>())
                        .add(text.format(c));
            }
            assertEquals(List.of("127.0.0.1", "127.0.0.2", "127.0.0.3"), List.copyOf(lines.keySet()));
            String deniedByPolicy = lines.get("127.0.0.2").get(0);
            assertTrue(deniedByPolicy.contains(
                    "\"- - -\" 0 - - rbac_access_denied_matched_policy[ns[default]-policy[deny-blocked]-rule[0]] \"-\" 0 0 "),
                    deniedByPolicy);
            assertTrue(deniedByPolicy.contains(" \"-\" backend - 127.0.0.1:" + port + " 127.0.0.2:"), deniedByPolicy);
            assertTrue(lines.get("127.0.0.3").get(0).contains(" 0 - - rbac_access_denied_matched_policy[none] "),
                    lines.get("127.0.0.3").get(0));
            for (String allowed : lines.get("127.0.0.1")) {
                assertTrue(allowed.contains(" 0 - - - \"-\" 5 5 "), allowed);
            }
            String json = AccessLog.create(AccessLog.Format.JSON, line -> { }).format(connections.stream()
                    .filter(c -> c.downstreamRemoteAddress().startsWith("127.0.0.3:")).findFirst().orElseThrow());
            assertTrue(json.contains("\"connection_termination_details\":\"rbac_access_denied_matched_policy[none]\""),
                    json);
        }
    }

    @Test
    void aConnectionTheNetworkRbacDeniesIsCountedOpenedAndClosedInIstiosTcpMetrics() throws Exception {
        // Istio's stats filter follows the RBAC filters in istiod's chain and reports the connection at its close
        try (java.net.ServerSocket upstream = echoUpstream(new AtomicInteger())) {
            int port = LoopbackProxy.freePort();
            start(TcpRelayTest.config(port, "", "", upstream.getLocalPort()).replace(
                    "    - filters:\n", "    - filters:\n" + IstioRbac.TCP_DENY_THEN_ALLOW.indent(6)));
            assertEquals(null, echo(port, "127.0.0.2"));
            for (int i = 0; i < 200 && scraped("istio_tcp_connections_closed_total" + TCP_LABELS) < 1; i++) {
                Thread.sleep(25);
            }
            assertEquals(1.0, scraped("istio_tcp_connections_opened_total" + TCP_LABELS), registry.scrape());
            assertEquals(1.0, scraped("istio_tcp_connections_closed_total" + TCP_LABELS), registry.scrape());
        }
    }

    /** The labels of a connection to the cluster backend (no service known) from an unknown peer, with no flags. */
    private static final String TCP_LABELS = "{connection_security_policy=\"unknown\",destination_app=\"unknown\","
            + "destination_canonical_revision=\"latest\",destination_canonical_service=\"unknown\","
            + "destination_cluster=\"unknown\",destination_principal=\"unknown\",destination_service=\"unknown\","
            + "destination_service_name=\"unknown\",destination_service_namespace=\"unknown\","
            + "destination_version=\"unknown\",destination_workload=\"unknown\","
            + "destination_workload_namespace=\"unknown\",reporter=\"source\",request_protocol=\"tcp\","
            + "response_flags=\"-\",source_app=\"unknown\",source_canonical_revision=\"latest\","
            + "source_canonical_service=\"unknown\",source_cluster=\"Kubernetes\",source_principal=\"unknown\","
            + "source_version=\"unknown\",source_workload=\"unknown\",source_workload_namespace=\"unknown\"}";

    @Test
    void aNetworkRbacBeforeTheMtlsConnectionManagerReadsTheCallersCertificateAndClosesADeniedConnection()
            throws Exception {
        int port = LoopbackProxy.freePort();
        // istiod's network filters before the connection manager of the inbound mTLS chain, no HTTP RBAC: only
        // productpage's certificate is allowed (the loopback policy is moved off loopback)
        String rbac = IstioRbac.TCP_DENY_THEN_ALLOW.replace("- direct_remote_ip: {address_prefix: 127.0.0.1",
                "- direct_remote_ip: {address_prefix: 192.0.2.1");
        String hcm = "      filters:\n      - name: envoy.filters.network.http_connection_manager";
        String config = IstioInboundMtlsTest.config(port, app);
        assertTrue(config.contains(hcm));
        start(config.replace(hcm, "      filters:\n" + rbac.indent(6)
                + "      - name: envoy.filters.network.http_connection_manager"));

        assertEquals("200 reviews", get(port, PRODUCTPAGE, "/"));
        Exception closed = org.junit.jupiter.api.Assertions.assertThrows(Exception.class,
                () -> get(port, RATINGS, "/"));
        assertTrue(String.valueOf(closed.getMessage()).toLowerCase().contains("closed"), String.valueOf(closed));
        assertEquals(1, appCalls.get(), "the denied connection's request never reached the application");
        NetworkRbacStats stats = metrics.networkRbac("tcp.");
        assertEquals(1, stats.denied());
        assertEquals(3, stats.allowed(), "the DENY filter let both through, the ALLOW filter productpage");
        assertTrue(requests.stream().noneMatch(r -> r.downstreamPeerPrincipal() != null
                && r.downstreamPeerPrincipal().endsWith("bookinfo-ratings")), "no request of ratings: " + requests);
    }

    /**
     * Envoy's {@code authenticated} without {@code principal_name} matches any connection whose TLS the proxy
     * terminated, a client without a certificate included: on a chain that does not require one, the HTTP filter
     * and the network filter let such a client through (a {@code principal_name} reads an empty subject).
     */
    @Test
    void aTlsClientWithoutACertificateIsAuthenticatedWithoutAPrincipalNameByTheHttpAndNetworkFilters()
            throws Exception {
        int port = LoopbackProxy.freePort();
        String config = IstioInboundMtlsTest.config(port, app);
        assertTrue(config.contains("require_client_certificate: true"));
        String hcm = "      filters:\n      - name: envoy.filters.network.http_connection_manager";
        assertTrue(config.contains(hcm));
        String authenticatedOnly = """
                    rules:
                      policies:
                        tls: {permissions: [{any: true}], principals: [{authenticated: {}}]}
                """;
        // a client certificate optional: not required, no SAN matchers (which require one)
        String optional = config.replace("require_client_certificate: true", "require_client_certificate: false")
                .replace("match_subject_alt_names: [{prefix: \"spiffe://cluster.local/\"}]", "{}");
        assertTrue(!optional.contains("match_subject_alt_names") && !optional.contains("require_client_certificate: t"));
        start(IstioRbac.first("""
                - name: envoy.filters.http.rbac
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
                """ + authenticatedOnly, optional.replace(hcm, "      filters:\n" + ("""
                - name: envoy.filters.network.rbac
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC
                    stat_prefix: tcp.
                """ + authenticatedOnly).indent(6) + "      - name: envoy.filters.network.http_connection_manager")));
        assertEquals("200 reviews", get(port, null, "/"));
        assertEquals(1, appCalls.get());
        assertEquals(1, metrics.networkRbac("tcp.").allowed());
    }
}
