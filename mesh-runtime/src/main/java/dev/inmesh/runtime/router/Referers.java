package dev.inmesh.runtime.router;

import io.vertx.core.MultiMap;
import java.util.List;

/**
 * The {@code Referer} header as Envoy's connection manager takes it before its filters (mutateRequestHeaders,
 * source/common/http/conn_manager_utility.cc): a request with more than one, or with one that is not a URI reference
 * RFC 9110 10.1.3 allows (Utility::isValidRefererValue, source/common/http/utility.cc, with Envoy's default
 * {@code http_allow_partial_urls_in_referer}), loses it.
 */
public final class Referers {
    private static final String HEADER = "referer";
    /** What a relative reference may hold besides letters, digits and {@code /}: RFC 3986's query characters. */
    private static final String QUERY_PUNCTUATION = "-._~!$&'()*+,;=:@?%";

    private Referers() {}

    /** Takes {@code referer} off {@code headers} when there is more than one, or one Envoy does not take. */
    public static void sanitize(MultiMap headers) {
        List<String> values = headers.getAll(HEADER);
        if (!values.isEmpty() && (values.size() > 1 || !valid(values.get(0)))) {
            headers.remove(HEADER);
        }
    }

    /**
     * Whether a {@code Referer} value is one Envoy takes: an absolute URL ({@code scheme://host...}) with no user
     * information and no fragment; or a relative reference whose first segment holds no {@code :} and whose other
     * characters are those of a URI's query (no space, no {@code #}).
     */
    static boolean valid(String value) {
        int scheme = 0;
        while (scheme < value.length() && isAlpha(value.charAt(scheme))) {
            scheme++;
        }
        if (scheme > 0 && value.startsWith("://", scheme)) {
            return absoluteUrl(value, scheme + 3);
        }
        boolean seenSlash = false;
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if (c == ':' && !seenSlash) {
                return false; // a first segment with a colon would read as a scheme (RFC 3986 4.2)
            }
            if (c == '/') {
                seenSlash = true;
            } else if (!isAlphaNum(c) && QUERY_PUNCTUATION.indexOf(c) < 0) {
                return false;
            }
        }
        return true;
    }

    /**
     * Whether what follows {@code scheme://} (from {@code start}) is an authority as Envoy's URL parser takes it (a
     * host name or a bracketed IPv6 literal, a port of at most 65535; user information refused), then a path and
     * query of visible characters and no fragment.
     */
    private static boolean absoluteUrl(String value, int start) {
        int end = start;
        while (end < value.length() && "/?#".indexOf(value.charAt(end)) < 0) {
            end++;
        }
        String authority = value.substring(start, end);
        if (authority.indexOf('@') >= 0 || !validAuthority(authority)) {
            return false;
        }
        for (int i = end; i < value.length(); i++) {
            char c = value.charAt(i);
            if (c <= ' ' || c == 0x7f || c == '#') {
                return false;
            }
        }
        return true;
    }

    private static boolean validAuthority(String authority) {
        String host = authority;
        String port = null;
        if (authority.startsWith("[")) {
            int close = authority.indexOf(']');
            if (close < 0 || dev.inmesh.runtime.net.IpLiterals.parse(authority.substring(1, close)) == null) {
                return false;
            }
            if (close + 1 < authority.length()) {
                if (authority.charAt(close + 1) != ':') {
                    return false;
                }
                port = authority.substring(close + 2);
            }
            host = null;
        } else {
            int colon = authority.indexOf(':');
            if (colon >= 0) {
                port = authority.substring(colon + 1);
                host = authority.substring(0, colon);
            }
        }
        if (host != null) {
            if (host.isEmpty()) {
                return false;
            }
            for (int i = 0; i < host.length(); i++) {
                char c = host.charAt(i);
                if (!isAlphaNum(c) && c != '.' && c != '-' && c != '_') {
                    return false;
                }
            }
        }
        return port == null || validPort(port);
    }

    private static boolean validPort(String port) {
        if (port.isEmpty() || port.length() > 5) {
            return false;
        }
        for (int i = 0; i < port.length(); i++) {
            if (port.charAt(i) < '0' || port.charAt(i) > '9') {
                return false;
            }
        }
        return Integer.parseInt(port) <= 65535;
    }

    private static boolean isAlpha(char c) {
        return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z';
    }

    private static boolean isAlphaNum(char c) {
        return isAlpha(c) || c >= '0' && c <= '9';
    }
}
