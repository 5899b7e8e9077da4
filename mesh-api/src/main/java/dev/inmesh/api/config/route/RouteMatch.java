package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.api.config.core.MetadataMatcher;
import java.util.List;

/**
 * When a route applies ({@code route.v3.RouteMatch}): a path condition, header, query parameter and dynamic metadata
 * conditions (all ANDed), and an optional runtime fraction (matches when {@code random % denominator < numerator}).
 *
 * @param dynamicMetadata conditions on the request's dynamic metadata as it is when the route is chosen
 *     ({@code dynamic_metadata}: istiod writes them for a VirtualService's {@code @request.auth.claims} header
 *     matches, on the JWT authentication filter's metadata)
 */
public record RouteMatch(PathMatcher path, boolean caseSensitive, List<HeaderMatcher> headers,
                         List<QueryParameterMatcher> queryParameters, FractionalPercent runtimeFraction,
                         boolean grpc, List<MetadataMatcher> dynamicMetadata) {
    public RouteMatch {
        Checks.nonNull(path, "match.path_specifier");
        headers = Checks.list(headers, "headers");
        queryParameters = Checks.list(queryParameters, "query_parameters");
        dynamicMetadata = Checks.list(dynamicMetadata, "dynamic_metadata");
    }

    /** A match without dynamic metadata conditions. */
    public RouteMatch(PathMatcher path, boolean caseSensitive, List<HeaderMatcher> headers,
                      List<QueryParameterMatcher> queryParameters, FractionalPercent runtimeFraction, boolean grpc) {
        this(path, caseSensitive, headers, queryParameters, runtimeFraction, grpc, List.of());
    }

    /** A prefix match with nothing else. */
    public static RouteMatch prefix(String prefix) {
        return new RouteMatch(new PathMatcher.Prefix(prefix), true, List.of(), List.of(), null, false);
    }
}
