package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.cluster.UpstreamTlsContext.SubjectAltNameMatcher;
import dev.inmesh.api.config.cluster.UpstreamTlsContext.TlsVersion;
import dev.inmesh.api.config.core.SdsFiles;
import java.util.List;

/**
 * TLS terminated on a filter chain, as Envoy's {@code envoy.transport_sockets.tls} with a
 * {@code DownstreamTlsContext}: the chain's filter (HTTP connection manager or TCP proxy) runs on the decrypted
 * stream.
 *
 * <p>As in Envoy: a client certificate is asked for only when there is a validation context ({@code trustedCa}) or
 * one is required; one that is sent is verified against the trusted CAs (without them, not at all); a client without
 * one is refused only when {@code requireClientCertificate} is set or there are {@code subjectAltNames} matchers (one
 * of them must then match a SAN of the client's certificate).
 *
 * @param certificateChain the certificate chain (PEM) the listener presents
 * @param privateKey its private key (PEM)
 * @param trustedCa the certificate authorities (PEM) a client certificate must lead to, or null to ask for none
 * @param subjectAltNames matchers of which at least one must match a SAN of the client's certificate; empty: any
 * @param requireClientCertificate whether a client without a certificate is refused
 * @param alpnProtocols the protocols the listener takes through ALPN, in order of preference; empty: no ALPN
 * @param minVersion the oldest TLS version allowed (Envoy's server default TLS 1.2)
 * @param maxVersion the newest TLS version allowed (Envoy's server default TLS 1.3)
 * @param sdsFiles the files of Istio's file SDS names the PEMs were read from, which are watched and read again
 *     when they change ({@link SdsFiles#NONE}: none)
 * @param cipherSuites the cipher suites of TLS 1.2 and older, in BoringSSL's names ({@code ECDHE-RSA-AES128-GCM-SHA256}),
 *     in order of preference; empty: Envoy's default server list. As in Envoy, they do not apply to TLS 1.3, whose
 *     suites are all enabled
 */
public record DownstreamTlsContext(String certificateChain, String privateKey, String trustedCa,
                                   List<SubjectAltNameMatcher> subjectAltNames, boolean requireClientCertificate,
                                   List<String> alpnProtocols, TlsVersion minVersion, TlsVersion maxVersion,
                                   SdsFiles sdsFiles, List<String> cipherSuites) {

    /** With Envoy's default cipher suites. */
    public DownstreamTlsContext(String certificateChain, String privateKey, String trustedCa,
                                List<SubjectAltNameMatcher> subjectAltNames, boolean requireClientCertificate,
                                List<String> alpnProtocols, TlsVersion minVersion, TlsVersion maxVersion,
                                SdsFiles sdsFiles) {
        this(certificateChain, privateKey, trustedCa, subjectAltNames, requireClientCertificate, alpnProtocols,
                minVersion, maxVersion, sdsFiles, List.of());
    }

    /** Without SDS files. */
    public DownstreamTlsContext(String certificateChain, String privateKey, String trustedCa,
                                List<SubjectAltNameMatcher> subjectAltNames, boolean requireClientCertificate,
                                List<String> alpnProtocols, TlsVersion minVersion, TlsVersion maxVersion) {
        this(certificateChain, privateKey, trustedCa, subjectAltNames, requireClientCertificate, alpnProtocols,
                minVersion, maxVersion, SdsFiles.NONE);
    }

    public DownstreamTlsContext {
        sdsFiles = sdsFiles == null ? SdsFiles.NONE : sdsFiles;
        Checks.nonNull(certificateChain, "tls_certificates");
        Checks.nonNull(privateKey, "tls_certificates.private_key");
        subjectAltNames = Checks.list(subjectAltNames, "match_typed_subject_alt_names");
        alpnProtocols = Checks.list(alpnProtocols, "alpn_protocols");
        cipherSuites = Checks.list(cipherSuites, "tls_params.cipher_suites");
        minVersion = minVersion == null ? TlsVersion.TLSv1_2 : minVersion;
        maxVersion = maxVersion == null ? TlsVersion.TLSv1_3 : maxVersion;
        // as Envoy: SAN matchers without a chain to trust would be easy to spoof
        Checks.check(subjectAltNames.isEmpty() || trustedCa != null, "match_typed_subject_alt_names",
                subjectAltNames.size() + " matchers", "trusted_ca too (SAN matching without a trusted CA is insecure)");
        Checks.check(minVersion.compareTo(maxVersion) <= 0, "tls_params", minVersion + ".." + maxVersion,
                "tls_minimum_protocol_version <= tls_maximum_protocol_version");
    }

    /** This context with the PEMs read again from its SDS files (the certificate chain, key and CAs). */
    public DownstreamTlsContext withPems(String chain, String key, String ca) {
        return new DownstreamTlsContext(chain, key, ca, subjectAltNames, requireClientCertificate, alpnProtocols,
                minVersion, maxVersion, sdsFiles, cipherSuites);
    }

    /** Whether a client without a certificate is refused: required, or SAN matchers to satisfy. */
    public boolean clientCertificateRequired() {
        return requireClientCertificate || !subjectAltNames.isEmpty();
    }

    /** Whether the listener asks clients for a certificate (it has a validation context). */
    public boolean requestsClientCertificate() {
        return trustedCa != null || requireClientCertificate;
    }

    @Override
    public String toString() {
        // the key stays out of logs
        return "DownstreamTlsContext[trustedCa=" + (trustedCa != null) + ", subjectAltNames=" + subjectAltNames
                + ", requireClientCertificate=" + requireClientCertificate + ", alpnProtocols=" + alpnProtocols
                + ", versions=" + minVersion + ".." + maxVersion + ", cipherSuites=" + cipherSuites + "]";
    }
}
