package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * An HTTP/2 upstream whose response header or trailer value holds a CR, LF or NUL (HPACK carries any octet): the
 * proxy refuses it as Envoy's HTTP/2 codec does, and nothing of the value reaches an HTTP/1 client as a header line.
 */
@Timeout(30)
class UpstreamHeaderValueTest {
    /**
     * A bare HTTP/2 server (prior knowledge) that answers each request stream with the {@code x-bad} header or
     * trailer {@code value}, written raw, without the validation a real server applies.
     */
    private static final class RawH2Server implements AutoCloseable {
        private final ServerSocket server = new ServerSocket(0, 10, InetAddress.getLoopbackAddress());
        private final Thread thread;
        private final AtomicReference<String> value = new AtomicReference<>();
        private volatile boolean trailer;

        RawH2Server() throws IOException {
            thread = new Thread(this::serve, "raw-h2");
            thread.setDaemon(true);
            thread.start();
        }

        private void serve() {
            while (!server.isClosed()) {
                try {
                    Socket s = server.accept();
                    Thread t = new Thread(() -> connection(s), "raw-h2-connection");
                    t.setDaemon(true);
                    t.start();
                } catch (IOException e) {
                    // closed: the test ended
                }
            }
        }

        private void connection(Socket socket) {
            try (Socket s = socket) {
                s.setSoTimeout(10_000);
                DataInputStream in = new DataInputStream(s.getInputStream());
                OutputStream out = s.getOutputStream();
                in.readFully(new byte[24]); // the client's preface
                out.write(Http2Wire.frame(4, 0, 0, new byte[0])); // our SETTINGS
                for (int frames = 0; frames < 1000; frames++) {
                    byte[] head = new byte[9];
                    in.readFully(head);
                    int length = (head[0] & 0xff) << 16 | (head[1] & 0xff) << 8 | head[2] & 0xff;
                    int type = head[3];
                    int flags = head[4];
                    int stream = ((head[5] & 0x7f) << 24) | (head[6] & 0xff) << 16 | (head[7] & 0xff) << 8
                            | head[8] & 0xff;
                    in.readFully(new byte[length]);
                    if (type == 4 && (flags & 1) == 0) {
                        out.write(Http2Wire.frame(4, 1, 0, new byte[0])); // SETTINGS ack
                    } else if (type == 1) {
                        answer(out, stream);
                    }
                }
            } catch (IOException e) {
                // the proxy closed the connection, or the test ended
            }
        }

        private void answer(OutputStream out, int stream) throws IOException {
            ByteArrayOutputStream h = new ByteArrayOutputStream();
            h.write(0x88); // :status 200, from the static table
            h.writeBytes(trailer ? Http2Wire.block("content-type", "text/plain")
                    : Http2Wire.block("x-bad", value.get(), "content-type", "text/plain"));
            out.write(Http2Wire.frame(1, 4, stream, h.toByteArray())); // END_HEADERS
            out.write(Http2Wire.frame(0, trailer ? 0 : 1, stream, "ok".getBytes(StandardCharsets.US_ASCII)));
            if (trailer) {
                // END_HEADERS, END_STREAM
                out.write(Http2Wire.frame(1, 5, stream, Http2Wire.block("x-bad", value.get())));
            }
            out.flush();
        }

        @Override
        public void close() throws IOException {
            server.close();
        }
    }

    @Test
    void aValueWithACrLfOrNulFromAnHttp2UpstreamIsAProtocolErrorNotAnInjectedHeader() throws Exception {
        try (RawH2Server upstream = new RawH2Server()) {
            int port = LoopbackProxy.freePort();
            String cluster = Http1RequestsTest.clusterC(upstream.server.getLocalPort()).replace(
                    "    connect_timeout: 1s\n", "    connect_timeout: 1s\n"
                            + "    typed_extension_protocol_options:\n"
                            + "      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n"
                            + "        \"@type\": type.googleapis.com/"
                            + "envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n"
                            + "        explicit_http_config: {http2_protocol_options: {}}\n");
            try (LoopbackProxy proxy = new LoopbackProxy("static_resources:\n  listeners:\n"
                    + Http1RequestsTest.listener("l", port, "") + cluster)) {
                upstream.value.set("fine");
                String ok = Http1RequestsTest.exchange(port,
                        "GET /a HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n");
                assertTrue(ok.startsWith("HTTP/1.1 200 ") && ok.contains("\r\nx-bad: fine\r\n"), ok);
                for (String bad : new String[] {"a\r\nx-injected: 1", "a\nx-injected: 1", "a\rx-injected: 1",
                    "a\u0000b"}) {
                    proxy.requests.clear();
                    upstream.value.set(bad);
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
                upstream.trailer = true;
                upstream.value.set("a\r\nx-injected: 1");
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
}
