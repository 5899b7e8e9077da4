package dev.inmesh.runtime.router;

import java.util.HashSet;
import java.util.Set;

/**
 * Envoy's URI templates ({@code envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig}), which istiod
 * writes for an AuthorizationPolicy path with {@code {*}} or {@code {**}} (as {@code *} and {@code **}), turned into
 * the RE2 regex a path (without its query and fragment) must match whole.
 *
 * <p>A template starts with {@code /}, holds printable ASCII only, and is a {@code /}-separated list of segments,
 * each a literal (RFC 3986 path characters but {@code *} and {@code =}), {@code *} (one segment: one or more path
 * characters, no {@code /}), {@code **} (any text, {@code /} included, possibly empty) or a variable
 * {@code {name}} ({@code *}) or {@code {name=...}} (its own {@code /}-separated literals and globs). The last
 * segment may end in a literal suffix ({@code /*.jpg}), and the template in one {@code /} (an empty last segment).
 * As Envoy validates a template: at most five variables, named {@code [a-zA-Z][a-zA-Z0-9_]*} with one to sixteen
 * characters, each once; nothing that globs after a {@code **}; no empty segment.
 */
public final class UriTemplates {
    /** RFC 3986 path characters without {@code *}, {@code =} and {@code /}, as a regex class body. */
    private static final String PCHAR = "a-zA-Z0-9\\-._~%!$&'()+,;:@";
    private static final String ONE_SEGMENT = "[" + PCHAR + "]+";
    private static final String ANY_TEXT = "[" + PCHAR + "/]*";
    private static final int MAX_VARIABLES = 5;
    private static final int MAX_NAME = 16;

    private UriTemplates() {}

    /**
     * The regex that a path matches, whole, when the template does.
     *
     * @throws IllegalArgumentException naming what is wrong with the template
     */
    public static String regex(String template) {
        if (template.isEmpty() || template.charAt(0) != '/') {
            throw new IllegalArgumentException("does not start with /");
        }
        for (int i = 0; i < template.length(); i++) {
            char c = template.charAt(i);
            if (c <= ' ' || c > '~') {
                throw new IllegalArgumentException("has a character that is not printable ASCII at " + i);
            }
        }
        Parse p = new Parse();
        StringBuilder out = new StringBuilder();
        String rest = template.substring(1);
        boolean first = true;
        while (!rest.isEmpty()) {
            out.append('/');
            first = false;
            if (rest.startsWith("**") || rest.startsWith("*")) {
                int len = rest.startsWith("**") ? 2 : 1;
                out.append(p.glob(len == 2));
                rest = rest.substring(len);
            } else if (rest.charAt(0) == '{') {
                int close = rest.indexOf('}');
                if (close < 0) {
                    throw new IllegalArgumentException("has a { without its }");
                }
                out.append(p.variable(rest.substring(1, close)));
                rest = rest.substring(close + 1);
            } else {
                int slash = rest.indexOf('/');
                String literal = slash < 0 ? rest : rest.substring(0, slash);
                out.append(literal(literal));
                rest = rest.substring(literal.length());
            }
            if (rest.isEmpty()) {
                break;
            }
            if (rest.equals("/")) {
                out.append('/'); // a trailing slash: an empty last segment
                break;
            }
            if (rest.charAt(0) == '/') {
                rest = rest.substring(1);
                if (rest.isEmpty() || rest.charAt(0) == '/') {
                    throw new IllegalArgumentException("has an empty segment");
                }
                continue;
            }
            // a suffix of the last segment (/*.jpg): a literal to the end of the template
            if (rest.indexOf('/') >= 0) {
                throw new IllegalArgumentException("has text after a glob or variable within a segment that is "
                        + "not the last");
            }
            out.append(literal(rest));
            break;
        }
        if (first) {
            out.append('/'); // the template "/"
        }
        return out.toString();
    }

    /** A literal's regex: each character checked to be a path character and quoted. */
    private static String literal(String literal) {
        if (literal.isEmpty()) {
            throw new IllegalArgumentException("has an empty segment");
        }
        StringBuilder out = new StringBuilder(literal.length() * 2);
        for (int i = 0; i < literal.length(); i++) {
            char c = literal.charAt(i);
            boolean alnum = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9';
            if (!alnum && "-._~%!$&'()+,;:@".indexOf(c) < 0) {
                throw new IllegalArgumentException("has '" + c + "' in the literal \"" + literal + "\" (expected: "
                        + "path characters but * and =, a glob or a variable making a whole segment)");
            }
            if (!alnum) {
                out.append('\\');
            }
            out.append(c);
        }
        return out.toString();
    }

    /** The state of one template's parse: its variables, and whether a {@code **} was seen. */
    private static final class Parse {
        private final Set<String> names = new HashSet<>();
        private boolean textGlob;

        String glob(boolean text) {
            if (textGlob) {
                throw new IllegalArgumentException("has a glob after **");
            }
            textGlob = text;
            return text ? ANY_TEXT : ONE_SEGMENT;
        }

        String variable(String body) {
            int eq = body.indexOf('=');
            String name = eq < 0 ? body : body.substring(0, eq);
            if (!name.matches("[a-zA-Z][a-zA-Z0-9_]*") || name.length() > MAX_NAME) {
                throw new IllegalArgumentException("has the variable name \"" + name + "\" (expected: a letter, "
                        + "then letters, digits or _, at most " + MAX_NAME + ")");
            }
            if (!names.add(name)) {
                throw new IllegalArgumentException("repeats the variable " + name);
            }
            if (names.size() > MAX_VARIABLES) {
                throw new IllegalArgumentException("has more than " + MAX_VARIABLES + " variables");
            }
            if (eq < 0) {
                return "(?:" + glob(false) + ")";
            }
            String match = body.substring(eq + 1);
            if (match.isEmpty()) {
                throw new IllegalArgumentException("has the variable " + name + " with an empty match");
            }
            StringBuilder out = new StringBuilder("(?:");
            String[] parts = match.split("/", -1);
            for (int i = 0; i < parts.length; i++) {
                if (i > 0) {
                    out.append('/');
                }
                String part = parts[i];
                out.append(part.equals("*") || part.equals("**") ? glob(part.length() == 2) : literal(part));
            }
            return out.append(')').toString();
        }
    }
}
