package dev.inmesh.runtime.xds.sds;

import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.Secret;
import java.nio.file.Path;
import java.time.Instant;

/**
 * A secret as the SDS server last sent it and Inmesh took it: a certificate (chain and key) or a validation context
 * (trusted CAs), its PEMs kept in files that TLS contexts read and watch.
 *
 * @param name the SDS name
 * @param versionInfo the {@code version_info} of the response that carried it
 * @param lastUpdated when it was taken
 * @param certificateChain the certificate chain's file, or null for a validation context
 * @param privateKey the private key's file, or null for a validation context
 * @param trustedCa the trusted CAs' file, or null for a certificate
 * @param source the secret as sent (a validation context's SAN matchers apply with its CAs)
 */
public record SdsSecret(String name, String versionInfo, Instant lastUpdated, Path certificateChain,
                        Path privateKey, Path trustedCa, Secret source) {
    /** Whether it is a certificate and key (else a validation context). */
    public boolean isCertificate() {
        return certificateChain != null;
    }
}
