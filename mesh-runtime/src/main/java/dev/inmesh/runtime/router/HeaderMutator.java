package dev.inmesh.runtime.router;

import dev.inmesh.api.config.core.HeaderMutations;
import dev.inmesh.api.config.core.HeaderValueOption;
import dev.inmesh.runtime.accesslog.AccessLogEntry;
import io.vertx.core.MultiMap;
import java.util.List;
import java.util.function.Supplier;

/**
 * Applies header mutations as Envoy does: level by level from the most specific (weighted cluster, route) to the
 * least (virtual host, route configuration), so that on an overwrite the least specific level wins; under the route
 * configuration's {@code most_specific_header_mutations_wins}, the weighted cluster's first and then the route
 * configuration's, the virtual host's and the route's, so that the route's win (Envoy's weighted cluster entry
 * applies its own rules before its route's, whichever order the route takes). Within a level,
 * removals come first; then every entry is judged against the headers as they are at that point (whether
 * {@code ADD_IF_ABSENT} adds, whether {@code OVERWRITE_IF_EXISTS} overwrites), so that no entry sees what another
 * entry of its level did; then the level's overwrites are applied, in order, and after them its appends.
 */
public final class HeaderMutator {
    private HeaderMutator() {}

    /**
     * The request mutations of a forward decision, then its Host rewrite (the Host replaced going at the end of
     * {@code x-forwarded-host} under {@code append_x_forwarded_host}) and its path rewrite, in Envoy's order; a
     * rewritten path's original goes in {@code x-envoy-original-path}.
     */
    public static void finalizeRequest(RouteResult.Forward f, RouteTable table, MutableHeaders headers,
                                       PathAndHost target) {
        finalizeRequest(f, table, headers, target, true, null);
    }

    /**
     * As {@link #finalizeRequest(RouteResult.Forward, RouteTable, MutableHeaders, PathAndHost)}; without
     * {@code originalPath} (a router filter's {@code suppress_envoy_headers}) a rewritten path's original is not sent,
     * as Envoy's router then adds no {@code x-envoy-original-path}. The command operators of the header values read
     * {@code request} (null: nothing known) as it is now, as Envoy's router formats them when it finalizes the
     * request's headers: its downstream addresses, headers, protocol and start time, no response and no upstream host
     * (Envoy's stream info has none before its first attempt's connection, so {@code %UPSTREAM_REMOTE_ADDRESS%} and
     * {@code %UPSTREAM_METADATA(...)%} add nothing there).
     */
    public static void finalizeRequest(RouteResult.Forward f, RouteTable table, MutableHeaders headers,
                                       PathAndHost target, boolean originalPath, AccessLogEntry.Source request) {
        Supplier<AccessLogEntry> entry = table.headerFormats().reading(request, 0, null);
        // as Envoy's route entry: the header rules first, then the Host rewrite, then the path's
        for (int i = 0; i < LEVELS; i++) {
            HeaderMutations m = level(f, table, applied(table, i));
            if (m != null) {
                apply(m.requestHeadersToRemove(), m.requestHeadersToAdd(), headers, table.headerFormats(), entry);
            }
        }
        if (f.weightedHost() != null) {
            // as Envoy's weighted cluster entry, which sets it before the route's rewrites: no x-forwarded-host
            target.setAuthority(f.weightedHost());
        }
        if (f.rewrittenHost() != null) {
            if (f.action().appendXForwardedHost()) {
                appendForwardedHost(headers, target.authority());
            }
            target.setAuthority(f.rewrittenHost());
        }
        if (f.rewrittenPath() != null) {
            if (originalPath) {
                headers.set("x-envoy-original-path", target.path());
            }
            target.setPath(f.rewrittenPath());
        }
    }

    /**
     * Envoy's {@code append_x_forwarded_host}: the Host a rewrite replaces goes at the end of
     * {@code x-forwarded-host} (joined with {@code ,}), unless it is already the last value there, as Envoy's
     * idempotent append.
     */
    public static void appendForwardedHost(MutableHeaders headers, String host) {
        if (host == null || host.isEmpty()) {
            return;
        }
        List<String> all = headers.getAll("x-forwarded-host");
        if (all.isEmpty()) {
            headers.set("x-forwarded-host", host);
            return;
        }
        String joined = String.join(",", all);
        int comma = joined.lastIndexOf(',');
        if (!joined.substring(comma + 1).equals(host)) {
            headers.set("x-forwarded-host", joined + "," + host);
        }
    }

    /** The response mutations of a decision, in the same order, their values' command operators reading nothing. */
    public static void finalizeResponse(RouteResult result, RouteTable table, MutableHeaders headers) {
        finalizeResponse(result, table, headers, null);
    }

    /**
     * The response mutations of a decision to the response of {@code status} whose {@code headers} these are, in the
     * same order; the command operators of their values read {@code request} (null: nothing known) with that
     * response, as Envoy's router formats them when it finalizes the response's headers (its status, its headers so
     * far, the upstream host that answered).
     */
    public static void finalizeResponse(RouteResult result, RouteTable table, MultiMap headers, int status,
                                        AccessLogEntry.Source request) {
        finalizeResponse(result, table, new MultiMapHeaders(headers),
                table.headerFormats().reading(request, status, headers));
    }

    /**
     * The response mutations of a decision, in the same order, their values' command operators reading the entry
     * {@code entry} makes (null: nothing known).
     */
    public static void finalizeResponse(RouteResult result, RouteTable table, MutableHeaders headers,
                                        Supplier<AccessLogEntry> entry) {
        for (int i = 0; i < LEVELS; i++) {
            HeaderMutations m = level(result, table, applied(table, i));
            if (m != null) {
                apply(m.responseHeadersToRemove(), m.responseHeadersToAdd(), headers, table.headerFormats(), entry);
            }
        }
    }

    /** How many levels {@link #level} has: weighted cluster, route, virtual host, route configuration. */
    private static final int LEVELS = 4;

    /**
     * The {@link #level} applied {@code n}th: the weighted cluster's first, then from the route to the route
     * configuration, or the other way round under {@code most_specific_header_mutations_wins}.
     */
    private static int applied(RouteTable table, int n) {
        return n == 0 || !table.config().mostSpecificHeaderMutationsWins() ? n : LEVELS - n;
    }

    /**
     * The {@code i}th level of a decision's header rules, most specific first (weighted cluster, route, virtual
     * host, route configuration), null when the decision has none there. Asked by index rather than as a list, so
     * that each request's two passes over them (request, response) make no objects.
     */
    static HeaderMutations level(RouteResult result, RouteTable table, int i) {
        return switch (i) {
            case 0 -> result instanceof RouteResult.Forward f && f.weightedCluster() != null
                    ? f.weightedCluster().headers() : null;
            case 1 -> result instanceof RouteResult.Forward f ? f.route().headers()
                    : result instanceof RouteResult.Redirect r ? r.route().headers()
                    : result instanceof RouteResult.DirectResponse d ? d.route().headers() : null;
            case 2 -> result.virtualHost() != null ? result.virtualHost().headers() : null;
            // Envoy's require_tls redirect takes no header rules, the route configuration's neither
            default -> result instanceof RouteResult.Redirect r && r.route() == RouteTable.TLS_REDIRECT ? null
                    : table.config().headers();
        };
    }

    /**
     * Adds headers as one level of {@code headers_to_add} is added (a local reply mapper's): the same append actions,
     * each judged against the headers as they were before any of them; their values formatted from {@code entry}.
     */
    public static void add(List<HeaderValueOption> add, MutableHeaders headers, HeaderFormats formats,
                           AccessLogEntry entry) {
        apply(List.of(), add, headers, formats, formats.isEmpty() ? null : () -> entry);
    }

    /** One level of header rules whose values are literals. */
    public static void apply(List<String> remove, List<HeaderValueOption> add, MutableHeaders headers) {
        apply(remove, add, headers, HeaderFormats.NONE, null);
    }

    /**
     * One level of header rules, as Envoy's header parser evaluates them: the removals, then the additions whose
     * append action applies to the headers as they were after the removals, overwrites before appends. Every value is
     * formatted before any is added (so that none reads what another added), the command operators reading the entry
     * {@code request} makes (once, at the first formatted value; null: nothing known); a value that comes out empty
     * adds nothing unless kept ({@code keep_empty_value}).
     */
    public static void apply(List<String> remove, List<HeaderValueOption> add, MutableHeaders headers,
                             HeaderFormats formats, Supplier<AccessLogEntry> request) {
        if (!remove.isEmpty()) { // mostly empty: no iterator made for none
            for (String name : remove) {
                headers.remove(name);
            }
        }
        if (add.isEmpty()) {
            return;
        }
        // which entries apply is decided before any of them is: none sees what another one did
        HeaderValueOption[] applying = new HeaderValueOption[add.size()];
        String[] formatted = null; // the formatted values of applying's entries, made only when one has a command
        AccessLogEntry entry = null;
        int n = 0;
        for (HeaderValueOption o : add) {
            String value = o.value();
            if (o.formatted()) {
                if (entry == null) {
                    entry = request == null ? AccessLogEntry.NOTHING : request.get();
                }
                value = formats.value(o, entry);
            }
            if (applies(o, value, headers)) {
                if (o.formatted()) {
                    if (formatted == null) {
                        formatted = new String[add.size()];
                    }
                    formatted[n] = value;
                }
                applying[n++] = o;
            }
        }
        for (int i = 0; i < n; i++) {
            if (overwrites(applying[i])) {
                headers.set(applying[i].key(), value(applying, formatted, i));
            }
        }
        for (int i = 0; i < n; i++) {
            if (!overwrites(applying[i])) {
                headers.add(applying[i].key(), value(applying, formatted, i));
            }
        }
    }

    private static String value(HeaderValueOption[] applying, String[] formatted, int i) {
        return formatted != null && formatted[i] != null ? formatted[i] : applying[i].value();
    }

    /**
     * Applies one {@code HeaderValueOption} against the headers as they are now (as Envoy's header mutation filter
     * applies each entry after the one before it): its append action decides; its value formatted (when it is a
     * format of {@code formats}) from the entry {@code request} makes (null: nothing known); an empty value is
     * skipped unless kept.
     */
    public static void applyOne(HeaderValueOption o, MutableHeaders headers, HeaderFormats formats,
                                Supplier<AccessLogEntry> request) {
        String value = !o.formatted() ? o.value()
                : formats.value(o, request == null ? AccessLogEntry.NOTHING : request.get());
        if (!applies(o, value, headers)) {
            return;
        }
        if (overwrites(o)) {
            headers.set(o.key(), value);
        } else {
            headers.add(o.key(), value);
        }
    }

    /**
     * Whether an entry of {@code value} applies to {@code headers}: not an empty value that is not kept, not
     * {@code ADD_IF_ABSENT} of
     * a header present, not {@code OVERWRITE_IF_EXISTS} of one absent.
     */
    private static boolean applies(HeaderValueOption o, String value, MutableHeaders headers) {
        if (value.isEmpty() && !o.keepEmptyValue()) {
            return false;
        }
        HeaderValueOption.AppendAction action = o.appendAction();
        return !(action == HeaderValueOption.AppendAction.ADD_IF_ABSENT && headers.contains(o.key())
                || action == HeaderValueOption.AppendAction.OVERWRITE_IF_EXISTS && !headers.contains(o.key()));
    }

    private static boolean overwrites(HeaderValueOption o) {
        return o.appendAction() == HeaderValueOption.AppendAction.OVERWRITE_IF_EXISTS_OR_ADD
                || o.appendAction() == HeaderValueOption.AppendAction.OVERWRITE_IF_EXISTS;
    }

    /** The request line parts a rewrite may change. */
    public interface PathAndHost {
        String path();

        /** The Host before a rewrite (null when the request has none). */
        String authority();

        void setPath(String path);

        void setAuthority(String authority);
    }
}
