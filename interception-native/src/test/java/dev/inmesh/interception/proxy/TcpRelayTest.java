package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.upstream.KeepaliveProbe;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The TCP relay on loopback: a tcp_proxy listener in front of a plain socket server. */
@Timeout(30)
class TcpRelayTest {
    private ServerSocket upstream;
    private LoopbackProxy proxy;
    private final ExecutorService pool = Executors.newCachedThreadPool();

    @BeforeEach
    void start() throws Exception {
        upstream = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        int port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy(config(port, "", "", upstream.getLocalPort()));
    }

    /** A tcp_proxy listener on {@code port} to a STATIC cluster of the endpoints, with extra fields. */
    static String config(int port, String tcpProxyExtra, String clusterExtra, int... endpoints) {
        StringBuilder eps = new StringBuilder();
        for (int e : endpoints) {
            eps.append("            - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ")
                    .append(e).append("}}}\n");
        }
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
                          cluster: backend
                %s
                  clusters:
                  - name: backend
                    type: STATIC
                    connect_timeout: 5s
                %s
                    load_assignment:
                      cluster_name: backend
                      endpoints:
                      - lb_endpoints:
                %s""".formatted(port, tcpProxyExtra, clusterExtra, eps);
    }

    @AfterEach
    void stop() throws Exception {
        pool.shutdownNow();
        proxy.close();
        upstream.close();
    }

    private Socket connect() throws IOException {
        Socket s = new Socket();
        s.connect(proxy.addresses.get(0), 2_000);
        s.setSoTimeout(10_000);
        return s;
    }

    @Test
    void theClientsHalfCloseReachesTheServerWhichCanStillAnswer() throws Exception {
        CompletableFuture<String> received = CompletableFuture.supplyAsync(() -> {
            try (Socket s = upstream.accept()) {
                String got = new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8); // until EOF
                s.getOutputStream().write(("got " + got).getBytes(StandardCharsets.UTF_8));
                return got;
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        }, pool);
        try (Socket client = connect()) {
            client.getOutputStream().write("ping".getBytes(StandardCharsets.UTF_8));
            client.shutdownOutput();
            assertEquals("got ping", new String(client.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
        }
        assertEquals("ping", received.get(10, TimeUnit.SECONDS));
    }

    @Test
    void aRelayedConnectionIsCountedInIstiosTcpMetrics() throws Exception {
        // Micrometer names counters without "_total"; the Prometheus registry adds it (istio_tcp_sent_bytes_total).
        io.micrometer.core.instrument.simple.SimpleMeterRegistry registry =
                new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
        dev.inmesh.runtime.stats.MeshMetrics metrics = dev.inmesh.runtime.stats.MeshMetrics.create(registry,
                new dev.inmesh.runtime.stats.WorkloadInfo("pod-v1", "default", "pod", "v1"));
        proxy.server.tcpMetrics(metrics::tcpConnection);
        CompletableFuture<String> received = CompletableFuture.supplyAsync(() -> {
            try (Socket s = upstream.accept()) {
                String got = new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                s.getOutputStream().write("pong!".getBytes(StandardCharsets.UTF_8));
                return got;
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        }, pool);
        try (Socket client = connect()) {
            client.getOutputStream().write("ping".getBytes(StandardCharsets.UTF_8));
            client.shutdownOutput();
            assertEquals("pong!", new String(client.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
        }
        assertEquals("ping", received.get(10, TimeUnit.SECONDS));
        long deadline = System.currentTimeMillis() + 15_000;
        while ((registry.find("istio_tcp_connections_closed").counter() == null
                || registry.find("istio_tcp_connections_closed").counter().count() < 1)
                && System.currentTimeMillis() < deadline) {
            Thread.sleep(10);
        }
        assertEquals(1.0, registry.get("istio_tcp_connections_opened").counter().count());
        assertEquals(1.0, registry.get("istio_tcp_connections_closed").counter().count());
        assertEquals(4.0, registry.get("istio_tcp_received_bytes").counter().count());
        assertEquals(5.0, registry.get("istio_tcp_sent_bytes").counter().count());
    }

    @Test
    void aLongConnectionsBytesAreCountedWhileItLastsAsIstioReportsThemEveryFewSeconds() throws Exception {
        SimpleMeterRegistry registry = metered();
        proxy.server.tcpReportingInterval(java.time.Duration.ofMillis(100)); // Istio's 5 s, shortened
        CompletableFuture<Void> done = new CompletableFuture<>();
        CompletableFuture<Void> served = answerUntil(done, 4, "pong!", 6, "pong!!!");
        try (Socket client = connect()) {
            client.getOutputStream().write("ping".getBytes(StandardCharsets.UTF_8));
            assertEquals("pong!", new String(client.getInputStream().readNBytes(5), StandardCharsets.UTF_8));
            awaitCount(registry, "istio_tcp_sent_bytes", 5);
            assertEquals(4.0, registry.get("istio_tcp_received_bytes").counter().count());
            // the next report adds only what was relayed since
            client.getOutputStream().write("ping!!".getBytes(StandardCharsets.UTF_8));
            assertEquals("pong!!!", new String(client.getInputStream().readNBytes(7), StandardCharsets.UTF_8));
            awaitCount(registry, "istio_tcp_sent_bytes", 12);
            awaitCount(registry, "istio_tcp_received_bytes", 10);
            Thread.sleep(300); // reports that find nothing new add nothing
            assertEquals(10.0, registry.get("istio_tcp_received_bytes").counter().count());
            assertEquals(12.0, registry.get("istio_tcp_sent_bytes").counter().count());
            assertEquals(0.0, registry.get("istio_tcp_connections_closed").counter().count(), "still open");
        } finally {
            done.complete(null);
        }
        served.get(10, TimeUnit.SECONDS);
        for (int i = 0; i < 400 && registry.find("istio_tcp_connections_closed").counter().count() < 1; i++) {
            Thread.sleep(25);
        }
        assertEquals(1.0, registry.get("istio_tcp_connections_closed").counter().count());
        Thread.sleep(300); // no report after the close
        assertEquals(10.0, registry.get("istio_tcp_received_bytes").counter().count(), "not counted twice");
        assertEquals(12.0, registry.get("istio_tcp_sent_bytes").counter().count());
    }

    /** Waits (at most 10 s) until the counter reaches {@code count}; fails when it does not or goes beyond. */
    private static void awaitCount(SimpleMeterRegistry registry, String name, double count) throws Exception {
        for (int i = 0; i < 400; i++) {
            var counter = registry.find(name).counter();
            if (counter != null && counter.count() >= count) {
                break;
            }
            Thread.sleep(25);
        }
        assertEquals(count, registry.get(name).counter().count(), name);
    }

    @Test
    void theIstioStatsFiltersTcpReportingDurationIsHowOftenALongConnectionsBytesAreCounted() throws Exception {
        SimpleMeterRegistry registry = withIstioStats("""
                "@type": type.googleapis.com/stats.PluginConfig
                tcp_reporting_duration: 0.2s
                """);
        CompletableFuture<Void> done = new CompletableFuture<>();
        CompletableFuture<Void> served = pongUntil(done);
        try (Socket client = connect()) {
            client.getOutputStream().write("ping".getBytes(StandardCharsets.UTF_8));
            assertEquals("pong!", new String(client.getInputStream().readNBytes(5), StandardCharsets.UTF_8));
            long start = System.nanoTime();
            for (int i = 0; i < 400 && registry.get("istio_tcp_sent_bytes").counter().count() < 5; i++) {
                Thread.sleep(10);
            }
            assertEquals(5.0, registry.get("istio_tcp_sent_bytes").counter().count());
            assertTrue(System.nanoTime() - start < TimeUnit.MILLISECONDS.toNanos(3_000),
                    "reported within 0.2 s, not after the default 5 s");
            assertEquals(0.0, registry.get("istio_tcp_connections_closed").counter().count(), "still open");
        } finally {
            done.complete(null);
        }
        served.get(10, TimeUnit.SECONDS);
    }

    @Test
    void theIstioStatsFiltersOverridesDropATcpMetricAndEmptyARemovedTag() throws Exception {
        // as istiod writes a Telemetry's overrides for TCP_OPENED_CONNECTIONS disabled and destination_service REMOVE
        SimpleMeterRegistry registry = withIstioStats("""
                "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                type_url: type.googleapis.com/stats.PluginConfig
                value:
                  metrics:
                  - {name: tcp_connections_opened_total, drop: true}
                  - {tags_to_remove: [destination_service]}
                """);
        pingPong();
        awaitCount(registry, "istio_tcp_connections_closed", 1);
        assertNull(registry.find("istio_tcp_connections_opened").counter(), "dropped");
        for (String name : new String[] {"istio_tcp_connections_closed", "istio_tcp_sent_bytes",
            "istio_tcp_received_bytes"}) {
            var c = registry.get(name).counter();
            assertEquals("", c.getId().getTag("destination_service"), name);
            assertEquals("pod-v1", c.getId().getTag("source_workload"), name); // the other labels kept
        }
        assertEquals(5.0, registry.get("istio_tcp_sent_bytes").counter().count());
        assertEquals(4.0, registry.get("istio_tcp_received_bytes").counter().count());
    }

    @Test
    void theIstioStatsFiltersDimensionsLabelAConnectionsTcpMetricsWithItsAttributes() throws Exception {
        // a Telemetry tagOverrides on TCP metrics: evaluated once for the connection, without request headers
        SimpleMeterRegistry registry = withIstioStats("""
                "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                type_url: type.googleapis.com/stats.PluginConfig
                value:
                  metrics:
                  - dimensions:
                      destination_service: "xds.cluster_name + '@' + string(destination.port)"
                      upstream_peer: upstream.address
                      host: request.host
                      client_is_local: "source.address.startsWith('127.0.0.1:')"
                """);
        pingPong();
        int port = proxy.addresses.get(0).getPort();
        for (int i = 0; i < 400 && (withDimensions(registry, "istio_tcp_connections_closed") == null
                || withDimensions(registry, "istio_tcp_connections_closed").count() < 1); i++) {
            Thread.sleep(25);
        }
        for (String name : new String[] {"istio_tcp_connections_opened", "istio_tcp_connections_closed",
            "istio_tcp_sent_bytes", "istio_tcp_received_bytes"}) {
            var c = withDimensions(registry, name);
            assertNotNull(c, name);
            assertEquals("backend@" + port, c.getId().getTag("destination_service"), name);
            assertEquals("127.0.0.1:" + upstream.getLocalPort(), c.getId().getTag("upstream_peer"), name);
            assertEquals("unknown", c.getId().getTag("host"), name + ": no request header on a connection");
            assertEquals("true", c.getId().getTag("client_is_local"), name);
            assertEquals("tcp", c.getId().getTag("request_protocol"), name);
            assertNull(registry.find(name).counter(), name + ": one series, the connection's");
        }
        assertEquals(1.0, withDimensions(registry, "istio_tcp_connections_closed").count());
        assertEquals(5.0, withDimensions(registry, "istio_tcp_sent_bytes").count());
        assertEquals(4.0, withDimensions(registry, "istio_tcp_received_bytes").count());
    }

    /** Relays one connection: "ping" to the upstream, "pong!" back, then closed by both ends. */
    private void pingPong() throws Exception {
        CompletableFuture<Void> done = new CompletableFuture<>();
        CompletableFuture<Void> served = pongUntil(done);
        try (Socket client = connect()) {
            client.getOutputStream().write("ping".getBytes(StandardCharsets.UTF_8));
            assertEquals("pong!", new String(client.getInputStream().readNBytes(5), StandardCharsets.UTF_8));
        } finally {
            done.complete(null);
        }
        served.get(10, TimeUnit.SECONDS);
    }

    /** The one counter of Istio's metric {@code name} with labels a stats filter adds, or null. */
    private static io.micrometer.core.instrument.Counter withDimensions(SimpleMeterRegistry registry, String name) {
        var found = registry.getMeters().stream().filter(m -> m.getId().getName().startsWith(
                name + dev.inmesh.runtime.stats.MeshMetrics.DIMENSIONS_MARK)).toList();
        assertTrue(found.size() <= 1, found.toString());
        return found.isEmpty() ? null : (io.micrometer.core.instrument.Counter) found.get(0);
    }

    @Test
    void theServersHalfCloseReachesTheClientWhichCanStillSend() throws Exception {
        CompletableFuture<String> received = CompletableFuture.supplyAsync(() -> {
            try (Socket s = upstream.accept()) {
                s.getOutputStream().write("banner".getBytes(StandardCharsets.UTF_8));
                s.shutdownOutput(); // a server-first protocol that is done talking
                return new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        }, pool);
        try (Socket client = connect()) {
            assertEquals("banner", new String(client.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
            client.getOutputStream().write("late reply".getBytes(StandardCharsets.UTF_8));
            client.shutdownOutput();
            assertEquals("late reply", received.get(10, TimeUnit.SECONDS));
        }
    }

    @Test
    void manyMegabytesPassByteForByteInBothDirections() throws Exception {
        relayBothWays();
    }

    /**
     * Both sides end while the relay still holds bytes for one of them, many times over: one side's output, shut down
     * once its input's other end ended, has nothing left to flush, and taking the failed flush of an empty write to it
     * for a failed flush closed the other side at once, dropping what was still to be written to it (a cut answer in
     * about one run in ten of {@link #manyMegabytesPassByteForByteInBothDirections}).
     */
    @Test
    void bothSidesEndingWhileTheRelayHoldsBytesForOneLoseNoneOfThem() throws Exception {
        for (int i = 0; i < 30; i++) {
            relayBothWays();
        }
    }

    /** 8 MiB up and 6 MiB down at once, each side half-closing when done; each arrives whole. */
    private void relayBothWays() throws Exception {
        byte[] up = new byte[8 << 20];
        byte[] down = new byte[6 << 20];
        new Random(1).nextBytes(up);
        new Random(2).nextBytes(down);
        CompletableFuture<byte[]> serverGot = CompletableFuture.supplyAsync(() -> {
            try (Socket s = upstream.accept()) {
                CompletableFuture<Void> write = CompletableFuture.runAsync(() -> {
                    try {
                        s.getOutputStream().write(down);
                        s.shutdownOutput();
                    } catch (IOException e) {
                        throw new RuntimeException(e);
                    }
                }, pool);
                byte[] got = s.getInputStream().readAllBytes();
                write.get(20, TimeUnit.SECONDS);
                return digest(got);
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        }, pool);
        try (Socket client = connect()) {
            CompletableFuture<Void> write = CompletableFuture.runAsync(() -> {
                try {
                    OutputStream out = client.getOutputStream();
                    out.write(up);
                    client.shutdownOutput();
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            }, pool);
            InputStream in = client.getInputStream();
            assertArrayEquals(digest(down), digest(in.readAllBytes()));
            write.get(20, TimeUnit.SECONDS);
        }
        assertArrayEquals(digest(up), serverGot.get(20, TimeUnit.SECONDS));
    }

    @Test
    void aConnectionToAnUpstreamThatRefusesIsClosed() throws Exception {
        upstream.close();
        try (Socket client = connect()) {
            client.getOutputStream().write(1);
            int r;
            try {
                r = client.getInputStream().read();
            } catch (java.net.SocketException reset) {
                r = -1;
            }
            assertEquals(-1, r);
        }
    }

    @Test
    void aClientResetClosesTheUpstreamSide() throws Exception {
        java.util.concurrent.CountDownLatch relayed = new java.util.concurrent.CountDownLatch(1);
        CompletableFuture<Integer> upstreamRead = CompletableFuture.supplyAsync(() -> {
            try (Socket s = upstream.accept()) {
                relayed.countDown();
                s.setSoTimeout(10_000);
                return s.getInputStream().read();
            } catch (IOException e) {
                return -2;
            }
        }, pool);
        Socket client = connect();
        client.setSoLinger(true, 0);
        client.getOutputStream().flush();
        // the reset comes once the relay has its upstream connection (a fixed wait may be too short under load)
        assertTrue(relayed.await(10, TimeUnit.SECONDS), "the relay connected upstream");
        client.close(); // RST
        int r = upstreamRead.get(10, TimeUnit.SECONDS);
        assertTrue(r == -1 || r == -2, "the upstream side stayed open: read " + r);
    }

    @Test
    void maxDownstreamConnectionDurationClosesBothSidesAtTheLimitAndFlagsDt(@TempDir java.nio.file.Path dir)
            throws Exception {
        // istiod's tcp_proxy for a DestinationRule's connectionPool.tcp.maxConnectionDuration
        java.nio.file.Path log = dir.resolve("tcp.log");
        // (1.5 s: the exchange before the limit fits well within it on a loaded machine)
        restart("          max_downstream_connection_duration: 1.5s\n"
                + ProxyAccessLogTest.accessLog(log, "%RESPONSE_FLAGS%", "          "), "", upstream.getLocalPort());
        SimpleMeterRegistry registry = metered();
        long start = System.nanoTime();
        try (Socket client = connect(); Socket server = acceptWithin(upstream, 5_000)) {
            client.getOutputStream().write('a');
            assertEquals('a', server.getInputStream().read());
            server.getOutputStream().write('b');
            assertEquals('b', client.getInputStream().read());
            // neither side closes: the limit does, both ways
            assertEquals(-1, readOrReset(client));
            assertEquals(-1, readOrReset(server));
        }
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertTrue(ms >= 1450 && ms < 10_000, ms + " ms");
        String line = "";
        for (long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(15); line.isEmpty() && System.nanoTime() < end; ) {
            line = java.nio.file.Files.exists(log) ? java.nio.file.Files.readString(log) : "";
            Thread.sleep(line.isEmpty() ? 50 : 0);
        }
        assertEquals("DT\n", line);
        assertEquals(1, awaitTcpStat(registry, "tcp", "max_downstream_connection_duration", 1));
        assertEquals(0, tcpStat(registry, "tcp", "idle_timeout"));
        // Istio's TCP metrics keep the labels the connection was first reported with: its close is not flagged DT
        awaitCount(registry, "istio_tcp_connections_closed", 1);
        assertEquals("-", registry.get("istio_tcp_connections_closed").counter().getId().getTag("response_flags"));
    }

    @Test
    void maxConnectionsRefusesAFurtherConnectionWithUpstreamOverflow() throws Exception {
        restart("", "    circuit_breakers: {thresholds: [{max_connections: 1}]}", upstream.getLocalPort());
        SimpleMeterRegistry registry = metered();
        try (Socket first = connect(); Socket relayed = acceptWithin(upstream, 5_000)) {
            first.getOutputStream().write('a');
            assertEquals('a', relayed.getInputStream().read());
            try (Socket second = connect()) {
                second.getOutputStream().write('b');
                assertEquals(-1, readOrReset(second), "the second connection is closed, not relayed");
            }
            upstream.setSoTimeout(500);
            assertThrows(SocketTimeoutException.class, upstream::accept, "no second upstream connection");
        }
        assertEquals(1.0, registry.get("envoy_cluster_upstream_cx_overflow").tag("cluster_name", "backend").gauge()
                .value());
        assertEquals(1.0, registry.get("istio_tcp_connections_closed").tag("response_flags", "UO").counter().count());
        // the relayed connection's slot is given back when it closes
        long deadline = System.currentTimeMillis() + 15_000;
        while (proxy.snapshots.current().clusterManager().cluster("backend").circuitBreakers().openConnections() > 0
                && System.currentTimeMillis() < deadline) {
            Thread.sleep(10);
        }
        upstream.setSoTimeout(5_000);
        try (Socket third = connect(); Socket relayed = upstream.accept()) {
            third.getOutputStream().write('c');
            assertEquals('c', relayed.getInputStream().read());
        }
    }

    @Test
    void aRelayedConnectionCountsInItsTcpProxysDownstreamStatisticsMadeAtZeroWithTheConfiguration() throws Exception {
        restart("          idle_timeout: 0.5s", "", upstream.getLocalPort());
        SimpleMeterRegistry registry = metered();
        // made with the configuration, as Envoy makes them with the filter's config
        for (String name : new String[] {"downstream_cx_total", "downstream_cx_no_route",
                "downstream_cx_rx_bytes_total", "downstream_cx_tx_bytes_total",
                "downstream_flow_control_paused_reading_total", "downstream_flow_control_resumed_reading_total",
                "idle_timeout", "max_downstream_connection_duration"}) {
            assertEquals(0, tcpStat(registry, "tcp", name), name);
        }
        try (Socket client = connect(); Socket server = acceptWithin(upstream, 5_000)) {
            client.getOutputStream().write("ping".getBytes(StandardCharsets.UTF_8));
            assertEquals("ping", new String(server.getInputStream().readNBytes(4), StandardCharsets.UTF_8));
            server.getOutputStream().write("pong!".getBytes(StandardCharsets.UTF_8));
            assertEquals("pong!", new String(client.getInputStream().readNBytes(5), StandardCharsets.UTF_8));
            // nothing more either way: the idle timeout closes both sides
            assertEquals(-1, readOrReset(client));
        }
        assertEquals(1, awaitTcpStat(registry, "tcp", "idle_timeout", 1));
        assertEquals(1, tcpStat(registry, "tcp", "downstream_cx_total"));
        assertEquals(4, tcpStat(registry, "tcp", "downstream_cx_rx_bytes_total"));
        assertEquals(5, tcpStat(registry, "tcp", "downstream_cx_tx_bytes_total"));
        assertEquals(0, tcpStat(registry, "tcp", "downstream_cx_no_route"));
        assertEquals(0, tcpStat(registry, "tcp", "max_downstream_connection_duration"));
    }

    @Test
    void aConnectionWhoseClusterDoesNotExistCountsAsNoRoute() throws Exception {
        proxy.close();
        proxy = new LoopbackProxy(config(LoopbackProxy.freePort(), "", "", upstream.getLocalPort())
                .replace("cluster: backend\n", "cluster: missing\n"));
        SimpleMeterRegistry registry = metered();
        try (Socket client = connect()) {
            client.getOutputStream().write('a');
            assertEquals(-1, readOrReset(client));
        }
        assertEquals(1, awaitTcpStat(registry, "tcp", "downstream_cx_no_route", 1));
        assertEquals(1, tcpStat(registry, "tcp", "downstream_cx_total"));
        assertEquals(0, tcpStat(registry, "tcp", "downstream_cx_rx_bytes_total"));
    }

    @Test
    void anUpstreamThatTakesNoMorePausesReadingFromTheClientUntilItReadsAgain() throws Exception {
        SimpleMeterRegistry registry = metered();
        // more than the loopback sockets' buffers hold: the proxy's upstream side stops being writable
        byte[] up = new byte[32 << 20];
        CompletableFuture<Integer> serverGot = CompletableFuture.supplyAsync(() -> {
            try (Socket s = acceptWithin(upstream, 5_000)) {
                // not reading until the relay had to stop reading the client
                for (int i = 0; i < 400 && tcpStat(registry, "tcp", "downstream_flow_control_paused_reading_total")
                        < 1; i++) {
                    Thread.sleep(25);
                }
                return s.getInputStream().readAllBytes().length;
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        }, pool);
        try (Socket client = connect()) {
            client.getOutputStream().write(up);
            client.shutdownOutput();
            assertEquals(up.length, (int) serverGot.get(20, TimeUnit.SECONDS));
        }
        long paused = tcpStat(registry, "tcp", "downstream_flow_control_paused_reading_total");
        assertTrue(paused >= 1, "paused " + paused);
        assertEquals(paused, awaitTcpStat(registry, "tcp", "downstream_flow_control_resumed_reading_total", paused));
        assertEquals(up.length, tcpStat(registry, "tcp", "downstream_cx_rx_bytes_total"));
    }

    @Test
    void aRelayedConnectionCountsInTheClustersUpstreamCxTotalActiveConnectMsAndLengthMs() throws Exception {
        SimpleMeterRegistry registry = metered();
        try (Socket client = connect(); Socket relayed = acceptWithin(upstream, 5_000)) {
            client.getOutputStream().write('a');
            assertEquals('a', relayed.getInputStream().read());
            assertEquals(1.0, registry.get("envoy_cluster_upstream_cx_total").tag("cluster_name", "backend")
                    .functionCounter().count());
            assertEquals(1.0, registry.get("envoy_cluster_upstream_cx_active").tag("cluster_name", "backend")
                    .gauge().value());
            // Envoy's histograms: the connect time, once connected; the connection's length once it closed
            assertEquals(1, registry.get("envoy_cluster_upstream_cx_connect_ms").tag("cluster_name", "backend")
                    .summary().count());
            // as Envoy's TCP pool, the relay is the connection's stream: the cluster's upstream_rq_total and
            // upstream_rq_active, and the host's own cx_ and rq_ counts (/clusters)
            assertEquals(1.0, registry.get("envoy_cluster_upstream_rq_total").tag("cluster_name", "backend")
                    .functionCounter().count());
            assertEquals(1.0, registry.get("envoy_cluster_upstream_rq_active").tag("cluster_name", "backend")
                    .gauge().value());
            assertEquals(java.util.Map.of("cx_total", 1L, "cx_active", 1L, "rq_total", 1L, "rq_active", 1L),
                    hostStats("cx_total", "cx_active", "rq_total", "rq_active"));
            Thread.sleep(60);
        }
        double active = 1;
        long deadline = System.currentTimeMillis() + 15_000;
        while (active != 0 && System.currentTimeMillis() < deadline) {
            active = registry.get("envoy_cluster_upstream_cx_active").tag("cluster_name", "backend").gauge().value();
            Thread.sleep(10);
        }
        assertEquals(0.0, active, "closed with the relayed connection");
        assertEquals(0.0, registry.get("envoy_cluster_upstream_rq_active").tag("cluster_name", "backend").gauge()
                .value());
        assertEquals(java.util.Map.of("cx_total", 1L, "cx_active", 0L), hostStats("cx_total", "cx_active"));
        // the client left, and the proxy closed the upstream connection after it: destroyed locally, as Envoy's; and,
        // as Envoy's TCP pool counts the close of a connection its relay still holds, with an active request
        for (String destroyed : new String[] {"upstream_cx_destroy", "upstream_cx_destroy_local",
            "upstream_cx_destroy_with_active_rq", "upstream_cx_destroy_local_with_active_rq"}) {
            assertEquals(1.0, registry.get("envoy_cluster_" + destroyed).tag("cluster_name", "backend").gauge()
                    .value(), destroyed);
        }
        assertEquals(0.0, registry.get("envoy_cluster_upstream_cx_destroy_remote").tag("cluster_name", "backend")
                .gauge().value());
        var length = registry.get("envoy_cluster_upstream_cx_length_ms").tag("cluster_name", "backend").summary();
        assertEquals(1, length.count());
        assertTrue(length.totalAmount() >= 60, "open 60 ms or more: " + length.totalAmount());
    }

    /** The named statistics of the backend's one host, as /clusters prints them. */
    private java.util.Map<String, Long> hostStats(String... names) {
        return hostStats(proxy.snapshots.current().clusterManager().cluster("backend").hosts().iterator().next(),
                names);
    }

    private static java.util.Map<String, Long> hostStats(dev.inmesh.runtime.upstream.Host host, String... names) {
        java.util.Map<String, Long> out = new java.util.HashMap<>();
        for (var stat : host.stats().all()) {
            if (java.util.List.of(names).contains(stat.name())) {
                out.put(stat.name(), stat.value());
            }
        }
        return out;
    }

    @Test
    void maxConnectAttemptsConnectsAgainToAnotherHost() throws Exception {
        int refusing = LoopbackProxy.freePort();
        restart("          max_connect_attempts: 2", "", refusing, upstream.getLocalPort());
        for (int i = 0; i < 4; i++) {
            try (Socket client = connect(); Socket relayed = acceptWithin(upstream, 5_000)) {
                client.getOutputStream().write('0' + i);
                assertEquals('0' + i, relayed.getInputStream().read(), "connection " + i);
            }
        }
        // the refusing host's failed connects are no streams: as Envoy's pool, nothing attached to it; each is a
        // connection it made (cx_total) that failed (cx_connect_fail)
        for (var host : proxy.snapshots.current().clusterManager().cluster("backend").hosts()) {
            if (host.address().port() == refusing) {
                var st = hostStats(host, "rq_total", "cx_total", "cx_connect_fail");
                assertEquals(0L, st.get("rq_total"), st.toString());
                assertEquals(st.get("cx_connect_fail"), st.get("cx_total"), st.toString());
            }
        }
    }

    @Test
    void aRelayedConnectionsFlagsAreLoggedInTheOrderTheyWereSetAndItsMetricsKeepThoseOfItsOpening(
            @TempDir java.nio.file.Path dir) throws Exception {
        // a connect that failed (UF) and was retried on the other host, then the duration limit (DT): Envoy prints
        // the flags in the order it set them, UF,DT, in the access log; Istio's stats label the connection's
        // metrics with the flags it had when they first reported it, when it relayed: UF
        java.nio.file.Path log = dir.resolve("tcp.log");
        restart("          max_connect_attempts: 2\n          max_downstream_connection_duration: 0.3s\n"
                + ProxyAccessLogTest.accessLog(log, "%RESPONSE_FLAGS%", "          "),
                "", LoopbackProxy.freePort(), upstream.getLocalPort());
        SimpleMeterRegistry registry = metered();
        // round robin starts one of two connections at the refusing host
        for (int i = 0; i < 2; i++) {
            try (Socket client = connect(); Socket relayed = acceptWithin(upstream, 5_000)) {
                client.getOutputStream().write('0' + i);
                assertEquals('0' + i, relayed.getInputStream().read(), "connection " + i);
                assertEquals(-1, readOrReset(client), "closed at the limit");
            }
        }
        String lines = "";
        for (long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(15); lines.lines().count() < 2
                && System.nanoTime() < end; ) {
            lines = java.nio.file.Files.exists(log) ? java.nio.file.Files.readString(log) : "";
            Thread.sleep(lines.lines().count() < 2 ? 50 : 0);
        }
        List<String> flags = lines.lines().toList();
        assertEquals(2, flags.size(), lines);
        assertTrue(flags.stream().allMatch(f -> f.equals("DT") || f.equals("UF,DT")), lines);
        long retried = flags.stream().filter("UF,DT"::equals).count();
        assertTrue(retried >= 1, lines); // the second connection may start at the refusing host too
        for (int i = 0; i < 400 && registry.find("istio_tcp_connections_closed").counters().stream()
                .mapToDouble(io.micrometer.core.instrument.Counter::count).sum() < 2; i++) {
            Thread.sleep(25);
        }
        for (String name : List.of("istio_tcp_connections_opened", "istio_tcp_connections_closed")) {
            assertEquals((double) retried, registry.get(name).tag("response_flags", "UF").counter().count(), name);
            assertNull(registry.find(name).tag("response_flags", "UF,DT").counter(), name);
            assertNull(registry.find(name).tag("response_flags", "DT").counter(), name);
        }
    }

    @Test
    void aConnectionWhoseAttemptsAllFailIsClosedWithUfAndUrx() throws Exception {
        restart("          max_connect_attempts: 3", "", LoopbackProxy.freePort());
        SimpleMeterRegistry registry = metered();
        try (Socket client = connect()) {
            client.getOutputStream().write(1);
            assertEquals(-1, readOrReset(client));
        }
        assertEquals(3.0, registry.get("envoy_cluster_upstream_cx_connect_fail").gauge().value());
        // each refused connect is a connection the upstream closed, as Envoy's pool counts it
        assertEquals(3.0, registry.get("envoy_cluster_upstream_cx_destroy_remote").gauge().value());
        assertEquals(0.0, registry.get("envoy_cluster_upstream_cx_destroy_local").gauge().value());
        // a connect that failed carried no request
        assertEquals(0.0, registry.get("envoy_cluster_upstream_cx_destroy_with_active_rq").gauge().value());
        assertEquals(1.0, registry.get("envoy_cluster_upstream_cx_connect_attempts_exceeded").gauge().value());
        assertEquals(1.0, registry.get("istio_tcp_connections_closed").tag("response_flags", "UF,URX").counter()
                .count());
    }

    @Test
    void aConnectionThatGotNoUpstreamIsCountedOpenedAndClosedWithTheSameFlagsAsIstioReportsItAtItsClose()
            throws Exception {
        // Istio's stats label all of a connection's metrics alike; one never relayed is reported once, at its close
        SimpleMeterRegistry registry = closedByTheProxy(config(LoopbackProxy.freePort(), "", "",
                LoopbackProxy.freePort()));
        assertEquals(1.0, registry.get("istio_tcp_connections_opened").tag("response_flags", "UF,URX").counter()
                .count());
        assertEquals(1.0, registry.get("istio_tcp_connections_closed").tag("response_flags", "UF,URX").counter()
                .count());
        assertNull(registry.find("istio_tcp_connections_opened").tag("response_flags", "-").counter(),
                "no unflagged series for it");
    }

    @Test
    void aConnectionToAClusterThatDoesNotExistIsCountedWithNcAndNoService() throws Exception {
        SimpleMeterRegistry registry = closedByTheProxy(config(LoopbackProxy.freePort(), "", "",
                upstream.getLocalPort()).replace("cluster: backend", "cluster: nothere"));
        var closed = registry.get("istio_tcp_connections_closed").tag("response_flags", "NC").counter();
        assertEquals(1.0, closed.count());
        assertEquals("unknown", closed.getId().getTag("destination_service_name"));
        assertEquals(1.0, registry.get("istio_tcp_connections_opened").tag("response_flags", "NC").counter()
                .count());
    }

    @Test
    void aConnectionTheBlackHoleClusterHasNoHostForIsCountedWithUhAndItsName() throws Exception {
        // Istio's REGISTRY_ONLY sends TCP to its BlackHoleCluster, which has no endpoint: UH, reported at the close
        SimpleMeterRegistry registry = closedByTheProxy(config(LoopbackProxy.freePort(), "", "")
                .replace("backend", "BlackHoleCluster"));
        var opened = registry.get("istio_tcp_connections_opened").tag("response_flags", "UH").counter();
        assertEquals(1.0, opened.count());
        assertEquals("BlackHoleCluster", opened.getId().getTag("destination_service_name"));
        assertEquals(1.0, registry.get("istio_tcp_connections_closed").tag("response_flags", "UH").counter()
                .count());
    }

    /**
     * Replaces the proxy with one of {@code config}, makes one connection, which the proxy closes, and returns the
     * metrics once they counted its close (or after about 5 s).
     */
    private SimpleMeterRegistry closedByTheProxy(String config) throws Exception {
        proxy.close();
        proxy = new LoopbackProxy(config);
        SimpleMeterRegistry registry = metered();
        try (Socket client = connect()) {
            assertEquals(-1, readOrReset(client));
        }
        for (int i = 0; i < 200 && registry.find("istio_tcp_connections_closed").counter() == null; i++) {
            Thread.sleep(25);
        }
        return registry;
    }

    @Test
    void anOutboundConnectionIsLabelledWithTheWorkloadOfTheEndpointItReachedAsIstiosClientSide() throws Exception {
        // no metadata exchange: as Istio's client-side stats, the destination is the endpoint's istio.workload
        proxy.close();
        proxy = new LoopbackProxy(config(LoopbackProxy.freePort(), "", "", upstream.getLocalPort())
                .replace("name: backend", "name: outbound|27017||mongodb.default.svc.cluster.local")
                .replace("cluster: backend", "cluster: outbound|27017||mongodb.default.svc.cluster.local")
                .replace("}}}\n", "}}}\n              metadata: {filter_metadata: {istio: "
                        + "{workload: \"mongodb-v1;db;mongodb;v1;west\"}}}\n"));
        SimpleMeterRegistry registry = metered();
        CompletableFuture<Void> served = CompletableFuture.runAsync(() -> {
            try (Socket s = upstream.accept()) {
                s.getInputStream().readAllBytes();
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        }, pool);
        try (Socket client = connect()) {
            client.getOutputStream().write("ping".getBytes(StandardCharsets.UTF_8));
        }
        served.get(10, TimeUnit.SECONDS);
        var opened = registry.get("istio_tcp_connections_opened").counter().getId();
        assertEquals("mongodb-v1", opened.getTag("destination_workload"));
        assertEquals("db", opened.getTag("destination_workload_namespace"));
        assertEquals("unknown", opened.getTag("destination_app"), "istio.workload names no app, as Istio reads it");
        assertEquals("mongodb", opened.getTag("destination_canonical_service"));
        assertEquals("west", opened.getTag("destination_cluster"));
        // the cluster has no istio metadata and a connection no Host: as Istio's client side, which never reads the
        // cluster's name, the service is unknown
        assertEquals("unknown", opened.getTag("destination_service"));
        assertEquals("unknown", opened.getTag("destination_service_name"));
        assertEquals("db", opened.getTag("destination_service_namespace"), "the peer's, as Istio's client side");
    }

    /** The upstream's one connection: reads 4 bytes, answers "pong!", and stays open until {@code done}. */
    private CompletableFuture<Void> pongUntil(CompletableFuture<Void> done) {
        return answerUntil(done, 4, "pong!");
    }

    /**
     * The upstream's one connection: for each pair of {@code exchanges} (a byte count, an answer) reads that many
     * bytes and writes the answer, then stays open until {@code done}.
     */
    private CompletableFuture<Void> answerUntil(CompletableFuture<Void> done, Object... exchanges) {
        return CompletableFuture.runAsync(() -> {
            try (Socket s = upstream.accept()) {
                for (int i = 0; i < exchanges.length; i += 2) {
                    s.getInputStream().readNBytes((Integer) exchanges[i]);
                    s.getOutputStream().write(((String) exchanges[i + 1]).getBytes(StandardCharsets.UTF_8));
                }
                done.get(20, TimeUnit.SECONDS); // open until the test is done
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        }, pool);
    }

    /** Istio's TCP metrics and the clusters' statistics of the proxy, in a new registry. */
    private SimpleMeterRegistry metered() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        MeshMetrics metrics = MeshMetrics.create(registry, new WorkloadInfo("pod-v1", "default", "pod", "v1"));
        proxy.server.tcpMetrics(metrics::tcpConnection);
        proxy.router.upstreamStats(metrics::upstream);
        proxy.server.networkStats(metrics);
        return registry;
    }

    /** The TCP proxy {@code statPrefix}'s statistic {@code envoy_tcp_<name>} in {@code registry}, or -1 if none. */
    private static long tcpStat(SimpleMeterRegistry registry, String statPrefix, String name) {
        var meter = registry.find("envoy_tcp_" + name).tag("tcp_prefix", statPrefix).meter();
        return meter == null ? -1 : (long) meter.measure().iterator().next().getValue();
    }

    /** Waits (at most 10 s) until the TCP proxy's statistic is {@code value}, and returns what it is then. */
    private static long awaitTcpStat(SimpleMeterRegistry registry, String statPrefix, String name, long value)
            throws Exception {
        for (int i = 0; i < 400 && tcpStat(registry, statPrefix, name) != value; i++) {
            Thread.sleep(25);
        }
        return tcpStat(registry, statPrefix, name);
    }

    /**
     * Replaces the proxy with one of {@link #config} whose chain runs Istio's stats network filter with this
     * {@code typed_config} (YAML) before the tcp_proxy, and counts its metrics in a new registry.
     */
    private SimpleMeterRegistry withIstioStats(String typedConfig) throws Exception {
        proxy.close();
        proxy = new LoopbackProxy(config(LoopbackProxy.freePort(), "", "", upstream.getLocalPort()).replace(
                "      - name: envoy.filters.network.tcp_proxy\n", "      - name: istio.stats\n"
                        + "        typed_config:\n" + typedConfig.indent(10)
                        + "      - name: envoy.filters.network.tcp_proxy\n"));
        return metered();
    }

    /** Replaces the proxy with one of {@link #config}. */
    private void restart(String tcpProxyExtra, String clusterExtra, int... endpoints) throws Exception {
        proxy.close();
        proxy = new LoopbackProxy(config(LoopbackProxy.freePort(), tcpProxyExtra, clusterExtra, endpoints));
    }

    private static Socket acceptWithin(ServerSocket server, int millis) throws IOException {
        server.setSoTimeout(millis);
        Socket s = server.accept();
        s.setSoTimeout(10_000);
        return s;
    }

    /** The next byte, or -1 at the end of input or on a reset. */
    private static int readOrReset(Socket s) throws IOException {
        try {
            return s.getInputStream().read();
        } catch (java.net.SocketException reset) {
            return -1;
        }
    }

    private static byte[] digest(byte[] b) throws Exception {
        return MessageDigest.getInstance("SHA-256").digest(b);
    }

    @Test
    void theUpstreamConnectionHasTheClustersTcpKeepaliveAndAnUpdatedClustersForTheNextConnection() throws Exception {
        // Envoy sets SO_KEEPALIVE and each value given on every socket it opens for the cluster
        int port = LoopbackProxy.freePort();
        proxy.close();
        proxy = new LoopbackProxy(config(port, "", """
                    upstream_connection_options:
                      tcp_keepalive: {keepalive_probes: 3, keepalive_time: 42, keepalive_interval: 7}
                """, upstream.getLocalPort()));
        assertEquals(new KeepaliveProbe.Options(true, 42, 7, 3), relayedUpstreamOptions());

        // the cluster updated with only a time: the next connection takes it, and the system's interval and probes
        proxy.snapshots.apply(dev.inmesh.runtime.xds.EnvoyConfigReader.read(config(port, "", """
                    upstream_connection_options: {tcp_keepalive: {keepalive_time: 60}}
                """, upstream.getLocalPort())));
        KeepaliveProbe.Options system = KeepaliveProbe.system();
        assertEquals(new KeepaliveProbe.Options(true, 60, system.intervalSeconds(), system.probes()),
                relayedUpstreamOptions());
    }

    @Test
    void withoutTcpKeepaliveTheUpstreamConnectionKeepsTheSystemsSetting() throws Exception {
        KeepaliveProbe.Options system = KeepaliveProbe.system();
        assertEquals(new KeepaliveProbe.Options(false, system.idleSeconds(), system.intervalSeconds(),
                system.probes()), relayedUpstreamOptions());
    }

    /** Relays one connection and reads the keep-alive options of the proxy's socket to the upstream. */
    private KeepaliveProbe.Options relayedUpstreamOptions() throws Exception {
        try (Socket client = connect()) {
            client.getOutputStream().write("ping".getBytes(StandardCharsets.UTF_8));
            try (Socket accepted = acceptWithin(upstream, 5_000)) {
                assertEquals('p', accepted.getInputStream().read());
                return KeepaliveProbe.of(accepted.getPort(), upstream.getLocalPort());
            }
        }
    }

    @Test
    void anInboundRelayIsCountedForTheServiceOfItsClustersIstioMetadata() throws Exception {
        // as Istio's inbound cluster inbound|PORT|| carries it, and its server-side stats label TCP with it
        proxy.close();
        proxy = new LoopbackProxy(config(LoopbackProxy.freePort(), "", """
                    metadata:
                      filter_metadata:
                        istio:
                          services:
                          - {host: ratings.default.svc.cluster.local, name: ratings, namespace: default}
                """, upstream.getLocalPort()).replaceFirst("    filter_chains:\n",
                "    traffic_direction: INBOUND\n    filter_chains:\n"));
        io.micrometer.core.instrument.simple.SimpleMeterRegistry registry =
                new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
        MeshMetrics metrics = MeshMetrics.create(registry, new WorkloadInfo("ratings-v1", "default", "ratings", "v1"));
        proxy.server.tcpMetrics(metrics::tcpConnection);
        CompletableFuture<Void> served = CompletableFuture.runAsync(() -> {
            try (Socket s = upstream.accept()) {
                s.getInputStream().readAllBytes();
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        }, pool);
        try (Socket client = connect()) {
            client.getOutputStream().write("ping".getBytes(StandardCharsets.UTF_8));
            client.shutdownOutput();
            client.getInputStream().readAllBytes();
        }
        served.get(10, TimeUnit.SECONDS);
        var opened = registry.get("istio_tcp_connections_opened").counter().getId();
        assertEquals("destination", opened.getTag("reporter"));
        assertEquals("ratings.default.svc.cluster.local", opened.getTag("destination_service"));
        assertEquals("ratings", opened.getTag("destination_service_name"));
        assertEquals("default", opened.getTag("destination_service_namespace"));
    }
    @Test
    void anOutboundRelayThroughThePassthroughClusterIsCountedWithItAsTheServiceName() throws Exception {
        // as Istio's client-side TCP stats for its virtualOutbound passthrough: destination_service_name is the
        // cluster's name (the service itself is not known from bytes)
        proxy.close();
        proxy = new LoopbackProxy(config(LoopbackProxy.freePort(), "", "", upstream.getLocalPort())
                .replace("backend", "PassthroughCluster"));
        io.micrometer.core.instrument.simple.SimpleMeterRegistry registry =
                new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
        MeshMetrics metrics = MeshMetrics.create(registry, new WorkloadInfo("sleep", "default", "sleep", "v1"));
        proxy.server.tcpMetrics(metrics::tcpConnection);
        CompletableFuture<Void> served = CompletableFuture.runAsync(() -> {
            try (Socket s = upstream.accept()) {
                s.getInputStream().readAllBytes();
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        }, pool);
        try (Socket client = connect()) {
            client.getOutputStream().write("ping".getBytes(StandardCharsets.UTF_8));
            client.shutdownOutput();
            client.getInputStream().readAllBytes();
        }
        served.get(10, TimeUnit.SECONDS);
        var opened = registry.get("istio_tcp_connections_opened").counter().getId();
        assertEquals("source", opened.getTag("reporter"));
        assertEquals("PassthroughCluster", opened.getTag("destination_service_name"));
        assertEquals("unknown", opened.getTag("destination_service"));
    }

    /**
     * Both sides can be closed when they are joined (the client left while the upstream was being connected, and the
     * upstream is already gone): what runs when both closed then runs after the join returned, and finds the counters
     * it returned. It ran inside the join, before the caller had them: the WebSocket relay's report (HttpBridge) read
     * a null and threw, leaving the relay unreported and the host's request active.
     */
    @Test
    void whatRunsWhenBothCloseWhileJoiningRunsAfterTheJoinWithItsCounters() throws Exception {
        io.netty.channel.EventLoopGroup loop = new io.netty.channel.DefaultEventLoopGroup(1);
        try {
            io.netty.channel.local.LocalAddress address = new io.netty.channel.local.LocalAddress("tcp-relay-join");
            new io.netty.bootstrap.ServerBootstrap().group(loop)
                    .channel(io.netty.channel.local.LocalServerChannel.class)
                    .childHandler(new io.netty.channel.ChannelInitializer<>() {
                        @Override
                        protected void initChannel(io.netty.channel.Channel ch) {
                            // accepts and reads nothing
                        }
                    }).bind(address).sync();
            io.netty.channel.Channel down = new io.netty.bootstrap.Bootstrap().group(loop)
                    .channel(io.netty.channel.local.LocalChannel.class)
                    .handler(new io.netty.channel.ChannelInboundHandlerAdapter()).connect(address).sync().channel();
            io.netty.channel.Channel up = new io.netty.bootstrap.Bootstrap().group(loop)
                    .channel(io.netty.channel.local.LocalChannel.class)
                    .handler(new io.netty.channel.ChannelInboundHandlerAdapter()).connect(address).sync().channel();
            up.close().sync(); // the upstream went away while it was being connected
            down.close().sync(); // and so did the client
            CompletableFuture<Long> reported = new CompletableFuture<>();
            loop.submit(() -> {
                TcpRelay.Counters[] counted = {null};
                counted[0] = TcpRelay.join(down, up, null, () -> {
                    try {
                        reported.complete(counted[0].downstreamToUpstream.get());
                    } catch (RuntimeException e) {
                        reported.completeExceptionally(e);
                    }
                });
            }).sync();
            assertEquals(0L, reported.get(10, TimeUnit.SECONDS));
        } finally {
            loop.shutdownGracefully(0, 1, TimeUnit.SECONDS).await(10, TimeUnit.SECONDS);
        }
    }

    /** Pushes {@code bytes} from {@code s} in the background (a write that blocks on a full pipe stays blocked). */
    private void pushInBackground(Socket s, int bytes) {
        pool.submit(() -> {
            byte[] chunk = new byte[64 * 1024];
            try {
                for (int sent = 0; sent < bytes; sent += chunk.length) {
                    s.getOutputStream().write(chunk);
                }
            } catch (IOException closed) {
                // closed under the write: what the test is after
            }
        });
    }

    /** Waits (at most {@code millis}) until the cluster's connection slot is given back, that is its upstream closed. */
    private boolean upstreamClosedWithin(long millis) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
        while (proxy.snapshots.current().clusterManager().cluster("backend").circuitBreakers().openConnections() > 0) {
            if (System.nanoTime() > end) {
                return false;
            }
            Thread.sleep(10);
        }
        return true;
    }

    @Test
    void theIdleTimeoutClosesAnUpstreamThatStoppedReadingAtOnceWithoutFlushing() throws Exception {
        // Envoy's idle timeout closes the downstream without flushing, and so the upstream
        restart("          idle_timeout: 1s", "", upstream.getLocalPort());
        SimpleMeterRegistry registry = metered();
        try (Socket client = connect(); Socket server = acceptWithin(upstream, 5_000)) {
            pushInBackground(client, 64 << 20); // far more than the pipe holds: the upstream never reads
            assertTrue(upstreamClosedWithin(6_000), "the upstream that stopped reading was left open");
            awaitCount(registry, "istio_tcp_connections_closed", 1);
            Thread.sleep(2_500); // two more idle timeouts' time: counted once
            assertEquals(1, tcpStat(registry, "tcp", "idle_timeout"));
            // what reached it, then its end
            server.setSoTimeout(10_000);
            byte[] b = new byte[64 * 1024];
            try {
                while (server.getInputStream().read(b) >= 0) {
                    // drains
                }
            } catch (java.net.SocketException reset) {
                // as good as an end
            }
        }
    }

    @Test
    void theIdleTimeoutClosesAClientThatStoppedReadingOnceCountedOnce() throws Exception {
        restart("          idle_timeout: 1s", "", upstream.getLocalPort());
        SimpleMeterRegistry registry = metered();
        try (Socket client = connect(); Socket server = acceptWithin(upstream, 5_000)) {
            pushInBackground(server, 64 << 20); // a download the client never reads
            assertTrue(upstreamClosedWithin(6_000), "the upstream was left open");
            awaitCount(registry, "istio_tcp_connections_closed", 1); // both sides closed
            Thread.sleep(2_500);
            assertEquals(1, tcpStat(registry, "tcp", "idle_timeout"));
        }
    }

    @Test
    void maxDownstreamConnectionDurationClosesAnUpstreamThatStoppedReadingWithoutFlushing() throws Exception {
        restart("          max_downstream_connection_duration: 1s", "", upstream.getLocalPort());
        SimpleMeterRegistry registry = metered();
        try (Socket client = connect(); Socket server = acceptWithin(upstream, 5_000)) {
            pushInBackground(client, 64 << 20);
            assertTrue(upstreamClosedWithin(6_000), "the upstream that stopped reading was left open");
            awaitCount(registry, "istio_tcp_connections_closed", 1);
            assertEquals(1, tcpStat(registry, "tcp", "max_downstream_connection_duration"));
            assertEquals(0, tcpStat(registry, "tcp", "idle_timeout"));
        }
    }

    @Test
    void anUpstreamThatStoppedReadingIsClosedOnceTheIdleTimeoutPassedAfterTheClientLeft() throws Exception {
        // the client's close leaves the upstream to be flushed, which Envoy's drain bounds with the idle timer (here the
        // client's end may not even be read, being behind bytes the upstream does not take: the idle timeout closes)
        restart("          idle_timeout: 1s", "", upstream.getLocalPort());
        try (Socket client = connect(); Socket server = acceptWithin(upstream, 5_000)) {
            pushInBackground(client, 64 << 20); // more than the pipe holds: some is left to write when it closes
            Thread.sleep(300);
            client.close();
            assertTrue(upstreamClosedWithin(6_000), "the upstream that stopped reading was left open");
        }
    }
}
