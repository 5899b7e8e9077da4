package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
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
 * A dual-stack pod's endpoint ({@code additional_addresses}) behind a {@code tcp_proxy}: the standalone proxy races
 * the host's addresses as Envoy's happy eyeballs connection does, its own address first, the next one when an attempt
 * fails or after 300 ms without a connection.
 */
@Timeout(60)
class TcpHappyEyeballsTest {
    private final List<ServerSocket> sockets = new ArrayList<>();
    private final List<Socket> held = new ArrayList<>();
    private final ExecutorService pool = Executors.newCachedThreadPool();
    private LoopbackProxy proxy;

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        for (Socket s : held) {
            s.close();
        }
        for (ServerSocket s : sockets) {
            s.close();
        }
        pool.shutdownNow();
    }

    /** A server on {@code ip} telling each connection {@code name}; its port. */
    private int upstream(String ip, String name) throws IOException {
        ServerSocket s = new ServerSocket(0, 50, InetAddress.getByName(ip));
        sockets.add(s);
        pool.submit(() -> {
            for (int n = 0; n < 100; n++) {
                try (Socket c = s.accept()) {
                    c.getOutputStream().write(name.getBytes(StandardCharsets.US_ASCII));
                } catch (IOException e) {
                    return null;
                }
            }
            return null;
        });
        return s.getLocalPort();
    }

    /** A relay to one host at 127.0.0.1:{@code own} whose additional address is [::1]:{@code other}. */
    private void relay(int own, int other) throws Exception {
        String endpoint = "            - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: " + own
                + "}}}\n";
        proxy = new LoopbackProxy(TcpRelayTest.config(LoopbackProxy.freePort(), "", "", own).replace(endpoint,
                "            - endpoint:\n"
                        + "                address: {socket_address: {address: 127.0.0.1, port_value: " + own + "}}\n"
                        + "                additional_addresses:\n"
                        + "                - address: {socket_address: {address: \"::1\", port_value: " + other
                        + "}}\n"));
    }

    /** What the relayed connection is told. */
    private String answer() throws IOException {
        try (Socket s = new Socket()) {
            s.connect(proxy.addresses.get(0), 2_000);
            s.setSoTimeout(10_000);
            return new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
        }
    }

    @Test
    void theHostsOwnAddressIsTriedFirst() throws Exception {
        relay(upstream("127.0.0.1", "ipv4"), upstream("::1", "ipv6"));
        for (int i = 0; i < 5; i++) {
            assertEquals("ipv4", answer());
        }
    }

    @Test
    void anAddressThatRefusesIsFollowedAtOnceByTheNext() throws Exception {
        int refusing = LoopbackProxy.freePort(); // bound and released: nothing listens there
        relay(refusing, upstream("::1", "ipv6"));
        // a wait for the delay would make each answer take it: the quickest of five tells, however loaded the machine
        long quickest = Long.MAX_VALUE;
        for (int i = 0; i < 5; i++) {
            long start = System.nanoTime();
            assertEquals("ipv6", answer());
            quickest = Math.min(quickest, (System.nanoTime() - start) / 1_000_000);
        }
        assertTrue(quickest < ProxyRuntime.NEXT_ATTEMPT_DELAY_MILLIS, "no wait for the delay after a refusal: "
                + quickest + " ms");
    }

    @Test
    void anAddressThatDoesNotConnectIsRacedByTheNextAfterTheDelay() throws Exception {
        // a listener that never accepts, its queue filled: a further SYN is dropped, its connect hangs
        ServerSocket silent = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"));
        sockets.add(silent);
        for (int i = 0; i < 8; i++) {
            Socket s = new Socket();
            held.add(s);
            try {
                s.connect(new InetSocketAddress("127.0.0.1", silent.getLocalPort()), 200);
            } catch (IOException e) {
                break; // the queue is full
            }
        }
        relay(silent.getLocalPort(), upstream("::1", "ipv6"));
        long start = System.nanoTime();
        assertEquals("ipv6", answer());
        long tookMillis = (System.nanoTime() - start) / 1_000_000;
        assertTrue(tookMillis >= ProxyRuntime.NEXT_ATTEMPT_DELAY_MILLIS - 20, "after the delay: " + tookMillis);
        assertTrue(tookMillis < 4000, "before connect_timeout (5 s) ended the first attempt: " + tookMillis);
    }
}
