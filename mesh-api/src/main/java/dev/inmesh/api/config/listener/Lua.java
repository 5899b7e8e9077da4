package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;
import java.util.Map;

/**
 * The config of Envoy's Lua HTTP filter ({@code envoy.filters.http.lua}, {@code Lua}): a script that defines
 * {@code envoy_on_request(request_handle)} and/or {@code envoy_on_response(response_handle)}, run for each request
 * the filter sees. Scripts are kept as source text here; the runtime compiles them once per config.
 *
 * @param defaultSourceCode the script that runs where no route names another ({@code default_source_code}, or the
 *     deprecated {@code inline_code}); null for none (then only routes that name a script run one)
 * @param sourceCodes the named scripts a route's {@code LuaPerRoute} may pick ({@code source_codes}), by name
 * @param clearRouteCache whether the route is chosen again when a request script changed the request's headers, as
 *     Envoy's {@code clear_route_cache} (true by default)
 */
public record Lua(String defaultSourceCode, Map<String, String> sourceCodes, boolean clearRouteCache) {
    public Lua {
        sourceCodes = Checks.map(sourceCodes);
        Checks.check(defaultSourceCode != null || !sourceCodes.isEmpty(), "default_source_code", "missing",
                "a script, or named source_codes");
    }
}
