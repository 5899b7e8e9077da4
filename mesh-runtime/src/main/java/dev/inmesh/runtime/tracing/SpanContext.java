package dev.inmesh.runtime.tracing;

/**
 * The trace context a request carries (B3, or W3C's {@code traceparent}): its trace id (128-bit when
 * {@code traceIdHigh} is not 0), the caller's span id, that span's parent (0: none; W3C carries none) and whether the
 * trace is sampled.
 */
public record SpanContext(long traceIdHigh, long traceId, long spanId, long parentId, boolean sampled) {
    /** A context that is malformed: Envoy traces such a request with no span (nothing reported, nothing injected). */
    public static final SpanContext INVALID = new SpanContext(0, 0, 0, 0, false);

    /** The trace id as B3 and Zipkin write it: 16 hex digits, or 32 for a 128-bit id. */
    public String traceIdHex() {
        return traceIdHigh == 0 ? hex(traceId) : hex(traceIdHigh) + hex(traceId);
    }

    /** An id as B3 and Zipkin write it: 16 lower-case hex digits. */
    public static String hex(long id) {
        String s = Long.toHexString(id);
        return s.length() == 16 ? s : "0000000000000000".substring(s.length()) + s;
    }
}
