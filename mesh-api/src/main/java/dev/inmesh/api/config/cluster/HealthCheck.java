package dev.inmesh.api.config.cluster;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.HeaderValueOption;
import java.time.Duration;
import java.util.List;

/**
 * A cluster's active health check, as Envoy's {@code config.core.v3.HealthCheck}: each host is checked on its own
 * schedule, and a host that fails its checks takes no traffic (outside panic) until it passes them again.
 *
 * <p>A check that fails for the network (no connection, a reset, the {@code timeout}) counts toward
 * {@code unhealthyThreshold}; an HTTP answer outside the expected and retriable statuses, or a gRPC answer other than
 * {@code SERVING}, marks the host unhealthy at once, as in Envoy. A host that has never been checked is unhealthy
 * until its first check, whose success makes it healthy at once; after that, {@code healthyThreshold} successes in a
 * row do.
 *
 * @param timeout how long a check may take before it fails as a network failure (required, {@code > 0}; taken in
 *     whole milliseconds, and waited at least 1 ms)
 * @param interval between checks of a healthy host while the cluster has had traffic (required, {@code > 0}; taken
 *     in whole milliseconds, each wait at least 1 ms)
 * @param intervalJitter an upper bound (exclusive) of a random delay added to each interval; zero for none
 * @param intervalJitterPercent an upper bound (exclusive), in percent of the interval, of another random delay
 * @param initialJitter an upper bound (exclusive) of a random delay before a host's first check; zero: at once
 * @param unhealthyThreshold network or retriable failures in a row that mark a healthy host unhealthy; 0, as in
 *     Envoy (whose count never equals it), none do: only the failures that fail a host at once fail it
 * @param healthyThreshold successes in a row that mark an unhealthy host healthy (the first check excepted); 0, as in
 *     Envoy, none do: only a host's first check makes it healthy, and a host failed after it never returns
 * @param noTrafficInterval between checks while the cluster has had no traffic (Envoy's default 60 s)
 * @param noTrafficHealthyInterval the same for a healthy host (defaults to {@code noTrafficInterval})
 * @param unhealthyInterval between checks of an unhealthy host (defaults to {@code interval})
 * @param unhealthyEdgeInterval after a failure that has not yet marked a healthy host unhealthy (defaults to
 *     {@code unhealthyInterval})
 * @param healthyEdgeInterval after a success that has not yet marked an unhealthy host healthy (defaults to
 *     {@code interval})
 * @param reuseConnection whether a check's connection is kept for the next (Envoy's default true)
 * @param checker what a check sends and expects
 */
public record HealthCheck(Duration timeout, Duration interval, Duration intervalJitter, int intervalJitterPercent,
                          Duration initialJitter, int unhealthyThreshold, int healthyThreshold,
                          Duration noTrafficInterval, Duration noTrafficHealthyInterval, Duration unhealthyInterval,
                          Duration unhealthyEdgeInterval, Duration healthyEdgeInterval, boolean reuseConnection,
                          Checker checker) {

    public static final Duration DEFAULT_NO_TRAFFIC_INTERVAL = Duration.ofSeconds(60);

    public HealthCheck {
        Checks.check(timeout != null && isPositive(timeout), "timeout", timeout, "> 0s");
        Checks.check(interval != null && isPositive(interval), "interval", interval, "> 0s");
        intervalJitter = nonNegative(intervalJitter, Duration.ZERO, "interval_jitter");
        initialJitter = nonNegative(initialJitter, Duration.ZERO, "initial_jitter");
        Checks.check(intervalJitterPercent >= 0, "interval_jitter_percent", intervalJitterPercent, ">= 0");
        Checks.check(unhealthyThreshold >= 0, "unhealthy_threshold", unhealthyThreshold, ">= 0");
        Checks.check(healthyThreshold >= 0, "healthy_threshold", healthyThreshold, ">= 0");
        noTrafficInterval = positive(noTrafficInterval, DEFAULT_NO_TRAFFIC_INTERVAL, "no_traffic_interval");
        noTrafficHealthyInterval = positive(noTrafficHealthyInterval, noTrafficInterval,
                "no_traffic_healthy_interval");
        unhealthyInterval = positive(unhealthyInterval, interval, "unhealthy_interval");
        unhealthyEdgeInterval = positive(unhealthyEdgeInterval, unhealthyInterval, "unhealthy_edge_interval");
        healthyEdgeInterval = positive(healthyEdgeInterval, interval, "healthy_edge_interval");
        Checks.nonNull(checker, "health_checker");
    }

    private static Duration nonNegative(Duration d, Duration otherwise, String field) {
        Duration v = d == null ? otherwise : d;
        Checks.check(!v.isNegative(), field, v, ">= 0s");
        return v;
    }

    private static Duration positive(Duration d, Duration otherwise, String field) {
        Duration v = d == null ? otherwise : d;
        Checks.check(isPositive(v), field, v, "> 0s");
        return v;
    }

    /**
     * As Envoy's validation ({@code gt {}}): any duration above zero, a sub-millisecond one too; Envoy reads them as
     * whole milliseconds (so such a one as 0 ms) and never waits less than 1 ms between checks.
     */
    private static boolean isPositive(Duration d) {
        return !d.isNegative() && !d.isZero();
    }

    /** What a check does: one of Envoy's health checkers. */
    public sealed interface Checker permits Http, Tcp, Grpc {}

    /**
     * Envoy's {@code http_health_check}: a request to each host, healthy when the answer's status is expected.
     *
     * @param host the request's {@code :authority}, unless the endpoint's {@code health_check_config} names a
     *     hostname; the cluster's name when empty, as Envoy's
     * @param path the request's path (required)
     * @param method the request's method (Envoy's default GET)
     * @param requestHeadersToAdd headers added to each check's request
     * @param requestHeadersToRemove headers removed from it
     * @param expectedStatuses the healthy statuses, as ranges {@code [start, end)}; Envoy's default {@code [200, 201)}
     * @param retriableStatuses unexpected statuses that count toward {@code unhealthyThreshold} rather than mark the
     *     host unhealthy at once
     * @param http2 whether the checks speak HTTP/2 with prior knowledge ({@code codec_client_type: HTTP2}) rather than
     *     HTTP/1.1
     * @param receive Envoy's {@code receive}: blocks the answer's body must hold, in this order, within its first
     *     {@code responseBufferSize} bytes, besides an expected status; a body that lacks one fails the host at once,
     *     whatever the status (retriable or not); empty: the status alone decides
     * @param responseBufferSize how much of the body {@code receive} is looked for in ({@code response_buffer_size},
     *     Envoy's default 1024); 0 for the whole body
     */
    public record Http(String host, String path, String method, List<HeaderValueOption> requestHeadersToAdd,
                       List<String> requestHeadersToRemove, List<StatusRange> expectedStatuses,
                       List<StatusRange> retriableStatuses, boolean http2, List<Payload> receive,
                       long responseBufferSize) implements Checker {
        /** Envoy's default {@code response_buffer_size}. */
        public static final long DEFAULT_RESPONSE_BUFFER_SIZE = 1024;

        /** A check whose answer's status alone decides (no {@code receive}). */
        public Http(String host, String path, String method, List<HeaderValueOption> requestHeadersToAdd,
                    List<String> requestHeadersToRemove, List<StatusRange> expectedStatuses,
                    List<StatusRange> retriableStatuses, boolean http2) {
            this(host, path, method, requestHeadersToAdd, requestHeadersToRemove, expectedStatuses, retriableStatuses,
                    http2, List.of(), DEFAULT_RESPONSE_BUFFER_SIZE);
        }

        public Http {
            receive = receive == null ? List.of() : List.copyOf(receive);
            Checks.check(responseBufferSize >= 0, "response_buffer_size", responseBufferSize, ">= 0");
            long expected = receive.stream().mapToLong(Payload::length).sum();
            // as Envoy refuses it: blocks that cannot fit the part of the body they are looked for in
            Checks.check(responseBufferSize == 0 || expected <= responseBufferSize, "receive", expected + " bytes",
                    "at most response_buffer_size, " + responseBufferSize);
            host = host == null ? "" : host;
            Checks.nonEmpty(path, "path");
            method = method == null || method.isEmpty() ? "GET" : method;
            requestHeadersToAdd = requestHeadersToAdd == null ? List.of() : List.copyOf(requestHeadersToAdd);
            requestHeadersToRemove = requestHeadersToRemove == null ? List.of()
                    : List.copyOf(requestHeadersToRemove);
            expectedStatuses = expectedStatuses == null || expectedStatuses.isEmpty()
                    ? List.of(new StatusRange(200, 201)) : List.copyOf(expectedStatuses);
            retriableStatuses = retriableStatuses == null ? List.of() : List.copyOf(retriableStatuses);
        }

        /** Whether {@code status} is in one of {@code ranges}. */
        public static boolean in(List<StatusRange> ranges, int status) {
            for (StatusRange r : ranges) {
                if (status >= r.start() && status < r.end()) {
                    return true;
                }
            }
            return false;
        }
    }

    /**
     * Envoy's {@code tcp_health_check}: a connection to each host, on which {@code send} is written; healthy when the
     * bytes that come back hold every {@code receive} block, in order (not necessarily next to each other), before
     * the timeout; with no {@code receive}, when the connection is accepted (it is then closed at once).
     *
     * @param send what each check writes, or null for nothing
     * @param receive the blocks the answer must hold; empty for a connect-only check
     */
    public record Tcp(Payload send, List<Payload> receive) implements Checker {
        /** A connect-only check. */
        public Tcp() {
            this(null, List.of());
        }

        public Tcp {
            receive = receive == null ? List.of() : List.copyOf(receive);
        }
    }

    /**
     * Envoy's health check {@code Payload}: bytes to send or to find, held as lower-case hex ({@code text} is hex
     * already; {@code binary} is encoded) so that two equal payloads are equal records.
     *
     * @param hex the bytes, two hex digits each (an empty {@code binary} payload is no bytes, which Envoy takes as a
     *     block found anywhere)
     */
    public record Payload(String hex) {
        public Payload {
            Checks.check(hex != null && isHex(hex), "text", hex, "a hex string of whole bytes");
            hex = hex.toLowerCase(java.util.Locale.ROOT);
        }

        /** Whether {@code s} is ASCII hex digits, two a byte (empty: no bytes). */
        public static boolean isHex(String s) {
            if (s.length() % 2 != 0) {
                return false;
            }
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                if (!(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F')) {
                    return false;
                }
            }
            return true;
        }

        /** How many bytes it holds. */
        public int length() {
            return hex.length() / 2;
        }

        /** The payload of these bytes. */
        public static Payload of(byte[] bytes) {
            return new Payload(java.util.HexFormat.of().formatHex(bytes));
        }

        /** Its bytes. */
        public byte[] bytes() {
            return java.util.HexFormat.of().parseHex(hex);
        }
    }

    /**
     * Envoy's {@code grpc_health_check}: a unary {@code grpc.health.v1.Health/Check} call over HTTP/2 to each host,
     * healthy when it answers {@code grpc-status: 0} with a {@code HealthCheckResponse} whose status is
     * {@code SERVING}. As Envoy, only on a cluster with HTTP/2 to its hosts.
     *
     * @param serviceName the {@code HealthCheckRequest}'s {@code service}; empty (the server's overall health) when
     *     unset
     * @param authority the call's {@code :authority}, unless the endpoint's {@code health_check_config} names a
     *     hostname; the cluster's name when empty, as Envoy's
     * @param initialMetadata headers added to each call, as a route's {@code request_headers_to_add}
     */
    public record Grpc(String serviceName, String authority, List<HeaderValueOption> initialMetadata)
            implements Checker {
        public Grpc {
            serviceName = serviceName == null ? "" : serviceName;
            authority = authority == null ? "" : authority;
            initialMetadata = initialMetadata == null ? List.of() : List.copyOf(initialMetadata);
        }
    }

    /** HTTP statuses {@code [start, end)}, within {@code [100, 600]} as Envoy requires. */
    public record StatusRange(int start, int end) {
        public StatusRange {
            Checks.check(start >= 100, "start", start, ">= 100");
            Checks.check(end <= 600, "end", end, "<= 600");
            Checks.check(start < end, "end", end, "> start (" + start + ")");
        }
    }
}
