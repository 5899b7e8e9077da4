package dev.inmesh.runtime.router;

import dev.inmesh.api.config.route.QueryParameterMatcher;
import java.util.List;
import java.util.function.Predicate;
import java.util.function.UnaryOperator;

/**
 * Query parameter conditions compiled, all of which must hold: each parameter's first value (a bare name's is
 * {@code ""}) satisfies its matcher, or is present when it has none (Envoy's {@code ConfigUtility::matchQueryParams}).
 * A route's conditions read the query as it came (Envoy's {@code parseQueryString}); a rate limit action's read it
 * percent-decoded, names and values (its {@code parseAndDecodeQueryString}).
 */
final class QueryConditions {
    private final List<Condition> conditions;
    private final UnaryOperator<String> decode;

    private record Condition(String name, Predicate<String> value) {}

    private QueryConditions(List<Condition> conditions, UnaryOperator<String> decode) {
        this.conditions = conditions;
        this.decode = decode;
    }

    /** The conditions of {@code matchers}; {@code decoded}: the parameters are read percent-decoded. */
    static QueryConditions compile(List<QueryParameterMatcher> matchers, boolean decoded) {
        List<Condition> conditions = matchers.stream().map(q -> new Condition(q.name(),
                q.matcher() == null ? null : StringMatchers.compile(q.matcher()))).toList();
        return new QueryConditions(conditions, decoded ? QueryParameters::decode : null);
    }

    boolean isEmpty() {
        return conditions.isEmpty();
    }

    /** Whether the raw query string (without its {@code ?}; null: none) satisfies every condition. */
    boolean matches(String query) {
        for (Condition c : conditions) {
            String v = firstValue(query, c.name);
            if (v == null || c.value != null && !c.value.test(v)) {
                return false;
            }
        }
        return true;
    }

    /** The first value of a parameter in a raw query string, "" for a bare name, or null. */
    private String firstValue(String query, String name) {
        if (query == null || query.isEmpty()) {
            return null;
        }
        int start = 0;
        int n = query.length();
        while (start <= n) {
            int amp = query.indexOf('&', start);
            int end = amp < 0 ? n : amp;
            int eq = query.indexOf('=', start);
            int keyEnd = eq >= 0 && eq < end ? eq : end;
            if (decode == null ? keyEnd - start == name.length() && query.regionMatches(start, name, 0, name.length())
                    : decode.apply(query.substring(start, keyEnd)).equals(name)) {
                String value = keyEnd == end ? "" : query.substring(keyEnd + 1, end);
                return decode == null ? value : decode.apply(value);
            }
            if (amp < 0) {
                break;
            }
            start = amp + 1;
        }
        return null;
    }

    /** The query string of a request's {@code :path} (between {@code ?} and any {@code #}), or null. */
    static String of(String path) {
        int q = path == null ? -1 : path.indexOf('?');
        if (q < 0) {
            return null;
        }
        int hash = path.indexOf('#', q);
        return path.substring(q + 1, hash < 0 ? path.length() : hash);
    }
}
