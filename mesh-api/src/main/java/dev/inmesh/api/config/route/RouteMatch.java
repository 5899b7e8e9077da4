package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.api.config.core.MetadataMatcher;
import java.util.List;

/**
 * When a route applies ({@code route.v3.RouteMatch}): a path condition, header, query parameter and dynamic metadata
 * conditions (all ANDed), and an optional runtime fraction (matches when {@code random % denominator < numerator}).
 *
 * @param runtimeFraction the share of requests the route takes ({@code runtime_fraction.default_value}); null for all
 * @param dynamicMetadata conditions on the request's dynamic metadata as it is when the route is chosen
 *     ({@code dynamic_metadata}: istiod writes them for a VirtualService's {@code @request.auth.claims} header
 *     matches, on the JWT authentication filter's metadata)
 * @param runtimeKey the runtime key whose value, when the runtime has one, is the share instead of
 *     {@code runtimeFraction}'s ({@code runtime_fraction.runtime_key}); null for none
 */
public record RouteMatch(PathMatcher path, boolean caseSensitive, List<HeaderMatcher> headers,
                         List<QueryParameterMatcher> queryParameters, FractionalPercent runtimeFraction,
                         boolean grpc, List<MetadataMatcher> dynamicMetadata, String runtimeKey) {
    public RouteMatch {
        Checks.nonNull(path, "match.path_specifier");
        headers = Checks.list(headers, "headers");
        queryParameters = Checks.list(queryParameters, "query_parameters");
        dynamicMetadata = Checks.list(dynamicMetadata, "dynamic_metadata");
        runtimeKey = runtimeKey == null || runtimeKey.isEmpty() ? null : runtimeKey;
    }

    /** A match whose runtime fraction, if any, has no runtime key. */
    public RouteMatch(PathMatcher path, boolean caseSensitive, List<HeaderMatcher> headers,
                      List<QueryParameterMatcher> queryParameters, FractionalPercent runtimeFraction, boolean grpc,
                      List<MetadataMatcher> dynamicMetadata) {
        this(path, caseSensitive, headers, queryParameters, runtimeFraction, grpc, dynamicMetadata, null);
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
