package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;

/**
 * A virtual host's or route's {@code typed_per_filter_config} for a stateful session filter
 * ({@code StatefulSessionPerRoute}): either the filter does nothing on these routes, or it runs with this config in
 * place of its own. A route's replaces its virtual host's.
 *
 * @param disabled whether the filter does nothing here ({@code disabled: true})
 * @param statefulSession the config that replaces the filter's own ({@code stateful_session}); null when disabled
 */
public record StatefulSessionPerRoute(boolean disabled, StatefulSession statefulSession) {
    /** The filter does nothing on these routes. */
    public static final StatefulSessionPerRoute DISABLED = new StatefulSessionPerRoute(true, null);

    public StatefulSessionPerRoute {
        Checks.check(disabled == (statefulSession == null), "override", disabled ? "disabled with a config"
                : "neither disabled nor a config", "one of disabled or stateful_session");
    }

    /** A per-route config that replaces the filter's own. */
    public static StatefulSessionPerRoute of(StatefulSession config) {
        return new StatefulSessionPerRoute(false, Checks.nonNull(config, "stateful_session"));
    }
}
