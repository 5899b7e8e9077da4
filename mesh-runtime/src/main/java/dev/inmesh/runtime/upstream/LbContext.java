package dev.inmesh.runtime.upstream;

import dev.inmesh.api.config.core.SocketAddress;
import java.util.function.Predicate;

/**
 * What the router tells the cluster about one host selection.
 *
 * @param hasHash whether {@code hash} carries the request's hash, from
 *     {@link dev.inmesh.runtime.lb.HashPolicies#hash}
 * @param hash the request's hash (RING_HASH, MAGLEV; it also picks the priority, as in Envoy)
 * @param rejectHost a retry host predicate ({@code previous_hosts}): true for a host the request should avoid
 * @param maxSelectionAttempts how many picks may be made to find a host the predicate accepts (Envoy's
 *     {@code host_selection_retry_max_attempts} + 1); the last pick is used even if refused
 * @param originalDestination the downstream connection's original destination, for ORIGINAL_DST clusters, or null
 * @param retryPriority the request's retry priority ({@code previous_priorities}), which may change the priority load
 *     of its picks, or null
 */
public record LbContext(boolean hasHash, long hash, Predicate<Host> rejectHost, int maxSelectionAttempts,
                        SocketAddress originalDestination, PreviousPriorities retryPriority) {

    /** No hash, no predicate, no original destination. */
    public static final LbContext NONE = new LbContext(false, 0, null, 1, null);

    public LbContext {
        maxSelectionAttempts = Math.max(1, maxSelectionAttempts);
    }

    /** A context without a retry priority. */
    public LbContext(boolean hasHash, long hash, Predicate<Host> rejectHost, int maxSelectionAttempts,
                     SocketAddress originalDestination) {
        this(hasHash, hash, rejectHost, maxSelectionAttempts, originalDestination, null);
    }

    /** A context with only a request hash. */
    public static LbContext ofHash(long hash) {
        return new LbContext(true, hash, null, 1, null);
    }

    /** A context with a hash when {@code hash} is not null. */
    public static LbContext ofHash(Long hash) {
        return hash == null ? NONE : ofHash(hash.longValue());
    }

    /** A context for an ORIGINAL_DST cluster. */
    public static LbContext ofOriginalDestination(SocketAddress destination) {
        return new LbContext(false, 0, null, 1, destination);
    }

    /** The same context with a retry host predicate. */
    public LbContext withRejectHost(Predicate<Host> predicate, int maxAttempts) {
        return new LbContext(hasHash, hash, predicate, maxAttempts, originalDestination, retryPriority);
    }

    /** The same context with a retry priority. */
    public LbContext withRetryPriority(PreviousPriorities priority) {
        return new LbContext(hasHash, hash, rejectHost, maxSelectionAttempts, originalDestination, priority);
    }
}
