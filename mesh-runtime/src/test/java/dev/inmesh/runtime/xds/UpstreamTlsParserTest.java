package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.UpstreamTlsContext;
import dev.inmesh.api.config.cluster.UpstreamTlsContext.SanType;
import dev.inmesh.api.config.cluster.UpstreamTlsContext.TlsVersion;
import dev.inmesh.api.config.core.SdsFiles;
import dev.inmesh.api.config.core.StringMatcher;
import dev.inmesh.runtime.tls.WorkloadIdentity;
import dev.inmesh.runtime.upstream.TestCertificates;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A cluster's TLS transport socket as Envoy reads it, and as Istio writes a DestinationRule's SIMPLE and MUTUAL. */
class UpstreamTlsParserTest {
    private static final ClusterParser PARSER = new ClusterParser();
    private static final TestCertificates.Issued CA = TestCertificates.ca("egress-ca");
    private static final TestCertificates.Issued CLIENT = TestCertificates.issue(CA, "client", List.of("client"),
            List.of());
    /** The SDS source Istio writes for every secret: its agent's sds-grpc cluster. */
    private static final String SDS_CONFIG = """
            "sdsConfig": {"apiConfigSource": {"apiType": "GRPC", "setNodeOnFirstMessageOnly": true,
              "transportApiVersion": "V3", "grpcServices": [{"envoyGrpc": {"clusterName": "sds-grpc"}}]},
              "initialFetchTimeout": "0s", "resourceApiVersion": "V3"}""";

    @TempDir
    static Path dir;
    static Path caFile;
    static Path certFile;
    static Path keyFile;

    @BeforeAll
    static void files() throws Exception {
        caFile = Files.writeString(dir.resolve("ca.pem"), CA.certificatePem());
        certFile = Files.writeString(dir.resolve("cert.pem"), CLIENT.certificatePem());
        keyFile = Files.writeString(dir.resolve("key.pem"), CLIENT.keyPem());
    }

    /** Istio's outbound cluster for a ServiceEntry on 443 with a DestinationRule, its TLS context in the middle. */
    static String istioCluster(String commonTlsContext) {
        return """
                {"name": "outbound|443||api.example.com", "type": "STRICT_DNS", "connectTimeout": "10s",
                 "lbPolicy": "LEAST_REQUEST", "dnsLookupFamily": "V4_ONLY", "respectDnsTtl": true,
                 "loadAssignment": {"clusterName": "outbound|443||api.example.com", "endpoints": [{"lbEndpoints": [
                   {"endpoint": {"address": {"socketAddress": {"address": "api.example.com", "portValue": 443}}}}]}]},
                 "transportSocket": {"name": "envoy.transport_sockets.tls", "typedConfig": {
                   "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                   "commonTlsContext": %s,
                   "sni": "api.example.com"}}}""".formatted(commonTlsContext);
    }

    private static Cluster parse(String json) throws Exception {
        return PARSER.parse(ClusterParserTest.proto(json));
    }

    private static String error(String json) throws Exception {
        var p = ClusterParserTest.proto(json);
        return assertThrows(InvalidResourceException.class, () -> PARSER.parse(p)).getMessage();
    }

    /** As a listener's: an SDS secret from a file is refused by name. */
    @Test
    void anSdsSecretFromAFileSourceIsRefusedByName() throws Exception {
        String e = error(istioCluster("""
                {"combinedValidationContext": {"defaultValidationContext": {},
                  "validationContextSdsSecretConfig": {"name": "ca",
                    "sdsConfig": {"pathConfigSource": {"path": "/etc/envoy/sds.yaml"}}}}}"""));
        assertTrue(e.contains("combined_validation_context.validation_context_sds_secret_config.sds_config"
                + ".path_config_source: SDS from a file is not supported"), e);
    }

    /** As a listener's: a cluster whose versions the JVM all disables is refused by name. */
    @Test
    void aVersionRangeTheJvmDisablesWhollyIsRefusedByName() throws Exception {
        String property = java.security.Security.getProperty("jdk.tls.disabledAlgorithms");
        java.security.Security.setProperty("jdk.tls.disabledAlgorithms", "SSLv3, TLSv1, TLSv1.1, RC4");
        try {
            String e = error(istioCluster("""
                    {"tlsParams": {"tlsMinimumProtocolVersion": "TLSv1_0", "tlsMaximumProtocolVersion": "TLSv1_1"}}"""));
            assertTrue(e.contains("tls_params.tls_maximum_protocol_version: TLSv1_1")
                    && e.contains("jdk.tls.disabledAlgorithms"), e);
        } finally {
            java.security.Security.setProperty("jdk.tls.disabledAlgorithms", property);
        }
    }

    @Test
    void istiosSimpleWithCaCertificatesReadsTheCaFileOfItsFileRootSecret() throws Exception {
        Cluster c = parse(istioCluster("""
                {"combinedValidationContext": {
                  "defaultValidationContext": {"matchSubjectAltNames": [{"exact": "api.example.com"}]},
                  "validationContextSdsSecretConfig": {"name": "file-root:%s", %s}}}""".formatted(caFile, SDS_CONFIG)));
        UpstreamTlsContext tls = c.tls();
        assertEquals("api.example.com", tls.sni());
        assertEquals(CA.certificatePem(), tls.trustedCa());
        assertNull(tls.certificateChain());
        // the untyped matcher applies to a SAN of any type
        assertEquals(SanType.values().length, tls.subjectAltNames().size());
        assertEquals(new StringMatcher.Exact("api.example.com", false), tls.subjectAltNames().get(0).matcher());
        assertEquals(TlsVersion.TLSv1_2, tls.minVersion());
        assertEquals(TlsVersion.TLSv1_2, tls.maxVersion()); // Envoy's client default
    }

    @Test
    void istiosSimpleWithoutCaCertificatesTrustsTheSystemsCertificateAuthorities() throws Exception {
        UpstreamTlsContext tls = parse(istioCluster("""
                {"combinedValidationContext": {"defaultValidationContext": {},
                  "validationContextSdsSecretConfig": {"name": "file-root:system", %s}}}""".formatted(SDS_CONFIG)))
                .tls();
        assertTrue(tls.systemRootCerts());
        assertNull(tls.trustedCa());
        assertTrue(tls.verifiesServer());
    }

    @Test
    void istiosMutualReadsTheCertificateAndKeyFilesOfItsFileCertSecret() throws Exception {
        UpstreamTlsContext tls = parse(istioCluster("""
                {"tlsCertificateSdsSecretConfigs": [{"name": "file-cert:%s~%s", %s}],
                 "combinedValidationContext": {"defaultValidationContext": {},
                  "validationContextSdsSecretConfig": {"name": "file-root:%s", %s}}}"""
                .formatted(certFile, keyFile, SDS_CONFIG, caFile, SDS_CONFIG))).tls();
        assertEquals(CLIENT.certificatePem(), tls.certificateChain());
        assertEquals(CLIENT.keyPem(), tls.privateKey());
        assertEquals(CA.certificatePem(), tls.trustedCa());
    }

    @Test
    void envoysInlineAndFileDataSourcesTypedSanMatchersAlpnAndTlsParamsAreRead() throws Exception {
        UpstreamTlsContext tls = parse("""
                {"name": "x", "type": "STATIC", "http2ProtocolOptions": {}, "transportSocket": {
                 "name": "envoy.transport_sockets.tls", "typedConfig": {
                  "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                  "commonTlsContext": {
                   "tlsParams": {"tlsMinimumProtocolVersion": "TLSv1_2", "tlsMaximumProtocolVersion": "TLSv1_3"},
                   "alpnProtocols": ["h2"],
                   "tlsCertificates": [{"certificateChain": {"filename": "%s"},
                                        "privateKey": {"inlineString": %s}}],
                   "validationContext": {"trustedCa": {"filename": "%s"}, "matchTypedSubjectAltNames": [
                     {"sanType": "URI", "matcher": {"prefix": "spiffe://example.com/"}}]}}}}}"""
                .formatted(certFile, com.fasterxml.jackson.databind.node.TextNode.valueOf(CLIENT.keyPem()), caFile))
                .tls();
        assertEquals("", tls.sni());
        assertEquals(CLIENT.keyPem(), tls.privateKey());
        assertEquals(List.of("h2"), tls.alpnProtocols());
        assertEquals(TlsVersion.TLSv1_3, tls.maxVersion());
        assertEquals(1, tls.subjectAltNames().size());
        assertEquals(SanType.URI, tls.subjectAltNames().get(0).type());
    }

    @Test
    void rawBufferAndNoTransportSocketArePlaintext() throws Exception {
        assertNull(parse("{\"name\": \"x\", \"type\": \"STATIC\"}").tls());
        assertNull(parse("""
                {"name": "x", "type": "STATIC", "transportSocket": {"name": "envoy.transport_sockets.raw_buffer"}}""")
                .tls());
    }

    @Test
    void istiosOwnMtlsSecretsAreRefusedByNameForInmeshHasNoIstioCa() throws Exception {
        String e = error(istioCluster("""
                {"tlsCertificateSdsSecretConfigs": [{"name": "default", %s}],
                 "combinedValidationContext": {"defaultValidationContext": {},
                  "validationContextSdsSecretConfig": {"name": "ROOTCA", %s}}}""".formatted(SDS_CONFIG, SDS_CONFIG)));
        assertTrue(e.startsWith("Cluster \"outbound|443||api.example.com\": transport_socket.typed_config."
                + "common_tls_context.tls_certificate_sds_secret_configs[0].name: SDS secret \"default\" is not "
                + "supported"), e);
    }

    @Test
    void istiosInMeshAlpnCipherSuitesAndSniAreTaken() throws Exception {
        // as istiod writes an ISTIO_MUTUAL cluster's context (here with files for its secrets)
        UpstreamTlsContext tls = parse(istioCluster("""
                {"tlsParams": {"tlsMinimumProtocolVersion": "TLSv1_2", "tlsMaximumProtocolVersion": "TLSv1_3",
                   "cipherSuites": ["ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256"]},
                 "alpnProtocols": ["istio-peer-exchange", "istio"],
                 "combinedValidationContext": {"defaultValidationContext": {},
                  "validationContextSdsSecretConfig": {"name": "file-root:%s", %s}}}""".formatted(caFile, SDS_CONFIG))
                .replace("\"sni\": \"api.example.com\"",
                        "\"sni\": \"outbound_.9080_._.ratings.default.svc.cluster.local\"")).tls();
        assertEquals(List.of("istio-peer-exchange", "istio"), tls.alpnProtocols());
        // a name the JDK takes for no host name, kept as given and sent as it is
        assertEquals("outbound_.9080_._.ratings.default.svc.cluster.local", tls.sni());
    }

    /** Istio's ISTIO_MUTUAL context: its in-mesh ALPN, the workload's secret, ROOTCA with a SPIFFE SAN matcher. */
    static final String ISTIO_MUTUAL = """
            {"alpnProtocols": ["istio-peer-exchange", "istio"],
             "tlsCertificateSdsSecretConfigs": [{"name": "default", %s}],
             "combinedValidationContext": {"defaultValidationContext": {"matchSubjectAltNames": [
                {"exact": "spiffe://cluster.local/ns/default/sa/bookinfo-ratings"}]},
              "validationContextSdsSecretConfig": {"name": "ROOTCA", %s}}}""".formatted(SDS_CONFIG, SDS_CONFIG);

    @Test
    void withAWorkloadIdentityIstiosOwnSecretsReadItsFilesAndKeepTheirMatchers() throws Exception {
        Path id = Files.createDirectories(dir.resolve("identity"));
        Files.writeString(id.resolve("cert-chain.pem"), CLIENT.certificatePem());
        Files.writeString(id.resolve("key.pem"), CLIENT.keyPem());
        Files.writeString(id.resolve("root-cert.pem"), CA.certificatePem());
        var json = ClusterParserTest.proto(istioCluster(ISTIO_MUTUAL));
        UpstreamTlsContext tls = Parsers.withIdentity(new WorkloadIdentity(id), () -> PARSER.parse(json)).tls();
        assertEquals(CLIENT.certificatePem(), tls.certificateChain());
        assertEquals(CA.certificatePem(), tls.trustedCa());
        assertEquals(new SdsFiles(id.resolve("cert-chain.pem").toString(), id.resolve("key.pem").toString(),
                id.resolve("root-cert.pem").toString()), tls.sdsFiles());
        assertEquals(List.of("istio-peer-exchange", "istio"), tls.alpnProtocols());
        assertTrue(tls.subjectAltNames().stream().anyMatch(m -> m.type() == SanType.URI));
        // without the identity: refused as before, the message saying what would serve them
        String e = error(istioCluster(ISTIO_MUTUAL));
        assertTrue(e.contains("SDS secret \"default\" is not supported") && e.contains("inmesh.identity.dir"), e);
    }

    @Test
    void aMissingIdentityFileRejectsTheClusterByName() throws Exception {
        Path id = Files.createDirectories(dir.resolve("partial-identity"));
        Files.writeString(id.resolve("cert-chain.pem"), CLIENT.certificatePem());
        Files.writeString(id.resolve("key.pem"), CLIENT.keyPem());
        var json = ClusterParserTest.proto(istioCluster(ISTIO_MUTUAL));
        String e = assertThrows(InvalidResourceException.class,
                () -> Parsers.withIdentity(new WorkloadIdentity(id), () -> PARSER.parse(json))).getMessage();
        assertTrue(e.contains("validation_context_sds_secret_config.name: cannot read \""
                + id.resolve("root-cert.pem") + "\""), e);
    }

    @Test
    void aMissingOrBadFileRejectsTheClusterByName() throws Exception {
        String missing = error(istioCluster("""
                {"combinedValidationContext": {"defaultValidationContext": {},
                  "validationContextSdsSecretConfig": {"name": "file-root:%s", %s}}}"""
                .formatted(dir.resolve("nope.pem"), SDS_CONFIG)));
        assertTrue(missing.contains("combined_validation_context.validation_context_sds_secret_config.name: "
                + "cannot read \"" + dir.resolve("nope.pem") + "\""), missing);
        String bad = error(istioCluster("""
                {"validationContext": {"trustedCa": {"inlineString": "not a certificate"}}}"""));
        assertTrue(bad.contains("common_tls_context.validation_context.trusted_ca: "), bad);
        String badKey = error(istioCluster("""
                {"tlsCertificates": [{"certificateChain": {"filename": "%s"},
                                      "privateKey": {"inlineString": "no key"}}]}""".formatted(certFile)));
        assertTrue(badKey.contains("common_tls_context.tls_certificates: not a usable PEM"), badKey);
    }

    @Test
    void fieldsInmeshDoesNotImplementAreRefusedByName() throws Exception {
        assertTrue(error(istioCluster("""
                {"validationContext": {"trustedCa": {"filename": "%s"}, "verifyCertificateSpki": ["abc"]}}"""
                .formatted(caFile))).contains("validation_context.verify_certificate_spki"));
        assertTrue(error(istioCluster("{\"tlsParams\": {\"cipherSuites\": [\"DES-CBC3-SHA\"]}}"))
                .contains("tls_params.cipher_suites[0]: \"DES-CBC3-SHA\" is not supported"));
        assertTrue(error(istioCluster("{\"alpnProtocols\": [\"spdy/3\"]}"))
                .contains("alpn_protocols[0]: \"spdy/3\" is not supported"));
        // h2 on an HTTP/1.1 cluster
        assertTrue(error(istioCluster("{\"alpnProtocols\": [\"h2\"]}"))
                .contains("alpn_protocols: h2 offered on an HTTP/1.1 cluster is not supported"));
        assertTrue(error("""
                {"name": "x", "type": "STATIC", "transportSocket": {"name": "envoy.transport_sockets.quic"}}""")
                .contains("transport_socket.name: \"envoy.transport_sockets.quic\" is not supported"));
    }

    /** Istio's HTTP protocol options for a DestinationRule whose TLS has no sni. */
    private static final String AUTO_SNI_OPTIONS = """
            "typedExtensionProtocolOptions": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
              "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
              "upstreamHttpProtocolOptions": {"autoSni": true, "autoSanValidation": true},
              "useDownstreamProtocolConfig": {"httpProtocolOptions": {}, "http2ProtocolOptions": {}}}}""";

    /** Istio's cluster for a DestinationRule's {@code tls: {mode: SIMPLE}} without sni: auto_sni, no sni. */
    private static String istioAutoSniCluster(String commonTlsContext) {
        return istioCluster(commonTlsContext).replaceAll(",\\s*\"sni\": \"api.example.com\"", "")
                .replace("\"connectTimeout\"", AUTO_SNI_OPTIONS + ", \"connectTimeout\"");
    }

    @Test
    void istiosSimpleTlsWithoutSniTakesTheSniAndTheSanToCheckFromEachRequestsHost() throws Exception {
        String system = istioAutoSniCluster("""
                {"combinedValidationContext": {"defaultValidationContext": {},
                  "validationContextSdsSecretConfig": {"name": "file-root:system", %s}}}""".formatted(SDS_CONFIG));
        assertFalse(system.contains("\"sni\""), system);
        UpstreamTlsContext t = parse(system).tls();
        assertTrue(t.autoSni() && t.autoSanValidation() && t.systemRootCerts());
        assertEquals("", t.sni());
        UpstreamTlsContext ca = parse(istioAutoSniCluster("""
                {"combinedValidationContext": {"defaultValidationContext": {},
                  "validationContextSdsSecretConfig": {"name": "file-root:%s", %s}}}"""
                .formatted(caFile, SDS_CONFIG))).tls();
        assertTrue(ca.autoSni() && ca.autoSanValidation());
        assertEquals(CA.certificatePem(), ca.trustedCa());
        // without TLS they change nothing
        assertNull(parse("{\"name\": \"x\", \"type\": \"STATIC\", " + AUTO_SNI_OPTIONS + "}").tls());
    }

    @Test
    void anOverrideAutoSniHeaderIsRefusedByName() throws Exception {
        String e = error(istioAutoSniCluster("{}").replace("\"autoSanValidation\": true",
                "\"autoSanValidation\": true, \"overrideAutoSniHeader\": \"x-sni\""));
        assertTrue(e.contains("typed_extension_protocol_options[\"envoy.extensions.upstreams.http.v3."
                + "HttpProtocolOptions\"].upstream_http_protocol_options.override_auto_sni_header: \"x-sni\" is not "
                + "supported"), e);
    }

    @Test
    void sanMatchersWithoutATrustedCaAreRefusedAsEnvoyRefusesThem() throws Exception {
        String e = error(istioCluster("""
                {"validationContext": {"matchTypedSubjectAltNames": [
                  {"sanType": "DNS", "matcher": {"exact": "api.example.com"}}]}}"""));
        assertTrue(e.contains("match_typed_subject_alt_names"), e);
        assertFalse(e.contains("trusted_ca: "), e);
    }
}
