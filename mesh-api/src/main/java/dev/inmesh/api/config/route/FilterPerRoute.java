package dev.inmesh.api.config.route;

/**
 * A route configuration's, virtual host's or route's config for one HTTP filter ({@code typed_per_filter_config}) of
 * the kinds that share this map: the buffer filter's ({@link BufferPerRoute}) and the header mutation filter's
 * ({@link HeaderMutationPerRoute}).
 */
public sealed interface FilterPerRoute permits BufferPerRoute, HeaderMutationPerRoute {
}
