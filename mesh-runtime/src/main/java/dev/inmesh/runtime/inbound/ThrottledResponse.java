package dev.inmesh.runtime.inbound;

import dev.inmesh.runtime.router.StreamRateLimiter;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Promise;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerResponse;

/**
 * The response a service writes under the fault filter's response rate limit ({@link StreamRateLimiter}): the head
 * goes out at the first write, not delayed, as Envoy's filter delays no headers; the body goes on at the fault's
 * rate, and the end (with the trailers the service set) once all of it went. A service that watches
 * {@link #writeQueueFull()} waits while more than the limiter's buffer is held. A file sent with {@code sendFile}
 * (which the server writes straight from the file) goes unthrottled.
 */
final class ThrottledResponse extends DelegatingResponse {
    private final StreamRateLimiter limiter;
    private Handler<Void> drain;
    private boolean ended;

    ThrottledResponse(HttpServerResponse delegate, long kbps, Context context) {
        super(delegate);
        this.limiter = new StreamRateLimiter(kbps, StreamRateLimiter.Clock.of(context), delegate::write, () -> { },
                () -> {
                    Handler<Void> h = drain;
                    if (h != null && !delegate.writeQueueFull()) {
                        h.handle(null);
                    }
                });
    }

    /** The head goes now; a body whose length the service left to the end gets it first, as the server would. */
    private void head(Buffer last) {
        if (delegate.headWritten()) {
            return;
        }
        if (last != null && !delegate.isChunked() && !delegate.headers().contains("content-length")) {
            delegate.headers().set("content-length", Integer.toString(last.length()));
        }
        delegate.writeHead();
    }

    @Override
    public Future<Void> write(Buffer data) {
        head(null);
        limiter.write(data);
        return Future.succeededFuture();
    }

    @Override
    public Future<Void> end(Buffer data) {
        head(data);
        limiter.write(data);
        return end();
    }

    @Override
    public Future<Void> end() {
        head(Buffer.buffer());
        ended = true;
        Promise<Void> done = Promise.promise();
        limiter.end(() -> delegate.end().onComplete(done));
        return done.future();
    }

    @Override
    public boolean ended() {
        return ended || delegate.ended();
    }

    @Override
    public Future<Void> writeHead() {
        return delegate.writeHead();
    }

    @Override
    public boolean writeQueueFull() {
        return limiter.writeQueueFull() || delegate.writeQueueFull();
    }

    @Override
    public HttpServerResponse drainHandler(Handler<Void> handler) {
        drain = handler;
        delegate.drainHandler(handler);
        return this;
    }

    @Override
    public Future<Void> sendFile(String filename, long offset, long length) {
        return delegate.sendFile(filename, offset, length);
    }

    @Override
    public Future<Void> sendFile(java.nio.channels.FileChannel channel, long offset, long length) {
        return delegate.sendFile(channel, offset, length);
    }

    @Override
    public Future<Void> sendFile(java.io.RandomAccessFile file, long offset, long length) {
        return delegate.sendFile(file, offset, length);
    }

    @Override
    public Future<Void> reset(long code) {
        limiter.cancel();
        return delegate.reset(code);
    }

    /** The stream went away: the limiter's timer stops, and what it held goes nowhere. */
    void cancel() {
        limiter.cancel();
    }
}
