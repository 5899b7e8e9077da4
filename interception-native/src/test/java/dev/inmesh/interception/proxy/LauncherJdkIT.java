package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code bin/inmesh proxy} on the JDK that runs the tests (CI runs them on JDK 17 and on JDK 25): what the proxy
 * prints is its own, without the JDK's warnings of the libraries' native access (JNA, Netty's epoll) and of their
 * use of {@code sun.misc.Unsafe} (protobuf, Netty), which JDK 22 and later print unless the JVM is told to allow
 * them. Runs after {@code package} (failsafe); needs no root.
 */
@Timeout(90)
class LauncherJdkIT {
    private static final Path SCRIPT = Path.of("..", "bin", "inmesh").toAbsolutePath().normalize();

    @TempDir
    Path dir;
    private Process proxy;

    @AfterEach
    void close() throws Exception {
        if (proxy != null) {
            proxy.destroy();
            proxy.waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void theProxyPrintsNoWarningOfTheJdk() throws Exception {
        int port = LoopbackProxy.freePort();
        ProcessBuilder b = launcher("proxy", "-c", config(port, "").toString(), "--no-admin").redirectErrorStream(true);
        proxy = b.start();
        List<String> lines = new ArrayList<>();
        boolean listening = false;
        try (BufferedReader out = new BufferedReader(new InputStreamReader(proxy.getInputStream(),
                StandardCharsets.UTF_8))) {
            // the proxy prints its listening line once its listeners are bound (the @Timeout bounds a hung start)
            for (String line; !listening && (line = out.readLine()) != null; ) {
                lines.add(line);
                listening = line.startsWith("inmesh proxy: listening on");
            }
        }
        String output = String.join("\n", lines);
        assertTrue(listening, "the proxy did not start on " + System.getProperty("java.version") + ":\n" + output);
        assertTrue(lines.stream().noneMatch(LauncherJdkIT::jdkWarning),
                "JDK " + System.getProperty("java.version") + " warned:\n" + output);
    }

    @Test
    void aSigtermStopsTheProxyWithStatusZeroItsLastRequestsLogged() throws Exception {
        int port = LoopbackProxy.freePort();
        Path log = dir.resolve("access.log");
        Path out = start(launcher("proxy", "-c", config(port, "").toString(), "--no-admin", "--access-log",
                log.toString()));
        // one request (no route for it: 404 NR), logged as the proxy stops
        java.net.http.HttpResponse<String> r = java.net.http.HttpClient.newHttpClient().send(
                java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + port + "/last"))
                        .build(), java.net.http.HttpResponse.BodyHandlers.ofString());
        assertEquals(404, r.statusCode());
        proxy.destroy(); // SIGTERM, as Kubernetes stops a container
        assertTrue(proxy.waitFor(30, TimeUnit.SECONDS), "stopped");
        assertEquals(0, proxy.exitValue(), "as Envoy and Istio's agent exit after SIGTERM:\n" + Files.readString(out));
        assertTrue(Files.readString(log).contains("\"GET /last HTTP/1.1\" 404 NR"), Files.readString(log));
    }

    @Test
    void whatTheProxyLogsWhileItDrainsAfterSigtermIsPrintedAsEnvoyLogsThroughItsDrain() throws Exception {
        int port = LoopbackProxy.freePort();
        ProcessBuilder b = launcher("proxy", "-c", config(port, "").toString(), "--no-admin");
        // it stops once no connection is open, telling each second how many still are
        b.environment().put("EXIT_ON_ZERO_ACTIVE_CONNECTIONS", "true");
        b.environment().put("MINIMUM_DRAIN_DURATION", "0s");
        Path out = start(b);
        try (java.net.Socket held = new java.net.Socket(java.net.InetAddress.getLoopbackAddress(), port)) {
            // answered (503, no upstream): the proxy has the connection; then a request that never ends keeps it open
            held.getOutputStream().write("GET / HTTP/1.1\r\nhost: svc\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            assertTrue(new String(held.getInputStream().readNBytes(12), StandardCharsets.US_ASCII)
                    .startsWith("HTTP/1.1 "));
            held.getOutputStream().write("GET / HTTP/1.1\r\n".getBytes(StandardCharsets.US_ASCII));
            proxy.destroy(); // SIGTERM: the drain starts, the JDK's own shutdown hooks with it
            Thread.sleep(1_500);
        }
        assertTrue(proxy.waitFor(30, TimeUnit.SECONDS), "stopped once the connection closed");
        assertTrue(Files.readString(out).contains("draining: 1 connections still open"), Files.readString(out));
    }

    @Test
    void aQuitDuringTheDrainOfASigtermStopsTheProxyAtOnceWithStatusZero() throws Exception {
        int port = LoopbackProxy.freePort();
        int admin = LoopbackProxy.freePort();
        ProcessBuilder b = launcher("proxy", "-c", config(port, "admin:\n  address: {socket_address: {address: "
                + "127.0.0.1, port_value: " + admin + "}}\n").toString(), "--status-port=0", "--health-port=0",
                "--prometheus-port=0");
        b.environment().put("TERMINATION_DRAIN_DURATION_SECONDS", "60");
        Path out = start(b);
        proxy.destroy(); // SIGTERM: a drain of 60 s starts
        assertFalse(proxy.waitFor(500, TimeUnit.MILLISECONDS), "draining");
        java.net.http.HttpResponse<String> r = java.net.http.HttpClient.newHttpClient().send(
                java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + admin
                        + "/quitquitquit")).POST(java.net.http.HttpRequest.BodyPublishers.noBody()).build(),
                java.net.http.HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode());
        assertTrue(proxy.waitFor(20, TimeUnit.SECONDS), "the quit ended the drain");
        assertEquals(0, proxy.exitValue(), "as Envoy and Istio's agent after a quit:\n" + Files.readString(out));
    }

    /**
     * A configuration of one HTTP listener on 127.0.0.1:{@code port}, its cluster on a port nobody listens on, after
     * {@code bootstrap} (top-level YAML, such as an {@code admin}).
     */
    private Path config(int port, String bootstrap) throws Exception {
        return Files.writeString(dir.resolve("proxy.yaml"), bootstrap + "static_resources:\n  listeners:\n"
                + Http1RequestsTest.listener("l", port, "") + Http1RequestsTest.clusterC(LoopbackProxy.freePort()));
    }

    /**
     * Starts {@code b}, its output and errors to a file it returns, and waits for its listening line there (the
     * {@code @Timeout} bounds a hung start).
     */
    private Path start(ProcessBuilder b) throws Exception {
        Path out = dir.resolve("out.txt");
        proxy = b.redirectErrorStream(true).redirectOutput(out.toFile()).start();
        while (!Files.readString(out).contains("inmesh proxy: listening on")) {
            assertTrue(proxy.isAlive(), Files.readString(out));
            Thread.sleep(50);
        }
        return out;
    }

    /** {@code bin/inmesh ARGS} on the tests' JDK and the built jar, no drain at SIGTERM. */
    private static ProcessBuilder launcher(String... args) throws java.io.IOException {
        List<String> command = new ArrayList<>(List.of("bash", SCRIPT.toString()));
        command.addAll(List.of(args));
        ProcessBuilder b = new ProcessBuilder(command);
        b.environment().keySet().removeIf(k -> k.startsWith("INMESH_") || k.equals("JDK_JAVA_OPTIONS"));
        b.environment().put("JAVA_HOME", System.getProperty("java.home"));
        b.environment().put("INMESH_NO_BUILD", "1");
        b.environment().put("INMESH_JAR", NetnsProcesses.standaloneJar().toAbsolutePath().toString());
        b.environment().put("TERMINATION_DRAIN_DURATION_SECONDS", "0");
        return b;
    }

    /** A line of the JDK's warnings of native access or of sun.misc.Unsafe (not one of the proxy's own logs). */
    private static boolean jdkWarning(String line) {
        return line.startsWith("WARNING: ") && (line.contains("sun.misc.Unsafe") || line.contains("estricted method")
                || line.contains("native-access") || line.contains("native access")
                || line.contains("maintainers of class"));
    }
}
