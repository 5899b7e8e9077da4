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
import java.util.Iterator;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * A request waiting in a host's pool for a connection (Envoy's pending request), answered on its caller's context.
 * Its caller may give up on it ({@link Queue#cancel}): as Envoy's pool cancels a pending stream, it then leaves the
 * queue at once, its future failing with {@link PendingCancelledException}, and the connection that frees next goes to
 * the next request.
 */
record PendingRequest(RequestOptions options, ContextInternal context, Promise<HttpClientRequest> promise) {

    /** A pool whose waiting requests can be taken out of its queue. */
    interface Queue {
        /**
         * Takes the request whose future is {@code waiting} out of the queue and fails it with
         * {@link PendingCancelledException}; false when it is not there (it has its connection, or failed).
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
    }

    /** A request that is to wait, asked for on the current context (or a new one). */
    static PendingRequest of(VertxInternal vertx, RequestOptions options) {
        ContextInternal context = vertx.getOrCreateContext();
        return new PendingRequest(options, context, context.promise());
    }

    Future<HttpClientRequest> future() {
        return promise.future();
    }

    /** Sends the request with {@code send} on its caller's context (at once when that is the current one). */
    void send(Function<RequestOptions, Future<HttpClientRequest>> send) {
        if (context.isRunningOnContext()) {
            send.apply(options).onComplete(promise);
        } else {
            context.runOnContext(v -> send.apply(options).onComplete(promise));
        }
    }

    /** Fails the request on its caller's context. */
    void fail(Throwable failure) {
        context.runOnContext(v -> promise.tryFail(failure));
    }

    /**
     * Takes the request whose future is {@code waiting} out of {@code queue} (guarded by {@code lock}) and fails it
     * with {@link PendingCancelledException}, at once: its caller gave up on it. False when it is not there.
     */
    static boolean cancel(Object lock, Iterable<PendingRequest> queue, Future<HttpClientRequest> waiting) {
        PendingRequest found = null;
        synchronized (lock) {
            for (Iterator<PendingRequest> it = queue.iterator(); it.hasNext(); ) {
                PendingRequest w = it.next();
                if (w.promise.future() == waiting) {
                    it.remove();
                    found = w;
                    break;
                }
            }
        }
        return found != null && found.promise.tryFail(new PendingCancelledException());
    }

    /**
     * Calls {@code over} once the exchange of the request {@code sent} is over: its response ended, or its request or
     * response failed, with the request's own failure (null otherwise).
     */
    static void whenOver(Future<HttpClientRequest> sent, Consumer<Throwable> over) {
        sent.onComplete(new Over(over));
    }

    /**
     * The exchange's watcher for {@link #whenOver}: one object per exchange, the handler of the request, of its
     * response and of the response's end in turn, rather than a lambda and a flag for each.
     */
    private static final class Over implements Handler<AsyncResult<HttpClientRequest>> {
        private final Consumer<Throwable> over;
        private boolean done;
        private final Handler<AsyncResult<HttpClientResponse>> responded = this::responded;
        private final Handler<AsyncResult<Void>> ended = e -> once();

        Over(Consumer<Throwable> over) {
            this.over = over;
        }

        @Override
        public void handle(AsyncResult<HttpClientRequest> ar) {
            if (ar.failed()) {
                over.accept(ar.cause());
                return;
            }
            ar.result().response().onComplete(responded);
        }

        private void responded(AsyncResult<HttpClientResponse> r) {
            if (r.failed()) {
                once();
                return;
            }
            HttpClientResponse response = r.result();
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
                over.accept(null);
            }
        }
    }
}
