package dev.inmesh.runtime.router;

import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.hosts;
import static dev.inmesh.runtime.router.RouterRig.request;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.runtime.upstream.ClusterManager;
import io.vertx.core.http.HttpMethod;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiFunction;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Bytes an HTTP/1 upstream sends beyond its answers, as Envoy's HTTP/1 client codec takes them ({@code extraneous data
 * after response complete}, a response without a request): the answer read whole goes on, the connection is closed
 * and counted in {@code upstream_cx_protocol_error} (an unasked 408 excepted), and the next request takes a new
 * connection instead of reading those bytes as the start of its answer (a 502 UPE before).
 */
class RouterUpstreamExtraneousBytesTest {
    private final RouterRig rig = new RouterRig();
    private final io.micrometer.core.instrument.simple.SimpleMeterRegistry registry =
            new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
    private final dev.inmesh.runtime.stats.MeshMetrics metrics = dev.inmesh.runtime.stats.MeshMetrics.create(
            registry, dev.inmesh.runtime.stats.WorkloadInfo.UNKNOWN);

    @AfterEach
    void close() {
        rig.close();
    }

    private double protocolErrors() {
        var g = registry.find("envoy_cluster_upstream_cx_protocol_error").tag("cluster_name", "c").gauge();
        return g == null ? 0 : g.value();
    }

    /**
     * Calls {@code first} then, on the same router and cluster, {@code second} through an upstream that keeps its
     * connections open and answers its n-th request (from 1, over all connections) with what {@code answer} returns.
     */
    private List<RouterRig.Result> twice(RouterRequest first, RouterRequest second,
                                         BiFunction<Integer, Socket, String> answer, long pauseMillis)
            throws Exception {
        return twice(first, second, answer, pauseMillis, 2);
    }

    private List<RouterRig.Result> twice(RouterRequest first, RouterRequest second,
                                         BiFunction<Integer, Socket, String> answer, long pauseMillis,
                                         int connections) throws Exception {
        try (KeepAliveUpstream up = new KeepAliveUpstream(answer)) {
            ClusterManager clusters = rig.clusters(Cluster.builder("c", DiscoveryType.STATIC)
                    .lbPolicy(LbPolicy.ROUND_ROBIN).connectTimeout(Duration.ofSeconds(2))
                    .loadAssignment(hosts("c", up.port())).build());
            Router router = rig.router();
            router.upstreamStats(metrics::upstream);
            RouterRig.Result a = rig.call(router, first, routeToC(""), clusters);
            Thread.sleep(pauseMillis);
            RouterRig.Result b = rig.call(router, second, routeToC(""), clusters);
            assertEquals(connections, up.connections.get(), "connections the two requests took");
            return List.of(a, b);
        }
    }

    @Test
    void bytesBeyondTheContentLengthCloseTheConnectionOnceTheAnswerIsRead() throws Exception {
        List<RouterRig.Result> r = twice(get("/a"), get("/b"), (n, s) -> n == 1
                ? "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokEXTRA"
                : "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nyes", 0);
        assertEquals(200, r.get(0).status());
        assertEquals("ok", r.get(0).body());
        assertEquals(200, r.get(1).status(), r.get(1).flags());
        assertEquals("yes", r.get(1).body());
        assertEquals(1, protocolErrors());
    }

    @Test
    void aBodyAfterTheAnswerToAHeadClosesTheConnection() throws Exception {
        // as Python's http.server answers HEAD with a handler that writes the body GET writes
        List<RouterRig.Result> r = twice(request(HttpMethod.HEAD, "/a", null), get("/b"), (n, s) -> n == 1
                ? "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"
                : "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nworld", 0);
        assertEquals(200, r.get(0).status());
        assertEquals("", r.get(0).body());
        assertEquals("5", r.get(0).header("content-length"));
        assertEquals(200, r.get(1).status(), r.get(1).flags());
        assertEquals("world", r.get(1).body());
        assertEquals(1, protocolErrors());
    }

    @Test
    void anAnswerOnAnIdleConnectionClosesIt() throws Exception {
        List<RouterRig.Result> r = twice(get("/a"), get("/b"),
                okThenUnasked("HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nlate"), 500);
        assertEquals("ok", r.get(0).body());
        assertEquals(200, r.get(1).status(), r.get(1).flags());
        assertEquals("yes", r.get(1).body());
        assertEquals(1, protocolErrors());
    }

    @Test
    void anUnaskedRequestTimeoutClosesTheConnectionUncounted() throws Exception {
        // as servers close idle keep-alive connections: Envoy does not count such a 408 as a protocol error
        List<RouterRig.Result> r = twice(get("/a"), get("/b"), okThenUnasked(
                "HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"), 500);
        assertEquals("ok", r.get(0).body());
        assertEquals("yes", r.get(1).body());
        assertEquals(0, protocolErrors());
    }

    @Test
    void lineEndsBetweenAnswersAreNotExtraneous() throws Exception {
        List<RouterRig.Result> r = twice(get("/a"), get("/b"),
                (n, s) -> "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok\r\n", 0, 1);
        assertEquals("ok", r.get(0).body());
        assertEquals("ok", r.get(1).body());
        assertEquals(0, protocolErrors());
    }

    /**
     * A chunk size Netty's decoder would read wrapped in an {@code int} (4 GiB + 5 as 5) is a protocol error, as Envoy's
     * codec refuses it, rather than an answer of 5 bytes that ends early and leaves the connection to the next request,
     * whose answer would be the rest of the first body: wherever the size falls among the reads, the head goes on (as
     * Envoy's codec passes it before it parses a chunk), the response is cut there, the connection closes and the next
     * request takes another.
     */
    @Test
    void aChunkSizeNettyWouldWrapCutsTheResponseAfterItsHeadAndNothingAfterItIsAnAnswer() throws Exception {
        String smuggled = "HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nsmuggled";
        // the reads the upstream writes, 100 ms apart
        String[][] reads = {
            // the size in the read of the head
            {"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n100000005\r\nhello\r\n0\r\n\r\n" + smuggled},
            // the head across two reads, the size in the second (where the decoder read the head's start before)
            {"HTTP/1.1 200 OK\r\ntransfer-enc", "oding: chunked\r\n\r\n100000005\r\nhello\r\n0\r\n\r\n"},
            // the head across two reads, then the size line across two more: the head went on with "1000"
            {"HTTP/1.1 200 OK\r\ntransfer-enc", "oding: chunked\r\n\r\n1000", "00005\r\nhello\r\n0\r\n\r\n"},
            // after a chunk, in a later read
            {"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n", "100000005\r\nhello\r\n0\r\n\r\n"}};
        for (String[] parts : reads) {
            double before = protocolErrors();
            List<RouterRig.Result> r = twice(get("/a"), get("/b"), (n, s) -> {
                if (n > 1) {
                    return "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nyes";
                }
                for (int i = 0; i < parts.length - 1; i++) {
                    write(s, parts[i]);
                    sleep(100);
                }
                return parts[parts.length - 1];
            }, 300);
            String what = String.join("|", parts);
            assertEquals("UPE", r.get(0).flags(), what);
            assertEquals(200, r.get(0).status(), what);
            // the body the caller had, then a reset
            assertEquals("upstream_reset_after_response_started{protocol_error}", r.get(0).info().responseCodeDetails(),
                    what);
            assertEquals(200, r.get(1).status(), what);
            assertEquals("yes", r.get(1).body(), what);
            assertEquals(before + 1, protocolErrors(), what);
        }
    }

    /**
     * A header name with whitespace in it, which Envoy's codec refuses and Netty's decoder reads up to the whitespace,
     * is a protocol error in whichever read of its head it comes: the connection closes.
     */
    @Test
    void aHeaderNameWithWhitespaceInAnEarlierReadOfItsHeadIsAProtocolError() throws Exception {
        List<RouterRig.Result> r = twice(get("/a"), get("/b"), (n, s) -> {
            if (n > 1) {
                return "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nyes";
            }
            write(s, "HTTP/1.1 200 OK\r\nX Bad: 1\r\nx-go");
            sleep(100);
            return "od: 2\r\ncontent-length: 2\r\n\r\nok";
        }, 0);
        assertEquals(502, r.get(0).status());
        assertEquals("UPE", r.get(0).flags());
        assertEquals("yes", r.get(1).body());
    }

    @Test
    void chunksAcrossReadsAreReadWhole() throws Exception {
        String[] parts = {"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", "3", "\r\nab", "c\r",
            "\n10\r\n0123456789", "abcdef\r\n0\r\n", "\r\n"};
        List<RouterRig.Result> r = twice(get("/a"), get("/b"), (n, s) -> {
            for (int i = 0; i < parts.length - 1; i++) {
                write(s, parts[i]);
                sleep(30);
            }
            return parts[parts.length - 1];
        }, 0, 1);
        assertEquals("abc0123456789abcdef", r.get(0).body());
        assertEquals("abc0123456789abcdef", r.get(1).body());
        assertEquals(0, protocolErrors());
    }

    /** The first request answered "ok", then, 100 ms later, {@code unasked}; the others "yes". */
    private static BiFunction<Integer, Socket, String> okThenUnasked(String unasked) {
        return (n, s) -> {
            if (n == 1) {
                write(s, "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
                sleep(100);
                return unasked;
            }
            return "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nyes";
        };
    }

    private static void write(Socket s, String bytes) {
        try {
            s.getOutputStream().write(bytes.getBytes(StandardCharsets.ISO_8859_1));
            s.getOutputStream().flush();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * An HTTP/1 upstream on loopback that keeps each connection open and answers each request head (requests here
     * have no body) with what its function returns for the request's number over all connections, one byte a char,
     * for at most 5 s a connection.
     */
    private static final class KeepAliveUpstream implements AutoCloseable {
        private final ServerSocket server = new ServerSocket(0, 10, InetAddress.getLoopbackAddress());
        private final List<Socket> sockets = new CopyOnWriteArrayList<>();
        final AtomicInteger connections = new AtomicInteger();
        private final AtomicInteger requests = new AtomicInteger();

        KeepAliveUpstream(BiFunction<Integer, Socket, String> answer) throws IOException {
            Thread t = new Thread(() -> {
                while (!server.isClosed()) {
                    try {
                        Socket s = server.accept();
                        connections.incrementAndGet();
                        sockets.add(s);
                        Thread c = new Thread(() -> serve(s, answer, requests), "keep-alive-conn");
                        c.setDaemon(true);
                        c.start();
                    } catch (IOException e) {
                        // closed: the test ended
                    }
                }
            }, "keep-alive-upstream");
            t.setDaemon(true);
            t.start();
        }

        private static void serve(Socket s, BiFunction<Integer, Socket, String> answer, AtomicInteger requests) {
            try (s) {
                s.setSoTimeout(5_000);
                InputStream in = s.getInputStream();
                StringBuilder head = new StringBuilder();
                int b;
                while ((b = in.read()) >= 0) {
                    head.append((char) b);
                    if (head.toString().endsWith("\r\n\r\n")) {
                        head.setLength(0);
                        write(s, answer.apply(requests.incrementAndGet(), s));
                    }
                }
            } catch (IOException | RuntimeException e) {
                // the peer closed, or the test ended
            }
        }

        int port() {
            return server.getLocalPort();
        }

        @Override
        public void close() throws IOException {
            server.close();
            for (Socket s : sockets) {
                try {
                    s.close();
                } catch (SocketException e) {
                    // closed already
                }
            }
        }
    }
}
