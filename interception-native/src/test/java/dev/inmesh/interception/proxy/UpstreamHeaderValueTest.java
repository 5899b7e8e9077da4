package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * An HTTP/2 upstream whose response header or trailer value holds a CR, LF or NUL (HPACK carries any octet): the
 * proxy refuses it as Envoy's HTTP/2 codec does, and nothing of the value reaches an HTTP/1 client as a header line.
 */
@Timeout(30)
class UpstreamHeaderValueTest {
    @Test
    void aValueWithACrLfOrNulFromAnHttp2UpstreamIsAProtocolErrorNotAnInjectedHeader() throws Exception {
        try (RawHttp2Upstream upstream = new RawHttp2Upstream()) {
            int port = LoopbackProxy.freePort();
            String cluster = Http1RequestsTest.clusterC(upstream.port()).replace(
                    "    connect_timeout: 1s\n", "    connect_timeout: 1s\n"
                            + "    typed_extension_protocol_options:\n"
                            + "      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n"
                            + "        \"@type\": type.googleapis.com/"
                            + "envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n"
                            + "        explicit_http_config: {http2_protocol_options: {}}\n");
            try (LoopbackProxy proxy = new LoopbackProxy("static_resources:\n  listeners:\n"
                    + Http1RequestsTest.listener("l", port, "") + cluster)) {
                upstream.head = head("fine");
                String ok = Http1RequestsTest.exchange(port,
                        "GET /a HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n");
                assertTrue(ok.startsWith("HTTP/1.1 200 ") && ok.contains("\r\nx-bad: fine\r\n"), ok);
                for (String bad : new String[] {"a\r\nx-injected: 1", "a\nx-injected: 1", "a\rx-injected: 1",
                    "a\u0000b"}) {
                    proxy.requests.clear();
                    upstream.head = head(bad);
                    String answer = Http1RequestsTest.exchange(port,
                            "GET /a HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n");
                    assertTrue(answer.startsWith("HTTP/1.1 502 "), answer);
                    assertTrue(answer.endsWith("reset reason: protocol error"), answer);
                    assertFalse(answer.contains("x-injected"), answer);
                    StreamInfo logged = proxy.logged(502);
                    assertTrue(logged.responseFlags().contains(ResponseFlag.UPSTREAM_PROTOCOL_ERROR), bad);
                    assertEquals("upstream_reset_before_response_started{protocol_error}",
                            logged.responseCodeDetails());
                }
                // in a trailer, after the head went out: the response is cut, no trailer line is written
                upstream.head = new String[] {":status", "200", "content-type", "text/plain"};
                upstream.trailers = new String[] {"x-bad", "a\r\nx-injected: 1"};
                proxy.requests.clear();
                String cut = Http1RequestsTest.exchange(port, "GET /a HTTP/1.1\r\nhost: svc\r\n\r\n");
                assertTrue(cut.startsWith("HTTP/1.1 200 "), cut);
                assertFalse(cut.contains("x-injected") || cut.contains("\r\n0\r\n"), cut);
                // a protocol error once the response started, as Envoy's HTTP/2 codec resets the stream
                StreamInfo logged = proxy.logged(200);
                assertEquals(java.util.Set.of(ResponseFlag.UPSTREAM_PROTOCOL_ERROR), logged.responseFlags());
                assertEquals("upstream_reset_after_response_started{protocol_error}", logged.responseCodeDetails());
            }
        }
    }

    /** A 200's head with the {@code x-bad} header {@code value}. */
    private static String[] head(String value) {
        return new String[] {":status", "200", "x-bad", value, "content-type", "text/plain"};
    }
}
