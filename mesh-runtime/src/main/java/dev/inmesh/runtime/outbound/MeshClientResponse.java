package dev.inmesh.runtime.outbound;

import dev.inmesh.runtime.router.Router;
import dev.inmesh.runtime.router.RouterResponse;
import dev.inmesh.runtime.router.StreamRateLimiter;
import dev.inmesh.runtime.stats.ResponseFlag;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.MultiMap;
import io.vertx.core.Promise;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpClosedException;
import io.vertx.core.http.HttpFrame;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.StreamPriority;
import io.vertx.core.http.StreamResetException;
import io.vertx.core.net.NetSocket;
import java.util.List;

/**
 * The response of a mesh-routed request: the upstream response's body with the router's headers, or the router's
 * local reply. When the body has been read to its end (or failed), the router is told, which releases the limits
 * and records the request.
 */
final class MeshClientResponse implements HttpClientResponse {
    private final MeshClientRequest request;
    private final RouterResponse routed;
    private final Router router;
    private final Context context;
    private final HttpClientResponse upstream;
    private final Promise<Buffer> bodyPromise = Promise.promise();
    private final Promise<Void> endPromise = Promise.promise();
    /*
     * Set by the caller, on any thread (a response taken with toCompletionStage().get(), say); read where the body's
     * events run, the request's context: volatile, as Vert.x's own response guards its handlers.
     */
    private volatile Handler<Buffer> dataHandler;
    private volatile Handler<Void> endHandler;
    private volatile Handler<Throwable> exceptionHandler;
    /**
     * The body {@link #body()} gathers beside the caller's data handler, as Vert.x's response does; null until asked.
     */
    private volatile Buffer body;
    private long bytes;
    private boolean finished;
    /** Whether the caller paused the body (or asked for it by fetch): a handler alone then does not start it. */
    private boolean paused;
    // local replies: a one-chunk stream with demand
    private long demand = Long.MAX_VALUE;
    private boolean localDelivered;
    /** The fault filter's response rate limit on the body, or null when none applies. */
    private final StreamRateLimiter limiter;

    MeshClientResponse(MeshClientRequest request, RouterResponse routed, Router router, Context context) {
        this.request = request;
        this.routed = routed;
        this.router = router;
        this.context = context;
        this.upstream = routed.upstream();
        if (upstream != null) {
            // an answer to HEAD, a 204 or a 304 has no body: an HTTP/1 upstream's framing leaves it off, an HTTP/2
            // upstream may still send DATA
            boolean bodyless = request.getMethod() == io.vertx.core.http.HttpMethod.HEAD
                    || upstream.statusCode() == 204 || upstream.statusCode() == 304;
            Handler<Buffer> chunk = b -> {
                if (bodyless) {
                    if (b.length() > 0) {
                        refuseBody();
                    }
                    return;
                }
                routed.bodyChunk(b);
                bytes += b.length();
                deliver(b);
            };
            // the fault filter's response rate limit, when one applies: the body goes through it
            limiter = routed.responseRateLimiter(context, chunk::handle, upstream::pause, () -> {
                if (!paused) {
                    upstream.resume();
                }
            });
            if (limiter == null) {
                upstream.handler(chunk);
                upstream.endHandler(v -> finish(null));
            } else {
                upstream.handler(limiter::write);
                upstream.endHandler(v -> limiter.end(() -> finish(null)));
            }
            upstream.exceptionHandler(this::finish);
        } else {
            limiter = null;
        }
    }

    /** Runs {@code task} on the limiter's context (the caller may pause or resume the body from any thread). */
    private void limited(java.util.function.Consumer<StreamRateLimiter> task) {
        if (limiter != null) {
            ((io.vertx.core.internal.ContextInternal) context).execute(() -> task.accept(limiter));
        }
    }

    private void finish(Throwable failure) {
        if (finished) {
            return;
        }
        finished = true;
        request.finished();
        if (failure != null && limiter != null) {
            limiter.cancel(); // what it held goes nowhere
        }
        if (failure == null) {
            router.complete(routed, bytes);
            ended();
        } else {
            router.upstreamBodyFailed(routed, bytes, failure);
            resetByMesh(failure);
        }
    }

    /**
     * DATA on an answer that has no body ({@code HEAD}, 204, 304), which Envoy's HTTP/2 codec refuses: none goes to
     * the caller, whose response ends with its head; the upstream stream is reset with PROTOCOL_ERROR and the
     * exchange logged as an upstream protocol error (UPE), as the standalone proxy does.
     */
    private void refuseBody() {
        if (finished) {
            return;
        }
        finished = true;
        request.finished();
        limited(StreamRateLimiter::cancel);
        upstream.request().reset(io.netty.handler.codec.http2.Http2Error.PROTOCOL_ERROR.code());
        router.upstreamBodyFailed(routed, 0, new IllegalArgumentException("a body on an answer that has none"));
        ended();
    }

    /** The caller's response ended whole: its end handler, then its {@link #end()}. */
    private void ended() {
        Handler<Void> h = endHandler;
        if (h != null) {
            h.handle(null);
        }
        endPromise.tryComplete();
    }

    /**
     * The upstream body failed once its headers were passed on ({@code cause}: an upstream reset, its connection
     * gone, a timer of the router's that cut it): as Envoy's router resets its downstream stream then
     * (Filter::onUpstreamAbort, source/common/router/router.cc), the caller's stream is reset, and its response and a
     * request it still writes fail as a plain Vert.x client's do when its server resets a stream. Over HTTP/2 that is
     * a {@link StreamResetException} with the code Envoy's codec resets a stream it ends with, NO_ERROR
     * (reasonToReset, source/common/http/http2/codec_impl.cc), then the stream's close, an
     * {@link HttpClosedException}, to the response's exception handler (by which Vert.x's gRPC client ends its call,
     * a reset alone being its error handler's); over HTTP/1.1, where Envoy closes the connection, the connection's
     * close.
     */
    private void resetByMesh(Throwable cause) {
        boolean http2 = version() == HttpVersion.HTTP_2;
        Throwable reset = http2 ? new StreamResetException(0, cause) : new HttpClosedException("Connection was closed");
        failed(reset, exceptionHandler);
        request.resetByMesh(reset);
        Handler<Throwable> h = exceptionHandler;
        if (http2 && h != null) {
            h.handle(new HttpClosedException("Stream was closed"));
        }
    }

    private void failed(Throwable failure, Handler<Throwable> h) {
        if (h != null) {
            h.handle(failure);
        }
        endPromise.tryFail(failure);
        bodyPromise.tryFail(failure);
    }

    /**
     * The caller reset its request while the body was still coming (or its client closed): the upstream stream is
     * reset and the exchange recorded as a downstream termination (DC), as Envoy does when its downstream resets.
     */
    void reset(Throwable cause) {
        if (finished) {
            return;
        }
        finished = true;
        request.finished();
        router.abort(routed, bytes, ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION);
        limited(StreamRateLimiter::cancel); // as Envoy's limiter when its stream goes: its timer stops
        if (upstream != null) {
            upstream.request().reset(0, cause);
        }
        failed(cause, exceptionHandler);
    }

    /** A chunk of the body to the caller's data handler, and to the body {@link #body()} gathers. */
    private void deliver(Buffer chunk) {
        Handler<Buffer> h = dataHandler;
        if (h != null) {
            h.handle(chunk);
        }
        Buffer gathered = body;
        if (gathered != null) {
            gathered.appendBuffer(chunk);
        }
    }

    private void deliverLocal() {
        if (localDelivered || demand <= 0 || (dataHandler == null && endHandler == null && body == null)) {
            return;
        }
        localDelivered = true;
        context.runOnContext(v -> {
            Buffer b = routed.localBody();
            if (b != null && b.length() > 0) {
                bytes = b.length();
                deliver(b);
            }
            finish(null);
        });
    }

    @Override
    public HttpClientResponse fetch(long amount) {
        paused = true;
        if (upstream != null) {
            limited(StreamRateLimiter::resume);
            upstream.fetch(amount);
        } else {
            demand = demand + amount < 0 ? Long.MAX_VALUE : demand + amount;
            deliverLocal();
        }
        return this;
    }

    @Override
    public HttpClientResponse resume() {
        paused = false;
        if (upstream != null) {
            limited(StreamRateLimiter::resume);
            upstream.resume();
        } else {
            demand = Long.MAX_VALUE;
            deliverLocal();
        }
        return this;
    }

    @Override
    public HttpClientResponse pause() {
        paused = true;
        if (upstream != null) {
            limited(StreamRateLimiter::pause);
            upstream.pause();
        } else {
            demand = 0;
        }
        return this;
    }

    @Override
    public HttpClientResponse exceptionHandler(Handler<Throwable> handler) {
        this.exceptionHandler = handler;
        return this;
    }

    @Override
    public HttpClientResponse handler(Handler<Buffer> handler) {
        this.dataHandler = handler;
        flow();
        return this;
    }

    @Override
    public HttpClientResponse endHandler(Handler<Void> endHandler) {
        this.endHandler = endHandler;
        flow();
        return this;
    }

    /**
     * A handler was set: as a plain Vert.x response, which flows unless paused, the body starts (the router holds
     * the upstream body paused until then, so that no chunk comes before the handlers).
     */
    private void flow() {
        if (upstream == null) {
            deliverLocal();
        } else if (!paused && (dataHandler != null || endHandler != null)) {
            upstream.resume();
        }
    }

    /**
     * Not supported: the upstream connection is the mesh's (pooled, maybe mTLS), which a caller holding its socket
     * would use past the mesh; CONNECT is not routed, and WebSockets go through {@code Mesh.webSocketClient()}.
     */
    @Override
    public NetSocket netSocket() {
        throw new UnsupportedOperationException("netSocket(): the upstream connection is the mesh's; CONNECT is not "
                + "routed by the mesh, and WebSockets go through mesh.webSocketClient()");
    }

    /**
     * The caller's protocol, as a sidecar answers the application in the protocol of the application's own
     * connection, whatever its upstream connection speaks (a cluster's HTTP/2, Istio's h2 upgrade).
     */
    @Override
    public HttpVersion version() {
        return request.version();
    }

    @Override
    public int statusCode() {
        return routed.status();
    }

    @Override
    public String statusMessage() {
        if (upstream != null && upstream.statusCode() == routed.status()) {
            return upstream.statusMessage();
        }
        return dev.inmesh.runtime.router.ReasonPhrases.of(routed.status());
    }

    @Override
    public MultiMap headers() {
        return routed.headers();
    }

    @Override
    public String getHeader(String headerName) {
        return routed.headers().get(headerName);
    }

    @Override
    public String getHeader(CharSequence headerName) {
        return routed.headers().get(headerName);
    }

    @Override
    public MultiMap trailers() {
        return upstream == null ? MultiMap.caseInsensitiveMultiMap() : upstream.trailers();
    }

    @Override
    public String getTrailer(String trailerName) {
        return trailers().get(trailerName);
    }

    @Override
    public List<String> cookies() {
        return routed.headers().getAll(io.vertx.core.http.HttpHeaders.SET_COOKIE);
    }

    @Override
    public HttpClientResponse bodyHandler(Handler<Buffer> bodyHandler) {
        body().onSuccess(bodyHandler);
        return this;
    }

    /**
     * The body from here to its end, gathered beside the caller's data handler, which keeps each chunk, as Vert.x's
     * response (HttpEventHandler) keeps its chunk handler; it starts the body, as before.
     */
    @Override
    public synchronized Future<Buffer> body() {
        if (body == null) {
            Buffer gathered = Buffer.buffer();
            body = gathered;
            end().onSuccess(v -> bodyPromise.tryComplete(gathered));
        }
        resume();
        return bodyPromise.future();
    }

    @Override
    public Future<Void> end() {
        return endPromise.future();
    }

    @Override
    public HttpClientResponse customFrameHandler(Handler<HttpFrame> handler) {
        return this;
    }

    @Override
    public HttpClientRequest request() {
        return request;
    }

    @Override
    public HttpClientResponse streamPriorityHandler(Handler<StreamPriority> handler) {
        return this;
    }

}
