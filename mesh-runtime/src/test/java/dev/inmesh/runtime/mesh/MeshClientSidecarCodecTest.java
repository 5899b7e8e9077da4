package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.testing.LoopbackPorts;
import dev.inmesh.runtime.testing.MeshFixture;
import io.vertx.core.MultiMap;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.RequestOptions;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The in-JVM client's request is what a sidecar's outbound HTTP/1 codec would read from the application, and its
 * answer what that codec would write back: the mesh client does what Envoy's codec and connection manager do with
 * both, through an outbound listener shaped as istiod writes it.
 */
class MeshClientSidecarCodecTest extends MeshFixture {
    final List<StreamInfo> recorded = new CopyOnWriteArrayList<>();
    /** The requests the service was sent: their paths and headers. */
    final List<HttpServerRequest> served = new CopyOnWriteArrayList<>();

    @BeforeEach
    void setUp() throws Exception {
        // /slow never answers; anything else answers with the request's headers as its body
        // heads up to twice a sidecar's 60 KiB taken (Vert.x alone takes 8 KiB)
        HttpServer service = vertx.createHttpServer(new io.vertx.core.http.HttpServerOptions()
                .setMaxHeaderSize(120 * 1024).setMaxInitialLineLength(120 * 1024)).requestHandler(req -> {
            served.add(req);
            if (!req.path().startsWith("/slow")) {
                req.response().end(req.headers().toString());
            }
        });
        service.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        startMesh(config(service.actualPort(), LoopbackPorts.freePort()), recorded::add);
    }


    /**
     * {@link MeshWebClientTest#config}'s outbound listener for port 9080, to {@code service}, where {@code reviews}
     * answers /direct with a direct response, routes /slow with a 0.2 s timeout and redirects /moved to
     * {@code other.example/new}; and {@code empty} goes to a
     * cluster without hosts, {@code dead} to {@code closedPort}, where nothing listens.
     */
    static String config(int service, int closedPort) {
        String defaultRoute = " ".repeat(14) + "- name: default\n";
        String routes = """
                - match: {prefix: /direct}
                  direct_response: {status: 200, body: {inline_string: direct-body}}
                - match: {prefix: /slow}
                  route: {cluster: "outbound|9080||reviews.default.svc.cluster.local", timeout: 0.2s}
                - match: {prefix: /moved}
                  redirect: {host_redirect: other.example, path_redirect: /new}
                """.indent(14);
        String virtualHosts = """
                - {name: empty, domains: [empty], routes: [{match: {prefix: /}, route: {cluster: empty}}]}
                - {name: dead, domains: [dead], routes: [{match: {prefix: /}, route: {cluster: dead}}]}
                """.indent(12);
        String clusters = """
                - {name: empty, type: STATIC, connect_timeout: 1s, load_assignment: {cluster_name: empty}}
                - name: dead
                  type: STATIC
                  connect_timeout: 1s
                  load_assignment:
                    cluster_name: dead
                    endpoints:
                    - lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}}]
                """.formatted(closedPort).indent(2);
        return MeshWebClientTest.config("", service).replace(defaultRoute, routes + defaultRoute)
                .replace("  clusters:\n", virtualHosts + "  clusters:\n") + clusters;
    }

    /** An answer as the mesh client gave it: status, headers, body. */
    record Answer(int status, MultiMap headers, String body) {}

    Answer send(HttpMethod method, String host, String uri, Map<String, String> headers) throws Exception {
        RequestOptions o = new RequestOptions().setMethod(method).setHost(host).setPort(9080).setURI(uri);
        headers.forEach(o::putHeader);
        HttpClientResponse r = mesh.httpClient().request(o).compose(req -> req.send())
                .await(10, TimeUnit.SECONDS);
        Buffer body = r.body().await(10, TimeUnit.SECONDS);
        return new Answer(r.statusCode(), r.headers(), body.toString());
    }

    StreamInfo lastRecorded(int count) throws Exception {
        for (int i = 0; i < 250 && recorded.size() < count; i++) {
            Thread.sleep(20);
        }
        assertEquals(count, recorded.size(), recorded.toString());
        return recorded.get(count - 1);
    }

    /**
     * As Envoy's local reply to a HEAD request (Utility::sendLocalReply, source/common/http/utility.cc): the headers
     * alone, the content-length the body's that a GET gets, and 0 bytes sent in the access log.
     */
    @Test
    void aLocalReplyToAHeadRequestHasTheHeadersOfTheGetsAnswerAndNoBody() throws Exception {
        record Case(String host, String uri, int status, String details) {}
        List<Case> cases = List.of(
                new Case("reviews", "/direct", 200, "direct_response"),
                new Case("empty", "/", 503, "no_healthy_upstream"),
                new Case("dead", "/", 503, null),
                new Case("reviews", "/slow", 504, "upstream_response_timeout"));
        int n = 0;
        for (Case c : cases) {
            Answer get = send(HttpMethod.GET, c.host(), c.uri(), Map.of());
            assertEquals(c.status(), get.status(), c.toString());
            assertTrue(!get.body().isEmpty(), c.toString());
            Answer head = send(HttpMethod.HEAD, c.host(), c.uri(), Map.of());
            n += 2;
            assertEquals(c.status(), head.status(), c.toString());
            assertEquals(Integer.toString(get.body().length()), head.headers().get("content-length"), c.toString());
            assertEquals(get.headers().get("content-type"), head.headers().get("content-type"), c.toString());
            assertEquals("", head.body(), c.toString());
            StreamInfo logged = lastRecorded(n);
            assertEquals("HEAD", logged.method(), c.toString());
            assertEquals(0, logged.bytesSent(), c.toString());
            if (c.details() != null) {
                assertEquals(c.details(), logged.responseCodeDetails(), c.toString());
            }
        }
        // an empty reply (no route: 404 NR) has no content-length, as Envoy's codec adds none to an answer to a HEAD
        Answer noRoute = send(HttpMethod.HEAD, "nowhere", "/", Map.of());
        assertEquals(404, noRoute.status());
        assertNull(noRoute.headers().get("content-length"));
    }

    /**
     * As Envoy's connection manager refuses an upgrade its {@code upgrade_configs} do not enable (conn_manager_impl.cc;
     * this listener enables none, istiod's enables websocket): 403 {@code upgrade_failed} where a route matches, else
     * the router's 404 NR, never forwarded. An {@code upgrade} without {@code connection: upgrade} is no upgrade: the
     * request goes on without it.
     */
    @Test
    void anUpgradeTheConnectionManagerDoesNotEnableIsRefusedNotForwardedAsAPlainRequest() throws Exception {
        int n = 0;
        for (String type : List.of("foo", "websocket")) {
            Answer refused = send(HttpMethod.GET, "reviews", "/x", Map.of("connection", "keep-alive, Upgrade",
                    "upgrade", type));
            assertEquals(403, refused.status(), type);
            assertEquals("upgrade_failed", lastRecorded(++n).responseCodeDetails(), type);
        }
        Answer noRoute = send(HttpMethod.GET, "nowhere", "/x", Map.of("connection", "upgrade", "upgrade", "foo"));
        assertEquals(404, noRoute.status());
        assertEquals("route_not_found", lastRecorded(3).responseCodeDetails());
        assertEquals(0, served.size(), "none forwarded");
        Answer plain = send(HttpMethod.GET, "reviews", "/x", Map.of("upgrade", "foo"));
        assertEquals(200, plain.status());
        assertTrue(!plain.body().toLowerCase(java.util.Locale.ROOT).contains("upgrade"), plain.body());
    }

    /**
     * As the sidecar's HTTP/1 codec (and {@code mesh.inbound}) takes the head the application sends: over the
     * connection manager's {@code max_request_headers_kb} (default 60 KiB: names, values and the target) or
     * {@code max_headers_count} (default 100 lines, the Host among them), it is answered 431 with the status text,
     * details {@code http1.headers_too_large} or {@code http1.too_many_headers} and flag DPE, and not forwarded.
     */
    @Test
    void aHeadOverTheConnectionManagersLimitsIsAnswered431AsTheSidecarsCodecAnswersIt() throws Exception {
        assertEquals(200, send(HttpMethod.GET, "reviews", "/x", Map.of("x-big", "v".repeat(50 * 1024))).status());
        Map<String, String> ninetyNine = new java.util.HashMap<>();
        for (int i = 0; i < 99; i++) {
            ninetyNine.put("x-h" + i, "v");
        }
        assertEquals(200, send(HttpMethod.GET, "reviews", "/x", ninetyNine).status(), "100 lines with the Host");
        assertEquals(2, served.size());
        Map<String, String> hundred = new java.util.HashMap<>(ninetyNine);
        hundred.put("x-h99", "v");
        record Case(String uri, Map<String, String> headers, String details) {}
        List<Case> cases = List.of(
                new Case("/x", Map.of("x-big", "v".repeat(70 * 1024)), "http1.headers_too_large"),
                new Case("/x?q=" + "v".repeat(70 * 1024), Map.of(), "http1.headers_too_large"),
                new Case("/x", hundred, "http1.too_many_headers"));
        int n = 2;
        for (Case c : cases) {
            Answer refused = send(HttpMethod.GET, "reviews", c.uri(), c.headers());
            assertEquals(431, refused.status(), c.details());
            assertEquals("Request Header Fields Too Large", refused.body());
            StreamInfo logged = lastRecorded(++n);
            assertEquals(c.details(), logged.responseCodeDetails());
            assertEquals(java.util.Set.of(dev.inmesh.runtime.stats.ResponseFlag.DOWNSTREAM_PROTOCOL_ERROR),
                    logged.responseFlags());
        }
        assertEquals(2, served.size(), "none forwarded");
    }

    /**
     * As the sidecar's HTTP/1 codec reads the application's {@code Connection} header
     * (Utility::sanitizeConnectionHeader and onHeadersCompleteBase, http1/codec_impl.cc): the headers it nominates do not go upstream, a {@code te} that
     * offers trailers stays as {@code trailers}; a nomination of {@code x-forwarded-for}, {@code -host} or
     * {@code -proto}, or ten tokens or more, is refused 400 {@code http1.connection_header_rejected} (DPE); an h2c
     * offer loses its {@code upgrade} and {@code http2-settings} and is served.
     */
    @Test
    void theHeadersTheConnectionHeaderNominatesAreTakenOffAsTheSidecarsCodecTakesThemOff() throws Exception {
        Answer nominated = send(HttpMethod.GET, "reviews", "/x", Map.of("connection", "keep-alive, x-nominated",
                "x-nominated", "1", "x-other", "2", "te", "gzip, trailers"));
        assertEquals(200, nominated.status());
        MultiMap seen = served.get(0).headers();
        assertNull(seen.get("x-nominated"));
        assertEquals("2", seen.get("x-other"));
        assertEquals("trailers", seen.get("te"));
        Answer h2c = send(HttpMethod.GET, "reviews", "/x", Map.of("connection", "Upgrade, HTTP2-Settings",
                "upgrade", "h2c", "http2-settings", "AAMAAABkAAQAoAAAAAIAAAAA"));
        assertEquals(200, h2c.status());
        seen = served.get(1).headers();
        assertNull(seen.get("http2-settings"), seen.toString());
        assertNull(seen.get("upgrade"), seen.toString());
        assertEquals(2, served.size());
        int n = 2;
        for (String connection : List.of("x-forwarded-for", "close, X-Forwarded-Proto", "x-forwarded-host",
                "a, b, c, d, e, f, g, h, i, j")) {
            Answer refused = send(HttpMethod.GET, "reviews", "/x", Map.of("connection", connection));
            assertEquals(400, refused.status(), connection);
            assertEquals("Bad Request", refused.body());
            StreamInfo logged = lastRecorded(++n);
            assertEquals("http1.connection_header_rejected", logged.responseCodeDetails());
            assertEquals(java.util.Set.of(dev.inmesh.runtime.stats.ResponseFlag.DOWNSTREAM_PROTOCOL_ERROR),
                    logged.responseFlags());
        }
        assertEquals(2, served.size(), "none forwarded");
    }

    /**
     * As Envoy's connection manager gives a request its HTTP/1 codec gave no {@code :scheme} the one of a valid
     * {@code x-forwarded-proto} (mutateRequestHeaders, conn_manager_utility.cc), which a redirect keeps
     * (Utility::newUri): the application's {@code x-forwarded-proto: https} makes an {@code https} location; an
     * invalid one leaves the connection's.
     */
    @Test
    void aRedirectKeepsTheSchemeOfTheApplicationsForwardedProto() throws Exception {
        Map<String, String> cases = Map.of("https", "https://other.example/new", "HTTPS", "https://other.example/new",
                "ftp", "http://other.example/new", "", "http://other.example/new");
        for (Map.Entry<String, String> c : cases.entrySet()) {
            Answer moved = send(HttpMethod.GET, "reviews", "/moved",
                    c.getKey().isEmpty() ? Map.of() : Map.of("x-forwarded-proto", c.getKey()));
            assertEquals(301, moved.status(), c.getKey());
            assertEquals(c.getValue(), moved.headers().get("location"), c.getKey());
        }
    }

    /**
     * As Envoy's connection manager takes a {@code Referer} that is no URI reference, or a second one, off the request
     * (mutateRequestHeaders, conn_manager_utility.cc): the upstream does not get it; a valid one goes on.
     */
    @Test
    void anInvalidOrSecondRefererDoesNotReachTheUpstream() throws Exception {
        assertEquals(200, send(HttpMethod.GET, "reviews", "/x", Map.of("referer", "http://[bad")).status());
        assertEquals(200, send(HttpMethod.GET, "reviews", "/x", Map.of("referer", "http://a.example/page")).status());
        HttpClientResponse two = mesh.httpClient().request(new RequestOptions().setHost("reviews").setPort(9080)
                        .setURI("/x").addHeader("referer", "/a").addHeader("referer", "/b"))
                .compose(req -> req.send()).await(10, TimeUnit.SECONDS);
        assertEquals(200, two.statusCode());
        assertEquals(3, served.size());
        assertNull(served.get(0).getHeader("referer"));
        assertEquals("http://a.example/page", served.get(1).getHeader("referer"));
        assertNull(served.get(2).getHeader("referer"));
    }
}
