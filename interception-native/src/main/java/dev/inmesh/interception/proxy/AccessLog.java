package dev.inmesh.interception.proxy;

import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import java.io.PrintStream;
import java.util.function.Consumer;
import java.util.stream.Collectors;

/**
 * A minimal access log in Envoy's default format, one line per request, until the shared access log of the in-JVM
 * mode is wired in (see {@link AdminHook}).
 */
public final class AccessLog {
    private AccessLog() {}

    /** Writes one line per request to {@code out}. */
    public static Consumer<StreamInfo> to(PrintStream out) {
        return s -> out.println(line(s));
    }

    /** Envoy's default format: {@code [start] "METHOD PATH PROTOCOL" CODE FLAGS ... "AUTHORITY" "UPSTREAM" CLUSTER}. */
    static String line(StreamInfo s) {
        String flags = s.responseFlags().isEmpty() ? "-"
                : s.responseFlags().stream().map(ResponseFlag::code).collect(Collectors.joining(","));
        return "[" + s.startTime() + "] \"" + s.method() + " " + s.path() + " " + s.protocol() + "\" "
                + s.responseCode() + " " + flags + " " + dash(s.responseCodeDetails()) + " " + s.bytesReceived()
                + " " + s.bytesSent() + " " + s.durationMillis() + " "
                + (s.upstreamServiceTimeMillis() < 0 ? "-" : Long.toString(s.upstreamServiceTimeMillis()))
                + " \"" + dash(s.forwardedFor()) + "\" \"" + dash(s.userAgent()) + "\" \"" + dash(s.requestId())
                + "\" \"" + dash(s.authority()) + "\" \"" + dash(s.upstreamHost()) + "\" "
                + dash(s.upstreamCluster()) + " " + dash(s.downstreamLocalAddress()) + " "
                + dash(s.downstreamRemoteAddress()) + " attempts=" + s.attemptCount();
    }

    private static String dash(String v) {
        return v == null || v.isEmpty() ? "-" : v;
    }
}
