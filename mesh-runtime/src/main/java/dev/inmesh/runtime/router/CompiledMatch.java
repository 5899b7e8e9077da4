package dev.inmesh.runtime.router;

import com.google.re2j.Pattern;
import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.api.config.core.MetadataMatcher;
import dev.inmesh.api.config.route.PathMatcher;
import dev.inmesh.api.config.route.RouteMatch;
import java.util.function.Predicate;

/**
 * A route's match conditions compiled: the path, gRPC, header, query parameter and dynamic metadata conditions and the
 * runtime fraction.
 * It holds nothing of the route itself, so that routes with equal conditions share one (a table build interns them):
 * across thousands of virtual hosts of one mesh the same conditions repeat, and a shared one is usually in cache when
 * a selection tries it, where the route it guards is not.
 */
final class CompiledMatch {
    /** One of the PATH_ constants, and the prefix or path it compares (shared by every route of the table). */
    final int pathKind;
    final String pathValue;
    final boolean caseSensitive;
    private final Pattern pathRegex;
    /** All header matchers as one condition, or null. */
    private final HeaderMatchers.Compiled headers;
    private final QueryConditions query;
    /** The share of requests matched: the runtime's value of the match's runtime key, else its fraction; null: all. */
    private final FractionalPercent fraction;
    private final boolean grpc;
    /** The dynamic metadata conditions on the JWT filter's metadata, all of which must hold; null when none. */
    private final Predicate<Object> metadata;

    static final int PATH_PREFIX = 0;
    static final int PATH_EXACT = 1;
    static final int PATH_REGEX = 2;
    static final int PATH_SEPARATED_PREFIX = 3;

    CompiledMatch(RouteMatch m, RouteTable.Interner interner) {
        PathMatcher path = m.path();
        if (path instanceof PathMatcher.Prefix x) {
            pathKind = PATH_PREFIX;
            pathValue = interner.intern(x.prefix());
        } else if (path instanceof PathMatcher.Path x) {
            pathKind = PATH_EXACT;
            pathValue = interner.intern(x.path());
        } else if (path instanceof PathMatcher.PathSeparatedPrefix x) {
            pathKind = PATH_SEPARATED_PREFIX;
            pathValue = interner.intern(x.prefix());
        } else {
            pathKind = PATH_REGEX;
            pathValue = ((PathMatcher.SafeRegex) path).regex();
        }
        this.caseSensitive = m.caseSensitive();
        this.pathRegex = pathKind == PATH_REGEX ? Pattern.compile(pathValue) : null;
        this.headers = interner.headerMatchers(m.headers());
        this.query = QueryConditions.compile(m.queryParameters(), false);
        this.fraction = m.runtimeFraction() == null ? null
                : interner.runtime.fraction(m.runtimeKey(), m.runtimeFraction());
        this.grpc = m.grpc();
        Predicate<Object> all = null;
        for (MetadataMatcher d : m.dynamicMetadata()) {
            Predicate<Object> one = RbacFilter.metadataMatcher(d);
            all = all == null ? one : all.and(one);
        }
        this.metadata = all;
    }

    /** The case-sensitive prefix that a path must start with for this to match, or null. */
    String requiredPrefix() {
        return pathKind == PATH_PREFIX && caseSensitive ? pathValue : null;
    }

    /**
     * Whether the request matches; {@code pathOnly} is its path without query and fragment, {@code query} the raw
     * query string (without {@code ?}) or null.
     */
    boolean matches(RouteRequest req, String pathOnly, String queryString, long random) {
        if (!matchesPath(pathOnly)) {
            return false;
        }
        if (grpc && !Grpc.isContentType(req.header("content-type"))) {
            return false;
        }
        if (headers != null && !headers.matches(req::header)) {
            return false;
        }
        if (!query.isEmpty() && !query.matches(queryString)) {
            return false;
        }
        if (metadata != null && !metadata.test(req.jwtMetadata())) {
            return false;
        }
        return fraction == null || Long.remainderUnsigned(random, fraction.denominator().value())
                < fraction.numerator();
    }

    boolean matchesPath(String p) {
        switch (pathKind) {
            case PATH_PREFIX:
                return startsWith(p, pathValue);
            case PATH_EXACT:
                return caseSensitive ? p.equals(pathValue) : AsciiCase.equals(p, pathValue);
            case PATH_SEPARATED_PREFIX:
                return startsWith(p, pathValue)
                        && (p.length() == pathValue.length() || p.charAt(pathValue.length()) == '/');
            default:
                return pathRegex.matches(p);
        }
    }

    private boolean startsWith(String p, String prefix) {
        return caseSensitive ? p.startsWith(prefix) : AsciiCase.startsWith(p, prefix);
    }

    /** The length of the path that a prefix rewrite replaces. */
    int matchedLength(String pathOnly) {
        return pathKind == PATH_PREFIX || pathKind == PATH_SEPARATED_PREFIX ? pathValue.length() : pathOnly.length();
    }
}
