package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import io.vertx.core.Vertx;
import io.vertx.core.http.UpgradeRejectedException;
import io.vertx.core.http.WebSocket;
import io.vertx.core.http.WebSocketClient;
import io.vertx.core.http.WebSocketConnectOptions;
import io.vertx.ext.web.client.WebClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A WebSocket the service accepts behind {@code mesh.inbound(...)} ({@code req.toWebSocket()}), as Envoy's inbound
 * connection manager takes an upgrade: its authorization filters decide first, an upgrade its {@code upgrade_configs}
 * do not enable is refused 403 ({@code upgrade_failed}), and an accepted one is reported with its 101 when it ends.
 * Accepted WebSockets were never reported (no metric, no access log line), and an upgrade went to the service
 * whatever the connection manager enabled.
 */
@Timeout(60)
class MeshInboundWebSocketTest {
    @TempDir
    Path dir;
    final Vertx vertx = Vertx.vertx();
    final WebClient plain = WebClient.create(vertx);
    final AtomicInteger appCalls = new AtomicInteger();
    Mesh mesh;

    @AfterEach
    void stop() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /**
     * The mesh with Istio's inbound RBAC policies (GET /reviews/* with x-token: secret is allowed), its connection
     * manager enabling websocket upgrades or not, and a server whose service echoes WebSocket messages.
     */
    private int serve(boolean upgrades) throws Exception {
        return serve(upgrades, null);
    }

    /** As {@link #serve(boolean)}, the route's action with {@code routeUpgrades} (its upgrade_configs entries). */
    private int serve(boolean upgrades, String routeUpgrades) throws Exception {
        String config = MeshInboundRbacTest.CONFIG;
        if (routeUpgrades != null) {
            config = config.replace("route: {cluster: \"inbound|9080||\", timeout: 0s}",
                    "route: {cluster: \"inbound|9080||\", timeout: 0s, upgrade_configs: [" + routeUpgrades + "]}");
        }
        if (upgrades) {
            config = config.replaceAll("( *)stat_prefix: inbound_0.0.0.0_9080",
                    "$1stat_prefix: inbound_0.0.0.0_9080\n$1upgrade_configs: [{upgrade_type: websocket}]");
        }
        Path file = Files.writeString(dir.resolve("mesh.yaml"), config);
        mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("reviews-v1").setApp("reviews")
                .setNamespace("default").setConfigFile(file.toString()).setAdminPort(0));
        mesh.start().await(10, TimeUnit.SECONDS);
        return vertx.createHttpServer().requestHandler(mesh.inbound(req -> {
            appCalls.incrementAndGet();
            if (req.getHeader("upgrade") == null) {
                req.response().end("app");
                return;
            }
            req.toWebSocket().onSuccess(ws -> ws.textMessageHandler(m -> ws.writeTextMessage("echo:" + m)));
        })).listen(0, "127.0.0.1").await().actualPort();
    }

    private static WebSocketConnectOptions upgrade(int port, boolean token) {
        WebSocketConnectOptions o = new WebSocketConnectOptions().setPort(port).setHost("127.0.0.1")
                .setURI("/reviews/ws");
        return token ? o.addHeader("x-token", "secret") : o;
    }

    /** The status of a refused upgrade. */
    private static int refused(WebSocketClient client, WebSocketConnectOptions options) {
        try {
            client.connect(options).await(10, TimeUnit.SECONDS);
        } catch (UpgradeRejectedException e) {
            return e.getStatus();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
        throw new AssertionError("the upgrade was accepted");
    }

    /** The service echoes a message over {@code ws}, which then closes. */
    private static void echoesAndCloses(WebSocket ws) throws Exception {
        io.vertx.core.Promise<String> echoed = io.vertx.core.Promise.promise();
        ws.textMessageHandler(echoed::tryComplete);
        ws.writeTextMessage("hi");
        assertEquals("echo:hi", echoed.future().await(10, TimeUnit.SECONDS));
        ws.close().await(10, TimeUnit.SECONDS);
    }

    @Test
    void anAcceptedWebSocketIsReportedWith101WhenItEnds() throws Exception {
        int port = serve(true);
        WebSocketClient client = vertx.createWebSocketClient();
        echoesAndCloses(client.connect(upgrade(port, true)).await(10, TimeUnit.SECONDS));
        // the series may be scraped at 0 an instant before its first increment: wait for the line itself
        java.util.function.Predicate<String> upgraded = body -> body.lines().anyMatch(l -> l.startsWith(
                "istio_requests_total{") && l.contains("reporter=\"destination\"")
                && l.contains("response_code=\"101\"") && l.contains("response_flags=\"-\"") && l.endsWith(" 1"));
        String prom = MeshInboundRbacTest.admin(plain, mesh.adminPort(), "/stats/prometheus", upgraded);
        assertTrue(upgraded.test(prom), prom);
        client.close().await(10, TimeUnit.SECONDS);
    }

    @Test
    void theAuthorizationFiltersDecideAnUpgradeBeforeTheService() throws Exception {
        int port = serve(true);
        WebSocketClient client = vertx.createWebSocketClient();
        assertEquals(403, refused(client, upgrade(port, false)));
        assertEquals(0, appCalls.get(), "a denied upgrade never reaches the service");
        client.close().await(10, TimeUnit.SECONDS);
    }

    @Test
    void anUpgradeTheConnectionManagerDoesNotEnableIsRefused403() throws Exception {
        int port = serve(false);
        WebSocketClient client = vertx.createWebSocketClient();
        assertEquals(403, refused(client, upgrade(port, true)));
        assertEquals(0, appCalls.get(), "the service never sees it");
        String prom = MeshInboundRbacTest.admin(plain, mesh.adminPort(), "/stats/prometheus", "response_code=\"403\"");
        assertTrue(prom.lines().anyMatch(l -> l.startsWith("istio_requests_total{")
                && l.contains("response_code=\"403\"")), prom);
        // a plain request is served as before
        assertEquals("app", plain.get(port, "127.0.0.1", "/reviews/0").putHeader("x-token", "secret").send()
                .await(10, TimeUnit.SECONDS).bodyAsString());
        client.close().await(10, TimeUnit.SECONDS);
    }

    /** A route's own websocket entry decides over its connection manager's, as Envoy's. */
    @Test
    void aRouteThatEnablesWebSocketTakesTheUpgradeItsConnectionManagerDoesNot() throws Exception {
        int port = serve(false, "{upgrade_type: websocket}");
        WebSocketClient client = vertx.createWebSocketClient();
        echoesAndCloses(client.connect(upgrade(port, true)).await(10, TimeUnit.SECONDS));
        client.close().await(10, TimeUnit.SECONDS);
    }

    @Test
    void aRouteThatTurnsWebSocketOffRefusesTheUpgrade403() throws Exception {
        int port = serve(true, "{upgrade_type: websocket, enabled: false}");
        WebSocketClient client = vertx.createWebSocketClient();
        assertEquals(403, refused(client, upgrade(port, true)));
        assertEquals(0, appCalls.get(), "the service never sees it");
        client.close().await(10, TimeUnit.SECONDS);
    }

    /**
     * A browser's upgrade names upgrade among other connection options ({@code connection: keep-alive, Upgrade}, as
     * Firefox sends it): the connection manager takes it for an upgrade all the same, where it went to the service,
     * which accepted it.
     */
    @Test
    void anUpgradeWhoseConnectionListsUpgradeAmongOthersIsRefused403WhenNotEnabled() throws Exception {
        int port = serve(false);
        try (java.net.Socket s = new java.net.Socket(java.net.InetAddress.getLoopbackAddress(), port)) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write(("GET /reviews/ws HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: websocket\r\n"
                    + "connection: keep-alive, Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    + "sec-websocket-version: 13\r\nx-token: secret\r\n\r\n")
                    .getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            String status = new java.io.BufferedReader(new java.io.InputStreamReader(s.getInputStream(),
                    java.nio.charset.StandardCharsets.US_ASCII)).readLine();
            assertEquals("HTTP/1.1 403 Forbidden", status);
        }
        assertEquals(0, appCalls.get(), "the service never sees it");
    }
}
