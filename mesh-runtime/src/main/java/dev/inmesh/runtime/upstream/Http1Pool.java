package dev.inmesh.runtime.upstream;

import io.vertx.core.Future;
import io.vertx.core.VertxException;
import io.vertx.core.http.ConnectionPoolTooBusyException;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.internal.VertxInternal;
import java.util.ArrayDeque;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * One host's HTTP/1.1 connections: a Vert.x client of at most {@code maxConnections} connections, each carrying one
 * request at a time, with the requests beyond them waiting here rather than in the Vert.x pool's wait queue. Vert.x
 * 5.0's pool takes a waiting request out of its queue only when the request's connect timeout fires; Envoy's pool
 * takes out a pending request as soon as its router gives up on it (a route timeout, the caller gone), so that it no
 * longer counts under {@code max_pending_requests} and the connection that frees next goes to a request still
 * waiting. Here that is {@link #cancel}.
 *
 * <p>A request goes to the Vert.x client while fewer than {@code maxConnections} exchanges are under way, which
 * Vert.x's pool then carries on a connection it has or opens; it is counted off once its exchange is over (its
 * response ended, or its request or response failed), and the first request waiting goes in its place. Beyond
 * {@code maxPending} waiting requests (negative: no limit) one more is refused with
 * {@link ConnectionPoolTooBusyException} (the router's 503 UO), as Vert.x's wait queue refused it.
 */
final class Http1Pool implements HttpClient, PendingRequest.Queue {
    private final VertxInternal vertx;
    private final HttpClient connections;
    private final int maxConnections;
    private final int maxPending;
    private final ArrayDeque<PendingRequest> waiting = new ArrayDeque<>(); // guarded by this
    /** Requests handed to {@link #connections} whose exchange is not over. */
    private int active; // guarded by this
    /** Callers handed this pool that have not yet asked for their request ({@link #handedOut}). */
    private int handedOut; // guarded by this
    private boolean closed; // guarded by this
    /** What {@link #send} calls once an exchange is over: one for the pool rather than a lambda per request. */
    private final java.util.function.Consumer<Throwable> release = t -> released();

    /**
     * @param connections a Vert.x client of at most {@code maxConnections} HTTP/1.1 connections to the host, with no
     *     limit on its own wait queue
     * @param maxPending how many requests may wait for a connection; negative: no limit
     */
    Http1Pool(VertxInternal vertx, HttpClient connections, int maxConnections, int maxPending) {
        this.vertx = vertx;
        this.connections = connections;
        this.maxConnections = Math.max(1, maxConnections);
        this.maxPending = maxPending;
    }

    @Override
    public Future<HttpClientRequest> request(RequestOptions options) {
        synchronized (this) {
            if (handedOut > 0) {
                handedOut--;
            }
            if (closed) {
                return vertx.getOrCreateContext().failedFuture(new VertxException("connection pool closed", true));
            }
            if (active < maxConnections) {
                active++;
            } else if (maxPending >= 0 && waiting.size() >= maxPending) {
                return vertx.getOrCreateContext().failedFuture(new ConnectionPoolTooBusyException(
                        "Connection pool reached max wait queue size of " + maxPending));
            } else {
                // only a request that waits is wrapped: one that goes on at once costs no promise of its own
                PendingRequest w = PendingRequest.of(vertx, options);
                waiting.add(w);
                return w.future();
            }
        }
        return send(options);
    }

    @Override
    public boolean cancel(Future<HttpClientRequest> waiting) {
        return PendingRequest.cancel(this, this.waiting, waiting);
    }

    @Override
    public synchronized boolean idle() {
        return active == 0 && waiting.isEmpty() && handedOut == 0;
    }

    @Override
    public synchronized void handedOut() {
        handedOut++;
    }

    /** Hands a counted request to the Vert.x client, and the next waiting one its place once its exchange is over. */
    private Future<HttpClientRequest> send(RequestOptions options) {
        Future<HttpClientRequest> sent;
        try {
            sent = connections.request(options);
        } catch (RuntimeException e) {
            sent = Future.failedFuture(e); // the client is closed
        }
        PendingRequest.whenOver(sent, release);
        return sent;
    }

    private void released() {
        PendingRequest next;
        synchronized (this) {
            next = closed ? null : waiting.poll();
            if (next == null) {
                active--;
            }
        }
        if (next != null) {
            next.send(this::send);
        }
    }

    /** Lets the requests under way finish (for {@code timeout} at most), then closes; the waiting requests fail. */
    @Override
    public Future<Void> shutdown(long timeout, TimeUnit unit) {
        List<PendingRequest> dropped;
        synchronized (this) {
            closed = true;
            dropped = List.copyOf(waiting);
            waiting.clear();
        }
        dropped.forEach(w -> w.fail(new VertxException("connection pool closed", true)));
        return connections.shutdown(timeout, unit);
    }
}
