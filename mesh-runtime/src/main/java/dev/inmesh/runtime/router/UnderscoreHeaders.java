package dev.inmesh.runtime.router;

import dev.inmesh.api.config.listener.HeadersWithUnderscoresAction;
import io.vertx.core.MultiMap;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A connection manager's {@code headers_with_underscores_action} on a request's headers, as Envoy's codecs apply it
 * before any filter runs: {@code DROP_HEADER} takes each header whose name has an underscore off, and
 * {@code REJECT_REQUEST} refuses the request (an HTTP/1 one answered 400 with {@link #HTTP1_DETAILS}, an HTTP/2 one's
 * stream reset with {@link #HTTP2_DETAILS}). Shared by the standalone proxy and the in-JVM handlers.
 */
public final class UnderscoreHeaders {
    /** Envoy's response code details of an HTTP/1 request refused for an underscore. */
    public static final String HTTP1_DETAILS = "http1.unexpected_underscore";
    /** Envoy's response code details of an HTTP/2 stream reset for an underscore. */
    public static final String HTTP2_DETAILS = "http2.unexpected_underscore";

    private UnderscoreHeaders() {}

    /** Whether a header name has an underscore. */
    public static boolean named(CharSequence name) {
        for (int i = 0; i < name.length(); i++) {
            if (name.charAt(i) == '_') {
                return true;
            }
        }
        return false;
    }

    /**
     * Applies {@code action} to {@code headers}: true when the request is to be refused ({@code REJECT_REQUEST} and
     * a name with an underscore); under {@code DROP_HEADER} such headers are taken off. Nothing is allocated when no
     * name has one. What it does is counted in the codec statistics of {@code stats}, the connection manager's
     * (null: nowhere), as the HTTP/1 or HTTP/2 codec's, as Envoy's codecs count it
     * ({@code requests_rejected_with_underscores_in_headers}, {@code dropped_headers_with_underscores}, one a header).
     */
    public static boolean refuses(HeadersWithUnderscoresAction action, MultiMap headers,
                                  dev.inmesh.runtime.stats.DownstreamStats stats, boolean http2) {
        if (action == HeadersWithUnderscoresAction.ALLOW || headers.isEmpty()) {
            return false;
        }
        List<String> dropped = null;
        for (Map.Entry<String, String> e : headers) {
            if (named(e.getKey())) {
                if (action == HeadersWithUnderscoresAction.REJECT_REQUEST) {
                    if (stats != null) {
                        stats.codec().underscoreRejected(http2);
                    }
                    return true;
                }
                if (dropped == null) {
                    dropped = new ArrayList<>(2);
                }
                dropped.add(e.getKey());
            }
        }
        if (dropped != null) {
            dropped.forEach(headers::remove);
            if (stats != null) {
                stats.codec().underscoresDropped(http2, dropped.size());
            }
        }
        return false;
    }
}
