package dev.inmesh.runtime.router;

/**
 * Case-insensitive comparison as Envoy's matchers do it: only the ASCII letters A-Z and a-z fold. Java's own
 * {@code equalsIgnoreCase} and {@code regionMatches(true, ...)} fold every Unicode letter, and Inmesh holds a header
 * value or a path as one char per byte off the wire (ISO-8859-1), so they would also fold the bytes of a UTF-8
 * sequence ({@code 0xC3} with {@code 0xE3}: the first byte of {@code é} with that of {@code ã}) and the Kelvin sign
 * with {@code k}, which Envoy's {@code ignore_case} and {@code case_sensitive: false} never match.
 */
final class AsciiCase {
    private AsciiCase() {}

    static char lower(char c) {
        return c >= 'A' && c <= 'Z' ? (char) (c + ('a' - 'A')) : c;
    }

    /** Whether {@code s}, from {@code offset}, starts with {@code v}, ASCII letters compared without case. */
    static boolean regionMatches(String s, int offset, String v) {
        if (offset < 0 || offset > s.length() - v.length()) {
            return false;
        }
        for (int i = 0; i < v.length(); i++) {
            char a = s.charAt(offset + i);
            char b = v.charAt(i);
            if (a != b && lower(a) != lower(b)) {
                return false;
            }
        }
        return true;
    }

    static boolean equals(String s, String v) {
        return s.length() == v.length() && regionMatches(s, 0, v);
    }

    static boolean startsWith(String s, String v) {
        return regionMatches(s, 0, v);
    }

    static boolean endsWith(String s, String v) {
        return regionMatches(s, s.length() - v.length(), v);
    }

    /** {@code s} with its ASCII letters lowered; {@code s} itself when it has none upper. */
    static String lower(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c >= 'A' && c <= 'Z') {
                char[] out = s.toCharArray();
                for (int j = i; j < out.length; j++) {
                    out[j] = lower(out[j]);
                }
                return new String(out);
            }
        }
        return s;
    }
}
