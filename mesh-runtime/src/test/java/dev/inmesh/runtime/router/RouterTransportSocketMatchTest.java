package dev.inmesh.runtime.router;

import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.protobuf.util.JsonFormat;
import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.cluster.TransportSocketMatch;
import dev.inmesh.api.config.cluster.UpstreamTlsContext;
import dev.inmesh.api.config.core.Metadata;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.endpoint.LbEndpoint;
import dev.inmesh.api.config.endpoint.Locality;
import dev.inmesh.api.config.endpoint.LocalityLbEndpoints;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.upstream.TestCertificates.Issued;
import dev.inmesh.runtime.upstream.UpstreamEnvironment;
import dev.inmesh.runtime.xds.ClusterParser;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.net.PemKeyCertOptions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A cluster's {@code transport_socket_matches} choose each host's transport socket by the host's
 * {@code envoy.transport_socket_match} metadata, as Envoy's: the router's plain request reaches a loopback TLS server
 * through the host whose match is TLS, and a plaintext server through the host whose match (or the cluster's own
 * socket) is plaintext.
 */
class RouterTransportSocketMatchTest {
    private static final Issued CA = TestCertificates.ca("match-ca");
    private static final Issued SERVER = TestCertificates.issue(CA, "reviews.example.com",
            List.of("reviews.example.com"), List.of());
    /** TLS that verifies the test server against the test CA and sends its name as SNI. */
    private static final UpstreamTlsContext TLS = new UpstreamTlsContext("reviews.example.com", null, null,
            CA.certificatePem(), false, List.of(), List.of(), null, null);
    private static final Metadata ISTIO_POD = new Metadata(Map.of(TransportSocketMatch.METADATA_FILTER,
            Map.of("tlsMode", "istio")));

    private final RouterRig rig = new RouterRig();
    private final List<ClusterManager> managers = new ArrayList<>();

    @AfterEach
    void close() {
        managers.forEach(ClusterManager::close);
        rig.close();
    }

    /** A loopback server that answers with whether the request came over TLS, and the SNI it saw. */
    private int server(boolean tls) throws Exception {
        HttpServerOptions o = new HttpServerOptions();
        if (tls) {
            o.setSsl(true).setSni(true).setKeyCertOptions(new PemKeyCertOptions()
                    .setCertValue(Buffer.buffer(SERVER.certificatePem())).setKeyValue(Buffer.buffer(SERVER.keyPem())));
        }
        return rig.vertx.createHttpServer(o)
                .requestHandler(req -> req.response().end(req.isSSL()
                        ? "tls sni=" + req.connection().indicatedServerName() : "plain"))
                .listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS)
                .actualPort();
    }

    private static LbEndpoint endpoint(int port, Metadata metadata) {
        return new LbEndpoint(new SocketAddress("127.0.0.1", port), "", null, 1, metadata);
    }

    private static ClusterLoadAssignment hosts(LbEndpoint... endpoints) {
        return new ClusterLoadAssignment("c", List.of(new LocalityLbEndpoints(Locality.EMPTY, List.of(endpoints),
                1, 0)), ClusterLoadAssignment.DEFAULT_OVERPROVISIONING_FACTOR);
    }

    private static Cluster cluster(DiscoveryType type, ClusterLoadAssignment hosts, UpstreamTlsContext tls,
                                   TransportSocketMatch... matches) {
        return Cluster.builder("c", type).lbPolicy(LbPolicy.ROUND_ROBIN).connectTimeout(Duration.ofSeconds(2))
                .loadAssignment(hosts).tls(tls).transportSocketMatches(List.of(matches)).build();
    }

    private ClusterManager manager(Cluster c, Map<String, ClusterLoadAssignment> eds) {
        ClusterManager cm = ClusterManager.create(new UpstreamEnvironment(rig.vertx, null, null, null),
                Map.of("c", c), eds);
        managers.add(cm);
        return cm;
    }

    /** The answers of four requests through the cluster, each once ("503" for a request that failed). */
    private Set<String> answers(ClusterManager clusters) {
        Set<String> out = new TreeSet<>();
        for (int i = 0; i < 4; i++) {
            var r = rig.call(rig.router(), get("/"), routeToC(""), clusters);
            out.add(r.status() == 200 ? r.body() : String.valueOf(r.status()));
        }
        return out;
    }

    @Test
    void aHostWhoseMetadataMatchesTakesTheMatchsTlsAndAnotherTheNextMatchsPlaintext() throws Exception {
        Cluster c = cluster(DiscoveryType.STATIC, hosts(endpoint(server(true), ISTIO_POD),
                endpoint(server(false), Metadata.EMPTY)), null,
                new TransportSocketMatch("tlsMode-istio", Map.of("tlsMode", "istio"), TLS),
                new TransportSocketMatch("tlsMode-disabled", Map.of(), null));
        assertEquals(Set.of("plain", "tls sni=reviews.example.com"), answers(manager(c, Map.of())));
    }

    @Test
    void aHostNoMatchAppliesToTakesTheClustersOwnTransportSocket() throws Exception {
        Metadata plainHost = new Metadata(Map.of(TransportSocketMatch.METADATA_FILTER, Map.of("plain", "yes")));
        Cluster c = cluster(DiscoveryType.STATIC, hosts(endpoint(server(true), Metadata.EMPTY),
                endpoint(server(false), plainHost)), TLS,
                new TransportSocketMatch("plaintext", Map.of("plain", "yes"), null));
        assertEquals(Set.of("plain", "tls sni=reviews.example.com"), answers(manager(c, Map.of())));
    }

    @Test
    void aHostNoMatchAppliesToByItsOwnMetadataTakesTheFirstMatchOfItsLocalitysMetadata() throws Exception {
        Metadata tlsZone = new Metadata(Map.of(TransportSocketMatch.METADATA_FILTER, Map.of("zone", "tls")));
        Metadata plainHost = new Metadata(Map.of(TransportSocketMatch.METADATA_FILTER, Map.of("plain", "yes")));
        // both hosts are in the labelled locality: the unlabelled one takes the locality's match, the labelled one
        // its own, though the locality's comes first, as Envoy tries every match on the endpoint before the locality
        var hosts = new ClusterLoadAssignment("c", List.of(new LocalityLbEndpoints(Locality.EMPTY, List.of(
                endpoint(server(true), Metadata.EMPTY), endpoint(server(false), plainHost)), 1, 0, tlsZone)),
                ClusterLoadAssignment.DEFAULT_OVERPROVISIONING_FACTOR);
        Cluster c = cluster(DiscoveryType.STATIC, hosts, null,
                new TransportSocketMatch("tls-zone", Map.of("zone", "tls"), TLS),
                new TransportSocketMatch("plain-host", Map.of("plain", "yes"), null));
        assertEquals(Set.of("plain", "tls sni=reviews.example.com"), answers(manager(c, Map.of())));
    }

    @Test
    void anEdsUpdateThatChangesAnEndpointsMetadataSwitchesItsTransportSocket() throws Exception {
        int port = server(true);
        Cluster c = cluster(DiscoveryType.EDS, null, null,
                new TransportSocketMatch("tlsMode-istio", Map.of("tlsMode", "istio"), TLS),
                new TransportSocketMatch("tlsMode-disabled", Map.of(), null));
        // without the label, plaintext to the TLS server: the request fails
        ClusterManager cm = manager(c, Map.of("c", hosts(endpoint(port, Metadata.EMPTY))));
        assertEquals(Set.of("503"), answers(cm));
        // labelled, the same host goes over TLS
        cm = cm.update(Map.of("c", c), Map.of("c", hosts(endpoint(port, ISTIO_POD))));
        managers.add(cm);
        assertEquals(Set.of("tls sni=reviews.example.com"), answers(cm));
        // and unlabelled again, its pooled TLS connections are not used: plaintext again
        cm = cm.update(Map.of("c", c), Map.of("c", hosts(endpoint(port, Metadata.EMPTY))));
        managers.add(cm);
        assertEquals(Set.of("503"), answers(cm));
    }

    @Test
    void istiosTlsModeIstioMatchWithoutItsSdsSecretsFailsItsPodsRequestsRatherThanSendThemInPlaintext() throws Exception {
        int port = server(false);
        String sds = """
                "sdsConfig": {"apiConfigSource": {"apiType": "GRPC", "transportApiVersion": "V3",
                  "grpcServices": [{"envoyGrpc": {"clusterName": "sds-grpc"}}]}}""";
        String json = """
                {"name": "c", "type": "STATIC", "connectTimeout": "2s", "loadAssignment": {"clusterName": "c",
                  "endpoints": [{"lbEndpoints": [{"endpoint": {"address": {"socketAddress": {
                    "address": "127.0.0.1", "portValue": %d}}},
                   "metadata": {"filterMetadata": {"envoy.transport_socket_match": {"tlsMode": "istio"}}}}]}]},
                 "transportSocketMatches": [
                  {"name": "tlsMode-istio", "match": {"tlsMode": "istio"}, "transportSocket": {
                    "name": "envoy.transport_sockets.tls", "typedConfig": {
                     "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                     "commonTlsContext": {"tlsCertificateSdsSecretConfigs": [{"name": "default", %s}],
                      "combinedValidationContext": {"defaultValidationContext": {},
                       "validationContextSdsSecretConfig": {"name": "ROOTCA", %s}}}}}},
                  {"name": "tlsMode-disabled", "match": {}, "transportSocket": {
                    "name": "envoy.transport_sockets.raw_buffer"}}]}""".formatted(port, sds, sds);
        var builder = io.envoyproxy.envoy.config.cluster.v3.Cluster.newBuilder();
        JsonFormat.parser().usingTypeRegistry(JsonFormat.TypeRegistry.newBuilder()
                .add(io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext.getDescriptor())
                .build()).merge(json, builder);
        Cluster c = new ClusterParser().parse(builder.build());
        // the plaintext server would answer: as Envoy's NotReadySslSocket, the connection fails instead
        assertEquals(Set.of("503"), answers(manager(c, Map.of())));
    }
}
