package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.equalTo;
import static com.github.tomakehurst.wiremock.client.WireMock.getRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static dev.inmesh.runtime.router.RouterRig.get;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import com.github.tomakehurst.wiremock.WireMockServer;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.listener.Lua;
import dev.inmesh.runtime.upstream.ClusterManager;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Envoy's Lua filter in the router (the in-JVM client's and the standalone proxy's path), right before it: a request
 * script's headers reach the upstream and choose the route again, a response script's reach the caller, a script
 * that responds answers without the upstream, and a script error lets the request go on.
 */
class RouterLuaTest {
    private final RouterRig rig = new RouterRig();
    private final WireMockServer wm = rig.wiremock();
    private final WireMockServer other = rig.wiremock();
    private final ClusterManager clusters = rig.clusters(cluster("c", wm.port()), cluster("other", other.port()));

    RouterLuaTest() {
        wm.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(200).withBody("c")));
        other.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(200).withBody("other")));
    }

    @AfterEach
    void closeRig() {
        rig.close();
    }

    private static RouterRequest lua(RouterRequest req, String script, boolean clearRouteCache) {
        return lua(req, new Lua(script, Map.of(), clearRouteCache));
    }

    private static RouterRequest lua(RouterRequest req, Lua config) {
        HttpConnectionManager hcm = new HttpConnectionManager("outbound_0.0.0.0_9080", "9080", null, List.of(
                new HttpFilter("envoy.filters.http.lua", "envoy.extensions.filters.http.lua.v3.Lua", config),
                new HttpFilter("envoy.filters.http.router", "")), null, false, 0, true, false,
                null, 0, null, null, 0, false, null, null);
        return req.lua(LuaFilter.compile(hcm));
    }

    /** Requests with {@code x-to: other} go to cluster other, the rest to c. */
    private static RouteTable table() {
        return RouterRig.table("""
                name: r
                virtual_hosts:
                - name: vh
                  domains: ["*"]
                  routes:
                  - match: {prefix: /, headers: [{name: x-to, string_match: {exact: other}}]}
                    route: {cluster: other}
                  - name: to-c
                    match: {prefix: /}
                    route: {cluster: c}
                """);
    }

    @Test
    void aRequestHeaderAddedReachesTheUpstreamAndAResponseHeaderTheCaller() {
        var r = rig.call(rig.router(), lua(get("/a"), """
                function envoy_on_request(h)
                  h:headers():add("x-lua", "on request " .. h:streamInfo():routeName())
                end
                function envoy_on_response(h)
                  h:headers():add("x-lua-response", h:headers():get(":status"))
                end
                """, true), table(), clusters);
        assertEquals(200, r.status());
        assertEquals("c", r.body());
        assertEquals("200", r.header("x-lua-response"));
        wm.verify(getRequestedFor(urlEqualTo("/a")).withHeader("x-lua", equalTo("on request to-c")));
    }

    @Test
    void changedHeadersChooseTheRouteAgainUnlessTheFilterKeepsTheRouteCache() {
        String script = "function envoy_on_request(h) h:headers():replace('x-to', 'other') end";
        assertEquals("other", rig.call(rig.router(), lua(get("/a"), script, true), table(), clusters).body());
        assertEquals("c", rig.call(rig.router(), lua(get("/a"), script, false), table(), clusters).body(),
                "clear_route_cache false: the route chosen before the script stands");
    }

    @Test
    void aScriptThatRespondsAnswersWithoutTheUpstream() {
        var r = rig.call(rig.router(), lua(get("/a"), """
                function envoy_on_request(h)
                  h:respond({[":status"] = "403", ["x-denied-by"] = "lua"}, "denied by script")
                end
                function envoy_on_response(h) h:headers():add("x-own", "1") end
                """, true), table(), clusters);
        assertEquals(403, r.status());
        assertEquals("denied by script", r.body());
        assertEquals("lua", r.header("x-denied-by"));
        assertNull(r.header("content-type"), "the script's headers only");
        assertNull(r.header("x-own"), "its own reply does not pass through its response script");
        assertEquals(LuaFilter.DETAILS, r.info().responseCodeDetails());
        wm.verify(0, anyRequestedFor(anyUrl()));
    }

    @Test
    void aScriptErrorLetsTheRequestGoOn() {
        var r = rig.call(rig.router(), lua(get("/a"), """
                function envoy_on_request(h)
                  h:headers():add("x-before", "1")
                  error("boom")
                end
                """, true), table(), clusters);
        assertEquals(200, r.status());
        wm.verify(getRequestedFor(urlEqualTo("/a")).withHeader("x-before", equalTo("1")));
    }

    @Test
    void aPathChangedByTheScriptIsTheOneSentUpstream() {
        rig.call(rig.router(), lua(get("/a"), "function envoy_on_request(h) h:headers():replace(':path', '/b') end",
                true), table(), clusters);
        wm.verify(getRequestedFor(urlEqualTo("/b")));
    }

    @Test
    void aRoutesLuaPerRouteDisablesTheFilterNamesASourceCodeOrGivesAScript() {
        String perRoute = "\"@type\": type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute";
        RouteTable table = RouterRig.table("""
                name: r
                virtual_hosts:
                - name: vh
                  domains: ["*"]
                  typed_per_filter_config:
                    envoy.filters.http.lua: {%1$s, name: hello.lua}
                  routes:
                  - match: {prefix: /off}
                    route: {cluster: c}
                    typed_per_filter_config:
                      envoy.filters.http.lua: {%1$s, disabled: true}
                  - match: {prefix: /own}
                    route: {cluster: c}
                    typed_per_filter_config:
                      envoy.filters.http.lua:
                        %1$s
                        source_code: {inline_string: "function envoy_on_request(h) h:headers():add('x-lua', 'own') end"}
                  - match: {prefix: /}
                    route: {cluster: c}
                """.formatted(perRoute));
        Lua config = new Lua("function envoy_on_request(h) h:headers():add('x-lua', 'default') end",
                Map.of("hello.lua", "function envoy_on_request(h) h:headers():add('x-lua', 'hello') end"), true);
        rig.call(rig.router(), lua(get("/off"), config), table, clusters);
        rig.call(rig.router(), lua(get("/own"), config), table, clusters);
        rig.call(rig.router(), lua(get("/vh"), config), table, clusters);
        wm.verify(getRequestedFor(urlEqualTo("/off")).withoutHeader("x-lua"));
        wm.verify(getRequestedFor(urlEqualTo("/own")).withHeader("x-lua", equalTo("own")));
        wm.verify(getRequestedFor(urlEqualTo("/vh")).withHeader("x-lua", equalTo("hello")));
    }
}
