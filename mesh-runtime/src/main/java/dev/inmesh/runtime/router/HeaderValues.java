package dev.inmesh.runtime.router;

import io.vertx.core.MultiMap;
import java.util.List;
import java.util.Map;

/**
 * Header values as Envoy's header map reads them: a header sent on several lines read as one ({@link #joined}), and
 * which header values may pass between HTTP versions: none with a CR, LF or NUL (RFC 9113 8.2.1). HPACK carries any
 * octet in a value, so an HTTP/2 peer can send one; written into an HTTP/1 message it would end the header line there
 * and start another, as Envoy's HTTP/2 codec refuses it.
 */
public final class HeaderValues {
    private HeaderValues() {}

    /** Whether no value of {@code headers} holds a CR, LF or NUL. */
    public static boolean valid(MultiMap headers) {
        for (Map.Entry<String, String> e : headers) {
            String v = e.getValue();
            for (int i = 0, n = v.length(); i < n; i++) {
                char c = v.charAt(i);
                if (c == '\r' || c == '\n' || c == 0) {
                    return false;
                }
            }
        }
        return true;
    }

    /**
     * The header {@code name} as Envoy reads it ({@code HeaderUtility::getAllOfHeaderAsString}, what route, RBAC and
     * access log header matchers and CEL's {@code headers[...]} see): the values of all its lines joined with
     * {@code ,}, or null when absent.
     */
    public static String joined(MultiMap headers, CharSequence name) {
        List<String> all = headers.getAll(name);
        return all.isEmpty() ? null : all.size() == 1 ? all.get(0) : String.join(",", all);
    }
}
