package dev.inmesh.interception.proxy;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.config.FileConfigSource;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.net.ConnectOptions;
import io.vertx.core.net.NetClient;
import io.vertx.core.net.NetClientOptions;
import io.vertx.core.net.NetSocket;
import io.vertx.core.net.SelfSignedCertificate;
import io.vertx.core.net.SocketAddress;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A filter chain whose transport socket is {@code envoy.transport_sockets.tls} with a DownstreamTlsContext, as
 * Envoy terminates it: the proxy presents the chain's certificate, checks a client certificate against the chain's
 * trusted CA (required when the context says so), takes h2 through ALPN, and runs the chain's filter on the
 * decrypted stream; on a listener with the TLS inspector, a {@code transport_protocol: tls} chain takes the TLS
 * clients and a {@code raw_buffer} chain the others.
 */
@Timeout(60)
class DownstreamTlsTest {
    private static final String CHAIN = "    - filters:\n";
    private final Vertx vertx = Vertx.vertx();
    private final SelfSignedCertificate serverCert = SelfSignedCertificate.create("proxy.example.com");
    private final SelfSignedCertificate clientCert = SelfSignedCertificate.create("client.example.com");
    private final SelfSignedCertificate strangerCert = SelfSignedCertificate.create("client.example.com");
    private final AtomicInteger appRequests = new AtomicInteger();
    /** The application: answers with the scheme the proxy says the request came with, and its path. */
    private final int app = vertx.createHttpServer().requestHandler(req -> {
        appRequests.incrementAndGet();
        req.response().end("proto=" + req.getHeader("x-forwarded-proto") + " path=" + req.path());
    }).listen(0, "127.0.0.1").await().actualPort();
    /**
     * What the test opened, closed last first. The clients' closes here also keep them reachable to the end: Vert.x
     * closes a client once it is no longer referenced, the connections it opened with it.
     */
    private final java.util.Deque<AutoCloseable> closing = new java.util.ArrayDeque<>();

    @TempDir
    Path dir;

    @AfterEach
    void closeAll() throws Exception {
        while (!closing.isEmpty()) {
            closing.pop().close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
        for (SelfSignedCertificate c : List.of(serverCert, clientCert, strangerCert)) {
            c.delete();
        }
    }

    /**
     * The transport socket of a chain serving the proxy's certificate, with {@code top} (more fields of the
     * DownstreamTlsContext) and {@code common} (more of its common_tls_context), indented as a chain's field.
     */
    private String socket(String top, String common) {
        String yaml = "transport_socket:\n  name: envoy.transport_sockets.tls\n  typed_config:\n"
                + "    \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext\n"
                + top.indent(4) + "    common_tls_context:\n" + common.indent(6)
                + "      tls_certificates: [{certificate_chain: {filename: \"" + serverCert.certificatePath()
                + "\"}, private_key: {filename: \"" + serverCert.privateKeyPath() + "\"}}]\n";
        return yaml.indent(6);
    }

    /** The config's (first) chain, given a match and a transport socket (chain fields, from {@link #socket}). */
    private static String withChain(String config, String fields) {
        return config.replaceFirst(CHAIN, "    - " + fields.substring(6) + "      filters:\n");
    }

    /** The HTTP listener "front" on {@code port} routing host svc to the application, its chain with these fields. */
    private String httpConfig(int port, String fields) {
        return withChain("static_resources:\n  listeners:\n" + Http1RequestsTest.listener("front", port, "")
                + Http1RequestsTest.clusterC(app), fields);
    }

    private LoopbackProxy start(String yaml) throws Exception {
        LoopbackProxy p = new LoopbackProxy(yaml);
        closing.push(p);
        return p;
    }

    /** An HTTPS client trusting the proxy's certificate, presenting {@code own} (null: none). */
    private HttpClient https(SelfSignedCertificate own, boolean h2) {
        HttpClientOptions o = new HttpClientOptions().setSsl(true).setVerifyHost(false)
                .setTrustOptions(serverCert.trustOptions());
        if (own != null) {
            o.setKeyCertOptions(own.keyCertOptions());
        }
        if (h2) {
            o.setProtocolVersion(HttpVersion.HTTP_2).setUseAlpn(true);
        }
        HttpClient c = vertx.createHttpClient(o);
        closing.push(() -> c.close().await(10, TimeUnit.SECONDS));
        return c;
    }

    private record Answer(String body, HttpVersion version, List<Certificate> peer) {}

    /** GET {@code path} with host svc from the proxy on {@code port}. */
    private Answer get(HttpClient c, int port, String path) throws Exception {
        return onEventLoop(vertx, () -> c.request(new RequestOptions()
                        .setServer(SocketAddress.inetSocketAddress(port, "127.0.0.1"))
                        .setHost("svc").setPort(port).setURI(path))
                .compose(req -> req.send().compose(resp -> resp.body().map(b -> {
                    try {
                        return new Answer(b.toString(), resp.version(), req.connection().peerCertificates());
                    } catch (javax.net.ssl.SSLPeerUnverifiedException e) {
                        throw new IllegalStateException(e);
                    }
                }))))
                .await(10, TimeUnit.SECONDS);
    }

    private byte[] proxyCertificate() throws Exception {
        try (InputStream in = Files.newInputStream(Path.of(serverCert.certificatePath()))) {
            return CertificateFactory.getInstance("X.509").generateCertificate(in).getEncoded();
        }
    }

    @Test
    void anHttpsRequestOnAPlainListenerReachesThePlainApplicationAsHttpsWithTheProxysCertificate() throws Exception {
        int port = LoopbackProxy.freePort();
        LoopbackProxy proxy = start(httpConfig(port, socket("", "")));
        HttpClient client = vertx.createHttpClient(new HttpClientOptions().setSsl(true).setVerifyHost(false)
                .setForceSni(true).setTrustOptions(serverCert.trustOptions()));
        closing.push(() -> client.close().await(10, TimeUnit.SECONDS));
        Answer a = get(client, port, "/hello");
        assertEquals("proto=https path=/hello", a.body());
        assertEquals(HttpVersion.HTTP_1_1, a.version());
        assertArrayEquals(proxyCertificate(), a.peer().get(0).getEncoded());
        // the access log's %REQUESTED_SERVER_NAME%: the SNI the client sent, here its request's host
        for (int i = 0; i < 200 && proxy.requests.isEmpty(); i++) {
            Thread.sleep(25);
        }
        assertEquals("svc", proxy.requests.get(0).requestedServerName());
    }

    @Test
    void schemeMatchUpstreamGivesAnHttpsCallersRequestTheClearTextConnectionsScheme() throws Exception {
        // Envoy Gateway's listeners: scheme_header_transformation {match_upstream: true}; the h2c upstream reads
        // :scheme http, its own connection's, while x-forwarded-proto keeps the caller's https
        int h2c = vertx.createHttpServer().requestHandler(req -> req.response().end("scheme=" + req.scheme()
                + " proto=" + req.getHeader("x-forwarded-proto") + " version=" + req.version()))
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        int port = LoopbackProxy.freePort();
        String config = withChain("static_resources:\n  listeners:\n" + Http1RequestsTest.listener("front", port,
                "scheme_header_transformation: {match_upstream: true}") + Http1RequestsTest.clusterC(h2c)
                .replace("    connect_timeout: 1s\n", "    connect_timeout: 1s\n    http2_protocol_options: {}\n"),
                socket("", ""));
        start(config);
        assertEquals("scheme=http proto=https version=HTTP_2", get(https(null, false), port, "/s").body());
    }

    @Test
    void alpnH2IsTakenWhenTheChainOffersIt() throws Exception {
        int port = LoopbackProxy.freePort();
        start(httpConfig(port, socket("", "alpn_protocols: [h2, http/1.1]")));
        Answer a = get(https(null, true), port, "/two");
        assertEquals(HttpVersion.HTTP_2, a.version());
        assertEquals("proto=https path=/two", a.body());
    }

    @Test
    void aRequiredClientCertificateRefusesAClientWithoutOneAndOneFromAnotherCa() throws Exception {
        int port = LoopbackProxy.freePort();
        LoopbackProxy proxy = start(inbound(httpConfig(port, socket("require_client_certificate: true",
                "validation_context: {trusted_ca: {filename: \"" + clientCert.certificatePath() + "\"}}"))));
        assertThrows(Exception.class, () -> get(https(null, false), port, "/none"));
        assertThrows(Exception.class, () -> get(https(strangerCert, false), port, "/stranger"));
        assertEquals(0, appRequests.get());
        assertEquals("proto=https path=/trusted", get(https(clientCert, false), port, "/trusted").body());
        // as Istio's server side (mutual_tls_ = !peer_san.empty() && !local_san.empty()): a verified client
        // certificate without a URI SAN (a self-signed CN=client.example.com) names no principal, so it is none
        assertEquals("none", securityPolicy(proxy));
        // the access log's TLS operators read the connection's TLS, as Envoy's
        var entry = dev.inmesh.runtime.accesslog.AccessLogEntry.of(proxy.requests.get(0), proxy.requests.get(0).log());
        String line = dev.inmesh.runtime.accesslog.CommandFormat.compile("%DOWNSTREAM_TLS_VERSION%"
                + "|%DOWNSTREAM_TLS_CIPHER%|%DOWNSTREAM_PEER_SUBJECT%|%DOWNSTREAM_LOCAL_SUBJECT%|%DOWNSTREAM_PEER_FINGERPRINT_256%"
                + "|%DOWNSTREAM_PEER_SERIAL%|%DOWNSTREAM_PEER_CERT_V_START%", false).format(entry);
        String[] f = line.split("\\|");
        assertTrue(f[0].equals("TLSv1.2") || f[0].equals("TLSv1.3"), line);
        // BoringSSL's names: the RFC's for TLS 1.3, OpenSSL's for TLS 1.2 (not the JDK's TLS_ECDHE_..._WITH_...)
        assertTrue(f[0].equals("TLSv1.3") ? f[1].matches("TLS_(AES|CHACHA20)_[A-Z0-9_]+")
                : f[1].matches("[A-Z0-9]+(-[A-Z0-9]+)+"), line);
        assertEquals("CN=client.example.com", f[2], line);
        assertEquals("CN=proxy.example.com", f[3], line);
        var client = (java.security.cert.X509Certificate) java.security.cert.CertificateFactory.getInstance("X.509")
                .generateCertificate(Files.newInputStream(Path.of(clientCert.certificatePath())));
        assertEquals(java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
                .digest(client.getEncoded())), f[4], line);
        String serial = client.getSerialNumber().toString(16);
        assertEquals(serial.length() % 2 == 0 ? serial : "0" + serial, f[5], line);
        assertTrue(f[6].matches("\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z"), line);
    }

    /** The config with its listener INBOUND, as virtualInbound is. */
    private static String inbound(String config) {
        return config.replace("    filter_chains:\n", "    traffic_direction: INBOUND\n    filter_chains:\n");
    }

    /** Istio's connection_security_policy of the (one) request the proxy served. */
    private static String securityPolicy(LoopbackProxy proxy) throws Exception {
        for (int i = 0; i < 200 && proxy.requests.isEmpty(); i++) {
            Thread.sleep(25);
        }
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        MeshMetrics.create(registry, new WorkloadInfo("app-v1", "default", "app", "v1"))
                .record(proxy.requests.get(0));
        Matcher m = Pattern.compile("connection_security_policy=\"([^\"]*)\"").matcher(registry.scrape());
        assertTrue(m.find());
        return m.group(1);
    }

    @Test
    void aValidationContextWithoutRequireTakesAClientWithoutACertificateButNotOneItCannotVerify() throws Exception {
        int port = LoopbackProxy.freePort();
        LoopbackProxy proxy = start(inbound(httpConfig(port, socket("", "validation_context: {trusted_ca: "
                + "{filename: \"" + clientCert.certificatePath() + "\"}}"))));
        assertEquals("proto=https path=/none", get(https(null, false), port, "/none").body());
        assertEquals("none", securityPolicy(proxy));
        assertThrows(Exception.class, () -> get(https(strangerCert, false), port, "/stranger"));
        assertEquals(1, appRequests.get());
    }

    /** An echo server answering "got " and what it read, on loopback: its port. */
    private int echo() throws Exception {
        return vertx.createNetServer().connectHandler(so -> so.handler(data -> so.write("got " + data)))
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    /** Sends "ping" over TLS with SNI relay.example.com to the proxy's {@code port}, checks the echo, closes. */
    private void pingOverTls(int port) throws Exception {
        NetClient net = vertx.createNetClient(new NetClientOptions().setSsl(true).setHostnameVerificationAlgorithm("")
                .setTrustOptions(serverCert.trustOptions()));
        closing.push(() -> net.close().await(10, TimeUnit.SECONDS));
        NetSocket so = net.connect(new ConnectOptions().setPort(port).setHost("127.0.0.1").setSsl(true)
                .setSniServerName("relay.example.com")).await(10, TimeUnit.SECONDS);
        CompletableFuture<String> got = new CompletableFuture<>();
        Buffer all = Buffer.buffer();
        so.handler(b -> {
            all.appendBuffer(b);
            if (all.length() >= "got ping".length()) {
                got.complete(all.toString());
            }
        });
        so.write("ping").await(10, TimeUnit.SECONDS);
        assertEquals("got ping", got.get(10, TimeUnit.SECONDS));
        assertArrayEquals(proxyCertificate(), so.peerCertificates().get(0).getEncoded());
        so.close().await(10, TimeUnit.SECONDS);
    }

    @Test
    void aTcpProxyChainOverTlsRelaysTheDecryptedBytes() throws Exception {
        int port = LoopbackProxy.freePort();
        LoopbackProxy proxy = start(withChain(TcpRelayTest.config(port, "", "", echo()), socket("", "")));
        List<dev.inmesh.runtime.stats.TcpStreamInfo> logged = new java.util.concurrent.CopyOnWriteArrayList<>();
        proxy.server.tcpAccessLog(logged::add);
        pingOverTls(port);
        // the listener has no TLS inspector: the SNI is the handshake's
        for (int i = 0; i < 200 && logged.isEmpty(); i++) {
            Thread.sleep(25);
        }
        assertEquals("relay.example.com", logged.get(0).requestedServerName());
    }

    @Test
    void theListenersAccessLogCountsTheBytesInsideTheTlsItsChainTerminated() throws Exception {
        int port = LoopbackProxy.freePort();
        Path log = dir.resolve("listener.log");
        start(withChain(TcpRelayTest.config(port, "", "", echo()), socket("", "")).replace("    filter_chains:\n",
                ProxyAccessLogTest.accessLog(log, "%BYTES_RECEIVED% %BYTES_SENT% %REQUESTED_SERVER_NAME%", "    ")
                        + "    filter_chains:\n"));
        pingOverTls(port);
        // as Envoy's connection: the application's bytes, not the TLS records (handshake and alerts) carrying them
        for (int i = 0; i < 200 && !(Files.exists(log) && Files.size(log) > 0); i++) {
            Thread.sleep(25);
        }
        assertEquals(List.of("4 8 relay.example.com"), Files.readAllLines(log));
    }

    @Test
    void aHandshakeNotDoneWithinTheChainsTransportSocketConnectTimeoutClosesTheConnection() throws Exception {
        int port = LoopbackProxy.freePort();
        start(httpConfig(port, "      transport_socket_connect_timeout: 0.2s\n" + socket("", "")));
        try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
            // a client that never sends its hello: closed once the timeout is over, not after Netty's 10 s
            s.setSoTimeout(5_000);
            long start = System.nanoTime();
            assertEquals(-1, s.getInputStream().read());
            assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(4));
        }
        // a client that does finish in time is served: on a listener whose limit a whole handshake (a cold JDK TLS
        // stack on a loaded machine) is sure to be within, as it might not be within 0.2 s
        int second = LoopbackProxy.freePort();
        start(httpConfig(second, "      transport_socket_connect_timeout: 3s\n" + socket("", "")));
        assertEquals("proto=https path=/in-time", get(https(null, false), second, "/in-time").body());
    }

    @Test
    void aVirtualInboundStyleListenerPicksTheTlsChainForTlsClientsAndTheRawOneForOthers() throws Exception {
        int port = LoopbackProxy.freePort();
        String config = httpConfig(port, "      filter_chain_match: {transport_protocol: raw_buffer}\n");
        // a second chain, the first one's copy, for TLS clients; and the TLS inspector to tell them apart
        int chain = config.indexOf("    - filter_chain_match:");
        String plain = config.substring(chain, config.indexOf("  clusters:"));
        config = config.replace("    filter_chains:\n", "    listener_filters: [{name: envoy.filters.listener"
                + ".tls_inspector}]\n    filter_chains:\n" + plain.replace("raw_buffer}\n", "tls}\n" + socket("", "")));
        start(config);
        assertEquals("proto=https path=/secure", get(https(null, false), port, "/secure").body());
        HttpClient cleartext = vertx.createHttpClient();
        closing.push(() -> cleartext.close().await(10, TimeUnit.SECONDS));
        assertEquals("proto=http path=/open", get(cleartext, port, "/open").body());
    }

    @Test
    void aCertificateFileThatCannotBeReadRejectsTheListenerAndTheLastGoodConfigurationKeepsServing()
            throws Exception {
        int port = LoopbackProxy.freePort();
        String good = httpConfig(port, socket("", ""));
        Path file = Files.writeString(dir.resolve("proxy.yaml"), good);
        LoopbackProxy proxy = start(good);
        FileConfigSource watch = new FileConfigSource(vertx, file, Duration.ofMillis(50));
        watch.start(proxy.snapshots).await(10, TimeUnit.SECONDS);
        closing.push(() -> watch.close().await(10, TimeUnit.SECONDS));
        // written whole by a rename: a poll must not read a half-written file (another error than the one awaited)
        Path next = Files.writeString(dir.resolve("proxy.yaml.tmp"),
                good.replace(serverCert.certificatePath(), dir.resolve("gone.pem").toString()));
        Files.move(next, file, java.nio.file.StandardCopyOption.ATOMIC_MOVE,
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        for (int i = 0; i < 200 && watch.lastError() == null; i++) {
            Thread.sleep(25);
        }
        String error = watch.lastError();
        assertNotNull(error);
        assertTrue(error.contains("Listener \"front\"") && error.contains("gone.pem"), error);
        Answer a = get(https(null, false), port, "/still");
        assertEquals("proto=https path=/still", a.body());
        assertArrayEquals(proxyCertificate(), a.peer().get(0).getEncoded());
    }
}
