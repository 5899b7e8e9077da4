package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.TransportSocketMatch;
import dev.inmesh.api.config.core.Metadata;
import dev.inmesh.runtime.upstream.TestCertificates;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A cluster's {@code transport_socket_matches} as Envoy reads them: each match's name, metadata and transport socket
 * ({@code raw_buffer} or TLS), Istio's {@code tlsMode-istio} match kept, not ready, for the Istio SDS secrets Inmesh
 * cannot resolve without a workload identity, and any other bad match refused by name with its path.
 */
class TransportSocketMatchParserTest {
    private static final ClusterParser PARSER = new ClusterParser();
    private static final TestCertificates.Issued CA = TestCertificates.ca("match-ca");
    private static final String SDS_CONFIG = """
            "sdsConfig": {"apiConfigSource": {"apiType": "GRPC", "transportApiVersion": "V3",
              "grpcServices": [{"envoyGrpc": {"clusterName": "sds-grpc"}}]}, "resourceApiVersion": "V3"}""";
    /** Istio's auto mTLS match, as istiod writes it on every outbound cluster. */
    private static final String ISTIO_MATCH = """
            {"name": "tlsMode-istio", "match": {"tlsMode": "istio"}, "transportSocket": {
              "name": "envoy.transport_sockets.tls", "typedConfig": {
               "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
               "commonTlsContext": {
                "tlsParams": {"tlsMinimumProtocolVersion": "TLSv1_2", "tlsMaximumProtocolVersion": "TLSv1_3"},
                "alpnProtocols": ["istio-peer-exchange", "istio"],
                "tlsCertificateSdsSecretConfigs": [{"name": "default", %s}],
                "combinedValidationContext": {"defaultValidationContext": {"matchSubjectAltNames": [
                  {"exact": "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"}]},
                 "validationContextSdsSecretConfig": {"name": "ROOTCA", %s}}},
               "sni": "outbound_.9080_._.reviews.default.svc.cluster.local"}}}""".formatted(SDS_CONFIG, SDS_CONFIG);
    private static final String DISABLED_MATCH = """
            {"name": "tlsMode-disabled", "match": {}, "transportSocket": {
              "name": "envoy.transport_sockets.raw_buffer", "typedConfig": {
               "@type": "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"}}}""";

    @TempDir
    static Path dir;
    static Path caFile;

    @BeforeAll
    static void files() throws Exception {
        caFile = Files.writeString(dir.resolve("ca.pem"), CA.certificatePem());
    }

    private static String cluster(String... matches) {
        return """
                {"name": "outbound|9080||reviews.default.svc.cluster.local", "type": "EDS",
                 "edsClusterConfig": {"edsConfig": {"ads": {}}}, "transportSocketMatches": [%s]}"""
                .formatted(String.join(",", matches));
    }

    /** A match whose TLS trusts the test CA through Istio's file SDS name, on hosts labelled {@code tls: on}. */
    private static String fileRootMatch(String name) {
        return """
                {"name": "%s", "match": {"tls": "on", "port": 8443}, "transportSocket": {
                  "name": "envoy.transport_sockets.tls", "typedConfig": {
                   "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                   "sni": "reviews.example.com",
                   "commonTlsContext": {"combinedValidationContext": {"defaultValidationContext": {},
                    "validationContextSdsSecretConfig": {"name": "file-root:%s", %s}}}}}}"""
                .formatted(name, caFile, SDS_CONFIG);
    }

    private static Cluster parse(String json) throws Exception {
        return PARSER.parse(ClusterParserTest.proto(json));
    }

    private static String error(String json) throws Exception {
        var p = ClusterParserTest.proto(json);
        return assertThrows(InvalidResourceException.class, () -> PARSER.parse(p)).getMessage();
    }

    private static Metadata socketMetadata(Map<String, Object> values) {
        return new Metadata(Map.of(TransportSocketMatch.METADATA_FILTER, values));
    }

    @Test
    void eachMatchKeepsItsNameItsMetadataAndItsTransportSocketInOrder() throws Exception {
        Cluster c = parse(cluster(fileRootMatch("tls-subset"), DISABLED_MATCH));
        List<TransportSocketMatch> m = c.transportSocketMatches();
        assertEquals(2, m.size());
        assertEquals("tls-subset", m.get(0).name());
        assertEquals(Map.of("tls", "on", "port", 8443.0), m.get(0).match());
        assertEquals("reviews.example.com", m.get(0).tls().sni());
        assertEquals(CA.certificatePem(), m.get(0).tls().trustedCa());
        assertNull(m.get(0).notReady());
        assertEquals("tlsMode-disabled", m.get(1).name());
        assertNull(m.get(1).tls()); // raw_buffer: plaintext
        assertNull(c.tls());
    }

    @Test
    void aMatchAppliesToAHostWhoseSocketMetadataHasEveryOneOfItsValues() throws Exception {
        TransportSocketMatch m = parse(cluster(fileRootMatch("tls-subset"))).transportSocketMatches().get(0);
        assertTrue(m.appliesTo(socketMetadata(Map.of("tls", "on", "port", 8443.0, "other", "x"))));
        assertEquals(false, m.appliesTo(socketMetadata(Map.of("tls", "on"))));
        assertEquals(false, m.appliesTo(socketMetadata(Map.of("tls", "off", "port", 8443.0))));
        // the values must be under envoy.transport_socket_match, not another filter's metadata
        assertEquals(false, m.appliesTo(new Metadata(Map.of("istio", Map.of("tls", "on", "port", 8443.0)))));
        assertEquals(false, m.appliesTo(Metadata.EMPTY));
        // an empty match applies to every host, one without metadata too
        TransportSocketMatch any = parse(cluster(DISABLED_MATCH)).transportSocketMatches().get(0);
        assertTrue(any.appliesTo(Metadata.EMPTY));
    }

    @Test
    void istiosTlsModeIstioMatchIsKeptNotReadyForItNeedsIstiosSdsSecrets() throws Exception {
        Cluster c = parse(cluster(ISTIO_MATCH, DISABLED_MATCH));
        TransportSocketMatch istio = c.transportSocketMatches().get(0);
        assertEquals("tlsMode-istio", istio.name());
        assertNull(istio.tls());
        assertTrue(istio.notReady().startsWith("its TLS needs Istio's SDS secret \"default\""), istio.notReady());
        // it still applies to an Istio pod's endpoint, whose connections then fail: never the plaintext match after it
        assertTrue(istio.appliesTo(socketMetadata(Map.of("tlsMode", "istio"))));
    }

    @Test
    void aBadMatchRejectsTheClusterByNameWithItsPath() throws Exception {
        String alts = error(cluster(DISABLED_MATCH, """
                {"name": "alts", "match": {}, "transportSocket": {"name": "envoy.transport_sockets.alts"}}"""));
        assertTrue(alts.contains("transport_socket_matches[1].transport_socket.name: "
                + "\"envoy.transport_sockets.alts\" is not supported"), alts);
        String missing = error(cluster(fileRootMatch("x").replace(caFile.toString(), dir.resolve("nope.pem")
                .toString())));
        assertTrue(missing.contains("transport_socket_matches[0].transport_socket.typed_config.common_tls_context."
                + "combined_validation_context.validation_context_sds_secret_config.name: cannot read"), missing);
        // a gateway's kubernetes:// secret is not one of Istio's workload secrets: refused, not skipped
        String k8s = error(cluster(ISTIO_MATCH.replace("outbound_.9080_._.", "")
                .replace("\"default\"", "\"kubernetes://reviews-cert\"")
                .replace("\"ROOTCA\"", "\"kubernetes://reviews-cert-cacert\"")));
        assertTrue(k8s.contains("transport_socket_matches[0].transport_socket.typed_config.common_tls_context."
                + "tls_certificate_sds_secret_configs[0].name: SDS secret \"kubernetes://reviews-cert\""), k8s);
        String none = error(cluster("""
                {"name": "empty", "match": {}}"""));
        assertTrue(none.contains("transport_socket_matches[0].transport_socket: required"), none);
    }

    @Test
    void aMatchOfferingH2OnAnHttp11ClusterIsRefusedAsTheClustersOwnSocketIs() throws Exception {
        String h2 = error(cluster(fileRootMatch("x").replace("\"commonTlsContext\": {",
                "\"commonTlsContext\": {\"alpnProtocols\": [\"h2\"], ")));
        assertTrue(h2.contains("transport_socket_matches[0].transport_socket.typed_config.common_tls_context."
                + "alpn_protocols: h2 offered on an HTTP/1.1 cluster"), h2);
    }
}
