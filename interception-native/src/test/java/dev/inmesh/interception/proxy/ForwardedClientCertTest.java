package dev.inmesh.interception.proxy;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.upstream.TestCertificates.Issued;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.net.NetClient;
import io.vertx.core.net.NetClientOptions;
import io.vertx.core.net.NetSocket;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.core.net.PemTrustOptions;
import io.vertx.core.net.SocketAddress;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.cert.CertificateFactory;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The identity of a client certificate through the proxy. {@code x-forwarded-client-cert}, as Envoy's connection
 * manager writes it by its {@code forward_client_cert_details}: on a connection whose TLS the proxy terminated and
 * whose client presented a certificate, APPEND_FORWARD (Istio's inbound sidecar) appends this hop's element (By,
 * Hash, then the {@code set_current_client_cert_details}) to the caller's header and SANITIZE_SET replaces the header
 * with it; without a client certificate the header is removed, but under ALWAYS_FORWARD_ONLY. And Istio's
 * {@code source_principal} and {@code destination_principal} of an inbound mTLS request or TCP connection: the URI
 * SANs of the client's certificate and the proxy's own.
 */
@Timeout(60)
class ForwardedClientCertTest {
    private static final String SERVER_ID = "spiffe://cluster.local/ns/default/sa/reviews";
    private static final String CLIENT_ID = "spiffe://cluster.local/ns/default/sa/productpage";
    private final Vertx vertx = Vertx.vertx();
    private final Issued ca = TestCertificates.ca("Test CA");
    private final Issued server = TestCertificates.issue(ca, "reviews", List.of("reviews.default.svc"),
            List.of(SERVER_ID));
    private final Issued client = TestCertificates.issue(ca, "productpage", List.of("productpage.default.svc",
            "productpage"), List.of(CLIENT_ID));
    /** The application: answers with the x-forwarded-client-cert it got ("none" without one). */
    private final int app = vertx.createHttpServer().requestHandler(req -> {
        String xfcc = req.getHeader("x-forwarded-client-cert");
        req.response().end(xfcc == null ? "none" : xfcc);
    }).listen(0, "127.0.0.1").await().actualPort();
    /**
     * What the test opened, the Vert.x instance first: closed in the opposite order. The clients' closes here also keep
     * them reachable to the end: Vert.x closes a client once it is no longer referenced, its connections with it.
     */
    private final java.util.Deque<AutoCloseable> opened = new java.util.ArrayDeque<>(
            List.of(() -> vertx.close().await(10, TimeUnit.SECONDS)));

    @TempDir
    Path dir;

    @AfterEach
    void closeWhatWasOpened() throws Exception {
        for (AutoCloseable c; (c = opened.poll()) != null; ) {
            c.close();
        }
    }

    private String file(String name, String pem) throws Exception {
        Path p = dir.resolve(name);
        Files.writeString(p, pem);
        return p.toString();
    }

    /** A listener terminating TLS with the server's certificate, asking for a client's; its port. */
    private int proxy(String hcmFields) throws Exception {
        return proxy(hcmFields, false).addresses.get(0).getPort();
    }

    /**
     * The proxy with a listener terminating TLS with the server's certificate, asking for a client's, its chain's
     * connection manager with these fields ({@code inbound}: the listener INBOUND, as virtualInbound is).
     */
    private LoopbackProxy proxy(String hcmFields, boolean inbound) throws Exception {
        String listener = Http1RequestsTest.listener("front", LoopbackProxy.freePort(),
                hcmFields.replace("\n", "\n" + " ".repeat(10)));
        return start("static_resources:\n  listeners:\n" + listener + Http1RequestsTest.clusterC(app), inbound);
    }

    /** The proxy with this configuration, its (first) chain terminating TLS as {@link #proxy} says. */
    private LoopbackProxy start(String config, boolean inbound) throws Exception {
        String socket = ("transport_socket:\n  name: envoy.transport_sockets.tls\n  typed_config:\n"
                + "    \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext\n"
                + "    common_tls_context:\n"
                + "      tls_certificates: [{certificate_chain: {filename: \"" + file("server.pem",
                server.certificatePem()) + "\"}, private_key: {filename: \"" + file("server.key", server.keyPem())
                + "\"}}]\n"
                + "      validation_context: {trusted_ca: {filename: \"" + file("ca.pem", ca.certificatePem())
                + "\"}}\n").indent(6);
        String yaml = config.replaceFirst("    - filters:\n", "    - " + socket.substring(6) + "      filters:\n");
        if (inbound) {
            yaml = yaml.replace("    filter_chains:\n", "    traffic_direction: INBOUND\n    filter_chains:\n");
        }
        LoopbackProxy p = new LoopbackProxy(yaml);
        opened.push(p);
        return p;
    }

    private HttpClientOptions tls(HttpClientOptions o, Issued own) {
        o.setSsl(true).setTrustOptions(new PemTrustOptions().addCertValue(Buffer.buffer(ca.certificatePem())));
        return own == null ? o : (HttpClientOptions) o.setKeyCertOptions(new PemKeyCertOptions()
                .setCertValue(Buffer.buffer(own.certificatePem())).setKeyValue(Buffer.buffer(own.keyPem())));
    }

    /** GET / with host svc and the given x-forwarded-client-cert (null: none), presenting {@code own} or none. */
    private String get(int port, Issued own, String xfcc) throws Exception {
        HttpClient c = vertx.createHttpClient(tls(new HttpClientOptions().setVerifyHost(false), own));
        opened.push(() -> c.close().await(10, TimeUnit.SECONDS));
        RequestOptions r = new RequestOptions().setServer(SocketAddress.inetSocketAddress(port, "127.0.0.1"))
                .setHost("svc").setPort(port).setURI("/");
        if (xfcc != null) {
            r.putHeader("x-forwarded-client-cert", xfcc);
        }
        return onEventLoop(vertx, () -> c.request(r).compose(req -> req.send().compose(resp -> resp.body())))
                .await(10, TimeUnit.SECONDS).toString();
    }

    private static String sha256(Issued cert) throws Exception {
        var x509 = CertificateFactory.getInstance("X.509").generateCertificate(
                new ByteArrayInputStream(cert.certificatePem().getBytes(StandardCharsets.US_ASCII)));
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(x509.getEncoded()));
    }

    @Test
    void istiosAppendForwardAddsThisHopsElementAfterTheCallersOne() throws Exception {
        int port = proxy("forward_client_cert_details: APPEND_FORWARD\n"
                + "set_current_client_cert_details: {subject: true, dns: true, uri: true}");
        String element = "By=" + SERVER_ID + ";Hash=" + sha256(client) + ";Subject=\"CN=productpage\";URI="
                + CLIENT_ID + ";DNS=productpage.default.svc;DNS=productpage";
        assertEquals(element, get(port, client, null));
        assertEquals("By=spiffe://a;Hash=00," + element, get(port, client, "By=spiffe://a;Hash=00"));
    }

    @Test
    void sanitizeSetReplacesTheCallersHeaderWithTheElementAndItsCertificate() throws Exception {
        int port = proxy("forward_client_cert_details: SANITIZE_SET\nset_current_client_cert_details: {cert: true}");
        String got = get(port, client, "By=spiffe://forged;Hash=00");
        String pem = java.net.URLDecoder.decode(got.substring(got.indexOf("Cert=\"") + 6, got.length() - 1),
                StandardCharsets.US_ASCII);
        assertEquals("By=" + SERVER_ID + ";Hash=" + sha256(client), got.substring(0, got.indexOf(";Cert=")));
        assertEquals(client.certificatePem().replace("\r", "").strip(), pem.strip());
    }

    @Test
    void forwardOnlyKeepsTheHeaderOfAClientWithACertificateAndRemovesItWithout() throws Exception {
        int port = proxy("forward_client_cert_details: FORWARD_ONLY");
        assertEquals("By=spiffe://a;Hash=00", get(port, client, "By=spiffe://a;Hash=00"));
        assertEquals("none", get(port, null, "By=spiffe://a;Hash=00"));
    }

    @Test
    void withoutAClientCertificateOnlyAlwaysForwardOnlyKeepsTheCallersHeader() throws Exception {
        assertEquals("none", get(proxy("forward_client_cert_details: APPEND_FORWARD"), null, "By=spiffe://a"));
        assertEquals("By=spiffe://a", get(proxy("forward_client_cert_details: ALWAYS_FORWARD_ONLY"), null,
                "By=spiffe://a"));
        // the default, SANITIZE, removes it even from a client with a certificate
        assertEquals("none", get(proxy(""), client, "By=spiffe://a"));
    }

    /** The value of {@code label} in a scrape of {@code registry}. */
    private static String label(PrometheusMeterRegistry registry, String name, String label) {
        Matcher m = Pattern.compile("^" + name + "\\{[^}]*\\b" + label + "=\"([^\"]*)\"", Pattern.MULTILINE)
                .matcher(registry.scrape());
        assertTrue(m.find(), registry.scrape());
        return m.group(1);
    }

    @Test
    void anInboundMtlsRequestIsLabelledWithTheClientsAndTheProxysPrincipals() throws Exception {
        LoopbackProxy proxy = proxy("", true);
        int port = proxy.addresses.get(0).getPort();
        get(port, client, null);
        get(port, null, null);
        for (int i = 0; i < 200 && proxy.requests.size() < 2; i++) {
            Thread.sleep(25);
        }
        PrometheusMeterRegistry mtls = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        MeshMetrics.create(mtls, new WorkloadInfo("reviews-v1", "default", "reviews", "v1"))
                .record(proxy.requests.get(0));
        assertEquals(CLIENT_ID, label(mtls, "istio_requests_total", "source_principal"));
        assertEquals(SERVER_ID, label(mtls, "istio_requests_total", "destination_principal"));
        // a client without a certificate: as Istio without mTLS, neither principal is known
        PrometheusMeterRegistry plain = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        MeshMetrics.create(plain, new WorkloadInfo("reviews-v1", "default", "reviews", "v1"))
                .record(proxy.requests.get(1));
        assertEquals("unknown", label(plain, "istio_requests_total", "source_principal"));
        assertEquals("unknown", label(plain, "istio_requests_total", "destination_principal"));
    }

    @Test
    void anInboundMtlsTcpConnectionIsLabelledWithTheClientsAndTheProxysPrincipals() throws Exception {
        int echo = vertx.createNetServer().connectHandler(so -> so.handler(so::write))
                .listen(0, "127.0.0.1").await().actualPort();
        int port = LoopbackProxy.freePort();
        LoopbackProxy proxy = start(TcpRelayTest.config(port, "", "", echo), true);
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        proxy.server.tcpMetrics(MeshMetrics.create(registry, new WorkloadInfo("reviews-v1", "default", "reviews",
                "v1"))::tcpConnection);
        HttpClientOptions o = tls(new HttpClientOptions(), client);
        NetClient net = vertx.createNetClient(new NetClientOptions().setSsl(true).setHostnameVerificationAlgorithm("")
                .setTrustOptions(o.getTrustOptions()).setKeyCertOptions(o.getKeyCertOptions()));
        opened.push(() -> net.close().await(10, TimeUnit.SECONDS));
        NetSocket so = net.connect(port, "127.0.0.1").await(10, TimeUnit.SECONDS);
        var echoed = new java.util.concurrent.CompletableFuture<String>();
        so.handler(b -> echoed.complete(b.toString()));
        so.write("ping").await(10, TimeUnit.SECONDS);
        assertEquals("ping", echoed.get(10, TimeUnit.SECONDS));
        assertEquals(CLIENT_ID, label(registry, "istio_tcp_connections_opened_total", "source_principal"));
        assertEquals(SERVER_ID, label(registry, "istio_tcp_connections_opened_total", "destination_principal"));
        so.close().await(10, TimeUnit.SECONDS);
    }
}
