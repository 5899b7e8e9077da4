package dev.inmesh.runtime.inbound;

import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerResponse;

/**
 * The response as the service gets it, in front of the connection manager's filters: its handlers run beside the
 * connection manager's own, which Vert.x's response would replace, keeping one handler of each kind (a Vert.x Web
 * router sets them for its {@code addEndHandler} and {@code addHeadersEndHandler}). The service's head's end handler
 * runs as Vert.x runs it, when the service's head goes (its first write, {@code writeHead}, end or file), so that the
 * filters and the connection manager read and write the head it completed, as a sidecar encodes what its application
 * sent; the connection manager's own answers in the service's place do not run it. Its end and close handlers are
 * kept here and run by the connection manager's once it has recorded the request ({@link #onEnd}, {@link #onClose});
 * the body's end, exception and drain handlers, which the connection manager does not set, go to the server's
 * response.
 */
class ServiceResponse extends DelegatingResponse {
    private Handler<Void> headersEnd;
    private Handler<Void> end;
    private Handler<Void> close;
    /** Whether the service's head went (its head's end handler ran, or no longer may). */
    private boolean headEnded;

    ServiceResponse(HttpServerResponse delegate) {
        super(delegate);
    }

    /** The service's head goes now, unless it went already: its head's end handler runs first, as Vert.x's does. */
    private void headEnds() {
        if (headEnded || delegate.headWritten()) {
            headEnded = true;
            return;
        }
        headEnded = true;
        Handler<Void> h = headersEnd;
        if (h != null) {
            h.handle(null);
        }
    }

    /** The response ended (or closed unanswered, as Vert.x runs the end handler then): the service's end handler. */
    void onEnd() {
        Handler<Void> h = end;
        if (h != null) {
            h.handle(null);
        }
    }

    /** The response's stream or connection closed: the service's close handler. */
    void onClose() {
        Handler<Void> h = close;
        if (h != null) {
            h.handle(null);
        }
    }

    /** As Vert.x's response refuses an end or close handler once it was written. */
    private Handler<Void> valid(Handler<Void> handler) {
        if (handler != null && delegate.ended()) {
            throw new IllegalStateException("Response has already been written");
        }
        return handler;
    }

    @Override
    public HttpServerResponse headersEndHandler(Handler<Void> handler) {
        headersEnd = handler;
        return this;
    }

    @Override
    public HttpServerResponse endHandler(Handler<Void> handler) {
        end = valid(handler);
        return this;
    }

    @Override
    public HttpServerResponse closeHandler(Handler<Void> handler) {
        close = valid(handler);
        return this;
    }

    @Override
    public Future<Void> write(Buffer data) {
        headEnds();
        return delegate.write(data);
    }

    @Override
    public Future<Void> end(Buffer data) {
        headEnds();
        return delegate.end(data);
    }

    @Override
    public Future<Void> end() {
        headEnds();
        return delegate.end();
    }

    @Override
    public Future<Void> writeHead() {
        headEnds();
        return delegate.writeHead();
    }

    @Override
    public Future<Void> sendFile(String filename, long offset, long length) {
        headEnds();
        return delegate.sendFile(filename, offset, length);
    }

    @Override
    public Future<Void> sendFile(java.nio.channels.FileChannel channel, long offset, long length) {
        headEnds();
        return delegate.sendFile(channel, offset, length);
    }

    @Override
    public Future<Void> sendFile(java.io.RandomAccessFile file, long offset, long length) {
        headEnds();
        return delegate.sendFile(file, offset, length);
    }

    @Override
    public Future<Void> reset(long code) {
        return delegate.reset(code);
    }
}
