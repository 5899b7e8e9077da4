package dev.inmesh.api.config;

import java.util.List;
import java.util.Map;
import java.util.Objects;

/** Argument checks for the config records, with messages in the form {@code field: value (expected: ...)}. */
public final class Checks {
    private Checks() {}

    /** Throws {@link IllegalArgumentException} with {@code field: value (expected: expectation)} unless ok. */
    public static void check(boolean ok, String field, Object value, String expectation) {
        if (!ok) {
            throw new IllegalArgumentException(field + ": " + value + " (expected: " + expectation + ")");
        }
    }

    /** Non-null check with a message naming the field. */
    public static <T> T nonNull(T value, String field) {
        if (value == null) {
            throw new IllegalArgumentException(field + ": null (expected: a value)");
        }
        return value;
    }

    /** A non-empty string. */
    public static String nonEmpty(String value, String field) {
        check(value != null && !value.isEmpty(), field, value == null ? "null" : "\"\"", "a non-empty string");
        return value;
    }

    /**
     * A header name or value as Envoy's {@code HeaderValue} validation takes it: without NUL, CR or LF, which no HTTP
     * header can carry (a rule with one would fail every request it applies to).
     */
    public static String headerText(String value, String field) {
        nonNull(value, field);
        check(value.indexOf('\0') < 0 && value.indexOf('\r') < 0 && value.indexOf('\n') < 0, field,
                "\"" + value.replace("\0", "\\0").replace("\r", "\\r").replace("\n", "\\n") + "\"",
                "no NUL, CR or LF, as Envoy validates a header");
        return value;
    }

    /** An immutable copy of a possibly null list (null becomes empty); null elements are rejected. */
    public static <T> List<T> list(List<T> value, String field) {
        if (value == null) {
            return List.of();
        }
        for (int i = 0; i < value.size(); i++) {
            if (value.get(i) == null) {
                throw new IllegalArgumentException(field + "[" + i + "]: null (expected: a value)");
            }
        }
        return List.copyOf(value);
    }

    /** An immutable copy of a possibly null map (null becomes empty). */
    public static <K, V> Map<K, V> map(Map<K, V> value) {
        return value == null ? Map.of() : Map.copyOf(value);
    }

    /** A value in [min, max]. */
    public static long range(long value, long min, long max, String field) {
        check(value >= min && value <= max, field, value, ">= " + min + " and <= " + max);
        return value;
    }

    /** An optional protobuf {@code uint32}: null, or 0 to 4294967295. */
    public static Long uint32OrNull(Long value, String field) {
        check(value == null || value >= 0 && value <= 0xFFFF_FFFFL, field, value, "0..4294967295");
        return value;
    }

    /** A non-negative value. */
    public static long nonNegative(long value, String field) {
        check(value >= 0, field, value, ">= 0");
        return value;
    }

    /** A port number: 0 to 65535. */
    public static int port(int value, String field) {
        check(value >= 0 && value <= 65535, field, value, "0..65535");
        return value;
    }

    /** Equality helper that tolerates null. */
    public static boolean same(Object a, Object b) {
        return Objects.equals(a, b);
    }
}
