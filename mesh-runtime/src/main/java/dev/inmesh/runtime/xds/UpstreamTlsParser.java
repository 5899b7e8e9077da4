package dev.inmesh.runtime.xds;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.inmesh.api.config.cluster.UpstreamTlsContext;
import dev.inmesh.api.config.cluster.UpstreamTlsContext.SanType;
import dev.inmesh.api.config.cluster.UpstreamTlsContext.SubjectAltNameMatcher;
import dev.inmesh.api.config.cluster.UpstreamTlsContext.TlsVersion;
import dev.inmesh.runtime.upstream.UpstreamTls;
import io.envoyproxy.envoy.config.core.v3.DataSource;
import io.envoyproxy.envoy.config.core.v3.TransportSocket;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.CommonTlsContext;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.TlsParameters;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import javax.net.ssl.SNIHostName;

/**
 * Parses a cluster's {@code transport_socket}: {@code raw_buffer} (plaintext, null) or
 * {@code envoy.transport_sockets.tls} with an {@code UpstreamTlsContext}. Files (certificates, keys, CAs) are read
 * here, when the configuration is parsed (off the event loop), so that a missing or bad one rejects the cluster by
 * name.
 *
 * <p>Of SDS, only the names Istio gives files a DestinationRule names are taken, read from disk as Istio's agent
 * would serve them: {@code file-cert:CERT~KEY}, {@code file-root:CA}, and {@code file-root:system} (the JVM's trusted
 * certificate authorities). Istio's own secrets ({@code default}, {@code ROOTCA}) come from istiod's CA, which Inmesh
 * does not have: they are refused, as any other SDS name.
 */
final class UpstreamTlsParser {
    static final String TLS = "envoy.transport_sockets.tls";
    private static final String FILE_CERT = "file-cert:";
    private static final String FILE_ROOT = "file-root:";
    private static final String SYSTEM_ROOT = "file-root:system";

    private UpstreamTlsParser() {}

    /** The TLS context of a transport socket, or null for raw_buffer. */
    static UpstreamTlsContext parse(TransportSocket ts) {
        String name = ts.getName();
        if (name.equals("envoy.transport_sockets.raw_buffer") || name.equals("raw_buffer")) {
            return null;
        }
        String type = ts.getTypedConfig().getTypeUrl();
        boolean tlsType = type.endsWith("/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext");
        if (!tlsType && !name.equals(TLS) && !name.equals("tls")) {
            throw new FieldError("name", "\"" + name + "\" is not supported (only raw_buffer and " + TLS + ")");
        }
        if (!ts.hasTypedConfig() || !tlsType) {
            throw new FieldError("typed_config", "an envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext "
                    + "is required" + (type.isEmpty() ? "" : " (got " + type + ")"));
        }
        io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext u;
        try {
            u = ts.getTypedConfig().unpack(
                    io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext.class);
        } catch (InvalidProtocolBufferException e) {
            throw new FieldError("typed_config", "not a valid UpstreamTlsContext: " + e.getMessage());
        }
        return Fields.at("typed_config", () -> context(u));
    }

    private static UpstreamTlsContext context(
            io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext u) {
        // session resumption and renegotiation tune the handshake; the JDK resumes sessions and refuses
        // renegotiation under TLS 1.3 on its own
        Fields.onlyKnown(u, Set.of("common_tls_context", "sni"),
                Set.of("max_session_keys", "allow_renegotiation", "enforce_rsa_key_usage"));
        String sni = u.getSni();
        if (!sni.isEmpty()) {
            try {
                new SNIHostName(sni);
            } catch (IllegalArgumentException e) {
                throw new FieldError("sni", "\"" + sni + "\" is not a host name TLS can send: " + e.getMessage());
            }
        }
        CommonTlsContext c = u.getCommonTlsContext();
        UpstreamTlsContext parsed = Fields.at("common_tls_context", () -> common(sni, c));
        try {
            UpstreamTls.compile(parsed); // the PEMs must make a key and trust managers now, not at connect time
        } catch (IllegalArgumentException e) {
            throw FieldError.of(e).under("common_tls_context");
        }
        return parsed;
    }

    private static UpstreamTlsContext common(String sni, CommonTlsContext c) {
        Fields.onlyKnown(c, Set.of("tls_params", "tls_certificates", "tls_certificate_sds_secret_configs",
                "validation_context", "validation_context_sds_secret_config", "combined_validation_context",
                "alpn_protocols"), Set.of());
        TlsVersion min = null;
        TlsVersion max = null;
        if (c.hasTlsParams()) {
            TlsParameters p = c.getTlsParams();
            Fields.at("tls_params", () -> {
                Fields.onlyKnown(p, Set.of("tls_minimum_protocol_version", "tls_maximum_protocol_version"), Set.of());
                return null;
            });
            min = Fields.at("tls_params.tls_minimum_protocol_version",
                    () -> version(p.getTlsMinimumProtocolVersion()));
            max = Fields.at("tls_params.tls_maximum_protocol_version",
                    () -> version(p.getTlsMaximumProtocolVersion()));
        }
        String[] keyPair = null;
        if (c.getTlsCertificatesCount() + c.getTlsCertificateSdsSecretConfigsCount() > 1) {
            throw new FieldError("tls_certificates", "a client presents one certificate: "
                    + (c.getTlsCertificatesCount() + c.getTlsCertificateSdsSecretConfigsCount()) + " given");
        }
        if (c.getTlsCertificatesCount() == 1) {
            var t = c.getTlsCertificates(0);
            keyPair = Fields.at("tls_certificates[0]", () -> {
                Fields.onlyKnown(t, Set.of("certificate_chain", "private_key"), Set.of("watched_directory"));
                if (!t.hasCertificateChain() || !t.hasPrivateKey()) {
                    throw new FieldError(t.hasCertificateChain() ? "private_key" : "certificate_chain", "required");
                }
                return new String[] {
                    Fields.at("certificate_chain", () -> data(t.getCertificateChain())),
                    Fields.at("private_key", () -> data(t.getPrivateKey()))};
            });
        } else if (c.getTlsCertificateSdsSecretConfigsCount() == 1) {
            SdsSecretConfig s = c.getTlsCertificateSdsSecretConfigs(0);
            keyPair = Fields.at("tls_certificate_sds_secret_configs[0]", () -> fileCert(s));
        }
        Trust trust = new Trust(null, false, List.of());
        if (c.hasValidationContext()) {
            trust = Fields.at("validation_context", () -> validation(c.getValidationContext()));
        } else if (c.hasValidationContextSdsSecretConfig()) {
            trust = Fields.at("validation_context_sds_secret_config",
                    () -> fileRoot(c.getValidationContextSdsSecretConfig(), new Trust(null, false, List.of())));
        } else if (c.hasCombinedValidationContext()) {
            var combined = c.getCombinedValidationContext();
            trust = Fields.at("combined_validation_context", () -> {
                Fields.onlyKnown(combined, Set.of("default_validation_context",
                        "validation_context_sds_secret_config"), Set.of());
                Trust base = Fields.at("default_validation_context",
                        () -> validation(combined.getDefaultValidationContext()));
                return Fields.at("validation_context_sds_secret_config",
                        () -> fileRoot(combined.getValidationContextSdsSecretConfig(), base));
            });
        }
        List<String> alpn = List.copyOf(c.getAlpnProtocolsList());
        Fields.each("alpn_protocols", alpn, p -> {
            if (!p.equals("h2") && !p.equals("http/1.1")) {
                throw new FieldError("", "\"" + p + "\" is not supported (Inmesh offers h2 and http/1.1 only)");
            }
            return p;
        });
        String[] pair = keyPair;
        TlsVersion lo = min;
        TlsVersion hi = max;
        Trust t = trust;
        return Fields.record("", () -> new UpstreamTlsContext(sni, pair == null ? null : pair[0],
                pair == null ? null : pair[1], t.ca, t.system, t.sans, alpn, lo, hi));
    }

    /** A validation context's parts: the CA PEM or the JVM's CAs, and SAN matchers. */
    private record Trust(String ca, boolean system, List<SubjectAltNameMatcher> sans) {}

    @SuppressWarnings("deprecation") // match_subject_alt_names: deprecated, Istio still writes it
    private static Trust validation(CertificateValidationContext v) {
        Fields.onlyKnown(v, Set.of("trusted_ca", "match_typed_subject_alt_names", "match_subject_alt_names",
                "system_root_certs"), Set.of("watched_directory"));
        String ca = v.hasTrustedCa() ? Fields.at("trusted_ca", () -> data(v.getTrustedCa())) : null;
        List<SubjectAltNameMatcher> sans = new ArrayList<>();
        if (v.getMatchTypedSubjectAltNamesCount() > 0) {
            // as Envoy: with both, the deprecated field is ignored
            sans.addAll(Fields.each("match_typed_subject_alt_names", v.getMatchTypedSubjectAltNamesList(), m -> {
                Fields.onlyKnown(m, Set.of("san_type", "matcher"), Set.of());
                SanType type = switch (m.getSanType()) {
                    case DNS -> SanType.DNS;
                    case URI -> SanType.URI;
                    case EMAIL -> SanType.EMAIL;
                    case IP_ADDRESS -> SanType.IP_ADDRESS;
                    case OTHER_NAME -> throw new FieldError("san_type", "OTHER_NAME is not supported");
                    case SAN_TYPE_UNSPECIFIED, UNRECOGNIZED -> throw new FieldError("san_type",
                            "DNS, URI, EMAIL or IP_ADDRESS is required");
                };
                if (!m.hasMatcher()) {
                    throw new FieldError("matcher", "required");
                }
                return new SubjectAltNameMatcher(type,
                        Fields.at("matcher", () -> CoreParsers.stringMatcher(m.getMatcher())));
            }));
        } else {
            // the deprecated untyped matchers apply to a SAN of any of these types, as Envoy reads them
            Fields.each("match_subject_alt_names", v.getMatchSubjectAltNamesList(), m -> {
                var matcher = CoreParsers.stringMatcher(m);
                for (SanType type : SanType.values()) {
                    sans.add(new SubjectAltNameMatcher(type, matcher));
                }
                return null;
            });
        }
        return new Trust(ca, v.hasSystemRootCerts() && ca == null, List.copyOf(sans));
    }

    /** Istio's SDS name for a DestinationRule's CA file, or the system's CAs; the base's SAN matchers kept. */
    private static Trust fileRoot(SdsSecretConfig s, Trust base) {
        Fields.onlyKnown(s, Set.of("name", "sds_config"), Set.of());
        String name = s.getName();
        if (base.ca != null || base.system) {
            throw new FieldError("name", "\"" + name + "\" given with a trusted_ca in default_validation_context");
        }
        if (name.equals(SYSTEM_ROOT)) {
            return new Trust(null, true, base.sans);
        }
        if (!name.startsWith(FILE_ROOT) || name.length() == FILE_ROOT.length()) {
            throw new FieldError("name", unsupportedSds(name));
        }
        String ca = read("name", name.substring(FILE_ROOT.length()));
        return new Trust(ca, false, base.sans);
    }

    /** Istio's SDS name for a DestinationRule's client certificate and key files: {@code file-cert:CERT~KEY}. */
    private static String[] fileCert(SdsSecretConfig s) {
        Fields.onlyKnown(s, Set.of("name", "sds_config"), Set.of());
        String name = s.getName();
        int tilde = name.indexOf('~');
        if (!name.startsWith(FILE_CERT) || tilde < 0 || tilde == FILE_CERT.length() || tilde == name.length() - 1) {
            throw new FieldError("name", unsupportedSds(name));
        }
        return new String[] {read("name", name.substring(FILE_CERT.length(), tilde)),
            read("name", name.substring(tilde + 1))};
    }

    private static String unsupportedSds(String name) {
        return "SDS secret \"" + name + "\" is not supported: Inmesh has no SDS server and no Istio CA; it reads "
                + "only the files of Istio's \"file-cert:CERT~KEY\" and \"file-root:CA\" names (and "
                + "\"file-root:system\")";
    }

    private static String data(DataSource d) {
        return switch (d.getSpecifierCase()) {
            case FILENAME -> read("filename", d.getFilename());
            case INLINE_STRING -> d.getInlineString();
            case INLINE_BYTES -> d.getInlineBytes().toString(StandardCharsets.UTF_8);
            case ENVIRONMENT_VARIABLE -> throw new FieldError("environment_variable", "not supported");
            case SPECIFIER_NOT_SET -> throw new FieldError("", "filename, inline_string or inline_bytes required");
        };
    }

    private static String read(String field, String file) {
        try {
            return Files.readString(Path.of(file), StandardCharsets.UTF_8);
        } catch (IOException | RuntimeException e) {
            throw new FieldError(field, "cannot read \"" + file + "\": " + e);
        }
    }

    private static TlsVersion version(TlsParameters.TlsProtocol p) {
        return switch (p) {
            case TLS_AUTO -> null; // Envoy's client default, TLS 1.2
            case TLSv1_0 -> TlsVersion.TLSv1_0;
            case TLSv1_1 -> TlsVersion.TLSv1_1;
            case TLSv1_2 -> TlsVersion.TLSv1_2;
            case TLSv1_3 -> TlsVersion.TLSv1_3;
            case UNRECOGNIZED -> throw new FieldError("", "unknown value " + p.getNumber());
        };
    }
}
