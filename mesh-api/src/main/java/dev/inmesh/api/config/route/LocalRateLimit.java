package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.api.config.core.HeaderValueOption;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The config of Envoy's local rate limit HTTP filter ({@code envoy.filters.http.local_ratelimit},
 * {@code LocalRateLimit}), as the filter's own or as a virtual host's or route's {@code typed_per_filter_config},
 * where it replaces the filter's own (with buckets of its own). A request the filter checks takes one token from the
 * bucket; one that finds none is refused if the filter is enforced, else it goes on.
 *
 * <p>With {@code descriptors}, a request's descriptors (made by the {@code rate_limits} entries of its route and
 * virtual host of the filter's {@code stage}, or by the config's own {@code rate_limits}) pick buckets of their own:
 * each request descriptor equal to a configured one (or matching a wildcard one, whose entries with an empty value
 * match any value, each distinct value with a bucket of its own) takes a token from that descriptor's bucket, the
 * slowest filling first; the default bucket is taken from too when none matched, or always with
 * {@code always_consume_default_token_bucket} (Envoy's default). The request is refused at the first empty one.
 *
 * @param statPrefix the scope of its statistics: {@code <stat_prefix>.http_local_rate_limit.*}
 * @param tokenBucket the default bucket, or null for none (the filter's own config only: then only the requests its
 *     descriptors match are limited)
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
 *     DRAFT_VERSION_03}), of the bucket that refused the request, else of the slowest filling descriptor bucket it
 *     took from, else of the default bucket
 * @param descriptors the descriptors with buckets of their own ({@code descriptors}); none: requests' descriptors
 *     are not made
 * @param stage the stage of the route's and virtual host's {@code rate_limits} entries read ({@code stage}, 0 to 10)
 * @param vhRateLimits whether the virtual host's {@code rate_limits} are read ({@code vh_rate_limits}; a route's
 *     {@code include_vh_rate_limits} means {@code INCLUDE})
 * @param alwaysConsumeDefaultTokenBucket whether a request whose descriptors matched takes a token from the default
 *     bucket too ({@code always_consume_default_token_bucket}; Envoy's default true)
 * @param rateLimits the config's own {@code rate_limits}: when any, they make the request's descriptors and the
 *     route's and virtual host's are not read (their entries have no stage, as Envoy requires)
 * @param maxDynamicDescriptors the most values a wildcard descriptor keeps a bucket for, the least recently used
 *     dropped first ({@code max_dynamic_descriptors}; Envoy's default 20)
 */
public record LocalRateLimit(String statPrefix, TokenBucket tokenBucket, FractionalPercent filterEnabled,
                             FractionalPercent filterEnforced, int status,
                             List<HeaderValueOption> responseHeadersToAdd,
                             List<HeaderValueOption> requestHeadersToAddWhenNotEnforced,
                             boolean rateLimitedAsResourceExhausted, boolean xRateLimitHeaders,
                             List<Descriptor> descriptors, int stage, RateLimit.VhRateLimits vhRateLimits,
                             boolean alwaysConsumeDefaultTokenBucket, List<RateLimit> rateLimits,
                             int maxDynamicDescriptors) {
    /** Envoy's status of a refusal: 429 Too Many Requests. */
    public static final int DEFAULT_STATUS = 429;
    /** Envoy's {@code max_dynamic_descriptors} when unset. */
    public static final int DEFAULT_MAX_DYNAMIC_DESCRIPTORS = 20;

    public LocalRateLimit {
        Checks.nonEmpty(statPrefix, "stat_prefix");
        // as Envoy: a status below 400 (or none) refuses with 429
        status = status < 400 ? DEFAULT_STATUS : status;
        Checks.range(status, 400, 599, "status.code");
        responseHeadersToAdd = Checks.list(responseHeadersToAdd, "response_headers_to_add");
        requestHeadersToAddWhenNotEnforced = Checks.list(requestHeadersToAddWhenNotEnforced,
                "request_headers_to_add_when_not_enforced");
        descriptors = Checks.list(descriptors, "descriptors");
        Set<List<Entry>> seen = new HashSet<>();
        for (int i = 0; i < descriptors.size(); i++) {
            // as Envoy, which keys its descriptors by their entries
            Checks.check(seen.add(descriptors.get(i).entries()), "descriptors[" + i + "].entries",
                    descriptors.get(i).entries(), "entries no other descriptor has (a duplicate descriptor)");
        }
        Checks.range(stage, 0, 10, "stage");
        vhRateLimits = vhRateLimits == null ? RateLimit.VhRateLimits.OVERRIDE : vhRateLimits;
        rateLimits = Checks.list(rateLimits, "rate_limits");
        for (int i = 0; i < rateLimits.size(); i++) {
            // as Envoy, which refuses either in the filter's own rate_limits
            RateLimit r = rateLimits.get(i);
            Checks.check(r.stage() == 0, "rate_limits[" + i + "].stage", r.stage(),
                    "0: no stage in the filter's own rate_limits, as Envoy requires");
            Checks.check(r.disableKey().isEmpty(), "rate_limits[" + i + "].disable_key", r.disableKey(),
                    "empty: no disable_key in the filter's own rate_limits, as Envoy requires");
        }
        Checks.range(maxDynamicDescriptors, 1, Integer.MAX_VALUE, "max_dynamic_descriptors");
    }

    /** A config without descriptors (Envoy's defaults for them). */
    public LocalRateLimit(String statPrefix, TokenBucket tokenBucket, FractionalPercent filterEnabled,
                          FractionalPercent filterEnforced, int status, List<HeaderValueOption> responseHeadersToAdd,
                          List<HeaderValueOption> requestHeadersToAddWhenNotEnforced,
                          boolean rateLimitedAsResourceExhausted, boolean xRateLimitHeaders) {
        this(statPrefix, tokenBucket, filterEnabled, filterEnforced, status, responseHeadersToAdd,
                requestHeadersToAddWhenNotEnforced, rateLimitedAsResourceExhausted, xRateLimitHeaders, List.of(), 0,
                RateLimit.VhRateLimits.OVERRIDE, true, List.of(), DEFAULT_MAX_DYNAMIC_DESCRIPTORS);
    }

    /**
     * Envoy's {@code LocalRateLimitDescriptor}: the entries a request descriptor must have, in order, and the bucket
     * of the requests whose descriptors do. An entry with an empty value is a wildcard: it matches any value of its
     * key, and each distinct value gets a bucket of its own.
     *
     * @param entries the entries, at least one
     * @param tokenBucket the descriptor's bucket
     */
    public record Descriptor(List<Entry> entries, TokenBucket tokenBucket) {
        public Descriptor {
            entries = Checks.list(entries, "entries");
            Checks.check(!entries.isEmpty(), "entries", "[]", "at least one entry, as Envoy requires");
            Checks.nonNull(tokenBucket, "token_bucket");
        }

        /** Whether an entry has an empty value (a wildcard). */
        public boolean wildcard() {
            return entries.stream().anyMatch(e -> e.value().isEmpty());
        }
    }

    /**
     * One entry of a descriptor ({@code RateLimitDescriptor.Entry}).
     *
     * @param key the descriptor key, not empty
     * @param value its value; empty: any value (a wildcard)
     */
    public record Entry(String key, String value) {
        public Entry {
            Checks.nonEmpty(key, "key");
            value = value == null ? "" : value;
        }
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
