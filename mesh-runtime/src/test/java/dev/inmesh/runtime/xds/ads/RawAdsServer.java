package dev.inmesh.runtime.xds.ads;

import com.google.protobuf.Any;
import com.google.protobuf.Message;
import dev.inmesh.runtime.xds.ResourceType;
import io.envoyproxy.envoy.service.discovery.v3.AggregatedDiscoveryServiceGrpc;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
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
 * each request gets the responses {@code answer} gives for it, none for an empty list. Records both. Over
 * incremental xDS (DeltaAggregatedResources) each delta request gets the responses {@code deltaAnswer} gives.
 */
public final class RawAdsServer implements AutoCloseable {
    public final List<DiscoveryRequest> requests = new CopyOnWriteArrayList<>();
    final List<DiscoveryResponse> responses = new CopyOnWriteArrayList<>();
    final List<DeltaDiscoveryRequest> deltaRequests = new CopyOnWriteArrayList<>();
    final List<DeltaDiscoveryResponse> deltaResponses = new CopyOnWriteArrayList<>();
    private final Server server;
    private volatile StreamObserver<DiscoveryResponse> latest;
    /** How many state-of-the-world streams clients have opened. */
    final java.util.concurrent.atomic.AtomicInteger streams = new java.util.concurrent.atomic.AtomicInteger();
    private volatile StreamObserver<DeltaDiscoveryResponse> latestDelta;

    public RawAdsServer(Function<DiscoveryRequest, List<DiscoveryResponse>> answer) throws IOException {
        this(answer, r -> List.of());
    }

    RawAdsServer(Function<DiscoveryRequest, List<DiscoveryResponse>> answer,
                 Function<DeltaDiscoveryRequest, List<DeltaDiscoveryResponse>> deltaAnswer) throws IOException {
        server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(new AggregatedDiscoveryServiceGrpc.AggregatedDiscoveryServiceImplBase() {
                    @Override
                    public StreamObserver<DiscoveryRequest> streamAggregatedResources(
                            StreamObserver<DiscoveryResponse> out) {
                        latest = out;
                        streams.incrementAndGet();
                        return answering(out, requests, responses, answer);
                    }

                    @Override
                    public StreamObserver<DeltaDiscoveryRequest> deltaAggregatedResources(
                            StreamObserver<DeltaDiscoveryResponse> out) {
                        latestDelta = out;
                        return answering(out, deltaRequests, deltaResponses, deltaAnswer);
                    }
                }).build().start();
    }

    /** A server stream that records each request and answers it, recording the answers. */
    private static <Q, R> StreamObserver<Q> answering(StreamObserver<R> out, List<Q> seen, List<R> sent,
                                                      Function<Q, List<R>> answer) {
        return new StreamObserver<>() {
            @Override
            public void onNext(Q r) {
                seen.add(r);
                for (R response : answer.apply(r)) {
                    sent.add(response);
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

    /**
     * Over delta xDS: answers each request that is no ACK or NACK (no nonce) with the resources of {@code byType}
     * it newly asks for, each in its {@code Resource} wrapper at version 1 (all of its type for the first request
     * of a type that names none: a wildcard one); {@code alsoWithClusters} go out before the clusters.
     */
    static Function<DeltaDiscoveryRequest, List<DeltaDiscoveryResponse>> deltaOnce(
            Map<String, List<? extends Message>> byType, List<DeltaDiscoveryResponse> alsoWithClusters) {
        java.util.Set<String> asked = java.util.concurrent.ConcurrentHashMap.newKeySet();
        java.util.concurrent.atomic.AtomicInteger nonces = new java.util.concurrent.atomic.AtomicInteger();
        return r -> {
            List<? extends Message> resources = byType.get(r.getTypeUrl());
            if (!r.getResponseNonce().isEmpty() || resources == null) {
                return List.of();
            }
            boolean wildcard = asked.add(r.getTypeUrl()) && r.getResourceNamesSubscribeCount() == 0;
            DeltaDiscoveryResponse.Builder b = DeltaDiscoveryResponse.newBuilder().setTypeUrl(r.getTypeUrl())
                    .setSystemVersionInfo("1").setNonce("nonce-" + nonces.incrementAndGet());
            for (Message m : resources) {
                String name = XdsFixtures.name(m);
                if (wildcard || r.getResourceNamesSubscribeList().contains(name)) {
                    b.addResources(io.envoyproxy.envoy.service.discovery.v3.Resource.newBuilder().setName(name)
                            .setVersion("1").setResource(Any.pack(m)));
                }
            }
            List<DeltaDiscoveryResponse> out = new ArrayList<>();
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

    /** Sends {@code response} on the latest delta stream, as a server pushes a change. */
    void push(DeltaDiscoveryResponse response) {
        StreamObserver<DeltaDiscoveryResponse> out = latestDelta;
        deltaResponses.add(response);
        synchronized (out) {
            out.onNext(response);
        }
    }

    /**
     * Ends the latest stream with {@code status} (OK: as istiod ends a stream past its maximum connection age, else as
     * a failing server); the client reconnects.
     */
    void endStream(io.grpc.Status status) {
        StreamObserver<DiscoveryResponse> out = latest;
        synchronized (out) {
            if (status.isOk()) {
                out.onCompleted();
            } else {
                out.onError(status.asRuntimeException());
            }
        }
    }

    /** Ends the latest delta stream, as a server going away does; the client reconnects. */
    void endDeltaStream() {
        StreamObserver<DeltaDiscoveryResponse> out = latestDelta;
        synchronized (out) {
            out.onCompleted();
        }
    }

    public int port() {
        return server.getPort();
    }

    @Override
    public void close() throws InterruptedException {
        server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
}
