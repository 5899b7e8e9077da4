package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;

/** The path part of a {@link RouteMatch}, Envoy's {@code path_specifier} one-of. */
public sealed interface PathMatcher {

    /** The path starts with {@code prefix} ({@code /} matches everything). */
    record Prefix(String prefix) implements PathMatcher {
        public Prefix {
            Checks.nonNull(prefix, "prefix");
        }
    }

    /** The path (without query) equals {@code path}. */
    record Path(String path) implements PathMatcher {
        public Path {
            Checks.nonNull(path, "path");
        }
    }

    /** The whole path (without query) matches a RE2 regex. */
    record SafeRegex(String regex) implements PathMatcher {
        public SafeRegex {
            Checks.nonEmpty(regex, "safe_regex.regex");
        }
    }

    /**
     * The path equals {@code prefix} or starts with it followed by {@code /}, {@code ?} or {@code #}; the prefix must
     * start with {@code /} and must not end with {@code /} or contain {@code ?} or {@code #}.
     */
    record PathSeparatedPrefix(String prefix) implements PathMatcher {
        public PathSeparatedPrefix {
            Checks.check(prefix != null && prefix.startsWith("/") && !prefix.endsWith("/")
                            && prefix.indexOf('?') < 0 && prefix.indexOf('#') < 0,
                    "path_separated_prefix", prefix, "starting with '/', not ending with '/', without '?' or '#'");
        }
    }
}
