package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.InvalidResourceException;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A listener's {@code additional_addresses} (istiod's dual-stack listeners also listen on {@code ::}): the standalone
 * proxy binds each address with the listener's filter chains, and a configuration update keeps, adds and removes
 * those sockets as it does the listener's own address.
 */
@Timeout(60)
class ListenerAdditionalAddressesTest {
    private LoopbackProxy proxy;

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
    }

    /**
     * A listener on {@code address:port} and its additional addresses, answering every request with {@code body}:
     * {@link ProxyConfigUpdateTest#direct}'s, moved.
     */
    private static String listener(String address, int port, String additional, String body) {
        String own = "    address: {socket_address: {address: 127.0.0.1, port_value: " + port + "}}\n";
        String moved = "    address: {socket_address: {address: \"" + address + "\", port_value: " + port + "}}\n"
                + (additional.isEmpty() ? "" : "    additional_addresses:\n" + additional.indent(4));
        return "static_resources:\n  listeners:\n" + ProxyConfigUpdateTest.direct("dual", port, body).replace(own, moved);
    }

    private static String at(String ip, int port) {
        return "- address: {socket_address: {address: \"" + ip + "\", port_value: " + port + "}}";
    }

    /** The body of a GET to {@code ip:port} over a new connection, or the I/O failure's class name. */
    private static String get(String ip, int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(ip, port), 2000);
            s.setSoTimeout(10_000);
            s.getOutputStream().write("GET / HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n"
                    .getBytes(StandardCharsets.US_ASCII));
            InputStream in = s.getInputStream();
            String answer = new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
            return answer.substring(answer.indexOf("\r\n\r\n") + 4);
        } catch (IOException e) {
            return e.getClass().getSimpleName();
        }
    }

    /** Waits until {@code ip:port} answers {@code body} (or, for "ConnectException", refuses). */
    private static void await(String ip, int port, String body) throws InterruptedException {
        String last = null;
        for (int i = 0; i < 250; i++) {
            last = get(ip, port);
            if (last.equals(body)) {
                return;
            }
            Thread.sleep(20);
        }
        throw new AssertionError(ip + ":" + port + " answers " + last + ", not " + body);
    }

    @Test
    void everyAddressOfTheListenerServesItsFilterChainsAndAnUpdateKeepsAddsAndRemovesThem() throws Exception {
        int port = LoopbackProxy.freePort();
        int other = LoopbackProxy.freePort();
        proxy = new LoopbackProxy(listener("127.0.0.1", port, at("::1", port) + "\n" + at("127.0.0.2", other),
                "one"));
        assertEquals(3, proxy.addresses.size(), proxy.addresses.toString());
        assertEquals("one", get("127.0.0.1", port));
        assertEquals("one", get("::1", port), "the IPv6 additional address");
        assertEquals("one", get("127.0.0.2", other), "an additional address on another port, as Envoy binds it");
        assertEquals("ConnectException", get("127.0.0.2", port));

        // the same sockets: the listener's new chains on every address
        proxy.snapshots.apply(EnvoyConfigReader.read(listener("127.0.0.1", port,
                at("::1", port) + "\n" + at("127.0.0.2", other), "two")));
        await("::1", port, "two");
        await("127.0.0.2", other, "two");
        await("127.0.0.1", port, "two");

        // an additional address dropped stops accepting; one added is bound
        proxy.snapshots.apply(EnvoyConfigReader.read(listener("127.0.0.1", port, at("127.0.0.3", other), "three")));
        await("127.0.0.3", other, "three");
        await("127.0.0.1", port, "three");
        await("::1", port, "ConnectException");
        await("127.0.0.2", other, "ConnectException");

        // none left: the listener's own address only
        proxy.snapshots.apply(EnvoyConfigReader.read(listener("127.0.0.1", port, "", "four")));
        await("127.0.0.1", port, "four");
        await("127.0.0.3", other, "ConnectException");
    }

    @Test
    void istiodsDualStackShapeBindsTheIpv4AndIpv6WildcardsOfOnePortEachOnItsOwnSocket() throws Exception {
        int port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy(listener("0.0.0.0", port, at("::", port), "both"));
        assertEquals("both", get("127.0.0.1", port));
        assertEquals("both", get("::1", port));
    }

    @Test
    void anAdditionalAddressThatCannotBeBoundRejectsTheConfigurationNamingIt() throws Exception {
        int port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy(listener("127.0.0.1", port, "", "one"));
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1,
                java.net.InetAddress.getByName("::1"))) {
            int busy = taken.getLocalPort();
            InvalidResourceException e = assertThrows(InvalidResourceException.class, () -> proxy.snapshots.apply(
                    EnvoyConfigReader.read(listener("127.0.0.1", port, at("::1", busy), "two"))));
            assertTrue(e.getMessage().startsWith("Listener \"dual\": address: cannot bind '[::1]:" + busy + "'")
                    || e.getMessage().startsWith("Listener \"dual\": address: cannot bind '::1:" + busy + "'"),
                    e.getMessage());
            assertEquals("one", get("127.0.0.1", port), "the last good configuration serves");

            // an address the listener names twice is Envoy's duplicate address
            e = assertThrows(InvalidResourceException.class, () -> proxy.snapshots.apply(EnvoyConfigReader.read(
                    listener("127.0.0.1", port, at("127.0.0.1", port), "two"))));
            assertTrue(e.getMessage().contains("duplicate address"), e.getMessage());
        }
    }
}
