package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.listener.Buffer;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.route.BufferPerRoute;
import dev.inmesh.api.config.route.RouteConfiguration;
import org.junit.jupiter.api.Test;

/**
 * Envoy's buffer filter as an Istio EnvoyFilter adds it: {@code max_request_bytes} required above 0, typed or in a
 * TypedStruct; its {@code BufferPerRoute} at route, virtual host and route configuration level; a filter Inmesh runs
 * earlier after it, and it after a Lua filter, refused by name.
 */
class BufferParserTest {
    static final String BUFFER = """
            {"name": "envoy.filters.http.buffer", "typedConfig": {
              "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer", %s}}""";
    static final String PER_ROUTE = """
            "typedPerFilterConfig": {"envoy.filters.http.buffer": {
              "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute", %s}}""";

    /** An inbound listener whose connection manager has {@code filters} and then the router. */
    static String inbound(String filters, String rcConfig, String vhConfig, String routeConfig) {
        return """
                {"name": "virtualInbound", "address": {"socketAddress": {"address": "0.0.0.0", "portValue": 15006}},
                 "useOriginalDst": true, "trafficDirection": "INBOUND",
                 "filterChains": [
                  {"name": "0.0.0.0_9080",
                   "filterChainMatch": {"destinationPort": 9080, "transportProtocol": "raw_buffer"},
                   "filters": [{"name": "envoy.filters.network.http_connection_manager", "typedConfig": {
                     "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                     "statPrefix": "inbound_0.0.0.0_9080",
                     "routeConfig": {"name": "inbound|9080||", %s "virtualHosts": [{
                       "name": "inbound|http|9080", "domains": ["*"], %s "routes": [{"name": "default", %s
                         "match": {"prefix": "/"}, "route": {"cluster": "inbound|9080||"}}]}]},
                     "httpFilters": [
                      %s,
                      {"name": "envoy.filters.http.router", "typedConfig": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}
                """.formatted(rcConfig, vhConfig, routeConfig, filters);
    }

    static HttpConnectionManager hcm(String json) throws EnvoyConfigReader.ConfigReadException {
        return (HttpConnectionManager) EnvoyConfigReader.read(json).listeners().get("virtualInbound").filterChains()
                .get(0).filter();
    }

    static String refusal(String json) {
        return assertThrows(EnvoyConfigReader.ConfigReadException.class, () -> EnvoyConfigReader.read(json))
                .getMessage();
    }

    @Test
    void maxRequestBytesIsRead() throws Exception {
        HttpConnectionManager h = hcm(inbound(BUFFER.formatted("\"maxRequestBytes\": 1024"), "", "", ""));
        assertEquals(new Buffer(1024), h.httpFilters().get(0).buffer());
    }

    @Test
    void aTypedStructIsReadAsTheTypedConfig() throws Exception {
        HttpConnectionManager h = hcm(inbound("""
                {"name": "envoy.filters.http.buffer", "typedConfig": {
                  "@type": "type.googleapis.com/udpa.type.v1.TypedStruct",
                  "typeUrl": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
                  "value": {"maxRequestBytes": 2048}}}""", "", "", ""));
        assertEquals(new Buffer(2048), h.httpFilters().get(0).buffer());
    }

    @Test
    void aMissingOrZeroMaxRequestBytesIsRefused() {
        String zero = refusal(inbound(BUFFER.formatted("\"maxRequestBytes\": 0"), "", "", ""));
        assertTrue(zero.contains("http_filters[0].typed_config.max_request_bytes"), zero);
        String unset = refusal(inbound(BUFFER.formatted("\"@type\": \"type.googleapis.com/envoy.extensions.filters"
                + ".http.buffer.v3.Buffer\"").replaceFirst("\"@type\"[^,]*, ", ""), "", "", ""));
        assertTrue(unset.contains("max_request_bytes"), unset);
    }

    @Test
    void aDisabledBufferFilterRunsNowhere() throws Exception {
        HttpConnectionManager h = hcm(inbound("""
                {"name": "envoy.filters.http.buffer", "disabled": true, "typedConfig": {
                  "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
                  "maxRequestBytes": 10}}""", "", "", ""));
        assertNull(h.httpFilters().get(0).buffer());
    }

    @Test
    void bufferPerRouteIsReadAtEachLevel() throws Exception {
        HttpConnectionManager h = hcm(inbound(BUFFER.formatted("\"maxRequestBytes\": 8"),
                PER_ROUTE.formatted("\"buffer\": {\"maxRequestBytes\": 1}") + ",",
                PER_ROUTE.formatted("\"disabled\": true") + ",",
                PER_ROUTE.formatted("\"buffer\": {\"maxRequestBytes\": 3}") + ","));
        RouteConfiguration rc = h.routeConfig();
        assertEquals(new BufferPerRoute(new Buffer(1)), rc.filterConfigs().get("envoy.filters.http.buffer"));
        assertEquals(BufferPerRoute.DISABLED, rc.virtualHosts().get(0).filterConfigs()
                .get("envoy.filters.http.buffer"));
        assertEquals(new BufferPerRoute(new Buffer(3)), rc.virtualHosts().get(0).routes().get(0).filterConfigs()
                .get("envoy.filters.http.buffer"));
    }

    @Test
    void aBufferPerRouteWithoutAnOverrideOrWithAZeroLimitIsRefused() {
        String unset = refusal(inbound(BUFFER.formatted("\"maxRequestBytes\": 8"), "", "",
                "\"typedPerFilterConfig\": {\"b\": {\"@type\": \"type.googleapis.com/envoy.extensions.filters.http"
                        + ".buffer.v3.BufferPerRoute\"}},"));
        assertTrue(unset.contains("typed_per_filter_config[b].override"), unset);
        String zero = refusal(inbound(BUFFER.formatted("\"maxRequestBytes\": 8"), "", "",
                PER_ROUTE.formatted("\"buffer\": {}") + ","));
        assertTrue(zero.contains("typed_per_filter_config[envoy.filters.http.buffer].buffer.max_request_bytes"),
                zero);
    }

    @Test
    void anotherFiltersConfigOnARouteConfigurationIsRefusedByName() {
        String m = refusal(inbound(BUFFER.formatted("\"maxRequestBytes\": 8"), """
                "typedPerFilterConfig": {"envoy.filters.http.lua": {
                  "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute", "disabled": true}},
                """, "", ""));
        assertTrue(m.contains("typed_per_filter_config[envoy.filters.http.lua]"), m);
    }

    @Test
    void aFilterInmeshRunsEarlierAfterItAndItAfterALuaFilterAreRefusedByName() {
        String rbac = refusal(inbound(BUFFER.formatted("\"maxRequestBytes\": 8") + """
                , {"name": "envoy.filters.http.rbac", "typedConfig": {
                  "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"}}""", "", "", ""));
        assertTrue(rbac.contains("http_filters[1].name") && rbac.contains("after a header mutation, buffer or Lua"),
                rbac);
        String afterLua = refusal(inbound("""
                {"name": "envoy.filters.http.lua", "typedConfig": {
                  "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                  "inlineCode": "function envoy_on_request(h) end"}}, """
                + BUFFER.formatted("\"maxRequestBytes\": 8"), "", "", ""));
        assertTrue(afterLua.contains("http_filters[1].name") && afterLua.contains("after a Lua filter"), afterLua);
        String second = refusal(inbound(BUFFER.formatted("\"maxRequestBytes\": 8") + ", "
                + BUFFER.formatted("\"maxRequestBytes\": 9"), "", "", ""));
        assertTrue(second.contains("a second buffer filter"), second);
    }
}
