package dev.inmesh.runtime.lb;

import dev.inmesh.api.config.cluster.LbConfig;
import dev.inmesh.api.config.cluster.LbPolicy;
import java.util.List;
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

    /** Whether the policy hashes requests (RING_HASH, MAGLEV); such policies ignore locality weighting. */
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
        return switch (policy) {
            case ROUND_ROBIN -> new RoundRobinLoadBalancer(random);
            case LEAST_REQUEST -> new LeastRequestLoadBalancer((LbConfig.LeastRequest) config, random);
            case RANDOM -> new RandomLoadBalancer(random);
            case RING_HASH -> new RingHashLoadBalancer((LbConfig.RingHash) config, random);
            case MAGLEV -> new MaglevLoadBalancer((LbConfig.Maglev) config, random);
            case CLUSTER_PROVIDED -> throw new IllegalArgumentException(
                    "lb_policy: CLUSTER_PROVIDED (expected: a policy with a selector)");
        };
    }
}
