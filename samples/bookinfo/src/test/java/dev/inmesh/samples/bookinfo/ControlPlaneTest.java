package dev.inmesh.samples.bookinfo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.xds.ResourceType;
import dev.inmesh.runtime.xds.ads.AdsClient;
import dev.inmesh.runtime.xds.ads.AdsOptions;
import dev.inmesh.runtime.xds.ads.NodeOptions;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.service.discovery.v3.AggregatedDiscoveryServiceGrpc;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The bookinfo control plane, spoken to as an Envoy would: one ADS stream, requests, ACKs and pushes. */
class ControlPlaneTest {
    static final Node NODE = Node.newBuilder().setId("sidecar~127.0.0.10~productpage-v1-10.default~default.svc"
            + ".cluster.local").setCluster("productpage.default").build();

    ControlPlane cp;
    ManagedChannel channel;
    BlockingQueue<DiscoveryResponse> responses = new LinkedBlockingQueue<>();
    StreamObserver<DiscoveryRequest> stream;

    @BeforeEach
    void start() throws Exception {
        cp = ControlPlane.start(Bookinfo.defaultMeshDir(), "127.0.0.1", 0);
        channel = NettyChannelBuilder.forAddress("127.0.0.1", cp.port()).usePlaintext().build();
        stream = AggregatedDiscoveryServiceGrpc.newStub(channel).streamAggregatedResources(
                new StreamObserver<>() {
                    @Override
                    public void onNext(DiscoveryResponse r) {
                        responses.add(r);
                    }

                    @Override
                    public void onError(Throwable t) {
                    }

                    @Override
                    public void onCompleted() {
                    }
                });
    }

    @AfterEach
    void stop() throws Exception {
        if (stream != null) {
            stream.onCompleted();
        }
        if (channel != null) {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        if (cp != null) {
            cp.close();
        }
    }

    DiscoveryResponse request(ResourceType type, List<String> names, DiscoveryResponse ackOf) throws Exception {
        DiscoveryRequest.Builder r = DiscoveryRequest.newBuilder().setNode(NODE).setTypeUrl(type.typeUrl())
                .addAllResourceNames(names);
        if (ackOf != null) {
            r.setVersionInfo(ackOf.getVersionInfo()).setResponseNonce(ackOf.getNonce());
        }
        stream.onNext(r.build());
        return ackOf == null ? responses.poll(10, TimeUnit.SECONDS) : null;
    }

    static Map<String, Integer> weights(DiscoveryResponse rds) throws Exception {
        RouteConfiguration rc = rds.getResources(0).unpack(RouteConfiguration.class);
        Map<String, Integer> w = new LinkedHashMap<>();
        for (var vh : rc.getVirtualHostsList()) {
            if (vh.getName().equals("reviews.default.svc.cluster.local:9080")) {
                for (var route : vh.getRoutesList()) {
                    if (route.getRoute().hasWeightedClusters()) {
                        for (var c : route.getRoute().getWeightedClusters().getClustersList()) {
                            w.put(ControlPlane.subset(c.getName()), c.getWeight().getValue());
                        }
                    }
                }
            }
        }
        return w;
    }

    @Test
    void servesEveryResourceOfTheMeshDirectoryOverAds() throws Exception {
        DiscoveryResponse cds = request(ResourceType.CLUSTER, List.of(), null);
        assertNotNull(cds);
        assertEquals(ResourceType.CLUSTER.typeUrl(), cds.getTypeUrl());
        // 10 service and subset clusters, passthrough, blackhole, 4 inbound clusters, inbound passthrough
        assertEquals(17, cds.getResourcesCount());
        DiscoveryResponse lds = request(ResourceType.LISTENER, List.of(), null);
        assertEquals(2, lds.getResourcesCount()); // 0.0.0.0_9080 and virtualInbound
        DiscoveryResponse eds = request(ResourceType.ENDPOINT,
                List.of("outbound|9080|v3|reviews.default.svc.cluster.local"), null);
        assertEquals(1, eds.getResourcesCount());
        DiscoveryResponse rds = request(ResourceType.ROUTE, List.of("9080"), null);
        assertEquals(Map.of("v1", 50, "v2", 30, "v3", 20), weights(rds));
        assertEquals("bookinfo-1", rds.getVersionInfo());
    }

    @Test
    void shiftingReviewsPushesANewRouteConfigurationToConnectedMeshes() throws Exception {
        DiscoveryResponse first = request(ResourceType.ROUTE, List.of("9080"), null);
        request(ResourceType.ROUTE, List.of("9080"), first); // ACK: the stream now waits for a change
        cp.shiftReviews("v1", "v3", 50);
        DiscoveryResponse pushed = responses.poll(10, TimeUnit.SECONDS);
        assertNotNull(pushed, "no push after the shift");
        assertEquals(Map.of("v1", 0, "v2", 30, "v3", 70), weights(pushed));
        assertEquals("bookinfo-2", pushed.getVersionInfo());
        assertEquals(Map.of("v1", 0, "v2", 30, "v3", 70), cp.reviewsWeights());
    }

    @Test
    void weightsForUnknownSubsetsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> cp.setReviewsWeights(Map.of("v1", 100)));
        assertThrows(IllegalArgumentException.class, () -> cp.setReviewsWeights(Map.of("v1", 0, "v2", 0, "v3", 0)));
        assertEquals(Map.of("v1", 50, "v2", 30, "v3", 20), cp.reviewsWeights());
    }

    @Test
    void aMeshPingingEveryHalfOfTheKeepaliveIntervalKeepsItsStream() throws Exception {
        // istiod's policy, scaled down: a 2 s interval permits a PING every second (30 s: every 15 s, where the
        // sidecars ping every 30 s); grpc-java's own would end the stream with a GOAWAY at the third PING
        Vertx vertx = Vertx.vertx();
        try (ControlPlane fast = ControlPlane.start(Bookinfo.defaultMeshDir(), "127.0.0.1", 0, Duration.ofSeconds(2))) {
            AdsClient client = new AdsClient(vertx, AdsOptions.of(NodeOptions.of("productpage-v1-10", "default",
                    "127.0.0.10"), AdsOptions.XdsServer.plaintext("127.0.0.1", fast.port()))
                    .withKeepalive(Duration.ofSeconds(1)), new SnapshotHolder());
            client.start().await(20, TimeUnit.SECONDS);
            Instant opened = client.status().connectedSince();
            Thread.sleep(4_500);
            assertTrue(client.status().connected(), client.status().lastError());
            assertEquals(opened, client.status().connectedSince(), "the stream was opened again");
            client.close().await(10, TimeUnit.SECONDS);
        } finally {
            vertx.close().await(10, TimeUnit.SECONDS);
        }
    }
}
