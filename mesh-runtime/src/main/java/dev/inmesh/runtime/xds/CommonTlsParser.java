package dev.inmesh.runtime.xds;

import dev.inmesh.api.config.cluster.UpstreamTlsContext.SanType;
import dev.inmesh.api.config.cluster.UpstreamTlsContext.SubjectAltNameMatcher;
import dev.inmesh.api.config.cluster.UpstreamTlsContext.TlsVersion;
import dev.inmesh.api.config.core.SdsFiles;
import dev.inmesh.api.config.core.SdsSecretSource;
import dev.inmesh.runtime.tls.TlsMaterial;
import dev.inmesh.runtime.tls.WorkloadIdentity;
import dev.inmesh.runtime.xds.sds.SdsSecret;
import dev.inmesh.runtime.xds.sds.SdsSecretManager;
import com.google.protobuf.Internal;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import io.envoyproxy.envoy.config.core.v3.TransportSocket;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.CommonTlsContext;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.TlsParameters;
import io.vertx.core.Context;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;

/**
 * Parses the {@code CommonTlsContext} both TLS sides share (an {@code UpstreamTlsContext}'s and a
 * {@code DownstreamTlsContext}'s): the certificate and key, the validation context, ALPN and the TLS versions. Files
 * are read here, when the configuration is parsed (off the event loop), so that a missing or bad one rejects the
 * resource by name.
 *
 * <p>Of SDS, only the names Istio gives files are taken, read from disk as Istio's agent would serve them:
 * {@code file-cert:CERT~KEY}, {@code file-root:CA}, and {@code file-root:system} (the JVM's trusted certificate
 * authorities); and, when the parse runs with a {@link WorkloadIdentity} ({@link Parsers#withIdentity}), Istio's
 * own secrets {@code default} (its {@code cert-chain.pem} and {@code key.pem}) and {@code ROOTCA} (its
 * {@code root-cert.pem}), which Istio's agent serves from istiod's CA. Without one those two are refused: Inmesh has
 * no SDS server and no CA of its own. The files of those names are what {@link SdsFiles} keeps, for the runtime to
 * read them again when they change, as Istio's agent serves a changed file again; a plain {@code filename} is read
 * once, as Envoy reads it. A secret fetched over SDS ({@link Parsers#withSds}: its own gRPC stream, or the ADS
 * stream for {@code ads: {}}) has no file: its PEMs come from the SDS client's memory, and {@link SdsFiles} keeps its
 * {@link SdsSecretSource}, where the runtime finds its rotations.
 *
 * <p>The certificate and key of such a name are two files, which a rotation replaces one after the other (Istio's
 * agent and Inmesh's CA client the key first, then the chain): a parse between the two finds a key that is not the
 * certificate's. Envoy gets the pair as one SDS secret, and reads a {@code watched_directory}'s pair together,
 * checking that neither file changed between the two reads; here a context whose pair of such files makes no usable
 * key reads both again ({@link #compiled}), so that a resource parsed mid-rotation is not rejected for it.
 */
final class CommonTlsParser {
    static final String TLS = "envoy.transport_sockets.tls";
    private static final String FILE_CERT = "file-cert:";
    private static final String FILE_ROOT = "file-root:";
    private static final String SYSTEM_ROOT = "file-root:system";
    /** The workload identity of the parse running on this thread, or null ({@link Parsers#withIdentity}). */
    static final ThreadLocal<WorkloadIdentity> IDENTITY = new ThreadLocal<>();
    /** The SDS client of the parse running on this thread, or null ({@link Parsers#withSds}). */
    static final ThreadLocal<SdsSecretManager> SDS = new ThreadLocal<>();
    /**
     * Where the parse running on this thread puts the names of the SDS secrets that had not arrived within their
     * {@code initial_fetch_timeout}, or null when such a secret rejects its resource
     * ({@link Parsers#withSecretsNotReady}).
     */
    static final ThreadLocal<Set<String>> NOT_ARRIVED = new ThreadLocal<>();
    /** How long a parse waits before it reads an unusable certificate and key of an SDS name again. */
    static final long REREAD_PAUSE_MILLIS = 100;
    /** How many times a parse reads such a pair again before the pair's error rejects the resource. */
    static final int REREADS = 5;
    /** What a parse does before it reads a pair again: {@link #pause()}, which a test replaces to drive a rotation. */
    static volatile Runnable rereadPause = CommonTlsParser::pause;
    /**
     * Per certificate and key file, the texts that still made no usable pair after the re-reads: a parse that reads
     * them again (the next cluster of the same identity) is rejected at once, not after another wait.
     */
    private static final Map<List<String>, List<String>> UNSETTLED = new ConcurrentHashMap<>();

    private CommonTlsParser() {}

    /**
     * A transport socket's TLS context, unpacked as {@code type} ({@code UpstreamTlsContext} or
     * {@code DownstreamTlsContext}), or null for {@code raw_buffer}.
     */
    static <T extends Message> T context(TransportSocket ts, Class<T> type) {
        String name = ts.getName();
        if (name.equals("envoy.transport_sockets.raw_buffer") || name.equals("raw_buffer")) {
            return null;
        }
        String wanted = Internal.getDefaultInstance(type).getDescriptorForType().getFullName();
        String url = ts.getTypedConfig().getTypeUrl();
        boolean tlsType = url.endsWith("/" + wanted);
        if (!tlsType && !name.equals(TLS) && !name.equals("tls")) {
            throw new FieldError("name", "\"" + name + "\" is not supported (only raw_buffer and " + TLS + ")");
        }
        if (!ts.hasTypedConfig() || !tlsType) {
            throw new FieldError("typed_config", "an " + wanted + " is required"
                    + (url.isEmpty() ? "" : " (got " + url + ")"));
        }
        try {
            return ts.getTypedConfig().unpack(type);
        } catch (InvalidProtocolBufferException e) {
            throw new FieldError("typed_config", "not a valid " + type.getSimpleName() + ": " + e.getMessage());
        }
    }

    /**
     * A common TLS context's parts.
     *
     * @param keyPair the certificate chain and private key PEMs, or null
     * @param trust the validation context
     * @param alpn the ALPN protocols
     * @param min the oldest version, or null for the side's default
     * @param max the newest version, or null for the side's default
     * @param files the files of Istio's file SDS names the PEMs came from
     * @param ciphers the cipher suites of {@code tls_params.cipher_suites} (BoringSSL's names, groups spread), or
     *     empty for Envoy's default list
     */
    record Common(String[] keyPair, Trust trust, List<String> alpn, TlsVersion min, TlsVersion max,
                  SdsFiles files, List<String> ciphers) {
        Common withKeyPair(String[] pair) {
            return new Common(pair, trust, alpn, min, max, files, ciphers);
        }
    }

    /**
     * What {@code compile} makes of a parsed context (the resource's record, its PEMs checked by compiling them;
     * an {@link IllegalArgumentException} rejects it). When it fails and the certificate and key, read from the
     * files of an SDS name, make no usable pair, both files are read again, up to {@link #REREADS} times
     * {@link #REREAD_PAUSE_MILLIS} apart, and the first usable pair is compiled: a rotation replaces them one after
     * the other. A pair that stays unusable rejects the resource with the first read's error, and its texts are
     * remembered, so that the next context naming the same files waits only when they changed. Only a failing
     * context is looked at again; on an event loop (where no parse should run) nothing waits.
     */
    static <T> T compiled(Common c, Function<Common, T> compile) {
        try {
            return compile.apply(c);
        } catch (IllegalArgumentException e) {
            Common settled = settledPair(c);
            if (settled == null) {
                throw e;
            }
            return compile.apply(settled);
        }
    }

    /** The context with a usable pair read again, or null when its pair is not the problem or stays unusable. */
    private static Common settledPair(Common c) {
        String chainFile = c.files().certificateChain();
        String keyFile = c.files().privateKey();
        if (chainFile == null || keyFile == null || Context.isOnEventLoopThread()) {
            return null;
        }
        List<String> files = List.of(chainFile, keyFile);
        if (List.of(c.keyPair()).equals(UNSETTLED.get(files)) || usable(c.keyPair())) {
            return null;
        }
        String[] pair = c.keyPair();
        for (int i = 0; i < REREADS && !Thread.currentThread().isInterrupted(); i++) {
            rereadPause.run();
            try {
                pair = new String[] {CoreParsers.readFile("name", chainFile), CoreParsers.readFile("name", keyFile)};
            } catch (FieldError e) {
                continue; // not there for a moment: read again
            }
            if (usable(pair)) {
                UNSETTLED.remove(files);
                return c.withKeyPair(pair);
            }
        }
        UNSETTLED.put(files, List.of(pair));
        return null;
    }

    private static boolean usable(String[] pair) {
        try {
            TlsMaterial.keyManagers(pair[0], pair[1]);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    /** Sleeps {@link #REREAD_PAUSE_MILLIS}; an interrupt ends the re-reads. */
    static void pause() {
        try {
            Thread.sleep(REREAD_PAUSE_MILLIS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Parses a common TLS context; {@code side} names the side in the messages ("a client", "a listener"), each of
     * which presents at most one certificate.
     */
    static Common parse(CommonTlsContext c, String side) {
        refuseFileSources(c);
        Fields.onlyKnown(c, Set.of("tls_params", "tls_certificates", "tls_certificate_sds_secret_configs",
                "validation_context", "validation_context_sds_secret_config", "combined_validation_context",
                "alpn_protocols"), Set.of());
        // unset, the parameters are all TLS_AUTO: the side's defaults
        TlsParameters p = c.getTlsParams();
        Fields.at("tls_params", () -> {
            Fields.onlyKnown(p, Set.of("tls_minimum_protocol_version", "tls_maximum_protocol_version",
                    "cipher_suites"), Set.of());
            return null;
        });
        // the suites of TLS 1.2 and older, each entry a suite or a group of equally preferred ones ([A|B]), which
        // the JDK takes in the order listed
        List<String> ciphers = new ArrayList<>();
        Fields.at("tls_params", () -> Fields.each("cipher_suites", p.getCipherSuitesList(), suite -> {
            try {
                return ciphers.addAll(TlsMaterial.cipherSuiteEntry(suite));
            } catch (IllegalArgumentException e) {
                throw new FieldError("", e.getMessage());
            }
        }));
        TlsVersion min = Fields.at("tls_params.tls_minimum_protocol_version",
                () -> version(p.getTlsMinimumProtocolVersion()));
        TlsVersion max = Fields.at("tls_params.tls_maximum_protocol_version",
                () -> version(p.getTlsMaximumProtocolVersion()));
        Fields.at("tls_params", () -> {
            enabledInJvm(min, max);
            return null;
        });
        String[] keyPair = null;
        String[] keyFiles = {null, null};
        SdsSecretSource certificateSecret = null;
        if (c.getTlsCertificatesCount() + c.getTlsCertificateSdsSecretConfigsCount() > 1) {
            throw new FieldError("tls_certificates", side + " presents one certificate in Inmesh (no choice by SNI "
                    + "or key type): " + (c.getTlsCertificatesCount() + c.getTlsCertificateSdsSecretConfigsCount())
                    + " given");
        }
        if (c.getTlsCertificatesCount() == 1) {
            var t = c.getTlsCertificates(0);
            keyPair = Fields.at("tls_certificates[0]", () -> {
                Fields.onlyKnown(t, Set.of("certificate_chain", "private_key"), Set.of("watched_directory"));
                if (!t.hasCertificateChain() || !t.hasPrivateKey()) {
                    throw new FieldError(t.hasCertificateChain() ? "private_key" : "certificate_chain", "required");
                }
                return new String[] {
                    Fields.at("certificate_chain", () -> CoreParsers.dataSource(t.getCertificateChain())),
                    Fields.at("private_key", () -> CoreParsers.dataSource(t.getPrivateKey()))};
            });
        } else if (c.getTlsCertificateSdsSecretConfigsCount() == 1
                && fetched(c.getTlsCertificateSdsSecretConfigs(0))) {
            SdsSecretConfig s = c.getTlsCertificateSdsSecretConfigs(0);
            keyPair = Fields.at("tls_certificate_sds_secret_configs[0]", () -> {
                Fields.onlyKnown(s, Set.of("name", "sds_config"), Set.of());
                SdsSecret secret = fetch(s);
                if (!secret.isCertificate()) {
                    throw new FieldError("name", "SDS secret \"" + s.getName() + "\" is a validation_context, not a "
                            + "tls_certificate");
                }
                return new String[] {secret.certificateChain(), secret.privateKey()};
            });
            certificateSecret = SDS.get().source(s);
        } else if (c.getTlsCertificateSdsSecretConfigsCount() == 1) {
            SdsSecretConfig s = c.getTlsCertificateSdsSecretConfigs(0);
            keyFiles = Fields.at("tls_certificate_sds_secret_configs[0]", () -> fileCertPaths(s));
            String[] paths = keyFiles;
            keyPair = Fields.at("tls_certificate_sds_secret_configs[0]", () -> new String[] {
                CoreParsers.readFile("name", paths[0]), CoreParsers.readFile("name", paths[1])});
        }
        Trust trust = Trust.NONE;
        if (c.hasValidationContext()) {
            trust = Fields.at("validation_context", () -> validation(c.getValidationContext()));
        } else if (c.hasValidationContextSdsSecretConfig()) {
            trust = Fields.at("validation_context_sds_secret_config",
                    () -> fileRoot(c.getValidationContextSdsSecretConfig(), Trust.NONE));
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
        return new Common(keyPair, trust, List.copyOf(c.getAlpnProtocolsList()), min, max,
                new SdsFiles(keyFiles[0], keyFiles[1], trust.caFile(), certificateSecret, trust.caSecret()),
                List.copyOf(ciphers));
    }

    /**
     * Refuses by name an SDS secret of a common TLS context whose {@code sds_config} is a file ({@code path_config_source},
     * or the deprecated {@code path}), which Envoy would read and watch: Inmesh has no such source, and a listener
     * kept for it (as for Istio's names it has no source for) would fail every handshake.
     */
    static void refuseFileSources(CommonTlsContext c) {
        for (int i = 0; i < c.getTlsCertificateSdsSecretConfigsCount(); i++) {
            SdsSecretConfig s = c.getTlsCertificateSdsSecretConfigs(i);
            Fields.at("tls_certificate_sds_secret_configs[" + i + "]", () -> refuseFileSource(s));
        }
        if (c.hasValidationContextSdsSecretConfig()) {
            Fields.at("validation_context_sds_secret_config",
                    () -> refuseFileSource(c.getValidationContextSdsSecretConfig()));
        }
        var combined = c.getCombinedValidationContext();
        if (c.hasCombinedValidationContext() && combined.hasValidationContextSdsSecretConfig()) {
            Fields.at("combined_validation_context.validation_context_sds_secret_config",
                    () -> refuseFileSource(combined.getValidationContextSdsSecretConfig()));
        }
    }

    private static Void refuseFileSource(SdsSecretConfig s) {
        String field = switch (s.getSdsConfig().getConfigSourceSpecifierCase()) {
            case PATH -> "path";
            case PATH_CONFIG_SOURCE -> "path_config_source";
            default -> null;
        };
        if (field != null) {
            throw new FieldError("sds_config." + field, "SDS from a file is not supported: Inmesh fetches SDS "
                    + "secrets over gRPC (a bootstrap's static SDS cluster) and over ADS (ads: {}), and reads the "
                    + "files of Istio's \"file-cert:CERT~KEY\" and \"file-root:CA\" names; give the PEMs' files as "
                    + "tls_certificates or validation_context filenames, or name them so");
        }
        return null;
    }

    /**
     * The first SDS secret of a common TLS context that is not one of Istio's file names (a gateway's
     * {@code kubernetes://...}; Istio's {@code default} and {@code ROOTCA} when the parse has no workload identity),
     * or null when it names none.
     */
    static String unsupportedSdsName(CommonTlsContext c) {
        boolean identity = IDENTITY.get() != null;
        for (SdsSecretConfig s : sdsSecrets(c)) {
            String n = s.getName();
            boolean istio = WorkloadIdentity.servesSecret(n);
            if (!n.startsWith(FILE_CERT) && !n.startsWith(FILE_ROOT) && !(identity && istio) && !fetched(s)) {
                return n;
            }
        }
        return null;
    }

    /**
     * Whether the parse on this thread fetches {@code s} over SDS ({@link Parsers#withSds}): its {@code sds_config}
     * names a cluster the SDS client knows (else the name is refused as without one), unless a workload identity
     * directory serves the name ({@code default}, {@code ROOTCA}).
     */
    static boolean fetched(SdsSecretConfig s) {
        return SDS.get() != null && SDS.get().serves(s)
                && !(IDENTITY.get() != null && WorkloadIdentity.servesSecret(s.getName()));
    }

    /**
     * The secret {@code s} names, fetched over SDS, waiting for its first version as {@link SdsSecretManager#await}
     * does; its refusal rejects the resource by name. One that has not arrived in time joins {@link #NOT_ARRIVED}.
     */
    private static SdsSecret fetch(SdsSecretConfig s) {
        try {
            return SDS.get().await(s);
        } catch (IllegalArgumentException e) {
            if (e instanceof SdsSecretManager.NotArrivedException && NOT_ARRIVED.get() != null) {
                NOT_ARRIVED.get().add(s.getName());
            }
            throw new FieldError("name", e.getMessage());
        }
    }

    /** The SDS secret configs of a common TLS context: its certificate's, then its validation's. */
    static List<SdsSecretConfig> sdsSecrets(CommonTlsContext c) {
        List<SdsSecretConfig> all = new ArrayList<>(c.getTlsCertificateSdsSecretConfigsList());
        all.addAll(validationSdsSecrets(c));
        return all;
    }

    /** The SDS secrets a common TLS context asks its validation context of (alone or combined), if any. */
    static List<SdsSecretConfig> validationSdsSecrets(CommonTlsContext c) {
        List<SdsSecretConfig> secrets = new ArrayList<>();
        if (c.hasValidationContextSdsSecretConfig()) {
            secrets.add(c.getValidationContextSdsSecretConfig());
        }
        var combined = c.getCombinedValidationContext();
        if (c.hasCombinedValidationContext() && combined.hasValidationContextSdsSecretConfig()) {
            secrets.add(combined.getValidationContextSdsSecretConfig());
        }
        return secrets;
    }

    /**
     * A validation context's parts: the CA PEM or the JVM's CAs, SAN matchers, and the CA's file SDS name's file or
     * the SDS secret (gRPC or ADS) it came from.
     */
    record Trust(String ca, boolean system, List<SubjectAltNameMatcher> sans, String caFile,
                 SdsSecretSource caSecret) {
        static final Trust NONE = new Trust(null, false, List.of(), null, null);
    }

    @SuppressWarnings("deprecation") // match_subject_alt_names: deprecated, Istio still writes it
    static Trust validation(CertificateValidationContext v) {
        Fields.onlyKnown(v, Set.of("trusted_ca", "match_typed_subject_alt_names", "match_subject_alt_names",
                "system_root_certs"), Set.of("watched_directory"));
        String ca = v.hasTrustedCa() ? Fields.at("trusted_ca", () -> CoreParsers.dataSource(v.getTrustedCa())) : null;
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
        return new Trust(ca, v.hasSystemRootCerts() && ca == null, List.copyOf(sans), null, null);
    }

    /** Istio's SDS name for a DestinationRule's CA file, or the system's CAs; the base's SAN matchers kept. */
    static Trust fileRoot(SdsSecretConfig s, Trust base) {
        Fields.onlyKnown(s, Set.of("name", "sds_config"), Set.of());
        String name = s.getName();
        if (base.ca != null || base.system) {
            throw new FieldError("name", "\"" + name + "\" given with a trusted_ca in default_validation_context");
        }
        if (name.equals(SYSTEM_ROOT)) {
            return new Trust(null, true, base.sans, null, null);
        }
        if (fetched(s)) { // not ROOTCA from an identity directory: fileRootPath reads that
            SdsSecret secret = fetch(s);
            if (secret.trustedCa() == null) {
                throw new FieldError("name", "SDS secret \"" + name + "\" is a tls_certificate, not a "
                        + "validation_context");
            }
            // as Envoy merges a combined context's default validation context into the secret's: the matchers of
            // both apply
            var v = secret.source().getValidationContext().toBuilder().clearTrustedCa().build();
            List<SubjectAltNameMatcher> own = Fields.at("name", () -> validation(v).sans());
            List<SubjectAltNameMatcher> sans = base.sans;
            if (!own.isEmpty()) {
                sans = new ArrayList<>(own);
                sans.addAll(base.sans);
                sans = List.copyOf(sans);
            }
            return new Trust(secret.trustedCa(), false, sans, null, SDS.get().source(s));
        }
        String file = fileRootPath(s);
        if (file == null) {
            throw new FieldError("name", unsupportedSds(name));
        }
        return new Trust(CoreParsers.readFile("name", file), false, base.sans, file, null);
    }

    /**
     * The CA file of Istio's SDS name for a validation context: {@code file-root:CA}, or {@code ROOTCA} with a
     * workload identity; null for any other name ({@code file-root:system}, the JVM's CAs, has no file).
     */
    static String fileRootPath(SdsSecretConfig s) {
        String name = s.getName();
        WorkloadIdentity identity = IDENTITY.get();
        if (identity != null && name.equals(WorkloadIdentity.ROOT_SECRET)) {
            identity.awaitForParse(); // a starting configuration waits for the files it reads
            return identity.rootCert().toString();
        }
        if (!name.startsWith(FILE_ROOT) || name.length() == FILE_ROOT.length() || name.equals(SYSTEM_ROOT)) {
            return null;
        }
        return name.substring(FILE_ROOT.length());
    }

    /**
     * The files of Istio's SDS name for a certificate and key: {@code file-cert:CERT~KEY}, or {@code default} with a
     * workload identity.
     */
    static String[] fileCertPaths(SdsSecretConfig s) {
        Fields.onlyKnown(s, Set.of("name", "sds_config"), Set.of());
        String name = s.getName();
        WorkloadIdentity identity = IDENTITY.get();
        if (identity != null && name.equals(WorkloadIdentity.CERTIFICATE_SECRET)) {
            identity.awaitForParse();
            return new String[] {identity.certificateChain().toString(), identity.privateKey().toString()};
        }
        int tilde = name.indexOf('~');
        if (!name.startsWith(FILE_CERT) || tilde < 0 || tilde == FILE_CERT.length() || tilde == name.length() - 1) {
            throw new FieldError("name", unsupportedSds(name));
        }
        return new String[] {name.substring(FILE_CERT.length(), tilde), name.substring(tilde + 1)};
    }

    private static String unsupportedSds(String name) {
        boolean istio = WorkloadIdentity.servesSecret(name);
        return "SDS secret \"" + name + "\" is not supported: Inmesh fetches SDS over gRPC from a "
                + "bootstrap file's static SDS cluster and over an ADS stream (sds_config ads: {}); it reads "
                + "the files of Istio's \"file-cert:CERT~KEY\" and \"file-root:CA\" names (and "
                + "\"file-root:system\"), and \"default\" and \"ROOTCA\" from a workload identity directory"
                + (istio ? " (inmesh.identity.dir, --identity-dir), which is not set; istiod's CA can fill it "
                        + "(inmesh.identity.ca.enabled, --identity-ca)" : "");
    }

    /**
     * Refuses a version range (unset ends: TLS 1.2 to 1.3, what every side's default reaches) of which this JVM
     * enables no version ({@link TlsMaterial#disabledVersions}), whose every handshake would fail: by its maximum
     * when set, else by its minimum. A range reversed is left to the context's own check.
     */
    private static void enabledInJvm(TlsVersion min, TlsVersion max) {
        TlsVersion from = min == null ? TlsVersion.TLSv1_2 : min;
        TlsVersion to = max == null ? TlsVersion.TLSv1_3 : max;
        Set<TlsVersion> disabled = TlsMaterial.disabledVersions();
        List<String> named = new ArrayList<>();
        for (TlsVersion v : TlsVersion.values()) {
            if (v.compareTo(from) >= 0 && v.compareTo(to) <= 0) {
                if (!disabled.contains(v)) {
                    return;
                }
                named.add(v.javaName());
            }
        }
        if (named.isEmpty()) {
            return;
        }
        TlsVersion at = max != null ? max : min;
        throw new FieldError(max != null ? "tls_maximum_protocol_version" : "tls_minimum_protocol_version",
                at + " (expected: a range from " + from + " to " + to + " reaching a version this JVM enables, as "
                        + "TLSv1_2: its security property jdk.tls.disabledAlgorithms disables " + String.join(", ",
                        named) + ", so every handshake would fail)");
    }

    private static TlsVersion version(TlsParameters.TlsProtocol p) {
        return switch (p) {
            case TLS_AUTO -> null; // the side's default (Envoy's: TLS 1.2 to 1.2 for clients, to 1.3 for servers)
            case TLSv1_0 -> TlsVersion.TLSv1_0;
            case TLSv1_1 -> TlsVersion.TLSv1_1;
            case TLSv1_2 -> TlsVersion.TLSv1_2;
            case TLSv1_3 -> TlsVersion.TLSv1_3;
            case UNRECOGNIZED -> throw new FieldError("", "unknown value " + p.getNumber());
        };
    }
}
