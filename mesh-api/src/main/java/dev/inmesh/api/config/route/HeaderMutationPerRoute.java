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
     * before it did.
     *
     * @param request {@code request_mutations}
     * @param response {@code response_mutations}
     */
    public record Mutations(List<Mutation> request, List<Mutation> response) {
        /** None. */
        public static final Mutations NONE = new Mutations(List.of(), List.of());

        public Mutations {
            request = Checks.list(request, "request_mutations");
            response = Checks.list(response, "response_mutations");
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
