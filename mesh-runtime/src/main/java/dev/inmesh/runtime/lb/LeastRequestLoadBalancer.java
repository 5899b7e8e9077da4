package dev.inmesh.runtime.lb;

import dev.inmesh.api.config.cluster.LbConfig;
import java.util.List;
import java.util.function.LongSupplier;
import java.util.random.RandomGenerator;

/**
 * LEAST_REQUEST. Equal weights: the host with the fewest active requests among {@code choice_count} random choices
 * (two by default; the first seen wins a tie). Unequal weights: an EDF schedule whose weights are
 * {@code weight / (active + 1)^active_request_bias}, read again each time a host is put back. With a slow start, hosts
 * in their window ramp up first ({@link SlowStartSelector}), on that same weight.
 */
final class LeastRequestLoadBalancer implements LoadBalancer {
    private final LbConfig.LeastRequest config;
    private final RandomGenerator random;
    private final LongSupplier clock;

    LeastRequestLoadBalancer(LbConfig.LeastRequest config, RandomGenerator random, LongSupplier clock) {
        this.config = config;
        this.random = random;
        this.clock = clock;
    }

    @Override
    public <H extends LbHost> HostSelector<H> newSelector(List<H> hosts, HostSelector<H> previous) {
        List<H> copy = List.copyOf(hosts);
        HostSelector<H> steady = Selectors.equalWeights(copy) ? new Choices<>(copy, config.choiceCount(), random)
                : new Weighted<>(copy, config.activeRequestBias(), random.nextInt(copy.size()));
        if (config.slowStart() == null || copy.isEmpty()) {
            return steady;
        }
        return SlowStartSelector.of(copy, steady, config.slowStart(), clock, weight(config.activeRequestBias()),
                random.nextInt(copy.size()));
    }

    /** A host's weight over its active requests: {@code weight / (active + 1)^active_request_bias}. */
    private static <H extends LbHost> java.util.function.ToDoubleFunction<H> weight(double bias) {
        return bias == 1.0
                ? h -> h.weight() / (double) (h.activeRequests() + 1)
                : h -> h.weight() / Math.pow(h.activeRequests() + 1, bias);
    }

    static final class Choices<H extends LbHost> implements HostSelector<H> {
        private final List<H> hosts;
        /** The same hosts in a plain array: a pick reads one element and the host's counter, nothing else. */
        private final LbHost[] array;
        private final int choices;
        private final RandomGenerator random;

        Choices(List<H> hosts, int choices, RandomGenerator random) {
            this.hosts = hosts;
            this.array = hosts.toArray(new LbHost[0]);
            this.choices = choices;
            this.random = random;
        }

        @Override
        @SuppressWarnings("unchecked")
        public H pick(boolean hasHash, long hash, int attempt) {
            LbHost[] a = array;
            if (a.length == 0) {
                return null;
            }
            LbHost best = a[random.nextInt(a.length)];
            int bestActive = best.activeRequests();
            for (int i = 1; i < choices; i++) {
                LbHost candidate = a[random.nextInt(a.length)];
                int active = candidate.activeRequests();
                if (active < bestActive) {
                    best = candidate;
                    bestActive = active;
                }
            }
            return (H) best;
        }

        @Override
        public List<H> hosts() {
            return hosts;
        }
    }

    static final class Weighted<H extends LbHost> implements HostSelector<H> {
        private final List<H> hosts;
        private final EdfScheduler<H> edf;

        Weighted(List<H> hosts, double bias, int skip) {
            this.hosts = hosts;
            this.edf = new EdfScheduler<>(weight(bias));
            hosts.forEach(edf::add);
            for (int i = 0; i < skip; i++) {
                edf.pick();
            }
        }

        @Override
        public synchronized H pick(boolean hasHash, long hash, int attempt) {
            return edf.pick();
        }

        @Override
        public List<H> hosts() {
            return hosts;
        }
    }
}
