package dev.inmesh.runtime.xds.ads;

import io.envoyproxy.controlplane.cache.v3.SimpleCache;
import io.envoyproxy.controlplane.cache.v3.Snapshot;
import io.envoyproxy.controlplane.server.DiscoveryServerCallbacks;
import io.envoyproxy.controlplane.server.V3DiscoveryServer;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerCredentials;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.TlsServerCredentials;
import dev.inmesh.runtime.testing.LoopbackPorts;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * java-control-plane's xDS server (SimpleCache and V3DiscoveryServer) on grpc-java, on a loopback port, as the ADS
 * client's counterpart in tests. Records every request and response and the request headers.
 */
public final class XdsTestServer implements AutoCloseable {
    public static final String GROUP = "inmesh";
    private static final Metadata.Key<String> AUTHORIZATION =
            Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

    public final SimpleCache<String> cache = new OrderedSimpleCache(GROUP);
    public final List<DiscoveryRequest> requests = new CopyOnWriteArrayList<>();
    public final List<DiscoveryResponse> responses = new CopyOnWriteArrayList<>();
    public final List<DeltaDiscoveryRequest> deltaRequests = new CopyOnWriteArrayList<>();
    public final List<DeltaDiscoveryResponse> deltaResponses = new CopyOnWriteArrayList<>();
    public final List<String> authorizations = new CopyOnWriteArrayList<>();
    /** The streams open now (opened and neither closed nor failed). */
    public final java.util.concurrent.atomic.AtomicInteger openStreams =
            new java.util.concurrent.atomic.AtomicInteger();
    private final Server server;

    private XdsTestServer(int port, Path certChain, Path privateKey) throws IOException {
        DiscoveryServerCallbacks callbacks = new DiscoveryServerCallbacks() {
            @Override
            public void onStreamOpen(long streamId, String typeUrl) {
                openStreams.incrementAndGet();
            }

            @Override
            public void onStreamClose(long streamId, String typeUrl) {
                openStreams.decrementAndGet();
            }

            @Override
            public void onStreamCloseWithError(long streamId, String typeUrl, Throwable error) {
                openStreams.decrementAndGet();
            }

            @Override
            public void onV3StreamRequest(long streamId, DiscoveryRequest request) {
                requests.add(request);
            }

            @Override
            public void onV3StreamDeltaRequest(long streamId, DeltaDiscoveryRequest request) {
                deltaRequests.add(request);
            }

            @Override
            public void onV3StreamDeltaResponse(long streamId, DeltaDiscoveryRequest request,
                                                DeltaDiscoveryResponse response) {
                deltaResponses.add(response);
            }

            @Override
            public void onV3StreamResponse(long streamId, DiscoveryRequest request, DiscoveryResponse response) {
                responses.add(response);
            }
        };
        V3DiscoveryServer xds = new V3DiscoveryServer(callbacks, cache);
        ServerInterceptor headers = new ServerInterceptor() {
            @Override
            public <Q, A> ServerCall.Listener<Q> interceptCall(ServerCall<Q, A> call, Metadata h,
                                                               ServerCallHandler<Q, A> next) {
                String auth = h.get(AUTHORIZATION);
                authorizations.add(auth == null ? "" : auth);
                return next.startCall(call, h);
            }
        };
        InetSocketAddress address = new InetSocketAddress("127.0.0.1", port);
        NettyServerBuilder b;
        if (certChain != null) {
            ServerCredentials creds = TlsServerCredentials.create(certChain.toFile(), privateKey.toFile());
            b = NettyServerBuilder.forAddress(address, creds);
        } else {
            b = NettyServerBuilder.forAddress(address);
        }
        server = b.addService(ServerInterceptors.intercept(xds.getAggregatedDiscoveryServiceImpl(), headers))
                .maxInboundMessageSize(64 * 1024 * 1024)
                .permitKeepAliveTime(1, TimeUnit.MILLISECONDS)
                .permitKeepAliveWithoutCalls(true)
                .build()
                .start();
    }

    /** A plaintext server on an ephemeral loopback port. */
    public static XdsTestServer start() throws IOException {
        return new XdsTestServer(0, null, null);
    }

    /** A plaintext server on a given loopback port (to restart one where it was). */
    public static XdsTestServer start(int port) throws IOException {
        return new XdsTestServer(port, null, null);
    }

    /** A TLS server on a given loopback port. */
    public static XdsTestServer startTls(int port, Path certChain, Path privateKey) throws IOException {
        return new XdsTestServer(port, certChain, privateKey);
    }

    /** A TLS server on an ephemeral loopback port. */
    public static XdsTestServer startTls(Path certChain, Path privateKey) throws IOException {
        return new XdsTestServer(0, certChain, privateKey);
    }

    public int port() {
        return server.getPort();
    }

    public void set(Snapshot snapshot) {
        cache.setSnapshot(GROUP, snapshot);
    }

    /** The first request that matches, waiting up to {@code timeout}. */
    public DiscoveryRequest awaitRequest(Predicate<DiscoveryRequest> p, Duration timeout) throws InterruptedException {
        return awaitFirst(requests, p, timeout);
    }

    /** The first delta request that matches, waiting up to {@code timeout}. */
    public DeltaDiscoveryRequest awaitDeltaRequest(Predicate<DeltaDiscoveryRequest> p, Duration timeout)
            throws InterruptedException {
        return awaitFirst(deltaRequests, p, timeout);
    }

    /** The first delta response that matches, waiting up to {@code timeout}. */
    public DeltaDiscoveryResponse awaitDeltaResponse(Predicate<DeltaDiscoveryResponse> p, Duration timeout)
            throws InterruptedException {
        return awaitFirst(deltaResponses, p, timeout);
    }

    /** The first of {@code seen} (filled by another thread) that matches, waiting up to {@code timeout}. */
    public static <T> T awaitFirst(List<T> seen, Predicate<T> p, Duration timeout) throws InterruptedException {
        long end = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < end) {
            for (T r : seen) {
                if (p.test(r)) {
                    return r;
                }
            }
            Thread.sleep(10);
        }
        throw new AssertionError("none such within " + timeout + "; seen: " + seen);
    }

    /** Stops at once, dropping open streams. */
    @Override
    public void close() {
        stopNow(server);
    }

    /** Stops a grpc-java server at once, waiting up to 5 s for it to end. */
    public static void stopNow(Server server) {
        server.shutdownNow();
        try {
            server.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** A loopback port nothing listens on: {@link LoopbackPorts#freePort()}. */
    public static int freePort() throws IOException {
        return LoopbackPorts.freePort();
    }
}
