package dev.inmesh.runtime.upstream;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.internal.ContextInternal;
import io.vertx.core.internal.VertxInternal;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * A request waiting in a host's pool for a connection (Envoy's pending request), answered on its caller's context.
 */
record PendingRequest(RequestOptions options, ContextInternal context, Promise<HttpClientRequest> promise) {

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
     * Calls {@code over} once the exchange of the request {@code sent} is over: its response ended, or its request or
     * response failed, with the request's own failure (null otherwise).
     */
    static void whenOver(Future<HttpClientRequest> sent, Consumer<Throwable> over) {
        sent.onComplete(ar -> {
            if (ar.failed()) {
                over.accept(ar.cause());
                return;
            }
            boolean[] done = new boolean[1];
            Runnable once = () -> {
                if (!done[0]) {
                    done[0] = true;
                    over.accept(null);
                }
            };
            ar.result().response().onComplete(r -> {
                if (r.failed()) {
                    once.run();
                    return;
                }
                HttpClientResponse response = r.result();
                Future<Void> end;
                try {
                    end = response.end();
                } catch (IllegalStateException ended) {
                    once.run(); // the response has already ended
                    return;
                }
                end.onComplete(e -> once.run());
            });
        });
    }
}
