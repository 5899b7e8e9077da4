package dev.inmesh.interception.proxy;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.RequestOptions;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Envoy's Lua filter in the standalone proxy's connection manager, on loopback: the upstream sees the header a
 * request script added, the caller the one a response script added, and a script's {@code respond()} answers
 * without the upstream; a script that calls {@code body()} reads the whole body and may replace it.
 */
@Timeout(30)
class ProxyLuaTest {
    private Vertx backends;
    private LoopbackProxy proxy;
    private HttpClient client;
    private int proxyPort;

    private void answer(HttpServerRequest req) {
        if ("websocket".equalsIgnoreCase(req.getHeader("upgrade"))) {
            String saw = "upstream saw " + req.getHeader("x-lua");
            req.toWebSocket().onSuccess(ws -> ws.writeTextMessage(saw));
            return;
        }
        if (req.path().equals("/response")) {
            String set = req.getParam("set");
            if (set != null) {
                req.response().putHeader("x-set", set);
            }
            req.response().setChunked(true).write("upstream ");
            req.response().end("body");
            return;
        }
        if (req.path().equals("/control")) {
            req.response().putHeader("x-control", "1").end("upstream body");
            return;
        }
        if (req.path().equals("/empty")) {
            req.response().putHeader("x-set", "-").end();
            return;
        }
        if (req.path().equals("/big")) {
            req.response().end("a".repeat(1024 * 1024 + 1)); // past the listener's default buffer limit, 1 MiB
            return;
        }
        if (!req.path().equals("/body")) {
            req.response().end("upstream saw " + req.getHeader("x-lua"));
            return;
        }
        req.body().onSuccess(b -> req.response().end("x-body " + req.getHeader("x-body") + ", body " + b
                + ", content-length " + req.getHeader("content-length")));
    }

    @BeforeEach
    void start() throws Exception {
        backends = Vertx.vertx();
        int upstream = backends.createHttpServer().requestHandler(this::answer).listen(0, "127.0.0.1")
                .await(10, TimeUnit.SECONDS).actualPort();
        proxyPort = LoopbackProxy.freePort();
        String yaml = LoopbackProxy.inboundConfig(proxyPort, upstream, """
                - name: envoy.filters.http.lua
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
                    default_source_code:
                      inline_string: |
                        function envoy_on_request(h)
                          if string.find(h:headers():get(":path"), "/deny", 1, true) then
                            h:respond({[":status"] = "403"}, "denied by lua")
                          end
                          h:headers():add("x-lua", "proxy")
                          if h:headers():get(":path") == "/body" then
                            local b = h:body()
                            h:headers():add("x-body", b == nil and "nil" or b:getBytes(0, b:length()))
                            local set = h:headers():get("x-set")
                            if set then h:body(true):setBytes(set) end
                          end
                        end
                        function envoy_on_response(h)
                          h:headers():add("x-lua-response", "1")
                          if h:headers():get("x-control") then h:headers():add("x-control", "a\\1b") end
                          if h:headers():get("x-set") or h:headers():get("content-length") == "1048577" then
                            local b = h:body()
                            h:headers():add("x-body", b == nil and "nil" or b:getBytes(0, b:length()))
                            local set = h:headers():get("x-set")
                            if set ~= "-" then b:setBytes(set) end
                          end
                        end
                """).replace("stat_prefix: inbound_0.0.0.0_8080", "upgrade_configs: [{upgrade_type: websocket}]\n"
                + " ".repeat(10) + "stat_prefix: inbound_0.0.0.0_8080")
                .replace("- match: {prefix: /}\n", "- match: {prefix: /teapot}\n" + " ".repeat(16)
                        + "direct_response: {status: 418, body: {inline_string: teapot}}\n" + " ".repeat(14)
                        + "- match: {prefix: /}\n");
        proxy = new LoopbackProxy(yaml);
        client = backends.createHttpClient(new HttpClientOptions().setDefaultHost("127.0.0.1")
                .setDefaultPort(proxyPort));
    }

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        backends.close().await(10, TimeUnit.SECONDS);
    }

    private record Answer(int status, MultiMap headers, String body) {}

    private Answer get(String path) throws Exception {
        RequestOptions o = new RequestOptions().setMethod(HttpMethod.GET).setURI(path);
        return onEventLoop(backends, () -> client.request(o).compose(r -> r.send()).compose(r -> r.body()
                .map(b -> new Answer(r.statusCode(), r.headers(), b.toString())))).await(10, TimeUnit.SECONDS);
    }

    @Test
    void theUpstreamSeesTheRequestScriptsHeaderAndTheCallerTheResponseScripts() throws Exception {
        assertAnsweredThroughTheResponseScript("/a", 200, "upstream saw proxy");
    }

    private void assertAnsweredThroughTheResponseScript(String path, int status, String body) throws Exception {
        Answer a = get(path);
        assertEquals(status, a.status(), path);
        assertEquals(body, a.body(), path);
        assertEquals("1", a.headers().get("x-lua-response"), path);
    }

    @Test
    void aResponseHeaderValueWithAControlCharacterAScriptAddedIsWrittenAsEnvoysCodecWritesIt() throws Exception {
        // Netty's validation refused it while the answer was written: the caller waited for an answer never sent
        String raw = Http1RequestsTest.exchange(proxyPort, "GET /control HTTP/1.1\r\nhost: x\r\n"
                + "connection: close\r\n\r\n");
        assertTrue(raw.startsWith("HTTP/1.1 200 OK\r\n"), raw);
        assertTrue(raw.contains("\r\nx-control: a\u0001b\r\n"), raw);
        assertTrue(raw.endsWith("upstream body"), raw);
    }

    @Test
    void aScriptThatRespondsAnswersWithoutTheUpstream() throws Exception {
        assertDenied("/deny");
    }

    /** The script's {@code respond()} answered a request to {@code path}. */
    private void assertDenied(String path) throws Exception {
        Answer a = get(path);
        assertEquals(403, a.status(), path);
        assertEquals("denied by lua", a.body(), path);
    }

    /** A request to /body, its body (if any) sent chunked, in {@code chunks}. */
    private String body(HttpMethod method, java.util.List<String> chunks, String... headers) throws Exception {
        RequestOptions o = new RequestOptions().setMethod(method).setURI("/body");
        for (int i = 0; i < headers.length; i += 2) {
            o.putHeader(headers[i], headers[i + 1]);
        }
        return onEventLoop(backends, () -> client.request(o).compose(r -> {
            if (!chunks.isEmpty()) {
                r.setChunked(true);
                chunks.forEach(r::write);
            }
            r.end();
            return r.response();
        }).compose(r -> r.body().map(b -> r.statusCode() + " " + b))).await(10, TimeUnit.SECONDS);
    }

    @Test
    void aScriptReadsTheWholeBodyAndTheUpstreamGetsItUnchanged() throws Exception {
        assertEquals("200 x-body hello world, body hello world, content-length null",
                body(HttpMethod.POST, java.util.List.of("hello ", "world")));
    }

    @Test
    void aBodyTheScriptSetsIsTheUpstreamsWithItsContentLength() throws Exception {
        assertEquals("200 x-body hello world, body replaced, content-length 8",
                body(HttpMethod.POST, java.util.List.of("hello ", "world"), "x-set", "replaced"));
    }

    @Test
    void aResponseScriptReadsTheUpstreamsBodyAndTheCallerGetsTheBodyItSet() throws Exception {
        Answer kept = get("/response?set=-");
        assertEquals(200, kept.status());
        assertEquals("upstream body", kept.headers().get("x-body"));
        assertEquals("upstream body", kept.body());
        Answer set = get("/response?set=replaced%20by%20lua");
        assertEquals("upstream body", set.headers().get("x-body"));
        assertEquals("replaced by lua", set.body());
        assertEquals("15", set.headers().get("content-length"));
        assertEquals(null, set.headers().get("transfer-encoding"));
        Answer empty = get("/empty");
        assertEquals("nil", empty.headers().get("x-body"));
        assertEquals("", empty.body());
    }

    @Test
    void aResponseBodyOverTheBufferLimitIsAnswered500() throws Exception {
        Answer a = get("/big");
        assertEquals(500, a.status());
        assertEquals("Internal Server Error", a.body());
        assertEquals(null, a.headers().get("x-lua-response"), "the connection manager's answer: no script");
    }

    @Test
    void aRequestWithoutBodyHasNil() throws Exception {
        assertEquals("200 x-body nil, body , content-length null", body(HttpMethod.GET, java.util.List.of()));
    }

    @Test
    void aDirectResponseRunsTheRequestScriptAndPassesThroughTheResponseScript() throws Exception {
        assertAnsweredThroughTheResponseScript("/teapot", 418, "teapot");
        assertDenied("/teapot/deny");
    }

    @Test
    void aRelayedUpgradesHeadPassesThroughTheRequestScriptAndIts101ThroughTheResponseScript() throws Exception {
        String answer = ProxyLocalRateLimitTest.upgrade(proxyPort, "/ws", "",
                got -> got.endsWith("upstream saw proxy"));
        assertTrue(answer.startsWith("HTTP/1.1 101 "), answer);
        String head = answer.substring(0, answer.indexOf("\r\n\r\n") + 2).toLowerCase(java.util.Locale.ROOT);
        assertTrue(head.contains("\r\nx-lua-response: 1\r\n"), head);
        assertTrue(head.contains("\r\nupgrade: websocket\r\n"), head);
        assertTrue(answer.endsWith("upstream saw proxy"), "the upstream got the script's header: " + answer);
    }

    @Test
    void aScriptThatRespondsRefusesTheUpgradeWithItsReply() throws Exception {
        String answer = ProxyLocalRateLimitTest.upgrade(proxyPort, "/deny", "", got -> false);
        assertTrue(answer.startsWith("HTTP/1.1 403 "), answer);
        assertTrue(answer.endsWith("\r\n\r\ndenied by lua"), answer);
    }
}
