package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.StringMatcher;

/**
 * A condition on one request header ({@code route.v3.HeaderMatcher}). Conditions of a route are ANDed.
 *
 * @param name the header name (compared case-insensitively)
 * @param rule what the value must satisfy
 * @param invertMatch whether the result is inverted
 * @param treatMissingHeaderAsEmpty whether a missing header is matched as an empty value
 */
public record HeaderMatcher(String name, Rule rule, boolean invertMatch, boolean treatMissingHeaderAsEmpty) {
    public HeaderMatcher {
        Checks.nonEmpty(name, "headers.name");
        Checks.nonNull(rule, "headers." + name + ".header_match_specifier");
    }

    /** The header match specifier one-of. */
    public sealed interface Rule {}

    /**
     * The value satisfies a string matcher (exact, prefix, suffix, contains, regex, and the legacy forms but for an
     * empty {@code exact_match}, which is {@link AnyValue}). An empty exact value matches the empty value only.
     */
    public record Value(StringMatcher matcher) implements Rule {
        public Value {
            Checks.nonNull(matcher, "string_match");
        }
    }

    /**
     * The header is present, whatever its value: the legacy {@code exact_match: ""}. Unlike {@code present_match:
     * true}, inverted it does not match a missing header (as any value matcher, it needs the header to judge).
     */
    public record AnyValue() implements Rule {}

    /** The header is present ({@code present_match: true}) or absent ({@code false}). */
    public record Present(boolean present) implements Rule {}

    /** The value is an integer in [start, end). */
    public record Range(long start, long end) implements Rule {
        public Range {
            Checks.check(start < end, "range_match", "[" + start + ", " + end + ")", "start < end");
        }
    }
}
