package dev.inmesh.interception.testing;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.sun.jna.Library;
import com.sun.jna.Native;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A network namespace of one test: created with a unique name and its loopback up, removed by {@link #close()}
 * (call it from {@code @AfterEach}, or use try-with-resources). {@link #assumeAvailable()} skips the test where
 * namespaces cannot be made.
 */
public final class NetnsSupport implements AutoCloseable {
    private static final AtomicInteger COUNTER = new AtomicInteger();
    private static final long COMMAND_TIMEOUT_SECONDS = 30;

    private final String name;
    private boolean closed;

    private NetnsSupport(String name) {
        this.name = name;
    }

    /** Skips the calling test unless we are root and both {@code ip netns} and iptables work. */
    public static void assumeAvailable() {
        String why = unavailableReason();
        assumeTrue(why == null, () -> "needs root and ip netns: skipped (" + why + ")");
    }

    /** Skips the calling test unless each command runs ({@code COMMAND --version}). */
    public static void assumeCommands(String... commands) {
        for (String command : commands) {
            assumeTrue(exec(List.of(command, "--version")).ok(), () -> "needs " + command + ": skipped (missing)");
        }
    }

    private static String unavailableReason() {
        Output id = exec(List.of("id", "-u"));
        if (!id.ok() || !id.stdout().strip().equals("0")) {
            return "not root";
        }
        if (!exec(List.of("ip", "netns", "list")).ok()) {
            return "ip netns is missing";
        }
        if (!exec(List.of("iptables-save", "--version")).ok() && !exec(List.of("iptables", "--version")).ok()) {
            return "iptables is missing";
        }
        return null;
    }

    /** Creates a fresh namespace with a unique name starting with {@code prefix}, loopback up. */
    public static NetnsSupport create(String prefix) {
        String name = prefix + "-" + ProcessHandle.current().pid() + "-" + COUNTER.incrementAndGet();
        exec(List.of("ip", "netns", "delete", name));
        checked(List.of("ip", "netns", "add", name));
        NetnsSupport ns = new NetnsSupport(name);
        try {
            ns.exec("ip", "link", "set", "lo", "up");
        } catch (RuntimeException e) {
            ns.close();
            throw e;
        }
        return ns;
    }

    /** The name as {@code ip netns} knows it. */
    public String name() {
        return name;
    }

    /** Runs a command inside the namespace; fails the test when it fails. Returns its stdout. */
    public String exec(String... command) {
        return checked(inside(command)).stdout();
    }

    /** Runs a command inside the namespace and returns what it did, failed or not. */
    public Output run(String... command) {
        return exec(inside(command));
    }

    /** {@code iptables-save} inside the namespace, without its comment lines (which carry timestamps). */
    public String iptablesSave() {
        return withoutComments(exec("iptables-save"));
    }

    /** {@code ip6tables-save} inside the namespace, without its comment lines. */
    public String ip6tablesSave() {
        return withoutComments(exec("ip6tables-save"));
    }

    /**
     * Connects this namespace to another with a veth pair and addresses on both ends (like {@code 10.77.0.1/24}).
     * The pair goes away with either namespace.
     */
    public void connect(NetnsSupport other, String addressHere, String addressThere) {
        int n = COUNTER.incrementAndGet();
        String here = "vh" + (ProcessHandle.current().pid() % 100000) + "x" + n;
        String there = "vt" + (ProcessHandle.current().pid() % 100000) + "x" + n;
        checked(List.of("ip", "link", "add", here, "netns", name, "type", "veth", "peer", "name", there,
                "netns", other.name));
        exec("ip", "addr", "add", addressHere, "dev", here);
        exec("ip", "link", "set", here, "up");
        other.exec("ip", "addr", "add", addressThere, "dev", there);
        other.exec("ip", "link", "set", there, "up");
    }

    /**
     * Runs a task on a new thread that has entered this namespace (only that thread does), so sockets the task opens
     * live in the namespace. Waits at most 30 seconds.
     */
    public <T> T inside(Callable<T> task) throws Exception {
        FutureTask<T> future = new FutureTask<>(() -> {
            enterOnThisThread();
            return task.call();
        });
        Thread thread = new Thread(future, "netns-" + name);
        thread.setDaemon(true);
        thread.start();
        try {
            return future.get(COMMAND_TIMEOUT_SECONDS, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof Exception cause) {
                throw cause;
            }
            throw e;
        }
    }

    private void enterOnThisThread() {
        String path = "/var/run/netns/" + name;
        int fd = SetNs.LIBC.open(path, 0x80000 /* O_RDONLY | O_CLOEXEC */);
        if (fd < 0) {
            throw new IllegalStateException("cannot open " + path);
        }
        try {
            if (SetNs.LIBC.setns(fd, 0x40000000 /* CLONE_NEWNET */) != 0) {
                throw new IllegalStateException("cannot enter " + path + " (errno " + Native.getLastError() + ")");
            }
        } finally {
            SetNs.LIBC.close(fd);
        }
    }

    /** libc's setns, for {@link #inside}. */
    interface SetNs extends Library {
        SetNs LIBC = Native.load("c", SetNs.class);

        int open(String path, int flags);

        int setns(int fd, int nstype);

        int close(int fd);
    }

    /** Deletes the namespace (and the veth ends inside it). Safe to call twice. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        exec(List.of("ip", "netns", "delete", name));
    }

    private List<String> inside(String... command) {
        List<String> argv = new ArrayList<>(List.of("ip", "netns", "exec", name));
        argv.addAll(List.of(command));
        return argv;
    }

    private static String withoutComments(String save) {
        StringBuilder sb = new StringBuilder();
        save.lines().filter(l -> !l.startsWith("#")).forEach(l -> sb.append(l).append('\n'));
        return sb.toString();
    }

    /** What a command did. */
    public record Output(int exitCode, String stdout, String stderr) {
        public boolean ok() {
            return exitCode == 0;
        }
    }

    /** Runs a command in the caller's namespace; fails the test when it fails. */
    public static Output checked(List<String> command) {
        Output out = exec(command);
        if (!out.ok()) {
            throw new IllegalStateException(String.join(" ", command) + " exited " + out.exitCode() + ": "
                    + out.stderr().strip() + " " + out.stdout().strip());
        }
        return out;
    }

    /** Runs a command in the caller's namespace and returns what it did, failed or not (within 30 s). */
    public static Output exec(List<String> command) {
        try {
            java.nio.file.Path errFile = java.nio.file.Files.createTempFile("netns", ".err");
            try {
                Process p = new ProcessBuilder(command).redirectError(errFile.toFile()).start();
                p.getOutputStream().close();
                byte[] out = p.getInputStream().readAllBytes();
                if (!p.waitFor(COMMAND_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                    return new Output(124, "", String.join(" ", command) + ": timed out");
                }
                return new Output(p.exitValue(), new String(out, StandardCharsets.UTF_8),
                        java.nio.file.Files.readString(errFile));
            } finally {
                java.nio.file.Files.deleteIfExists(errFile);
            }
        } catch (IOException e) {
            return new Output(127, "", e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Output(130, "", "interrupted");
        }
    }
}
