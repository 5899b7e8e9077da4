package dev.inmesh.runtime.lb;

import dev.inmesh.api.config.cluster.LbConfig;
import java.util.List;
import java.util.random.RandomGenerator;

/**
 * RING_HASH (Ketama), after Envoy: each host gets a share of the ring in proportion to its normalised weight, the
 * ring holding between {@code minimum_ring_size} and {@code maximum_ring_size} entries. Entry {@code i} of a host
 * hashes {@code "<key>_<i>"} with xxHash64 (seed 0), or Envoy's MurmurHash2 under {@code hash_function:
 * MURMUR_HASH_2}, the key its {@code ip:port} or its {@link LbHost#hashKey()}. A
 * request goes to the first entry whose hash is at or after its own (wrapping around); a retry that refused the host
 * moves {@code attempt} entries further. A request without a hash takes a random place on the ring (so that host
 * weights hold), as in Envoy.
 *
 * <p>The ring is Envoy's entry for entry: the lightest host gets {@code ceil(minimum_ring_size x its normalised
 * weight)} entries, and every host entries in proportion to that (capped by {@code maximum_ring_size}), so that an
 * Envoy sidecar and Inmesh, hashing the same key over the same hosts, pick the same host: a client's consistent hash
 * holds whichever of them its requests go through. (Envoy's sizing moves more keys than consistent hashing promises
 * when a host joins, about 15% from ten hosts to eleven, as every host's count shrinks; an earlier Inmesh rounded the
 * counts up to a power of two to avoid that, and so sent keys to other hosts than Envoy's callers did.)
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
        return newSelector(hosts, LbHost.weights(hosts), previous);
    }

    @Override
    public <H extends LbHost> HostSelector<H> newSelector(List<H> hosts, double[] weights, HostSelector<H> previous) {
        return new Ring<>(List.copyOf(hosts), weights, config.minimumRingSize(), config.maximumRingSize(),
                config.hashFunction(), random);
    }

    static final class Ring<H extends LbHost> implements HostSelector<H> {
        private final List<H> hosts;
        private final RandomGenerator random;
        /** At most 2^20 index buckets whatever the ring's size. */
        private static final int MAX_INDEX_BITS = 20;
        /** Buckets per entry, as a power of two: 4, so that about 3 buckets in 4 hold no entry. */
        private static final int SPARE_INDEX_BITS = 2;

        /** Entry hashes with the sign bit flipped, so that signed order is unsigned order of the hashes. */
        private final long[] keys;
        /** Each entry's host (in {@link #keys}' order): one read, where an index would take a second in the list. */
        private final Object[] owners;
        /** index[b]: the first entry of bucket b (the hash's top bits); index[buckets] = the ring's size. */
        private int[] index = new int[] {0, 0, 0};
        /**
         * direct[b]: the host every hash of bucket b goes to when no entry falls inside the bucket (the next entry
         * after it decides them all), else null. Most picks end here, reading one array element.
         */
        private Object[] direct = new Object[2];
        private int shift = 63;

        Ring(List<H> hosts, long minSize, long maxSize, RandomGenerator random) {
            this(hosts, LbHost.weights(hosts), minSize, maxSize, LbConfig.RingHash.HashFunction.XX_HASH, random);
        }

        /**
         * A ring over {@code hosts}, each taking the share its entry of {@code weights} (normalised) gives it, its
         * entries placed by {@code function}.
         */
        Ring(List<H> hosts, double[] weights, long minSize, long maxSize, LbConfig.RingHash.HashFunction function,
             RandomGenerator random) {
            this.hosts = hosts;
            this.random = random;
            if (hosts.isEmpty()) {
                keys = new long[0];
                owners = new Object[0];
                return;
            }
            double minNormalized = 1.0;
            for (double w : weights) {
                minNormalized = Math.min(minNormalized, w);
            }
            // Envoy's scale: the lightest host's share of the minimum, whole, over its normalised weight (a size of
            // 0 makes an empty ring, as Envoy's: no host is picked)
            double lightest = Math.ceil(minNormalized * minSize);
            double scale = Math.min(lightest / minNormalized, (double) maxSize);
            int size = (int) Math.ceil(scale);
            long[] k = new long[size + hosts.size()];
            int[] o = new int[k.length];
            int n = 0;
            double current = 0;
            double target = 0;
            for (int hi = 0; hi < hosts.size(); hi++) {
                H h = hosts.get(hi);
                target += scale * weights[hi];
                String prefix = h.hashKey() + "_";
                for (long i = 0; current < target && n < k.length; i++, current++) {
                    String key = prefix + i;
                    k[n] = (function == LbConfig.RingHash.HashFunction.MURMUR_HASH_2 ? Murmur2.hash64(key)
                            : Xxhash.hash64(key)) ^ Long.MIN_VALUE;
                    o[n] = hi;
                    n++;
                }
            }
            keys = java.util.Arrays.copyOf(k, n);
            if (n == 0) {
                owners = new Object[0];
                return;
            }
            int[] sorted = java.util.Arrays.copyOf(o, n);
            PairSort.sort(keys, sorted);
            owners = new Object[n];
            for (int i = 0; i < n; i++) {
                owners[i] = hosts.get(sorted[i]);
            }
            // An index by the hash's top bits: bucket b starts at the first entry at or after b's smallest hash, so
            // a pick searches one bucket (about one entry) instead of the whole ring.
            int bits = Math.min(MAX_INDEX_BITS,
                    SPARE_INDEX_BITS + Math.max(1, 64 - Long.numberOfLeadingZeros(Math.max(1, n - 1))));
            shift = 64 - bits;
            int buckets = 1 << bits;
            index = new int[buckets + 1];
            int i = 0;
            for (int b = 0; b < buckets; b++) {
                long start = ((long) b << shift) ^ Long.MIN_VALUE;
                while (i < n && keys[i] < start) {
                    i++;
                }
                index[b] = i;
            }
            index[buckets] = n;
            direct = new Object[buckets];
            for (int b = 0; b < buckets; b++) {
                if (index[b] == index[b + 1]) {
                    direct[b] = owners[index[b] == n ? 0 : index[b]];
                }
            }
        }

        @SuppressWarnings("unchecked")
        private H host(int entry) {
            return (H) owners[entry];
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
                // a random place on the ring, as in Envoy: host weights still hold
                hash = random.nextLong();
                attempt = 0;
            }
            if (attempt == 0) {
                @SuppressWarnings("unchecked")
                H h = (H) direct[(int) (hash >>> shift)];
                if (h != null) {
                    return h;
                }
            }
            int i = entry(hash);
            if (i == keys.length) {
                i = 0;
            }
            if (attempt > 0) {
                i = (int) ((i + (long) attempt) % keys.length);
            }
            return host(i);
        }

        /** The first entry at or after {@code hash} (may be the ring's size: wrap), found through the index. */
        int entry(long hash) {
            int b = (int) (hash >>> shift);
            int from = index[b];
            int to = index[b + 1];
            int i = java.util.Arrays.binarySearch(keys, from, to, hash ^ Long.MIN_VALUE);
            if (i < 0) {
                return -i - 1;
            }
            while (i > from && keys[i - 1] == keys[i]) {
                i--;
            }
            return i;
        }

        /** The same as {@link #entry} by a search of the whole ring: the reference the index is tested against. */
        int entryBySearch(long hash) {
            int i = java.util.Arrays.binarySearch(keys, hash ^ Long.MIN_VALUE);
            if (i < 0) {
                return -i - 1;
            }
            while (i > 0 && keys[i - 1] == keys[i]) {
                i--;
            }
            return i;
        }

        /** The host of {@link #entryBySearch}'s entry (wrapping): the reference a pick is tested against. */
        H hostBySearch(long hash) {
            int i = entryBySearch(hash);
            return host(i == keys.length ? 0 : i);
        }

        @Override
        public List<H> hosts() {
            return hosts;
        }
    }
}
