package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A {@code tcp_proxy}'s {@code hash_policy} {@code source_ip} (istiod's for a DestinationRule's
 * {@code consistentHash.useSourceIp} on a TCP port) in front of a RING_HASH cluster: every connection from one
 * address is relayed to one host; without it, connections spread over the ring.
 */
@Timeout(60)
class TcpSourceIpHashTest {
    private static final int CONNECTIONS = 30;
    private final List<ServerSocket> upstreams = new ArrayList<>();
    private final ExecutorService pool = Executors.newCachedThreadPool();
    private LoopbackProxy proxy;

    @BeforeEach
    void start() throws Exception {
        for (int i = 0; i < 3; i++) {
            ServerSocket s = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
            upstreams.add(s);
            String name = "host" + i;
            pool.submit(() -> {
                // each relayed connection is told the host's name, then closed
                for (int n = 0; n < 10 * CONNECTIONS; n++) {
                    try (Socket c = s.accept()) {
                        c.getOutputStream().write(name.getBytes(StandardCharsets.US_ASCII));
                    } catch (IOException e) {
                        return null;
                    }
                }
                return null;
            });
        }
    }

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        for (ServerSocket s : upstreams) {
            s.close();
        }
        pool.shutdownNow();
    }

    /** The hosts {@link #CONNECTIONS} connections reached through a ring hash relay with {@code hash}. */
    private Set<String> reached(String hash) throws Exception {
        proxy = new LoopbackProxy(TcpRelayTest.config(LoopbackProxy.freePort(), hash, "    lb_policy: RING_HASH",
                upstreams.stream().mapToInt(ServerSocket::getLocalPort).toArray()));
        Set<String> names = new HashSet<>();
        for (int i = 0; i < CONNECTIONS; i++) {
            try (Socket s = new Socket()) {
                s.connect(proxy.addresses.get(0), 2_000);
                s.setSoTimeout(10_000);
                names.add(new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII));
            }
        }
        return names;
    }

    @Test
    void everyConnectionFromOneSourceAddressGoesToOneHost() throws Exception {
        Set<String> names = reached("          hash_policy: [{source_ip: {}}]");
        assertEquals(1, names.size(), names.toString());
        assertTrue(names.iterator().next().startsWith("host"), names.toString());
    }

    @Test
    void withoutTheHashPolicyConnectionsSpreadOverTheRing() throws Exception {
        // a connection without a hash takes a random place on the ring: 30 on one of three hosts by chance is 3^-29
        assertTrue(reached("").size() > 1);
    }
}
