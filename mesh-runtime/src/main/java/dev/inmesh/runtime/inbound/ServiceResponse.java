package dev.inmesh.runtime.inbound;

import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerResponse;

/**
 * The response as the service gets it, in front of the connection manager's filters: its handlers run beside the
 * connection manager's own, which Vert.x's response would replace, keeping one handler of each kind (a Vert.x Web
 * router sets them for its {@code addEndHandler} and {@code addHeadersEndHandler}). The service's head's end handler
 * runs as Vert.x runs it, right before the head it began (its first write, {@code writeHead}, end or file) goes, after
 * the server's own {@code content-type} and {@code content-length}; or before that when a filter reads the head first
 * ({@link #headEnds}), so that the filters and the connection manager read and write the head it completed, as a
 * sidecar encodes what its application sent. A file the server could not open sends no head, and the head the service
 * answers with then still runs it; the connection manager's own answers in the service's place do not. Its end and
 * close handlers are kept here and run by the connection manager's once it has recorded the request
 * ({@link #onEnd}, {@link #onClose}); the body's end, exception and drain handlers, which the connection manager does
 * not set, go to the server's response.
 */
class ServiceResponse extends DelegatingResponse {
    private Handler<Void> headersEnd;
    private Handler<Void> end;
    private Handler<Void> close;
    /** Whether the service began its head: a write, {@code writeHead}, end or file. */
    private boolean began;
    /** Whether the service's head's end handler ran, or no longer may. */
    private boolean headEnded;

    ServiceResponse(HttpServerResponse delegate) {
        super(delegate);
    }

    /**
     * The head the service began is complete: its head's end handler runs, once. Called right before the server writes
     * the head, and by a filter that reads the head before (the compressor's decision, a Lua script's response).
     */
    void headEnds() {
        if (!began || headEnded) {
            return;
        }
        headEnded = true;
        Handler<Void> h = headersEnd;
        if (h != null) {
            h.handle(null);
        }
    }

    /** The service begins its head, which goes through the server's response. */
    private HttpServerResponse begin() {
        began = true;
        return delegate;
    }

    /** The response ended (or closed unanswered, as Vert.x runs the end handler then): the service's end handler. */
    void onEnd() {
        Handler<Void> h = end;
        if (h != null) {
            h.handle(null);
        }
    }

    /** The response's stream or connection closed (or is the service's no longer): its close handler, once. */
    void onClose() {
        Handler<Void> h = close;
        close = null;
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
        return begin().write(data);
    }

    @Override
    public Future<Void> end(Buffer data) {
        return begin().end(data);
    }

    @Override
    public Future<Void> end() {
        return begin().end();
    }

    @Override
    public Future<Void> writeHead() {
        return begin().writeHead();
    }

    @Override
    public Future<Void> sendFile(String filename, long offset, long length) {
        return begin().sendFile(filename, offset, length);
    }

    @Override
    public Future<Void> sendFile(java.nio.channels.FileChannel channel, long offset, long length) {
        return begin().sendFile(channel, offset, length);
    }

    @Override
    public Future<Void> sendFile(java.io.RandomAccessFile file, long offset, long length) {
        return begin().sendFile(file, offset, length);
    }

    @Override
    public Future<Void> reset(long code) {
        return delegate.reset(code);
    }
}
