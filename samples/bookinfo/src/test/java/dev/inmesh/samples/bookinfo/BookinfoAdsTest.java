package dev.inmesh.samples.bookinfo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Bookinfo with every pod's mesh on ADS from the sample's {@link ControlPlane} (127.0.0.1, a free port): a shift of
 * the reviews weights takes effect for the next requests, with nothing restarted.
 */
class BookinfoAdsTest {
    static final String REVIEWS = "http://reviews:9080/reviews/0";

    static ControlPlane cp;
    static Vertx vertx;
    static Bookinfo app;
    static WebClient productpageMesh;
    /** A plain client, as a browser outside the mesh, held for all tests: Vert.x closes one no longer referenced. */
    static WebClient browser;

    @BeforeAll
    static void start() throws Exception {
        cp = ControlPlane.start(Bookinfo.defaultMeshDir(), "127.0.0.1", 0);
        vertx = Vertx.vertx();
        app = Bookinfo.start(vertx, Bookinfo.defaultMeshDir(), "127.0.0.1:" + cp.port(), -1, Set.of())
                .await(30, TimeUnit.SECONDS);
        productpageMesh = app.pod(PodSpec.PRODUCTPAGE).mesh().webClient();
        browser = WebClient.create(vertx);
    }

    /** Every test starts from the files' weights, pushed and applied (whatever the test before left). */
    @BeforeEach
    void filesWeights() throws Exception {
        cp.setReviewsWeights(cp.weightsInFiles());
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        Map<String, Integer> versions = sample(100);
        while (versions.size() < 3 && System.nanoTime() < deadline) {
            versions = sample(100);
        }
        assertEquals(Set.of("v1", "v2", "v3"), versions.keySet(), versions.toString());
    }

    @AfterAll
    static void stop() throws Exception {
        if (app != null) {
            app.close().await(10, TimeUnit.SECONDS);
        }
        if (vertx != null) {
            vertx.close().await(10, TimeUnit.SECONDS);
        }
        if (cp != null) {
            cp.close();
        }
    }

    static Map<String, Integer> sample(int n) throws Exception {
        Map<String, Integer> versions = new TreeMap<>();
        for (int i = 0; i < n; i++) {
            HttpResponse<Buffer> r = productpageMesh.getAbs(REVIEWS).send().await(10, TimeUnit.SECONDS);
            versions.merge(r.statusCode() == 200 ? Scenario.version(r.bodyAsJsonObject().getString("podname"))
                    : "HTTP " + r.statusCode(), 1, Integer::sum);
        }
        return versions;
    }

    /** Samples until {@code expected} comes back, for at most 10 s; returns the last sample. */
    static Map<String, Integer> awaitSample(int n, Map<String, Integer> expected) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        Map<String, Integer> last = sample(n);
        while (!last.equals(expected) && System.nanoTime() < deadline) {
            Thread.sleep(20);
            last = sample(n);
        }
        return last;
    }

    @Test
    void podsOnAdsServeThePageAndTheSplitOfTheControlPlane() throws Exception {
        HttpResponse<Buffer> page = browser.getAbs(PodSpec.PRODUCTPAGE.url() + "/productpage").send()
                .await(10, TimeUnit.SECONDS);
        assertEquals(200, page.statusCode());
        assertTrue(page.bodyAsString().contains("Reviewer1"));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        Map<String, Integer> versions = sample(100);
        while (versions.size() < 3 && System.nanoTime() < deadline) {
            versions = sample(100);
        }
        assertEquals(Set.of("v1", "v2", "v3"), versions.keySet(), versions.toString());
    }

    @Test
    void aShiftToV3TakesEffectForTheNextRequestsAndBackAgain() throws Exception {
        cp.setReviewsWeights(ShiftScenario.weights(100, 0, 0));
        assertEquals(Map.of("v1", 30), awaitSample(30, Map.of("v1", 30)));
        cp.setReviewsWeights(ShiftScenario.weights(0, 0, 100));
        assertEquals(Map.of("v3", 30), awaitSample(30, Map.of("v3", 30)));
        // and it stays there
        assertEquals(Map.of("v3", 50), sample(50));
        cp.setReviewsWeights(cp.weightsInFiles());
    }

    @Test
    void theShiftScenarioGoesAsExpected() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        boolean ok = new ShiftScenario(vertx, app, cp, out).run();
        String text = bytes.toString(StandardCharsets.UTF_8);
        System.out.print(text);
        assertTrue(ok, text);
        assertTrue(text.contains("came from v3 with red stars"), text);
    }

    @Test
    void theConsoleShiftsAndQuits() throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        ShiftScenario console = new ShiftScenario(vertx, app, cp, out);
        boolean quit = console.console(new BufferedReader(new StringReader(
                "shift v3 50\nweights\nnonsense\nshift v9 10\nquit\n")));
        String text = bytes.toString(StandardCharsets.UTF_8);
        assertTrue(quit, text);
        assertEquals(Map.of("v1", 50, "v2", 0, "v3", 50), cp.reviewsWeights());
        assertTrue(text.contains("unknown command: nonsense"), text);
        assertTrue(text.contains("error: subsets: v1, v2, v3"), text);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        Map<String, Integer> versions = sample(40);
        while (!versions.keySet().equals(Set.of("v1", "v3")) && System.nanoTime() < deadline) {
            versions = sample(40);
        }
        assertEquals(Set.of("v1", "v3"), versions.keySet(), versions.toString());
        cp.setReviewsWeights(cp.weightsInFiles());
        assertTrue(!console.console(new BufferedReader(new StringReader("reset\n"))), "end of input is not quit");
    }
}
