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

    /**
     * As Envoy's HTTP/2 pool, whose protocol is the ALPN a context without a list offers: h2 alone, so that a server
     * preferring http/1.1 cannot make the connection HTTP/1.1.
     */
    @Test
    void otherContextsOfferTheirListOrH2AloneForHttp2AndNothingForHttp1() {
        assertEquals(List.of("h2"), tls(List.of()).httpAlpn(true));
        assertEquals(List.of("h2", "http/1.1"), tls(List.of("h2", "http/1.1")).httpAlpn(true));
        assertEquals(List.of("h2"), tls(List.of("h2")).httpAlpn(true));
        assertEquals(List.of(), tls(List.of()).httpAlpn(false));
    }

    /**
     * An HTTP/2 connection to a server that would pick http/1.1 when offered it (its ALPN preference first) speaks
     * HTTP/2, as Envoy's HTTP/2 pool does.
     */
    @Test
    void anHttp2ConnectionToAServerPreferringHttp1SpeaksHttp2() throws Exception {
        var ca = TestCertificates.ca("alpn-ca");
        var server = TestCertificates.issue(ca, "web", List.of("web"), List.of());
        io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
        try {
            var serverOptions = new io.vertx.core.http.HttpServerOptions().setSsl(true).setUseAlpn(true)
                    .setAlpnVersions(List.of(io.vertx.core.http.HttpVersion.HTTP_1_1,
                            io.vertx.core.http.HttpVersion.HTTP_2))
                    .setKeyCertOptions(new io.vertx.core.net.PemKeyCertOptions()
                            .setCertValue(io.vertx.core.buffer.Buffer.buffer(server.certificatePem()))
                            .setKeyValue(io.vertx.core.buffer.Buffer.buffer(server.keyPem())));
            var http = vertx.createHttpServer(serverOptions).requestHandler(r -> r.response().end(r.version().name()))
                    .listen(0, "127.0.0.1").await(10, java.util.concurrent.TimeUnit.SECONDS);
            UpstreamTls tls = UpstreamTls.compile(new UpstreamTlsContext("", null, null, ca.certificatePem(), false,
                    List.of(), List.of(), null, null));
            var options = new io.vertx.core.http.HttpClientOptions()
                    .setProtocolVersion(io.vertx.core.http.HttpVersion.HTTP_2);
            tls.apply(options, true, null, 5000);
            var client = vertx.createHttpClient(options);
            String version = client.request(io.vertx.core.http.HttpMethod.GET, http.actualPort(), "127.0.0.1", "/")
                    .compose(req -> req.send().compose(io.vertx.core.http.HttpClientResponse::body))
                    .await(10, java.util.concurrent.TimeUnit.SECONDS).toString();
            assertEquals("HTTP_2", version);
        } finally {
            vertx.close().await(10, java.util.concurrent.TimeUnit.SECONDS);
        }
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
