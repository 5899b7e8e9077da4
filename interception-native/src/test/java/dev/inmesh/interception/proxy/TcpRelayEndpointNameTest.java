package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.inmesh.runtime.router.Router;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.upstream.UpstreamEnvironment;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.dns.AddressResolverOptions;
import io.vertx.core.transport.Transport;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A tcp_proxy cluster endpoint given by name: the relay resolves it with Vert.x's non-blocking resolver (here its
 * hosts table), never with the JDK's lookup on the event loop.
 */
@Timeout(60)
class TcpRelayEndpointNameTest {

    @Test
    void anEndpointNamedByHostNameIsResolvedByVertxsResolverNotOnTheEventLoop() throws Exception {
        // a name only this Vert.x's hosts table knows: the JDK's resolver (blocking, on the event loop) cannot find it
        String name = "relay-upstream.inmesh.invalid";
        Vertx vertx = Vertx.builder().with(new VertxOptions().setAddressResolverOptions(new AddressResolverOptions()
                        .setHostsValue(Buffer.buffer("127.0.0.1 " + name + "\n"))))
                .withTransport(Transport.EPOLL.available() ? Transport.EPOLL : Transport.NIO).build();
        try (ServerSocket upstream = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
            int port = LoopbackProxy.freePort();
            String yaml = TcpRelayTest.config(port, "", "", upstream.getLocalPort())
                    .replace("address: 127.0.0.1, port_value: " + upstream.getLocalPort(),
                            "address: " + name + ", port_value: " + upstream.getLocalPort());
            SnapshotHolder snapshots = new SnapshotHolder(UpstreamEnvironment.of(vertx));
            snapshots.apply(EnvoyConfigReader.read(yaml));
            ProxyServer server = new ProxyServer(vertx, snapshots, new Router(vertx, Router.Options.DEFAULTS, r -> {
            }));
            try {
                List<InetSocketAddress> addresses = server.bind();
                CompletableFuture<String> received = CompletableFuture.supplyAsync(() -> {
                    try (Socket s = upstream.accept()) {
                        String got = new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                        s.getOutputStream().write(("got " + got).getBytes(StandardCharsets.UTF_8));
                        return got;
                    } catch (IOException e) {
                        throw new RuntimeException(e);
                    }
                });
                try (Socket client = new Socket()) {
                    client.connect(addresses.get(0), 2_000);
                    client.setSoTimeout(20_000);
                    client.getOutputStream().write("ping".getBytes(StandardCharsets.UTF_8));
                    client.shutdownOutput();
                    assertEquals("got ping", new String(client.getInputStream().readAllBytes(),
                            StandardCharsets.UTF_8));
                }
                assertEquals("ping", received.get(10, TimeUnit.SECONDS));
            } finally {
                server.close();
                snapshots.close();
            }
        } finally {
            vertx.close().await(10, TimeUnit.SECONDS);
        }
    }
}
