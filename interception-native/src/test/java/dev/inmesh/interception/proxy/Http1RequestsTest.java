package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.listener.Http1Options;
import dev.inmesh.runtime.router.Http1Admission;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Which HTTP/1 requests the proxy takes, with and without {@code http_protocol_options}, as Envoy decides. */
@Timeout(60) // the refused requests each wait for delayed_close_timeout (1 s) before their connection closes
class Http1RequestsTest {

    private static FullHttpRequest request(HttpVersion version, String uri, String... headers) {
        FullHttpRequest r = new DefaultFullHttpRequest(version, HttpMethod.GET, uri);
        for (int i = 0; i < headers.length; i += 2) {
            r.headers().add(headers[i], headers[i + 1]);
        }
        return r;
    }

    /** The status a request is refused with, or null when it is taken. */
    private static HttpResponseStatus admitted(FullHttpRequest r, Http1Options o) {
        Http1Admission.Refusal refusal = Http1Requests.admit(r, o, false, false);
        return refusal == null ? null : HttpResponseStatus.valueOf(refusal.status);
    }

    /** Why a request is refused, or null, on a connection manager that validates the scheme or not, over TLS or not. */
    private static Http1Admission.Refusal refusal(FullHttpRequest r, boolean validateScheme, boolean tls) {
        return Http1Requests.admit(r, Http1Options.DEFAULTS, validateScheme, tls);
    }

    @Test
    void theHeadersTheConnectionHeaderNominatesAreTakenOffAndForwardingHeadersCannotBeNominated() {
        FullHttpRequest r = request(HttpVersion.HTTP_1_1, "/", "host", "a", "connection", "keep-alive, X-Secret, te",
                "connection", "connection, x-absent", "x-secret", "s", "te", "gzip, Trailers", "x-kept", "k");
        assertNull(refusal(r, false, false));
        assertNull(r.headers().get("x-secret"));
        assertEquals("trailers", r.headers().get("te")); // a nominated TE stays for trailers only
        assertEquals("k", r.headers().get("x-kept"));
        assertEquals("keep-alive,te", r.headers().get("connection")); // the options stay, the nominations go
        FullHttpRequest gzipOnly = request(HttpVersion.HTTP_1_1, "/", "host", "a", "connection", "te", "te", "gzip");
        assertNull(refusal(gzipOnly, false, false));
        assertNull(gzipOnly.headers().get("te"));
        assertNull(gzipOnly.headers().get("connection"));
        // a nomination that would hide where the request came from, a pseudo-header, ten tokens, a long TE: 400
        for (String[] bad : new String[][] {{"connection", "X-Forwarded-For"}, {"connection", "close, x-forwarded-host"},
            {"connection", "x-forwarded-proto"}, {"connection", ":authority"}, {"connection", "a,b,c,d,e,f,g,h,i,j"},
            {"connection", "te", "te", "trailers, " + "x".repeat(250)}}) {
            FullHttpRequest refused = request(HttpVersion.HTTP_1_1, "/", "host", "a");
            for (int i = 0; i < bad.length; i += 2) {
                refused.headers().add(bad[i], bad[i + 1]);
            }
            assertEquals(Http1Admission.Refusal.CONNECTION, refusal(refused, false, false), bad[1]);
            assertEquals("http1.connection_header_rejected", Http1Admission.Refusal.CONNECTION.details);
        }
        assertNull(refusal(request(HttpVersion.HTTP_1_1, "/", "host", "a", "connection", "a,b,c,d,e,f,g,h,i"),
                false, false));
        // as Envoy's codec, the Connection header before the version (HTTP/1.0 refused for its nomination, not 426);
        // a CONNECT's is not read; an h2c upgrade's own tokens are not counted
        assertEquals(Http1Admission.Refusal.CONNECTION, refusal(request(HttpVersion.HTTP_1_0, "/", "host", "a",
                "connection", "x-forwarded-for"), false, false));
        FullHttpRequest tunnel = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.CONNECT, "b:443");
        tunnel.headers().add("connection", "x-forwarded-for");
        assertNull(refusal(tunnel, false, false));
        assertNull(refusal(request(HttpVersion.HTTP_1_1, "/", "host", "a", "upgrade", "h2c", "http2-settings", "AAA",
                "connection", "upgrade, http2-settings, a, b, c, d, e, f, g, close"), false, false));
        // an upgrade's Connection header is the upgrade's: left as it came
        FullHttpRequest ws = request(HttpVersion.HTTP_1_1, "/", "host", "a", "connection", "upgrade, x-forwarded-for",
                "upgrade", "websocket");
        assertNull(refusal(ws, false, false));
        assertEquals("upgrade, x-forwarded-for", ws.headers().get("connection"));
    }

    @Test
    void anHttpsUrlOnAPlaintextConnectionIsRefusedWhereTheConnectionManagerValidatesTheScheme() {
        assertEquals(Http1Admission.Refusal.HTTPS_IN_PLAINTEXT,
                refusal(request(HttpVersion.HTTP_1_1, "https://a/x", "host", "a"), true, false));
        assertEquals(403, Http1Admission.Refusal.HTTPS_IN_PLAINTEXT.status);
        assertNull(refusal(request(HttpVersion.HTTP_1_1, "https://a/x", "host", "a"), true, true));
        assertNull(refusal(request(HttpVersion.HTTP_1_1, "http://a/x", "host", "a"), true, false));
        assertNull(refusal(request(HttpVersion.HTTP_1_1, "https://a/x", "host", "a"), false, false));
        // a URL of another scheme is one Envoy's codec reads and refuses, on any connection manager
        for (String url : new String[] {"ftp://a/x", "ws://a:80/", "FTP://a/"}) {
            assertEquals(Http1Admission.Refusal.SCHEME, refusal(request(HttpVersion.HTTP_1_1, url, "host", "a"),
                    false, false), url);
        }
        assertEquals("http1.invalid_scheme", Http1Admission.Refusal.SCHEME.details);
        assertEquals(Http1Admission.Refusal.TARGET, refusal(request(HttpVersion.HTTP_1_1, "1ftp://a/", "host", "a"),
                false, false));
        // a CONNECT's authority is its host, as Envoy's codec sets it
        FullHttpRequest connect = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.CONNECT, "b:443");
        assertNull(refusal(connect, true, false));
        assertEquals("b:443", connect.headers().get("host"));
    }

    @Test
    void envoysDefaultsRefuseHttp10AnyOtherVersionAHostlessRequestAndABadTargetOrHost() {
        Http1Options o = Http1Options.DEFAULTS;
        assertNull(admitted(request(HttpVersion.HTTP_1_1, "/", "host", "a"), o));
        assertEquals(HttpResponseStatus.UPGRADE_REQUIRED,
                admitted(request(HttpVersion.HTTP_1_0, "/", "host", "a"), o));
        assertEquals(HttpResponseStatus.BAD_REQUEST, admitted(request(HttpVersion.HTTP_1_1, "/"), o));
        assertEquals(HttpResponseStatus.BAD_REQUEST,
                admitted(request(HttpVersion.HTTP_1_1, "/", "host", ""), o));
        // a target that is neither a path nor a URL; an authority is CONNECT's (taken here, then refused by the
        // connection manager, whose upgrade_configs do not enable it: 404 NR, as no route matches it)
        assertEquals(HttpResponseStatus.BAD_REQUEST, admitted(request(HttpVersion.HTTP_1_1, "foo",
                "host", "a"), o));
        FullHttpRequest connect = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.CONNECT, "a:443");
        connect.headers().add("host", "a:443");
        assertNull(admitted(connect, o));
        // a target of visible ASCII only: percent-encoded UTF-8 is taken, raw bytes above 0x7E are not
        assertNull(admitted(request(HttpVersion.HTTP_1_1, "/caf%C3%A9?q=a|b", "host", "a"), o));
        assertEquals(HttpResponseStatus.BAD_REQUEST, admitted(request(HttpVersion.HTTP_1_1, "/caf\u00e9", "host",
                "a"), o));
        // a Host made of an authority's characters: a name, an IP literal, a port, userinfo; nothing else
        for (String host : new String[] {"reviews.default.svc.cluster.local:9080", "[fe80::1%25eth0]:80", "10.0.0.1",
            "u@h", "xn--bcher-kva.example"}) {
            assertNull(admitted(request(HttpVersion.HTTP_1_1, "/", "host", host), o), host);
        }
        for (String host : new String[] {"a b", "a/b", "a\tb", "a\"b", "a<b", "a\\b", "a{b}"}) {
            assertEquals(HttpResponseStatus.BAD_REQUEST, admitted(request(HttpVersion.HTTP_1_1, "/", "host", host),
                    o), host);
        }
        // any version but HTTP/1.1 is HTTP/1.0 to Envoy's codec: refused by default, served as HTTP/1.0 when taken
        for (String version : new String[] {"HTTP/2.0", "HTTP/1.2", "HTTP/0.9"}) {
            assertEquals(HttpResponseStatus.UPGRADE_REQUIRED,
                    admitted(request(HttpVersion.valueOf(version), "/", "host", "a"), o), version);
            FullHttpRequest taken = request(HttpVersion.valueOf(version), "/", "host", "a");
            assertNull(admitted(taken, new Http1Options(true, "", true, false)), version);
            assertEquals(HttpVersion.HTTP_1_0, taken.protocolVersion(), version);
        }
    }

    @Test
    void onlyTheMethodsEnvoysCodecKnowsAreTakenUnlessCustomMethodsAreAllowed() {
        for (String known : new String[] {"GET", "POST", "PATCH", "OPTIONS", "PROPFIND", "MKCALENDAR", "PURGE"}) {
            FullHttpRequest r = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.valueOf(known), "/");
            r.headers().add("host", "a");
            assertNull(admitted(r, Http1Options.DEFAULTS), known);
        }
        Http1Options custom = new Http1Options(false, "", true, false, true, false);
        for (String other : new String[] {"FOO", "get", "QUERY"}) {
            FullHttpRequest r = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.valueOf(other), "/");
            r.headers().add("host", "a");
            assertEquals(HttpResponseStatus.BAD_REQUEST, admitted(r, Http1Options.DEFAULTS), other);
            assertNull(admitted(r, custom), other);
        }
    }

    @Test
    void anAbsoluteFormRequestLineGivesTheHostAndThePath() {
        FullHttpRequest r = request(HttpVersion.HTTP_1_1, "http://reviews:9080/reviews/1?x=1", "host", "other");
        assertNull(admitted(r, Http1Options.DEFAULTS));
        assertEquals("/reviews/1?x=1", r.uri());
        assertEquals("reviews:9080", r.headers().get("host"));
        FullHttpRequest bare = request(HttpVersion.HTTP_1_1, "HTTPS://ratings");
        assertNull(admitted(bare, Http1Options.DEFAULTS));
        assertEquals("/", bare.uri());
        assertEquals("ratings", bare.headers().get("host"));
        FullHttpRequest query = request(HttpVersion.HTTP_1_1, "http://ratings?a=b");
        assertNull(admitted(query, Http1Options.DEFAULTS));
        assertEquals("/?a=b", query.uri());
        assertEquals(HttpResponseStatus.BAD_REQUEST,
                admitted(request(HttpVersion.HTTP_1_1, "http:///x", "host", "a"), Http1Options.DEFAULTS));
        assertEquals(HttpResponseStatus.BAD_REQUEST, admitted(
                request(HttpVersion.HTTP_1_1, "http://user@a/x", "host", "a"), Http1Options.DEFAULTS));
        // refused as Envoy's connection manager refuses it: 404 (absolute_path_rejected)
        assertEquals(HttpResponseStatus.NOT_FOUND, admitted(
                request(HttpVersion.HTTP_1_1, "http://a/x", "host", "a"), new Http1Options(false, "", false, false)));
        // and so is the asterisk form (OPTIONS *), whose target is not a path either
        assertEquals(HttpResponseStatus.NOT_FOUND, admitted(request(HttpVersion.HTTP_1_1, "*", "host", "a"),
                Http1Options.DEFAULTS));
    }

    @Test
    void acceptHttp10TakesItAndItsDefaultHostStandsInForAMissingOne() {
        Http1Options o = new Http1Options(true, "svc", true, false);
        FullHttpRequest hostless = request(HttpVersion.HTTP_1_0, "/");
        assertNull(admitted(hostless, o));
        assertEquals("svc", hostless.headers().get("host"));
        FullHttpRequest own = request(HttpVersion.HTTP_1_0, "/", "host", "mine");
        assertNull(admitted(own, o));
        assertEquals("mine", own.headers().get("host"));
        // the default is for HTTP/1.0 only; without one, a hostless HTTP/1.0 request is refused as any other
        assertEquals(HttpResponseStatus.BAD_REQUEST, admitted(request(HttpVersion.HTTP_1_1, "/"), o));
        assertEquals(HttpResponseStatus.BAD_REQUEST,
                admitted(request(HttpVersion.HTTP_1_0, "/"), new Http1Options(true, "", true, false)));
    }

    @Test
    void theProxyAnswersThemOnTheWireWithAndWithoutTheConnectionManagersOptions() throws Exception {
        Vertx backends = Vertx.vertx();
        LoopbackProxy proxy = null;
        java.util.List<String> seen = new java.util.concurrent.CopyOnWriteArrayList<>();
        try {
            HttpServer s = backends.createHttpServer(new io.vertx.core.http.HttpServerOptions()
                    .setMaxInitialLineLength(65_536).setMaxHeaderSize(65_536)).requestHandler(req -> {
                        seen.add(req.uri());
                        if (req.path().equals("/big-response")) {
                            req.response().putHeader("set-cookie", "s=" + "s".repeat(30_000));
                        }
                        req.body().onSuccess(b -> req.response().end("host=" + req.authority() + " path="
                                + req.uri() + (b.length() > 0 ? " body=" + b : "")));
                    });
            int backend = s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
            int plain = LoopbackProxy.freePort();
            int http10 = LoopbackProxy.freePort();
            int small = LoopbackProxy.freePort();
            int norm = LoopbackProxy.freePort();
            int few = LoopbackProxy.freePort();
            int chunkedLength = LoopbackProxy.freePort();
            proxy = new LoopbackProxy("static_resources:\n  listeners:\n" + quickClose("plain", plain, "")
                    + quickClose("http10", http10, "http_protocol_options: {accept_http_10: true, "
                            + "default_host_for_http_10: svc}")
                    + quickClose("small", small, "max_request_headers_kb: 2")
                    + quickClose("few", few, "common_http_protocol_options: {max_headers_count: 3}")
                    + quickClose("chunked-length", chunkedLength, "http_protocol_options: {allow_chunked_length: true}")
                    + quickClose("norm", norm, "normalize_path: true\n          merge_slashes: true\n"
                            + "          path_with_escaped_slashes_action: REJECT_REQUEST")
                    + clusterC(backend));
            String ok = exchange(plain, "GET /a HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n");
            assertTrue(ok.startsWith("HTTP/1.1 200 OK"), ok);
            // the connection manager's server header, Envoy's default
            assertTrue(ok.toLowerCase(java.util.Locale.ROOT).contains("\r\nserver: envoy\r\n"), ok);
            // Proxy-Connection: close ends the connection as Connection: close does (Envoy's shouldCloseConnection):
            // answered with connection: close, the request pipelined behind it unserved
            String proxyClose = exchange(plain, "GET /a HTTP/1.1\r\nhost: svc\r\nproxy-connection: close\r\n\r\n"
                    + "GET /a HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n");
            assertTrue(proxyClose.startsWith("HTTP/1.1 200 OK") && proxyClose.indexOf("HTTP/1.1 ", 1) < 0
                    && proxyClose.toLowerCase(java.util.Locale.ROOT).contains("\r\nconnection: close\r\n"), proxyClose);
            String upgrade = exchange(plain, "GET /a HTTP/1.0\r\nhost: svc\r\n\r\n");
            assertTrue(upgrade.startsWith("HTTP/1.1 426 "), upgrade);
            assertTrue(upgrade.toLowerCase(java.util.Locale.ROOT).contains("\r\nserver: envoy\r\n"), upgrade);
            // no host: the connection manager's 400 keeps the connection, as Envoy's (the next request is served)
            String hostless = exchange(plain, "GET /a HTTP/1.1\r\n\r\nGET /a HTTP/1.1\r\nhost: svc\r\n"
                    + "connection: close\r\n\r\n");
            assertTrue(hostless.startsWith("HTTP/1.1 400 ") && hostless.contains("\r\n\r\nHTTP/1.1 200 ")
                    && hostless.endsWith("host=svc path=/a"), hostless);
            // ... but not after a request with a body, which Envoy refuses at its head, before the body is read: the
            // connection closes after the 400, the request pipelined behind it unserved (chunked, or a length)
            for (String framing : new String[] {"content-length: 3\r\n\r\nxyz",
                    "transfer-encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n"}) {
                String withBody = exchange(plain, "POST /a HTTP/1.1\r\n" + framing
                        + "GET /a HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n");
                assertTrue(withBody.startsWith("HTTP/1.1 400 ") && !withBody.contains("HTTP/1.1 200 ")
                        && withBody.toLowerCase(java.util.Locale.ROOT).contains("\r\nconnection: close\r\n"),
                        withBody);
            }
            assertTrue(exchange(plain, "GET /a HTTP/1.1\r\nhost: svc\r\nhost: other\r\n\r\n")
                    .startsWith("HTTP/1.1 400 "));
            assertTrue(exchange(plain, "POST /a HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: gzip\r\n\r\nxyz")
                    .startsWith("HTTP/1.1 501 "));
            assertTrue(exchange(plain, "GET /a HTTP/2.0\r\nhost: svc\r\n\r\n").startsWith("HTTP/1.1 426 "));
            String absolute = exchange(plain, "GET http://svc:81/b?c=d HTTP/1.1\r\nhost: elsewhere\r\n"
                    + "connection: close\r\n\r\n");
            assertTrue(absolute.startsWith("HTTP/1.1 200 OK"), absolute);
            assertTrue(absolute.endsWith("host=svc:81 path=/b?c=d"), absolute);
            // heads up to max_request_headers_kb (60 KiB by default, as Envoy's) are taken, longer ones get 431
            String cookie = "cookie: " + "c".repeat(20_000) + "\r\n";
            String longUrl = "/" + "u".repeat(10_000);
            String big = exchange(plain, "GET " + longUrl + " HTTP/1.1\r\nhost: svc\r\n" + cookie
                    + "connection: close\r\n\r\n");
            assertTrue(big.startsWith("HTTP/1.1 200 OK") && big.endsWith("path=" + longUrl), big);
            // and so are upstream response heads up to 60 KiB (Envoy's max_response_headers_kb)
            String bigResponse = exchange(plain, "GET /big-response HTTP/1.1\r\nhost: svc\r\n"
                    + "connection: close\r\n\r\n");
            assertTrue(bigResponse.startsWith("HTTP/1.1 200 OK") && bigResponse.contains("s".repeat(30_000)),
                    bigResponse.substring(0, Math.min(200, bigResponse.length())));
            assertTrue(exchange(plain, "GET /a HTTP/1.1\r\nhost: svc\r\ncookie: " + "c".repeat(70_000)
                    + "\r\n\r\n").startsWith("HTTP/1.1 431 "));
            assertTrue(exchange(small, "GET /a HTTP/1.1\r\nhost: svc\r\ncookie: " + "c".repeat(3_000)
                    + "\r\n\r\n").startsWith("HTTP/1.1 431 "));
            assertTrue(exchange(small, "GET " + longUrl + " HTTP/1.1\r\nhost: svc\r\n\r\n")
                    .startsWith("HTTP/1.1 431 "));
            // at most max_headers_count header lines (Envoy's default 100), 431 beyond
            String hundred = "x-h: 1\r\n".repeat(98);
            String atLimit = exchange(plain, "GET /a HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n" + hundred
                    + "\r\n");
            assertTrue(atLimit.startsWith("HTTP/1.1 200 OK"), atLimit);
            assertTrue(exchange(plain, "GET /a HTTP/1.1\r\nhost: svc\r\nconnection: close\r\nx-h: 1\r\n" + hundred
                    + "\r\n").startsWith("HTTP/1.1 431 "));
            assertTrue(exchange(few, "GET /a HTTP/1.1\r\nhost: svc\r\nconnection: close\r\na: 1\r\n\r\n")
                    .startsWith("HTTP/1.1 200 OK"));
            assertTrue(exchange(few, "GET /a HTTP/1.1\r\nhost: svc\r\nconnection: close\r\na: 1\r\nb: 2\r\n\r\n")
                    .startsWith("HTTP/1.1 431 "));
            // nothing the client sent after a refused request is read as a request: no smuggling through the body
            // of a coding the proxy cannot read, nor after a 426 or a second Host
            for (String refused : new String[] {
                "POST /te HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: gzip\r\n\r\n",
                "GET /old HTTP/1.0\r\nhost: svc\r\n\r\n",
                "GET /two HTTP/1.1\r\nhost: svc\r\nhost: other\r\n\r\n",
                // with an expectation, which a refused head does not reach
                "POST /te HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: gzip\r\nexpect: nope\r\n\r\n",
                "GET /two HTTP/1.1\r\nhost: svc\r\nhost: other\r\nexpect: nope\r\n\r\n"}) {
                String answer = exchange(plain, refused + "GET /smuggled HTTP/1.1\r\nhost: svc\r\n\r\n");
                assertEquals(1, answer.split("HTTP/1.1 ", -1).length - 1, answer);
            }
            // Content-Length beside a chunked body: 400 and the connection ends (Envoy's default), unless
            // allow_chunked_length, which drops the length and reads the chunks
            String both = "POST /both HTTP/1.1\r\nhost: svc\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n"
                    + "5\r\nhello\r\n0\r\n\r\n";
            String bothRefused = exchange(plain, both + "GET /smuggled HTTP/1.1\r\nhost: svc\r\n\r\n");
            assertTrue(bothRefused.startsWith("HTTP/1.1 400 "), bothRefused);
            assertEquals(1, bothRefused.split("HTTP/1.1 ", -1).length - 1, bothRefused);
            String bothTaken = exchange(chunkedLength, both.replace("host: svc\r\n", "host: svc\r\nconnection: close\r\n"));
            assertTrue(bothTaken.startsWith("HTTP/1.1 200 OK") && bothTaken.endsWith("path=/both body=hello"),
                    bothTaken);
            assertTrue(seen.stream().noneMatch(p -> p.startsWith("/smuggled")),
                    seen.stream().filter(p -> p.length() < 100).toList().toString());
            // a refused head gets no 100 Continue first: the client is not asked for a body that would be dropped
            String noContinue = exchange(few, "POST /a HTTP/1.1\r\nhost: svc\r\na: 1\r\nb: 2\r\n"
                    + "expect: 100-continue\r\ncontent-length: 3\r\n\r\n");
            assertTrue(noContinue.startsWith("HTTP/1.1 431 "), noContinue);
            // HTTP/2 (h2c) requests count their headers too, a request without a body as well, and their four
            // pseudo-headers with them, as Envoy's HTTP/2 codec counts them: over the count of 3 with none of their
            // own, the stream is reset, as Envoy's codec resets it
            io.vertx.core.http.HttpClient h2 = backends.createHttpClient(new io.vertx.core.http.HttpClientOptions()
                    .setProtocolVersion(io.vertx.core.http.HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false));
            for (int extra : new int[] {0, 4}) {
                io.vertx.core.http.RequestOptions ro = new io.vertx.core.http.RequestOptions()
                        .setServer(io.vertx.core.net.SocketAddress.inetSocketAddress(few, "127.0.0.1"))
                        .setHost("svc").setPort(few).setURI("/h2");
                for (int i = 0; i < extra; i++) {
                    ro.addHeader("x-" + i, "v");
                }
                var sent = h2.request(ro).compose(r -> r.send());
                org.junit.jupiter.api.Assertions.assertThrows(io.vertx.core.http.StreamResetException.class,
                        () -> sent.await(10, TimeUnit.SECONDS), extra + " headers over HTTP/2");
            }
            h2.close().await(10, TimeUnit.SECONDS); // held until here: Vert.x closes a client no longer referenced
            // the path and the headers count together against max_request_headers_kb, as Envoy counts them
            assertTrue(exchange(small, "GET /" + "p".repeat(1_200) + " HTTP/1.1\r\nhost: svc\r\ncookie: "
                    + "c".repeat(1_200) + "\r\n\r\n").startsWith("HTTP/1.1 431 "));
            // a fragment goes neither to routing nor upstream
            assertTrue(exchange(plain, "GET /f#/../g HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n")
                    .endsWith("path=/f"));
            // the path as the connection manager normalizes it, routed and sent upstream so; the query as it came
            String normalized = exchange(norm, "GET /x/%2e%2E//y/./z?q=/../ HTTP/1.1\r\nhost: svc\r\n"
                    + "connection: close\r\n\r\n");
            assertTrue(normalized.endsWith("host=svc path=/y/z?q=/../"), normalized);
            String escaped = exchange(norm, "GET /x%2Fy HTTP/1.1\r\nhost: svc\r\n\r\n"
                    + "GET /after HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n");
            assertTrue(escaped.startsWith("HTTP/1.1 400 ") && escaped.endsWith("path=/after"), escaped);
            assertTrue(exchange(plain, "GET /x/../y HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n")
                    .endsWith("path=/x/../y"));
            // a response to HEAD has no body, so the next response on the connection is read as its own
            String head = exchange(plain, "HEAD /h HTTP/1.1\r\nhost: svc\r\n\r\n"
                    + "GET /after-head HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n");
            assertTrue(head.startsWith("HTTP/1.1 200 OK") && head.endsWith("path=/after-head"), head);
            String afterHead = head.substring(head.indexOf("\r\n\r\n") + 4);
            assertTrue(afterHead.startsWith("HTTP/1.1 200 OK"), head);
            String v10 = exchange(http10, "GET /e HTTP/1.0\r\n\r\n");
            assertTrue(v10.startsWith("HTTP/1.0 200 OK"), v10);
            assertTrue(v10.endsWith("host=svc path=/e"), v10);
            // a keep-alive HTTP/1.0 request's answer says keep-alive, as Envoy's connection manager writes it
            // (an HTTP/1.0 client takes an answer without it to end the connection); the next one, without it,
            // is answered with connection: close
            String kept = exchange(http10, "GET /k HTTP/1.0\r\nconnection: keep-alive\r\n\r\n"
                    + "GET /last HTTP/1.0\r\n\r\n");
            String first = kept.substring(0, kept.indexOf("HTTP/1.0 200", 1));
            assertTrue(first.toLowerCase(java.util.Locale.ROOT).contains("\r\nconnection: keep-alive\r\n")
                    && first.endsWith("path=/k"), kept);
            assertTrue(kept.toLowerCase(java.util.Locale.ROOT).contains("\r\nconnection: close\r\n")
                    && kept.endsWith("path=/last"), kept);
            // another version than 1.1 is served as HTTP/1.0 too, as Envoy's codec reads it
            String v12 = exchange(http10, "GET /e HTTP/1.2\r\n\r\n");
            assertTrue(v12.startsWith("HTTP/1.0 200 OK") && v12.endsWith("host=svc path=/e"), v12);
        } finally {
            if (proxy != null) {
                proxy.close();
            }
            backends.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void theStatusLineHasEnvoysReasonPhraseNotTheUpstreams() throws Exception {
        Vertx backends = Vertx.vertx();
        int plain = LoopbackProxy.freePort();
        int backend = backends.createHttpServer().requestHandler(req -> req.response()
                .setStatusCode(Integer.parseInt(req.path().substring(1))).setStatusMessage("Whatever").end())
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        try (LoopbackProxy proxy = new LoopbackProxy("static_resources:\n  listeners:\n" + listener("plain", plain, "")
                + clusterC(backend))) {
            java.util.Map<Integer, String> expected = java.util.Map.of(200, "OK", 413, "Payload Too Large",
                    414, "URI Too Long", 418, "Unknown", 499, "Unknown", 508, "Loop Detected", 226, "IM Used",
                    425, "Too Early");
            for (var e : expected.entrySet()) {
                String answer = exchange(plain, "GET /" + e.getKey() + " HTTP/1.1\r\nhost: svc\r\n"
                        + "connection: close\r\n\r\n");
                assertTrue(answer.startsWith("HTTP/1.1 " + e.getKey() + " " + e.getValue() + "\r\n"), answer);
            }
        } finally {
            backends.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void onTheWireNominatedHeadersDoNotReachTheUpstreamAndHttpsInTheClearAndConnectAreRefused() throws Exception {
        Vertx backends = Vertx.vertx();
        int plain = LoopbackProxy.freePort();
        int edge = LoopbackProxy.freePort();
        int backend = backends.createHttpServer().requestHandler(req -> req.response().end(
                String.join(",", new java.util.TreeSet<>(req.headers().names())).toLowerCase(java.util.Locale.ROOT)))
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        try (LoopbackProxy proxy = new LoopbackProxy("static_resources:\n  listeners:\n" + listener("plain", plain, "")
                + listener("edge", edge, "use_remote_address: true") + clusterC(backend))) {
            String nominated = exchange(plain, "GET /n HTTP/1.1\r\nhost: svc\r\nconnection: close, x-secret\r\n"
                    + "x-secret: s\r\nx-kept: k\r\n\r\n");
            assertTrue(nominated.startsWith("HTTP/1.1 200 ") && nominated.contains("x-kept")
                    && !nominated.contains("x-secret"), nominated);
            // refused by the codec: 400, its status text as the body, and the connection closed
            String forwarded = exchange(plain, "GET /n HTTP/1.1\r\nhost: svc\r\nconnection: x-forwarded-for\r\n"
                    + "x-forwarded-for: 10.9.9.9\r\n\r\n");
            assertTrue(forwarded.startsWith("HTTP/1.1 400 ") && forwarded.endsWith("Bad Request"), forwarded);
            // an edge connection manager (use_remote_address, no trusted hops) takes no https URL in the clear
            String https = exchange(edge, "GET https://svc/x HTTP/1.1\r\nhost: svc\r\n\r\n");
            assertTrue(https.startsWith("HTTP/1.1 403 ") && https.endsWith("Forbidden"), https);
            String internal = exchange(plain, "GET https://svc/x HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n");
            assertTrue(internal.startsWith("HTTP/1.1 200 "), internal);
            // CONNECT is an upgrade the connection manager does not enable, which no prefix route matches (it has
            // no path): 404 NR, and the connection closes, as Envoy's after a refused upgrade; what followed its
            // head is not read as a request (it was: a request smuggled behind a CONNECT was answered 200)
            String connect = exchange(plain, "CONNECT svc:443 HTTP/1.1\r\nhost: svc:443\r\n\r\n"
                    + "GET /after HTTP/1.1\r\nhost: smuggled\r\n\r\n");
            assertTrue(connect.startsWith("HTTP/1.1 404 ") && connect.contains("\r\nconnection: close\r\n")
                    && connect.indexOf("HTTP/1.1", 1) < 0, connect);
            // and over HTTP/2 (h2c), where a CONNECT has no :path
            io.vertx.core.http.HttpClient h2 = backends.createHttpClient(new io.vertx.core.http.HttpClientOptions()
                    .setProtocolVersion(io.vertx.core.http.HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false));
            int status = h2.request(new io.vertx.core.http.RequestOptions()
                    .setMethod(io.vertx.core.http.HttpMethod.CONNECT)
                    .setServer(io.vertx.core.net.SocketAddress.inetSocketAddress(plain, "127.0.0.1"))
                    .setHost("svc").setPort(443)).compose(r -> r.connect()).map(r -> r.statusCode())
                    .await(10, TimeUnit.SECONDS);
            assertEquals(404, status);
            h2.close().await(10, TimeUnit.SECONDS);
        } finally {
            backends.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void withoutAllowAbsoluteUrlAnAbsoluteFormRequestIsAnsweredAndCountedAsANonRelativePath() throws Exception {
        Vertx backends = Vertx.vertx();
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = new LoopbackProxy("static_resources:\n  listeners:\n" + listener("noabs", port,
                "http_protocol_options: {allow_absolute_url: false}") + clusterC(backends.createHttpServer()
                .requestHandler(req -> req.response().end("ok")).listen(0, "127.0.0.1")
                .await(10, TimeUnit.SECONDS).actualPort()))) {
            var stats = proxy.withStats();
            // the connection manager's refusal keeps the connection, as Envoy's: the next request on it is served
            String refused = exchange(port, "GET http://svc/x HTTP/1.1\r\nhost: svc\r\n\r\n"
                    + "GET /x HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n");
            assertTrue(refused.startsWith("HTTP/1.1 404 ") && !refused.toLowerCase(java.util.Locale.ROOT)
                    .contains("connection: close\r\n\r\nhttp/1.1 200"), refused);
            assertTrue(refused.contains("\r\n\r\nHTTP/1.1 200 ") && refused.endsWith("ok"), refused);
            String asterisk = exchange(port, "OPTIONS * HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n");
            assertTrue(asterisk.startsWith("HTTP/1.1 404 "), asterisk);
            // as Envoy's connection manager counts them
            assertEquals(2, LoopbackProxy.stat(stats, "noabs", "downstream_rq_non_relative_path"));
            assertEquals(3, LoopbackProxy.stat(stats, "noabs", "downstream_rq_total"));
        } finally {
            backends.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void refusedRequestsAreEnvoysLocalRepliesInTheAccessLogAndMetricsWithDpeForCodecErrors() throws Exception {
        Vertx backends = Vertx.vertx();
        LoopbackProxy proxy = null;
        try {
            HttpServer s = backends.createHttpServer().requestHandler(req -> req.response().end("ok"));
            int backend = s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
            int plain = LoopbackProxy.freePort();
            proxy = new LoopbackProxy("static_resources:\n  listeners:\n" + quickClose("plain", plain, "")
                    + clusterC(backend));
            // codec errors, as Envoy's codec answers them: the status text as a plain-text body, the connection
            // closed, and a log line with DPE, the details, and no method, path or authority ("- - HTTP/1.1")
            String[][] codecErrors = {
                {"GET /a HTTP/1.1\r\nhost: svc\r\nx-a : 1\r\n\r\n", "400", "Bad Request", "http1.codec_error"},
                // a Host that is not an authority (one host name read as another, or a path smuggled in it)
                {"GET /a HTTP/1.1\r\nhost: s v c\r\n\r\n", "400", "Bad Request", "http.invalid_authority"},
                {"GET /a HTTP/1.1\r\nhost: svc/admin\r\n\r\n", "400", "Bad Request", "http.invalid_authority"},
                // a target with a byte Envoy's parser does not take in one: raw UTF-8 (é), a control character
                {"GET /caf\u00c3\u00a9 HTTP/1.1\r\nhost: svc\r\n\r\n", "400", "Bad Request", "http1.codec_error"},
                {"GET /a\u0001b HTTP/1.1\r\nhost: svc\r\n\r\n", "400", "Bad Request", "http1.codec_error"},
                // a method Envoy's codec does not know (allow_custom_methods is off)
                {"FOO /a HTTP/1.1\r\nhost: svc\r\n\r\n", "400", "Bad Request", "http1.codec_error"},
                // a header without a name, or with an HTTP/2 pseudo-header's (Netty reads both without a name)
                {"GET /a HTTP/1.1\r\nhost: svc\r\n: 1\r\n\r\n", "400", "Bad Request", "http1.codec_error"},
                {"GET /a HTTP/1.1\r\nhost: svc\r\n:path: /admin\r\n\r\n", "400", "Bad Request",
                    "http1.codec_error"},
                {"GET /a HTTP/1.1\r\nhost: svc\r\n" + "x-h: 1\r\n".repeat(100) + "\r\n", "431",
                    "Request Header Fields Too Large", "http1.too_many_headers"},
                {"GET /a HTTP/1.1\r\nhost: svc\r\ncookie: " + "c".repeat(70_000) + "\r\n\r\n", "431",
                    "Request Header Fields Too Large", "http1.headers_too_large"},
                {"POST /a HTTP/1.1\r\nhost: svc\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n"
                    + "0\r\n\r\n", "400", "Bad Request", "http1.content_length_and_chunked_not_allowed"},
                {"GET /a HTTP/1.0\r\nhost: svc\r\n\r\n", "426", "Upgrade Required", "low_version"},
                {"POST /a HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: gzip\r\n\r\n", "501", "Not Implemented",
                    "http1.invalid_transfer_encoding"},
                // framings Envoy's codec refuses and Netty reads: chunked twice (two lines, which Envoy joins), a
                // length beside another coding, a body on CONNECT
                {"POST /a HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n"
                    + "0\r\n\r\n", "501", "Not Implemented", "http1.invalid_transfer_encoding"},
                {"POST /a HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: gzip\r\ncontent-length: 3\r\n\r\nabc", "400",
                    "Bad Request", "http1.content_length_and_chunked_not_allowed"},
                {"CONNECT svc:80 HTTP/1.1\r\nhost: svc:80\r\ncontent-length: 3\r\n\r\nabc", "400", "Bad Request",
                    "http1.body_disallowed"},
            };
            for (String[] c : codecErrors) {
                int logged = proxy.requests.size();
                String answer = exchange(plain, c[0]);
                String lower = answer.toLowerCase(java.util.Locale.ROOT);
                assertTrue(answer.startsWith("HTTP/1.1 " + c[1] + " ") && answer.endsWith("\r\n\r\n" + c[2])
                        && lower.contains("\r\nconnection: close\r\n")
                        && lower.contains("\r\ncontent-type: text/plain\r\n"), answer);
                dev.inmesh.runtime.stats.StreamInfo line = logLine(proxy, logged);
                assertEquals(Integer.parseInt(c[1]), line.responseCode(), c[3]);
                assertEquals(java.util.Set.of(dev.inmesh.runtime.stats.ResponseFlag.DOWNSTREAM_PROTOCOL_ERROR),
                        line.responseFlags(), c[3]);
                assertEquals(c[3], line.responseCodeDetails());
                assertNull(line.method(), c[3]);
                assertNull(line.path(), c[3]);
                assertNull(line.authority(), c[3]);
                assertEquals(c[1].equals("426") ? "HTTP/1.0" : "HTTP/1.1", line.protocol(), c[3]);
                assertEquals(c[2].length(), line.bytesSent(), c[3]);
            }
            // a request the connection manager refuses is logged with its method and path, without DPE
            int logged = proxy.requests.size();
            String hostless = exchange(plain, "GET /nohost HTTP/1.1\r\nconnection: close\r\n\r\n");
            assertTrue(hostless.startsWith("HTTP/1.1 400 ") && hostless.endsWith("\r\n\r\n"), hostless);
            dev.inmesh.runtime.stats.StreamInfo line = logLine(proxy, logged);
            assertEquals(400, line.responseCode());
            assertEquals(java.util.Set.of(), line.responseFlags());
            assertEquals("missing_host_header", line.responseCodeDetails());
            assertEquals("GET", line.method());
            assertEquals("/nohost", line.path());
            assertNull(line.authority(), "no Host came: logged \"-\", not the listener's address");
        } finally {
            if (proxy != null) {
                proxy.close();
            }
            backends.close().await(10, TimeUnit.SECONDS);
        }
    }

    /**
     * A chunk size of 2 GiB or more, which Netty's decoder reads wrapped ({@code 100000005} as 5), is refused as Envoy's
     * codec refuses a size it cannot read: the rest of the body is not read as another request, which the upstream
     * would then get though the chunks' sender meant it as body.
     */
    @Test
    void aChunkSizeBeyond31BitsIsRefusedNotReadWrappedIntoASmuggledRequest() throws Exception {
        Vertx backends = Vertx.vertx();
        LoopbackProxy proxy = null;
        try {
            java.util.List<String> served = new java.util.concurrent.CopyOnWriteArrayList<>();
            HttpServer s = backends.createHttpServer().requestHandler(req -> {
                served.add(req.method() + " " + req.path());
                req.body().onComplete(b -> req.response().end("ok"));
            });
            int backend = s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
            int plain = LoopbackProxy.freePort();
            proxy = new LoopbackProxy("static_resources:\n  listeners:\n" + quickClose("plain", plain, "")
                    + clusterC(backend));
            // a size after whitespace, as Netty reads it; a size line broken before (a bare CR, which Netty takes)
            for (String size : java.util.List.of("100000005", "10000000000000005", "80000005", " 100000005",
                    "5;a\rb\r\nhello\r\n100000005")) {
                String answer = exchange(plain, "POST /first HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n"
                        + "\r\n" + size + "\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: svc\r\n\r\n");
                assertTrue(answer.startsWith("HTTP/1.1 400 "), size + ": " + answer);
                assertFalse(answer.substring(12).contains("HTTP/1.1"), "one answer: " + answer);
            }
            // a size under 2 GiB is read as it is
            String answer = exchange(plain, "POST /ok HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n"
                    + "connection: close\r\n\r\n5;ext=1\r\nhello\r\n 00000003\r\nabc\r\n0\r\nx-t: 1\r\n\r\n");
            assertTrue(answer.startsWith("HTTP/1.1 200 "), answer);
            Thread.sleep(200);
            assertFalse(served.contains("GET /smuggled"), served.toString());
            assertTrue(served.contains("POST /ok"), served.toString());
        } finally {
            if (proxy != null) {
                proxy.close();
            }
            backends.close().await(10, TimeUnit.SECONDS);
        }
    }

    /**
     * A host name with a percent-encoding ({@code pct-encoded} of RFC 3986's reg-name, which Envoy's authority check
     * takes) is routed and sent upstream as it came, undecoded: Vert.x's authority parser failed on it, and the request
     * was answered 500.
     */
    @Test
    void aHostWithAPercentEncodingIsRoutedAndSentUpstreamAsItCame() throws Exception {
        Vertx backends = Vertx.vertx();
        LoopbackProxy proxy = null;
        try {
            HttpServer s = backends.createHttpServer().requestHandler(req -> req.response()
                    .end("host=" + req.getHeader("host")));
            int backend = s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
            int plain = LoopbackProxy.freePort();
            proxy = new LoopbackProxy("static_resources:\n  listeners:\n" + listener("plain", plain, "")
                    .replace("domains: [\"svc\", \"svc:*\"]", "domains: [\"a%41b\", \"a%41b:*\"]")
                    + clusterC(backend));
            for (String host : java.util.List.of("a%41b", "a%41b:8080")) {
                String answer = exchange(plain, "GET / HTTP/1.1\r\nhost: " + host + "\r\nconnection: close\r\n\r\n");
                assertTrue(answer.startsWith("HTTP/1.1 200 OK") && answer.endsWith("host=" + host), answer);
            }
            String decoded = exchange(plain, "GET / HTTP/1.1\r\nhost: aAb\r\nconnection: close\r\n\r\n");
            assertTrue(decoded.startsWith("HTTP/1.1 404"), "matched undecoded, as Envoy: " + decoded);
        } finally {
            if (proxy != null) {
                proxy.close();
            }
            backends.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void anExpectationOtherThan100ContinueGoesUpstreamAsEnvoyPassesIt() throws Exception {
        Vertx backends = Vertx.vertx();
        LoopbackProxy proxy = null;
        try {
            HttpServer s = backends.createHttpServer().requestHandler(req -> req.body().onSuccess(b -> req.response()
                    .end("expect=" + req.getHeader("expect") + " body=" + b)));
            int backend = s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
            int plain = LoopbackProxy.freePort();
            proxy = new LoopbackProxy("static_resources:\n  listeners:\n" + listener("plain", plain, "")
                    + clusterC(backend));
            String other = exchange(plain, "POST /a HTTP/1.1\r\nhost: svc\r\nexpect: x-custom\r\n"
                    + "content-length: 3\r\nconnection: close\r\n\r\nabc");
            assertTrue(other.startsWith("HTTP/1.1 200 OK") && other.endsWith("expect=x-custom body=abc"), other);
            // 100-continue is the proxy's to answer, and is not passed on
            String proceed = exchange(plain, "POST /a HTTP/1.1\r\nhost: svc\r\nexpect: 100-continue\r\n"
                    + "content-length: 3\r\nconnection: close\r\n\r\nabc");
            assertTrue(proceed.endsWith("expect=null body=abc"), proceed);
        } finally {
            if (proxy != null) {
                proxy.close();
            }
            backends.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void aConnectionManagerThatAlwaysSetsTheRequestIdPutsItOnTheResponseOverTheUpstreamsOwn() throws Exception {
        Vertx backends = Vertx.vertx();
        LoopbackProxy proxy = null;
        try {
            HttpServer s = backends.createHttpServer().requestHandler(req -> req.response()
                    .putHeader("x-request-id", "upstream-id").end("seen=" + req.getHeader("x-request-id")));
            int backend = s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
            int always = LoopbackProxy.freePort();
            int plain = LoopbackProxy.freePort();
            proxy = new LoopbackProxy("static_resources:\n  listeners:\n" + listener("always", always,
                    "always_set_request_id_in_response: true") + listener("plain", plain, "") + clusterC(backend));
            String get = "GET /a HTTP/1.1\r\nhost: svc\r\nx-request-id: abc\r\nconnection: close\r\n\r\n";
            String set = exchange(always, get);
            assertTrue(set.contains("x-request-id: abc\r\n") && !set.contains("upstream-id"), set);
            String left = exchange(plain, get);
            assertTrue(left.contains("x-request-id: upstream-id\r\n"), left);
        } finally {
            if (proxy != null) {
                proxy.close();
            }
            backends.close().await(10, TimeUnit.SECONDS);
        }
    }

    /** The access log entry written after {@code before} entries, waited for. */
    private static dev.inmesh.runtime.stats.StreamInfo logLine(LoopbackProxy proxy, int before) throws Exception {
        for (long deadline = System.nanoTime() + 15_000_000_000L; proxy.requests.size() <= before
                && System.nanoTime() < deadline; ) {
            Thread.sleep(10);
        }
        assertEquals(before + 1, proxy.requests.size(), "one access log entry");
        return proxy.requests.get(before);
    }

    /** The {@code clusters:} section: cluster {@code c}, one host at 127.0.0.1:{@code port}. */
    @Test
    void aConnectionManagersCodecTypeFixesTheProtocolAClientMustSpeak() throws Exception {
        Vertx backends = Vertx.vertx();
        LoopbackProxy proxy = null;
        java.util.List<String> seen = new java.util.concurrent.CopyOnWriteArrayList<>();
        try {
            HttpServer s = backends.createHttpServer().requestHandler(req -> {
                seen.add(req.uri());
                req.response().end("ok");
            });
            int backend = s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
            int h1 = LoopbackProxy.freePort();
            int h2 = LoopbackProxy.freePort();
            proxy = new LoopbackProxy("static_resources:\n  listeners:\n" + listener("h1", h1, "codec_type: HTTP1")
                    + listener("h2", h2, "codec_type: HTTP2") + clusterC(backend));
            String get = "GET /a HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n";
            assertTrue(exchange(h1, get).startsWith("HTTP/1.1 200 OK"));
            // HTTP2: an HTTP/1 request is not the connection preface, and the connection fails as an HTTP/2 one
            String refused = exchange(h2, get);
            assertTrue(!refused.contains("HTTP/1.1") && !refused.contains("ok"), refused);
            // HTTP1: the preface is read as an HTTP/1 request line (version 2.0) and refused, not served as h2c
            String preface = exchange(h1, ProtocolDetector.H2_PREFACE);
            assertTrue(preface.startsWith("HTTP/1.1 4") || preface.startsWith("HTTP/1.1 5"), preface);
            assertEquals(java.util.List.of("/a"), seen);
        } finally {
            if (proxy != null) {
                proxy.close();
            }
            backends.close().await(10, TimeUnit.SECONDS);
        }
    }

    /**
     * What reaches an HTTP/1.1 upstream is framed as Envoy's HTTP/1 codec frames it: a request without a body goes
     * without {@code content-length} when its method has none (GET, HEAD, DELETE; also an HTTP/1.0 client's and an
     * h2c client's), and with {@code content-length: 0} otherwise; a {@code content-length} the client sent goes as it
     * is; a chunked body goes chunked, not gathered under a length.
     */
    @Test
    void theUpstreamRequestIsFramedAsEnvoysHttp1CodecFramesIt() throws Exception {
        String[][] cases = {
            // the client's request, the upstream's request line, content-length (null: none), the bytes after the head
            {"GET /a HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n", "GET /a HTTP/1.1", null, ""},
            {"HEAD /a HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n", "HEAD /a HTTP/1.1", null, ""},
            {"DELETE /a HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n", "DELETE /a HTTP/1.1", null, ""},
            {"OPTIONS /a HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n", "OPTIONS /a HTTP/1.1", "0", ""},
            {"POST /a HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n", "POST /a HTTP/1.1", "0", ""},
            {"POST /a HTTP/1.1\r\nhost: svc\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                "POST /a HTTP/1.1", "0", ""},
            {"GET /a HTTP/1.1\r\nhost: svc\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                "GET /a HTTP/1.1", "0", ""},
            {"POST /a HTTP/1.1\r\nhost: svc\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
                "POST /a HTTP/1.1", "5", "hello"},
            {"POST /a HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                + "5\r\nhello\r\n0\r\n\r\n", "POST /a HTTP/1.1", null, "5\r\nhello\r\n0\r\n\r\n"},
            {"POST /a HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                + "0\r\n\r\n", "POST /a HTTP/1.1", null, "0\r\n\r\n"},
            {"GET /a HTTP/1.0\r\nhost: svc\r\n\r\n", "GET /a HTTP/1.1", null, ""},
            {"POST /a HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                + "5\r\nhello\r\n0\r\nx-t: 1\r\n\r\n", "POST /a HTTP/1.1", null, "5\r\nhello\r\n0\r\n\r\n"},
        };
        try (dev.inmesh.runtime.upstream.RawHttp1Upstream upstream = new dev.inmesh.runtime.upstream.RawHttp1Upstream(
                "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")) {
            int port = LoopbackProxy.freePort();
            try (LoopbackProxy proxy = new LoopbackProxy("static_resources:\n  listeners:\n"
                    + listener("l", port, "http_protocol_options: {accept_http_10: true}")
                    + clusterC(upstream.port()))) {
                for (int i = 0; i < cases.length; i++) {
                    String[] c = cases[i];
                    String what = c[0].replace("\r\n", "|");
                    assertTrue(exchange(port, c[0]).startsWith("HTTP/1."), what);
                    assertFraming(upstream.request(i), c[1], c[2], c[3], what);
                }
                Vertx client = Vertx.vertx();
                try {
                    io.vertx.core.http.HttpClient h2 = client.createHttpClient(
                            new io.vertx.core.http.HttpClientOptions().setHttp2ClearTextUpgrade(false)
                                    .setProtocolVersion(io.vertx.core.http.HttpVersion.HTTP_2));
                    io.vertx.core.http.RequestOptions to = new io.vertx.core.http.RequestOptions().setHost("svc")
                            .setServer(io.vertx.core.net.SocketAddress.inetSocketAddress(port, "127.0.0.1"))
                            .setPort(80).setURI("/h2");
                    // an h2c client's GET (HEADERS with END_STREAM) to the HTTP/1.1 upstream
                    assertEquals(200, h2.request(to).compose(io.vertx.core.http.HttpClientRequest::send)
                            .await(10, TimeUnit.SECONDS).statusCode());
                    assertFraming(upstream.request(cases.length), "GET /h2 HTTP/1.1", null, "", "h2c GET");
                    // and its POST whose DATA no content-length describes: chunked, as from Envoy
                    assertEquals(200, h2.request(new io.vertx.core.http.RequestOptions(to).setMethod(
                                    io.vertx.core.http.HttpMethod.POST))
                            .compose(r -> r.setChunked(true).send("hello")).await(10, TimeUnit.SECONDS)
                            .statusCode());
                    assertFraming(upstream.request(cases.length + 1), "POST /h2 HTTP/1.1", null,
                            "5\r\nhello\r\n0\r\n\r\n", "h2c POST");
                } finally {
                    client.close().await(10, TimeUnit.SECONDS);
                }
            }
        }
    }

    /**
     * Envoy's HTTP/1 codec writes header names in lower case, whatever case the upstream sent a response's in and the
     * caller a request's; Istio's {@code preserveHttp1HeaderCase} (a stateful formatter) keeps the case they came
     * with.
     */
    @Test
    void headerNamesGoToHttp1PeersInLowerCaseUnlessAStatefulFormatterPreservesTheirCase() throws Exception {
        String answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Custom-Thing: A\r\nconnection: close\r\n\r\nok";
        String preserve = "http_protocol_options: {header_key_format: {stateful_formatter: {name: preserve_case, "
                + "typed_config: {\"@type\": type.googleapis.com/envoy.extensions.http.header_formatters."
                + "preserve_case.v3.PreserveCaseFormatterConfig}}}}";
        try (var upstream = new dev.inmesh.runtime.upstream.RawHttp1Upstream(answer)) {
            int port = LoopbackProxy.freePort();
            int kept = LoopbackProxy.freePort();
            try (LoopbackProxy proxy = new LoopbackProxy("static_resources:\n  listeners:\n"
                    + (listener("l", port, "") + listener("kept", kept, preserve)).replace(
                            "route: {cluster: c}", "route: {cluster: c}\n" + " ".repeat(16)
                            + "request_headers_to_add: [{header: {key: X-Added-By-Route, value: r}}]")
                    + clusterC(upstream.port()))) {
                String request = "GET /a HTTP/1.1\r\nHost: svc\r\nUser-Agent: curl/8\r\nX-Mixed-Case: B\r\n"
                        + "connection: close\r\n\r\n";
                String got = exchange(port, request);
                assertTrue(got.contains("\r\nx-custom-thing: A\r\n") && got.contains("\r\ncontent-length: 2\r\n")
                        && !got.contains("X-Custom-Thing") && !got.contains("Content-Length"), got);
                // and so do the request's to the upstream, the names of the route's header rules among them
                String sent = upstream.request(0);
                assertTrue(sent.contains("\r\nuser-agent: curl/8\r\n") && sent.contains("\r\nx-mixed-case: B\r\n")
                        && sent.contains("\r\nx-added-by-route: r\r\n") && sent.contains("\r\nhost: svc\r\n")
                        && !sent.contains("User-Agent") && !sent.contains("X-Mixed-Case")
                        && !sent.contains("X-Added-By-Route"), sent);
                got = exchange(kept, request);
                assertTrue(got.contains("\r\nX-Custom-Thing: A\r\n"), got);
                sent = upstream.request(1);
                assertTrue(sent.contains("\r\nUser-Agent: curl/8\r\n") && sent.contains("\r\nX-Mixed-Case: B\r\n"),
                        sent);
            }
        }
    }

    /** The upstream's request {@code got}: {@code line}, {@code content-length: length} or none, then {@code rest}. */
    private static void assertFraming(String got, String line, String length, String rest, String what) {
        int end = got.indexOf("\r\n\r\n");
        java.util.List<String> head = java.util.List.of(got.substring(0, end).toLowerCase().split("\r\n"));
        assertEquals(line.toLowerCase(), head.get(0), what);
        assertEquals(length == null ? java.util.List.of() : java.util.List.of("content-length: " + length),
                head.stream().filter(h -> h.startsWith("content-length:")).toList(), what);
        assertEquals(rest.endsWith("0\r\n\r\n") ? java.util.List.of("transfer-encoding: chunked") : java.util.List.of(),
                head.stream().filter(h -> h.startsWith("transfer-encoding:")).toList(), what);
        assertEquals(rest, got.substring(end + 4), what);
    }

    static String clusterC(int port) {
        return """
                  clusters:
                  - name: c
                    type: STATIC
                    connect_timeout: 1s
                    load_assignment:
                      cluster_name: c
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                """.formatted(port);
    }

    /**
     * {@link #listener}, with a {@code delayed_close_timeout} of 50 ms where Envoy's default is 1 s: a refused request
     * closes its connection after the answer once that runs out, and {@link #exchange} reads until the close.
     */
    static String quickClose(String name, int port, String http1Options) {
        return listener(name, port, "delayed_close_timeout: 0.05s"
                + (http1Options.isEmpty() ? "" : "\n          " + http1Options));
    }

    /** A listener on 127.0.0.1:{@code port} routing hosts {@code svc} and {@code svc:*} to cluster {@code c}. */
    static String listener(String name, int port, String http1Options) {
        return """
                  - name: %s
                    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.http_connection_manager
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                          stat_prefix: %s
                          %s
                          route_config:
                            name: %s
                            virtual_hosts:
                            - name: svc
                              domains: ["svc", "svc:*"]
                              routes:
                              - match: {prefix: /}
                                route: {cluster: c}
                          http_filters:
                          - name: envoy.filters.http.router
                            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                """.formatted(name, port, name, http1Options, name);
    }

    /** Sends raw bytes and reads until the proxy closes the connection. */
    static String exchange(int port, String request) throws Exception {
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write(request.getBytes(StandardCharsets.ISO_8859_1)); // one byte a char
            s.getOutputStream().flush();
            InputStream in = s.getInputStream();
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buf = new byte[4096];
            for (int n; (n = in.read(buf)) > 0; ) {
                out.write(buf, 0, n);
            }
            return out.toString(StandardCharsets.US_ASCII);
        }
    }
}
