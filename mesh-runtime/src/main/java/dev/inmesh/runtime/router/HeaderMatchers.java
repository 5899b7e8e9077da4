package dev.inmesh.runtime.router;

import dev.inmesh.api.config.route.HeaderMatcher;
import java.util.List;
import java.util.Locale;
import java.util.function.Predicate;

/**
 * Compiled header conditions, with Envoy's rules: a missing header matches only {@code present_match: false} (or,
 * inverted, {@code present_match: true}) unless {@code treat_missing_header_as_empty}; a legacy
 * {@code exact_match: ""} matches any value (where {@code string_match}'s {@code exact: ""} matches only the empty
 * value); a range needs an integer in [start, end).
 */
public final class HeaderMatchers {
    private HeaderMatchers() {}

    /** A condition on a header map. */
    public interface Compiled {
        boolean matches(java.util.function.Function<String, String> headers);
    }

    public static Compiled compile(HeaderMatcher m) {
        String name = m.name().toLowerCase(Locale.ROOT);
        boolean invert = m.invertMatch();
        boolean missingAsEmpty = m.treatMissingHeaderAsEmpty();
        HeaderMatcher.Rule rule = m.rule();
        boolean presentRule = rule instanceof HeaderMatcher.Present;
        boolean presentValue = presentRule && ((HeaderMatcher.Present) rule).present();
        Predicate<String> value = valuePredicate(rule);
        return headers -> {
            String v = headers.apply(name);
            if (v == null) {
                if (!missingAsEmpty) {
                    return invert ? presentRule && presentValue : presentRule && !presentValue;
                }
                v = "";
            }
            return value.test(v) != invert;
        };
    }

    private static Predicate<String> valuePredicate(HeaderMatcher.Rule rule) {
        if (rule instanceof HeaderMatcher.Present p) {
            boolean present = p.present();
            return v -> present;
        } else if (rule instanceof HeaderMatcher.Range r) {
            long start = r.start();
            long end = r.end();
            return v -> {
                try {
                    long n = Long.parseLong(v);
                    return n >= start && n < end;
                } catch (NumberFormatException e) {
                    return false;
                }
            };
        } else if (rule instanceof HeaderMatcher.AnyValue) {
            return v -> true;
        }
        return StringMatchers.compile(((HeaderMatcher.Value) rule).matcher());
    }

    /** One condition that holds when all of the matchers hold (an empty list always holds). */
    static Compiled compileAll(List<HeaderMatcher> ms) {
        if (ms.size() == 1) {
            return compile(ms.get(0));
        }
        Compiled[] all = ms.stream().map(HeaderMatchers::compile).toArray(Compiled[]::new);
        return headers -> {
            for (Compiled c : all) {
                if (!c.matches(headers)) {
                    return false;
                }
            }
            return true;
        };
    }
}
