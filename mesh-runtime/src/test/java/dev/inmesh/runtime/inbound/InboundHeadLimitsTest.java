package dev.inmesh.runtime.inbound;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.runtime.mesh.DefaultMesh;
import dev.inmesh.runtime.stats.StreamInfo;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A server made with {@code mesh.inboundServerOptions} takes the request heads the port's connection manager takes,
 * as an Envoy sidecar in front of the application would: up to {@code max_request_headers_kb} (default 60 KiB, where
 * Vert.x alone refuses a head over 8 KiB and a request line over 4 KiB); over the connection manager's limits
 * ({@code max_headers_count}, the size), {@code mesh.inbound} answers 431 as Envoy's codec does, counted and logged.
 */
class InboundHeadLimitsTest extends InboundMeshFixture {
    final LinkedBlockingQueue<StreamInfo> finished = new LinkedBlockingQueue<>();

    @BeforeEach
    void start() throws Exception {
        // the inbound configuration of InboundHandlerTest, with a lower max_headers_count
        serve(InboundHandlerTest.INBOUND.replaceFirst("( +)stat_prefix: (.*)\n",
                "$1stat_prefix: $2\n$1common_http_protocol_options: {max_headers_count: 20}\n"));
    }

    @Override
    void started(Mesh started) {
        ((DefaultMesh) started).addObserver(finished::add);
    }

    /** The status line of the answer to a GET of {@code target} with these header lines. */
    private String statusLine(String target, String headerLines) throws Exception {
        return statusLineOf("GET " + target + " HTTP/1.1\r\nhost: reviews\r\n" + headerLines
                + "connection: close\r\n\r\n");
    }

    /** The first status line of the answers to these bytes. */
    private String statusLineOf(String sent) throws Exception {
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write(sent.getBytes(StandardCharsets.US_ASCII));
            InputStream in = s.getInputStream();
            ByteArrayOutputStream got = new ByteArrayOutputStream();
            in.transferTo(got);
            String text = got.toString(StandardCharsets.US_ASCII);
            return text.isEmpty() ? "" : text.substring(0, text.indexOf("\r\n"));
        }
    }

    private static String lines(int n, int valueLength) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < n; i++) {
            b.append("x-h").append(i).append(": ").append("v".repeat(valueLength)).append("\r\n");
        }
        return b.toString();
    }

    @Test
    void aHeadEnvoyTakesReachesTheServiceThoughOverVertxsOwnLimits() throws Exception {
        assertEquals("HTTP/1.1 200 OK", statusLine("/", lines(2, 20_000)), "40 KB of headers");
        assertEquals("HTTP/1.1 200 OK", statusLine("/" + "p".repeat(6000), ""), "a 6 KB request line");
    }

    @Test
    void aHeadOverTheConnectionManagersLimitsIsAnswered431AndLogged() throws Exception {
        assertEquals("HTTP/1.1 200 OK", statusLine("/", lines(18, 5)), "20 headers with host and connection");
        assertEquals(200, finished.poll(10, TimeUnit.SECONDS).responseCode());
        assertEquals("HTTP/1.1 431 Request Header Fields Too Large", statusLine("/", lines(19, 5)));
        StreamInfo many = finished.poll(10, TimeUnit.SECONDS);
        assertEquals(431, many.responseCode());
        assertEquals("http1.too_many_headers", many.responseCodeDetails());
        assertEquals("HTTP/1.1 431 Request Header Fields Too Large", statusLine("/", "x-same: v\r\n".repeat(19)),
                "lines are counted, a name sent again too");
        assertEquals("http1.too_many_headers", finished.poll(10, TimeUnit.SECONDS).responseCodeDetails());
        assertEquals("HTTP/1.1 431 Request Header Fields Too Large", statusLine("/", lines(2, 31_000)));
        StreamInfo large = finished.poll(10, TimeUnit.SECONDS);
        assertEquals("http1.headers_too_large", large.responseCodeDetails());
        assertTrue(large.responseFlags().contains(dev.inmesh.runtime.stats.ResponseFlag.DOWNSTREAM_PROTOCOL_ERROR));
    }

    @Test
    void aTransferEncodingOtherThanChunkedIsAnswered501AndWhatFollowsIsNotReadAsAnotherRequest() throws Exception {
        // Netty frames such a body by nothing: its bytes would be read as the next request
        assertEquals("HTTP/1.1 501 Not Implemented", statusLineOf("POST / HTTP/1.1\r\nhost: reviews\r\n"
                + "transfer-encoding: gzip\r\n\r\nGET /second HTTP/1.1\r\nhost: reviews\r\n\r\n"));
        assertEquals("http1.invalid_transfer_encoding", finished.poll(10, TimeUnit.SECONDS).responseCodeDetails());
        assertEquals(null, finished.poll(1, TimeUnit.SECONDS), "the bytes after it are not served");
    }
}
