package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;

/** Rewrites the path by a RE2 regex: every match of {@code pattern} is replaced by {@code substitution} (\1 groups). */
public record RegexRewrite(String pattern, String substitution) {
    public RegexRewrite {
        Checks.nonEmpty(pattern, "regex_rewrite.pattern.regex");
        Checks.nonNull(substitution, "regex_rewrite.substitution");
    }
}
