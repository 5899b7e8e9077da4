package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.FractionalPercent;
import java.util.List;

/**
 * When a route applies ({@code route.v3.RouteMatch}): a path condition, header and query parameter conditions (all
 * ANDed), and an optional runtime fraction (matches when {@code random % denominator < numerator}).
 */
public record RouteMatch(PathMatcher path, boolean caseSensitive, List<HeaderMatcher> headers,
                         List<QueryParameterMatcher> queryParameters, FractionalPercent runtimeFraction,
                         boolean grpc) {
    public RouteMatch {
        Checks.nonNull(path, "match.path_specifier");
        headers = Checks.list(headers, "headers");
        queryParameters = Checks.list(queryParameters, "query_parameters");
    }

    /** A prefix match with nothing else. */
    public static RouteMatch prefix(String prefix) {
        return new RouteMatch(new PathMatcher.Prefix(prefix), true, List.of(), List.of(), null, false);
    }
}
