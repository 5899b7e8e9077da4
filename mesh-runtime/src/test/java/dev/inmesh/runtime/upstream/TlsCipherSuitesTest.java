package dev.inmesh.runtime.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.UpstreamTlsContext;
import dev.inmesh.api.config.cluster.UpstreamTlsContext.TlsVersion;
import dev.inmesh.api.config.core.SdsFiles;
import dev.inmesh.api.config.listener.DownstreamTlsContext;
import dev.inmesh.runtime.tls.DownstreamTls;
import io.netty.buffer.ByteBufAllocator;
import io.vertx.core.http.HttpClientOptions;
import java.nio.ByteBuffer;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Set;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult.HandshakeStatus;
import javax.net.ssl.SSLException;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;
import org.junit.jupiter.api.Test;

/**
 * {@code tls_params.cipher_suites} as Envoy applies it: the listed suites (BoringSSL's names) are the only ones of TLS
 * 1.2 and older a listener accepts and a cluster offers, Envoy's default list when none is given, and TLS 1.3's
 * suites are left alone. The listener's side is shown by handshakes in memory with a JDK client.
 */
class TlsCipherSuitesTest {
    private static final TestCertificates.Issued CA = TestCertificates.ca("suites-ca");
    /** An EC key: its TLS 1.2 suites are the ECDHE-ECDSA ones. */
    private static final TestCertificates.Issued SERVER = TestCertificates.issue(CA, "web", List.of("web"), List.of());
    private static final String AES128 = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256";
    private static final String AES256 = "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384";
    private static final String AES128_CBC = "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA";

    private static DownstreamTls listener(List<String> suites, TlsVersion max) {
        return DownstreamTls.compile(new DownstreamTlsContext(SERVER.certificatePem(), SERVER.keyPem(), null,
                List.of(), false, List.of(), TlsVersion.TLSv1_2, max, SdsFiles.NONE, suites));
    }

    @Test
    void aListenerAcceptsOnlyTheListedSuitesOfTls12() throws Exception {
        DownstreamTls tls = listener(List.of("ECDHE-ECDSA-AES256-GCM-SHA384"), TlsVersion.TLSv1_2);
        assertThrows(SSLException.class, () -> handshake(tls, "TLSv1.2", AES128));
        assertEquals(AES256, handshake(tls, "TLSv1.2", AES128, AES256));
    }

    @Test
    void withoutAListAListenerTakesEnvoysDefaultsWhichHaveNoCbcSuite() throws Exception {
        DownstreamTls tls = listener(List.of(), TlsVersion.TLSv1_3);
        assertThrows(SSLException.class, () -> handshake(tls, "TLSv1.2", AES128_CBC));
        assertEquals(AES128, handshake(tls, "TLSv1.2", AES128));
    }

    @Test
    void theListLeavesTls13Alone() throws Exception {
        DownstreamTls tls = listener(List.of("ECDHE-ECDSA-AES256-GCM-SHA384"), TlsVersion.TLSv1_3);
        assertEquals("TLS_CHACHA20_POLY1305_SHA256", handshake(tls, "TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256"));
    }

    @Test
    void anApplicationsServerOfTheInJvmInboundSideTakesTheChainsList() {
        DownstreamTlsContext context = new DownstreamTlsContext(SERVER.certificatePem(), SERVER.keyPem(), null,
                List.of(), false, List.of(), TlsVersion.TLSv1_2, TlsVersion.TLSv1_2, SdsFiles.NONE,
                List.of("ECDHE-ECDSA-AES256-GCM-SHA384"));
        DownstreamTls tls = DownstreamTls.compile(context);
        var options = dev.inmesh.runtime.tls.ServerTls.apply(new io.vertx.core.http.HttpServerOptions(), context,
                () -> tls);
        assertEquals(Set.of(AES256), options.getEnabledCipherSuites());
    }

    @Test
    void aClusterOffersItsListOrEnvoysDefaultsAndTls13sWhenItAllowsTls13() {
        UpstreamTlsContext listed = new UpstreamTlsContext("", null, null, null, false, List.of(), List.of(), null,
                null, false, false, SdsFiles.NONE, List.of("ECDHE-RSA-AES128-GCM-SHA256",
                "ECDHE-ECDSA-AES256-GCM-SHA384"));
        List<String> expected = List.of("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", AES256);
        UpstreamTls tls = UpstreamTls.compile(listed);
        // the standalone proxy's relays (tcp_proxy, WebSocket)
        SSLEngine relay = tls.relayHandler(ByteBufAllocator.DEFAULT, 1000, null, 0).engine();
        assertEquals(expected, List.of(relay.getEnabledCipherSuites()));
        // the HTTP pools
        HttpClientOptions options = new HttpClientOptions();
        tls.apply(options, false, null, 1000);
        assertEquals(Set.copyOf(expected), Set.copyOf(options.getSslOptions().getEnabledCipherSuites()));

        UpstreamTlsContext defaults = new UpstreamTlsContext("", null, null, null, false, List.of(), List.of(),
                null, TlsVersion.TLSv1_3);
        SSLEngine engine = UpstreamTls.compile(defaults).relayHandler(ByteBufAllocator.DEFAULT, 1000, null, 0)
                .engine();
        List<String> offered = List.of(engine.getEnabledCipherSuites());
        assertEquals(List.of(AES128, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", AES256,
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"), offered.stream().filter(s -> !s.startsWith("TLS_AES")
                && !s.equals("TLS_CHACHA20_POLY1305_SHA256")).toList());
        assertTrue(offered.containsAll(List.of("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                "TLS_CHACHA20_POLY1305_SHA256")), offered.toString());
    }

    /**
     * A handshake in memory between the listener and a JDK client that offers {@code protocol} and {@code suites}
     * only; the suite it agreed on.
     *
     * @throws SSLException when the handshake fails
     */
    private static String handshake(DownstreamTls tls, String protocol, String... suites) throws Exception {
        SSLEngine server = tls.newHandler(ByteBufAllocator.DEFAULT).engine();
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, new TrustManager[] {new TrustAll()}, new SecureRandom());
        SSLEngine client = ctx.createSSLEngine("web", 443);
        client.setUseClientMode(true);
        client.setEnabledProtocols(new String[] {protocol});
        client.setEnabledCipherSuites(suites);
        ByteBuffer toServer = ByteBuffer.allocate(1 << 17);
        ByteBuffer toClient = ByteBuffer.allocate(1 << 17);
        client.beginHandshake();
        server.beginHandshake();
        for (int i = 0; i < 100; i++) {
            step(client, toServer, toClient);
            step(server, toClient, toServer);
            if (done(client) && done(server)) {
                return client.getSession().getCipherSuite();
            }
        }
        throw new AssertionError("the handshake did not end in 100 rounds");
    }

    private static boolean done(SSLEngine e) {
        HandshakeStatus s = e.getHandshakeStatus();
        return s == HandshakeStatus.NOT_HANDSHAKING || s == HandshakeStatus.FINISHED;
    }

    /** One step of an engine: what it has to send into {@code out}, or what it was sent from {@code in}. */
    private static void step(SSLEngine e, ByteBuffer out, ByteBuffer in) throws SSLException {
        ByteBuffer app = ByteBuffer.allocate(1 << 17);
        for (int n = 0; n < 10; n++) {
            switch (e.getHandshakeStatus()) {
                case NEED_WRAP -> e.wrap(ByteBuffer.allocate(0), out);
                case NEED_UNWRAP -> {
                    in.flip();
                    var r = e.unwrap(in, app);
                    in.compact();
                    if (r.bytesConsumed() == 0) {
                        return; // waits for the other side
                    }
                }
                case NEED_TASK -> {
                    for (Runnable t; (t = e.getDelegatedTask()) != null; ) {
                        t.run();
                    }
                }
                default -> {
                    return;
                }
            }
        }
    }

    private static final class TrustAll implements X509TrustManager {
        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType) {}

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType) {}

        @Override
        public X509Certificate[] getAcceptedIssuers() {
            return new X509Certificate[0];
        }
    }
}
