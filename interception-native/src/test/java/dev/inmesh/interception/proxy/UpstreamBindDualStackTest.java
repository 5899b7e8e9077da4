package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A cluster's {@code upstream_bind_config} with an {@code extra_source_addresses} of the other IP version (istiod's
 * {@code 127.0.0.6} and {@code ::6} on the inbound clusters of a dual-stack pod; here 127.0.0.2 and ::1 on loopback):
 * a connection to an IPv4 host binds the IPv4 source, one to an IPv6 host the IPv6 one, as Envoy's default local
 * address selector picks them.
 */
@Timeout(30)
class UpstreamBindDualStackTest {
    private final ExecutorService pool = Executors.newCachedThreadPool();
    private ServerSocket upstream;
    private LoopbackProxy proxy;

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        if (upstream != null) {
            upstream.close();
        }
        pool.shutdownNow();
    }

    /** The address the relayed connection came from, as a server on {@code host} saw it. */
    private String relayedFrom(String host) throws Exception {
        upstream = new ServerSocket();
        upstream.bind(new InetSocketAddress(InetAddress.getByName(host), 0));
        pool.submit(() -> {
            try (Socket c = upstream.accept()) {
                c.getOutputStream().write(c.getInetAddress().getHostAddress().getBytes(StandardCharsets.US_ASCII));
            } catch (IOException e) {
                // closed by the test
            }
            return null;
        });
        int port = upstream.getLocalPort();
        proxy = new LoopbackProxy(TcpRelayTest.config(LoopbackProxy.freePort(), "", """
                    upstream_bind_config:
                      source_address: {address: 127.0.0.2, port_value: 0}
                      extra_source_addresses:
                      - address: {address: "::1", port_value: 0}
                """, port).replace("address: 127.0.0.1, port_value: " + port,
                "address: \"" + host + "\", port_value: " + port));
        try (Socket s = new Socket()) {
            s.connect(proxy.addresses.get(0), 2_000);
            s.setSoTimeout(10_000);
            return new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
        }
    }

    @Test
    void aConnectionToAnIpv4HostBindsTheIpv4SourceAddress() throws Exception {
        assertEquals("127.0.0.2", relayedFrom("127.0.0.1"));
    }

    @Test
    void aConnectionToAnIpv6HostBindsTheExtraIpv6SourceAddress() throws Exception {
        assertEquals("0:0:0:0:0:0:0:1", relayedFrom("::1"));
    }
}
