package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The connection manager's {@code path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT} in the standalone proxy
 * (what Envoy Gateway writes on its listeners): a path with {@code %2F} or {@code %5C} is answered 307 with the
 * normalized path as its {@code Location}, over HTTP/1.1 and HTTP/2, and never routed; a gRPC request gets 400.
 */
@Timeout(30)
class ProxyEscapedSlashRedirectTest {
    private Vertx vertx;
    private LoopbackProxy proxy;
    private int port;
    private io.micrometer.core.instrument.MeterRegistry stats;

    @BeforeEach
    void start() throws Exception {
        vertx = Vertx.vertx();
        int upstream = vertx.createHttpServer().requestHandler(req -> req.response()
                .putHeader("x-seen-path", req.uri()).end())
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy(LoopbackProxy.withHcm(LoopbackProxy.inboundConfig(port, upstream, ""),
                "normalize_path: true\nmerge_slashes: true\npath_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT"));
        stats = proxy.withStats();
    }

    private long stat(String name) {
        return LoopbackProxy.stat(stats, "inbound_0.0.0.0_8080", name);
    }

    @AfterEach
    void stop() throws Exception {
        proxy.close();
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** Status, location and the path the upstream saw, of a GET of {@code uri} with {@code contentType} (or none). */
    private String[] get(HttpVersion version, String uri, String contentType) throws Exception {
        var client = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(version)
                .setHttp2ClearTextUpgrade(false));
        RequestOptions options = new RequestOptions().setMethod(HttpMethod.GET).setPort(port).setHost("127.0.0.1")
                .setURI(uri);
        if (contentType != null) {
            options.putHeader("content-type", contentType);
        }
        try {
            return client.request(options).compose(req -> req.send().compose(resp -> resp.body().map(b ->
                    new String[] {Integer.toString(resp.statusCode()), resp.getHeader("location"),
                            resp.getHeader("x-seen-path"), resp.getHeader("grpc-status")})))
                    .await(10, TimeUnit.SECONDS);
        } finally {
            client.close();
        }
    }

    @Test
    void anEscapedSlashIsRedirectedToTheNormalizedPath() throws Exception {
        for (HttpVersion v : new HttpVersion[] {HttpVersion.HTTP_1_1, HttpVersion.HTTP_2}) {
            String[] r = get(v, "/a%2Fb/..//c%5cd?q=%2F", null);
            assertEquals("307", r[0], v.toString());
            assertEquals("/a/c/d?q=%2F", r[1]);
            assertNull(r[2], "not routed");
            String[] plain = get(v, "/a/c/d?q=%2F", null);
            assertEquals("200", plain[0]);
            assertEquals("/a/c/d?q=%2F", plain[2]);
        }
        StreamInfo logged = proxy.logged(307);
        assertEquals("path_normalization_failed", logged.responseCodeDetails());
        // gRPC cannot follow a redirect: refused (a 400, as gRPC's INTERNAL)
        String[] grpc = get(HttpVersion.HTTP_2, "/pkg.Svc%2FCall", "application/grpc");
        assertNull(grpc[1]);
        assertNull(grpc[2]);
        assertEquals("13", grpc[3]);
        // as Envoy's connection manager counts them: each redirect, and the gRPC request it refused
        assertEquals(2, stat("downstream_rq_redirected_with_normalized_path"));
        assertEquals(1, stat("downstream_rq_failed_path_normalization"));
    }

    @Test
    void aPathTheNormalizationRefusesCountsAsFailedPathNormalization() throws Exception {
        // %00 in a path: refused by Envoy's normalization (400), not redirected
        String[] r = get(HttpVersion.HTTP_1_1, "/a%00b", null);
        assertEquals("400", r[0]);
        assertNull(r[2], "not routed");
        assertEquals(1, stat("downstream_rq_failed_path_normalization"));
        assertEquals(0, stat("downstream_rq_redirected_with_normalized_path"));
    }

    @Test
    void theRedirectKeepsTheConnectionForTheNextRequest() throws Exception {
        try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
            s.setSoTimeout(10_000);
            var out = s.getOutputStream();
            out.write("GET /a%2fb HTTP/1.1\r\nhost: svc\r\n\r\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            String first = HttpBridgeTest.readWholeResponse(s.getInputStream());
            assertEquals(true, first.startsWith("HTTP/1.1 307 "), first);
            assertEquals(true, first.toLowerCase(java.util.Locale.ROOT).contains("location: /a/b\r\n"), first);
            out.write("GET /a/b HTTP/1.1\r\nhost: svc\r\n\r\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            String second = HttpBridgeTest.readWholeResponse(s.getInputStream());
            assertEquals(true, second.startsWith("HTTP/1.1 200 "), second);
        }
    }
}
