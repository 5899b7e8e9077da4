package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.accesslog.AccessLog;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The standalone proxy writes one access log line per tcp_proxy connection, as Istio's sidecar does. */
@Timeout(30)
class TcpAccessLogTest {
    private static final String TIME = "\\[\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z\\] ";
    private final List<String> lines = new CopyOnWriteArrayList<>();

    @TempDir
    Path dir;

    @Test
    void aRelayedConnectionWritesOneLineAtCloseAndIsNotCountedAsAnHttpRequest() throws Exception {
        try (ServerSocket upstream = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
            int port = LoopbackProxy.freePort();
            Path config = dir.resolve("proxy.yaml");
            Files.writeString(config, TcpRelayTest.config(port, "", "", upstream.getLocalPort()));
            PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
            MeshMetrics metrics = MeshMetrics.create(registry, WorkloadInfo.UNKNOWN);
            List<StreamInfo> requests = new CopyOnWriteArrayList<>();
            AccessLog log = AccessLog.create(AccessLog.Format.TEXT, lines::add);
            StandaloneProxy proxy = StandaloneProxy.start(new StandaloneProxy.Settings(config, -1, -1, 1,
                    s -> {
                        requests.add(s);
                        metrics.record(s);
                        log.log(s);
                    }, AdminHook.NONE).withStats(metrics::tcpConnection, metrics::upstream)
                    .withTcpAccessLog(log::log));
            try {
                CompletableFuture<String> served = CompletableFuture.supplyAsync(() -> {
                    try (Socket s = upstream.accept()) {
                        String got = new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                        Thread.sleep(150); // the line's duration covers the whole connection
                        s.getOutputStream().write("pong!".getBytes(StandardCharsets.UTF_8));
                        return got;
                    } catch (IOException | InterruptedException e) {
                        throw new RuntimeException(e);
                    }
                });
                int clientPort;
                try (Socket client = new Socket(InetAddress.getLoopbackAddress(), port)) {
                    client.setSoTimeout(10_000);
                    clientPort = client.getLocalPort();
                    client.getOutputStream().write("ping".getBytes(StandardCharsets.UTF_8));
                    client.shutdownOutput();
                    assertEquals("pong!", new String(client.getInputStream().readAllBytes(),
                            StandardCharsets.UTF_8));
                }
                assertEquals("ping", served.get(10, TimeUnit.SECONDS));
                String line = awaitLine();
                Matcher m = Pattern.compile(TIME + "\"- - -\" 0 - - - \"-\" 4 5 (\\d+) - \"-\" \"-\" \"-\" \"-\" "
                        + "\"127\\.0\\.0\\.1:" + upstream.getLocalPort() + "\" backend 127\\.0\\.0\\.1:\\d+ "
                        + "127\\.0\\.0\\.1:" + port + " 127\\.0\\.0\\.1:" + clientPort + " - -").matcher(line);
                assertTrue(m.matches(), line);
                assertTrue(Long.parseLong(m.group(1)) >= 150, line);
                Thread.sleep(200);
                assertEquals(1, lines.size(), lines.toString());
                // in the TCP metrics only: no request was observed or counted
                assertEquals(List.of(), requests);
                String scrape = registry.scrape();
                assertTrue(!scrape.contains("istio_requests_total"), scrape);
                assertTrue(scrape.contains("istio_tcp_connections_closed_total"), scrape);
            } finally {
                proxy.close();
            }
        }
    }

    @Test
    void aConnectionToAClusterWithoutHostsIsClosedWithUhAndTheClusterNamedAsIstiosBlackHoleLogsIt()
            throws Exception {
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = new LoopbackProxy(tcpProxyTo(port, "BlackHoleCluster", """
                  clusters:
                  - name: BlackHoleCluster
                    type: STATIC
                    connect_timeout: 1s
                """))) {
            proxy.server.tcpAccessLog(AccessLog.create(AccessLog.Format.TEXT, lines::add)::log);
            int clientPort = closedWithoutAnswer(port);
            assertTrue(awaitLine().matches(TIME + "\"- - -\" 0 UH - - \"-\" 0 0 \\d+ - \"-\" \"-\" \"-\" \"-\" \"-\" "
                    + "BlackHoleCluster - 127\\.0\\.0\\.1:" + port + " 127\\.0\\.0\\.1:" + clientPort + " - -"),
                    lines.toString());
            assertEquals(List.of(), proxy.requests);
        }
    }

    @Test
    void upstreamClusterIsTheClustersAltStatNameAndUpstreamClusterRawItsNameAsEnvoyPrintsThem() throws Exception {
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = new LoopbackProxy(tcpProxyTo(port, "BlackHoleCluster", """
                  clusters:
                  - name: BlackHoleCluster
                    alt_stat_name: blackhole_stats
                    type: STATIC
                    connect_timeout: 1s
                """))) {
            var format = dev.inmesh.runtime.accesslog.CommandFormat.compile(
                    "%UPSTREAM_CLUSTER% %UPSTREAM_CLUSTER_RAW%", false);
            proxy.server.tcpAccessLog(c -> lines.add(format.format(
                    dev.inmesh.runtime.accesslog.AccessLogEntry.of(c))));
            closedWithoutAnswer(port);
            assertEquals("blackhole_stats BlackHoleCluster", awaitLine());
        }
    }

    @Test
    void aConnectionToAClusterThatDoesNotExistIsFlaggedNcWithoutACluster() throws Exception {
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = new LoopbackProxy(tcpProxyTo(port, "nowhere", ""))) {
            proxy.server.tcpAccessLog(AccessLog.create(AccessLog.Format.TEXT, lines::add)::log);
            int clientPort = closedWithoutAnswer(port);
            assertTrue(awaitLine().matches(TIME + "\"- - -\" 0 NC - - \"-\" 0 0 \\d+ - \"-\" \"-\" \"-\" \"-\" \"-\" "
                    + "- - 127\\.0\\.0\\.1:" + port + " 127\\.0\\.0\\.1:" + clientPort + " - -"), lines.toString());
        }
    }

    @Test
    void aConnectionNoFilterChainMatchesIsFlaggedNrWithoutACluster() throws Exception {
        int port = LoopbackProxy.freePort();
        // the listener's only chain takes connections for port 1: as Envoy, a connection none matches is closed,
        // and logged with NR ("no matching filter chain for a downstream connection")
        String config = TcpRelayTest.config(port, "", "", LoopbackProxy.freePort()).replace("    - filters:\n",
                "    - filter_chain_match: {destination_port: 1}\n      filters:\n");
        try (LoopbackProxy proxy = new LoopbackProxy(config)) {
            proxy.server.tcpAccessLog(AccessLog.create(AccessLog.Format.TEXT, lines::add)::log);
            int clientPort = closedWithoutAnswer(port);
            assertTrue(awaitLine().matches(TIME + "\"- - -\" 0 NR filter_chain_not_found - \"-\" 0 0 \\d+ - \"-\" \"-\" "
                    + "\"-\" \"-\" \"-\" - - 127\\.0\\.0\\.1:" + port + " 127\\.0\\.0\\.1:" + clientPort + " - -"),
                    lines.toString());
        }
    }

    @Test
    void aConnectionNoFilterChainTakesAfterItsBytesWereInspectedIsLoggedWithNoBytes() throws Exception {
        // as Istio's black-hole lines: the TLS inspector only peeked at the request, and no connection was made
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = new LoopbackProxy(ProxyAccessLogTest.onlyExampleConfig(port, ""))) {
            proxy.server.tcpAccessLog(AccessLog.create(AccessLog.Format.TEXT, lines::add)::log);
            ProxyAccessLogTest.plainRequestClosed(port);
            String line = awaitLine();
            assertTrue(line.matches(TIME + "\"- - -\" 0 NR filter_chain_not_found - \"-\" 0 0 \\d+ - .*"), line);
        }
    }

    @Test
    void aConnectThatFailsIsLoggedWithUfAndUrxAndTheHostTried() throws Exception {
        int port = LoopbackProxy.freePort();
        int dead = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = new LoopbackProxy(TcpRelayTest.config(port, "", "", dead))) {
            proxy.server.tcpAccessLog(AccessLog.create(AccessLog.Format.TEXT, lines::add)::log);
            int clientPort = closedWithoutAnswer(port);
            // the socket's error as Envoy's %UPSTREAM_TRANSPORT_FAILURE_REASON% gives it
            assertTrue(awaitLine().matches(TIME + "\"- - -\" 0 UF,URX - - \"delayed_connect_error:_Connection_refused\" "
                    + "0 0 \\d+ - \"-\" \"-\" \"-\" \"-\" "
                    + "\"127\\.0\\.0\\.1:" + dead + "\" backend - 127\\.0\\.0\\.1:" + port + " 127\\.0\\.0\\.1:"
                    + clientPort + " - -"), lines.toString());
        }
    }

    @Test
    void aJsonLineHasIstiosKeysWithTheHttpOnlyValuesNullAndResponseCodeZero() throws Exception {
        try (ServerSocket upstream = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
            int port = LoopbackProxy.freePort();
            try (LoopbackProxy proxy = new LoopbackProxy(TcpRelayTest.config(port, "", "",
                    upstream.getLocalPort()))) {
                proxy.server.tcpAccessLog(AccessLog.create(AccessLog.Format.JSON, lines::add)::log);
                CompletableFuture.runAsync(() -> {
                    try (Socket s = upstream.accept()) {
                        s.getInputStream().readAllBytes();
                        s.getOutputStream().write("ok".getBytes(StandardCharsets.UTF_8));
                    } catch (IOException e) {
                        throw new RuntimeException(e);
                    }
                });
                try (Socket client = new Socket(InetAddress.getLoopbackAddress(), port)) {
                    client.setSoTimeout(10_000);
                    client.getOutputStream().write("abc".getBytes(StandardCharsets.UTF_8));
                    client.shutdownOutput();
                    client.getInputStream().readAllBytes();
                }
                String line = awaitLine();
                for (String part : List.of("\"route_name\":null,\"method\":null,\"path\":null,\"protocol\":null,"
                        + "\"response_code\":0,\"response_flags\":\"-\",\"response_code_details\":null,",
                        "\"bytes_received\":3,\"bytes_sent\":2,", "\"upstream_service_time\":null,"
                        + "\"x_forwarded_for\":null,\"user_agent\":null,\"request_id\":null,\"authority\":null,"
                        + "\"upstream_host\":\"127.0.0.1:" + upstream.getLocalPort() + "\","
                        + "\"upstream_cluster\":\"backend\",\"upstream_local_address\":\"127.0.0.1:",
                        "\"downstream_local_address\":\"127.0.0.1:" + port + "\"")) {
                    assertTrue(line.contains(part), part + " not in " + line);
                }
            }
        }
    }

    /** A tcp_proxy listener on {@code port} to {@code cluster}, with the given clusters section. */
    private static String tcpProxyTo(int port, String cluster, String clusters) {
        return """
                static_resources:
                  listeners:
                  - name: tcp
                    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.tcp_proxy
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                          stat_prefix: tcp
                          cluster: %s
                %s""".formatted(port, cluster, clusters);
    }

    /** Connects, sends a little, and expects the proxy to close without an answer; the client's port. */
    private static int closedWithoutAnswer(int port) throws IOException {
        try (Socket client = new Socket(InetAddress.getLoopbackAddress(), port)) {
            client.setSoTimeout(10_000);
            client.getOutputStream().write("hello".getBytes(StandardCharsets.UTF_8));
            InputStream in = client.getInputStream();
            try {
                assertEquals(-1, in.read());
            } catch (java.net.SocketException reset) {
                // closed with unread bytes: a reset is a close too
            }
            return client.getLocalPort();
        }
    }

    /** The first line, waited for (boundedly): it is written at close, after the client saw the end. */
    private String awaitLine() throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while (lines.isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertEquals(false, lines.isEmpty(), "no access log line was written");
        return lines.get(0);
    }
}
