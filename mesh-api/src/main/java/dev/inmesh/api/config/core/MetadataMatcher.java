package dev.inmesh.api.config.core;

import dev.inmesh.api.config.Checks;
import java.util.List;

/**
 * Envoy's {@code type.matcher.v3.MetadataMatcher}: the value of a request's dynamic metadata under the namespace
 * {@code filter}, reached by the struct keys of {@code path}, matches {@code value}; {@code invert} negates it. A path
 * that leads nowhere finds no value, which no value matcher matches (only {@code invert} does).
 *
 * @param filter the namespace: the name of the filter that wrote the metadata
 * @param path the keys, outermost first (at least one)
 * @param value what the value must match
 * @param invert whether the match is negated
 */
public record MetadataMatcher(String filter, List<String> path, ValueMatcher value, boolean invert) {
    public MetadataMatcher {
        Checks.nonEmpty(filter, "filter");
        path = Checks.list(path, "path");
        Checks.check(!path.isEmpty(), "path", "[]", "at least one key");
        Checks.nonNull(value, "value");
    }

    /** Envoy's {@code type.matcher.v3.ValueMatcher}, in the forms Inmesh evaluates. */
    public sealed interface ValueMatcher {
        /** A string value that the matcher matches ({@code string_match}); no other kind of value does. */
        record StringMatch(StringMatcher matcher) implements ValueMatcher {
            public StringMatch {
                Checks.nonNull(matcher, "string_match");
            }
        }

        /** A list value with an element that {@code oneOf} matches ({@code list_match.one_of}). */
        record ListOneOf(ValueMatcher oneOf) implements ValueMatcher {
            public ListOneOf {
                Checks.nonNull(oneOf, "list_match.one_of");
            }
        }

        /** Any of the matchers matches ({@code or_match}). */
        record Or(List<ValueMatcher> matchers) implements ValueMatcher {
            public Or {
                matchers = Checks.list(matchers, "or_match.value_matchers");
                Checks.check(matchers.size() >= 2, "or_match.value_matchers", matchers.size(), "at least 2");
            }
        }

        /** A value is there ({@code present_match: true}); as Envoy's, {@code false} matches nothing. */
        record Present(boolean present) implements ValueMatcher {}

        /** A boolean value equal to this ({@code bool_match}). */
        record Bool(boolean value) implements ValueMatcher {}
    }
}
