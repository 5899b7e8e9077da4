package dev.inmesh.samples.bookinfo;

import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.http.Cookie;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.client.WebClient;

/**
 * The product page, as Istio's productpage: an HTML page ({@code /productpage}) with the book, its details (from
 * details) and its reviews (from reviews), and a JSON API ({@code /api/v1/products}, {@code /api/v1/products/0},
 * {@code /api/v1/products/0/reviews}, {@code /api/v1/products/0/ratings}). Signing in ({@code POST /login} with a
 * {@code username}) sets a {@code user} cookie, sent on as the {@code end-user} header that the mesh routes by; an
 * {@code end-user} header on the request does the same. Every call goes through the pod's mesh client to a service
 * name, with the application's own 3 s timeout; a failed call shows Istio's "currently unavailable" messages and
 * answers with the status the call ended with (500 when there was none).
 */
public final class ProductPage implements Handler<HttpServerRequest> {
    static final String DETAILS_URL = "http://details:9080/details/";
    static final String REVIEWS_URL = "http://reviews:9080/reviews/";
    static final String RATINGS_URL = "http://ratings:9080/ratings/";
    static final long CALL_TIMEOUT_MILLIS = 3_000;

    static final String TITLE = "The Comedy of Errors";
    static final String DESCRIPTION_HTML = "<a href=\"https://en.wikipedia.org/wiki/The_Comedy_of_Errors\">Wikipedia "
            + "Summary</a>: The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his "
            + "shortest and one of his most farcical comedies, with a major part of the humour coming from slapstick "
            + "and mistaken identity, in addition to puns and word play.";

    /** A service's answer as the page uses it: the status and the JSON body (or an {@code error}). */
    record Answer(int status, JsonObject body) {
        boolean ok() {
            return status == 200;
        }
    }

    private final Vertx vertx;
    private final WebClient mesh;

    /** @param mesh the pod's mesh client, through which details, reviews and ratings are called */
    public ProductPage(Vertx vertx, WebClient mesh) {
        this.vertx = vertx;
        this.mesh = mesh;
    }

    static JsonArray products() {
        return new JsonArray().add(new JsonObject().put("id", 0).put("title", TITLE)
                .put("descriptionHtml", DESCRIPTION_HTML));
    }

    @Override
    public void handle(HttpServerRequest req) {
        String path = req.path();
        String api = "/api/v1/products";
        if (path.equals("/") || path.equals("/index.html")) {
            html(req, 200, ProductPageHtml.index());
        } else if (path.equals("/health")) {
            req.response().putHeader("content-type", "text/plain").end("Product page is healthy");
        } else if (path.equals("/login") && req.method() == HttpMethod.POST) {
            login(req);
        } else if (path.equals("/logout")) {
            req.response().addCookie(Cookie.cookie("user", "").setPath("/").setMaxAge(0));
            back(req);
        } else if (path.equals("/productpage")) {
            page(req);
        } else if (path.equals(api)) {
            Http.json(req, 200, products().encode());
        } else if (path.startsWith(api + "/")) {
            int id = Http.productId(path, api + "/");
            String rest = path.substring((api + "/").length()).replaceFirst("^[^/]*", "");
            if (id < 0) {
                Http.error(req, 400, "please provide numeric product id");
            } else if (rest.isEmpty()) {
                reply(req, details(req, id));
            } else if (rest.equals("/reviews")) {
                reply(req, reviews(req, id));
            } else if (rest.equals("/ratings")) {
                reply(req, ratings(req, id));
            } else {
                Http.error(req, 404, "not found: " + path);
            }
        } else {
            Http.error(req, 404, "not found: " + path);
        }
    }

    private void page(HttpServerRequest req) {
        int id = 0; // as Istio's: the one product
        String user = user(req);
        Future<Answer> details = details(req, id);
        Future<Answer> reviews = reviews(req, id);
        Future.join(details, reviews).onComplete(done -> html(req, 200, ProductPageHtml.page(
                products().getJsonObject(id), details.result(), reviews.result(), user)));
    }

    Future<Answer> details(HttpServerRequest req, int id) {
        return call(req, DETAILS_URL + id, "Sorry, product details are currently unavailable for this book.");
    }

    Future<Answer> reviews(HttpServerRequest req, int id) {
        return call(req, REVIEWS_URL + id, "Sorry, product reviews are currently unavailable for this book.");
    }

    Future<Answer> ratings(HttpServerRequest req, int id) {
        return call(req, RATINGS_URL + id, "Sorry, product ratings are currently unavailable for this book.");
    }

    /** One call through the mesh; never fails: a failure is an answer with Istio's message. */
    private Future<Answer> call(HttpServerRequest req, String url, String unavailable) {
        return Http.within(vertx, mesh.getAbs(url).putHeaders(forwarded(req)).send(), CALL_TIMEOUT_MILLIS)
                .map(r -> {
                    if (r.statusCode() == 200) {
                        return new Answer(200, r.bodyAsJsonObject());
                    }
                    return new Answer(r.statusCode(), new JsonObject().put("error", unavailable));
                })
                .otherwise(e -> new Answer(500, new JsonObject().put("error", unavailable)));
    }

    /** The propagated headers, and the signed-in user as {@code end-user}. */
    private static MultiMap forwarded(HttpServerRequest req) {
        MultiMap h = Http.propagated(req);
        String user = user(req);
        if (!user.isEmpty()) {
            h.set("end-user", user);
        }
        return h;
    }

    /** The signed-in user: the {@code user} cookie, else an {@code end-user} header, else "". */
    static String user(HttpServerRequest req) {
        Cookie c = req.getCookie("user");
        if (c != null && !c.getValue().isEmpty()) {
            return c.getValue();
        }
        String h = req.getHeader("end-user");
        return h == null ? "" : h;
    }

    private void login(HttpServerRequest req) {
        req.setExpectMultipart(true);
        req.end().onComplete(v -> {
            String user = req.getFormAttribute("username");
            if (user != null && !user.isBlank()) {
                req.response().addCookie(Cookie.cookie("user", user.trim()).setPath("/"));
            }
            back(req);
        });
    }

    private static void back(HttpServerRequest req) {
        String referer = req.getHeader("referer");
        req.response().setStatusCode(302).putHeader("location", referer == null ? "/productpage" : referer).end();
    }

    private static void reply(HttpServerRequest req, Future<Answer> answer) {
        answer.onSuccess(a -> Http.json(req, a.status(), a.body()));
    }

    private static void html(HttpServerRequest req, int status, String page) {
        req.response().setStatusCode(status).putHeader("content-type", "text/html; charset=utf-8").end(page);
    }
}
