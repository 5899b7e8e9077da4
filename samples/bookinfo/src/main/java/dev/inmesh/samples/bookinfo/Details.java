package dev.inmesh.samples.bookinfo;

import io.vertx.core.Handler;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonObject;

/** The details service: the book's details by product id ({@code GET /details/0}), as Istio's details-v1. */
public final class Details implements Handler<HttpServerRequest> {

    @Override
    public void handle(HttpServerRequest req) {
        String path = req.path();
        if (path.equals("/health")) {
            Http.json(req, 200, new JsonObject().put("status", "Details is healthy"));
        } else if (path.startsWith("/details/")) {
            int id = Http.productId(path, "/details/");
            if (id < 0) {
                Http.error(req, 400, "please provide numeric product id");
            } else {
                Http.json(req, 200, details(id));
            }
        } else {
            Http.error(req, 404, "not found: " + path);
        }
    }

    static JsonObject details(int id) {
        return new JsonObject()
                .put("id", id)
                .put("author", "William Shakespeare")
                .put("year", 1595)
                .put("type", "paperback")
                .put("pages", 200)
                .put("publisher", "PublisherA")
                .put("language", "English")
                .put("ISBN-10", "1234567890")
                .put("ISBN-13", "123-1234567890");
    }
}
