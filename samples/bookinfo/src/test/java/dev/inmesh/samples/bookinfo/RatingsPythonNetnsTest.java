package dev.inmesh.samples.bookinfo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.interception.testing.NetnsSupport;
import dev.inmesh.interception.testing.NetnsSupport.Output;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.client.HttpResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The non-Java ratings (samples/bookinfo/ratings-python/ratings.py, Python's standard library only) in a network
 * namespace "pod" behind the standalone proxy (UID 1337) and the capture rules of {@code inmesh iptables}, reached by
 * a Java mesh client in the host namespace through the pod's 15006 capture, as in {@code intercept-demo}. Skips
 * itself without root, {@code ip netns}, iptables, Python, or the standalone jar of interception-native (built by
 * {@code mvn -pl interception-native -am package}).
 *
 * <pre>
 *   host: Java mesh (ratings' endpoints at 10.99.1.2:9080)  10.99.1.1 ──veth── 10.99.1.2  pod: proxy :15006, ratings.py :9080
 * </pre>
 */
@Tag("netns")
class RatingsPythonNetnsTest {
    private static final String PYTHON = "/usr/bin/python3";
    private static final String HOST_IP = "10.99.1.1";
    private static final String POD_IP = "10.99.1.2";

    private final List<Process> processes = new ArrayList<>();
    private String ns;
    private String vethHost;
    private Path dir;
    private Vertx vertx;
    private Mesh mesh;

    @BeforeEach
    void createPod() throws Exception {
        assumeNetns();
        Path jar = standaloneJar();
        assumeTrue(jar != null, "no interception-native/target/*-standalone.jar (mvn -pl interception-native -am "
                + "package): skipped");
        assertFalse(run("ip", "-4", "route", "show", "10.99.1.0/24").stdout().contains("10.99.1"),
                "the host already routes 10.99.1.0/24");
        dir = Files.createTempDirectory("bookinfo-netns", PosixFilePermissions.asFileAttribute(
                PosixFilePermissions.fromString("rwxr-xr-x")));
        Path module = Path.of("").toAbsolutePath();
        Files.copy(module.resolve("ratings-python/ratings.py"), dir.resolve("ratings.py"));
        Files.copy(module.resolve("ratings-python/pod-bootstrap.yaml"), dir.resolve("bootstrap.yaml"));
        // UID 1337 must read the jar: a copy in a directory anyone can read
        Files.copy(jar, dir.resolve("inmesh.jar"));
        for (String f : List.of("ratings.py", "bootstrap.yaml", "inmesh.jar")) {
            Files.setPosixFilePermissions(dir.resolve(f), PosixFilePermissions.fromString("rw-r--r--"));
        }
        long id = ProcessHandle.current().pid() % 100000;
        ns = "inmbk-" + id;
        vethHost = "vbk" + id + "h";
        String vethPod = "vbk" + id + "p";
        run("ip", "netns", "delete", ns);
        checked("ip", "netns", "add", ns);
        checked("ip", "-n", ns, "link", "set", "lo", "up");
        checked("ip", "link", "add", vethHost, "type", "veth", "peer", "name", vethPod, "netns", ns);
        checked("ip", "addr", "add", HOST_IP + "/24", "dev", vethHost);
        checked("ip", "link", "set", vethHost, "up");
        checked("ip", "-n", ns, "addr", "add", POD_IP + "/24", "dev", vethPod);
        checked("ip", "-n", ns, "link", "set", vethPod, "up");
        checked("ip", "-n", ns, "route", "add", "default", "via", HOST_IP);
    }

    @AfterEach
    void removePod() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        if (vertx != null) {
            vertx.close().await(10, TimeUnit.SECONDS);
        }
        for (Process p : processes) {
            p.destroy();
        }
        for (Process p : processes) {
            if (!p.waitFor(5, TimeUnit.SECONDS)) {
                p.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
            }
        }
        if (ns != null) {
            run("ip", "netns", "delete", ns); // takes the pod's veth end, and with it the host's
            run("ip", "link", "delete", vethHost);
        }
        if (dir != null) {
            try (Stream<Path> files = Files.walk(dir)) {
                files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void aJavaMeshClientGetsRatingsFromThePythonAppThroughThePodsCaptureAndTheAppSees127006() throws Exception {
        start("ratings", "ip", "netns", "exec", ns, "setpriv", "--reuid", "65534", "--regid", "65534",
                "--clear-groups", PYTHON, "-u", dir.resolve("ratings.py").toString(), "0.0.0.0", "9080");
        checked(javaBin(), "-jar", dir.resolve("inmesh.jar").toString(), "iptables", "-p", "15001", "-z", "15006",
                "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020",
                "--network-namespace", ns);
        Process proxy = start("proxy", "ip", "netns", "exec", ns, javaBin(), "-Xmx256m", "-jar",
                dir.resolve("inmesh.jar").toString(), "proxy", "-c", dir.resolve("bootstrap.yaml").toString(),
                "--uid", "1337", "--gid", "1337", "--workload-name", "ratings-v1", "--app", "ratings",
                "--app-version", "v1", "--event-loops", "2");
        awaitLine("proxy.err", "inmesh proxy: listening on", proxy);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while (!run("ip", "netns", "exec", ns, "curl", "-s", "-o", "/dev/null", "-m", "1",
                "http://127.0.0.1:9080/health").ok() && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }

        // the Java side: bookinfo's mesh configuration with ratings' endpoints at the pod's address
        Path meshDir = Files.createDirectory(dir.resolve("mesh"));
        try (Stream<Path> files = Files.list(Bookinfo.defaultMeshDir())) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Files.writeString(meshDir.resolve(f.getFileName()), Files.readString(f)
                        .replace("\"127.0.0.15\"", "\"" + POD_IP + "\""));
            }
        }
        vertx = Vertx.vertx();
        mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("reviews-v2").setApp("reviews").setVersion("v2")
                .setNamespace("default").setPodName("reviews-v2-host").setPodIp(HOST_IP)
                .setConfigFile(meshDir.toString()).setAdminPort(-1));
        mesh.start().await(30, TimeUnit.SECONDS);
        // warm up: the proxy's first requests (a fresh JVM, on a busy machine) can take longer than the ratings
        // route's 1 s timeout; /health through the same route and capture until it answers, for at most 30 s
        deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        int health = 0;
        while (health != 200 && System.nanoTime() < deadline) {
            health = mesh.webClient().getAbs("http://ratings:9080/health").send().await(10, TimeUnit.SECONDS)
                    .statusCode();
        }
        assertEquals(200, health, "ratings' /health through the mesh and the pod's capture");
        for (int i = 0; i < 3; i++) {
            HttpResponse<Buffer> r = mesh.webClient().getAbs("http://ratings:9080/ratings/" + i).send()
                    .await(10, TimeUnit.SECONDS);
            assertEquals(200, r.statusCode(), r.bodyAsString());
            assertEquals(new JsonObject().put("id", i).put("ratings", new JsonObject().put("Reviewer1", 5)
                    .put("Reviewer2", 4)), r.bodyAsJsonObject());
        }

        List<String> log = awaitLines("ratings.out", "GET /ratings/", 3);
        System.out.println("the Python ratings' log:\n  " + String.join("\n  ", log));
        assertEquals(List.of("GET /ratings/0 from 127.0.0.6 -> 200", "GET /ratings/1 from 127.0.0.6 -> 200",
                "GET /ratings/2 from 127.0.0.6 -> 200"), log.stream().filter(l -> l.startsWith("GET /ratings/"))
                .toList());
        // the pod's proxy names the service of its inbound cluster in Istio's metrics, as the client side does
        String scrape = checked("ip", "netns", "exec", ns, "curl", "-s", "-m", "5",
                "http://127.0.0.1:15000/stats/prometheus").stdout();
        Matcher series = Pattern.compile("(?m)^istio_requests_total\\{([^}]*reporter=\"destination\"[^}]*)}")
                .matcher(scrape);
        assertTrue(series.find(), scrape);
        assertTrue(series.group(1).contains("destination_service=\"ratings.default.svc.cluster.local\""),
                series.group(1));
        for (String label : List.of("destination_service_name=\"ratings\"", "destination_workload=\"ratings-v1\"",
                "destination_app=\"ratings\"", "destination_version=\"v1\"", "source_workload=\"reviews-v2\"")) {
            assertTrue(series.group(1).contains(label), label + " in " + series.group(1));
        }
        // through the inbound capture: the kernel redirected the mesh's connections to 15006
        String chain = checked("ip", "netns", "exec", ns, "iptables", "-t", "nat", "-L", "ISTIO_IN_REDIRECT", "-n",
                "-v", "-x").stdout();
        System.out.println("the pod's ISTIO_IN_REDIRECT:\n" + chain);
        Matcher m = Pattern.compile("(?m)^\\s*(\\d+)\\s+\\d+\\s+REDIRECT.*15006").matcher(chain);
        assertTrue(m.find() && Long.parseLong(m.group(1)) >= 1, chain);

        // a connection to 15006 itself goes to the blackhole chain, once: passed through, it would come back to
        // 15006 from 127.0.0.6, again and again
        try (java.net.Socket direct = new java.net.Socket()) {
            direct.connect(new java.net.InetSocketAddress(POD_IP, 15006), 5000);
            direct.setSoTimeout(5000);
            direct.getOutputStream().write("hi\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            assertEquals(-1, direct.getInputStream().read(), "closed without an answer");
        }
        String stats = "";
        deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!stats.contains("tcp.BlackHoleCluster.downstream_cx_total: 1") && System.nanoTime() < deadline) {
            Thread.sleep(100);
            stats = checked("ip", "netns", "exec", ns, "curl", "-s", "-m", "5",
                    "http://127.0.0.1:15000/stats?filter=%5Etcp%5C.").stdout();
        }
        assertTrue(stats.contains("tcp.BlackHoleCluster.downstream_cx_total: 1\n"), stats);
        assertTrue(!stats.contains("tcp.InboundPassthroughClusterIpv4.downstream_cx_total: ")
                || stats.contains("tcp.InboundPassthroughClusterIpv4.downstream_cx_total: 0\n"), stats);
    }

    // ---- helpers: the skip, processes, files ----

    /** Skips the test unless we are root and ip netns, iptables, Python, setpriv and curl are there. */
    private static void assumeNetns() {
        NetnsSupport.assumeAvailable();
        assumeTrue(Files.isExecutable(Path.of(PYTHON)), "needs " + PYTHON + ": skipped");
        NetnsSupport.assumeCommands("setpriv", "curl");
    }

    private static Path standaloneJar() throws IOException {
        Path target = Path.of("..", "..", "interception-native", "target").toAbsolutePath().normalize();
        if (!Files.isDirectory(target)) {
            return null;
        }
        try (Stream<Path> s = Files.list(target)) {
            return s.filter(p -> p.getFileName().toString().endsWith("-standalone.jar")).findFirst().orElse(null);
        }
    }

    private static String javaBin() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    private Process start(String name, String... command) throws IOException {
        ProcessBuilder b = new ProcessBuilder(command)
                .redirectOutput(dir.resolve(name + ".out").toFile())
                .redirectError(dir.resolve(name + ".err").toFile());
        // the tests stop their proxies at once, not after Istio's 5 s termination drain
        b.environment().put("TERMINATION_DRAIN_DURATION_SECONDS", "0");
        Process p = b.start();
        p.getOutputStream().close();
        processes.add(p);
        return p;
    }

    private void awaitLine(String file, String text, Process process) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        Path p = dir.resolve(file);
        while (System.nanoTime() < deadline) {
            if (Files.exists(p) && Files.readString(p).contains(text)) {
                return;
            }
            if (!process.isAlive()) {
                break;
            }
            Thread.sleep(100);
        }
        throw new AssertionError(file + ": no \"" + text + "\": " + (Files.exists(p) ? Files.readString(p) : ""));
    }

    private List<String> awaitLines(String file, String prefix, int count) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        Path p = dir.resolve(file);
        List<String> lines = List.of();
        while (System.nanoTime() < deadline) {
            lines = Files.exists(p) ? Files.readAllLines(p, StandardCharsets.UTF_8) : List.of();
            if (lines.stream().filter(l -> l.startsWith(prefix)).count() >= count) {
                break;
            }
            Thread.sleep(50);
        }
        return lines;
    }

    private static Output checked(String... command) {
        return NetnsSupport.checked(List.of(command));
    }

    private static Output run(String... command) {
        return NetnsSupport.exec(List.of(command));
    }
}
