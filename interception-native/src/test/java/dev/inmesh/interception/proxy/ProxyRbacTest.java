package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.router.IstioRbac;
import dev.inmesh.runtime.stats.StreamInfo;
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
import io.vertx.core.net.SocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
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
    private final AtomicInteger appCalls = new AtomicInteger();
    private final int app = vertx.createHttpServer().requestHandler(req -> {
        appCalls.incrementAndGet();
        req.response().end("reviews");
    }).listen(0, "127.0.0.1").await().actualPort();
    private StandaloneProxy proxy;
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
        String config = IstioRbac.first(IstioRbac.DENY_THEN_ALLOW, IstioInboundMtlsTest.config(port, app));
        Path file = Files.writeString(dir.resolve("proxy.yaml"), config);
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(file, -1, -1, 1, requests::add, AdminHook.NONE)
                .withWorkloadIdentity(new WorkloadIdentity(TestCertificates.identityDirectory(dir, OWN, MESH_CA))));
        return port;
    }

    /** The status and body of {@code GET path} from the proxy as an Istio sidecar presenting {@code own}. */
    private String get(int port, Issued own, String path) throws Exception {
        HttpClientOptions o = new HttpClientOptions().setSsl(true).setVerifyHost(false).setUseAlpn(true)
                .setTrustOptions(new PemTrustOptions().addCertValue(Buffer.buffer(MESH_CA.certificatePem())))
                .setKeyCertOptions(new PemKeyCertOptions().setCertValue(Buffer.buffer(own.certificatePem()))
                        .setKeyValue(Buffer.buffer(own.keyPem())));
        o.getSslOptions().setApplicationLayerProtocols(List.of("istio-http/1.1", "istio", "http/1.1"));
        HttpClient c = vertx.createHttpClient(o);
        try {
            return c.request(new RequestOptions().setServer(SocketAddress.inetSocketAddress(port, "127.0.0.1"))
                            .setHost("svc").setPort(9080).setURI(path))
                    .compose(req -> req.send().compose(resp -> resp.body().map(b -> resp.statusCode() + " " + b)))
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
            String answer;
            try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
                s.setSoTimeout(10_000);
                s.getOutputStream().write(("GET /admin HTTP/1.1\r\nhost: svc\r\nconnection: Upgrade\r\n"
                        + "upgrade: websocket\r\nsec-websocket-version: 13\r\n"
                        + "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
                        .getBytes(java.nio.charset.StandardCharsets.US_ASCII));
                byte[] buf = new byte[4096];
                int n = s.getInputStream().read(buf);
                answer = new String(buf, 0, Math.max(0, n), java.nio.charset.StandardCharsets.US_ASCII);
            }
            assertTrue(answer.startsWith("HTTP/1.1 403"), answer);
            for (int i = 0; i < 100 && plain.requests.isEmpty(); i++) {
                Thread.sleep(20);
            }
            assertEquals("rbac_access_denied_matched_policy[ns[default]-policy[deny-admin]-rule[0]]",
                    plain.requests.get(0).responseCodeDetails());
            assertEquals(0, appCalls.get(), "the upgrade never reached the application");
        }
    }
}
