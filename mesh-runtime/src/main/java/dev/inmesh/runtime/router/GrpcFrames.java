package dev.inmesh.runtime.router;

import io.vertx.core.buffer.Buffer;

/**
 * Counts the gRPC messages in a body as it passes, chunk by chunk, as Envoy's gRPC statistics filter finds message
 * boundaries: each message is a 5-byte prefix (a flags byte, 0 or 1 for compressed, then a 4-byte big-endian length)
 * and its payload, and a message counts once its flags byte is seen. A flags byte with other bits set is not gRPC:
 * counting stops there. Not thread-safe: one body's chunks come in order.
 */
public final class GrpcFrames {
    private static final int PREFIX = 5;

    private long count;
    /** The bytes of the current message's prefix read so far (0: the next byte starts a message). */
    private int prefixRead;
    private long length;
    /** The payload bytes of the current message still to skip. */
    private long payloadLeft;
    private boolean invalid;

    /** The messages whose start was seen. */
    public long count() {
        return count;
    }

    /** Counts the messages that start in this chunk of the body. */
    public void inspect(Buffer chunk) {
        int n = chunk.length();
        int i = 0;
        while (i < n && !invalid) {
            if (payloadLeft > 0) {
                int skip = (int) Math.min(payloadLeft, n - i);
                payloadLeft -= skip;
                i += skip;
                continue;
            }
            int b = chunk.getByte(i++) & 0xFF;
            if (prefixRead == 0) {
                if ((b & ~1) != 0) {
                    invalid = true;
                    return;
                }
                count++;
                length = 0;
                prefixRead = 1;
                continue;
            }
            length = length << 8 | b;
            if (++prefixRead == PREFIX) {
                prefixRead = 0;
                payloadLeft = length;
            }
        }
    }

    /** The messages in a whole body. */
    static long count(Buffer body) {
        if (body == null || body.length() == 0) {
            return 0;
        }
        GrpcFrames f = new GrpcFrames();
        f.inspect(body);
        return f.count();
    }
}
