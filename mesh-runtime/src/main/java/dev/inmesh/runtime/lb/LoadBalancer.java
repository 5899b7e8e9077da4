package dev.inmesh.runtime.lb;

import dev.inmesh.api.config.cluster.LbConfig;
import dev.inmesh.api.config.cluster.LbPolicy;
import java.util.List;
import java.util.function.LongSupplier;
import java.util.random.RandomGenerator;

/**
 * A load balancing policy: a stateless factory of {@link HostSelector}s, one per host set. When a host set changes, a
 * new selector is built and may take over what is worth keeping from the {@code previous} one (the round-robin
 * position).
 */
public interface LoadBalancer {

    /**
     * A selector over {@code hosts}.
     *
     * @param previous the selector this one replaces for the same group of hosts, or null
     */
    <H extends LbHost> HostSelector<H> newSelector(List<H> hosts, HostSelector<H> previous);

    /**
     * A selector of a hashing policy over {@code hosts} with their weights given apart: Envoy gives a host on a ring
     * or table the share {@code weight / weights in its locality × locality weight / locality weights} when locality
     * weighting is on.
     *
     * @param weights one per host, normalised as Envoy normalises them (they sum to 1; a ring or table built from
     *     Envoy's own values is Envoy's to the last entry)
     * @throws UnsupportedOperationException for a policy that does not hash
     */
    default <H extends LbHost> HostSelector<H> newSelector(List<H> hosts, double[] weights,
                                                          HostSelector<H> previous) {
        throw new UnsupportedOperationException("weights given apart are for hashing policies");
    }

    /**
     * Whether the policy hashes requests (RING_HASH, MAGLEV). As in Envoy, such a policy picks among a priority's
     * healthy hosts whichever of its loads a request falls into, and weighs localities into its ring or table
     * instead of picking a locality first.
     */
    default boolean hashing() {
        return false;
    }

    /**
     * The load balancer for a cluster's policy and settings.
     *
     * @param random the source of randomness (seeded in tests, {@code ThreadLocalRandom.current()} in production)
     * @throws IllegalArgumentException for CLUSTER_PROVIDED, which has no selector: the cluster picks its host
     */
    static LoadBalancer of(LbPolicy policy, LbConfig config, RandomGenerator random) {
        return of(policy, config, random, System::nanoTime);
    }

    /**
     * The load balancer for a cluster's policy and settings, with the clock that slow start reads (the one the hosts'
     * {@link LbHost#healthySinceNanos()} come from).
     */
    static LoadBalancer of(LbPolicy policy, LbConfig config, RandomGenerator random, LongSupplier clock) {
        return switch (policy) {
            case ROUND_ROBIN -> new RoundRobinLoadBalancer(random,
                    config instanceof LbConfig.RoundRobin rr ? rr.slowStart() : null, clock);
            case LEAST_REQUEST -> new LeastRequestLoadBalancer((LbConfig.LeastRequest) config, random, clock);
            case RANDOM -> new RandomLoadBalancer(random);
            case RING_HASH -> new RingHashLoadBalancer((LbConfig.RingHash) config, random);
            case MAGLEV -> new MaglevLoadBalancer((LbConfig.Maglev) config, random);
            case CLUSTER_PROVIDED -> throw new IllegalArgumentException(
                    "lb_policy: CLUSTER_PROVIDED (expected: a policy with a selector)");
        };
    }
}
