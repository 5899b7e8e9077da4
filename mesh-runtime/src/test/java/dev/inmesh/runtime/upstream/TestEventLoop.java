package dev.inmesh.runtime.upstream;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.util.function.Supplier;

/**
 * A test's own HTTP exchanges, run on an event loop. Vert.x hands a response's body only to a {@code body()} asked for
 * before the response ends (Vert.x issues 5904 and 6038): a chain such as
 * {@code client.request(o).compose(req -> req.send()).compose(resp -> resp.body())} started on a test's thread can
 * ask for the body from that thread after the answer has arrived whole, when the thread was descheduled meanwhile,
 * and then it never completes. Started on an event loop, each step runs there before the next part of the answer.
 */
public final class TestEventLoop {
    private TestEventLoop() {}

    /**
     * Runs {@code call} on an event loop of {@code vertx} (the one whose client it uses) when asked from outside
     * it (another thread, or another Vert.x's context), at once when asked on one of its contexts.
     *
     * @return {@code call}'s future; failed when {@code call} throws
     */
    public static <T> Future<T> onEventLoop(Vertx vertx, Supplier<Future<T>> call) {
        io.vertx.core.Context current = Vertx.currentContext();
        if (current != null && current.owner() == vertx) {
            return call.get();
        }
        Promise<T> result = Promise.promise();
        vertx.getOrCreateContext().runOnContext(v -> {
            try {
                call.get().onComplete(result);
            } catch (RuntimeException | Error e) {
                result.fail(e);
            }
        });
        return result.future();
    }
}
