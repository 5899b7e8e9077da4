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
import java.util.List;
import java.util.Set;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;
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
        SSLEngine client = TlsHandshakes.client("web");
        client.setEnabledProtocols(new String[] {protocol});
        client.setEnabledCipherSuites(suites);
        TlsHandshakes.run(tls.newHandler(ByteBufAllocator.DEFAULT).engine(), client);
        return client.getSession().getCipherSuite();
    }
}
