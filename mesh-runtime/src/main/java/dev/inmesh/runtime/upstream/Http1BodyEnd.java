package dev.inmesh.runtime.upstream;

import io.netty.buffer.ByteBuf;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpHeaderValues;

/**
 * Where the body of an HTTP/1 answer ends among the bytes after its head, as Envoy's codec frames it, found as the
 * bytes pass on unchanged: after its {@code Content-Length}, after its last chunk and its trailers when chunked, at
 * the connection's end when it has neither; a 204's and a 304's at once. The head's framing is one Envoy's codec takes
 * ({@link Http1ResponseFraming#refusal}). A chunk size above the body's limit breaks the chunks: for bytes Netty's
 * decoder reads ({@link #DECODED_MAX_CHUNK}), 2 GiB or more, since it reads a size in an {@code int}, so that a larger
 * one would be read wrapped ({@code 100000005} as 5), where Envoy's codec reads it whole or refuses it (no chunk Netty
 * reads right is refused); for bytes relayed raw, which no decoder reads ({@link #RELAYED_MAX_CHUNK}), a size no chunk
 * reaches. (The upstream HTTP/1 client and the standalone proxy's request side follow chunks Netty decodes with it,
 * the proxy's upgrade side an upstream's refusal it relays raw.)
 */
public final class Http1BodyEnd {
    /** The longest chunk-size or trailer line taken: a longer one breaks the framing. */
    private static final int MAX_LINE = 64 * 1024;
    /** The largest chunk size Netty's decoder reads right (an {@code int}), the limit of the bytes it decodes. */
    public static final long DECODED_MAX_CHUNK = Integer.MAX_VALUE;
    /** The largest chunk size taken of bytes relayed raw (under 2^40: a size no chunk reaches). */
    public static final long RELAYED_MAX_CHUNK = (1L << 40) - 1;
    /** {@link #left} of a body that ends with the connection, or chunked. */
    private static final long TO_THE_END = -1;

    private enum Chunks { SIZE, EXTENSION, SIZE_LF, DATA, DATA_CR, DATA_LF, TRAILER, TRAILER_LF }

    private final boolean chunked;
    /** The largest chunk size taken: a larger one breaks the framing. */
    private final long maxChunk;
    /** The bytes of the length still to come; {@link #TO_THE_END} when there is no length. */
    private long left;
    private Chunks at = Chunks.SIZE;
    /** The bytes of the chunk being read still to come, or its size so far while its line is read. */
    private long chunk;
    /** The characters of the size or trailer line read so far. */
    private int line;
    /** Where, in the buffer {@link #take} reads, the size line being read began (its start, if in an earlier one). */
    private int sizeFrom;
    /** Where, in the buffer {@link #take} read last, the bytes that broke the chunks begin. */
    private int brokenAt;
    private boolean ended;

    private Http1BodyEnd(long left, boolean chunked, long maxChunk) {
        this.left = left;
        this.chunked = chunked;
        this.maxChunk = maxChunk;
        ended = left == 0;
    }

    /**
     * The body of an answer with {@code status} and {@code headers}, its chunks (if chunked) of at most
     * {@code maxChunk} bytes each ({@link #DECODED_MAX_CHUNK} or {@link #RELAYED_MAX_CHUNK}); null when its
     * {@code Content-Length} is no length, which Envoy's codec refuses.
     */
    public static Http1BodyEnd of(int status, HttpHeaders headers, long maxChunk) {
        if (status == 204 || status == 304) {
            return new Http1BodyEnd(0, false, maxChunk);
        }
        if (headers.containsValue(HttpHeaderNames.TRANSFER_ENCODING, HttpHeaderValues.CHUNKED, true)) {
            return new Http1BodyEnd(TO_THE_END, true, maxChunk);
        }
        String length = headers.get(HttpHeaderNames.CONTENT_LENGTH);
        if (length == null) {
            return new Http1BodyEnd(TO_THE_END, false, maxChunk);
        }
        try {
            long n = Long.parseLong(length.strip());
            return n < 0 ? null : new Http1BodyEnd(n, false, maxChunk);
        } catch (NumberFormatException e) {
            return null;
        }
    }

    /** A chunked body Netty's decoder reads ({@link #DECODED_MAX_CHUNK}), from its first size line on. */
    public static Http1BodyEnd chunked() {
        return new Http1BodyEnd(TO_THE_END, true, DECODED_MAX_CHUNK);
    }

    /** Whether the next byte of a chunked body begins a chunk's size line. */
    public boolean atSizeLine() {
        return chunked && !ended && at == Chunks.SIZE && line == 0;
    }

    /**
     * Where, in the buffer {@link #take} last refused, the bytes that broke the chunks begin: the size line they are
     * in (from the buffer's reader index when it began in an earlier one), else the byte itself; the bytes before it
     * are the body's, whole chunks and framing.
     */
    public int brokenAt() {
        return brokenAt;
    }

    /** Whether the body has ended. */
    public boolean ended() {
        return ended;
    }

    /**
     * How many of {@code b}'s readable bytes, from its reader index, are the body's (fewer than all once it ended;
     * none after); -1 when they break its chunks.
     */
    public int take(ByteBuf b) {
        int from = b.readerIndex();
        int to = b.writerIndex();
        if (ended) {
            return 0;
        }
        if (!chunked) {
            if (left == TO_THE_END) {
                return to - from;
            }
            int n = (int) Math.min(left, to - from);
            left -= n;
            ended = left == 0;
            return n;
        }
        int i = from;
        sizeFrom = from;
        while (i < to && !ended) {
            if (at == Chunks.SIZE && line == 0) {
                sizeFrom = i;
            }
            if (at == Chunks.DATA) {
                int n = (int) Math.min(chunk, to - i);
                i += n;
                chunk -= n;
                if (chunk == 0) {
                    at = Chunks.DATA_CR;
                }
            } else if (!chunkFraming(b.getByte(i++))) {
                brokenAt = at == Chunks.SIZE || at == Chunks.EXTENSION || at == Chunks.SIZE_LF ? sizeFrom : i - 1;
                return -1;
            }
        }
        return i - from;
    }

    /** Reads one byte of the chunks' framing (their size lines, the line ends after their data, the trailers). */
    private boolean chunkFraming(byte c) {
        switch (at) {
            case SIZE -> {
                if (line == 0 && (c == ' ' || c == '\t')) {
                    return true; // whitespace before the size, which Netty's decoder skips too
                }
                int digit = Character.digit((char) (c & 0xff), 16);
                if (digit >= 0) {
                    chunk = chunk * 16 + digit;
                    line++;
                    return chunk <= maxChunk;
                }
                if (line > 0 && (c == ';' || c == ' ' || c == '\t')) {
                    at = Chunks.EXTENSION;
                    return true;
                }
                return line > 0 && sizeLineEnd(c);
            }
            case EXTENSION -> {
                return c == '\r' || c == '\n' ? sizeLineEnd(c) : ++line <= MAX_LINE;
            }
            case SIZE_LF -> {
                return c == '\n' && sizeLineEnd(c);
            }
            case DATA_CR -> {
                if (c == '\r') {
                    at = Chunks.DATA_LF;
                    return true;
                }
                return c == '\n' && nextChunk();
            }
            case DATA_LF -> {
                return c == '\n' && nextChunk();
            }
            case TRAILER -> {
                if (c == '\r') {
                    at = Chunks.TRAILER_LF;
                    return true;
                }
                return c == '\n' ? trailerLineEnd() : ++line <= MAX_LINE;
            }
            case TRAILER_LF -> {
                return c == '\n' && trailerLineEnd();
            }
            default -> {
                return false;
            }
        }
    }

    /** A size line ends (its CR, then its LF; a bare LF too): the chunk's data, or the trailers after the last. */
    private boolean sizeLineEnd(byte c) {
        if (c == '\r') {
            at = Chunks.SIZE_LF;
            return true;
        }
        if (c != '\n') {
            return false;
        }
        line = 0;
        at = chunk == 0 ? Chunks.TRAILER : Chunks.DATA;
        return true;
    }

    private boolean nextChunk() {
        at = Chunks.SIZE;
        chunk = 0;
        line = 0;
        return true;
    }

    /** A trailer line ends: an empty one ends the body. */
    private boolean trailerLineEnd() {
        ended = line == 0;
        line = 0;
        at = Chunks.TRAILER;
        return true;
    }
}
