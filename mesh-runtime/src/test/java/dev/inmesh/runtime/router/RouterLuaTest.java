package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.equalTo;
import static com.github.tomakehurst.wiremock.client.WireMock.getRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.notMatching;
import static com.github.tomakehurst.wiremock.client.WireMock.postRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static dev.inmesh.runtime.router.RouterRig.get;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.tomakehurst.wiremock.WireMockServer;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.listener.Lua;
import dev.inmesh.runtime.upstream.ClusterManager;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Envoy's Lua filter in the router (the in-JVM client's and the standalone proxy's path), right before it: a request
 * script's headers reach the upstream and choose the route again, a response script's reach the caller, a script
 * that responds answers without the upstream, and a script error lets the request go on. A script that calls
 * {@code body()} has the request's body held whole first (a streamed one too), reads it, and may replace it.
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
        HttpConnectionManager hcm = HttpConnectionManager.of("outbound_0.0.0.0_9080", "9080", List.of(
                HttpFilter.of("envoy.filters.http.lua", "envoy.extensions.filters.http.lua.v3.Lua").withLua(config),
                HttpFilter.of("envoy.filters.http.router", "")));
        return req.lua(LuaFilter.compile(hcm));
    }

    /** A table of one virtual host for every domain, with {@code routes} (YAML list items). */
    private static RouteTable routes(String routes) {
        return RouterRig.table("""
                name: r
                virtual_hosts:
                - name: vh
                  domains: ["*"]
                  routes:
                """ + routes);
    }

    /** Requests with {@code x-to: other} go to cluster other, the rest to c. */
    private static RouteTable table() {
        return routes("""
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
    void streamInfosDownstreamRemoteAddressIsTheLastForwardedForIpAndTheDirectOneTheConnectionsPeer() {
        // Envoy's Lua streamInfo(): remoteAddress() as the connection manager set it from x-forwarded-for (port 0),
        // directRemoteAddress() the peer; the unparsable last entry leaves the peer
        String script = """
                function envoy_on_request(h)
                  local si = h:streamInfo()
                  h:headers():add("x-addr", si:downstreamRemoteAddress() .. "|" .. si:downstreamDirectRemoteAddress())
                end
                """;
        var r = rig.call(rig.router(), lua(get("/a", "x-forwarded-for", "10.1.2.3, 192.0.2.7"), script, true),
                table(), clusters);
        assertEquals(200, r.status());
        wm.verify(getRequestedFor(urlEqualTo("/a")).withHeader("x-addr", equalTo("192.0.2.7:0|127.0.0.1:50000")));
        assertEquals("192.0.2.7:0", r.info().downstreamRemoteAddress());
        assertEquals("127.0.0.1:50000", r.info().downstreamDirectRemoteAddress());
        rig.call(rig.router(), lua(get("/b", "x-forwarded-for", "10.1.2.3, proxy-1"), script, true), table(),
                clusters);
        wm.verify(getRequestedFor(urlEqualTo("/b")).withHeader("x-addr",
                equalTo("127.0.0.1:50000|127.0.0.1:50000")));
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
        assertEquals("text/plain", r.header("content-type"), "as Envoy's local reply: a body without a type");
        assertNull(r.header("x-own"), "its own reply does not pass through its response script");
        assertEquals(LuaFilter.DETAILS, r.info().responseCodeDetails());
        wm.verify(0, anyRequestedFor(anyUrl()));
    }

    @Test
    void aScriptsReplyKeepsTheContentTypeItSetWithABodyAndHasNoneWithoutOne() {
        var typed = rig.call(rig.router(), lua(get("/a"), """
                function envoy_on_request(h)
                  h:respond({[":status"] = "400", ["content-type"] = "application/json"}, "{}")
                end
                """, true), table(), clusters);
        assertEquals("application/json", typed.header("content-type"));
        assertEquals("{}", typed.body());
        var empty = rig.call(rig.router(), lua(get("/a"), """
                function envoy_on_request(h)
                  h:respond({[":status"] = "403", ["content-type"] = "application/json"}, "")
                end
                """, true), table(), clusters);
        assertEquals(403, empty.status());
        assertNull(empty.header("content-type"), "Envoy's local reply drops the type of an empty body");
    }

    @Test
    void aRequestsHostIsItsAuthorityToAScriptAsInEnvoysHeaderMap() {
        var r = rig.call(rig.router(), lua(get("/a"), """
                function envoy_on_request(h)
                  local hosts = 0
                  for k, v in pairs(h:headers()) do if k == "host" then hosts = hosts + 1 end end
                  h:headers():add("x-seen", tostring(h:headers():get("host") == h:headers():get(":authority"))
                      .. "|" .. hosts .. "|" .. h:headers():getNumValues("Host"))
                  h:headers():replace("host", "changed.example")
                end
                """, true), table(), clusters);
        assertEquals(200, r.status(), "a script error lets the request go on");
        // one header, listed once as :authority; read only, as :authority is
        wm.verify(getRequestedFor(urlEqualTo("/a")).withHeader("x-seen", equalTo("true|0|1"))
                .withHeader("host", notMatching("changed.example")));
    }

    @Test
    void aHeaderThatWouldSplitTheMessageIsAScriptErrorNotSent() {
        var r = rig.call(rig.router(), lua(get("/a"), """
                function envoy_on_request(h)
                  h:respond({[":status"] = "403", ["x-bad"] = "a\\r\\nx-injected: yes"}, "no")
                end
                function envoy_on_response(h)
                  h:headers():add("x-before", "1")
                  h:headers():add("x-bad", "b\\r\\nx-injected: yes")
                end
                """, true), table(), clusters);
        // respond() failed as a script error: the request went on to the upstream; the response script stopped
        // at its bad header, the one before it kept
        assertEquals(200, r.status());
        assertEquals("1", r.header("x-before"));
        assertNull(r.header("x-bad"));
        assertNull(r.header("x-injected"));
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

    /** Reads the body into x-body and its length into x-length; {@code body()} is nil for none. */
    private static final String READS_BODY = """
            function envoy_on_request(h)
              local b = h:body()
              h:headers():add("x-body", b == nil and "nil" or b:getBytes(0, b:length()))
              h:headers():add("x-wrapped", tostring(h:body(true):length()))
            end
            """;

    /** A POST whose body arrives after the request, in two chunks, without a content-length. */
    private CompletableFuture<RouterRig.Result> streamed(Router router, RouterRequest req, RouteTable table,
                                                         String... chunks) {
        RequestBodyStream body = new RequestBodyStream();
        req.bodyStream(body);
        var result = rig.start(router, req, table, clusters);
        rig.ctx.runOnContext(v -> {
            for (String c : chunks) {
                body.write(Buffer.buffer(c));
            }
            body.end();
        });
        return result;
    }

    @Test
    void aScriptReadsAWholeBodyAndTheUpstreamGetsItUnchanged() {
        rig.call(rig.router(), lua(RouterRig.request(HttpMethod.POST, "/a", "hello", "content-length", "5"),
                READS_BODY, true), table(), clusters);
        wm.verify(postRequestedFor(urlEqualTo("/a")).withHeader("x-body", equalTo("hello"))
                .withHeader("content-length", equalTo("5")).withRequestBody(equalTo("hello")));
    }

    @Test
    void aStreamedBodyIsHeldWholeBeforeTheScriptReadsIt() {
        var r = RouterRig.await(streamed(rig.router(), lua(RouterRig.request(HttpMethod.POST, "/a", null),
                READS_BODY, true), table(), "hello ", "world"));
        assertEquals(200, r.status());
        wm.verify(postRequestedFor(urlEqualTo("/a")).withHeader("x-body", equalTo("hello world"))
                .withHeader("x-wrapped", equalTo("11")).withRequestBody(equalTo("hello world")));
    }

    @Test
    void aBodyTheScriptSetsIsSentWithItsContentLength() {
        String script = "function envoy_on_request(h) h:body(true):setBytes('replaced!') end";
        RouterRig.await(streamed(rig.router(), lua(RouterRig.request(HttpMethod.POST, "/streamed", null), script,
                true), table(), "a much longer ", "original body"));
        rig.call(rig.router(), lua(RouterRig.request(HttpMethod.POST, "/whole", "original", "content-length", "8"),
                script, true), table(), clusters);
        rig.call(rig.router(), lua(get("/none"), script, true), table(), clusters);
        for (String path : new String[] {"/streamed", "/whole", "/none"}) {
            wm.verify(anyRequestedFor(urlEqualTo(path)).withHeader("content-length", equalTo("9"))
                    .withoutHeader("transfer-encoding").withRequestBody(equalTo("replaced!")));
        }
    }

    @Test
    void aRequestWithoutBodyHasNilAndAnEmptyWrappedBody() {
        rig.call(rig.router(), lua(get("/a"), READS_BODY, true), table(), clusters);
        wm.verify(getRequestedFor(urlEqualTo("/a")).withHeader("x-body", equalTo("nil"))
                .withHeader("x-wrapped", equalTo("0")));
    }

    /** Every request to cluster c, under a buffer limit of 8 bytes (its virtual host's). */
    private static RouteTable limitedTo8Bytes() {
        return RouterRig.table("""
                name: r
                virtual_hosts:
                - name: vh
                  domains: ["*"]
                  per_request_buffer_limit_bytes: 8
                  routes:
                  - match: {prefix: /}
                    route: {cluster: c}
                """);
    }

    @Test
    void aBodyOverTheRequestBufferLimitIsAnswered413WithoutTheUpstream() {
        RouteTable table = limitedTo8Bytes();
        var r = RouterRig.await(streamed(rig.router(), lua(RouterRig.request(HttpMethod.POST, "/a", null),
                READS_BODY, true), table, "hello ", "world"));
        assertEquals(413, r.status());
        assertEquals("Payload Too Large", r.body());
        assertEquals("request_payload_too_large", r.info().responseCodeDetails());
        wm.verify(0, anyRequestedFor(anyUrl()));
    }

    @Test
    void aCallerThatLeavesWhileItsBodyIsHeldEndsWithDc() throws Exception {
        Router router = rig.router();
        RouterRequest req = lua(RouterRig.request(HttpMethod.POST, "/a", null), READS_BODY, true);
        RequestBodyStream body = new RequestBodyStream();
        req.bodyStream(body);
        var result = rig.start(router, req, table(), clusters);
        CompletableFuture<Void> written = new CompletableFuture<>();
        rig.ctx.runOnContext(v -> {
            body.write(Buffer.buffer("part"));
            written.complete(null);
        });
        written.get(5, java.util.concurrent.TimeUnit.SECONDS);
        router.cancel(req);
        var r = RouterRig.await(result);
        assertEquals(0, r.status());
        assertTrue(r.flags().contains("DC"), r.flags());
        wm.verify(0, anyRequestedFor(anyUrl()));
    }

    /** Reads the response's body into x-body ("nil" for none) and the wrapped body's length into x-wrapped. */
    private static final String READS_RESPONSE_BODY = """
            function envoy_on_response(h)
              local b = h:body()
              h:headers():add("x-body", b == nil and "nil" or b:getBytes(0, b:length()))
              h:headers():add("x-wrapped", tostring(h:body(true):length()))
            end
            """;

    @Test
    void aResponseScriptReadsTheUpstreamsWholeBodyAndAddsAHeaderFromIt() {
        wm.stubFor(any(urlEqualTo("/chunked")).willReturn(aResponse().withStatus(200)
                .withBody("the upstream's body").withChunkedDribbleDelay(3, 50)));
        var r = rig.call(rig.router(), lua(get("/chunked"), READS_RESPONSE_BODY, true), table(), clusters);
        assertEquals(200, r.status());
        assertEquals("the upstream's body", r.header("x-body"));
        assertEquals("19", r.header("x-wrapped"));
        assertEquals("the upstream's body", r.body(), "the caller gets the body as it came");
    }

    @Test
    void aResponseBodyTheScriptSetsIsWhatTheCallerGetsWithItsContentLength() {
        var r = rig.call(rig.router(), lua(get("/a"), """
                function envoy_on_response(h)
                  h:body():setBytes("replaced by lua")
                  h:headers():add("x-after", "set after body()")
                end
                """, true), table(), clusters);
        assertEquals(200, r.status());
        assertEquals("replaced by lua", r.body());
        assertEquals("15", r.header("content-length"));
        assertNull(r.header("transfer-encoding"));
        assertEquals("set after body()", r.header("x-after"), "the headers go on once the script ended");
        assertEquals(15, r.info().bytesSent());
    }

    @Test
    void aResponseWithoutBodyHasNilAndAnEmptyWrappedBody() {
        wm.stubFor(any(urlEqualTo("/empty")).willReturn(aResponse().withStatus(200)));
        var r = rig.call(rig.router(), lua(get("/empty"), READS_RESPONSE_BODY, true), table(), clusters);
        assertEquals(200, r.status());
        assertEquals("nil", r.header("x-body"));
        assertEquals("0", r.header("x-wrapped"));
        assertEquals("", r.body());
    }

    @Test
    void aResponseBodyOverTheBufferLimitIsAnswered500AndCountedInRsTooLarge() {
        RouteTable table = limitedTo8Bytes();
        wm.stubFor(any(urlEqualTo("/big")).willReturn(aResponse().withStatus(200).withBody("longer than eight")));
        var registry = new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
        var stats = dev.inmesh.runtime.stats.MeshMetrics.create(registry,
                dev.inmesh.runtime.stats.WorkloadInfo.UNKNOWN).connectionManager(
                        HttpConnectionManager.of("outbound_0.0.0.0_9080", "9080", List.of()));
        var r = rig.call(rig.router(), lua(get("/big"), READS_RESPONSE_BODY, true).downstreamStats(stats), table,
                clusters);
        assertEquals(500, r.status());
        assertEquals("Internal Server Error", r.body());
        assertNull(r.header("x-body"), "the script did not run");
        assertEquals("response_payload_too_large", r.info().responseCodeDetails());
        assertEquals(1.0, registry.get("envoy_http_rs_too_large").gauge().value());
        // a body under the limit goes on
        var small = rig.call(rig.router(), lua(get("/a"), READS_RESPONSE_BODY, true), table, clusters);
        assertEquals("c", small.header("x-body"));
    }

    /**
     * The connection manager's 500 for a response over the buffer is a local reply as any other: as Envoy's
     * sendDirectLocalReply, it goes through the {@code local_reply_config} rewrite (its mappers and body format),
     * though not through the filters.
     */
    @Test
    void theLocalReplyConfigRewritesThe500ForAResponseBodyOverTheBufferLimit() {
        wm.stubFor(any(urlEqualTo("/big")).willReturn(aResponse().withStatus(200).withBody("longer than eight")));
        var config = dev.inmesh.runtime.accesslog.LocalReply.compile(new dev.inmesh.api.config.listener
                .LocalReplyConfig(List.of(new dev.inmesh.api.config.listener.LocalReplyConfig.ResponseMapper(
                        new dev.inmesh.api.config.listener.AccessLogConfig.StatusCode(
                                dev.inmesh.api.config.listener.AccessLogConfig.Op.EQ, 500), 503, null, List.of(),
                        null)), new dev.inmesh.api.config.listener.LocalReplyConfig.BodyFormat(
                        new dev.inmesh.api.config.listener.AccessLogConfig.Text(
                                "%RESPONSE_CODE% %LOCAL_REPLY_BODY%", false), null)));
        var r = rig.call(rig.router(), lua(get("/big"), READS_RESPONSE_BODY, true).localReply(config),
                limitedTo8Bytes(), clusters);
        assertEquals(503, r.status());
        assertEquals("503 Internal Server Error", r.body());
        assertEquals("text/plain", r.header("content-type"));
        assertEquals("25", r.header("content-length"));
        assertEquals("response_payload_too_large", r.info().responseCodeDetails());
    }

    @Test
    void aScriptThatDoesNotNameBodyLetsAStreamedBodyGoOnUnheld() {
        var r = RouterRig.await(streamed(rig.router(), lua(RouterRig.request(HttpMethod.POST, "/a", null),
                "function envoy_on_request(h) h:headers():add('x-lua', 'headers only') end", true), table(),
                "hello ", "world"));
        assertEquals(200, r.status());
        wm.verify(postRequestedFor(urlEqualTo("/a")).withHeader("x-lua", equalTo("headers only"))
                .withHeader("transfer-encoding", equalTo("chunked")).withRequestBody(equalTo("hello world")));
    }

    /** /moved redirects, /teapot answers 418 itself, /a goes to c, any other path matches no route. */
    private static RouteTable unforwarding() {
        return routes("""
                  - name: moved
                    match: {prefix: /moved}
                    redirect: {path_redirect: /new}
                  - name: teapot
                    match: {prefix: /teapot}
                    direct_response: {status: 418, body: {inline_string: teapot}}
                  - match: {prefix: /a}
                    route: {cluster: c}
                """);
    }

    /** Responds 403 to a request with x-respond; its response script names the status and the route it saw. */
    private static final String SEES_LOCAL_REPLIES = """
            function envoy_on_request(h)
              if h:headers():get("x-respond") then
                h:respond({[":status"] = "403"}, "by lua")
              end
              h:streamInfo():dynamicMetadata():set("seen", "route", h:streamInfo():routeName())
            end
            function envoy_on_response(h)
              local seen = h:streamInfo():dynamicMetadata():get("seen")
              h:headers():add("x-lua-response", h:headers():get(":status") .. " " .. (seen and seen.route or "-"))
            end
            """;

    @Test
    void theRoutersRedirectDirectResponseAndNoRouteRunTheRequestScriptAndItsResponseScript() {
        for (String[] c : new String[][] {{"/moved", "301 moved"}, {"/teapot", "418 teapot"}, {"/nowhere", "404 "}}) {
            var r = rig.call(rig.router(), lua(get(c[0]), SEES_LOCAL_REPLIES, true), unforwarding(), clusters);
            assertEquals(c[1], r.header("x-lua-response"), c[0]);
            var refused = rig.call(rig.router(), lua(get(c[0], "x-respond", "1"), SEES_LOCAL_REPLIES, true),
                    unforwarding(), clusters);
            assertEquals(403, refused.status(), c[0]);
            assertEquals("by lua", refused.body(), c[0]);
            assertEquals(LuaFilter.DETAILS, refused.info().responseCodeDetails(), c[0]);
        }
        var moved = rig.call(rig.router(), lua(get("/moved"), SEES_LOCAL_REPLIES, true), unforwarding(), clusters);
        assertEquals("/new", java.net.URI.create(moved.header("location")).getPath());
        var noRoute = rig.call(rig.router(), lua(get("/nowhere"), SEES_LOCAL_REPLIES, true), unforwarding(),
                clusters);
        assertEquals(404, noRoute.status());
        assertEquals("route_not_found", noRoute.info().responseCodeDetails());
        assertTrue(noRoute.flags().contains("NR"), noRoute.flags());
        wm.verify(0, anyRequestedFor(anyUrl()));
    }

    @Test
    void aPathTheScriptChangesMayMatchARouteOrADirectResponse() {
        String script = "function envoy_on_request(h) h:headers():replace(':path', h:headers():get('x-path')) end";
        var found = rig.call(rig.router(), lua(get("/nowhere", "x-path", "/a/found"), script, true), unforwarding(),
                clusters);
        assertEquals(200, found.status());
        wm.verify(getRequestedFor(urlEqualTo("/a/found")));
        var direct = rig.call(rig.router(), lua(get("/a", "x-path", "/teapot"), script, true), unforwarding(),
                clusters);
        assertEquals(418, direct.status());
        assertEquals("teapot", direct.body());
        wm.verify(0, getRequestedFor(urlEqualTo("/a")));
    }
}
