package dev.inmesh.runtime.stats;

import java.util.Set;
import java.util.stream.Collectors;

/**
 * Envoy's response flags, with the short names that access logs and Istio's {@code response_flags} label use.
 * Current Envoy prints a stream's flags in the order they were set. For a request the constants are in that order
 * ({@link StreamInfo} keeps them so): the router sets the retry outcome (URX, or UO when the retry budget
 * overflowed) before the failure that ended the last attempt (UF, UT, UC, UR), so a request whose retries ran out on
 * connect failures logs {@code URX,UF}. tcp_proxy sets them the other way round, UF for each failed connect and then
 * URX as it gives up (or UO when the breaker refuses the next attempt): {@link TcpStreamInfo} keeps the order the
 * connection set them, {@code UF,URX}.
 */
public enum ResponseFlag {
    /** The fault filter delayed the request; set before the router runs. */
    DELAY_INJECTED("DI"),
    /** The fault filter aborted the request with its own answer. */
    FAULT_INJECTED("FI"),
    /** The local or global rate limit filter refused the request (429 by default). */
    RATE_LIMITED("RL"),
    /** No route for the request (404). */
    NO_ROUTE_FOUND("NR"),
    /** No healthy upstream host (503). */
    NO_HEALTHY_UPSTREAM("UH"),
    /** Retries exhausted: the last upstream response was returned. */
    UPSTREAM_RETRY_LIMIT_EXCEEDED("URX"),
    /** Upstream overflow: a circuit breaker was open (503). */
    UPSTREAM_OVERFLOW("UO"),
    /** Upstream connection failure (503). */
    UPSTREAM_CONNECTION_FAILURE("UF"),
    /** Upstream request timeout (504). */
    UPSTREAM_REQUEST_TIMEOUT("UT"),
    /** An upstream request reached its cluster's (or the caller's) {@code max_stream_duration} (408 or 504). */
    UPSTREAM_MAX_STREAM_DURATION_REACHED("UMSDR"),
    /** The downstream connection ended before the response. */
    DOWNSTREAM_CONNECTION_TERMINATION("DC"),
    /** The caller reset its HTTP/2 stream (RST_STREAM) before the response ended. */
    DOWNSTREAM_REMOTE_RESET("DR"),
    /** The upstream connection ended before the response. */
    UPSTREAM_CONNECTION_TERMINATION("UC"),
    /** Upstream remote reset. */
    UPSTREAM_REMOTE_RESET("UR"),
    /** The upstream's answer was not valid HTTP (503). */
    UPSTREAM_PROTOCOL_ERROR("UPE"),
    /** The route's cluster does not exist (503). */
    NO_CLUSTER_FOUND("NC"),
    /** A control header the router filter's {@code strict_check_headers} names had an invalid value (400). */
    INVALID_ENVOY_REQUEST_HEADERS("IH"),
    /** The request was not valid (400). */
    DOWNSTREAM_PROTOCOL_ERROR("DPE"),
    /** Stream idle timeout. */
    STREAM_IDLE_TIMEOUT("SI"),
    /** The external authorization service denied the request, or could not decide it (ext_authz). */
    UNAUTHORIZED_EXTERNAL_SERVICE("UAEX"),
    /** The rate limit service failed and the global rate limit filter refused the request (failure_mode_deny). */
    RATE_LIMIT_SERVICE_ERROR("RLSE"),
    /** A tcp_proxy connection reached its {@code max_downstream_connection_duration} and was closed. */
    DURATION_TIMEOUT("DT");

    private final String code;

    ResponseFlag(String code) {
        this.code = code;
    }

    /** The short name, such as {@code UO}. */
    public String code() {
        return code;
    }

    /**
     * Envoy's long name of the flag ({@code %RESPONSE_FLAGS_LONG%}), such as {@code NoRouteFound}: the constant's
     * name in camel case, as Envoy spells each.
     */
    public String longName() {
        StringBuilder b = new StringBuilder();
        for (String w : name().split("_")) {
            b.append(w.charAt(0)).append(w.substring(1).toLowerCase(java.util.Locale.ROOT));
        }
        return b.toString();
    }

    /**
     * An unmodifiable copy that keeps the order of {@code flags} (an EnumSet's is the constants' order), the order
     * they are printed in; empty for null.
     */
    public static Set<ResponseFlag> copyInOrder(Set<ResponseFlag> flags) {
        if (flags == null || flags.isEmpty()) {
            return Set.of();
        }
        // a request's flags come as an EnumSet (the constants' order), whose copy is a long
        return java.util.Collections.unmodifiableSet(flags instanceof java.util.EnumSet<ResponseFlag> e ? e.clone()
                : new java.util.LinkedHashSet<>(flags));
    }

    /** Long names as Envoy prints them: joined by commas in the set's order, or {@code -} when none. */
    public static String formatLong(Set<ResponseFlag> flags) {
        if (flags == null || flags.isEmpty()) {
            return "-";
        }
        return flags.stream().map(ResponseFlag::longName).collect(Collectors.joining(","));
    }

    /**
     * Flags as Envoy prints them: short names joined by commas in the set's order (see the class comment), or
     * {@code -} when none.
     */
    public static String format(Set<ResponseFlag> flags) {
        if (flags == null || flags.isEmpty()) {
            return "-";
        }
        return flags.stream().map(ResponseFlag::code).collect(Collectors.joining(","));
    }
}
