package dev.inmesh.runtime.accesslog;

import dev.inmesh.runtime.stats.StreamInfo;
import java.util.function.Function;

/**
 * CEL expressions whose value is a label, as Istio's stats filter reads a metric override's {@code dimensions} (a
 * Telemetry {@code tagOverrides} value): the same expressions and attributes as {@link CelFilter}'s access log filters,
 * evaluated for a finished request and printed as Envoy prints a CEL value.
 */
public final class CelValues {
    private CelValues() {}

    /**
     * The value of {@code expression} for a finished request (its headers from {@link StreamInfo#log()}), or null where
     * it cannot be evaluated.
     *
     * @throws IllegalArgumentException when the expression does not parse, or names an attribute root Inmesh does not
     *     know (Istio's stats then skip the dimension)
     */
    public static Function<StreamInfo, String> compile(String expression) {
        CelFilter f = CelFilter.compile(expression);
        return s -> f.print(AccessLogEntry.of(s, s.log()));
    }
}
