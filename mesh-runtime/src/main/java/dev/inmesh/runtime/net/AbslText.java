package dev.inmesh.runtime.net;

/**
 * Text read as Envoy reads it through absl: a number in a header or a PROXY line ({@code absl::SimpleAtoi}), and the
 * white space absl and Envoy's {@code StringUtil} trim. One reading for every place that must agree with Envoy's.
 */
public final class AbslText {
    private AbslText() {}

    /** absl's {@code ascii_isspace} (Envoy's {@code StringUtil::WhitespaceChars}): space, \t, \n, \v, \f, \r. */
    public static boolean isSpace(char c) {
        return c == ' ' || c >= '\t' && c <= '\r';
    }

    /**
     * {@code s} as {@code absl::SimpleAtoi} reads it into an unsigned integer: decimal digits, any number of leading
     * zeros, with ASCII white space around them and an optional {@code +}; -1 for anything else (empty, a {@code -},
     * other characters) and for a value past {@code max}.
     */
    public static long unsigned(String s, long max) {
        int from = 0;
        int to = s.length();
        while (from < to && isSpace(s.charAt(from))) {
            from++;
        }
        while (to > from && isSpace(s.charAt(to - 1))) {
            to--;
        }
        if (from < to && s.charAt(from) == '+') {
            from++;
        }
        if (from == to) {
            return -1;
        }
        long n = 0;
        for (int i = from; i < to; i++) {
            char c = s.charAt(i);
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
