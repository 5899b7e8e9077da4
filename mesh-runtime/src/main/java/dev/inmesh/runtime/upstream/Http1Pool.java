package dev.inmesh.runtime.upstream;

import dev.inmesh.runtime.stats.UpstreamStats;
import io.vertx.core.Future;
import io.vertx.core.VertxException;
import io.vertx.core.http.ConnectionPoolTooBusyException;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpConnection;
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
 * <p>As Envoy's pool, a request that finds a connection ready (fewer exchanges under way than connections open, not
 * counting one an exchange left closing) goes to the Vert.x client, which carries it on that connection, and counts
 * as nothing else. One that finds none is a
 * pending request ({@link PendingRequest#counted}): it counts under {@code max_pending_requests} (its caller's
 * breakers, shared by the cluster's pools, else this pool's {@code maxPending}; negative: no limit), and one more is
 * refused with {@link ConnectionPoolTooBusyException} (the router's 503 UO), whether it would wait for a connection
 * to be opened for it (fewer than {@code maxConnections} exchanges under way: it goes to the Vert.x client, which
 * opens one) or here for one in use. An exchange is counted off once it is over (its response ended, or its request
 * or response failed), and the first request waiting goes in its place.
 */
final class Http1Pool implements HttpClient, PendingRequest.Queue, HostPool.Connections {
    private final VertxInternal vertx;
    private final HttpClient connections;
    private final int maxConnections;
    private final int maxPending;
    private final ArrayDeque<PendingRequest> waiting = new ArrayDeque<>(); // guarded by this
    /** The pending requests not yet over: those {@link #waiting} and those whose connection is being opened. */
    private final java.util.Set<PendingRequest> pending = new java.util.HashSet<>(); // guarded by this; by identity
    /** Requests handed to {@link #connections} whose exchange is not over. */
    private int active; // guarded by this
    /**
     * The connections of {@link #connections} that are open and can take a request (not those an exchange left
     * closing, which close a moment later): with fewer {@link #active} exchanges, one is ready.
     */
    private final java.util.Set<HttpConnection> usable = new java.util.HashSet<>(); // guarded by this
    /** Callers handed this pool that have not yet asked for their request ({@link #handedOut}). */
    private int handedOut; // guarded by this
    private boolean closed; // guarded by this
    /** The host left its cluster ({@link #closeWhenDone}): connections close once idle, the pool once done. */
    private boolean draining; // guarded by this
    /**
     * The connections that carry an exchange, by how many have started on it and are not yet over (an exchange may
     * start on a connection just before the previous one on it is counted off); with {@link #carrying} under
     * {@link #active}, an exchange is on its way to a connection not yet known.
     */
    private final java.util.Map<HttpConnection, Integer> carried = new java.util.HashMap<>(); // guarded by this
    private int carrying; // guarded by this
    /** What {@link #send} is told of its exchanges: one for the pool rather than a lambda per request. */
    private final PendingRequest.Ended release = new PendingRequest.Ended() {
        @Override
        public void started(HttpConnection connection) {
            exchangeStarted(connection);
        }

        @Override
        public void ended(Throwable failure, HttpConnection connection, boolean closing) {
            released(connection, closing);
        }
    };

    /**
     * @param connections makes the Vert.x client of at most {@code maxConnections} HTTP/1.1 connections to the host,
     *     with no limit on its own wait queue, which tells the pool of its connections
     * @param maxPending how many requests may be pending when the caller gives no breakers; negative: no limit
     */
    Http1Pool(VertxInternal vertx, java.util.function.Function<HostPool.Connections, HttpClient> connections,
              int maxConnections, int maxPending) {
        this.vertx = vertx;
        this.maxConnections = Math.max(1, maxConnections);
        this.maxPending = maxPending;
        this.connections = connections.apply(this);
    }

    @Override
    public Future<HttpClientRequest> request(RequestOptions options) {
        return request(options, null, null);
    }

    @Override
    public Future<HttpClientRequest> request(RequestOptions options, CircuitBreakerState breakers,
                                             UpstreamStats stats) {
        PendingRequest w;
        synchronized (this) {
            if (handedOut > 0) {
                handedOut--;
            }
            if (closed) {
                return vertx.getOrCreateContext().failedFuture(new VertxException("connection pool closed", true));
            }
            if (active < usable.size()) {
                active++; // a connection is ready: no pending request, no allocation
                w = null;
            } else if (breakers != null ? !breakers.tryStartPending()
                    : maxPending >= 0 && pending.size() >= maxPending) {
                return vertx.getOrCreateContext().failedFuture(new ConnectionPoolTooBusyException(
                        "Connection pool reached max pending requests of "
                                + (breakers != null ? breakers.maxPendingRequests() : maxPending)));
            } else {
                w = PendingRequest.counted(vertx, options, this, breakers, stats);
                pending.add(w);
                if (active < maxConnections) {
                    active++; // Vert.x opens a connection for it
                } else {
                    waiting.add(w);
                    return w.future();
                }
            }
        }
        if (w == null) {
            return send(options);
        }
        w.send(this::send);
        return w.future();
    }

    @Override
    public synchronized void opened(HttpConnection connection) {
        usable.add(connection);
    }

    @Override
    public synchronized void closed(HttpConnection connection) {
        usable.remove(connection);
    }

    /**
     * Counts the connection no longer ready, and closes it once its exchange is over (Vert.x's shutdown of an HTTP/1.1
     * connection): at once when it has none, before its response's end would give it back to the pool. As in Envoy,
     * the exchange is not cut: the day only bounds Vert.x's shutdown timer.
     */
    @Override
    public void drain(HttpConnection connection) {
        synchronized (this) {
            usable.remove(connection);
        }
        connection.shutdown(1, TimeUnit.DAYS);
    }

    /**
     * Closes the connection, under the lock: on its event loop the close takes it out of the Vert.x pool before a
     * request this pool lets in next can be given it. Not while there are as many exchanges under way as open
     * connections: one of them, handed to the Vert.x client, may be on its way to this connection (false; Vert.x's
     * keep-alive timeout, a second later, closes it if none takes it).
     */
    @Override
    public synchronized boolean closeIdle(HttpConnection connection) {
        if (active >= usable.size()) {
            return false;
        }
        usable.remove(connection);
        connection.close();
        return true;
    }

    @Override
    public synchronized void pendingOver(PendingRequest w) {
        pending.remove(w);
    }

    @Override
    public boolean cancel(Future<HttpClientRequest> waiting) {
        return PendingRequest.cancel(this, this.waiting, pending, waiting);
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

    private synchronized void exchangeStarted(HttpConnection connection) {
        if (connection != null) {
            carried.merge(connection, 1, Integer::sum);
            carrying++;
        }
    }

    private void released(HttpConnection connection, boolean closing) {
        PendingRequest next;
        boolean done;
        synchronized (this) {
            if (connection != null) { // an exchange that started on it
                carried.computeIfPresent(connection, (c, n) -> n > 1 ? n - 1 : null);
                carrying--;
            }
            if (closing) {
                usable.remove(connection); // no request can follow on it, though it closes only later
            }
            next = closed ? null : waiting.poll();
            if (next == null) {
                active--;
            }
            done = draining && closeIdle();
        }
        if (next != null) {
            next.send(this::send);
        }
        if (done) {
            connections.shutdown(HostPool.DRAIN_SECONDS, TimeUnit.SECONDS); // nothing left to carry
        }
    }

    /**
     * The host left its cluster: from now on each connection closes once it carries no exchange and no request
     * waits, and the pool once nothing is under way, waiting or handed out; until then requests are taken as before.
     */
    @Override
    public void closeWhenDone() {
        boolean done;
        synchronized (this) {
            draining = true;
            done = closeIdle();
        }
        if (done) {
            connections.shutdown(HostPool.DRAIN_SECONDS, TimeUnit.SECONDS); // nothing left to carry
        }
    }

    /**
     * Under the lock, while draining: the connections that carry no exchange leave the pool, when no request waits
     * and none is on its way to a connection not yet known (else one of them may be it); the pool is closed when
     * nothing is under way. The connections are closed here; true when the pool is done, its client to be shut down
     * outside the lock.
     */
    private boolean closeIdle() {
        if (closed || !waiting.isEmpty() || carrying != active) {
            return false;
        }
        List<HttpConnection> idle = new java.util.ArrayList<>(0);
        for (HttpConnection c : usable) {
            if (!carried.containsKey(c)) {
                idle.add(c);
            }
        }
        usable.removeAll(idle);
        // closed under the lock, as closeIdle(HttpConnection) closes: on its event loop the close takes the connection
        // out of the Vert.x pool before a request this pool lets in next can be given it
        idle.forEach(HttpConnection::close);
        closed = active == 0 && handedOut == 0;
        return closed;
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
