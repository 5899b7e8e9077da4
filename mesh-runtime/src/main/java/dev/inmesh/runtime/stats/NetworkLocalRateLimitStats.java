package dev.inmesh.runtime.stats;

import io.micrometer.core.instrument.MeterRegistry;
import java.util.concurrent.atomic.LongAdder;

/**
 * The statistics of the local rate limit network filters with one {@code stat_prefix}, named as Envoy names them:
 * {@code local_rate_limit.<stat_prefix>.rate_limited}, the connections closed for want of a token. Scraped as
 * {@code envoy_local_rate_limit_rate_limited} with the prefix in the tag {@code local_network_ratelimit_prefix}
 * (Envoy's tag extractor's); as with {@link UpstreamStats}, a counter whose name does not end in {@code _total} is a
 * gauge that only goes up. Filters with the same prefix share it, as Envoy's statistics are shared by name. Only the
 * standalone proxy has connections to limit. Thread-safe.
 */
public final class NetworkLocalRateLimitStats {
    static final String PREFIX = "envoy_local_rate_limit_";
    static final String TAG = "local_network_ratelimit_prefix";

    private final LongAdder rateLimited = new LongAdder();

    NetworkLocalRateLimitStats(MeterRegistry registry, String statPrefix) {
        UpstreamStatsImpl.adder(registry, PREFIX + "rate_limited", TAG, statPrefix, rateLimited);
    }

    /** A connection found no token and was closed. */
    public void rateLimited() {
        rateLimited.increment();
    }

    /** The connections closed so far for want of a token. */
    public long rateLimitedCount() {
        return rateLimited.sum();
    }
}
