package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.HeaderValueOption;
import java.util.List;

/**
 * The header mutation filter's config for a route configuration, virtual host or route
 * ({@code typed_per_filter_config} {@code HeaderMutationPerRoute}): unlike other filters' per-route configs, every
 * level's applies, after the filter's own (see {@code HeaderMutation}).
 *
 * @param mutations its {@code mutations}
 */
public record HeaderMutationPerRoute(Mutations mutations) implements FilterPerRoute {
    public HeaderMutationPerRoute {
        mutations = mutations == null ? Mutations.NONE : mutations;
    }

    /**
     * Envoy's {@code Mutations}: the request's and the response's, each applied in order, each seeing what the ones
     * before it did; the request's query parameter mutations after its header mutations, as Envoy applies them.
     *
     * @param request {@code request_mutations}
     * @param response {@code response_mutations}
     * @param query {@code query_parameter_mutations}, applied to the request's path
     */
    public record Mutations(List<Mutation> request, List<Mutation> response, List<QueryParameterMutation> query) {
        /** None. */
        public static final Mutations NONE = new Mutations(List.of(), List.of(), List.of());

        public Mutations {
            request = Checks.list(request, "request_mutations");
            response = Checks.list(response, "response_mutations");
            query = Checks.list(query, "query_parameter_mutations");
        }

        /** Header mutations only. */
        public Mutations(List<Mutation> request, List<Mutation> response) {
            this(request, response, List.of());
        }
    }

    /**
     * One of {@code query_parameter_mutations} ({@code config.core.v3.KeyValueMutation}): {@code remove} a query
     * parameter (every value of it), or {@code append} one ({@code KeyValueAppend}: its {@code record}'s key and
     * string value, its {@code action}, read as a header's {@code append_action}).
     *
     * @param remove the name of the parameter removed, or null
     * @param key the name of the parameter added, or null
     * @param value the value added (not yet percent-encoded), or null: a literal, or, when {@code formatted}, Envoy's
     *     substitution format string as configured ({@code %REQ(x-foo)%}, {@code %%} for a {@code %}), compiled with
     *     the snapshot and formatted per request
     * @param action how the value is added, or null
     * @param formatted whether {@code value} is a substitution format string with a command operator (the xDS parser
     *     says so of a configured value that has one; one without is read as the literal it stands for)
     */
    public record QueryParameterMutation(String remove, String key, String value,
                                         HeaderValueOption.AppendAction action, boolean formatted) {
        public QueryParameterMutation {
            Checks.check(remove == null != (key == null), "action", remove, "one of remove or append");
            Checks.check(remove == null || !remove.isEmpty(), "remove", "\"\"", "a query parameter name");
            Checks.check(key == null || !key.isEmpty(), "append.record.key", "\"\"", "a query parameter name");
            Checks.check(key == null || value != null && action != null, "append", "null", "a value and an action");
            Checks.check(!formatted || key != null, "formatted", "true", "an append's value");
        }

        /** A mutation whose value, if any, is a literal. */
        public QueryParameterMutation(String remove, String key, String value, HeaderValueOption.AppendAction action) {
            this(remove, key, value, action, false);
        }

        /** Removes the parameter {@code name}. */
        public static QueryParameterMutation remove(String name) {
            return new QueryParameterMutation(name, null, null, null);
        }

        /** Adds {@code key=value} as {@code action} says, {@code value} a literal. */
        public static QueryParameterMutation append(String key, String value, HeaderValueOption.AppendAction action) {
            return new QueryParameterMutation(null, key, value, action);
        }

        /**
         * Adds {@code key=value} as {@code action} says, {@code value} a substitution format string where
         * {@code formatted}.
         */
        public static QueryParameterMutation append(String key, String value, HeaderValueOption.AppendAction action,
                                                    boolean formatted) {
            return new QueryParameterMutation(null, key, value, action, formatted);
        }
    }

    /**
     * One {@code config.common.mutation_rules.v3.HeaderMutation}: {@code remove} a header (every value of it), or
     * {@code append} one as its {@code append_action} says.
     *
     * @param remove the name of the header removed, or null
     * @param append the header added, or null
     */
    public record Mutation(String remove, HeaderValueOption append) {
        public Mutation {
            Checks.check(remove == null != (append == null), "action", remove, "one of remove or append");
            Checks.check(remove == null || !remove.isEmpty(), "remove", "\"\"", "a header name");
            if (remove != null) {
                Checks.headerText(remove, "remove");
            }
        }
    }
}
