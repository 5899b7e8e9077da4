package dev.inmesh.runtime.router;

import com.google.re2j.Pattern;
import dev.inmesh.api.config.core.StringMatcher;
import java.util.Locale;
import java.util.function.Predicate;

/** Compiles {@link StringMatcher}s into predicates; regexes are RE2 (linear time) and match the whole value. */
public final class StringMatchers {
    private StringMatchers() {}

    public static Predicate<String> compile(StringMatcher m) {
        if (m instanceof StringMatcher.Exact e) {
            String v = e.value();
            return e.ignoreCase() ? s -> s.equalsIgnoreCase(v) : v::equals;
        } else if (m instanceof StringMatcher.Prefix p) {
            String v = p.value();
            return p.ignoreCase() ? s -> s.regionMatches(true, 0, v, 0, v.length()) : s -> s.startsWith(v);
        } else if (m instanceof StringMatcher.Suffix x) {
            String v = x.value();
            return x.ignoreCase() ? s -> s.length() >= v.length()
                    && s.regionMatches(true, s.length() - v.length(), v, 0, v.length()) : s -> s.endsWith(v);
        } else if (m instanceof StringMatcher.Contains c) {
            String v = c.value();
            if (c.ignoreCase()) {
                String lower = v.toLowerCase(Locale.ROOT);
                return s -> s.toLowerCase(Locale.ROOT).contains(lower);
            }
            return s -> s.contains(v);
        } else if (m instanceof StringMatcher.SafeRegex r) {
            Pattern p = Pattern.compile(r.regex());
            return s -> p.matches(s);
        }
        throw new IllegalArgumentException("unknown matcher " + m);
    }
}
