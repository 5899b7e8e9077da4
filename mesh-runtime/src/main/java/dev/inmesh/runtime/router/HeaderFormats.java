package dev.inmesh.runtime.router;

import dev.inmesh.api.config.core.HeaderValueOption;
import dev.inmesh.api.config.route.HeaderMutationPerRoute.QueryParameterMutation;
import dev.inmesh.runtime.accesslog.AccessLogEntry;
import dev.inmesh.runtime.accesslog.CommandFormat;
import java.util.Collection;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * The header values of a configuration that are Envoy substitution format strings
 * ({@link HeaderValueOption#formatted}), each compiled once with the snapshot ({@link CommandFormat#headerValue}), found by the option itself; and the
 * header mutation filter's query parameter values that are ({@link QueryParameterMutation#formatted},
 * {@link CommandFormat#queryParameterValue}), found by the mutation. A literal value is not here: it is added as it
 * is, at no cost.
 */
public final class HeaderFormats {
    /** A configuration none of whose header values has a command operator. */
    public static final HeaderFormats NONE = new HeaderFormats(Map.of());

    /** By the {@link HeaderValueOption} or {@link QueryParameterMutation}, by identity. */
    private final Map<Object, CommandFormat> formats;

    private HeaderFormats(Map<Object, CommandFormat> formats) {
        this.formats = formats;
    }

    /**
     * Compiles the formatted values of some lists of header options.
     *
     * @throws IllegalArgumentException when one names an operator Envoy does not know (the xDS parsers refuse it first,
     *     by path; a configuration made in code meets it here)
     */
    public static HeaderFormats compile(Collection<List<HeaderValueOption>> lists) {
        return compile(lists, List.of());
    }

    /**
     * Compiles the formatted values of some lists of header options and of query parameter mutations.
     *
     * @throws IllegalArgumentException as {@link #compile(Collection)}
     */
    public static HeaderFormats compile(Collection<List<HeaderValueOption>> lists,
                                        Collection<List<QueryParameterMutation>> queries) {
        Map<Object, CommandFormat> formats = new IdentityHashMap<>();
        for (List<HeaderValueOption> list : lists) {
            for (HeaderValueOption o : list) {
                if (o.formatted()) {
                    formats.computeIfAbsent(o, k -> CommandFormat.headerValue(o.value()));
                }
            }
        }
        for (List<QueryParameterMutation> list : queries) {
            for (QueryParameterMutation m : list) {
                if (m.formatted()) {
                    formats.computeIfAbsent(m, k -> CommandFormat.queryParameterValue(m.value()));
                }
            }
        }
        return formats.isEmpty() ? NONE : new HeaderFormats(formats);
    }

    /**
     * The entry these formats' command operators read: {@code request}'s, with the response of {@code status} (0:
     * none yet) and its {@code headers} (null: none yet), made once, when a value first asks for it, and then kept
     * (every level of a request's rules reads the same); null, and nothing made, when there is no request or no
     * value here to format.
     */
    public java.util.function.Supplier<AccessLogEntry> reading(AccessLogEntry.Source request, int status,
                                                                io.vertx.core.MultiMap headers) {
        if (request == null || formats.isEmpty()) {
            return null;
        }
        AccessLogEntry[] made = {null};
        return () -> made[0] != null ? made[0] : (made[0] = request.entry(status, headers, null));
    }

    /** Whether no value has a command operator. */
    public boolean isEmpty() {
        return formats.isEmpty();
    }

    /**
     * The value of {@code o} for the request {@code entry} reads: its format's text, an unknown value as nothing;
     * a literal's own value.
     */
    String value(HeaderValueOption o, AccessLogEntry entry) {
        if (!o.formatted()) {
            return o.value();
        }
        CommandFormat f = formats.get(o);
        // an option this configuration did not compile (none of its own): compiled now rather than sent unformatted
        return (f != null ? f : CommandFormat.headerValue(o.value())).format(entry);
    }

    /** The value a query parameter mutation adds, as {@link #value(HeaderValueOption, AccessLogEntry)}. */
    String value(QueryParameterMutation m, AccessLogEntry entry) {
        if (!m.formatted()) {
            return m.value();
        }
        CommandFormat f = formats.get(m);
        return (f != null ? f : CommandFormat.queryParameterValue(m.value())).format(entry);
    }
}
