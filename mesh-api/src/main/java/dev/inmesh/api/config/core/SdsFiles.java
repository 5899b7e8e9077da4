package dev.inmesh.api.config.core;

import java.util.LinkedHashSet;
import java.util.Set;

/**
 * The files a TLS context's PEMs were read from through Istio's file SDS names ({@code file-cert:CERT~KEY},
 * {@code file-root:CA}) or its secrets {@code default} and {@code ROOTCA} (a workload identity directory's
 * {@code cert-chain.pem}, {@code key.pem} and {@code root-cert.pem}), which Istio's agent watches and serves again
 * when they change; null where a PEM came from anywhere else (a plain {@code filename}, which Envoy reads once, or an
 * inline value). A PEM of a secret fetched over SDS (on its own gRPC stream or on the ADS stream) has no file: it is
 * kept in memory, and its {@link SdsSecretSource} gives its newest version.
 *
 * @param certificateChain the certificate chain's file, or null
 * @param privateKey the private key's file, or null
 * @param trustedCa the trusted CAs' file, or null
 * @param certificateSecret the SDS secret the certificate chain and key came from, or null
 * @param validationSecret the SDS secret the trusted CAs came from, or null
 */
public record SdsFiles(String certificateChain, String privateKey, String trustedCa,
                       SdsSecretSource certificateSecret, SdsSecretSource validationSecret) {
    /** No PEM from a file SDS name. */
    public static final SdsFiles NONE = new SdsFiles(null, null, null);

    /** PEMs from files only. */
    public SdsFiles(String certificateChain, String privateKey, String trustedCa) {
        this(certificateChain, privateKey, trustedCa, null, null);
    }

    /** The distinct files, in the order certificate chain, private key, trusted CAs. */
    public Set<String> paths() {
        Set<String> paths = new LinkedHashSet<>();
        for (String p : new String[] {certificateChain, privateKey, trustedCa}) {
            if (p != null) {
                paths.add(p);
            }
        }
        return paths;
    }
}
