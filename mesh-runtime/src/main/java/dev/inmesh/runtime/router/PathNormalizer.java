package dev.inmesh.runtime.router;

import dev.inmesh.api.config.listener.PathNormalization;

/**
 * Applies a connection manager's {@link PathNormalization} to a request target, in Envoy's order: escaped slashes
 * first ({@code %2F}, {@code %5C}: rejected, or decoded), then RFC 3986 normalization (percent-encoded unreserved
 * characters decoded, section 6.2.2.2; dot segments removed as section 5.2.4 does, {@code %2E} included since it
 * decodes to a dot; a backslash is a slash, as in the WHATWG URL standard's http paths that Envoy's canonicalizer
 * follows; the characters a URL's path may not hold as they are, {@code " < > ^ `}, {@code { | }} and controls,
 * percent-encoded, as Envoy's canonicalizer writes them; before it, the parameters of dot segments taken off:
 * {@code /..;x} is a {@code ..} segment), then merged slashes. As Envoy's canonicalizer does, other
 * percent-encodings are kept exactly as they came (their hex digits keep their case: a server may tell them apart), an encoded NUL ({@code %00}) makes the
 * path invalid, and there is no case normalization. Only the path changes; the query and fragment stay as they came.
 * A target that is not a path (an asterisk, an absolute URI) is left alone.
 */
public final class PathNormalizer {
    private PathNormalizer() {}

    /**
     * The target without its fragment ({@code #...}), which a client must not send and which goes neither to routing
     * nor upstream: Envoy strips it under Istio (its bootstrap turns off Envoy's default of refusing such a path).
     */
    public static String withoutFragment(String target) {
        int hash = target.indexOf('#');
        return hash < 0 ? target : target.substring(0, hash);
    }

    /**
     * What a connection manager makes of a request's target before routing: its fragment dropped
     * ({@link #withoutFragment}), then {@code n} applied ({@link #apply}); null when the request is to be refused (400).
     */
    public static String ofRequest(String target, PathNormalization n) {
        return apply(withoutFragment(target), n);
    }

    /**
     * What the connection manager answers itself to a request whose target came as {@code sent} and normalizes to
     * {@code normalized} ({@link #ofRequest}, null: refused), with {@code contentType}, before any filter or route
     * reads it: null when the request goes on; else 400 for a path the normalization refuses, and, under
     * {@code UNESCAPE_AND_REDIRECT}, a {@code 307} to the normalized target when the path had an escaped slash (a
     * gRPC request, which cannot follow a redirect, 400), as Envoy's connection manager answers them (details
     * {@code path_normalization_failed} both).
     */
    public static Refusal refusal(String sent, String normalized, PathNormalization n, String contentType) {
        if (normalized == null) {
            return Refusal.INVALID;
        }
        if (n.escapedSlashes() != PathNormalization.EscapedSlashes.UNESCAPE_AND_REDIRECT || sent.isEmpty()
                || sent.charAt(0) != '/') {
            return null;
        }
        String target = withoutFragment(sent);
        if (!hasEscapedSlash(target.substring(0, pathEnd(target)))) {
            return null;
        }
        return Grpc.isContentType(contentType) ? Refusal.INVALID : new Refusal(307, normalized);
    }

    /**
     * The connection manager's answer to a path it does not route: {@code status} (400 or 307) and, for a redirect,
     * its {@code Location} (the normalized path and query).
     */
    public record Refusal(int status, String location) {
        /** Envoy's response code details of either answer. */
        public static final String DETAILS = "path_normalization_failed";
        /** A path the normalization refuses: 400. */
        public static final Refusal INVALID = new Refusal(400, null);

        /**
         * Counts this answer in the connection manager's statistics (null: none): a redirect
         * {@code downstream_rq_redirected_with_normalized_path}, a refusal
         * {@code downstream_rq_failed_path_normalization}.
         */
        public void count(dev.inmesh.runtime.stats.DownstreamStats stats) {
            if (stats == null) {
                return;
            }
            if (location != null) {
                stats.redirectedWithNormalizedPath();
            } else {
                stats.failedPathNormalization();
            }
        }
    }

    /** The normalized request target, or null when the request is to be refused (400). */
    public static String apply(String target, PathNormalization n) {
        if (n.none() || target.isEmpty() || target.charAt(0) != '/') {
            return target;
        }
        int end = pathEnd(target);
        if (!anythingToDo(target, end, n)) {
            return target; // the common case: a plain path, nothing read twice, nothing allocated
        }
        String path = target.substring(0, end);
        String rest = target.substring(end);
        if (n.escapedSlashes() != PathNormalization.EscapedSlashes.KEEP_UNCHANGED && hasEscapedSlash(path)) {
            if (n.escapedSlashes() == PathNormalization.EscapedSlashes.REJECT_REQUEST) {
                return null;
            }
            path = unescapeSlashes(path);
        }
        if (n.normalizePath()) {
            path = normalizePercentEncoding(stripDotSegmentParameters(path).replace('\\', '/'));
            if (path == null) {
                return null;
            }
            path = removeDotSegments(escapeUnsafe(path));
        }
        if (n.mergeSlashes()) {
            path = mergeSlashes(path);
        }
        return path + rest;
    }

    private static int pathEnd(String target) {
        for (int i = 0; i < target.length(); i++) {
            char c = target.charAt(i);
            if (c == '?' || c == '#') {
                return i;
            }
        }
        return target.length();
    }

    /** Whether the path {@code t[0, end)} has anything a step could change: a '%', a dot segment, a '//'. */
    private static boolean anythingToDo(String t, int end, PathNormalization n) {
        for (int i = 1; i < end; i++) {
            char c = t.charAt(i);
            char prev = t.charAt(i - 1);
            if (c == '%' || c == '/' && prev == '/'
                    || n.normalizePath() && (c == '.' && prev == '/' || c == '\\' || unsafe(c))) {
                return true;
            }
        }
        return false;
    }

    private static boolean hasEscapedSlash(String p) {
        for (int i = p.indexOf('%'); i >= 0 && i + 2 < p.length(); i = p.indexOf('%', i + 1)) {
            if (escapedSlash(p, i) != 0) {
                return true;
            }
        }
        return false;
    }

    /** '/' or '\\' when {@code p} has %2F or %5C (any case) at {@code i}, else 0. */
    private static char escapedSlash(String p, int i) {
        if (i + 2 >= p.length() || p.charAt(i) != '%') {
            return 0;
        }
        char a = p.charAt(i + 1);
        char b = Character.toUpperCase(p.charAt(i + 2));
        return a == '2' && b == 'F' ? '/' : a == '5' && b == 'C' ? '\\' : 0;
    }

    static String unescapeSlashes(String p) {
        StringBuilder sb = new StringBuilder(p.length());
        for (int i = 0; i < p.length(); i++) {
            char s = escapedSlash(p, i);
            if (s != 0) {
                sb.append(s);
                i += 2;
            } else {
                sb.append(p.charAt(i));
            }
        }
        return sb.toString();
    }

    /** %XX of an unreserved character decoded (RFC 3986 6.2.2.2), others kept as they are; null for a %00. */
    static String normalizePercentEncoding(String p) {
        if (p.indexOf('%') < 0) {
            return p;
        }
        StringBuilder sb = new StringBuilder(p.length());
        for (int i = 0; i < p.length(); i++) {
            char c = p.charAt(i);
            int hi;
            int lo;
            if (c == '%' && i + 2 < p.length() && (hi = hex(p.charAt(i + 1))) >= 0
                    && (lo = hex(p.charAt(i + 2))) >= 0) {
                char v = (char) (hi << 4 | lo);
                if (v == 0) {
                    return null;
                }
                if (unreserved(v)) {
                    sb.append(v);
                } else {
                    sb.append(p, i, i + 3);
                }
                i += 2;
            } else {
                sb.append(c);
            }
        }
        return sb.toString();
    }

    /**
     * Whether Envoy's canonicalizer (Chromium's) percent-encodes a character of a path: a control character, a
     * space, {@code " < > ^ `}, {@code { | }}, DEL and what is not ASCII.
     */
    private static boolean unsafe(char c) {
        return c <= ' ' || c >= 0x7F || "\"<>^`{|}".indexOf(c) >= 0;
    }

    /** The characters {@link #unsafe} percent-encoded, upper-case hex, as Envoy's canonicalizer writes them. */
    static String escapeUnsafe(String p) {
        StringBuilder sb = null;
        for (int i = 0; i < p.length(); i++) {
            char c = p.charAt(i);
            if (!unsafe(c)) {
                if (sb != null) {
                    sb.append(c);
                }
                continue;
            }
            if (sb == null) {
                sb = new StringBuilder(p.length() + 8).append(p, 0, i);
            }
            // a byte read as ISO-8859-1 is escaped as that byte; a wider character (an HTTP/2 path read as UTF-8)
            // as its UTF-8 bytes
            byte[] bytes = c < 0x100 ? new byte[] {(byte) c}
                    : String.valueOf(c).getBytes(java.nio.charset.StandardCharsets.UTF_8);
            for (byte b : bytes) {
                sb.append('%').append(Character.toUpperCase(Character.forDigit((b >> 4) & 0xF, 16)))
                        .append(Character.toUpperCase(Character.forDigit(b & 0xF, 16)));
            }
        }
        return sb == null ? p : sb.toString();
    }

    private static boolean unreserved(char c) {
        return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.'
                || c == '_' || c == '~';
    }

    /** An ASCII hex digit's value, or -1. */
    private static int hex(char c) {
        return c < 128 ? Character.digit(c, 16) : -1;
    }

    /**
     * The path with the parameters of its dot segments taken off ({@code /..;x} is {@code /..}, {@code /.;x} is
     * {@code /.}), so that removing the dot segments collapses them, as Envoy does before its canonicalizer
     * ({@code PathUtil::stripParametersFromDotSegments}, on by default: a server that reads {@code ..;x} as {@code ..},
     * as Tomcat does, would otherwise serve another path than the one routed and authorized). Only whole segments
     * starting so, split at '/' as they came (before a backslash or an encoded dot is read as one).
     */
    static String stripDotSegmentParameters(String p) {
        if (!p.contains(".;")) {
            return p;
        }
        String[] segments = p.split("/", -1);
        for (int i = 0; i < segments.length; i++) {
            if (segments[i].startsWith("..;")) {
                segments[i] = "..";
            } else if (segments[i].startsWith(".;")) {
                segments[i] = ".";
            }
        }
        return String.join("/", segments);
    }

    /** RFC 3986 5.2.4, for an absolute path: {@code .} segments dropped, {@code ..} ones take the one before. */
    static String removeDotSegments(String p) {
        if (p.indexOf('.') < 0) {
            return p;
        }
        String[] segments = p.substring(1).split("/", -1);
        String[] out = new String[segments.length];
        int n = 0;
        for (int i = 0; i < segments.length; i++) {
            String s = segments[i];
            boolean last = i == segments.length - 1;
            if (s.equals(".") || s.equals("..")) {
                if (s.equals("..") && n > 0) {
                    n--;
                }
                if (last) {
                    out[n++] = ""; // "/a/." and "/a/b/.." end in a slash
                }
            } else {
                out[n++] = s;
            }
        }
        StringBuilder sb = new StringBuilder(p.length());
        for (int i = 0; i < n; i++) {
            sb.append('/').append(out[i]);
        }
        return sb.length() == 0 ? "/" : sb.toString();
    }

    static String mergeSlashes(String p) {
        if (!p.contains("//")) {
            return p;
        }
        StringBuilder sb = new StringBuilder(p.length());
        for (int i = 0; i < p.length(); i++) {
            char c = p.charAt(i);
            if (c != '/' || sb.length() == 0 || sb.charAt(sb.length() - 1) != '/') {
                sb.append(c);
            }
        }
        return sb.toString();
    }
}
