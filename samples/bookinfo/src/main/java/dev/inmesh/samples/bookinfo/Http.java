package dev.inmesh.samples.bookinfo;

import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonObject;
import java.util.List;
import java.util.concurrent.TimeoutException;

/** What the services share: JSON answers, the headers they propagate, product ids, application-side timeouts. */
final class Http {
    private Http() {}

    /**
     * The headers a service copies from the request it serves to the requests it makes, as Istio's bookinfo does:
     * the request id and trace context (so that one page view is one trace), and {@code end-user}, which routes.
     */
    static final List<String> PROPAGATED = List.of("x-request-id", "traceparent", "tracestate", "x-b3-traceid",
            "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags", "b3", "x-ot-span-context",
            "end-user", "user-agent", "cookie", "authorization");

    static MultiMap propagated(HttpServerRequest req) {
        MultiMap out = MultiMap.caseInsensitiveMultiMap();
        for (String name : PROPAGATED) {
            String value = req.getHeader(name);
            if (value != null) {
                out.set(name, value);
            }
        }
        return out;
    }

    static void json(HttpServerRequest req, int status, Object body) {
        String text = body instanceof JsonObject ? ((JsonObject) body).encode() : String.valueOf(body);
        req.response().setStatusCode(status).putHeader("content-type", "application/json").end(text);
    }

    static void error(HttpServerRequest req, int status, String message) {
        json(req, status, new JsonObject().put("error", message));
    }

    /** The product id after {@code prefix} in the path, or -1 when it is not a number. */
    static int productId(String path, String prefix) {
        String rest = path.substring(prefix.length());
        int slash = rest.indexOf('/');
        String id = slash < 0 ? rest : rest.substring(0, slash);
        try {
            int n = Integer.parseInt(id);
            return n < 0 ? -1 : n;
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /**
     * {@code f}, failed with a {@link TimeoutException} after {@code millis}: the application's own client timeout
     * (Istio's productpage gives its calls 3 s), apart from the mesh's route timeouts.
     */
    static <T> Future<T> within(Vertx vertx, Future<T> f, long millis) {
        Promise<T> p = Promise.promise();
        long timer = vertx.setTimer(millis, id -> p.tryFail(new TimeoutException("no answer in " + millis + " ms")));
        f.onComplete(r -> {
            vertx.cancelTimer(timer);
            if (r.succeeded()) {
                p.tryComplete(r.result());
            } else {
                p.tryFail(r.cause());
            }
        });
        return p.future();
    }
}
