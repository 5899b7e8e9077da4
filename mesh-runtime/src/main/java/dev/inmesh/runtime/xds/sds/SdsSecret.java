package dev.inmesh.runtime.xds.sds;

import com.google.protobuf.Any;
import dev.inmesh.api.config.core.SdsSecretSource;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.Secret;
import java.time.Instant;
import java.util.List;

/**
 * A secret as the SDS server last sent it and Inmesh took it: a certificate (chain and key) or a validation context
 * (trusted CAs), its PEMs held in memory only, as Envoy's {@code SdsApi} holds them.
 *
 * @param name the SDS name
 * @param versionInfo the {@code version_info} of the response that carried it
 * @param lastUpdated when it was taken
 * @param certificateChain the certificate chain's PEM, or null for a validation context
 * @param privateKey the private key's PEM, or null for a validation context
 * @param trustedCa the trusted CAs' PEM, or null for a certificate
 * @param source the secret as sent (a validation context's SAN matchers apply with its CAs)
 */
public record SdsSecret(String name, String versionInfo, Instant lastUpdated, String certificateChain,
                        String privateKey, String trustedCa, Secret source) {
    /** Whether it is a certificate and key (else a validation context). */
    public boolean isCertificate() {
        return certificateChain != null;
    }

    /**
     * The secret {@code name} of {@code version} that {@code resources} (a response's, on its own stream or on the
     * ADS stream) carry, checked, taken now.
     *
     * @throws IllegalArgumentException why it is refused
     */
    static SdsSecret parse(String name, List<Any> resources, String version) {
        SecretParser.Pems p = SecretParser.parse(name, resources);
        return new SdsSecret(name, version, Instant.now(), p.chain(), p.key(), p.ca(), p.secret());
    }

    /** Its PEMs, as a TLS context takes them from its {@link SdsSecretSource}. */
    SdsSecretSource.Pems pems() {
        return new SdsSecretSource.Pems(certificateChain, privateKey, trustedCa);
    }

    @Override
    public String toString() { // the key stays out of logs
        return "SdsSecret[" + name + ", version " + versionInfo + "]";
    }
}
