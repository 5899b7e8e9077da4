package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import com.google.protobuf.util.JsonFormat;
import dev.inmesh.api.config.cluster.UpstreamTlsContext.SanType;
import dev.inmesh.api.config.cluster.UpstreamTlsContext.SubjectAltNameMatcher;
import dev.inmesh.api.config.cluster.UpstreamTlsContext.TlsVersion;
import dev.inmesh.api.config.core.StringMatcher;
import dev.inmesh.api.config.core.SdsFiles;
import dev.inmesh.api.config.listener.DownstreamTlsContext;
import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.runtime.tls.WorkloadIdentity;
import dev.inmesh.runtime.upstream.TestCertificates;
import io.envoyproxy.envoy.config.core.v3.Address;
import io.envoyproxy.envoy.config.core.v3.SocketAddress;
import io.envoyproxy.envoy.config.core.v3.TransportSocket;
import io.envoyproxy.envoy.config.listener.v3.Filter;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A filter chain's TLS transport socket (DownstreamTlsContext) as Envoy reads it: certificates from files, inline
 * PEMs or Istio's file SDS names; Istio's own SDS secrets load as a chain Inmesh cannot serve; what Inmesh does not
 * do is refused by name.
 */
class DownstreamTlsParserTest {
    private static final TestCertificates.Issued CA = TestCertificates.ca("mesh-ca");
    private static final TestCertificates.Issued SERVER = TestCertificates.issue(CA, "web", List.of("web.example.com"),
            List.of());
    private static final Path CA_PEM = pem(CA.certificatePem());
    private static final Path CERT_PEM = pem(SERVER.certificatePem());
    private static final Path KEY_PEM = pem(SERVER.keyPem());
    /** The listener's certificate and key, from files, as common_tls_context fields (JSON). */
    private static final String CERTIFICATE = "\"tlsCertificates\": [{\"certificateChain\": {\"filename\": \""
            + CERT_PEM + "\"}, \"privateKey\": {\"filename\": \"" + KEY_PEM + "\"}}]";

    private static Path pem(String text) {
        try {
            Path p = Files.createTempFile("downstream-tls", ".pem");
            p.toFile().deleteOnExit();
            return Files.writeString(p, text);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The listener "https" with one tcp_proxy chain whose transport socket has this DownstreamTlsContext (JSON). */
    static Listener listener(String contextJson) throws Exception {
        var context = io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext.newBuilder();
        JsonFormat.parser().merge(contextJson, context);
        var tcp = TcpProxy.newBuilder().setStatPrefix("tcp").setCluster("backend").build();
        return Listener.newBuilder().setName("https").setAddress(Address.newBuilder().setSocketAddress(
                SocketAddress.newBuilder().setAddress("127.0.0.1").setPortValue(8443))).addFilterChains(
                io.envoyproxy.envoy.config.listener.v3.FilterChain.newBuilder().setName("tls-chain")
                        .setTransportSocket(TransportSocket.newBuilder().setName(CommonTlsParser.TLS)
                                .setTypedConfig(Any.pack(context.build())))
                        .addFilters(Filter.newBuilder().setName(ListenerParser.TCP_PROXY)
                                .setTypedConfig(Any.pack(tcp)))).build();
    }

    private static FilterChain chain(String contextJson) throws Exception {
        return new ListenerParser().parse(listener(contextJson)).filterChains().get(0);
    }

    private static String error(String contextJson) throws Exception {
        Listener l = listener(contextJson);
        return assertThrows(InvalidResourceException.class, () -> new ListenerParser().parse(l)).getMessage();
    }

    @Test
    void aCertificateFromFilesIsServedWithEnvoysServerDefaults() throws Exception {
        FilterChain c = chain("{\"commonTlsContext\": {" + CERTIFICATE + "}}");
        assertTrue(c.tls());
        DownstreamTlsContext tls = c.tlsContext();
        assertEquals(SERVER.certificatePem(), tls.certificateChain());
        assertEquals(SERVER.keyPem(), tls.privateKey());
        // no validation context: no client certificate is asked for
        assertNull(tls.trustedCa());
        assertFalse(tls.requestsClientCertificate());
        assertFalse(tls.clientCertificateRequired());
        assertEquals(List.of(), tls.alpnProtocols());
        // Envoy's server defaults: TLS 1.2 to 1.3
        assertEquals(TlsVersion.TLSv1_2, tls.minVersion());
        assertEquals(TlsVersion.TLSv1_3, tls.maxVersion());
    }

    @Test
    void istiosFileSdsNamesWithAValidationContextAskForAClientCertificateAndRequireItWhenTold() throws Exception {
        FilterChain c = chain("""
                {"requireClientCertificate": true, "commonTlsContext": {
                  "alpnProtocols": ["h2", "http/1.1"], "tlsParams": {"tlsMinimumProtocolVersion": "TLSv1_3"},
                  "tlsCertificateSdsSecretConfigs": [{"name": "file-cert:%s~%s"}],
                  "combinedValidationContext": {
                    "defaultValidationContext": {"matchTypedSubjectAltNames": [
                      {"sanType": "URI", "matcher": {"prefix": "spiffe://cluster.local/"}}]},
                    "validationContextSdsSecretConfig": {"name": "file-root:%s"}}}}""".formatted(CERT_PEM, KEY_PEM,
                CA_PEM));
        DownstreamTlsContext tls = c.tlsContext();
        assertEquals(SERVER.certificatePem(), tls.certificateChain());
        assertEquals(CA.certificatePem(), tls.trustedCa());
        // the files of Istio's SDS names, watched for rotation
        assertEquals(new SdsFiles(CERT_PEM.toString(), KEY_PEM.toString(), CA_PEM.toString()), tls.sdsFiles());
        assertEquals(List.of(new SubjectAltNameMatcher(SanType.URI, new StringMatcher.Prefix("spiffe://cluster.local/",
                false))), tls.subjectAltNames());
        assertTrue(tls.requireClientCertificate());
        assertEquals(List.of("h2", "http/1.1"), tls.alpnProtocols());
        assertEquals(TlsVersion.TLSv1_3, tls.minVersion());
    }

    /**
     * An SDS secret from a file ({@code sds_config: {path_config_source: ...}}), which Inmesh does not read, is refused
     * by name, as on a cluster: it is no Istio name the chain would be kept for (with no source, never serving).
     */
    @Test
    void anSdsSecretFromAFileSourceIsRefusedByName() throws Exception {
        String e = error("""
                {"commonTlsContext": {"tlsCertificateSdsSecretConfigs": [{"name": "server-cert",
                  "sdsConfig": {"pathConfigSource": {"path": "/etc/envoy/sds.yaml"}}}]}}""");
        assertTrue(e.contains("common_tls_context.tls_certificate_sds_secret_configs[0].sds_config.path_config_source:"
                + " SDS from a file is not supported"), e);
        e = error("{\"commonTlsContext\": {" + CERTIFICATE + ", \"validationContextSdsSecretConfig\": {\"name\": "
                + "\"ca\", \"sdsConfig\": {\"path\": \"/etc/envoy/ca.yaml\"}}}}");
        assertTrue(e.contains("common_tls_context.validation_context_sds_secret_config.sds_config.path:"
                + " SDS from a file is not supported"), e);
    }

    /**
     * TLS 1.0 and 1.1 are in the JDK's {@code jdk.tls.disabledAlgorithms}: a range of only those, which no handshake
     * could use, is refused by name; a range reaching TLS 1.2 is taken (the JDK offers what it has of it).
     */
    @Test
    void aVersionRangeTheJvmDisablesWhollyIsRefusedByName() throws Exception {
        String property = java.security.Security.getProperty("jdk.tls.disabledAlgorithms");
        java.security.Security.setProperty("jdk.tls.disabledAlgorithms", "SSLv3, TLSv1, TLSv1.1, RC4");
        try {
            String e = error("{\"commonTlsContext\": {" + CERTIFICATE + ", \"tlsParams\": {"
                    + "\"tlsMinimumProtocolVersion\": \"TLSv1_0\", \"tlsMaximumProtocolVersion\": \"TLSv1_1\"}}}");
            assertTrue(e.contains("common_tls_context.tls_params.tls_maximum_protocol_version: TLSv1_1")
                    && e.contains("jdk.tls.disabledAlgorithms"), e);
            DownstreamTlsContext tls = chain("{\"commonTlsContext\": {" + CERTIFICATE + ", \"tlsParams\": {"
                    + "\"tlsMinimumProtocolVersion\": \"TLSv1_0\", \"tlsMaximumProtocolVersion\": \"TLSv1_2\"}}}")
                    .tlsContext();
            assertEquals(TlsVersion.TLSv1_0, tls.minVersion());
        } finally {
            java.security.Security.setProperty("jdk.tls.disabledAlgorithms", property);
        }
    }

    @Test
    void aTrustedCaAloneAsksForAClientCertificateWithoutRequiringIt() throws Exception {
        DownstreamTlsContext tls = chain("{\"commonTlsContext\": {" + CERTIFICATE
                + ", \"validationContext\": {\"trustedCa\": {\"filename\": \"" + CA_PEM + "\"}}}}").tlsContext();
        assertTrue(tls.requestsClientCertificate());
        assertFalse(tls.clientCertificateRequired());
    }

    @Test
    void istiosOwnSdsSecretsLoadAsAChainInmeshCannotServe() throws Exception {
        // Istio's inbound mTLS chain: its certificate and CA come from istiod through the agent's SDS
        FilterChain c = chain("""
                {"requireClientCertificate": true, "commonTlsContext": {
                  "tlsParams": {"tlsMinimumProtocolVersion": "TLSv1_2",
                    "cipherSuites": ["ECDHE-RSA-AES128-GCM-SHA256"]},
                  "tlsCertificateSdsSecretConfigs": [{"name": "default"}],
                  "combinedValidationContext": {
                    "defaultValidationContext": {"matchSubjectAltNames": [{"prefix": "spiffe://cluster.local/"}]},
                    "validationContextSdsSecretConfig": {"name": "ROOTCA"}}}}""");
        assertTrue(c.tls());
        assertNull(c.tlsContext());
        assertNull(chain("{\"commonTlsContext\": {\"tlsCertificateSdsSecretConfigs\": [{\"name\": "
                + "\"kubernetes://gateway-cert\"}]}}").tlsContext());
    }

    @Test
    void withAWorkloadIdentityIstiosInboundMtlsChainServesItsFiles() throws Exception {
        Path id = Files.createTempDirectory("identity");
        id.toFile().deleteOnExit();
        for (String[] f : new String[][] {{"cert-chain.pem", SERVER.certificatePem()}, {"key.pem", SERVER.keyPem()},
                {"root-cert.pem", CA.certificatePem()}}) {
            Files.writeString(id.resolve(f[0]), f[1]).toFile().deleteOnExit();
        }
        // as istiod writes it, with Envoy's default suites for TLS 1.2
        Listener l = listener("""
                {"requireClientCertificate": true, "commonTlsContext": {
                  "tlsParams": {"tlsMinimumProtocolVersion": "TLSv1_2", "tlsMaximumProtocolVersion": "TLSv1_3",
                    "cipherSuites": ["ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
                      "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"]},
                  "alpnProtocols": ["h2", "http/1.1"],
                  "tlsCertificateSdsSecretConfigs": [{"name": "default"}],
                  "combinedValidationContext": {
                    "defaultValidationContext": {"matchSubjectAltNames": [{"prefix": "spiffe://cluster.local/"}]},
                    "validationContextSdsSecretConfig": {"name": "ROOTCA"}}}}""");
        DownstreamTlsContext tls = Parsers.withIdentity(new WorkloadIdentity(id),
                () -> new ListenerParser().parse(l)).filterChains().get(0).tlsContext();
        assertEquals(SERVER.certificatePem(), tls.certificateChain());
        assertEquals(CA.certificatePem(), tls.trustedCa());
        assertTrue(tls.clientCertificateRequired());
        assertEquals(new SdsFiles(id.resolve("cert-chain.pem").toString(), id.resolve("key.pem").toString(),
                id.resolve("root-cert.pem").toString()), tls.sdsFiles());
    }

    @Test
    void aKeyThatIsNotTheCertificatesIsRefusedByName() throws Exception {
        Path otherKey = pem(TestCertificates.issue(CA, "other", List.of("other.example.com"), List.of()).keyPem());
        String e = error("{\"commonTlsContext\": {\"tlsCertificates\": [{\"certificateChain\": {\"filename\": \""
                + CERT_PEM + "\"}, \"privateKey\": {\"filename\": \"" + otherKey + "\"}}]}}");
        assertTrue(e.contains("common_tls_context") && e.contains("the private key is not the certificate's"), e);
    }

    @Test
    void moreThanOneCertificateIsRefusedByName() throws Exception {
        String e = error("{\"commonTlsContext\": {" + CERTIFICATE + ", \"tlsCertificateSdsSecretConfigs\": [{\"name\": "
                + "\"file-cert:" + CERT_PEM + "~" + KEY_PEM + "\"}]}}");
        assertTrue(e.contains("Listener \"https\"") && e.contains("filter_chains[0].transport_socket.typed_config"
                + ".common_tls_context.tls_certificates") && e.contains("one certificate"), e);
    }

    @Test
    void aChainWithoutACertificateIsRefused() throws Exception {
        String e = error("{\"commonTlsContext\": {\"alpnProtocols\": [\"h2\"]}}");
        assertTrue(e.contains("tls_certificates") && e.contains("a listener needs a certificate"), e);
    }

    @Test
    void fieldsInmeshDoesNotApplyAreRefusedByName() throws Exception {
        String common = "{\"commonTlsContext\": {" + CERTIFICATE;
        assertTrue(error(common + "}, \"requireSni\": true}").contains("require_sni: not supported"));
        assertTrue(error(common + "}, \"sessionTimeout\": \"10s\"}").contains("session_timeout: not supported"));
        assertTrue(error(common + ", \"tlsParams\": {\"cipherSuites\": [\"DES-CBC3-SHA\"]}}}")
                .contains("tls_params.cipher_suites[0]: \"DES-CBC3-SHA\" is not supported"));
        // the suites Istio writes on its inbound chains, all of Envoy's defaults
        assertTrue(chain(common + ", \"tlsParams\": {\"cipherSuites\": [\"ECDHE-ECDSA-AES256-GCM-SHA384\", "
                + "\"ECDHE-RSA-AES256-GCM-SHA384\", \"ECDHE-ECDSA-AES128-GCM-SHA256\", "
                + "\"ECDHE-RSA-AES128-GCM-SHA256\"]}}}").tls());
        String system = error(common + ", \"validationContext\": {\"systemRootCerts\": {}}}}");
        assertTrue(system.contains("validation_context") && system.contains("verify servers only"), system);
    }

    @Test
    void cipherSuitesAreKeptInOrderWithEnvoysGroupsOfEquallyPreferredOnesSpread() throws Exception {
        String common = "{\"commonTlsContext\": {" + CERTIFICATE;
        DownstreamTlsContext tls = chain(common + ", \"tlsParams\": {\"cipherSuites\": ["
                + "\"[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]\", \"ECDHE-RSA-AES256-GCM-SHA384\"]}}}")
                .tlsContext();
        assertEquals(List.of("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305",
                "ECDHE-RSA-AES256-GCM-SHA384"), tls.cipherSuites());
        assertEquals(List.of(), chain(common + "}}").tlsContext().cipherSuites()); // Envoy's default list
        String e = error(common + ", \"tlsParams\": {\"cipherSuites\": [\"AES128-SHA\", "
                + "\"[ECDHE-RSA-AES128-GCM-SHA256|RC4-SHA]\"]}}}");
        assertTrue(e.contains("tls_params.cipher_suites[1]: \"[ECDHE-RSA-AES128-GCM-SHA256|RC4-SHA]\" is not "
                + "supported"), e);
    }

    @Test
    void aFileThatCannotBeReadOrIsNoCertificateIsRefusedByName() throws Exception {
        String missing = error("{\"commonTlsContext\": {"
                + CERTIFICATE.replace(CERT_PEM.toString(), CERT_PEM + ".missing") + "}}");
        assertTrue(missing.contains("Listener \"https\"") && missing.contains("certificate_chain.filename")
                && missing.contains(".missing"), missing);
        String junk = error("{\"commonTlsContext\": {"
                + CERTIFICATE.replace(CERT_PEM.toString(), pem("not a certificate").toString()) + "}}");
        assertTrue(junk.contains("tls_certificates") && junk.contains("not a usable PEM"), junk);
    }
}
