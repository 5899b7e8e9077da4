package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;

/**
 * A virtual host's or route's override of a Lua filter ({@code typed_per_filter_config} {@code LuaPerRoute}): one of
 * disabling it, naming one of its {@code source_codes}, or a script of its own.
 *
 * @param disabled whether the filter runs no script for the requests of this virtual host or route
 * @param name the name of the filter's {@code source_codes} entry that runs instead of its default script, or null
 * @param sourceCode a script that runs instead of the filter's default ({@code source_code} inline), or null
 */
public record LuaPerRoute(boolean disabled, String name, String sourceCode) {
    public LuaPerRoute {
        int set = (disabled ? 1 : 0) + (name != null ? 1 : 0) + (sourceCode != null ? 1 : 0);
        Checks.check(set == 1, "override", set, "one of disabled, name or source_code");
    }
}
