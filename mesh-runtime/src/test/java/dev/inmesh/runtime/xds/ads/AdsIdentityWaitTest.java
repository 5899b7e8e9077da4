package dev.inmesh.runtime.xds.ads;

import static dev.inmesh.runtime.xds.ads.XdsFixtures.await;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.edsCluster;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.endpoints;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.listener;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.route;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import com.google.protobuf.Message;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.tls.WorkloadIdentity;
import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.xds.EnvoyJson;
import dev.inmesh.runtime.xds.ResourceType;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.service.discovery.v3.AggregatedDiscoveryServiceGrpc;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import io.vertx.core.Vertx;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A response rejected for a workload identity whose files are not there yet is taken once they are, against a
 * server that, as istiod, does not send a NACKed response again until its configuration changes.
 */
class AdsIdentityWaitTest {
    private static final Duration WAIT = Duration.ofSeconds(20);
    private static final String CDS = ResourceType.CLUSTER.typeUrl();

    private final Vertx vertx = Vertx.vertx();
    private final SnapshotHolder holder = new SnapshotHolder();
    private final List<DiscoveryRequest> requests = new CopyOnWriteArrayList<>();
    private final List<DiscoveryResponse> responses = new CopyOnWriteArrayList<>();
    private Server server;
    private AdsClient client;

    @AfterEach
    void close() throws Exception {
        if (client != null) {
            client.close().await(5, TimeUnit.SECONDS);
        }
        if (server != null) {
            server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        vertx.close().await(5, TimeUnit.SECONDS);
    }

    /**
     * An ADS server that answers each type's first request on a stream with its resources at version 1, once: an
     * ACK or a NACK gets no answer, as istiod, which pushes again only when its configuration changes.
     */
    private int serveOnce(Map<String, List<? extends Message>> byType) throws Exception {
        server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(new AggregatedDiscoveryServiceGrpc.AggregatedDiscoveryServiceImplBase() {
                    @Override
                    public StreamObserver<DiscoveryRequest> streamAggregatedResources(
                            StreamObserver<DiscoveryResponse> out) {
                        return new StreamObserver<>() {
                            @Override
                            public void onNext(DiscoveryRequest r) {
                                requests.add(r);
                                List<? extends Message> resources = byType.get(r.getTypeUrl());
                                if (r.getResponseNonce().isEmpty() && resources != null) {
                                    DiscoveryResponse.Builder b = DiscoveryResponse.newBuilder()
                                            .setTypeUrl(r.getTypeUrl()).setVersionInfo("1")
                                            .setNonce("nonce-" + responses.size());
                                    resources.forEach(m -> b.addResources(Any.pack(m)));
                                    DiscoveryResponse response = b.build();
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
        return server.getPort();
    }

    @Test
    void aClusterRejectedForTheWorkloadIdentityIsAppliedAndAckedOnceItsFilesAreThere(@TempDir Path dir)
            throws Exception {
        var yaml = EnvoyJson.documents(TestCertificates.ISTIO_MUTUAL_CLUSTER).get(0).get("resources").get(0);
        ((com.fasterxml.jackson.databind.node.ObjectNode) yaml).remove("@type");
        Cluster mtls = EnvoyJson.toMessage(yaml, Cluster.class);
        int port = serveOnce(Map.of(CDS, List.of(edsCluster("c1"), mtls),
                ResourceType.ENDPOINT.typeUrl(), List.of(endpoints("c1", 1)),
                ResourceType.LISTENER.typeUrl(), List.of(listener("0.0.0.0_9080", 9080, "9080")),
                ResourceType.ROUTE.typeUrl(), List.of(route("9080", "c1"))));
        client = new AdsClient(vertx, AdsOptions.of(NodeOptions.of("p", "default", "10.0.0.1"),
                AdsOptions.XdsServer.plaintext("127.0.0.1", port)), holder);
        client.identity(new WorkloadIdentity(dir.resolve("identity")));
        client.start().await(WAIT.toSeconds(), TimeUnit.SECONDS);

        // before Istio's agent wrote the workload's certificate: NACKed by name, c1 applied
        DiscoveryRequest nack = requests.stream().filter(r -> r.getTypeUrl().equals(CDS) && r.hasErrorDetail())
                .findFirst().orElseThrow();
        assertTrue(nack.getErrorDetail().getMessage().contains("cert-chain.pem"), nack.toString());
        assertNotNull(holder.current().cluster("c1"));
        assertNull(holder.current().cluster(mtls.getName()));
        Thread.sleep(2 * AdsClient.IDENTITY_LOOK_MILLIS + 500);
        assertNull(holder.current().cluster(mtls.getName()));
        assertEquals(1, requests.stream().filter(r -> r.getTypeUrl().equals(CDS) && r.hasErrorDetail()).count(),
                "NACKed once: nothing changed since");

        // the agent writes the files: the response the server sent is taken, with no push of the server's, and ACKed
        var ca = TestCertificates.ca("cluster.local");
        TestCertificates.identityDirectory(dir, TestCertificates.issue(ca, "productpage", List.of(), List.of(
                "spiffe://cluster.local/ns/default/sa/bookinfo-productpage")), ca);
        await(() -> holder.current().cluster(mtls.getName()) != null, WAIT, "the cluster, once the files are there");
        await(() -> requests.stream().anyMatch(r -> r.getTypeUrl().equals(CDS) && !r.hasErrorDetail()
                && r.getVersionInfo().equals("1") && r.getResponseNonce().equals(nack.getResponseNonce())), WAIT,
                "the ACK of the response NACKed before");
        assertEquals(1, responses.stream().filter(r -> r.getTypeUrl().equals(CDS)).count(),
                "the server sent its clusters once");
    }
}
