package dev.inmesh.runtime.router;

import io.netty.channel.ChannelHandlerContext;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.MultiMap;
import io.vertx.core.Promise;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.impl.HttpClientConnectionInternal;
import java.util.ArrayList;
import java.util.Map;

/**
 * A request body still arriving when the router takes the request ({@link RouterRequest#bodyStream}), which the router
 * sends upstream as it comes, as Envoy's router does: each chunk goes to the attempt in flight at once (chunks that
 * come while an attempt connects or a retry backs off wait for it), and the caller honours back-pressure through
 * {@link #writeQueueFull()} and {@link #drainHandler}. While the request may still be retried, the chunks sent so far
 * are kept, so that a retry sends the body again from its start and then goes on with the chunks still to come; once
 * they outgrow the request's buffer limit (see {@link Router}: the route's or virtual host's
 * {@code per_request_buffer_limit_bytes}, capped by the listener's {@code per_connection_buffer_limit_bytes}), the
 * router gives up retrying the request ({@code retry_or_shadow_abandoned}) and keeps nothing more. Once a response
 * is passed on, nothing is kept either. Before any attempt, a filter may wait for the body ({@link #hold}, the
 * ext_authz filter's {@code with_request_body}): it is then held up to the filter's limit, and sent on from its start.
 * While the request is to be mirrored ({@link RequestMirror}), the whole body is kept too, for the copies sent once it
 * ends, under the same limit: a body that outgrows it is not mirrored (and counted once, with the retries).
 *
 * <p>Trailers that end the body ({@link #end(MultiMap)}) follow it to an HTTP/2 upstream, as Envoy's router passes a
 * request's trailers on (source/common/router/router.cc decodeTrailers): a HEADERS frame that ends the stream, after
 * the last DATA frame went out (an HTTP/1.1 upstream gets the body without them).
 *
 * <p>The caller writes and ends it on the context the router runs the exchange on (for the in-JVM client, the
 * request's own); it is not thread-safe.
 */
public final class RequestBodyStream {
    /**
     * How much of a body is kept for retries and mirrors when neither the listener nor the route sets a limit:
     * Envoy's default {@code per_connection_buffer_limit_bytes}, which Istio's sidecar listeners keep, 1 MiB.
     */
    public static final int RETRY_BUFFER_LIMIT = 1024 * 1024;
    /** Bytes that wait for an attempt (one connecting, a retry backing off) before the caller is asked to wait. */
    public static final int HIGH_WATER = 64 * 1024;
    private static final CharSequence ZERO = io.netty.util.AsciiString.cached("0");

    /** What the router hears of the body; on the exchange's context. */
    interface Owner {
        /** A chunk came: activity for the idle timeouts. */
        void bodyActivity();

        /**
         * The chunks kept for retries or mirrors would outgrow the request's buffer limit: no more retries, and no
         * mirrors.
         */
        void retryBufferOverflowed();

        /** The caller ended the body: the request is complete. */
        void bodyEnded();
    }

    /** The chunks not yet sent to the attempt in flight, preceded, while retaining, by those already sent. */
    private final ArrayList<Buffer> chunks = new ArrayList<>(4);
    /** The index in {@link #chunks} of the next chunk to send. */
    private int next;
    /** The bytes in {@link #chunks}. */
    private long held;
    private long received;
    /** The gRPC messages that started in the body received (counted for any body: a cheap walk over prefixes). */
    private final GrpcFrames messages = new GrpcFrames();
    private boolean ended;
    /** The trailers that ended the body, or null for none. */
    private MultiMap trailers;
    private boolean closed;
    /** Whether sent chunks are kept for a retry. */
    private boolean retaining;
    /** The whole body so far, kept for mirrors, or null when it is not to be mirrored. */
    private ArrayList<Buffer> mirrored;
    /** The most bytes kept for retries and mirrors: the request's buffer limit, set by the router. */
    private long limit = RETRY_BUFFER_LIMIT;
    private Owner owner;
    /** The attempt in flight the chunks go to, or null. */
    private HttpClientRequest sink;
    private boolean sinkEnded;
    /** The last write to the attempt in flight (its head's, or its body's last chunk's), or null before any. */
    private Future<Void> lastWrite;
    private Handler<Void> drainHandler;
    /** Whether the caller was told the queue is full, so that it waits for the drain handler. */
    private boolean waiting;
    /** A filter that waits for the body ({@link #hold}), or null; and how many bytes it waits for. */
    private Promise<Buffer> holding;
    private long holdLimit;
    /** What hears of each chunk that comes while it is held (the stream's idle timeout), or null. */
    private Runnable holdActivity;

    /** Adds a chunk of the body. Nothing happens once it ended or the router is done with it. */
    public void write(Buffer chunk) {
        if (ended || closed || chunk == null || chunk.length() == 0) {
            return;
        }
        received += chunk.length();
        messages.inspect(chunk);
        if (holding != null && holdActivity != null) {
            holdActivity.run();
        }
        if (owner != null) {
            owner.bodyActivity();
            if (retaining && held + chunk.length() > limit || mirrored != null && received > limit) {
                stopRetaining();
                mirrored = null;
                owner.retryBufferOverflowed();
                if (closed) {
                    return; // the router answered (a retry was waiting: nothing takes the body any more)
                }
            }
        }
        if (mirrored != null) {
            mirrored.add(chunk);
        }
        chunks.add(chunk);
        held += chunk.length();
        flush();
        if (holding != null && received >= holdLimit) {
            stopHolding();
        }
    }

    /** Ends the body: the request is complete. */
    public void end() {
        end(null);
    }

    /** Ends the body with {@code trailers} (null or empty: none): the request is complete. */
    public void end(MultiMap trailers) {
        if (ended || closed) {
            return;
        }
        ended = true;
        this.trailers = trailers == null || trailers.isEmpty() ? null : trailers;
        flush();
        stopHolding();
        if (owner != null) {
            owner.bodyEnded();
        }
    }

    /** Whether the caller should wait for the drain handler before writing more. */
    public boolean writeQueueFull() {
        boolean full = !closed && !ended
                && (sink != null ? !sinkEnded && sink.writeQueueFull() : held >= Math.max(HIGH_WATER, holdLimit));
        if (full) {
            waiting = true;
        }
        return full;
    }

    /** Called once the queue is no longer full (or the router is done with the body). */
    public void drainHandler(Handler<Void> handler) {
        this.drainHandler = handler;
    }

    /**
     * Holds the body for a filter that reads it before the request goes on ({@link RequestBody#hold}), before any
     * attempt takes it: the caller may write up to {@code limit} bytes (beyond {@link #HIGH_WATER}) before it is asked
     * to wait. The chunks that came stay held, and go to the attempt first as any chunk that came before it.
     *
     * @return once the body ended or {@code limit} bytes came: all that came (null for nothing); failed
     *     ({@link RequestBody.Gone}) once the body goes nowhere ({@link #close}: the caller left, the exchange ended)
     */
    Future<Buffer> hold(long limit) {
        return hold(limit, null);
    }

    /** {@link #hold(long)}, telling {@code activity} (unless null) of each chunk that comes while it waits. */
    Future<Buffer> hold(long limit, Runnable activity) {
        if (closed) {
            return Future.failedFuture(new RequestBody.Gone());
        }
        if (ended || received >= limit || sink != null) {
            return Future.succeededFuture(heldChunks());
        }
        holdLimit = limit;
        holdActivity = activity;
        holding = Promise.promise();
        if (waiting && held < limit) {
            drained(); // told to wait at the usual mark: it may write up to the limit now
        }
        return holding.future();
    }

    /**
     * Replaces the body held whole ({@link #hold} answered once it ended; a Lua script's {@code setBytes}) with
     * {@code body}, which the attempt then takes instead, before any did.
     */
    void replace(Buffer body) {
        if (closed || sink != null || !ended) {
            throw new IllegalStateException("only a body held whole before any attempt may be replaced");
        }
        chunks.clear();
        held = 0;
        if (body.length() > 0) {
            chunks.add(body);
            held = body.length();
        }
    }

    /** The filter that waited for the body has it: the usual mark applies again. */
    private void stopHolding() {
        Promise<Buffer> p = holding;
        if (p != null) {
            holding = null;
            holdLimit = 0;
            holdActivity = null;
            p.complete(heldChunks());
        }
    }

    /** The chunks held, as one buffer (null for none). */
    private Buffer heldChunks() {
        return RequestBody.joined(chunks, chunks.isEmpty() ? 0 : held);
    }

    /** Whether the caller ended the body. */
    public boolean ended() {
        return ended;
    }

    /** The gRPC messages that started in the body received so far. */
    long messages() {
        return messages.count();
    }

    /** The bytes received so far. */
    public long received() {
        return received;
    }

    /**
     * The router takes the body; {@code retain}: whether the request may be retried; {@code mirror}: whether the
     * whole body is kept for mirrors ({@link #mirroredBody}); {@code limit}: the most bytes kept for either.
     */
    void owner(Owner o, boolean retain, boolean mirror, long limit) {
        this.owner = o;
        this.retaining = retain;
        this.limit = limit;
        this.mirrored = mirror ? new ArrayList<>(chunks) : null; // nothing was sent yet: all that came is held
        if ((retain || mirror) && held > limit) {
            stopRetaining();
            mirrored = null;
            o.retryBufferOverflowed();
        }
    }

    /** The whole body kept for mirrors, once it ended; null when it was empty, or none was kept. */
    Buffer mirroredBody() {
        if (mirrored == null || !ended || mirrored.isEmpty()) { // empty: none came, or a Lua script emptied it
            return null;
        }
        Buffer whole = Buffer.buffer((int) received);
        for (Buffer b : mirrored) {
            whole.appendBuffer(b);
        }
        return whole;
    }

    /**
     * Sends {@code up} as the router forwards a request, framed as Envoy's codecs frame it upstream: a
     * {@code content-length} the request has goes as it is; a body without one (a chunked one, an HTTP/2 one that
     * named no length) goes chunked over HTTP/1.1; a request without a body ({@code body} and {@code stream} null)
     * goes without a body, and over HTTP/1.1 with {@code content-length: 0} added unless its method is one whose
     * requests have no body (GET, HEAD, DELETE, TRACE, CONNECT, RFC 9110 9.3), as Envoy's HTTP/1 codec adds it. Then
     * as {@link #send}.
     */
    public static Future<HttpClientResponse> forward(HttpClientRequest up, Buffer body, RequestBodyStream stream) {
        if (stream == null && !up.headers().contains(HttpHeaders.CONTENT_LENGTH)) {
            if (body != null) {
                up.setChunked(true);
            } else if (up.version() != HttpVersion.HTTP_2 && !bodiless(up.getMethod())) {
                up.headers().set(HttpHeaders.CONTENT_LENGTH, ZERO);
            }
        }
        return send(up, body, stream);
    }

    /** Whether requests of {@code method} have no body, for Envoy's HTTP/1 codec. */
    private static boolean bodiless(HttpMethod method) {
        return method == HttpMethod.GET || method == HttpMethod.HEAD || method == HttpMethod.DELETE
                || method == HttpMethod.TRACE || method == HttpMethod.CONNECT;
    }

    /**
     * Sends {@code up} with its body: {@code stream}'s when there is one (what came of it, then the rest as it comes),
     * else {@code body} whole (null: none). The future is {@code up}'s response.
     */
    public static Future<HttpClientResponse> send(HttpClientRequest up, Buffer body, RequestBodyStream stream) {
        if (stream != null) {
            stream.attach(up);
            return up.response();
        }
        return body == null ? up.send() : up.send(body);
    }

    /**
     * An upstream request takes the body (an attempt's, or, for a caller, one sent outside the router): the chunks
     * held go first, then those to come.
     */
    public void attach(HttpClientRequest up) {
        if (closed) {
            up.reset();
            return;
        }
        sink = up;
        next = 0;
        sinkEnded = false;
        if (!up.headers().contains(HttpHeaders.CONTENT_LENGTH)) {
            up.setChunked(true);
        }
        up.drainHandler(v -> drained());
        lastWrite = null;
        if (chunks.isEmpty() && !ended) {
            // the upstream has the request now, as a caller that waits for an answer first expects
            lastWrite = up.sendHead();
        }
        flush();
    }

    /** The attempt is over (failed, retried, reset): nothing more goes to it. */
    void detach() {
        HttpClientRequest s = sink;
        if (s != null) {
            sink = null;
            next = 0;
            s.drainHandler(null);
        }
    }

    /**
     * The whole body, once it ended and all of it was kept for retries (an internal redirect sends it again); null
     * otherwise.
     */
    Buffer retainedWhole() {
        if (!ended || !retaining) {
            return null;
        }
        Buffer whole = Buffer.buffer((int) held);
        for (Buffer b : chunks) {
            whole.appendBuffer(b);
        }
        return whole;
    }

    /** Whether the attempt in flight has been sent the whole body. */
    boolean sentWhole() {
        return sinkEnded;
    }

    /** Nothing more is kept for retries: a response was passed on, or the request outgrew the retry buffer. */
    void stopRetaining() {
        if (!retaining) {
            return;
        }
        retaining = false;
        for (int i = 0; i < next; i++) {
            held -= chunks.get(i).length();
        }
        chunks.subList(0, next).clear();
        next = 0;
    }

    /**
     * The body goes nowhere any more (a local reply, the exchange's end, the caller's reset): what is held is dropped,
     * later chunks are ignored, an attempt still sending it is reset, and a caller waiting to write is let go.
     */
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        chunks.clear();
        held = 0;
        Promise<Buffer> p = holding;
        if (p != null) {
            holding = null; // as Envoy's filter destroyed with its stream: the check it waited for is never asked
            holdLimit = 0;
            holdActivity = null;
            p.fail(new RequestBody.Gone());
        }
        mirrored = null;
        next = 0;
        HttpClientRequest s = sink;
        detach();
        if (s != null && !sinkEnded) {
            s.reset();
            if (s.version() != HttpVersion.HTTP_2 && s.connection() != null) {
                // an HTTP/1 request whose answer ended before its body was sent whole (an upstream that refused the
                // body of an Expect: 100-continue, or answered early): Vert.x keeps its connection for the next
                // request, which the upstream would read as the rest of this body; closed, as Envoy's pool does
                s.connection().close();
            }
        }
        drained();
    }

    private void flush() {
        HttpClientRequest s = sink;
        if (s == null) {
            return;
        }
        int n = chunks.size();
        while (next < n) {
            lastWrite = s.write(chunks.get(next++));
        }
        if (!retaining) {
            chunks.clear();
            held = 0;
            next = 0;
        }
        if (ended && !sinkEnded) {
            sinkEnded = true;
            if (trailers != null && s.version() == HttpVersion.HTTP_2) {
                endWithTrailers(s, lastWrite != null ? lastWrite : s.sendHead(), trailers);
            } else {
                s.end();
            }
        }
        if (waiting && (sinkEnded || !s.writeQueueFull())) {
            drained();
        }
    }

    /**
     * Ends {@code up}'s stream with {@code trailers} once {@code after} (its last write) went out: Vert.x's client
     * sends no trailers, its HTTP/2 connection's encoder does, behind the DATA frames it holds for flow control.
     */
    private static void endWithTrailers(HttpClientRequest up, Future<Void> after, MultiMap trailers) {
        io.netty.handler.codec.http2.Http2Headers block = new io.netty.handler.codec.http2.DefaultHttp2Headers();
        for (Map.Entry<String, String> e : trailers) {
            block.add(io.netty.util.AsciiString.of(e.getKey()).toLowerCase(), e.getValue());
        }
        after.onComplete(ar -> {
            if (ar.failed()) {
                up.reset(); // the body did not all go: the stream must not stay open
                return;
            }
            if (!(up.connection() instanceof HttpClientConnectionInternal c)) {
                up.end(); // no encoder to write them with: the stream ends without its trailers
                return;
            }
            io.netty.channel.ChannelPipeline pipeline = c.channelHandlerContext().pipeline();
            var h2 = pipeline.get(io.netty.handler.codec.http2.Http2ConnectionHandler.class);
            ChannelHandlerContext ctx = h2 == null ? null : pipeline.context(h2);
            if (ctx == null) {
                return; // the connection is gone: the request failed with it
            }
            ctx.executor().execute(() -> {
                h2.encoder().writeHeaders(ctx, up.streamId(), block, 0, true, ctx.newPromise());
                ctx.flush();
            });
        });
    }

    private void drained() {
        if (!waiting) {
            return;
        }
        waiting = false;
        Handler<Void> h = drainHandler;
        if (h != null) {
            h.handle(null);
        }
    }
}
