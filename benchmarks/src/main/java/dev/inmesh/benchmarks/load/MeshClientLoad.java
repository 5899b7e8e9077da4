package dev.inmesh.benchmarks.load;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/**
 * The in-JVM load harness: a plain Vert.x {@link WebClient} and the mesh's WebClient against the same local upstream
 * (HTTP/1.1 keep-alive, 1 KB responses), side by side in one JVM, interleaved and repeated, medians reported.
 *
 * <p>Two measures per client: latency at a fixed rate (requests are scheduled on a fixed timetable and latency is
 * measured from the scheduled time, so a stall is not hidden by coordinated omission), and the highest rate with a
 * fixed number of requests in flight. Every run is bounded in time; the harness stops by itself.
 *
 * <pre>java -cp benchmarks/target/benchmarks.jar dev.inmesh.benchmarks.load.MeshClientLoad [seconds] [rounds]</pre>
 */
public final class MeshClientLoad {
    private static final int RATE = 1000;
    private static final int IN_FLIGHT = 16;

    public static void main(String[] args) throws Exception {
        List<String> positional = new ArrayList<>();
        int upstreamPort = -1;
        int[] connections = {};
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--upstream" -> upstreamPort = Integer.parseInt(args[++i]);
                case "--connections" -> connections = Arrays.stream(args[++i].split(","))
                        .mapToInt(Integer::parseInt).toArray();
                default -> positional.add(args[i]);
            }
        }
        double seconds = positional.size() > 0 ? Double.parseDouble(positional.get(0)) : 10;
        int rounds = positional.size() > 1 ? Integer.parseInt(positional.get(1)) : 3;
        System.setProperty("vertx.logger-delegate-factory-class-name", "io.vertx.core.logging.JULLogDelegateFactory");
        java.util.logging.Logger.getLogger("").setLevel(java.util.logging.Level.WARNING);
        Vertx vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(2));
        int port;
        if (upstreamPort > 0) {
            port = upstreamPort; // an upstream outside this JVM (benchmarks/run passes its nginx)
        } else {
            Buffer body = Buffer.buffer("x".repeat(1024));
            HttpServer upstream = vertx.createHttpServer()
                    .requestHandler(req -> req.response().putHeader("content-type", "text/plain").end(body))
                    .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
            port = upstream.actualPort();
        }
        Path dir = Files.createTempDirectory("inmesh-load");
        Path config = dir.resolve("mesh.yaml");
        Files.writeString(config, config(port, connections));
        Mesh mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("load-v1").setApp("load").setVersion("v1")
                .setConfigFile(config.toString()).setAdminPort(-1));
        mesh.start().await(10, TimeUnit.SECONDS);
        WebClientOptions wo = new WebClientOptions().setKeepAlive(true);
        // The same pool size for both: the mesh's per-host pools and the plain client's.
        WebClient direct = plain(vertx, wo, IN_FLIGHT);
        WebClient meshed = mesh.webClient(wo);
        Supplier<Future<?>> directCall = () -> direct.get(port, "127.0.0.1", "/data").send();
        Supplier<Future<?>> meshCall = () -> meshed.get(8080, "upstream", "/data").send();
        // fixed-rate latency with N connections: a plain client with a pool of N, the mesh through a cluster whose
        // max_connections is N (the mesh sizes its per-host pool from the circuit breaker)
        List<Supplier<Future<?>>> directN = new ArrayList<>();
        List<Supplier<Future<?>>> meshN = new ArrayList<>();
        // the plain clients, closed at the end, which holds them until then: Vert.x closes a client that is no longer
        // referenced, its connections too, and the last measurement's requests could otherwise be cut off
        List<WebClient> plains = new ArrayList<>(List.of(direct));
        for (int n : connections) {
            WebClient pn = plain(vertx, wo, n);
            plains.add(pn);
            directN.add(() -> pn.get(port, "127.0.0.1", "/data").send());
            meshN.add(() -> meshed.get(8080, "upstream-c" + n, "/data").send());
        }

        // warm up every path that is measured (JIT, pools), each as it is measured: a closed loop, then the fixed-rate
        // timetable (requests sent from this thread rather than from a callback take other branches). The sized mesh
        // paths need their own warm-up: their clusters differ from the default one (another load balancing policy, no
        // retry policy, a host pool made on first use), so their first requests deoptimize the mesh's compiled code
        // and run interpreted while it recompiles; the sized plain clients run the very code the default one warmed.
        // Warmed only with the default paths, the first sized mesh path measured (4 connections) took that: its p99
        // was 2-4x the second (16), and swapping the order moved the excess to 16.
        // The fixed-rate requests are sent from an event loop's context, as a Vert.x service sends them (from its
        // request handlers), and, for comparison, from this thread outside Vert.x.
        Context loop = vertx.getOrCreateContext();
        double warm = Math.min(3, seconds);
        closedLoop(directCall, warm);
        closedLoop(meshCall, warm);
        double warmSized = Math.min(1, seconds);
        for (Context from : new Context[] {loop, null}) {
            fixedRate(List.of(directCall, meshCall), warmSized, from);
        }
        for (int i = 0; i < connections.length; i++) {
            closedLoop(directN.get(i), warmSized);
            closedLoop(meshN.get(i), warmSized);
            for (Context from : new Context[] {loop, null}) {
                fixedRate(List.of(directN.get(i), meshN.get(i)), warmSized, from);
            }
        }

        List<Result> d = new ArrayList<>();
        List<Result> m = new ArrayList<>();
        for (int r = 0; r < rounds; r++) {
            double[][] rates = highestRate(List.of(directCall, meshCall), seconds);
            double[] dr = rates[0];
            double[] mr = rates[1];
            long[][] lat = fixedRate(List.of(directCall, meshCall), seconds, loop);
            d.add(Result.of(dr, lat[0]));
            m.add(Result.of(mr, lat[1]));
            for (int i = 0; i < connections.length; i++) {
                for (Context from : new Context[] {loop, null}) {
                    long[][] ln = fixedRate(List.of(directN.get(i), meshN.get(i)), seconds, from);
                    String sender = from != null ? "event-loop" : "thread";
                    machine("plain", sender, r, connections[i], ln[0]);
                    machine("mesh", sender, r, connections[i], ln[1]);
                }
            }
        }
        Result dm = Result.median(d);
        Result mm = Result.median(m);
        for (int r = 0; r < rounds; r++) {
            System.out.printf(Locale.ROOT, "INJVM client=plain round=%d rate=%.0f cpu_ms_per_1k=%.3f"
                    + " busiest_loop=%.2f%n", r, d.get(r).rate, d.get(r).cpuMsPer1k, d.get(r).busiestLoop);
            System.out.printf(Locale.ROOT, "INJVM client=mesh round=%d rate=%.0f cpu_ms_per_1k=%.3f"
                    + " busiest_loop=%.2f%n", r, m.get(r).rate, m.get(r).cpuMsPer1k, m.get(r).busiestLoop);
        }
        System.out.printf(Locale.ROOT, "%nmedian of %d rounds, %.1f s each; fixed rate %d req/s; %d in flight for the"
                + " highest rate; 1 KB responses, HTTP/1.1 keep-alive, one JVM, %d cores%n", rounds, seconds, RATE,
                IN_FLIGHT, Runtime.getRuntime().availableProcessors());
        System.out.println("| client | highest rate (req/s) | p50 (us) | p90 (us) | p99 (us) | JVM CPU ms / 1000 req"
                + " | busiest event loop on CPU |");
        System.out.println("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        System.out.println(dm.row("plain WebClient"));
        System.out.println(mm.row("mesh WebClient"));
        System.out.printf(Locale.ROOT, "| mesh minus plain | %.2fx | +%d | +%d | +%d | +%.3f | |%n", mm.rate / dm.rate,
                mm.p50 - dm.p50, mm.p90 - dm.p90, mm.p99 - dm.p99, mm.cpuMsPer1k - dm.cpuMsPer1k);
        plains.forEach(WebClient::close);
        mesh.close().await(10, TimeUnit.SECONDS);
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    private static WebClient plain(Vertx vertx, WebClientOptions wo, int poolSize) {
        return WebClient.wrap(vertx.createHttpClient(wo, new io.vertx.core.http.PoolOptions()
                .setHttp1MaxSize(poolSize)), wo);
    }

    /** One fixed-rate run's latencies with a pool of {@code n}, printed as a line benchmarks/run reads. */
    private static void machine(String client, String sender, int round, int n, long[] lat) {
        long errors = Arrays.stream(lat).filter(v -> v < 0).count();
        System.out.printf(Locale.ROOT, "INJVM_FIXED client=%s sender=%s round=%d connections=%d rate=%d sent=%d"
                + " errors=%d p50_us=%d p90_us=%d p99_us=%d%n", client, sender, round, n, RATE, lat.length, errors,
                pct(lat, 50), pct(lat, 90), pct(lat, 99));
    }

    /**
     * One client's figures; {@code busiestLoop} is the share of the highest-rate run's time that its busiest event
     * loop thread spent on a CPU: near 1, that one thread is what bounds the rate (the closed loop's requests are
     * all sent from the event loop their connections are on, so one loop carries them).
     */
    record Result(double rate, long p50, long p90, long p99, double cpuMsPer1k, double busiestLoop) {
        String row(String name) {
            return String.format(Locale.ROOT, "| %s | %.0f | %d | %d | %d | %.3f | %.2f |", name, rate, p50, p90,
                    p99, cpuMsPer1k, busiestLoop);
        }

        static Result of(double[] rateAndCpu, long[] lat) {
            return new Result(rateAndCpu[0], pct(lat, 50), pct(lat, 90), pct(lat, 99), rateAndCpu[1],
                    rateAndCpu[2]);
        }

        static Result median(List<Result> rs) {
            double[] rate = rs.stream().mapToDouble(Result::rate).sorted().toArray();
            long[] p50 = rs.stream().mapToLong(Result::p50).sorted().toArray();
            long[] p90 = rs.stream().mapToLong(Result::p90).sorted().toArray();
            long[] p99 = rs.stream().mapToLong(Result::p99).sorted().toArray();
            double[] cpu = rs.stream().mapToDouble(Result::cpuMsPer1k).sorted().toArray();
            double[] loop = rs.stream().mapToDouble(Result::busiestLoop).sorted().toArray();
            int mid = rs.size() / 2;
            return new Result(rate[mid], p50[mid], p90[mid], p99[mid], cpu[mid], loop[mid]);
        }
    }

    /**
     * For each of {@code calls}: the highest rate ({@link #closedLoop}), the JVM's CPU time per 1 000 requests and the
     * share of the time its busiest event loop thread was on a CPU, over {@code seconds} each, in blocks of one second
     * taken in turns (0 1 1 0 0 1 ... for two), as the fixed-rate runs are, so that the machine's drift falls on both
     * clients alike.
     */
    static double[][] highestRate(List<Supplier<Future<?>>> calls, double seconds) throws InterruptedException {
        com.sun.management.OperatingSystemMXBean os = (com.sun.management.OperatingSystemMXBean)
                java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        int k = calls.size();
        int blocks = (int) Math.max(1, Math.round(seconds));
        double block = seconds / blocks;
        long[] done = new long[k];
        long[] nanos = new long[k];
        long[] cpu = new long[k];
        long[] busiest = new long[k];
        for (int b = 0; b < blocks; b++) {
            for (int x = 0; x < k; x++) {
                int j = b % 2 == 0 ? x : k - 1 - x;
                long[] count = new long[1];
                Map<Long, Long> loops0 = eventLoopCpu();
                long cpu0 = os.getProcessCpuTime();
                long t0 = System.nanoTime();
                closedLoop(calls.get(j), block, count);
                nanos[j] += System.nanoTime() - t0;
                cpu[j] += os.getProcessCpuTime() - cpu0;
                Map<Long, Long> loops1 = eventLoopCpu();
                busiest[j] += loops1.entrySet().stream().mapToLong(e -> e.getValue()
                        - loops0.getOrDefault(e.getKey(), 0L)).max().orElse(0);
                done[j] += count[0];
            }
        }
        double[][] out = new double[k][];
        for (int j = 0; j < k; j++) {
            out[j] = new double[] {done[j] / (nanos[j] / 1e9),
                    done[j] == 0 ? 0 : cpu[j] / 1e6 / (done[j] / 1000.0), busiest[j] / (double) nanos[j]};
        }
        return out;
    }

    /** The CPU time (ns) of each Vert.x event loop thread of this JVM, by thread id. */
    private static Map<Long, Long> eventLoopCpu() {
        java.lang.management.ThreadMXBean threads = java.lang.management.ManagementFactory.getThreadMXBean();
        Map<Long, Long> out = new java.util.HashMap<>();
        for (java.lang.management.ThreadInfo t : threads.getThreadInfo(threads.getAllThreadIds())) {
            if (t != null && t.getThreadName().startsWith("vert.x-eventloop-thread-")) {
                out.put(t.getThreadId(), threads.getThreadCpuTime(t.getThreadId()));
            }
        }
        return out;
    }

    /** Requests per second with {@link #IN_FLIGHT} requests always outstanding, for {@code seconds}. */
    static double closedLoop(Supplier<Future<?>> call, double seconds) throws InterruptedException {
        return closedLoop(call, seconds, new long[1]);
    }

    static double closedLoop(Supplier<Future<?>> call, double seconds, long[] count) throws InterruptedException {
        AtomicLong done = new AtomicLong();
        long start = System.nanoTime();
        long end = start + (long) (seconds * 1e9);
        CountDownLatch finished = new CountDownLatch(IN_FLIGHT);
        for (int i = 0; i < IN_FLIGHT; i++) {
            loop(call, done, end, finished);
        }
        finished.await((long) seconds + 30L, TimeUnit.SECONDS);
        count[0] = done.get();
        return done.get() / ((System.nanoTime() - start) / 1e9);
    }

    private static void loop(Supplier<Future<?>> call, AtomicLong done, long end, CountDownLatch finished) {
        call.get().onComplete(ar -> {
            done.incrementAndGet();
            if (System.nanoTime() < end) {
                loop(call, done, end, finished);
            } else {
                finished.countDown();
            }
        });
    }

    /**
     * Latencies in microseconds of requests sent by each of {@code calls} at {@link #RATE} per second, from their
     * scheduled times, {@code seconds} each: in blocks of half a second, one client at a time, the clients taking turns
     * (in the order 0 1 1 0 0 1 ... for two), so that whatever else the machine does over the run falls on each of them
     * alike. With a few seconds per client on this 2-core machine, the same client's p50 moved by up to 2x from one
     * run to the next, far more than the difference being measured. (Both clients on one timetable, half an interval
     * apart, interfered instead: whichever went first, the mesh's requests then waited 7-8 us longer than the plain
     * client's for the event loop to pick them up, before any code of the mesh ran.)
     * A request is sent on {@code from} (through {@code runOnContext}), or from this thread when it is null.
     */
    static long[][] fixedRate(List<Supplier<Future<?>>> calls, double seconds, Context from)
            throws InterruptedException {
        int k = calls.size();
        int perBlock = RATE / 2;
        int blocks = (int) Math.max(1, Math.round(RATE * seconds / perBlock));
        long[][] lat = new long[k][blocks * perBlock];
        for (long[] l : lat) {
            Arrays.fill(l, -1);
        }
        for (int b = 0; b < blocks; b++) {
            for (int x = 0; x < k; x++) {
                int j = b % 2 == 0 ? x : k - 1 - x;
                fixedRate(calls.get(j), lat[j], b * perBlock, perBlock, from);
            }
        }
        return lat;
    }

    /** Sends {@code n} requests at {@link #RATE} per second, their latencies into {@code lat} from {@code offset}. */
    private static void fixedRate(Supplier<Future<?>> call, long[] lat, int offset, int n, Context from)
            throws InterruptedException {
        CountDownLatch all = new CountDownLatch(n);
        long interval = TimeUnit.SECONDS.toNanos(1) / RATE;
        long start = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(10);
        for (int i = 0; i < n; i++) {
            long scheduled = start + i * interval;
            long wait;
            while ((wait = scheduled - System.nanoTime()) > 0) {
                // not Thread.sleep(0, nanos): before JDK 21 it sleeps a whole millisecond, which made every request
                // of this 1 000/s timetable late (~500 us p50 for both clients, counted as latency)
                if (wait > 60_000) {
                    java.util.concurrent.locks.LockSupport.parkNanos(wait - 60_000);
                } else {
                    Thread.onSpinWait();
                }
            }
            int idx = offset + i;
            Runnable send = () -> call.get().onComplete(ar -> {
                boolean ok = ar.succeeded() && (!(ar.result() instanceof io.vertx.ext.web.client.HttpResponse<?> r)
                        || r.statusCode() == 200);
                // a failed request counts as an error (negative), not as a latency
                lat[idx] = ok ? (System.nanoTime() - scheduled) / 1000 : -1;
                all.countDown();
            });
            if (from != null) {
                from.runOnContext(v -> send.run());
            } else {
                send.run();
            }
        }
        all.await(30, TimeUnit.SECONDS);
    }

    static long pct(long[] values, int p) {
        long[] s = Arrays.stream(values).filter(v -> v >= 0).sorted().toArray();
        if (s.length == 0) {
            return -1;
        }
        return s[Math.min(s.length - 1, (int) Math.ceil(p / 100.0 * s.length) - 1)];
    }

    public static String config(int port) {
        return config(port, new int[0]);
    }

    /** The mesh's configuration; for each n in {@code sized}, a host "upstream-cN" whose cluster pools n connections. */
    public static String config(int port, int[] sized) {
        StringBuilder vhosts = new StringBuilder();
        StringBuilder clusters = new StringBuilder();
        for (int n : sized) {
            vhosts.append("""
                                - name: upstream-c%1$d
                                  domains: ["upstream-c%1$d", "upstream-c%1$d:8080"]
                                  routes:
                                  - match: {prefix: /}
                                    route: {cluster: c%1$d, timeout: 0s}
                    """.formatted(n));
            clusters.append("""
                      - name: c%1$d
                        type: STATIC
                        connect_timeout: 1s
                        circuit_breakers: {thresholds: [{max_connections: %1$d, max_pending_requests: 4294967295, max_requests: 4294967295, max_retries: 4294967295}]}
                        load_assignment:
                          cluster_name: c%1$d
                          endpoints:
                          - lb_endpoints:
                            - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %2$d}}}
                    """.formatted(n, port));
        }
        return base(port).replace("\n  clusters:\n", "\n" + vhosts + "  clusters:\n") + clusters;
    }

    private static String base(int port) {
        return """
                static_resources:
                  listeners:
                  - name: 0.0.0.0_8080
                    address: {socket_address: {address: 0.0.0.0, port_value: 8080}}
                    bind_to_port: false
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.http_connection_manager
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                          stat_prefix: outbound_0.0.0.0_8080
                          http_filters:
                          - name: envoy.filters.http.router
                            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                          route_config:
                            name: "8080"
                            virtual_hosts:
                            - name: upstream
                              domains: ["upstream", "upstream:8080"]
                              routes:
                              - match: {prefix: /}
                                route:
                                  cluster: outbound|8080||upstream.default.svc.cluster.local
                                  timeout: 0s
                                  retry_policy: {retry_on: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes", num_retries: 2, retriable_status_codes: [503]}
                  clusters:
                  - name: outbound|8080||upstream.default.svc.cluster.local
                    type: STATIC
                    connect_timeout: 1s
                    lb_policy: LEAST_REQUEST
                    circuit_breakers: {thresholds: [{max_connections: 4294967295, max_pending_requests: 4294967295, max_requests: 4294967295, max_retries: 4294967295}]}
                    load_assignment:
                      cluster_name: outbound|8080||upstream.default.svc.cluster.local
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                """.formatted(port);
    }
}
