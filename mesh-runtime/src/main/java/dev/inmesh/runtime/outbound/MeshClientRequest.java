package dev.inmesh.runtime.outbound;

import dev.inmesh.runtime.router.RouterResponse;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.MultiMap;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpFrame;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.http.StreamPriority;
import io.vertx.core.net.HostAndPort;
import java.util.function.Function;

/**
 * An outbound request that buffers its body and is routed through the mesh when it ends. Headers, method and URI can
 * be changed until then; {@link #response()} completes with the upstream response or the router's local reply.
 */
final class MeshClientRequest implements HttpClientRequest {
    /** The largest body the mesh buffers for one request (retries resend it). */
    static final int MAX_BODY = 64 * 1024 * 1024;

    private final OutboundDispatcher dispatcher;
    private final Context context;
    private final Promise<HttpClientResponse> response = Promise.promise();
    private final MultiMap headers = MultiMap.caseInsensitiveMultiMap();
    private HttpMethod method;
    private String uri;
    private String host;
    private int port;
    private boolean ssl;
    private Buffer body;
    private boolean chunked;
    private boolean ended;
    private boolean followRedirects;
    private int maxRedirects = 16;
    private String traceOperation;
    private long idleTimeout;
    private Handler<Throwable> exceptionHandler;

    MeshClientRequest(OutboundDispatcher dispatcher, Context context, RequestOptions o, String defaultHost,
                      int defaultPort) {
        this.dispatcher = dispatcher;
        this.context = context;
        this.method = o.getMethod() == null ? HttpMethod.GET : o.getMethod();
        this.uri = o.getURI() == null || o.getURI().isEmpty() ? "/" : o.getURI();
        this.host = o.getHost() != null ? o.getHost() : defaultHost;
        this.port = o.getPort() != null ? o.getPort() : defaultPort;
        this.ssl = Boolean.TRUE.equals(o.isSsl());
        if (o.getHeaders() != null) {
            o.getHeaders().forEach(headers::add); // no intermediate list of entries, as addAll makes
        }
        if (o.getFollowRedirects() != null) {
            followRedirects = o.getFollowRedirects();
        }
        if (o.getIdleTimeout() > 0) {
            idleTimeout = o.getIdleTimeout();
        }
        this.traceOperation = o.getTraceOperation();
    }

    private void dispatch() {
        if (ended) {
            return;
        }
        ended = true;
        if (Vertx.currentContext() != context) {
            // Off the request's context (a thread outside Vert.x), the router could commit the response and the
            // upstream body could end before the response below attaches its handlers: run it all on the context.
            context.runOnContext(v -> route());
        } else {
            route();
        }
    }

    private void route() {
        dispatcher.dispatch(method, host, port, uri, headers, body, ssl).onComplete(ar -> {
            if (ar.failed()) {
                fail(ar.cause());
                return;
            }
            RouterResponse r = ar.result();
            response.tryComplete(new MeshClientResponse(this, r, dispatcher.router(), context));
        });
    }

    private void fail(Throwable t) {
        if (response.tryFail(t) && exceptionHandler != null) {
            exceptionHandler.handle(t);
        }
    }

    private Future<Void> append(Buffer chunk) {
        if (ended) {
            return Future.failedFuture(new IllegalStateException("request already ended"));
        }
        if (chunk != null && chunk.length() > 0) {
            if (body == null) {
                body = Buffer.buffer(chunk.length());
            }
            if (body.length() + chunk.length() > MAX_BODY) {
                IllegalStateException e = new IllegalStateException("request body larger than " + MAX_BODY
                        + " bytes: the mesh buffers bodies for retries");
                fail(e);
                return Future.failedFuture(e);
            }
            body.appendBuffer(chunk);
        }
        return Future.succeededFuture();
    }

    @Override
    public HttpClientRequest exceptionHandler(Handler<Throwable> handler) {
        this.exceptionHandler = handler;
        return this;
    }

    @Override
    public Future<Void> write(Buffer data) {
        return append(data);
    }

    @Override
    public HttpClientRequest setWriteQueueMaxSize(int maxSize) {
        return this;
    }

    @Override
    public boolean writeQueueFull() {
        return false;
    }

    @Override
    public HttpClientRequest drainHandler(Handler<Void> handler) {
        return this;
    }

    @Override
    public HttpClientRequest authority(HostAndPort authority) {
        headers.set("host", authority.port() > 0 ? authority.host() + ":" + authority.port() : authority.host());
        return this;
    }

    @Override
    public HttpClientRequest setFollowRedirects(boolean followRedirects) {
        this.followRedirects = followRedirects;
        return this;
    }

    @Override
    public boolean isFollowRedirects() {
        return followRedirects;
    }

    @Override
    public HttpClientRequest setMaxRedirects(int maxRedirects) {
        this.maxRedirects = maxRedirects;
        return this;
    }

    @Override
    public int getMaxRedirects() {
        return maxRedirects;
    }

    @Override
    public int numberOfRedirections() {
        return 0;
    }

    @Override
    public HttpClientRequest setChunked(boolean chunked) {
        this.chunked = chunked;
        return this;
    }

    @Override
    public boolean isChunked() {
        return chunked;
    }

    @Override
    public HttpMethod getMethod() {
        return method;
    }

    @Override
    public HttpClientRequest setMethod(HttpMethod method) {
        this.method = method;
        return this;
    }

    @Override
    public String absoluteURI() {
        return (ssl ? "https" : "http") + "://" + host + ":" + port + uri;
    }

    @Override
    public String getURI() {
        return uri;
    }

    @Override
    public HttpClientRequest setURI(String uri) {
        this.uri = uri;
        return this;
    }

    @Override
    public String path() {
        int q = uri.indexOf('?');
        return q < 0 ? uri : uri.substring(0, q);
    }

    @Override
    public String query() {
        int q = uri.indexOf('?');
        return q < 0 ? null : uri.substring(q + 1);
    }

    @Override
    public MultiMap headers() {
        return headers;
    }

    @Override
    public HttpClientRequest putHeader(String name, String value) {
        headers.set(name, value);
        return this;
    }

    @Override
    public HttpClientRequest putHeader(CharSequence name, CharSequence value) {
        headers.set(name, value);
        return this;
    }

    @Override
    public HttpClientRequest putHeader(String name, Iterable<String> values) {
        headers.set(name, values);
        return this;
    }

    @Override
    public HttpClientRequest putHeader(CharSequence name, Iterable<CharSequence> values) {
        headers.set(name, values);
        return this;
    }

    @Override
    public HttpClientRequest traceOperation(String op) {
        this.traceOperation = op;
        return this;
    }

    @Override
    public String traceOperation() {
        return traceOperation;
    }

    @Override
    public HttpVersion version() {
        return HttpVersion.HTTP_1_1;
    }

    @Override
    public Future<Void> write(String chunk) {
        return append(Buffer.buffer(chunk));
    }

    @Override
    public Future<Void> write(String chunk, String enc) {
        return append(Buffer.buffer(chunk, enc));
    }

    @Override
    public HttpClientRequest continueHandler(Handler<Void> handler) {
        return this;
    }

    @Override
    public HttpClientRequest earlyHintsHandler(Handler<MultiMap> handler) {
        return this;
    }

    @Override
    public HttpClientRequest redirectHandler(Function<HttpClientResponse, Future<HttpClientRequest>> handler) {
        return this;
    }

    @Override
    public Future<Void> sendHead() {
        return Future.succeededFuture();
    }

    @Override
    public Future<HttpClientResponse> connect() {
        return Future.failedFuture(new UnsupportedOperationException("CONNECT is not routed by the mesh"));
    }

    @Override
    public Future<HttpClientResponse> response() {
        return response.future();
    }

    @Override
    public Future<HttpClientResponse> send(io.vertx.core.http.ClientForm form) {
        return Future.failedFuture(new UnsupportedOperationException("forms: encode the body and send a Buffer"));
    }

    @Override
    public Future<Void> end(String chunk) {
        return end(Buffer.buffer(chunk));
    }

    @Override
    public Future<Void> end(String chunk, String enc) {
        return end(Buffer.buffer(chunk, enc));
    }

    @Override
    public Future<Void> end(Buffer chunk) {
        Future<Void> f = append(chunk);
        if (f.failed()) {
            return f;
        }
        dispatch();
        return Future.succeededFuture();
    }

    @Override
    public Future<Void> end() {
        dispatch();
        return Future.succeededFuture();
    }

    @Override
    public HttpClientRequest idleTimeout(long timeout) {
        this.idleTimeout = timeout;
        return this;
    }

    @Override
    public HttpClientRequest pushHandler(Handler<HttpClientRequest> handler) {
        return this;
    }

    @Override
    public Future<Void> reset(long code) {
        return reset(code, null);
    }

    @Override
    public Future<Void> reset(long code, Throwable cause) {
        fail(cause == null ? new io.vertx.core.http.StreamResetException(code) : cause);
        return Future.succeededFuture();
    }

    @Override
    public HttpConnection connection() {
        return null;
    }

    @Override
    public Future<Void> writeCustomFrame(int type, int flags, Buffer payload) {
        return Future.failedFuture(new UnsupportedOperationException("custom frames are not routed by the mesh"));
    }

    @Override
    public HttpClientRequest setStreamPriority(StreamPriority streamPriority) {
        return this;
    }

    @Override
    public StreamPriority getStreamPriority() {
        return new StreamPriority();
    }


}
