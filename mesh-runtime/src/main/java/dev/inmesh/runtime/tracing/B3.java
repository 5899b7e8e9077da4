package dev.inmesh.runtime.tracing;

import io.vertx.core.MultiMap;

/**
 * Zipkin's B3 propagation as Envoy's Zipkin tracer reads and writes it: the context of a request from
 * {@code x-b3-traceid}, {@code x-b3-spanid}, {@code x-b3-parentspanid} and {@code x-b3-sampled}, or from the single
 * {@code b3} header, which wins when both are there; the first value of each header only (they come from the caller).
 * Ids are hex: a trace id of 32 digits is 128-bit, any other of 1 to 16 digits 64-bit, a span id 1 to 16 digits. A
 * malformed context is no context at all, as Envoy then gives the request no span: {@link #INVALID}. Upstream, the
 * span's context goes in the four {@code x-b3-*} headers ({@code x-b3-sampled} {@code 1} or {@code 0}); a caller's
 * {@code b3} and {@code x-b3-flags} pass as they came.
 */
public final class B3 {
    public static final String TRACE_ID = "x-b3-traceid";
    public static final String SPAN_ID = "x-b3-spanid";
    public static final String PARENT_SPAN_ID = "x-b3-parentspanid";
    public static final String SAMPLED = "x-b3-sampled";
    public static final String SINGLE = "b3";

    /** A context that is malformed: Envoy traces such a request with no span (nothing reported, nothing injected). */
    public static final SpanContext INVALID = SpanContext.INVALID;

    private B3() {}

    /**
     * The sampling decision the caller sent, else {@code localDecision}: the flag of a {@code b3} header of one of
     * its well-formed lengths ({@code 0} not sampled; {@code 1} or {@code d}, debug, sampled; anything else, or another
     * length, the local decision); else {@code x-b3-sampled} ({@code 1} or {@code true}: sampled, any other value
     * not).
     */
    public static boolean sampled(MultiMap headers, boolean localDecision) {
        String b3 = headers.get(SINGLE);
        if (b3 != null) {
            int at = switch (b3.length()) {
                case 1 -> 0;
                case 35, 52 -> 34;
                case 51, 68 -> 50;
                default -> -1;
            };
            if (at < 0) {
                return localDecision;
            }
            char c = b3.charAt(at);
            return c == '0' ? false : c == '1' || c == 'd' || localDecision;
        }
        String s = headers.get(SAMPLED);
        if (s == null) {
            return localDecision;
        }
        return s.equals("1") || s.equals("true");
    }

    /**
     * The caller's context, with {@code sampled} as its decision; null when it sent none (or a {@code b3} of only a
     * sampling flag), {@link #INVALID} when what it sent is malformed.
     */
    public static SpanContext extract(MultiMap headers, boolean sampled) {
        String b3 = headers.get(SINGLE);
        if (b3 != null) {
            return single(b3, sampled);
        }
        String trace = headers.get(TRACE_ID);
        String span = headers.get(SPAN_ID);
        if (trace == null || span == null) {
            return null;
        }
        String high = trace.length() == 32 ? trace.substring(0, 16) : null;
        String low = high == null ? trace : trace.substring(16);
        String p = headers.get(PARENT_SPAN_ID);
        boolean parent = p != null && !p.isEmpty();
        if (high != null && !valid(high) || !valid(low) || !valid(span) || parent && !valid(p)) {
            return INVALID;
        }
        return new SpanContext(high == null ? 0 : id(high), id(low), id(span), parent ? id(p) : 0, sampled);
    }

    /** The single header: {@code traceid-spanid[-sampled[-parentspanid]]}, or only a sampling flag. */
    private static SpanContext single(String b3, boolean sampled) {
        int n = b3.length();
        if (n == 1) {
            return flag(b3.charAt(0)) ? null : INVALID;
        }
        if (n < 16 + 1 + 16 || n > 32 + 1 + 16 + 3 + 16) {
            return INVALID;
        }
        boolean wide = b3.charAt(32) == '-';
        String high = wide ? b3.substring(0, 16) : null;
        String low = wide ? b3.substring(16, 32) : b3.substring(0, 16);
        int pos = wide ? 32 : 16;
        if (wide && !valid(high) || !valid(low) || b3.charAt(pos++) != '-') {
            return INVALID;
        }
        String span = b3.substring(pos, Math.min(n, pos + 16));
        pos += 16;
        if (!valid(span)) {
            return INVALID;
        }
        long parent = 0;
        if (n > pos) {
            if (n == pos + 1 || b3.charAt(pos++) != '-') {
                return INVALID;
            }
            boolean flagHere = n == pos + 1 || n >= pos + 2 && b3.charAt(pos + 1) == '-';
            if (!flagHere || !flag(b3.charAt(pos))) {
                return INVALID;
            }
            pos++;
            if (n > pos) {
                if (n != pos + 17) {
                    return INVALID;
                }
                String p = b3.substring(pos + 1);
                if (!valid(p)) {
                    return INVALID;
                }
                parent = id(p);
            }
        }
        return new SpanContext(wide ? id(high) : 0, id(low), id(span), parent, sampled);
    }

    private static boolean flag(char c) {
        return c == '0' || c == '1' || c == 'd';
    }

    /** Whether {@code s} is an id: 1 to 16 hex digits. */
    private static boolean valid(String s) {
        int n = s.length();
        if (n == 0 || n > 16) {
            return false;
        }
        for (int i = 0; i < n; i++) {
            if (Character.digit(s.charAt(i), 16) < 0) {
                return false;
            }
        }
        return true;
    }

    private static long id(String s) {
        return Long.parseUnsignedLong(s, 16);
    }

    /** Puts a span's context on a request going upstream, as Envoy's Zipkin span injects it. */
    static void inject(MultiMap headers, long traceIdHigh, long traceId, long spanId, long parentId, boolean sampled) {
        headers.set(TRACE_ID, traceIdHigh == 0 ? SpanContext.hex(traceId)
                : SpanContext.hex(traceIdHigh) + SpanContext.hex(traceId));
        headers.set(SPAN_ID, SpanContext.hex(spanId));
        if (parentId != 0) {
            headers.set(PARENT_SPAN_ID, SpanContext.hex(parentId));
        } else {
            headers.remove(PARENT_SPAN_ID);
        }
        headers.set(SAMPLED, sampled ? "1" : "0");
    }
}
