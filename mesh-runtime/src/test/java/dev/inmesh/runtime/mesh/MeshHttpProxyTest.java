package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.InetSocketAddress;
import java.net.Proxy;
import java.net.ProxySelector;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The mesh's HTTP proxy ({@code inmesh.http-proxy.port}): the JVM's other HTTP clients, pointed at it as at any HTTP
 * proxy, have their requests routed by the mesh as those of its own clients.
 */
@Timeout(60)
class MeshHttpProxyTest {
    Vertx vertx;
    Mesh mesh;
    final List<StreamInfo> recorded = new CopyOnWriteArrayList<>();
    @TempDir
    Path dir;

    @BeforeEach
    void setUp() {
        vertx = Vertx.vertx();
    }

    @AfterEach
    void tearDown() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /**
     * A server on 127.0.0.1 named {@code name} that answers {@code status} with what it saw; /hang never answers.
     */
    int server(String name, int status) throws Exception {
        HttpServer s = vertx.createHttpServer(new io.vertx.core.http.HttpServerOptions()
                .setMaxInitialLineLength(64 * 1024)).requestHandler(req -> {
            if (req.path().equals("/hang")) {
                return;
            }
            req.body().onSuccess(body -> req.response()
                    .setStatusCode(status).putHeader("x-served-by", name)
                    .putHeader("x-seen-host", String.valueOf(req.authority()))
                    .putHeader("x-seen-path", req.uri())
                    .putHeader("x-seen-proxy-connection", String.valueOf(req.getHeader("proxy-connection")))
                    .putHeader("x-seen-attempt", String.valueOf(req.getHeader("x-envoy-attempt-count")))
                    .end(name + ":" + body.toString()));
        });
        return s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    Mesh mesh(String config, int proxyPort) throws Exception {
        Path file = dir.resolve("mesh.yaml");
        Files.writeString(file, config);
        DefaultMesh m = (DefaultMesh) Mesh.create(vertx, new MeshOptions().setWorkloadName("productpage-v1")
                .setApp("productpage").setVersion("v1").setConfigFile(file.toString()).setAdminPort(-1)
                .setHttpProxyPort(proxyPort));
        m.addObserver(recorded::add);
        m.start().await(10, TimeUnit.SECONDS);
        mesh = m;
        return m;
    }

    Proxy proxy() {
        return new Proxy(Proxy.Type.HTTP, new InetSocketAddress("127.0.0.1", mesh.httpProxyPort()));
    }

    /** What {@code HttpURLConnection} gets for {@code method} to {@code url} through the proxy. */
    record Answer(int status, Map<String, List<String>> headers, String body) {
        String header(String name) {
            return headers.entrySet().stream().filter(e -> name.equalsIgnoreCase(e.getKey())).findFirst()
                    .map(e -> e.getValue().get(0)).orElse(null);
        }
    }

    Answer urlConnection(String method, String url, String body) throws IOException {
        HttpURLConnection c = (HttpURLConnection) URI.create(url).toURL().openConnection(proxy());
        c.setRequestMethod(method);
        c.setRequestProperty("x-caller", "legacy");
        if (body != null) {
            c.setDoOutput(true);
            try (OutputStream out = c.getOutputStream()) {
                out.write(body.getBytes(StandardCharsets.UTF_8));
            }
        }
        int status = c.getResponseCode();
        InputStream in = status >= 400 ? c.getErrorStream() : c.getInputStream();
        String text = in == null ? "" : new String(in.readAllBytes(), StandardCharsets.UTF_8);
        return new Answer(status, c.getHeaderFields(), text);
    }

    StreamInfo lastRecorded() throws Exception {
        for (int i = 0; i < 100 && recorded.isEmpty(); i++) {
            Thread.sleep(20);
        }
        return recorded.get(recorded.size() - 1);
    }

    @Test
    void anHttpUrlConnectionThroughTheProxyIsRoutedByTheMesh() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), 0);
        assertTrue(mesh.httpProxyPort() > 0);

        Answer r = urlConnection("POST", "http://reviews:9080/reviews/0?user=jason", "hello");
        assertEquals(200, r.status());
        assertEquals("reviews-a:hello", r.body());
        assertEquals("reviews:9080", r.header("x-seen-host"));
        assertEquals("/reviews/0?user=jason", r.header("x-seen-path"), "origin form upstream, as a sidecar sends");
        assertEquals("null", r.header("x-seen-proxy-connection"), "the hop's own headers stop at the proxy");
        assertEquals("1", r.header("x-seen-attempt"), "the virtual host's include_request_attempt_count");
        assertTrue(r.header("x-envoy-upstream-service-time") != null);
        StreamInfo info = lastRecorded();
        assertEquals(StreamInfo.Direction.OUTBOUND, info.direction());
        assertEquals("outbound|9080||reviews.default.svc.cluster.local", info.upstreamCluster());
        assertEquals(200, info.responseCode());

        // a host the port's routes do not know: the router's own 404 (NR), as a sidecar answers it
        assertEquals(404, urlConnection("GET", "http://ratings:9080/", null).status());
        // HEAD: the head alone
        Answer head = urlConnection("HEAD", "http://reviews:9080/reviews/0", null);
        assertEquals(200, head.status());
        assertEquals("", head.body());
    }

    @Test
    void istiosDefaultRetryHidesAFailingInstanceFromAProxiedClient() throws Exception {
        int bad = server("reviews-bad", 503);
        int good = server("reviews-good", 200);
        mesh(MeshWebClientTest.config(MeshWebClientTest.ISTIO_RETRY, bad, good), 0);
        Map<String, Integer> seen = new HashMap<>();
        for (int i = 0; i < 6; i++) {
            Answer r = urlConnection("GET", "http://reviews:9080/reviews/" + i, null);
            assertEquals(200, r.status(), "request " + i);
            seen.merge(r.header("x-served-by"), 1, Integer::sum);
        }
        assertEquals(Map.of("reviews-good", 6), seen);
        assertTrue(recorded.stream().anyMatch(s -> s.attemptCount() == 2));
    }

    @Test
    void theJdkClientWithAProxySelectorGoesThroughItToo() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), 0);
        HttpClient jdk = HttpClient.newBuilder()
                .proxy(ProxySelector.of(new InetSocketAddress("127.0.0.1", mesh.httpProxyPort()))).build();
        HttpResponse<String> r = jdk.send(HttpRequest.newBuilder(URI.create("http://reviews:9080/x")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode());
        assertEquals("reviews-a:", r.body());
        assertEquals("outbound|9080||reviews.default.svc.cluster.local", lastRecorded().upstreamCluster());
    }

    /** Sends {@code request} as it is to the proxy and returns its answer's status line. */
    String raw(String request) throws IOException {
        try (Socket s = new Socket("127.0.0.1", mesh.httpProxyPort())) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write(request.getBytes(StandardCharsets.US_ASCII));
            StringBuilder line = new StringBuilder();
            for (int b = s.getInputStream().read(); b >= 0 && b != '\r'; b = s.getInputStream().read()) {
                line.append((char) b);
            }
            return line.toString();
        }
    }

    @Test
    void whatAProxyIsNotAskedForIsRefusedWithAReason() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), 0);
        // origin form names no host: not a request for a proxy
        assertEquals("HTTP/1.1 400 Bad Request", raw("GET /reviews/0 HTTP/1.1\r\nhost: reviews:9080\r\n\r\n"));
        // the tunnel of an HTTPS request
        assertEquals("HTTP/1.1 501 Not Implemented", raw("CONNECT reviews:443 HTTP/1.1\r\nhost: reviews:443\r\n\r\n"));
        // an upgrade
        assertEquals("HTTP/1.1 501 Not Implemented", raw("GET http://reviews:9080/ws HTTP/1.1\r\nhost: reviews:9080"
                + "\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n"));
        // h2c too: the proxy speaks HTTP/1.1
        assertEquals("HTTP/1.1 501 Not Implemented", raw("GET http://reviews:9080/ HTTP/1.1\r\nhost: reviews:9080"
                + "\r\nconnection: upgrade, HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAAQAAP__"
                + "\r\n\r\n"));
        // a URL it cannot read: answered, not left hanging
        assertEquals("HTTP/1.1 400 Bad Request", raw("GET http://reviews:x/ HTTP/1.1\r\nhost: reviews\r\n\r\n"));
        assertFalse(recorded.stream().anyMatch(s -> s.upstreamCluster() != null), "none went upstream");
    }

    @Test
    void aRequestBeforeTheMeshHasAConfigurationIsAnswered503() throws Exception {
        // a control plane that is not there: the mesh starts, and waits for its first configuration
        mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("productpage-v1").setAdminPort(-1)
                .setXdsAddress("127.0.0.1:1").setXdsInitialFetchTimeoutSeconds(60).setHttpProxyPort(0));
        mesh.start();
        for (int i = 0; i < 250 && mesh.httpProxyPort() < 0; i++) {
            Thread.sleep(20);
        }
        Answer r = urlConnection("GET", "http://reviews:9080/reviews/0", null);
        assertEquals(503, r.status());
        assertTrue(r.body().contains("configuration"), r.body());
    }

    @Test
    void aPassedThroughRequestWhoseConnectFailsHasItsConnectionClosedWithNoAnswer() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), 0);
        int closed;
        try (var socket = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            closed = socket.getLocalPort();
        }
        // a port with no listener: a sidecar relays it as bytes, and its tcp_proxy closes the caller's connection when
        // its own connect fails (Envoy's tcp_proxy.cc, Filter::onInitFailure), with no HTTP answer
        try (Socket s = new Socket("127.0.0.1", mesh.httpProxyPort())) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write(("GET http://127.0.0.1:" + closed + "/x HTTP/1.1\r\nhost: 127.0.0.1:" + closed
                    + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            assertEquals("", new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII));
        }
        StreamInfo info = lastRecorded();
        assertEquals("PassthroughCluster", info.upstreamCluster());
        assertTrue(info.responseFlags().contains(dev.inmesh.runtime.stats.ResponseFlag.UPSTREAM_CONNECTION_FAILURE),
                info.toString());
        assertEquals(0, info.responseCode(), info.toString());
    }

    @Test
    void aLongUrlPassesAsThroughASidecar() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), 0);
        String path = "/reviews/" + "x".repeat(10_000);
        Answer r = urlConnection("GET", "http://reviews:9080" + path, null);
        assertEquals(200, r.status());
        assertEquals(path, r.header("x-seen-path"));
    }

    @Test
    void aCallerThatLeavesResetsItsRequestThroughTheMesh() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), 0);
        try (Socket s = new Socket("127.0.0.1", mesh.httpProxyPort())) {
            s.getOutputStream().write("GET http://reviews:9080/hang HTTP/1.1\r\nhost: reviews:9080\r\n\r\n"
                    .getBytes(StandardCharsets.US_ASCII));
            s.getOutputStream().flush();
            Thread.sleep(300); // the request is upstream, its answer never comes
        }
        StreamInfo info = lastRecorded();
        assertTrue(info.responseFlags().contains(dev.inmesh.runtime.stats.ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION),
                info.responseFlags().toString());
    }

    @Test
    void offByDefaultAndClosedWithTheMesh() throws Exception {
        int a = server("reviews-a", 200);
        mesh(MeshWebClientTest.config("", a), -1);
        assertEquals(-1, mesh.httpProxyPort());
        mesh.close().await(10, TimeUnit.SECONDS);
        mesh = null;

        Mesh m = mesh(MeshWebClientTest.config("", a), 0);
        int port = m.httpProxyPort();
        m.close().await(10, TimeUnit.SECONDS);
        mesh = null;
        boolean refused = refused(port);
        for (int i = 0; i < 100 && !refused; i++) { // the listening socket goes on the event loop, just after
            Thread.sleep(20);
            refused = refused(port);
        }
        assertTrue(refused, "the port is let go with the mesh");
    }

    private static boolean refused(int port) {
        try (Socket s = new Socket("127.0.0.1", port)) {
            return false;
        } catch (IOException e) {
            return true;
        }
    }
}
