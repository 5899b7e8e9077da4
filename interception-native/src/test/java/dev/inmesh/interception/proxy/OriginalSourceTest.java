package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import io.netty.channel.unix.DomainSocketAddress;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

class OriginalSourceTest {
    /** virtualInbound with these listener filters (YAML list items, indented for the listener) and one TCP chain. */
    private static Listener inbound(String filters) throws Exception {
        String yaml = """
                static_resources:
                  listeners:
                  - name: virtualInbound
                    address: {socket_address: {address: 0.0.0.0, port_value: 15006}}
                    listener_filters:
                %s
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.tcp_proxy
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                          stat_prefix: s
                          cluster: in
                  clusters:
                  - {name: in, type: ORIGINAL_DST, lb_policy: CLUSTER_PROVIDED}
                """.formatted(filters.indent(4).stripTrailing());
        return new SnapshotHolder().apply(EnvoyConfigReader.read(yaml)).listener("virtualInbound").listener();
    }

    @Test
    void aListenerWithOriginalSrcGivesItsConnectionsTheirRemoteIpWithPortZeroAndItsMark() throws Exception {
        Listener l = inbound("""
                - name: envoy.filters.listener.original_src
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.listener.original_src.v3.OriginalSrc
                    mark: 1337
                """);
        OriginalSource s = OriginalSource.of(l, 9080, new InetSocketAddress("10.77.2.2", 46220));
        assertEquals(new OriginalSource(InetAddress.getByName("10.77.2.2"), 1337), s);
        assertEquals(new InetSocketAddress("10.77.2.2", 0), s.bindAddress());
        assertEquals(new InetSocketAddress("fd00::2", 0),
                OriginalSource.of(l, 9080, new InetSocketAddress("fd00::2", 5000)).bindAddress());
        // as Envoy's filter: a remote address that is not IP is left alone
        assertNull(OriginalSource.of(l, 9080, new DomainSocketAddress("/tmp/inmesh.sock")));
    }

    @Test
    void noOriginalSourceWithoutTheFilterOrWhereItsFilterDisabledMatches() throws Exception {
        assertNull(OriginalSource.of(inbound("- name: envoy.filters.listener.tls_inspector"), 9080,
                new InetSocketAddress("10.77.2.2", 46220)));
        Listener l = inbound("""
                - name: envoy.filters.listener.original_src
                  filter_disabled: {destination_port_range: {start: 15020, end: 15022}}
                """);
        assertNull(OriginalSource.of(l, 15021, new InetSocketAddress("10.77.2.2", 46220)));
        assertEquals(0, OriginalSource.of(l, 9080, new InetSocketAddress("10.77.2.2", 46220)).mark());
    }

    /** The sockets this process holds open now. */
    private static long openSockets() throws IOException {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.filter(fd -> {
                try {
                    return Files.readSymbolicLink(fd).toString().startsWith("socket:");
                } catch (IOException e) {
                    return false; // closed meanwhile
                }
            }).count();
        }
    }

    @Test
    @Timeout(60)
    void anUpstreamThatRefusesTheOriginalSourcesConnectionLeavesNoSocketOpen() throws Exception {
        // a tcp_proxy listener on loopback running original_src: its upstream sockets bind the client's 127.0.0.1
        // (IP_TRANSPARENT needs CAP_NET_ADMIN, which the tests have as root), to a port where nothing listens
        String yaml = TcpRelayTest.config(LoopbackProxy.freePort(), "", "", LoopbackProxy.freePort())
                .replace("    filter_chains:\n", """
                            listener_filters:
                            - name: envoy.filters.listener.original_src
                              typed_config:
                                "@type": type.googleapis.com/%s
                            filter_chains:
                        """.formatted("envoy.extensions.filters.listener.original_src.v3.OriginalSrc"));
        try (LoopbackProxy proxy = new LoopbackProxy(yaml)) {
            refused(proxy);
            long before = openSockets();
            for (int i = 0; i < 20; i++) {
                refused(proxy);
            }
            long after = openSockets();
            // each refused attempt's socket is closed, as Netty's Bootstrap closes a channel whose connect failed
            assertTrue(after < before + 5, "sockets open before: " + before + ", after 20 refusals: " + after);
        }
    }

    /** A connection through {@code proxy} whose upstream refuses it: the proxy closes it. */
    private static void refused(LoopbackProxy proxy) throws IOException {
        try (Socket s = new Socket()) {
            s.connect(proxy.addresses.get(0), 2_000);
            s.setSoTimeout(10_000);
            assertEquals(-1, s.getInputStream().read());
        }
    }
}
