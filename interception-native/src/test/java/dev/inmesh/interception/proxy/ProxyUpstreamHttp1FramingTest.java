package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.upstream.RawHttp1Upstream;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * An HTTP/1 upstream whose response framing Envoy's HTTP/1 codec refuses, through the standalone proxy: a body the
 * upstream cut off after the head went out is a protocol error once the response started (UPE,
 * {@code upstream_reset_after_response_started{protocol_error}}), and the client's connection is closed; a head with
 * two framings of its body is one before (503 UPE).
 */
@Timeout(60)
class ProxyUpstreamHttp1FramingTest {
    @Test
    void aResponseWithBothAContentLengthAndChunkedIsAProtocolErrorAsEnvoysCodecRefusesIt() throws Exception {
        try (RawHttp1Upstream upstream = new RawHttp1Upstream("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n"
                + "transfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")) {
            int port = LoopbackProxy.freePort();
            try (LoopbackProxy proxy = new LoopbackProxy("static_resources:\n  listeners:\n"
                    + Http1RequestsTest.listener("l", port, "") + Http1RequestsTest.clusterC(upstream.port()))) {
                String got = Http1RequestsTest.exchange(port,
                        "GET /a HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n");
                assertTrue(got.startsWith("HTTP/1.1 503 ") && got.endsWith("reset reason: protocol error"), got);
                StreamInfo logged = proxy.logged(503);
                assertEquals(Set.of(ResponseFlag.UPSTREAM_PROTOCOL_ERROR), logged.responseFlags());
                assertEquals("upstream_reset_before_response_started{protocol_error}",
                        logged.responseCodeDetails());
            }
        }
    }

    @Test
    void aBodyCutOffOrUnreadableAfterTheHeadIsAProtocolErrorOnceTheResponseStartedAsEnvoysCodecReportsIt()
            throws Exception {
        for (String answer : new String[] {
            "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\nabc\r\n0\r\n\r\n"}) {
            String what = answer.replace("\r\n", "|");
            try (RawHttp1Upstream upstream = new RawHttp1Upstream(answer)) {
                int port = LoopbackProxy.freePort();
                try (LoopbackProxy proxy = new LoopbackProxy("static_resources:\n  listeners:\n"
                        + Http1RequestsTest.listener("l", port, "") + Http1RequestsTest.clusterC(upstream.port()))) {
                    // the client gets the head and the body passed on, then its connection is closed, as Envoy
                    // gives them: also when the body failed in the same read as the head (the unreadable chunk)
                    String got = Http1RequestsTest.exchange(port, "GET /a HTTP/1.1\r\nhost: svc\r\n\r\n");
                    assertTrue(got.startsWith("HTTP/1.1 200 "), what + ": " + got);
                    assertTrue(got.endsWith("abc") || got.endsWith("3\r\nabc\r\n"), what + ": " + got);
                    StreamInfo logged = proxy.logged(200);
                    assertEquals(Set.of(ResponseFlag.UPSTREAM_PROTOCOL_ERROR), logged.responseFlags(), what);
                    assertEquals("upstream_reset_after_response_started{protocol_error}",
                            logged.responseCodeDetails(), what);
                }
            }
        }
    }
}
