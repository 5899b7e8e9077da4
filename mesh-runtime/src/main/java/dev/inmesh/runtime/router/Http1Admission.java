package dev.inmesh.runtime.router;

import dev.inmesh.api.config.listener.Http1Options;
import io.vertx.core.MultiMap;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Which HTTP/1 requests a connection manager takes, as Envoy's HTTP/1 codec and connection manager decide with their
 * {@code http_protocol_options}, for both data planes (the standalone proxy's codec and {@code mesh.inbound} on the
 * application's server): a method the codec knows unless {@code allow_custom_methods} (400 otherwise); HTTP/1.0 (any
 * version but HTTP/1.1, as Envoy reads it) only when {@code accept_http_10} (426 otherwise); a Host always (HTTP/1.0
 * may get {@code default_host_for_http_10}; 400 otherwise), made of the characters of an authority (400 otherwise); a
 * request line in absolute form taken as its host and path (RFC 9112 3.2.2: its authority replaces the Host header)
 * unless {@code allow_absolute_url} is false (404, as Envoy's connection manager answers it); any other target that
 * is not a path, or that holds a character other than visible ASCII, refused (400). As Envoy's codec, the headers a
 * request's {@code Connection} header nominates are taken off it before anything reads it (RFC 9110 7.6.1), and a
 * nomination that could hide where the request came from refused (400); an {@code https} URL on a plaintext
 * connection of an edge connection manager is refused (403).
 */
public final class Http1Admission {
    /** Envoy's response code details of a request its HTTP/1 codec could not read. */
    public static final String CODEC_ERROR = "http1.codec_error";

    private Http1Admission() {}

    /**
     * Why a request is refused: its status, Envoy's response code details, and whether Envoy's codec refuses it (a
     * codec error: flag DPE, the status text as the body) or its connection manager does (a plain local reply).
     */
    public enum Refusal {
        METHOD(400, CODEC_ERROR, true),
        TARGET(400, CODEC_ERROR, true),
        HTTP_10(426, "low_version", true),
        URL(400, "http1.invalid_url", true),
        /** An absolute-form request line of a scheme other than {@code http} and {@code https}. */
        SCHEME(400, "http1.invalid_scheme", true),
        AUTHORITY(400, "http.invalid_authority", true),
        ABSOLUTE_PATH(404, "absolute_path_rejected", false),
        NO_HOST(400, "missing_host_header", false),
        /** Two Host lines, which Envoy's codec refuses (the standalone proxy with its head's other limits). */
        HOSTS(400, CODEC_ERROR, true),
        /** A header name with an underscore under {@code headers_with_underscores_action: REJECT_REQUEST}. */
        UNDERSCORE(400, UnderscoreHeaders.HTTP1_DETAILS, true),
        /**
         * A {@code Connection} header nominating {@code X-Forwarded-For}, {@code -Host} or {@code -Proto} or a
         * pseudo-header, ten tokens or more, or a nominated {@code TE} of 256 characters or more.
         */
        CONNECTION(400, "http1.connection_header_rejected", true),
        /**
         * An {@code https://} request line on a plaintext connection of a connection manager that takes the client
         * as its peer ({@code use_remote_address} with no trusted hops): a caller claiming a scheme it did not use.
         */
        HTTPS_IN_PLAINTEXT(403, "http1.https_url_on_plaintext_connection", true),
        /** More request headers than the connection manager's {@code max_headers_count} (default 100). */
        TOO_MANY_HEADERS(431, "http1.too_many_headers", true),
        /**
         * Request headers (their names and values, and the request target) larger than its
         * {@code max_request_headers_kb} (default 60 KiB).
         */
        HEADERS_TOO_LARGE(431, "http1.headers_too_large", true),
        /** A {@code Transfer-Encoding} other than one {@code chunked}: another coding, a list, two lines of it. */
        TRANSFER_ENCODING(501, "http1.invalid_transfer_encoding", true);

        /** The status of the local reply. */
        public final int status;
        /** Envoy's response code details ({@code %RESPONSE_CODE_DETAILS%}). */
        public final String details;
        /** Whether Envoy's codec refuses it (flag DPE), not its connection manager. */
        public final boolean codecError;

        Refusal(int status, String details, boolean codecError) {
            this.status = status;
            this.details = details;
            this.codecError = codecError;
        }

        /** Counts this refusal in the connection manager's statistics (null: none) where Envoy's counts it. */
        public void count(dev.inmesh.runtime.stats.DownstreamStats stats) {
            if (this == ABSOLUTE_PATH && stats != null) {
                stats.nonRelativePath();
            }
        }
    }

    /**
     * What Envoy's codec refuses of a head whose framing or size it does not take: a {@code Transfer-Encoding} other
     * than one {@code chunked}; more header lines than {@code max_headers_count}, or names, values and request target
     * together over {@code max_request_headers_kb}; null when it takes the head. {@code headBytes}, the whole head's
     * size (more than what the limit counts), spares most heads the count: one within {@code maxBytes}, with no more
     * lines than {@code maxHeaders} and no {@code Transfer-Encoding}, is taken at once.
     */
    public static Refusal limits(String uri, MultiMap headers, long headBytes, int maxHeaders, long maxBytes) {
        if (headBytes <= maxBytes && !moreHeadersThan(headers, maxHeaders) && !headers.contains("transfer-encoding")) {
            return null;
        }
        List<String> codings = headers.getAll("transfer-encoding");
        if (!codings.isEmpty() && (codings.size() != 1 || !codings.get(0).strip().equalsIgnoreCase("chunked"))) {
            // Netty framed the body by neither (it was read as none), as Envoy's codec refuses it with 501
            return Refusal.TRANSFER_ENCODING;
        }
        if (moreHeadersThan(headers, maxHeaders)) {
            return Refusal.TOO_MANY_HEADERS;
        }
        long bytes = uri.length();
        for (java.util.Map.Entry<String, String> e : headers) {
            bytes += e.getKey().length() + e.getValue().length();
        }
        return bytes > maxBytes ? Refusal.HEADERS_TOO_LARGE : null;
    }

    /**
     * Whether {@code headers} hold more than {@code max} header lines (entries: a name sent twice counts twice, as
     * Envoy's codec counts them; {@code MultiMap.size()} counts names).
     */
    public static boolean moreHeadersThan(MultiMap headers, int max) {
        int n = 0;
        for (var ignored : headers) {
            if (++n > max) {
                return true;
            }
        }
        return false;
    }

    /**
     * What an upgrade request asks to become (its {@code upgrade} header, {@code websocket} for a WebSocket), or null
     * for a request that is no upgrade: it needs a {@code connection} whose list names {@code upgrade} (a browser's
     * {@code keep-alive, Upgrade} too, as Envoy's codec and Vert.x's server take it); an {@code h2c} offer is none, as
     * Envoy's HTTP/1 codec takes it off and serves the request.
     */
    public static String upgradeType(MultiMap headers) {
        String upgrade = headers.get("upgrade");
        if (upgrade == null || (upgrade = upgrade.strip()).equalsIgnoreCase("h2c")) {
            return null;
        }
        for (String value : headers.getAll("connection")) {
            for (String token : value.split(",")) {
                if (token.strip().equalsIgnoreCase("upgrade")) {
                    return upgrade;
                }
            }
        }
        return null;
    }

    /** A request's headers, as {@link #sanitizeConnection} reads and rewrites them. */
    public interface Fields {
        /** A request header's values joined by commas, or null when there is none (any case of the name). */
        String header(String name);

        /** Sets a request header to one value, or takes it off when {@code value} is null (any case of the name). */
        void header(String name, String value);
    }

    /** A request head as a codec read it, which {@link #admit} may rewrite. */
    public interface Head extends Fields {
        /** The request line's method, as sent. */
        String method();

        /** The request target, as sent until {@link #originForm} replaces it. */
        String uri();

        /** Whether the request line says HTTP/1.1 (anything else is served as HTTP/1.0). */
        boolean http11();

        /** The Host header; null when there is none. */
        String host();

        /** The request is served as HTTP/1.0 (its request line said another version but HTTP/1.1). */
        void servedAsHttp10();

        /** The target of an absolute-form request line, made origin-form, and the authority that replaces Host. */
        void originForm(String uri, String authority);

        /** The host an HTTP/1.0 request without one gets ({@code default_host_for_http_10}). */
        void defaultHost(String host);

        /** Whether the request came on a TLS connection. */
        boolean tls();
    }

    /**
     * What Envoy's HTTP/1 codec does with the {@code Connection} header of a request head it read
     * (onHeadersCompleteBase, source/common/http/http1/codec_impl.cc), for a request whose head no codec of Inmesh's
     * reads (the in-JVM client's, as a sidecar's outbound codec would read it): an h2c offer loses its upgrade
     * ({@link #withoutH2cUpgrade}), then the headers the {@code Connection} header nominates are taken off
     * ({@link #sanitizeConnection}; not a {@code CONNECT}'s, nor an upgrade's). Null when the request is taken,
     * {@link Refusal#CONNECTION} when it is refused.
     */
    public static Refusal connectionHeader(String method, MultiMap headers) {
        if (!headers.contains("connection")) {
            return null;
        }
        Fields fields = new Fields() {
            @Override
            public String header(String name) {
                return HeaderValues.joined(headers, name);
            }

            @Override
            public void header(String name, String value) {
                if (value == null) {
                    headers.remove(name);
                } else {
                    headers.set(name, value);
                }
            }
        };
        withoutH2cUpgrade(fields);
        return method.equals("CONNECT") || sanitizeConnection(fields) ? null : Refusal.CONNECTION;
    }

    /**
     * Takes an h2c offer's upgrade off a request, as Envoy's HTTP/1 codec, which serves it as HTTP/1.1: with
     * {@code upgrade: h2c} and {@code upgrade} among its {@code Connection} tokens, the {@code upgrade} and
     * {@code http2-settings} headers go, and so do those two tokens (the header too when no other is left).
     */
    public static void withoutH2cUpgrade(Fields req) {
        String connection = req.header("connection");
        if (connection == null || !"h2c".equalsIgnoreCase(strip(req.header("upgrade")))) {
            return;
        }
        List<String> kept = new ArrayList<>();
        boolean upgrade = false;
        for (String t : connection.split(",")) {
            String token = t.strip();
            if (token.equalsIgnoreCase("upgrade")) {
                upgrade = true;
            } else if (!token.isEmpty() && !token.equalsIgnoreCase("http2-settings")) {
                kept.add(token);
            }
        }
        if (!upgrade) {
            return; // no upgrade: its headers are the request's own (sanitizeConnection then decides)
        }
        req.header("upgrade", null);
        req.header("http2-settings", null);
        req.header("connection", kept.isEmpty() ? null : String.join(",", kept));
    }

    private static String strip(String value) {
        return value == null ? null : value.strip();
    }

    /**
     * Null when the request is taken, after giving it its host and origin-form target when it came in absolute form
     * or as HTTP/1.0 without a Host and taking off the headers its {@code Connection} header nominates; otherwise why
     * it is refused.
     *
     * @param validateScheme whether an {@code https} absolute URL needs a TLS connection: as Envoy, when the
     *                       connection manager has {@code use_remote_address} and no {@code xff_num_trusted_hops}
     */
    public static Refusal admit(Head req, Http1Options o, boolean validateScheme) {
        if (!o.allowCustomMethods() && !KNOWN_METHODS.contains(req.method())) {
            return Refusal.METHOD;
        }
        String uri = req.uri();
        if (!visibleAscii(uri)) {
            return Refusal.TARGET;
        }
        // the Connection header first, as Envoy's codec (not a CONNECT's, which it takes as an upgrade)
        if (!req.method().equals("CONNECT") && !sanitizeConnection(req)) {
            return Refusal.CONNECTION;
        }
        // as Envoy's codec: what is not HTTP/1.1 is HTTP/1.0 (HTTP/0.9, 1.2 and 2.0 alike), and is served as such
        boolean http10 = !req.http11();
        if (http10) {
            if (!o.acceptHttp10()) {
                return Refusal.HTTP_10;
            }
            req.servedAsHttp10();
        }
        int scheme = absoluteFormSchemeEnd(uri);
        if (scheme < 0 && otherScheme(uri) && !req.method().equals("CONNECT")) {
            return Refusal.SCHEME; // a URL Envoy's codec reads, of a scheme it does not proxy (ftp://, ws://)
        }
        if (scheme < 0 && !uri.startsWith("/") && !uri.equals("*") && !req.method().equals("CONNECT")) {
            return Refusal.TARGET; // neither origin form nor absolute form: not a URL Envoy's parser takes
        }
        String host = req.host();
        if (scheme < 0 && req.method().equals("CONNECT")) {
            // the request line's authority is the host, as Envoy's codec sets it (the connection manager then
            // refuses the CONNECT its upgrade_configs do not enable: 403)
            req.defaultHost(uri);
            host = uri;
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
            if (validateScheme && scheme == 8 && !req.tls()) {
                return Refusal.HTTPS_IN_PLAINTEXT;
            }
            String rest = uri.substring(authorityEnd);
            req.originForm(rest.isEmpty() || rest.charAt(0) != '/' ? "/" + rest : rest, authority);
            host = authority;
        }
        if (host != null && !validAuthority(host)) {
            return Refusal.AUTHORITY; // as Envoy's codec checks the Host before the connection manager sees it
        }
        if (host == null || host.isEmpty()) {
            if (http10 && !o.defaultHostForHttp10().isEmpty()) {
                req.defaultHost(o.defaultHostForHttp10());
            } else {
                return Refusal.NO_HOST; // Envoy's connection manager answers it (missing_host_header)
            }
        }
        if (uri.equals("*") && !req.method().equals("CONNECT")) {
            // the asterisk form (OPTIONS *): Envoy's codec takes it, its connection manager routes only a path
            // beginning with / and answers 404 (absolute_path_rejected)
            return Refusal.ABSOLUTE_PATH;
        }
        return null;
    }

    /** As Envoy: a {@code Connection} header of this many tokens or more is refused. */
    static final int MAX_CONNECTION_TOKENS = 10;
    /** As Envoy: a nominated {@code TE} header this long or longer is refused. */
    static final int MAX_NOMINATED_TE_LENGTH = 256;

    /**
     * Takes off the request the headers its {@code Connection} header nominates, and their tokens off the
     * {@code Connection} header, as Envoy's HTTP/1 codec does for a request that is not an upgrade: a nominated
     * {@code TE} stays as {@code trailers} when it offered trailers; the connection options ({@code close},
     * {@code keep-alive}, {@code upgrade}, {@code http2-settings}) stay. False when the request is to be refused: ten
     * tokens or more, or a nomination of {@code X-Forwarded-For}, {@code X-Forwarded-Host}, {@code X-Forwarded-Proto}
     * or a pseudo-header, whose removal would hide where the request came from, or a nominated {@code TE} of 256
     * characters or more.
     */
    static boolean sanitizeConnection(Fields req) {
        String connection = req.header("connection");
        if (connection == null) {
            return true;
        }
        List<String> tokens = new ArrayList<>();
        for (String t : connection.split(",")) {
            if (!t.isEmpty()) {
                tokens.add(t.strip());
            }
        }
        String upgrade = req.header("upgrade");
        if (upgrade != null && !upgrade.equalsIgnoreCase("h2c") && containsIgnoreCase(tokens, "upgrade")) {
            return true; // an upgrade (not to h2c, never taken): its Connection header is the upgrade's
        }
        if ("h2c".equalsIgnoreCase(upgrade)) {
            // Envoy's codec takes an h2c upgrade's tokens off before it counts (the request is served as HTTP/1.1)
            tokens.removeIf(t -> t.equalsIgnoreCase("upgrade") || t.equalsIgnoreCase("http2-settings"));
        }
        if (tokens.size() >= MAX_CONNECTION_TOKENS) {
            return false;
        }
        Set<String> removed = new java.util.TreeSet<>(String.CASE_INSENSITIVE_ORDER);
        for (String token : tokens) {
            String name = token.toLowerCase(java.util.Locale.ROOT);
            switch (name) {
                case "close", "keep-alive", "upgrade", "http2-settings" -> { }
                case "connection" -> removed.add(token); // self-nominated: the token goes, the header stays
                case "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto" -> {
                    return false;
                }
                default -> {
                    if (name.startsWith(":")) {
                        return false;
                    }
                    String value = name.equals("te") ? req.header("te") : null;
                    if (value != null && value.length() >= MAX_NOMINATED_TE_LENGTH) {
                        return false;
                    }
                    if (value != null && offersTrailers(value)) {
                        req.header("te", "trailers");
                    } else {
                        req.header(name, null);
                        removed.add(token);
                    }
                }
            }
        }
        if (!removed.isEmpty()) {
            StringBuilder kept = new StringBuilder();
            for (String t : connection.split(",")) {
                String token = t.strip();
                if (!token.isEmpty() && !removed.contains(token)) {
                    kept.append(kept.length() == 0 ? "" : ",").append(token);
                }
            }
            req.header("connection", kept.length() == 0 ? null : kept.toString());
        }
        return true;
    }

    private static boolean offersTrailers(String te) {
        for (String coding : te.split(",")) {
            if (coding.strip().equalsIgnoreCase("trailers")) {
                return true;
            }
        }
        return false;
    }

    private static boolean containsIgnoreCase(List<String> tokens, String token) {
        for (String t : tokens) {
            if (t.equalsIgnoreCase(token)) {
                return true;
            }
        }
        return false;
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
     * A control character or a byte above 0x7E (raw UTF-8, which Netty reads as ISO-8859-1) is refused.
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

    /** Whether the URI begins with a scheme of letters, as Envoy's URL parser reads one, and {@code ://}. */
    static boolean otherScheme(String uri) {
        int i = 0;
        while (i < uri.length() && (uri.charAt(i) >= 'a' && uri.charAt(i) <= 'z'
                || uri.charAt(i) >= 'A' && uri.charAt(i) <= 'Z')) {
            i++;
        }
        return i > 0 && uri.startsWith("://", i);
    }

    /** The index after {@code http://} or {@code https://} (any case) when the URI is in absolute form, else -1. */
    static int absoluteFormSchemeEnd(String uri) {
        if (uri.regionMatches(true, 0, "http://", 0, 7)) {
            return 7;
        }
        return uri.regionMatches(true, 0, "https://", 0, 8) ? 8 : -1;
    }
}
