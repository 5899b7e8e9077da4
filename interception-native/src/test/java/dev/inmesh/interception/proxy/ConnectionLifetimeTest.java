package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2ChannelDuplexHandler;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2GoAwayFrame;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.util.ReferenceCountUtil;
import io.vertx.core.Vertx;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The connection lifetimes of the standalone proxy's connection managers, as Envoy's: {@code idle_timeout} drains a
 * connection without active requests, {@code max_connection_duration} one that lived that long and
 * {@code max_requests_per_connection} one that took that many requests (HTTP/1: {@code connection: close}, then the
 * connection closes; h2c: GOAWAY), {@code max_stream_duration} ends a request that lasts longer, and
 * {@code request_timeout} and {@code request_headers_timeout} one not read in time; each counted in the connection
 * manager's {@code http.<stat_prefix>.*} statistics.
 */
@Timeout(30)
class ConnectionLifetimeTest {
    @TempDir
    Path dir;
    private Vertx backends;
    private int backend;
    private StandaloneProxy proxy;
    private PrometheusMeterRegistry registry;

    @BeforeEach
    void setUp() throws Exception {
        backends = Vertx.vertx();
        // /slow?ms=N answers after N ms; anything else at once
        backend = backends.createHttpServer().requestHandler(req -> {
            String ms = req.getParam("ms");
            if (ms == null) {
                req.response().end("ok");
            } else {
                backends.setTimer(Long.parseLong(ms), id -> req.response().end("slow"));
            }
        }).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    @AfterEach
    void tearDown() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        backends.close().await(10, TimeUnit.SECONDS);
    }

    /**
     * Starts the proxy with one listener (stat prefix {@code life}) whose connection manager has {@code options}, and
     * {@code routes} before its route of hosts {@code svc} to cluster c; returns its port.
     */
    private int start(String options, String routes) throws Exception {
        int port = LoopbackProxy.freePort();
        Path config = dir.resolve("proxy.yaml");
        // the listener of Http1RequestsTest, with the extra routes first
        String listener = Http1RequestsTest.listener("life", port, options)
                .replace("\n              routes:\n", "\n              routes:" + routes + "\n");
        Files.writeString(config, "static_resources:\n  listeners:\n" + listener + Http1RequestsTest.clusterC(backend));
        registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        MeshMetrics metrics = MeshMetrics.create(registry, WorkloadInfo.UNKNOWN);
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(config, -1, -1, 1, metrics::record,
                AdminHook.NONE).withStats(metrics::tcpConnection, metrics::upstream)
                .withDownstreamStats(metrics::connectionManager, metrics::listener));
        return port;
    }

    /** The connection manager's statistic {@code name}, once it is {@code expected} (or after 15 s, as it is then). */
    private double stat(String name, double expected) throws InterruptedException {
        double v = -1;
        for (long deadline = System.nanoTime() + 15_000_000_000L; System.nanoTime() < deadline; Thread.sleep(20)) {
            var g = registry.find("envoy_http_" + name).tag("http_conn_manager_prefix", "life").gauge();
            v = g == null ? -1 : g.value();
            if (v == expected) {
                break;
            }
        }
        return v;
    }

    /** The connection manager's {@code downstream_rq_4xx}. */
    private double answered4xx() {
        var g = registry.find("envoy_http_downstream_rq_xx").tag("http_conn_manager_prefix", "life")
                .tag("response_code_class", "4xx").gauge();
        return g == null ? -1 : g.value();
    }

    /** Reads one response (its head, and a body of its content-length); null when the connection closed first. */
    private static String response(InputStream in) throws Exception {
        ByteArrayOutputStream head = new ByteArrayOutputStream();
        while (!head.toString(StandardCharsets.US_ASCII).endsWith("\r\n\r\n")) {
            int b = in.read();
            if (b < 0) {
                return head.size() == 0 ? null : head.toString(StandardCharsets.US_ASCII);
            }
            head.write(b);
        }
        String h = head.toString(StandardCharsets.US_ASCII);
        int length = 0;
        for (String line : h.split("\r\n")) {
            if (line.toLowerCase(java.util.Locale.ROOT).startsWith("content-length:")) {
                length = Integer.parseInt(line.substring(15).trim());
            }
        }
        return h + new String(in.readNBytes(length), StandardCharsets.US_ASCII);
    }

    /** Whether the proxy closed the connection: a read that ends (or is reset) within 5 s. */
    private static boolean closed(Socket s) throws Exception {
        s.setSoTimeout(5000);
        try {
            return s.getInputStream().read() < 0;
        } catch (SocketException reset) {
            return true;
        }
    }

    private static Socket connect(int port) throws Exception {
        Socket s = new Socket("127.0.0.1", port);
        s.setSoTimeout(5000);
        return s;
    }

    /** Sends a GET for {@code path} and reads its response. */
    private static String get(Socket s, String path) throws Exception {
        send(s, path);
        return response(s.getInputStream());
    }

    /**
     * Reads the answer to a request whose first byte was sent at {@code sentNanos}: 408 with {@code body} and
     * {@code connection: close}, not before the timeouts of 0.3 s (nor long after), then the connection's end.
     */
    private static void answered408AndClosed(Socket s, long sentNanos, String body) throws Exception {
        String r = response(s.getInputStream());
        long millis = (System.nanoTime() - sentNanos) / 1_000_000;
        assertTrue(r.startsWith("HTTP/1.1 408") && r.endsWith("\r\n\r\n" + body), r);
        assertTrue(r.toLowerCase().contains("connection: close"), r);
        assertTrue(millis >= 300 && millis < 2500, millis + " ms");
        assertTrue(closed(s), "closed after the answer");
    }

    /** Sends a POST for {@code path} with the first half of its 10-byte body. */
    private static void postHalfABody(Socket s, String path) throws Exception {
        s.getOutputStream().write(("POST " + path + " HTTP/1.1\r\nhost: svc\r\ncontent-length: 10\r\n\r\n12345")
                .getBytes(StandardCharsets.US_ASCII));
        s.getOutputStream().flush();
    }

    private static void send(Socket s, String path) throws Exception {
        s.getOutputStream().write(("GET " + path + " HTTP/1.1\r\nhost: svc\r\n\r\n")
                .getBytes(StandardCharsets.US_ASCII));
        s.getOutputStream().flush();
    }

    @Test
    void anIdleKeepAliveConnectionIsClosedAfterItsIdleTimeoutAndDrainAndCounted() throws Exception {
        int port = start("drain_timeout: 0.1s\n          common_http_protocol_options: {idle_timeout: 0.3s}", "");
        try (Socket s = connect(port)) {
            // from before the request: the idle time starts when the proxy ends the stream, which a client reading
            // its answer late on a loaded machine would only see after it
            long sent = System.nanoTime();
            String r = get(s, "/");
            assertTrue(r.startsWith("HTTP/1.1 200") && !r.toLowerCase().contains("connection: close"), r);
            assertTrue(closed(s), "closed once idle");
            long idleMillis = (System.nanoTime() - sent) / 1_000_000;
            assertTrue(idleMillis >= 300, "not before the idle timeout: " + idleMillis + " ms");
        }
        assertEquals(1.0, stat("downstream_cx_idle_timeout", 1.0));
    }

    @Test
    void aConnectionWithARequestInFlightIsNotIdleAndItsTimerStartsOverAfterTheAnswer() throws Exception {
        // (1 s of idle time, requests 300 ms apart: a loaded machine's late wake-up stays well within it)
        int port = start("drain_timeout: 0.1s\n          common_http_protocol_options: {idle_timeout: 1s}", "");
        try (Socket s = connect(port)) {
            String r = get(s, "/slow?ms=1500"); // longer than the idle timeout
            assertTrue(r.startsWith("HTTP/1.1 200") && r.endsWith("slow"), r);
            assertFalse(r.toLowerCase().contains("connection: close"), r);
            // requests 300 ms apart, for longer than the idle timeout: each starts the idle time over
            for (int i = 0; i < 5; i++) {
                Thread.sleep(300);
                r = get(s, "/");
                assertTrue(r != null && r.startsWith("HTTP/1.1 200") && r.endsWith("ok"), String.valueOf(r));
            }
        }
        assertEquals(0.0, stat("downstream_cx_idle_timeout", 0.0));
    }

    @Test
    void theLastAllowedRequestOfAnHttp1ConnectionIsAnsweredWithConnectionCloseAndEndsIt() throws Exception {
        int port = start("common_http_protocol_options: {max_requests_per_connection: 2}", "");
        try (Socket s = connect(port)) {
            String first = get(s, "/");
            assertTrue(first.startsWith("HTTP/1.1 200") && !first.toLowerCase().contains("connection: close"),
                    first);
            String second = get(s, "/");
            assertTrue(second.startsWith("HTTP/1.1 200") && second.toLowerCase().contains("connection: close"),
                    second);
            assertTrue(closed(s), "closed after its second answer");
        }
        assertEquals(1.0, stat("downstream_cx_max_requests_reached", 1.0));
    }

    @Test
    void aConnectionPastItsMaxConnectionDurationDrains() throws Exception {
        // (1 s: the busy connection's request must be read before its duration runs out, or the drain finds it
        // without one and closes it at once)
        int port = start("drain_timeout: 0.1s\n          common_http_protocol_options: {max_connection_duration: 1s}",
                "");
        try (Socket busy = connect(port); Socket idle = connect(port)) {
            String r = get(busy, "/slow?ms=2000"); // answered after the connection's duration ran out
            assertTrue(r.startsWith("HTTP/1.1 200") && r.toLowerCase().contains("connection: close"), r);
            assertTrue(closed(busy), "the answer ended the connection");
            // a connection without a request closes with its drain
            assertTrue(closed(idle), "the idle one closed too");
        }
        assertEquals(2.0, stat("downstream_cx_max_duration_reached", 2.0));
    }

    @Test
    void aRequestPastItsMaxStreamDurationIsAnswered504WhenWholeAnd408WhileItsBodyIsStillComing() throws Exception {
        int port = start("common_http_protocol_options: {max_stream_duration: 0.3s}", "");
        try (Socket s = connect(port)) {
            long sent = System.nanoTime();
            String r = get(s, "/slow?ms=3000");
            long millis = (System.nanoTime() - sent) / 1_000_000;
            assertTrue(r.startsWith("HTTP/1.1 504") && r.endsWith("downstream duration timeout"), r);
            assertTrue(millis >= 300 && millis < 2500, millis + " ms");
        }
        try (Socket s = connect(port)) {
            postHalfABody(s, "/slow?ms=3000"); // the request is not whole when its time runs out
            String r = response(s.getInputStream());
            assertTrue(r.startsWith("HTTP/1.1 408") && r.endsWith("downstream duration timeout"), r);
        }
        assertEquals(2.0, stat("downstream_rq_max_duration_reached", 2.0));
    }

    @Test
    void aRoutesOwnZeroMaxStreamDurationLiftsTheConnectionManagers() throws Exception {
        int port = start("common_http_protocol_options: {max_stream_duration: 0.3s}",
                "\n              - match: {prefix: /slow}"
                + "\n                route: {cluster: c, max_stream_duration: {max_stream_duration: 0s}}");
        try (Socket s = connect(port)) {
            String r = get(s, "/slow?ms=600");
            assertTrue(r.startsWith("HTTP/1.1 200") && r.endsWith("slow"), r);
            r = get(s, "/other?ms=600"); // the connection manager's limit, on the other route
            assertTrue(r.startsWith("HTTP/1.1 504") && r.endsWith("downstream duration timeout"), r);
        }
        assertEquals(1.0, stat("downstream_rq_max_duration_reached", 1.0));
    }

    @Test
    void aRequestWhoseBodyComesSlowerThanItsRequestTimeoutIsAnswered408AndCounted() throws Exception {
        int port = start("request_timeout: 0.3s", "");
        try (Socket s = connect(port)) {
            long sent = System.nanoTime();
            postHalfABody(s, "/slow?ms=3000"); // then nothing: the request is not whole when its time runs out
            answered408AndClosed(s, sent, "request timeout"); // the rest of the body is not a request
        }
        try (Socket s = connect(port)) {
            long sent = System.nanoTime();
            // a head that never ends: request_timeout covers it too (request_headers_timeout is unset)
            s.getOutputStream().write("GET / HTTP/1.1\r\nhost: svc\r\n".getBytes(StandardCharsets.US_ASCII));
            s.getOutputStream().flush();
            answered408AndClosed(s, sent, "request timeout");
        }
        assertEquals(2.0, stat("downstream_rq_timeout", 2.0));
        assertEquals(0.0, stat("downstream_rq_header_timeout", 0.0));
    }

    @Test
    void aWholeRequestIsNotCutByItsRequestTimeoutThoughItsAnswerComesLater() throws Exception {
        // (1 s: the two parts of a body sent 200 ms apart stay well within it on a loaded machine)
        int port = start("request_timeout: 1s", "");
        try (Socket s = connect(port)) {
            // whole at once, answered after the timeout: the timer stopped when the request was whole
            String r = get(s, "/slow?ms=1500");
            assertTrue(r.startsWith("HTTP/1.1 200") && r.endsWith("slow"), r);
            // its body in two parts within the timeout, answered after it
            Thread.sleep(1200); // the connection's idle time before a request does not count
            postHalfABody(s, "/slow?ms=1500");
            Thread.sleep(200);
            s.getOutputStream().write("67890".getBytes(StandardCharsets.US_ASCII));
            s.getOutputStream().flush();
            r = response(s.getInputStream());
            assertTrue(r.startsWith("HTTP/1.1 200") && r.endsWith("slow"), r);
            assertFalse(r.toLowerCase().contains("connection: close"), r);
        }
        assertEquals(0.0, stat("downstream_rq_timeout", 0.0));
    }

    @Test
    void aHeadDribbledSlowerThanItsRequestHeadersTimeoutIsAnswered408AndTheConnectionCloses() throws Exception {
        int port = start("request_headers_timeout: 0.3s", "");
        try (Socket s = connect(port)) {
            Thread.sleep(400); // the timer runs from the request's first byte, not from the connection's start
            String r = get(s, "/slow?ms=500"); // a whole head: its answer may take longer
            assertTrue(r.startsWith("HTTP/1.1 200") && r.endsWith("slow"), r);
            // a line end after a request begins none, as in Envoy's codec
            s.getOutputStream().write("\r\n".getBytes(StandardCharsets.US_ASCII));
            s.getOutputStream().flush();
            Thread.sleep(400);
            long sent = System.nanoTime();
            s.getOutputStream().write("GET / HTTP/1.1\r\nhost: svc\r\n".getBytes(StandardCharsets.US_ASCII));
            s.getOutputStream().flush();
            Thread.sleep(100);
            s.getOutputStream().write("x-slow: 1\r\n".getBytes(StandardCharsets.US_ASCII)); // still not whole
            s.getOutputStream().flush();
            answered408AndClosed(s, sent, "request header timeout");
        }
        assertEquals(1.0, stat("downstream_rq_header_timeout", 1.0));
        assertEquals(0.0, stat("downstream_rq_timeout", 0.0));
    }

    /** Sends {@code text} as it is. */
    private static void write(Socket s, String text) throws Exception {
        s.getOutputStream().write(text.getBytes(StandardCharsets.US_ASCII));
        s.getOutputStream().flush();
    }

    @Test
    void aHeadStillArrivingIsAnswered408ByTheStreamIdleTimeoutFromItsFirstByteThoughItTrickles() throws Exception {
        // as Envoy's HTTP/1 codec: the stream begins with the request's first byte, its idle timer with it, and the
        // bytes of a head not whole yet are not stream activity
        int port = start("stream_idle_timeout: 0.3s", "");
        try (Socket s = connect(port)) {
            long sent = System.nanoTime();
            write(s, "GET / HTTP/1.1\r\nhost: svc\r\n");
            for (int i = 0; i < 3; i++) {
                Thread.sleep(100);
                write(s, "x-" + i + ": 1\r\n"); // still not whole
            }
            answered408AndClosed(s, sent, "stream timeout");
        }
        assertEquals(1.0, stat("downstream_rq_idle_timeout", 1.0));
        assertEquals(1.0, answered4xx());
    }

    @Test
    void aPipelinedHeadArrivingWhileAStreamedRequestIsAnsweredIsTimedFromThatAnswer() throws Exception {
        // as Envoy's HTTP/1 codec, which reads the next request only once the one before is answered: a head that
        // trickles in while a request whose body was streamed waits for its answer gets no 408 before that answer
        int port = start("request_headers_timeout: 0.3s", "");
        try (Socket s = connect(port)) {
            assertTrue(get(s, "/").startsWith("HTTP/1.1 200")); // (the first read of a connection is sniffed)
            postHalfABody(s, "/slow?ms=1000"); // its body streamed: not read with its head
            Thread.sleep(100);
            write(s, "67890");
            Thread.sleep(100);
            write(s, "GET /b HTTP/1.1\r\nHo"); // pipelined, never whole
            String r = response(s.getInputStream());
            // the proxy timed the pipelined head from when it sent this answer, a moment before it was read here
            long answered = System.nanoTime() - TimeUnit.MILLISECONDS.toNanos(20);
            assertTrue(r.startsWith("HTTP/1.1 200") && r.endsWith("slow"), r);
            // the pipelined head, timed from the answer before it
            answered408AndClosed(s, answered, "request header timeout");
        }
        assertEquals(1.0, stat("downstream_rq_header_timeout", 1.0));
    }

    @Test
    void strayWhitespaceAndControlBytesAfterARequestBeginNoneAndTheConnectionStaysIdle() throws Exception {
        // as the decoder, which skips them before a request (Envoy's codec begins no stream with them either): no
        // 408 stream timeout, and the idle connection closes at its idle_timeout
        int port = start("stream_idle_timeout: 0.3s\n          drain_timeout: 0.1s\n"
                + "          common_http_protocol_options: {idle_timeout: 0.8s}", "");
        try (Socket s = connect(port)) {
            assertTrue(get(s, "/").startsWith("HTTP/1.1 200"));
            s.getOutputStream().write(new byte[] {' ', '\t', 0, 0x0b, 0x1f});
            s.getOutputStream().flush();
            assertNull(response(s.getInputStream()), "closed without an answer");
        }
        assertEquals(0.0, stat("downstream_rq_idle_timeout", 0.0));
        assertEquals(1.0, stat("downstream_cx_idle_timeout", 1.0));
    }

    @Test
    void aConnectionWhoseHeadIsStillArrivingIsNotIdle() throws Exception {
        // as Envoy's: the stream the first byte began stops the connection's idle timer
        int port = start("drain_timeout: 0.1s\n          common_http_protocol_options: {idle_timeout: 0.3s}", "");
        headTakingLongerThanTheLimitIsServed(port, false);
        assertEquals(1.0, stat("downstream_cx_idle_timeout", 1.0));
    }

    @Test
    void aConnectionAtItsMaxDurationWaitsForTheRequestWhoseHeadIsArriving() throws Exception {
        // as Envoy's drain of an HTTP/1 connection: it closes once its stream, begun with the first byte, ended
        int port = start("drain_timeout: 0.1s\n          common_http_protocol_options: {max_connection_duration: 0.3s}",
                "");
        headTakingLongerThanTheLimitIsServed(port, true);
        assertEquals(1.0, stat("downstream_cx_max_duration_reached", 1.0));
    }

    /**
     * Sends a head that takes 0.8 s to arrive, longer than the connection's limit of 0.3 s and its drain: it is
     * answered ({@code connection: close} or not, as {@code closing} says), and the connection then closes.
     */
    private static void headTakingLongerThanTheLimitIsServed(int port, boolean closing) throws Exception {
        try (Socket s = connect(port)) {
            write(s, "GET / HTTP/1.1\r\n");
            Thread.sleep(800);
            write(s, "host: svc\r\n\r\n");
            String r = response(s.getInputStream());
            assertTrue(r != null && r.startsWith("HTTP/1.1 200") && r.endsWith("ok"), String.valueOf(r));
            assertEquals(closing, r.toLowerCase().contains("connection: close"), r);
            assertTrue(closed(s), "closed after its answer (once idle, without connection: close)");
        }
    }

    @Test
    void aClientThatClosesMidHeadResetsItsStreamWhichIsNoProtocolError() throws Exception {
        int port = start("", "");
        try (Socket s = connect(port)) {
            s.close(); // before any byte: no request
        }
        try (Socket s = connect(port)) {
            write(s, "GET /partial HTTP/1.1\r\nhost: svc\r\n");
            Thread.sleep(100);
        }
        try (Socket s = connect(port)) {
            write(s, "GET /par"); // within the request line
            Thread.sleep(100);
        }
        assertEquals(2.0, stat("downstream_rq_rx_reset", 2.0));
        assertEquals(0.0, stat("downstream_cx_protocol_error", 0.0));
        assertEquals(0.0, answered4xx());
    }

    /** An h2c client connection, and the handler that opens its streams. */
    record H2cClient(Channel channel, Http2ChannelDuplexHandler frames) {
        /** Connects to {@code port}; each frame read goes to {@code reader}, and is released after it. */
        static H2cClient connect(EventLoopGroup group, int port, java.util.function.Consumer<Object> reader)
                throws InterruptedException {
            Http2ChannelDuplexHandler frames = new Http2ChannelDuplexHandler() {
                @Override
                public void channelRead(ChannelHandlerContext ctx, Object msg) {
                    try {
                        reader.accept(msg);
                    } finally {
                        ReferenceCountUtil.release(msg);
                    }
                }
            };
            Channel ch = new Bootstrap().group(group).channel(NioSocketChannel.class)
                    .handler(new ChannelInitializer<Channel>() {
                        @Override
                        protected void initChannel(Channel c) {
                            c.pipeline().addLast(Http2FrameCodecBuilder.forClient().build(), frames);
                        }
                    }).connect("127.0.0.1", port).sync().channel();
            return new H2cClient(ch, frames);
        }
    }

    /**
     * Opens an h2c connection to {@code port}, sends {@code requests} GETs on it one after the other (each once the
     * one before was answered), and records what the proxy sends until it closes the connection: each answer's headers
     * ({@code headers 200 on 3}) and each GOAWAY ({@code goaway 3}), with the time of each in ms since the connect.
     */
    private static void h2c(int port, int requests, List<String> frames, List<Long> times) throws Exception {
        h2c(port, "/", requests, frames, times);
    }

    /** As {@link #h2c(int, int, List, List)}, each GET for {@code path}. */
    private static void h2c(int port, String path, int requests, List<String> frames, List<Long> times)
            throws Exception {
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        try {
            long start = System.nanoTime();
            java.util.concurrent.Semaphore answered = new java.util.concurrent.Semaphore(0);
            H2cClient client = H2cClient.connect(group, port, msg -> {
                if (msg instanceof Http2HeadersFrame h) {
                    frames.add("headers " + h.headers().status() + " on " + h.stream().id());
                    times.add((System.nanoTime() - start) / 1_000_000);
                    answered.release();
                } else if (msg instanceof Http2GoAwayFrame g) {
                    frames.add("goaway " + g.lastStreamId());
                    times.add((System.nanoTime() - start) / 1_000_000);
                }
            });
            Channel ch = client.channel();
            for (int i = 0; i < requests; i++) {
                ch.writeAndFlush(new DefaultHttp2HeadersFrame(new DefaultHttp2Headers().method("GET").path(path)
                        .scheme("http").authority("svc"), true).stream(client.frames().newStream())).sync();
                assertTrue(answered.tryAcquire(10, TimeUnit.SECONDS), "answered: " + frames);
            }
            assertTrue(ch.closeFuture().await(10, TimeUnit.SECONDS), "closed: " + frames);
        } finally {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        }
    }

    @Test
    void anH2cStreamWhoseBodyComesSlowerThanItsRequestTimeoutIsAnswered408() throws Exception {
        int port = start("request_timeout: 0.3s", "");
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        try {
            var status = new java.util.concurrent.CompletableFuture<String>();
            H2cClient client = H2cClient.connect(group, port, msg -> {
                if (msg instanceof Http2HeadersFrame h) {
                    status.complete(String.valueOf(h.headers().status()));
                }
            });
            Channel ch = client.channel();
            var stream = client.frames().newStream();
            long sent = System.nanoTime();
            // the head and part of the body; the rest never comes
            ch.write(new DefaultHttp2HeadersFrame(new DefaultHttp2Headers().method("POST").path("/slow?ms=3000")
                    .scheme("http").authority("svc"), false).stream(stream));
            ch.writeAndFlush(new io.netty.handler.codec.http2.DefaultHttp2DataFrame(
                    io.netty.buffer.Unpooled.copiedBuffer("12345", StandardCharsets.US_ASCII), false).stream(stream))
                    .sync();
            assertEquals("408", status.get(10, TimeUnit.SECONDS));
            long millis = (System.nanoTime() - sent) / 1_000_000;
            assertTrue(millis >= 280 && millis < 2500, millis + " ms");
            ch.close().sync();
        } finally {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        }
        assertEquals(1.0, stat("downstream_rq_timeout", 1.0));
    }

    @Test
    void anIdleH2cConnectionGetsEnvoysTwoGoawaysAndCloses() throws Exception {
        int port = start("drain_timeout: 0.2s\n          common_http_protocol_options: {idle_timeout: 0.3s}", "");
        List<String> frames = new CopyOnWriteArrayList<>();
        List<Long> times = new CopyOnWriteArrayList<>();
        h2c(port, 1, frames, times);
        // the shutdown notice (the highest stream id: a stream racing with it is still taken), then after the drain
        // timeout the final GOAWAY with the one stream taken (Netty's client numbers it 3)
        String stream = frames.get(0).substring(frames.get(0).lastIndexOf(' ') + 1);
        assertEquals(List.of("headers 200 on " + stream, "goaway 2147483647", "goaway " + stream), frames);
        // (as the client saw them: a frame may be read some ms after it was sent, and on a busy machine the response
        // read late shortens the gap it measures, so the bounds only tell a timer's wait from none)
        assertTrue(times.get(1) - times.get(0) >= 200, "idle first: " + times);
        assertTrue(times.get(2) - times.get(1) >= 100, "the drain timeout between the two: " + times);
        assertEquals(1.0, stat("downstream_cx_idle_timeout", 1.0));
    }

    @Test
    void anH2cConnectionDrainsWithItsLastAllowedStream() throws Exception {
        int port = start("drain_timeout: 0.2s\n          common_http_protocol_options: "
                + "{max_requests_per_connection: 2}", "");
        List<String> frames = new CopyOnWriteArrayList<>();
        List<Long> times = new CopyOnWriteArrayList<>();
        h2c(port, 2, frames, times);
        // the second stream starts the drain (its answer may come before or after the notice); the final GOAWAY
        // names it as the last stream taken
        String last = frames.stream().filter(f -> f.startsWith("headers")).reduce((a, b) -> b).orElseThrow();
        String stream = last.substring(last.lastIndexOf(' ') + 1);
        assertEquals(2, frames.stream().filter(f -> f.startsWith("headers 200")).count(), frames.toString());
        assertEquals(List.of("goaway 2147483647", "goaway " + stream),
                frames.stream().filter(f -> f.startsWith("goaway")).toList());
        assertEquals(1.0, stat("downstream_cx_max_requests_reached", 1.0));
    }

    @Test
    void aStreamStillOpenAtTheFinalGoawayIsAnsweredBeforeTheConnectionCloses() throws Exception {
        // the final GOAWAY refuses new streams; the one it names as taken runs on (here 3 s, well past the drain
        // timeout even on a loaded machine) and the connection closes once it is done, as Envoy's connection
        // manager closes a draining connection when its last stream ends
        int port = start("drain_timeout: 0.2s\n          common_http_protocol_options: "
                + "{max_requests_per_connection: 1}", "");
        List<String> frames = new CopyOnWriteArrayList<>();
        List<Long> times = new CopyOnWriteArrayList<>();
        h2c(port, "/slow?ms=3000", 1, frames, times);
        assertEquals(3, frames.size(), frames.toString());
        String last = frames.get(2);
        String stream = last.substring(last.lastIndexOf(' ') + 1);
        assertEquals(List.of("goaway 2147483647", "goaway " + stream, "headers 200 on " + stream), frames);
        assertTrue(times.get(2) >= 2900, "answered when the upstream answered: " + times);
        assertEquals(1.0, stat("downstream_cx_max_requests_reached", 1.0));
    }

    @Test
    void aRequestAnsweredBeforeItsBodyEndedClosesOnceTheClientClosedOrWhenDelayedCloseTimeoutRanOut() throws Exception {
        // request_timeout answers 408 while the body is still due: what the client sends next was never read, so the
        // proxy waits for the client to close first, as Envoy's delayed close, up to delayed_close_timeout
        int port = start("request_timeout: 0.3s\n          delayed_close_timeout: 0.8s", "");
        try (Socket s = connect(port)) {
            postHalfABody(s, "/slow?ms=3000");
            String first = response(s.getInputStream());
            assertTrue(first != null && first.startsWith("HTTP/1.1 408"), first);
            long answered = System.nanoTime();
            assertTrue(closed(s), "closed by the proxy");
            long waited = (System.nanoTime() - answered) / 1_000_000;
            assertTrue(waited >= 600, "closed " + waited + " ms after the answer, not the 800 ms the client had");
        }
        assertEquals(1.0, stat("downstream_cx_delayed_close_timeout", 1.0));
        // a client that closes its side once it read the answer ends the connection then, the timeout not counted
        try (Socket s = connect(port)) {
            postHalfABody(s, "/slow?ms=3000");
            String second = response(s.getInputStream());
            assertTrue(second != null && second.startsWith("HTTP/1.1 408"), second);
            s.shutdownOutput();
            assertTrue(closed(s), "closed by the proxy");
        }
        assertEquals(1.0, registry.find("envoy_http_downstream_cx_delayed_close_timeout")
                .tag("http_conn_manager_prefix", "life").gauge().value());
    }

    @Test
    void aRequestReadWholeClosesOnceItsAnswerWentOutAndZeroDelayedCloseTimeoutNeverWaitsForTheClient()
            throws Exception {
        int port = start("request_timeout: 0.3s\n          delayed_close_timeout: 0s", "");
        try (Socket s = connect(port)) {
            // connection: close on a request read whole: closed once the answer went out (Envoy 1.22 on)
            s.getOutputStream().write("GET / HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n"
                    .getBytes(StandardCharsets.US_ASCII));
            assertTrue(response(s.getInputStream()).startsWith("HTTP/1.1 200"));
            assertTrue(closed(s), "closed by the proxy");
        }
        try (Socket s = connect(port)) {
            postHalfABody(s, "/slow?ms=3000");
            assertTrue(response(s.getInputStream()).startsWith("HTTP/1.1 408"));
            long answered = System.nanoTime();
            assertTrue(closed(s), "closed by the proxy");
            long waited = (System.nanoTime() - answered) / 1_000_000;
            assertTrue(waited < 900, "0s waits for nothing: " + waited + " ms");
        }
        assertEquals(0.0, stat("downstream_cx_delayed_close_timeout", 0.0));
    }
}
