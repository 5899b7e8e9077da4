package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;
import java.time.Duration;

/**
 * How long the downstream connections and requests of a connection manager may live: its
 * {@code common_http_protocol_options} lifetimes and its {@code drain_timeout}, as Envoy's connection manager applies
 * them. A connection drains on its idle timeout, its maximum duration or its last allowed request: an HTTP/1 answer
 * then carries {@code connection: close} and ends the connection; an HTTP/2 connection gets a GOAWAY that still takes
 * new streams, and after the drain timeout a final GOAWAY, closing once its streams are done.
 *
 * @param idleTimeout {@code idle_timeout}: a connection without an active request for this long drains; null for
 *                    Envoy's default ({@link #DEFAULT_IDLE_TIMEOUT}), {@link Duration#ZERO} for none
 * @param maxConnectionDuration {@code max_connection_duration}: a connection drains this long after it was accepted;
 *                              null (or zero) for none
 * @param maxRequestsPerConnection {@code max_requests_per_connection}: a connection drains with its request of this
 *                                 number; 0 for no limit
 * @param maxStreamDuration {@code max_stream_duration}: a request still going on this long after it began is ended
 *                          (its answer is {@code 408}, or {@code 504} once the whole request was read); null (or zero)
 *                          for none; a route's own {@code max_stream_duration} replaces it
 * @param drainTimeout {@code drain_timeout}: how long an HTTP/2 connection takes new streams after its first GOAWAY,
 *                     and an idle HTTP/1 connection stays open once it drains; null for Envoy's default
 *                     ({@link #DEFAULT_DRAIN_TIMEOUT})
 * @param requestTimeout {@code request_timeout}: a request not yet whole this long after its first byte, and not yet
 *                       answered, is answered {@code 408 request timeout}; null (or zero) for none, Envoy's default
 * @param requestHeadersTimeout {@code request_headers_timeout}: a request whose head is not whole this long after its
 *                              first byte is answered {@code 408 request header timeout} and its HTTP/1 connection
 *                              closes; null (or zero) for none, Envoy's default
 * @param delayedCloseTimeout {@code delayed_close_timeout}: once the proxy closes an HTTP/1 connection, how long it
 *                            waits for what it wrote to go out (the wait starting again whenever some did) and then
 *                            for the client to close first; null for Envoy's default
 *                            ({@link #DEFAULT_DELAYED_CLOSE_TIMEOUT}), {@link Duration#ZERO} for none: the connection
 *                            closes once its writes went out, however long that takes
 */
public record ConnectionLifetimes(Duration idleTimeout, Duration maxConnectionDuration, int maxRequestsPerConnection,
                                  Duration maxStreamDuration, Duration drainTimeout, Duration requestTimeout,
                                  Duration requestHeadersTimeout, Duration delayedCloseTimeout) {
    /** Envoy's default {@code idle_timeout} of a connection manager's connections. */
    public static final Duration DEFAULT_IDLE_TIMEOUT = Duration.ofHours(1);

    /** Envoy's default {@code drain_timeout}. */
    public static final Duration DEFAULT_DRAIN_TIMEOUT = Duration.ofSeconds(5);

    /** Envoy's default {@code delayed_close_timeout}. */
    public static final Duration DEFAULT_DELAYED_CLOSE_TIMEOUT = Duration.ofSeconds(1);

    /** Envoy's defaults: an idle timeout of one hour, no other limit. */
    public static final ConnectionLifetimes DEFAULTS = new ConnectionLifetimes(null, null, 0, null, null);

    /** Lifetimes without {@code request_timeout} and {@code request_headers_timeout}. */
    public ConnectionLifetimes(Duration idleTimeout, Duration maxConnectionDuration, int maxRequestsPerConnection,
                               Duration maxStreamDuration, Duration drainTimeout) {
        this(idleTimeout, maxConnectionDuration, maxRequestsPerConnection, maxStreamDuration, drainTimeout, null,
                null, null);
    }

    public ConnectionLifetimes {
        idleTimeout = idleTimeout == null ? DEFAULT_IDLE_TIMEOUT : idleTimeout;
        drainTimeout = drainTimeout == null ? DEFAULT_DRAIN_TIMEOUT : drainTimeout;
        maxConnectionDuration = maxConnectionDuration == null || maxConnectionDuration.isZero() ? null
                : maxConnectionDuration;
        maxStreamDuration = maxStreamDuration == null || maxStreamDuration.isZero() ? null : maxStreamDuration;
        Checks.check(!idleTimeout.isNegative(), "common_http_protocol_options.idle_timeout", idleTimeout, ">= 0s");
        Checks.check(maxConnectionDuration == null || !maxConnectionDuration.isNegative(),
                "common_http_protocol_options.max_connection_duration", maxConnectionDuration, ">= 0s");
        Checks.check(maxStreamDuration == null || !maxStreamDuration.isNegative(),
                "common_http_protocol_options.max_stream_duration", maxStreamDuration, ">= 0s");
        Checks.check(maxRequestsPerConnection >= 0, "common_http_protocol_options.max_requests_per_connection",
                maxRequestsPerConnection, ">= 0");
        Checks.check(!drainTimeout.isNegative(), "drain_timeout", drainTimeout, ">= 0s");
        requestTimeout = requestTimeout == null || requestTimeout.isZero() ? null : requestTimeout;
        requestHeadersTimeout = requestHeadersTimeout == null || requestHeadersTimeout.isZero() ? null
                : requestHeadersTimeout;
        Checks.check(requestTimeout == null || !requestTimeout.isNegative(), "request_timeout", requestTimeout,
                ">= 0s");
        Checks.check(requestHeadersTimeout == null || !requestHeadersTimeout.isNegative(), "request_headers_timeout",
                requestHeadersTimeout, ">= 0s");
        delayedCloseTimeout = delayedCloseTimeout == null ? DEFAULT_DELAYED_CLOSE_TIMEOUT : delayedCloseTimeout;
        Checks.check(!delayedCloseTimeout.isNegative(), "delayed_close_timeout", delayedCloseTimeout, ">= 0s");
    }
}
