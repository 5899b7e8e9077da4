package dev.inmesh.interception.proxy;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.endpoint.LbEndpoint;
import dev.inmesh.api.config.endpoint.LocalityLbEndpoints;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.Host;
import dev.inmesh.runtime.upstream.LbContext;
import dev.inmesh.runtime.upstream.OriginalSrcBind;
import dev.inmesh.runtime.upstream.UpstreamCluster;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.net.NetClientOptions;
import io.vertx.core.transport.Transport;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The shared router's pools on the proxy's transport, for requests from an original source: each source's
 * connections bind it and carry its requests only, as Envoy keys its pools by the original_src socket options.
 */
class OriginalSourceTransportTest {
    private Vertx vertx;
    private ClusterManager clusters;

    @AfterEach
    void stop() throws Exception {
        if (clusters != null) {
            clusters.close();
        }
        if (vertx != null) {
            vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    /**
     * A Vert.x on the proxy's {@code transport} with a server on 127.0.0.1 that answers each request with its
     * connection's peer address and port, and a cluster of that server whose bind address is 127.0.0.6 (as istiod's
     * inbound clusters).
     */
    private UpstreamCluster cluster(Transport transport) throws Exception {
        Assumptions.assumeTrue(transport.available(), () -> String.valueOf(transport.unavailabilityCause()));
        vertx = Vertx.builder().with(new VertxOptions().setEventLoopPoolSize(1))
                .withTransport(OriginalSourceTransport.wrap(transport)).build();
        HttpServer server = vertx.createHttpServer()
                .requestHandler(req -> req.response().end(req.connection().remoteAddress().toString()))
                .listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        ClusterLoadAssignment inline = new ClusterLoadAssignment("in", List.of(new LocalityLbEndpoints(null,
                List.of(new LbEndpoint(new SocketAddress("127.0.0.1", server.actualPort()), "", null, 1, null)), 1,
                0)), 140);
        Cluster cluster = Cluster.builder("in", DiscoveryType.STATIC)
                .upstreamBindAddress(new SocketAddress("127.0.0.6", 0)).loadAssignment(inline).build();
        clusters = ClusterManager.create(vertx, Map.of("in", cluster), Map.of());
        return clusters.cluster("in");
    }

    /** The peer (ip:port) the server saw for a request through {@code client}. */
    private String peer(HttpClient client) throws Exception {
        return onEventLoop(vertx, () -> client.request(HttpMethod.GET, "/")
                .compose(req -> req.send().compose(resp -> resp.body())))
                .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS).toString();
    }

    private static String ip(String peer) {
        return peer.substring(0, peer.lastIndexOf(':'));
    }

    @ParameterizedTest
    @ValueSource(strings = {"EPOLL", "IO_URING"})
    void eachSourceHasConnectionsOfItsOwnThatBindItAndAreReusedForItsNextRequests(String name) throws Exception {
        UpstreamCluster c = cluster(name.equals("EPOLL") ? Transport.EPOLL : Transport.IO_URING);
        Host host = c.chooseHost(LbContext.NONE);
        OriginalSrcBind a = new OriginalSrcBind("127.0.0.2", 1337);
        OriginalSrcBind b = new OriginalSrcBind("127.0.0.3", 1337);
        HttpClient fromA = c.httpClient(host, false, null, a);
        String first = peer(fromA);
        assertEquals("127.0.0.2", ip(first));
        // the same source: the same pool, whose connection carries the next request (the same peer port)
        assertSame(fromA, c.httpClient(host, false, null, new OriginalSrcBind("127.0.0.2", 1337)));
        assertEquals(first, peer(c.httpClient(host, false, null, a)));
        // another source, or the same address with another mark: a connection of its own
        HttpClient fromB = c.httpClient(host, false, null, b);
        assertNotSame(fromA, fromB);
        assertEquals("127.0.0.3", ip(peer(fromB)));
        assertNotSame(fromA, c.httpClient(host, false, null, new OriginalSrcBind("127.0.0.2", 0)));
        // a request of no original source: the cluster's bind address, on the host's own pool
        assertEquals("127.0.0.6", ip(peer(c.httpClient(host, false, null, null))));
        assertEquals(3, c.circuitBreakers().openConnections());
    }

    @ParameterizedTest
    @ValueSource(strings = {"EPOLL", "NIO"})
    void onlyAChannelOfAnOriginalSourceGetsAHandlerAndNioStaysNioForVertx(String name) throws Exception {
        Transport transport = name.equals("EPOLL") ? Transport.EPOLL : Transport.NIO;
        Assumptions.assumeTrue(transport.available(), () -> String.valueOf(transport.unavailabilityCause()));
        var implementation = OriginalSourceTransport.wrap(transport).implementation();
        String source = new OriginalSrcBind("127.0.0.2", 1337).localAddress();
        for (String local : new String[] {null, "127.0.0.6", source, null}) {
            io.netty.bootstrap.Bootstrap bootstrap = new io.netty.bootstrap.Bootstrap();
            implementation.configure(new NetClientOptions().setLocalAddress(local), 1000, false, bootstrap);
            io.netty.channel.Channel ch = implementation.channelFactory(false).newChannel();
            try {
                // the common path: the wrapped transport's channel as it is, nothing to add nor to take out
                assertEquals(source.equals(local), ch.pipeline().first() != null, String.valueOf(local));
            } finally {
                ch.unsafe().closeForcibly();
            }
        }
        vertx = Vertx.builder().withTransport(OriginalSourceTransport.wrap(transport)).build();
        assertEquals(name.equals("EPOLL"), vertx.isNativeTransportEnabled());
        assertEquals(name, IoTransport.of((io.vertx.core.internal.VertxInternal) vertx).name());
    }

    @Test
    void aSocketThatCannotTakeTheOptionsFailsTheConnectionWithTheReasonRatherThanLeavingFromTheClustersAddress()
            throws Exception {
        // NIO's sockets give no descriptor to set IP_TRANSPARENT on; without CAP_NET_ADMIN the native ones refuse it
        UpstreamCluster c = cluster(Transport.NIO);
        Host host = c.chooseHost(LbContext.NONE);
        ExecutionException e = assertThrows(ExecutionException.class,
                () -> peer(c.httpClient(host, false, null, new OriginalSrcBind("127.0.0.2", 1337))));
        OriginalSrcBind.Refused refused = assertInstanceOf(OriginalSrcBind.Refused.class, e.getCause());
        assertEquals("original_src needs the epoll or io_uring transport (not NioSocketChannel)",
                refused.getMessage());
        assertEquals(IoTransport.NIO, IoTransport.of((io.vertx.core.internal.VertxInternal) vertx));
    }
}
