package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.upstream.Host;
import dev.inmesh.runtime.upstream.UpstreamCluster;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * As Envoy's {@code tcp_proxy} tells outlier detection (its docs: for TCP traffic, consecutive_5xx counts connection
 * failures): a host whose connects fail is ejected after {@code consecutive_5xx} of them, and the connections after
 * that go to the hosts left; a connect that succeeds ends a host's run of failures.
 */
@Timeout(60)
class TcpOutlierDetectionTest {

    @Test
    void aHostWhoseConnectsFailIsEjectedAndTheNextConnectionsGoElsewhere() throws Exception {
        int dead;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            dead = s.getLocalPort(); // nothing listens there once closed
        }
        AtomicInteger accepted = new AtomicInteger();
        try (ServerSocket live = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
            Thread acceptor = new Thread(() -> {
                for (int i = 0; i < 20; i++) {
                    try (Socket s = live.accept()) {
                        accepted.incrementAndGet();
                        s.setSoTimeout(5_000);
                        s.getInputStream().read(); // the client's byte, relayed
                        s.getOutputStream().write('!'); // one byte, then closed: the relay ends
                    } catch (java.io.IOException e) {
                        return; // closed: the test ended
                    }
                }
            }, "tcp-outlier-live");
            acceptor.setDaemon(true);
            acceptor.start();
            int port = LoopbackProxy.freePort();
            String config = TcpRelayTest.config(port, "", """
                        outlier_detection:
                          consecutive_5xx: 2
                          max_ejection_percent: 100
                          interval: 60s
                    """, dead, live.getLocalPort());
            try (LoopbackProxy proxy = new LoopbackProxy(config)) {
                int relayed = 0;
                for (int i = 0; i < 10; i++) {
                    try (Socket c = new Socket()) {
                        c.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 2_000);
                        c.setSoTimeout(5_000);
                        c.getOutputStream().write("x".getBytes(StandardCharsets.US_ASCII));
                        if (c.getInputStream().read() == '!') {
                            relayed++;
                        }
                    } catch (java.net.SocketException e) {
                        // the dead host's connect failed: the proxy closed (or reset) the client's connection
                    }
                }
                UpstreamCluster cluster = proxy.snapshots.current().clusterManager().cluster("backend");
                Host deadHost = null;
                Host liveHost = null;
                for (Host h : cluster.hosts()) {
                    if (h.address().port() == dead) {
                        deadHost = h;
                    } else {
                        liveHost = h;
                    }
                }
                assertTrue(deadHost.outlier().ejected(), "the host whose connects failed is ejected");
                assertFalse(liveHost.outlier().ejected());
                assertEquals(1, cluster.outlierDetector().activeEjections());
                // round robin sent two of the first four to the dead host, whose second failure ejected it: every
                // connection after those went to the live host
                assertTrue(relayed >= 8, relayed + " of 10 relayed");
                assertEquals(relayed, accepted.get());
            }
        }
    }
}
