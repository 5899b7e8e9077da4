package dev.inmesh.runtime.stats;

import io.vertx.core.MultiMap;
import java.util.Map;

/**
 * The size of a request's or response's head as HTTP/1.1 writes it on the wire: Istio's {@code istio_request_bytes}
 * and {@code istio_response_bytes} are the stream's wire bytes (Envoy's downstream bytes meter: head, body and
 * trailers), where the access log's {@code %BYTES_RECEIVED%} and {@code %BYTES_SENT%} count the body only. A head that
 * came over HTTP/2 is counted as HTTP/1.1 would write it (Envoy counts its HPACK-compressed frames, fewer bytes).
 */
public final class HeadSize {
    private static final int CRLF = 2;
    private static final int COLON_SPACE = 2;
    /** {@code " HTTP/1.1"} after the request target, {@code "HTTP/1.1 "} before the status code. */
    private static final int VERSION = 9;

    private HeadSize() {}

    /**
     * A request's head: {@code METHOD SP TARGET SP HTTP/1.1 CRLF}, each header {@code name: value CRLF} (a
     * {@code host} line for {@code authority} when the headers have none, as HTTP/2's {@code :authority} is one), and
     * the empty line; 0 for a request without a method (one the codec refused).
     */
    public static long request(String method, String target, String authority, MultiMap headers) {
        if (method == null) {
            return 0;
        }
        long n = method.length() + 1 + (target == null ? 0 : target.length()) + VERSION + CRLF;
        n += fields(headers);
        if (authority != null && !authority.isEmpty() && (headers == null || !headers.contains("host"))) {
            n += "host".length() + COLON_SPACE + authority.length() + CRLF;
        }
        return n + CRLF;
    }

    /**
     * A response's head and trailers: {@code HTTP/1.1 CODE SP REASON CRLF}, each header line, the empty line, and each
     * trailer line; 0 when no response was sent ({@code status} 0).
     */
    public static long response(int status, MultiMap headers, MultiMap trailers) {
        if (status <= 0) {
            return 0;
        }
        String reason = dev.inmesh.runtime.router.ReasonPhrases.of(status);
        return VERSION + 3 + 1 + reason.length() + CRLF + fields(headers) + CRLF + fields(trailers);
    }

    private static long fields(MultiMap m) {
        if (m == null) {
            return 0;
        }
        long n = 0;
        if (m instanceof io.netty.handler.codec.http.HttpHeaders netty) {
            // Vert.x's HTTP/1 headers: their names and values as they are held, no String made for each
            var it = netty.iteratorCharSequence();
            while (it.hasNext()) {
                Map.Entry<CharSequence, CharSequence> e = it.next();
                n += e.getKey().length() + COLON_SPACE + e.getValue().length() + CRLF;
            }
            return n;
        }
        for (Map.Entry<String, String> e : m) {
            n += e.getKey().length() + COLON_SPACE + e.getValue().length() + CRLF;
        }
        return n;
    }
}
