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
                  for chunk in h:bodyChunks() do end
                end
                """, "lua"));
        // a string that merely names one is no call, nor a table's field of that name
        assertNull(LuaFilter.refusal("""
                local cfg = {trailers = true}
                function envoy_on_request(h)
                  h:headers():replace("te", "trailers")
                  if cfg.trailers then h:headers():add("x-cfg", "1") end
                end
                """, "lua"));
        // os.getenv is there, as in Envoy's Lua
        assertNull(LuaFilter.refusal("""
                local host = os.getenv("HOSTNAME")
                function envoy_on_request(h) end
                """, "lua"));
        // as Envoy runs a script's chunk when it reads it: one that fails is refused, since its functions would be
        // left undefined (a script that refuses requests would let them all through)
        String loaded = LuaFilter.refusal("""
                local f = io.open("/etc/hosts")
                function envoy_on_request(h) h:respond({[":status"] = "403"}, "denied") end
                """, "lua");
        assertTrue(loaded.startsWith("fails when loaded: ") && loaded.contains("the sandbox has no io"), loaded);
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

    /** A certificate of the test CA's, as the JDK reads it. */
    private static java.security.cert.X509Certificate certificate(
            dev.inmesh.runtime.upstream.TestCertificates.Issued issued) throws Exception {
        return (java.security.cert.X509Certificate) java.security.cert.CertificateFactory.getInstance("X.509")
                .generateCertificate(new java.io.ByteArrayInputStream(issued.certificatePem().getBytes(
                        java.nio.charset.StandardCharsets.UTF_8)));
    }

    /** A finished TLS 1.3 session with these certificates (a null peer: the client presented none). */
    private static javax.net.ssl.SSLSession session(java.security.cert.X509Certificate local,
                                                    java.security.cert.X509Certificate peer) {
        return (javax.net.ssl.SSLSession) java.lang.reflect.Proxy.newProxyInstance(
                LuaFilterTest.class.getClassLoader(), new Class<?>[] {javax.net.ssl.SSLSession.class},
                (proxy, m, args) -> switch (m.getName()) {
                    case "getProtocol" -> "TLSv1.3";
                    case "getCipherSuite" -> "TLS_AES_128_GCM_SHA256";
                    case "getId" -> new byte[] {0x0a, (byte) 0xbc};
                    case "getLocalCertificates" -> new java.security.cert.Certificate[] {local};
                    case "getPeerCertificates" -> {
                        if (peer == null) {
                            throw new javax.net.ssl.SSLPeerUnverifiedException("none");
                        }
                        yield new java.security.cert.Certificate[] {peer};
                    }
                    default -> throw new UnsupportedOperationException(m.getName());
                });
    }

    private static LuaFilter.Info tlsInfo(javax.net.ssl.SSLSession session, boolean validated) {
        return new LuaFilter.Info("HTTP/1.1", "10.0.0.2:9080", "10.0.0.1:40000", "10.0.0.1:40000",
                "reviews.default.svc", "default", null, dev.inmesh.runtime.accesslog.TlsDetails.of(session),
                validated);
    }

    @Test
    void theSslConnectionObjectTellsTheTlsAndItsCertificatesAsEnvoysAndIsNilWithoutTls() throws Exception {
        var ca = dev.inmesh.runtime.upstream.TestCertificates.ca("mesh-ca");
        var own = certificate(dev.inmesh.runtime.upstream.TestCertificates.issue(ca, "reviews",
                List.of("reviews.default.svc"), List.of("spiffe://cluster.local/ns/default/sa/reviews")));
        var client = certificate(dev.inmesh.runtime.upstream.TestCertificates.issue(ca, "productpage",
                List.of("pp.default.svc", "pp"), List.of("spiffe://cluster.local/ns/default/sa/productpage")));
        String script = """
                function envoy_on_request(h)
                  local hs = h:headers()
                  local ssl = h:streamInfo():downstreamSslConnection()
                  if ssl == nil then
                    hs:add("x-ssl", "nil")
                    hs:add("x-conn-ssl", tostring(h:connection():ssl()))
                    return
                  end
                  hs:add("x-same", tostring(h:connection():ssl() ~= nil))
                  hs:add("x-presented", tostring(ssl:peerCertificatePresented()))
                  hs:add("x-validated", tostring(ssl:peerCertificateValidated()))
                  hs:add("x-uri", table.concat(ssl:uriSanPeerCertificate(), ","))
                  hs:add("x-dns", table.concat(ssl:dnsSansPeerCertificate(), ","))
                  hs:add("x-local-uri", table.concat(ssl:uriSanLocalCertificate(), ","))
                  hs:add("x-local-dns", table.concat(ssl:dnsSansLocalCertificate(), ","))
                  hs:add("x-subject", ssl:subjectPeerCertificate())
                  hs:add("x-issuer", ssl:issuerPeerCertificate())
                  hs:add("x-local-subject", ssl:subjectLocalCertificate())
                  hs:add("x-serial", ssl:serialNumberPeerCertificate())
                  hs:add("x-digest", ssl:sha256PeerCertificateDigest())
                  hs:add("x-from", tostring(ssl:validFromPeerCertificate()))
                  hs:add("x-until", tostring(ssl:expirationPeerCertificate()))
                  hs:add("x-version", ssl:tlsVersion())
                  hs:add("x-cipher", ssl:ciphersuiteString())
                  hs:add("x-session", ssl:sessionId())
                  local ok, err = pcall(function() return ssl:ciphersuiteId() end)
                  hs:add("x-unsupported", err)
                end
                """;
        Request r = new Request();
        assertNull(stream(script).request(r, tlsInfo(session(own, client), true), null));
        MultiMap h = r.headers;
        assertEquals("true", h.get("x-same"));
        assertEquals("true", h.get("x-presented"));
        assertEquals("true", h.get("x-validated"));
        assertEquals("spiffe://cluster.local/ns/default/sa/productpage", h.get("x-uri"));
        assertEquals("pp.default.svc,pp", h.get("x-dns"));
        assertEquals("spiffe://cluster.local/ns/default/sa/reviews", h.get("x-local-uri"));
        assertEquals("reviews.default.svc", h.get("x-local-dns"));
        assertEquals("CN=productpage", h.get("x-subject"));
        assertEquals("CN=mesh-ca", h.get("x-issuer"));
        assertEquals("CN=reviews", h.get("x-local-subject"));
        String serial = client.getSerialNumber().toString(16);
        assertEquals(serial.length() % 2 == 0 ? serial : "0" + serial, h.get("x-serial"));
        assertEquals(java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
                .digest(client.getEncoded())), h.get("x-digest"));
        assertEquals(Long.toString(client.getNotBefore().toInstant().getEpochSecond()), h.get("x-from"));
        assertEquals(Long.toString(client.getNotAfter().toInstant().getEpochSecond()), h.get("x-until"));
        assertEquals("TLSv1.3", h.get("x-version"));
        assertEquals("TLS_AES_128_GCM_SHA256", h.get("x-cipher"));
        assertEquals("0abc", h.get("x-session"));
        assertTrue(h.get("x-unsupported").contains("ciphersuiteId() is not supported by Inmesh"),
                h.get("x-unsupported"));

        // TLS without a client certificate: Envoy's empty values
        Request plainPeer = new Request();
        assertNull(stream(script).request(plainPeer, tlsInfo(session(own, null), false), null));
        assertEquals("false", plainPeer.headers.get("x-presented"));
        assertEquals("false", plainPeer.headers.get("x-validated"));
        assertEquals("", plainPeer.headers.get("x-uri"));
        assertEquals("", plainPeer.headers.get("x-subject"));
        assertEquals("", plainPeer.headers.get("x-serial"));
        assertEquals("", plainPeer.headers.get("x-digest"));
        assertEquals("0", plainPeer.headers.get("x-from"));
        assertEquals("CN=reviews", plainPeer.headers.get("x-local-subject"));

        // no TLS: nil from both
        Request plain = new Request();
        assertNull(stream(script).request(plain, INFO, null));
        assertEquals("nil", plain.headers.get("x-ssl"));
        assertEquals("nil", plain.headers.get("x-conn-ssl"));
    }

    @Test
    void clearRouteCacheTimestampsAndTheStreamInfosAddressesAreEnvoys() {
        String script = """
                function envoy_on_request(h)
                  local hs = h:headers()
                  h:clearRouteCache()
                  hs:add("x-ts", tostring(h:timestamp()))
                  hs:add("x-ts-ms", tostring(h:timestamp(EnvoyTimestampResolution.MILLISECOND)))
                  hs:add("x-tss", h:timestampString())
                  hs:add("x-tss-us", h:timestampString(EnvoyTimestampResolution.MICROSECOND))
                  local ok, err = pcall(function() return h:timestamp(EnvoyTimestampResolution.MICROSECOND) end)
                  hs:add("x-ts-us", err)
                  hs:add("x-direct-local", h:streamInfo():downstreamDirectLocalAddress())
                  hs:add("x-vc", "[" .. h:streamInfo():virtualClusterName() .. "]")
                  hs:add("x-route-md", tostring(h:route():metadata():get("k")))
                  hs:add("x-vh-md", tostring(h:virtualHost():metadata():get("k")))
                  ok, err = pcall(function() return h:filterContext() end)
                  hs:add("x-unsupported", err)
                end
                """;
        long before = System.currentTimeMillis();
        Request r = new Request();
        LuaFilter.Stream s = stream(script);
        assertNull(s.request(r, INFO, null));
        long after = System.currentTimeMillis();
        assertTrue(s.reroute(), "clearRouteCache(): the route is chosen again, no header changed");
        for (String n : List.of("x-ts", "x-ts-ms", "x-tss")) {
            long ms = Long.parseLong(r.headers.get(n));
            assertTrue(ms >= before && ms <= after, n + " " + ms);
        }
        long us = Long.parseLong(r.headers.get("x-tss-us"));
        assertTrue(us >= before * 1000 && us <= after * 1000 + 999, "µs " + us);
        assertTrue(r.headers.get("x-ts-us").contains("timestamp format must be MILLISECOND."),
                r.headers.get("x-ts-us"));
        assertEquals("10.0.0.2:9080", r.headers.get("x-direct-local"));
        assertEquals("[]", r.headers.get("x-vc"));
        assertEquals("nil", r.headers.get("x-route-md"));
        assertEquals("nil", r.headers.get("x-vh-md"));
        assertTrue(r.headers.get("x-unsupported").contains("filterContext() is not supported by Inmesh"),
                r.headers.get("x-unsupported"));

        LuaFilter.Info physical = new LuaFilter.Info("HTTP/1.1", "10.0.0.2:9080", "10.0.0.1:40000",
                "10.0.0.1:40000", "", "default", "127.0.0.1:15006", null, false);
        Request p = new Request();
        LuaFilter.Stream untouched = stream("""
                function envoy_on_request(h)
                  h:streamInfo():dynamicMetadata():set("f", "k", h:streamInfo():downstreamDirectLocalAddress())
                end
                function envoy_on_response(h)
                  h:headers():add("x-direct-local", h:streamInfo():dynamicMetadata():get("f")["k"])
                  h:clearRouteCache()
                end
                """);
        assertNull(untouched.request(p, physical, null));
        assertFalse(untouched.reroute(), "a script that changed nothing, nor cleared the route cache");
        MultiMap response = MultiMap.caseInsensitiveMultiMap();
        untouched.response(LuaFilter.responseHead(response, () -> 200), physical);
        assertEquals("127.0.0.1:15006", response.get("x-direct-local"));
        assertFalse(untouched.reroute(), "clearRouteCache() on the response path: no route to choose");
    }
}
