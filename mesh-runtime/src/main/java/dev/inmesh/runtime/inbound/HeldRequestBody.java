package dev.inmesh.runtime.inbound;

import dev.inmesh.runtime.router.RequestBody;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Promise;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.internal.http.HttpServerRequestInternal;
import io.vertx.core.internal.http.HttpServerRequestWrapper;
import java.util.ArrayDeque;

/**
 * The body of a request to the in-JVM inbound handler as a filter reads it before the service gets the request (the
 * ext_authz filter's {@code with_request_body}, {@link RequestBody}): the chunks are read from the server request and
 * held, and the service gets the request through {@link #replaying()}, which hands it those chunks first, then the
 * rest as it comes, with the server request's flow control, as a sidecar forwards the whole body it held. Once the
 * response ended (a refused request) nothing more is held. The service's multipart and form decoding do not see the
 * held chunks: only its own handlers and {@code body()} do. On the request's context; not thread-safe.
 */
final class HeldRequestBody implements RequestBody {
    private final HttpServerRequest req;
    private final ArrayDeque<Buffer> held = new ArrayDeque<>();
    private long received;
    private boolean ended;
    /**
     * Whether the body came in frames of its own, even empty ones: a chunk (an HTTP/2 DATA frame of no bytes too);
     * false for a request its head ended (Envoy's headers with {@code end_stream}), and for one its trailers ended
     * without a DATA frame, which Vert.x's server request does not show.
     */
    private boolean framed;
    /** Whether the caller left before the body ended ({@link #gone}). */
    private boolean gone;
    /** Whether a filter read the body: the service then gets {@link #replaying()}. */
    private boolean read;
    /** The filter that waits for the body, and how many bytes it waits for. */
    private Promise<Buffer> waiting;
    private long limit;
    /** What the service set on the request it got: its handlers and demand; null until it got it. */
    private Replay replay;

    HeldRequestBody(HttpServerRequest req) {
        this.req = req;
    }

    @Override
    public Future<Buffer> hold(long limit) {
        if (!read) {
            read = true;
            req.handler(this::chunk);
            req.endHandler(v -> {
                ended = true;
                release();
                if (replay != null) {
                    replay.deliver();
                }
            });
            req.exceptionHandler(e -> gone()); // the caller left: the filter decides nothing
        }
        if (gone) {
            return Future.failedFuture(new RequestBody.Gone());
        }
        if (ended || received >= limit) {
            return Future.succeededFuture(whole());
        }
        this.limit = limit;
        waiting = Promise.promise();
        req.resume();
        return waiting.future();
    }

    /**
     * The service gets {@code body} instead of what was held, which must be the whole body (a Lua script's
     * {@code setBytes}, after {@link #hold} answered it whole).
     */
    void replace(Buffer body) {
        if (!ended || replay != null) {
            throw new IllegalStateException("only a body held whole before the service got it may be replaced");
        }
        held.clear();
        if (body.length() > 0) {
            held.add(body);
        }
        received = body.length();
    }

    /** Whether the body held came in frames of its own ({@link #framed}), not with the request's head. */
    boolean framed() {
        return framed;
    }

    /** Whether a filter read the body, so that the service must get {@link #replaying()}. */
    boolean read() {
        return read;
    }

    private void chunk(Buffer b) {
        framed = true;
        if (req.response().ended()) {
            return; // refused: what the caller still sends goes nowhere
        }
        held.add(b);
        received += b.length();
        if (waiting != null && received >= limit) {
            req.pause(); // the rest waits for the filter's decision, as Envoy's filter stops reading at its limit
            release();
        }
        if (replay != null) {
            replay.deliver();
        }
    }

    /**
     * The caller reset the request (or its connection closed) before the body the filter waits for came: the filter
     * decides nothing, as Envoy's, destroyed with its stream, and what was held is dropped.
     */
    private void gone() {
        gone = true;
        held.clear();
        Promise<Buffer> p = waiting;
        if (p != null) {
            waiting = null;
            p.fail(new RequestBody.Gone());
        }
    }

    private void release() {
        Promise<Buffer> p = waiting;
        if (p != null) {
            waiting = null;
            p.complete(whole());
        }
    }

    /** All the chunks held, as one buffer; null for none. */
    private Buffer whole() {
        return RequestBody.joined(held, received);
    }

    /** The request as the service gets it: the same, whose body starts with the chunks held. */
    HttpServerRequest replaying() {
        if (!(req instanceof HttpServerRequestInternal internal)) {
            throw new IllegalStateException("a body held for a request of another kind than Vert.x's own");
        }
        Replay r = new Replay(internal);
        replay = r;
        return r;
    }

    /** The service's view of the request: its body handlers and demand over the chunks held, then the rest. */
    private final class Replay extends HttpServerRequestWrapper {
        private Handler<Buffer> dataHandler;
        private Handler<Void> endHandler;
        private long demand = Long.MAX_VALUE;
        private boolean endDelivered;
        private Promise<Buffer> body;
        private Promise<Void> end;

        Replay(HttpServerRequestInternal delegate) {
            super(delegate);
        }

        @Override
        public HttpServerRequest handler(Handler<Buffer> handler) {
            dataHandler = handler;
            later();
            return this;
        }

        @Override
        public HttpServerRequest endHandler(Handler<Void> handler) {
            endHandler = handler;
            later();
            return this;
        }

        /** Delivers on the request's context soon, as Vert.x delivers a body: after the handlers are all set. */
        private void later() {
            delegate.context().runOnContext(v -> deliver());
        }

        @Override
        public HttpServerRequest pause() {
            demand = 0;
            req.pause();
            return this;
        }

        @Override
        public HttpServerRequest resume() {
            return fetch(Long.MAX_VALUE);
        }

        @Override
        public HttpServerRequest fetch(long amount) {
            demand = demand + amount < 0 ? Long.MAX_VALUE : demand + amount;
            later();
            return this;
        }

        @Override
        public Future<Buffer> body() {
            if (body == null) {
                body = Promise.promise();
                Buffer all = Buffer.buffer();
                Promise<Buffer> p = body;
                handler(all::appendBuffer);
                endHandler(v -> p.tryComplete(all));
            }
            return body.future();
        }

        @Override
        public Future<Void> end() {
            if (end == null) {
                end = Promise.promise();
                if (endDelivered) {
                    end.complete();
                }
            }
            return end.future();
        }

        @Override
        public boolean isEnded() {
            return endDelivered;
        }

        /** Hands the service what it asks for of the chunks held, then the end; reads on while it wants more. */
        void deliver() {
            while (demand > 0 && !held.isEmpty()) {
                if (demand != Long.MAX_VALUE) {
                    demand--;
                }
                Buffer b = held.poll();
                if (dataHandler != null) {
                    dataHandler.handle(b); // without one the chunk goes nowhere, as Vert.x drops it
                }
            }
            if (demand == 0 && !ended) {
                req.pause(); // the service asked for no more (fetch): the caller's body waits, not held here
            }
            if (!held.isEmpty() || endDelivered) {
                return;
            }
            if (ended) {
                endDelivered = true;
                if (endHandler != null) {
                    endHandler.handle(null);
                }
                if (end != null) {
                    end.tryComplete();
                }
            } else if (demand > 0) {
                req.resume();
            }
        }
    }
}
