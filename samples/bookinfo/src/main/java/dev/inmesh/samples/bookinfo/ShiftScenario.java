package dev.inmesh.samples.bookinfo;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Traffic shifting through the {@link ControlPlane}, with every pod's mesh on ADS: {@link #run} loads the product page
 * over and over while the control plane moves 100% of reviews to v3, and shows how soon every page has red stars;
 * {@link #console} takes the same kind of change as commands ({@code shift v3 50}, {@code weights}, {@code quit}).
 * Nothing restarts: the control plane pushes route configuration {@code 9080} and the meshes route the next requests
 * by it.
 */
public final class ShiftScenario {
    /** How long the shift may take to show on every page. */
    static final long DEADLINE_MS = 10_000;
    /** Consecutive pages from v3 that count as "every request sees v3". */
    static final int CONFIRM = 20;

    private static final String PAGE = PodSpec.PRODUCTPAGE.url() + "/productpage";
    private static final String REVIEWS = "http://reviews:9080/reviews/0";

    private final ControlPlane cp;
    private final PrintStream out;
    private final WebClient browser;
    private final WebClient productpageMesh;
    private boolean ok = true;

    public ShiftScenario(Vertx vertx, Bookinfo app, ControlPlane cp, PrintStream out) {
        this.cp = cp;
        this.out = out;
        this.browser = WebClient.create(vertx);
        this.productpageMesh = app.pod(PodSpec.PRODUCTPAGE).mesh().webClient();
    }

    /** One page load: when it ended, its status and the reviews version it shows ({@code v3} has red stars). */
    record PageLoad(long atNanos, int status, String version, String stars) {
    }

    /** Runs the scenario; true when every step went as expected. */
    public boolean run() {
        out.println("1. Before: the control plane serves reviews " + cp.reviewsWeights() + " (" + cp.version() + ")");
        Map<String, Integer> before = sample(100);
        line("100 requests from productpage's mesh client to " + REVIEWS + ": " + Scenario.counts(before));
        expect(before.size() == 3 && before.keySet().stream().allMatch(k -> k.startsWith("v")),
                "expected answers from v1, v2 and v3");

        out.println("2. Shift 100% of reviews to v3 while the page is being loaded");
        List<PageLoad> loads = new ArrayList<>();
        long[] shiftedAt = new long[1];
        Thread loader = new Thread(() -> loadUntilV3(loads, shiftedAt), "bookinfo-page-loader");
        loader.setDaemon(true);
        loader.start();
        try {
            Thread.sleep(1000);
            synchronized (shiftedAt) {
                cp.setReviewsWeights(weights(0, 0, 100));
                shiftedAt[0] = System.nanoTime();
            }
            loader.join(DEADLINE_MS + 15_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            fail("interrupted");
            return false;
        }
        report(loads, shiftedAt[0]);

        out.println("3. After: " + cp.reviewsWeights() + " (" + cp.version() + ")");
        Map<String, Integer> after = sample(100);
        line("100 requests from productpage's mesh client: " + Scenario.counts(after));
        expect(after.equals(Map.of("v3", 100)), "every request should reach v3");

        out.println("4. Back to the weights of the files, " + cp.weightsInFiles());
        cp.setReviewsWeights(cp.weightsInFiles());
        long t0 = System.nanoTime();
        Map<String, Integer> back = Map.of();
        while (System.nanoTime() - t0 < TimeUnit.MILLISECONDS.toNanos(DEADLINE_MS)) {
            back = sample(50);
            if (back.size() == 3) {
                break;
            }
        }
        line("50 requests, " + (System.nanoTime() - t0) / 1_000_000 + " ms after the push: " + Scenario.counts(back));
        expect(back.size() == 3, "expected v1, v2 and v3 again");
        out.println(ok ? "Shift scenario: all steps as expected." : "Shift scenario: some steps did NOT go as expected.");
        return ok;
    }

    /** Loads the page until, after the shift, {@link #CONFIRM} pages in a row came from v3 (or the deadline). */
    private void loadUntilV3(List<PageLoad> loads, long[] shiftedAt) {
        long hardStop = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(DEADLINE_MS + 1000);
        while (System.nanoTime() < hardStop) {
            PageLoad load;
            try {
                HttpResponse<Buffer> r = await(browser.getAbs(PAGE).send());
                String html = r.bodyAsString();
                load = new PageLoad(System.nanoTime(), r.statusCode(),
                        Scenario.version(Scenario.between(html, "Reviews served by: ", "<")), Scenario.stars(html));
            } catch (RuntimeException e) {
                load = new PageLoad(System.nanoTime(), 0, "error: " + e.getMessage(), "");
            }
            long shift;
            synchronized (shiftedAt) {
                shift = shiftedAt[0];
                loads.add(load);
            }
            if (shift != 0 && (v3Tail(loads, shift) >= CONFIRM
                    || System.nanoTime() - shift > TimeUnit.MILLISECONDS.toNanos(DEADLINE_MS))) {
                return;
            }
        }
    }

    private void report(List<PageLoad> loads, long shiftedAt) {
        Map<String, Integer> before = new TreeMap<>();
        Map<String, Integer> after = new TreeMap<>();
        List<PageLoad> afterShift = new ArrayList<>();
        for (PageLoad l : loads) {
            if (l.atNanos() < shiftedAt) {
                before.merge(label(l), 1, Integer::sum);
            } else {
                afterShift.add(l);
                after.merge(label(l), 1, Integer::sum);
            }
        }
        int errors = (int) loads.stream().filter(l -> l.status() != 200).count();
        line("pages loaded before the push: " + before.values().stream().mapToInt(i -> i).sum() + " ("
                + Scenario.counts(before) + ")");
        line("pushed reviews " + cp.reviewsWeights() + " as " + cp.version() + " to every connected mesh");
        line("pages loaded after the push: " + afterShift.size() + " (" + Scenario.counts(after) + ")");
        int tail = v3Tail(loads, shiftedAt);
        int firstAllV3 = afterShift.size() - tail;
        if (tail >= CONFIRM) {
            long ms = (afterShift.get(firstAllV3).atNanos() - shiftedAt) / 1_000_000;
            line("every page from the " + ordinal(firstAllV3 + 1) + " after the push on (it ended " + ms
                    + " ms after the push) came from v3 with red stars: " + tail + " in a row");
        } else {
            line("NOT every page came from v3 within " + DEADLINE_MS + " ms: the last " + tail + " did");
        }
        line("errors while shifting: " + errors);
        expect(tail >= CONFIRM && errors == 0, "every page should come from v3 soon after the push, none fail");
    }

    /**
     * How many of the last loads in a row ended at or after the push and came from v3. The loader stops on it and the
     * report confirms by it, so both count alike: a page that ended before the push is a "before" page, even when it
     * happens to show v3 and was recorded after the push.
     */
    static int v3Tail(List<PageLoad> loads, long shiftedAt) {
        int n = 0;
        for (int i = loads.size() - 1; i >= 0; i--) {
            PageLoad l = loads.get(i);
            if (l.atNanos() < shiftedAt || l.status() != 200 || !l.version().equals("v3")) {
                break;
            }
            n++;
        }
        return n;
    }

    private static String label(PageLoad l) {
        return l.status() == 200 ? l.version() + " (" + l.stars() + ")" : "HTTP " + l.status();
    }

    private static String ordinal(int n) {
        return n + (n % 100 >= 11 && n % 100 <= 13 ? "th" : n % 10 == 1 ? "st" : n % 10 == 2 ? "nd"
                : n % 10 == 3 ? "rd" : "th");
    }

    /** {@code n} requests from productpage's mesh client to reviews, counted by the version that answered. */
    Map<String, Integer> sample(int n) {
        Map<String, Integer> versions = new TreeMap<>();
        for (int i = 0; i < n; i++) {
            HttpResponse<Buffer> r = await(productpageMesh.getAbs(REVIEWS).send());
            versions.merge(r.statusCode() == 200 ? Scenario.version(r.bodyAsJsonObject().getString("podname"))
                    : "HTTP " + r.statusCode(), 1, Integer::sum);
        }
        return versions;
    }

    static Map<String, Integer> weights(int v1, int v2, int v3) {
        Map<String, Integer> w = new LinkedHashMap<>();
        w.put("v1", v1);
        w.put("v2", v2);
        w.put("v3", v3);
        return w;
    }

    static final String HELP = String.join("\n",
            "commands:",
            "  shift TO PERCENT [FROM]  TO gets PERCENT, FROM (default v1, or v3 when TO is v1) the rest, others 0",
            "                           (shift v3 50, then shift v3 100: Istio's traffic-shifting task)",
            "  move FROM TO PERCENT     move PERCENT points from one subset to another",
            "  set V1 V2 V3             set the three weights",
            "  reset                    the weights of the mesh directory (50 30 20)",
            "  weights                  what the control plane serves, and 20 requests counted by version",
            "  load [N]                 load the product page N times (default 10): versions and stars",
            "  quit                     stop everything");

    /**
     * Reads commands until {@code quit} (true) or the end of input (false). Each change is pushed by the control
     * plane to every pod's mesh.
     */
    public boolean console(BufferedReader in) throws IOException {
        out.println("The control plane serves reviews " + cp.reviewsWeights() + ". " + HELP.replace("commands:",
                "Commands:"));
        while (true) {
            out.print("bookinfo> ");
            out.flush();
            String line = in.readLine();
            if (line == null) {
                out.println();
                return false;
            }
            String[] w = line.strip().split("\\s+");
            if (w[0].isEmpty()) {
                continue;
            }
            if (w[0].equals("quit") || w[0].equals("exit")) {
                return true;
            }
            try {
                out.println(command(w));
            } catch (RuntimeException e) {
                out.println("error: " + e.getMessage());
            }
        }
    }

    /** Runs one console command; returns what to print. */
    String command(String[] w) {
        switch (w[0]) {
            case "shift": {
                need(w, 3, 4, "shift TO PERCENT [FROM]");
                String to = w[1];
                int percent = percent(w[2]);
                String from = w.length == 4 ? w[3] : to.equals("v1") ? "v3" : "v1";
                if (from.equals(to)) {
                    throw new IllegalArgumentException("FROM and TO are both " + to);
                }
                Map<String, Integer> weights = weights(0, 0, 0);
                if (!weights.containsKey(to) || !weights.containsKey(from)) {
                    throw new IllegalArgumentException("subsets: v1, v2, v3");
                }
                weights.put(from, 100 - percent);
                weights.put(to, percent);
                cp.setReviewsWeights(weights);
                return pushed();
            }
            case "move":
                need(w, 4, 4, "move FROM TO PERCENT");
                cp.shiftReviews(w[1], w[2], percent(w[3]));
                return pushed();
            case "set":
                need(w, 4, 4, "set V1 V2 V3");
                cp.setReviewsWeights(weights(Integer.parseInt(w[1]), Integer.parseInt(w[2]), Integer.parseInt(w[3])));
                return pushed();
            case "reset":
                cp.setReviewsWeights(cp.weightsInFiles());
                return pushed();
            case "weights":
                return "control plane: reviews " + cp.reviewsWeights() + " (" + cp.version() + "); 20 requests from "
                        + "productpage's mesh client: " + Scenario.counts(sample(20));
            case "load": {
                need(w, 1, 2, "load [N]");
                int n = w.length == 2 ? Integer.parseInt(w[1]) : 10;
                Map<String, Integer> pages = new TreeMap<>();
                for (int i = 0; i < n; i++) {
                    HttpResponse<Buffer> r = await(browser.getAbs(PAGE).send());
                    String html = r.bodyAsString();
                    pages.merge(r.statusCode() == 200 ? Scenario.version(Scenario.between(html,
                            "Reviews served by: ", "<")) + " (" + Scenario.stars(html) + ")" : "HTTP "
                            + r.statusCode(), 1, Integer::sum);
                }
                return n + " loads of " + PAGE + ": " + Scenario.counts(pages);
            }
            case "help":
                return HELP;
            default:
                return "unknown command: " + w[0] + " (help lists them)";
        }
    }

    private String pushed() {
        return "pushed reviews " + cp.reviewsWeights() + " as " + cp.version() + " to every connected mesh (applied "
                + "within milliseconds; requests already routed keep their version)";
    }

    private static int percent(String s) {
        int p = Integer.parseInt(s);
        if (p < 0 || p > 100) {
            throw new IllegalArgumentException("percent: " + p + " (expected 0 to 100)");
        }
        return p;
    }

    private static void need(String[] w, int min, int max, String usage) {
        if (w.length < min || w.length > max) {
            throw new IllegalArgumentException("usage: " + usage);
        }
    }

    /** Waits up to 10 s for {@code f}, on this (non-Vert.x) thread. */
    private static <T> T await(Future<T> f) {
        try {
            return f.await(10, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            throw new IllegalStateException("no answer in 10 s", e);
        }
    }

    private void line(String s) {
        out.println("   " + s);
    }

    private void expect(boolean condition, String what) {
        if (!condition) {
            ok = false;
            line("NOT AS EXPECTED: " + what);
        }
    }

    private void fail(String s) {
        ok = false;
        line(s);
    }
}
