package dev.inmesh.samples.bookinfo;

import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.Objects;

/**
 * The ratings service: the stars each reviewer gave ({@code GET /ratings/0}), as Istio's ratings-v1. It can be made
 * slow ({@link #setDelay}, or the system property {@code bookinfo.ratings.delay-ms} at start) to show the route
 * timeout the mesh puts on ratings.
 */
public final class Ratings implements Handler<HttpServerRequest> {
    private final Vertx vertx;
    private volatile Duration delay;

    public Ratings(Vertx vertx) {
        this.vertx = vertx;
        this.delay = Duration.ofMillis(Long.getLong("bookinfo.ratings.delay-ms", 0L));
    }

    /** How long every answer waits before it is sent (zero for none). */
    public void setDelay(Duration delay) {
        this.delay = Objects.requireNonNull(delay, "delay");
    }

    public Duration delay() {
        return delay;
    }

    @Override
    public void handle(HttpServerRequest req) {
        String path = req.path();
        if (path.equals("/health")) {
            Http.json(req, 200, new JsonObject().put("status", "Ratings is healthy"));
            return;
        }
        if (!path.startsWith("/ratings/")) {
            Http.error(req, 404, "not found: " + path);
            return;
        }
        int id = Http.productId(path, "/ratings/");
        if (id < 0) {
            Http.error(req, 400, "please provide numeric product ID");
            return;
        }
        JsonObject body = new JsonObject().put("id", id)
                .put("ratings", new JsonObject().put("Reviewer1", 5).put("Reviewer2", 4));
        long millis = delay.toMillis();
        if (millis <= 0) {
            Http.json(req, 200, body);
        } else {
            vertx.setTimer(millis, t -> {
                if (!req.response().closed()) {
                    Http.json(req, 200, body);
                }
            });
        }
    }
}
