package dev.inmesh.runtime.xds;

import static dev.inmesh.runtime.xds.IstioSecurityTelemetryShapesTest.inbound;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.core.HeaderValueOption;
import dev.inmesh.api.config.listener.AccessLogConfig;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.LocalReplyConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The connection manager's {@code local_reply_config}, as an EnvoyFilter MERGE into the HCM writes it. */
class LocalReplyParserTest {

    private static HttpConnectionManager hcm(String hcmFields) throws Exception {
        var l = new ListenerParser().parse(EnvoyJson.toMessage(EnvoyJson.tree(inbound(hcmFields, "", "")),
                io.envoyproxy.envoy.config.listener.v3.Listener.class));
        return assertInstanceOf(HttpConnectionManager.class, l.filterChains().get(0).filter());
    }

    private static String refusal(String hcmFields) {
        return assertThrows(InvalidResourceException.class, () -> hcm(hcmFields)).getMessage();
    }

    @Test
    void mappersAndTheBodyFormatAreRead() throws Exception {
        LocalReplyConfig c = hcm("""
                local_reply_config:
                  mappers:
                  - filter:
                      status_code_filter:
                        comparison: {op: EQ, value: {default_value: 503, runtime_key: k}}
                    status_code: 502
                    body: {inline_string: "try later"}
                    headers_to_add:
                    - header: {key: x-mapped, value: "yes"}
                      append_action: OVERWRITE_IF_EXISTS_OR_ADD
                    body_format_override:
                      text_format_source: {inline_string: "%RESPONSE_CODE%: %LOCAL_REPLY_BODY%"}
                      content_type: text/html
                  - filter: {response_flag_filter: {flags: [NR]}}
                  body_format:
                    json_format: {code: "%RESPONSE_CODE%", message: "%LOCAL_REPLY_BODY%"}
                    omit_empty_values: true
                """).localReply();
        assertEquals(2, c.mappers().size());
        var m = c.mappers().get(0);
        assertEquals(new AccessLogConfig.StatusCode(AccessLogConfig.Op.EQ, 503), m.filter());
        assertEquals(502, m.statusCode());
        assertEquals("try later", m.body());
        assertEquals(List.of(new HeaderValueOption("x-mapped", "yes",
                HeaderValueOption.AppendAction.OVERWRITE_IF_EXISTS_OR_ADD, false)), m.headersToAdd());
        assertEquals(new LocalReplyConfig.BodyFormat(new AccessLogConfig.Text("%RESPONSE_CODE%: %LOCAL_REPLY_BODY%",
                false), "text/html"), m.bodyFormatOverride());
        var second = c.mappers().get(1);
        assertNull(second.statusCode());
        assertNull(second.body());
        assertNull(second.bodyFormatOverride());
        assertEquals(new LocalReplyConfig.BodyFormat(new AccessLogConfig.Json(Map.of("code", "%RESPONSE_CODE%",
                "message", "%LOCAL_REPLY_BODY%"), true), null), c.bodyFormat());
        assertEquals("application/json", c.bodyFormat().effectiveContentType());
        assertNull(hcm("").localReply(), "none without the field");
    }

    @Test
    void aBodyAndAFormatFromFilesAreReadWithTheConfiguration(@TempDir Path dir) throws Exception {
        Path body = Files.writeString(dir.resolve("body.txt"), "from a file");
        Path format = Files.writeString(dir.resolve("format.txt"), "%RESPONSE_CODE%: %LOCAL_REPLY_BODY%");
        LocalReplyConfig c = hcm("""
                local_reply_config:
                  mappers:
                  - filter: {not_health_check_filter: {}}
                    body: {filename: "%s"}
                  body_format:
                    text_format_source: {filename: "%s"}
                """.formatted(body, format)).localReply();
        assertEquals("from a file", c.mappers().get(0).body());
        assertEquals(new LocalReplyConfig.BodyFormat(new AccessLogConfig.Text("%RESPONSE_CODE%: %LOCAL_REPLY_BODY%",
                false), null), c.bodyFormat());
    }

    @Test
    void whatInmeshDoesNotImplementOrEnvoyRefusesIsRefusedByPath() {
        String at = "local_reply_config.";
        String m = refusal("""
                local_reply_config:
                  mappers:
                  - status_code: 502
                """);
        assertTrue(m.contains(at + "mappers[0].filter"), m);
        m = refusal("""
                local_reply_config:
                  mappers:
                  - filter: {not_health_check_filter: {}}
                    status_code: 600
                """);
        assertTrue(m.contains(at + "mappers[0].status_code") && m.contains("600"), m);
        m = refusal("""
                local_reply_config:
                  mappers:
                  - filter: {not_health_check_filter: {}}
                    status_code: 199
                """);
        assertTrue(m.contains(at + "mappers[0].status_code"), m);
        m = refusal("""
                local_reply_config:
                  mappers:
                  - filter: {not_health_check_filter: {}}
                    body: {filename: /nonexistent/body.txt}
                """);
        assertTrue(m.contains(at + "mappers[0].body.filename: cannot read"), m);
        m = refusal("""
                local_reply_config:
                  body_format:
                    text_format: "%LOCAL_REPLY_BODY%"
                    formatters:
                    - name: envoy.formatter.req_without_query
                      typed_config: {"@type": type.googleapis.com/envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery}
                """);
        assertTrue(m.contains(at + "body_format.formatters"), m);
        m = refusal("""
                local_reply_config:
                  mappers:
                  - filter: {not_health_check_filter: {}}
                    body_format_override: {text_format: "%NOT_AN_OPERATOR%"}
                """);
        assertTrue(m.contains(at + "mappers[0].body_format_override"), m);
        m = refusal("""
                local_reply_config:
                  mappers:
                  - filter: {metadata_filter: {}}
                """);
        assertTrue(m.contains(at + "mappers[0].filter.metadata_filter"), m);
        m = refusal("""
                local_reply_config:
                  mappers:
                  - filter: {not_health_check_filter: {}}
                    headers_to_add:
                    - header: {key: x-code, value: "%RESPONSE_CODE% %NOT_AN_OPERATOR%"}
                """);
        assertTrue(m.contains(at + "mappers[0].headers_to_add[0].header.value"), m);
        assertTrue(m.contains("%NOT_AN_OPERATOR% is not a command operator"), m);
    }
}
