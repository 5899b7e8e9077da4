package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.listener.Lua;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Envoy's Lua filter as an Istio EnvoyFilter puts it (HTTP_FILTER, INSERT_BEFORE the router): its script inline in
 * any of its forms, typed or in a TypedStruct; a script that does not compile, a file and a filter Inmesh runs in
 * the router after it are refused by name.
 */
class LuaParserTest {
    private static final String SCRIPT = "function envoy_on_request(h) h:headers():add('x-lua', '1') end";

    private static String inbound(String filters) {
        return """
                {"name": "virtualInbound", "address": {"socketAddress": {"address": "0.0.0.0", "portValue": 15006}},
                 "useOriginalDst": true, "trafficDirection": "INBOUND",
                 "filterChains": [
                  {"name": "0.0.0.0_9080",
                   "filterChainMatch": {"destinationPort": 9080, "transportProtocol": "raw_buffer"},
                   "filters": [{"name": "envoy.filters.network.http_connection_manager", "typedConfig": {
                     "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                     "statPrefix": "inbound_0.0.0.0_9080",
                     "routeConfig": {"name": "inbound|9080||", "virtualHosts": [{
                       "name": "inbound|http|9080", "domains": ["*"], "routes": [{"name": "default",
                         "match": {"prefix": "/"}, "route": {"cluster": "inbound|9080||"}}]}]},
                     "httpFilters": [
                      %s,
                      {"name": "envoy.filters.http.router", "typedConfig": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}
                """.formatted(filters);
    }

    private static String lua(String fields) {
        return """
                {"name": "envoy.filters.http.lua", "typedConfig": {
                  "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua", %s}}""".formatted(fields);
    }

    private static String quoted(String s) {
        return "\"" + s.replace("'", "\\u0027") + "\"";
    }

    private static List<HttpFilter> luaFilters(String filters) throws EnvoyConfigReader.ConfigReadException {
        HttpConnectionManager hcm = (HttpConnectionManager) EnvoyConfigReader.read(inbound(filters)).listeners()
                .get("virtualInbound").filterChains().get(0).filter();
        return hcm.luaFilters();
    }

    private static String refusal(String filters) {
        return assertThrows(EnvoyConfigReader.ConfigReadException.class,
                () -> EnvoyConfigReader.read(inbound(filters))).getMessage();
    }

    @Test
    void theDeprecatedInlineCodeIsTheDefaultScript() throws Exception {
        Lua l = luaFilters(lua("\"inlineCode\": " + quoted(SCRIPT))).get(0).lua();
        assertEquals(SCRIPT, l.defaultSourceCode());
        assertTrue(l.clearRouteCache(), "Envoy's default");
    }

    @Test
    void defaultSourceCodeNamedSourceCodesAndClearRouteCacheAreRead() throws Exception {
        Lua l = luaFilters(lua("\"defaultSourceCode\": {\"inlineString\": " + quoted(SCRIPT) + "}, "
                + "\"sourceCodes\": {\"hello.lua\": {\"inlineString\": \"function envoy_on_response(h) end\"}}, "
                + "\"statPrefix\": \"mine\", \"clearRouteCache\": false")).get(0).lua();
        assertEquals(SCRIPT, l.defaultSourceCode());
        assertEquals(Map.of("hello.lua", "function envoy_on_response(h) end"), l.sourceCodes());
        assertFalse(l.clearRouteCache());
    }

    @Test
    void aTypedStructIsReadAsTheTypedConfig() throws Exception {
        Lua l = luaFilters("""
                {"name": "envoy.filters.http.lua", "typedConfig": {
                  "@type": "type.googleapis.com/udpa.type.v1.TypedStruct",
                  "typeUrl": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                  "value": {"inlineCode": %s}}}""".formatted(quoted(SCRIPT))).get(0).lua();
        assertEquals(SCRIPT, l.defaultSourceCode());
    }

    @Test
    void aDisabledLuaFilterRunsNowhere() throws Exception {
        HttpFilter f = luaFilters("""
                {"name": "envoy.filters.http.lua", "disabled": true, "typedConfig": {
                  "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua", "inlineCode": %s}}"""
                .formatted(quoted(SCRIPT))).stream().findFirst().orElse(null);
        assertNull(f);
    }

    @Test
    void aScriptThatDoesNotCompileIsRefusedWithTheCompilersMessage() {
        String m = refusal(lua("\"inlineCode\": \"function envoy_on_request(h\""));
        assertTrue(m.contains("http_filters[0].typed_config.inline_code"), m);
        assertTrue(m.contains("does not compile"), m);
        String named = refusal(lua("\"sourceCodes\": {\"bad.lua\": {\"inlineString\": \"end end\"}}"));
        assertTrue(named.contains("source_codes[bad.lua]"), named);
    }

    @Test
    void aScriptFileIsReadWithTheConfigurationAndOneNotThereIsRefusedByName(@TempDir Path dir) throws Exception {
        Path script = Files.writeString(dir.resolve("a.lua"), SCRIPT);
        Lua l = luaFilters(lua("\"defaultSourceCode\": {\"filename\": \"" + script + "\"}")).get(0).lua();
        assertEquals(SCRIPT, l.defaultSourceCode());
        String m = refusal(lua("\"defaultSourceCode\": {\"filename\": \"/nonexistent/a.lua\"}"));
        assertTrue(m.contains("default_source_code.filename: cannot read \"/nonexistent/a.lua\""), m);
        Files.writeString(script, "function envoy_on_request(h");
        m = refusal(lua("\"sourceCodes\": {\"a.lua\": {\"filename\": \"" + script + "\"}}"));
        assertTrue(m.contains("source_codes[a.lua]") && m.contains("does not compile"), m);
    }

    @Test
    void noScriptAtAllIsRefused() {
        String m = refusal(lua("\"statPrefix\": \"x\""));
        assertTrue(m.contains("default_source_code"), m);
    }

    @Test
    void aFilterInmeshRunsInTheRouterAfterALuaFilterIsRefused() {
        String m = refusal(lua("\"inlineCode\": " + quoted(SCRIPT)) + """
                ,
                {"name": "envoy.filters.http.fault", "typedConfig": {
                  "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}}""");
        assertTrue(m.contains("http_filters[1].name") && m.contains("after a header mutation, buffer or Lua filter"),
                m);
    }

    @Test
    void aLuaPerRouteIsReadAndItsScriptCompiled() throws Exception {
        String filter = lua("\"inlineCode\": " + quoted(SCRIPT));
        String perRoute = "\"@type\": \"type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute\"";
        String withRoute = inbound(filter).replace("\"route\": {\"cluster\": \"inbound|9080||\"}}",
                "\"route\": {\"cluster\": \"inbound|9080||\"}, \"typedPerFilterConfig\": {"
                        + "\"envoy.filters.http.lua\": {" + perRoute + ", %s}}}");
        HttpConnectionManager hcm = (HttpConnectionManager) EnvoyConfigReader.read(withRoute.formatted(
                "\"disabled\": true")).listeners().get("virtualInbound").filterChains().get(0).filter();
        assertEquals(new dev.inmesh.api.config.route.LuaPerRoute(true, null, null), hcm.routeConfig().virtualHosts()
                .get(0).routes().get(0).lua().get("envoy.filters.http.lua"));
        String m = assertThrows(EnvoyConfigReader.ConfigReadException.class, () -> EnvoyConfigReader.read(
                withRoute.formatted("\"sourceCode\": {\"inlineString\": \"end\"}"))).getMessage();
        assertTrue(m.contains("typed_per_filter_config[envoy.filters.http.lua].source_code"), m);
        assertTrue(m.contains("does not compile"), m);
    }
}
