package dev.inmesh.runtime.router;

import dev.inmesh.api.config.listener.HeaderMutation;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.route.FilterPerRoute;
import dev.inmesh.api.config.route.HeaderMutationPerRoute;
import dev.inmesh.api.config.route.HeaderMutationPerRoute.Mutation;
import dev.inmesh.api.config.route.HeaderMutationPerRoute.Mutations;
import dev.inmesh.api.config.route.HeaderMutationPerRoute.QueryParameterMutation;
import dev.inmesh.api.config.route.Route;
import dev.inmesh.runtime.accesslog.AccessLogEntry;
import io.vertx.core.MultiMap;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.function.Supplier;

/**
 * Envoy's header mutation filter ({@code envoy.filters.http.header_mutation}) as Inmesh runs it, right before the
 * buffer and Lua filters on the request and right after them on the response: its own mutations first, then those
 * of every level of the route's {@code HeaderMutationPerRoute} (not only the most specific one's), from the most
 * specific (route) to the least (route configuration), or the other way round under
 * {@code most_specific_header_mutations_wins}, so that the level applied last wins an overwrite. Each mutation sees
 * what the ones before it did, as Envoy applies them one by one (unlike a route's {@code request_headers_to_add},
 * judged all at once). Each level's query parameter mutations follow its request header mutations, as Envoy's
 * {@code Mutations::mutateRequestHeaders} rewrites {@code :path}: the query parsed as Envoy's
 * {@code QueryParamsMulti::parseAndDecodeQueryString} does (split at {@code &} and the first {@code =}, each name and
 * value percent-decoded), changed, and written back by name, in name order, each {@code name=value} as decoded (as
 * Envoy's {@code replaceQueryString}), a value the mutation adds percent-encoded (Envoy's
 * {@code urlEncodeQueryParameter}, under its default {@code header_mutation_url_encode_query_params}); no {@code ?}
 * once no parameter is left. The route stays the one chosen before the filter ran (Envoy's filter does not clear the
 * route cache): the route's match sees the path the caller sent, the filters after it and the upstream the new one.
 *
 * <p>An {@code append}'s value is Envoy's substitution format string, formatted when the mutation applies
 * ({@code source/common/http/header_mutation.cc}, {@code AppendMutation}: the router's {@code HeadersToAddEntry}
 * formatter, reading the request's headers as the mutations before it left them and the stream so far; on the
 * response, its status and headers too). So is a query parameter mutation's value (Envoy's {@code Mutations} compiles
 * it with {@code FormatterImpl::create(value, true)}, without the header parser's legacy translation, and formats it
 * with the request's headers as the header mutations before it left them), whatever its action. The filter's own
 * values are compiled with it, once per snapshot ({@link #compile}); those of the per-route configs with their
 * {@link RouteTable}.
 */
public final class HeaderMutationFilter {
    /** A connection manager without the filter. */
    public static final HeaderMutationFilter NONE = new HeaderMutationFilter(null, null, false, HeaderFormats.NONE);

    private final String name;
    private final HeaderMutation config;
    private final boolean afterBuffer;
    /** The formatted values of the filter's own mutations, compiled. */
    private final HeaderFormats formats;

    private HeaderMutationFilter(String name, HeaderMutation config, boolean afterBuffer, HeaderFormats formats) {
        this.name = name;
        this.config = config;
        this.afterBuffer = afterBuffer;
        this.formats = formats;
    }

    /** The header mutation filter that runs in {@code hcm}, compiled, or {@link #NONE}. */
    public static HeaderMutationFilter compile(HttpConnectionManager hcm) {
        boolean buffer = false;
        if (hcm != null) {
            for (HttpFilter f : hcm.httpFilters()) {
                buffer |= f.buffer() != null;
                if (f.headerMutation() != null) {
                    Mutations m = f.headerMutation().mutations();
                    return new HeaderMutationFilter(f.name(), f.headerMutation(), buffer,
                            HeaderFormats.compile(appends(m), List.of(m.query())));
                }
            }
        }
        return NONE;
    }

    /** The headers a config's {@code Mutations} append, request's and response's, for {@link HeaderFormats}. */
    static List<List<dev.inmesh.api.config.core.HeaderValueOption>> appends(Mutations m) {
        return List.of(appends(m.request()), appends(m.response()));
    }

    private static List<dev.inmesh.api.config.core.HeaderValueOption> appends(List<Mutation> mutations) {
        List<dev.inmesh.api.config.core.HeaderValueOption> out = new ArrayList<>(mutations.size());
        for (Mutation m : mutations) {
            if (m.append() != null) {
                out.add(m.append());
            }
        }
        return out;
    }

    /** Whether a value of the filter's own mutations is a format: one that reads the request. */
    public boolean formatsHeaders() {
        return !formats.isEmpty();
    }

    /** Whether the connection manager runs none. */
    public boolean isEmpty() {
        return config == null;
    }

    /**
     * Whether it stands after the buffer filter: its request mutations then apply once the body is held (they may
     * take off the {@code content-length} the buffer filter set); else before the buffer filter holds the body.
     */
    public boolean afterBuffer() {
        return afterBuffer;
    }

    /**
     * What the request mutations did.
     *
     * @param chosen the mutations in force for the request, which its response gets too ({@link #response}); empty
     *     for none
     * @param path the request's path (query included) after them; the one given when no query mutation ran, null
     *     without the filter
     */
    public record Applied(List<Mutations> chosen, String path) {}

    /** What a connection manager without the filter does: nothing (shared, so that a request allocates nothing). */
    private static final Applied NOTHING = new Applied(List.of(), null);

    /**
     * Applies the request mutations to a request's headers and path ({@code path} null: a {@code CONNECT}, which has
     * no {@code :path}, so no query mutation applies; {@code result} null: no route table), their values' command
     * operators reading {@code request} (null: nothing known) as it is then.
     */
    public Applied request(MultiMap headers, String path, RouteResult result, RouteTable table,
                           AccessLogEntry.Source request) {
        if (config == null) {
            return NOTHING;
        }
        List<Mutations> chosen = inOrder(result, table);
        Supplier<AccessLogEntry> entry = entry(request, 0, null, table);
        for (int i = 0; i < chosen.size(); i++) {
            HeaderFormats f = formats(i, table);
            apply(chosen.get(i).request(), headers, f, entry);
            path = query(chosen.get(i).query(), path, f, entry);
        }
        return new Applied(chosen, path);
    }

    /**
     * Applies the response mutations to a response's headers: those {@link #request} chose, or, where the request
     * did not reach the filter ({@code chosen} null: a filter before it answered), those of the route it had, as
     * Envoy's filter looks the route's configs up when it encodes first. Their values' command operators read
     * {@code request} (null: nothing known) with that response, of {@code status}.
     */
    public void response(MultiMap headers, List<Mutations> chosen, RouteResult result, RouteTable table, int status,
                         AccessLogEntry.Source request) {
        if (config == null) {
            return;
        }
        List<Mutations> levels = chosen != null ? chosen : inOrder(result, table);
        Supplier<AccessLogEntry> entry = entry(request, status, headers, table);
        for (int i = 0; i < levels.size(); i++) {
            apply(levels.get(i).response(), headers, formats(i, table), entry);
        }
    }

    /**
     * The formats of the {@code i}th mutations of {@link #inOrder}: the filter's own first, then the per-route
     * configs', compiled with their table.
     */
    private HeaderFormats formats(int i, RouteTable table) {
        return i == 0 ? formats : table == null ? HeaderFormats.NONE : table.headerFormats();
    }

    /**
     * The entry the values' command operators read ({@link HeaderFormats#reading}), of the filter's own formats or,
     * when it has none, its route table's; its headers are the live ones, so that a value reads what the mutations
     * before it did.
     */
    private Supplier<AccessLogEntry> entry(AccessLogEntry.Source request, int status, MultiMap headers,
                                           RouteTable table) {
        return (formats.isEmpty() ? formats(1, table) : formats).reading(request, status, headers);
    }

    private List<Mutations> inOrder(RouteResult result, RouteTable table) {
        List<Mutations> out = new ArrayList<>(4);
        out.add(config.mutations());
        List<FilterPerRoute> levels = levels(name, result, table);
        if (config.mostSpecificHeaderMutationsWins()) {
            java.util.Collections.reverse(levels);
        }
        for (FilterPerRoute p : levels) {
            if (p instanceof HeaderMutationPerRoute h) {
                out.add(h.mutations());
            }
        }
        return out;
    }

    /**
     * The per-route configs named {@code name} of the route a result came from, its virtual host and the route
     * configuration, from the most specific to the least; those that are absent left out.
     */
    static List<FilterPerRoute> levels(String name, RouteResult result, RouteTable table) {
        List<FilterPerRoute> out = new ArrayList<>(3);
        Route route = result == null ? null : RouteResult.routeOf(result);
        if (route != null && route.filterConfigs().get(name) != null) {
            out.add(route.filterConfigs().get(name));
        }
        if (result != null && result.virtualHost() != null && result.virtualHost().filterConfigs().get(name) != null) {
            out.add(result.virtualHost().filterConfigs().get(name));
        }
        if (table != null && table.config().filterConfigs().get(name) != null) {
            out.add(table.config().filterConfigs().get(name));
        }
        return out;
    }

    private static void apply(List<Mutation> mutations, MultiMap headers, HeaderFormats formats,
                              Supplier<AccessLogEntry> entry) {
        if (mutations.isEmpty()) {
            return;
        }
        MutableHeaders h = new MultiMapHeaders(headers);
        for (Mutation m : mutations) {
            if (m.remove() != null) {
                headers.remove(m.remove());
            } else {
                HeaderMutator.applyOne(m.append(), h, formats, entry);
            }
        }
    }

    /**
     * A route's rewritten path ({@code prefix_rewrite}, {@code regex_rewrite}: made from the path the route matched)
     * with the query of {@code current}, the path the query parameter mutations left: Envoy's route rewrites the
     * {@code :path} the filters before the router left ({@code RouteEntryImplBase::finalizePathHeader}), and the
     * mutations change only its query.
     */
    public static String withQueryOf(String rewritten, String current) {
        int q = rewritten.indexOf('?');
        int cq = current.indexOf('?');
        return (q < 0 ? rewritten : rewritten.substring(0, q)) + (cq < 0 ? "" : current.substring(cq));
    }

    /**
     * {@code path} after one level's query parameter mutations, as the class says; a formatted value (one of
     * {@code formats}) reads the request the entry {@code request} makes (null: nothing known).
     */
    static String query(List<QueryParameterMutation> mutations, String path, HeaderFormats formats,
                        Supplier<AccessLogEntry> request) {
        if (mutations.isEmpty() || path == null) {
            return path;
        }
        // Envoy's :path has no fragment (its connection manager strips or refuses one); mesh.inbound's may have one
        path = PathNormalizer.withoutFragment(path);
        int q = path.indexOf('?');
        TreeMap<String, List<String>> params = q < 0 ? new TreeMap<>()
                : QueryParameters.parse(path.substring(q + 1), QueryParameters::decode);
        for (QueryParameterMutation m : mutations) {
            if (m.remove() != null) {
                params.remove(m.remove());
                continue;
            }
            List<String> values = params.get(m.key());
            String value = QueryParameters.urlEncode(!m.formatted() ? m.value()
                    : formats.value(m, request == null ? AccessLogEntry.NOTHING : request.get()));
            switch (m.action()) {
                case APPEND_IF_EXISTS_OR_ADD -> params.computeIfAbsent(m.key(), k -> new ArrayList<>(1)).add(value);
                case ADD_IF_ABSENT -> {
                    if (values == null) {
                        params.put(m.key(), new ArrayList<>(List.of(value)));
                    }
                }
                case OVERWRITE_IF_EXISTS_OR_ADD -> params.put(m.key(), new ArrayList<>(List.of(value)));
                case OVERWRITE_IF_EXISTS -> {
                    if (values != null) {
                        params.put(m.key(), new ArrayList<>(List.of(value)));
                    }
                }
            }
        }
        return QueryParameters.path(path, params);
    }
}
