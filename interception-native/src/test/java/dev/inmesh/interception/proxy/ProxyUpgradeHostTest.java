package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Vertx;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A WebSocket upgrade the standalone proxy relays itself goes to the host the router would pick for any request of its
 * route: a consistent hash of the route's hash policies (a DestinationRule's {@code consistentHash}) keeps a client's
 * upgrades on one host, and a stateful session's cookie names the host. Both were ignored: every upgrade took a host
 * at random.
 */
@Timeout(60)
class ProxyUpgradeHostTest {
    private final Vertx vertx = Vertx.vertx();
    private final int a = app("app-a");
    private final int b = app("app-b");

    @AfterEach
    void close() throws Exception {
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** An application on loopback that answers every request (an upgrade too) with its name. */
    private int app(String name) {
        return vertx.createHttpServer().requestHandler(req -> req.response().end(name)).listen(0, "127.0.0.1")
                .await().actualPort();
    }

    /**
     * The proxy's listener with {@code filters} before the router and {@code routeFields} on its route, and cluster
     * c of apps a and b balanced by {@code lbPolicy}.
     */
    private String config(int port, String filters, String routeFields, String lbPolicy) {
        String listener = Http1RequestsTest.listener("http", port, "upgrade_configs: [{upgrade_type: websocket}]")
                .replace("route: {cluster: c}", "route: {cluster: c" + routeFields + "}");
        listener = dev.inmesh.runtime.router.IstioRbac.beforeRouter(filters, listener);
        return "static_resources:\n  listeners:\n" + listener + Http1RequestsTest.clusterC(a).replace(
                "    type: STATIC\n", "    type: STATIC\n    lb_policy: " + lbPolicy + "\n") + """
                    - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                """.formatted(b).indent(4);
    }

    /** The name of the application that answered an upgrade with {@code headers}. */
    private static String upgradedTo(int port, String headers) throws Exception {
        String answer = ProxyLocalRateLimitTest.upgrade(port, "/ws", headers,
                got -> got.endsWith("app-a") || got.endsWith("app-b"));
        assertTrue(answer.startsWith("HTTP/1.1 200"), answer);
        return answer.substring(answer.length() - "app-a".length());
    }

    @Test
    void aConsistentHashOnAHeaderKeepsAClientsUpgradesOnOneHost() throws Exception {
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = new LoopbackProxy(config(port, "",
                ", hash_policy: [{header: {header_name: x-user}}]", "RING_HASH"))) {
            for (String user : List.of("alice", "bob", "carol")) {
                Set<String> hosts = new HashSet<>();
                for (int i = 0; i < 20; i++) {
                    hosts.add(upgradedTo(port, "x-user: " + user + "\r\n"));
                }
                assertEquals(1, hosts.size(), user + "'s upgrades went to " + hosts);
            }
        }
    }

    @Test
    void aStatefulSessionsCookieNamesTheHostOfAnUpgrade() throws Exception {
        int port = LoopbackProxy.freePort();
        String session = dev.inmesh.runtime.xds.IstioPersistentSession.filter(
                dev.inmesh.runtime.xds.IstioPersistentSession.cookieState("{name: global-session-cookie, path: /}"));
        try (LoopbackProxy proxy = new LoopbackProxy(config(port, session, "", "ROUND_ROBIN"))) {
            for (int[] target : new int[][] {{b}, {a}}) {
                String cookie = Base64.getEncoder().encodeToString(("127.0.0.1:" + target[0])
                        .getBytes(StandardCharsets.US_ASCII));
                String expected = target[0] == a ? "app-a" : "app-b";
                for (int i = 0; i < 10; i++) {
                    assertEquals(expected, upgradedTo(port, "cookie: global-session-cookie=" + cookie + "\r\n"));
                }
            }
        }
    }
}
