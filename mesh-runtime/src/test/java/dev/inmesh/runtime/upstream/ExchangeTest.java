package dev.inmesh.runtime.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The mesh's own requests (tracers' exports, filters' calls) asked from a thread outside Vert.x: the answer is read
 * whole even when that thread is descheduled while the answer arrives, which made an OTLP export's answer never
 * come (Vert.x drops a body no one asked for before the response ended).
 */
class ExchangeTest {
    final Vertx vertx = Vertx.vertx();

    @AfterEach
    void close() throws Exception {
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    @Test
    void anAnswerAskedForFromOutsideVertxIsReadWholeThoughTheAskingThreadStallsAsItArrives() throws Exception {
        List<String> bodies = new CopyOnWriteArrayList<>();
        int port = vertx.createHttpServer().requestHandler(req -> req.body().onSuccess(b -> {
            bodies.add(b.toString());
            req.response().putHeader("x-seen", "yes").end("taken " + b);
        })).listen(0, "127.0.0.1").await().actualPort();
        HttpClient client = stalling(vertx.createHttpClient());
        for (int i = 0; i < 3; i++) {
            RequestOptions ro = new RequestOptions().setMethod(HttpMethod.POST).setHost("127.0.0.1").setPort(port)
                    .setURI("/v1/traces");
            Exchange.Answer answer = Exchange.send(vertx, client, ro, "collector:4318", Buffer.buffer("span " + i),
                    req -> { }).await(10, TimeUnit.SECONDS);
            assertEquals(200, answer.status());
            assertEquals("yes", answer.headers().get("x-seen"));
            assertEquals("taken span " + i, answer.body().toString());
        }
        assertEquals(List.of("span 0", "span 1", "span 2"), bodies);
    }

    @Test
    void aRequestOnAClosedClientOrVertxFailsFromAnyThreadRatherThanNeverAnswering() throws Exception {
        RequestOptions ro = new RequestOptions().setMethod(HttpMethod.POST).setHost("127.0.0.1").setPort(1);
        HttpClient closed = vertx.createHttpClient();
        closed.close().await(10, TimeUnit.SECONDS);
        // asked from outside Vert.x, the request is made on an event loop: its failure must reach the caller
        Future<Exchange.Answer> outside = Exchange.send(vertx, closed, ro, null, Buffer.buffer("x"), req -> { });
        assertTrue(assertThrows(Exception.class, () -> outside.await(10, TimeUnit.SECONDS)) instanceof
                IllegalStateException, "fails as the client does");
        Future<Exchange.Answer> onEventLoop = Future.<Future<Exchange.Answer>>future(p -> vertx.runOnContext(
                v -> p.complete(Exchange.send(vertx, closed, ro, null, Buffer.buffer("x"), req -> { }))))
                .await(10, TimeUnit.SECONDS);
        assertTrue(onEventLoop.failed(), "fails at once on an event loop, not thrown");
        Vertx other = Vertx.vertx();
        HttpClient client = other.createHttpClient();
        other.close().await(10, TimeUnit.SECONDS);
        assertTrue(Exchange.send(other, client, ro, null, Buffer.buffer("x"), req -> { }).failed(),
                "a closed Vert.x fails the request, not thrown");
    }

    /**
     * A client that behaves as a loaded machine can: asked from a thread outside Vert.x, its request is ready at
     * once (a pooled connection), and the asking thread runs again only once the whole answer has arrived.
     */
    static HttpClient stalling(HttpClient client) {
        return (HttpClient) Proxy.newProxyInstance(HttpClient.class.getClassLoader(), new Class<?>[] {HttpClient.class},
                (proxy, method, args) -> {
                    Object result = invoke(client, method, args);
                    if (!method.getName().equals("request") || !(result instanceof Future<?> f)) {
                        return result;
                    }
                    @SuppressWarnings("unchecked")
                    Future<HttpClientRequest> request = (Future<HttpClientRequest>) f;
                    if (Context.isOnVertxThread()) {
                        return request.map(ExchangeTest::stalling);
                    }
                    return Future.succeededFuture(stalling(request.await(10, TimeUnit.SECONDS)));
                });
    }

    private static HttpClientRequest stalling(HttpClientRequest request) {
        return (HttpClientRequest) Proxy.newProxyInstance(HttpClientRequest.class.getClassLoader(),
                new Class<?>[] {HttpClientRequest.class}, (proxy, method, args) -> {
                    Object result = invoke(request, method, args);
                    if (method.getName().equals("send") && result instanceof Future<?> f
                            && !Context.isOnVertxThread()) {
                        f.await(10, TimeUnit.SECONDS);
                        Thread.sleep(200); // the rest of the answer arrives meanwhile
                    }
                    return result == request ? proxy : result;
                });
    }

    private static Object invoke(Object target, java.lang.reflect.Method method, Object[] args) throws Throwable {
        try {
            return method.invoke(target, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }
}
