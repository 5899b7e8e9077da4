package dev.inmesh.runtime.xds.ads;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Set;
import java.util.TreeSet;

/**
 * The SDS secrets asked for on the ADS stream (TLS contexts whose {@code sds_config} is {@code ads: {}}), as
 * Envoy's mux keeps one subscription of the {@code Secret} type for its secret providers: the names the clusters and
 * listeners held ask for, and the ACK bookkeeping, which {@code /debug/xds_status} shows as the other types'. The
 * secrets themselves live in the
 * {@link dev.inmesh.runtime.xds.sds.SdsSecretManager}. Touched only on the client's context.
 */
final class SecretSubscription {
    /** The names subscribed to. */
    Set<String> names = new TreeSet<>();
    /** Over delta xDS: the names subscribed to on the current stream, as the server was last told them. */
    Set<String> namesSent = new TreeSet<>();
    /** Whether a request of the type went out on the current stream. */
    boolean sentOnStream;
    String ackedVersion = "";
    String nonce = "";
    /** When the last response was received, or null. */
    Instant lastUpdated;
    String lastNackVersion = "";
    String lastNackError = "";
    Instant lastNackAt;
    /** How many times in a row the same version was NACKed with the same error (the server resending it). */
    int repeatedNacks;

    /** Whether the type has been asked for or heard from: from then on {@code /debug/xds_status} lists it. */
    boolean shown() {
        return !names.isEmpty() || sentOnStream || lastUpdated != null;
    }

    /** The type's entry of {@code /debug/xds_status}, {@code held} of the names subscribed to held. */
    XdsStatus.TypeStatus status(int held) {
        return new XdsStatus.TypeStatus("Secret", dev.inmesh.runtime.xds.sds.SdsSecretManager.SECRET_TYPE_URL,
                ackedVersion, nonce, lastUpdated, lastNackVersion, lastNackError, lastNackAt, held, false,
                new ArrayList<>(names));
    }
}
