package dev.inmesh.samples.bookinfo;

import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import java.io.PrintStream;
import java.time.Duration;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;

/**
 * A short tour of what the mesh does for bookinfo, a few lines per step: the page, the weighted split of reviews,
 * the {@code end-user: jason} route, Istio's default retries hiding a failing reviews instance, and the timeout on
 * ratings. Requests from outside go to productpage's address with a plain client, as a browser would; requests
 * between services go through productpage's mesh client, as productpage's own calls do.
 */
public final class Scenario {
    /** The failing instance that step 4 starts: a second reviews-v1 pod. */
    public static final PodSpec FAILING_REVIEWS = new PodSpec("reviews", "v1", "127.0.0.16");

    private static final String PAGE = PodSpec.PRODUCTPAGE.url() + "/productpage";
    private static final String API = PodSpec.PRODUCTPAGE.url() + "/api/v1/products/0";

    private final Bookinfo app;
    private final PrintStream out;
    private final WebClient browser;
    private final WebClient productpageMesh;
    private boolean ok = true;

    public Scenario(Vertx vertx, Bookinfo app, PrintStream out) {
        this.app = app;
        this.out = out;
        this.browser = WebClient.create(vertx);
        this.productpageMesh = app.pod(PodSpec.PRODUCTPAGE).mesh().webClient();
    }

    static void printWelcome(Bookinfo app, String config, PrintStream out) {
        out.println("Inmesh bookinfo: " + app.pods().size() + " pods in one JVM, each with its own mesh (" + config
                + ")");
        for (Pod pod : app.pods()) {
            int admin = pod.mesh().adminPort();
            out.printf("  %-15s %-24s admin %s%n", pod.spec().workload(), pod.spec().url(),
                    admin > 0 ? "http://" + pod.spec().ip() + ":" + admin + "/" : "(not available)");
        }
        out.println("Product page: " + PAGE + "   JSON: " + API + "/reviews");
        out.println();
    }

    /** Runs every step; true when each went as expected. */
    public boolean run() {
        step("1. The page", this::page);
        step("2. Weighted split (route \"split\": v1 50, v2 30, v3 20)", this::split);
        step("3. Header route (end-user: jason -> v2)", this::jason);
        step("4. Retries (Istio's default: up to 2 on 503 or connect-failure, each on another host)", this::retries);
        step("5. Timeout (route timeout 1s on ratings)", this::timeout);
        out.println(ok ? "Scenario: all steps as expected." : "Scenario: some steps did NOT go as expected.");
        return ok;
    }

    private void step(String title, Runnable body) {
        out.println(title);
        try {
            body.run();
        } catch (RuntimeException e) {
            fail("failed: " + e);
        }
    }

    private void page() {
        long t0 = System.nanoTime();
        HttpResponse<Buffer> r = get(browser, PAGE, null);
        String html = r.bodyAsString();
        boolean title = html.contains(ProductPage.TITLE);
        boolean reviews = html.contains("Reviewer1") && html.contains("Reviewer2");
        String servedBy = between(html, "Reviews served by: ", "<");
        line("GET " + PAGE + " -> " + r.statusCode() + " in " + millis(t0) + " ms: \"" + ProductPage.TITLE + "\""
                + (title ? "" : " MISSING") + ", " + (reviews ? "2 reviews" : "NO reviews") + " served by "
                + servedBy + " (" + stars(html) + ")");
        expect(r.statusCode() == 200 && title && reviews, "the page did not render");
    }

    private void split() {
        Map<String, Integer> versions = new TreeMap<>();
        int n = 100;
        for (int i = 0; i < n; i++) {
            HttpResponse<Buffer> r = get(productpageMesh, "http://reviews:9080/reviews/0", null);
            versions.merge(r.statusCode() == 200 ? version(r.bodyAsJsonObject().getString("podname"))
                    : "HTTP " + r.statusCode(), 1, Integer::sum);
        }
        line(n + " requests from productpage's mesh client to http://reviews:9080/reviews/0: " + counts(versions));
        expect(versions.keySet().stream().allMatch(k -> k.startsWith("v")) && versions.size() == 3,
                "expected answers from v1, v2 and v3 only");
    }

    private void jason() {
        Map<String, Integer> versions = new TreeMap<>();
        int n = 20;
        for (int i = 0; i < n; i++) {
            HttpResponse<Buffer> r = get(browser, API + "/reviews", "jason");
            versions.merge(r.statusCode() == 200 ? version(r.bodyAsJsonObject().getString("podname"))
                    : "HTTP " + r.statusCode(), 1, Integer::sum);
        }
        String html = get(browser, PAGE, "jason").bodyAsString();
        line(n + " requests to " + API + "/reviews with end-user: jason: " + counts(versions) + "; the page shows "
                + stars(html));
        expect(versions.equals(Map.of("v2", n)), "jason should always see v2");
    }

    private void retries() {
        Pod failing = await(app.startPod(FAILING_REVIEWS));
        Reviews bad = (Reviews) failing.service();
        bad.failWith(503);
        await(app.addEndpoint(FAILING_REVIEWS));
        line("started " + failing.name() + " on " + FAILING_REVIEWS.ip() + ", answering 503; its address is pushed "
                + "to every mesh as a second outbound|9080|v1|reviews endpoint");
        Map<Integer, Integer> attempts = new ConcurrentHashMap<>();
        Consumer<StreamInfo> observer = info -> {
            if (info.direction() == StreamInfo.Direction.OUTBOUND && info.upstreamCluster() != null
                    && info.upstreamCluster().endsWith("|reviews.default.svc.cluster.local")) {
                attempts.merge(info.attemptCount(), 1, Integer::sum);
            }
        };
        Pod productpage = app.pod(PodSpec.PRODUCTPAGE);
        productpage.addObserver(observer);
        Map<String, Integer> statuses = new TreeMap<>();
        int n = 100;
        try {
            for (int i = 0; i < n; i++) {
                HttpResponse<Buffer> r = get(productpageMesh, "http://reviews:9080/reviews/0", null);
                statuses.merge("HTTP " + r.statusCode(), 1, Integer::sum);
            }
        } finally {
            productpage.removeObserver(observer);
            await(app.removeEndpoint(FAILING_REVIEWS));
            await(app.stopPod(FAILING_REVIEWS));
        }
        int retried = attempts.entrySet().stream().filter(e -> e.getKey() > 1).mapToInt(Map.Entry::getValue).sum();
        int retries = retries(attempts);
        line(n + " requests to http://reviews:9080/reviews/0: " + counts(statuses) + "; " + failing.name()
                + " answered 503 " + bad.served() + " times");
        line("attempts per request (the mesh's StreamInfo): " + attempts(attempts) + " -> " + retried
                + " requests retried, " + retries + " retries in all, one per 503 (round robin: a v1 request "
                + "meets the failing pod first, its retry the healthy one)");
        expect(statuses.equals(Map.of("HTTP 200", n)) && retried > 0 && retries == bad.served(),
                "every request should succeed, every 503 be retried");
        line("stopped " + failing.name() + " and took its endpoint out again");
    }

    private void timeout() {
        Ratings ratings = app.ratings();
        ratings.setDelay(Duration.ofSeconds(3));
        try {
            long t0 = System.nanoTime();
            HttpResponse<Buffer> r = get(browser, API + "/ratings", null);
            long took = millis(t0);
            line("ratings now takes 3 s; GET " + API + "/ratings -> " + r.statusCode() + " after " + took + " ms: "
                    + r.bodyAsJsonObject().getString("error"));
            t0 = System.nanoTime();
            HttpResponse<Buffer> page = get(browser, PAGE, "jason");
            long pageTook = millis(t0);
            String html = page.bodyAsString();
            boolean unavailable = html.contains("Ratings service is currently unavailable");
            line("the page for jason (reviews v2 calls ratings) -> " + page.statusCode() + " after " + pageTook
                    + " ms, " + (unavailable ? "reviews say \"Ratings service is currently unavailable\""
                    : "UNEXPECTED: no ratings error"));
            expect(r.statusCode() == 504 && took >= 900 && took < 2900 && unavailable && pageTook < 2900,
                    "ratings should time out after 1 s with 504");
        } finally {
            ratings.setDelay(Duration.ZERO);
        }
    }

    private static HttpResponse<Buffer> get(WebClient client, String url, String user) {
        var req = client.getAbs(url);
        if (user != null) {
            req.putHeader("end-user", user);
        }
        return await(req.send());
    }

    /** Waits up to 10 s for {@code f}, on this (non-Vert.x) thread. */
    private static <T> T await(Future<T> f) {
        try {
            return f.await(10, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            throw new IllegalStateException("no answer in 10 s", e);
        }
    }

    /** The version in a pod name such as {@code reviews-v2-13}. */
    static String version(String podName) {
        String[] parts = podName == null ? new String[0] : podName.split("-");
        return parts.length >= 2 ? parts[1] : String.valueOf(podName);
    }

    /** What the stars on a page look like. */
    static String stars(String html) {
        if (html.contains("style=\"color: red\"")) {
            return "red stars";
        }
        if (html.contains("style=\"color: black\"")) {
            return "black stars";
        }
        return html.contains("Ratings service is currently unavailable") ? "ratings unavailable" : "no stars";
    }

    static String between(String s, String start, String end) {
        int i = s.indexOf(start);
        if (i < 0) {
            return "?";
        }
        int j = s.indexOf(end, i + start.length());
        return j < 0 ? "?" : s.substring(i + start.length(), j);
    }

    static String counts(Map<String, Integer> m) {
        StringBuilder b = new StringBuilder();
        m.forEach((k, v) -> b.append(b.length() == 0 ? "" : ", ").append(k).append(" x").append(v));
        return b.toString();
    }

    private static String attempts(Map<Integer, Integer> m) {
        StringBuilder b = new StringBuilder();
        new TreeMap<>(m).forEach((k, v) -> b.append(b.length() == 0 ? "" : ", ").append(v).append(" with ")
                .append(k).append(k == 1 ? " attempt" : " attempts"));
        return b.toString();
    }

    /** Retries made: every attempt after a request's first. */
    static int retries(Map<Integer, Integer> attemptsPerRequest) {
        return attemptsPerRequest.entrySet().stream().mapToInt(e -> (e.getKey() - 1) * e.getValue()).sum();
    }

    private static long millis(long t0) {
        return (System.nanoTime() - t0) / 1_000_000;
    }

    private void line(String s) {
        out.println("   " + s);
    }

    private void expect(boolean condition, String what) {
        if (!condition) {
            fail("NOT AS EXPECTED: " + what);
        }
    }

    private void fail(String s) {
        ok = false;
        line(s);
    }
}
