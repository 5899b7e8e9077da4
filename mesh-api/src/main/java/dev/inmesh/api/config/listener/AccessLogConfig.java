package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.route.HeaderMatcher;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One access log of an HTTP connection manager or a TCP proxy ({@code config.accesslog.v3.AccessLog} with Envoy's
 * file, stdout or stderr logger): where its lines go, in which format, and which requests it logs.
 *
 * @param name the logger's name, such as {@code envoy.access_loggers.file}
 * @param path where lines are written: a file's path (appended to), {@code /dev/stdout} or {@code /dev/stderr}
 * @param format the line's format
 * @param filter which requests (or connections) are logged; null logs every one
 */
public record AccessLogConfig(String name, String path, Format format, Filter filter) {
    /**
     * Envoy's default format, used when a logger names none: its text format with its default command operators,
     * ended by a new line.
     */
    public static final String ENVOY_DEFAULT_FORMAT = "[%START_TIME%] \"%REQ(:METHOD)%"
            + " %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED%"
            + " %BYTES_SENT% %DURATION%"
            + " %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\""
            + " \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

    public AccessLogConfig {
        name = name == null ? "" : name;
        Checks.nonEmpty(path, "path");
        Checks.nonNull(format, "log_format");
    }

    /** The format one-of. */
    public sealed interface Format {
        /** Whether values that are not known are left out (Envoy's {@code omit_empty_values}). */
        boolean omitEmptyValues();
    }

    /**
     * A text format: literal text and command operators ({@code %RESPONSE_CODE%}); an unknown value prints as
     * {@code -}, or as nothing with {@code omitEmptyValues}. The text is written as it is: Envoy's formats end with a
     * new line.
     */
    public record Text(String format, boolean omitEmptyValues) implements Format {
        public Text {
            Checks.nonNull(format, "log_format.text_format_source");
        }
    }

    /**
     * A JSON format: each key's value is a format string (a lone command operator keeps its value's type), a number,
     * a boolean, or a nested object of the same; a line is one JSON object and a new line.
     */
    public record Json(Map<String, Object> format, boolean omitEmptyValues) implements Format {
        public Json {
            format = copy(format, "");
        }

        /**
         * A deep, immutable copy: format strings, numbers, booleans, nulls, nested objects and lists of them, as
         * Envoy's JSON format takes them; anything else is refused by its key's path.
         */
        private static Map<String, Object> copy(Map<String, Object> m, String at) {
            Map<String, Object> out = new java.util.LinkedHashMap<>();
            if (m != null) {
                for (Map.Entry<String, Object> e : m.entrySet()) {
                    out.put(e.getKey(), copyValue(e.getValue(), at + e.getKey()));
                }
            }
            return java.util.Collections.unmodifiableMap(out);
        }

        private static Object copyValue(Object v, String key) {
            if (v instanceof Map<?, ?> nested) {
                @SuppressWarnings("unchecked")
                Map<String, Object> typed = (Map<String, Object>) nested;
                return copy(typed, key + ".");
            }
            if (v instanceof List<?> list) {
                List<Object> out = new java.util.ArrayList<>(list.size());
                for (int i = 0; i < list.size(); i++) {
                    out.add(copyValue(list.get(i), key + "[" + i + "]"));
                }
                return java.util.Collections.unmodifiableList(out);
            }
            Checks.check(v == null || v instanceof String || v instanceof Number || v instanceof Boolean, key,
                    v == null ? "null" : v.getClass().getSimpleName(),
                    "a format string, a number, a boolean, null, a nested object or a list");
            return v;
        }
    }

    /** The access log filter one-of ({@code config.accesslog.v3.AccessLogFilter}). */
    public sealed interface Filter {}

    /** A comparison's operator ({@code ComparisonFilter.Op}). */
    public enum Op { EQ, GE, LE }

    /** The response code compares with {@code value} ({@code status_code_filter}). */
    public record StatusCode(Op op, long value) implements Filter {
        public StatusCode {
            Checks.nonNull(op, "status_code_filter.comparison.op");
        }
    }

    /** The request's duration in milliseconds compares with {@code value} ({@code duration_filter}). */
    public record RequestDuration(Op op, long value) implements Filter {
        public RequestDuration {
            Checks.nonNull(op, "duration_filter.comparison.op");
        }
    }

    /** Not a health check request ({@code not_health_check_filter}). */
    public record NotHealthCheck() implements Filter {}

    /** A request that is traced ({@code traceable_filter}). */
    public record Traceable() implements Filter {}

    /**
     * A sample of {@code numerator / denominator} of the requests ({@code runtime_filter}'s {@code percent_sampled};
     * the runtime, which feeds routes only, is not read for its key, so the key's default is the fraction). As Envoy's, a request with an
     * {@code x-request-id} is sampled by it, so that every proxy on its way logs it or none does, unless
     * {@code independentRandomness} ({@code use_independent_randomness}); other requests at random.
     */
    public record Sampled(String runtimeKey, long numerator, long denominator, boolean independentRandomness)
            implements Filter {
        public Sampled {
            Checks.check(denominator > 0, "runtime_filter.percent_sampled.denominator", denominator, "> 0");
            Checks.check(numerator >= 0, "runtime_filter.percent_sampled.numerator", numerator, ">= 0");
        }

        /** Sampled by the request id, as Envoy's default. */
        public Sampled(String runtimeKey, long numerator, long denominator) {
            this(runtimeKey, numerator, denominator, false);
        }
    }

    /** Every filter holds ({@code and_filter}). */
    public record And(List<Filter> filters) implements Filter {
        public And {
            filters = Checks.list(filters, "and_filter.filters");
            Checks.check(filters.size() >= 2, "and_filter.filters", filters.size(), "at least 2 filters");
        }
    }

    /** Some filter holds ({@code or_filter}). */
    public record Or(List<Filter> filters) implements Filter {
        public Or {
            filters = Checks.list(filters, "or_filter.filters");
            Checks.check(filters.size() >= 2, "or_filter.filters", filters.size(), "at least 2 filters");
        }
    }

    /** A request header matches ({@code header_filter}). */
    public record Header(HeaderMatcher header) implements Filter {
        public Header {
            Checks.nonNull(header, "header_filter.header");
        }
    }

    /**
     * The request has one of the response flags named (short names such as {@code UH}); an empty set means any flag
     * ({@code response_flag_filter}).
     */
    public record ResponseFlags(Set<String> flags) implements Filter {
        public ResponseFlags {
            flags = Set.copyOf(flags);
        }
    }

    /**
     * A gRPC request ended with one of the statuses (numbers 0 to 16), or with none of them when {@code exclude}
     * ({@code grpc_status_filter}).
     */
    public record GrpcStatus(Set<Integer> statuses, boolean exclude) implements Filter {
        public GrpcStatus {
            statuses = Set.copyOf(statuses);
        }
    }

    /**
     * A CEL expression holds ({@code extension_filter} {@code envoy.access_loggers.extension_filters.cel}, as Istio's
     * Telemetry API writes a filter): see the runtime's evaluator for the attributes and operators it knows.
     */
    public record Cel(String expression) implements Filter {
        public Cel {
            Checks.nonEmpty(expression, "extension_filter.typed_config.expression");
        }
    }
}
