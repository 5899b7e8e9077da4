package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.StringMatcher;

/**
 * A condition on a query parameter: the first occurrence of {@code name} satisfies {@code matcher}, or, when
 * {@code matcher} is null, the parameter is present.
 */
public record QueryParameterMatcher(String name, StringMatcher matcher) {
    public QueryParameterMatcher {
        Checks.nonEmpty(name, "query_parameters.name");
    }
}
