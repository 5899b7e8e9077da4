package dev.inmesh.runtime.router;

import dev.inmesh.api.config.ratelimit.NetworkLocalRateLimit;
import dev.inmesh.runtime.stats.NetworkLocalRateLimitStats;
import java.util.function.Function;

/**
 * Envoy's local rate limit network filter ({@code envoy.filters.network.local_ratelimit}) of one filter chain,
 * compiled with its snapshot: each new connection it sees takes one token from its bucket, which every event loop
 * shares (Envoy's is shared by all workers); one that finds none is closed before the chain's terminal filter sees
 * it ({@code local_ratelimit.cc}: {@code onNewConnection} closes it with the details
 * {@code local_ratelimit_close_over_limit} and the response flag URX). Its bucket comes from
 * {@link LocalRateLimitFilter.Buckets}, kept across snapshots while the filter's place and config are unchanged; with a
 * {@code share_key} the place is the key, so filters with the same key and bucket config share one bucket, as
 * Envoy's shared buckets. Run among the RBAC and external authorization network filters in chain order
 * ({@link RbacFilter.Network}).
 */
final class NetworkLocalRateLimitFilter {
    /** Why a connection without a token is closed: Envoy's connection termination details. */
    static final String DETAILS = "local_ratelimit_close_over_limit";

    private final NetworkLocalRateLimit config;
    private final LocalRateLimitFilter.Bucket bucket;

    NetworkLocalRateLimitFilter(NetworkLocalRateLimit config, LocalRateLimitFilter.Buckets.Session buckets,
                                String where) {
        this.config = config;
        this.bucket = buckets.bucket(config.shareKey().isEmpty() ? where : "share_key/" + config.shareKey(),
                config.tokenBucket());
    }

    /**
     * Takes a token for a new connection, unless the filter is disabled ({@code runtime_enabled}).
     *
     * @param stats the statistics of a {@code stat_prefix}; null, or answering null, to count nothing
     * @return whether the connection goes on
     */
    boolean allows(Function<String, NetworkLocalRateLimitStats> stats) {
        if (!config.enabled() || bucket.take().allowed()) {
            return true;
        }
        NetworkLocalRateLimitStats s = stats == null ? null : stats.apply(config.statPrefix());
        if (s != null) {
            s.rateLimited();
        }
        return false;
    }
}
