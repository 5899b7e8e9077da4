package dev.inmesh.runtime.lb;

import java.util.List;
import java.util.random.RandomGenerator;

/** RANDOM: a uniformly random host; as in Envoy, weights are not taken into account. */
final class RandomLoadBalancer implements LoadBalancer {
    private final RandomGenerator random;

    RandomLoadBalancer(RandomGenerator random) {
        this.random = random;
    }

    @Override
    public <H extends LbHost> HostSelector<H> newSelector(List<H> hosts, HostSelector<H> previous) {
        List<H> copy = List.copyOf(hosts);
        return new HostSelector<>() {
            @Override
            public H pick(boolean hasHash, long hash, int attempt) {
                return copy.isEmpty() ? null : copy.get(random.nextInt(copy.size()));
            }

            @Override
            public List<H> hosts() {
                return copy;
            }
        };
    }
}
