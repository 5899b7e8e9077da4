package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import java.util.Arrays;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * An HTTP/2 upstream's answer whose head breaks HTTP/2's messaging rules (no {@code :status}, a status that is not
 * three digits or is 101, a request's pseudo-header, an upper-case name, a connection-specific header, a {@code te}
 * but {@code trailers}) is a protocol error, as Envoy's codec finds it: 502 UPE
 * {@code upstream_reset_before_response_started{protocol_error}}, counted in {@code upstream_cx_protocol_error}; the
 * connection ends, unless the cluster's {@code override_stream_error_on_invalid_http_message} keeps it to the stream.
 */
@Timeout(60)
class UpstreamHttp2InvalidAnswerTest {
    private static final String[][] INVALID = {
        {"x-no-status", "v"}, {":status", "2000"}, {":status", "20x"}, {":status", "101"},
        {":status", "200", ":path", "/x"}, {":status", "200", ":foo", "x"}, {":status", "200", "X-Upper", "v"},
        {":status", "200", "connection", "close"}, {":status", "200", "te", "gzip"},
    };
    /** The heads the codec's own checks find (Netty's HPACK decoder finds the others, and resets their stream). */
    private static final String[][] CODEC = Arrays.copyOf(INVALID, 4);

    private static LoopbackProxy proxy(int port, RawHttp2Upstream upstream, String http2Options) throws Exception {
        return new LoopbackProxy(LoopbackProxy.overHttp2("static_resources:\n  listeners:\n"
                + Http1RequestsTest.listener("l", port, "") + Http1RequestsTest.clusterC(upstream.port()),
                http2Options));
    }

    /** Asks for /a over HTTP/1.1 and checks the answer is Envoy's to a protocol error. */
    private static void refused(int port, LoopbackProxy proxy, String[] head) throws Exception {
        proxy.requests.clear();
        String answer = Http1RequestsTest.exchange(port, "GET /a HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n");
        String what = Arrays.toString(head) + ": " + answer;
        assertTrue(answer.startsWith("HTTP/1.1 502 "), what);
        assertTrue(answer.endsWith("reset reason: protocol error"), what);
        StreamInfo logged = proxy.logged(502);
        assertEquals(Set.of(ResponseFlag.UPSTREAM_PROTOCOL_ERROR), logged.responseFlags(), what);
        assertEquals("upstream_reset_before_response_started{protocol_error}", logged.responseCodeDetails(), what);
    }

    @Test
    void anInvalidAnswerHeadIsAProtocolErrorThatEndsTheConnection() throws Exception {
        try (RawHttp2Upstream upstream = new RawHttp2Upstream()) {
            int port = LoopbackProxy.freePort();
            try (LoopbackProxy proxy = proxy(port, upstream, "")) {
                var stats = proxy.withStats();
                for (String[] head : INVALID) {
                    upstream.head = head;
                    refused(port, proxy, head);
                }
                assertEquals(INVALID.length, LoopbackProxy.clusterStat(stats, "c", "upstream_cx_protocol_error"));
                // the codec's own refusals each ended their connection, as Envoy's codec ends it
                assertEquals(CODEC.length, upstream.protocolErrors.get());
                upstream.head = new String[] {":status", "200"};
                assertTrue(Http1RequestsTest.exchange(port, "GET /a HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n")
                        .startsWith("HTTP/1.1 200 "));
            }
        }
    }

    @Test
    void underTheClustersOverrideAnInvalidAnswerCostsOnlyItsStream() throws Exception {
        try (RawHttp2Upstream upstream = new RawHttp2Upstream()) {
            int port = LoopbackProxy.freePort();
            try (LoopbackProxy proxy = proxy(port, upstream, "override_stream_error_on_invalid_http_message: true")) {
                for (String[] head : CODEC) {
                    upstream.head = head;
                    refused(port, proxy, head);
                }
                assertEquals(0, upstream.protocolErrors.get(), "no connection ended");
            }
        }
    }
}
