package dev.inmesh.runtime.upstream;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.RequestOptions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A test's own request and the read of its answer's body, started from the test's thread: the body comes though that
 * thread is descheduled while the answer arrives (a loaded machine), which made such a test time out.
 */
class TestEventLoopTest {
    final Vertx vertx = Vertx.vertx();

    @AfterEach
    void close() throws Exception {
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    @Test
    void aBodyAskedForFromTheTestsThreadComesThoughTheThreadStallsAsTheAnswerArrives() throws Exception {
        int port = vertx.createHttpServer().requestHandler(req -> req.response().end("answer " + req.path()))
                .listen(0, "127.0.0.1").await().actualPort();
        HttpClient client = ExchangeTest.stalling(vertx.createHttpClient());
        List<Boolean> onVertx = new CopyOnWriteArrayList<>();
        for (int i = 0; i < 3; i++) {
            RequestOptions ro = new RequestOptions().setHost("127.0.0.1").setPort(port).setURI("/" + i);
            String body = onEventLoop(vertx, () -> {
                onVertx.add(Context.isOnVertxThread());
                return client.request(ro).compose(req -> req.send()).compose(resp -> resp.body());
            }).await(10, TimeUnit.SECONDS).toString();
            assertEquals("answer /" + i, body);
        }
        assertEquals(List.of(true, true, true), onVertx, "each call ran on an event loop");
    }

    @Test
    void aCallAskedForOnAnEventLoopRunsThereAtOnce() throws Exception {
        Promise<List<String>> done = Promise.promise();
        vertx.runOnContext(v -> {
            List<String> order = new ArrayList<>();
            onEventLoop(vertx, () -> {
                order.add("call on " + (Context.isOnVertxThread() ? "an event loop" : "another thread"));
                return Future.succeededFuture();
            });
            order.add("returned");
            done.complete(order);
        });
        assertEquals(List.of("call on an event loop", "returned"), done.future().await(10, TimeUnit.SECONDS));
    }

    @Test
    void aCallAskedForOnAnotherVertxsContextRunsOnAContextOfItsOwnVertx() throws Exception {
        Vertx other = Vertx.vertx();
        try {
            Promise<Boolean> ownVertx = Promise.promise();
            other.runOnContext(v -> onEventLoop(vertx, () -> {
                Context c = Vertx.currentContext();
                ownVertx.complete(c != null && c.owner() == vertx);
                return Future.succeededFuture();
            }));
            assertEquals(true, ownVertx.future().await(10, TimeUnit.SECONDS), "on the client's Vert.x");
        } finally {
            other.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void aCallThatThrowsFailsTheFuture() {
        IllegalStateException thrown = new IllegalStateException("no client");
        Future<String> f = onEventLoop(vertx, () -> {
            throw thrown;
        });
        assertSame(thrown, assertThrows(IllegalStateException.class, () -> f.await(10, TimeUnit.SECONDS)));
    }
}
