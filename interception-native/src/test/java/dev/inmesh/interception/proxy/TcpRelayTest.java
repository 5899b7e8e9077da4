package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

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
        proxy = new LoopbackProxy("""
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
                  clusters:
                  - name: backend
                    type: STATIC
                    connect_timeout: 1s
                    load_assignment:
                      cluster_name: backend
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                """.formatted(port, upstream.getLocalPort()));
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
        CompletableFuture<Integer> upstreamRead = CompletableFuture.supplyAsync(() -> {
            try (Socket s = upstream.accept()) {
                s.setSoTimeout(10_000);
                return s.getInputStream().read();
            } catch (IOException e) {
                return -2;
            }
        }, pool);
        Socket client = connect();
        client.setSoLinger(true, 0);
        client.getOutputStream().flush();
        Thread.sleep(200);
        client.close(); // RST
        int r = upstreamRead.get(10, TimeUnit.SECONDS);
        assertTrue(r == -1 || r == -2, "the upstream side stayed open: read " + r);
    }

    private static byte[] digest(byte[] b) throws Exception {
        return MessageDigest.getInstance("SHA-256").digest(b);
    }
}
