package dev.inmesh.runtime.xds.ads;

import com.google.protobuf.Any;
import com.google.protobuf.Message;
import dev.inmesh.runtime.xds.ResourceType;
import io.envoyproxy.envoy.service.discovery.v3.AggregatedDiscoveryServiceGrpc;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * An ADS server on loopback whose answers a test writes by hand (what java-control-plane's cache would not send):
 * each request gets the responses {@code answer} gives for it, none for an empty list. Records both.
 */
final class RawAdsServer implements AutoCloseable {
    final List<DiscoveryRequest> requests = new CopyOnWriteArrayList<>();
    final List<DiscoveryResponse> responses = new CopyOnWriteArrayList<>();
    private final Server server;
    private volatile StreamObserver<DiscoveryResponse> latest;

    RawAdsServer(Function<DiscoveryRequest, List<DiscoveryResponse>> answer) throws IOException {
        server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(new AggregatedDiscoveryServiceGrpc.AggregatedDiscoveryServiceImplBase() {
                    @Override
                    public StreamObserver<DiscoveryRequest> streamAggregatedResources(
                            StreamObserver<DiscoveryResponse> out) {
                        latest = out;
                        return new StreamObserver<>() {
                            @Override
                            public void onNext(DiscoveryRequest r) {
                                requests.add(r);
                                for (DiscoveryResponse response : answer.apply(r)) {
                                    responses.add(response);
                                    synchronized (out) {
                                        out.onNext(response);
                                    }
                                }
                            }

                            @Override
                            public void onError(Throwable t) {
                                // the client went away
                            }

                            @Override
                            public void onCompleted() {
                                out.onCompleted();
                            }
                        };
                    }
                }).build().start();
    }

    /**
     * Answers each type's first request on a stream with its resources in {@code byType} at version 1, each made
     * by {@code pack}, once: an ACK or a NACK gets no answer, as istiod, which pushes again only when its
     * configuration changes. {@code alsoWithClusters} go out before the clusters.
     */
    static Function<DiscoveryRequest, List<DiscoveryResponse>> once(Map<String, List<? extends Message>> byType,
            Function<Message, Any> pack, List<DiscoveryResponse> alsoWithClusters) {
        return r -> {
            List<? extends Message> resources = byType.get(r.getTypeUrl());
            if (!r.getResponseNonce().isEmpty() || resources == null) {
                return List.of();
            }
            DiscoveryResponse.Builder b = DiscoveryResponse.newBuilder().setTypeUrl(r.getTypeUrl())
                    .setVersionInfo("1").setNonce("nonce-" + r.getTypeUrl());
            resources.forEach(m -> b.addResources(pack.apply(m)));
            List<DiscoveryResponse> out = new ArrayList<>();
            if (r.getTypeUrl().equals(ResourceType.CLUSTER.typeUrl())) {
                out.addAll(alsoWithClusters);
            }
            out.add(b.build());
            return out;
        };
    }

    /** Sends {@code response} on the latest stream, as a server pushes a change. */
    void push(DiscoveryResponse response) {
        StreamObserver<DiscoveryResponse> out = latest;
        responses.add(response);
        synchronized (out) {
            out.onNext(response);
        }
    }

    int port() {
        return server.getPort();
    }

    @Override
    public void close() throws InterruptedException {
        server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
}
