package dev.inmesh.runtime.router;

import io.netty.handler.codec.http2.Http2Headers;
import java.util.Map;

/**
 * The checks Envoy's HTTP/2 codec makes on a header block before its connection manager or router sees it:
 * oghttp2's {@code HeaderValidator} (quiche/http2/adapter/header_validator.cc), as Envoy configures it
 * (source/common/http/http2/codec_impl.cc: {@code host} may differ from {@code :authority}, {@code :path}'s characters
 * are not checked, obs-text is allowed in values). Netty's HPACK decoder has already refused, as a stream error, what it
 * checks itself: an upper-case or otherwise invalid name, a connection-specific header ({@code connection},
 * {@code keep-alive}, {@code proxy-connection}, {@code transfer-encoding}, {@code upgrade}), a {@code te} other than
 * {@code trailers}, an unknown, repeated or late pseudo-header, request and response pseudo-headers mixed. Here:
 * <ul>
 *   <li>each regular header's name holds only a token's characters but upper-case letters (no space, no
 *       {@code "}, no {@code /}), as oghttp2's;</li>
 *   <li>each value holds only HTAB, SP, visible ASCII and obs-text (no NUL, CR, LF or other control), a leading or
 *       trailing space included, as Envoy takes it;</li>
 *   <li>a request head has {@code :method}, {@code :scheme}, {@code :path} and {@code :authority} (or {@code host}),
 *       each once, and no other pseudo-header; a {@code CONNECT} has a non-empty {@code :authority} and
 *       {@code :method} only;</li>
 *   <li>{@code :method} is a non-empty token; {@code :path} is not empty and starts with {@code /} ({@code *} for an
 *       {@code OPTIONS}); {@code :authority} and {@code host} hold only the characters of RFC 3986's host and port (no
 *       {@code @}, no space);</li>
 *   <li>a response head has one {@code :status} of three digits, not 101, and no other pseudo-header;</li>
 *   <li>trailers have no pseudo-header.</li>
 * </ul>
 * A field that breaks a rule of its own is {@link #INVALID_HEADER}, a head that breaks a rule of the whole
 * {@link #MESSAGING}: Envoy's response code details for the two.
 */
public final class Http2HeaderValidator {
    /** Envoy's details for a header field its codec refused. */
    public static final String INVALID_HEADER = "http2.invalid.header.field";
    /** Envoy's details for a message that broke HTTP/2's messaging rules. */
    public static final String MESSAGING = "http2.violation.of.messaging.rule";

    /** RFC 9110's token characters (a method). */
    private static final boolean[] TOKEN = chars("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
            + "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    /**
     * The characters of a regular header's name, as oghttp2's {@code kHttp2HeaderNameAllowedChars}: a token's, but
     * the upper-case letters.
     */
    private static final boolean[] NAME = chars("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz");
    /** The digits of a status. */
    private static final boolean[] DIGIT = chars("0123456789");
    /** RFC 3986's host and port characters, as oghttp2 allows them in {@code :authority} and {@code host}. */
    private static final boolean[] AUTHORITY = chars("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
            + "-._~%!$&'()[]*+,;=:");

    private Http2HeaderValidator() {}

    /** Why the request head {@code headers} is invalid, as Envoy's details; null when it is valid. */
    public static String request(Http2Headers headers) {
        String invalid = values(headers);
        if (invalid != null) {
            return invalid;
        }
        CharSequence method = headers.method();
        if (method != null && (method.length() == 0 || !all(method, TOKEN))) {
            return INVALID_HEADER;
        }
        for (CharSequence host : headers.getAll(Http2Headers.PseudoHeaderName.AUTHORITY.value())) {
            if (!all(host, AUTHORITY)) {
                return INVALID_HEADER;
            }
        }
        for (CharSequence host : headers.getAll(io.netty.handler.codec.http.HttpHeaderNames.HOST)) {
            if (!all(host, AUTHORITY)) {
                return INVALID_HEADER;
            }
        }
        CharSequence path = headers.path();
        if (path != null && path.length() == 0) {
            return INVALID_HEADER;
        }
        return wholeRequest(headers) ? null : MESSAGING;
    }

    /** Why the response head {@code headers} (a 1xx one too) is invalid, as Envoy's details; null when valid. */
    public static String response(Http2Headers headers) {
        String invalid = values(headers);
        if (invalid != null) {
            return invalid;
        }
        CharSequence status = headers.status();
        if (status != null && (status.length() != 3 || !all(status, DIGIT) || "101".contentEquals(status))) {
            return INVALID_HEADER; // Switching Protocols has no place in HTTP/2
        }
        int pseudo = 0;
        for (Map.Entry<CharSequence, CharSequence> e : headers) {
            if (!Http2Headers.PseudoHeaderName.hasPseudoHeaderFormat(e.getKey())) {
                break; // Netty keeps the pseudo-headers first
            }
            pseudo++;
        }
        return status != null && pseudo == 1 ? null : MESSAGING;
    }

    /** Why the trailers {@code headers} are invalid, as Envoy's details; null when they are valid. */
    public static String trailers(Http2Headers headers) {
        String invalid = values(headers);
        if (invalid != null) {
            return invalid;
        }
        for (Map.Entry<CharSequence, CharSequence> e : headers) {
            if (Http2Headers.PseudoHeaderName.hasPseudoHeaderFormat(e.getKey())) {
                return MESSAGING;
            }
        }
        return null;
    }

    /** oghttp2's FinishHeaderBlock for a request: the pseudo-headers a request needs, each once, and no other. */
    private static boolean wholeRequest(Http2Headers headers) {
        int method = 0;
        int scheme = 0;
        int path = 0;
        int authority = 0;
        for (Map.Entry<CharSequence, CharSequence> e : headers) {
            CharSequence name = e.getKey();
            if (!Http2Headers.PseudoHeaderName.hasPseudoHeaderFormat(name)) {
                break; // Netty keeps the pseudo-headers first
            }
            Http2Headers.PseudoHeaderName p = Http2Headers.PseudoHeaderName.getPseudoHeader(name);
            if (p == null) {
                return false;
            }
            switch (p) {
                case METHOD -> method++;
                case SCHEME -> scheme++;
                case PATH -> path++;
                case AUTHORITY -> authority++;
                default -> {
                    return false; // :status, :protocol (no extended CONNECT without allow_connect)
                }
            }
        }
        boolean host = authority > 0 || headers.contains(io.netty.handler.codec.http.HttpHeaderNames.HOST);
        if (method != 1 || authority > 1) {
            return false;
        }
        if (io.netty.handler.codec.http.HttpMethod.CONNECT.asciiName().contentEquals(headers.method())) {
            CharSequence a = headers.authority();
            return authority == 1 && a.length() > 0 && scheme == 0 && path == 0;
        }
        if (scheme != 1 || path != 1 || !host) {
            return false;
        }
        CharSequence p = headers.path();
        return p.charAt(0) == '/' || p.length() == 1 && p.charAt(0) == '*'
                && io.netty.handler.codec.http.HttpMethod.OPTIONS.asciiName().contentEquals(headers.method());
    }

    /**
     * {@link #INVALID_HEADER} when a regular header's name holds another character than {@link #NAME}'s, or a value one
     * HTTP/2 forbids (a control but HTAB), else null.
     */
    private static String values(Http2Headers headers) {
        for (Map.Entry<CharSequence, CharSequence> e : headers) {
            CharSequence name = e.getKey();
            if (name.length() == 0 || name.charAt(0) != ':' && !all(name, NAME)) {
                return INVALID_HEADER;
            }
            CharSequence v = e.getValue();
            for (int i = 0; i < v.length(); i++) {
                char c = v.charAt(i);
                if (c < 0x20 && c != '\t' || c == 0x7f) {
                    return INVALID_HEADER;
                }
            }
        }
        return null;
    }

    private static boolean all(CharSequence s, boolean[] allowed) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c >= allowed.length || !allowed[c]) {
                return false;
            }
        }
        return true;
    }

    private static boolean[] chars(String allowed) {
        boolean[] map = new boolean[128];
        for (int i = 0; i < allowed.length(); i++) {
            map[allowed.charAt(i)] = true;
        }
        return map;
    }
}
