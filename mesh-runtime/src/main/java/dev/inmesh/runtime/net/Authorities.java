package dev.inmesh.runtime.net;

import io.vertx.core.net.HostAndPort;

/**
 * A request's authority ({@code Host} or {@code :authority}) read as a host and a port, for every place that parses
 * one: Vert.x's {@link HostAndPort#parseAuthority} where it can, and where it fails on a valid authority, our own
 * reading of the same grammar.
 *
 * <p>Vert.x 5.0.7's parser reads a percent-encoding's digits at the wrong index ({@code HostAndPortImpl.parseRegName}
 * reads {@code s.charAt(c + 1)}, {@code c} the {@code '%'}): on a registered name with one ({@code a%41b}, RFC 3986's
 * {@code pct-encoded}), which Envoy takes as any other host, it throws {@link StringIndexOutOfBoundsException} or,
 * in a longer authority, refuses it: a request carrying one ended in a 500. Such a name is taken here as it is,
 * undecoded, as Envoy forwards and matches it.
 */
public final class Authorities {
    private Authorities() {}

    /**
     * The host and port of {@code authority} (port -1 when it has none), or null when it is null, empty or not an
     * authority.
     */
    public static HostAndPort parse(String authority) {
        if (authority == null || authority.isEmpty()) {
            return null;
        }
        HostAndPort parsed;
        try {
            parsed = HostAndPort.parseAuthority(authority, -1);
        } catch (RuntimeException vertxFailed) {
            parsed = null;
        }
        return parsed != null || authority.indexOf('%') < 0 ? parsed : percentEncodedName(authority);
    }

    /**
     * An authority whose host is a registered name (unreserved characters, sub-delimiters and percent-encodings, as
     * RFC 3986 3.2.2 writes it), with an optional port of digits; null for anything else.
     */
    static HostAndPort percentEncodedName(String authority) {
        int colon = authority.lastIndexOf(':');
        int end = colon < 0 ? authority.length() : colon;
        int port = -1;
        if (colon >= 0) {
            if (colon == authority.length() - 1 || authority.length() - colon > 6) {
                return null;
            }
            port = 0;
            for (int i = colon + 1; i < authority.length(); i++) {
                char c = authority.charAt(i);
                if (c < '0' || c > '9') {
                    return null;
                }
                port = port * 10 + (c - '0');
            }
            if (port > 65535) {
                return null;
            }
        }
        if (end == 0) {
            return null;
        }
        for (int i = 0; i < end; i++) {
            char c = authority.charAt(i);
            if (c == '%') {
                if (i + 2 >= end || IpLiterals.hex(authority.charAt(i + 1)) < 0
                        || IpLiterals.hex(authority.charAt(i + 2)) < 0) {
                    return null;
                }
                i += 2;
            } else if (!(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
                    || "-._~!$&'()*+,;=".indexOf(c) >= 0)) {
                return null;
            }
        }
        return HostAndPort.create(authority.substring(0, end), port);
    }
}
