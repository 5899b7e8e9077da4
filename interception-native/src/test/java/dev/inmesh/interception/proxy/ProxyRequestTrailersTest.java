package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A caller's request trailers reach an HTTP/2 upstream after the body, as Envoy's router passes them on
 * (source/common/router/router.cc decodeTrailers): an HTTP/2 caller's, whether the body came whole with them or
 * streamed before them, and an HTTP/1.1 caller's under the connection manager's {@code enable_trailers}.
 */
@Timeout(30)
class ProxyRequestTrailersTest {
    /** A proxy on {@code port} with {@code options} in its connection manager, to {@code upstream} over HTTP/2. */
    private static LoopbackProxy proxy(int port, RawHttp2Upstream upstream, String options) throws Exception {
        return new LoopbackProxy(LoopbackProxy.overHttp2("static_resources:\n  listeners:\n"
                + Http1RequestsTest.listener("l", port, options) + Http1RequestsTest.clusterC(upstream.port()), ""));
    }

    @Test
    void anHttp2RequestsTrailersGoToTheHttp2UpstreamAfterItsBody() throws Exception {
        try (RawHttp2Upstream upstream = new RawHttp2Upstream()) {
            int port = LoopbackProxy.freePort();
            try (LoopbackProxy proxy = proxy(port, upstream, "");
                 Http2Wire h2 = Http2Wire.client(port)) {
                String[] head = {":method", "POST", ":scheme", "http", ":path", "/a", ":authority", "svc"};
                // the body and the trailers in one write: the body is read whole with its trailers
                h2.headers(1, false, head).data(1, false, "hello").headers(1, true, "x-checksum", "abc");
                assertEquals("200", h2.status(h2.until(1), 1));
                // the body goes on before its trailers come
                h2.headers(3, false, head).data(3, false, "hello");
                Thread.sleep(300);
                h2.headers(3, true, "x-checksum", "def");
                assertEquals("200", h2.status(h2.until(3), 3));
            }
            List<String> trailers = upstream.received.stream().filter(b -> b.startsWith("x-checksum")).toList();
            assertEquals(List.of("x-checksum: abc", "x-checksum: def"), trailers, upstream.received.toString());
        }
    }

    @Test
    void anHttp1RequestsTrailersGoUpstreamUnderEnableTrailers() throws Exception {
        try (RawHttp2Upstream upstream = new RawHttp2Upstream()) {
            int port = LoopbackProxy.freePort();
            try (LoopbackProxy proxy = proxy(port, upstream, "http_protocol_options: {enable_trailers: true}")) {
                String answer = Http1RequestsTest.exchange(port, "POST /a HTTP/1.1\r\nhost: svc\r\n"
                        + "transfer-encoding: chunked\r\nconnection: close\r\n\r\n5\r\nhello\r\n0\r\n"
                        + "x-checksum: ghi\r\n\r\n");
                assertEquals("HTTP/1.1 200 OK", answer.substring(0, answer.indexOf('\r')));
            }
            assertEquals("x-checksum: ghi", upstream.received.get(upstream.received.size() - 1));
        }
    }
}
