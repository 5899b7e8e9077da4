package dev.inmesh.interception.proxy;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.accesslog.AccessLogs;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The standalone proxy writes the access logs a connection manager or a TCP proxy names in its configuration, in
 * their format, without {@code --access-log} (the observer is the one {@code inmesh proxy} installs).
 */
@Timeout(30)
class ProxyAccessLogTest {
    private final Vertx vertx = Vertx.vertx();
    private StandaloneProxy proxy;

    @TempDir
    Path dir;

    @AfterEach
    void tearDown() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** A file logger's {@code access_log} writing {@code format}, indented by {@code indent}. */
    static String accessLog(Path file, String format, String indent) {
        return ("""
                access_log:
                - name: envoy.access_loggers.file
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
                    path: %s
                    log_format: {text_format_source: {inline_string: "%s\\n"}}
                """.formatted(file, format)).indent(indent.length());
    }

    /**
     * Starts the proxy with an inbound listener to {@code app} whose connection manager has {@code hcmFields} (lines
     * at its indentation) and a file logger writing {@code format} to {@code log}; returns the listener's port.
     */
    private int startInbound(int app, String hcmFields, Path log, String format) throws Exception {
        int port = LoopbackProxy.freePort();
        String config = ProxyLocalRateLimitTest.inboundConfig(port, app, "", "").replace(
                "          stat_prefix: inbound_0.0.0.0_9080\n", "          stat_prefix: inbound_0.0.0.0_9080\n"
                        + hcmFields + accessLog(log, format, "          "));
        Path file = Files.writeString(dir.resolve(log.getFileName() + ".yaml"), config);
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(file, -1, -1, 1, AccessLogs.observer(null),
                AdminHook.NONE));
        return port;
    }

    @Test
    void anInboundConnectionManagersAccessLogWritesItsFormatWithTheApplicationsResponseHeaders() throws Exception {
        int app = vertx.createHttpServer().requestHandler(req -> req.response().putHeader("x-app", "reviews-v1")
                .setStatusCode(201).end("made")).listen(0, "127.0.0.1").await().actualPort();
        int port = LoopbackProxy.freePort();
        Path log = dir.resolve("http.log");
        String config = ProxyLocalRateLimitTest.inboundConfig(port, app, "", "").replace(
                "          stat_prefix: inbound_0.0.0.0_9080\n", "          stat_prefix: inbound_0.0.0.0_9080\n"
                        + accessLog(log, "%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% %RESP(X-APP)% %REQ(X-USER)% "
                        + "%UPSTREAM_CLUSTER% %PROTOCOL% %BYTES_SENT% %FILTER_CHAIN_NAME%", "          "))
                .replace("    filter_chains:\n    - filters:\n", "    filter_chains:\n    - name: 0.0.0.0_9080\n"
                        + "      filters:\n");
        Path file = Files.writeString(dir.resolve("proxy.yaml"), config);
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(file, -1, -1, 1, AccessLogs.observer(null),
                AdminHook.NONE));
        HttpClient client = vertx.createHttpClient();
        int status = onEventLoop(vertx, () -> client.request(new RequestOptions().setMethod(HttpMethod.POST)
                        .setHost("127.0.0.1").setPort(port).setURI("/reviews/1?x=y").putHeader("x-user", "jason"))
                .compose(req -> req.send("body")).compose(resp -> resp.body().map(b -> resp.statusCode())))
                .await(10, TimeUnit.SECONDS);
        assertEquals(201, status);
        assertEquals(List.of("POST /reviews/1?x=y 201 reviews-v1 jason inbound|9080|| HTTP/1.1 4 0.0.0.0_9080"),
                lines(log, 1));
    }

    @Test
    void theDownstreamRemoteAddressIsTheLastForwardedForAddressAndTheDirectOneTheConnectionsPeer() throws Exception {
        // Envoy's connection manager (use_remote_address false) makes the last x-forwarded-for address, port 0, the
        // stream's remote address; the direct one stays the socket's peer. The forwarded addresses get no traffic
        int app = vertx.createHttpServer().requestHandler(req -> req.response().end("ok")).listen(0, "127.0.0.1")
                .await().actualPort();
        Path log = dir.resolve("xff.log");
        int port = startInbound(app, "", log, "%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% "
                + "%DOWNSTREAM_REMOTE_PORT% %DOWNSTREAM_DIRECT_REMOTE_ADDRESS%");
        int client;
        try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
            s.setSoTimeout(10_000);
            client = s.getLocalPort();
            s.getOutputStream().write(("GET / HTTP/1.1\r\nhost: svc\r\nx-forwarded-for: 10.1.2.3, 192.0.2.7\r\n"
                    + "connection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            s.getInputStream().readAllBytes();
        }
        assertEquals(List.of("192.0.2.7:0 192.0.2.7 0 127.0.0.1:" + client), lines(log, 1));
    }

    @Test
    void anEdgeConnectionManagersDownstreamRemoteAddressIsThePeerWhichItAppendsToForwardedFor() throws Exception {
        // use_remote_address: true (an Istio gateway's): the connection's peer is the address, x-forwarded-for gets
        // it appended (this host's address for a loopback peer) and the request x-envoy-external-address
        int app = vertx.createHttpServer().requestHandler(req -> req.response().end(req.getHeader("x-forwarded-for")
                + " " + req.getHeader("x-envoy-external-address"))).listen(0, "127.0.0.1").await().actualPort();
        Path log = dir.resolve("edge.log");
        int port = startInbound(app, "          use_remote_address: true\n", log,
                "%DOWNSTREAM_REMOTE_ADDRESS% %REQ(X-FORWARDED-FOR)%");
        int client;
        String response;
        try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
            s.setSoTimeout(10_000);
            client = s.getLocalPort();
            s.getOutputStream().write(("GET / HTTP/1.1\r\nhost: svc\r\nx-forwarded-for: 10.1.2.3, 192.0.2.7\r\n"
                    + "connection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            response = new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
        }
        String local = dev.inmesh.runtime.net.LocalAddress.get();
        assertEquals("10.1.2.3, 192.0.2.7," + local + " 127.0.0.1",
                response.substring(response.indexOf("\r\n\r\n") + 4));
        assertEquals(List.of("127.0.0.1:" + client + " 10.1.2.3, 192.0.2.7," + local), lines(log, 1));
    }

    @Test
    void aRequestTheConnectionManagerRefusesBeforeItsHeadIsReadIsWrittenToItsAccessLog() throws Exception {
        int app = vertx.createHttpServer().requestHandler(req -> req.response().end("ok")).listen(0, "127.0.0.1")
                .await().actualPort();
        int port = LoopbackProxy.freePort();
        Path log = dir.resolve("refused.log");
        String config = ProxyLocalRateLimitTest.inboundConfig(port, app, "", "").replace(
                "          stat_prefix: inbound_0.0.0.0_9080\n", "          stat_prefix: inbound_0.0.0.0_9080\n"
                        + "          request_headers_timeout: 0.3s\n"
                        + accessLog(log, "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %DURATION%",
                        "          "));
        Path file = Files.writeString(dir.resolve("refused.yaml"), config);
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(file, -1, -1, 1, AccessLogs.observer(null),
                AdminHook.NONE));
        // a head over max_request_headers_kb (Envoy's 431, a downstream protocol error), then one never finished
        try (Socket big = new Socket(InetAddress.getLoopbackAddress(), port)) {
            big.setSoTimeout(10_000);
            big.getOutputStream().write(("GET /a HTTP/1.1\r\nhost: svc\r\ncookie: " + "c".repeat(70_000)
                    + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            big.getInputStream().readAllBytes();
        }
        assertTrue(lines(log, 1).get(0).startsWith("431 DPE http1.headers_too_large "), lines(log, 1).get(0));
        assertHeadStalledAndLogged(port, log, "408 - request_header_timeout ");
    }

    /**
     * Sends a head that never ends and reads until the proxy closes; its line, the log's second, starts with
     * {@code expected} and is timed, as Envoy's stream, from the request's first byte: the wait for the rest of its
     * head, 0.3 s or more.
     */
    private static void assertHeadStalledAndLogged(int port, Path log, String expected) throws Exception {
        try (Socket slow = new Socket(InetAddress.getLoopbackAddress(), port)) {
            slow.setSoTimeout(10_000);
            slow.getOutputStream().write("GET /a HTTP/1.1\r\nhost: svc\r\n".getBytes(StandardCharsets.US_ASCII));
            slow.getInputStream().readAllBytes();
        }
        String timedOut = lines(log, 2).get(1);
        assertTrue(timedOut.startsWith(expected), timedOut);
        long duration = Long.parseLong(timedOut.substring(timedOut.lastIndexOf(' ') + 1));
        assertTrue(duration >= 300, timedOut);
    }

    @Test
    void aRequestWhoseHeadNeverEndsIsLoggedAsItsStreamEnded() throws Exception {
        int app = vertx.createHttpServer().requestHandler(req -> req.response().end("ok")).listen(0, "127.0.0.1")
                .await().actualPort();
        Path log = dir.resolve("partial.log");
        int port = startInbound(app, "          stream_idle_timeout: 0.3s\n", log,
                "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %DURATION%");
        try (Socket none = new Socket(InetAddress.getLoopbackAddress(), port)) {
            none.getOutputStream().flush(); // closed before any byte: no request, no line
        }
        // closed mid-head: as Envoy's stream begun with the first byte, reset by the close (0 DC), no codec error
        try (Socket gone = new Socket(InetAddress.getLoopbackAddress(), port)) {
            gone.getOutputStream().write("GET /partial HTTP/1.1\r\nhost: svc\r\n"
                    .getBytes(StandardCharsets.US_ASCII));
            Thread.sleep(100);
        }
        assertTrue(lines(log, 1).get(0).startsWith("0 DC downstream_remote_disconnect "), lines(log, 1).get(0));
        // stalled mid-head: the stream idle timeout answers it, from its first byte
        assertHeadStalledAndLogged(port, log, "408 SI stream_idle_timeout ");
    }

    @Test
    void aTcpProxysAccessLogWritesTheConnectionWithItsHttpValuesUnknown() throws Exception {
        Path log = dir.resolve("tcp.log");
        try (ServerSocket upstream = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
            int port = LoopbackProxy.freePort();
            Path file = Files.writeString(dir.resolve("tcp.yaml"), TcpRelayTest.config(port,
                    accessLog(log, "%UPSTREAM_CLUSTER% %BYTES_RECEIVED% %BYTES_SENT% %RESPONSE_CODE% %PROTOCOL% "
                            + "%REQ(:METHOD)% %DOWNSTREAM_LOCAL_PORT% %UPSTREAM_REQUEST_ATTEMPT_COUNT%", "          ")
                            .stripTrailing(), "", upstream.getLocalPort()));
            proxy = StandaloneProxy.start(new StandaloneProxy.Settings(file, -1, -1, 1, AccessLogs.observer(null),
                    AdminHook.NONE));
            CompletableFuture.runAsync(() -> {
                try (Socket s = upstream.accept()) {
                    s.getInputStream().readAllBytes();
                    s.getOutputStream().write("pong!".getBytes(StandardCharsets.UTF_8));
                } catch (java.io.IOException e) {
                    throw new RuntimeException(e);
                }
            });
            try (Socket client = new Socket(InetAddress.getLoopbackAddress(), port)) {
                client.setSoTimeout(10_000);
                client.getOutputStream().write("ping".getBytes(StandardCharsets.UTF_8));
                client.shutdownOutput();
                client.getInputStream().readAllBytes();
            }
            // one connect attempt, as Envoy counts tcp_proxy's
            assertEquals(List.of("backend 4 5 0 - - " + port + " 1"), lines(log, 1));
        }
    }

    @Test
    void aConnectionTheNetworkRbacFilterDeniesIsWrittenToTheTcpProxysAccessLog() throws Exception {
        Path log = dir.resolve("denied.log");
        int port = LoopbackProxy.freePort();
        String config = TcpRelayTest.config(port, accessLog(log, "%CONNECTION_TERMINATION_DETAILS% %UPSTREAM_CLUSTER% "
                + "%UPSTREAM_REQUEST_ATTEMPT_COUNT%", "          ").stripTrailing(), "", 9).replace(
                "      - name: envoy.filters.network.tcp_proxy\n", """
                      - name: envoy.filters.network.rbac
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC
                          stat_prefix: tcp.
                          rules: {action: DENY, policies: {deny-all: {permissions: [{any: true}],
                            principals: [{any: true}]}}}
                      - name: envoy.filters.network.tcp_proxy
                """);
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(Files.writeString(dir.resolve("denied.yaml"),
                config), -1, -1, 1, AccessLogs.observer(null), AdminHook.NONE));
        try (Socket client = new Socket(InetAddress.getLoopbackAddress(), port)) {
            client.setSoTimeout(10_000);
            client.getOutputStream().write("ping".getBytes(StandardCharsets.UTF_8));
            assertEquals(-1, client.getInputStream().read(), "the denied connection is closed");
        } catch (java.net.SocketException reset) {
            // closed with its "ping" unread: a reset
        }
        // as Envoy's tcp_proxy logs a connection its chain's RBAC filter closed, Istio's denied TCP connections
        assertEquals(List.of("rbac_access_denied_matched_policy[deny-all] backend 0"), lines(log, 1));
    }

    @Test
    void aConnectionNoFilterChainTakesIsWrittenToTheListenersOwnAccessLogThroughItsNrFilter() throws Exception {
        // Istio's listeners: an access_log of their own whose response_flag_filter keeps the NR connections
        Path log = dir.resolve("listener.log");
        int port = LoopbackProxy.freePort();
        String listenerLog = accessLog(log, "%RESPONSE_FLAGS% %DOWNSTREAM_LOCAL_PORT% %UPSTREAM_CLUSTER% "
                + "%FILTER_CHAIN_NAME%", "    ")
                .replace("    - name: envoy.access_loggers.file\n",
                        "    - name: envoy.access_loggers.file\n      filter: {response_flag_filter: {flags: [NR]}}\n");
        String config = TcpRelayTest.config(port, "", "", LoopbackProxy.freePort())
                .replace("    - filters:\n", "    - filter_chain_match: {destination_port: 1}\n      filters:\n")
                .replace("    filter_chains:\n", listenerLog + "    filter_chains:\n");
        Path file = Files.writeString(dir.resolve("nr.yaml"), config);
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(file, -1, -1, 1, AccessLogs.observer(null),
                AdminHook.NONE));
        try (Socket client = new Socket(InetAddress.getLoopbackAddress(), port)) {
            client.setSoTimeout(10_000);
            client.getOutputStream().write("hello".getBytes(StandardCharsets.UTF_8));
            try {
                client.getInputStream().read();
            } catch (java.net.SocketException reset) {
                // closed with unread bytes: a reset is a close too
            }
        }
        assertEquals(List.of("NR " + port + " - -"), lines(log, 1), "no chain took it");
    }

    /**
     * {@link TcpRelayTest#config} whose only chain takes the SNI {@code only.example}, after a TLS inspector, and
     * whose listener has {@code listenerFields} (at its indentation).
     */
    static String onlyExampleConfig(int port, String listenerFields) throws Exception {
        return TcpRelayTest.config(port, "", "", LoopbackProxy.freePort())
                .replace("    - filters:\n", "    - filter_chain_match: {server_names: [only.example]}\n      filters:\n")
                .replace("    filter_chains:\n", listenerFields
                        + "    listener_filters: [{name: envoy.filters.listener.tls_inspector}]\n    filter_chains:\n");
    }

    /** Sends a plain HTTP request on a new connection to {@code port} and waits until the proxy closes it. */
    static void plainRequestClosed(int port) throws Exception {
        try (Socket client = new Socket(InetAddress.getLoopbackAddress(), port)) {
            client.setSoTimeout(10_000);
            client.getOutputStream().write("GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n"
                    .getBytes(StandardCharsets.UTF_8));
            try {
                assertEquals(-1, client.getInputStream().read(), "closed without an answer");
            } catch (java.net.SocketException reset) {
                // closed with unread bytes: a reset is a close too
            }
        }
    }

    @Test
    void aConnectionNoFilterChainTakesAfterItsBytesWereInspectedIsLoggedFilterChainNotFoundWithNoBytes()
            throws Exception {
        // as Envoy's listener: NR with the details filter_chain_not_found, and no connection, so no bytes counted
        // (the TLS inspector only peeked at them), as Istio's black-hole lines read
        Path log = dir.resolve("listener.log");
        int port = LoopbackProxy.freePort();
        String config = onlyExampleConfig(port, accessLog(log, "%RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% "
                + "%BYTES_RECEIVED% %BYTES_SENT% %FILTER_CHAIN_NAME%", "    "));
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(Files.writeString(dir.resolve("sni.yaml"),
                config), -1, -1, 1, AccessLogs.observer(null), AdminHook.NONE));
        plainRequestClosed(port);
        assertEquals(List.of("NR filter_chain_not_found 0 0 -"), linesSettled(log, 1));
    }

    /** A listener's access_log of two file loggers: {@code all} unfiltered, {@code nr} with Istio's NR filter. */
    private static String listenerLogs(Path all, String format, Path nr) {
        return (accessLog(all, format, "") + """
                - name: envoy.access_loggers.file
                  filter: {response_flag_filter: {flags: [NR]}}
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
                    path: %s
                """.formatted(nr)).indent(4);
    }

    @Test
    void aListenersOwnAccessLogWritesARelayedTcpConnectionOnceWhenItClosesAndItsNrLoggerNone() throws Exception {
        // as Envoy writes each connection its listener accepted to the listener's access_log, at the close
        try (ServerSocket upstream = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            upstream.setSoTimeout(10_000);
            CompletableFuture<Void> served = CompletableFuture.runAsync(() -> {
                try (Socket s = upstream.accept()) {
                    s.getInputStream().readNBytes(5);
                    s.getOutputStream().write("world!".getBytes(StandardCharsets.UTF_8));
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            Path log = dir.resolve("listener.log");
            Path nr = dir.resolve("nr.log");
            int port = LoopbackProxy.freePort();
            String config = TcpRelayTest.config(port, "", "", upstream.getLocalPort()).replace("    filter_chains:\n",
                    listenerLogs(log, "%RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %UPSTREAM_CLUSTER% "
                            + "%UPSTREAM_HOST% %DOWNSTREAM_LOCAL_PORT%", nr) + "    filter_chains:\n");
            proxy = StandaloneProxy.start(new StandaloneProxy.Settings(Files.writeString(dir.resolve("tcp.yaml"),
                    config), -1, -1, 1, AccessLogs.observer(null), AdminHook.NONE));
            try (Socket client = new Socket(InetAddress.getLoopbackAddress(), port)) {
                client.setSoTimeout(10_000);
                client.getOutputStream().write("hello".getBytes(StandardCharsets.UTF_8));
                assertEquals("world!", new String(client.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
            }
            served.get(10, TimeUnit.SECONDS);
            assertEquals(List.of("- 5 6 backend 127.0.0.1:" + upstream.getLocalPort() + " " + port),
                    linesSettled(log, 1));
            assertEquals(List.of(), Files.exists(nr) ? Files.readAllLines(nr) : List.of(), "Istio's NR logger");
        }
    }

    @Test
    void aListenersOwnAccessLogWritesAnHttpConnectionOnceWhenItCloses() throws Exception {
        int app = vertx.createHttpServer().requestHandler(req -> req.response().end("ok")).listen(0, "127.0.0.1")
                .await().actualPort();
        Path log = dir.resolve("listener.log");
        Path nr = dir.resolve("nr.log");
        int port = LoopbackProxy.freePort();
        String config = ProxyLocalRateLimitTest.inboundConfig(port, app, "", "").replace("    filter_chains:\n",
                listenerLogs(log, "%RESPONSE_FLAGS% %BYTES_RECEIVED% %UPSTREAM_CLUSTER% %DOWNSTREAM_LOCAL_PORT% "
                        + "%FILTER_CHAIN_NAME%", nr) + "    filter_chains:\n").replace("    filter_chains:\n    - filters:\n",
                "    filter_chains:\n    - name: inbound-http\n      filters:\n");
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(Files.writeString(dir.resolve("http.yaml"),
                config), -1, -1, 1, AccessLogs.observer(null), AdminHook.NONE));
        String request = "GET /one HTTP/1.1\r\nhost: reviews\r\nconnection: close\r\n\r\n";
        try (Socket client = new Socket(InetAddress.getLoopbackAddress(), port)) {
            client.setSoTimeout(10_000);
            client.getOutputStream().write(request.getBytes(StandardCharsets.US_ASCII));
            String response = new String(client.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
            assertEquals("HTTP/1.1 200 OK", response.lines().findFirst().orElse(""));
        }
        // the connection's line (not the request's: no cluster), with the bytes read from the downstream socket
        assertEquals(List.of("- " + request.length() + " - " + port + " inbound-http"), linesSettled(log, 1));
        assertEquals(List.of(), Files.exists(nr) ? Files.readAllLines(nr) : List.of(), "Istio's NR logger");
    }

    /** The file's lines once it has {@code n}, and still has after 300 ms more (no line comes twice). */
    private static List<String> linesSettled(Path file, int n) throws Exception {
        lines(file, n);
        Thread.sleep(300);
        return Files.readAllLines(file);
    }

    /** The file's lines once it has {@code n}, within 15 s. */
    static List<String> lines(Path file, int n) throws Exception {
        long deadline = System.currentTimeMillis() + 15_000;
        while (System.currentTimeMillis() < deadline) {
            if (Files.exists(file)) {
                List<String> lines = Files.readAllLines(file);
                if (lines.size() >= n) {
                    return lines;
                }
            }
            Thread.sleep(10);
        }
        throw new AssertionError(file + " did not get " + n + " lines");
    }
}
