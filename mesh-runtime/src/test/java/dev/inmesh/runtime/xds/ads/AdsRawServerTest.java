package dev.inmesh.runtime.xds.ads;

import static dev.inmesh.runtime.xds.ads.XdsFixtures.await;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.clusterFor;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.edsCluster;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.endpoints;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.listener;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.route;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.Resource;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The ADS client against responses java-control-plane's cache does not send, written by hand (over state of the world
 * and over delta xDS, with its requests as they go on the wire); and against a server
 * that, as istiod, does not send a NACKed response again until its configuration changes: a response rejected for a
 * workload identity whose files are not there yet is taken once they are.
 */
class AdsRawServerTest {
    private static final Duration WAIT = Duration.ofSeconds(20);
    private static final String CDS = ResourceType.CLUSTER.typeUrl();
    private static final String RDS = ResourceType.ROUTE.typeUrl();
    private static final String SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
    private static final Map<String, List<? extends Message>> BOOKINFO = Map.of(
            CDS, List.of(edsCluster("c1")),
            ResourceType.ENDPOINT.typeUrl(), List.of(endpoints("c1", 1)),
            ResourceType.LISTENER.typeUrl(), List.of(listener("0.0.0.0_9080", 9080, "9080")),
            ResourceType.ROUTE.typeUrl(), List.of(route("9080", "c1")));

    private final Vertx vertx = Vertx.vertx();
    private final SnapshotHolder holder = new SnapshotHolder();
    private RawAdsServer server;
    private AdsClient client;

    @AfterEach
    void close() throws Exception {
        if (client != null) {
            client.close().await(10, TimeUnit.SECONDS);
        }
        if (server != null) {
            server.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    private int serve(Function<DiscoveryRequest, List<DiscoveryResponse>> answer) throws Exception {
        server = new RawAdsServer(answer);
        return server.port();
    }

    /** The bookinfo resources, each made by {@code pack}, and {@code alsoWithClusters}; awaits the first apply. */
    private void serve(Function<Message, Any> pack, List<DiscoveryResponse> alsoWithClusters) throws Exception {
        int port = serve(RawAdsServer.once(BOOKINFO, pack, alsoWithClusters));
        client = new AdsClient(vertx, AdsOptions.of(NodeOptions.of("p", "default", "10.0.0.1"),
                AdsOptions.XdsServer.plaintext("127.0.0.1", port)), holder);
        Future<Void> first = client.start();
        first.await(WAIT.toSeconds(), TimeUnit.SECONDS);
        assertTrue(first.succeeded(), () -> "first apply: " + first.cause());
    }

    private void awaitAcks() throws InterruptedException {
        for (String type : BOOKINFO.keySet()) {
            await(() -> server.requests.stream().anyMatch(r -> r.getTypeUrl().equals(type)
                    && r.getVersionInfo().equals("1") && !r.hasErrorDetail()), WAIT, type + " ACKed");
        }
    }

    @Test
    void aStreamEndedOkOrOnceUnavailableIsLoggedQuietlyAndAFailureLoudlyAsEnvoysConfigStream() throws Exception {
        serve(Any::pack, List.of());
        java.util.logging.Logger log = java.util.logging.Logger.getLogger(AdsClient.class.getName());
        List<java.util.logging.LogRecord> ends = new java.util.concurrent.CopyOnWriteArrayList<>();
        java.util.logging.Handler handler = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord r) {
                if (r.getMessage().startsWith("ADS stream to")) {
                    ends.add(r);
                }
            }

            @Override
            public void flush() {}

            @Override
            public void close() {}
        };
        log.addHandler(handler);
        try {
            // istiod ends each stream past its maximum connection age with OK; a server going away, UNAVAILABLE;
            // INTERNAL is a failure worth a warning at once
            List<io.grpc.Status> statuses = List.of(io.grpc.Status.OK, io.grpc.Status.UNAVAILABLE,
                    io.grpc.Status.INTERNAL);
            for (int i = 0; i < statuses.size(); i++) {
                int stream = i + 1;
                await(() -> server.streams.get() == stream, WAIT, "stream " + stream + " open");
                awaitAcks();
                server.endStream(statuses.get(i));
                await(() -> ends.size() == stream, WAIT, "the end of stream " + stream + " logged");
            }
        } finally {
            log.removeHandler(handler);
        }
        assertEquals(List.of(java.util.logging.Level.INFO, java.util.logging.Level.INFO,
                java.util.logging.Level.WARNING), ends.stream().map(java.util.logging.LogRecord::getLevel).toList(),
                () -> ends.stream().map(r -> String.valueOf(r.getParameters()[1])).toList().toString());
    }

    @Test
    void resourcesInEnvoysResourceWrapperAreAppliedAndAckedAsEnvoyTakesThem() throws Exception {
        serve(m -> Any.pack(Resource.newBuilder().setName(XdsFixtures.name(m)).setVersion("per-resource")
                .setResource(Any.pack(m)).build()), List.of());
        assertEquals("c1", clusterFor(holder.current(), "9080", "/"));
        assertEquals(1, AdsClusterTest.hosts(holder.current().endpoints("c1")));
        awaitAcks();
        assertFalse(server.requests.stream().anyMatch(DiscoveryRequest::hasErrorDetail), server.requests.toString());
    }

    @Test
    void aResponseOfATypeNotSubscribedToIsIgnoredAsEnvoyIgnoresItNeitherAckedNorNacked() throws Exception {
        DiscoveryResponse stray = DiscoveryResponse.newBuilder().setTypeUrl(SECRET).setVersionInfo("9")
                .setNonce("stray").build();
        serve(Any::pack, List.of(stray));
        awaitAcks();
        assertTrue(server.responses.contains(stray));
        assertFalse(server.requests.stream().anyMatch(r -> r.getTypeUrl().equals(SECRET)
                || r.getResponseNonce().equals("stray")), "a request would subscribe to it: " + server.requests);
    }

    @Test
    void aClusterRejectedForTheWorkloadIdentityIsAppliedAndAckedOnceItsFilesAreThere(@TempDir Path dir)
            throws Exception {
        Cluster mtls = serveAnIstioMutualCluster();
        client.identity(new WorkloadIdentity(dir.resolve("identity")));
        client.start().await(WAIT.toSeconds(), TimeUnit.SECONDS);

        // before Istio's agent wrote the workload's certificate: NACKed by name, c1 applied
        DiscoveryRequest nack = server.requests.stream()
                .filter(r -> r.getTypeUrl().equals(CDS) && r.hasErrorDetail()).findFirst().orElseThrow();
        assertTrue(nack.getErrorDetail().getMessage().contains("cert-chain.pem"), nack.toString());
        assertNotNull(holder.current().cluster("c1"));
        assertNull(holder.current().cluster(mtls.getName()));
        Thread.sleep(2 * AdsClient.IDENTITY_LOOK_MILLIS + 500);
        assertNull(holder.current().cluster(mtls.getName()));
        assertEquals(1, server.requests.stream()
                        .filter(r -> r.getTypeUrl().equals(CDS) && r.hasErrorDetail()).count(),
                "NACKed once: nothing changed since");
        // decoded again at the identity watch's first look, still rejected: the type's status stays NACKed, not
        // updated after its NACK (proxy-status printed SYNCED)
        assertTrue(client.status().type("Cluster").nacked(), client.status().type("Cluster").toString());

        // the agent writes the files: the response the server sent is taken, with no push of the server's, and ACKed
        var ca = TestCertificates.ca("cluster.local");
        TestCertificates.identityDirectory(dir, TestCertificates.issue(ca, "productpage", List.of(), List.of(
                "spiffe://cluster.local/ns/default/sa/bookinfo-productpage")), ca);
        await(() -> holder.current().cluster(mtls.getName()) != null, WAIT, "the cluster, once the files are there");
        await(() -> server.requests.stream().anyMatch(r -> r.getTypeUrl().equals(CDS) && !r.hasErrorDetail()
                && r.getVersionInfo().equals("1") && r.getResponseNonce().equals(nack.getResponseNonce())), WAIT,
                "the ACK of the response NACKed before");
        assertEquals(1, server.responses.stream().filter(r -> r.getTypeUrl().equals(CDS)).count(),
                "the server sent its clusters once");
    }

    @Test
    void aRouteResponseRejectedWhileTheIdentityIsAwaitedAndDecodedAgainWhenNoneIsAskedForIsNotAnsweredAgain(
            @TempDir Path dir) throws Exception {
        serve(RawAdsServer.once(BOOKINFO, Any::pack, List.of()));
        client = new AdsClient(vertx, AdsOptions.of(NodeOptions.of("p", "default", "10.0.0.1"),
                AdsOptions.XdsServer.plaintext("127.0.0.1", server.port())), holder);
        client.identity(new WorkloadIdentity(dir.resolve("identity")));
        client.start().await(WAIT.toSeconds(), TimeUnit.SECONDS);
        awaitAcks();
        // NACKed, and kept to be decoded again at the identity watch's next look
        server.push(response(RDS, "2", "rds-2", XdsFixtures.badRoute("9080")));
        assertTrue(awaitRequest(r -> r.getResponseNonce().equals("rds-2")).hasErrorDetail());
        // the listener goes: no route configuration is asked for any more (a request with the latest nonce, as
        // every request, but no answer)
        server.push(response(ResourceType.LISTENER.typeUrl(), "2", "lds-2"));
        awaitRequest(r -> r.getTypeUrl().equals(RDS) && r.getResourceNamesCount() == 0);
        List<DiscoveryRequest> sent = server.requests.stream().filter(r -> r.getResponseNonce().equals("rds-2"))
                .toList();

        Thread.sleep(2 * AdsClient.IDENTITY_LOOK_MILLIS + 500);
        assertEquals(sent, server.requests.stream().filter(r -> r.getResponseNonce().equals("rds-2")).toList(),
                "not answered again");
    }

    @Test
    void aClusterRejectedForAnSdsSecretNotArrivedIsAppliedAndAckedOnceItArrives() throws Exception {
        String grpc = "sds_config: {api_config_source: {api_type: GRPC, grpc_services: [{envoy_grpc: "
                + "{cluster_name: sds-grpc}}]}}";
        Cluster mtls = serveAnIstioMutualCluster(TestCertificates.ISTIO_MUTUAL_CLUSTER
                .replace("{name: default}", "{name: default, " + grpc + "}")
                .replace("{name: ROOTCA}", "{name: ROOTCA, " + grpc + "}"));
        try (var sds = dev.inmesh.runtime.xds.sds.SdsTestServer.start();
             var secrets = new dev.inmesh.runtime.xds.sds.SdsSecretManager(vertx,
                     dev.inmesh.runtime.xds.sds.SdsTestServer.NODE, Map.of("sds-grpc",
                             new dev.inmesh.api.config.core.SocketAddress("127.0.0.1", sds.port())),
                     Duration.ofMillis(200))) {
            client.sds(secrets);
            client.start().await(WAIT.toSeconds(), TimeUnit.SECONDS);
            // the agent has not sent the workload's certificate within the wait: NACKed by name, c1 applied
            DiscoveryRequest nack = server.requests.stream()
                    .filter(r -> r.getTypeUrl().equals(CDS) && r.hasErrorDetail()).findFirst().orElseThrow();
            assertTrue(nack.getErrorDetail().getMessage().contains("SDS secret \"default\""), nack.toString());
            assertNull(holder.current().cluster(mtls.getName()));

            // it sends it: the response the server sent once is taken, with no push of the server's, and ACKed
            var ca = TestCertificates.ca("cluster.local");
            sds.set("1", dev.inmesh.runtime.xds.sds.SdsTestServer.certificate("default", TestCertificates.issue(ca,
                    "productpage", List.of(), List.of("spiffe://cluster.local/ns/default/sa/bookinfo-productpage"))),
                    dev.inmesh.runtime.xds.sds.SdsTestServer.root("ROOTCA", ca));
            await(() -> holder.current().cluster(mtls.getName()) != null, WAIT, "the cluster, once the secrets came");
            await(() -> server.requests.stream().anyMatch(r -> r.getTypeUrl().equals(CDS) && !r.hasErrorDetail()
                    && r.getResponseNonce().equals(nack.getResponseNonce())), WAIT, "the ACK of the NACKed response");
            assertEquals(1, server.responses.stream().filter(r -> r.getTypeUrl().equals(CDS)).count(),
                    "the server sent its clusters once");
        }
    }

    private Cluster serveAnIstioMutualCluster() throws Exception {
        return serveAnIstioMutualCluster(TestCertificates.ISTIO_MUTUAL_CLUSTER);
    }

    /**
     * Serves c1 and Istio's ISTIO_MUTUAL cluster (its TLS naming {@code default} and {@code ROOTCA}) with bookinfo's
     * other resources, to a client made for it, not started; the ISTIO_MUTUAL cluster.
     */
    private Cluster serveAnIstioMutualCluster(String file) throws Exception {
        return serveAnIstioMutualCluster(file, List.of());
    }

    /** The same, with {@code secrets} served on the ADS stream at version 1. */
    private Cluster serveAnIstioMutualCluster(String file, List<Message> secrets) throws Exception {
        var yaml = EnvoyJson.documents(file).get(0).get("resources").get(0);
        ((com.fasterxml.jackson.databind.node.ObjectNode) yaml).remove("@type");
        Cluster mtls = EnvoyJson.toMessage(yaml, Cluster.class);
        int port = serve(RawAdsServer.once(Map.of(CDS, List.of(edsCluster("c1"), mtls),
                ResourceType.ENDPOINT.typeUrl(), List.of(endpoints("c1", 1)),
                ResourceType.LISTENER.typeUrl(), List.of(listener("0.0.0.0_9080", 9080, "9080")),
                ResourceType.ROUTE.typeUrl(), List.of(route("9080", "c1")), SECRET, secrets), Any::pack, List.of()));
        client = new AdsClient(vertx, AdsOptions.of(NodeOptions.of("p", "default", "10.0.0.1"),
                AdsOptions.XdsServer.plaintext("127.0.0.1", port)), holder);
        return mtls;
    }

    private static final TestCertificates.Issued MESH_CA = TestCertificates.ca("cluster.local");
    private static final List<String> PRODUCTPAGE = List.of("spiffe://cluster.local/ns/default/sa/bookinfo-productpage");

    /** The certificate {@code default} of bookinfo's productpage, and the CAs {@code ROOTCA}. */
    private static List<Message> adsSecrets() {
        return List.of(dev.inmesh.runtime.xds.sds.SdsTestServer.certificate("default", TestCertificates.issue(
                MESH_CA, "productpage", List.of(), PRODUCTPAGE)),
                dev.inmesh.runtime.xds.sds.SdsTestServer.root("ROOTCA", MESH_CA));
    }

    /**
     * Serves Istio's ISTIO_MUTUAL cluster, its secrets {@code default} and {@code ROOTCA} on the ADS stream
     * ({@code sds_config: {ads: {}}}), with bookinfo's resources, to a client taking them with {@code sds}; awaits the
     * first apply and the ACKs. Then the server drops the cluster: no secret is asked for any more.
     */
    private void serveAdsSecretsThenDropThem(dev.inmesh.runtime.xds.sds.SdsSecretManager sds,
                                             Runnable beforeTheDrop) throws Exception {
        String ads = "sds_config: {ads: {}}";
        serveAnIstioMutualCluster(TestCertificates.ISTIO_MUTUAL_CLUSTER
                .replace("{name: default}", "{name: default, " + ads + "}")
                .replace("{name: ROOTCA}", "{name: ROOTCA, " + ads + "}"), adsSecrets());
        client.sds(sds);
        client.start().await(WAIT.toSeconds(), TimeUnit.SECONDS);
        awaitAcks();
        assertFalse(awaitRequest(r -> r.getResponseNonce().equals("nonce-" + SECRET)).hasErrorDetail());
        beforeTheDrop.run();
        server.push(response(CDS, "2", "cds-2", edsCluster("c1")));
        awaitRequest(r -> r.getTypeUrl().equals(SECRET) && r.getResourceNamesCount() == 0);
    }

    /** A Secret response of {@code version} holding productpage's certificate with another's key: refused. */
    private static DiscoveryResponse badSecret(String version, String nonce) {
        var own = dev.inmesh.runtime.xds.sds.SdsTestServer.certificate("default", TestCertificates.issue(MESH_CA,
                "productpage", List.of(), PRODUCTPAGE));
        var other = dev.inmesh.runtime.xds.sds.SdsTestServer.certificate("default", TestCertificates.issue(MESH_CA,
                "other", List.of(), List.of()));
        return response(SECRET, version, nonce, own.toBuilder().setTlsCertificate(own.getTlsCertificate()
                .toBuilder().setPrivateKey(other.getTlsCertificate().getPrivateKey())).build());
    }

    @Test
    void aRepeatedSecretNackWaitingWhenTheSecretsAskedForChangeGoesAtOnceWithTheNamesInOneRequestAsTheOtherTypes()
            throws Exception {
        try (var sds = new dev.inmesh.runtime.xds.sds.SdsSecretManager(vertx,
                dev.inmesh.runtime.xds.sds.SdsTestServer.NODE, Map.of())) {
            serveAdsSecretsThenDropThem(sds, () -> {
                try {
                    // the same bad version again and again: the NACKs wait 0, 100, 200, then 400 ms
                    for (int i = 1; i <= 3; i++) {
                        String nonce = "bad-" + i;
                        server.push(badSecret("2", nonce));
                        assertTrue(awaitRequest(r -> r.getResponseNonce().equals(nonce)).hasErrorDetail());
                    }
                    server.push(badSecret("2", "bad-4"));
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
            });
            // the cluster went while bad-4's NACK waited: the NACK went at once with no name, once
            DiscoveryRequest nack = awaitRequest(r -> r.getResponseNonce().equals("bad-4"));
            assertTrue(nack.hasErrorDetail(), nack.toString());
            assertEquals("1", nack.getVersionInfo());
            assertEquals(List.of(), nack.getResourceNamesList());
            Thread.sleep(1_000);
            assertEquals(List.of(nack), server.requests.stream().filter(r -> r.getResponseNonce().equals("bad-4"))
                    .toList());
        }
    }

    @Test
    void aSecretResponseWhoseTakingFailsKeepsTheSecretsTakenAndEndsTheWaitOfTheOthersAsEnvoysFailedSdsWatches()
            throws Exception {
        // default, taken before the failure, stays; ROOTCA is waited for no longer: the clusters go on without
        assertASecretNackEndsTheWaits(c -> c.taking = failing(AdsClient.Step.APPLIED,
                        r -> r.getTypeUrl().equals(SECRET) && r.getVersionInfo().equals("2")),
                response(SECRET, "2", "sec-2", adsSecrets().get(0)), Map.of("default", "2"),
                "SDS secret \"ROOTCA\"");
    }

    @Test
    void aSecretResponseRejectedWholeEndsTheWaitOfEverySecretNotArrivedAsEnvoysMuxFailsEveryWatch() throws Exception {
        // a resource of another type: the response does not decode, nothing is taken
        assertASecretNackEndsTheWaits(c -> {},
                response(SECRET, "2", "sec-2", Cluster.newBuilder().setName("x").build()),
                Map.of(), "SDS secret \"default\" has not arrived on the ADS stream before the Secret response "
                + "version 2 was rejected (the whole Secret response is rejected: ");
    }

    @Test
    void aSecretRefusedEndsTheWaitOfTheOtherSecretsNotArrivedAsEnvoysMuxFailsEveryWatch() throws Exception {
        // default's key does not match its certificate: refused by name, and ROOTCA, not in the response, is waited
        // for no longer either
        assertASecretNackEndsTheWaits(c -> {}, badSecret("2", "sec-2"), Map.of(),
                "SDS secret \"default\" has not arrived on the ADS stream before the Secret response version 2 was "
                + "rejected: Secret \"default\": tls_certificate");
    }

    /**
     * Serves a cluster whose TLS context names two ADS secrets, starts the client once {@code before} has set it up,
     * answers the first Secret request with none, pushes {@code nacked} and sees it NACKed, then the clusters NACKed
     * for want of their secrets long before the initial fetch timeout (15 s), with {@code versions} taken; then both
     * secrets, and the cluster is taken.
     */
    private void assertASecretNackEndsTheWaits(java.util.function.Consumer<AdsClient> before, DiscoveryResponse nacked,
                                               Map<String, String> versions, String clusterNackNames)
            throws Exception {
        String ads = "sds_config: {ads: {}}";
        Cluster mtls = serveAnIstioMutualCluster(TestCertificates.ISTIO_MUTUAL_CLUSTER
                .replace("{name: default}", "{name: default, " + ads + "}")
                .replace("{name: ROOTCA}", "{name: ROOTCA, " + ads + "}"), List.of());
        try (var sds = new dev.inmesh.runtime.xds.sds.SdsSecretManager(vertx,
                dev.inmesh.runtime.xds.sds.SdsTestServer.NODE, Map.of())) {
            client.sds(sds);
            before.accept(client);
            client.start();
            // the clusters wait for their secrets (15 s, Envoy's initial_fetch_timeout), the first Secret response
            // bringing none
            assertFalse(awaitRequest(r -> r.getResponseNonce().equals("nonce-" + SECRET)).hasErrorDetail());
            // meanwhile the cluster warms, as Envoy's config dump shows it, though nothing serves yet
            var warming = client.dynamicState().warmingClusters().get(mtls.getName());
            assertEquals(mtls, warming.message());
            assertEquals("1", warming.version().versionInfo());

            long start = System.nanoTime();
            server.push(nacked);
            assertTrue(awaitRequest(r -> r.getResponseNonce().equals(nacked.getNonce())).hasErrorDetail());
            await(() -> server.requests.stream().anyMatch(r -> r.getTypeUrl().equals(CDS) && r.hasErrorDetail()),
                    WAIT, "the clusters' NACK");
            assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(10), "before their wait ended");
            DiscoveryRequest nack = server.requests.stream().filter(r -> r.getTypeUrl().equals(CDS)
                    && r.hasErrorDetail()).findFirst().orElseThrow();
            assertTrue(nack.getErrorDetail().getMessage().contains(clusterNackNames), nack.toString());
            assertEquals(versions, sds.adsVersions());
            assertNull(holder.current().cluster(mtls.getName()));
            assertFalse(client.dynamicState().warmingClusters().containsKey(mtls.getName()), "rejected: not warming");

            server.push(response(SECRET, "3", "sec-3", adsSecrets().toArray(Message[]::new)));
            await(() -> holder.current().cluster(mtls.getName()) != null, WAIT, "the cluster, once its secrets came");
        }
    }

    @Test
    void aSecretResponseWhileNoneIsAskedForIsAnsweredWithTheVersionHeldAsEnvoysMuxWithNoWatchNacksIt()
            throws Exception {
        try (var sds = new dev.inmesh.runtime.xds.sds.SdsSecretManager(vertx,
                dev.inmesh.runtime.xds.sds.SdsTestServer.NODE, Map.of())) {
            serveAdsSecretsThenDropThem(sds, () -> {});
            // secrets come all the same: not taken, answered with the version held, as the other types
            DiscoveryResponse.Builder b = DiscoveryResponse.newBuilder().setTypeUrl(SECRET).setVersionInfo("2")
                    .setNonce("secrets-2");
            adsSecrets().forEach(m -> b.addResources(Any.pack(m)));
            assertAnsweredAsATypeWithNoWatch(b.build(), "Secret");
        }
    }

    @Test
    void aStartingClientWaitsForTheIdentityFilesAClusterReadsAsItDecodesItsResponseNotNackingIt(@TempDir Path dir)
            throws Exception {
        Cluster mtls = serveAnIstioMutualCluster();
        client.identity(new WorkloadIdentity(dir.resolve("identity")).waitingForFiles(WAIT));
        // Istio's agent writes the files while the decoding waits for them (and only then)
        java.util.logging.Logger log = java.util.logging.Logger.getLogger(WorkloadIdentity.class.getName());
        java.util.logging.Handler agent = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord r) {
                if (r.getMessage().startsWith("waiting up to")) {
                    var ca = TestCertificates.ca("cluster.local");
                    try {
                        TestCertificates.identityDirectory(dir, TestCertificates.issue(ca, "productpage", List.of(),
                                List.of("spiffe://cluster.local/ns/default/sa/bookinfo-productpage")), ca);
                    } catch (Exception e) {
                        throw new IllegalStateException(e);
                    }
                }
            }

            @Override
            public void flush() {}

            @Override
            public void close() {}
        };
        log.addHandler(agent);
        try {
            client.start().await(WAIT.toSeconds(), TimeUnit.SECONDS);
        } finally {
            log.removeHandler(agent);
        }
        assertNotNull(holder.current().cluster(mtls.getName()), "applied with the first clusters");
        awaitAcks();
        assertFalse(server.requests.stream().anyMatch(DiscoveryRequest::hasErrorDetail), server.requests.toString());
    }

    @Test
    void anRdsOrEdsResponseLeavingOutAResourceSubscribedToDeletesNothingAsOnlyListenersAndClustersAreWholeSets()
            throws Exception {
        Map<String, List<? extends Message>> two = new java.util.HashMap<>(BOOKINFO);
        two.put(ResourceType.LISTENER.typeUrl(), List.of(listener("0.0.0.0_9080", 9080, "9080"),
                listener("0.0.0.0_9090", 9090, "9090")));
        two.put(ResourceType.ROUTE.typeUrl(), List.of(route("9080", "c1"), route("9090", "c1")));
        serve(RawAdsServer.once(two, Any::pack, List.of()));
        client = new AdsClient(vertx, AdsOptions.of(NodeOptions.of("p", "default", "10.0.0.1"),
                AdsOptions.XdsServer.plaintext("127.0.0.1", server.port())), holder);
        client.start().await(WAIT.toSeconds(), TimeUnit.SECONDS);
        assertNotNull(holder.current().resources().routes().get("9090"));

        // as istiod pushes RDS and EDS: only what changed, the rest left out
        server.push(DiscoveryResponse.newBuilder().setTypeUrl(RDS).setVersionInfo("2")
                .setNonce("rds-2").addResources(Any.pack(route("9080", "c2"))).build());
        server.push(DiscoveryResponse.newBuilder().setTypeUrl(ResourceType.ENDPOINT.typeUrl()).setVersionInfo("2")
                .setNonce("eds-2").build());
        await(() -> server.requests.stream().anyMatch(r -> r.getResponseNonce().equals("eds-2")), WAIT, "EDS ACK");
        assertEquals("c2", clusterFor(holder.current(), "9080", "/"));
        assertEquals("c1", clusterFor(holder.current(), "9090", "/"), "route 9090 kept");
        assertEquals(1, AdsClusterTest.hosts(holder.current().endpoints("c1")), "c1's endpoints kept");
        DiscoveryRequest rdsAck = server.requests.stream().filter(r -> r.getResponseNonce().equals("rds-2"))
                .findFirst().orElseThrow();
        assertEquals("2", rdsAck.getVersionInfo());
        assertFalse(rdsAck.hasErrorDetail());
        assertEquals(List.of("9080", "9090"), rdsAck.getResourceNamesList());
    }

    @Test
    void aBadRouteNotAskedForInAStateOfTheWorldResponseIsLeftOutUnreadAndTheResponseAckedAsEnvoysMuxLeavesIt()
            throws Exception {
        serve(Any::pack, List.of());
        awaitAcks();
        server.push(response(RDS, "2", "extra", route("9080", "c2"), XdsFixtures.badRoute("other")));
        DiscoveryRequest ack = awaitRequest(r -> r.getResponseNonce().equals("extra"));
        assertFalse(ack.hasErrorDetail(), ack.toString());
        assertEquals("2", ack.getVersionInfo());
        assertEquals(List.of("9080"), ack.getResourceNamesList());
        assertEquals("c2", clusterFor(holder.current(), "9080", "/"), "what was asked for is applied");
        assertNull(holder.current().resources().routes().get("other"));
        assertFalse(client.status().type("RouteConfiguration").nacked());
        assertNull(client.dynamicState().failure(ResourceType.ROUTE, "other"));
    }

    @Test
    void aRouteResponseEndingAListenersWarmingIsAnsweredByOneRequestWithItsVersionAndTheNamesLeftAsEnvoysPausedMux()
            throws Exception {
        serve(Any::pack, List.of());
        awaitAcks();
        // the listener moves to route 9090: it warms, 9080 serving meanwhile, and both are asked for
        server.push(response(ResourceType.LISTENER.typeUrl(), "2", "lds-2", listener("0.0.0.0_9080", 9080, "9090")));
        awaitRequest(r -> r.getTypeUrl().equals(RDS) && r.getResourceNamesList().equals(List.of("9080", "9090")));
        // 9090 comes: the listener stops warming and 9080 is no longer needed, which the one answer says
        server.push(response(RDS, "2", "rds-2", route("9090", "c1")));
        assertOneAnswer("rds-2", "2", List.of("9090"));
    }

    /**
     * Serves bookinfo, then CDS version 2 (nonce cds-2) moving c1 to the EDS service name c1-v2: c1 warms, its ACK
     * waits, and both names are asked for. The EDS type URL.
     */
    private String serveWithC1Warming() throws Exception {
        serve(Any::pack, List.of());
        awaitAcks();
        Cluster c1 = edsCluster("c1");
        server.push(response(CDS, "2", "cds-2", c1.toBuilder().setEdsClusterConfig(c1.getEdsClusterConfig()
                .toBuilder().setServiceName("c1-v2")).build()));
        String eds = ResourceType.ENDPOINT.typeUrl();
        awaitRequest(r -> r.getTypeUrl().equals(eds) && r.getResourceNamesList().equals(List.of("c1", "c1-v2")));
        return eds;
    }

    @Test
    void aLoadAssignmentEndingAClustersWarmingIsAnsweredByOneRequestWithItsVersionAndTheNamesLeftAsEnvoysPausedMux()
            throws Exception {
        String eds = serveWithC1Warming();
        server.push(response(eds, "2", "eds-2", endpoints("c1-v2", 2)));
        assertOneAnswer("eds-2", "2", List.of("c1-v2"));
        assertFalse(awaitRequest(r -> r.getResponseNonce().equals("cds-2")).hasErrorDetail(),
                "the clusters' ACK, once c1 no longer warms");
    }

    @Test
    void aNewStreamWhileAClusterWarmsAsksForTheClustersOnlyOnceNoneWarmsAsEnvoysPausedCdsWithTheVersionTaken()
            throws Exception {
        String eds = serveWithC1Warming();

        // the stream ends meanwhile: the new one asks for the load assignments, not yet for the clusters
        int before = server.requests.size();
        server.endStream(io.grpc.Status.UNAVAILABLE);
        DiscoveryRequest endpoints = awaitRequest(before, r -> r.getTypeUrl().equals(eds));
        assertEquals(List.of("c1", "c1-v2"), endpoints.getResourceNamesList());
        awaitRequest(before, r -> r.getTypeUrl().equals(RDS));
        assertFalse(server.requests.stream().skip(before).anyMatch(r -> r.getTypeUrl().equals(CDS)),
                "the clusters are asked for only once none warms: " + server.requests);

        // c1-v2 comes: c1 no longer warms, and the clusters are asked for with the version taken, no nonce
        server.push(response(eds, "2", "eds-2", endpoints("c1-v2", 2)));
        DiscoveryRequest clusters = awaitRequest(before, r -> r.getTypeUrl().equals(CDS));
        assertEquals("2", clusters.getVersionInfo(), clusters.toString());
        assertEquals("", clusters.getResponseNonce(), clusters.toString());
        assertFalse(clusters.hasErrorDetail(), clusters.toString());
    }

    @Test
    void loadAssignmentsSentWhileNoneIsAskedForAreAnsweredWithTheVersionHeldAsEnvoysMuxWithNoWatchNacksThem()
            throws Exception {
        serve(Any::pack, List.of());
        awaitAcks();
        // c1 is no longer an EDS cluster: no load assignment is asked for any more
        server.push(response(CDS, "2", "cds-2", XdsFixtures.staticCluster("c1", 8080)));
        String eds = ResourceType.ENDPOINT.typeUrl();
        awaitRequest(r -> r.getTypeUrl().equals(eds) && r.getResourceNamesCount() == 0);
        // one comes all the same: not taken, answered with the version held (no error_detail), as Envoy's
        assertAnsweredAsATypeWithNoWatch(response(eds, "2", "eds-2", endpoints("c1", 3)), "ClusterLoadAssignment");
    }

    /**
     * Pushes {@code withResources} (version 2) of a type {@code kind} of which nothing is asked for, asserting that,
     * as Envoy's mux with no watch of a type, it is answered once with the version held (1, no error_detail: a NACK
     * by the version alone), and that a response with no resource (version 3) has its version taken and is not
     * answered, since nothing is asked for.
     */
    private void assertAnsweredAsATypeWithNoWatch(DiscoveryResponse withResources, String kind)
            throws InterruptedException {
        server.push(withResources);
        assertOneAnswer(withResources.getNonce(), "1", List.of());
        assertEquals("1", client.status().type(kind).ackedVersion());
        server.push(response(withResources.getTypeUrl(), "3", "none-3"));
        server.push(response(RDS, "after-3", "after-3", route("9080", "c1")));
        awaitRequest(r -> r.getResponseNonce().equals("after-3"));
        assertFalse(server.requests.stream().anyMatch(r -> r.getResponseNonce().equals("none-3")),
                server.requests.toString());
        assertEquals("3", client.status().type(kind).ackedVersion());
    }

    @Test
    void aServerSendingANackedVersionAgainAtOnceGetsItsNacksAfterAGrowingDelayButAChangeOfNamesSendsTheNackAtOnce()
            throws Exception {
        // as java-control-plane's and go-control-plane's snapshot caches: a NACK, whose version is not their
        // snapshot's, is answered at once with the same snapshot
        java.util.concurrent.atomic.AtomicInteger again = new java.util.concurrent.atomic.AtomicInteger();
        Function<DiscoveryRequest, List<DiscoveryResponse>> bookinfo = RawAdsServer.once(BOOKINFO, Any::pack,
                List.of());
        int port = serve(r -> r.getTypeUrl().equals(RDS) && r.hasErrorDetail()
                ? List.of(response(RDS, "2", "bad-" + again.incrementAndGet(), XdsFixtures.badRoute("9080")))
                : bookinfo.apply(r));
        client = new AdsClient(vertx, AdsOptions.of(NodeOptions.of("p", "default", "10.0.0.1"),
                AdsOptions.XdsServer.plaintext("127.0.0.1", port)), holder);
        client.start().await(WAIT.toSeconds(), TimeUnit.SECONDS);
        awaitAcks();

        long start = System.nanoTime();
        server.push(response(RDS, "2", "bad-0", XdsFixtures.badRoute("9080")));
        await(() -> server.responses.stream().anyMatch(r -> r.getNonce().equals("bad-4")), WAIT, "bad-4 sent");
        long elapsed = java.util.concurrent.TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        // bad-0 NACKed at once, bad-1 after 100 ms, bad-2 after 200 ms more, bad-3 after 400 ms more
        assertTrue(elapsed >= 700, "the repeated NACKs waited: " + elapsed + " ms");
        assertTrue(server.requests.stream().filter(r -> r.getResponseNonce().startsWith("bad-"))
                .allMatch(DiscoveryRequest::hasErrorDetail), server.requests.toString());

        // bad-4's NACK waits 800 ms; a second listener asks for route 9090 meanwhile: the NACK goes at once with it
        server.push(response(ResourceType.LISTENER.typeUrl(), "2", "lds-2",
                listener("0.0.0.0_9080", 9080, "9080"), listener("0.0.0.0_9090", 9090, "9090")));
        DiscoveryRequest nack = awaitRequest(r -> r.getResponseNonce().equals("bad-4"));
        assertTrue(System.nanoTime() - start < java.util.concurrent.TimeUnit.MILLISECONDS.toNanos(1_500),
                "before its delay ended");
        assertTrue(nack.hasErrorDetail(), nack.toString());
        assertEquals("1", nack.getVersionInfo());
        assertEquals(List.of("9080", "9090"), nack.getResourceNamesList());
        assertEquals(nack, onlyAnswer("bad-4"));
    }

    /**
     * Starts a client of the bookinfo resources with {@code initialFetchTimeout}, after {@code seams} (which make its
     * own taking of a response fail) are set. Its first apply.
     */
    private Future<Void> startFailing(Duration initialFetchTimeout, java.util.function.Consumer<AdsClient> seams)
            throws Exception {
        serve(RawAdsServer.once(BOOKINFO, Any::pack, List.of()));
        client = new AdsClient(vertx, AdsOptions.of(NodeOptions.of("p", "default", "10.0.0.1"),
                AdsOptions.XdsServer.plaintext("127.0.0.1", server.port())).withInitialFetchTimeout(
                initialFetchTimeout), holder);
        seams.accept(client);
        Future<Void> first = client.start();
        first.await(WAIT.toSeconds(), TimeUnit.SECONDS);
        return first;
    }

    /** A seam that fails at {@code step} of the responses {@code which} picks, as a failure of the client's own. */
    private static java.util.function.BiConsumer<AdsClient.Step, DiscoveryResponse> failing(AdsClient.Step step,
            java.util.function.Predicate<DiscoveryResponse> which) {
        return (at, r) -> {
            if (at == step && which.test(r)) {
                throw new IllegalStateException("a failure of the client's own");
            }
        };
    }

    @Test
    void aResponseWhoseTakingFailsInTheClientIsNackedWithTheFailureAndTheLastGoodRoutesKeepServingAsEnvoysMux()
            throws Exception {
        startFailing(AdsOptions.DEFAULT_INITIAL_FETCH_TIMEOUT,
                c -> c.taking = failing(AdsClient.Step.DECODING, r -> r.getVersionInfo().equals("2")));
        awaitAcks();

        server.push(response(RDS, "2", "rds-2", route("9080", "c2")));
        DiscoveryRequest nack = awaitRequest(r -> r.getResponseNonce().equals("rds-2"));
        assertTrue(nack.getErrorDetail().getMessage().contains("a failure of the client's own"), nack.toString());
        assertEquals("1", nack.getVersionInfo(), "the version held");
        assertEquals(List.of("9080"), nack.getResourceNamesList());
        assertEquals("c1", clusterFor(holder.current(), "9080", "/"), "the last good route keeps serving");
        assertTrue(client.status().type("RouteConfiguration").nacked());

        // the stream goes on: the next response is taken and ACKed
        server.push(response(RDS, "3", "rds-3", route("9080", "c2")));
        assertFalse(awaitRequest(r -> r.getResponseNonce().equals("rds-3")).hasErrorDetail());
        assertEquals("c2", clusterFor(holder.current(), "9080", "/"));
    }

    /** As it is decoded, or once applied: what the taking changed is put back, the watches failed after. */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(value = AdsClient.Step.class, names = {"DECODING", "APPLIED"})
    void aRouteConfigurationWhoseFirstTakingFailsInTheClientIsServedEmptyEndingItsListenersWarmingAsEnvoysMuxFailsIt(
            AdsClient.Step step) throws Exception {
        // istiod's initial_fetch_timeout 0s: no timeout ends the listener's warming
        startFailing(Duration.ZERO, c -> c.taking = failing(step, r -> r.getTypeUrl().equals(RDS)
                && r.getVersionInfo().equals("2")));
        awaitAcks();
        // the listener moves to route 9090: it warms, 9080 serving meanwhile
        server.push(response(ResourceType.LISTENER.typeUrl(), "2", "lds-2", listener("0.0.0.0_9080", 9080, "9090")));
        awaitRequest(r -> r.getTypeUrl().equals(RDS) && r.getResourceNamesList().equals(List.of("9080", "9090")));
        assertEquals(java.util.Set.of("0.0.0.0_9080"), client.dynamicState().warmingListeners().keySet());

        // as Envoy's RDS subscription, whose watch the mux fails (onConfigUpdateFailed): its init target is ready
        server.push(response(RDS, "2", "rds-2", route("9090", "c1")));
        DiscoveryRequest nack = awaitRequest(r -> r.getResponseNonce().equals("rds-2"));
        assertTrue(nack.getErrorDetail().getMessage().contains("a failure of the client's own"), nack.toString());
        assertEquals("1", nack.getVersionInfo(), "the version held");
        assertEquals(List.of("9090"), nack.getResourceNamesList(), "the listener done warming lets go of 9080");
        assertEquals(Map.of(), client.dynamicState().warmingListeners());
        assertNotNull(holder.current().resources().routes().get("9090"), "served empty");
        assertNull(clusterFor(holder.current(), "9090", "/"), "served empty");
        assertEquals(1, client.status().type("RouteConfiguration").resources(), "9080 is no longer held");
    }

    @Test
    void aListenerResponseWhoseTakingFailsKeepsTheRouteConfigurationsItWouldLetGoOfNotAskingForThemAgainAsEnvoysMux()
            throws Exception {
        String lds = ResourceType.LISTENER.typeUrl();
        startFailing(AdsOptions.DEFAULT_INITIAL_FETCH_TIMEOUT, c -> c.taking = failing(AdsClient.Step.APPLIED,
                r -> r.getTypeUrl().equals(lds) && r.getVersionInfo().equals("3")));
        awaitAcks();
        server.push(response(lds, "2", "lds-2", listener("0.0.0.0_9080", 9080, "9080"),
                listener("0.0.0.0_9090", 9090, "9090")));
        awaitRequest(r -> r.getTypeUrl().equals(RDS) && r.getResourceNamesList().equals(List.of("9080", "9090")));
        server.push(response(RDS, "2", "rds-2", route("9080", "c1"), route("9090", "c1")));
        assertFalse(awaitRequest(r -> r.getResponseNonce().equals("rds-2")).hasErrorDetail());

        // a response dropping 0.0.0.0_9090 fails once applied: as Envoy never applies it, 9090 stays held
        int before = server.requests.size();
        server.push(response(lds, "3", "lds-3", listener("0.0.0.0_9080", 9080, "9080")));
        DiscoveryRequest nack = awaitRequest(r -> r.getResponseNonce().equals("lds-3"));
        assertTrue(nack.getErrorDetail().getMessage().contains("a failure of the client's own"), nack.toString());
        assertEquals(2, client.status().type("RouteConfiguration").resources(), "9090 is held still");
        assertEquals(Map.of(), client.dynamicState().warmingListeners(), "0.0.0.0_9090 does not warm");
        assertNotNull(holder.current().resources().listeners().get("0.0.0.0_9090"));
        assertEquals("c1", clusterFor(holder.current(), "9090", "/"), "9090 serves");
        onlyAnswer("lds-3");
        assertEquals(List.of(), server.requests.stream().skip(before)
                .filter(r -> r.getTypeUrl().equals(RDS) && !r.getResponseNonce().equals("after")).toList(),
                "9090 is not asked for again");
    }

    @Test
    void aFirstClusterResponseWhoseTakingFailsInTheClientEndsTheInitialFetchAsEnvoysMuxFailsItsWatch()
            throws Exception {
        // the initial fetch timeout is longer than the wait: only the failed watch lets the first apply go on
        Future<Void> first = startFailing(WAIT.multipliedBy(3),
                c -> c.taking = failing(AdsClient.Step.DECODING, r -> r.getTypeUrl().equals(CDS)));
        assertTrue(first.succeeded(), () -> "first apply: " + first.cause());
        assertTrue(client.status().type("Cluster").nacked());
        assertEquals(Map.of(), holder.current().resources().clusters());
    }

    @Test
    void aFailureInTheClientAfterAResponseIsTakenLeavesItsAckAndTheVersionItClaimsAsEnvoysMuxAnswersAfterItsTry()
            throws Exception {
        startFailing(AdsOptions.DEFAULT_INITIAL_FETCH_TIMEOUT, c -> c.taking = failing(AdsClient.Step.ANSWERED,
                r -> r.getTypeUrl().equals(RDS) && r.getVersionInfo().equals("2")));
        awaitAcks();

        server.push(response(RDS, "2", "rds-2", route("9080", "c2")));
        DiscoveryRequest ack = awaitRequest(r -> r.getResponseNonce().equals("rds-2"));
        assertFalse(ack.hasErrorDetail(), ack.toString());
        assertEquals("2", ack.getVersionInfo());
        assertEquals("c2", clusterFor(holder.current(), "9080", "/"), "what was ACKed serves");
        assertFalse(client.status().type("RouteConfiguration").nacked());

        // a new stream claims the version in force
        int before = server.requests.size();
        server.endStream(io.grpc.Status.UNAVAILABLE);
        assertEquals("2", awaitRequest(before, r -> r.getTypeUrl().equals(RDS)).getVersionInfo());
    }

    /**
     * Asserts that the response {@code nonce} was answered by one request, an ACK of {@code version} naming
     * {@code names}.
     */
    private void assertOneAnswer(String nonce, String version, List<String> names) throws InterruptedException {
        DiscoveryRequest answer = onlyAnswer(nonce);
        assertEquals(version, answer.getVersionInfo(), answer.toString());
        assertEquals(names, answer.getResourceNamesList());
        assertFalse(answer.hasErrorDetail(), answer.toString());
    }

    /**
     * The one request answering the response {@code nonce}, asserting there is one: a response pushed after it is
     * answered, and the client answers in order.
     */
    private DiscoveryRequest onlyAnswer(String nonce) throws InterruptedException {
        server.push(response(RDS, "after", "after", route("9080", "c1")));
        awaitRequest(r -> r.getResponseNonce().equals("after"));
        List<DiscoveryRequest> answers = server.requests.stream().filter(r -> r.getResponseNonce().equals(nonce))
                .toList();
        assertEquals(1, answers.size(), answers.toString());
        return answers.get(0);
    }

    /** A state of the world response of {@code type} holding {@code resources}, bare. */
    private static DiscoveryResponse response(String type, String version, String nonce, Message... resources) {
        DiscoveryResponse.Builder b = DiscoveryResponse.newBuilder().setTypeUrl(type).setVersionInfo(version)
                .setNonce(nonce);
        for (Message m : resources) {
            b.addResources(Any.pack(m));
        }
        return b.build();
    }

    /** The first state of the world request that matches, waiting for it. */
    private DiscoveryRequest awaitRequest(java.util.function.Predicate<DiscoveryRequest> p)
            throws InterruptedException {
        return awaitRequest(0, p);
    }

    /** The first state of the world request after the first {@code skip} that matches, waiting for it. */
    private DiscoveryRequest awaitRequest(int skip, java.util.function.Predicate<DiscoveryRequest> p)
            throws InterruptedException {
        await(() -> server.requests.stream().skip(skip).anyMatch(p), WAIT, "a request");
        return server.requests.stream().skip(skip).filter(p).findFirst().orElseThrow();
    }

    /** Serves the bookinfo resources over delta xDS, {@code alsoWithClusters} first; awaits the first apply. */
    private void serveDelta(List<DeltaDiscoveryResponse> alsoWithClusters) throws Exception {
        serveDelta(RawAdsServer.deltaOnce(BOOKINFO, alsoWithClusters), WAIT);
    }

    /** Serves over delta xDS what {@code answer} gives, with no initial fetch timeout; awaits the first apply. */
    private void serveDelta(Function<DeltaDiscoveryRequest, List<DeltaDiscoveryResponse>> answer, Duration wait)
            throws Exception {
        server = new RawAdsServer(r -> List.of(), answer);
        client = new AdsClient(vertx, AdsOptions.of(NodeOptions.of("p", "default", "10.0.0.1"),
                AdsOptions.XdsServer.plaintext("127.0.0.1", server.port())).withDelta(true)
                .withInitialFetchTimeout(Duration.ZERO), holder);
        Future<Void> first = client.start();
        first.await(wait.toMillis(), TimeUnit.MILLISECONDS);
        assertTrue(first.succeeded(), () -> "first apply: " + first.cause());
    }

    private static Resource wrapped(Message m) {
        return Resource.newBuilder().setName(XdsFixtures.name(m)).setVersion("1").setResource(Any.pack(m)).build();
    }

    @Test
    void aResponseOfATypeNotYetAskedForIsIgnoredAsEnvoyDoesSinceItsAckWouldSubscribeToEveryResourceOfIt()
            throws Exception {
        DeltaDiscoveryResponse stray = DeltaDiscoveryResponse.newBuilder().setTypeUrl(RDS)
                .setSystemVersionInfo("9").setNonce("stray").addResources(wrapped(route("other", "c1"))).build();
        serveDelta(List.of(stray));
        assertEquals("c1", clusterFor(holder.current(), "9080", "/"));
        await(() -> server.deltaRequests.stream().anyMatch(r -> r.getTypeUrl().equals(RDS)
                && r.getResponseNonce().startsWith("nonce-")), WAIT, "the ACK of the routes asked for");
        assertFalse(server.deltaRequests.stream().anyMatch(r -> r.getResponseNonce().equals("stray")),
                "neither ACKed nor NACKed: " + server.deltaRequests);
        DeltaDiscoveryRequest first = server.deltaRequests.stream().filter(r -> r.getTypeUrl().equals(RDS))
                .findFirst().orElseThrow();
        assertEquals(List.of("9080"), first.getResourceNamesSubscribeList(),
                "the first RDS request names what it asks for (none would be a wildcard one): " + first);
        assertEquals(List.of("9080"), client.status().type("RouteConfiguration").subscribed());
    }

    @Test
    void aDeltaResponseNamingAResourceTwiceAmongItsResourcesAndRemovalsIsRejectedWholeAsEnvoyRejectsIt()
            throws Exception {
        serveDelta(List.of());
        server.push(DeltaDiscoveryResponse.newBuilder().setTypeUrl(CDS).setSystemVersionInfo("2").setNonce("both")
                .addResources(wrapped(edsCluster("c2"))).addResources(wrapped(edsCluster("c3")))
                .addRemovedResources("c2").build());
        DeltaDiscoveryRequest nack = awaitDeltaRequest(r -> r.getResponseNonce().equals("both"));
        assertTrue(nack.hasErrorDetail(), nack.toString());
        assertTrue(nack.getErrorDetail().getMessage().contains("\"c2\""), nack.toString());
        assertNull(holder.current().cluster("c2"));
        assertNull(holder.current().cluster("c3"), "nothing of the response applied");
        assertNotNull(holder.current().cluster("c1"));
        assertEquals("2", client.status().type("Cluster").lastNackVersion());

        // twice among its resources: the same
        server.push(DeltaDiscoveryResponse.newBuilder().setTypeUrl(CDS).setSystemVersionInfo("3").setNonce("twice")
                .addResources(wrapped(edsCluster("c2"))).addResources(wrapped(edsCluster("c3")))
                .addResources(wrapped(edsCluster("c2"))).build());
        nack = awaitDeltaRequest(r -> r.getResponseNonce().equals("twice"));
        assertTrue(nack.hasErrorDetail(), nack.toString());
        assertNull(holder.current().cluster("c3"), "nothing of the response applied");
    }

    @Test
    void aRouteTheServerRemovesWhileStillAskedForKeepsServingButItsVersionIsNotClaimedOnAReconnectAsEnvoys()
            throws Exception {
        serveDelta(List.of());
        server.push(DeltaDiscoveryResponse.newBuilder().setTypeUrl(RDS).setSystemVersionInfo("2").setNonce("rm")
                .addRemovedResources("9080").build());
        DeltaDiscoveryRequest ack = awaitDeltaRequest(r -> r.getResponseNonce().equals("rm"));
        assertFalse(ack.hasErrorDetail(), ack.toString());
        assertEquals("c1", clusterFor(holder.current(), "9080", "/"), "the route keeps serving");

        int before = server.deltaRequests.size();
        server.endDeltaStream();
        DeltaDiscoveryRequest again = awaitDeltaRequest(before, r -> r.getTypeUrl().equals(RDS));
        assertEquals(List.of("9080"), again.getResourceNamesSubscribeList(), again.toString());
        assertEquals(Map.of(), again.getInitialResourceVersionsMap(),
                "the server removed it: no version of it is held as far as the server goes");
        DeltaDiscoveryRequest clusters = awaitDeltaRequest(before, r -> r.getTypeUrl().equals(CDS));
        assertEquals(Map.of("c1", "1"), clusters.getInitialResourceVersionsMap());

        // sent again: its version is told on the next reconnect
        awaitDeltaRequest(before, r -> r.getTypeUrl().equals(RDS) && r.getResponseNonce().startsWith("nonce-"));
        int second = server.deltaRequests.size();
        server.endDeltaStream();
        DeltaDiscoveryRequest third = awaitDeltaRequest(second, r -> r.getTypeUrl().equals(RDS));
        assertEquals(Map.of("9080", "1"), third.getInitialResourceVersionsMap());
    }

    @Test
    void aLoadAssignmentTheServerRemovesBeforeItEverArrivedEndsItsClustersWarmingWithNoEndpointsAsEnvoysEds()
            throws Exception {
        String eds = ResourceType.ENDPOINT.typeUrl();
        var bookinfo = RawAdsServer.deltaOnce(BOOKINFO, List.of());
        DeltaDiscoveryResponse removal = DeltaDiscoveryResponse.newBuilder().setTypeUrl(eds)
                .setSystemVersionInfo("1").setNonce("rm").addRemovedResources("c1").build();
        serveDelta(r -> r.getTypeUrl().equals(eds) && r.getResponseNonce().isEmpty() ? List.of(removal)
                : bookinfo.apply(r), Duration.ofSeconds(5));
        assertEquals("c1", clusterFor(holder.current(), "9080", "/"));
        assertEquals(0, AdsClusterTest.hosts(holder.current().endpoints("c1")));
        assertFalse(awaitDeltaRequest(r -> r.getResponseNonce().equals("rm")).hasErrorDetail());
        assertEquals(List.of("c1"), client.status().type("ClusterLoadAssignment").subscribed(), "still asked for");
    }

    @Test
    void aBadRouteNotAskedForInADeltaResponseIsDroppedUnreadAndTheResponseAckedAsEnvoysWatchMapDropsIt()
            throws Exception {
        serveDelta(List.of());
        server.push(DeltaDiscoveryResponse.newBuilder().setTypeUrl(RDS).setSystemVersionInfo("2").setNonce("extra")
                .addResources(wrapped(XdsFixtures.badRoute("other"))).build());
        DeltaDiscoveryRequest ack = awaitDeltaRequest(r -> r.getResponseNonce().equals("extra"));
        assertFalse(ack.hasErrorDetail(), ack.toString());
        assertFalse(client.status().type("RouteConfiguration").nacked());
        assertNull(client.dynamicState().failure(ResourceType.ROUTE, "other"));
        assertEquals("c1", clusterFor(holder.current(), "9080", "/"));
    }

    private static final String NDS = AdsOptions.NAME_TABLE_TYPE;

    /** An agent type's resource: bytes standing for a name table, which the handlers of these tests only compare. */
    private static Any table(String content) {
        return Any.newBuilder().setTypeUrl(NDS).setValue(com.google.protobuf.ByteString.copyFromUtf8(content)).build();
    }

    /** A handler keeping what it is given, which refuses a table named "bad". */
    private static AdsOptions.AgentHandler keeping(List<Any> taken) {
        return any -> {
            if (any.getValue().toStringUtf8().equals("bad")) {
                throw new IllegalArgumentException("table: bad");
            }
            taken.add(any);
        };
    }

    @Test
    void anAgentTypeIsAskedForAfterTheListenersAndItsResourceHandedOnThenAckedOrNackedAsIstiosAgentDoes()
            throws Exception {
        List<Any> taken = new java.util.concurrent.CopyOnWriteArrayList<>();
        Function<DiscoveryRequest, List<DiscoveryResponse>> bookinfo = RawAdsServer.once(BOOKINFO, Any::pack,
                List.of());
        int port = serve(r -> !r.getTypeUrl().equals(NDS) ? bookinfo.apply(r) : r.getResponseNonce().isEmpty()
                ? List.of(DiscoveryResponse.newBuilder().setTypeUrl(NDS).setVersionInfo("1").setNonce("nds-1")
                        .addResources(table("names-1")).build())
                : List.of());
        client = new AdsClient(vertx, AdsOptions.of(NodeOptions.of("p", "default", "10.0.0.1"),
                AdsOptions.XdsServer.plaintext("127.0.0.1", port)).withAgentType(NDS, keeping(taken)), holder);
        client.start().await(WAIT.toSeconds(), TimeUnit.SECONDS);

        await(() -> server.requests.stream().anyMatch(r -> r.getResponseNonce().equals("nds-1")), WAIT, "NDS ACK");
        assertEquals(List.of(table("names-1")), taken);
        List<String> order = server.requests.stream().filter(r -> r.getResponseNonce().isEmpty())
                .map(DiscoveryRequest::getTypeUrl).toList();
        assertEquals(order.indexOf(ResourceType.LISTENER.typeUrl()) + 1, order.indexOf(NDS), order.toString());
        DiscoveryRequest first = server.requests.stream().filter(r -> r.getTypeUrl().equals(NDS)).findFirst()
                .orElseThrow();
        assertEquals(0, first.getResourceNamesCount(), first.toString());
        DiscoveryRequest ack = server.requests.stream().filter(r -> r.getResponseNonce().equals("nds-1"))
                .findFirst().orElseThrow();
        assertEquals("1", ack.getVersionInfo());
        assertFalse(ack.hasErrorDetail(), ack.toString());

        server.push(DiscoveryResponse.newBuilder().setTypeUrl(NDS).setVersionInfo("2").setNonce("nds-2")
                .addResources(table("bad")).build());
        await(() -> server.requests.stream().anyMatch(r -> r.getResponseNonce().equals("nds-2")), WAIT, "NDS NACK");
        DiscoveryRequest nack = server.requests.stream().filter(r -> r.getResponseNonce().equals("nds-2"))
                .findFirst().orElseThrow();
        assertEquals("2", nack.getVersionInfo());
        assertTrue(nack.getErrorDetail().getMessage().contains("table: bad"), nack.toString());
        assertEquals(1, taken.size());

        // one with no resource is left unanswered; the next is taken
        server.push(DiscoveryResponse.newBuilder().setTypeUrl(NDS).setVersionInfo("3").setNonce("nds-3").build());
        server.push(DiscoveryResponse.newBuilder().setTypeUrl(NDS).setVersionInfo("4").setNonce("nds-4")
                .addResources(table("names-4")).build());
        await(() -> server.requests.stream().anyMatch(r -> r.getResponseNonce().equals("nds-4")), WAIT, "NDS ACK");
        assertFalse(server.requests.stream().anyMatch(r -> r.getResponseNonce().equals("nds-3")));
        assertEquals(List.of(table("names-1"), table("names-4")), taken);
        assertEquals("c1", clusterFor(holder.current(), "9080", "/"));
    }

    @Test
    void overDeltaXdsAnAgentTypesResourceIsHandedOnOutOfItsWrapper() throws Exception {
        List<Any> taken = new java.util.concurrent.CopyOnWriteArrayList<>();
        Function<DeltaDiscoveryRequest, List<DeltaDiscoveryResponse>> bookinfo = RawAdsServer.deltaOnce(BOOKINFO,
                List.of());
        server = new RawAdsServer(r -> List.of(), r -> !r.getTypeUrl().equals(NDS) ? bookinfo.apply(r)
                : r.getResponseNonce().isEmpty() ? List.of(DeltaDiscoveryResponse.newBuilder().setTypeUrl(NDS)
                        .setSystemVersionInfo("1").setNonce("nds-1").addResources(Resource.newBuilder()
                                .setVersion("1").setResource(table("names-1"))).build())
                : List.of());
        client = new AdsClient(vertx, AdsOptions.of(NodeOptions.of("p", "default", "10.0.0.1"),
                AdsOptions.XdsServer.plaintext("127.0.0.1", server.port())).withDelta(true)
                .withAgentType(NDS, keeping(taken)), holder);
        client.start().await(WAIT.toSeconds(), TimeUnit.SECONDS);

        DeltaDiscoveryRequest ack = awaitDeltaRequest(r -> r.getResponseNonce().equals("nds-1"));
        assertFalse(ack.hasErrorDetail(), ack.toString());
        assertEquals(List.of(table("names-1")), taken);
        server.push(DeltaDiscoveryResponse.newBuilder().setTypeUrl(NDS).setSystemVersionInfo("2").setNonce("nds-2")
                .addResources(Resource.newBuilder().setVersion("2").setResource(table("bad"))).build());
        DeltaDiscoveryRequest nack = awaitDeltaRequest(r -> r.getResponseNonce().equals("nds-2"));
        assertTrue(nack.getErrorDetail().getMessage().contains("table: bad"), nack.toString());

        // a new stream asks again, once it has asked for the listeners, as the agent on each of Envoy's streams;
        // the table sent on it is taken
        int before = server.deltaRequests.size();
        server.endDeltaStream();
        awaitDeltaRequest(before, r -> r.getTypeUrl().equals(NDS) && r.getResponseNonce().isEmpty());
        // a copy: the client may still send (an ACK) while the list is read, which a sublist of it would not take
        List<DeltaDiscoveryRequest> sent = List.copyOf(server.deltaRequests);
        List<String> asked = sent.subList(before, sent.size()).stream()
                .filter(r -> r.getResponseNonce().isEmpty()).map(DeltaDiscoveryRequest::getTypeUrl).toList();
        assertEquals(asked.indexOf(ResourceType.LISTENER.typeUrl()) + 1, asked.indexOf(NDS), asked.toString());
        assertEquals(1, asked.stream().filter(NDS::equals).count(), asked.toString());
        assertFalse(awaitDeltaRequest(before, r -> r.getResponseNonce().equals("nds-1")).hasErrorDetail());
        assertEquals(List.of(table("names-1"), table("names-1")), taken);
    }

    private DeltaDiscoveryRequest awaitDeltaRequest(java.util.function.Predicate<DeltaDiscoveryRequest> p)
            throws InterruptedException {
        return awaitDeltaRequest(0, p);
    }

    /** The first delta request after the first {@code skip} that matches, waiting for it. */
    private DeltaDiscoveryRequest awaitDeltaRequest(int skip, java.util.function.Predicate<DeltaDiscoveryRequest> p)
            throws InterruptedException {
        await(() -> server.deltaRequests.stream().skip(skip).anyMatch(p), WAIT, "a delta request");
        return server.deltaRequests.stream().skip(skip).filter(p).findFirst().orElseThrow();
    }
}
