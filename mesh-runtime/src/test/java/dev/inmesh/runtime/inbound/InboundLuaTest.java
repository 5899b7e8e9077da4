package dev.inmesh.runtime.inbound;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.RequestOptions;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@code mesh.inbound(handler)} under a Lua filter an Istio EnvoyFilter put before the router of
 * {@code virtualInbound}, after a local rate limit filter: the service sees the request headers a script added and
 * the route they choose, the caller the response headers, and a script's {@code respond()} answers without the
 * service; the rate limit filter's headers are on every answer, as it encodes after the Lua filter. A route's script
 * that calls {@code body()} reads the whole body before the service gets it, and may replace it.
 */
class InboundLuaTest {
    private static final String CONFIG = """
            static_resources:
              listeners:
              - name: virtualInbound
                address: {socket_address: {address: 0.0.0.0, port_value: 15006}}
                use_original_dst: true
                traffic_direction: INBOUND
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: inbound_0.0.0.0_9080
                      http_filters:
                      - name: envoy.filters.http.local_ratelimit
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                          stat_prefix: rl
                          token_bucket: {max_tokens: 1000, fill_interval: 1s}
                          filter_enabled: {default_value: {numerator: 100, denominator: HUNDRED}}
                          filter_enforced: {default_value: {numerator: 100, denominator: HUNDRED}}
                          enable_x_ratelimit_headers: DRAFT_VERSION_03
                      - name: envoy.filters.http.compressor
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor
                          response_direction_config:
                            common_config: {min_content_length: 1, content_type: [text/plain]}
                          compressor_library:
                            name: text_optimized
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip
                      - name: envoy.filters.http.lua
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
                          default_source_code:
                            inline_string: |
                              function envoy_on_request(h)
                                local hs = h:headers()
                                if hs:get("x-deny") then
                                  h:respond({[":status"] = "403", ["x-denied"] = "lua"}, "denied")
                                end
                                hs:add("x-lua", h:streamInfo():routeName())
                                if hs:get("x-move") then hs:replace("x-route", "moved") end
                                if hs:get("x-found") then hs:remove("x-nowhere") end
                              end
                              function envoy_on_response(h)
                                h:headers():add("x-lua-response", h:headers():get(":status"))
                              end
                          source_codes:
                            body.lua:
                              inline_string: |
                                function envoy_on_request(h)
                                  local b = h:body()
                                  h:headers():add("x-body", b == nil and "nil" or b:getBytes(0, b:length()))
                                  local set = h:headers():get("x-set")
                                  if set then h:body(true):setBytes(set) end
                                end
                            response.lua:
                              inline_string: |
                                function envoy_on_response(h)
                                  local b = h:body()
                                  h:headers():add("x-body", b == nil and "nil" or b:getBytes(0, b:length()))
                                  local set = h:headers():get("x-set")
                                  if set then h:body(true):setBytes(set) end
                                  h:headers():add("x-after", "1")
                                end
                      - name: envoy.filters.http.router
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                      route_config:
                        name: inbound|9080||
                        validate_clusters: false
                        virtual_hosts:
                        - name: inbound|http|9080
                          domains: ["*"]
                          routes:
                          - name: moved
                            match: {prefix: /, headers: [{name: x-route, string_match: {exact: moved}}]}
                            direct_response: {status: 202, body: {inline_string: moved}}
                          - name: redirect
                            match: {prefix: /old}
                            redirect: {path_redirect: /new}
                          - name: body
                            match: {prefix: /body}
                            route: {cluster: "inbound|9080||", timeout: 0s}
                            typed_per_filter_config:
                              envoy.filters.http.lua: {"@type": "%1$s", name: body.lua}
                          - name: small
                            match: {prefix: /small}
                            route: {cluster: "inbound|9080||", timeout: 0s}
                            per_request_buffer_limit_bytes: 8
                            typed_per_filter_config:
                              envoy.filters.http.lua: {"@type": "%1$s", name: body.lua}
                          - name: response-small
                            match: {prefix: /response-small}
                            route: {cluster: "inbound|9080||", timeout: 0s}
                            per_request_buffer_limit_bytes: 8
                            typed_per_filter_config:
                              envoy.filters.http.lua: {"@type": "%1$s", name: response.lua}
                          - name: response
                            match: {prefix: /response}
                            route: {cluster: "inbound|9080||", timeout: 0s}
                            typed_per_filter_config:
                              envoy.filters.http.lua: {"@type": "%1$s", name: response.lua}
                          - name: default
                            match: {prefix: /, headers: [{name: x-nowhere, present_match: true, invert_match: true}]}
                            route: {cluster: "inbound|9080||", timeout: 0s}
            """.formatted("type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute");

    Vertx vertx;
    SnapshotHolder snapshots;
    HttpClient client;
    int port;
    final List<StreamInfo> infos = new CopyOnWriteArrayList<>();

    @BeforeEach
    void start() throws Exception {
        vertx = Vertx.vertx();
        snapshots = new SnapshotHolder();
        snapshots.apply(EnvoyConfigReader.read(CONFIG));
        port = vertx.createHttpServer().requestHandler(new InboundHandler(this::serve, snapshots, infos::add))
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        client = vertx.createHttpClient();
    }

    @AfterEach
    void stop() throws Exception {
        snapshots.close();
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** The service: answers with the x-lua header it got; under /body, with the body, its length and x-body. */
    private void serve(HttpServerRequest req) {
        if (req.path().startsWith("/response")) {
            // the service's answer to a route whose response script reads the body: x-set asks the script to set it
            String set = req.getParam("set");
            if (set != null) {
                req.response().putHeader("x-set", set);
            }
            if (req.path().endsWith("/empty")) {
                req.response().end();
                return;
            }
            req.response().putHeader("content-type", "text/plain").setChunked(true).write("service's ");
            req.response().end("answer");
            return;
        }
        if (!req.path().startsWith("/body")) {
            req.response().end("service saw " + req.getHeader("x-lua"));
            return;
        }
        req.body().onSuccess(b -> req.response().end("x-body " + req.getHeader("x-body") + ", body " + b
                + ", content-length " + req.getHeader("content-length")));
    }

    /** A POST whose body goes in {@code chunks}, chunked. */
    private Answer post(String path, List<String> chunks, String... headers) throws Exception {
        RequestOptions o = new RequestOptions().setMethod(HttpMethod.POST).setHost("127.0.0.1").setPort(port)
                .setURI(path);
        for (int i = 0; i < headers.length; i += 2) {
            o.putHeader(headers[i], headers[i + 1]);
        }
        return onEventLoop(vertx, () -> client.request(o).compose(r -> {
            r.setChunked(true);
            chunks.forEach(r::write);
            r.end();
            return r.response();
        }).compose(r -> r.body().map(b -> new Answer(r.statusCode(), r.headers(), b.toString()))))
                .await(10, TimeUnit.SECONDS);
    }

    private record Answer(int status, MultiMap headers, String body) {}

    private Answer get(String... headers) throws Exception {
        return getPath("/a", headers);
    }

    private Answer getPath(String path, String... headers) throws Exception {
        RequestOptions o = new RequestOptions().setMethod(HttpMethod.GET).setHost("127.0.0.1").setPort(port)
                .setURI(path);
        for (int i = 0; i < headers.length; i += 2) {
            o.putHeader(headers[i], headers[i + 1]);
        }
        return onEventLoop(vertx, () -> client.request(o).compose(r -> r.send()).compose(r -> r.body().map(b ->
                new Answer(r.statusCode(), r.headers(), b.toString())))).await(10, TimeUnit.SECONDS);
    }

    @Test
    void theServiceSeesTheScriptsHeaderAndTheCallerTheResponseScripts() throws Exception {
        Answer a = get();
        assertEquals(200, a.status());
        assertEquals("service saw default", a.body());
        assertEquals("200", a.headers().get("x-lua-response"));
        assertEquals("1000", a.headers().get("x-ratelimit-limit"));
    }

    @Test
    void aScriptThatRespondsAnswersWithoutTheService() throws Exception {
        Answer a = get("x-deny", "1");
        assertEquals(403, a.status());
        assertEquals("denied", a.body());
        assertEquals("lua", a.headers().get("x-denied"));
        assertEquals("text/plain", a.headers().get("content-type"), "as Envoy's local reply: a body without a type");
        assertNull(a.headers().get("x-lua-response"), "its own reply does not pass through its response script");
        assertEquals("1000", a.headers().get("x-ratelimit-limit"), "but through the filters' before it");
    }

    @Test
    void headersTheScriptChangedChooseTheRouteAgain() throws Exception {
        Answer a = get("x-move", "1");
        assertEquals(202, a.status());
        assertEquals("moved", a.body());
        assertEquals("202", a.headers().get("x-lua-response"), "the router's answer passes through the script");
        assertEquals("1000", a.headers().get("x-ratelimit-limit"), "and through the filters' before it");
    }

    @Test
    void theRoutersRedirectDirectResponseAndNoRouteRunTheRequestScriptAndPassThroughTheResponseScript()
            throws Exception {
        String[][] cases = {{"/old", "301"}, {"/a", "202", "x-route", "moved"}, {"/a", "404", "x-nowhere", "1"}};
        for (String[] c : cases) {
            String[] headers = java.util.Arrays.copyOfRange(c, 2, c.length);
            Answer a = getPath(c[0], headers);
            assertEquals(Integer.parseInt(c[1]), a.status(), c[1]);
            assertEquals(c[1], a.headers().get("x-lua-response"), c[1]);
            assertEquals("1000", a.headers().get("x-ratelimit-limit"), c[1]);
            String[] denied = java.util.Arrays.copyOf(headers, headers.length + 2);
            denied[headers.length] = "x-deny";
            denied[headers.length + 1] = "1";
            Answer refused = getPath(c[0], denied);
            assertEquals(403, refused.status(), c[1]);
            assertEquals("denied", refused.body(), c[1]);
        }
        assertEquals("/new", java.net.URI.create(getPath("/old").headers().get("location")).getPath());
    }

    @Test
    void headersTheScriptChangedMayMakeARouteMatch() throws Exception {
        Answer a = get("x-nowhere", "1", "x-found", "1");
        assertEquals(200, a.status());
        assertEquals("service saw ", a.body(), "the script ran before any route matched: no route name");
        assertEquals("200", a.headers().get("x-lua-response"));
    }

    @Test
    void aScriptReadsTheWholeBodyAndTheServiceGetsItUnchanged() throws Exception {
        Answer a = post("/body", List.of("hello ", "world"));
        assertEquals(200, a.status());
        assertEquals("x-body hello world, body hello world, content-length null", a.body());
    }

    @Test
    void aBodyTheScriptSetsIsTheServicesWithItsContentLength() throws Exception {
        assertEquals("x-body hello world, body replaced, content-length 8",
                post("/body", List.of("hello ", "world"), "x-set", "replaced").body());
    }

    @Test
    void aRequestWithoutBodyHasNil() throws Exception {
        RequestOptions o = new RequestOptions().setMethod(HttpMethod.GET).setHost("127.0.0.1").setPort(port)
                .setURI("/body");
        String body = onEventLoop(vertx, () -> client.request(o).compose(r -> r.send()).compose(r -> r.body()))
                .await(10, TimeUnit.SECONDS).toString();
        assertEquals("x-body nil, body , content-length null", body);
    }

    @Test
    void aResponseScriptReadsTheServicesWholeBodyAndTheCallerGetsTheBodyItSet() throws Exception {
        Answer kept = getPath("/response");
        assertEquals(200, kept.status());
        assertEquals("service's answer", kept.headers().get("x-body"));
        assertEquals("service's answer", kept.body());
        assertEquals("1", kept.headers().get("x-after"), "the headers go once the script ended");
        assertEquals("1000", kept.headers().get("x-ratelimit-limit"), "the filters before it encode after it");
        Answer set = getPath("/response?set=replaced%20by%20lua");
        assertEquals("service's answer", set.headers().get("x-body"));
        assertEquals("replaced by lua", set.body());
        assertEquals("15", set.headers().get("content-length"));
        assertNull(set.headers().get("transfer-encoding"));
        Answer empty = getPath("/response/empty");
        assertEquals(200, empty.status());
        assertEquals("nil", empty.headers().get("x-body"));
        assertEquals("", empty.body());
    }

    @Test
    void theCompressorBeforeTheLuaFilterGzipsTheBodyTheScriptSet() throws Exception {
        RequestOptions o = new RequestOptions().setMethod(HttpMethod.GET).setHost("127.0.0.1").setPort(port)
                .setURI("/response?set=set%20by%20lua,%20then%20gzipped").putHeader("accept-encoding", "gzip");
        var answer = onEventLoop(vertx, () -> client.request(o).compose(r -> r.send())
                .compose(r -> r.body().map(b -> Map.entry(r, b)))).await(10, TimeUnit.SECONDS);
        assertEquals("gzip", answer.getKey().getHeader("content-encoding"));
        assertEquals("service's answer", answer.getKey().getHeader("x-body"), "the script saw it uncompressed");
        try (var in = new java.util.zip.GZIPInputStream(new java.io.ByteArrayInputStream(answer.getValue()
                .getBytes()))) {
            assertEquals("set by lua, then gzipped", new String(in.readAllBytes(),
                    java.nio.charset.StandardCharsets.UTF_8));
        }
    }

    @Test
    void aResponseBodyOverTheRoutesBufferLimitIsAnswered500() throws Exception {
        Answer a = getPath("/response-small");
        assertEquals(500, a.status());
        assertEquals("Internal Server Error", a.body());
        assertNull(a.headers().get("x-body"), "the connection manager's answer: no script");
        assertNull(a.headers().get("x-ratelimit-limit"), "nor the filters'");
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (infos.isEmpty() && System.nanoTime() < end) {
            Thread.sleep(10); // the request's report comes once its response ended
        }
        assertEquals("response_payload_too_large", infos.get(0).responseCodeDetails());
    }

    @Test
    void aBodyOverTheRoutesBufferLimitIsAnswered413WithoutTheService() throws Exception {
        Answer a = post("/small", List.of("hello ", "world"));
        assertEquals(413, a.status());
        assertEquals("Payload Too Large", a.body());
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (infos.isEmpty() && System.nanoTime() < end) {
            Thread.sleep(10); // the request's report comes once its response ended
        }
        assertEquals("request_payload_too_large", infos.get(0).responseCodeDetails());
    }
}
