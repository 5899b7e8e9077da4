package dev.inmesh.runtime.xds;

import com.google.protobuf.Any;
import dev.inmesh.api.config.core.HeaderValueOption;
import dev.inmesh.api.config.listener.HeaderMutation;
import dev.inmesh.api.config.route.HeaderMutationPerRoute;
import dev.inmesh.api.config.route.HeaderMutationPerRoute.Mutation;
import dev.inmesh.api.config.route.HeaderMutationPerRoute.Mutations;
import dev.inmesh.api.config.route.HeaderMutationPerRoute.QueryParameterMutation;
import dev.inmesh.runtime.accesslog.CommandFormat;
import java.util.Set;

/**
 * Envoy's header mutation HTTP filter config ({@code HeaderMutation}) and its per-route config
 * ({@code HeaderMutationPerRoute}), typed or in a {@code TypedStruct}. Of {@code Mutations}, the request's and the
 * response's header mutations and the request's {@code query_parameter_mutations} are read. Each
 * {@code mutation_rules.v3.HeaderMutation} is a {@code remove} or an {@code append} ({@code HeaderValueOption}, read
 * as the route's {@code request_headers_to_add}: a substitution format string, which Envoy formats with the same
 * formatter); its names and values hold no NUL, CR or LF, as Envoy's proto validation
 * ({@code HTTP_HEADER_NAME} and {@code HTTP_HEADER_VALUE}, not strict) refuses them. A pseudo-header or {@code host}
 * is refused: an {@code append} as Envoy refuses it (its {@code HeadersToAddEntry}: ":-prefixed or host headers may
 * not be modified"); a {@code remove}, which Envoy's filter takes (its router then answers 503 {@code missing required
 * header} without {@code :method} or {@code :path}, sends the request with no authority, sets {@code :scheme} again),
 * because Inmesh keeps a request's target apart from its headers. Each query parameter mutation
 * ({@code KeyValueMutation}) is refused as Envoy's filter refuses it when it builds its config: both or neither of
 * {@code remove} and {@code append}, an {@code append} without a {@code record}, a record whose value is not a string,
 * a value that is not a substitution format string Envoy's formatter compiles ({@code FormatterImpl::create(value,
 * true)}: an operator it does not know); a value with a command operator is kept as configured, formatted per request.
 */
final class HeaderMutationParser {
    static final String NAME = "envoy.filters.http.header_mutation";
    static final String TYPE = "envoy.extensions.filters.http.header_mutation.v3.HeaderMutation";
    static final String PER_ROUTE_TYPE = "envoy.extensions.filters.http.header_mutation.v3.HeaderMutationPerRoute";

    private HeaderMutationParser() {}

    /** The filter's own {@code HeaderMutation}. */
    static HeaderMutation parse(Any any) {
        var h = LocalRateLimitParser.typed(any, io.envoyproxy.envoy.extensions.filters.http.header_mutation.v3
                .HeaderMutation.class, io.envoyproxy.envoy.extensions.filters.http.header_mutation.v3.HeaderMutation
                .newBuilder(), TYPE);
        Fields.onlyKnown(h, Set.of("mutations", "most_specific_header_mutations_wins"), Set.of());
        return new HeaderMutation(Fields.at("mutations", () -> mutations(h.getMutations())),
                h.getMostSpecificHeaderMutationsWins());
    }

    /** A route configuration's, virtual host's or route's {@code HeaderMutationPerRoute}. */
    static HeaderMutationPerRoute perRoute(Any any) {
        var p = LocalRateLimitParser.typed(any, io.envoyproxy.envoy.extensions.filters.http.header_mutation.v3
                .HeaderMutationPerRoute.class, io.envoyproxy.envoy.extensions.filters.http.header_mutation.v3
                .HeaderMutationPerRoute.newBuilder(), PER_ROUTE_TYPE);
        Fields.onlyKnown(p, Set.of("mutations"), Set.of());
        return new HeaderMutationPerRoute(Fields.at("mutations", () -> mutations(p.getMutations())));
    }

    private static Mutations mutations(io.envoyproxy.envoy.extensions.filters.http.header_mutation.v3.Mutations m) {
        Fields.onlyKnown(m, Set.of("request_mutations", "response_mutations", "query_parameter_mutations"), Set.of());
        return new Mutations(Fields.each("request_mutations", m.getRequestMutationsList(),
                HeaderMutationParser::mutation), Fields.each("response_mutations", m.getResponseMutationsList(),
                HeaderMutationParser::mutation), Fields.each("query_parameter_mutations",
                m.getQueryParameterMutationsList(), HeaderMutationParser::queryParameterMutation));
    }

    /** One {@code KeyValueMutation}, refused where Envoy's {@code Mutations} refuses it. */
    private static QueryParameterMutation queryParameterMutation(
            io.envoyproxy.envoy.config.core.v3.KeyValueMutation m) {
        Fields.onlyKnown(m, Set.of("append", "remove"), Set.of());
        if (m.hasAppend() == !m.getRemove().isEmpty()) {
            throw new FieldError("", (m.hasAppend() ? "both" : "neither") + " of append and remove (expected: one)");
        }
        if (!m.hasAppend()) {
            return Fields.at("remove", () -> QueryParameterMutation.remove(bounded(m.getRemove())));
        }
        return Fields.at("append", () -> {
            var a = m.getAppend();
            Fields.onlyKnown(a, Set.of("record", "action"), Set.of());
            if (!a.hasRecord()) {
                throw new FieldError("record", "unset (expected: the key and value added)");
            }
            var value = a.getRecord().getValue();
            if (value.getKindCase() != com.google.protobuf.Value.KindCase.STRING_VALUE) {
                throw new FieldError("record.value", value.getKindCase() + " (expected: a string)");
            }
            String key = Fields.at("record.key", () -> bounded(a.getRecord().getKey()));
            String format = value.getStringValue();
            boolean formatted = Fields.at("record.value",
                    () -> CommandFormat.queryParameterValue(format).hasCommand());
            var action = switch (a.getAction()) {
                case APPEND_IF_EXISTS_OR_ADD -> HeaderValueOption.AppendAction.APPEND_IF_EXISTS_OR_ADD;
                case ADD_IF_ABSENT -> HeaderValueOption.AppendAction.ADD_IF_ABSENT;
                case OVERWRITE_IF_EXISTS_OR_ADD -> HeaderValueOption.AppendAction.OVERWRITE_IF_EXISTS_OR_ADD;
                case OVERWRITE_IF_EXISTS -> HeaderValueOption.AppendAction.OVERWRITE_IF_EXISTS;
                case UNRECOGNIZED -> throw new FieldError("action", a.getActionValue() + " (expected: "
                        + "APPEND_IF_EXISTS_OR_ADD, ADD_IF_ABSENT, OVERWRITE_IF_EXISTS_OR_ADD or OVERWRITE_IF_EXISTS)");
            };
            return QueryParameterMutation.append(key, formatted ? format : format.replace("%%", "%"), action,
                    formatted);
        });
    }

    /** A query parameter name as Envoy's proto validation takes it: not empty, at most 16384 bytes. */
    private static String bounded(String name) {
        if (name.isEmpty() || name.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > 16384) {
            throw new FieldError("", (name.isEmpty() ? "\"\"" : "a name of more than 16384 bytes")
                    + " (expected: a query parameter name of 1 to 16384 bytes)");
        }
        return name;
    }

    private static Mutation mutation(io.envoyproxy.envoy.config.common.mutation_rules.v3.HeaderMutation m) {
        return switch (m.getActionCase()) {
            case REMOVE -> new Mutation(Fields.at("remove", () -> name(m.getRemove())), null);
            case APPEND -> Fields.at("append", () -> {
                var o = CoreParsers.headerValueOption(m.getAppend());
                Fields.at("header.key", () -> name(o.key()));
                return new Mutation(null, o);
            });
            case ACTION_NOT_SET -> throw new FieldError("action", "unset (expected: remove or append)");
        };
    }

    /**
     * A header name the filter may change: not empty, without NUL, CR or LF (Envoy validates them), not a
     * pseudo-header, not {@code host}.
     */
    private static String name(String name) {
        if (name.isEmpty()) {
            throw new FieldError("", "\"\" (expected: a header name)");
        }
        if (name.indexOf('\0') >= 0 || name.indexOf('\r') >= 0 || name.indexOf('\n') >= 0) {
            throw new FieldError("", "\"" + name.replace("\0", "\\0").replace("\r", "\\r").replace("\n", "\\n")
                    + "\" (expected: no NUL, CR or LF, as Envoy validates a header)");
        }
        if (name.startsWith(":") || name.equalsIgnoreCase("host")) {
            throw new FieldError("", name + " is not supported by Inmesh (expected: a header other than the "
                    + "pseudo-headers and host, which Inmesh keeps apart from the headers)");
        }
        return name.toLowerCase(java.util.Locale.ROOT);
    }
}
