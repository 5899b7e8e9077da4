package dev.inmesh.api.config.cluster;

import dev.inmesh.api.config.Checks;
import java.time.Duration;

/** The settings of a load balancing policy (Envoy's {@code lb_config} one-of, with Envoy's defaults). */
public sealed interface LbConfig {

    /** No settings beyond the policy itself. */
    record Default() implements LbConfig {}

    /**
     * Envoy's {@code slow_start_config} (Istio's DestinationRule {@code warmupDurationSecs}): for {@code window} after
     * its cluster first finds a host healthy, the host's weight (while healthy) is scaled by
     * {@code max(minWeightPercent / 100, timeFactor ^ (1 / aggression))}, where {@code timeFactor} is the time since
     * then (at least 1 ms) over the window.
     *
     * @param window {@code slow_start_window}, positive (a config without one has no slow start at all)
     * @param aggression {@code aggression.default_value} (default 1.0: a linear ramp), positive (infinite: full
     *     weight at once)
     * @param minWeightPercent {@code min_weight_percent.value} (default 10), 0 to 100
     */
    record SlowStart(Duration window, double aggression, double minWeightPercent) {
        public static final double DEFAULT_AGGRESSION = 1.0;
        public static final double DEFAULT_MIN_WEIGHT_PERCENT = 10.0;

        public SlowStart {
            Checks.nonNull(window, "slow_start_config.slow_start_window");
            Checks.check(window.compareTo(Duration.ZERO) > 0, "slow_start_config.slow_start_window", window, "> 0s");
            Checks.check(aggression > 0, "slow_start_config.aggression", aggression, "> 0");
            Checks.check(minWeightPercent >= 0 && minWeightPercent <= 100, "slow_start_config.min_weight_percent",
                    minWeightPercent, "0 to 100");
        }

        /**
         * The factor a healthy host's weight is scaled by {@code elapsedNanos} into its window, or 1 once the window is
         * over.
         */
        public double factor(long elapsedNanos) {
            long windowNanos = window.toNanos();
            if (elapsedNanos >= windowNanos) {
                return 1.0;
            }
            double time = Math.max(elapsedNanos, 1_000_000L) / (double) windowNanos;
            double ramp = aggression == 1.0 || time == 1.0 ? time : Math.pow(time, 1.0 / aggression);
            return Math.max(ramp, minWeightPercent / 100.0);
        }
    }

    /**
     * An ORIGINAL_DST cluster's {@code original_dst_lb_config}: {@code upstream_port_override}, the port connections
     * go to in place of the original destination's (istiod writes it for a Service whose passthrough traffic targets
     * another port than the service port, such as a headless Service's {@code targetPort}); 0 when it is not set. With
     * {@code use_http_header}, {@code httpHeaderName} is the request header whose first value, an {@code IP:PORT}
     * ({@code [IPv6]:PORT}), names the destination in place of the connection's original one
     * ({@code x-envoy-original-dst-host} unless {@code http_header_name} names another); null without it.
     */
    record OriginalDst(int upstreamPortOverride, String httpHeaderName) implements LbConfig {
        /** The header Envoy reads when {@code use_http_header} names none. */
        public static final String DEFAULT_HEADER = "x-envoy-original-dst-host";

        public OriginalDst {
            Checks.check(upstreamPortOverride >= 0 && upstreamPortOverride <= 65535,
                    "original_dst_lb_config.upstream_port_override", upstreamPortOverride, "0 to 65535");
        }

        /** Only {@code upstream_port_override}. */
        public OriginalDst(int upstreamPortOverride) {
            this(upstreamPortOverride, null);
        }
    }

    /** ROUND_ROBIN with a {@code round_robin_lb_config} that sets a slow start. */
    record RoundRobin(SlowStart slowStart) implements LbConfig {
        public RoundRobin {
            Checks.nonNull(slowStart, "round_robin_lb_config.slow_start_config");
        }
    }

    /**
     * LEAST_REQUEST: {@code choice_count} (default 2), {@code active_request_bias} (default 1.0) and
     * {@code slow_start_config} (null: none).
     */
    record LeastRequest(int choiceCount, double activeRequestBias, SlowStart slowStart) implements LbConfig {
        public static final LeastRequest DEFAULTS = new LeastRequest(2, 1.0);

        public LeastRequest {
            Checks.check(choiceCount >= 2, "least_request_lb_config.choice_count", choiceCount, ">= 2");
            Checks.check(activeRequestBias >= 0, "least_request_lb_config.active_request_bias", activeRequestBias,
                    ">= 0");
        }

        /** Without slow start: the constructor from before slow start was kept. */
        public LeastRequest(int choiceCount, double activeRequestBias) {
            this(choiceCount, activeRequestBias, null);
        }
    }

    /**
     * RING_HASH: ring size bounds (defaults 1 024 and 8 388 608) and the hash function that places the hosts' entries
     * on the ring (xxHash64 by default; a request's hash is always xxHash64's). A bound of 0, which Envoy's
     * {@code ring_hash_lb_config} takes, makes an empty ring, as Envoy's: no host is ever picked.
     */
    record RingHash(long minimumRingSize, long maximumRingSize, HashFunction hashFunction) implements LbConfig {
        public static final RingHash DEFAULTS = new RingHash(1024, 8_388_608);

        /** Envoy's {@code ring_hash_lb_config.hash_function}. */
        public enum HashFunction {
            /** xxHash64 with seed 0, Envoy's default. */
            XX_HASH,
            /** The 64-bit MurmurHash2 of libstdc++'s {@code std::hash}, as Envoy's. */
            MURMUR_HASH_2
        }

        public RingHash {
            Checks.range(minimumRingSize, 0, 8_388_608, "ring_hash_lb_config.minimum_ring_size");
            Checks.range(maximumRingSize, 0, 8_388_608, "ring_hash_lb_config.maximum_ring_size");
            Checks.check(minimumRingSize <= maximumRingSize, "ring_hash_lb_config.minimum_ring_size",
                    minimumRingSize, "<= maximum_ring_size " + maximumRingSize);
            hashFunction = hashFunction == null ? HashFunction.XX_HASH : hashFunction;
        }

        /** With xxHash64. */
        public RingHash(long minimumRingSize, long maximumRingSize) {
            this(minimumRingSize, maximumRingSize, HashFunction.XX_HASH);
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
