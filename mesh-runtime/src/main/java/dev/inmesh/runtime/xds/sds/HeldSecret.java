package dev.inmesh.runtime.xds.sds;

import dev.inmesh.api.config.core.SdsSecretSource;

/**
 * A secret as the manager holds it, in memory only, as Envoy's {@code SdsApi} holds it: the version taken last, and
 * the {@link SdsSecretSource} the TLS contexts naming it take its rotations from. One per secret subscribed to, on its
 * own stream ({@link SdsStream}) or on the ADS stream ({@link AdsSecret}).
 */
abstract class HeldSecret implements SdsSecretSource {
    final String name;
    private volatile SdsSecret secret;
    /** The PEMs of {@link #secret}, one value per version taken. */
    private volatile Pems pems;

    HeldSecret(String name) {
        this.name = name;
    }

    /** The secret taken last, or null before the first. */
    SdsSecret secret() {
        return secret;
    }

    /** Takes {@code s} as the secret's newest version, for the next handshakes. */
    void take(SdsSecret s) {
        secret = s;
        pems = s.pems();
    }

    @Override
    public String name() {
        return name;
    }

    /** The PEMs of the secret taken last; null before the first. */
    @Override
    public Pems current() {
        return pems;
    }
}
