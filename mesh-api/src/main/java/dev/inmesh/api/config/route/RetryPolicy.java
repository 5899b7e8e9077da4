package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * When and how the router retries ({@code route.v3.RetryPolicy}).
 *
 * @param retryOn the conditions, such as {@code 5xx}, {@code gateway-error}, {@code reset},
 *     {@code connect-failure}, {@code retriable-4xx}, {@code refused-stream}, {@code retriable-status-codes},
 *     {@code retriable-headers}, and gRPC's {@code cancelled}, {@code deadline-exceeded}, {@code internal},
 *     {@code resource-exhausted}, {@code unavailable}
 * @param numRetries the number of retries (Envoy's default 1)
 * @param perTryTimeout the timeout of each attempt, or null for none
 * @param perTryIdleTimeout the idle timeout of each attempt, or null
 * @param retriableStatusCodes the codes that {@code retriable-status-codes} retries on
 * @param retriableHeaders response headers that make {@code retriable-headers} retry
 * @param retriableRequestHeaders request headers that must match for any retry to happen
 * @param backOffBase the back-off base interval (default 25 ms)
 * @param backOffMax the back-off cap (default 10 times the base)
 * @param retryHostPredicates the retry host predicates by name: {@link #PREVIOUS_HOSTS}, {@link #OMIT_CANARY_HOSTS},
 *     {@link #OMIT_HOST_METADATA}
 * @param hostSelectionRetryMaxAttempts how many picks a host predicate may reject (0 or less: Envoy's default, 1)
 * @param previousPrioritiesUpdateFrequency the {@code update_frequency} of the retry priority
 *     {@code envoy.retry_priorities.previous_priorities} (what Istio's {@code retryRemoteLocalities} sets, at 2): every
 *     this many attempts, the priorities the attempts so far went to are left out of the priority load, so that a
 *     retry goes to another priority (locality); 0 for no retry priority
 * @param rateLimitedBackOff the back-off a retriable response sets with its reset header
 *     ({@code rate_limited_retry_back_off}), or null for the exponential back-off alone
 * @param omitHostMetadata the labels of {@link #OMIT_HOST_METADATA} (its {@code metadata_match} under
 *     {@code envoy.lb}): a retry passes over a host whose {@code envoy.lb} metadata has every one of them (a list
 *     value holding it counts); empty, the predicate passes over no host
 */
public record RetryPolicy(Set<String> retryOn, int numRetries, Duration perTryTimeout, Duration perTryIdleTimeout,
                          Set<Integer> retriableStatusCodes, List<HeaderMatcher> retriableHeaders,
                          List<HeaderMatcher> retriableRequestHeaders, Duration backOffBase, Duration backOffMax,
                          List<String> retryHostPredicates, long hostSelectionRetryMaxAttempts,
                          int previousPrioritiesUpdateFrequency, RateLimitedBackOff rateLimitedBackOff,
                          Map<String, Object> omitHostMetadata) {

    public static final Duration DEFAULT_BACK_OFF_BASE = Duration.ofMillis(25);

    /** The conditions Envoy knows for {@code retry_on}. */
    public static final Set<String> KNOWN_CONDITIONS = Set.of("5xx", "gateway-error", "reset", "reset-before-request",
            "connect-failure", "envoy-ratelimited", "retriable-4xx", "refused-stream", "retriable-status-codes",
            "retriable-headers", "http3-post-connect-failure", "cancelled", "deadline-exceeded", "internal",
            "resource-exhausted", "unavailable");

    public static final String PREVIOUS_HOSTS = "envoy.retry_host_predicates.previous_hosts";

    /** The retry host predicate that passes over canary hosts ({@code envoy.lb} metadata {@code canary: true}). */
    public static final String OMIT_CANARY_HOSTS = "envoy.retry_host_predicates.omit_canary_hosts";

    /** The retry host predicate that passes over hosts whose metadata matches {@link #omitHostMetadata}. */
    public static final String OMIT_HOST_METADATA = "envoy.retry_host_predicates.omit_host_metadata";

    public static final String PREVIOUS_PRIORITIES = "envoy.retry_priorities.previous_priorities";

    /**
     * Envoy's {@code RateLimitedRetryBackOff}: a response the policy retries that carries one of
     * {@code resetHeaders} (the first, in order, whose value parses to an interval of at most {@code maxInterval})
     * makes its retry wait that interval plus a random half of it at most, instead of the exponential back-off, as a
     * service that says when its rate limit resets (such as {@code Retry-After}) asks.
     *
     * @param resetHeaders the headers to read, in order (at least one)
     * @param maxInterval the longest interval taken from a header (Envoy's default 300 s); a longer one is passed
     *     over
     */
    public record RateLimitedBackOff(List<ResetHeader> resetHeaders, Duration maxInterval) {
        public static final Duration DEFAULT_MAX_INTERVAL = Duration.ofSeconds(300);

        public RateLimitedBackOff {
            resetHeaders = Checks.list(resetHeaders, "reset_headers");
            Checks.check(!resetHeaders.isEmpty(), "reset_headers", "[]", "at least one header");
            maxInterval = maxInterval == null ? DEFAULT_MAX_INTERVAL : maxInterval;
            Checks.check(maxInterval.compareTo(Duration.ofMillis(1)) > 0, "max_interval", maxInterval, "> 1ms");
        }
    }

    /**
     * A reset header of {@link RateLimitedBackOff}: its name, and whether its (first) value is a number of seconds
     * or the Unix time, in seconds, at which the limit resets.
     */
    public record ResetHeader(String name, boolean unixTimestamp) {
        public ResetHeader {
            Checks.check(name != null && !name.isEmpty(), "name", name, "a header name");
        }
    }

    public RetryPolicy {
        retryOn = retryOn == null ? Set.of() : Set.copyOf(retryOn);
        for (String c : retryOn) {
            Checks.check(KNOWN_CONDITIONS.contains(c), "retry_on", c, "one of " + String.join(",",
                    new java.util.TreeSet<>(KNOWN_CONDITIONS)));
        }
        Checks.check(numRetries >= 0, "num_retries", numRetries, ">= 0");
        retriableStatusCodes = retriableStatusCodes == null ? Set.of() : Set.copyOf(retriableStatusCodes);
        for (int code : retriableStatusCodes) {
            Checks.check(code >= 100 && code <= 599, "retriable_status_codes", code, "100..599");
        }
        retriableHeaders = Checks.list(retriableHeaders, "retriable_headers");
        retriableRequestHeaders = Checks.list(retriableRequestHeaders, "retriable_request_headers");
        backOffBase = backOffBase == null ? DEFAULT_BACK_OFF_BASE : backOffBase;
        Checks.check(backOffBase.compareTo(Duration.ZERO) > 0, "retry_back_off.base_interval", backOffBase, "> 0");
        // as Envoy's RetryPolicyImpl: both in whole milliseconds, less than 1 ms rounded up to 1 ms, then compared
        Checks.check(backOffMax == null || backOffMax.compareTo(Duration.ZERO) > 0, "retry_back_off.max_interval",
                backOffMax, "> 0");
        Duration base = wholeMillis(backOffBase);
        Duration max = backOffMax == null ? base.multipliedBy(10) : wholeMillis(backOffMax);
        Checks.check(max.compareTo(base) >= 0, "retry_back_off.max_interval", backOffMax,
                ">= base_interval " + backOffBase);
        backOffBase = base;
        backOffMax = max;
        retryHostPredicates = Checks.list(retryHostPredicates, "retry_host_predicate");
        for (String p : retryHostPredicates) {
            Checks.check(Set.of(PREVIOUS_HOSTS, OMIT_CANARY_HOSTS, OMIT_HOST_METADATA).contains(p),
                    "retry_host_predicate", p, PREVIOUS_HOSTS + ", " + OMIT_CANARY_HOSTS + " or " + OMIT_HOST_METADATA);
        }
        omitHostMetadata = omitHostMetadata == null ? Map.of()
                : java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(omitHostMetadata));
        Checks.check(hostSelectionRetryMaxAttempts >= 0 || retryHostPredicates.isEmpty(),
                "host_selection_retry_max_attempts", hostSelectionRetryMaxAttempts, ">= 0, 0 for the default 1");
        // as Envoy: unset (0) is its default, one more pick
        hostSelectionRetryMaxAttempts = Math.max(1, hostSelectionRetryMaxAttempts);
        Checks.check(previousPrioritiesUpdateFrequency >= 0, "retry_priority.update_frequency",
                previousPrioritiesUpdateFrequency, ">= 0, 0 for none");
    }

    /** A policy without a rate-limited back-off. */
    public RetryPolicy(Set<String> retryOn, int numRetries, Duration perTryTimeout, Duration perTryIdleTimeout,
                       Set<Integer> retriableStatusCodes, List<HeaderMatcher> retriableHeaders,
                       List<HeaderMatcher> retriableRequestHeaders, Duration backOffBase, Duration backOffMax,
                       List<String> retryHostPredicates, long hostSelectionRetryMaxAttempts,
                       int previousPrioritiesUpdateFrequency) {
        this(retryOn, numRetries, perTryTimeout, perTryIdleTimeout, retriableStatusCodes, retriableHeaders,
                retriableRequestHeaders, backOffBase, backOffMax, retryHostPredicates, hostSelectionRetryMaxAttempts,
                previousPrioritiesUpdateFrequency, null, Map.of());
    }

    /** A policy without a retry priority. */
    public RetryPolicy(Set<String> retryOn, int numRetries, Duration perTryTimeout, Duration perTryIdleTimeout,
                       Set<Integer> retriableStatusCodes, List<HeaderMatcher> retriableHeaders,
                       List<HeaderMatcher> retriableRequestHeaders, Duration backOffBase, Duration backOffMax,
                       List<String> retryHostPredicates, long hostSelectionRetryMaxAttempts) {
        this(retryOn, numRetries, perTryTimeout, perTryIdleTimeout, retriableStatusCodes, retriableHeaders,
                retriableRequestHeaders, backOffBase, backOffMax, retryHostPredicates, hostSelectionRetryMaxAttempts, 0);
    }

    /** A policy that retries on the given conditions, with Envoy's defaults otherwise. */
    public static RetryPolicy on(int numRetries, String... conditions) {
        return new RetryPolicy(Set.of(conditions), numRetries, null, null, Set.of(), List.of(), List.of(), null,
                null, List.of(), 1);
    }

    /** {@code d} in whole milliseconds (its fraction cut), at least 1 ms, as Envoy reads a back-off interval. */
    private static Duration wholeMillis(Duration d) {
        return Duration.ofMillis(Math.max(1, d.toMillis()));
    }
}
