package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.route.HeaderMutationPerRoute;

/**
 * Envoy's header mutation filter ({@code envoy.filters.http.header_mutation}, {@code HeaderMutation}): its own
 * mutations apply to the request's headers, then those of every level of the route's per-route configs
 * ({@code HeaderMutationPerRoute}); the same order for the response's.
 *
 * @param mutations its own {@code mutations}
 * @param mostSpecificHeaderMutationsWins {@code most_specific_header_mutations_wins}: the levels' mutations from the
 *     least specific (route configuration) to the most (route), so that the route's overwrite wins; false (the
 *     default): from the most specific to the least, so that the route configuration's wins
 */
public record HeaderMutation(HeaderMutationPerRoute.Mutations mutations,
                                   boolean mostSpecificHeaderMutationsWins) {
    public HeaderMutation {
        mutations = mutations == null ? HeaderMutationPerRoute.Mutations.NONE : mutations;
    }
}
