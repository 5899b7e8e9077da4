package dev.inmesh.runtime.tls;

import dev.inmesh.api.config.cluster.UpstreamTlsContext.SubjectAltNameMatcher;
import dev.inmesh.api.config.cluster.UpstreamTlsContext.TlsVersion;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.net.impl.KeyStoreHelper;
import java.security.KeyStore;
import java.util.LinkedHashSet;
import java.util.List;
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
     * @throws IllegalArgumentException naming {@code tls_certificates} when the PEMs make no usable key
     */
    public static KeyManagerFactory keyManagers(String certificateChain, String privateKey) {
        try {
            KeyStore ks = KeyStoreHelper.loadKeyCert(List.of(Buffer.buffer(privateKey)),
                    List.of(Buffer.buffer(certificateChain)));
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(ks, KeyStoreHelper.DUMMY_PASSWORD.toCharArray());
            return kmf;
        } catch (Exception e) {
            throw new IllegalArgumentException("tls_certificates: not a usable PEM certificate chain and private "
                    + "key: " + e.getMessage(), e);
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

    /** The Java names of the TLS versions from {@code min} to {@code max}. */
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
