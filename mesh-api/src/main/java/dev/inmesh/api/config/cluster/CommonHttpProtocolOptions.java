package dev.inmesh.api.config.cluster;

import dev.inmesh.api.config.Checks;
import java.time.Duration;

/**
 * The connection lifetimes of a cluster's upstream HTTP connections, from Envoy's
 * {@code common_http_protocol_options} (Istio writes them from a DestinationRule's {@code connectionPool}).
 *
 * @param idleTimeout how long a connection may carry no request before it is closed (Envoy's default 1 hour);
 *     zero: never closed for idleness
 * @param maxConnectionDuration how long after it was opened a connection takes no new request, to be closed once
 *     its requests are done; zero (the default): no limit
 * @param maxRequestsPerConnection how many requests one connection carries before it is closed (1 turns keep-alive
 *     off); 0 (the default): no limit
 * @param maxStreamDuration how long one request to the cluster's hosts (each attempt) may last from the moment it has
 *     its connection before it is reset and answered 408 or 504 (Envoy's {@code max_stream_duration} on a cluster; a
 *     trusted caller's {@code x-envoy-upstream-stream-duration-ms} replaces it); zero (the default): no limit
 */
public record CommonHttpProtocolOptions(Duration idleTimeout, Duration maxConnectionDuration,
                                        long maxRequestsPerConnection, Duration maxStreamDuration) {
    public static final Duration DEFAULT_IDLE_TIMEOUT = Duration.ofHours(1);
    public static final CommonHttpProtocolOptions DEFAULTS =
            new CommonHttpProtocolOptions(DEFAULT_IDLE_TIMEOUT, Duration.ZERO, 0);

    public CommonHttpProtocolOptions {
        idleTimeout = idleTimeout == null ? DEFAULT_IDLE_TIMEOUT : idleTimeout;
        maxConnectionDuration = maxConnectionDuration == null ? Duration.ZERO : maxConnectionDuration;
        Checks.check(!idleTimeout.isNegative(), "idle_timeout", idleTimeout, ">= 0s");
        Checks.check(!maxConnectionDuration.isNegative(), "max_connection_duration", maxConnectionDuration, ">= 0s");
        Checks.nonNegative(maxRequestsPerConnection, "max_requests_per_connection");
        maxStreamDuration = maxStreamDuration == null ? Duration.ZERO : maxStreamDuration;
        Checks.check(!maxStreamDuration.isNegative(), "max_stream_duration", maxStreamDuration, ">= 0s");
    }

    /** The lifetimes with no limit on a request's duration. */
    public CommonHttpProtocolOptions(Duration idleTimeout, Duration maxConnectionDuration,
                                     long maxRequestsPerConnection) {
        this(idleTimeout, maxConnectionDuration, maxRequestsPerConnection, null);
    }
}
