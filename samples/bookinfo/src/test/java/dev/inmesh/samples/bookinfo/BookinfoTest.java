package dev.inmesh.samples.bookinfo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Bookinfo end to end on loopback: six pods on 127.0.0.10-15:9080, each with its own mesh reading
 * {@code samples/bookinfo/mesh/}. A browser's requests go to productpage's address with a plain client; service to
 * service requests go through productpage's mesh client.
 */
class BookinfoTest {
    static final String PAGE = PodSpec.PRODUCTPAGE.url() + "/productpage";
    static final String API = PodSpec.PRODUCTPAGE.url() + "/api/v1/products";

    static Vertx vertx;
    static Bookinfo app;
    static WebClient browser;
    static WebClient productpageMesh;

    @BeforeAll
    static void start() throws Exception {
        vertx = Vertx.vertx();
        app = Bookinfo.start(vertx, Bookinfo.defaultMeshDir(), -1).await(30, TimeUnit.SECONDS);
        browser = WebClient.create(vertx, new WebClientOptions().setFollowRedirects(false));
        productpageMesh = app.pod(PodSpec.PRODUCTPAGE).mesh().webClient();
    }

    @AfterAll
    static void stop() throws Exception {
        if (app != null) {
            app.close().await(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    static HttpResponse<Buffer> get(WebClient client, String url, String user) throws Exception {
        var req = client.getAbs(url);
        if (user != null) {
            req.putHeader("end-user", user);
        }
        return req.send().await(10, TimeUnit.SECONDS);
    }

    static String version(HttpResponse<Buffer> reviews) {
        return Scenario.version(reviews.bodyAsJsonObject().getString("podname"));
    }

    @Test
    void everyPodAnswersItsHealthCheckOnItsOwnAddress() throws Exception {
        for (PodSpec pod : PodSpec.ALL) {
            HttpResponse<Buffer> r = get(browser, pod.url() + "/health", null);
            assertEquals(200, r.statusCode(), pod.workload());
            assertTrue(r.bodyAsString().contains("healthy"), pod.workload());
        }
    }

    @Test
    void theProductPageShowsTheBookItsDetailsAndItsReviews() throws Exception {
        HttpResponse<Buffer> r = get(browser, PAGE, null);
        assertEquals(200, r.statusCode());
        assertTrue(r.getHeader("content-type").startsWith("text/html"));
        String html = r.bodyAsString();
        assertTrue(html.contains("<h1>The Comedy of Errors</h1>"), html);
        assertTrue(html.contains("Book Details") && html.contains("PublisherA") && html.contains("123-1234567890"));
        assertTrue(html.contains("Book Reviews") && html.contains("Reviewer1") && html.contains("Reviewer2"));
        assertTrue(html.contains("Reviews served by: reviews-v"));
        assertFalse(html.contains("unavailable"), html);
    }

    @Test
    void theJsonApiAnswersAsIstiosProductpageDoes() throws Exception {
        JsonArray products = new JsonArray(get(browser, API, null).bodyAsString());
        assertEquals("The Comedy of Errors", products.getJsonObject(0).getString("title"));
        assertEquals(0, products.getJsonObject(0).getInteger("id"));

        JsonObject details = get(browser, API + "/0", null).bodyAsJsonObject();
        assertEquals("William Shakespeare", details.getString("author"));
        assertEquals(1595, details.getInteger("year"));
        assertEquals("1234567890", details.getString("ISBN-10"));

        HttpResponse<Buffer> reviews = get(browser, API + "/0/reviews", "jason");
        assertEquals("application/json", reviews.getHeader("content-type"));
        JsonArray list = reviews.bodyAsJsonObject().getJsonArray("reviews");
        assertEquals(2, list.size());
        assertEquals(new JsonObject().put("stars", 5).put("color", "black"),
                list.getJsonObject(0).getJsonObject("rating"));

        JsonObject ratings = get(browser, API + "/0/ratings", null).bodyAsJsonObject();
        assertEquals(new JsonObject().put("Reviewer1", 5).put("Reviewer2", 4), ratings.getJsonObject("ratings"));

        assertEquals(400, get(browser, API + "/zero", null).statusCode());
    }

    @Test
    void reviewsAreSplitFiftyThirtyTwentyAcrossVersions() throws Exception {
        int n = 400;
        Map<String, Integer> seen = new TreeMap<>();
        for (int i = 0; i < n; i++) {
            HttpResponse<Buffer> r = get(productpageMesh, "http://reviews:9080/reviews/0", null);
            assertEquals(200, r.statusCode());
            seen.merge(version(r), 1, Integer::sum);
        }
        // binomial standard deviations at n = 400 are 2.5, 2.3 and 2.0 points: 10 points is four of them or more,
        // and still far from an even split (33 points each)
        assertShare(seen, "v1", 50, n);
        assertShare(seen, "v2", 30, n);
        assertShare(seen, "v3", 20, n);
    }

    static void assertShare(Map<String, Integer> seen, String version, int percent, int n) {
        double share = 100.0 * seen.getOrDefault(version, 0) / n;
        assertTrue(Math.abs(share - percent) <= 10, version + ": " + share + "% (expected " + percent + "% +- 10) "
                + seen);
    }

    @Test
    void jasonAlwaysSeesReviewsV2WithBlackStars() throws Exception {
        for (int i = 0; i < 30; i++) {
            HttpResponse<Buffer> r = get(browser, API + "/0/reviews", "jason");
            assertEquals("v2", version(r), "request " + i);
        }
        for (int i = 0; i < 10; i++) {
            assertEquals("black stars", Scenario.stars(get(browser, PAGE, "jason").bodyAsString()));
        }
    }

    @Test
    void signingInAsJasonSetsACookieThatRoutesHisPagesToV2() throws Exception {
        HttpResponse<Buffer> login = browser.postAbs(PodSpec.PRODUCTPAGE.url() + "/login")
                .putHeader("referer", PAGE)
                .sendForm(io.vertx.core.MultiMap.caseInsensitiveMultiMap().add("username", "jason"))
                .await(10, TimeUnit.SECONDS);
        assertEquals(302, login.statusCode());
        assertEquals(PAGE, login.getHeader("location"));
        String cookie = login.cookies().get(0).split(";")[0];
        assertEquals("user=jason", cookie);
        for (int i = 0; i < 10; i++) {
            String html = browser.getAbs(PAGE).putHeader("cookie", cookie).send().await(10, TimeUnit.SECONDS)
                    .bodyAsString();
            assertTrue(html.contains("Reviews served by: reviews-v2"), html);
            assertTrue(html.contains("jason <a href=\"/logout\">"));
        }
    }

    @Test
    void anyoneElseSeesEveryVersion() throws Exception {
        Map<String, Integer> seen = new TreeMap<>();
        for (int i = 0; i < 60; i++) {
            seen.merge(version(get(browser, API + "/0/reviews", "bob")), 1, Integer::sum);
        }
        assertEquals(List.of("v1", "v2", "v3"), List.copyOf(seen.keySet()), seen.toString());
    }

    @Test
    void reviewsV1ShowsNoStarsAndNeverCallsRatings() throws Exception {
        List<StreamInfo> atRatings = new CopyOnWriteArrayList<>();
        Consumer<StreamInfo> observer = info -> {
            if (info.direction() == StreamInfo.Direction.INBOUND) {
                atRatings.add(info);
            }
        };
        Pod ratings = app.pod(PodSpec.RATINGS);
        ratings.addObserver(observer);
        try {
            // by the pod's address: the listener on 0.0.0.0_9080 has no virtual host for it, allow_any passes it on
            for (int i = 0; i < 10; i++) {
                HttpResponse<Buffer> r = get(productpageMesh, PodSpec.REVIEWS_V1.url() + "/reviews/0", null);
                assertEquals("v1", version(r));
                for (Object review : r.bodyAsJsonObject().getJsonArray("reviews")) {
                    assertNull(((JsonObject) review).getValue("rating"));
                }
            }
            get(productpageMesh, PodSpec.REVIEWS_V3.url() + "/reviews/0", null);
            long deadline = System.currentTimeMillis() + 5000;
            while (atRatings.isEmpty() && System.currentTimeMillis() < deadline) {
                Thread.sleep(10);
            }
            // only v3's call arrived, from reviews-v3 as Istio's peer metadata tells
            assertEquals(1, atRatings.size());
            assertEquals("reviews-v3", atRatings.get(0).peer().workload());
        } finally {
            ratings.removeObserver(observer);
        }
    }

    @Test
    void theServerSideReportsTheServiceAsIstiosDashboardsSelectIt() throws Exception {
        // each pod's virtualInbound chain (matched by its address) names its service's inbound cluster, whose Istio
        // metadata gives reporter="destination" the same destination_service as the client's reporter="source"
        List<StreamInfo> atReviews = new CopyOnWriteArrayList<>();
        Consumer<StreamInfo> observer = info -> {
            if (info.direction() == StreamInfo.Direction.INBOUND) {
                atReviews.add(info);
            }
        };
        Pod reviews = app.pod(PodSpec.REVIEWS_V2);
        reviews.addObserver(observer);
        try {
            assertEquals("v2", version(get(productpageMesh, "http://reviews:9080/reviews/0", "jason")));
            long deadline = System.currentTimeMillis() + 5000;
            while (atReviews.isEmpty() && System.currentTimeMillis() < deadline) {
                Thread.sleep(10);
            }
            assertEquals(1, atReviews.size());
            StreamInfo in = atReviews.get(0);
            assertEquals("inbound|9080||reviews.default.svc.cluster.local", in.upstreamCluster());
            assertEquals("default", in.routeName());
            assertEquals("reviews.default.svc.cluster.local", in.destinationService());
            assertEquals("reviews", in.destinationServiceName());
            assertEquals("default", in.destinationServiceNamespace());
        } finally {
            reviews.removeObserver(observer);
        }
        String scrape = ((dev.inmesh.runtime.mesh.DefaultMesh) reviews.mesh()).registry().scrape();
        String series = scrape.lines()
                .filter(l -> l.startsWith("istio_requests_total{") && l.contains("reporter=\"destination\""))
                .findFirst().orElseThrow(() -> new AssertionError("no reporter=destination series in\n" + scrape));
        assertTrue(series.contains("destination_service=\"reviews.default.svc.cluster.local\""), series);
        assertTrue(series.contains("destination_service_name=\"reviews\""), series);
        assertTrue(series.contains("destination_workload=\"reviews-v2\""), series);
        assertTrue(series.contains("source_workload=\"productpage-v1\""), series);
    }

    @Test
    void anHttp10RequestIsRefusedWith426AsIstiosSidecarRefusesItOnAPortDeclaredHttp() throws Exception {
        // istiod's plaintext chain of a port declared HTTP matches any application protocol, and its connection
        // manager, without ISTIO_META_HTTP10 (accept_http_10), answers HTTP/1.0 with 426, as Envoy's HTTP/1 codec
        try (java.net.Socket s = new java.net.Socket(PodSpec.DETAILS.ip(), PodSpec.PORT)) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write("GET /details/0 HTTP/1.0\r\nHost: details:9080\r\n\r\n"
                    .getBytes(StandardCharsets.US_ASCII));
            String answer = new String(s.getInputStream().readAllBytes(), StandardCharsets.ISO_8859_1);
            // (the application's Vert.x server writes the request's version in the status line)
            assertTrue(answer.startsWith("HTTP/1.0 426 Upgrade Required"), answer);
            assertFalse(answer.contains("William Shakespeare"), answer);
        }
    }

    @Test
    void aFailingReviewsInstanceIsRetriedAroundAndNoRequestFails() throws Exception {
        Pod failing = app.startPod(Scenario.FAILING_REVIEWS).await(10, TimeUnit.SECONDS);
        Reviews bad = ((Reviews) failing.service()).failWith(503);
        Map<Integer, Integer> attempts = new ConcurrentHashMap<>();
        Consumer<StreamInfo> observer = info -> {
            if (info.direction() == StreamInfo.Direction.OUTBOUND
                    && "outbound|9080|v1|reviews.default.svc.cluster.local".equals(info.upstreamCluster())) {
                attempts.merge(info.attemptCount(), 1, Integer::sum);
            }
        };
        Pod productpage = app.pod(PodSpec.PRODUCTPAGE);
        productpage.addObserver(observer);
        try {
            app.addEndpoint(Scenario.FAILING_REVIEWS).await(10, TimeUnit.SECONDS);
            for (int i = 0; i < 100; i++) {
                assertEquals(200, get(productpageMesh, "http://reviews:9080/reviews/0", null).statusCode(),
                        "request " + i);
            }
            // every 503 from the failing pod was retried, on the other v1 host (previous_hosts, round robin)
            assertTrue(bad.served() > 0, "the failing pod was never picked");
            assertEquals(bad.served(), Scenario.retries(attempts), attempts.toString());
            assertEquals(Map.of(), withAttemptsAbove(attempts, 2));
        } finally {
            productpage.removeObserver(observer);
            app.removeEndpoint(Scenario.FAILING_REVIEWS).await(10, TimeUnit.SECONDS);
            app.stopPod(Scenario.FAILING_REVIEWS).await(10, TimeUnit.SECONDS);
        }
        for (int i = 0; i < 20; i++) {
            assertEquals(200, get(productpageMesh, "http://reviews:9080/reviews/0", null).statusCode());
        }
    }

    static Map<Integer, Integer> withAttemptsAbove(Map<Integer, Integer> attempts, int max) {
        Map<Integer, Integer> above = new TreeMap<>();
        attempts.forEach((k, v) -> {
            if (k > max) {
                above.put(k, v);
            }
        });
        return above;
    }

    @Test
    void aSlowRatingsServiceTimesOutAfterTheOneSecondRouteTimeout() throws Exception {
        // 504 is the mesh's answer (the application's own 3 s timeout would give 500); the time bounds leave room
        // for a loaded machine but stay under ratings' 3 s
        app.ratings().setDelay(Duration.ofSeconds(3));
        try {
            long t0 = System.nanoTime();
            HttpResponse<Buffer> r = get(browser, API + "/0/ratings", null);
            long took = (System.nanoTime() - t0) / 1_000_000;
            assertEquals(504, r.statusCode());
            assertEquals("Sorry, product ratings are currently unavailable for this book.",
                    r.bodyAsJsonObject().getString("error"));
            assertTrue(took >= 950 && took < 2900, took + " ms");

            // reviews v2 waits for ratings through its own mesh: the page still comes, without stars
            t0 = System.nanoTime();
            String html = get(browser, PAGE, "jason").bodyAsString();
            took = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(html.contains("Ratings service is currently unavailable"), html);
            assertTrue(html.contains("Reviews served by: reviews-v2"));
            assertTrue(took >= 950 && took < 2900, took + " ms");
        } finally {
            app.ratings().setDelay(Duration.ZERO);
        }
        assertEquals(200, get(browser, API + "/0/ratings", null).statusCode());
    }

    @Test
    void theLaunchersScenarioGoesAsExpected() throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        boolean ok = new Scenario(vertx, app, out).run();
        String text = bytes.toString(StandardCharsets.UTF_8);
        assertTrue(ok, text);
        assertTrue(text.contains("Scenario: all steps as expected."), text);
        assertTrue(text.lines().count() < 30, text);
    }
}
