package dev.inmesh.runtime.net;

/**
 * Text read and written as Envoy does it through absl: a number in a header or a PROXY line ({@code absl::SimpleAtoi}),
 * in a runtime value ({@code absl::SimpleAtod}), a runtime number shown ({@code absl::StrCat}), and the white space
 * absl and Envoy's {@code StringUtil} trim. One reading for every place that must agree with Envoy's.
 */
public final class AbslText {
    private AbslText() {}

    /** absl's {@code ascii_isspace} (Envoy's {@code StringUtil::WhitespaceChars}): space, \t, \n, \v, \f, \r. */
    public static boolean isSpace(char c) {
        return c == ' ' || c >= '\t' && c <= '\r';
    }

    /** {@code s} without the ASCII white space ({@link #isSpace}) around it, as {@code absl::StripAsciiWhitespace}. */
    public static String strip(String s) {
        int from = 0;
        int to = s.length();
        while (from < to && isSpace(s.charAt(from))) {
            from++;
        }
        while (to > from && isSpace(s.charAt(to - 1))) {
            to--;
        }
        return s.substring(from, to);
    }

    /** A decimal number as {@code absl::SimpleAtod} takes it whole: a sign, digits, a fraction, an exponent. */
    private static final java.util.regex.Pattern DECIMAL =
            java.util.regex.Pattern.compile("[+-]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?");

    /**
     * {@code s} as {@code absl::SimpleAtod} reads it into a double, with ASCII white space around it; null for anything
     * else. Its {@code inf} and {@code nan} are left out too (null), as no reader here takes them.
     */
    public static Double decimal(String s) {
        String t = strip(s);
        return DECIMAL.matcher(t).matches() ? Double.valueOf(t) : null;
    }

    /**
     * {@code s} as {@code absl::SimpleAtoi} reads it into an unsigned integer: decimal digits, any number of leading
     * zeros, with ASCII white space around them and an optional {@code +}; -1 for anything else (empty, a {@code -},
     * other characters) and for a value past {@code max}.
     */
    public static long unsigned(String s, long max) {
        String t = strip(s);
        int from = t.startsWith("+") ? 1 : 0;
        if (from == t.length()) {
            return -1;
        }
        long n = 0;
        for (int i = from; i < t.length(); i++) {
            char c = t.charAt(i);
            if (c < '0' || c > '9') {
                return -1;
            }
            int digit = c - '0';
            if (n > (max - digit) / 10) {
                return -1;
            }
            n = n * 10 + digit;
        }
        return n;
    }
}
