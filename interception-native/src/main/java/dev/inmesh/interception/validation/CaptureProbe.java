package dev.inmesh.interception.validation;

import com.sun.jna.Memory;
import com.sun.jna.Native;
import dev.inmesh.interception.origdst.OriginalDestination;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Checks that the capture rules work: a connection from the proxy's user to {@code 127.0.0.6:probePort} must arrive
 * at a listener on one of the capture ports with {@code probePort} as its original destination.
 *
 * <p>Why this address and user: the rules send the proxy's own connections to a non-local loopback address (an app
 * calling itself through a service address) to the inbound capture port, so only a socket owned by the proxy user
 * is captured on lo. The client socket is therefore created on a thread whose filesystem UID and GID are the proxy's
 * ({@code setfsuid}, which changes that thread only), as istio-iptables' validation runs as the proxy user.
 */
public final class CaptureProbe {
    /** The address the probe connects to; nothing listens there, so only a capture can accept it. */
    public static final String PROBE_ADDRESS = "127.0.0.6";
    private static final int POLL_MILLIS = 100;
    private static final long RETRY_PAUSE_MILLIS = 200;

    private CaptureProbe() {}

    /**
     * What to probe.
     *
     * @param probePort   the original destination port the client connects to (15002)
     * @param listenPorts where the listeners wait (the inbound capture port and the proxy port)
     * @param proxyUid    the user the client connects as
     * @param proxyGid    the group the client connects as
     * @param timeout     how long to keep trying
     * @param namespace   a network namespace name or path to probe in; empty for the current one
     */
    public record Settings(int probePort, List<Integer> listenPorts, long proxyUid, long proxyGid, Duration timeout,
                           String namespace) {
        public Settings {
            listenPorts = List.copyOf(listenPorts);
            Objects.requireNonNull(timeout, "timeout");
            namespace = namespace == null ? "" : namespace;
        }
    }

    /** The verdict, with a sentence saying why. */
    public record Result(boolean captured, String detail) {}

    /** Runs the probe; never takes much longer than the timeout. */
    public static Result run(Settings settings) {
        long deadline = System.nanoTime() + settings.timeout().toNanos();
        AtomicBoolean done = new AtomicBoolean();
        CountDownLatch listening = new CountDownLatch(1);
        CompletableFuture<Result> verdict = new CompletableFuture<>();
        Thread server = new Thread(() -> {
            try {
                verdict.complete(serve(settings, deadline, listening, done));
            } catch (RuntimeException | Error e) {
                verdict.complete(new Result(false, "the probe listener failed: " + e));
            } finally {
                done.set(true);
                listening.countDown();
            }
        }, "capture-probe-listener");
        server.setDaemon(true);
        server.start();
        List<String> clientErrors = new ArrayList<>();
        Thread client = new Thread(() -> connectUntilDone(settings, deadline, done, listening, clientErrors),
                "capture-probe-client");
        client.setDaemon(true);
        client.start();
        try {
            long waitMillis = settings.timeout().toMillis() + 2_000;
            Result result = verdict.get(waitMillis, TimeUnit.MILLISECONDS);
            done.set(true);
            client.join(2_000);
            if (!result.captured()) {
                synchronized (clientErrors) {
                    if (!clientErrors.isEmpty()) {
                        return new Result(false, result.detail() + "; last connect: "
                                + clientErrors.get(clientErrors.size() - 1));
                    }
                }
            }
            return result;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Result(false, "interrupted");
        } catch (Exception e) {
            return new Result(false, "the probe did not finish: " + e);
        } finally {
            done.set(true);
        }
    }

    private static Result serve(Settings settings, long deadline, CountDownLatch listening, AtomicBoolean done) {
        Libc libc = Libc.INSTANCE;
        enterNamespace(settings.namespace());
        List<Integer> fds = new ArrayList<>();
        List<String> bindErrors = new ArrayList<>();
        try {
            for (int port : settings.listenPorts()) {
                int fd = listen(port);
                if (fd >= 0) {
                    fds.add(fd);
                } else {
                    bindErrors.add("127.0.0.1:" + port + " (errno " + (-fd) + ")");
                }
            }
            if (fds.isEmpty()) {
                return new Result(false, "cannot listen on any capture port: " + String.join(", ", bindErrors));
            }
            listening.countDown();
            Memory pollFds = new Memory(8L * fds.size());
            while (!done.get() && System.nanoTime() < deadline) {
                for (int i = 0; i < fds.size(); i++) {
                    pollFds.setInt(8L * i, fds.get(i));
                    pollFds.setShort(8L * i + 4, Libc.POLLIN);
                    pollFds.setShort(8L * i + 6, (short) 0);
                }
                if (libc.poll(pollFds, fds.size(), POLL_MILLIS) <= 0) {
                    continue;
                }
                for (int i = 0; i < fds.size(); i++) {
                    if ((pollFds.getShort(8L * i + 6) & Libc.POLLIN) == 0) {
                        continue;
                    }
                    int conn = libc.accept(fds.get(i), null, null);
                    if (conn < 0) {
                        continue;
                    }
                    int originalPort = originalDestinationPort(conn);
                    libc.close(conn);
                    if (originalPort == settings.probePort()) {
                        return new Result(true, "a connection to " + PROBE_ADDRESS + ":" + settings.probePort()
                                + " was captured on port " + settings.listenPorts().get(i));
                    }
                }
            }
            return new Result(false, "no connection to " + PROBE_ADDRESS + ":" + settings.probePort()
                    + " reached the capture ports " + settings.listenPorts() + " within " + settings.timeout().toMillis() + " ms");
        } finally {
            fds.forEach(libc::close);
        }
    }

    /** A listening socket on 127.0.0.1:port, or minus errno. */
    private static int listen(int port) {
        Libc libc = Libc.INSTANCE;
        int fd = libc.socket(Libc.AF_INET, Libc.SOCK_STREAM | Libc.SOCK_CLOEXEC, 0);
        if (fd < 0) {
            return -Native.getLastError();
        }
        Memory one = new Memory(4);
        one.setInt(0, 1);
        libc.setsockopt(fd, Libc.SOL_SOCKET, Libc.SO_REUSEADDR, one, 4);
        Memory address = sockaddrIn(new byte[] {127, 0, 0, 1}, port);
        if (libc.bind(fd, address, 16) != 0 || libc.listen(fd, 16) != 0) {
            int errno = Native.getLastError();
            libc.close(fd);
            return -Math.max(errno, 1);
        }
        return fd;
    }

    /** The original destination port of an accepted, redirected connection; -1 when the kernel has none. */
    static int originalDestinationPort(int fd) {
        java.net.InetSocketAddress a = OriginalDestination.query(fd, false);
        return a == null ? -1 : a.getPort();
    }

    private static Memory sockaddrIn(byte[] ip, int port) {
        Memory m = new Memory(16);
        m.clear();
        // sa_family is in host byte order (little-endian on the platforms we run on is handled by setShort)
        m.setShort(0, (short) Libc.AF_INET);
        m.setByte(2, (byte) (port >> 8));
        m.setByte(3, (byte) port);
        m.write(4, ip, 0, 4);
        return m;
    }

    private static void connectUntilDone(Settings settings, long deadline, AtomicBoolean done,
                                         CountDownLatch listening, List<String> errors) {
        try {
            enterNamespace(settings.namespace());
            Libc.INSTANCE.setfsgid((int) settings.proxyGid());
            Libc.INSTANCE.setfsuid((int) settings.proxyUid());
            listening.await(settings.timeout().toMillis(), TimeUnit.MILLISECONDS);
            while (!done.get() && System.nanoTime() < deadline) {
                try (Socket socket = new Socket()) {
                    socket.bind(new InetSocketAddress("127.0.0.1", 0));
                    socket.connect(new InetSocketAddress(PROBE_ADDRESS, settings.probePort()), 1_000);
                } catch (IOException e) {
                    synchronized (errors) {
                        errors.add(e.getMessage());
                    }
                }
                Thread.sleep(RETRY_PAUSE_MILLIS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
            synchronized (errors) {
                errors.add(e.toString());
            }
        }
    }

    /** Moves the calling thread (only) into a network namespace; a name means /var/run/netns/NAME. */
    static void enterNamespace(String namespace) {
        if (namespace.isEmpty()) {
            return;
        }
        String path = namespace.indexOf('/') >= 0 ? namespace : "/var/run/netns/" + namespace;
        Libc libc = Libc.INSTANCE;
        int fd = libc.open(path, Libc.O_RDONLY | Libc.O_CLOEXEC);
        if (fd < 0) {
            throw new IllegalStateException("cannot open network namespace " + path + " (errno "
                    + Native.getLastError() + ")");
        }
        try {
            if (libc.setns(fd, Libc.CLONE_NEWNET) != 0) {
                throw new IllegalStateException("cannot enter network namespace " + path + " (errno "
                        + Native.getLastError() + ")");
            }
        } finally {
            libc.close(fd);
        }
    }
}
