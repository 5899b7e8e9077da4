package dev.inmesh.api.config.cluster;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.SdsFiles;
import dev.inmesh.api.config.core.StringMatcher;
import java.util.List;

/**
 * TLS to a cluster's hosts, as Envoy's {@code envoy.transport_sockets.tls} with an {@code UpstreamTlsContext}: the
 * mesh takes plain HTTP from the application and connects to the upstream over TLS.
 *
 * <p>As in Envoy: without {@code trustedCa} the server's certificate is not verified at all; with it the chain must
 * lead to one of its certificates; the host name is never checked against the certificate, only the
 * {@code subjectAltNames} matchers when there are some (one of them must match one SAN of the certificate).
 *
 * @param sni the server name sent in the TLS handshake, or empty to send none
 * @param certificateChain the client certificate chain (PEM) presented when the server asks for one, or null
 * @param privateKey the client certificate's private key (PEM), set exactly when {@code certificateChain} is
 * @param trustedCa the certificate authorities (PEM) the server's chain must lead to, or null
 * @param systemRootCerts without {@code trustedCa}: whether the server's chain must lead to one of the JVM's trusted
 *     certificate authorities (Envoy's {@code system_root_certs}, Istio's {@code file-root:system}); neither: the
 *     server's certificate is not verified
 * @param subjectAltNames matchers of which at least one must match a SAN of the server's certificate; empty: any
 * @param alpnProtocols the protocols offered through ALPN, in order of preference; empty: none
 * @param minVersion the oldest TLS version allowed (Envoy's client default TLS 1.2)
 * @param maxVersion the newest TLS version allowed (Envoy's client default TLS 1.2)
 * @param autoSni the cluster's {@code HttpProtocolOptions} ask for {@code auto_sni}: an HTTP request's connection
 *     sends the request's host (as it goes upstream, without its port) as the SNI, in place of {@code sni}, and
 *     requests of different hosts use different connections
 * @param autoSanValidation the cluster's {@code HttpProtocolOptions} ask for {@code auto_san_validation}: an HTTP
 *     request's connection is made only to a server whose certificate has a SAN matching the request's host (a
 *     wildcard DNS SAN for one label), in addition to the chain and the {@code subjectAltNames}; as in Envoy, this
 *     check applies without a trusted CA too
 * @param sdsFiles the files of Istio's file SDS names the PEMs were read from, which are watched and read again
 *     when they change ({@link SdsFiles#NONE}: none)
 * @param cipherSuites the cipher suites of TLS 1.2 and older offered, in BoringSSL's names
 *     ({@code ECDHE-RSA-AES128-GCM-SHA256}), in order of preference; empty: Envoy's default client list. As in Envoy,
 *     they do not apply to TLS 1.3, whose suites are all offered
 */
public record UpstreamTlsContext(String sni, String certificateChain, String privateKey, String trustedCa,
                                 boolean systemRootCerts, List<SubjectAltNameMatcher> subjectAltNames,
                                 List<String> alpnProtocols, TlsVersion minVersion, TlsVersion maxVersion,
                                 boolean autoSni, boolean autoSanValidation, SdsFiles sdsFiles,
                                 List<String> cipherSuites) {

    /** With Envoy's default cipher suites. */
    public UpstreamTlsContext(String sni, String certificateChain, String privateKey, String trustedCa,
                              boolean systemRootCerts, List<SubjectAltNameMatcher> subjectAltNames,
                              List<String> alpnProtocols, TlsVersion minVersion, TlsVersion maxVersion,
                              boolean autoSni, boolean autoSanValidation, SdsFiles sdsFiles) {
        this(sni, certificateChain, privateKey, trustedCa, systemRootCerts, subjectAltNames, alpnProtocols,
                minVersion, maxVersion, autoSni, autoSanValidation, sdsFiles, List.of());
    }

    /** Without SDS files. */
    public UpstreamTlsContext(String sni, String certificateChain, String privateKey, String trustedCa,
                              boolean systemRootCerts, List<SubjectAltNameMatcher> subjectAltNames,
                              List<String> alpnProtocols, TlsVersion minVersion, TlsVersion maxVersion,
                              boolean autoSni, boolean autoSanValidation) {
        this(sni, certificateChain, privateKey, trustedCa, systemRootCerts, subjectAltNames, alpnProtocols,
                minVersion, maxVersion, autoSni, autoSanValidation, SdsFiles.NONE);
    }

    /** Without {@code auto_sni} and {@code auto_san_validation}. */
    public UpstreamTlsContext(String sni, String certificateChain, String privateKey, String trustedCa,
                              boolean systemRootCerts, List<SubjectAltNameMatcher> subjectAltNames,
                              List<String> alpnProtocols, TlsVersion minVersion, TlsVersion maxVersion) {
        this(sni, certificateChain, privateKey, trustedCa, systemRootCerts, subjectAltNames, alpnProtocols,
                minVersion, maxVersion, false, false);
    }

    /** This context with the HTTP protocol options' {@code auto_sni} and {@code auto_san_validation}. */
    public UpstreamTlsContext withAutoSni(boolean sni, boolean sanValidation) {
        return new UpstreamTlsContext(this.sni, certificateChain, privateKey, trustedCa, systemRootCerts,
                subjectAltNames, alpnProtocols, minVersion, maxVersion, sni, sanValidation, sdsFiles, cipherSuites);
    }

    /** This context with the PEMs read again from its SDS files (the certificate chain, key and CAs). */
    public UpstreamTlsContext withPems(String chain, String key, String ca) {
        return new UpstreamTlsContext(sni, chain, key, ca, systemRootCerts, subjectAltNames, alpnProtocols,
                minVersion, maxVersion, autoSni, autoSanValidation, sdsFiles, cipherSuites);
    }

    /** Whether each HTTP request's host decides its connection's SNI or the SAN its server must have. */
    public boolean perRequestHost() {
        return autoSni || autoSanValidation;
    }

    /** A TLS protocol version, as Envoy's {@code TlsParameters.TlsProtocol}. */
    public enum TlsVersion {
        TLSv1_0("TLSv1"), TLSv1_1("TLSv1.1"), TLSv1_2("TLSv1.2"), TLSv1_3("TLSv1.3");

        private final String javaName;

        TlsVersion(String javaName) {
            this.javaName = javaName;
        }

        /** The protocol's name in Java's TLS implementation ({@code TLSv1.2}). */
        public String javaName() {
            return javaName;
        }
    }

    /** The kind of SAN a matcher applies to, as Envoy's {@code SubjectAltNameMatcher.SanType}. */
    public enum SanType { DNS, URI, EMAIL, IP_ADDRESS }

    /**
     * A matcher of one SAN type, as Envoy's {@code SubjectAltNameMatcher}. For DNS with an exact matcher, a wildcard
     * SAN of the certificate ({@code *.example.com}) matches a name one label below it, as Envoy evaluates it.
     */
    public record SubjectAltNameMatcher(SanType type, StringMatcher matcher) {
        public SubjectAltNameMatcher {
            Checks.nonNull(type, "san_type");
            Checks.nonNull(matcher, "matcher");
        }
    }

    /** Whether the server's certificate chain is verified (against {@code trustedCa} or the JVM's CAs). */
    public boolean verifiesServer() {
        return trustedCa != null || systemRootCerts;
    }

    public UpstreamTlsContext {
        sni = sni == null ? "" : sni;
        sdsFiles = sdsFiles == null ? SdsFiles.NONE : sdsFiles;
        subjectAltNames = subjectAltNames == null ? List.of() : List.copyOf(subjectAltNames);
        alpnProtocols = alpnProtocols == null ? List.of() : List.copyOf(alpnProtocols);
        cipherSuites = cipherSuites == null ? List.of() : List.copyOf(cipherSuites);
        minVersion = minVersion == null ? TlsVersion.TLSv1_2 : minVersion;
        maxVersion = maxVersion == null ? TlsVersion.TLSv1_2 : maxVersion;
        Checks.check((certificateChain == null) == (privateKey == null), "tls_certificates",
                certificateChain == null ? "a private key without a certificate chain"
                        : "a certificate chain without a private key", "both or neither");
        // as Envoy: SAN matchers alone, without a chain to trust, would be easy to spoof
        Checks.check(subjectAltNames.isEmpty() || trustedCa != null || systemRootCerts,
                "match_typed_subject_alt_names", subjectAltNames.size() + " matchers",
                "trusted_ca too (SAN matching without a trusted CA is insecure)");
        Checks.check(minVersion.compareTo(maxVersion) <= 0, "tls_params", minVersion + ".." + maxVersion,
                "tls_minimum_protocol_version <= tls_maximum_protocol_version");
    }
}
