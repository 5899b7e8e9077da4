package dev.inmesh.runtime.tls;

import dev.inmesh.api.config.cluster.UpstreamTlsContext.SubjectAltNameMatcher;
import dev.inmesh.api.config.cluster.UpstreamTlsContext.TlsVersion;
import dev.inmesh.api.config.core.SdsFiles;
import dev.inmesh.api.config.core.SdsSecretSource;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.net.impl.KeyStoreHelper;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.InvalidKeyException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.SignatureException;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import java.util.Set;
import java.util.stream.Stream;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509TrustManager;

/** Key material, trusted CAs and protocol versions of a TLS context, made from the PEMs the parser read. */
public final class TlsMaterial {
    private TlsMaterial() {}

    /**
     * The key managers of a certificate chain and its private key.
     *
     * @throws IllegalArgumentException naming {@code tls_certificates} when the PEMs make no usable key, or the key
     *     is not the certificate's (as Envoy refuses a pair whose values do not match)
     */
    public static KeyManagerFactory keyManagers(String certificateChain, String privateKey) {
        try {
            KeyStore ks = KeyStoreHelper.loadKeyCert(List.of(Buffer.buffer(privateKey)),
                    List.of(Buffer.buffer(certificateChain)));
            for (String alias : Collections.list(ks.aliases())) {
                if (ks.getKey(alias, KeyStoreHelper.DUMMY_PASSWORD.toCharArray()) instanceof PrivateKey key
                        && !matches(key, ks.getCertificate(alias).getPublicKey())) {
                    throw new IllegalArgumentException("the private key is not the certificate's");
                }
            }
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(ks, KeyStoreHelper.DUMMY_PASSWORD.toCharArray());
            return kmf;
        } catch (Exception e) {
            throw new IllegalArgumentException("tls_certificates: not a usable PEM certificate chain and private "
                    + "key: " + e.getMessage(), e);
        }
    }

    /** Whether a private key signs what its supposed public key verifies (RSA, EC; other kinds are not checked). */
    private static boolean matches(PrivateKey key, PublicKey pub) throws GeneralSecurityException {
        String algorithm = switch (key.getAlgorithm()) {
            case "RSA" -> "SHA256withRSA";
            case "EC" -> "SHA256withECDSA";
            default -> null;
        };
        if (algorithm == null) {
            return true;
        }
        byte[] probe = "inmesh key pair check".getBytes(StandardCharsets.US_ASCII);
        Signature sign = Signature.getInstance(algorithm);
        sign.initSign(key);
        sign.update(probe);
        byte[] signature = sign.sign();
        Signature verify = Signature.getInstance(algorithm);
        try {
            verify.initVerify(pub);
        } catch (InvalidKeyException e) {
            return false; // another kind of key
        }
        verify.update(probe);
        try {
            return verify.verify(signature);
        } catch (SignatureException e) {
            return false;
        }
    }

    /**
     * The chain check against the CAs of a PEM, or the JVM's trusted CAs when {@code system}; null for neither.
     *
     * @throws IllegalArgumentException naming {@code validation_context.trusted_ca} when the PEM has no certificate
     */
    public static X509TrustManager trustedCas(String trustedCa, boolean system) {
        if (trustedCa == null && !system) {
            return null;
        }
        try {
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            if (trustedCa != null) {
                KeyStore cas = KeyStoreHelper.loadCA(Stream.of(Buffer.buffer(trustedCa)));
                if (cas.size() == 0) {
                    throw new IllegalArgumentException("no certificate in it");
                }
                tmf.init(cas);
            } else {
                tmf.init((KeyStore) null); // the JVM's trusted certificate authorities
            }
            X509TrustManager chain = null;
            for (TrustManager tm : tmf.getTrustManagers()) {
                if (tm instanceof X509TrustManager x) {
                    chain = x;
                }
            }
            return chain;
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("validation_context.trusted_ca: " + e.getMessage(), e);
        } catch (Exception e) {
            throw new IllegalArgumentException("validation_context.trusted_ca: not usable PEM certificates: "
                    + e.getMessage(), e);
        }
    }

    /** The peer check of a validation context: its chain check (or none) and SAN matchers. */
    public static PeerVerifier verifier(X509TrustManager chain, List<SubjectAltNameMatcher> sans) {
        return new PeerVerifier(chain, sans);
    }

    /**
     * The text of each SDS source of a context, by its key ({@link #sdsKeys}): its certificate chain's, key's and CAs'
     * that have a file or come from an SDS secret.
     */
    public static Map<String, String> sdsTexts(SdsFiles files, String chain, String key, String ca) {
        String[] keys = sdsKeys(files);
        String[] pems = {chain, key, ca};
        Map<String, String> texts = new LinkedHashMap<>();
        for (int i = 0; i < keys.length; i++) {
            if (keys[i] != null) {
                texts.putIfAbsent(keys[i], pems[i]);
            }
        }
        return texts;
    }

    /**
     * How the SDS sources of a context that are SDS secrets (gRPC or ADS) are read: by key, the PEM the secret holds
     * now in memory. A file's key is not in it: the file is read.
     */
    public static Map<String, Supplier<String>> sdsSecretReaders(SdsFiles files) {
        Map<String, Supplier<String>> readers = new LinkedHashMap<>();
        String[] keys = sdsKeys(files);
        SdsSecretSource cert = files.certificateSecret();
        SdsSecretSource validation = files.validationSecret();
        if (cert != null) {
            readers.put(keys[0], () -> cert.current() == null ? null : cert.current().certificateChain());
            readers.put(keys[1], () -> cert.current() == null ? null : cert.current().privateKey());
        }
        if (validation != null) {
            readers.put(keys[2], () -> validation.current() == null ? null : validation.current().trustedCa());
        }
        return readers;
    }

    /**
     * A context's certificate chain, key and CAs with those of its SDS secrets (gRPC or ADS) as the secrets hold them
     * now: a context compiled from a resource parsed before a secret's rotation (a listener compiled again for a new
     * snapshot) starts with the rotated secret, which was pushed to the contexts in force on its arrival.
     */
    public static String[] currentPems(SdsFiles files, String chain, String key, String ca) {
        Map<String, String> texts = new LinkedHashMap<>(sdsTexts(files, chain, key, ca));
        sdsSecretReaders(files).forEach((k, reader) -> {
            String now = reader.get();
            if (now != null) {
                texts.put(k, now);
            }
        });
        return sdsPems(files, texts, chain, key, ca);
    }

    /**
     * The keys of a context's certificate chain, key and CAs among its SDS sources: a file's path, an SDS secret's
     * name and field; null for a PEM of neither.
     */
    private static String[] sdsKeys(SdsFiles f) {
        SdsSecretSource cert = f.certificateSecret();
        return new String[] {
            cert != null ? secretKey(cert, "certificate_chain") : f.certificateChain(),
            cert != null ? secretKey(cert, "private_key") : f.privateKey(),
            f.validationSecret() != null ? secretKey(f.validationSecret(), "trusted_ca") : f.trustedCa()};
    }

    private static String secretKey(SdsSecretSource s, String field) {
        return "SDS secret \"" + s.name() + "\" " + field;
    }

    /**
     * A context's certificate chain, key and CAs as its SDS sources' {@code texts} (by key) give them, each PEM of
     * no SDS source the old one.
     */
    public static String[] sdsPems(SdsFiles files, Map<String, String> texts, String chain, String key, String ca) {
        String[] keys = sdsKeys(files);
        String[] pems = {chain, key, ca};
        for (int i = 0; i < keys.length; i++) {
            if (keys[i] != null) {
                pems[i] = texts.get(keys[i]);
            }
        }
        return pems;
    }

    /** The Java names of the TLS versions from {@code min} to {@code max}. */
    /**
     * The cipher suites of TLS 1.2 and older Inmesh takes, BoringSSL's name (as Envoy's {@code cipher_suites} lists
     * them) to the JDK's: Envoy's defaults (its ECDHE AES-GCM and ChaCha20 suites) and the RSA-key-exchange and CBC
     * suites of its older default lists.
     */
    private static final Map<String, String> CIPHER_SUITES = Map.ofEntries(
            Map.entry("ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
            Map.entry("ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
            Map.entry("ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
            Map.entry("ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
            Map.entry("ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
            Map.entry("ECDHE-RSA-CHACHA20-POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
            Map.entry("AES128-GCM-SHA256", "TLS_RSA_WITH_AES_128_GCM_SHA256"),
            Map.entry("AES256-GCM-SHA384", "TLS_RSA_WITH_AES_256_GCM_SHA384"),
            Map.entry("ECDHE-ECDSA-AES128-SHA", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"),
            Map.entry("ECDHE-RSA-AES128-SHA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
            Map.entry("AES128-SHA", "TLS_RSA_WITH_AES_128_CBC_SHA"),
            Map.entry("ECDHE-ECDSA-AES256-SHA", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"),
            Map.entry("ECDHE-RSA-AES256-SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
            Map.entry("AES256-SHA", "TLS_RSA_WITH_AES_256_CBC_SHA"));
    /** Envoy's default list for servers and clients alike (its non-FIPS builds), in order of preference. */
    private static final List<String> ENVOY_DEFAULT_SUITES = List.of("ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-CHACHA20-POLY1305",
            "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384");
    /** TLS 1.3's suites, which Envoy's {@code cipher_suites} leaves alone: all of them, as BoringSSL enables them. */
    private static final List<String> TLS13_SUITES = List.of("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
            "TLS_CHACHA20_POLY1305_SHA256");

    /**
     * One entry of Envoy's {@code cipher_suites}: a suite's BoringSSL name, or a group of equally preferred ones
     * ({@code [A|B]}), as the suites it names in their order.
     *
     * @throws IllegalArgumentException for a name Inmesh does not know, or a malformed group
     */
    public static List<String> cipherSuiteEntry(String entry) {
        boolean group = entry.startsWith("[") && entry.endsWith("]") && entry.length() > 2;
        List<String> names = group ? List.of(entry.substring(1, entry.length() - 1).split("\\|", -1))
                : List.of(entry);
        for (String n : names) {
            if (!CIPHER_SUITES.containsKey(n)) {
                throw new IllegalArgumentException("\"" + entry + "\" is not supported (Inmesh takes the suites "
                        + "of Envoy's default lists, by BoringSSL's names: " + new java.util.TreeSet<>(
                        CIPHER_SUITES.keySet()) + ", and groups of them as [A|B])");
            }
        }
        return names;
    }

    /**
     * The JDK's names of the suites a context enables: {@code configured} (BoringSSL's names; empty: Envoy's default
     * list) for TLS 1.2 and older, and every TLS 1.3 suite when {@code max} allows TLS 1.3.
     */
    public static List<String> cipherSuites(List<String> configured, TlsVersion max) {
        List<String> suites = new java.util.ArrayList<>();
        for (String n : configured.isEmpty() ? ENVOY_DEFAULT_SUITES : configured) {
            suites.add(CIPHER_SUITES.get(n));
        }
        if (max.compareTo(TlsVersion.TLSv1_3) >= 0) {
            suites.addAll(TLS13_SUITES);
        }
        return suites;
    }

    /**
     * The versions this JVM's TLS refuses whatever a context enables: those its security property
     * {@code jdk.tls.disabledAlgorithms} names (TLS 1.0 and 1.1 in the JDK's default {@code java.security}), read
     * now.
     */
    public static Set<TlsVersion> disabledVersions() {
        String property = java.security.Security.getProperty("jdk.tls.disabledAlgorithms");
        Set<TlsVersion> disabled = java.util.EnumSet.noneOf(TlsVersion.class);
        for (String entry : property == null ? new String[0] : property.split(",")) {
            for (TlsVersion v : TlsVersion.values()) {
                if (entry.trim().equalsIgnoreCase(v.javaName())) {
                    disabled.add(v);
                }
            }
        }
        return disabled;
    }

    public static Set<String> protocols(TlsVersion min, TlsVersion max) {
        Set<String> versions = new LinkedHashSet<>();
        for (TlsVersion v : TlsVersion.values()) {
            if (v.compareTo(min) >= 0 && v.compareTo(max) <= 0) {
                versions.add(v.javaName());
            }
        }
        return versions;
    }
}
