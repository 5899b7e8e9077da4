package dev.inmesh.runtime.mesh;

import io.vertx.core.Handler;
import io.vertx.core.http.HttpServerRequest;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An upstream (or in-process service) for the tests of {@code proxy_100_continue}: to a request that expects
 * 100-continue, {@code /refuse} answers 417 ("no"), {@code /twice} sends two 100s, {@code /drop} a 100 and then a
 * reset, {@code /silent} no 100 (as a server that ignores the expectation: it waits for the body); anything else gets
 * a 100 when it asks, then its protocol, the expectation it saw and its body (the expectation in {@code x-expect} as
 * well).
 */
public final class ContinueUpstream implements Handler<HttpServerRequest> {
    /** The paths of the requests it got, in order. */
    public final List<String> requests = new CopyOnWriteArrayList<>();
    /** How many bodies it read. */
    public final AtomicInteger bodiesRead = new AtomicInteger();

    @Override
    public void handle(HttpServerRequest req) {
        String expect = req.getHeader("expect");
        requests.add(req.path());
        if (expect != null && req.path().equals("/refuse")) {
            req.response().setStatusCode(417).end("no");
            return;
        }
        if (expect != null && !req.path().equals("/silent")) {
            req.response().writeContinue();
            if (req.path().equals("/twice")) {
                req.response().writeContinue();
            }
            if (req.path().equals("/drop")) {
                req.response().reset();
                return;
            }
        }
        req.body().onSuccess(b -> {
            bodiesRead.incrementAndGet();
            req.response().putHeader("x-expect", String.valueOf(expect))
                    .end(req.version().alpnName() + " " + expect + " " + b);
        });
    }
}
