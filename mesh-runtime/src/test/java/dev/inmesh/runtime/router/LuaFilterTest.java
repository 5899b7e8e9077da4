package dev.inmesh.runtime.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.listener.Lua;
import io.vertx.core.MultiMap;
import io.vertx.core.buffer.Buffer;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class LuaFilterTest {
    private static final LuaFilter.Info INFO = new LuaFilter.Info("HTTP/1.1", "10.0.0.2:9080", "10.0.0.1:40000",
            "10.0.0.1:40000", "reviews.default.svc", "default");

    /** A request head: its headers and the pseudo-headers {@code :path}, {@code :method}, {@code :authority}. */
    private static final class Request implements LuaFilter.Head {
        final MultiMap headers = MultiMap.caseInsensitiveMultiMap();
        final Map<String, String> pseudo = new HashMap<>(Map.of(":path", "/a", ":method", "GET",
                ":authority", "reviews"));

        @Override
        public MultiMap headers() {
            return headers;
        }

        @Override
        public String pseudo(String name) {
            return pseudo.get(name);
        }

        @Override
        public boolean setPseudo(String name, String value) {
            if (!name.equals(":path")) {
                return false;
            }
            pseudo.put(name, value);
            return true;
        }
    }

    private static LuaFilter.Stream stream(String... scripts) {
        List<HttpFilter> filters = new java.util.ArrayList<>();
        for (String s : scripts) {
            filters.add(HttpFilter.of("envoy.filters.http.lua", "").withLua(new Lua(s, Map.of(), true)));
        }
        filters.add(HttpFilter.of("envoy.filters.http.router", ""));
        HttpConnectionManager hcm = HttpConnectionManager.of("in", "r", filters);
        return new LuaFilter.Stream(LuaFilter.compile(hcm));
    }

    @Test
    void readsAndChangesRequestHeadersAsEnvoysHeaderMap() {
        Request r = new Request();
        r.headers.add("x-multi", "one").add("x-multi", "two").add("x-gone", "1");
        LuaFilter.Stream s = stream("""
                function envoy_on_request(h)
                  local hs = h:headers()
                  hs:add("x-get", hs:get("x-multi"))
                  hs:add("x-first", hs:getAtIndex("x-multi", 0))
                  hs:add("x-second", hs:getAtIndex("x-multi", 1))
                  hs:add("x-count", tostring(hs:getNumValues("x-multi")))
                  hs:add("x-path", hs:get(":path"))
                  hs:replace("x-new", "absent before")
                  hs:replace("x-multi", "only")
                  hs:remove("x-gone")
                  hs:replace(":path", "/b")
                  local n = 0
                  for k, v in pairs(hs) do n = n + 1 end
                  hs:add("x-pairs", tostring(n))
                end
                """);
        assertNull(s.request(r, INFO, null));
        assertEquals("one,two", r.headers.get("x-get"), "get joins the values, as Envoy's");
        assertEquals("one", r.headers.get("x-first"));
        assertEquals("two", r.headers.get("x-second"));
        assertEquals("2", r.headers.get("x-count"));
        assertEquals("/a", r.headers.get("x-path"));
        assertEquals("absent before", r.headers.get("x-new"), "replace adds a header that is absent");
        assertEquals(List.of("only"), r.headers.getAll("x-multi"));
        assertFalse(r.headers.contains("x-gone"));
        assertEquals("/b", r.pseudo.get(":path"));
        // 3 pseudo-headers, then one pair per value: x-multi, x-get, x-first, x-second, x-count, x-path, x-new
        assertEquals("10", r.headers.get("x-pairs"));
        assertTrue(s.reroute(), "changed headers clear the route cache, as clear_route_cache's default");
    }

    @Test
    void respondAnswersTheRequestAndSkipsTheRestOfTheScriptAndTheFiltersAfter() {
        Request r = new Request();
        LuaFilter.Stream s = stream("""
                function envoy_on_request(h)
                  h:respond({[":status"] = "403", ["x-why"] = "lua"}, "nope")
                  h:headers():add("x-after", "1")
                end
                function envoy_on_response(h) h:headers():add("x-own-response", "1") end
                """, """
                function envoy_on_request(h) h:headers():add("x-second-filter", "1") end
                """);
        LuaFilter.Reply reply = s.request(r, INFO, null);
        assertNotNull(reply);
        assertEquals(403, reply.status());
        assertEquals("lua", reply.headers().get("x-why"));
        assertEquals("4", reply.headers().get("content-length"));
        assertEquals("nope", reply.body());
        assertFalse(r.headers.contains("x-after"));
        assertFalse(r.headers.contains("x-second-filter"));
        MultiMap response = MultiMap.caseInsensitiveMultiMap();
        s.response(head(response), INFO);
        assertFalse(response.contains("x-own-response"), "its own reply does not go through the filter");
    }

    /** A body held for the scripts, as the router's and the inbound handler's: what it now is. */
    private static final class Held {
        Buffer now;
        final LuaFilter.Body body;

        Held(String body) {
            now = body == null ? null : Buffer.buffer(body);
            this.body = LuaFilter.Body.of(now, b -> now = b);
        }
    }

    @Test
    void aScriptReadsBodyWhenItsCodeNamesBody() {
        assertTrue(stream("function envoy_on_request(h) local b = h:body() end").readsBody(null));
        assertTrue(stream("""
                local function read(h) return h:body(true) end
                function envoy_on_request(h) read(h) end
                """).readsBody(null), "a helper's call counts");
        assertFalse(stream("function envoy_on_request(h) h:headers():add('x-body', 'no call') end")
                .readsBody(null), "the word in a string is not the constant body");
        assertFalse(stream().readsBody(null));
    }

    @Test
    void theBodyBufferHasEnvoysLengthGetBytesAndSetBytes() {
        Request r = new Request();
        r.headers.set("content-length", "11").set("transfer-encoding", "chunked");
        Held held = new Held("hello world");
        LuaFilter.Stream s = stream("""
                function envoy_on_request(h)
                  local hs = h:headers()
                  local b = h:body()
                  hs:add("x-length", tostring(b:length()))
                  hs:add("x-first", b:getBytes(0, 5))
                  hs:add("x-last", b:getBytes(6, 5))
                  hs:add("x-none", "[" .. b:getBytes(11, 0) .. "]")
                  hs:add("x-past", tostring(pcall(b.getBytes, b, 7, 5)))
                  hs:add("x-negative", tostring(pcall(b.getBytes, b, -1, 1)))
                  hs:add("x-set", tostring(b:setBytes("bye")))
                  hs:add("x-again", h:body():getBytes(0, 3) .. " " .. b:length())
                end
                """);
        assertNull(s.request(r, INFO, null, held.body));
        assertEquals("11", r.headers.get("x-length"));
        assertEquals("hello", r.headers.get("x-first"));
        assertEquals("world", r.headers.get("x-last"));
        assertEquals("[]", r.headers.get("x-none"));
        assertEquals("false", r.headers.get("x-past"), "index + length past the end is an error");
        assertEquals("false", r.headers.get("x-negative"));
        assertEquals("3", r.headers.get("x-set"), "setBytes answers the new length");
        assertEquals("bye 3", r.headers.get("x-again"));
        assertEquals("bye", held.now.toString());
        assertEquals("3", r.headers.get("content-length"), "as Envoy's setBytes");
        assertNull(r.headers.get("transfer-encoding"));
    }

    @Test
    void aRequestWithoutBodyHasNilUnlessAlwaysWrapBodyAsksForAnEmptyBuffer() {
        Request r = new Request();
        Held held = new Held(null);
        LuaFilter.Stream s = stream("""
                function envoy_on_request(h)
                  local hs = h:headers()
                  hs:add("x-nil", tostring(h:body() == nil))
                  hs:add("x-false", tostring(h:body(false) == nil))
                  hs:add("x-not-boolean", tostring(pcall(h.body, h, 1)))
                  local b = h:body(true)
                  hs:add("x-length", tostring(b:length()))
                  b:setBytes("made")
                end
                """);
        assertNull(s.request(r, INFO, null, held.body));
        assertEquals("true", r.headers.get("x-nil"));
        assertEquals("true", r.headers.get("x-false"));
        assertEquals("false", r.headers.get("x-not-boolean"), "always_wrap_body must be a boolean");
        assertEquals("0", r.headers.get("x-length"));
        assertEquals("made", held.now.toString());
        assertEquals("4", r.headers.get("content-length"));
    }

    @Test
    void aResponseBodyIsHeldWhenTheScriptNamesBodyOutsideItsRequestFunction() {
        LuaFilter.Stream requestOnly = stream("function envoy_on_request(h) local b = h:body() end");
        requestOnly.request(new Request(), INFO, null);
        assertTrue(requestOnly.readsBody(null));
        assertFalse(requestOnly.readsResponseBody(), "only envoy_on_request names it");
        LuaFilter.Stream response = stream("function envoy_on_response(h) local b = h:body() end");
        response.request(new Request(), INFO, null);
        assertTrue(response.readsResponseBody());
        LuaFilter.Stream helper = stream("""
                local function read(h) return h:body(true) end
                function envoy_on_request(h) end
                function envoy_on_response(h) read(h) end
                """);
        helper.request(new Request(), INFO, null);
        assertTrue(helper.readsResponseBody(), "a helper either side may call counts");
        LuaFilter.Stream assigned = stream("envoy_on_request = function(h) h:body() end");
        assigned.request(new Request(), INFO, null);
        assertFalse(assigned.readsResponseBody(), "a function assigned to envoy_on_request is its request function");
        LuaFilter.Stream none = stream("function envoy_on_response(h) h:headers():add('x-body', 'no') end");
        none.request(new Request(), INFO, null);
        assertFalse(none.readsResponseBody());
        assertFalse(stream().readsResponseBody());
    }

    @Test
    void aResponseScriptReadsAndReplacesTheHeldResponseBody() {
        LuaFilter.Stream s = stream("""
                function envoy_on_response(h)
                  local b = h:body()
                  h:headers():add("x-upstream-body", b:getBytes(0, b:length()))
                  b:setBytes("replaced by lua")
                  h:headers():add("x-after", "headers still change")
                end
                """);
        assertNull(s.request(new Request(), INFO, null));
        MultiMap response = MultiMap.caseInsensitiveMultiMap().set("content-length", "5")
                .set("transfer-encoding", "chunked");
        Held held = new Held("hello");
        s.response(head(response), INFO, held.body);
        assertEquals("hello", response.get("x-upstream-body"));
        assertEquals("replaced by lua", held.now.toString());
        assertEquals("15", response.get("content-length"), "as Envoy's setBytes");
        assertNull(response.get("transfer-encoding"));
        assertEquals("headers still change", response.get("x-after"));
    }

    @Test
    void aResponseWithoutBodyHasNilUnlessAlwaysWrapBodyAsksForAnEmptyBuffer() {
        LuaFilter.Stream s = stream("""
                function envoy_on_response(h)
                  h:headers():add("x-nil", tostring(h:body() == nil))
                  h:headers():add("x-length", tostring(h:body(true):length()))
                end
                """);
        assertNull(s.request(new Request(), INFO, null));
        MultiMap response = MultiMap.caseInsensitiveMultiMap();
        s.response(head(response), INFO, new Held(null).body);
        assertEquals("true", response.get("x-nil"));
        assertEquals("0", response.get("x-length"));
    }

    @Test
    void bodyIsNotSupportedWhereTheBodyWasNotHeld() {
        Request r = new Request();
        LuaFilter.Stream s = stream("""
                function envoy_on_request(h)
                  local ok, err = pcall(h.body, h)
                  h:headers():add("x-request", tostring(ok))
                end
                function envoy_on_response(h)
                  local ok, err = pcall(h.body, h, true)
                  h:headers():add("x-response", tostring(ok))
                end
                """);
        assertNull(s.request(r, INFO, null));
        assertEquals("false", r.headers.get("x-request"));
        MultiMap response = MultiMap.caseInsensitiveMultiMap();
        s.response(LuaFilter.responseHead(response, () -> 200), INFO);
        assertEquals("false", response.get("x-response"));
    }

    @Test
    void aScriptErrorIsLoggedAndTheRequestGoesOnAsTheScriptLeftIt() {
        Request r = new Request();
        LuaFilter.Stream s = stream("""
                function envoy_on_request(h)
                  h:headers():add("x-before", "1")
                  h:respond({["x-no-status"] = "1"}, "")
                end
                """, """
                function envoy_on_request(h)
                  h:logInfo("second filter")
                  h:headers():add("x-next", h:streamInfo():protocol())
                  h:body()
                end
                """);
        assertNull(s.request(r, INFO, null), "no :status: an error, not a reply");
        assertEquals("1", r.headers.get("x-before"));
        assertEquals("HTTP/1.1", r.headers.get("x-next"), "the next filter ran");
    }

    @Test
    void responseScriptsRunInReverseOrderAndSeeTheStatus() {
        LuaFilter.Stream s = stream("""
                function envoy_on_response(h) h:headers():add("x-order", "first") end
                """, """
                function envoy_on_response(h)
                  h:headers():add("x-order", "second")
                  h:headers():add("x-status", h:headers():get(":status"))
                end
                """);
        assertNull(s.request(new Request(), INFO, null));
        assertFalse(s.reroute(), "no request script: nothing changed");
        MultiMap response = MultiMap.caseInsensitiveMultiMap();
        s.response(head(response), INFO);
        assertEquals(List.of("second", "first"), response.getAll("x-order"));
        assertEquals("200", response.get("x-status"));
    }

    @Test
    void streamInfoAndDynamicMetadataLastForTheRequest() {
        Request r = new Request();
        LuaFilter.Stream s = stream("""
                function envoy_on_request(h)
                  local si = h:streamInfo()
                  h:headers():add("x-info", si:downstreamLocalAddress() .. "|" .. si:downstreamRemoteAddress()
                    .. "|" .. si:downstreamDirectRemoteAddress() .. "|" .. si:requestedServerName()
                    .. "|" .. si:routeName())
                  si:dynamicMetadata():set("my.filter", "user", "alice")
                  local m = h:metadata():get("anything")
                  h:headers():add("x-metadata", tostring(m))
                end
                function envoy_on_response(h)
                  local n = 0
                  for k, v in pairs(h:streamInfo():dynamicMetadata()) do n = n + 1 end
                  h:headers():add("x-user", h:streamInfo():dynamicMetadata():get("my.filter")["user"] .. n)
                end
                """);
        assertNull(s.request(r, INFO, null));
        assertEquals("10.0.0.2:9080|10.0.0.1:40000|10.0.0.1:40000|reviews.default.svc|default",
                r.headers.get("x-info"));
        assertEquals("nil", r.headers.get("x-metadata"));
        MultiMap response = MultiMap.caseInsensitiveMultiMap();
        s.response(head(response), INFO);
        assertEquals("alice1", response.get("x-user"));
    }

    @Test
    void theSandboxHasNoFilesNorProcesses() {
        Request r = new Request();
        LuaFilter.Stream s = stream("""
                function envoy_on_request(h)
                  h:headers():add("x-io", tostring(io))
                  h:headers():add("x-execute", tostring(os.execute))
                  h:headers():add("x-dofile", tostring(dofile))
                  h:headers():add("x-luajava", tostring(luajava))
                  h:headers():add("x-time", type(os.time()))
                  h:headers():add("x-string", string.upper("a") .. table.concat({"b", "c"}) .. math.floor(1.5))
                end
                """);
        assertNull(s.request(r, INFO, null));
        assertEquals("nil", r.headers.get("x-io"));
        assertEquals("nil", r.headers.get("x-execute"));
        assertEquals("nil", r.headers.get("x-dofile"));
        assertEquals("nil", r.headers.get("x-luajava"));
        assertEquals("number", r.headers.get("x-time"));
        assertEquals("Abc1", r.headers.get("x-string"));
    }

    @Test
    void aScriptRunningOutOfStackIsAScriptErrorAndTheRequestGoesOn() {
        Request r = new Request();
        LuaFilter.Stream s = stream("""
                function envoy_on_request(h)
                  h:headers():add("x-before", "1")
                  local function deeper(n) return 1 + deeper(n + 1) end
                  deeper(1)
                end
                """, """
                function envoy_on_request(h)
                  h:headers():add("x-next", "ran")
                end
                """);
        assertNull(s.request(r, INFO, null), "the JVM's StackOverflowError ends the script as Lua's stack overflow");
        assertEquals("1", r.headers.get("x-before"));
        assertEquals("ran", r.headers.get("x-next"), "the next filter ran");
    }

    @Test
    void aScriptCallingAMethodInmeshDoesNotRunOrFailingWhenLoadedIsRefused() {
        // an authorizer's httpCall would fail open: refused when read, as a method or a field call
        assertEquals("calls httpCall(), which Inmesh's Lua filter does not run", LuaFilter.refusal("""
                function envoy_on_request(h)
                  local headers, body = h:httpCall("authz", {[":method"] = "GET", [":path"] = "/"}, "", 1000)
                  if body ~= "allow" then h:respond({[":status"] = "403"}, "denied") end
                end
                """, "lua"));
        assertEquals("calls bodyChunks(), which Inmesh's Lua filter does not run", LuaFilter.refusal("""
                function envoy_on_response(h)
                  for chunk in h.bodyChunks(h) do end
                end
                """, "lua"));
        // a string that merely names one is no call
        assertNull(LuaFilter.refusal("""
                function envoy_on_request(h) h:headers():replace("te", "trailers") end
                """, "lua"));
        // as Envoy runs a script's chunk when it reads it
        String loaded = LuaFilter.refusal("""
                function envoy_on_request(h) end
                error("top-level boom")
                """, "lua");
        assertTrue(loaded.startsWith("fails when loaded: ") && loaded.contains("top-level boom"), loaded);
        var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> LuaFilter.compile(hcm("my-lua", new Lua("function envoy_on_request(h) h:trailers() end",
                        Map.of(), true))));
        assertEquals("Lua filter my-lua: default_source_code calls trailers(), which Inmesh's Lua filter does not run",
                e.getMessage());
    }

    @Test
    void compileErrorsAreReported() {
        assertTrue(LuaFilter.refusal("function envoy_on_request(h", "lua").startsWith("does not compile: "));
        assertNull(LuaFilter.refusal("function envoy_on_request(h) end", "lua"));
    }

    private static LuaFilter.Head head(MultiMap headers) {
        return LuaFilter.responseHead(headers, () -> 200);
    }

    /** A connection manager with one Lua filter, {@code name}, of {@code config}. */
    private static HttpConnectionManager hcm(String name, Lua config) {
        return HttpConnectionManager.of("in", "r", List.of(HttpFilter.of(name, "").withLua(config),
                HttpFilter.of("envoy.filters.http.router", "")));
    }

    @Test
    void aScriptIsCompiledOnceForTheParsersCheckAndEverySnapshotThatCarriesIt() {
        String script = "function envoy_on_request(h) h:headers():add('x-once', '" + System.nanoTime() + "') end";
        assertNull(LuaFilter.refusal(script, "once.lua"), "the parser's check");
        org.luaj.vm2.Prototype checked = LuaFilter.compiled(script, "once.lua");
        org.junit.jupiter.api.Assertions.assertSame(checked, LuaFilter.compiled(script, "once.lua"),
                "a snapshot's compile, and the next one's, take the same compiled script");
        org.junit.jupiter.api.Assertions.assertNotSame(checked, LuaFilter.compiled(script, "other.lua"),
                "compiled under another name: the compiler's messages name it");
    }

    @Test
    void aScriptThatDoesNotCompileInAConfigBuiltInCodeIsRefusedNamingItsFilterAndTheCompilersMessage() {
        String bad = "function envoy_on_request(h";
        String message = LuaFilter.refusal(bad, "my-lua");
        assertTrue(message.startsWith("does not compile: "), message);
        var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> LuaFilter.compile(hcm("my-lua", new Lua(bad, Map.of(), true))));
        assertEquals("Lua filter my-lua: default_source_code " + message, e.getMessage());
        e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> LuaFilter.compile(hcm("my-lua", new Lua(null, Map.of("named.lua", bad), true))));
        assertEquals("Lua filter my-lua: source_codes[named.lua] "
                + LuaFilter.refusal(bad, "named.lua"), e.getMessage());
    }

    @Test
    void aRoutesScriptThatDoesNotCompileInAConfigBuiltInCodeIsRefusedWithItsRouteTable() {
        var vh = RouterRig.routeToC("").config().virtualHosts().get(0);
        var overridden = vh.withLua(Map.of("my-lua",
                new dev.inmesh.api.config.route.LuaPerRoute(false, null, "function envoy_on_request(h")));
        var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> RouteTable.compile(dev.inmesh.api.config.route.RouteConfiguration.of("r", List.of(overridden))));
        assertEquals("Lua filter my-lua: virtual host vh's LuaPerRoute source_code "
                + LuaFilter.refusal("function envoy_on_request(h", "my-lua"), e.getMessage());
    }
}
