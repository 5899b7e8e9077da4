package dev.inmesh.api.config.core;

import dev.inmesh.api.config.Checks;

/**
 * Envoy's {@code type.matcher.v3.StringMatcher}: exact, prefix, suffix, contains or a RE2 regex (full match), with
 * {@code ignore_case} for all but the regex.
 */
public sealed interface StringMatcher {
    /** Whether the case of letters is ignored. */
    boolean ignoreCase();

    record Exact(String value, boolean ignoreCase) implements StringMatcher {
        public Exact {
            Checks.nonNull(value, "exact");
        }
    }

    record Prefix(String value, boolean ignoreCase) implements StringMatcher {
        public Prefix {
            Checks.nonEmpty(value, "prefix");
        }
    }

    record Suffix(String value, boolean ignoreCase) implements StringMatcher {
        public Suffix {
            Checks.nonEmpty(value, "suffix");
        }
    }

    record Contains(String value, boolean ignoreCase) implements StringMatcher {
        public Contains {
            Checks.nonEmpty(value, "contains");
        }
    }

    /** A RE2 regular expression that must match the whole value. */
    record SafeRegex(String regex) implements StringMatcher {
        public SafeRegex {
            Checks.nonEmpty(regex, "safe_regex.regex");
        }

        @Override
        public boolean ignoreCase() {
            return false;
        }
    }
}
