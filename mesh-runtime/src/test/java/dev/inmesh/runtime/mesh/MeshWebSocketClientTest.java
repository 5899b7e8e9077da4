package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.UpgradeRejectedException;
import io.vertx.core.http.WebSocket;
import io.vertx.core.http.WebSocketClient;
import io.vertx.core.http.WebSocketConnectOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mesh.webSocketClient()}: an application's WebSocket goes through the mesh as a sidecar takes its upgrade
 * (the listener for the port, its connection manager's {@code upgrade_configs}, the route's rewrites and header rules,
 * a host of the route's cluster, the cluster's {@code max_requests}, the route's idle timeout), and is reported with
 * its 101 when it closes; refusals on the way fail the connect with the answer a sidecar would give. Before, a
 * Java service's WebSockets went past the mesh: no route, no host of the cluster, no mTLS, no metric.
 */
@Timeout(60)
class MeshWebSocketClientTest {
    private final Vertx vertx = Vertx.vertx();
    private final List<StreamInfo> recorded = new CopyOnWriteArrayList<>();
    /** What the WebSocket server saw of each upgrade: its path, host and x-added header. */
    private final List<String> seen = new CopyOnWriteArrayList<>();
    private Mesh mesh;
    /** One more line of the outbound connection manager's (none: empty). */
    private String hcmExtra = "";
    /** One more line of the outbound route's virtual host (none: empty). */
    private String virtualHostExtra = "";
    /** The mesh's outbound traffic policy. */
    private MeshOptions.OutboundTrafficPolicy outboundPolicy = MeshOptions.OutboundTrafficPolicy.ALLOW_ANY;
    @TempDir
    Path dir;

    @AfterEach
    void tearDown() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
        for (AutoCloseable c : closeables) {
            c.close();
        }
    }

    /** A WebSocket server on loopback that echoes text messages with {@code prefix}. */
    private int echo(String prefix) {
        return vertx.createHttpServer().webSocketHandler(ws -> {
            seen.add(ws.path() + " " + ws.headers().get("host") + " " + ws.headers().get("x-added"));
            ws.textMessageHandler(m -> ws.writeTextMessage(prefix + m));
        }).listen(0, "127.0.0.1").await().actualPort();
    }

    /**
     * The mesh with the outbound listener for port 9080 (host reviews) to the cluster of {@code ports};
     * {@code upgrades}: whether its connection manager enables websocket upgrades; {@code routeExtra} one more route
     * action field (or none); {@code clusterExtra} more cluster lines.
     */
    private WebSocketClient mesh(boolean upgrades, String routeExtra, String clusterExtra, int... ports)
            throws Exception {
        String config = MeshWebClientTest.config("", ports)
                .replaceAll("( *)timeout: 0s", routeExtra.isEmpty() ? "$1timeout: 0s"
                        : "$1timeout: 0s\n$1" + routeExtra)
                .replace("    connect_timeout: 1s\n", "    connect_timeout: 1s\n" + clusterExtra);
        if (!hcmExtra.isEmpty()) {
            config = config.replaceAll("( *)stat_prefix: outbound_0.0.0.0_9080",
                    "$1stat_prefix: outbound_0.0.0.0_9080\n$1" + hcmExtra);
        }
        if (!virtualHostExtra.isEmpty()) {
            config = config.replaceAll("( *)domains: (.*)", "$1domains: $2\n$1" + virtualHostExtra);
        }
        if (upgrades) {
            config = config.replaceAll("( *)stat_prefix: outbound_0.0.0.0_9080",
                    "$1stat_prefix: outbound_0.0.0.0_9080\n$1upgrade_configs: [{upgrade_type: websocket}]");
        }
        Path file = Files.writeString(dir.resolve("mesh.yaml"), config);
        DefaultMesh m = (DefaultMesh) Mesh.create(vertx, new MeshOptions().setWorkloadName("productpage-v1")
                .setApp("productpage").setVersion("v1").setConfigFile(file.toString()).setAdminPort(-1)
                .setOutboundTrafficPolicy(outboundPolicy));
        m.addObserver(recorded::add);
        m.start().await(10, TimeUnit.SECONDS);
        mesh = m;
        return m.webSocketClient();
    }

    private static WebSocketConnectOptions reviews(String uri) {
        return new WebSocketConnectOptions().setHost("reviews").setPort(9080).setURI(uri);
    }

    /** The request reported with {@code status}, once it is (at most about 5 s). */
    private StreamInfo reported(int status) throws InterruptedException {
        for (int i = 0; i < 200; i++) {
            for (StreamInfo s : recorded) {
                if (s.responseCode() == status) {
                    return s;
                }
            }
            Thread.sleep(25);
        }
        throw new AssertionError("no " + status + " in " + recorded);
    }

    /** The answer an upgrade through {@code client} was refused with. */
    private static UpgradeRejectedException refused(WebSocketClient client, WebSocketConnectOptions o) {
        ExecutionException e = assertThrows(ExecutionException.class, () -> client.connect(o).toCompletionStage()
                .toCompletableFuture().get(15, TimeUnit.SECONDS), "answered within 15 s");
        assertTrue(e.getCause() instanceof UpgradeRejectedException, String.valueOf(e.getCause()));
        return (UpgradeRejectedException) e.getCause();
    }

    private static String roundTrip(WebSocket ws, String message) throws Exception {
        Promise<String> answer = Promise.promise();
        ws.textMessageHandler(answer::tryComplete);
        ws.writeTextMessage(message);
        return answer.future().await(10, TimeUnit.SECONDS);
    }

    @Test
    void aWebSocketGoesThroughTheRouteToItsClusterAndIsReportedWith101WhenItCloses() throws Exception {
        int echo = echo("echo:");
        WebSocketClient client = mesh(true, "prefix_rewrite: /socket/", "", echo);
        WebSocket ws = client.connect(reviews("/chat")).await(10, TimeUnit.SECONDS);
        assertEquals("echo:hi", roundTrip(ws, "hi"));
        assertEquals(List.of("/socket/chat reviews:9080 null"), seen, "the route's rewrite, the caller's host");
        assertTrue(recorded.isEmpty(), "reported when it closes: " + recorded);
        ws.close().await(10, TimeUnit.SECONDS);
        StreamInfo info = reported(101);
        assertEquals("outbound|9080||reviews.default.svc.cluster.local", info.upstreamCluster());
        assertEquals("127.0.0.1:" + echo, info.upstreamHost());
        assertEquals("via_upstream", info.responseCodeDetails());
        assertTrue(info.responseFlags().isEmpty(), info.toString());
        assertEquals("/chat", info.path());
        assertTrue(info.bytesReceived() > 0 && info.bytesSent() > 0, info.toString());
    }

    @Test
    void theOriginIsTheOneAPlainClientDerivesFromTheHostTheCallerNamedNotFromTheUpstreamsAddress() throws Exception {
        List<String> origins = new CopyOnWriteArrayList<>();
        int server = vertx.createHttpServer().webSocketHandler(ws -> {
            origins.add(ws.path() + " " + ws.headers().getAll("origin"));
            ws.close();
        }).listen(0, "127.0.0.1").await().actualPort();
        // a plain Vert.x client: its target host and port, scheme http (https with TLS), port 80 (443) left out
        WebSocketClient plain = vertx.createWebSocketClient();
        plain.connect(new WebSocketConnectOptions().setHost("localhost").setPort(server).setURI("/plain"))
                .await(10, TimeUnit.SECONDS);
        WebSocketClient client = mesh(true, "", "", server);
        client.connect(reviews("/named")).await(10, TimeUnit.SECONDS);
        client.connect(reviews("/own").addHeader("Origin", "https://app.example")).await(10, TimeUnit.SECONDS);
        client.connect(reviews("/none").setAllowOriginHeader(false)).await(10, TimeUnit.SECONDS);
        // as Vert.x drops one set in the headers when it allows none
        client.connect(reviews("/dropped").addHeader("Origin", "https://app.example").setAllowOriginHeader(false))
                .await(10, TimeUnit.SECONDS);
        assertEquals(List.of("/plain [http://localhost:" + server + "]", "/named [http://reviews:9080]",
                "/own [https://app.example]", "/none []", "/dropped []"), origins);
    }

    @Test
    void anUpgradeTheConnectionManagerDoesNotEnableIsRefused403() throws Exception {
        int echo = echo("");
        WebSocketClient client = mesh(false, "", "", echo);
        assertEquals(403, refused(client, reviews("/chat")).getStatus());
        assertEquals("upgrade_failed", reported(403).responseCodeDetails());
        assertTrue(seen.isEmpty(), "the upstream never saw it");
    }

    /**
     * A route's own websocket upgrade_configs entry decides, as Envoy's: enabled, it takes the upgrade its connection
     * manager does not (it was refused 403); turned off, it refuses the one its connection manager enables.
     */
    @Test
    void aRoutesOwnUpgradeConfigDecidesOverTheConnectionManagers() throws Exception {
        int echo = echo("echo:");
        WebSocketClient client = mesh(false, "upgrade_configs: [{upgrade_type: websocket, enabled: true}]", "", echo);
        WebSocket ws = client.connect(reviews("/chat")).await(10, TimeUnit.SECONDS);
        assertEquals("echo:hi", roundTrip(ws, "hi"));
        ws.close().await(10, TimeUnit.SECONDS);
        mesh.close().await(10, TimeUnit.SECONDS);
        recorded.clear();
        seen.clear();
        client = mesh(true, "upgrade_configs: [{upgrade_type: websocket, enabled: false}]", "", echo);
        assertEquals(403, refused(client, reviews("/chat")).getStatus());
        assertEquals("upgrade_failed", reported(403).responseCodeDetails());
        assertTrue(seen.isEmpty(), "the upstream never saw it");
    }

    /**
     * A WebSocket's head gets the connection manager's via and, under include_request_attempt_count, the router's
     * x-envoy-attempt-count, as any request's; its 101 the request's id under always_set_request_id_in_response (none
     * of the three was there).
     */
    @Test
    void aWebSocketGetsTheViaTheAttemptCountAndItsRequestIdOnThe101() throws Exception {
        List<String> heads = new CopyOnWriteArrayList<>();
        int ws = vertx.createHttpServer().webSocketHandler(w -> heads.add(w.headers().get("via") + " "
                + w.headers().get("x-envoy-attempt-count"))).listen(0, "127.0.0.1").await().actualPort();
        hcmExtra = "via: mesh-out\n$1always_set_request_id_in_response: true";
        virtualHostExtra = "include_request_attempt_count: true";
        WebSocketClient client = mesh(true, "", "", ws);
        WebSocket socket = client.connect(reviews("/chat").addHeader("via", "1.1 app"))
                .await(10, TimeUnit.SECONDS);
        // the server's handler runs once its 101 went, maybe after the caller has it
        for (int i = 0; i < 250 && heads.isEmpty(); i++) {
            Thread.sleep(20);
        }
        assertEquals(List.of("1.1 app, mesh-out 1"), heads);
        assertNotNull(socket.headers().get("x-request-id"), String.valueOf(socket.headers()));
        socket.close().await(10, TimeUnit.SECONDS);
    }

    @Test
    void anUpstreamThatCannotBeReachedIsAnswered503UF() throws Exception {
        int closed;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            closed = s.getLocalPort(); // nothing listens there once closed
        }
        WebSocketClient client = mesh(true, "", "", closed);
        UpgradeRejectedException e = refused(client, reviews("/chat"));
        assertEquals(503, e.getStatus());
        assertEquals("upstream connect error or disconnect/reset before headers. reset reason: remote connection "
                + "failure, transport failure reason: delayed connect error: Connection refused",
                e.getBody().toString());
        StreamInfo info = reported(503);
        assertEquals("UF", ResponseFlag.format(info.responseFlags()));
        assertEquals("upstream_reset_before_response_started{remote_connection_failure|"
                + "delayed_connect_error:_Connection_refused}", info.responseCodeDetails());
        // as any failed upstream connect: the access log's transport failure reason, the cluster's statistic
        assertEquals("delayed connect error: Connection refused", info.upstreamTransportFailureReason());
        var failed = ((DefaultMesh) mesh).registry().find("envoy_cluster_upstream_cx_connect_fail")
                .tag("cluster_name", "outbound|9080||reviews.default.svc.cluster.local").meter();
        assertNotNull(failed, "upstream_cx_connect_fail kept");
        assertEquals(1.0, failed.measure().iterator().next().getValue());
    }

    /** What a connect through {@code client} failed with. */
    private static Throwable failure(WebSocketClient client, WebSocketConnectOptions o) {
        ExecutionException e = assertThrows(ExecutionException.class, () -> client.connect(o).toCompletionStage()
                .toCompletableFuture().get(15, TimeUnit.SECONDS), "failed within 15 s");
        return e.getCause();
    }

    /** A loopback server that closes each connection once the handshake comes, with no answer; its port. */
    private int closing() {
        return vertx.createNetServer().connectHandler(so -> so.handler(head -> so.close())).listen(0, "127.0.0.1")
                .await().actualPort();
    }

    @Test
    void aPassedThroughWebSocketWhoseConnectFailsFailsAsAPlainClientsWithNoHttpAnswer() throws Exception {
        // no listener for its port (ALLOW_ANY's PassthroughCluster): a sidecar's tcp_proxy answers no HTTP, it closes
        // the connection when its upstream's fails (tcp_proxy.cc, Filter::onInitFailure); the plain client's
        // exceptions say the upgrade was never sent
        WebSocketClient client = mesh(true, "", "", echo(""));
        int closed;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            closed = s.getLocalPort();
        }
        Throwable refused = failure(client, new WebSocketConnectOptions().setHost("127.0.0.1").setPort(closed));
        assertTrue(refused instanceof java.net.ConnectException, String.valueOf(refused));
        StreamInfo info = reported(0);
        assertEquals("PassthroughCluster", info.upstreamCluster());
        assertEquals("UF", ResponseFlag.format(info.responseFlags()));
        assertTrue(info.responseCodeDetails().startsWith("upstream_reset_before_response_started{remote_connection_"
                + "failure"), info.responseCodeDetails());
        Throwable unknown = failure(client, new WebSocketConnectOptions().setHost("no-such-host.invalid")
                .setPort(closed));
        assertTrue(unknown instanceof java.net.UnknownHostException, String.valueOf(unknown));
    }

    @Test
    void aPassedThroughWebSocketWhoseUpstreamClosesFailsAsAPlainClientsWithNoHttpAnswer() throws Exception {
        WebSocketClient client = mesh(true, "", "", echo(""));
        WebSocketConnectOptions to = new WebSocketConnectOptions().setHost("127.0.0.1").setPort(closing());
        Throwable plain = failure(vertx.createWebSocketClient(), to);
        Throwable meshed = failure(client, to);
        assertEquals(plain.getClass(), meshed.getClass(), String.valueOf(meshed));
        assertEquals(plain.getMessage(), meshed.getMessage());
        StreamInfo info = reported(0);
        assertEquals("PassthroughCluster", info.upstreamCluster());
        assertEquals("UC", ResponseFlag.format(info.responseFlags()));
    }

    @Test
    void aWebSocketToAPortWithoutListenerUnderRegistryOnlyHasItsConnectionClosedAsABlackHolesTcpProxyClosesIt()
            throws Exception {
        outboundPolicy = MeshOptions.OutboundTrafficPolicy.REGISTRY_ONLY;
        WebSocketClient client = mesh(true, "", "", echo(""));
        int closing = closing();
        Throwable plain = failure(vertx.createWebSocketClient(), new WebSocketConnectOptions().setHost("127.0.0.1")
                .setPort(closing));
        Throwable meshed = failure(client, new WebSocketConnectOptions().setHost("127.0.0.1").setPort(closing));
        assertEquals(plain.getClass(), meshed.getClass(), String.valueOf(meshed));
        assertEquals(plain.getMessage(), meshed.getMessage());
        StreamInfo info = reported(0);
        assertEquals("BlackHoleCluster", info.upstreamCluster());
        assertEquals("blackhole", info.responseCodeDetails());
    }

    @Test
    void anOpenWebSocketHoldsOneOfItsClustersMaxRequests() throws Exception {
        int echo = echo("");
        WebSocketClient client = mesh(true, "", "    circuit_breakers: {thresholds: [{max_requests: 1}]}\n", echo);
        WebSocket first = client.connect(reviews("/one")).await(10, TimeUnit.SECONDS);
        UpgradeRejectedException e = refused(client, reviews("/two"));
        assertEquals(503, e.getStatus());
        assertEquals("true", e.getHeaders().get("x-envoy-overloaded"));
        assertEquals("UO", ResponseFlag.format(reported(503).responseFlags()));
        first.close().await(10, TimeUnit.SECONDS);
        reported(101);
        WebSocket again = client.connect(reviews("/three")).await(10, TimeUnit.SECONDS);
        assertEquals("x", roundTrip(again, "x"));
        assertEquals(2, seen.size(), String.valueOf(seen));
    }

    /**
     * An upstream that resets an open WebSocket's connection ends it as Envoy's router reports an upstream reset once
     * the response started: UC, {@code upstream_reset_after_response_started{connection_termination}}. It was reported
     * as a clean end ({@code via_upstream}, no flag).
     */
    @Test
    void anUpstreamThatResetsAnOpenWebSocketIsReportedUC() throws Exception {
        java.net.ServerSocket server = new java.net.ServerSocket(0, 8, java.net.InetAddress.getLoopbackAddress());
        closeables.add(server);
        Thread t = new Thread(() -> {
            try (java.net.Socket so = server.accept()) {
                java.io.BufferedReader in = new java.io.BufferedReader(new java.io.InputStreamReader(
                        so.getInputStream(), java.nio.charset.StandardCharsets.ISO_8859_1));
                String key = null;
                for (String l; (l = in.readLine()) != null && !l.isEmpty(); ) {
                    if (l.toLowerCase(java.util.Locale.ROOT).startsWith("sec-websocket-key:")) {
                        key = l.substring(18).strip();
                    }
                }
                String accept = java.util.Base64.getEncoder().encodeToString(java.security.MessageDigest
                        .getInstance("SHA-1").digest((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                                .getBytes(java.nio.charset.StandardCharsets.ISO_8859_1)));
                so.getOutputStream().write(("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
                        + "connection: Upgrade\r\nsec-websocket-accept: " + accept + "\r\n\r\n")
                        .getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
                in.read(); // the caller's first frame
                so.setSoLinger(true, 0);
            } catch (Exception e) {
                // the test fails on what was reported
            }
        });
        t.setDaemon(true);
        t.start();
        WebSocketClient client = mesh(true, "", "", server.getLocalPort());
        WebSocket ws = client.connect(reviews("/reset")).await(10, TimeUnit.SECONDS);
        Promise<Void> closed = Promise.promise();
        ws.closeHandler(v -> closed.tryComplete());
        ws.writeTextMessage("x");
        closed.future().await(10, TimeUnit.SECONDS);
        StreamInfo info = reported(101);
        assertEquals("UC", ResponseFlag.format(info.responseFlags()));
        assertEquals("upstream_reset_after_response_started{connection_termination}", info.responseCodeDetails());
    }

    private final List<AutoCloseable> closeables = new CopyOnWriteArrayList<>();

    /** A server on loopback that takes connections (at most 8) and never answers; closed, and they, at the end. */
    private int silent() throws Exception {
        java.net.ServerSocket server = new java.net.ServerSocket(0, 8, java.net.InetAddress.getLoopbackAddress());
        closeables.add(server);
        Thread t = new Thread(() -> {
            for (int i = 0; i < 8 && !server.isClosed(); i++) {
                try {
                    closeables.add(server.accept());
                } catch (java.io.IOException e) {
                    return;
                }
            }
        });
        t.setDaemon(true);
        t.start();
        return server.getLocalPort();
    }

    /**
     * An upgrade whose upstream never answers, under the route's {@code routeExtra}: the mesh answers it in the
     * upstream's place with {@code body}, reported with {@code details} and {@code flags}.
     */
    private void answered408(String routeExtra, String body, String details, String flags) throws Exception {
        UpgradeRejectedException e = refused(mesh(true, routeExtra, "", silent()), reviews("/never"));
        assertEquals(408, e.getStatus());
        assertEquals(body, e.getBody().toString());
        StreamInfo info = reported(408);
        assertEquals(details, info.responseCodeDetails());
        assertEquals(flags, ResponseFlag.format(info.responseFlags()));
    }

    @Test
    void anUpstreamThatNeverAnswersTheUpgradeIsAnswered408AtTheIdleTimeout() throws Exception {
        answered408("idle_timeout: 0.3s", "stream timeout", "stream_idle_timeout", "SI");
    }

    @Test
    void anUpstreamThatNeverAnswersTheUpgradeIsAnswered408AtTheMaxStreamDuration() throws Exception {
        hcmExtra = "common_http_protocol_options: {max_stream_duration: 0.3s}";
        answered408("", "downstream duration timeout", "max_duration_timeout", "-");
    }

    @Test
    void theCallersOwnHandshakeTimeoutIsReportedAsTheCallerGivingUp() throws Exception {
        WebSocketClient client = mesh(true, "", "", silent());
        ExecutionException e = assertThrows(ExecutionException.class, () -> client.connect(reviews("/never")
                .setTimeout(300)).toCompletionStage().toCompletableFuture().get(15, TimeUnit.SECONDS));
        assertTrue(!(e.getCause() instanceof UpgradeRejectedException), "the caller's failure, not an answer: "
                + e.getCause());
        StreamInfo info = reported(0);
        assertEquals("downstream_remote_disconnect", info.responseCodeDetails());
        assertEquals("DC", ResponseFlag.format(info.responseFlags()));
    }

    @Test
    void anIdleWebSocketIsClosedAtTheRoutesIdleTimeoutAndReportedSI() throws Exception {
        int echo = echo("");
        WebSocketClient client = mesh(true, "idle_timeout: 1s", "", echo);
        WebSocket ws = client.connect(reviews("/idle")).await(10, TimeUnit.SECONDS);
        Promise<Void> closed = Promise.promise();
        ws.closeHandler(v -> closed.tryComplete());
        long start = System.nanoTime();
        closed.future().await(10, TimeUnit.SECONDS);
        assertTrue((System.nanoTime() - start) / 1_000_000 >= 800, "closed too soon");
        StreamInfo info = reported(101);
        assertEquals("SI", ResponseFlag.format(info.responseFlags()));
        assertEquals("stream_idle_timeout", info.responseCodeDetails());
    }
}
