package dev.inmesh.runtime.xds.sds;

import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.xds.ads.OrderedSimpleCache;
import io.envoyproxy.controlplane.cache.v3.SimpleCache;
import io.envoyproxy.controlplane.cache.v3.Snapshot;
import io.envoyproxy.controlplane.server.DiscoveryServerCallbacks;
import io.envoyproxy.controlplane.server.V3DiscoveryServer;
import io.envoyproxy.envoy.config.core.v3.DataSource;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.Secret;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.TlsCertificate;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.grpc.ForwardingServerCall;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.channel.epoll.Epoll;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.grpc.netty.shaded.io.netty.channel.unix.DomainSocketAddress;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * java-control-plane's {@code SecretDiscoveryService} (V3DiscoveryServer over a SimpleCache) on grpc-java, on a
 * loopback port or a Unix domain socket, recording every request.
 */
public final class SdsTestServer implements AutoCloseable {
    /** The node the clients of the tests present. */
    public static final io.envoyproxy.envoy.config.core.v3.Node NODE = dev.inmesh.runtime.xds.ads.NodeBuilder.build(
            dev.inmesh.runtime.xds.ads.NodeOptions.of("reviews-v1-abc", "default", "10.0.0.7"));
    /**
     * A TLS context's {@code sds_config} as Istio's sidecars get it: cluster {@code sds-grpc}, waiting without end
     * ({@code initial_fetch_timeout: 0s}); YAML at column 0.
     */
    public static final String SDS_GRPC_CONFIG = """
            sds_config:
              initial_fetch_timeout: 0s
              resource_api_version: V3
              api_config_source:
                api_type: GRPC
                transport_api_version: V3
                set_node_on_first_message_only: true
                grpc_services: [{envoy_grpc: {cluster_name: sds-grpc}}]""";
    static final String GROUP = "inmesh";
    final SimpleCache<String> cache = new OrderedSimpleCache(GROUP);
    public final List<DiscoveryRequest> requests = new CopyOnWriteArrayList<>();
    /** The streams that ended, by the server's id, in the order they ended. */
    public final List<Long> ended = new CopyOnWriteArrayList<>();
    /** Sent on a stream just before its first response when set, once: what a confused server would send. */
    volatile DiscoveryResponse before;
    private final Server server;
    private final EpollEventLoopGroup group;

    private SdsTestServer(Path socket) throws IOException {
        DiscoveryServerCallbacks callbacks = new DiscoveryServerCallbacks() {
            @Override
            public void onV3StreamRequest(long streamId, DiscoveryRequest request) {
                requests.add(request);
            }

            @Override
            public void onStreamClose(long streamId, String typeUrl) {
                ended.add(streamId);
            }

            @Override
            public void onStreamCloseWithError(long streamId, String typeUrl, Throwable error) {
                ended.add(streamId); // a client's cancel
            }

            @Override
            public void onV3StreamDeltaRequest(long streamId,
                    io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest request) {
                // SotW only
            }
        };
        var sds = new V3DiscoveryServer(callbacks, cache).getSecretDiscoveryServiceImpl();
        NettyServerBuilder b;
        if (socket == null) {
            group = null;
            b = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0));
        } else {
            group = new EpollEventLoopGroup(1);
            b = NettyServerBuilder.forAddress(new DomainSocketAddress(socket.toString()))
                    .channelType(EpollServerDomainSocketChannel.class).bossEventLoopGroup(group)
                    .workerEventLoopGroup(group);
        }
        server = b.addService(ServerInterceptors.intercept(sds, new ServerInterceptor() {
            @Override
            public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                                                              ServerCallHandler<Q, R> next) {
                return next.startCall(new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
                    @Override
                    @SuppressWarnings("unchecked")
                    public void sendMessage(R message) {
                        DiscoveryResponse first = before;
                        before = null;
                        if (first != null) {
                            super.sendMessage((R) first);
                        }
                        super.sendMessage(message);
                    }
                }, headers);
            }
        })).build().start();
    }

    public static SdsTestServer start() throws IOException {
        return new SdsTestServer(null);
    }

    /** A server on a Unix domain socket (grpc-java's own epoll transport). */
    public static SdsTestServer startOn(Path socket) throws IOException {
        return new SdsTestServer(socket);
    }

    /**
     * A bootstrap's static cluster {@code sds-grpc} at {@code address} (an Envoy address in YAML: a socket address,
     * or the agent's {@code pipe}), as Istio's agent writes it: a YAML list item of {@code clusters} at column 2.
     */
    public static String sdsGrpcCluster(String address) {
        return """
                  - name: sds-grpc
                    type: STATIC
                    connect_timeout: 1s
                    load_assignment:
                      cluster_name: sds-grpc
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: %s}
                """.formatted(address);
    }

    /** {@link #sdsGrpcCluster(String)} at this server's loopback port. */
    public String sdsGrpcCluster() {
        return sdsGrpcCluster("{socket_address: {address: 127.0.0.1, port_value: " + port() + "}}");
    }

    /** Whether a Unix domain socket server can be started here. */
    public static boolean unixSockets() {
        return Epoll.isAvailable();
    }

    public int port() {
        return server.getPort();
    }

    /** Serves these secrets as version {@code version}. */
    public void set(String version, Secret... secrets) {
        cache.setSnapshot(GROUP, Snapshot.create(List.of(), List.of(), List.of(), List.of(), List.of(secrets),
                version));
    }

    /**
     * Serves {@code secrets} as version {@code version} 300 ms after a client first asks for {@code name}, from a
     * thread started now (join it), as an agent whose certificate comes after the proxy started.
     */
    public Thread setOnceAsked(String name, String version, Secret... secrets) {
        Thread later = new Thread(() -> {
            try {
                awaitRequest(r -> r.getResourceNamesList().equals(List.of(name)), Duration.ofSeconds(20));
                Thread.sleep(300);
            } catch (InterruptedException e) {
                return;
            }
            set(version, secrets);
        });
        later.start();
        return later;
    }

    public static Secret certificate(String name, TestCertificates.Issued own) {
        return Secret.newBuilder().setName(name).setTlsCertificate(TlsCertificate.newBuilder()
                .setCertificateChain(DataSource.newBuilder().setInlineString(own.certificatePem()))
                .setPrivateKey(DataSource.newBuilder().setInlineString(own.keyPem()))).build();
    }

    public static Secret root(String name, TestCertificates.Issued ca) {
        return Secret.newBuilder().setName(name).setValidationContext(CertificateValidationContext.newBuilder()
                .setTrustedCa(DataSource.newBuilder().setInlineString(ca.certificatePem()))).build();
    }

    public DiscoveryRequest awaitRequest(Predicate<DiscoveryRequest> p, Duration timeout)
            throws InterruptedException {
        return dev.inmesh.runtime.xds.ads.XdsTestServer.awaitFirst(requests, p, timeout);
    }

    @Override
    public void close() {
        dev.inmesh.runtime.xds.ads.XdsTestServer.stopNow(server);
        if (group != null) {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        }
    }
}
