package dev.inmesh.api.config.cluster;

import dev.inmesh.api.config.Checks;

/** The settings of a load balancing policy (Envoy's {@code lb_config} one-of, with Envoy's defaults). */
public sealed interface LbConfig {

    /** No settings beyond the policy itself. */
    record Default() implements LbConfig {}

    /** LEAST_REQUEST: {@code choice_count} (default 2) and {@code active_request_bias} (default 1.0). */
    record LeastRequest(int choiceCount, double activeRequestBias) implements LbConfig {
        public static final LeastRequest DEFAULTS = new LeastRequest(2, 1.0);

        public LeastRequest {
            Checks.check(choiceCount >= 2, "least_request_lb_config.choice_count", choiceCount, ">= 2");
            Checks.check(activeRequestBias >= 0, "least_request_lb_config.active_request_bias", activeRequestBias,
                    ">= 0");
        }
    }

    /** RING_HASH: ring size bounds (defaults 1 024 and 8 388 608); the hash function is always xxHash64. */
    record RingHash(long minimumRingSize, long maximumRingSize) implements LbConfig {
        public static final RingHash DEFAULTS = new RingHash(1024, 8_388_608);

        public RingHash {
            Checks.range(minimumRingSize, 1, 8_388_608, "ring_hash_lb_config.minimum_ring_size");
            Checks.range(maximumRingSize, 1, 8_388_608, "ring_hash_lb_config.maximum_ring_size");
            Checks.check(minimumRingSize <= maximumRingSize, "ring_hash_lb_config.minimum_ring_size",
                    minimumRingSize, "<= maximum_ring_size " + maximumRingSize);
        }
    }

    /** MAGLEV: the lookup table size, a prime (default 65 537). */
    record Maglev(long tableSize) implements LbConfig {
        public static final Maglev DEFAULTS = new Maglev(65_537);

        public Maglev {
            Checks.check(tableSize > 1 && isPrime(tableSize) && tableSize <= 5_000_011, "maglev_lb_config.table_size",
                    tableSize, "a prime up to 5000011");
        }

        private static boolean isPrime(long n) {
            if (n < 2) {
                return false;
            }
            for (long d = 2; d * d <= n; d++) {
                if (n % d == 0) {
                    return false;
                }
            }
            return true;
        }
    }
}
