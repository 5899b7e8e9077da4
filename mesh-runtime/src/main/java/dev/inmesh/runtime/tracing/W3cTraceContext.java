package dev.inmesh.runtime.tracing;

import io.vertx.core.MultiMap;
import java.util.List;

/**
 * W3C Trace Context as Envoy's OpenTelemetry tracer reads and writes it: the caller's context from
 * {@code traceparent} ({@code version-traceid-parentid-flags}), which must be exactly 55 characters of four hex
 * fields of 2, 32, 16 and 2 digits, with a trace id and a parent id that are not all zeros (any version, upper-case
 * digits included, as Envoy's check); its sampled flag is bit 0 of the flags. A {@code traceparent} that breaks any of
 * these is malformed ({@link SpanContext#INVALID}): Envoy then gives the request no span, so nothing is reported and
 * the headers go on as they came. The caller's {@code tracestate} (all its header lines joined with commas, as
 * Envoy's tracer and RFC 7230 combine repeated fields) is kept with a well-formed context and passed on; without a
 * {@code traceparent} it means nothing. Upstream, {@code traceparent} is version
 * {@code 00}, the trace id, the span's id and {@code 01} or {@code 00}.
 */
public final class W3cTraceContext {
    public static final String TRACEPARENT = "traceparent";
    public static final String TRACESTATE = "tracestate";
    private static final int LENGTH = 55;

    private W3cTraceContext() {}

    /** The caller's context (no parent id: W3C carries none); null when it sent no {@code traceparent}. */
    public static SpanContext extract(MultiMap headers) {
        String tp = headers.get(TRACEPARENT);
        if (tp == null) {
            return null;
        }
        if (tp.length() != LENGTH || tp.charAt(2) != '-' || tp.charAt(35) != '-' || tp.charAt(52) != '-'
                || !hex(tp, 0, 2) || !hex(tp, 3, 35) || !hex(tp, 36, 52) || !hex(tp, 53, 55)) {
            return SpanContext.INVALID;
        }
        long high = Long.parseUnsignedLong(tp, 3, 19, 16);
        long low = Long.parseUnsignedLong(tp, 19, 35, 16);
        long parent = Long.parseUnsignedLong(tp, 36, 52, 16);
        if (high == 0 && low == 0 || parent == 0) {
            return SpanContext.INVALID;
        }
        boolean sampled = (Character.digit(tp.charAt(54), 16) & 1) != 0;
        return new SpanContext(high, low, parent, 0, sampled);
    }

    /**
     * The caller's {@code tracestate}: its header lines, in order, joined with {@code ,} (a list split over several
     * lines is one list); null when it sent none.
     */
    static String tracestate(MultiMap headers) {
        List<String> lines = headers.getAll(TRACESTATE);
        return lines.isEmpty() ? null : lines.size() == 1 ? lines.get(0) : String.join(",", lines);
    }

    private static boolean hex(String s, int from, int to) {
        for (int i = from; i < to; i++) {
            char c = s.charAt(i);
            if (!(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F')) {
                return false;
            }
        }
        return true;
    }

    /** The {@code traceparent} of a span: {@code 00-} trace id {@code -} span id {@code -01} (or {@code -00}). */
    public static String traceparent(long traceIdHigh, long traceId, long spanId, boolean sampled) {
        return "00-" + SpanContext.hex(traceIdHigh) + SpanContext.hex(traceId) + "-" + SpanContext.hex(spanId)
                + (sampled ? "-01" : "-00");
    }

    /**
     * Puts a span's context on a request going upstream: its {@code traceparent}, and the caller's
     * {@code tracestate} when it had one (else none).
     */
    static void inject(MultiMap headers, long traceIdHigh, long traceId, long spanId, boolean sampled,
                       String tracestate) {
        headers.set(TRACEPARENT, traceparent(traceIdHigh, traceId, spanId, sampled));
        if (tracestate != null && !tracestate.isEmpty()) {
            headers.set(TRACESTATE, tracestate);
        } else {
            headers.remove(TRACESTATE);
        }
    }
}
