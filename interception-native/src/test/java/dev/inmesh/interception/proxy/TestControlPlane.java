package dev.inmesh.interception.proxy;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inmesh.runtime.xds.EnvoyJson;
import dev.inmesh.runtime.xds.ads.OrderedSimpleCache;
import io.envoyproxy.controlplane.cache.v3.SimpleCache;
import io.envoyproxy.controlplane.cache.v3.Snapshot;
import io.envoyproxy.controlplane.server.V3DiscoveryServer;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.channel.nio.NioEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.socket.nio.NioServerSocketChannel;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/**
 * A control plane for the proxy's ADS tests: java-control-plane's server (as istiod would serve a sidecar), giving
 * every node the same snapshot of resources, and keeping the requests it received.
 */
final class TestControlPlane implements AutoCloseable {
    private static final String GROUP = "proxy";

    private final SimpleCache<String> cache = new OrderedSimpleCache(GROUP);
    /** Every DiscoveryRequest received, in order. */
    final List<DiscoveryRequest> requests = new CopyOnWriteArrayList<>();
    private final Server server;
    private final NioEventLoopGroup loops = new NioEventLoopGroup(1);

    /**
     * Starts the server on {@code address} (port 0: any). Its own event loop binds the socket, on a thread the
     * calling thread starts: called in a network namespace ({@code NetnsSupport#inside}), it listens in that one.
     */
    TestControlPlane(InetSocketAddress address) throws IOException {
        V3DiscoveryServer xds = new V3DiscoveryServer(new io.envoyproxy.controlplane.server.DiscoveryServerCallbacks() {
            @Override
            public void onV3StreamRequest(long streamId, DiscoveryRequest request) {
                requests.add(request);
            }

            @Override
            public void onV3StreamDeltaRequest(long streamId,
                                               io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest r) {}
        }, cache);
        server = NettyServerBuilder.forAddress(address).bossEventLoopGroup(loops).workerEventLoopGroup(loops)
                // an IPv4 socket: a dual-stack one does not take IPv4 connections from another namespace everywhere
                .channelFactory(() -> new NioServerSocketChannel(java.nio.channels.spi.SelectorProvider.provider(),
                        io.grpc.netty.shaded.io.netty.channel.socket.InternetProtocolFamily.IPv4))
                .addService(xds.getAggregatedDiscoveryServiceImpl()).build()
                .start();
    }

    int port() {
        return server.getPort();
    }

    /** Serves these resources, all under {@code version}, in place of what was served before. */
    void serve(String version, List<Listener> listeners, List<RouteConfiguration> routes, List<Cluster> clusters,
               List<ClusterLoadAssignment> endpoints) {
        serve(version, listeners, routes, clusters, endpoints, List.of());
    }

    /** The same, with SDS {@code secrets} on the ADS stream. */
    void serve(String version, List<Listener> listeners, List<RouteConfiguration> routes, List<Cluster> clusters,
               List<ClusterLoadAssignment> endpoints,
               List<io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.Secret> secrets) {
        cache.setSnapshot(GROUP, Snapshot.create(clusters, version, endpoints, version, listeners, version, routes,
                version, secrets, version));
    }

    /** Resources of the tests' YAML, each written as a one-element list (as the other proxy tests write them). */
    static <M extends com.google.protobuf.Message> List<M> parse(List<String> yamls, Class<M> type) throws Exception {
        List<M> out = new ArrayList<>();
        for (String yaml : yamls) {
            out.addAll(parse(EnvoyJson.tree(yaml), type));
        }
        return out;
    }

    /** The resources of a YAML list. */
    static <M extends com.google.protobuf.Message> List<M> parse(JsonNode list, Class<M> type) throws Exception {
        List<M> out = new ArrayList<>();
        for (JsonNode node : list) {
            out.add(EnvoyJson.toMessage(node, type));
        }
        return out;
    }

    @Override
    public void close() throws InterruptedException {
        server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        loops.shutdownGracefully(100, 1000, TimeUnit.MILLISECONDS).await(10, TimeUnit.SECONDS);
    }
}
