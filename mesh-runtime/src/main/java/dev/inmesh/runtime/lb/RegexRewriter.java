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

    /** False when the substitution names a group the pattern does not have: RE2 then replaces nothing. */
    private final boolean valid;

    private RegexRewriter(RegexRewrite rewrite) {
        this.pattern = Pattern.compile(rewrite.pattern());
        this.substitution = toRe2jSubstitution(rewrite.substitution());
        this.valid = maxGroup(rewrite.substitution()) <= pattern.matcher("").groupCount();
    }

    public static RegexRewriter of(RegexRewrite rewrite) {
        return new RegexRewriter(rewrite);
    }

    /**
     * {@code value} with every match replaced; unchanged when the substitution names a group the pattern does not
     * have, as Envoy's RE2 then replaces nothing.
     */
    public String apply(String value) {
        return valid ? pattern.matcher(value).replaceAll(substitution) : value;
    }

    /** The highest group a substitution names ({@code \0} to {@code \9}: one digit each, as RE2's), or 0. */
    private static int maxGroup(String s) {
        int max = 0;
        for (int i = 0; i + 1 < s.length(); i++) {
            if (s.charAt(i) == '\\') {
                char next = s.charAt(++i);
                if (next >= '0' && next <= '9') {
                    max = Math.max(max, next - '0');
                }
            }
        }
        return max;
    }

    /**
     * Envoy's substitutions use {@code \1}; RE2/J's use {@code $1}. Literal {@code $} is escaped, and so is a digit
     * right after a group, which RE2 reads as text ({@code \12} is group 1 then {@code 2}) where RE2/J would read
     * group 12.
     */
    static String toRe2jSubstitution(String s) {
        StringBuilder sb = new StringBuilder(s.length() + 4);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 1 < s.length() && s.charAt(i + 1) >= '0' && s.charAt(i + 1) <= '9') {
                sb.append('$').append(s.charAt(++i));
                if (i + 1 < s.length() && s.charAt(i + 1) >= '0' && s.charAt(i + 1) <= '9') {
                    sb.append('\\').append(s.charAt(++i));
                }
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
