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
 * upgrades on one host, and a stateful session's cookie names the host (both were ignored: every upgrade took a host
 * at random). It is reported when it ends, as Envoy reports an upgraded stream (it was never reported: no access log
 * line, no Istio metric).
 */
@Timeout(60)
class ProxyWebSocketUpgradeTest {
    private final Vertx vertx = Vertx.vertx();
    private final int a = app("app-a");
    private final int b = app("app-b");

    @AfterEach
    void close() throws Exception {
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /**
     * An application on loopback that answers every request (an upgrade too) 200 with its name, in its body and its
     * {@code x-app} header (the client gets only the header of a 200 to an upgrade).
     */
    private int app(String name) {
        return vertx.createHttpServer().requestHandler(req -> req.response().putHeader("x-app", name).end(name))
                .listen(0, "127.0.0.1").await().actualPort();
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
        String answer = ProxyLocalRateLimitTest.upgrade(port, "/ws", headers, got -> true);
        assertTrue(answer.startsWith("HTTP/1.1 200") && answer.contains("\r\nx-app: app-"), answer);
        return answer.substring(answer.indexOf("\r\nx-app: ") + 9, answer.indexOf("\r\nx-app: ") + 14);
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

    /** A WebSocket server on loopback that answers each text message with {@code prefix} and the message. */
    private int echo(String prefix) {
        return vertx.createHttpServer().webSocketHandler(w -> w.textMessageHandler(m -> w.writeTextMessage(
                prefix + m))).listen(0, "127.0.0.1").await().actualPort();
    }

    /**
     * A proxy on {@code port} whose listener takes any host ({@code hcmExtra}: more connection manager lines, after
     * its upgrade_configs) and whose route ({@code routeExtra}: more route action fields) goes to {@code app}.
     */
    private static LoopbackProxy wsProxy(int port, String hcmExtra, String routeExtra, int app) throws Exception {
        return wsProxy(port, hcmExtra, routeExtra, "", app);
    }

    /** As {@link #wsProxy(int, String, String, int)}, with {@code routeFields}: more route lines. */
    private static LoopbackProxy wsProxy(int port, String hcmExtra, String routeExtra, String routeFields, int app)
            throws Exception {
        return new LoopbackProxy("static_resources:\n  listeners:\n"
                + Http1RequestsTest.listener("http", port, "upgrade_configs: [{upgrade_type: websocket}]" + hcmExtra)
                        .replace("domains: [\"svc\", \"svc:*\"]", "domains: [\"*\"]") // no name to resolve
                        .replace("route: {cluster: c}", "route: {cluster: c" + routeExtra + "}" + routeFields)
                + Http1RequestsTest.clusterC(app));
    }

    /** A WebSocket through the proxy on {@code port}, and a future of its closing. */
    private io.vertx.core.http.WebSocket connect(io.vertx.core.http.WebSocketClient client, int port,
                                                 io.vertx.core.Promise<Void> closed) throws Exception {
        io.vertx.core.http.WebSocket ws = client.connect(port, "127.0.0.1", "/ws").await(10, TimeUnit.SECONDS);
        ws.closeHandler(v -> closed.tryComplete());
        return ws;
    }

    @Test
    void aRelayedWebSocketIsReportedWhenItEndsWithTheUpstreams101AndItsBytes() throws Exception {
        int echo = echo("echo:");
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = wsProxy(port, "", "", echo)) {
            var stats = proxy.withStats();
            assertEquals(0, LoopbackProxy.stat(stats, "http", "downstream_cx_upgrades_active"));
            io.vertx.core.http.WebSocketClient client = vertx.createWebSocketClient();
            io.vertx.core.http.WebSocket ws = connect(client, port, io.vertx.core.Promise.promise());
            io.vertx.core.Promise<String> answer = io.vertx.core.Promise.promise();
            ws.textMessageHandler(answer::tryComplete);
            ws.writeTextMessage("hi");
            assertEquals("echo:hi", answer.future().await(10, TimeUnit.SECONDS));
            assertTrue(proxy.requests.isEmpty(), "reported when it ends, not before: " + proxy.requests);
            // as Envoy's connection manager counts an upgrade it takes (neither statistic was there)
            assertEquals(1, LoopbackProxy.stat(stats, "http", "downstream_cx_upgrades_total"));
            assertEquals(1, LoopbackProxy.stat(stats, "http", "downstream_cx_upgrades_active"));
            ws.close().await(10, TimeUnit.SECONDS);

            var info = proxy.logged(101);
            assertEquals(0, LoopbackProxy.stat(stats, "http", "downstream_cx_upgrades_active"));
            assertEquals("GET", info.method());
            assertEquals("/ws", info.path());
            assertEquals("c", info.upstreamCluster());
            assertEquals("127.0.0.1:" + echo, info.upstreamHost());
            assertEquals("via_upstream", info.responseCodeDetails());
            assertTrue(info.responseFlags().isEmpty(), String.valueOf(info.responseFlags()));
            assertTrue(info.bytesReceived() > 0 && info.bytesSent() > 0, info.toString());
            client.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void anUpgradeWhoseHostRefusesTheConnectionIsAnsweredAndReported503UF() throws Exception {
        int closed = LoopbackProxy.freePort(); // nothing listens there
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = wsProxy(port, "", "", closed)) {
            var stats = proxy.withStats();
            String answer = ProxyLocalRateLimitTest.upgrade(port, "/ws", "",
                    got -> got.endsWith("Connection refused"));
            assertTrue(answer.startsWith("HTTP/1.1 503"), answer);
            assertTrue(answer.endsWith("\r\n\r\nupstream connect error or disconnect/reset before headers. "
                    + "reset reason: remote connection failure, transport failure reason: delayed connect error: "
                    + "Connection refused"), answer);
            var info = proxy.logged(503);
            assertEquals("UF", dev.inmesh.runtime.stats.ResponseFlag.format(info.responseFlags()));
            assertEquals("upstream_reset_before_response_started{remote_connection_failure|"
                    + "delayed_connect_error:_Connection_refused}", info.responseCodeDetails());
            assertEquals("c", info.upstreamCluster());
            // as any failed upstream connect: the access log's transport failure reason, the cluster's statistic
            assertEquals("delayed connect error: Connection refused", info.upstreamTransportFailureReason());
            assertEquals(1, LoopbackProxy.clusterStat(stats, "c", "upstream_cx_connect_fail"));
        }
    }

    @Test
    void anUpgradesHeadGetsTheRoutesRewritesHeaderRulesAndARequestIdAsAnyRequest() throws Exception {
        // what the application saw, in a header of its answer (the client gets no body of a 200 to an upgrade)
        int seen = vertx.createHttpServer().requestHandler(req -> req.response().putHeader("x-seen", req.path() + " "
                + req.getHeader("host") + " " + req.getHeader("x-added") + " " + req.getHeader("x-forwarded-proto")
                + " " + (req.getHeader("x-request-id") == null ? "no-id" : "id") + " " + req.getHeader("upgrade")
                + " " + req.getHeader("x-envoy-expected-rq-timeout-ms") + " " + req.getHeader("keep-alive") + " "
                + req.getHeader("proxy-connection") + " end").end()).listen(0, "127.0.0.1").await().actualPort();
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = wsProxy(port, "", ", prefix_rewrite: /socket/, host_rewrite_literal: chat.internal",
                "\n                request_headers_to_add: [{header: {key: x-added, value: 'yes'}}]", seen)) {
            // and as Envoy's router and connection manager: the expected timeout (the route's 15 s default) is told,
            // and keep-alive and proxy-connection go (neither was so)
            String answer = ProxyLocalRateLimitTest.upgrade(port, "/chat",
                    "keep-alive: timeout=5\r\nproxy-connection: keep-alive\r\n", got -> true);
            assertTrue(answer.contains("\r\nx-seen: /socket/chat chat.internal yes http id websocket 15000 null null end\r\n"),
                    answer);
        }
    }

    @Test
    void anIdleWebSocketIsClosedAfterTheRoutesIdleTimeoutAndReportedSI() throws Exception {
        int echo = echo("");
        int port = LoopbackProxy.freePort();
        // (1 s: the upgrade's handshake comes well within it on a loaded machine)
        try (LoopbackProxy proxy = wsProxy(port, "", ", idle_timeout: 1s", echo)) {
            io.vertx.core.http.WebSocketClient client = vertx.createWebSocketClient();
            io.vertx.core.Promise<Void> closed = io.vertx.core.Promise.promise();
            connect(client, port, closed);
            long start = System.nanoTime();
            closed.future().await(10, TimeUnit.SECONDS);
            long tookMillis = (System.nanoTime() - start) / 1_000_000;
            assertTrue(tookMillis >= 800, "closed after " + tookMillis + " ms");
            var info = proxy.logged(101);
            assertEquals("SI", dev.inmesh.runtime.stats.ResponseFlag.format(info.responseFlags()));
            assertEquals("stream_idle_timeout", info.responseCodeDetails());
            client.close().await(10, TimeUnit.SECONDS);
        }
    }

    /**
     * A WebSocket the proxy closes (its idle timeout) counts as a connection the proxy closed, with its request not
     * done: {@code upstream_cx_destroy_local} and {@code upstream_cx_destroy_local_with_active_rq}, as Envoy counts
     * its pool's close. It counted as the upstream's ({@code upstream_cx_destroy_remote}).
     */
    @Test
    void aWebSocketTheProxyClosesCountsInUpstreamCxDestroyLocal() throws Exception {
        int echo = echo("");
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = wsProxy(port, "", ", idle_timeout: 1s", echo)) {
            var stats = proxy.withStats();
            io.vertx.core.http.WebSocketClient client = vertx.createWebSocketClient();
            io.vertx.core.Promise<Void> closed = io.vertx.core.Promise.promise();
            connect(client, port, closed);
            closed.future().await(10, TimeUnit.SECONDS);
            proxy.logged(101);
            for (int i = 0; i < 200 && LoopbackProxy.clusterStat(stats, "c", "upstream_cx_destroy") == 0; i++) {
                Thread.sleep(25);
            }
            assertEquals(1, LoopbackProxy.clusterStat(stats, "c", "upstream_cx_destroy_local"));
            assertEquals(1, LoopbackProxy.clusterStat(stats, "c", "upstream_cx_destroy_local_with_active_rq"));
            assertEquals(0, LoopbackProxy.clusterStat(stats, "c", "upstream_cx_destroy_remote"));
            client.close().await(10, TimeUnit.SECONDS);
        }
    }

    /**
     * An upstream that resets an upgraded connection (after its 101) ends the stream as Envoy's router reports an
     * upstream reset after the response started: UC, {@code upstream_reset_after_response_started{connection_termination}};
     * one that closes it cleanly (its FIN) ends it {@code via_upstream}, no flag. A reset was reported as a clean end.
     */
    @Test
    void anUpstreamThatResetsAnUpgradedConnectionIsReportedUC() throws Exception {
        var reset = endedByTheUpstream(true);
        assertEquals("UC", dev.inmesh.runtime.stats.ResponseFlag.format(reset.responseFlags()));
        assertEquals("upstream_reset_after_response_started{connection_termination}", reset.responseCodeDetails());
        var closed = endedByTheUpstream(false);
        assertEquals("-", dev.inmesh.runtime.stats.ResponseFlag.format(closed.responseFlags()));
        assertEquals("via_upstream", closed.responseCodeDetails());
    }

    /**
     * How the proxy reports an upgrade whose upstream answers 101, reads one byte of the payload and then ends the
     * connection: with a reset ({@code reset}), else with its FIN.
     */
    private dev.inmesh.runtime.stats.StreamInfo endedByTheUpstream(boolean reset) throws Exception {
        try (java.net.ServerSocket app = new java.net.ServerSocket(0, 8, java.net.InetAddress.getLoopbackAddress())) {
            Thread t = new Thread(() -> {
                try (java.net.Socket so = app.accept()) {
                    java.io.InputStream in = so.getInputStream();
                    for (int last = 0, c; (c = in.read()) >= 0; ) {
                        last = (last << 8 | c) & 0xffffffff;
                        if (last == 0x0d0a0d0a) {
                            break;
                        }
                    }
                    so.getOutputStream().write(("HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\n"
                            + "upgrade: websocket\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                    in.read(); // the client's first byte after the 101
                    if (reset) {
                        so.setSoLinger(true, 0);
                    }
                } catch (java.io.IOException e) {
                    // the test fails on what the client saw
                }
            });
            t.setDaemon(true);
            t.start();
            int port = LoopbackProxy.freePort();
            try (LoopbackProxy proxy = wsProxy(port, "", "", app.getLocalPort());
                 java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
                s.setSoTimeout(10_000);
                s.getOutputStream().write(("GET /ws HTTP/1.1\r\nhost: svc\r\nconnection: Upgrade\r\n"
                        + "upgrade: websocket\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                byte[] buf = new byte[4096];
                int n = s.getInputStream().read(buf);
                assertTrue(new String(buf, 0, n, StandardCharsets.US_ASCII).startsWith("HTTP/1.1 101"));
                s.getOutputStream().write('x');
                while (s.getInputStream().read(buf) >= 0) {
                    // until the proxy ends the client's side too
                }
                s.close(); // after the upstream's FIN, the relay ends once the client closed its side too
                return proxy.logged(101);
            }
        }
    }

    @Test
    void aWebSocketIsClosedWhenItReachesTheMaxStreamDurationWhileBothSidesTalk() throws Exception {
        int echo = echo("");
        int port = LoopbackProxy.freePort();
        // (1.5 s: the upgrade's handshake and a few messages come well within it on a loaded machine)
        try (LoopbackProxy proxy = wsProxy(port,
                "\n          common_http_protocol_options: {max_stream_duration: 1.5s}", "", echo)) {
            io.vertx.core.http.WebSocketClient client = vertx.createWebSocketClient();
            io.vertx.core.Promise<Void> closed = io.vertx.core.Promise.promise();
            io.vertx.core.http.WebSocket ws = connect(client, port, closed);
            java.util.concurrent.atomic.AtomicInteger echoed = new java.util.concurrent.atomic.AtomicInteger();
            ws.textMessageHandler(m -> echoed.incrementAndGet());
            // busy all along: no idle timeout could close it
            long timer = vertx.setPeriodic(50, id -> ws.writeTextMessage("tick"));
            closed.future().await(10, TimeUnit.SECONDS);
            vertx.cancelTimer(timer);
            assertTrue(echoed.get() >= 3, "echoed " + echoed.get());
            var info = proxy.logged(101);
            assertEquals("max_duration_timeout", info.responseCodeDetails());
            client.close().await(10, TimeUnit.SECONDS);
        }
    }

    /**
     * An upgrade the proxy cannot relay is answered as the router answers any request so, and reported: no route (404,
     * NR), a redirect route (its 301 and location, where it answered 404), a route to a cluster that is not there (NC,
     * the route's cluster_not_found_response_code) and one whose cluster has no host (503, UH, the cluster's).
     * They were answered 404 or 503 and never reported.
     */
    @Test
    void anUpgradeTheProxyCannotRelayIsAnsweredAndReportedAsTheRouterAnswersAnyRequest() throws Exception {
        int port = LoopbackProxy.freePort();
        String listener = Http1RequestsTest.listener("http", port, "upgrade_configs: [{upgrade_type: websocket}]")
                .replace("- match: {prefix: /}\n                route: {cluster: c}", String.join("\n", List.of(
                        "- match: {prefix: /moved}",
                        "                redirect: {path_redirect: /new}",
                        "              - match: {prefix: /gone}",
                        "                route: {cluster: missing, cluster_not_found_response_code: NOT_FOUND}",
                        "              - match: {prefix: /ws}",
                        "                route: {cluster: c}")))
                .replace("virtual_hosts:", "validate_clusters: false\n            virtual_hosts:"); // cluster missing
        // cluster c with no endpoint: no host can take a request
        String empty = "  clusters:\n  - name: c\n    type: STATIC\n    connect_timeout: 1s\n"
                + "    load_assignment: {cluster_name: c}\n";
        try (LoopbackProxy proxy = new LoopbackProxy("static_resources:\n  listeners:\n" + listener + empty)) {
            String none = ProxyLocalRateLimitTest.upgrade(port, "/other", "", got -> false);
            assertTrue(none.startsWith("HTTP/1.1 404"), none);
            var noRoute = proxy.logged(404);
            assertEquals("NR", dev.inmesh.runtime.stats.ResponseFlag.format(noRoute.responseFlags()));
            assertEquals("route_not_found", noRoute.responseCodeDetails());
            proxy.requests.clear();

            String moved = ProxyLocalRateLimitTest.upgrade(port, "/moved", "", got -> false);
            assertTrue(moved.startsWith("HTTP/1.1 301") && moved.contains("location: http://svc/new"), moved);
            assertEquals("direct_response", proxy.logged(301).responseCodeDetails());

            String gone = ProxyLocalRateLimitTest.upgrade(port, "/gone", "", got -> false);
            assertTrue(gone.startsWith("HTTP/1.1 404"), gone);
            var noCluster = proxy.logged(404);
            assertEquals("NC", dev.inmesh.runtime.stats.ResponseFlag.format(noCluster.responseFlags()));
            assertEquals("cluster_not_found", noCluster.responseCodeDetails());

            String noHost = ProxyLocalRateLimitTest.upgrade(port, "/ws", "", got -> false);
            assertTrue(noHost.startsWith("HTTP/1.1 503"), noHost);
            var uh = proxy.logged(503);
            assertEquals("UH", dev.inmesh.runtime.stats.ResponseFlag.format(uh.responseFlags()));
            assertEquals("no_healthy_upstream", uh.responseCodeDetails());
            assertEquals("c", uh.upstreamCluster());
        }
    }

    /**
     * A relayed WebSocket counts in its cluster's request statistics as any request Envoy's router sends:
     * {@code upstream_rq_total}, {@code upstream_rq_active} while it is open, {@code upstream_rq_completed} (the
     * upstream's 101) once it ended. It counted in none of them.
     */
    @Test
    void aRelayedWebSocketCountsInItsClustersRequestStatistics() throws Exception {
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = echoProxy(port)) {
            io.micrometer.core.instrument.simple.SimpleMeterRegistry registry =
                    new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
            proxy.router.upstreamStats(dev.inmesh.runtime.stats.MeshMetrics.create(registry,
                    new dev.inmesh.runtime.stats.WorkloadInfo("pod-v1", "default", "pod", "v1"))::upstream);
            io.vertx.core.http.WebSocketClient client = vertx.createWebSocketClient();
            io.vertx.core.http.WebSocket ws = client.connect(port, "127.0.0.1", "/counted")
                    .await(10, TimeUnit.SECONDS);
            assertEquals(1.0, registry.get("envoy_cluster_upstream_rq_total").tag("cluster_name", "c")
                    .functionCounter().count());
            assertEquals(1.0, registry.get("envoy_cluster_upstream_rq_active").tag("cluster_name", "c")
                    .gauge().value());
            // and its upstream connection in the cluster's connection statistics, as Envoy's pool counts the
            // connection it makes for it (it was in none)
            assertEquals(1, LoopbackProxy.clusterStat(registry, "c", "upstream_cx_total"));
            assertEquals(1, LoopbackProxy.clusterStat(registry, "c", "upstream_cx_active"));
            ws.close().await(10, TimeUnit.SECONDS);
            proxy.logged(101); // reported: it ended
            for (int i = 0; i < 200 && LoopbackProxy.clusterStat(registry, "c", "upstream_cx_active") > 0; i++) {
                Thread.sleep(25);
            }
            assertEquals(0, LoopbackProxy.clusterStat(registry, "c", "upstream_cx_active"));
            assertEquals(0.0, registry.get("envoy_cluster_upstream_rq_active").tag("cluster_name", "c")
                    .gauge().value());
            assertEquals(1.0, registry.get("envoy_cluster_upstream_rq_completed").tag("cluster_name", "c")
                    .gauge().value());
            // the upgraded stream ends with its connection: as Envoy's pool counts the close of a connection whose
            // stream is not done, with an active request
            assertEquals(1, LoopbackProxy.clusterStat(registry, "c", "upstream_cx_destroy_with_active_rq"));
            client.close().await(10, TimeUnit.SECONDS);
        }
    }

    /** The proxy on {@code port} relaying upgrades for any host to an application that echoes WebSocket messages. */
    private LoopbackProxy echoProxy(int port) throws Exception {
        int echo = vertx.createHttpServer().webSocketHandler(w -> w.textMessageHandler(w::writeTextMessage))
                .listen(0, "127.0.0.1").await().actualPort();
        return new LoopbackProxy("static_resources:\n  listeners:\n" + Http1RequestsTest.listener("http", port,
                "upgrade_configs: [{upgrade_type: websocket}]").replace("domains: [\"svc\", \"svc:*\"]",
                "domains: [\"*\"]") + Http1RequestsTest.clusterC(echo));
    }

    /**
     * An upgrade the upstream refuses (403) leaves no byte relay behind: the client gets the answer with
     * {@code connection: close}, then the proxy closes the connection, and what the client sent after its upgrade
     * request never reaches the upstream, which would have taken it unrouted and unfiltered on the relayed connection.
     */
    @Test
    void aRefusedUpgradeLeavesNoRelayBehindThroughWhichFurtherRequestsWouldGoUnrouted() throws Exception {
        List<String> appSaw = new java.util.concurrent.CopyOnWriteArrayList<>();
        int app = vertx.createHttpServer().requestHandler(req -> {
            appSaw.add(req.path());
            req.response().setStatusCode(403).end("denied");
        }).listen(0, "127.0.0.1").await().actualPort();
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = wsProxy(port, "", "", app);
             java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
            s.setSoTimeout(10_000);
            String next = "GET /secret HTTP/1.1\r\nhost: svc\r\n\r\n";
            s.getOutputStream().write(("GET /ws HTTP/1.1\r\nhost: svc\r\nconnection: Upgrade\r\n"
                    + "upgrade: websocket\r\nsec-websocket-version: 13\r\n"
                    + "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n" + next)
                    .getBytes(StandardCharsets.US_ASCII)); // a second request pipelined behind the upgrade
            byte[] buf = new byte[4096];
            int n = 0;
            for (int r; n < buf.length && (r = s.getInputStream().read(buf, n, buf.length - n)) > 0; ) {
                n += r;
                if (new String(buf, 0, n, StandardCharsets.US_ASCII).endsWith("denied")) {
                    break;
                }
            }
            String answer = new String(buf, 0, n, StandardCharsets.US_ASCII);
            assertTrue(answer.startsWith("HTTP/1.1 403") && answer.toLowerCase(java.util.Locale.ROOT)
                    .contains("connection: close"), answer);
            assertEquals(-1, s.getInputStream().read(), "the proxy closed the connection after the answer");
            assertEquals(List.of("/ws"), appSaw, "nothing after the refused upgrade reached the application");
            assertEquals(403, proxy.logged(403).responseCode());
            assertEquals("denied".length(), proxy.logged(403).bytesSent()); // its body only
        }
    }

    /**
     * A refusal goes to the client as a response framed by its own {@code Content-Length} or chunks, and then the
     * proxy closes the upstream's connection and the client's, as Envoy's HTTP/1 pool closes a connection whose
     * response came before its request ended (an upgrade's never does), counted with its request active, and its
     * connection manager the client's: nothing the upstream sends after that response reaches the client, in the same
     * write or later. Both connections stayed open, and the relay passed the upstream's later bytes on.
     */
    @Test
    void aRefusalIsRelayedFramedByItsLengthThenBothConnectionsClose() throws Exception {
        String after = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nlater";
        for (List<String> refusal : List.of(
                List.of("HTTP/1.1 403 Forbidden\r\ncontent-length: 6\r\n\r\ndenied", after),
                List.of("HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3\r\nnot\r\n6\r\n found\r\n"
                        + "0\r\nx-trailer: t\r\n\r\n", after),
                List.of("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy" + after, ""))) {
            io.vertx.core.Promise<Void> upstreamClosed = io.vertx.core.Promise.promise();
            int app = vertx.createNetServer().connectHandler(so -> {
                so.closeHandler(v -> upstreamClosed.tryComplete());
                so.handler(b -> {
                    so.write(refusal.get(0));
                    vertx.setTimer(200, t -> so.write(refusal.get(1))); // later, on a connection still open
                });
            }).listen(0, "127.0.0.1").await().actualPort();
            int port = LoopbackProxy.freePort();
            try (LoopbackProxy proxy = wsProxy(port, "", "", app)) {
                var stats = proxy.withStats();
                String answer = answerUntilClosed(port);
                String body = refusal.get(0).replace(after, "");
                body = body.substring(body.indexOf("\r\n\r\n") + 4);
                assertTrue(answer.startsWith(refusal.get(0).substring(0, 12)) && answer.toLowerCase(
                        java.util.Locale.ROOT).contains("\r\nconnection: close\r\n"), answer);
                assertTrue(answer.endsWith("\r\n\r\n" + body) && !answer.contains("later"), answer);
                upstreamClosed.future().await(5, TimeUnit.SECONDS);
                int status = Integer.parseInt(refusal.get(0).substring(9, 12));
                assertEquals(body.length(), proxy.logged(status).bytesSent());
                for (int i = 0; i < 200 && LoopbackProxy.clusterStat(stats, "c", "upstream_cx_active") > 0; i++) {
                    Thread.sleep(25);
                }
                assertEquals(1, LoopbackProxy.clusterStat(stats, "c", "upstream_cx_destroy_with_active_rq"));
            }
        }
    }

    /**
     * A refusal's body is relayed as it came, read by no decoder: a chunk size of 2 GiB or more, which Netty's decoder
     * would read wrapped, breaks nothing there, and its chunk goes on as it comes.
     */
    @Test
    void aRefusalsChunkOfMoreThan2GiBIsRelayedAsItCame() throws Exception {
        int app = vertx.createNetServer().connectHandler(so -> so.handler(b -> {
            so.write("HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n80000000\r\nabc");
            vertx.setTimer(200, t -> so.write("def").onComplete(w -> vertx.setTimer(100, t2 -> so.close())));
        })).listen(0, "127.0.0.1").await().actualPort();
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = wsProxy(port, "", "", app)) {
            String answer = answerUntilClosed(port);
            assertTrue(answer.startsWith("HTTP/1.1 404") && answer.endsWith("\r\n\r\n80000000\r\nabcdef"), answer);
        }
    }

    /**
     * Interim answers before the upstream's 101 (103 Early Hints in a write of its own, then 100 Continue in the
     * 101's) are not the upgrade's answer: they go no further, and the 101 that follows opens the relay, as Envoy's
     * router drops the 1xx it does not relay and waits for the final answer. The first was taken for the answer, a
     * refusal: the client got the 103 with {@code connection: close} and never the 101.
     */
    @Test
    void interimAnswersBeforeThe101GoNoFurtherAndThe101OpensTheRelay() throws Exception {
        int app = vertx.createNetServer().connectHandler(so -> {
            boolean[] upgraded = {false};
            so.handler(b -> {
                if (upgraded[0]) {
                    so.write(b); // the relay's bytes, echoed
                    return;
                }
                upgraded[0] = true;
                so.write("HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n");
                vertx.setTimer(100, t -> so.write("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n"
                        + "upgrade: websocket\r\nconnection: Upgrade\r\n\r\n"));
            });
        }).listen(0, "127.0.0.1").await().actualPort();
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = wsProxy(port, "", "", app)) {
            try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
                s.setSoTimeout(10_000);
                s.getOutputStream().write(("GET /ws HTTP/1.1\r\nhost: svc\r\nconnection: Upgrade\r\n"
                        + "upgrade: websocket\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                String answer = readSettled(s, got -> got.contains("\r\n\r\n"));
                assertTrue(answer.startsWith("HTTP/1.1 101 ") && !answer.contains("103") && !answer.contains("100 ")
                        && !answer.contains("link:"), answer);
                s.getOutputStream().write("ping".getBytes(StandardCharsets.US_ASCII));
                assertEquals("ping", new String(s.getInputStream().readNBytes(4), StandardCharsets.US_ASCII));
            }
            assertEquals("via_upstream", proxy.logged(101).responseCodeDetails());
        }
    }

    /**
     * The status line of the answer to an upgrade carries Envoy's reason phrase for its code, not the upstream's, as
     * Envoy's codec writes it; and an answer neither 101 nor 4xx or 5xx (the 200 of an application that takes no
     * upgrade, a redirect) is answered as Envoy's router answers a WebSocket handshake that did not switch protocols,
     * with the upstream's status and headers and no body ({@code websocket_handshake_unsuccessful}), where a 4xx or
     * 5xx goes through with its body. The upstream's phrase was kept, and every refusal's body passed on.
     */
    @Test
    void anAnswerThatIsNoUpgradeHasEnvoysReasonPhraseAndA2xxOr3xxNoBody() throws Exception {
        for (List<String> c : List.of(
                List.of("HTTP/1.1 200 Fine\r\ncontent-length: 17\r\nx-app: yes\r\n\r\nno websocket here",
                        "HTTP/1.1 200 OK\r\n", "", "websocket_handshake_unsuccessful"),
                List.of("HTTP/1.1 302 Elsewhere\r\nlocation: /there\r\ntransfer-encoding: chunked\r\n\r\n"
                        + "5\r\nthere\r\n0\r\n\r\n", "HTTP/1.1 302 Found\r\n", "", "websocket_handshake_unsuccessful"),
                List.of("HTTP/1.1 403 Nope\r\ncontent-length: 6\r\n\r\ndenied", "HTTP/1.1 403 Forbidden\r\n", "denied",
                        "via_upstream"))) {
            int app = rawApp(so -> so.write(c.get(0)));
            int port = LoopbackProxy.freePort();
            try (LoopbackProxy proxy = wsProxy(port, "", "", app)) {
                String answer = answerUntilClosed(port);
                String head = answer.substring(0, answer.indexOf("\r\n\r\n") + 2).toLowerCase(java.util.Locale.ROOT);
                assertTrue(answer.startsWith(c.get(1)) && answer.endsWith("\r\n\r\n" + c.get(2)), answer);
                assertTrue(c.get(2).isEmpty() == (head.contains("\r\ncontent-length: 0\r\n")
                        && !head.contains("transfer-encoding")), answer);
                assertTrue(!c.get(0).contains("x-app") || head.contains("\r\nx-app: yes\r\n"), answer);
                var info = proxy.logged(Integer.parseInt(c.get(1).substring(9, 12)));
                assertEquals(c.get(3), info.responseCodeDetails());
                assertEquals(c.get(2).length(), info.bytesSent());
            }
        }
    }

    /**
     * A 101 without an {@code upgrade} header is no upgrade to Envoy (its codec switches only on a response that
     * {@code Utility::isUpgrade}): no relay opens; the client gets the 101 without {@code connection: upgrade} (its
     * connection manager takes {@code connection} and {@code upgrade} off a response that is no upgrade) and told the
     * connection closes, with no body, and then both connections close; what the client sends after never reaches
     * the upstream. The relay opened, the head kept {@code connection: upgrade}.
     */
    @Test
    void a101WithoutAnUpgradeHeaderOpensNoRelayAndLosesItsConnectionUpgrade() throws Exception {
        java.util.concurrent.atomic.AtomicInteger reads = new java.util.concurrent.atomic.AtomicInteger();
        int app = rawApp(so -> {
            if (reads.getAndIncrement() == 0) {
                so.write("HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nx-app: yes\r\n\r\n");
            }
        });
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = wsProxy(port, "", "", app)) {
            String answer = answerUntilClosed(port);
            String head = answer.toLowerCase(java.util.Locale.ROOT);
            assertTrue(answer.startsWith("HTTP/1.1 101 Switching Protocols\r\n") && answer.endsWith("\r\n\r\n"),
                    answer);
            assertTrue(head.contains("\r\nconnection: close\r\n") && !head.contains("upgrade")
                    && !head.contains("content-length") && head.contains("\r\nx-app: yes\r\n"), answer);
            var info = proxy.logged(101);
            assertEquals("via_upstream", info.responseCodeDetails());
            assertEquals(0, info.bytesSent());
        }
    }

    /**
     * The upstream's 101 goes to the client with the route's response header rules, as Envoy's router applies them to
     * any upstream response head, and what Envoy's connection manager writes on every response: a {@code date} (the
     * upstream sent none) and the {@code server} header its {@code server_header_transformation} says (OVERWRITE by
     * default: {@code envoy} over the application's); the rest of the head as it came, and no upstream service time
     * (Envoy's router sets none for a request that never ended).
     */
    @Test
    void anUpgradesAnswerGetsTheConnectionManagersDateAndServerHeaders() throws Exception {
        int app = rawApp(so -> so.write("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
                + "connection: Upgrade\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nserver: app\r\n\r\n"));
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = wsProxy(port, "", "", "\n" + " ".repeat(16)
                + "response_headers_to_add: [{header: {key: x-route, value: r}}]", app)) {
            String answer = ProxyLocalRateLimitTest.upgrade(port, "/ws", "", got -> got.contains("\r\n\r\n"));
            String head = answer.substring(0, answer.indexOf("\r\n\r\n") + 2).toLowerCase(java.util.Locale.ROOT);
            assertTrue(head.startsWith("http/1.1 101 switching protocols\r\n"), answer);
            assertTrue(head.contains("\r\ndate: "), answer);
            assertTrue(head.contains("\r\nx-route: r\r\n") && !head.contains("x-envoy-upstream-service-time"), answer);
            assertTrue(head.contains("\r\nserver: envoy\r\n") && !head.contains("server: app"), answer);
            assertTrue(head.contains("\r\nupgrade: websocket\r\n") && head.contains("\r\nconnection: upgrade\r\n")
                    && head.contains("\r\nsec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n"), answer);
            // the answer's head is not among the bytes sent, as Envoy counts body bytes only (it was), and is
            // reported as the response's head (istio_response_bytes, %RESP()%), which it was not
            var info = proxy.logged(101);
            assertEquals(0, info.bytesSent());
            assertEquals(answer.indexOf("\r\n\r\n") + 4, info.responseHeadBytes());
            assertEquals("r", info.log().responseHeaders().get("x-route"));
        }
    }

    /**
     * As Envoy's connection manager takes them off every response: the upstream's 101 reaches the client without
     * {@code keep-alive}, {@code proxy-connection} and {@code transfer-encoding} (a relay has no body to frame), and a
     * header folded over two lines (obs-fold) as one line, its parts joined by a space, as a proxy must pass it on.
     */
    @Test
    void anUpgradesAnswerLosesTheHopByHopHeadersEnvoyTakesOffAndItsFoldedLinesAreJoined() throws Exception {
        int app = rawApp(so -> so.write("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
                + "connection: Upgrade\r\nkeep-alive: timeout=5\r\nproxy-connection: keep-alive\r\n"
                + "transfer-encoding: chunked\r\nx-folded: one\r\n \ttwo\r\nx-after: yes\r\n\r\n"));
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = wsProxy(port, "", "", app)) {
            String answer = ProxyLocalRateLimitTest.upgrade(port, "/ws", "", got -> got.contains("\r\n\r\n"));
            String head = answer.substring(0, answer.indexOf("\r\n\r\n") + 2).toLowerCase(java.util.Locale.ROOT);
            assertTrue(head.startsWith("http/1.1 101 switching protocols\r\n"), answer);
            assertTrue(!head.contains("keep-alive:") && !head.contains("proxy-connection")
                    && !head.contains("transfer-encoding"), answer);
            assertTrue(head.contains("\r\nx-folded: one two\r\nx-after: yes\r\n"), answer);
            assertTrue(head.contains("\r\nupgrade: websocket\r\n") && head.contains("\r\nconnection: upgrade\r\n"),
                    answer);
        }
    }

    /** A header line with no colon in the upstream's answer is a protocol error, as Envoy's codec reads it: 502 UPE. */
    @Test
    void anUpgradesAnswerWithAHeaderLineWithoutAColonIsAnswered502UPE() throws Exception {
        int app = rawApp(so -> so.write("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
                + "connection: Upgrade\r\nno colon here\r\n\r\n"));
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = wsProxy(port, "", "", app)) {
            String answer = answerUntilClosed(port);
            assertTrue(answer.startsWith("HTTP/1.1 502 ") && answer.endsWith("reset reason: protocol error"), answer);
            assertEquals("UPE", dev.inmesh.runtime.stats.ResponseFlag.format(proxy.logged(502).responseFlags()));
        }
    }

    /**
     * A client that leaves before the upstream answers its upgrade: as Envoy resets the stream on a downstream close,
     * the upstream's connection is closed and the upgrade reported 0 DC {@code downstream_remote_disconnect}, its
     * request no longer active. The client's connection was not read until the answer: the proxy's socket sat
     * half-closed and the upstream's open until the upstream closed, then reported 503 UC, an answer never sent.
     */
    @Test
    void aClientThatLeavesBeforeTheUpstreamAnswersClosesTheUpstreamAndIsReported0DC() throws Exception {
        io.vertx.core.Promise<Void> upstreamSaw = io.vertx.core.Promise.promise();
        io.vertx.core.Promise<Void> upstreamClosed = io.vertx.core.Promise.promise();
        int app = vertx.createNetServer().connectHandler(so -> {
            so.handler(b -> upstreamSaw.tryComplete()); // reads, never answers
            so.closeHandler(v -> upstreamClosed.tryComplete());
        }).listen(0, "127.0.0.1").await().actualPort();
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = wsProxy(port, "", "", app)) {
            var stats = proxy.withStats();
            try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
                s.getOutputStream().write(("GET /ws HTTP/1.1\r\nhost: svc\r\nconnection: Upgrade\r\n"
                        + "upgrade: websocket\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                upstreamSaw.future().await(10, TimeUnit.SECONDS);
            }
            upstreamClosed.future().await(5, TimeUnit.SECONDS);
            var info = proxy.logged(0);
            assertEquals("DC", dev.inmesh.runtime.stats.ResponseFlag.format(info.responseFlags()));
            assertEquals("downstream_remote_disconnect", info.responseCodeDetails());
            assertEquals(0, LoopbackProxy.clusterStat(stats, "c", "upstream_rq_active"));
            // the proxy closed the upstream's connection: Envoy's upstream_cx_destroy_local
            for (int i = 0; i < 200 && LoopbackProxy.clusterStat(stats, "c", "upstream_cx_destroy") == 0; i++) {
                Thread.sleep(25);
            }
            assertEquals(1, LoopbackProxy.clusterStat(stats, "c", "upstream_cx_destroy_local"));
        }
    }

    /**
     * A request sent as an upgrade's body ({@code Content-Length: 32}, in the same write as the head) to an upstream
     * that, as Python's http.server with keep-alive, ignores a GET's body: the upstream never sees it, and the client
     * never gets its answer. Envoy's codec reads no body on an upgrade (every byte after its head is the upgrade's
     * payload) and its router holds that payload until a 101. It went upstream right after the head, where the
     * upstream answered the upgrade 403 and then the smuggled {@code /admin}, which the connection manager's RBAC
     * filter denies, 200 with its secret, relayed to the client; the access log had only {@code /ws}.
     */
    @Test
    void aRequestSmuggledInAnUpgradesBodyNeverReachesTheUpstreamPastRoutingAndRbac() throws Exception {
        List<String> appSaw = new java.util.concurrent.CopyOnWriteArrayList<>();
        int app = keepAliveApp(appSaw);
        int port = LoopbackProxy.freePort();
        String listener = Http1RequestsTest.listener("http", port, "upgrade_configs: [{upgrade_type: websocket}]")
                .replace("domains: [\"svc\", \"svc:*\"]", "domains: [\"*\"]");
        try (LoopbackProxy proxy = new LoopbackProxy("static_resources:\n  listeners:\n"
                + dev.inmesh.runtime.router.IstioRbac.first(dev.inmesh.runtime.router.IstioRbac.DENY_ADMIN, listener)
                + Http1RequestsTest.clusterC(app))) {
            try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
                s.setSoTimeout(10_000);
                String smuggled = "GET /admin HTTP/1.1\r\nHost: x\r\n\r\n";
                s.getOutputStream().write(("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                        + "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        + "Sec-WebSocket-Version: 13\r\nContent-Length: " + smuggled.length() + "\r\n\r\n" + smuggled)
                        .getBytes(StandardCharsets.US_ASCII));
                String answer = readSettled(s, got -> got.contains("no websocket here"));
                assertTrue(answer.startsWith("HTTP/1.1 403 ") && !answer.contains("ADMIN-SECRET"), answer);
            }
            assertEquals(List.of("/ws"), appSaw, "the upstream saw no request but the upgrade");
            assertEquals("/ws", proxy.logged(403).path());
        }
    }

    /**
     * An HTTP/1.1 application on loopback that reads requests as Python's http.server with keep-alive does, one head
     * after another, a GET's body ignored: {@code /ws} is answered 403 {@code no websocket here}, any other 200
     * {@code ADMIN-SECRET}; the paths it saw go to {@code saw}.
     */
    private int keepAliveApp(List<String> saw) {
        return vertx.createNetServer().connectHandler(so -> {
            StringBuilder in = new StringBuilder();
            so.handler(b -> {
                in.append(b.toString(StandardCharsets.ISO_8859_1));
                for (int end; (end = in.indexOf("\r\n\r\n")) >= 0; ) {
                    String path = in.substring(0, in.indexOf("\r\n")).split(" ")[1];
                    in.delete(0, end + 4);
                    saw.add(path);
                    so.write(path.equals("/ws") ? "HTTP/1.1 403 Forbidden\r\ncontent-length: 17\r\n\r\nno websocket here"
                            : "HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\nADMIN-SECRET");
                }
            });
        }).listen(0, "127.0.0.1").await().actualPort();
    }

    /**
     * What the proxy sent on {@code s}: read until {@code done} holds for it, then on until the proxy closes or nothing
     * more comes for half a second.
     */
    private static String readSettled(java.net.Socket s, java.util.function.Predicate<String> done) throws Exception {
        StringBuilder got = new StringBuilder();
        byte[] buf = new byte[4096];
        try {
            for (int r; (r = s.getInputStream().read(buf)) > 0; ) {
                got.append(new String(buf, 0, r, StandardCharsets.ISO_8859_1));
                if (done.test(got.toString())) {
                    s.setSoTimeout(500);
                }
            }
        } catch (java.net.SocketTimeoutException settled) {
            assertTrue(done.test(got.toString()), "the proxy sent, then nothing more: " + got);
        }
        return got.toString();
    }

    /**
     * What the client sends after an upgrade's head goes upstream as it came, and only once the upstream answered
     * 101, as Envoy's codec reads it (every byte after the head is the upgrade's payload, whatever its
     * {@code Content-Length} or {@code Transfer-Encoding} say) and its router holds it until then: a length's bytes
     * that were not all in the head's write, chunks as they came, split or not; and it counts in the bytes received.
     * The bytes read with the head went upstream right after it, before any answer, a chunked body re-framed as one
     * chunk; those that came after that read were lost.
     */
    @Test
    void anUpgradesPayloadGoesUpstreamAsItCameOnceThe101Came() throws Exception {
        StringBuffer saw = new StringBuffer();
        StringBuffer beforeAnswer = new StringBuffer();
        int app = vertx.createNetServer().connectHandler(so -> so.handler(b -> {
            saw.append(b.toString(StandardCharsets.ISO_8859_1));
            if (beforeAnswer.length() == 0 && saw.indexOf("\r\n\r\n") >= 0) {
                beforeAnswer.append(saw);
                so.write("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n");
            }
        })).listen(0, "127.0.0.1").await().actualPort();
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = wsProxy(port, "", "", app)) {
            for (List<String> sent : List.of(List.of("content-length: 10\r\n\r\nhello", "world"),
                    List.of("transfer-encoding: chunked\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n", ""),
                    List.of("transfer-encoding: chunked\r\n\r\n5\r\nhel", "lo\r\n0\r\n\r\n"))) {
                saw.setLength(0);
                beforeAnswer.setLength(0);
                proxy.requests.clear();
                String payload = sent.get(0).substring(sent.get(0).indexOf("\r\n\r\n") + 4) + sent.get(1);
                try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
                    s.setSoTimeout(10_000);
                    s.getOutputStream().write(("GET /raw HTTP/1.1\r\nhost: svc\r\nconnection: Upgrade\r\n"
                            + "upgrade: websocket\r\n" + sent.get(0)).getBytes(StandardCharsets.US_ASCII));
                    byte[] buf = new byte[4096];
                    int n = 0;
                    for (int r; !new String(buf, 0, n, StandardCharsets.US_ASCII).contains("\r\n\r\n")
                            && (r = s.getInputStream().read(buf, n, buf.length - n)) > 0; ) {
                        n += r;
                    }
                    String answer = new String(buf, 0, n, StandardCharsets.US_ASCII);
                    assertTrue(answer.startsWith("HTTP/1.1 101 "), answer + " / the upstream saw: " + saw);
                    s.getOutputStream().write(sent.get(1).getBytes(StandardCharsets.US_ASCII));
                    for (int i = 0; i < 200 && !saw.toString().endsWith(payload); i++) {
                        Thread.sleep(25);
                    }
                    assertTrue(beforeAnswer.toString().endsWith("\r\n\r\n"), "before its answer: " + beforeAnswer);
                    String got = saw.toString();
                    assertEquals(payload, got.substring(got.indexOf("\r\n\r\n") + 4), sent.toString());
                }
                assertEquals(payload.length(), proxy.logged(101).bytesReceived(), sent.toString());
            }
        }
    }

    /**
     * An application on loopback that reads what comes and then does what {@code onData} says with the connection
     * (close it, write to it, nothing).
     */
    private int rawApp(java.util.function.Consumer<io.vertx.core.net.NetSocket> onData) {
        return vertx.createNetServer().connectHandler(so -> so.handler(b -> onData.accept(so)))
                .listen(0, "127.0.0.1").await().actualPort();
    }

    /** What the proxy on {@code port} answered an upgrade with, read until the proxy closed the connection. */
    private static String answerUntilClosed(int port) throws Exception {
        return ProxyLocalRateLimitTest.upgrade(port, "/ws", "", got -> false);
    }

    /**
     * An upstream that closes the connection without answering the upgrade: the client gets Envoy's 503 {@code
     * upstream connect error or disconnect/reset before headers. reset reason: connection termination}, and it is
     * reported 503 UC. The client's connection was closed with no answer, reported with status 0.
     */
    @Test
    void anUpgradeWhoseUpstreamClosesWithoutAnAnswerIsAnswered503UC() throws Exception {
        int app = rawApp(io.vertx.core.net.NetSocket::close);
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = wsProxy(port, "", "", app)) {
            String answer = answerUntilClosed(port);
            assertTrue(answer.startsWith("HTTP/1.1 503 Service Unavailable\r\n"), answer);
            assertTrue(answer.toLowerCase(java.util.Locale.ROOT).contains("connection: close"), answer);
            assertTrue(answer.endsWith("\r\n\r\nupstream connect error or disconnect/reset before headers. "
                    + "reset reason: connection termination"), answer);
            var info = proxy.logged(503);
            // its body's bytes, not its head's (Envoy's %BYTES_SENT%)
            assertEquals(answer.length() - answer.indexOf("\r\n\r\n") - 4, info.bytesSent());
            assertEquals("UC", dev.inmesh.runtime.stats.ResponseFlag.format(info.responseFlags()));
            assertEquals("upstream_reset_before_response_started{connection_termination}",
                    info.responseCodeDetails());
            assertEquals("127.0.0.1:" + app, info.upstreamHost());
        }
    }

    /** An upstream that answers what is not HTTP: 502 {@code protocol error}, as Envoy's router answers it, reported UPE; nothing of it relayed. */
    @Test
    void anUpgradeWhoseUpstreamAnswersWhatIsNotHttpIsAnswered502UPE() throws Exception {
        int app = rawApp(so -> so.write("SSH-2.0-OpenSSH_9.6\r\n\r\nmore"));
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = wsProxy(port, "", "", app)) {
            var registry = proxy.withStats();
            String answer = answerUntilClosed(port);
            assertTrue(answer.startsWith("HTTP/1.1 502 "), answer);
            assertTrue(answer.endsWith("reset reason: protocol error") && !answer.contains("SSH"), answer);
            var info = proxy.logged(502);
            assertEquals("UPE", dev.inmesh.runtime.stats.ResponseFlag.format(info.responseFlags()));
            assertEquals(1, LoopbackProxy.clusterStat(registry, "c", "upstream_cx_protocol_error"));
            assertEquals("upstream_reset_before_response_started{protocol_error}", info.responseCodeDetails());
        }
    }

    /**
     * An upstream that never answers: the route's idle timeout answers the client 408 {@code stream timeout} in its
     * place (SI), as Envoy's connection manager answers a stream idle before its response; the connection manager's
     * max_stream_duration 408 {@code downstream duration timeout}. Both closed the connection with no answer.
     */
    @Test
    void anUpgradeTheUpstreamNeverAnswersIsAnswered408WhenItsStreamTimesOut() throws Exception {
        int app = rawApp(so -> { }); // reads, never answers
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = wsProxy(port, "", ", idle_timeout: 0.3s", app)) {
            String answer = answerUntilClosed(port);
            assertTrue(answer.startsWith("HTTP/1.1 408 Request Timeout\r\n") && answer.endsWith("stream timeout"),
                    answer);
            var info = proxy.logged(408);
            assertEquals("SI", dev.inmesh.runtime.stats.ResponseFlag.format(info.responseFlags()));
            assertEquals("stream_idle_timeout", info.responseCodeDetails());
        }
        port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = wsProxy(port, "\n          common_http_protocol_options: {max_stream_duration: 0.3s}",
                "", app)) {
            String answer = answerUntilClosed(port);
            assertTrue(answer.startsWith("HTTP/1.1 408 ") && answer.endsWith("downstream duration timeout"), answer);
            assertEquals("max_duration_timeout", proxy.logged(408).responseCodeDetails());
        }
    }

    /**
     * A WebSocket holds one of its cluster's {@code max_requests} while it is open, as any request Envoy's router
     * sends: with one allowed, a second upgrade is answered 503 {@code overflow} with {@code x-envoy-overloaded} (UO)
     * and the upstream never sees it; once the first closed, an upgrade goes through. Every upgrade went through.
     */
    @Test
    void anOpenWebSocketHoldsOneOfItsClustersMaxRequests() throws Exception {
        int echo = echo("");
        int port = LoopbackProxy.freePort();
        String config = "static_resources:\n  listeners:\n"
                + Http1RequestsTest.listener("http", port, "upgrade_configs: [{upgrade_type: websocket}]")
                        .replace("domains: [\"svc\", \"svc:*\"]", "domains: [\"*\"]")
                + Http1RequestsTest.clusterC(echo).replace("    connect_timeout: 1s\n",
                        "    connect_timeout: 1s\n    circuit_breakers: {thresholds: [{max_requests: 1}]}\n");
        try (LoopbackProxy proxy = new LoopbackProxy(config)) {
            io.vertx.core.http.WebSocketClient client = vertx.createWebSocketClient();
            io.vertx.core.http.WebSocket first = connect(client, port, io.vertx.core.Promise.promise());
            String refused = ProxyLocalRateLimitTest.upgrade(port, "/ws", "", got -> got.endsWith("overflow"));
            assertTrue(refused.startsWith("HTTP/1.1 503") && refused.contains("x-envoy-overloaded: true")
                    && refused.endsWith("reset reason: overflow"), refused);
            var overflow = proxy.logged(503);
            assertEquals("UO", dev.inmesh.runtime.stats.ResponseFlag.format(overflow.responseFlags()));
            first.close().await(10, TimeUnit.SECONDS);
            proxy.logged(101); // the first ended: its request is given back
            io.vertx.core.http.WebSocket next = connect(client, port, io.vertx.core.Promise.promise());
            io.vertx.core.Promise<String> echoed = io.vertx.core.Promise.promise();
            next.textMessageHandler(echoed::tryComplete);
            next.writeTextMessage("again");
            assertEquals("again", echoed.future().await(10, TimeUnit.SECONDS));
            client.close().await(10, TimeUnit.SECONDS);
        }
    }

    /**
     * A relayed upgrade's outcome counts in its host's outlier detection as any request's: a host that refuses two
     * upgrades in a row with 503 (consecutive_5xx: 2) is ejected, and the next upgrade finds no healthy host (503 UH,
     * the panic threshold at 0). Relays told outlier detection nothing, so such a host kept every upgrade.
     */
    @Test
    void aHostRefusingUpgradesWith5xxIsEjectedByOutlierDetection() throws Exception {
        java.util.concurrent.atomic.AtomicInteger served = new java.util.concurrent.atomic.AtomicInteger();
        int app = vertx.createHttpServer().requestHandler(req -> {
            served.incrementAndGet();
            req.response().setStatusCode(503).end("busy");
        }).listen(0, "127.0.0.1").await().actualPort();
        int port = LoopbackProxy.freePort();
        String config = "static_resources:\n  listeners:\n"
                + Http1RequestsTest.listener("http", port, "upgrade_configs: [{upgrade_type: websocket}]")
                        .replace("domains: [\"svc\", \"svc:*\"]", "domains: [\"*\"]")
                + Http1RequestsTest.clusterC(app).replace("    connect_timeout: 1s\n", "    connect_timeout: 1s\n"
                        + "    outlier_detection: {consecutive_5xx: 2, base_ejection_time: 60s, max_ejection_percent: 100}\n"
                        + "    common_lb_config: {healthy_panic_threshold: {value: 0}}\n");
        try (LoopbackProxy proxy = new LoopbackProxy(config)) {
            for (int i = 0; i < 2; i++) {
                String busy = ProxyLocalRateLimitTest.upgrade(port, "/ws", "", got -> got.endsWith("busy"));
                assertTrue(busy.startsWith("HTTP/1.1 503") && busy.endsWith("busy"), busy);
            }
            for (int i = 0; i < 200 && proxy.requests.size() < 2; i++) {
                Thread.sleep(25); // both relays ended (their outcome is told when they end)
            }
            String ejected = ProxyLocalRateLimitTest.upgrade(port, "/ws", "", got -> got.endsWith("upstream"));
            assertTrue(ejected.startsWith("HTTP/1.1 503") && ejected.endsWith("no healthy upstream"), ejected);
            assertEquals(2, served.get(), "the ejected host saw no third upgrade");
        }
    }

    /**
     * A proxy whose connection manager has {@code hcmUpgrades} (its upgrade_configs line, or none) and whose route to
     * app a has {@code routeUpgrades} (its action's upgrade_configs entries).
     */
    private LoopbackProxy routeUpgradesProxy(int port, String hcmUpgrades, String routeUpgrades) throws Exception {
        return new LoopbackProxy("static_resources:\n  listeners:\n"
                + Http1RequestsTest.listener("http", port, hcmUpgrades).replace("route: {cluster: c}",
                        "route: {cluster: c, upgrade_configs: [" + routeUpgrades + "]}")
                + Http1RequestsTest.clusterC(a));
    }

    /**
     * A route's own websocket upgrade_configs entry decides for its requests, as Envoy's: enabled, the upgrade goes
     * through where the connection manager has no websocket entry or turns it off (it was refused 403
     * upgrade_failed, the route's entry read and ignored).
     */
    @Test
    void aRouteThatEnablesWebSocketTakesTheUpgradeItsConnectionManagerDoesNot() throws Exception {
        for (String hcm : List.of("", "upgrade_configs: [{upgrade_type: websocket, enabled: false}]")) {
            int port = LoopbackProxy.freePort();
            try (LoopbackProxy proxy = routeUpgradesProxy(port, hcm, "{upgrade_type: websocket, enabled: true}")) {
                var stats = proxy.withStats();
                assertEquals("app-a", upgradedTo(port, ""), hcm);
                assertEquals(1, LoopbackProxy.stat(stats, "http", "downstream_cx_upgrades_total"), hcm);
            }
        }
    }

    /** A route whose websocket entry says enabled: false refuses the upgrade its connection manager enables. */
    @Test
    void aRouteThatTurnsWebSocketOffRefusesTheUpgrade403() throws Exception {
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = routeUpgradesProxy(port, "upgrade_configs: [{upgrade_type: websocket}]",
                "{upgrade_type: WebSocket, enabled: false}")) {
            var stats = proxy.withStats();
            String answer = ProxyLocalRateLimitTest.upgrade(port, "/ws", "", got -> false);
            assertTrue(answer.startsWith("HTTP/1.1 403"), answer);
            assertEquals("upgrade_failed", proxy.logged(403).responseCodeDetails());
            assertEquals(0, LoopbackProxy.stat(stats, "http", "downstream_cx_upgrades_total"));
            // a plain request on the route is served as before
            String plain = Http1RequestsTest.exchange(port, "GET / HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n");
            assertTrue(plain.startsWith("HTTP/1.1 200") && plain.contains("\r\nx-app: app-a"), plain);
        }
    }

    /**
     * An upgrade's head gets the connection manager's via and, under include_request_attempt_count, the router's
     * x-envoy-attempt-count, as any request's; its 101 gets the request's id under always_set_request_id_in_response
     * (none of the three was there).
     */
    @Test
    void anUpgradeGetsTheViaTheAttemptCountAndItsRequestIdOnThe101() throws Exception {
        List<String> heads = new java.util.concurrent.CopyOnWriteArrayList<>();
        int ws = vertx.createHttpServer().webSocketHandler(w -> heads.add(w.headers().get("via") + " "
                + w.headers().get("x-envoy-attempt-count"))).listen(0, "127.0.0.1").await().actualPort();
        int port = LoopbackProxy.freePort();
        String config = "static_resources:\n  listeners:\n" + Http1RequestsTest.listener("http", port,
                        "upgrade_configs: [{upgrade_type: websocket}]\n          via: mesh-proxy"
                                + "\n          always_set_request_id_in_response: true")
                .replaceAll("( *)domains: (.*)", "$1domains: $2\n$1include_request_attempt_count: true")
                + Http1RequestsTest.clusterC(ws);
        try (LoopbackProxy proxy = new LoopbackProxy(config)) {
            String answer = ProxyLocalRateLimitTest.upgrade(port, "/ws", "via: 1.1 client\r\n", got -> true);
            assertTrue(answer.startsWith("HTTP/1.1 101"), answer);
            assertTrue(answer.contains("\r\nx-request-id: "), answer);
            // the server's handler runs once its 101 went, maybe after the caller read it
            for (int i = 0; i < 250 && heads.isEmpty(); i++) {
                Thread.sleep(20);
            }
            assertEquals(List.of("1.1 client, mesh-proxy 1"), heads);
        }
    }
}
