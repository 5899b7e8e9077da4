package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.upstream.TestCertificates.Issued;
import dev.inmesh.runtime.xds.ads.XdsFixtures;
import dev.inmesh.runtime.xds.ads.XdsStatus;
import dev.inmesh.runtime.xds.ads.XdsStatusJson;
import dev.inmesh.runtime.xds.sds.SdsSecretManager;
import dev.inmesh.runtime.xds.sds.SdsTestServer;
import io.envoyproxy.controlplane.cache.v3.Snapshot;
import com.google.protobuf.Any;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.core.v3.AggregatedConfigSource;
import io.envoyproxy.envoy.config.core.v3.ApiVersion;
import io.envoyproxy.envoy.config.core.v3.ConfigSource;
import io.envoyproxy.envoy.config.core.v3.TransportSocket;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.CommonTlsContext;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.SubjectAltNameMatcher;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext;
import io.envoyproxy.envoy.type.matcher.v3.StringMatcher;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.Secret;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.ext.web.client.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * SDS over the ADS stream in the in-JVM mesh ({@code inmesh.xds.address}): java-control-plane serves a cluster whose
 * TLS context takes its certificate and CAs with {@code sds_config: {ads: {}}}, and the secrets themselves on the same
 * stream, as Envoy subscribes to them there. The TLS server sees the certificate the control plane sent, a rotated one
 * from a later connection on, and, after a bad secret (NACKed by name), still the last good one.
 */
@Timeout(60)
class MeshSdsAdsTest extends MeshOnXdsRig {
    private static final String RATINGS = MeshSdsGrpcTest.RATINGS;
    private static final Issued MESH_CA = MeshSdsGrpcTest.MESH_CA;
    private static final Issued CLIENT = MeshSdsGrpcTest.CLIENT;
    private static final Issued ROTATED = MeshSdsGrpcTest.ROTATED;
    private static final Duration WAIT = Duration.ofSeconds(20);

    private int tls;

    @BeforeEach
    void startTlsServer() throws Exception {
        tls = vertx.createHttpServer(TestCertificates.requiringClientCertificate(MeshSdsGrpcTest.SERVER, MESH_CA))
                .requestHandler(TestCertificates::answerClientSubject)
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    /** The cluster {@code reviews} to the TLS server, its certificate {@code default} and CAs {@code ROOTCA} on ADS. */
    private Cluster cluster() {
        return cluster(0);
    }

    /** The same, its config sources' {@code initial_fetch_timeout} {@code seconds} (0: not set). */
    private Cluster cluster(int seconds) {
        var ads = ConfigSource.newBuilder().setAds(AggregatedConfigSource.getDefaultInstance())
                .setResourceApiVersion(ApiVersion.V3);
        if (seconds > 0) {
            ads.setInitialFetchTimeout(com.google.protobuf.Duration.newBuilder().setSeconds(seconds));
        }
        var context = UpstreamTlsContext.newBuilder().setSni("reviews.default.svc.cluster.local")
                .setCommonTlsContext(CommonTlsContext.newBuilder()
                        .addTlsCertificateSdsSecretConfigs(SdsSecretConfig.newBuilder().setName("default")
                                .setSdsConfig(ads))
                        .setCombinedValidationContext(CommonTlsContext.CombinedCertificateValidationContext
                                .newBuilder()
                                .setDefaultValidationContext(CertificateValidationContext.newBuilder()
                                        .addMatchTypedSubjectAltNames(SubjectAltNameMatcher.newBuilder()
                                                .setSanType(SubjectAltNameMatcher.SanType.URI)
                                                .setMatcher(StringMatcher.newBuilder().setExact(RATINGS))))
                                .setValidationContextSdsSecretConfig(SdsSecretConfig.newBuilder().setName("ROOTCA")
                                        .setSdsConfig(ads))));
        return XdsFixtures.staticCluster("reviews", tls).toBuilder()
                .setConnectTimeout(com.google.protobuf.Duration.newBuilder().setSeconds(5))
                .setTransportSocket(TransportSocket.newBuilder().setName("envoy.transport_sockets.tls")
                        .setTypedConfig(Any.pack(context.build()))).build();
    }

    /** The cluster, a listener and route to it, and {@code secrets} of version {@code secretsVersion}. */
    private Snapshot snapshot(String secretsVersion, Secret... secrets) {
        return snapshot(List.of(cluster()), "1", secretsVersion, secrets);
    }

    private static Snapshot snapshot(List<Cluster> clusters, String version, String secretsVersion,
                                     Secret... secrets) {
        return Snapshot.create(clusters, version, List.of(), version,
                List.of(XdsFixtures.listener("0.0.0.0_9080", 9080, "9080")), version,
                List.of(XdsFixtures.route("9080", "reviews")), version, List.of(secrets), secretsVersion);
    }

    private Future<Void> start(boolean delta) {
        return start(new MeshOptions().setAdminPort(-1).setXdsDelta(delta));
    }

    private Future<Void> start(MeshOptions options) {
        mesh = Mesh.create(vertx, options.setXdsAddress("127.0.0.1:" + server.port()));
        return mesh.start();
    }

    /** The secrets {@code default} ({@link #CLIENT}) and {@code ROOTCA} as version s1, and a mesh started on them. */
    private void startWithSecrets(boolean delta) throws Exception {
        server.set(snapshot("s1", SdsTestServer.certificate("default", CLIENT), SdsTestServer.root("ROOTCA",
                MESH_CA)));
        start(delta).await(WAIT.toSeconds(), TimeUnit.SECONDS);
        assertEquals("200 client=CN=productpage", call());
    }

    private String call() throws Exception {
        HttpResponse<Buffer> r = mesh.webClient().get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS);
        return r.statusCode() + " " + r.bodyAsString();
    }

    /** Calls until the answer contains {@code part} (a pooled connection keeps its certificate), or 10 s. */
    private String callUntil(String part) throws Exception {
        String last = null;
        for (int i = 0; i < 100 && (last == null || !last.contains(part)); i++) {
            Thread.sleep(100);
            last = call();
        }
        return last;
    }

    private SdsSecretManager secrets() {
        return ((DefaultMesh) mesh).sds();
    }

    @Test
    void aClusterPresentsTheCertificateItsTlsContextTookOnTheAdsStream() throws Exception {
        startWithSecrets(false);
        // asked for on the ADS stream once the cluster named them, after CDS; both ACKed
        DiscoveryRequest ask = server.awaitRequest(r -> r.getTypeUrl().equals(SdsSecretManager.SECRET_TYPE_URL),
                WAIT);
        assertEquals(List.of("ROOTCA", "default"), ask.getResourceNamesList());
        assertTrue(server.requests.indexOf(ask) > server.requests.indexOf(server.awaitRequest(
                r -> r.getTypeUrl().endsWith("Cluster"), WAIT)), "SDS after CDS");
        server.awaitRequest(r -> r.getTypeUrl().equals(SdsSecretManager.SECRET_TYPE_URL)
                && r.getVersionInfo().equals("s1") && !r.getResponseNonce().isEmpty() && !r.hasErrorDetail(), WAIT);
        assertEquals(List.of("default", "ROOTCA"), secrets().active().stream().map(s -> s.name()).sorted(
                java.util.Comparator.reverseOrder()).toList());
        assertTrue(secrets().warming().isEmpty());
    }

    @Test
    void theSecretsOfTheAdsStreamAreKeptInMemoryWithNoFileWrittenForThem() throws Exception {
        KeysOnDisk disk = KeysOnDisk.fromNow();

        startWithSecrets(false);
        server.set(snapshot("s2", SdsTestServer.certificate("default", ROTATED), SdsTestServer.root("ROOTCA",
                MESH_CA)));
        assertEquals("200 client=CN=productpage-rotated", callUntil("rotated"));

        assertEquals(List.of(), disk.filesHolding(CLIENT.keyPem(), ROTATED.keyPem()),
                "no key of the ADS stream's secrets is written to disk");
        assertEquals(ROTATED.keyPem(), secrets().active().stream().filter(s -> s.name().equals("default"))
                .findFirst().orElseThrow().privateKey());
    }

    @Test
    void overDeltaXdsTheSecretsAreSubscribedToByName() throws Exception {
        startWithSecrets(true);
        DeltaDiscoveryRequest ask = server.awaitDeltaRequest(r -> r.getTypeUrl().equals(
                SdsSecretManager.SECRET_TYPE_URL), WAIT);
        assertEquals(List.of("ROOTCA", "default"), ask.getResourceNamesSubscribeList());
        assertTrue(server.requests.isEmpty(), "no state of the world stream");
    }

    @Test
    void aRotatedSecretIsPresentedFromTheNextConnectionOnceAckedAndABadOneIsNackedByNameKeepingTheLastGood()
            throws Exception {
        startWithSecrets(false);

        server.set(snapshot("s2", SdsTestServer.certificate("default", ROTATED), SdsTestServer.root("ROOTCA",
                MESH_CA)));
        server.awaitRequest(r -> r.getTypeUrl().equals(SdsSecretManager.SECRET_TYPE_URL)
                && r.getVersionInfo().equals("s2") && !r.hasErrorDetail(), WAIT);
        // pushed to the cluster's TLS on its arrival, before the ACK: the pool's next connection presents it
        assertEquals("200 client=CN=productpage-rotated", call());

        // the rotated certificate with the first one's key: no usable pair
        Secret bad = SdsTestServer.certificate("default", ROTATED).toBuilder()
                .setTlsCertificate(SdsTestServer.certificate("default", ROTATED).getTlsCertificate().toBuilder()
                        .setPrivateKey(SdsTestServer.certificate("default", CLIENT).getTlsCertificate()
                                .getPrivateKey())).build();
        server.set(snapshot("s3", bad, SdsTestServer.root("ROOTCA", MESH_CA)));
        DiscoveryRequest nack = server.awaitRequest(r -> r.getTypeUrl().equals(SdsSecretManager.SECRET_TYPE_URL)
                && r.hasErrorDetail(), WAIT);
        assertEquals("s2", nack.getVersionInfo(), "the NACK carries the version last taken");
        String detail = nack.getErrorDetail().getMessage();
        assertTrue(detail.startsWith("Secret \"default\": tls_certificate"), detail);
        assertEquals(detail.indexOf("\"default\""), detail.lastIndexOf("\"default\""), "named once: " + detail);
        assertEquals("s2", secrets().active().stream().filter(s -> s.name().equals("default")).findFirst()
                .orElseThrow().versionInfo());
        for (int i = 0; i < 5; i++) {
            assertEquals("200 client=CN=productpage-rotated", call(), "the last good secret keeps serving");
            Thread.sleep(100);
        }
    }

    @Test
    void aSecretFailingEnvoysProtoConstraintsRejectsTheWholeSecretResponseAndNoneOfItIsTaken() throws Exception {
        startWithSecrets(false);
        // the rotated certificate, beside CAs whose max_verify_depth is past Envoy's bound (lte: 100)
        Secret root = SdsTestServer.root("ROOTCA", MESH_CA);
        root = root.toBuilder().setValidationContext(root.getValidationContext().toBuilder()
                .setMaxVerifyDepth(com.google.protobuf.UInt32Value.of(101))).build();
        server.set(snapshot("s2", SdsTestServer.certificate("default", ROTATED), root));
        DiscoveryRequest nack = server.awaitRequest(r -> r.getTypeUrl().equals(SdsSecretManager.SECRET_TYPE_URL)
                && r.hasErrorDetail(), WAIT);
        assertEquals("s1", nack.getVersionInfo(), "the NACK carries the version last taken");
        assertEquals("the whole Secret response is rejected: Secret \"ROOTCA\": validation_context.max_verify_depth: "
                + "101 (expected: <= 100)", nack.getErrorDetail().getMessage());
        assertEquals("s1", secrets().active().stream().filter(s -> s.name().equals("default")).findFirst()
                .orElseThrow().versionInfo(), "the rotated certificate not taken either");
        assertEquals("200 client=CN=productpage", call());
    }

    /** The Secret type's entry of the admin server's {@code /debug/xds_status}, or null when it lists none. */
    private XdsStatus.TypeStatus secretStatus(io.vertx.ext.web.client.WebClient admin) {
        try {
            return XdsStatusJson.decode(admin.get(((DefaultMesh) mesh).adminPort(), "127.0.0.1",
                    "/debug/xds_status").send().await(10, TimeUnit.SECONDS).bodyAsString()).type("Secret");
        } catch (java.util.concurrent.TimeoutException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void debugXdsStatusListsTheSecretTypeWithItsVersionNonceSubscriptionAndLastNack() throws Exception {
        server.set(snapshot("s1", SdsTestServer.certificate("default", CLIENT), SdsTestServer.root("ROOTCA",
                MESH_CA)));
        start(new MeshOptions().setAdminPort(0)).await(WAIT.toSeconds(), TimeUnit.SECONDS);
        XdsFixtures.await(() -> ((DefaultMesh) mesh).adminPort() > 0, WAIT, "the admin server");
        io.vertx.ext.web.client.WebClient admin = io.vertx.ext.web.client.WebClient.create(vertx);
        XdsFixtures.await(() -> secretStatus(admin) != null && secretStatus(admin).ackedVersion().equals("s1"),
                WAIT, "the Secret type ACKed");
        XdsStatus.TypeStatus t = secretStatus(admin);
        assertEquals(SdsSecretManager.SECRET_TYPE_URL, t.typeUrl());
        assertFalse(t.nonce().isEmpty());
        assertEquals(List.of("ROOTCA", "default"), t.subscribed());
        assertEquals(2, t.resources());
        assertFalse(t.wildcard() || t.nacked());

        // a certificate with another's key: NACKed by name, the version ACKed before kept
        Secret bad = SdsTestServer.certificate("default", ROTATED).toBuilder()
                .setTlsCertificate(SdsTestServer.certificate("default", ROTATED).getTlsCertificate().toBuilder()
                        .setPrivateKey(SdsTestServer.certificate("default", CLIENT).getTlsCertificate()
                                .getPrivateKey())).build();
        server.set(snapshot("s2", bad, SdsTestServer.root("ROOTCA", MESH_CA)));
        XdsFixtures.await(() -> secretStatus(admin).nacked(), WAIT, "the Secret type NACKed");
        t = secretStatus(admin);
        assertEquals("s1", t.ackedVersion());
        assertEquals("s2", t.lastNackVersion());
        assertTrue(t.lastNackError().contains("\"default\""), t.lastNackError());
    }

    @Test
    void aClusterWhoseSecretsHaveNotArrivedWaitsForThemAndIsAppliedOnceTheyAre() throws Exception {
        server.set(snapshot("s0"));
        Future<Void> started = start(false);
        server.awaitRequest(r -> r.getTypeUrl().equals(SdsSecretManager.SECRET_TYPE_URL), WAIT);
        Thread.sleep(500);
        assertFalse(started.isComplete(), "started before the cluster's secrets arrived");
        assertTrue(server.requests.stream().noneMatch(r -> r.getTypeUrl().endsWith("Cluster")
                && !r.getResponseNonce().isEmpty()), "the cluster's response is neither ACKed nor NACKed yet");
        assertEquals(List.of("ROOTCA", "default"), secrets().warming().stream().sorted().toList());

        server.set(snapshot("s1", SdsTestServer.certificate("default", CLIENT), SdsTestServer.root("ROOTCA",
                MESH_CA)));
        started.await(WAIT.toSeconds(), TimeUnit.SECONDS);
        DiscoveryRequest ack = server.awaitRequest(r -> r.getTypeUrl().endsWith("Cluster")
                && !r.getResponseNonce().isEmpty(), WAIT);
        assertFalse(ack.hasErrorDetail());
        assertEquals("200 client=CN=productpage", call());
    }

    @Test
    void aSecretNotInWithinItsInitialFetchTimeoutRefusesTheClusterByNameUntilItArrives() throws Exception {
        server.set(snapshot(List.of(cluster(1)), "1", "s0"));
        start(false).await(WAIT.toSeconds(), TimeUnit.SECONDS);
        DiscoveryRequest nack = server.awaitRequest(r -> r.getTypeUrl().endsWith("Cluster") && r.hasErrorDetail(),
                WAIT);
        assertTrue(nack.getErrorDetail().getMessage().contains("reviews")
                && nack.getErrorDetail().getMessage().contains("initial_fetch_timeout (1000 ms)"),
                nack.getErrorDetail().getMessage());
        assertEquals(503, mesh.webClient().get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS)
                .statusCode());

        // still asked for: once it arrives, the cluster is decoded again, taken and ACKed
        server.set(snapshot(List.of(cluster(1)), "1", "s1", SdsTestServer.certificate("default", CLIENT),
                SdsTestServer.root("ROOTCA", MESH_CA)));
        server.awaitRequest(r -> r.getTypeUrl().endsWith("Cluster") && r.getVersionInfo().equals("1")
                && !r.hasErrorDetail() && !r.getResponseNonce().isEmpty(), WAIT);
        assertEquals("200 client=CN=productpage", call());
    }

    @Test
    void theSecretsAreUnsubscribedFromOnceNoClusterNamesThem() throws Exception {
        startWithSecrets(false);

        server.set(snapshot(List.of(XdsFixtures.staticCluster("reviews", tls)), "2", "s1",
                SdsTestServer.certificate("default", CLIENT), SdsTestServer.root("ROOTCA", MESH_CA)));
        server.awaitRequest(r -> r.getTypeUrl().equals(SdsSecretManager.SECRET_TYPE_URL)
                && r.getResourceNamesList().isEmpty(), WAIT);
        XdsFixtures.await(() -> secrets().active().isEmpty() && secrets().warming().isEmpty(), WAIT,
                "the secrets forgotten");
    }

    @Test
    void theConfigDumpShowsTheSecretsTakenAsActiveTheirKeyRedactedAndThoseAwaitedAsWarming() throws Exception {
        server.set(snapshot("s0"));
        start(new MeshOptions().setAdminPort(0));
        server.awaitRequest(r -> r.getTypeUrl().equals(SdsSecretManager.SECRET_TYPE_URL), WAIT);
        io.vertx.ext.web.client.WebClient admin = io.vertx.ext.web.client.WebClient.create(vertx);
        XdsFixtures.await(() -> ((DefaultMesh) mesh).adminPort() > 0, WAIT, "the admin server");
        int port = ((DefaultMesh) mesh).adminPort();
        String warming = admin.get(port, "127.0.0.1", "/config_dump?resource=dynamic_warming_secrets").send()
                .await(10, TimeUnit.SECONDS).bodyAsString();
        assertTrue(warming.contains("\"default\"") && warming.contains("\"ROOTCA\""), warming);

        server.set(snapshot("s1", SdsTestServer.certificate("default", CLIENT), SdsTestServer.root("ROOTCA",
                MESH_CA)));
        XdsFixtures.await(() -> secrets().warming().isEmpty(), WAIT, "the secrets taken");
        io.vertx.core.json.JsonObject active = admin.get(port, "127.0.0.1",
                "/config_dump?resource=dynamic_active_secrets").send().await(10, TimeUnit.SECONDS).bodyAsJsonObject();
        io.vertx.core.json.JsonObject own = active.getJsonArray("configs").stream()
                .map(io.vertx.core.json.JsonObject.class::cast).filter(c -> c.getString("name").equals("default"))
                .findFirst().orElseThrow();
        assertEquals("s1", own.getString("version_info"));
        assertEquals("[redacted]", own.getJsonObject("secret").getJsonObject("tls_certificate")
                .getJsonObject("private_key").getString("inline_string"), own.encode());
        assertFalse(active.encode().contains(CLIENT.keyPem().lines().skip(1).findFirst().orElseThrow()));
    }
}
