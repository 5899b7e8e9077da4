package dev.inmesh.benchmarks.load;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed-rate HTTP/1.1 load generator (what wrk2 does, which Debian does not package): N keep-alive connections, one
 * thread each, share one timetable of {@code rate} requests per second; connection {@code c} sends requests
 * {@code c, c+N, c+2N, ...}. Latency is measured from each request's <em>scheduled</em> time, so a slow response that
 * delays the next request on its connection is counted against that request too (no coordinated omission).
 *
 * <pre>java -cp benchmarks.jar dev.inmesh.benchmarks.load.FixedRateClient HOST PORT [--path /x] [--rate 1000]
 *     [--seconds 10] [--warmup 1] [--connections 4,16] [--label name]</pre>
 *
 * <p>Prints one line per connection count: {@code FIXED label=.. connections=N rate=R sent=.. errors=.. p50_us=..
 * p90_us=.. p99_us=.. max_us=..}. Exit status 0 when every request was answered with 200, 2 otherwise.
 */
public final class FixedRateClient {
    /** Waits by parking until this close to the scheduled time, then spins (park is only ~50 us precise). */
    private static final long SPIN_NANOS = 60_000;

    private FixedRateClient() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: FixedRateClient HOST PORT [--path P] [--rate R] [--seconds S] [--warmup S]"
                    + " [--connections 4,16] [--label L]");
            System.exit(64);
        }
        String host = args[0];
        int port = Integer.parseInt(args[1]);
        String path = "/";
        int rate = 1000;
        double seconds = 10;
        double warmup = 1;
        String label = host + ":" + port;
        int[] connections = {4, 16};
        for (int i = 2; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--path" -> path = args[i + 1];
                case "--rate" -> rate = Integer.parseInt(args[i + 1]);
                case "--seconds" -> seconds = Double.parseDouble(args[i + 1]);
                case "--warmup" -> warmup = Double.parseDouble(args[i + 1]);
                case "--label" -> label = args[i + 1];
                case "--connections" -> connections = Arrays.stream(args[i + 1].split(","))
                        .mapToInt(Integer::parseInt).toArray();
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        byte[] request = ("GET " + path + " HTTP/1.1\r\nHost: " + host + ":" + port + "\r\nUser-Agent: inmesh-fixed-rate"
                + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII);
        boolean allOk = true;
        if (warmup > 0) {
            run(host, port, request, rate, warmup, connections[connections.length - 1]);
        }
        for (int n : connections) {
            Run r = run(host, port, request, rate, seconds, n);
            long[] lat = r.latencies;
            System.out.printf(Locale.ROOT, "FIXED label=%s connections=%d rate=%d sent=%d errors=%d p50_us=%d"
                            + " p90_us=%d p99_us=%d max_us=%d%n", label, n, rate, lat.length, r.errors,
                    pct(lat, 50), pct(lat, 90), pct(lat, 99), lat.length == 0 ? 0 : lat[lat.length - 1]);
            allOk &= r.errors == 0 && lat.length > 0;
        }
        System.exit(allOk ? 0 : 2);
    }

    record Run(long[] latencies, long errors) {}

    static Run run(String host, int port, byte[] request, int rate, double seconds, int connections)
            throws InterruptedException {
        int total = (int) Math.max(1, Math.round(rate * seconds));
        long interval = TimeUnit.SECONDS.toNanos(1) / rate;
        long start = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(50);
        long deadline = start + TimeUnit.NANOSECONDS.convert((long) ((seconds + 30) * 1000), TimeUnit.MILLISECONDS);
        AtomicLong errors = new AtomicLong();
        List<long[]> perThread = new ArrayList<>();
        List<Thread> threads = new ArrayList<>();
        for (int c = 0; c < connections; c++) {
            int first = c;
            long[] lat = new long[(total - first + connections - 1) / connections];
            perThread.add(lat);
            Thread t = new Thread(() -> connection(host, port, request, start, interval, first, connections, total,
                    lat, errors, deadline), "fixed-rate-" + c);
            t.setDaemon(true);
            threads.add(t);
        }
        threads.forEach(Thread::start);
        for (Thread t : threads) {
            t.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
        }
        long[] all = perThread.stream().flatMapToLong(Arrays::stream).filter(v -> v >= 0).sorted().toArray();
        long missing = total - all.length;
        return new Run(all, errors.get() + Math.max(0, missing - errors.get()));
    }

    private static void connection(String host, int port, byte[] request, long start, long interval, int first,
            int step, int total, long[] lat, AtomicLong errors, long deadline) {
        Arrays.fill(lat, -1);
        Socket socket = null;
        InputStream in = null;
        OutputStream out = null;
        int k = 0;
        for (int i = first; i < total && System.nanoTime() < deadline; i += step, k++) {
            long scheduled = start + i * interval;
            try {
                if (socket == null) {
                    socket = new Socket();
                    socket.setTcpNoDelay(true);
                    socket.connect(new InetSocketAddress(host, port), 5000);
                    socket.setSoTimeout(10_000);
                    in = new BufferedInputStream(socket.getInputStream(), 16 * 1024);
                    out = socket.getOutputStream();
                }
                long wait;
                while ((wait = scheduled - System.nanoTime()) > 0) {
                    if (wait > SPIN_NANOS) {
                        LockSupport.parkNanos(wait - SPIN_NANOS);
                    } else {
                        Thread.onSpinWait();
                    }
                }
                out.write(request);
                out.flush();
                int status = readResponse(in);
                lat[k] = (System.nanoTime() - scheduled) / 1000;
                if (Math.abs(status) != 200) {
                    errors.incrementAndGet();
                }
                if (status < 0) {
                    socket.close();
                    socket = null;
                }
            } catch (IOException e) {
                errors.incrementAndGet();
                if (socket != null) {
                    try {
                        socket.close();
                    } catch (IOException ignored) {
                        // closing a broken socket
                    }
                }
                socket = null;
            }
        }
        if (socket != null) {
            try {
                socket.close();
            } catch (IOException ignored) {
                // done
            }
        }
    }

    /** Reads one response; returns its status, negated when the server closes the connection after it. */
    static int readResponse(InputStream in) throws IOException {
        String statusLine = line(in);
        String[] parts = statusLine.split(" ", 3);
        if (parts.length < 2) {
            throw new IOException("bad status line: " + statusLine);
        }
        int status = Integer.parseInt(parts[1]);
        long length = -1;
        boolean chunked = false;
        boolean close = false;
        for (String h; !(h = line(in)).isEmpty(); ) {
            int colon = h.indexOf(':');
            if (colon < 0) {
                continue;
            }
            String name = h.substring(0, colon).trim().toLowerCase(Locale.ROOT);
            String value = h.substring(colon + 1).trim().toLowerCase(Locale.ROOT);
            switch (name) {
                case "content-length" -> length = Long.parseLong(value);
                case "transfer-encoding" -> chunked = value.contains("chunked");
                case "connection" -> close = value.contains("close");
                default -> { }
            }
        }
        if (chunked) {
            for (long size; (size = Long.parseLong(line(in).split(";", 2)[0].trim(), 16)) > 0; ) {
                skip(in, size);
                line(in);
            }
            for (String t; !(t = line(in)).isEmpty(); ) {
                // trailers
            }
        } else if (length >= 0) {
            skip(in, length);
        } else {
            in.transferTo(OutputStream.nullOutputStream());
            close = true;
        }
        return close ? -status : status;
    }

    private static void skip(InputStream in, long n) throws IOException {
        while (n > 0) {
            long s = in.skip(n);
            if (s <= 0) {
                if (in.read() < 0) {
                    throw new IOException("connection closed in a body");
                }
                s = 1;
            }
            n -= s;
        }
    }

    private static String line(InputStream in) throws IOException {
        StringBuilder sb = new StringBuilder(64);
        for (int b; (b = in.read()) != '\n'; ) {
            if (b < 0) {
                throw new IOException("connection closed");
            }
            if (b != '\r') {
                sb.append((char) b);
            }
        }
        return sb.toString();
    }

    static long pct(long[] sorted, int p) {
        if (sorted.length == 0) {
            return 0;
        }
        return sorted[Math.min(sorted.length - 1, Math.max(0, (int) Math.ceil(p / 100.0 * sorted.length) - 1))];
    }
}
