package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerOptions;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A request's authority goes upstream as it came, as Envoy's router forwards it when no host rewrite or port strip
 * applies: {@code a.local:80} keeps its port, {@code user@a.local} (which Envoy's HTTP/1 codec takes in a Host) its
 * user information, over HTTP/1.1 and HTTP/2 to the upstream alike.
 */
@Timeout(60)
class ProxyAuthorityTest {
    private final Vertx vertx = Vertx.vertx();
    private final List<String> seen = new CopyOnWriteArrayList<>();
    private LoopbackProxy proxy;

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** A proxy to an upstream that notes each request's Host (its :authority over HTTP/2) as it came. */
    private int proxy(boolean http2Upstream) throws Exception {
        int upstream = vertx.createHttpServer(new HttpServerOptions().setHttp2ClearTextEnabled(true))
                .requestHandler(req -> {
                    seen.add(req.version() == io.vertx.core.http.HttpVersion.HTTP_2 ? req.authority().toString()
                            : req.headers().get("host"));
                    req.response().end();
                }).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        int port = LoopbackProxy.freePort();
        String config = LoopbackProxy.inboundConfig(port, upstream, "");
        proxy = new LoopbackProxy(http2Upstream ? LoopbackProxy.overHttp2(config, "") : config);
        return port;
    }

    @Test
    void theAuthorityGoesUpstreamAsItCame() throws Exception {
        for (boolean http2Upstream : new boolean[] {false, true}) {
            seen.clear();
            int port = proxy(http2Upstream);
            // (user information over HTTP/2 is for the upstream to take or refuse: Vert.x's server refuses it)
            List<String> hosts = http2Upstream ? List.of("a.local:80") : List.of("a.local:80", "user@a.local");
            for (String host : hosts) {
                String answer = Http1RequestsTest.exchange(port, "GET /x HTTP/1.1\r\nhost: " + host
                        + "\r\nconnection: close\r\n\r\n");
                assertTrue(answer.startsWith("HTTP/1.1 200 "), answer);
            }
            try (Http2Wire h2 = Http2Wire.client(port)) {
                h2.headers(1, true, ":method", "GET", ":scheme", "http", ":path", "/x", ":authority", "a.local:80");
                assertEquals("200", h2.status(h2.until(1), 1));
            }
            List<String> expected = new java.util.ArrayList<>(hosts);
            expected.add("a.local:80");
            assertEquals(expected, seen, "HTTP/2 upstream: " + http2Upstream);
            proxy.close();
            proxy = null;
        }
    }
}
