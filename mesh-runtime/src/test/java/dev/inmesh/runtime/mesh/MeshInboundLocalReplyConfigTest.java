package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code virtualInbound} connection manager's {@code local_reply_config} over {@code mesh.inbound(...)}'s local
 * replies, as Envoy's {@code LocalReplyImpl} rewrites what its connection manager answers itself (and never what the
 * application, this hop's upstream, answers); the access log and Istio's metrics show the code sent.
 */
@Timeout(60)
class MeshInboundLocalReplyConfigTest {
    /** A mapper taking a 429 to a 503 with a body and a header; every local reply formatted as JSON. */
    private static final String LOCAL_REPLY = """
            local_reply_config:
              mappers:
              - filter: {status_code_filter: {comparison: {op: EQ, value: {default_value: 429, runtime_key: k}}}}
                status_code: 503
                body: {inline_string: "busy"}
                headers_to_add:
                - header: {key: x-mapped, value: "yes"}
              body_format:
                json_format:
                  code: "%RESPONSE_CODE%"
                  flags: "%RESPONSE_FLAGS%"
                  message: "%LOCAL_REPLY_BODY%"
                  path: "%REQ(:PATH)%"
            """;

    @TempDir
    Path dir;
    Vertx vertx;
    WebClient plain;
    Mesh mesh;
    Path log;
    final List<StreamInfo> recorded = new CopyOnWriteArrayList<>();

    @BeforeEach
    void start() {
        vertx = Vertx.vertx();
        plain = WebClient.create(vertx);
        log = dir.resolve("inbound.log");
    }

    @AfterEach
    void stop() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /**
     * The inbound config with the local reply config, its HTTP filters {@code filters} before the router; a route to
     * {@code /direct} answers 200 "hello" itself, one to {@code /app} forwards to the application; any other path has
     * no route.
     */
    private String config(String filters) {
        String config = MeshWebClientTest.virtualInbound((LOCAL_REPLY.indent(10) + MeshAccessLogTest.textLogger(log,
                "%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS%")).stripLeading(), """
                              routes:
                              - {match: {prefix: /direct}, direct_response: {status: 200, body: {inline_string: hello}}}
                              - {match: {prefix: /app}, route: {cluster: "inbound|9080||", timeout: 0s}}
                              - match: {prefix: /small}
                                route: {cluster: "inbound|9080||", timeout: 0s}
                                per_request_buffer_limit_bytes: 4
                """);
        return filters.isEmpty() ? config : dev.inmesh.runtime.router.IstioRbac.beforeRouter(filters, config);
    }

    /**
     * {@link #config} with {@code filters}, the {@code /app} route allowing {@link
     * dev.inmesh.runtime.xds.IstioGlobalRateLimit#ORIGIN} through the CORS filter, and the body format's {@code origin}
     * the response's {@code access-control-allow-origin} as the format sees it.
     */
    private String withCorsOnApp(String filters) {
        String route = "- {match: {prefix: /app}, route: {cluster: \"inbound|9080||\", timeout: 0s}";
        return config(filters)
                .replace(route + "}", route + ", typed_per_filter_config: {envoy.filters.http.cors: "
                        + dev.inmesh.runtime.xds.IstioGlobalRateLimit.CORS_POLICY + "}}")
                .replaceAll("( *)path: \"%REQ\\(:PATH\\)%\"", "$0\n$1origin: \"%RESP(access-control-allow-origin)%\"");
    }

    /**
     * The CORS filter's {@code access-control-allow-origin} on a refusal formatted with {@code message}, whose format
     * saw none: Envoy's CORS filter encodes a local reply after local_reply_config rewrote it.
     */
    private static void assertCorsAfterTheFormat(HttpResponse<Buffer> refused, String message) {
        assertEquals(dev.inmesh.runtime.xds.IstioGlobalRateLimit.ORIGIN,
                refused.getHeader("access-control-allow-origin"));
        JsonObject body = refused.bodyAsJsonObject();
        assertEquals(message, body.getString("message"));
        assertTrue(body.containsKey("origin"), body.encode());
        assertNull(body.getValue("origin"), "the format ran before the CORS filter's encoding");
    }

    /** The application behind {@code mesh.inbound(...)}, which answers 429 "app busy" itself; its port. */
    private int serve(String config) throws Exception {
        Path file = Files.writeString(dir.resolve("inbound.yaml"), config);
        mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("reviews-v1").setApp("reviews")
                .setNamespace("default").setConfigFile(file.toString()).setAdminPort(0));
        ((DefaultMesh) mesh).addObserver(recorded::add);
        mesh.start().await(10, TimeUnit.SECONDS);
        return vertx.createHttpServer().requestHandler(mesh.inbound(req -> req.response().setStatusCode(429)
                .putHeader("content-type", "text/plain").end("app busy"))).listen(0, "127.0.0.1")
                .await(10, TimeUnit.SECONDS).actualPort();
    }

    private HttpResponse<Buffer> get(int port, String path, String... headerPairs) throws Exception {
        var r = plain.get(port, "127.0.0.1", path);
        for (int i = 0; i + 1 < headerPairs.length; i += 2) {
            r.putHeader(headerPairs[i], headerPairs[i + 1]);
        }
        return r.send().await(10, TimeUnit.SECONDS);
    }

    @Test
    void aMapperRewritesALocalRateLimitRefusalWhileTheApplicationsOwn429GoesAsItIs() throws Exception {
        int port = serve(config(dev.inmesh.runtime.xds.IstioRateLimit.enforced("rl", 1, "")));
        // the first request takes the only token: the application's own 429 is not a local reply
        var app = get(port, "/app");
        assertEquals(429, app.statusCode());
        assertEquals("app busy", app.bodyAsString());
        assertNull(app.getHeader("x-mapped"));
        var refused = get(port, "/app");
        assertEquals(503, refused.statusCode());
        assertEquals("yes", refused.getHeader("x-mapped"));
        assertEquals("application/json", refused.getHeader("content-type"));
        JsonObject body = refused.bodyAsJsonObject();
        // the format sees the new code, the flag, and the mapper's body
        assertEquals(new JsonObject().put("code", 503).put("flags", "RL").put("message", "busy").put("path", "/app"),
                body);
        assertEquals(refused.bodyAsString().length(), Integer.parseInt(refused.getHeader("content-length")));
        // Envoy's stream info has the code sent: the access log, Istio's metrics
        assertEquals(List.of("/app 429 -", "/app 503 RL"), MeshAccessLogTest.lines(log, 2));
        StreamInfo info = recorded.get(1);
        assertEquals(503, info.responseCode());
        assertEquals(Set.of(ResponseFlag.RATE_LIMITED), info.responseFlags());
        String prom = MeshInboundRbacTest.admin(plain, mesh.adminPort(), "/stats/prometheus",
                "response_flags=\"RL\"");
        assertTrue(prom.lines().anyMatch(l -> l.startsWith("istio_requests_total{")
                && l.contains("response_code=\"503\"") && l.contains("response_flags=\"RL\"")), prom);
        assertTrue(prom.lines().noneMatch(l -> l.startsWith("istio_requests_total{")
                && l.contains("response_flags=\"RL\"") && l.contains("response_code=\"429\"")), prom);
    }

    /**
     * As Envoy's filter manager, which rewrites a local reply before it passes the encoder filters: the headers of the
     * CORS filter before the refusing local rate limit filter come after the mapper and the format, which see none.
     */
    @Test
    void theCorsFiltersHeadersComeAfterTheRewriteOfARefusal() throws Exception {
        String cors = """
                - name: envoy.filters.http.cors
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}
                """;
        int port = serve(withCorsOnApp(cors + dev.inmesh.runtime.xds.IstioRateLimit.enforced("rl", 1, "")));
        String origin = dev.inmesh.runtime.xds.IstioGlobalRateLimit.ORIGIN;
        assertEquals(origin, get(port, "/app", "origin", origin).getHeader("access-control-allow-origin"));
        var refused = get(port, "/app", "origin", origin);
        assertEquals(503, refused.statusCode());
        assertCorsAfterTheFormat(refused, "busy");
    }

    /**
     * As Envoy's CORS filter, which adds its headers in its encoding to whatever a filter after it answers: the buffer
     * filter's 413 for a body over {@code max_request_bytes} has them too, with neither a Lua nor a header mutation
     * filter in the chain, after the format, which sees none.
     */
    @Test
    void theBufferFiltersRefusalHasTheCorsFiltersHeaders() throws Exception {
        String filters = """
                - name: envoy.filters.http.cors
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}
                - name: envoy.filters.http.buffer
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer
                    max_request_bytes: 4
                """;
        int port = serve(withCorsOnApp(filters));
        String origin = dev.inmesh.runtime.xds.IstioGlobalRateLimit.ORIGIN;
        var refused = plain.post(port, "127.0.0.1", "/app").putHeader("origin", origin)
                .sendBuffer(Buffer.buffer("hello world")).await(10, TimeUnit.SECONDS);
        assertEquals(413, refused.statusCode());
        assertCorsAfterTheFormat(refused, "Payload Too Large");
    }

    @Test
    void theBodyFormatFormatsANoRouteAndADirectResponseAndAGrpcCallersTrailersOnlyAnswer() throws Exception {
        int port = serve(config(""));
        var noRoute = get(port, "/nowhere");
        assertEquals(404, noRoute.statusCode());
        assertEquals("application/json", noRoute.getHeader("content-type"));
        assertEquals(new JsonObject().put("code", 404).put("flags", "NR").put("message", "").put("path", "/nowhere"),
                noRoute.bodyAsJsonObject());
        // HEAD: the head of the formatted reply (its content-length), no body
        var head = plain.head(port, "127.0.0.1", "/nowhere").send().await(10, TimeUnit.SECONDS);
        assertEquals(404, head.statusCode());
        assertEquals("application/json", head.getHeader("content-type"));
        assertEquals(noRoute.getHeader("content-length"), head.getHeader("content-length"));
        assertNull(head.body());
        var direct = get(port, "/direct");
        assertEquals(200, direct.statusCode());
        assertEquals(new JsonObject().put("code", 200).put("flags", "-").put("message", "hello").put("path", "/direct"),
                direct.bodyAsJsonObject());
        // a gRPC caller: the rewritten reply becomes trailers-only, its grpc-message the body without the new line
        var grpc = get(port, "/nowhere", "content-type", "application/grpc");
        assertEquals(200, grpc.statusCode());
        assertEquals("12", grpc.getHeader("grpc-status"));
        assertEquals("application/grpc", grpc.getHeader("content-type"));
        String message = java.net.URLDecoder.decode(grpc.getHeader("grpc-message"),
                java.nio.charset.StandardCharsets.UTF_8);
        assertEquals(new JsonObject().put("code", 404).put("flags", "NR").put("message", "").put("path", "/nowhere"),
                new JsonObject(message));
        assertTrue(!message.endsWith("\n"), message);
        assertEquals(List.of("/nowhere 404 NR", "/nowhere 404 NR", "/direct 200 -", "/nowhere 200 NR"),
                MeshAccessLogTest.lines(log, 4));
    }

    @Test
    void anRbacDenialAndALuaScriptsRespondAreFormattedAsLocalReplies() throws Exception {
        String lua = """
                - name: envoy.filters.http.lua
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
                    default_source_code:
                      inline_string: |
                        function envoy_on_request(h)
                          if h:headers():get("x-deny") then
                            h:respond({[":status"] = "418", ["x-denied"] = "lua"}, "denied")
                          end
                        end
                """;
        int port = serve(config(dev.inmesh.runtime.router.IstioRbac.DENY_ADMIN + lua));
        var denied = get(port, "/admin");
        assertEquals(403, denied.statusCode());
        assertEquals("application/json", denied.getHeader("content-type"));
        assertEquals(new JsonObject().put("code", 403).put("flags", "-").put("message", "RBAC: access denied")
                .put("path", "/admin"), denied.bodyAsJsonObject());
        var responded = get(port, "/app", "x-deny", "1");
        assertEquals(418, responded.statusCode());
        assertEquals("lua", responded.getHeader("x-denied"));
        assertEquals("application/json", responded.getHeader("content-type"));
        assertEquals(new JsonObject().put("code", 418).put("flags", "-").put("message", "denied").put("path", "/app"),
                responded.bodyAsJsonObject());
    }

    @Test
    void theConnectionManagersOwn500ForAResponseBodyOverALuaScriptsBufferIsFormatted() throws Exception {
        String lua = """
                - name: envoy.filters.http.lua
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
                    default_source_code:
                      inline_string: |
                        function envoy_on_response(h)
                          h:headers():add("x-length", tostring(h:body():length()))
                        end
                """;
        int port = serve(config(lua));
        var whole = get(port, "/app");
        assertEquals(429, whole.statusCode(), "the application's answer, held whole for the script");
        assertEquals("8", whole.getHeader("x-length"));
        // "app busy" is over the route's 4 bytes: Envoy's sendDirectLocalReply, through local_reply_config
        var tooLarge = get(port, "/small");
        assertEquals(500, tooLarge.statusCode());
        assertEquals("application/json", tooLarge.getHeader("content-type"));
        assertNull(tooLarge.getHeader("x-length"), "not through the filters");
        assertEquals(new JsonObject().put("code", 500).put("flags", "-").put("message", "Internal Server Error")
                .put("path", "/small"), tooLarge.bodyAsJsonObject());
        assertEquals(List.of("/app 429 -", "/small 500 -"), MeshAccessLogTest.lines(log, 2));
    }
}
