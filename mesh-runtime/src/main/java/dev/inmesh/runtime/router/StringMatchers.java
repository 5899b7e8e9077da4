package dev.inmesh.runtime.router;

import com.google.re2j.Pattern;
import dev.inmesh.api.config.core.StringMatcher;
import java.util.function.Predicate;

/**
 * Compiles {@link StringMatcher}s into predicates; regexes are RE2 (linear time) and match the whole value;
 * {@code ignore_case} folds ASCII letters only, as Envoy's ({@link AsciiCase}).
 */
public final class StringMatchers {
    private StringMatchers() {}

    public static Predicate<String> compile(StringMatcher m) {
        if (m instanceof StringMatcher.Exact e) {
            String v = e.value();
            return e.ignoreCase() ? s -> AsciiCase.equals(s, v) : v::equals;
        } else if (m instanceof StringMatcher.Prefix p) {
            String v = p.value();
            return p.ignoreCase() ? s -> AsciiCase.startsWith(s, v) : s -> s.startsWith(v);
        } else if (m instanceof StringMatcher.Suffix x) {
            String v = x.value();
            return x.ignoreCase() ? s -> AsciiCase.endsWith(s, v) : s -> s.endsWith(v);
        } else if (m instanceof StringMatcher.Contains c) {
            String v = c.value();
            if (c.ignoreCase()) {
                String lower = AsciiCase.lower(v);
                return s -> AsciiCase.lower(s).contains(lower);
            }
            return s -> s.contains(v);
        } else if (m instanceof StringMatcher.SafeRegex r) {
            Pattern p = Pattern.compile(r.regex());
            return s -> p.matches(s);
        }
        throw new IllegalArgumentException("unknown matcher " + m);
    }
}
