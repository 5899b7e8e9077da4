package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.api.config.core.HeaderValueOption;
import java.time.Duration;
import java.util.List;

/**
 * The config of Envoy's local rate limit HTTP filter ({@code envoy.filters.http.local_ratelimit},
 * {@code LocalRateLimit}), as the filter's own or as a virtual host's or route's {@code typed_per_filter_config},
 * where it replaces the filter's own (with a bucket of its own). A request the filter checks takes one token from the
 * bucket; one that finds none is refused if the filter is enforced, else it goes on.
 *
 * @param statPrefix the scope of its statistics: {@code <stat_prefix>.http_local_rate_limit.*}
 * @param tokenBucket the bucket, or null for none (the filter's own config only: then nothing is limited)
 * @param filterEnabled the requests checked ({@code filter_enabled}; absent: none, Envoy's default)
 * @param filterEnforced the checked requests refused when no token is left ({@code filter_enforced}; absent: none)
 * @param status the status of a refusal ({@code status}; absent or below 400: 429, as Envoy)
 * @param responseHeadersToAdd the headers a refusal carries
 * @param requestHeadersToAddWhenNotEnforced the headers added to a request that found no token but goes on, the
 *     filter not being enforced for it
 * @param rateLimitedAsResourceExhausted whether a refused gRPC request gets RESOURCE_EXHAUSTED (8) rather than the
 *     status its HTTP status maps to (429: UNAVAILABLE, 14)
 * @param xRateLimitHeaders whether responses to checked requests carry {@code x-ratelimit-limit},
 *     {@code x-ratelimit-remaining} and {@code x-ratelimit-reset} ({@code enable_x_ratelimit_headers:
 *     DRAFT_VERSION_03})
 */
public record LocalRateLimit(String statPrefix, TokenBucket tokenBucket, FractionalPercent filterEnabled,
                             FractionalPercent filterEnforced, int status,
                             List<HeaderValueOption> responseHeadersToAdd,
                             List<HeaderValueOption> requestHeadersToAddWhenNotEnforced,
                             boolean rateLimitedAsResourceExhausted, boolean xRateLimitHeaders) {
    /** Envoy's status of a refusal: 429 Too Many Requests. */
    public static final int DEFAULT_STATUS = 429;

    public LocalRateLimit {
        Checks.nonEmpty(statPrefix, "stat_prefix");
        // as Envoy: a status below 400 (or none) refuses with 429
        status = status < 400 ? DEFAULT_STATUS : status;
        Checks.range(status, 400, 599, "status.code");
        responseHeadersToAdd = Checks.list(responseHeadersToAdd, "response_headers_to_add");
        requestHeadersToAddWhenNotEnforced = Checks.list(requestHeadersToAddWhenNotEnforced,
                "request_headers_to_add_when_not_enforced");
    }

    /**
     * Envoy's {@code TokenBucket}: it starts full and gains {@code tokensPerFill} every {@code fillInterval}, up to
     * {@code maxTokens}.
     *
     * @param maxTokens the most tokens it holds, at least 1
     * @param tokensPerFill the tokens each fill adds, at least 1 (Envoy's default: 1)
     * @param fillInterval the time between fills, at least 50 ms (Envoy's rule)
     */
    public record TokenBucket(long maxTokens, long tokensPerFill, Duration fillInterval) {
        /** The shortest fill interval Envoy accepts. */
        public static final Duration MIN_FILL_INTERVAL = Duration.ofMillis(50);

        public TokenBucket {
            Checks.range(maxTokens, 1, 0xFFFFFFFFL, "token_bucket.max_tokens");
            Checks.range(tokensPerFill, 1, 0xFFFFFFFFL, "token_bucket.tokens_per_fill");
            Checks.nonNull(fillInterval, "token_bucket.fill_interval");
            Checks.check(fillInterval.compareTo(MIN_FILL_INTERVAL) >= 0, "token_bucket.fill_interval",
                    fillInterval, ">= 50ms");
        }
    }
}
