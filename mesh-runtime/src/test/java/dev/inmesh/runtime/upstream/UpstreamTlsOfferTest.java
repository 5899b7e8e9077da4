package dev.inmesh.runtime.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.inmesh.api.config.cluster.UpstreamTlsContext;
import java.nio.charset.StandardCharsets;
import java.util.List;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.StandardConstants;
import org.junit.jupiter.api.Test;

/**
 * What an upstream TLS connection offers in its ClientHello. ALPN: Istio's in-mesh contexts offer what Istio's
 * {@code istio.alpn} filter sets for the connection's protocol (the names an Istio sidecar's inbound mTLS chains
 * match), other contexts their own list. SNI: the name as given, even one the JDK takes for no host name.
 */
class UpstreamTlsOfferTest {
    private static UpstreamTls tls(List<String> alpn) {
        return UpstreamTls.compile(new UpstreamTlsContext("", null, null, null, false, List.of(), alpn, null, null));
    }

    @Test
    void anIstioMutualContextOffersIstiosNamesForTheConnectionsProtocol() {
        UpstreamTls istio = tls(List.of("istio-peer-exchange", "istio"));
        assertEquals(List.of("istio-h2", "istio", "h2"), istio.httpAlpn(true));
        assertEquals(List.of("istio-http/1.1", "istio", "http/1.1"), istio.httpAlpn(false));
    }

    @Test
    void otherContextsOfferTheirListForHttp2AndNothingForHttp1() {
        assertEquals(List.of("h2", "http/1.1"), tls(List.of()).httpAlpn(true));
        assertEquals(List.of("h2"), tls(List.of("h2")).httpAlpn(true));
        assertEquals(List.of(), tls(List.of()).httpAlpn(false));
    }

    @Test
    void istiosSniNamesGoAsTheyAreAndAnIpv6LiteralAsNone() {
        for (String name : List.of("outbound_.9080_._.reviews.default.svc.cluster.local",
                "outbound|9080||reviews.default.svc.cluster.local")) {
            var sni = UpstreamTls.serverName(name);
            assertEquals(StandardConstants.SNI_HOST_NAME, sni.getType());
            assertEquals(name, new String(sni.getEncoded(), StandardCharsets.US_ASCII));
        }
        assertEquals(new SNIHostName("reviews.default"), UpstreamTls.serverName("reviews.default"));
        assertNull(UpstreamTls.serverName("::1"));
        assertNull(UpstreamTls.serverName(""));
    }
}
