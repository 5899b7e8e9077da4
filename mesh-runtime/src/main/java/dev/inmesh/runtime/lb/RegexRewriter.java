package dev.inmesh.runtime.lb;

import com.google.re2j.Pattern;
import dev.inmesh.api.config.route.RegexRewrite;

/**
 * A {@link RegexRewrite} compiled: every match of its RE2 pattern in a value is replaced by its substitution, where
 * {@code \1} stands for a group as in Envoy (a header hash policy's {@code regex_rewrite}; the router's path
 * {@code regex_rewrite} too).
 */
public final class RegexRewriter {
    private final Pattern pattern;
    private final String substitution;

    private RegexRewriter(RegexRewrite rewrite) {
        this.pattern = Pattern.compile(rewrite.pattern());
        this.substitution = toRe2jSubstitution(rewrite.substitution());
    }

    public static RegexRewriter of(RegexRewrite rewrite) {
        return new RegexRewriter(rewrite);
    }

    /** {@code value} with every match replaced. */
    public String apply(String value) {
        return pattern.matcher(value).replaceAll(substitution);
    }

    /** Envoy's substitutions use {@code \1}; RE2/J's use {@code $1}. Literal {@code $} is escaped. */
    static String toRe2jSubstitution(String s) {
        StringBuilder sb = new StringBuilder(s.length() + 4);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 1 < s.length() && Character.isDigit(s.charAt(i + 1))) {
                sb.append('$').append(s.charAt(++i));
            } else if (c == '\\' && i + 1 < s.length()) {
                sb.append('\\').append(s.charAt(++i));
            } else if (c == '$') {
                sb.append("\\$");
            } else {
                sb.append(c);
            }
        }
        return sb.toString();
    }
}
