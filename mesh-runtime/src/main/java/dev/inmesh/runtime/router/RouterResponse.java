package dev.inmesh.runtime.router;

import dev.inmesh.runtime.stats.ResponseFlag;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Promise;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientResponse;
import java.util.Set;

/**
 * The response the router committed to: either the last upstream response, whose body the caller streams
 * downstream, or a local reply. The caller must call {@link Router#complete} (or {@link Router#abort}) exactly once
 * when the body has been sent, so that limits are released and the request is recorded.
 */
public final class RouterResponse {
    final int status;
    final MultiMap headers;
    final HttpClientResponse upstream;
    final Buffer localBody;
    final Exchange exchange;

    RouterResponse(int status, MultiMap headers, HttpClientResponse upstream, Buffer localBody, Exchange exchange) {
        this.status = status;
        this.headers = headers;
        this.upstream = upstream;
        this.localBody = localBody;
        this.exchange = exchange;
    }

    public int status() {
        return status;
    }

    /** The request this answers (as the router readied it). */
    public RouterRequest request() {
        return exchange.request;
    }

    /** What the route table decided for the request: its route, whose per-filter configs apply to the answer. */
    public RouteResult route() {
        return exchange.route;
    }

    /** The headers to send downstream (already mutated by the route's header rules). */
    public MultiMap headers() {
        return headers;
    }

    /**
     * The upstream response whose body is still to be read, or null for a local reply. It is <em>paused</em>, so that
     * no chunk is lost before the caller's handlers are set: set them (or call {@code body()}), then
     * {@code resume()}; {@code pipeTo} resumes by itself. {@link #body()} does both. A caller that sets its own
     * handler calls {@link #bodyChunk} for each chunk, or the stream idle timeout cuts a body that still flows.
     */
    public HttpClientResponse upstream() {
        return upstream;
    }

    /** The whole body: the local reply's, or the upstream response's (read and resumed). */
    public Future<Buffer> body() {
        if (upstream == null) {
            return Future.succeededFuture(localBody);
        }
        Promise<Buffer> body = Promise.promise();
        Buffer all = Buffer.buffer();
        upstream.handler(b -> {
            bodyChunk(b);
            all.appendBuffer(b);
        });
        upstream.exceptionHandler(body::tryFail);
        upstream.endHandler(v -> body.tryComplete(all));
        upstream.resume();
        return body.future();
    }

    /**
     * Tells the router that a chunk of the {@link #upstream()} body went on: the stream idle timeout (and the
     * attempt's per-try idle timeout) start over. A caller that reads the upstream body itself calls it per chunk.
     */
    public void bodyActivity() {
        exchange.touch();
    }

    /**
     * Tells the router that this chunk of the {@link #upstream()} body went on: as {@link #bodyActivity()}, and, for a
     * gRPC request whose messages are counted, the messages that start in it count as sent to the caller.
     */
    public void bodyChunk(Buffer chunk) {
        exchange.touch();
        GrpcFrames messages = exchange.responseMessages;
        if (messages != null) {
            messages.inspect(chunk);
        }
    }

    /**
     * The fault filter's response rate limit on the {@link #upstream()} body for this request, or null when none
     * applies (nothing then stands between the body and the caller): it sends what it is given to {@code sink} at the
     * fault's rate, on {@code context}'s timers; {@code above} and {@code below} ask the source to pause and go on.
     */
    public StreamRateLimiter responseRateLimiter(io.vertx.core.Context context,
                                                 java.util.function.Consumer<Buffer> sink, Runnable above,
                                                 Runnable below) {
        long kbps = exchange.responseRateKbps;
        return kbps == 0 || upstream == null ? null
                : new StreamRateLimiter(kbps, StreamRateLimiter.Clock.of(context), sink, above, below);
    }

    /** The body of a local reply, or null when the body comes from {@link #upstream()}. */
    public Buffer localBody() {
        return localBody;
    }

    /** Whether the router answered itself (no route, no healthy upstream, overflow, timeout, ...). */
    public boolean isLocalReply() {
        return upstream == null;
    }

    public Set<ResponseFlag> flags() {
        return exchange.flags;
    }

    /** How many upstream attempts were made. */
    public int attempts() {
        return exchange.attempts;
    }

    /** The request's gRPC-Web translation ({@link RouterRequest#grpcWeb}), or null for none. */
    public GrpcWeb grpcWeb() {
        return exchange.request.grpcWeb;
    }

    /**
     * What the last attempt's connect to its host failed with (refused, unreachable, a name that does not resolve, its
     * timeout), as the client met it; null when it connected, or no attempt was made.
     */
    public Throwable connectCause() {
        return exchange.connectCause;
    }

    /** The cluster the request went to, or null. */
    public String cluster() {
        return exchange.clusterName;
    }

    /** The last upstream host tried, {@code ip:port}, or null. */
    public String upstreamHost() {
        return exchange.lastHost == null ? null : exchange.lastHost.addressString();
    }
}
