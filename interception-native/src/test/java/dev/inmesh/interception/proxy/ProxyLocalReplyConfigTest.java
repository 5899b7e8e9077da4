package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The standalone proxy's connection manager with a {@code local_reply_config}, on loopback: the router's answers and
 * the connection manager's answer to a request its codec refuses are mapped and formatted, as Envoy's.
 */
@Timeout(30)
class ProxyLocalReplyConfigTest {
    private LoopbackProxy proxy;
    private int proxyPort;

    @BeforeEach
    void start() throws Exception {
        proxyPort = LoopbackProxy.freePort();
        int closed = LoopbackProxy.freePort(); // nothing listens there: each attempt fails to connect (503, UF)
        String yaml = LoopbackProxy.inboundConfig(proxyPort, closed, "").replace(
                "stat_prefix: inbound_0.0.0.0_8080\n", """
                stat_prefix: inbound_0.0.0.0_8080
                local_reply_config:
                  mappers:
                  - filter: {status_code_filter: {comparison: {op: EQ, value: {default_value: 503, runtime_key: k}}}}
                    status_code: 502
                    body: {inline_string: "upstream down"}
                    headers_to_add:
                    - header: {key: x-mapped, value: "yes"}
                  body_format:
                    json_format: {code: "%RESPONSE_CODE%", message: "%LOCAL_REPLY_BODY%", flags: "%RESPONSE_FLAGS%"}
                """.indent(10).stripLeading());
        proxy = new LoopbackProxy(yaml);
    }

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
    }

    @Test
    void theRoutersConnectFailureIsMappedAndFormatted() throws Exception {
        HttpResponse<String> r = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build().send(
                HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + proxyPort + "/x"))
                        .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(502, r.statusCode());
        assertEquals("{\"code\":502,\"flags\":\"UF\",\"message\":\"upstream down\"}\n", r.body());
        assertEquals("application/json", r.headers().firstValue("content-type").orElse(null));
        assertEquals("yes", r.headers().firstValue("x-mapped").orElse(null));
    }

    @Test
    void aRequestTheCodecRefusesIsFormattedToo() throws Exception {
        try (Socket s = new Socket("127.0.0.1", proxyPort)) {
            s.setSoTimeout(10_000);
            OutputStream out = s.getOutputStream();
            out.write("GET /x HTTP/1.1\r\nhost: svc\r\nbad header line\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = s.getInputStream();
            String answer = new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
            assertTrue(answer.startsWith("HTTP/1.1 400 "), answer);
            assertTrue(answer.toLowerCase(java.util.Locale.ROOT).contains("content-type: application/json"), answer);
            assertTrue(answer.endsWith("{\"code\":400,\"flags\":\"DPE\",\"message\":\"Bad Request\"}\n"), answer);
        }
    }
}
