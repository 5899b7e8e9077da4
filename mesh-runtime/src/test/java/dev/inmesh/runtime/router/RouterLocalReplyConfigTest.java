package dev.inmesh.runtime.router;

import static dev.inmesh.runtime.router.RouterRig.cluster;
import static dev.inmesh.runtime.router.RouterRig.closedPort;
import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.inmesh.api.config.core.HeaderValueOption;
import dev.inmesh.api.config.listener.AccessLogConfig;
import dev.inmesh.api.config.listener.LocalReplyConfig;
import dev.inmesh.runtime.accesslog.LocalReply;
import dev.inmesh.runtime.stats.ResponseFlag;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The connection manager's {@code local_reply_config} over the router's own answers, as Envoy's LocalReplyImpl. */
class RouterLocalReplyConfigTest {
    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    private static AccessLogConfig.Filter status(int code) {
        return new AccessLogConfig.StatusCode(AccessLogConfig.Op.EQ, code);
    }

    private static HeaderValueOption header(String name, String value) {
        return new HeaderValueOption(name, value, HeaderValueOption.AppendAction.OVERWRITE_IF_EXISTS_OR_ADD, false);
    }

    private static LocalReply compile(LocalReplyConfig.BodyFormat format, LocalReplyConfig.ResponseMapper... mappers) {
        return LocalReply.compile(new LocalReplyConfig(List.of(mappers), format));
    }

    private static LocalReplyConfig.BodyFormat text(String format) {
        return new LocalReplyConfig.BodyFormat(new AccessLogConfig.Text(format, false), null);
    }

    @Test
    void aMapperRewritesAConnectFailures503To502WithItsBodyAndHeader() {
        LocalReply config = compile(null, new LocalReplyConfig.ResponseMapper(status(503), 502, "try later",
                List.of(header("x-mapped", "yes")), null));
        var r = rig.call(rig.router(), get("/x").localReply(config), routeToC(""),
                rig.clusters(cluster("c", closedPort())));
        assertEquals(502, r.status());
        assertEquals("try later", r.body());
        assertEquals("yes", r.header("x-mapped"));
        assertEquals("text/plain", r.header("content-type"));
        assertEquals("9", r.header("content-length"));
        // the stream info (metrics, access log) has the code sent, as Envoy's rewrite sets it
        assertEquals(502, r.info().responseCode());
        assertEquals(Set.of(ResponseFlag.UPSTREAM_CONNECTION_FAILURE), r.info().responseFlags());
    }

    /**
     * A mapper's {@code headers_to_add} are formatted as Envoy's mapper formats them (its header parser, with the
     * reply's stream info): the original status, the request's headers; a value that comes out empty adds nothing.
     */
    @Test
    void aMappersHeaderValuesAreFormattedFromTheReplyAndItsRequest() {
        LocalReply config = compile(null, new LocalReplyConfig.ResponseMapper(status(503), 502, null,
                List.of(new HeaderValueOption("x-was", "%RESPONSE_CODE% for %REQ(x-who)%",
                                HeaderValueOption.AppendAction.OVERWRITE_IF_EXISTS_OR_ADD, false, true),
                        new HeaderValueOption("x-none", "%REQ(x-absent)%",
                                HeaderValueOption.AppendAction.OVERWRITE_IF_EXISTS_OR_ADD, false, true)), null));
        var r = rig.call(rig.router(), get("/x", "x-who", "me").localReply(config), routeToC(""),
                rig.clusters(cluster("c", closedPort())));
        assertEquals(502, r.status());
        assertEquals("503 for me", r.header("x-was"));
        assertNull(r.header("x-none"));
    }

    /**
     * As Envoy, where the rewrite is part of sending the local reply and the Lua filter is an encoder filter after
     * it: a Lua response script sees the reply as rewritten (its status and the mapper's header).
     */
    @Test
    void aLuaResponseScriptSeesTheRewrittenReply() {
        LocalReply config = compile(null, new LocalReplyConfig.ResponseMapper(status(503), 502, "try later",
                List.of(header("x-mapped", "yes")), null));
        var hcm = dev.inmesh.api.config.listener.HttpConnectionManager.of("outbound_0.0.0.0_9080", "9080",
                List.of(dev.inmesh.api.config.listener.HttpFilter.of("envoy.filters.http.lua",
                        "envoy.extensions.filters.http.lua.v3.Lua").withLua(new dev.inmesh.api.config.listener.Lua(
                                "function envoy_on_response(h) h:headers():add('x-lua-saw', h:headers():get("
                                        + "':status') .. ' ' .. (h:headers():get('x-mapped') or '-')) end",
                                Map.of(), true)),
                        dev.inmesh.api.config.listener.HttpFilter.of("envoy.filters.http.router", "")));
        var r = rig.call(rig.router(), get("/x").localReply(config).lua(LuaFilter.compile(hcm)), routeToC(""),
                rig.clusters(cluster("c", closedPort())));
        assertEquals(502, r.status());
        assertEquals("502 yes", r.header("x-lua-saw"));
    }

    @Test
    void aJsonBodyFormatFormatsANoRoute404WithItsCodeFlagsAndBody() {
        var json = new AccessLogConfig.Json(Map.of("code", "%RESPONSE_CODE%", "flags", "%RESPONSE_FLAGS%",
                "message", "%LOCAL_REPLY_BODY%", "path", "%REQ(:PATH)%"), false);
        LocalReply config = compile(new LocalReplyConfig.BodyFormat(json, null));
        var t = RouterRig.table("name: r\nvirtual_hosts:\n- name: vh\n  domains: [\"svc.local\"]\n  routes:\n"
                + "  - match: {prefix: /api}\n    route: {cluster: c}\n");
        var r = rig.call(rig.router(), get("/other").localReply(config), t, rig.clusters());
        assertEquals(404, r.status());
        assertEquals("{\"code\":404,\"flags\":\"NR\",\"message\":\"\",\"path\":\"/other\"}\n", r.body());
        assertEquals("application/json", r.header("content-type"));
        assertEquals(Integer.toString(r.body().length()), r.header("content-length"));
    }

    @Test
    void theFirstMatchingMapperAppliesAndTheOthersDoNot() {
        LocalReply config = compile(null,
                new LocalReplyConfig.ResponseMapper(status(404), 400, "not this one", List.of(), null),
                new LocalReplyConfig.ResponseMapper(status(503), null, "first", List.of(header("x-first", "1")),
                        null),
                new LocalReplyConfig.ResponseMapper(status(503), 500, "second", List.of(header("x-second", "1")),
                        null));
        var r = rig.call(rig.router(), get("/x").localReply(config), routeToC(""),
                rig.clusters(cluster("c", closedPort())));
        assertEquals(503, r.status());
        assertEquals("first", r.body());
        assertEquals("1", r.header("x-first"));
        assertNull(r.header("x-second"));
    }

    @Test
    void theFilterSeesTheOriginalCodeAndTheFormatTheRewrittenOneWithTheMappedBody() {
        // Envoy's order: body, headers, status, then the format (its override over body_format)
        LocalReply config = compile(text("outer %RESPONSE_CODE%"),
                new LocalReplyConfig.ResponseMapper(status(503), 502, "mapped", List.of(),
                        text("%RESPONSE_CODE% %LOCAL_REPLY_BODY% %RESPONSE_CODE_DETAILS%")));
        var r = rig.call(rig.router(), get("/x").localReply(config), routeToC(""),
                rig.clusters(cluster("c", closedPort())));
        assertEquals(502, r.status());
        assertEquals("502 mapped upstream_reset_before_response_started{remote_connection_failure|"
                + "delayed_connect_error:_Connection_refused}", r.body());
        // a reply no mapper takes is formatted by body_format, with its body as it is
        var nr = rig.call(rig.router(), get("/x").localReply(config), RouterRig.table("name: r\nvirtual_hosts: []"),
                rig.clusters());
        assertEquals(404, nr.status());
        assertEquals("outer 404", nr.body());
        assertEquals("text/plain", nr.header("content-type"));
    }

    @Test
    void aGrpcCallersTrailersOnlyAnswerCarriesTheRewrittenStatusAndBody() {
        // the rewrite runs before the trailers-only conversion: grpc-status from the new code, grpc-message from
        // the new body, without the new line that ends a JSON body
        var json = new AccessLogConfig.Json(Map.of("m", "%LOCAL_REPLY_BODY%"), false);
        LocalReply config = compile(null, new LocalReplyConfig.ResponseMapper(status(503), 429, "slow down",
                List.of(), new LocalReplyConfig.BodyFormat(json, null)));
        var r = rig.call(rig.router(), get("/x", "content-type", "application/grpc").localReply(config),
                routeToC(""), rig.clusters(cluster("c", closedPort())));
        assertEquals(200, r.status());
        assertEquals("14", r.header("grpc-status"), "429 maps to UNAVAILABLE");
        assertEquals("{\"m\":\"slow down\"}", r.header("grpc-message"));
        assertEquals("application/grpc", r.header("content-type"));
        assertEquals("", r.body());
    }

    @Test
    void aBodyFormatsContentTypeReplacesTheDefaultAndAMappersHeaderReplacesIt() {
        var html = new LocalReplyConfig.BodyFormat(new AccessLogConfig.Text("<p>%LOCAL_REPLY_BODY%</p>", false),
                "text/html");
        var r = rig.call(rig.router(), get("/x").localReply(compile(html)), routeToC(""),
                rig.clusters(cluster("c", closedPort())));
        assertEquals("text/html", r.header("content-type"));
        LocalReply custom = compile(html, new LocalReplyConfig.ResponseMapper(status(503), null, null,
                List.of(header("content-type", "text/x-custom")), null));
        var c = rig.call(rig.router(), get("/x").localReply(custom), routeToC(""),
                rig.clusters(cluster("c", closedPort())));
        assertEquals("text/x-custom", c.header("content-type"));
    }
}
