package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Istio's TCP traffic shifting task on the standalone proxy: tcp-echo v1 answers each line with {@code one} before
 * it, v2 with {@code two}; istiod's {@code tcp_proxy} for a VirtualService sending 80% to v1 and 20% to v2 spreads
 * the connections so.
 */
@Timeout(60)
class TcpTrafficShiftingTest {
    private final ExecutorService pool = Executors.newCachedThreadPool();
    private final List<ServerSocket> servers = new ArrayList<>();
    private LoopbackProxy proxy;

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        for (ServerSocket s : servers) {
            s.close();
        }
        pool.shutdownNow();
    }

    /** A tcp-echo server on loopback that answers each connection's first line with {@code prefix} before it. */
    private int tcpEcho(String prefix) throws Exception {
        ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        servers.add(server);
        pool.submit(() -> {
            while (!server.isClosed()) {
                try (Socket s = server.accept()) {
                    String line = new BufferedReader(new InputStreamReader(s.getInputStream(),
                            StandardCharsets.UTF_8)).readLine();
                    s.getOutputStream().write((prefix + " " + line + "\n").getBytes(StandardCharsets.UTF_8));
                } catch (Exception e) {
                    // closed
                }
            }
            return null;
        });
        return server.getLocalPort();
    }

    private static String cluster(String subset, int port) {
        String name = "outbound|9000|" + subset + "|tcp-echo.default.svc.cluster.local";
        return """
                  - name: "%1$s"
                    type: STATIC
                    connect_timeout: 10s
                    alt_stat_name: "%1$s;"
                    lb_policy: LEAST_REQUEST
                    circuit_breakers:
                      thresholds:
                      - {max_connections: 4294967295, max_pending_requests: 4294967295, max_requests: 4294967295, \
                max_retries: 4294967295, track_remaining: true}
                    metadata:
                      filter_metadata:
                        istio:
                          config: /apis/networking.istio.io/v1/namespaces/default/destination-rule/tcp-echo
                          services: [{host: tcp-echo.default.svc.cluster.local, name: tcp-echo, namespace: default}]
                    load_assignment:
                      cluster_name: "%1$s"
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %2$d}}}
                """.formatted(name, port);
    }

    @Test
    void eightyPercentOfTheConnectionsGoToV1AndTwentyToV2() throws Exception {
        int v1 = tcpEcho("one");
        int v2 = tcpEcho("two");
        int port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy("""
                static_resources:
                  listeners:
                  - name: 127.0.0.1_%d
                    address: {socket_address: {address: 127.0.0.1, port_value: %1$d}}
                    traffic_direction: OUTBOUND
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.tcp_proxy
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                          stat_prefix: outbound|9000||tcp-echo.default.svc.cluster.local
                          weighted_clusters:
                            clusters:
                            - {name: "outbound|9000|v1|tcp-echo.default.svc.cluster.local", weight: 80}
                            - {name: "outbound|9000|v2|tcp-echo.default.svc.cluster.local", weight: 20}
                          max_connect_attempts: 5
                  clusters:
                """.formatted(port) + cluster("v1", v1) + cluster("v2", v2));
        int one = 0;
        int two = 0;
        for (int i = 0; i < 50; i++) {
            try (Socket s = new Socket()) {
                s.connect(proxy.addresses.get(0), 2_000);
                s.setSoTimeout(5_000);
                s.getOutputStream().write(("hello " + i + "\n").getBytes(StandardCharsets.UTF_8));
                String answer = new BufferedReader(new InputStreamReader(s.getInputStream(),
                        StandardCharsets.UTF_8)).readLine();
                if (answer.equals("one hello " + i)) {
                    one++;
                } else {
                    assertEquals("two hello " + i, answer);
                    two++;
                }
            }
        }
        // binomial(50, 0.2): two is 0 with probability 1.4e-5, above 22 with less than 1e-5
        assertTrue(two >= 1 && one >= 28, "v1 " + one + ", v2 " + two);
    }
}
