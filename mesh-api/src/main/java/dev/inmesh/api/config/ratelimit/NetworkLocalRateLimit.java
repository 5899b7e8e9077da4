package dev.inmesh.api.config.ratelimit;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.route.LocalRateLimit;

/**
 * The config of one local rate limit network filter ({@code envoy.filters.network.local_ratelimit},
 * {@code extensions.filters.network.local_ratelimit.v3.LocalRateLimit}) on a filter chain, which Istio users add with
 * an EnvoyFilter to cap the new connections of a listener: each new connection takes one token from the filter's
 * bucket, shared by all the connections of that filter; one that finds none is closed at once, before the chain's
 * terminal filter sees it.
 *
 * @param after how many of the chain's RBAC and external authorization network filters come before it (the filters
 *     run in chain order: a connection an RBAC filter before it denies takes no token)
 * @param statPrefix the filter's {@code stat_prefix} (required, as Envoy requires it): its statistic is
 *     {@code local_rate_limit.<stat_prefix>.rate_limited}
 * @param tokenBucket the bucket (required, as Envoy requires it)
 * @param enabled the {@code default_value} of its {@code runtime_enabled} (true when unset, Envoy's default): a
 *     disabled filter takes no token and lets every connection through
 * @param shareKey its {@code share_key}: empty, the bucket is the filter's own; else the filters with this key and an
 *     equal {@code tokenBucket}, on any listener or chain, take from one bucket, as Envoy shares them
 */
public record NetworkLocalRateLimit(int after, String statPrefix, LocalRateLimit.TokenBucket tokenBucket,
                                    boolean enabled, String shareKey) {
    public NetworkLocalRateLimit {
        Checks.check(after >= 0, "filters", after, ">= 0");
        Checks.nonEmpty(statPrefix, "stat_prefix");
        Checks.nonNull(tokenBucket, "token_bucket");
        shareKey = shareKey == null ? "" : shareKey;
    }
}
