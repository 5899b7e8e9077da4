package dev.inmesh.runtime.xds.sds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.protobuf.Any;
import com.google.protobuf.util.Durations;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.runtime.upstream.TestCertificates;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.core.v3.ApiConfigSource;
import io.envoyproxy.envoy.config.core.v3.ApiVersion;
import io.envoyproxy.envoy.config.core.v3.ConfigSource;
import io.envoyproxy.envoy.config.core.v3.DataSource;
import io.envoyproxy.envoy.config.core.v3.GrpcService;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Secrets fetched over SDS from java-control-plane's {@code SecretDiscoveryService}, as Istio's sidecar Envoy fetches
 * {@code default} and {@code ROOTCA} from its agent's {@code sds-grpc} cluster: one stream per secret, the node on the
 * first request, each response ACKed, a secret that does not load NACKed by name with the last good one kept.
 */
class SdsSecretManagerTest {
    static final TestCertificates.Issued CA = TestCertificates.ca("mesh-root");
    static final TestCertificates.Issued OLD = TestCertificates.issue(CA, "old", List.of(),
            List.of("spiffe://cluster.local/ns/default/sa/old"));
    static final TestCertificates.Issued NEW = TestCertificates.issue(CA, "new", List.of(),
            List.of("spiffe://cluster.local/ns/default/sa/new"));
    static final Node NODE = SdsTestServer.NODE;
    private static final Duration WAIT = Duration.ofSeconds(10);

    @TempDir
    Path tmp;
    Vertx vertx;
    SdsTestServer server;
    SdsSecretManager manager;

    @AfterEach
    void close() {
        if (manager != null) {
            manager.close();
        }
        if (server != null) {
            server.close();
        }
        if (vertx != null) {
            vertx.close().await();
        }
    }

    /** Istio's {@code sds_config}: a V3 gRPC api_config_source naming the bootstrap's {@code sds-grpc} cluster. */
    static SdsSecretConfig istioSds(String name) {
        return SdsSecretConfig.newBuilder().setName(name).setSdsConfig(ConfigSource.newBuilder()
                .setResourceApiVersion(ApiVersion.V3)
                .setApiConfigSource(ApiConfigSource.newBuilder().setApiType(ApiConfigSource.ApiType.GRPC)
                        .setTransportApiVersion(ApiVersion.V3).setSetNodeOnFirstMessageOnly(true)
                        .addGrpcServices(GrpcService.newBuilder().setEnvoyGrpc(
                                GrpcService.EnvoyGrpc.newBuilder().setClusterName("sds-grpc"))))).build();
    }

    private SdsSecretManager tcp() throws Exception {
        server = SdsTestServer.start();
        vertx = Vertx.vertx();
        return new SdsSecretManager(vertx, NODE, Map.of("sds-grpc", new SocketAddress("127.0.0.1", server.port())));
    }

    private static boolean acked(DiscoveryRequest r, String version) {
        return r.getVersionInfo().equals(version) && !r.getResponseNonce().isEmpty() && !r.hasErrorDetail();
    }

    @Test
    void fetchesACertificateOverStreamSecretsAndAcksItsVersion() throws Exception {
        manager = tcp();
        server.set("v1", SdsTestServer.certificate("default", OLD), SdsTestServer.root("ROOTCA", CA));

        SdsSecret secret = manager.await(istioSds("default"));

        assertEquals("v1", secret.versionInfo());
        assertEquals(OLD.certificatePem(), secret.certificateChain());
        assertEquals(OLD.keyPem(), secret.privateKey());
        assertNull(secret.trustedCa());
        DiscoveryRequest first = server.awaitRequest(r -> r.getResponseNonce().isEmpty(), WAIT);
        assertEquals(SecretParser.TYPE_URL, first.getTypeUrl());
        assertEquals(List.of("default"), first.getResourceNamesList());
        assertEquals(NODE, first.getNode());
        DiscoveryRequest ack = server.awaitRequest(r -> acked(r, "v1"), WAIT);
        assertEquals(List.of("default"), ack.getResourceNamesList());
        assertEquals(Node.getDefaultInstance(), ack.getNode(), "the node only on the stream's first request");

        SdsSecret root = manager.await(istioSds("ROOTCA"));
        assertEquals(CA.certificatePem(), root.trustedCa());
        assertEquals(List.of("default", "ROOTCA"), manager.active().stream().map(SdsSecret::name).toList());
    }

    @Test
    void aNewVersionReplacesTheSecretHeldInMemory() throws Exception {
        manager = tcp();
        server.set("v1", SdsTestServer.certificate("default", OLD));
        SdsSecret first = manager.await(istioSds("default"));

        server.set("v2", SdsTestServer.certificate("default", NEW));
        server.awaitRequest(r -> acked(r, "v2"), WAIT);

        SdsSecret now = manager.await(istioSds("default"));
        assertEquals("v2", now.versionInfo());
        assertEquals("v1", first.versionInfo());
        assertEquals(NEW.certificatePem(), now.certificateChain());
        assertEquals(NEW.keyPem(), now.privateKey());
        assertEquals(NEW.keyPem(), manager.source(istioSds("default")).current().privateKey(),
                "what a TLS context reads its next handshakes' key from");
    }

    /** A secret config whose {@code sds_config} is {@code ads: {}}: the ADS stream's. */
    private static SdsSecretConfig overAds(String name) {
        return SdsSecretConfig.newBuilder().setName(name).setSdsConfig(ConfigSource.newBuilder()
                .setResourceApiVersion(ApiVersion.V3).setAds(
                        io.envoyproxy.envoy.config.core.v3.AggregatedConfigSource.getDefaultInstance())).build();
    }

    @Test
    void retainLetsGoOfTheSecretsNotNamedEndingTheirStreamsOrForgettingThoseOfTheAdsStream() throws Exception {
        manager = tcp();
        manager.overAds();
        server.set("v1", SdsTestServer.certificate("default", OLD), SdsTestServer.root("ROOTCA", CA));
        manager.await(istioSds("default"));
        manager.await(istioSds("ROOTCA"));
        manager.takeFromAds("ads-cert", Any.pack(SdsTestServer.certificate("ads-cert", NEW)), "a1");
        manager.takeFromAds("ads-gone", Any.pack(SdsTestServer.certificate("ads-gone", NEW)), "a1");

        manager.retain(List.of(istioSds("default"), overAds("ads-cert"), overAds("ads-root")));

        assertEquals(List.of("default", "ads-cert"), manager.active().stream().map(SdsSecret::name).toList());
        assertEquals(List.of("ads-root"), manager.warming(), "named on the ADS stream and not arrived: warming");
        for (int i = 0; i < 100 && server.ended.isEmpty(); i++) {
            Thread.sleep(50);
        }
        assertEquals(1, server.ended.size(), "ROOTCA's stream ends, default's stays");
        assertEquals(NEW.keyPem(), manager.source(overAds("ads-cert")).current().privateKey());

        manager.retain(List.of(istioSds("default")));
        assertEquals(List.of("default"), manager.active().stream().map(SdsSecret::name).toList());
        assertTrue(manager.warming().isEmpty());
        assertThrows(IllegalArgumentException.class, () -> manager.source(overAds("ads-cert")));
    }

    @Test
    void aSecretThatDoesNotLoadIsNackedByNameAndTheLastGoodOneKept() throws Exception {
        manager = tcp();
        server.set("v1", SdsTestServer.certificate("default", OLD));
        manager.await(istioSds("default"));

        // the new certificate with the old key: not a usable pair
        var mismatched = SdsTestServer.certificate("default", new TestCertificates.Issued("new",
                NEW.certificatePem(), OLD.keyPem(), OLD.key()));
        server.set("v2", mismatched);

        DiscoveryRequest nack = server.awaitRequest(DiscoveryRequest::hasErrorDetail, WAIT);
        assertEquals("v1", nack.getVersionInfo(), "a NACK carries the version last taken");
        assertEquals(13, nack.getErrorDetail().getCode(), "INTERNAL, as Envoy's grpc_mux_impl.cc NACKs");
        assertTrue(nack.getErrorDetail().getMessage().startsWith("Secret \"default\": tls_certificate: "),
                nack.getErrorDetail().getMessage());
        SdsSecret kept = manager.await(istioSds("default"));
        assertEquals("v1", kept.versionInfo());
        assertEquals(OLD.certificatePem(), kept.certificateChain());
    }

    @Test
    void aSecretFailingEnvoysProtoConstraintsIsNackedByNameAndTheLastGoodOneKept() throws Exception {
        manager = tcp();
        server.set("v1", SdsTestServer.certificate("default", OLD));
        manager.await(istioSds("default"));

        // a new certificate with an OCSP staple that names no source: Envoy's API wants one
        var secret = SdsTestServer.certificate("default", NEW);
        server.set("v2", secret.toBuilder().setTlsCertificate(secret.getTlsCertificate().toBuilder()
                .setOcspStaple(DataSource.getDefaultInstance())).build());

        DiscoveryRequest nack = server.awaitRequest(DiscoveryRequest::hasErrorDetail, WAIT);
        assertEquals("v1", nack.getVersionInfo());
        assertEquals("Secret \"default\": tls_certificate.ocsp_staple: one of filename, inline_bytes, inline_string or "
                + "environment_variable is required", nack.getErrorDetail().getMessage());
        assertEquals("v1", manager.await(istioSds("default")).versionInfo());
    }

    @Test
    void aResponseOfAnotherTypeIsIgnoredNeitherAckedNorNacked() throws Exception {
        manager = tcp();
        server.before = DiscoveryResponse.newBuilder().setVersionInfo("c1").setNonce("cluster-nonce")
                .setTypeUrl("type.googleapis.com/envoy.config.cluster.v3.Cluster")
                .addResources(Any.pack(Cluster.newBuilder().setName("default").build())).build();
        server.set("v1", SdsTestServer.certificate("default", OLD));

        SdsSecret secret = manager.await(istioSds("default"));

        assertEquals("v1", secret.versionInfo());
        server.awaitRequest(r -> acked(r, "v1"), WAIT);
        assertNull(server.before, "the other type was sent");
        assertTrue(server.requests.stream().noneMatch(r -> r.getResponseNonce().equals("cluster-nonce")
                || r.hasErrorDetail()), server.requests.toString());
    }

    @Test
    void aNackSaysAtMost4096CharactersOfWhy() throws Exception {
        manager = tcp();
        server.set("v1", SdsTestServer.certificate("default", OLD));
        manager.await(istioSds("default"));

        // a key file whose name alone is longer than a NACK's message may be
        String longName = "/nonexistent/" + "k".repeat(5000);
        server.set("v2", SdsTestServer.certificate("default", OLD).toBuilder().setTlsCertificate(
                SdsTestServer.certificate("default", OLD).getTlsCertificate().toBuilder()
                        .setPrivateKey(DataSource.newBuilder().setFilename(longName))).build());

        DiscoveryRequest nack = server.awaitRequest(DiscoveryRequest::hasErrorDetail, WAIT);
        String message = nack.getErrorDetail().getMessage();
        assertTrue(message.startsWith("tls_certificate.private_key.filename: cannot read"), message);
        assertEquals(4096 + "...(truncated)".length(), message.length());
    }

    @Test
    void aSecretNotServedIsRefusedAfterItsInitialFetchTimeout() throws Exception {
        manager = tcp();
        server.set("v1", SdsTestServer.certificate("default", OLD));
        SdsSecretConfig missing = istioSds("kubernetes://gateway-cert").toBuilder()
                .setSdsConfig(istioSds("x").getSdsConfig().toBuilder()
                        .setInitialFetchTimeout(Durations.fromMillis(300))).build();

        var e = assertThrows(IllegalArgumentException.class, () -> manager.await(missing));

        assertTrue(e.getMessage().startsWith("SDS secret \"kubernetes://gateway-cert\" has not arrived from cluster "
                + "\"sds-grpc\" within its initial_fetch_timeout (300 ms)"), e.getMessage());
        assertEquals(List.of("kubernetes://gateway-cert"), manager.warming());
    }

    @Test
    void aClusterNotConfiguredOrAnAdsSourceIsRefusedByName() throws Exception {
        manager = tcp();
        SdsSecretConfig other = istioSds("default").toBuilder().setSdsConfig(istioSds("x").getSdsConfig()
                .toBuilder().setApiConfigSource(istioSds("x").getSdsConfig().getApiConfigSource().toBuilder()
                        .setGrpcServices(0, GrpcService.newBuilder().setEnvoyGrpc(
                                GrpcService.EnvoyGrpc.newBuilder().setClusterName("elsewhere"))))).build();
        assertEquals("SDS secret \"default\": sds_config names cluster \"elsewhere\", which is not a static cluster "
                + "Inmesh knows [sds-grpc]", assertThrows(IllegalArgumentException.class,
                        () -> manager.await(other)).getMessage());
    }

    @Test
    void fetchesOverTheAgentsUnixSocket() throws Exception {
        vertx = Vertx.vertx(new VertxOptions().setPreferNativeTransport(true));
        assumeTrue(vertx.isNativeTransportEnabled() && SdsTestServer.unixSockets(), "no native transport here");
        fetchesOverTheUnixSocket();
    }

    @Test
    void fetchesOverTheAgentsUnixSocketWithTheJdksTransport() throws Exception {
        // Vert.x 5 reaches a Unix domain socket with the JDK's NIO transport (Java 16 and later): no native one needed
        vertx = Vertx.vertx(new VertxOptions().setPreferNativeTransport(false));
        assumeTrue(SdsTestServer.unixSockets(), "the test's SDS server needs epoll for its Unix socket");
        fetchesOverTheUnixSocket();
    }

    private void fetchesOverTheUnixSocket() throws Exception {
        Path socket = tmp.resolve("workload-spiffe-uds").resolve("socket");
        Files.createDirectories(socket.getParent());
        server = SdsTestServer.startOn(socket);
        server.set("7", SdsTestServer.certificate("default", OLD));
        manager = new SdsSecretManager(vertx, NODE, Map.of("sds-grpc",
                new SocketAddress(SocketAddress.UNIX_PREFIX + socket, 0)));

        SdsSecret secret = manager.await(istioSds("default"));

        assertEquals("7", secret.versionInfo());
        assertEquals(OLD.certificatePem(), secret.certificateChain());
        server.awaitRequest(r -> acked(r, "7"), WAIT);
    }
}
