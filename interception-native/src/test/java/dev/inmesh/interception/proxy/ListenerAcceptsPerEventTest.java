package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.xds.EnvoyConfigReader;
import io.netty.channel.Channel;
import io.netty.channel.ChannelOption;
import java.io.InputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A listener's {@code max_connections_to_accept_per_socket_event} (istiod 1.28 and later write 1 on the sidecar's
 * {@code virtualOutbound} and {@code virtualInbound}) bounds how many pending connections its socket accepts each
 * time it is ready; without it, every pending one is accepted, as Envoy does.
 */
@Timeout(30)
class ListenerAcceptsPerEventTest {
    private LoopbackProxy proxy;

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
    }

    /** A listener on 127.0.0.1:{@code port} answering every request, with the listener fields {@code fields}. */
    private static String config(int port, String fields) {
        return "static_resources:\n  listeners:\n" + ProxyConfigUpdateTest.direct("accepting", port, "served")
                .replaceFirst("(?m)^([ ]*)address: ", fields.isEmpty() ? "$1address: "
                        : "$1" + fields + "\n$1address: ");
    }

    @SuppressWarnings("deprecation")
    private int acceptsPerRead() {
        Channel ch = proxy.server.channel("accepting");
        return ch.config().getOption(ChannelOption.MAX_MESSAGES_PER_READ);
    }

    private static String get(int port) throws Exception {
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write("GET / HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n"
                    .getBytes(StandardCharsets.US_ASCII));
            InputStream in = s.getInputStream();
            return new String(in.readAllBytes(), StandardCharsets.US_ASCII);
        }
    }

    @Test
    void istiodsOneConnectionPerSocketEventIsTheServerChannelsAcceptsPerReadAndConnectionsAreServed()
            throws Exception {
        int port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy(config(port, "max_connections_to_accept_per_socket_event: 1"));
        assertEquals(1, acceptsPerRead());
        for (int i = 0; i < 3; i++) {
            String answer = get(port);
            assertTrue(answer.startsWith("HTTP/1.1 200") && answer.endsWith("served"), answer);
        }
    }

    @Test
    void withoutItEveryPendingConnectionIsAcceptedAsEnvoyDoesNotNettysSixteen() throws Exception {
        proxy = new LoopbackProxy(config(LoopbackProxy.freePort(), ""));
        assertEquals(Integer.MAX_VALUE, acceptsPerRead());
    }

    @Test
    void anUpdateThatKeepsTheSocketAppliesTheNewBoundToTheBoundSocket() throws Exception {
        int port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy(config(port, "max_connections_to_accept_per_socket_event: 1"));
        Channel before = proxy.server.channel("accepting");
        proxy.snapshots.apply(EnvoyConfigReader.read(config(port, "max_connections_to_accept_per_socket_event: 3")));
        assertSame(before, proxy.server.channel("accepting"));
        assertEquals(3, acceptsPerRead());
        proxy.snapshots.apply(EnvoyConfigReader.read(config(port, "")));
        assertEquals(Integer.MAX_VALUE, acceptsPerRead());
        String answer = get(port);
        assertTrue(answer.startsWith("HTTP/1.1 200"), answer);
    }
}
