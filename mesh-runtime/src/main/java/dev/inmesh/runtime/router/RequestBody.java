package dev.inmesh.runtime.router;

import dev.inmesh.runtime.stats.DownstreamStats;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;

/**
 * A request's body as a filter reads it before the request goes on, as Envoy's ext_authz filter does under
 * {@code with_request_body}: the body is held (not yet sent on) until it ends or {@code limit} bytes of it came,
 * then the filter reads what came; whatever it decides, the body is then sent on whole, what was held first, as if
 * nothing had read it. Each way in gives its requests' bodies: the router's from a {@link RouterRequest}'s whole body
 * or {@link RequestBodyStream}, the in-JVM inbound handler's from the server request.
 */
@FunctionalInterface
public interface RequestBody {
    /** A request that has no body to wait for (only headers), or one whose body cannot be read before it goes on. */
    RequestBody NONE = limit -> Future.succeededFuture();

    /**
     * Holds the body until it ended or at least {@code limit} bytes of it came (or its caller left), whichever first.
     *
     * @return all the body that came by then (possibly more than {@code limit}), or null when the request has no
     *     body (an empty one included); failed with {@link Gone} when the caller left (or the exchange ended) first
     */
    Future<Buffer> hold(long limit);

    /**
     * The body a filter waited for will not come: its caller reset the request, its connection closed, or the exchange
     * ended. As Envoy destroys a stream's filters on a reset, the filter then decides nothing (its check is not sent).
     */
    final class Gone extends RuntimeException {
        public Gone() {
            super("the request's caller left before its body came", null, false, false);
        }
    }

    /**
     * What to hold ({@link #hold}) of a body a filter needs whole within {@code max} bytes: one byte more, so that a
     * body longer than {@code max} shows as such ({@link #tooLarge}).
     */
    static long pastLimit(long max) {
        return max == Long.MAX_VALUE ? max : max + 1;
    }

    /**
     * Whether a body held up to {@link #pastLimit} is longer than {@code max} bytes, the limit of a filter that needs
     * it whole: Envoy's connection manager then answers 413 ({@code request_payload_too_large}) and counts it in its
     * {@code downstream_rq_too_large}, as this counts it in {@code stats} (unless null).
     */
    static boolean tooLarge(Buffer held, long max, DownstreamStats stats) {
        if (held == null || held.length() <= max) {
            return false;
        }
        if (stats != null) {
            stats.requestTooLarge();
        }
        return true;
    }

    /** The chunks held, {@code size} bytes in all, as one buffer: what {@link #hold} answers (null for none). */
    static Buffer joined(Iterable<Buffer> chunks, long size) {
        if (size == 0) {
            return null;
        }
        Buffer whole = Buffer.buffer((int) Math.min(size, Integer.MAX_VALUE));
        chunks.forEach(whole::appendBuffer);
        return whole;
    }
}
