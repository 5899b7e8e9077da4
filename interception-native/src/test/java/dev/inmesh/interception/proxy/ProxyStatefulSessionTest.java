package dev.inmesh.interception.proxy;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.router.IstioRbac;
import dev.inmesh.runtime.xds.IstioPersistentSession;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.RequestOptions;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The standalone proxy keeps Istio's persistent sessions as Envoy's stateful session filter does: istiod's empty
 * filter in the connection manager, the cookie session in the virtual host, a round-robin cluster of two applications
 * on loopback. The first response carries the cookie naming the application that answered; requests carrying it keep
 * going there.
 */
@Timeout(60)
class ProxyStatefulSessionTest {
    private final Vertx vertx = Vertx.vertx();

    @AfterEach
    void close() throws Exception {
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    private int app(String answer) throws Exception {
        return vertx.createHttpServer().requestHandler(req -> req.response().end(answer))
                .listen(0, "127.0.0.1").await().actualPort();
    }

    /** What the proxy answers to GET /cart for host svc with {@code cookie} (null: none): "body|set-cookie". */
    private String get(HttpClient client, int port, String cookie) throws Exception {
        RequestOptions o = new RequestOptions().setHost("127.0.0.1").setPort(port).setURI("/cart")
                .putHeader("host", "svc");
        if (cookie != null) {
            o.putHeader("cookie", cookie);
        }
        return onEventLoop(vertx, () -> client.request(o).compose(req -> req.send()
                .compose((HttpClientResponse resp) -> resp.body().map(b -> b + "|" + resp.getHeader("set-cookie")))))
                .await(10, TimeUnit.SECONDS);
    }

    @Test
    void aSessionCookieFromTheFirstResponseKeepsLaterRequestsOnTheSameApplication() throws Exception {
        int a = app("a");
        int b = app("b");
        int port = LoopbackProxy.freePort();
        String listener = IstioRbac.first(IstioPersistentSession.FILTER,
                Http1RequestsTest.listener("outbound_0.0.0.0_80", port, ""))
                .replace("domains: [\"svc\", \"svc:*\"]\n", "domains: [\"svc\", \"svc:*\"]\n"
                        + IstioPersistentSession.cookieVirtualHostConfig("sugar", "/").indent(14));
        String cluster = Http1RequestsTest.clusterC(a)
                + "        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: " + b + "}}}\n";
        try (LoopbackProxy proxy = new LoopbackProxy("static_resources:\n  listeners:\n" + listener + cluster)) {
            HttpClient client = vertx.createHttpClient();
            String first = get(client, port, null);
            String[] parts = first.split("\\|", 2);
            assertTrue(parts[1].startsWith("sugar=\"") && parts[1].endsWith("\"; Path=/; HttpOnly"), first);
            String value = parts[1].substring("sugar=\"".length(), parts[1].indexOf("\";"));
            for (int i = 0; i < 4; i++) {
                String later = get(client, port, "sugar=\"" + value + "\"");
                assertEquals(parts[0] + "|null", later, "round robin would alternate; the session keeps its host");
            }
            String other = get(client, port, null);
            assertTrue(!other.startsWith(parts[0] + "|"), "a request without the cookie is balanced: " + other);
            client.close().await(10, TimeUnit.SECONDS);
        }
    }
}
