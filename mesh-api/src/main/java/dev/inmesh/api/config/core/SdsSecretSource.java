package dev.inmesh.api.config.core;

/**
 * A secret that an SDS server sends over gRPC, on the secret's own stream or on the ADS stream (Envoy's
 * {@code SdsApi}), as the runtime's SDS client holds it: in memory only, replaced whole when the server sends a new
 * version. A TLS context whose PEMs came from one takes the newest PEMs from here for its next handshakes, as Envoy's
 * TLS contexts take an SDS secret update. Implemented by the runtime, one per secret subscribed to; equal only to
 * itself.
 */
public interface SdsSecretSource {
    /** The secret's SDS name. */
    String name();

    /** The PEMs the server sent last. */
    Pems current();

    /**
     * Has {@code listener} run each time a new version is taken, after {@link #current} gives it and before the SDS
     * client ACKs it, as Envoy's {@code SdsApi} updates the TLS contexts of a secret on its arrival: on the thread
     * that took it, never an event loop. {@link #removeListener} ends it.
     */
    void addListener(Runnable listener);

    /** Stops {@code listener} ({@link #addListener}); nothing if it was not added. */
    void removeListener(Runnable listener);

    /**
     * A secret's PEMs.
     *
     * @param certificateChain the certificate chain, or null for a validation context
     * @param privateKey the private key, or null for a validation context
     * @param trustedCa the trusted CAs, or null for a certificate
     */
    record Pems(String certificateChain, String privateKey, String trustedCa) {}
}
