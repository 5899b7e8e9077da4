package dev.inmesh.runtime.xds;

import com.google.protobuf.Any;
import dev.inmesh.api.config.listener.Lua;
import dev.inmesh.api.config.route.LuaPerRoute;
import dev.inmesh.runtime.router.LuaFilter;
import io.envoyproxy.envoy.config.core.v3.DataSource;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Envoy's Lua HTTP filter config ({@code Lua}), typed or in a {@code TypedStruct}: its script from
 * {@code default_source_code} or the deprecated {@code inline_code}, its named {@code source_codes}, and
 * {@code clear_route_cache} (true by default, as Envoy's). A script is given inline ({@code inline_string},
 * {@code inline_bytes}); a {@code filename} or an environment variable is refused by name. Every script is compiled
 * here, so that one that does not compile NACKs the listener with the Lua compiler's message, as Envoy refuses it.
 * {@code stat_prefix} only names Envoy's {@code lua.<prefix>.errors}, which Inmesh does not count. A virtual host's or
 * route's {@code LuaPerRoute} is read too ({@link #perRoute}).
 */
final class LuaParser {
    static final String TYPE = "envoy.extensions.filters.http.lua.v3.Lua";
    static final String PER_ROUTE_TYPE = "envoy.extensions.filters.http.lua.v3.LuaPerRoute";

    private LuaParser() {}

    static Lua parse(Any any, String filterName) {
        var c = LocalRateLimitParser.typed(any, io.envoyproxy.envoy.extensions.filters.http.lua.v3.Lua.class,
                io.envoyproxy.envoy.extensions.filters.http.lua.v3.Lua.newBuilder(), TYPE);
        Fields.onlyKnown(c, Set.of("inline_code", "default_source_code", "source_codes", "clear_route_cache"),
                Set.of("stat_prefix"));
        if (!c.getInlineCode().isEmpty() && c.hasDefaultSourceCode()) {
            throw new FieldError("default_source_code", "set with inline_code (expected: one of them)");
        }
        String source = c.hasDefaultSourceCode()
                ? Fields.at("default_source_code", () -> script(c.getDefaultSourceCode(), filterName))
                : c.getInlineCode().isEmpty() ? null : Fields.at("inline_code",
                        () -> checked(c.getInlineCode(), filterName));
        Map<String, String> named = new TreeMap<>();
        c.getSourceCodesMap().forEach((name, d) -> named.put(name, Fields.at("source_codes[" + name + "]",
                () -> script(d, name))));
        if (source == null && named.isEmpty()) {
            throw new FieldError("default_source_code", "missing (expected: a script, or named source_codes)");
        }
        return Fields.record("", () -> new Lua(source, named, !c.hasClearRouteCache()
                || c.getClearRouteCache().getValue()));
    }

    /**
     * A virtual host's or route's {@code LuaPerRoute}: {@code disabled}, a {@code name} among the filter's
     * {@code source_codes} (a name the filter has not runs no script, as Envoy's), or a {@code source_code} of its
     * own, compiled here as the filter's.
     */
    static LuaPerRoute perRoute(Any any, String filterName) {
        var p = LocalRateLimitParser.typed(any, io.envoyproxy.envoy.extensions.filters.http.lua.v3.LuaPerRoute.class,
                io.envoyproxy.envoy.extensions.filters.http.lua.v3.LuaPerRoute.newBuilder(), PER_ROUTE_TYPE);
        return switch (p.getOverrideCase()) {
            case DISABLED -> {
                if (!p.getDisabled()) {
                    throw new FieldError("disabled", "false (expected: true)");
                }
                yield new LuaPerRoute(true, null, null);
            }
            case NAME -> {
                if (p.getName().isEmpty()) {
                    throw new FieldError("name", "empty (expected: a name among the filter's source_codes)");
                }
                yield new LuaPerRoute(false, p.getName(), null);
            }
            case SOURCE_CODE -> new LuaPerRoute(false, null, Fields.at("source_code",
                    () -> script(p.getSourceCode(), filterName)));
            case OVERRIDE_NOT_SET -> throw new FieldError("override", "missing (expected: disabled, name or "
                    + "source_code)");
        };
    }

    private static String script(DataSource d, String chunkName) {
        return checked(CoreParsers.dataSource(d), chunkName);
    }

    /**
     * The script, once Inmesh takes it; otherwise refused with why ({@link LuaFilter#refusal}: the compiler's
     * message, a handle method it calls that Inmesh does not run, or the error its chunk raised when loaded).
     */
    private static String checked(String source, String chunkName) {
        String refusal = LuaFilter.refusal(source, chunkName);
        if (refusal != null) {
            throw new FieldError("", "the script " + refusal);
        }
        return source;
    }
}
