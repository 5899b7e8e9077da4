package dev.inmesh.runtime.upstream;

import io.vertx.core.AsyncResult;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Promise;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.internal.ContextInternal;
import io.vertx.core.internal.VertxInternal;
import dev.inmesh.runtime.stats.UpstreamStats;
import io.vertx.core.http.ConnectionPoolTooBusyException;
import java.util.Collection;
import java.util.Iterator;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * A request waiting in a host's pool for a connection (Envoy's pending request), answered on its caller's context.
 * Its caller may give up on it ({@link Queue#cancel}): as Envoy's pool cancels a pending stream, it then leaves the
 * queue at once, its future failing with {@link PendingCancelledException}, and the connection that frees next goes to
 * the next request.
 *
 * <p>A request that found no connection ready for it is {@link #counted}: it counts in its cluster's
 * {@code max_pending_requests} and {@code upstream_rq_pending_*} from the moment its pool took it until it has its
 * connection, failed or was given up, whether it waits in the pool's queue or for the connection being opened for
 * it. (Http2Pool makes one for every request, ready or not: those that found a connection ready count in nothing.)
 */
final class PendingRequest implements Handler<AsyncResult<HttpClientRequest>> {
    private final RequestOptions options;
    private final ContextInternal context;
    private final Promise<HttpClientRequest> promise;
    /** The pool whose pending request this is, told once its wait is over; null when it does not count as one. */
    private final Queue pool;
    /** The breakers ({@code max_pending_requests}) and statistics the wait counts in; either may be null. */
    private final CircuitBreakerState breakers;
    private final UpstreamStats stats;
    /** When the wait began ({@link System#nanoTime}), for a new connection's {@code upstream_cx_connect_ms}. */
    private final long since;
    /** Whether the wait was counted off: it ended, or was given up. */
    private final AtomicBoolean over;

    private PendingRequest(RequestOptions options, ContextInternal context, Queue pool, CircuitBreakerState breakers,
                           UpstreamStats stats) {
        this.options = options;
        this.context = context;
        this.promise = context.promise();
        this.pool = pool;
        this.breakers = breakers;
        this.stats = stats;
        this.since = pool == null ? 0 : System.nanoTime();
        this.over = pool == null ? null : new AtomicBoolean();
    }

    /** A pool whose waiting requests can be taken out of its queue. */
    interface Queue {
        /**
         * As {@code request(options)}, for a caller whose waits count in {@code breakers} and {@code stats} (either
         * may be null): a request that finds no connection ready for it is a pending request, refused with
         * {@link io.vertx.core.http.ConnectionPoolTooBusyException} when {@code breakers}' (else the pool's own)
         * {@code max_pending_requests} are already waiting; one that finds a connection ready counts in neither,
         * however long the hand-off to that connection's event loop takes.
         */
        Future<HttpClientRequest> request(RequestOptions options, CircuitBreakerState breakers, UpstreamStats stats);

        /**
         * Takes the request whose future is {@code waiting} out of the queue and fails it with
         * {@link PendingCancelledException}; false when it is not there (it has its connection, or failed). A
         * pending request whose connection is being opened for it fails so too, and no longer counts as pending; the
         * connection, once up, goes back to the pool.
         */
        boolean cancel(Future<HttpClientRequest> waiting);

        /**
         * Whether no request is under way or waiting, nor {@link #handedOut} and not yet asked: Envoy's pool without
         * active requests, which may be freed.
         */
        boolean idle();

        /**
         * Counts a caller that was handed this pool and has not yet asked it for its request: the pool is not
         * {@link #idle} until that request is asked (the next request asked takes the count off).
         */
        void handedOut();

        /** The wait of {@code pending}, one of this pool's {@link #counted} requests, is over. */
        void pendingOver(PendingRequest pending);

        /**
         * The pool's host left its cluster, as Envoy drains a pool for deletion ({@code DrainAndDelete}): the
         * requests under way and waiting are carried as before, and so are those its callers still ask; each
         * connection closes once it carries no request and none waits, at once when idle now, and the pool closes
         * once nothing is under way or waiting. No connection is cut.
         */
        void closeWhenDone();
    }

    /** A request that does not count as pending (a connection was ready for it), on the current context. */
    static PendingRequest of(VertxInternal vertx, RequestOptions options) {
        return new PendingRequest(options, vertx.getOrCreateContext(), null, null, null);
    }

    /**
     * A pending request of {@code pool}, asked for on the current context, whose wait counts in {@code stats} (and
     * was already counted in {@code breakers}, unless null, by the pool) until it is over.
     */
    static PendingRequest counted(VertxInternal vertx, RequestOptions options, Queue pool,
                                  CircuitBreakerState breakers, UpstreamStats stats) {
        PendingRequest w = new PendingRequest(options, vertx.getOrCreateContext(), pool, breakers, stats);
        waitStarted(breakers, stats);
        w.promise.future().onComplete(w::ended);
        return w;
    }

    /**
     * A request's wait for a connection, begun, counted in {@code stats} (unless null): {@code upstream_rq_pending_*},
     * and {@code upstream_cx_overflow} when {@code breakers}' connections are at their limit, as Envoy's pool counts
     * the connection it would open for the request and its breaker refuses. (The breakers' own pending count is
     * taken by whoever admits the wait.)
     */
    static void waitStarted(CircuitBreakerState breakers, UpstreamStats stats) {
        if (stats != null) {
            stats.pendingStarted();
            if (breakers != null && breakers.openConnections() >= breakers.maxConnections()) {
                stats.connectionOverflow();
            }
        }
    }

    /**
     * A request's wait for a connection, begun at {@code since} ({@link System#nanoTime}), ended with {@code ar}: its
     * connection, a failure, or {@link PendingCancelledException} (its caller gave up), counted off
     * {@code breakers}' pending requests and in {@code stats} (either may be null): {@code upstream_rq_pending_*},
     * {@code upstream_rq_cancelled}, and, for a new connection, {@code upstream_cx_connect_ms} from the wait's start.
     */
    static void waitEnded(CircuitBreakerState breakers, UpstreamStats stats, AsyncResult<HttpClientRequest> ar,
                          long since) {
        if (breakers != null) {
            breakers.pendingEnded();
        }
        if (stats == null) {
            return;
        }
        if (ar.failed() && ar.cause() instanceof PendingCancelledException) {
            stats.pendingEnded(false);
            stats.pendingCancelled();
            return;
        }
        stats.pendingEnded(ar.failed() && !(ar.cause() instanceof ConnectionPoolTooBusyException)
                && !(ar.cause() instanceof IllegalArgumentException));
        // a new connection's upstream_cx_connect_ms: the pool began it as this request began to wait
        long connected = ar.succeeded() ? HostPool.takeConnectedAt(ar.result().connection()) : -1;
        if (connected >= since) {
            stats.connectTime((connected - since) / 1_000_000);
        }
    }

    RequestOptions options() {
        return options;
    }

    ContextInternal context() {
        return context;
    }

    Future<HttpClientRequest> future() {
        return promise.future();
    }

    /** Whether this request counts as pending. */
    boolean isCounted() {
        return pool != null;
    }

    /** Counts the wait off, once: the request has its connection, failed, or was given up. */
    private void ended(AsyncResult<HttpClientRequest> ar) {
        if (!over.compareAndSet(false, true)) {
            return;
        }
        waitEnded(breakers, stats, ar, since);
        pool.pendingOver(this);
    }

    /** Sends the request with {@code send} on its caller's context (at once when that is the current one). */
    void send(Function<RequestOptions, Future<HttpClientRequest>> send) {
        if (context.isRunningOnContext()) {
            send.apply(options).onComplete(this);
        } else {
            context.runOnContext(v -> send.apply(options).onComplete(this));
        }
    }

    /**
     * The request's connection (or its failure) came: its caller's answer, unless the caller gave up on it
     * meanwhile, when the request goes back unsent.
     */
    @Override
    public void handle(AsyncResult<HttpClientRequest> ar) {
        if (ar.succeeded()) {
            if (!promise.tryComplete(ar.result())) {
                // with a handler: without one Vert.x logs the reset SEVERE ("Stream reset: 0")
                ar.result().exceptionHandler(t -> { }).reset();
            }
        } else {
            promise.tryFail(ar.cause());
        }
    }

    /** Fails the request on its caller's context. */
    void fail(Throwable failure) {
        context.runOnContext(v -> promise.tryFail(failure));
    }

    /**
     * Takes the request whose future is {@code waiting} out of {@code queue} and of {@code counted} (the pool's
     * pending requests, also those whose connection is being opened for them; both guarded by {@code lock}) and
     * fails it with {@link PendingCancelledException}, at once: its caller gave up on it. One whose connection is
     * being opened no longer waits either; the connection, once up, goes back to the pool unused. False when it is
     * in neither.
     */
    static boolean cancel(Object lock, Iterable<PendingRequest> queue, Collection<PendingRequest> counted,
                          Future<HttpClientRequest> waiting) {
        PendingRequest found;
        synchronized (lock) {
            found = removeOf(queue, waiting);
            // out of the pool's pending requests at once, not only once its failure is told on its context
            if (found != null) {
                counted.remove(found);
            } else {
                found = removeOf(counted, waiting);
            }
        }
        return found != null && found.promise.tryFail(new PendingCancelledException());
    }

    /** Takes the request whose future is {@code waiting} out of {@code requests}; null when it is not there. */
    private static PendingRequest removeOf(Iterable<PendingRequest> requests, Future<HttpClientRequest> waiting) {
        for (Iterator<PendingRequest> it = requests.iterator(); it.hasNext(); ) {
            PendingRequest w = it.next();
            if (w.promise.future() == waiting) {
                it.remove();
                return w;
            }
        }
        return null;
    }

    /**
     * Calls {@code over} once the exchange of the request {@code sent} is over: its response ended, or its request or
     * response failed, with the request's own failure (null otherwise).
     */
    static void whenOver(Future<HttpClientRequest> sent, Consumer<Throwable> over) {
        sent.onComplete(new Over((failure, connection, closing) -> over.accept(failure)));
    }

    /**
     * As {@link #whenOver(Future, Consumer)}, also telling {@code over} the exchange's connection once it has one,
     * and at its end whether the exchange leaves it closing (the request or the response said
     * {@code Connection: close}, or the response is HTTP/1.0 without keep-alive): no request can follow on it, though
     * it closes only later.
     */
    static void whenOver(Future<HttpClientRequest> sent, Ended over) {
        sent.onComplete(new Over(over));
    }

    /**
     * The start and end of an exchange: its connection once it has one; at its end the request's own failure (null
     * otherwise), its connection (null when it never had one) and whether the exchange leaves it closing.
     */
    interface Ended {
        default void started(io.vertx.core.http.HttpConnection connection) {
        }

        void ended(Throwable failure, io.vertx.core.http.HttpConnection connection, boolean closing);
    }

    /**
     * The exchange's watcher for {@link #whenOver}: one object per exchange, the handler of the request, of its
     * response and of the response's end in turn, rather than a lambda and a flag for each.
     */
    private static final class Over implements Handler<AsyncResult<HttpClientRequest>> {
        private final Ended over;
        private boolean done;
        private HttpClientRequest request;
        /** The lifetimes of the exchange's connection, told when the exchange starts and ends; or null. */
        private ConnectionTimers timers;
        /** Whether the exchange leaves its connection closing. */
        private boolean closing;
        private final Handler<AsyncResult<HttpClientResponse>> responded = this::responded;
        private final Handler<AsyncResult<Void>> ended = e -> once();

        Over(Ended over) {
            this.over = over;
        }

        @Override
        public void handle(AsyncResult<HttpClientRequest> ar) {
            if (ar.failed()) {
                over.ended(ar.cause(), null, false);
                return;
            }
            request = ar.result();
            over.started(request.connection());
            timers = ConnectionTimers.of(request.connection());
            if (timers != null) {
                timers.requestStarted();
            }
            request.response().onComplete(responded);
        }

        private void responded(AsyncResult<HttpClientResponse> r) {
            if (r.failed()) {
                once();
                return;
            }
            HttpClientResponse response = r.result();
            closing = closes(request.headers(), response);
            Future<Void> end;
            try {
                end = response.end();
            } catch (IllegalStateException ended) {
                once(); // the response has already ended
                return;
            }
            end.onComplete(ended);
        }

        private void once() {
            if (!done) {
                done = true;
                if (timers != null) {
                    timers.requestEnded();
                }
                over.ended(null, request.connection(), closing);
            }
        }

        /** Whether an HTTP/1 exchange leaves its connection closing (a header check only on HTTP/1.x). */
        private static boolean closes(io.vertx.core.MultiMap requestHeaders, HttpClientResponse response) {
            if (response.version() == io.vertx.core.http.HttpVersion.HTTP_2) {
                return false;
            }
            String c = response.headers().get(io.vertx.core.http.HttpHeaders.CONNECTION);
            if (response.version() == io.vertx.core.http.HttpVersion.HTTP_1_0) {
                return c == null || !c.toLowerCase(java.util.Locale.ROOT).contains("keep-alive");
            }
            return c != null && c.toLowerCase(java.util.Locale.ROOT).contains("close")
                    || requestHeaders.contains(io.vertx.core.http.HttpHeaders.CONNECTION,
                            io.vertx.core.http.HttpHeaders.CLOSE, true);
        }
    }
}
