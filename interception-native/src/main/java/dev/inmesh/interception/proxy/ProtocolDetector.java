package dev.inmesh.interception.proxy;

import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Envoy's tls_inspector and http_inspector on the first bytes of a connection: a TLS ClientHello gives transport
 * {@code tls}, the SNI and the ALPN list; the HTTP/2 preface gives {@code h2c}; an HTTP/1 request line gives
 * {@code http/1.1} for version 1.1, else {@code http/1.0}; anything else is raw. Pure: the caller feeds bytes until
 * the answer is final, and decides what a timeout or the end of input before it means.
 */
final class ProtocolDetector {
    static final String H2_PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    /**
     * The most bytes the HTTP inspector reads looking for the end of a request line, as Envoy's http_inspector
     * (64 KiB): with that many and no line end yet, the connection is dropped.
     */
    static final int MAX_HTTP_LINE = 64 * 1024;

    private static final byte[] PREFACE = H2_PREFACE.getBytes(StandardCharsets.US_ASCII);
    private static final List<String> METHODS = List.of("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT",
            "OPTIONS", "TRACE", "PATCH", "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK",
            "REPORT", "MKACTIVITY", "CHECKOUT", "MERGE", "M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "PURGE",
            "SEARCH", "ACL", "BIND", "LINK", "MKCALENDAR", "REBIND", "UNBIND", "UNLINK");

    private final boolean tlsInspector;
    private final boolean httpInspector;

    /**
     * @param tlsInspector whether to look for a ClientHello
     * @param httpInspector whether to look for HTTP (only on connections that are not TLS)
     */
    ProtocolDetector(boolean tlsInspector, boolean httpInspector) {
        this.tlsInspector = tlsInspector;
        this.httpInspector = httpInspector;
    }

    /** What the inspectors found; {@link #done} false means more bytes are needed. */
    record Detection(boolean done, String transportProtocol, String serverName, List<String> applicationProtocols) {
        static final Detection NEED_MORE = new Detection(false, "raw_buffer", "", List.of());
        static final Detection RAW = new Detection(true, "raw_buffer", "", List.of());
        /**
         * Final: the connection is to be closed without a filter chain (an unfinished overlong request line, or a
         * ClientHello unfinished in 64 KiB).
         */
        static final Detection DROP = new Detection(true, "", "", List.of());

        static Detection raw(List<String> protocols) {
            return new Detection(true, "raw_buffer", "", protocols);
        }
    }

    boolean enabled() {
        return tlsInspector || httpInspector;
    }

    /** Inspects the first {@code len} bytes. */
    Detection detect(byte[] b, int len) {
        if (tlsInspector && len > 0 && ClientHello.looksLikeTls(b, len)) {
            ClientHello.Result r = ClientHello.parse(b, len);
            switch (r.status()) {
                case HELLO -> {
                    // the server name in lower case, as Envoy keeps a connection's requested server name (its
                    // access log's %REQUESTED_SERVER_NAME%, RBAC's requested_server_name)
                    return new Detection(true, "tls", r.hello().serverName().toLowerCase(java.util.Locale.ROOT),
                            r.hello().alpn());
                }
                case NEED_MORE -> {
                    return Detection.NEED_MORE;
                }
                case TOO_LARGE -> {
                    return Detection.DROP;
                }
                case NOT_TLS -> {
                    // fall through to HTTP
                }
            }
        }
        if (!httpInspector) {
            return len == 0 && tlsInspector ? Detection.NEED_MORE : Detection.RAW;
        }
        return detectHttp(b, len);
    }

    static Detection detectHttp(byte[] b, int len) {
        // The HTTP/2 preface, byte by byte.
        int n = Math.min(len, PREFACE.length);
        boolean prefaceSoFar = true;
        for (int i = 0; i < n; i++) {
            if (b[i] != PREFACE[i]) {
                prefaceSoFar = false;
                break;
            }
        }
        if (prefaceSoFar) {
            return len >= PREFACE.length ? Detection.raw(List.of("h2c")) : Detection.NEED_MORE;
        }
        // An HTTP/1 request line: METHOD SP target SP HTTP/1.x CRLF
        int sp = -1;
        for (int i = 0; i < len && i < 20; i++) {
            if (b[i] == ' ') {
                sp = i;
                break;
            }
        }
        if (sp < 0) {
            return len >= 20 || !methodPrefix(b, len) ? Detection.RAW : Detection.NEED_MORE;
        }
        String method = new String(b, 0, sp, StandardCharsets.US_ASCII);
        if (!METHODS.contains(method)) {
            return Detection.RAW;
        }
        for (int i = sp + 1; i < len; i++) {
            if (b[i] == '\n') {
                int end = i > 0 && b[i - 1] == '\r' ? i - 1 : i;
                return requestLine(new String(b, sp + 1, Math.max(0, end - sp - 1), StandardCharsets.US_ASCII));
            }
        }
        return len >= MAX_HTTP_LINE ? Detection.DROP : Detection.NEED_MORE;
    }

    /**
     * What Envoy's HTTP inspector makes of a request line after its method: {@code http/1.1} for version 1.1; for
     * any other version of the form {@code HTTP/d.d}, or none (an HTTP/0.9 line, the target alone),
     * {@code http/1.0}, as its HTTP/1 parsers accept those; anything else is not HTTP.
     */
    private static Detection requestLine(String targetAndVersion) {
        int sp = targetAndVersion.lastIndexOf(' ');
        if (sp < 0) {
            return targetAndVersion.isEmpty() ? Detection.RAW : Detection.raw(List.of("http/1.0"));
        }
        String version = targetAndVersion.substring(sp + 1);
        if (sp == 0 || !version.matches("HTTP/[0-9]\\.[0-9]")) {
            return Detection.RAW;
        }
        return Detection.raw(List.of(version.equals("HTTP/1.1") ? "http/1.1" : "http/1.0"));
    }

    private static boolean methodPrefix(byte[] b, int len) {
        String s = new String(b, 0, len, StandardCharsets.US_ASCII);
        for (String m : METHODS) {
            if (m.startsWith(s)) {
                return true;
            }
        }
        return false;
    }
}
