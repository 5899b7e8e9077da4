package dev.inmesh.interception.proxy;

import dev.inmesh.api.config.listener.Http1Options;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import java.util.Set;

/**
 * Which HTTP/1 requests the proxy takes, as Envoy's HTTP/1 codec and connection manager decide with their
 * {@code http_protocol_options}: a method the codec knows unless {@code allow_custom_methods} (400 otherwise);
 * HTTP/1.0 (any version but HTTP/1.1, as Envoy reads it) only when {@code accept_http_10} (426 otherwise); a Host
 * always (HTTP/1.0 may get {@code default_host_for_http_10}; 400 otherwise; two Host lines are refused by
 * {@code HttpBridge.HeadLimits}), made of the characters of an authority (400 otherwise); a request line in absolute
 * form taken as its host and path (RFC 9112 3.2.2: its authority replaces the Host header) unless
 * {@code allow_absolute_url} is false (404, as Envoy's connection manager answers it); any other target that is not
 * a path, or that holds a character other than visible ASCII, refused (400). Transfer codings are the codec's
 * ({@code Http1ServerCodec}).
 */
final class Http1Requests {
    private Http1Requests() {}

    /**
     * Why a request is refused: its status, Envoy's response code details, and whether Envoy's codec refuses it (a
     * codec error: flag DPE, the status text as the body) or its connection manager does (a plain local reply).
     */
    enum Refusal {
        METHOD(HttpResponseStatus.BAD_REQUEST, HttpBridge.CODEC_ERROR, true),
        TARGET(HttpResponseStatus.BAD_REQUEST, HttpBridge.CODEC_ERROR, true),
        HTTP_10(HttpResponseStatus.UPGRADE_REQUIRED, "low_version", true),
        URL(HttpResponseStatus.BAD_REQUEST, "http1.invalid_url", true),
        AUTHORITY(HttpResponseStatus.BAD_REQUEST, "http.invalid_authority", true),
        ABSOLUTE_PATH(HttpResponseStatus.NOT_FOUND, "absolute_path_rejected", false),
        NO_HOST(HttpResponseStatus.BAD_REQUEST, "missing_host_header", false);

        final HttpResponseStatus status;
        final String details;
        final boolean codecError;

        Refusal(HttpResponseStatus status, String details, boolean codecError) {
            this.status = status;
            this.details = details;
            this.codecError = codecError;
        }
    }

    /**
     * Null when the request is taken, after giving it its host and origin-form path when it came in absolute form or
     * as HTTP/1.0 without a Host; otherwise why it is refused. {@code req} is a request head whose framing the codec
     * took.
     */
    static Refusal admit(HttpRequest req, Http1Options o) {
        if (!o.allowCustomMethods() && !KNOWN_METHODS.contains(req.method().name())) {
            return Refusal.METHOD;
        }
        String uri = req.uri();
        if (!visibleAscii(uri)) {
            return Refusal.TARGET;
        }
        // as Envoy's codec: what is not HTTP/1.1 is HTTP/1.0 (HTTP/0.9, 1.2 and 2.0 alike), and is served as such
        boolean http10 = !req.protocolVersion().equals(HttpVersion.HTTP_1_1);
        if (http10) {
            if (!o.acceptHttp10()) {
                return Refusal.HTTP_10;
            }
            req.setProtocolVersion(HttpVersion.HTTP_1_0);
        }
        HttpHeaders h = req.headers();
        int scheme = absoluteFormSchemeEnd(uri);
        if (scheme < 0 && !uri.startsWith("/") && !uri.equals("*") && !req.method().equals(HttpMethod.CONNECT)) {
            return Refusal.TARGET; // neither origin form nor absolute form: not a URL Envoy's parser takes
        }
        if (scheme > 0) {
            if (!o.allowAbsoluteUrl()) {
                // Envoy's codec lets it through and its connection manager answers 404 (absolute_path_rejected)
                return Refusal.ABSOLUTE_PATH;
            }
            int authorityEnd = scheme;
            while (authorityEnd < uri.length() && "/?#".indexOf(uri.charAt(authorityEnd)) < 0) {
                authorityEnd++;
            }
            String authority = uri.substring(scheme, authorityEnd);
            if (authority.isEmpty() || authority.indexOf('@') >= 0) {
                return Refusal.URL; // no host, or userinfo (RFC 9110 4.2.4: not to be sent)
            }
            String rest = uri.substring(authorityEnd);
            req.setUri(rest.isEmpty() || rest.charAt(0) != '/' ? "/" + rest : rest);
            h.set(HttpHeaderNames.HOST, authority);
        }
        String host = h.get(HttpHeaderNames.HOST);
        if (host != null && !validAuthority(host)) {
            return Refusal.AUTHORITY; // as Envoy's codec checks the Host before the connection manager sees it
        }
        if (host == null || host.isEmpty()) {
            if (http10 && !o.defaultHostForHttp10().isEmpty()) {
                h.set(HttpHeaderNames.HOST, o.defaultHostForHttp10());
            } else {
                return Refusal.NO_HOST; // Envoy's connection manager answers it (missing_host_header)
            }
        }
        return null;
    }

    /**
     * The methods Envoy's HTTP/1 codec takes without {@code allow_custom_methods} (the request line's method,
     * case-sensitive): those its parser has always known.
     */
    private static final Set<String> KNOWN_METHODS = Set.of("ACL", "BIND", "CHECKOUT", "CONNECT", "COPY", "DELETE",
            "GET", "HEAD", "LINK", "LOCK", "MERGE", "MKACTIVITY", "MKCALENDAR", "MKCOL", "MOVE", "MSEARCH", "NOTIFY",
            "OPTIONS", "PATCH", "POST", "PROPFIND", "PROPPATCH", "PURGE", "PUT", "REBIND", "REPORT", "SEARCH",
            "SOURCE", "SUBSCRIBE", "TRACE", "UNBIND", "UNLINK", "UNLOCK", "UNSUBSCRIBE");

    /**
     * Whether a request target holds only what Envoy's HTTP/1 parser takes in one: visible ASCII, tab and form feed.
     * A control character or a byte above 0x7E (raw UTF-8: Netty reads the line as ISO-8859-1) is refused.
     */
    static boolean visibleAscii(String uri) {
        for (int i = 0, n = uri.length(); i < n; i++) {
            char c = uri.charAt(i);
            if ((c < '!' || c > '~') && c != '\t' && c != '\f') {
                return false;
            }
        }
        return true;
    }

    /**
     * Whether a Host holds only the characters an authority may (RFC 3986 3.2: unreserved, sub-delims,
     * percent-encodings, {@code :}, {@code @} and an IP literal's brackets), the set Envoy checks it against: no
     * space, slash, control or other character that could make one host read as another.
     */
    static boolean validAuthority(String host) {
        for (int i = 0, n = host.length(); i < n; i++) {
            char c = host.charAt(i);
            boolean ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
                    || "-._~!$&'()*+,;=:@[]%".indexOf(c) >= 0;
            if (!ok) {
                return false;
            }
        }
        return true;
    }

    /** The index after {@code http://} or {@code https://} (any case) when the URI is in absolute form, else -1. */
    static int absoluteFormSchemeEnd(String uri) {
        if (uri.regionMatches(true, 0, "http://", 0, 7)) {
            return 7;
        }
        return uri.regionMatches(true, 0, "https://", 0, 8) ? 8 : -1;
    }
}
