package dev.inmesh.interception.proxy;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.net.SelfSignedCertificate;
import io.vertx.core.net.SocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A TLS filter chain whose certificate comes from Istio's file SDS name ({@code file-cert:CERT~KEY}) presents a
 * rotated certificate on the next handshake, as Istio's agent serves the changed files to Envoy again, without a new
 * listener version; a rotated file that does not parse keeps the last good certificate.
 */
@Timeout(60)
class DownstreamSdsFileRotationTest {
    private final Vertx vertx = Vertx.vertx();
    private final SelfSignedCertificate first = SelfSignedCertificate.create("first.example.com");
    private final SelfSignedCertificate second = SelfSignedCertificate.create("second-proxy.example.com");
    private final int app = vertx.createHttpServer().requestHandler(req -> req.response().end("ok"))
            .listen(0, "127.0.0.1").await().actualPort();
    private LoopbackProxy proxy;

    @TempDir
    Path dir;

    @AfterEach
    void closeAll() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
        first.delete();
        second.delete();
    }

    /** The subject of the certificate a new connection to the proxy is shown. */
    private String presented(int port) throws Exception {
        HttpClient c = vertx.createHttpClient(new HttpClientOptions().setSsl(true).setTrustAll(true)
                .setVerifyHost(false));
        try {
            return onEventLoop(vertx, () -> c.request(new RequestOptions()
                            .setServer(SocketAddress.inetSocketAddress(port, "127.0.0.1"))
                            .setHost("svc").setPort(port).setURI("/"))
                    .compose(req -> req.send().compose(resp -> resp.body().map(b -> {
                        try {
                            return ((X509Certificate) req.connection().peerCertificates().get(0))
                                    .getSubjectX500Principal().getName() + " " + b;
                        } catch (javax.net.ssl.SSLPeerUnverifiedException e) {
                            throw new IllegalStateException(e);
                        }
                    })))).await(10, TimeUnit.SECONDS);
        } finally {
            c.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void aRotatedServerCertificateIsPresentedOnTheNextHandshakeAndABrokenOneKeepsTheLastGood() throws Exception {
        Path cert = Files.writeString(dir.resolve("cert-chain.pem"), Files.readString(Path.of(
                first.certificatePath())));
        Path key = Files.writeString(dir.resolve("key.pem"), Files.readString(Path.of(first.privateKeyPath())));
        int port = LoopbackProxy.freePort();
        String socket = "transport_socket:\n  name: envoy.transport_sockets.tls\n  typed_config:\n"
                + "    \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext\n"
                + "    common_tls_context:\n      tls_certificate_sds_secret_configs: [{name: \"file-cert:" + cert
                + "~" + key + "\"}]\n";
        String config = "static_resources:\n  listeners:\n" + Http1RequestsTest.listener("front", port, "")
                + Http1RequestsTest.clusterC(app);
        proxy = new LoopbackProxy(config.replaceFirst("    - filters:\n",
                "    - " + socket.indent(6).substring(6) + "      filters:\n"));
        assertEquals("CN=first.example.com ok", presented(port));

        Files.writeString(key, Files.readString(Path.of(second.privateKeyPath())));
        Files.writeString(cert, Files.readString(Path.of(second.certificatePath())));
        String seen = null;
        for (int i = 0; i < 100 && !"CN=second-proxy.example.com ok".equals(seen); i++) {
            Thread.sleep(100);
            seen = presented(port);
        }
        assertEquals("CN=second-proxy.example.com ok", seen);

        Files.writeString(cert, "not a certificate\n");
        Thread.sleep(2500); // more than two looks
        assertEquals("CN=second-proxy.example.com ok", presented(port));
    }
}
