package dev.inmesh.samples.bookinfo;

import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The reviews service ({@code GET /reviews/0}), as Istio's reviews: v1 shows no ratings and does not call ratings;
 * v2 calls ratings and shows black stars; v3 calls ratings and shows red stars. When ratings cannot be had, each
 * review says so instead of its stars. An instance can be told to fail ({@link #failWith}) to show retries.
 */
public final class Reviews implements Handler<HttpServerRequest> {
    static final String RATINGS_URL = "http://ratings:9080/ratings/";

    private final Vertx vertx;
    private final WebClient mesh;
    private final String version;
    private final String podName;
    private final AtomicLong served = new AtomicLong();
    private volatile int failStatus;

    /**
     * @param mesh the pod's mesh client, through which ratings is called
     * @param version v1 (no stars), v2 (black stars) or v3 (red stars)
     * @param podName the pod's name, sent back as {@code podname}
     */
    public Reviews(Vertx vertx, WebClient mesh, String version, String podName) {
        if (!version.equals("v1") && !version.equals("v2") && !version.equals("v3")) {
            throw new IllegalArgumentException("version: " + version + " (expected: v1, v2 or v3)");
        }
        this.vertx = vertx;
        this.mesh = mesh;
        this.version = version;
        this.podName = podName;
    }

    /** Answers every review request with {@code status} (0: serve normally again). */
    public Reviews failWith(int status) {
        this.failStatus = status;
        return this;
    }

    /** How many review requests this instance has answered, failed ones included. */
    public long served() {
        return served.get();
    }

    /** The stars' colour, or null for v1. */
    String starColor() {
        return version.equals("v1") ? null : version.equals("v2") ? "black" : "red";
    }

    @Override
    public void handle(HttpServerRequest req) {
        String path = req.path();
        if (path.equals("/health")) {
            Http.json(req, 200, new JsonObject().put("status", "Reviews is healthy"));
            return;
        }
        if (!path.startsWith("/reviews/")) {
            Http.error(req, 404, "not found: " + path);
            return;
        }
        served.incrementAndGet();
        int fail = failStatus;
        if (fail != 0) {
            Http.error(req, fail, podName + " is failing on purpose");
            return;
        }
        int id = Http.productId(path, "/reviews/");
        if (id < 0) {
            Http.error(req, 400, "please provide numeric product id");
            return;
        }
        String color = starColor();
        Future<JsonObject> ratings = color == null ? Future.succeededFuture(null) : ratings(req, id, color);
        ratings.onComplete(r -> Http.json(req, 200, body(id, color, r.succeeded() ? r.result() : null)));
    }

    /** Calls ratings through the mesh, with the reviews app's own timeout (10 s for black stars, 2.5 s for red). */
    private Future<JsonObject> ratings(HttpServerRequest req, int id, String color) {
        Future<HttpResponse<Buffer>> call = mesh.getAbs(RATINGS_URL + id).putHeaders(Http.propagated(req)).send();
        return Http.within(vertx, call, color.equals("black") ? 10_000 : 2_500).map(r -> {
            if (r.statusCode() != 200) {
                throw new IllegalStateException("ratings answered " + r.statusCode());
            }
            return r.bodyAsJsonObject().getJsonObject("ratings");
        });
    }

    private JsonObject body(int id, String color, JsonObject ratings) {
        JsonArray reviews = new JsonArray()
                .add(review("Reviewer1", "An extremely entertaining play by Shakespeare. The slapstick humour is "
                        + "refreshing!", color, ratings))
                .add(review("Reviewer2", "Absolutely fun and entertaining. The play lacks thematic depth when "
                        + "compared to other plays by Shakespeare.", color, ratings));
        return new JsonObject().put("id", String.valueOf(id)).put("podname", podName).put("clustername", "null")
                .put("reviews", reviews);
    }

    private static JsonObject review(String reviewer, String text, String color, JsonObject ratings) {
        JsonObject r = new JsonObject().put("reviewer", reviewer).put("text", text);
        if (color != null) {
            Integer stars = ratings == null ? null : ratings.getInteger(reviewer);
            r.put("rating", stars == null ? new JsonObject().put("error", "Ratings service is currently unavailable")
                    : new JsonObject().put("stars", stars).put("color", color));
        }
        return r;
    }
}
