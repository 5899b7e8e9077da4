package dev.inmesh.runtime.lb;

import dev.inmesh.api.config.cluster.LbConfig;
import java.util.List;
import java.util.random.RandomGenerator;

/**
 * MAGLEV: a lookup table of a prime size (65 537 by default) filled from each host's permutation
 * ({@code offset = xxHash64(key) mod size}, {@code skip = xxHash64(key, seed 1) mod (size - 1) + 1}, the key the
 * host's address or its {@link LbHost#hashKey()}), hosts
 * taking turns in proportion to their weights, in the order of their keys (as Envoy since 1.27: the table does not
 * depend on the order the hosts came in). A request goes to {@code table[hash mod size]}; a retry that refused the
 * host flips the hash's bits by the attempt number first. A request without a hash takes a random place in the table,
 * as in Envoy.
 */
final class MaglevLoadBalancer implements LoadBalancer {
    private final LbConfig.Maglev config;
    private final RandomGenerator random;

    MaglevLoadBalancer(LbConfig.Maglev config, RandomGenerator random) {
        this.config = config;
        this.random = random;
    }

    @Override
    public boolean hashing() {
        return true;
    }

    @Override
    public <H extends LbHost> HostSelector<H> newSelector(List<H> hosts, HostSelector<H> previous) {
        return newSelector(hosts, LbHost.weights(hosts), previous);
    }

    @Override
    public <H extends LbHost> HostSelector<H> newSelector(List<H> hosts, double[] weights, HostSelector<H> previous) {
        return new Table<>(List.copyOf(hosts), weights, (int) config.tableSize(), random);
    }

    static final class Table<H extends LbHost> implements HostSelector<H> {
        private final List<H> hosts;
        private final RandomGenerator random;
        /**
         * Each slot's host itself, not its index into {@link #hosts}: a pick reads one array element, where an index
         * would take a second read in the host list (of 10 000 hosts, 40 KB apart from the 256 KB table).
         */
        private final Object[] table;

        /** A table over {@code hosts}, each taking slots in proportion to its entry of {@code weights}. */
        Table(List<H> hosts, double[] weights, int size, RandomGenerator random) {
            this.hosts = hosts;
            this.random = random;
            if (hosts.isEmpty()) {
                table = new Object[0];
                return;
            }
            int n = hosts.size();
            // as Envoy: the hosts take their turns in the order of their keys (byte by byte), not in the order they
            // came in, so that the same hosts always make the same table
            byte[][] keys = new byte[n][];
            Integer[] order = new Integer[n];
            for (int i = 0; i < n; i++) {
                keys[i] = hosts.get(i).hashKey().getBytes(java.nio.charset.StandardCharsets.UTF_8);
                order[i] = i;
            }
            java.util.Arrays.sort(order, (a, b) -> java.util.Arrays.compareUnsigned(keys[a], keys[b]));
            long[] offset = new long[n];
            long[] skip = new long[n];
            long[] next = new long[n];
            double[] weight = new double[n];
            double[] target = new double[n];
            int[] host = new int[n];
            double maxWeight = 0;
            for (int i = 0; i < n; i++) {
                host[i] = order[i];
                String key = hosts.get(host[i]).hashKey();
                offset[i] = Long.remainderUnsigned(Xxhash.hash64(key), size);
                skip[i] = Long.remainderUnsigned(Xxhash.hash64(key, 1), size - 1) + 1;
                weight[i] = weights[host[i]];
                maxWeight = Math.max(maxWeight, weight[i]);
            }
            int[] t = new int[size];
            java.util.Arrays.fill(t, -1);
            int filled = 0;
            for (long iteration = 1; filled < size; iteration++) {
                for (int i = 0; i < n && filled < size; i++) {
                    // a host of the largest weight takes a slot every round, one of a third of it every third round
                    if (iteration * weight[i] < target[i]) {
                        continue;
                    }
                    target[i] += maxWeight;
                    int c = (int) ((offset[i] + skip[i] * next[i]) % size);
                    while (t[c] >= 0) {
                        next[i]++;
                        c = (int) ((offset[i] + skip[i] * next[i]) % size);
                    }
                    t[c] = host[i];
                    next[i]++;
                    filled++;
                }
            }
            Object[] slots = new Object[size];
            for (int i = 0; i < size; i++) {
                slots[i] = hosts.get(t[i]);
            }
            table = slots;
        }

        @Override
        public H pick(boolean hasHash, long hash, int attempt) {
            if (table.length == 0) {
                return null;
            }
            // a request without a hash takes a random place in the table, as in Envoy: host weights still hold
            long h = !hasHash ? random.nextLong() : attempt > 0 ? hash ^ (-attempt) : hash;
            @SuppressWarnings("unchecked")
            H host = (H) table[(int) Long.remainderUnsigned(h, table.length)];
            return host;
        }

        @Override
        public List<H> hosts() {
            return hosts;
        }
    }
}
