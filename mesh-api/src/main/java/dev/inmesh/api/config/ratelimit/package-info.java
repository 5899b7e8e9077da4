/**
 * Global rate limiting, as Envoy's rate limit HTTP filter ({@code envoy.filters.http.ratelimit}, {@code RateLimit})
 * configures it and as Istio's "Enabling Rate Limits using Envoy" task adds it with an EnvoyFilter:
 * {@link dev.inmesh.api.config.ratelimit.GlobalRateLimit}, the rate limit service it asks (a gRPC
 * {@code envoy.service.ratelimit.v3.RateLimitService} reached through a cluster) and what it does with the answer.
 * The descriptors it sends come from the virtual hosts' and routes' {@code rate_limits}
 * ({@link dev.inmesh.api.config.route.RateLimit}).
 */
package dev.inmesh.api.config.ratelimit;
