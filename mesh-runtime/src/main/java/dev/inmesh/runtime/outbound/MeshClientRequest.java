package dev.inmesh.runtime.outbound;

import dev.inmesh.runtime.net.IpLiterals;
import dev.inmesh.runtime.router.RequestBodyStream;
import dev.inmesh.runtime.router.RouterRequest;
import dev.inmesh.runtime.router.RouterResponse;
import dev.inmesh.runtime.stats.ResponseFlag;
import io.netty.handler.codec.http.multipart.HttpPostRequestEncoder;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.MultiMap;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.ClientForm;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpClosedException;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpFrame;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.http.StreamPriority;
import io.vertx.core.http.StreamResetException;
import io.vertx.core.http.impl.ClientMultipartFormImpl;
import io.vertx.core.http.impl.ClientMultipartFormUpload;
import io.vertx.core.internal.ContextInternal;
import io.vertx.core.net.HostAndPort;
import io.vertx.core.net.SocketAddress;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLongFieldUpdater;
import java.util.function.Function;

/**
 * An outbound request routed through the mesh. A request ended at once ({@code end(body)}, {@code send(body)}) goes to
 * the router with its whole body; one whose head is sent or whose body is written before it ends is routed then, and
 * its body goes upstream as it is written ({@link RequestBodyStream}), with back-pressure through
 * {@link #writeQueueFull()} and {@link #drainHandler}. Headers, method and URI can be changed until the request is
 * routed; {@link #response()} completes with the upstream response or the router's local reply.
 *
 * <p>As a plain Vert.x request: its idle timeout ({@code RequestOptions.setTimeout}/{@code setIdleTimeout},
 * {@link #idleTimeout}) fails it with a {@link TimeoutException} when no response headers came in time; a
 * {@link #reset} fails it (or its response's body) with a {@link StreamResetException}; redirects are followed when
 * asked to; a client's close fails it. The mesh then stops the exchange as Envoy does when its downstream goes away.
 * A response whose upstream fails once it started is the mesh's reset of the caller's stream
 * ({@link MeshClientResponse}), which fails the request too while it is still written.
 */
final class MeshClientRequest implements HttpClientRequest {
    private final MeshHttpClient client;
    private final OutboundDispatcher dispatcher;
    private final ContextInternal context;
    /**
     * Bound to the request's context, as a plain Vert.x request's: its callbacks run there, and code that asks the
     * future for its context (Vert.x's gRPC client does) finds it.
     */
    private final Promise<HttpClientResponse> response;
    private final MultiMap headers = MultiMap.caseInsensitiveMultiMap();
    /** {@code HTTP/2} or {@code HTTP/1.1}: what the client speaks, as a sidecar would see it. */
    private final String protocol;
    private HttpMethod method;
    private String uri;
    private String host;
    private int port;
    private boolean ssl;
    private Buffer body;
    /** The body as it is written, once the request was routed before it ended; else null. */
    private RequestBodyStream stream;
    /** Where that body ends by its HTTP/1 {@code content-length} ({@link #declaredLength}), read when it began. */
    private long streamLength = Long.MAX_VALUE;
    /** Whether the head was sent or the body written before the end: the body streams (set on the caller's thread). */
    private boolean streaming;
    /**
     * Back-pressure across threads (the caller may write from any thread, the stream lives on the context): the bytes
     * written and not yet handed to the stream, whether the stream's queue was full when last looked at on the
     * context, and whether the caller found the queue full and waits for the drain handler.
     */
    private volatile long queued;
    private static final AtomicLongFieldUpdater<MeshClientRequest> QUEUED =
            AtomicLongFieldUpdater.newUpdater(MeshClientRequest.class, "queued"); // no object per request
    private volatile boolean upstreamFull;
    private volatile boolean callerWaiting;
    private volatile Handler<Void> drainHandler;
    private boolean chunked;
    /** Whether the request was handed to the mesh (routed, or about to be on its context). */
    private boolean routed;
    /** Whether the caller ended the request, or is done with it (reset, timed out, closed). */
    private boolean ended;
    /**
     * Whether the caller ended it ({@code end}, {@code send}): as a plain Vert.x request, its head, settings and
     * handlers cannot change any more ({@link #checkComplete}).
     */
    private volatile boolean complete;
    private boolean followRedirects;
    private int maxRedirects = 16;
    private String traceOperation;
    /**
     * Set by the caller on any thread, possibly after the request was routed (a head sent, a body being written);
     * called on the context: volatile, as the continue handler.
     */
    private volatile Handler<Throwable> exceptionHandler;
    /** Where to connect when the options named a server apart from the host (a virtual host), else null. */
    private final SocketAddress server;
    /**
     * The idle timeout's timer, -1 when none runs. Set, replaced and cancelled on the context only, where it fires
     * and the response cancels it ({@link #idleTimeout} may be called on any thread).
     */
    private long timeoutTimer = -1;
    /** The idle timeout in force (0: none), given on to a redirect's request; on the context, as the timer. */
    private long timeoutMs;
    /** The request the router is working on, once forwarded: what {@link #reset} cancels. */
    private volatile RouterRequest forwarded;
    /** A request this one handed on to: the redirect's, or the plain client's for TLS to a passthrough address. */
    private HttpClientRequest handedOn;
    /** The response given to the caller, whose body a reset cuts. */
    private MeshClientResponse delivered;
    private volatile Handler<Void> continueHandler;
    private boolean continued;
    private Function<HttpClientResponse, Future<HttpClientRequest>> redirectHandler;
    private int redirections;

    MeshClientRequest(MeshHttpClient client, OutboundDispatcher dispatcher, Context context, RequestOptions o,
                      String defaultHost, int defaultPort, boolean defaultSsl, String protocol) {
        this.client = client;
        this.protocol = protocol;
        this.dispatcher = dispatcher;
        this.context = (ContextInternal) context;
        this.response = this.context.promise();
        this.method = o.getMethod() == null ? HttpMethod.GET : o.getMethod();
        this.uri = o.getURI() == null || o.getURI().isEmpty() ? "/" : o.getURI();
        this.server = o.getServer() instanceof SocketAddress a && a.isInetSocket() ? a : null;
        // as Vert.x: without a host or port of their own, the options' server gives them, else the client's defaults
        this.host = o.getHost() != null ? o.getHost() : server != null ? server.host() : defaultHost;
        this.port = o.getPort() != null ? o.getPort() : server != null ? server.port() : defaultPort;
        this.ssl = o.isSsl() != null ? o.isSsl() : defaultSsl; // as Vert.x: else the client's HttpClientOptions.ssl
        if (o.getHeaders() != null) {
            o.getHeaders().forEach(headers::add); // no intermediate list of entries, as addAll makes
        }
        if (o.getFollowRedirects() != null) {
            followRedirects = o.getFollowRedirects();
        }
        this.traceOperation = o.getTraceOperation();
        // as Vert.x: setTimeout gives the idle timeout unless setIdleTimeout gives its own
        long idle = o.getIdleTimeout() >= 0 ? o.getIdleTimeout() : o.getTimeout();
        if (idle > 0) {
            idleTimeout(idle);
        }
    }

    private void dispatch() {
        if (routed) {
            return;
        }
        routed = true;
        // Off the request's context (a thread outside Vert.x), the router could commit the response and the upstream
        // body could end before the response below attaches its handlers: run it all on the context.
        onContext(this::route);
    }

    private void route() {
        if (response.future().isComplete()) {
            return; // reset, timed out or closed before it was sent
        }
        String destination = server != null ? server.host() : host;
        int destinationPort = server != null ? server.port() : port;
        OutboundDispatcher.TlsRoute tls = ssl ? dispatcher.tlsRoute(destination, destinationPort) : null;
        if (tls != null) {
            // TLS the mesh cannot read: as a sidecar relays it, to the address the caller named or to a host of the
            // cluster the chain names, the caller's TLS (its SNI and checks of the host name) end to end
            sendDirect(tls.server());
            return;
        }
        // the router works on a copy: what the mesh adds (x-request-id, x-forwarded-proto, the peer metadata) is the
        // upstream request's, never the caller's, whose headers a redirect followed copies into its next request
        // (Vert.x's redirect handler), a request of its own as each hop through a sidecar is
        Future<RouterResponse> routing = dispatcher.dispatch(method, host, port, server, uri, headers.copy(), body,
                stream, ssl, protocol, r -> forwarded = r, this::continued);
        routing.onComplete(ar -> {
            if (ar.failed()) {
                fail(ar.cause());
                return;
            }
            RouterResponse r = ar.result();
            if (response.future().isComplete()) {
                // the caller went away meanwhile: nobody reads this response
                if (r.upstream() != null) {
                    r.upstream().request().reset();
                }
                dispatcher.router().abort(r, 0, ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION);
                return;
            }
            respond(new MeshClientResponse(this, r, dispatcher.router(), context));
        });
    }

    /**
     * Sends the request with the plain client over its own TLS, to {@code to} (a host the mesh picked), else to the
     * address the caller named.
     */
    private void sendDirect(SocketAddress to) {
        RequestOptions o = new RequestOptions().setMethod(method).setHost(host).setPort(port).setURI(uri)
                .setSsl(true).setHeaders(headers).setFollowRedirects(false);
        if (to != null) {
            o.setServer(to);
        } else if (server != null) {
            o.setServer(server);
        }
        client.direct(o).onComplete(ar -> {
            if (ar.failed()) {
                fail(ar.cause());
                return;
            }
            HttpClientRequest r = ar.result();
            if (response.future().isComplete()) {
                r.reset();
                return;
            }
            handedOn = r;
            r.continueHandler(this::continued); // the server's own 100 Continue, through the caller's TLS
            // as the caller framed it, and as the router's attempts send it, with no retry to keep a streamed body for
            r.setChunked(chunked);
            RequestBodyStream.send(r, body, stream).onComplete(rr -> {
                if (rr.failed()) {
                    fail(rr.cause());
                } else if (response.future().isComplete()) {
                    r.reset();
                } else {
                    respond(rr.result());
                }
            });
        });
    }

    /** The response has come: a redirect to follow, or the caller's. */
    private void respond(HttpClientResponse resp) {
        cancelTimeout();
        int status = resp.statusCode();
        if (followRedirects && redirections < maxRedirects && status >= 300 && status < 400) {
            Function<HttpClientResponse, Future<HttpClientRequest>> h = redirectHandler != null ? redirectHandler
                    : client::redirect;
            Future<HttpClientRequest> next = h.apply(resp);
            if (next != null) {
                // as Vert.x: the redirect's body is read to its end first
                resp.body().transform(v -> next).onComplete(ar -> {
                    if (ar.failed()) {
                        fail(ar.cause());
                    } else {
                        follow(ar.result());
                    }
                });
                return;
            }
        }
        if (resp instanceof MeshClientResponse m) {
            delivered = m; // done when its body is
        } else {
            client.finished(this); // the plain client's response: that client closes it
        }
        if (!response.tryComplete(resp)) {
            resp.request().reset();
        }
    }

    private void follow(HttpClientRequest next) {
        if (response.future().isComplete()) {
            next.reset();
            return;
        }
        handedOn = next;
        next.setFollowRedirects(true).setMaxRedirects(maxRedirects);
        if (next instanceof MeshClientRequest m) {
            m.redirections = redirections + 1;
            m.redirectHandler = redirectHandler;
        }
        next.response().onComplete(ar -> {
            if (ar.failed()) {
                fail(ar.cause());
                return;
            }
            client.finished(this); // the next request is the client's to close now
            if (!response.tryComplete(ar.result())) {
                ar.result().request().reset();
            }
        });
        if (timeoutMs > 0) {
            next.idleTimeout(timeoutMs);
        }
        next.end();
    }

    private void fail(Throwable t) {
        cancelTimeout();
        if (response.tryFail(t)) {
            client.finished(this);
            Handler<Throwable> h = exceptionHandler;
            if (h != null) {
                h.handle(t);
            }
        }
    }

    /**
     * The caller is done with the request (its reset, its idle timeout, its client's close): before the response, the
     * request fails and the router stops the exchange; after, the response's body fails. On the request's context,
     * which is the exchange's: the router hears of it at once.
     *
     * <p>The streamed body is closed last, once the router (or the response) was told: closing it resets the attempt
     * it goes to, and that reset must find the exchange already over, as Envoy's upstream request drops its callbacks
     * before it resets its stream (HttpUpstream::resetStream, source/extensions/upstreams/http/http/upstream_request.h).
     * Closed first, the attempt would fail as if the upstream had reset it: a 503 UR counted against the host (its
     * outlier detection's consecutive 5xx), where Envoy records the caller's leaving, DC with response code 0.
     */
    private void cancel(Throwable cause) {
        ended = true; // nothing more is sent
        if (response.future().isComplete()) {
            if (delivered != null) {
                delivered.reset(cause);
            } else if (response.future().succeeded()) {
                response.future().result().request().reset(0, cause);
            }
        } else {
            fail(cause);
            RouterRequest r = forwarded;
            if (r != null) {
                dispatcher.router().cancel(r);
            }
            HttpClientRequest h = handedOn;
            if (h != null) {
                h.reset(0, cause);
            }
        }
        if (stream != null) {
            stream.close();
        }
    }

    /**
     * The mesh reset the caller's stream once the response started ({@code reset}, as the response failed with it):
     * as a plain Vert.x request, one still being written fails with it too, its exception handler told, and takes no
     * more. On the request's context.
     */
    void resetByMesh(Throwable reset) {
        if (complete) {
            return;
        }
        ended = true;
        Handler<Throwable> h = exceptionHandler;
        if (h != null) {
            h.handle(reset);
        }
    }

    /** The client closed: as Vert.x fails the requests of a closed client's connections. */
    void closed() {
        onContext(() -> cancel(new HttpClosedException("Connection was closed")));
    }

    private void onContext(Runnable r) {
        if (Vertx.currentContext() == context) {
            r.run();
        } else {
            context.runOnContext(v -> r.run());
        }
    }

    private void cancelTimeout() {
        if (timeoutTimer >= 0) {
            context.owner().cancelTimer(timeoutTimer);
            timeoutTimer = -1;
        }
    }

    private void timedOut(long ms) {
        timeoutTimer = -1;
        if (!response.future().isComplete()) {
            // Vert.x's message, so that logs and callers read the same
            cancel(new TimeoutException("The timeout period of " + ms + "ms has been exceeded while executing "
                    + method + " " + uri + " for server " + authorityForMessage()));
        }
    }

    private String authorityForMessage() {
        return IpLiterals.withPort(IpLiterals.unbracketed(host), port);
    }

    /** Called by the response once its body ended or failed. */
    void finished() {
        client.finished(this);
    }

    private static Future<Void> alreadyEnded() {
        return Future.failedFuture(new IllegalStateException(ALREADY_COMPLETE));
    }

    /** Vert.x's words for a request changed after it ended. */
    private static final String ALREADY_COMPLETE = "Request already complete";

    /**
     * As a plain Vert.x request: once ended, its headers, settings and handlers cannot change (they would be
     * ignored, or race with the routing on the request's context).
     */
    private void checkComplete() {
        if (complete) {
            throw new IllegalStateException(ALREADY_COMPLETE);
        }
    }

    /**
     * The body is to go upstream as it comes: the request is routed now (once), its body a stream that the router
     * sends on. On the request's context.
     */
    private void startStreaming() {
        if (stream == null) {
            streamLength = declaredLength(); // the head is the caller's no more once its body streams
            stream = new RequestBodyStream();
            stream.drainHandler(v -> {
                upstreamFull = false;
                drainIfWaiting();
            });
            dispatch();
        }
    }

    /** A chunk of a streamed body (or none, for the head), handed to the stream on the request's context. */
    private void stream(Buffer chunk, boolean last) {
        int n = chunk == null ? 0 : chunk.length();
        QUEUED.addAndGet(this, n);
        onContext(() -> {
            startStreaming();
            QUEUED.addAndGet(this, -n);
            if (chunk != null) {
                stream.write(chunk); // the stream's now, as a buffer written to a plain Vert.x request
            }
            // over HTTP/1 the body ends at its last byte when its content-length says where that is, as Envoy's
            // HTTP/1 codec ends the request there (end_stream with the data): the route timeout and the upstream
            // service time run from then, not from the caller's end() that may come after the upstream read the body
            // whole and answered (over HTTP/2 the stream's end says it, which only end() sends)
            if (last || stream.received() >= streamLength) {
                stream.end();
            }
            upstreamFull = stream.writeQueueFull();
            drainIfWaiting();
        });
    }

    /**
     * The body's length as its {@code content-length} states it, or {@link Long#MAX_VALUE} when none does (chunked,
     * or a value that is not one number) or the request is HTTP/2: where a streamed HTTP/1 body ends before the
     * caller's {@code end()}.
     */
    private long declaredLength() {
        if (chunked || "HTTP/2".equals(protocol)) {
            return Long.MAX_VALUE;
        }
        String length = headers.get(HttpHeaders.CONTENT_LENGTH);
        try {
            return length == null ? Long.MAX_VALUE : Long.parseLong(length.trim());
        } catch (NumberFormatException e) {
            return Long.MAX_VALUE;
        }
    }

    /**
     * On the context: a caller that found the queue full hears that it is not any more. One that has no drain handler
     * yet (on another thread, it sets it after {@link #writeQueueFull()} said so) stays waiting: setting the handler
     * looks again.
     */
    private void drainIfWaiting() {
        if (callerWaiting && !upstreamFull && queued < RequestBodyStream.HIGH_WATER) {
            Handler<Void> h = drainHandler;
            if (h != null) {
                callerWaiting = false;
                h.handle(null);
            }
        }
    }

    @Override
    public HttpClientRequest exceptionHandler(Handler<Throwable> handler) {
        if (handler != null) {
            checkComplete();
        }
        this.exceptionHandler = handler;
        return this;
    }

    @Override
    public Future<Void> write(Buffer data) {
        if (!chunked && !headers.contains(HttpHeaders.CONTENT_LENGTH)) {
            // as a plain Vert.x request, HTTP/1.x or HTTP/2: a body written before the end says how it is framed
            throw new IllegalStateException("You must set the Content-Length header to be the total size of the "
                    + "message body BEFORE sending any data if you are not using HTTP chunked encoding.");
        }
        if (ended) {
            return alreadyEnded();
        }
        streaming = true;
        stream(data, false);
        return Future.succeededFuture();
    }

    @Override
    public HttpClientRequest setWriteQueueMaxSize(int maxSize) {
        checkComplete();
        return this;
    }

    /**
     * Whether the body written so far waits to go upstream: more than {@link RequestBodyStream#HIGH_WATER} bytes not
     * yet taken by the mesh, or the attempt's own queue is full. Any thread.
     */
    @Override
    public boolean writeQueueFull() {
        checkComplete();
        callerWaiting = true; // first: the context then either sees it, or this sees what the context did
        boolean full = upstreamFull || queued >= RequestBodyStream.HIGH_WATER;
        if (!full) {
            callerWaiting = false;
        }
        return full;
    }

    /**
     * The handler called once the queue {@link #writeQueueFull()} found full is not any more. A caller on another
     * thread sets it after the queue may have drained already: it is then called on the context all the same (in a
     * task of its own, never from this call).
     */
    @Override
    public HttpClientRequest drainHandler(Handler<Void> handler) {
        if (handler != null) {
            checkComplete();
        }
        this.drainHandler = handler;
        if (handler != null && callerWaiting) {
            context.runOnContext(v -> drainIfWaiting());
        }
        return this;
    }

    @Override
    public HttpClientRequest authority(HostAndPort authority) {
        headers.set("host", authority.port() > 0 ? authority.host() + ":" + authority.port() : authority.host());
        return this;
    }

    @Override
    public HttpClientRequest setFollowRedirects(boolean followRedirects) {
        checkComplete();
        this.followRedirects = followRedirects;
        return this;
    }

    @Override
    public boolean isFollowRedirects() {
        return followRedirects;
    }

    @Override
    public HttpClientRequest setMaxRedirects(int maxRedirects) {
        checkComplete();
        this.maxRedirects = maxRedirects;
        return this;
    }

    @Override
    public int getMaxRedirects() {
        return maxRedirects;
    }

    @Override
    public int numberOfRedirections() {
        return redirections;
    }

    @Override
    public HttpClientRequest setChunked(boolean chunked) {
        checkComplete();
        if (streaming) {
            throw new IllegalStateException("Cannot set chunked after data has been written on request"); // Vert.x's
        }
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
        return (ssl ? "https" : "http") + "://" + authorityForMessage() + uri;
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
        checkComplete();
        headers.set(name, value);
        return this;
    }

    @Override
    public HttpClientRequest putHeader(CharSequence name, CharSequence value) {
        checkComplete();
        headers.set(name, value);
        return this;
    }

    @Override
    public HttpClientRequest putHeader(String name, Iterable<String> values) {
        checkComplete();
        headers.set(name, values);
        return this;
    }

    @Override
    public HttpClientRequest putHeader(CharSequence name, Iterable<CharSequence> values) {
        checkComplete();
        headers.set(name, values);
        return this;
    }

    @Override
    public HttpClientRequest traceOperation(String op) {
        checkComplete();
        this.traceOperation = op;
        return this;
    }

    @Override
    public String traceOperation() {
        return traceOperation;
    }

    @Override
    public HttpVersion version() {
        return "HTTP/2".equals(protocol) ? HttpVersion.HTTP_2 : HttpVersion.HTTP_1_1;
    }

    @Override
    public Future<Void> write(String chunk) {
        return write(Buffer.buffer(chunk));
    }

    @Override
    public Future<Void> write(String chunk, String enc) {
        return write(Buffer.buffer(chunk, enc));
    }

    @Override
    public HttpClientRequest continueHandler(Handler<Void> handler) {
        if (handler != null) {
            checkComplete();
        }
        this.continueHandler = handler;
        return this;
    }

    /**
     * A {@code 100 Continue} for the caller, on the request's context: the mesh's own answer to its
     * {@code Expect: 100-continue} when the request is routed, or, under the connection manager's
     * {@code proxy_100_continue}, the upstream's, relayed (see {@link OutboundDispatcher#dispatch}). The continue
     * handler runs once.
     */
    private void continued(Void ignored) {
        Handler<Void> h = continueHandler;
        if (!continued && h != null) {
            continued = true;
            h.handle(null);
        }
    }

    @Override
    public HttpClientRequest earlyHintsHandler(Handler<MultiMap> handler) {
        if (handler != null) {
            checkComplete();
        }
        return this;
    }

    @Override
    public HttpClientRequest redirectHandler(Function<HttpClientResponse, Future<HttpClientRequest>> handler) {
        if (handler != null) {
            checkComplete();
        }
        this.redirectHandler = handler;
        return this;
    }

    /** The head goes: the request is routed now, its body to follow as it is written. */
    @Override
    public Future<Void> sendHead() {
        checkComplete();
        if (ended) {
            return alreadyEnded();
        }
        streaming = true;
        stream(null, false);
        return Future.succeededFuture();
    }

    @Override
    public Future<HttpClientResponse> connect() {
        return Future.failedFuture(new UnsupportedOperationException("connect(): CONNECT is not routed by the mesh"));
    }

    @Override
    public Future<HttpClientResponse> response() {
        return response.future();
    }

    @Override
    public Future<HttpClientResponse> send(ClientForm form) {
        onContext(() -> sendForm((ClientMultipartFormImpl) form)); // Vert.x's encoder runs on its context only
        return response();
    }

    /** Encodes a form as Vert.x does (url-encoded, or multipart when it has files or the type says so) and sends it. */
    private void sendForm(ClientMultipartFormImpl parts) {
        String type = headers.get(HttpHeaders.CONTENT_TYPE);
        boolean multipart = type == null ? parts.isMultipart()
                : type.equalsIgnoreCase(HttpHeaders.MULTIPART_FORM_DATA.toString());
        ClientMultipartFormUpload upload;
        try {
            if (type == null) {
                headers.set(HttpHeaders.CONTENT_TYPE, multipart ? HttpHeaders.MULTIPART_FORM_DATA
                        : HttpHeaders.APPLICATION_X_WWW_FORM_URLENCODED);
            } else if (!multipart && (parts.isMultipart()
                    || !type.equalsIgnoreCase(HttpHeaders.APPLICATION_X_WWW_FORM_URLENCODED.toString()))) {
                throw new IllegalStateException("a form is sent as multipart/form-data or "
                        + HttpHeaders.APPLICATION_X_WWW_FORM_URLENCODED + ", not " + type);
            }
            upload = new ClientMultipartFormUpload(context, parts, multipart, parts.mixed()
                    ? HttpPostRequestEncoder.EncoderMode.RFC1738 : HttpPostRequestEncoder.EncoderMode.HTML5);
        } catch (Exception e) {
            fail(e);
            return;
        }
        upload.headers().forEach(h -> {
            if (!h.getKey().equalsIgnoreCase(HttpHeaders.CONTENT_LENGTH.toString()) || !h.getValue().startsWith("-")) {
                headers.set(h.getKey(), h.getValue());
            }
        });
        send(upload);
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
        if (ended) {
            return alreadyEnded();
        }
        ended = true;
        complete = true;
        if (streaming) {
            stream(chunk, true); // the rest of a body that already streams
        } else {
            if (!chunked && chunk != null && !headers.contains(HttpHeaders.CONTENT_LENGTH)) {
                headers.set(HttpHeaders.CONTENT_LENGTH, Integer.toString(chunk.length())); // as Vert.x sets it
            }
            // whole: a retry resends it; a chunked one, even empty, is kept so that the mesh forwards a body of no
            // stated length chunked, as a plain Vert.x request sends it
            if (chunked || chunk != null && chunk.length() > 0) {
                body = chunk == null ? Buffer.buffer(0) : Buffer.buffer(chunk.length()).appendBuffer(chunk);
            }
            dispatch();
        }
        return Future.succeededFuture();
    }

    @Override
    public Future<Void> end() {
        return end((Buffer) null);
    }

    @Override
    public HttpClientRequest idleTimeout(long timeout) {
        onContext(() -> {
            cancelTimeout();
            timeoutMs = timeout;
            if (timeout > 0 && !response.future().isComplete()) {
                timeoutTimer = context.setTimer(timeout, id -> timedOut(timeout));
            }
        });
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
        StreamResetException e = cause == null ? new StreamResetException(code) : new StreamResetException(code, cause);
        onContext(() -> cancel(e));
        return Future.succeededFuture();
    }

    /** Not supported: the request has no connection of its own; the mesh picks one upstream for each attempt. */
    @Override
    public HttpConnection connection() {
        throw new UnsupportedOperationException("connection(): a request through the mesh has no connection of its "
                + "own; the mesh picks the upstream connection of each attempt");
    }

    @Override
    public Future<Void> writeCustomFrame(int type, int flags, Buffer payload) {
        return Future.failedFuture(new UnsupportedOperationException(
                "writeCustomFrame(): custom frames are not routed by the mesh"));
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
