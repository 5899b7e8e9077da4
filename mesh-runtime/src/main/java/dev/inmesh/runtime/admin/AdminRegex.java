package dev.inmesh.runtime.admin;

import com.google.re2j.Pattern;
import com.google.re2j.PatternSyntaxException;
import java.util.function.Predicate;

/**
 * The regular expressions of the admin server's queries ({@code /stats?filter=}, {@code /config_dump?name_regex=}),
 * compiled as Envoy's admin compiles them, by RE2's rules (re2j): a lookaround, a back-reference, a possessive
 * quantifier, an atomic group or a Java class ({@code \p{javaLowerCase}}) is no RE2 expression, and RE2's named group
 * {@code (?P<name>...)} is one.
 */
final class AdminRegex {
    private AdminRegex() {}

    /**
     * The names the expression finds, anywhere in them ({@code RE2::PartialMatch}), or the whole name only
     * ({@code RE2::FullMatch}).
     *
     * @throws PatternSyntaxException when it is no RE2 expression
     */
    static Predicate<String> compile(String regex, boolean whole) {
        Pattern p = Pattern.compile(regex);
        return whole ? n -> p.matcher(n).matches() : n -> p.matcher(n).find();
    }
}
