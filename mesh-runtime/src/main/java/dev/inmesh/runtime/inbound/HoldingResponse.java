package dev.inmesh.runtime.inbound;

import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerResponse;
import java.util.function.UnaryOperator;

/**
 * The service's response under a Lua filter whose response script may call {@code body()}: as Envoy's Lua filter
 * buffers the body for {@code body()} before the headers go on, what the service writes is held, not sent, until it
 * ends; then {@code ended} encodes the response (the route's header rules, the response scripts over the headers and
 * the body) and the response goes on, head and body as the encoding left them, to the filters in front of it (the
 * compressor's). A body past {@code limit} bytes is not held further: {@code tooLarge} answers the request instead,
 * and what the service still writes fails. A file sent with {@code sendFile} (which the server writes itself) is not
 * held: the response goes as the service sends it, what it wrote before first.
 */
final class HoldingResponse extends DelegatingResponse {
    private final long limit;
    private final UnaryOperator<Buffer> ended;
    private final Runnable tooLarge;
    /** What the service wrote so far; null once it went on, was given up, or was answered too large. */
    private Buffer held = Buffer.buffer();
    /** Whether the response goes on as the service writes it (a file): nothing is held. */
    private boolean passing;

    /**
     * @param ended encodes the response when the service ended it: given the body (null for none), the body to send
     *     (null for none)
     * @param tooLarge answers the request in place of a body longer than {@code limit}
     */
    HoldingResponse(HttpServerResponse delegate, long limit, UnaryOperator<Buffer> ended, Runnable tooLarge) {
        super(delegate);
        this.limit = limit;
        this.ended = ended;
        this.tooLarge = tooLarge;
    }

    @Override
    public Future<Void> write(Buffer data) {
        if (passing) {
            return delegate.write(data);
        }
        if (held == null || delegate.closed()) {
            free();
            return Future.failedFuture(new IllegalStateException("the response was answered or closed"));
        }
        held.appendBuffer(data);
        if (held.length() > limit) {
            free();
            tooLarge.run();
            return Future.failedFuture(new IllegalStateException(
                    "the response's body outgrew the buffer of a Lua script's body()"));
        }
        return Future.succeededFuture();
    }

    @Override
    public Future<Void> end(Buffer data) {
        Future<Void> written = write(data);
        return written.failed() || passing ? written.compose(v -> delegate.end()) : end();
    }

    @Override
    public Future<Void> end() {
        if (passing) {
            return delegate.end();
        }
        Buffer body = held;
        if (body == null) {
            return Future.failedFuture(new IllegalStateException("the response was answered or closed"));
        }
        held = null;
        Buffer out = ended.apply(body.length() == 0 ? null : body);
        if (delegate.isChunked() && delegate.headers().contains("content-length")) {
            delegate.setChunked(false); // a script's setBytes gave its length: it goes whole, as Envoy's
        }
        return out == null ? delegate.end() : delegate.end(out);
    }

    /** The head goes with the body, once the scripts ran: not before. */
    @Override
    public Future<Void> writeHead() {
        return passing ? delegate.writeHead() : Future.succeededFuture();
    }

    @Override
    public boolean writeQueueFull() {
        return passing && delegate.writeQueueFull();
    }

    @Override
    public Future<Void> sendFile(String filename, long offset, long length) {
        return pass().compose(v -> delegate.sendFile(filename, offset, length));
    }

    @Override
    public Future<Void> sendFile(java.nio.channels.FileChannel channel, long offset, long length) {
        return pass().compose(v -> delegate.sendFile(channel, offset, length));
    }

    @Override
    public Future<Void> sendFile(java.io.RandomAccessFile file, long offset, long length) {
        return pass().compose(v -> delegate.sendFile(file, offset, length));
    }

    /** The response goes as the service sends it from now on, what it wrote before first. */
    private Future<Void> pass() {
        passing = true;
        Buffer before = held;
        held = null;
        return before == null || before.length() == 0 ? Future.succeededFuture() : delegate.write(before);
    }

    @Override
    public Future<Void> reset(long code) {
        free();
        return delegate.reset(code);
    }

    /** What was held is let go: the response will not go on (its stream or connection closed, or it was reset). */
    void free() {
        held = null;
    }
}
