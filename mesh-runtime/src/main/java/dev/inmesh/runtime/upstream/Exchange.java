package dev.inmesh.runtime.upstream;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.net.HostAndPort;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * One request of the mesh's own (a tracer's export, a filter's call to its service) whose whole answer is read, from
 * any thread. Vert.x hands a response's body only to a {@code body()} asked for before the response ends: asked from
 * a thread outside Vert.x, the step that asks can run after the end, and the answer never comes (Vert.x issues 5904
 * and 6038). So a request asked from outside the client's Vert.x is sent, and its answer read, on an event loop of
 * that Vert.x.
 */
public final class Exchange {
    private Exchange() {}

    /** An answer: its status, headers, trailers and whole body. */
    public record Answer(int status, MultiMap headers, MultiMap trailers, Buffer body) {}

    /**
     * Sends one request and reads its whole answer.
     *
     * @param authority the request's {@code :authority} ({@code host[:port]}), or null or empty for the client's own
     * @param sent told of the request once it exists (to reset it later), on the context it is made on: the
     *     caller's, when called on a context of {@code vertx} ({@link #onContext})
     * @return the answer; failed when the request or its answer fails, or the client or its Vert.x is closed (never
     *     thrown)
     */
    public static Future<Answer> send(Vertx vertx, HttpClient client, RequestOptions options, String authority,
                                      Buffer body, Consumer<HttpClientRequest> sent) {
        return send(vertx, client::request, options, authority, body, sent);
    }

    /**
     * As {@link #send(Vertx, HttpClient, RequestOptions, String, Buffer, Consumer)}, with the request asked of the
     * pool by {@code requester} (which may count its wait as pending and cancel it, as the router's requests do).
     */
    public static Future<Answer> send(Vertx vertx, Function<RequestOptions, Future<HttpClientRequest>> requester,
                                      RequestOptions options, String authority, Buffer body,
                                      Consumer<HttpClientRequest> sent) {
        HostAndPort hp = dev.inmesh.runtime.net.Authorities.parse(authority);
        Promise<Answer> answer = Promise.promise();
        try {
            onContext(vertx, () -> exchange(requester, options, hp, body, sent).onComplete(answer));
        } catch (RuntimeException e) {
            answer.tryFail(e); // the Vert.x is closed
        }
        return answer.future();
    }

    /**
     * Runs {@code action} on a context of {@code vertx}: at once when called on one, else on an event loop of it, so
     * that what it starts (a request, a timer) calls back on that one context.
     *
     * @throws RuntimeException when the Vert.x is closed (nothing runs then)
     */
    public static void onContext(Vertx vertx, Runnable action) {
        Context current = Vertx.currentContext();
        if (current != null && current.owner() == vertx) {
            action.run();
        } else {
            vertx.getOrCreateContext().runOnContext(v -> action.run());
        }
    }

    private static Future<Answer> exchange(Function<RequestOptions, Future<HttpClientRequest>> requester,
                                           RequestOptions options, HostAndPort authority, Buffer body,
                                           Consumer<HttpClientRequest> sent) {
        Future<HttpClientRequest> request;
        try {
            request = requester.apply(options);
        } catch (RuntimeException e) {
            return Future.failedFuture(e); // the client is closed
        }
        return request.compose(req -> {
            // its failure (a reset, before it was sent too) is the answer's; without a handler Vert.x logs it SEVERE
            req.exceptionHandler(e -> { });
            sent.accept(req);
            if (authority != null) {
                req.authority(authority);
            }
            return req.send(body).compose(resp -> resp.body()
                    .map(b -> new Answer(resp.statusCode(), resp.headers(), resp.trailers(), b)));
        });
    }
}
