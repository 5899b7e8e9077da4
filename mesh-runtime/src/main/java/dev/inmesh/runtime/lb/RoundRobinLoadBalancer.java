package dev.inmesh.runtime.lb;

import dev.inmesh.api.config.cluster.LbConfig;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import java.util.random.RandomGenerator;

/**
 * ROUND_ROBIN. Equal weights: a shared cursor that starts at a random host and survives host set updates. Unequal
 * weights: an EDF schedule (exact proportions over a cycle of {@code sum(weights)} picks), advanced a random number of
 * picks at build so that proxies built at the same moment do not all start on the same host. With a slow start, hosts
 * in their window ramp up first ({@link SlowStartSelector}).
 */
final class RoundRobinLoadBalancer implements LoadBalancer {
    private final RandomGenerator random;
    private final LbConfig.SlowStart slowStart;
    private final LongSupplier clock;

    RoundRobinLoadBalancer(RandomGenerator random, LbConfig.SlowStart slowStart, LongSupplier clock) {
        this.random = random;
        this.slowStart = slowStart;
        this.clock = clock;
    }

    @Override
    public <H extends LbHost> HostSelector<H> newSelector(List<H> hosts, HostSelector<H> previous) {
        List<H> copy = List.copyOf(hosts);
        HostSelector<H> steady;
        if (Selectors.equalWeights(copy)) {
            AtomicLong cursor = SlowStartSelector.steady(previous) instanceof Cursor<H> c ? c.cursor
                    : new AtomicLong(copy.isEmpty() ? 0 : random.nextInt(copy.size()));
            steady = new Cursor<>(copy, cursor);
        } else {
            steady = new Weighted<>(copy, random.nextInt(copy.size()));
        }
        if (slowStart == null || copy.isEmpty()) {
            return steady;
        }
        return SlowStartSelector.of(copy, steady, slowStart, clock, LbHost::weight,
                random.nextInt(copy.size()));
    }

    /** Equal weights: the next host after the cursor. */
    static final class Cursor<H extends LbHost> implements HostSelector<H> {
        private final List<H> hosts;
        private final AtomicLong cursor;

        Cursor(List<H> hosts, AtomicLong cursor) {
            this.hosts = hosts;
            this.cursor = cursor;
        }

        @Override
        public H pick(boolean hasHash, long hash, int attempt) {
            if (hosts.isEmpty()) {
                return null;
            }
            return hosts.get((int) Long.remainderUnsigned(cursor.getAndIncrement(), hosts.size()));
        }

        @Override
        public List<H> hosts() {
            return hosts;
        }
    }

    /** Unequal weights: earliest deadline first by weight. */
    static final class Weighted<H extends LbHost> implements HostSelector<H> {
        private final List<H> hosts;
        private final EdfScheduler<H> edf = new EdfScheduler<>(LbHost::weight);

        Weighted(List<H> hosts, int skip) {
            this.hosts = hosts;
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
