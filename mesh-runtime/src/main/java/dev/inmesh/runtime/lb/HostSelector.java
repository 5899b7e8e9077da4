package dev.inmesh.runtime.lb;

/**
 * A stateful selector over one fixed list of hosts, built by a {@link LoadBalancer}. Safe to call from any thread.
 *
 * @param <H> the host type
 */
public interface HostSelector<H extends LbHost> {

    /**
     * Picks a host, or returns null when the selector has no hosts.
     *
     * @param hasHash whether {@code hash} carries the request's hash (from its hash policies)
     * @param hash the request's hash; hashing policies without one pick at random
     * @param attempt 0 for the first pick of a request, n for the n-th re-pick after a retry host predicate refused
     *     a host; hashing policies move away from the refused host, the others simply pick again
     */
    H pick(boolean hasHash, long hash, int attempt);

    /** The hosts this selector picks from, in the order given. */
    java.util.List<H> hosts();
}
