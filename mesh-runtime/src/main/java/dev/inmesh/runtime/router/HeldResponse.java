package dev.inmesh.runtime.router;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.MultiMap;
import io.vertx.core.Promise;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpFrame;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.StreamPriority;
import io.vertx.core.net.NetSocket;
import java.util.List;

/**
 * An upstream response whose body the router read whole before passing it on ({@link Router}'s hold for a Lua
 * response script's {@code body()}), as the caller reads it: the body as the scripts left it, in one chunk, then its
 * end (the upstream's trailers stay readable), or the failure that ended the upstream's body. Like the upstream
 * response the router hands over, it is paused: nothing comes before {@code resume()} or {@code fetch}; then it comes
 * in a task of its own on the upstream's context, where the caller's handlers expect it. Everything else is the
 * upstream response's.
 */
final class HeldResponse implements HttpClientResponse {
    private final HttpClientResponse upstream;
    private final Context context;
    /** The body to pass on; null for none. */
    private Buffer body;
    private final Throwable failure;
    private final Promise<Void> ended = Promise.promise();
    private Handler<Buffer> handler;
    private Handler<Void> endHandler;
    private Handler<Throwable> exceptionHandler;
    private long demand;
    private boolean scheduled;
    private boolean done;

    /**
     * @param body the body to pass on (null or empty: none)
     * @param failure what ended the upstream's body before its end, or null when it ended
     */
    HeldResponse(HttpClientResponse upstream, Buffer body, Throwable failure, Context context) {
        this.upstream = upstream;
        this.body = body == null || body.length() == 0 ? null : body;
        this.failure = failure;
        this.context = context;
    }

    /**
     * Whether a response with {@code status} to a {@code method} request may have a body: not one to a {@code HEAD},
     * nor a 1xx, 204 or 304, whatever a script set.
     */
    static boolean bodyAllowed(HttpMethod method, int status) {
        return method != HttpMethod.HEAD && status >= 200 && status != 204 && status != 304;
    }

    private void schedule() {
        if (!scheduled && !done && demand > 0) {
            scheduled = true;
            context.runOnContext(v -> {
                scheduled = false;
                deliver();
            });
        }
    }

    private void deliver() {
        if (done) {
            return;
        }
        if (failure != null) {
            done = true;
            ended.tryFail(failure);
            Handler<Throwable> h = exceptionHandler;
            if (h != null) {
                h.handle(failure);
            }
            return;
        }
        Buffer b = body;
        if (b != null) {
            if (demand <= 0) {
                return;
            }
            demand--;
            body = null;
            Handler<Buffer> h = handler;
            if (h != null) {
                h.handle(b);
            }
            if (done) {
                return;
            }
        }
        done = true;
        ended.tryComplete();
        Handler<Void> h = endHandler;
        if (h != null) {
            h.handle(null);
        }
    }

    @Override
    public HttpClientResponse fetch(long amount) {
        demand = demand + amount < 0 ? Long.MAX_VALUE : demand + amount;
        schedule();
        return this;
    }

    @Override
    public HttpClientResponse resume() {
        return fetch(Long.MAX_VALUE);
    }

    @Override
    public HttpClientResponse pause() {
        demand = 0;
        return this;
    }

    @Override
    public HttpClientResponse handler(Handler<Buffer> handler) {
        this.handler = handler;
        return this;
    }

    @Override
    public HttpClientResponse endHandler(Handler<Void> endHandler) {
        this.endHandler = endHandler;
        return this;
    }

    @Override
    public HttpClientResponse exceptionHandler(Handler<Throwable> handler) {
        this.exceptionHandler = handler;
        return this;
    }

    @Override
    public Future<Buffer> body() {
        Buffer all = Buffer.buffer();
        handler(all::appendBuffer);
        resume();
        return ended.future().map(v -> all);
    }

    @Override
    public HttpClientResponse bodyHandler(Handler<Buffer> bodyHandler) {
        body().onSuccess(bodyHandler);
        return this;
    }

    @Override
    public Future<Void> end() {
        return ended.future();
    }

    @Override
    public NetSocket netSocket() {
        return upstream.netSocket();
    }

    @Override
    public HttpVersion version() {
        return upstream.version();
    }

    @Override
    public int statusCode() {
        return upstream.statusCode();
    }

    @Override
    public String statusMessage() {
        return upstream.statusMessage();
    }

    @Override
    public MultiMap headers() {
        return upstream.headers();
    }

    @Override
    public String getHeader(String headerName) {
        return upstream.getHeader(headerName);
    }

    @Override
    public String getHeader(CharSequence headerName) {
        return upstream.getHeader(headerName);
    }

    @Override
    public MultiMap trailers() {
        return upstream.trailers();
    }

    @Override
    public String getTrailer(String trailerName) {
        return upstream.getTrailer(trailerName);
    }

    @Override
    public List<String> cookies() {
        return upstream.cookies();
    }

    @Override
    public HttpClientResponse customFrameHandler(Handler<HttpFrame> handler) {
        return this;
    }

    @Override
    public HttpClientRequest request() {
        return upstream.request();
    }

    @Override
    public HttpClientResponse streamPriorityHandler(Handler<StreamPriority> handler) {
        return this;
    }
}
