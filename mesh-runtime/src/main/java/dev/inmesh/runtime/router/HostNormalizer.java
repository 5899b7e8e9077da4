package dev.inmesh.runtime.router;

import dev.inmesh.api.config.listener.HostNormalization;
import dev.inmesh.api.config.listener.HttpConnectionManager;

/**
 * A connection manager's {@link HostNormalization}, applied to a request's {@code Host} before its filters and routes
 * read it, as Envoy's connection manager normalizes the host: the trailing dot first, then the port. Shared by the
 * standalone proxy and the in-JVM handlers.
 */
public final class HostNormalizer {
    private HostNormalizer() {}

    /**
     * The {@code Host} a request to the connection manager {@code hcm} (null: none) has after its normalization, the
     * same string when nothing changes.
     *
     * @param localPort the port the request's connection arrived at (its original destination's), which
     *                  {@code strip_matching_host_port} compares
     * @param method the request's method: a {@code CONNECT}'s port is kept, the upstream needing it (Envoy takes it off
     *               for routing and puts it back for the upstream; here it stays)
     */
    public static String apply(HttpConnectionManager hcm, String host, int localPort, String method) {
        if (hcm == null || host == null) {
            return host;
        }
        HostNormalization n = hcm.hostNormalization();
        if (n.changesNothing()) {
            return host;
        }
        String out = n.stripTrailingDot() ? withoutTrailingDot(host) : host;
        if (n.stripPort() != HostNormalization.StripPort.NONE && !"CONNECT".equals(method)) {
            out = withoutPort(out, n.stripPort() == HostNormalization.StripPort.MATCHING ? localPort : -1);
        }
        return out;
    }

    /**
     * {@code host} without a dot that ends its name: {@code example.com.} and {@code example.com.:443} lose it (a dot
     * right before a colon precedes the port: an IPv6 literal never has one there).
     */
    static String withoutTrailingDot(String host) {
        int dot = host.lastIndexOf('.');
        if (dot < 0) {
            return host;
        }
        if (dot == host.length() - 1) {
            return host.substring(0, dot);
        }
        return host.charAt(dot + 1) == ':' ? host.substring(0, dot) + host.substring(dot + 1) : host;
    }

    /**
     * {@code host} without its port: the digits after the last colon that is outside an IPv6 literal's brackets, when
     * they make a number (up to 2^32 - 1, as Envoy reads it) equal to {@code port}, or any such number when
     * {@code port} is negative; else {@code host} as it is.
     */
    static String withoutPort(String host, int port) {
        int colon = host.lastIndexOf(':');
        if (colon < 0 || host.lastIndexOf(']') > colon) {
            return host;
        }
        long value = number(host, colon + 1);
        if (value < 0 || port >= 0 && value != port) {
            return host;
        }
        return host.substring(0, colon);
    }

    /** The unsigned 32-bit number {@code s} holds from {@code from} to its end (a leading {@code +} allowed), or -1. */
    private static long number(String s, int from) {
        int i = from < s.length() && s.charAt(from) == '+' ? from + 1 : from;
        if (i >= s.length()) {
            return -1;
        }
        long v = 0;
        for (; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < '0' || c > '9') {
                return -1;
            }
            v = v * 10 + (c - '0');
            if (v > 0xFFFF_FFFFL) {
                return -1;
            }
        }
        return v;
    }
}
