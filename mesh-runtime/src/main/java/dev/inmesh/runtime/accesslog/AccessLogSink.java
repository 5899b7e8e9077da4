package dev.inmesh.runtime.accesslog;

import java.io.PrintStream;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Where access log lines go. {@link #write} is called on the request path (often an event loop), so it must not
 * block: the sinks here queue lines for a writer thread of their own.
 */
@FunctionalInterface
public interface AccessLogSink {

    /** Takes one line, without its line separator. Must not block. */
    void write(String line);

    /**
     * Waits, at most {@code timeout}, until the lines every queued sink took are written (a process about to exit
     * calls it, as Envoy flushes its access logs at shutdown); whether they were.
     */
    static boolean flushAll(java.time.Duration timeout) throws InterruptedException {
        return AsyncLineWriter.flushAll(timeout);
    }

    /** Lines to standard output, written by a daemon thread; lines are dropped (and counted) if it falls behind. */
    static AccessLogSink stdout() {
        return new AsyncLineWriter(line -> {
            PrintStream out = System.out;
            out.println(line);
        }, 65536, "inmesh-access-log");
    }

    /**
     * Lines to any writer (a file's {@code PrintStream}, say), which a daemon thread calls; lines are dropped (and
     * counted) if it falls behind, so that a slow writer never holds the caller.
     */
    static AccessLogSink queued(java.util.function.Consumer<String> writer) {
        return new AsyncLineWriter(writer, 65536, "inmesh-access-log");
    }

    /** Lines to a {@code java.util.logging} logger at INFO, published by a daemon thread. */
    static AccessLogSink logger(String name) {
        Logger logger = Logger.getLogger(name);
        return new AsyncLineWriter(line -> logger.log(Level.INFO, line), 65536, "inmesh-access-log");
    }
}
