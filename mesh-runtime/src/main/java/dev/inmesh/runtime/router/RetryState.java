package dev.inmesh.runtime.router;

import dev.inmesh.api.config.route.HeaderMatcher;
import dev.inmesh.api.config.route.RetryPolicy;
import dev.inmesh.runtime.net.AbslText;
import dev.inmesh.runtime.upstream.Host;
import io.vertx.core.MultiMap;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.random.RandomGenerator;

/**
 * The retry state of one request under a {@link RetryPolicy}, with Envoy's rules: which responses and failures are
 * retriable, how many retries remain, and the fully jittered exponential back-off (the n-th retry waits a random time
 * in [0, min(base x 2^(n-1), max))).
 */
final class RetryState {
    /**
     * Why an attempt ended without a usable response: {@code RESET} is the connection's end (Envoy's connection
     * termination), {@code REMOTE_RESET} and {@code REFUSED_STREAM} the upstream's reset of the stream alone.
     */
    enum Failure {
        CONNECT_FAILURE, RESET, REMOTE_RESET, REFUSED_STREAM, PER_TRY_TIMEOUT, PER_TRY_IDLE_TIMEOUT,
        MAX_STREAM_DURATION, PROTOCOL_ERROR
    }

    /** What to do after an attempt. */
    enum Decision { RETRY, NO_RETRY, LIMIT_EXCEEDED }

    private static final List<String> GRPC_CONDITIONS = List.of("cancelled", "deadline-exceeded", "internal",
            "resource-exhausted", "unavailable");
    private static final int[] GRPC_CODES = {1, 4, 13, 8, 14};

    /**
     * No retries: nothing is retriable, so it never changes and can be shared (its back-off is never asked for).
     */
    static final RetryState NONE = new RetryState(null, 0, null, null, null);

    private final RetryPolicy policy;
    private final Set<String> on;
    private final Set<Integer> statusCodes;
    private final Conditions conditions;
    private final int maxRetries;
    private final RandomGenerator random;
    private int retriesUsed;
    /** How many retries waited the exponential back-off: its ceiling doubles with each, as Envoy's strategy. */
    private int exponentialBackOffs;
    /**
     * The interval, in milliseconds, that the last retried response's reset header set for the retry it asked for
     * ({@code rate_limited_retry_back_off}), or -1: taken by that retry's back-off alone, as Envoy's strategy.
     */
    private long rateLimitedInterval = -1;
    /**
     * Whether an attempt of the request that had been sent ended without a response (a reset, a timeout):
     * reset-before-request no longer applies, as Envoy's router keeps it (it does not look at attempts answered).
     */
    private boolean requestSent;

    /**
     * @param maxRetriesOverride a trusted caller's {@code x-envoy-max-retries}, or -1
     * @param onOverride a trusted caller's {@code x-envoy-retry-on} conditions, merged with the policy's, or null
     * @param extraStatusCodes a trusted caller's {@code x-envoy-retriable-status-codes}, added to the policy's, or
     *     null
     */
    RetryState(RetryPolicy policy, int maxRetriesOverride, Set<String> onOverride, Set<Integer> extraStatusCodes,
               RandomGenerator random) {
        this(policy, Conditions.of(policy), maxRetriesOverride, onOverride, extraStatusCodes, random);
    }

    /** As above, with the policy's header conditions already compiled (once per route table, not per request). */
    RetryState(RetryPolicy policy, Conditions conditions, int maxRetriesOverride, Set<String> onOverride,
               Set<Integer> extraStatusCodes, RandomGenerator random) {
        this.policy = policy;
        this.conditions = conditions;
        Set<Integer> routeCodes = policy == null ? Set.of() : policy.retriableStatusCodes();
        if (extraStatusCodes == null || extraStatusCodes.isEmpty()) {
            this.statusCodes = routeCodes;
        } else {
            Set<Integer> merged = new HashSet<>(routeCodes);
            merged.addAll(extraStatusCodes);
            this.statusCodes = merged;
        }
        Set<String> routeOn = policy == null ? Set.of() : policy.retryOn();
        if (onOverride == null || onOverride.isEmpty()) {
            this.on = routeOn;
        } else {
            // Envoy merges the caller's x-envoy-retry-on with the route's retry_on.
            Set<String> merged = new HashSet<>(routeOn);
            merged.addAll(onOverride);
            this.on = merged;
        }
        // Without a route policy, Envoy's default policy still allows one retry (for x-envoy-retry-on).
        this.maxRetries = maxRetriesOverride >= 0 ? maxRetriesOverride : policy == null ? 1 : policy.numRetries();
        this.random = random;
    }

    /** Whether a {@code retry_on} condition is one of gRPC's (those {@code x-envoy-retry-grpc-on} takes). */
    static boolean isGrpcCondition(String condition) {
        return GRPC_CONDITIONS.contains(condition);
    }

    /**
     * Whether the request has a retry state at all (a policy with conditions, retriable_request_headers matched), as
     * Envoy keeps one: with no retry allowed, a retriable outcome then has run out of retries (URX).
     */
    boolean enabledFor(RouterRequest req) {
        if (on.isEmpty()) {
            return false;
        }
        if (conditions.requestHeaders().isEmpty()) {
            return true;
        }
        for (HeaderMatchers.Compiled m : conditions.requestHeaders()) {
            if (m.matches(req::header)) {
                return true;
            }
        }
        return false;
    }

    /** Whether a response with these headers would be retried under the policy. */
    boolean retriableResponse(int status, MultiMap headers) {
        // A rate-limited answer (from an Envoy upstream) is retried under envoy-ratelimited only, whatever its
        // status; the other conditions do not look at it. (x-envoy-overloaded, on the other hand, is no veto: a 503
        // that carries it is retried as any other 503.)
        if (headers.contains(HeaderNames.X_ENVOY_RATELIMITED)) {
            return on.contains("envoy-ratelimited");
        }
        if (on.contains("5xx") && status >= 500) {
            return true;
        }
        if (on.contains("gateway-error") && status >= 502 && status <= 504) {
            return true;
        }
        if (on.contains("retriable-4xx") && status == 409) {
            return true;
        }
        if (on.contains("retriable-status-codes") && statusCodes.contains(status)) {
            return true;
        }
        if (on.contains("retriable-headers") && !conditions.responseHeaders().isEmpty()) {
            for (HeaderMatchers.Compiled m : conditions.responseHeaders()) {
                if (m.matches(name -> HeaderValues.joined(headers, name))) {
                    return true;
                }
            }
        }
        Integer grpc = Grpc.parseStatus(headers.get(HeaderNames.GRPC_STATUS)); // as Envoy's getGrpcStatus reads it
        if (grpc != null) {
            for (int i = 0; i < GRPC_CONDITIONS.size(); i++) {
                if (on.contains(GRPC_CONDITIONS.get(i)) && grpc == GRPC_CODES[i]) {
                    return true;
                }
            }
        }
        return false;
    }

    /** Whether a failure without a response would be retried under the policy. */
    boolean retriableFailure(Failure f) {
        return switch (f) {
            // as Envoy's router: reset-before-request only while no sent attempt of the request was reset
            case CONNECT_FAILURE -> on.contains("connect-failure") || on.contains("5xx")
                    || on.contains("gateway-error") || on.contains("reset")
                    || on.contains("reset-before-request") && !requestSent;
            // the router's own reset at the upstream's max_stream_duration is a reset as any other (Envoy's LocalReset)
            case RESET, REMOTE_RESET, MAX_STREAM_DURATION, PROTOCOL_ERROR -> on.contains("5xx")
                    || on.contains("gateway-error") || on.contains("reset");
            case REFUSED_STREAM -> on.contains("refused-stream") || on.contains("5xx") || on.contains("gateway-error")
                    || on.contains("reset");
            case PER_TRY_TIMEOUT, PER_TRY_IDLE_TIMEOUT -> on.contains("5xx") || on.contains("gateway-error") || on.contains("reset");
        };
    }

    /** A sent attempt ended without a response (the shared {@link #NONE} keeps nothing). */
    void resetAfterSent() {
        if (this != NONE) {
            requestSent = true;
        }
    }

    /** After a retriable outcome: retry, or not because the limit is reached. */
    Decision next(boolean retriable) {
        if (!retriable) {
            return Decision.NO_RETRY;
        }
        if (retriesUsed >= maxRetries) {
            return Decision.LIMIT_EXCEEDED;
        }
        retriesUsed++;
        return Decision.RETRY;
    }

    int retriesUsed() {
        return retriesUsed;
    }

    /**
     * Reads a response that the policy retries for its {@code rate_limited_retry_back_off} reset headers, as Envoy's
     * router does before it decides: the first header, in order, whose first value is an interval of at most
     * {@code max_interval} (a whole number of seconds; or, for {@code UNIX_TIMESTAMP}, a Unix time in seconds not
     * before {@code nowSeconds}, the interval until then) sets the back-off of the retry, if there is one, when it is
     * longer than 1 ms.
     */
    void readResetHeaders(MultiMap headers, long nowSeconds) {
        RetryPolicy.RateLimitedBackOff b = policy == null ? null : policy.rateLimitedBackOff();
        if (b == null) {
            return;
        }
        for (RetryPolicy.ResetHeader h : b.resetHeaders()) {
            String value = headers.get(h.name());
            long seconds = value == null ? -1 : unsigned(value);
            if (seconds < 0 || h.unixTimestamp() && seconds < nowSeconds) {
                continue;
            }
            long interval = h.unixTimestamp() ? seconds - nowSeconds : seconds;
            long millis = interval > Long.MAX_VALUE / 1000 ? Long.MAX_VALUE : interval * 1000;
            if (millis <= b.maxInterval().toMillis()) {
                if (millis > 1) {
                    rateLimitedInterval = millis;
                }
                return;
            }
        }
    }

    /**
     * A reset header's value as Envoy reads it into a uint64 ({@code absl::SimpleAtoi}): -1 when it is no number
     * ({@link AbslText#unsigned}) or past a long, which is past any {@code max_interval} anyway.
     */
    static long unsigned(String s) {
        return AbslText.unsigned(s, Long.MAX_VALUE);
    }

    /**
     * Whether the back-off of the retry just granted by {@link #next} is the interval a reset header set
     * ({@link #readResetHeaders}); ask before {@link #backOffMillis}, which uses it up.
     */
    boolean rateLimitedBackOff() {
        return rateLimitedInterval > 1;
    }

    /**
     * The back-off before the retry just granted by {@link #next}: with an interval a reset header set, random in
     * [interval, 1.5 x interval), as Envoy's jittered lower-bound strategy, for this retry only; else, for the n-th
     * retry that waits the exponential back-off, random in [0, min(base x 2^(n-1), max)).
     */
    long backOffMillis() {
        if (rateLimitedInterval > 1) {
            long min = rateLimitedInterval;
            rateLimitedInterval = -1;
            return min + random.nextLong(min >> 1);
        }
        long base = policy == null ? RetryPolicy.DEFAULT_BACK_OFF_BASE.toMillis() : policy.backOffBase().toMillis();
        long max = policy == null ? base * 10 : policy.backOffMax().toMillis();
        int n = ++exponentialBackOffs;
        long ceiling = n >= 31 ? max : Math.min(max, base << (n - 1));
        return ceiling <= 0 ? 0 : random.nextLong(ceiling);
    }

    boolean usesPreviousHosts() {
        return policy != null && policy.retryHostPredicates().contains(RetryPolicy.PREVIOUS_HOSTS);
    }

    /** Whether the policy has a retry host predicate: a retry's host selection then consults {@link #rejects}. */
    boolean hasHostPredicates() {
        return policy != null && !policy.retryHostPredicates().isEmpty();
    }

    /**
     * Whether a retry's host selection passes over {@code host}, as Envoy's retry host predicates (any one is
     * enough): {@code previous_hosts}, one of {@code previous}; {@code omit_canary_hosts}, a canary
     * ({@code envoy.lb} metadata {@code canary: true}); {@code omit_host_metadata}, one whose {@code envoy.lb}
     * metadata has each of the predicate's labels (a list value holding the label's value counts, as Envoy matches
     * lists as any).
     */
    boolean rejects(Host host, Set<Host> previous) {
        for (String p : policy.retryHostPredicates()) {
            boolean reject = switch (p) {
                case RetryPolicy.PREVIOUS_HOSTS -> previous != null && previous.contains(host);
                case RetryPolicy.OMIT_CANARY_HOSTS -> Boolean.TRUE.equals(host.metadata().get("envoy.lb", "canary"));
                case RetryPolicy.OMIT_HOST_METADATA -> hasLabels(host, policy.omitHostMetadata());
                default -> false;
            };
            if (reject) {
                return true;
            }
        }
        return false;
    }

    private static boolean hasLabels(Host host, Map<String, Object> labels) {
        Map<String, Object> lb = host.metadata().filterMetadata().get("envoy.lb");
        if (labels.isEmpty() || lb == null) {
            return false;
        }
        for (Map.Entry<String, Object> label : labels.entrySet()) {
            Object value = lb.get(label.getKey());
            boolean match = value != null && (value.equals(label.getValue())
                    || value instanceof List<?> list && list.contains(label.getValue()));
            if (!match) {
                return false;
            }
        }
        return true;
    }

    /** The update frequency of the policy's {@code previous_priorities} retry priority; 0 for none. */
    int previousPrioritiesUpdateFrequency() {
        return policy == null ? 0 : policy.previousPrioritiesUpdateFrequency();
    }

    int hostSelectionAttempts() {
        return policy == null ? 1 : (int) Math.min(Integer.MAX_VALUE, policy.hostSelectionRetryMaxAttempts() + 1);
    }

    /** A retry policy's {@code retriable_headers} and {@code retriable_request_headers}, compiled. */
    record Conditions(List<HeaderMatchers.Compiled> responseHeaders, List<HeaderMatchers.Compiled> requestHeaders) {
        static final Conditions NONE = new Conditions(List.of(), List.of());

        static Conditions of(RetryPolicy policy) {
            if (policy == null || policy.retriableHeaders().isEmpty() && policy.retriableRequestHeaders().isEmpty()) {
                return NONE;
            }
            return new Conditions(compileEach(policy.retriableHeaders()),
                    compileEach(policy.retriableRequestHeaders()));
        }

        /**
         * These conditions with a response header matcher added for each name (a trusted caller's
         * {@code x-envoy-retriable-header-names}: a header of that name, whatever its value, is a match).
         */
        Conditions withResponseHeaderNames(List<String> names) {
            if (names == null || names.isEmpty()) {
                return this;
            }
            List<HeaderMatchers.Compiled> response = new ArrayList<>(responseHeaders);
            for (String name : names) {
                response.add(HeaderMatchers.compile(new HeaderMatcher(name, new HeaderMatcher.Present(true), false,
                        false)));
            }
            return new Conditions(List.copyOf(response), requestHeaders);
        }

        private static List<HeaderMatchers.Compiled> compileEach(List<HeaderMatcher> ms) {
            List<HeaderMatchers.Compiled> out = new ArrayList<>(ms.size());
            for (HeaderMatcher m : ms) {
                out.add(HeaderMatchers.compile(m));
            }
            return List.copyOf(out);
        }
    }
}
