package dev.inmesh.runtime.xds.ads;

import java.util.Set;
import java.util.TreeSet;

/**
 * The SDS secrets asked for on the ADS stream (TLS contexts whose {@code sds_config} is {@code ads: {}}), as
 * Envoy's mux keeps one subscription of the {@code Secret} type for its secret providers: the names the clusters and
 * listeners held ask for, and the ACK bookkeeping. The secrets themselves live in the
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
    String lastNackVersion = "";
    String lastNackError = "";
    /** How many times in a row the same version was NACKed with the same error (the server resending it). */
    int repeatedNacks;
}
