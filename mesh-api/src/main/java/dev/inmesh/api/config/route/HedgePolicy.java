package dev.inmesh.api.config.route;

/**
 * Request hedging ({@code route.v3.HedgePolicy}), on a route or its virtual host (a route's own replaces its virtual
 * host's whole, as Envoy builds it). Of its fields Envoy implements only {@code hedge_on_per_try_timeout}
 * ({@code initial_requests} and {@code additional_request_chance} are marked not implemented and never read), so
 * that is all this holds.
 *
 * @param hedgeOnPerTryTimeout whether an attempt that reaches its per-try timeout is left in flight while a retry
 *     starts beside it (the first answer that is not itself retried wins, the others are reset), rather than reset
 *     and retried; a trusted caller's {@code x-envoy-hedge-on-per-try-timeout} overrides it
 */
public record HedgePolicy(boolean hedgeOnPerTryTimeout) {
    /** Envoy's default: no hedging. */
    public static final HedgePolicy NONE = new HedgePolicy(false);
}
