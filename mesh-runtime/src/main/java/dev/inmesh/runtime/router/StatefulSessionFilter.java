package dev.inmesh.runtime.router;

import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.route.Route;
import dev.inmesh.api.config.route.StatefulSession;
import dev.inmesh.api.config.route.StatefulSessionPerRoute;
import dev.inmesh.api.config.route.VirtualHost;
import io.vertx.core.MultiMap;
import io.vertx.core.http.HttpHeaders;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.List;

/**
 * Envoy's stateful session filter ({@code envoy.filters.http.stateful_session}) as the router runs it: before the
 * host is picked it reads the host a request's cookie or header names, which the cluster then takes in place of its
 * load balancer's pick (when it has that host and its {@code override_host_status} admits the host's health; under
 * {@code strict}, a request naming a host that cannot take it gets 503); on the response it names the host that
 * answered, when the request named another one or none.
 *
 * <p>The values are Envoy's, so that a session started through Inmesh carries on through an Envoy sidecar and back:
 * a cookie holds the base64 of a protobuf {@code Cookie} message ({@code address = 1}, the host as
 * {@code ip:port}; {@code expires = 2}, seconds, only when the cookie has a ttl), and a plain base64 {@code ip:port}
 * (Envoy's older format) is still read; a header holds the base64 of {@code ip:port}. The {@code Set-Cookie} is
 * {@code name="value"; Max-Age=ttl; Path=path; HttpOnly}, without {@code Max-Age} for a zero ttl and without
 * {@code Path} for an empty path. Inmesh counts {@code expires} in wall-clock epoch seconds (Envoy: its own monotonic
 * clock, whose origin differs per process).
 */
public final class StatefulSessionFilter {
    /** A connection manager without the filter. */
    public static final StatefulSessionFilter NONE = new StatefulSessionFilter(null, null);

    private final String name;
    private final StatefulSession config;

    private StatefulSessionFilter(String name, StatefulSession config) {
        this.name = name;
        this.config = config;
    }

    /** The stateful session filter that runs in {@code hcm}, or {@link #NONE}. */
    public static StatefulSessionFilter of(HttpConnectionManager hcm) {
        if (hcm != null) {
            for (HttpFilter f : hcm.httpFilters()) {
                if (f.statefulSession() != null) {
                    return new StatefulSessionFilter(f.name(), f.statefulSession());
                }
            }
        }
        return NONE;
    }

    boolean isEmpty() {
        return config == null;
    }

    /**
     * The session of one request on {@code route} of {@code vh}: the config in force there (the route's
     * {@code StatefulSessionPerRoute} for this filter, else its virtual host's, else the filter's own) and the host
     * the request names. Null when the filter does nothing for it: disabled there, no session state, or a cookie whose
     * path does not cover {@code path}.
     */
    Session begin(VirtualHost vh, Route route, String path, MultiMap headers) {
        if (config == null) {
            return null;
        }
        StatefulSessionPerRoute perRoute = route == null ? null : route.statefulSession().get(name);
        if (perRoute == null && vh != null) {
            perRoute = vh.statefulSession().get(name);
        }
        if (perRoute != null && perRoute.disabled()) {
            return null;
        }
        StatefulSession effective = perRoute != null ? perRoute.statefulSession() : config;
        StatefulSession.SessionState state = effective.sessionState();
        if (state instanceof StatefulSession.Cookie c) {
            if (!c.appliesTo(path)) {
                return null;
            }
            return new Session(effective, cookieAddress(cookie(headers, c.name()), System.currentTimeMillis() / 1000));
        }
        if (state instanceof StatefulSession.Header h) {
            String v = headers.get(h.name());
            return new Session(effective, v == null ? null : emptyToNull(decode(v)));
        }
        return null;
    }

    /**
     * One request's session.
     *
     * @param config the config in force for it
     * @param address the host its cookie or header names ({@code ip:port}), or null for none
     */
    record Session(StatefulSession config, String address) {
        boolean strict() {
            return config.strict();
        }

        /** Names {@code hostAddress} in the response headers {@code h}, unless the request named that host already. */
        void onResponse(String hostAddress, MultiMap h) {
            if (hostAddress.equals(address)) {
                return;
            }
            if (config.sessionState() instanceof StatefulSession.Cookie c) {
                long expires = c.ttl().isZero() ? 0 : System.currentTimeMillis() / 1000 + c.ttl().toSeconds();
                h.add(HttpHeaders.SET_COOKIE, setCookie(c, cookieValue(hostAddress, expires)));
            } else if (config.sessionState() instanceof StatefulSession.Header hd) {
                h.set(hd.name(), Base64.getEncoder().encodeToString(hostAddress.getBytes(StandardCharsets.UTF_8)));
            }
        }
    }

    /** Envoy's {@code Set-Cookie} value for the session cookie {@code c} carrying {@code value}. */
    static String setCookie(StatefulSession.Cookie c, String value) {
        return SetCookies.value(c.name(), value, c.ttl().toSeconds(), c.path(), List.of());
    }

    /** The cookie value naming {@code address}: base64 of a protobuf {@code Cookie} (expires left out when 0). */
    static String cookieValue(String address, long expires) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(address.length() + 12);
        byte[] a = address.getBytes(StandardCharsets.UTF_8);
        out.write(0x0a); // field 1, length-delimited
        varint(out, a.length);
        out.write(a, 0, a.length);
        if (expires != 0) {
            out.write(0x10); // field 2, varint
            varint(out, expires);
        }
        return Base64.getEncoder().encodeToString(out.toByteArray());
    }

    /**
     * The host a session cookie's value names, as Envoy reads it: the base64 of a protobuf {@code Cookie} whose
     * {@code address} is set and whose {@code expires}, when set, is not past {@code nowSeconds}; or, when the bytes
     * are no protobuf message, the decoded text itself (the older format). Null for none.
     */
    static String cookieAddress(String value, long nowSeconds) {
        if (value == null || value.isEmpty()) {
            return null;
        }
        byte[] bytes = decodeBytes(value);
        if (bytes == null) {
            return null;
        }
        ProtoCookie c = ProtoCookie.parse(bytes);
        if (c == null) {
            return emptyToNull(new String(bytes, StandardCharsets.UTF_8));
        }
        if (c.address.isEmpty()) {
            return null;
        }
        // unsigned, as the field is a uint64
        return c.expires != 0 && Long.compareUnsigned(nowSeconds, c.expires) > 0 ? null : c.address;
    }

    /** The value of the first cookie named {@code name} in the request's {@code Cookie} headers, unquoted. */
    static String cookie(MultiMap headers, String name) {
        List<String> all = headers.getAll(HttpHeaders.COOKIE);
        for (String header : all) {
            for (String part : header.split(";")) {
                String p = part.stripLeading();
                int eq = p.indexOf('=');
                if (eq < 0 || !p.substring(0, eq).equals(name)) {
                    continue;
                }
                String v = p.substring(eq + 1);
                if (v.length() >= 2 && v.charAt(0) == '"' && v.charAt(v.length() - 1) == '"') {
                    v = v.substring(1, v.length() - 1);
                }
                return v;
            }
        }
        return null;
    }

    private static String decode(String base64) {
        byte[] b = decodeBytes(base64);
        return b == null ? "" : new String(b, StandardCharsets.UTF_8);
    }

    private static byte[] decodeBytes(String base64) {
        try {
            return Base64.getDecoder().decode(base64.trim());
        } catch (IllegalArgumentException e) {
            return null; // as Envoy's decoder, which gives nothing for what is not base64
        }
    }

    private static String emptyToNull(String s) {
        return s == null || s.isEmpty() ? null : s;
    }

    private static void varint(ByteArrayOutputStream out, long v) {
        while ((v & ~0x7fL) != 0) {
            out.write((int) (v & 0x7f) | 0x80);
            v >>>= 7;
        }
        out.write((int) v);
    }

    /** Envoy's {@code Cookie} message, read as protobuf reads it: unknown fields skipped, malformed input refused. */
    private record ProtoCookie(String address, long expires) {
        static ProtoCookie parse(byte[] b) {
            String address = "";
            long expires = 0;
            int[] at = {0};
            while (at[0] < b.length) {
                long tag = readVarint(b, at);
                if (tag < 0 || (tag >>> 3) == 0) {
                    return null;
                }
                int field = (int) (tag >>> 3);
                switch ((int) (tag & 7)) {
                    case 0 -> {
                        long v = readVarint(b, at);
                        if (at[0] < 0) {
                            return null;
                        }
                        if (field == 2) {
                            expires = v;
                        }
                    }
                    case 1 -> at[0] = skip(b, at[0], 8);
                    case 5 -> at[0] = skip(b, at[0], 4);
                    case 2 -> {
                        long len = readVarint(b, at);
                        if (at[0] < 0 || len < 0 || len > b.length - at[0]) {
                            return null;
                        }
                        if (field == 1) {
                            address = new String(b, at[0], (int) len, StandardCharsets.UTF_8);
                        }
                        at[0] += (int) len;
                    }
                    default -> {
                        return null; // groups and undefined wire types
                    }
                }
                if (at[0] < 0) {
                    return null;
                }
            }
            return new ProtoCookie(address, expires);
        }

        private static int skip(byte[] b, int at, int n) {
            return at + n <= b.length ? at + n : -1;
        }

        /** A varint at {@code at[0]}, advancing it; sets {@code at[0]} to -1 when it is cut short or too long. */
        private static long readVarint(byte[] b, int[] at) {
            long v = 0;
            for (int shift = 0; shift < 64; shift += 7) {
                if (at[0] >= b.length) {
                    at[0] = -1;
                    return -1;
                }
                int x = b[at[0]++];
                v |= (long) (x & 0x7f) << shift;
                if ((x & 0x80) == 0) {
                    return v;
                }
            }
            at[0] = -1;
            return -1;
        }
    }
}
