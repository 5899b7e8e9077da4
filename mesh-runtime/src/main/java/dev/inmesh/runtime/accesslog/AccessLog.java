package dev.inmesh.runtime.accesslog;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.stats.TcpStreamInfo;
import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;

/**
 * Writes one access log line per finished request, and per finished {@code tcp_proxy} connection of the standalone
 * proxy ({@link TcpStreamInfo}), as Istio's sidecars do, to an {@link AccessLogSink}.
 *
 * <p>{@link Format#TEXT} is Istio's default text format:
 * <pre>
 * [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS%
 * %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED%
 * %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
 * "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS%
 * %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%
 * </pre>
 * (one line), where a value that is not known prints as {@code -}, as Envoy prints it. {@link Format#JSON} is Istio's
 * JSON format: the same operators under Istio's keys ({@code start_time}, {@code route_name}, {@code method}, ...), in
 * Istio's order, numbers as JSON numbers and unknown values as {@code null}, as Envoy's JSON formatter writes them.
 * {@code %START_TIME%} is UTC with milliseconds ({@code 2026-11-28T13:07:13.409Z}).
 * {@code %UPSTREAM_TRANSPORT_FAILURE_REASON%} is set when the final attempt's upstream connect failed
 * ({@link dev.inmesh.runtime.upstream.ConnectFailure}: the socket's error, or the TLS handshake's as
 * {@link dev.inmesh.runtime.tls.HandshakeFailure} words it), spaces as underscores as Envoy writes it.
 * {@code %CONNECTION_TERMINATION_DETAILS%} is known for a {@code tcp_proxy} connection a network RBAC filter closed
 * ({@code rbac_access_denied_matched_policy[NAME|none]}, as Envoy sets it); for requests it prints as unknown.
 *
 * <p>Formatting happens on the caller's thread (it is cheap); the sink decides where and when the line is written.
 */
public final class AccessLog {
    /** Which of Istio's two access log encodings. */
    public enum Format {
        TEXT,
        JSON
    }

    private static final DateTimeFormatter START_TIME =
            DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);
    private static final JsonFactory JSON = new JsonFactory();

    private final Format format;
    private final AccessLogSink sink;

    private AccessLog(Format format, AccessLogSink sink) {
        this.format = format;
        this.sink = sink;
    }

    /** An access log in the given format, written to {@code sink}. */
    public static AccessLog create(Format format, AccessLogSink sink) {
        if (format == null || sink == null) {
            throw new IllegalArgumentException("format: " + format + ", sink: " + sink + " (expected: both set)");
        }
        return new AccessLog(format, sink);
    }

    /** Istio's default text format, to standard output through a writer thread. */
    public static AccessLog textToStdout() {
        return create(Format.TEXT, AccessLogSink.stdout());
    }

    public Format format() {
        return format;
    }

    /** Formats one finished request and hands the line to the sink. */
    public void log(StreamInfo s) {
        sink.write(format(s));
    }

    /** The line for one request, without a line separator. */
    public String format(StreamInfo s) {
        return format == Format.TEXT ? text(s, null) : json(s, null);
    }

    /** Formats one finished TCP connection and hands the line to the sink. */
    public void log(TcpStreamInfo c) {
        sink.write(format(c));
    }

    /**
     * The line for one TCP connection, without a line separator: the same format and keys as a request's, where the
     * HTTP-only values are unknown ({@code -}, or null in JSON) and {@code %RESPONSE_CODE%} is 0, as Envoy writes a
     * {@code tcp_proxy} connection's line.
     */
    public String format(TcpStreamInfo c) {
        StreamInfo s = AccessLogEntry.of(c).info();
        String termination = c.connectionTerminationDetails();
        return format == Format.TEXT ? text(s, termination) : json(s, termination);
    }

    static String text(StreamInfo s, String terminationDetails) {
        StringBuilder b = new StringBuilder(384);
        b.append('[').append(s.startTime() == null ? "-" : START_TIME.format(s.startTime())).append("] \"")
                .append(dash(wire(s.method()))).append(' ').append(dash(wire(s.path()))).append(' ')
                .append(dash(s.protocol())).append("\" ")
                .append(s.responseCode()).append(' ')
                .append(ResponseFlag.format(s.responseFlags())).append(' ')
                .append(dash(details(s.responseCodeDetails()))).append(' ')
                .append(dash(details(terminationDetails))).append(' ')
                .append('"').append(dash(details(s.upstreamTransportFailureReason()))).append("\" ")
                .append(s.bytesReceived()).append(' ')
                .append(s.bytesSent()).append(' ')
                .append(s.durationMillis()).append(' ')
                .append(s.upstreamServiceTimeMillis() < 0 ? "-" : Long.toString(s.upstreamServiceTimeMillis()))
                .append(" \"").append(header(s.forwardedFor())).append("\" \"")
                .append(header(s.userAgent())).append("\" \"")
                .append(header(s.requestId())).append("\" \"")
                .append(dash(wire(s.authority()))).append("\" \"")
                .append(dash(s.upstreamHost())).append("\" ")
                .append(dash(s.upstreamCluster())).append(' ')
                .append(dash(s.upstreamLocalAddress())).append(' ')
                .append(dash(s.downstreamLocalAddress())).append(' ')
                .append(dash(s.downstreamRemoteAddress())).append(' ')
                .append(dash(s.requestedServerName())).append(' ')
                .append(dash(s.routeName()));
        return b.toString();
    }

    static String json(StreamInfo s, String terminationDetails) {
        StringWriter w = new StringWriter(512);
        try (JsonGenerator g = JSON.createGenerator(w)) {
            g.writeStartObject();
            str(g, "start_time", s.startTime() == null ? null : START_TIME.format(s.startTime()));
            str(g, "route_name", s.routeName());
            str(g, "method", wire(s.method()));
            str(g, "path", wire(s.path()));
            str(g, "protocol", s.protocol());
            g.writeNumberField("response_code", s.responseCode());
            g.writeStringField("response_flags", ResponseFlag.format(s.responseFlags()));
            str(g, "response_code_details", details(s.responseCodeDetails()));
            str(g, "connection_termination_details", details(terminationDetails));
            g.writeNumberField("bytes_received", s.bytesReceived());
            g.writeNumberField("bytes_sent", s.bytesSent());
            g.writeNumberField("duration", s.durationMillis());
            // a response header in Envoy: a string
            str(g, "upstream_service_time", s.upstreamServiceTimeMillis() < 0 ? null
                    : Long.toString(s.upstreamServiceTimeMillis()));
            headerValue(g, "x_forwarded_for", s.forwardedFor());
            headerValue(g, "user_agent", s.userAgent());
            headerValue(g, "request_id", s.requestId());
            str(g, "authority", wire(s.authority()));
            str(g, "upstream_host", s.upstreamHost());
            str(g, "upstream_cluster", s.upstreamCluster());
            str(g, "upstream_local_address", s.upstreamLocalAddress());
            str(g, "downstream_local_address", s.downstreamLocalAddress());
            str(g, "downstream_remote_address", s.downstreamRemoteAddress());
            str(g, "requested_server_name", s.requestedServerName());
            str(g, "upstream_transport_failure_reason", details(s.upstreamTransportFailureReason()));
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return w.toString();
    }

    private static void str(JsonGenerator g, String key, String value) throws IOException {
        if (value == null || value.isEmpty()) {
            g.writeNullField(key);
        } else {
            g.writeStringField(key, value);
        }
    }

    /**
     * A header's field: {@code -} when it is not there, else its value, empty too, as Envoy's header operators write
     * a header that is there ({@link CommandFormat#wireText} for its bytes).
     */
    private static String header(String value) {
        return value == null ? "-" : CommandFormat.wireText(value);
    }

    /** A header's JSON field: null when it is not there, else its value, empty too. */
    private static void headerValue(JsonGenerator g, String key, String value) throws IOException {
        if (value == null) {
            g.writeNullField(key);
        } else {
            g.writeStringField(key, CommandFormat.wireText(value));
        }
    }

    private static String dash(String s) {
        return s == null || s.isEmpty() ? "-" : s;
    }

    /** A header's value as the text of its bytes ({@link CommandFormat#wireText}). */
    private static String wire(String headerValue) {
        return CommandFormat.wireText(headerValue);
    }

    /** Envoy writes response code details and transport failure reasons with whitespace replaced by underscores. */
    private static String details(String d) {
        return CommandFormat.underscores(d);
    }
}
