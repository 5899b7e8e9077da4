package dev.inmesh.interception.proxy;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
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
 * two framings of its body is one before (502 UPE).
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
                var registry = proxy.withStats();
                String got = Http1RequestsTest.exchange(port,
                        "GET /a HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n");
                // as Envoy's router answers an upstream protocol error: 502, not the 503 of other resets
                assertTrue(got.startsWith("HTTP/1.1 502 ") && got.endsWith("reset reason: protocol error"), got);
                StreamInfo logged = proxy.logged(502);
                assertEquals(1, LoopbackProxy.clusterStat(registry, "c", "upstream_cx_protocol_error"));
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
                    var registry = proxy.withStats();
                    // the client gets the head and the body passed on, then its connection is closed, as Envoy
                    // gives them: also when the body failed in the same read as the head (the unreadable chunk)
                    String got = Http1RequestsTest.exchange(port, "GET /a HTTP/1.1\r\nhost: svc\r\n\r\n");
                    assertTrue(got.startsWith("HTTP/1.1 200 "), what + ": " + got);
                    assertTrue(got.endsWith("abc") || got.endsWith("3\r\nabc\r\n"), what + ": " + got);
                    StreamInfo logged = proxy.logged(200);
                    assertEquals(Set.of(ResponseFlag.UPSTREAM_PROTOCOL_ERROR), logged.responseFlags(), what);
                    assertEquals("upstream_reset_after_response_started{protocol_error}",
                            logged.responseCodeDetails(), what);
                    assertEquals(1, LoopbackProxy.clusterStat(registry, "c", "upstream_cx_protocol_error"), what);
                }
            }
        }
    }

    @Test
    void overHttp2DownstreamABodyCutOffAfterTheHeadResetsTheClientsStreamAfterWhatCame() throws Exception {
        try (RawHttp1Upstream upstream = new RawHttp1Upstream("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")) {
            int port = LoopbackProxy.freePort();
            io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
            try (LoopbackProxy proxy = new LoopbackProxy("static_resources:\n  listeners:\n"
                    + Http1RequestsTest.listener("l", port, "") + Http1RequestsTest.clusterC(upstream.port()))) {
                // an h2c client (prior knowledge): it gets the head and what came of the body, then its stream is
                // reset rather than ended, as Envoy resets the downstream stream when the upstream's body fails
                var client = vertx.createHttpClient(new io.vertx.core.http.HttpClientOptions()
                        .setProtocolVersion(io.vertx.core.http.HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false));
                StringBuilder got = new StringBuilder();
                int[] status = {0};
                // to the proxy's port, with :authority svc (port 80 is left out of it)
                // on an event loop, so that the handler is set before the body's chunks can come
                Throwable failure = onEventLoop(vertx, () -> client.request(new io.vertx.core.http.RequestOptions()
                                .setServer(io.vertx.core.net.SocketAddress.inetSocketAddress(port, "127.0.0.1"))
                                .setHost("svc").setPort(80).setURI("/a"))
                        .compose(io.vertx.core.http.HttpClientRequest::send)
                        .compose(resp -> {
                            status[0] = resp.statusCode();
                            resp.handler(b -> got.append(b.toString()));
                            return resp.end();
                        })).transform(ar -> io.vertx.core.Future.succeededFuture(ar.cause()))
                        .await(20, java.util.concurrent.TimeUnit.SECONDS);
                assertEquals(200, status[0]);
                assertEquals("abc", got.toString());
                assertTrue(failure instanceof io.vertx.core.http.StreamResetException, String.valueOf(failure));
                StreamInfo logged = proxy.logged(200);
                assertEquals("HTTP/2", logged.protocol());
                assertEquals(Set.of(ResponseFlag.UPSTREAM_PROTOCOL_ERROR), logged.responseFlags());
                assertEquals("upstream_reset_after_response_started{protocol_error}", logged.responseCodeDetails());
            } finally {
                vertx.close().await(10, java.util.concurrent.TimeUnit.SECONDS);
            }
        }
    }
}
