package dev.inmesh.runtime.tls;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.inmesh.api.config.cluster.UpstreamTlsContext.TlsVersion;
import dev.inmesh.api.config.core.SdsFiles;
import dev.inmesh.api.config.listener.DownstreamTlsContext;
import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.upstream.TlsHandshakes;
import io.netty.buffer.ByteBufAllocator;
import java.util.List;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;
import org.junit.jupiter.api.Test;

/**
 * The protocol a filter chain's TLS negotiates through ALPN: the first of the chain's {@code alpn_protocols} the
 * client offers, as Envoy's listener picks it, but never Istio's {@code istio-peer-exchange}, whose in-band metadata
 * exchange Inmesh does not speak.
 */
class DownstreamTlsAlpnTest {
    private static final TestCertificates.Issued CA = TestCertificates.ca("alpn-ca");
    private static final TestCertificates.Issued SERVER = TestCertificates.issue(CA, "web", List.of("web"),
            List.of());

    /** What a handshake with a chain of {@code chainAlpn} and a client offering {@code offered} agreed on. */
    private static String negotiated(List<String> chainAlpn, String... offered) throws Exception {
        DownstreamTls tls = DownstreamTls.compile(new DownstreamTlsContext(SERVER.certificatePem(), SERVER.keyPem(),
                null, List.of(), false, chainAlpn, TlsVersion.TLSv1_2, TlsVersion.TLSv1_3, SdsFiles.NONE,
                List.of()));
        SSLEngine client = TlsHandshakes.client("web");
        SSLParameters p = client.getSSLParameters();
        p.setApplicationProtocols(offered);
        client.setSSLParameters(p);
        TlsHandshakes.run(tls.newHandler(ByteBufAllocator.DEFAULT).engine(), client);
        return client.getApplicationProtocol();
    }

    @Test
    void theFirstOfTheChainsProtocolsTheClientOffersIsTaken() throws Exception {
        assertEquals("h2", negotiated(List.of("h2", "http/1.1"), "http/1.1", "h2"));
        assertEquals("", negotiated(List.of("h2", "http/1.1"), "istio"));
    }

    @Test
    void anIstioSidecarsTcpConnectionIsNotToldThePeerExchangeProtocol() throws Exception {
        // Istio's inbound TCP chain (ALPN istio-peer-exchange, h2, http/1.1) and a sidecar's TCP client: had the
        // server agreed on istio-peer-exchange, the client would send its metadata frame as the stream's first bytes
        // and wait for the server's, which Inmesh would pass to the application as data
        List<String> istio = List.of("istio-peer-exchange", "h2", "http/1.1");
        assertEquals("", negotiated(istio, "istio-peer-exchange", "istio"));
        assertEquals("h2", negotiated(istio, "istio-peer-exchange", "h2"));
    }
}
