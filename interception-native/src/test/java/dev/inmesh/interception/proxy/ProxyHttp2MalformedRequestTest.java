package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.router.Http2HeaderValidator;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.Vertx;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * HTTP/2 requests that break HTTP/2's messaging rules, as Envoy's codec (oghttp2's header validator) finds them: each
 * is counted in {@code http2.rx_messaging_error} and logged once with no response (DPE), an invalid head never reaches
 * the upstream (a request whose body or trailers break the rules has its upstream request reset), and no stream is
 * left open; the whole connection ends (GOAWAY PROTOCOL_ERROR, {@code downstream_cx_protocol_error}), or,
 * under {@code override_stream_error_on_invalid_http_message}, only the stream (RST_STREAM PROTOCOL_ERROR). Heads Envoy
 * takes (a {@code host} without {@code :authority}, a value with a leading space) are served.
 */
@Timeout(60)
class ProxyHttp2MalformedRequestTest {
    private static final String[] GOOD = {":method", "GET", ":scheme", "http", ":path", "/x", ":authority", "svc"};

    private Vertx vertx;
    private int upstream;
    private final List<String> served = new CopyOnWriteArrayList<>();
    /** The paths of the requests whose body the upstream did not get whole: the proxy reset them. */
    private final List<String> reset = new CopyOnWriteArrayList<>();
    private LoopbackProxy proxy;

    @BeforeEach
    void start() throws Exception {
        vertx = Vertx.vertx();
        upstream = vertx.createHttpServer().requestHandler(req -> {
            served.add(req.headers().get("host") + " " + req.uri() + " " + req.headers().get("x-sp"));
            req.body().onComplete(b -> {
                if (b.succeeded()) {
                    req.response().end("ok");
                } else {
                    reset.add(req.uri());
                }
            });
        }).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** A proxy whose connection manager takes at most 5 streams at once, with {@code http2Options} besides. */
    private int proxy(String http2Options) throws Exception {
        int port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy(LoopbackProxy.withHcm(LoopbackProxy.inboundConfig(port, upstream, ""),
                "http2_protocol_options: {max_concurrent_streams: 5" + http2Options + "}"));
        return port;
    }

    /** The good head with {@code name} (a pseudo-header among the pseudo-headers) taken out. */
    private static String[] without(String name) {
        List<String> fields = new ArrayList<>();
        for (int i = 0; i < GOOD.length; i += 2) {
            if (!GOOD[i].equals(name)) {
                fields.add(GOOD[i]);
                fields.add(GOOD[i + 1]);
            }
        }
        return fields.toArray(String[]::new);
    }

    /** The good head with {@code pseudo} replacing its value, or added when it has none; then more fields. */
    private static String[] with(String pseudo, String value, String... more) {
        List<String> fields = new ArrayList<>(Arrays.asList(without(pseudo)));
        fields.add(0, value);
        fields.add(0, pseudo);
        fields.addAll(Arrays.asList(more));
        return fields.toArray(String[]::new);
    }

    /** The good head, then more fields. */
    private static String[] plus(String... more) {
        String[] all = Arrays.copyOf(GOOD, GOOD.length + more.length);
        System.arraycopy(more, 0, all, GOOD.length, more.length);
        return all;
    }

    /** Invalid request heads, each with Envoy's details for it. */
    private static Map<String[], String> invalidHeads() {
        String field = Http2HeaderValidator.INVALID_HEADER;
        String messaging = Http2HeaderValidator.MESSAGING;
        Map<String[], String> heads = new LinkedHashMap<>();
        heads.put(without(":method"), messaging);
        heads.put(without(":path"), messaging);
        heads.put(without(":scheme"), messaging);
        heads.put(without(":authority"), messaging); // and no host
        heads.put(with(":method", ""), field);
        heads.put(with(":path", ""), field);
        heads.put(with(":path", "x"), messaging);
        heads.put(with(":authority", "user@svc"), field);
        heads.put(with(":authority", "a b"), field);
        heads.put(plus("x-Upper", "v"), field);
        // a name of other characters than a lower-case token's (oghttp2's kHttp2HeaderNameAllowedChars): it reached
        // the connection manager, which answered 400 after routing
        heads.put(plus("x foo", "v"), field);
        heads.put(plus("x\"q", "v"), field);
        heads.put(plus("x/y", "v"), field);
        heads.put(plus("connection", "keep-alive"), field);
        heads.put(plus("keep-alive", "timeout=5"), field);
        heads.put(plus("proxy-connection", "keep-alive"), field);
        heads.put(plus("transfer-encoding", "chunked"), field);
        heads.put(plus("upgrade", "h2c"), field);
        heads.put(plus("te", "gzip"), field);
        heads.put(plus("x-bad", "a\r\nx-injected: 1"), field);
        heads.put(plus("x-bad", "a\u0000b"), field);
        heads.put(plus(":foo", "bar"), field);
        heads.put(plus(":path", "/other"), field);
        heads.put(plus(":status", "200"), field);
        heads.put(new String[] {":method", "GET", ":scheme", "http", "x-c", "v", ":path", "/x", ":authority", "a"},
                field);
        return heads;
    }

    /**
     * As nghttp2 (Envoy's codec) ends a connection for a protocol error, its GOAWAY names the last stream it took (the
     * one at fault among them), not 2^31-1, which only a graceful shutdown's first GOAWAY says.
     */
    @Test
    void aRequestHeadWithoutMethodEndsItsConnectionAsEnvoysCodecEndsIt() throws Exception {
        int port = proxy("");
        var stats = proxy.withStats();
        List<Object> frames;
        try (Http2Wire h2 = Http2Wire.client(port)) {
            h2.headers(1, true, GOOD);
            assertEquals("200", h2.status(h2.until(1), 1));
            h2.headers(3, true, without(":method"));
            frames = h2.until(3);
        }
        assertEquals("GOAWAY 1", frames.get(frames.size() - 2).toString(), frames.toString());
        assertEquals(3, ((Http2Wire.Frame) frames.get(frames.size() - 2)).lastStreamId());
        assertEquals("closed", frames.get(frames.size() - 1), frames.toString());
        StreamInfo logged = proxy.logged(0);
        assertEquals(Http2HeaderValidator.MESSAGING, logged.responseCodeDetails());
        assertEquals(Set.of(ResponseFlag.DOWNSTREAM_PROTOCOL_ERROR), logged.responseFlags());
        assertEquals(1.0, stats.get("envoy_http2_rx_messaging_error").gauge().value());
        assertEquals(1, LoopbackProxy.stat(stats, "inbound_0.0.0.0_8080", "downstream_cx_protocol_error"));
        assertEquals(List.of("svc /x null"), served, "only the valid stream went upstream");
    }

    /** A frame Netty's frame reader refuses (DATA without a stream) ends the connection naming its last stream too. */
    @Test
    void aBrokenFramesGoawayNamesTheLastStreamTaken() throws Exception {
        int port = proxy("");
        List<Object> frames;
        try (Http2Wire h2 = Http2Wire.client(port)) {
            h2.headers(1, true, GOOD);
            assertEquals("200", h2.status(h2.until(1), 1));
            h2.data(0, true, "x");
            frames = h2.until(1);
        }
        assertEquals("GOAWAY 1", frames.get(frames.size() - 2).toString(), frames.toString());
        assertEquals(1, ((Http2Wire.Frame) frames.get(frames.size() - 2)).lastStreamId());
    }

    @Test
    void anEmptyAuthorityWhichEnvoyTakesCostsOnlyItsStreamThoughNettyCannotServeIt() throws Exception {
        int port = proxy("");
        try (Http2Wire h2 = Http2Wire.client(port)) {
            h2.headers(1, true, with(":authority", ""));
            List<Object> frames = h2.until(1);
            assertEquals("RST_STREAM 1 1", frames.get(frames.size() - 1).toString(), frames.toString());
            h2.headers(3, true, with(":path", "/next"));
            frames = h2.until(3);
            assertEquals("200", h2.status(frames, 3), "the connection goes on: " + frames);
        }
    }

    @Test
    void everyInvalidRequestHeadEndsItsConnection() throws Exception {
        int port = proxy("");
        var stats = proxy.withStats();
        Map<String[], String> heads = invalidHeads();
        for (var head : heads.entrySet()) {
            proxy.requests.clear();
            try (Http2Wire h2 = Http2Wire.client(port)) {
                h2.headers(1, true, head.getKey());
                List<Object> frames = h2.until(1);
                String what = Arrays.toString(head.getKey()) + ": " + frames;
                assertEquals("GOAWAY 1", frames.get(frames.size() - 2).toString(), what);
                assertEquals("closed", frames.get(frames.size() - 1), what);
            }
            assertEquals(head.getValue(), proxy.logged(0).responseCodeDetails(), Arrays.toString(head.getKey()));
        }
        assertEquals(heads.size(), stats.get("envoy_http2_rx_messaging_error").gauge().value());
        assertEquals(heads.size(), LoopbackProxy.stat(stats, "inbound_0.0.0.0_8080",
                "downstream_cx_protocol_error"));
        assertEquals(List.of(), served);
    }

    /**
     * With {@code override_stream_error_on_invalid_http_message}, each invalid head costs only its stream, and the
     * streams it cost are the connection's again: more of them than {@code max_concurrent_streams} (5) are refused on
     * one connection, whose next valid stream is served.
     */
    @Test
    void underTheOverrideAnInvalidHeadResetsOnlyItsStream() throws Exception {
        int port = proxy(", override_stream_error_on_invalid_http_message: true");
        var stats = proxy.withStats();
        Map<String[], String> heads = invalidHeads();
        try (Http2Wire h2 = Http2Wire.client(port)) {
            int stream = 1;
            for (String[] head : heads.keySet()) {
                h2.headers(stream, true, head);
                List<Object> frames = h2.until(stream);
                assertEquals(List.of("RST_STREAM " + stream + " 1"), frames.stream().map(Object::toString).toList(),
                        Arrays.toString(head));
                stream += 2;
            }
            // a body longer than its content-length, found as it comes (Netty's check): the stream is reset too
            h2.headers(stream, false, with(":path", "/cl", "content-length", "2")).data(stream, true, "abc");
            assertEquals("RST_STREAM " + stream + " 1", h2.until(stream).get(0).toString());
            stream += 2;
            // invalid trailers: a pseudo-header among them
            h2.headers(stream, false, with(":path", "/tr")).data(stream, false, "abc").headers(stream, true, ":path",
                    "/y");
            List<Object> frames = h2.until(stream);
            assertEquals("RST_STREAM " + stream + " 1", frames.get(frames.size() - 1).toString(), frames.toString());
            stream += 2;
            h2.headers(stream, true, with(":path", "/last"));
            frames = h2.until(stream);
            assertEquals("200", h2.status(frames, stream), frames.toString());
        }
        assertEquals(heads.size() + 2, stats.get("envoy_http2_rx_messaging_error").gauge().value());
        assertEquals(0, LoopbackProxy.stat(stats, "inbound_0.0.0.0_8080", "downstream_cx_protocol_error"));
        // no invalid head went upstream (the valid heads of /cl and /tr may have, before their body or trailers)
        assertTrue(served.contains("svc /last null") && served.stream().noneMatch(s -> s.contains(" /x ")),
                served.toString());
    }

    /** A POST of {@code path} to {@code svc} whose body is announced {@code content-length: 2}. */
    private static String[] post(String path) {
        return new String[] {":method", "POST", ":scheme", "http", ":path", path, ":authority", "svc",
                "content-length", "2"};
    }

    /** Waits until the upstream took the head of the request of {@code path}. */
    private void awaitServed(String path) throws InterruptedException {
        for (int i = 0; i < 200 && served.stream().noneMatch(s -> s.startsWith("svc " + path + " ")); i++) {
            Thread.sleep(25);
        }
        assertTrue(served.stream().anyMatch(s -> s.startsWith("svc " + path + " ")), served.toString());
    }

    /**
     * The one access log line of the stream of {@code path}, which went upstream and which the codec reset: as Envoy's
     * connection manager logs a stream its codec reset (ActiveStream::onResetStream), with its request, its route and
     * its upstream, flag DPE and the codec's details, no response; its upstream request reset; no other line (no
     * {@code - - -} one for the stream, no DC).
     */
    private void assertOneLineForTheResetStream(String path) throws InterruptedException {
        for (int i = 0; i < 200 && (proxy.requests.isEmpty() || !reset.contains(path)); i++) {
            Thread.sleep(25);
        }
        Thread.sleep(100); // a second line would come by now
        List<StreamInfo> lines = proxy.requests.stream().filter(s -> !"/next".equals(s.path())).toList();
        assertEquals(1, lines.size(), lines.toString());
        StreamInfo logged = lines.get(0);
        assertEquals("POST " + path + " svc", logged.method() + " " + logged.path() + " " + logged.authority());
        assertEquals(0, logged.responseCode());
        assertEquals(Set.of(ResponseFlag.DOWNSTREAM_PROTOCOL_ERROR), logged.responseFlags());
        assertEquals(Http2HeaderValidator.MESSAGING, logged.responseCodeDetails());
        assertEquals("inbound|8080||", logged.upstreamCluster());
        assertEquals("127.0.0.1:" + upstream, logged.upstreamHost());
        assertEquals(List.of(path), reset, "the upstream request is reset");
    }

    @Test
    void aBodyLongerThanItsContentLengthEndsTheRequestItsHeadSentUpstreamInOneLogLine() throws Exception {
        int port = proxy(", override_stream_error_on_invalid_http_message: true");
        var stats = proxy.withStats();
        try (Http2Wire h2 = Http2Wire.client(port)) {
            h2.headers(1, false, post("/cl"));
            awaitServed("/cl");
            h2.data(1, true, "abc");
            assertEquals("[RST_STREAM 1 1]", h2.until(1).toString());
            assertOneLineForTheResetStream("/cl");
            h2.headers(3, true, with(":path", "/next"));
            var frames = h2.until(3);
            assertEquals("200", h2.status(frames, 3), "the connection goes on: " + frames);
        }
        assertEquals(1.0, stats.get("envoy_http2_rx_messaging_error").gauge().value());
        assertEquals(0, LoopbackProxy.stat(stats, "inbound_0.0.0.0_8080", "downstream_cx_protocol_error"));
    }

    @Test
    void trailersWithAPseudoHeaderEndTheRequestTheyFollowInOneLogLine() throws Exception {
        int port = proxy(", override_stream_error_on_invalid_http_message: true");
        try (Http2Wire h2 = Http2Wire.client(port)) {
            h2.headers(1, false, Arrays.copyOf(post("/tr"), 8)).data(1, false, "ab");
            awaitServed("/tr");
            h2.headers(1, true, ":path", "/y");
            assertEquals("[RST_STREAM 1 1]", h2.until(1).toString());
        }
        assertOneLineForTheResetStream("/tr");
    }

    /** Without the override the connection ends (GOAWAY), and the stream is logged once all the same. */
    @Test
    void aBodyThatEndsItsConnectionEndsItsRequestInOneLogLine() throws Exception {
        int port = proxy("");
        var stats = proxy.withStats();
        try (Http2Wire h2 = Http2Wire.client(port)) {
            h2.headers(1, false, post("/gc"));
            awaitServed("/gc");
            h2.data(1, true, "a");
            var frames = h2.until(1);
            assertEquals("GOAWAY 1", frames.get(frames.size() - 2).toString(), frames.toString());
            assertEquals("closed", frames.get(frames.size() - 1), frames.toString());
        }
        assertOneLineForTheResetStream("/gc");
        assertEquals(1.0, stats.get("envoy_http2_rx_messaging_error").gauge().value());
        assertEquals(1, LoopbackProxy.stat(stats, "inbound_0.0.0.0_8080", "downstream_cx_protocol_error"));
    }

    /** A head and its too long body in one read: the head was decoded, and its request is logged as forwarded. */
    @Test
    void aHeadAndItsTooLongBodyInOneReadAreLoggedAsTheRequest() throws Exception {
        int port = proxy(", override_stream_error_on_invalid_http_message: true");
        try (Http2Wire h2 = Http2Wire.client(port)) {
            h2.write(Http2Wire.frame(Http2Wire.HEADERS, Http2Wire.END_HEADERS, 1, Http2Wire.block(post("/one"))),
                    Http2Wire.frame(Http2Wire.DATA, Http2Wire.END_STREAM, 1, "abc".getBytes()));
            assertEquals("[RST_STREAM 1 1]", h2.until(1).toString());
        }
        for (int i = 0; i < 200 && proxy.requests.isEmpty(); i++) {
            Thread.sleep(25);
        }
        Thread.sleep(100);
        assertEquals(1, proxy.requests.size(), proxy.requests.toString());
        StreamInfo logged = proxy.requests.get(0);
        assertEquals("POST /one", logged.method() + " " + logged.path());
        assertEquals(Set.of(ResponseFlag.DOWNSTREAM_PROTOCOL_ERROR), logged.responseFlags());
        assertEquals(Http2HeaderValidator.MESSAGING, logged.responseCodeDetails());
    }

    /** The connection manager's own {@code stream_error_on_invalid_http_message} applies when the codec's is unset. */
    @Test
    void theConnectionManagersStreamErrorOptionAppliesWhenTheCodecsIsUnset() throws Exception {
        int port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy(LoopbackProxy.withHcm(LoopbackProxy.inboundConfig(port, upstream, ""),
                "stream_error_on_invalid_http_message: true"));
        try (Http2Wire h2 = Http2Wire.client(port)) {
            h2.headers(1, true, without(":method"));
            assertEquals("[RST_STREAM 1 1]", h2.until(1).toString());
            h2.headers(3, true, GOOD);
            var f3 = h2.until(3);
            assertEquals("200", h2.status(f3, 3), f3.toString());
        }
    }

    @Test
    void headsEnvoysCodecTakesAreServed() throws Exception {
        int port = proxy("");
        var stats = proxy.withStats();
        try (Http2Wire h2 = Http2Wire.client(port)) {
            // host in place of :authority; a value with a leading space; te: trailers; obs-text
            h2.headers(1, true, ":method", "GET", ":scheme", "http", ":path", "/h", "host", "hostonly");
            assertEquals("200", h2.status(h2.until(1), 1));
            h2.headers(3, true, plus("x-sp", " lead", "te", "trailers", "x-obs", "caf\u00e9"));
            var f3 = h2.until(3);
            assertEquals("200", h2.status(f3, 3), f3.toString());
            h2.headers(5, true, ":method", "OPTIONS", ":scheme", "http", ":path", "*", ":authority", "svc");
            var f5 = h2.until(5);
            assertNull(f5.stream().filter(f -> f.toString().startsWith("RST")).findAny().orElse(null));
            h2.status(f5, 5); // its head read, for the HPACK table (its connection manager answers it: see below)
            // a space in :path, which HTTP/2's codec takes: served with it percent-encoded, as Envoy's path
            // normalization (Istio's) encodes one in the path, since no HTTP/1 request line can carry it (Envoy
            // passes one in the query as it came)
            h2.headers(7, true, with(":path", "/a b?q=c d"));
            var f7 = h2.until(7);
            assertEquals("200", h2.status(f7, 7), f7.toString());
        }
        assertEquals(0.0, stats.get("envoy_http2_rx_messaging_error").gauge().value());
        assertTrue(served.contains("hostonly /h null"), served.toString());
        assertTrue(served.contains("svc /x lead"), served.toString());
        assertTrue(served.contains("svc /a%20b?q=c%20d null"), served.toString());
    }

    @Test
    void aPathNotBeginningWithASlashIsAnswered404AbsolutePathRejectedAndNotRouted() throws Exception {
        // as Envoy's connection manager, whatever the protocol: only a :path beginning with / is routed; OPTIONS *,
        // which the codec takes, is answered 404 (absolute_path_rejected, downstream_rq_non_relative_path)
        int port = proxy("");
        var stats = proxy.withStats();
        try (Http2Wire h2 = Http2Wire.client(port)) {
            h2.headers(1, true, ":method", "OPTIONS", ":scheme", "http", ":path", "*", ":authority", "svc");
            var f1 = h2.until(1);
            assertEquals("404", h2.status(f1, 1), f1.toString());
            h2.headers(3, true, GOOD); // the connection goes on
            var f3 = h2.until(3);
            assertEquals("200", h2.status(f3, 3), f3.toString());
        }
        assertFalse(served.stream().anyMatch(s -> s.contains(" *")), served.toString());
        for (int i = 0; i < 200 && proxy.requests.size() < 2; i++) {
            Thread.sleep(25);
        }
        StreamInfo refused = proxy.requests.stream().filter(s -> s.responseCode() == 404).findFirst().orElseThrow();
        assertEquals("absolute_path_rejected", refused.responseCodeDetails());
        assertEquals(1, LoopbackProxy.stat(stats, "inbound_0.0.0.0_8080", "downstream_rq_non_relative_path"));
    }
}
