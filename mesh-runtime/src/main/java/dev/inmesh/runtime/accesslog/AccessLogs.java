package dev.inmesh.runtime.accesslog;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.inmesh.api.config.listener.AccessLogConfig;
import dev.inmesh.runtime.router.HeaderMatchers;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Consumer;
import java.util.function.Predicate;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The access logs of one HTTP connection manager or TCP proxy, compiled from its {@code access_log}
 * ({@link AccessLogConfig}): each logger's filter, format and destination. A finished request (or connection) is
 * written by every logger whose filter takes it, in order.
 *
 * <p>Destinations are shared by path across the process (one writer thread each, opened on first use and never
 * closed), as Envoy's access log manager shares its files: configurations that change do not open a file again.
 * Formatting happens on the caller's thread; writing never blocks it (lines are queued, and dropped when the writer
 * falls behind).
 */
public final class AccessLogs {
    private static final Logger LOG = Logger.getLogger(AccessLogs.class.getName());
    private static final JsonFactory JSON = new JsonFactory();
    private static final Map<String, AccessLogSink> SINKS = new ConcurrentHashMap<>();
    /** How many times {@link #reopen()} was called: a file opened before the last call is opened again. */
    private static final java.util.concurrent.atomic.AtomicLong REOPENS = new java.util.concurrent.atomic.AtomicLong();

    /** No access log. */
    public static final AccessLogs NONE = new AccessLogs(List.of(), null);

    private final List<CompiledLog> loggers;
    /** The filter chain whose connection manager or TCP proxy these are the logs of, or null. */
    private final String filterChainName;

    private AccessLogs(List<CompiledLog> loggers, String filterChainName) {
        this.loggers = loggers;
        this.filterChainName = filterChainName == null || filterChainName.isEmpty() ? null : filterChainName;
    }

    /** One compiled logger. */
    private record CompiledLog(Predicate<AccessLogEntry> filter, LineFormat format, AccessLogSink sink,
                               String path) {}

    /**
     * Formats an entry into the text written, its line end included (a JSON format's; a text format's is its own).
     */
    interface LineFormat {
        String format(AccessLogEntry e);
    }

    /** Whether there is no logger. */
    public boolean isEmpty() {
        return loggers.isEmpty();
    }

    /**
     * Compiles a list of access logs.
     *
     * @throws IllegalArgumentException when a format has a command Inmesh does not fill
     */
    public static AccessLogs compile(List<AccessLogConfig> configs) {
        return compile(configs, null);
    }

    /**
     * Compiles the access logs of the connection manager or TCP proxy of filter chain {@code filterChainName}
     * (null: not known), whose entries then say it ({@code %FILTER_CHAIN_NAME%}).
     */
    public static AccessLogs compile(List<AccessLogConfig> configs, String filterChainName) {
        if (configs == null || configs.isEmpty()) {
            return NONE;
        }
        List<CompiledLog> out = new ArrayList<>(configs.size());
        for (AccessLogConfig c : configs) {
            out.add(new CompiledLog(filter(c.filter()), format(c.format()), sink(c.path()), c.path()));
        }
        return new AccessLogs(List.copyOf(out), filterChainName);
    }

    /** Checks a format, as the parser does before a configuration is taken. */
    public static void validate(AccessLogConfig.Format format) {
        format(format);
    }

    /** Checks a filter (a CEL expression's syntax and attributes), as the parser does. */
    public static void validate(AccessLogConfig.Filter filter) {
        filter(filter);
    }

    /** Logs a finished request by every logger whose filter takes it. */
    public void log(AccessLogEntry e) {
        if (filterChainName != null && !loggers.isEmpty()) {
            e = e.withFilterChainName(filterChainName);
        }
        for (CompiledLog l : loggers) {
            try {
                if (l.filter == null || l.filter.test(e)) {
                    l.sink.write(l.format.format(e));
                }
            } catch (RuntimeException ex) {
                LOG.log(Level.FINE, "access log to " + l.path + " failed", ex);
            }
        }
    }

    /**
     * The observer of finished requests that writes each to the access logs of the connection manager it came
     * through ({@link StreamInfo#log()}), or, for one whose connection manager names none, to {@code fallback} (the
     * mesh's own access log setting; null for none).
     */
    public static Consumer<StreamInfo> observer(AccessLog fallback) {
        return s -> {
            RequestLog r = s.log();
            if (r != null && !r.logs().isEmpty()) {
                r.logs().log(AccessLogEntry.of(s, r));
            } else if (fallback != null) {
                fallback.log(s);
            }
        };
    }

    // ---- destinations ----

    private static AccessLogSink sink(String path) {
        return SINKS.computeIfAbsent(path, AccessLogs::open);
    }

    private static AccessLogSink open(String path) {
        Consumer<String> out;
        if (path.equals("/dev/stdout")) {
            out = s -> System.out.print(s);
        } else if (path.equals("/dev/stderr")) {
            out = s -> System.err.print(s);
        } else {
            out = file(path);
        }
        return AccessLogSink.queued(out);
    }

    /**
     * Envoy's {@code /reopen_logs}: each access log {@link #file} is closed and opened again by its path before its
     * next line is written (by the writer's thread), so that after a log rotation moved it away the lines go to a new
     * file at that path. The standard output and error are left as they are.
     */
    public static void reopen() {
        REOPENS.incrementAndGet();
    }

    /**
     * What appends text to the file at {@code path}: opened by the thread of its first text (never the caller's, an
     * event loop, when that is a queued sink's writer), again after a {@link #reopen()}. A file that cannot be opened
     * loses its text, with a warning, until the next reopen.
     */
    public static Consumer<String> file(String path) {
        return file(path, null);
    }

    /**
     * As {@link #file(String)}, writing to {@code opened} (the file at {@code path} already opened, or null) until a
     * {@link #reopen()}: a caller that may lose the right to open the file again (the standalone proxy, once it has
     * dropped its privileges) opens it first. A reopen that fails keeps writing to the file opened before, with a
     * warning, rather than losing the lines.
     */
    public static Consumer<String> file(String path, PrintStream opened) {
        return new Consumer<>() {
            private PrintStream file = opened;
            private boolean failed;
            private long openedAt = REOPENS.get();

            @Override
            public void accept(String s) {
                long reopens = REOPENS.get();
                if (reopens != openedAt) {
                    // reopened since this file was opened (or could not be): by its path again
                    openedAt = reopens;
                    PrintStream again = open();
                    if (again != null) {
                        if (file != null) {
                            file.close();
                        }
                        file = again;
                    }
                    failed = file == null;
                }
                if (file == null && !failed) {
                    file = open();
                    failed = file == null;
                }
                if (file != null) {
                    file.print(s);
                    file.flush();
                }
            }

            /** The file at {@code path} opened for appending, or null (with a warning) when it cannot be. */
            private PrintStream open() {
                try {
                    return new PrintStream(new FileOutputStream(path, true), true, StandardCharsets.UTF_8);
                } catch (IOException e) {
                    LOG.warning("access log " + path + " cannot be opened (" + e.getMessage() + ")"
                            + (file != null ? ": its lines go on to the file opened before" : ": its lines are lost"));
                    return null;
                }
            }
        };
    }

    // ---- formats ----

    static LineFormat format(AccessLogConfig.Format f) {
        if (f instanceof AccessLogConfig.Text t) {
            CommandFormat c = CommandFormat.compile(t.format(), t.omitEmptyValues());
            return c::format;
        }
        AccessLogConfig.Json j = (AccessLogConfig.Json) f;
        Map<String, Object> compiled = json(j.format(), j.omitEmptyValues(), "log_format.json_format");
        boolean omit = j.omitEmptyValues();
        return e -> {
            StringWriter w = new StringWriter(512);
            try (JsonGenerator g = JSON.createGenerator(w)) {
                writeObject(g, compiled, e, omit);
            } catch (IOException ex) {
                throw new UncheckedIOException(ex);
            }
            return w.append('\n').toString();
        };
    }

    /** The JSON format's values compiled, keys sorted as Envoy writes them. */
    private static Map<String, Object> json(Map<String, Object> format, boolean omit, String where) {
        Map<String, Object> out = new TreeMap<>();
        for (Map.Entry<String, Object> en : format.entrySet()) {
            out.put(en.getKey(), compiled(en.getValue(), omit, where + "." + en.getKey()));
        }
        return out;
    }

    /** A JSON format's value compiled: a format string's commands, a nested object's or a list's values. */
    private static Object compiled(Object v, boolean omit, String at) {
        if (v instanceof String s) {
            try {
                return CommandFormat.compile(s, omit);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(at + ": " + e.getMessage(), e);
            }
        }
        if (v instanceof Map<?, ?> m) {
            @SuppressWarnings("unchecked")
            Map<String, Object> nested = (Map<String, Object>) m;
            return json(nested, omit, at);
        }
        if (v instanceof List<?> list) {
            List<Object> out = new ArrayList<>(list.size());
            for (int i = 0; i < list.size(); i++) {
                Object element = compiled(list.get(i), omit, at + "[" + i + "]");
                out.add(element == null ? JSON_NULL : element);
            }
            return List.copyOf(out);
        }
        return v; // a number, a boolean or null, as the record checked
    }

    /** A null in a JSON format's list (an immutable list holds no null). */
    private static final Object JSON_NULL = new Object();

    private static void writeObject(JsonGenerator g, Map<String, Object> compiled, AccessLogEntry e, boolean omit)
            throws IOException {
        g.writeStartObject();
        for (Map.Entry<String, Object> en : compiled.entrySet()) {
            Object v = en.getValue();
            Object value = v instanceof CommandFormat c ? commandValue(c, e) : v;
            if (value == null && omit) {
                continue; // an unknown value, or a null of the format's own, left out as Envoy's omit_empty_values
            }
            g.writeFieldName(en.getKey());
            if (v instanceof CommandFormat) {
                writeCommandValue(g, value);
            } else {
                writeValue(g, v, e, omit);
            }
        }
        g.writeEndObject();
    }

    /**
     * A value of the JSON format: a command's value (a number keeps its type, other values are strings), a nested
     * object, a list (its format strings substituted, an unknown value in it null), a literal.
     */
    private static void writeValue(JsonGenerator g, Object v, AccessLogEntry e, boolean omit) throws IOException {
        if (v instanceof CommandFormat c) {
            writeCommandValue(g, commandValue(c, e));
        } else if (v == null || v == JSON_NULL) {
            g.writeNull();
        } else if (v instanceof Map<?, ?> m) {
            @SuppressWarnings("unchecked")
            Map<String, Object> nested = (Map<String, Object>) m;
            writeObject(g, nested, e, omit);
        } else if (v instanceof List<?> list) {
            g.writeStartArray();
            for (Object o : list) {
                writeValue(g, o, e, omit);
            }
            g.writeEndArray();
        } else if (v instanceof Boolean b) {
            g.writeBoolean(b);
        } else {
            double d = ((Number) v).doubleValue();
            if (d == Math.rint(d) && Math.abs(d) < 1e15) {
                g.writeNumber((long) d);
            } else {
                g.writeNumber(d);
            }
        }
    }

    /** A format string's value: one command alone keeps its type, anything else is text; null when unknown. */
    private static Object commandValue(CommandFormat c, AccessLogEntry e) {
        return c.singleCommand() ? c.singleValue(e) : c.format(e);
    }

    /** A format string's value as JSON: a number stays one, any other value is a string, an unknown one null. */
    private static void writeCommandValue(JsonGenerator g, Object value) throws IOException {
        if (value == null) {
            g.writeNull();
        } else if (value instanceof Long n) {
            g.writeNumber(n);
        } else {
            g.writeString(value.toString());
        }
    }

    // ---- filters ----

    static Predicate<AccessLogEntry> filter(AccessLogConfig.Filter f) {
        if (f == null) {
            return null;
        }
        if (f instanceof AccessLogConfig.StatusCode s) {
            return e -> compare(s.op(), e.info().responseCode(), s.value());
        } else if (f instanceof AccessLogConfig.RequestDuration d) {
            return e -> compare(d.op(), e.info().durationMillis(), d.value());
        } else if (f instanceof AccessLogConfig.NotHealthCheck) {
            return e -> true; // Inmesh runs no health check filter: no request is a health check
        } else if (f instanceof AccessLogConfig.Traceable) {
            // as Envoy's: a request its connection manager traces (it has a span) for the reason ServiceForced, the
            // request id's 'a'; not one sampled, traced for its client or by the caller's B3 flag
            return e -> e.log() != null && e.log().span() != null
                    && dev.inmesh.runtime.tracing.Tracer.forced(e.requestHeader("x-request-id"));
        } else if (f instanceof AccessLogConfig.Sampled s) {
            long num = s.numerator();
            long den = s.denominator();
            boolean independent = s.independentRandomness();
            return e -> {
                long id = independent ? -1 : requestIdInteger(e.requestHeader("x-request-id"));
                return (id >= 0 ? id % den : ThreadLocalRandom.current().nextLong(den)) < num;
            };
        } else if (f instanceof AccessLogConfig.And a) {
            List<Predicate<AccessLogEntry>> all = a.filters().stream().map(AccessLogs::filter).toList();
            return e -> all.stream().allMatch(p -> p.test(e));
        } else if (f instanceof AccessLogConfig.Or o) {
            List<Predicate<AccessLogEntry>> any = o.filters().stream().map(AccessLogs::filter).toList();
            return e -> any.stream().anyMatch(p -> p.test(e));
        } else if (f instanceof AccessLogConfig.Header h) {
            HeaderMatchers.Compiled m = HeaderMatchers.compile(h.header());
            return e -> m.matches(e::requestHeaderJoined);
        } else if (f instanceof AccessLogConfig.ResponseFlags r) {
            return e -> {
                if (r.flags().isEmpty()) {
                    return !e.info().responseFlags().isEmpty();
                }
                for (ResponseFlag flag : e.info().responseFlags()) {
                    if (r.flags().contains(flag.code())) {
                        return true;
                    }
                }
                return false;
            };
        } else if (f instanceof AccessLogConfig.GrpcStatus g) {
            return e -> {
                // Envoy's status of a response with none of its own: the one its HTTP status maps to, else UNKNOWN
                Integer n = e.grpcStatus();
                int status = n != null ? n : 2;
                return g.statuses().contains(status) != g.exclude();
            };
        } else if (f instanceof AccessLogConfig.Cel c) {
            return CelFilter.compile(c.expression());
        }
        throw new IllegalArgumentException("filter " + f);
    }

    /**
     * Envoy's integer of a request id (its UUID extension's): the first 8 characters read as hexadecimal; -1 when
     * there is none or they are not hexadecimal.
     */
    static long requestIdInteger(String id) {
        if (id == null || id.length() < 8) {
            return -1;
        }
        try {
            return Long.parseLong(id, 0, 8, 16);
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private static boolean compare(AccessLogConfig.Op op, long actual, long value) {
        return switch (op) {
            case EQ -> actual == value;
            case GE -> actual >= value;
            case LE -> actual <= value;
        };
    }
}
