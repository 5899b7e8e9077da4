package dev.inmesh.runtime.lb;

import dev.inmesh.api.config.cluster.LbConfig;
import java.util.List;
import java.util.random.RandomGenerator;

/**
 * RING_HASH (Ketama), after Envoy: each host gets a share of the ring in proportion to its normalised weight, the
 * ring holding between {@code minimum_ring_size} and {@code maximum_ring_size} entries. Entry {@code i} of a host
 * hashes {@code "<ip:port>_<i>"} with xxHash64 (seed 0). A request goes to the first entry whose hash is at or after
 * its own (wrapping around); a retry that refused the host moves {@code attempt} entries further. A request without a
 * hash picks at random.
 *
 * <p>One difference from Envoy, on purpose: the lightest host's entry count is rounded up to a power of two. Envoy
 * scales it to exactly {@code minimum_ring_size x its normalised weight}, so adding an eleventh host to ten takes
 * entries away from every other host (103 each become 94) and moves about 15% of the keys, where consistent hashing
 * promises about 1/11. With the rounding, the count per unit of weight stays the same until the host count crosses a
 * power of two, a host that joins takes only its own share, and the ring still holds at least
 * {@code minimum_ring_size} entries (and less than twice that, capped by {@code maximum_ring_size}).
 */
final class RingHashLoadBalancer implements LoadBalancer {
    private final LbConfig.RingHash config;
    private final RandomGenerator random;

    RingHashLoadBalancer(LbConfig.RingHash config, RandomGenerator random) {
        this.config = config;
        this.random = random;
    }

    @Override
    public boolean hashing() {
        return true;
    }

    @Override
    public <H extends LbHost> HostSelector<H> newSelector(List<H> hosts, HostSelector<H> previous) {
        return new Ring<>(List.copyOf(hosts), config.minimumRingSize(), config.maximumRingSize(), random);
    }

    static final class Ring<H extends LbHost> implements HostSelector<H> {
        private final List<H> hosts;
        private final RandomGenerator random;
        /** Entry hashes with the sign bit flipped, so that signed order is unsigned order of the hashes. */
        private final long[] keys;
        private final int[] owners;

        Ring(List<H> hosts, long minSize, long maxSize, RandomGenerator random) {
            this.hosts = hosts;
            this.random = random;
            if (hosts.isEmpty()) {
                keys = new long[0];
                owners = new int[0];
                return;
            }
            double total = 0;
            for (H h : hosts) {
                total += h.weight();
            }
            double minNormalized = 1.0;
            for (H h : hosts) {
                minNormalized = Math.min(minNormalized, h.weight() / total);
            }
            double lightest = Long.highestOneBit(Math.max(1, (long) Math.ceil(minNormalized * minSize) - 1)) << 1;
            double scale = Math.min(lightest / minNormalized, (double) maxSize);
            int size = (int) Math.ceil(scale);
            long[] k = new long[size + hosts.size()];
            int[] o = new int[k.length];
            int n = 0;
            double current = 0;
            double target = 0;
            for (int hi = 0; hi < hosts.size(); hi++) {
                H h = hosts.get(hi);
                target += scale * (h.weight() / total);
                String prefix = h.addressString() + "_";
                for (long i = 0; current < target && n < k.length; i++, current++) {
                    k[n] = Xxhash.hash64(prefix + i) ^ Long.MIN_VALUE;
                    o[n] = hi;
                    n++;
                }
            }
            keys = java.util.Arrays.copyOf(k, n);
            owners = java.util.Arrays.copyOf(o, n);
            PairSort.sort(keys, owners);
        }

        /** The number of entries on the ring. */
        int size() {
            return keys.length;
        }

        @Override
        public H pick(boolean hasHash, long hash, int attempt) {
            if (keys.length == 0) {
                return null;
            }
            if (!hasHash) {
                return hosts.get(random.nextInt(hosts.size()));
            }
            int i = java.util.Arrays.binarySearch(keys, hash ^ Long.MIN_VALUE);
            if (i < 0) {
                i = -i - 1;
            } else {
                while (i > 0 && keys[i - 1] == keys[i]) {
                    i--;
                }
            }
            if (i == keys.length) {
                i = 0;
            }
            if (attempt > 0) {
                i = (int) ((i + (long) attempt) % keys.length);
            }
            return hosts.get(owners[i]);
        }

        @Override
        public List<H> hosts() {
            return hosts;
        }
    }
}
