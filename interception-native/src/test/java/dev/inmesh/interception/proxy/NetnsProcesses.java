package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.interception.testing.NetnsSupport;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The processes a netns test of the standalone proxy starts inside its namespaces, each writing NAME.out and
 * NAME.err in the test's directory, stopped together by {@link #close()}; and the checks those tests share.
 */
final class NetnsProcesses implements AutoCloseable {
    private final Path dir;
    private final List<Process> processes = new ArrayList<>();

    NetnsProcesses(Path dir) {
        this.dir = dir;
    }

    /** Starts {@code command} inside {@code ns} with {@code env} added to this JVM's environment. */
    Process start(NetnsSupport ns, String name, Map<String, String> env, String... command) throws IOException {
        List<String> argv = new ArrayList<>(List.of("ip", "netns", "exec", ns.name()));
        argv.addAll(List.of(command));
        ProcessBuilder b = new ProcessBuilder(argv)
                .redirectOutput(dir.resolve(name + ".out").toFile())
                .redirectError(dir.resolve(name + ".err").toFile());
        // the tests stop their proxies at once, not after Istio's 5 s termination drain
        b.environment().put("TERMINATION_DRAIN_DURATION_SECONDS", "0");
        b.environment().putAll(env);
        Process p = b.start();
        p.getOutputStream().close();
        processes.add(p);
        return p;
    }

    /** Waits up to {@code seconds} for {@code proxy} to print that it listens on its stderr, {@code err}. */
    static void awaitProxy(Process proxy, Path err, int seconds) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (System.nanoTime() < deadline) {
            if (Files.exists(err) && Files.readString(err).contains("inmesh proxy: listening on")) {
                return;
            }
            if (!proxy.isAlive()) {
                break;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("the proxy did not start: " + (Files.exists(err) ? Files.readString(err) : ""));
    }

    /** Stops every process started, forcibly after five seconds each. */
    @Override
    public void close() throws InterruptedException {
        for (Process p : processes) {
            p.destroy();
        }
        for (Process p : processes) {
            if (!p.waitFor(5, TimeUnit.SECONDS)) {
                p.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
            }
        }
        processes.clear();
    }

    /**
     * A new directory anyone can read, holding the test resources {@code resources} of /proxy/ and the packaged
     * proxy as inmesh.jar: UID 1337 must read the jar, so it is copied out of the build tree.
     */
    static Path workDir(String prefix, String... resources) throws IOException {
        Path dir = Files.createTempDirectory(prefix, PosixFilePermissions.asFileAttribute(
                PosixFilePermissions.fromString("rwxr-xr-x")));
        for (String f : resources) {
            try (InputStream in = NetnsProcesses.class.getResourceAsStream("/proxy/" + f)) {
                Files.copy(in, dir.resolve(f));
            }
        }
        Files.copy(standaloneJar(), dir.resolve("inmesh.jar"));
        Files.setPosixFilePermissions(dir.resolve("inmesh.jar"), PosixFilePermissions.fromString("rw-r--r--"));
        return dir;
    }

    /** Deletes the {@code namespaces} not null, then {@code dir} with all in it unless it is null. */
    static void remove(Path dir, NetnsSupport... namespaces) throws IOException {
        for (NetnsSupport ns : namespaces) {
            if (ns != null) {
                ns.close();
            }
        }
        if (dir != null) {
            try (Stream<Path> files = Files.walk(dir)) {
                files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    /** Fails unless something accepts connections on each of {@code ports} of {@code ip} in {@code ns} within 15 s. */
    static void awaitListening(NetnsSupport ns, String ip, int... ports) throws Exception {
        for (int port : ports) {
            boolean up = ns.inside(() -> {
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
                while (System.nanoTime() < deadline) {
                    try (Socket s = new Socket()) {
                        s.connect(new InetSocketAddress(ip, port), 500);
                        return true;
                    } catch (IOException e) {
                        Thread.sleep(100);
                    }
                }
                return false;
            });
            assertTrue(up, ns.name() + ": nothing listens on " + ip + ":" + port);
        }
    }

    /** Packets (each the first of a connection) the nat chain {@code chain} of {@code ns} sent on. */
    static long redirectedConnections(NetnsSupport ns, String chain) {
        String listing = ns.run("iptables", "-t", "nat", "-L", chain, "-n", "-v", "-x").stdout();
        Matcher m = Pattern.compile("(?m)^\\s*(\\d+)\\s+\\d+\\s+REDIRECT").matcher(listing);
        long total = 0;
        while (m.find()) {
            total += Long.parseLong(m.group(1));
        }
        return total;
    }

    /** The java launcher of this JVM. */
    static String javaBin() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    /** The packaged proxy, target/*-standalone.jar. */
    static Path standaloneJar() throws IOException {
        try (Stream<Path> s = Files.list(Path.of("target"))) {
            return s.filter(p -> p.getFileName().toString().endsWith("-standalone.jar")).findFirst()
                    .orElseThrow(() -> new IllegalStateException("no target/*-standalone.jar: run mvn package"));
        }
    }
}
