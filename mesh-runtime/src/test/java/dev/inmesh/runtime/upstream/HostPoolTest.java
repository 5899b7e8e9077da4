package dev.inmesh.runtime.upstream;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.inmesh.api.config.cluster.CircuitBreakers;
import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.core.TcpKeepalive;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.endpoint.LbEndpoint;
import dev.inmesh.api.config.endpoint.LocalityLbEndpoints;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Per-host pools on a real Vert.x against a local server: HTTP/1.1 keep-alive and h2c. */
class HostPoolTest {
    private Vertx vertx;
    private HttpServer server;
    /** Requests to {@code /hold}, answered only when a test says so. */
    private final List<io.vertx.core.http.HttpServerRequest> held = new java.util.concurrent.CopyOnWriteArrayList<>();

    @BeforeEach
    void start() throws Exception {
        vertx = Vertx.vertx();
        server = vertx.createHttpServer(new HttpServerOptions().setHttp2ClearTextEnabled(true))
                .requestHandler(req -> {
                    if (req.path().equals("/hold")) {
                        held.add(req);
                    } else {
                        req.response().end(req.version() + " " + req.connection().remoteAddress().hostAddress());
                    }
                })
                .listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }

    @AfterEach
    void stop() throws Exception {
        vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void aHostsClientReachesItWithTheClustersProtocolAndBindAddress(boolean http2) throws Exception {
        ClusterLoadAssignment inline = new ClusterLoadAssignment("local", List.of(new LocalityLbEndpoints(null,
                List.of(new LbEndpoint(new SocketAddress("127.0.0.1", server.actualPort()), "", null, 1, null)), 1,
                0)), 140);
        Cluster cluster = Cluster.builder("local", DiscoveryType.STATIC)
                .upstreamBindAddress(new SocketAddress("127.0.0.1", 0)).loadAssignment(inline).http2(http2).build();
        ClusterManager m = ClusterManager.create(vertx, Map.of("local", cluster), Map.of());
        try {
            UpstreamCluster c = m.cluster("local");
            Host host = c.chooseHost(LbContext.NONE);
            HttpClient client = c.httpClient(host);
            assertSame(client, c.httpClient(host));
            String body = onEventLoop(vertx, () -> client.request(HttpMethod.GET, "/")
                    .compose(req -> req.send().compose(resp -> resp.body())))
                    .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS).toString();
            assertEquals((http2 ? "HTTP_2" : "HTTP_1_1") + " 127.0.0.1", body);
            assertEquals(1, c.circuitBreakers().openConnections());
        } finally {
            m.close();
        }
    }

    /**
     * An HTTP/2 cluster's TLS connection to a server that selects http/1.1 through ALPN carries no request over
     * HTTP/1.1: the cluster's codec is HTTP/2, as Envoy's, whose h2 such a server could not read; the connection is
     * closed, a connect failure. One that selects no protocol is spoken to over HTTP/1.1, as before.
     */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void anHttp2ClustersTlsConnectionThatNegotiatedNoH2CarriesNoRequest(boolean serverAlpn) throws Exception {
        var ca = TestCertificates.ca("alpn-ca");
        var own = TestCertificates.issue(ca, "web", List.of("web"), List.of());
        HttpServer http1 = vertx.createHttpServer(new HttpServerOptions().setSsl(true).setUseAlpn(serverAlpn)
                        .setAlpnVersions(List.of(io.vertx.core.http.HttpVersion.HTTP_1_1))
                        .setKeyCertOptions(new io.vertx.core.net.PemKeyCertOptions()
                                .setCertValue(io.vertx.core.buffer.Buffer.buffer(own.certificatePem()))
                                .setKeyValue(io.vertx.core.buffer.Buffer.buffer(own.keyPem()))))
                .requestHandler(req -> req.response().end(req.version().name()))
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        ClusterLoadAssignment inline = new ClusterLoadAssignment("tls", List.of(new LocalityLbEndpoints(null,
                List.of(new LbEndpoint(new SocketAddress("127.0.0.1", http1.actualPort()), "", null, 1, null)), 1,
                0)), 140);
        Cluster cluster = Cluster.builder("tls", DiscoveryType.STATIC).loadAssignment(inline).http2(true)
                .tls(new dev.inmesh.api.config.cluster.UpstreamTlsContext("", null, null, ca.certificatePem(), false,
                        List.of(), List.of(), null, null)).build();
        ClusterManager m = ClusterManager.create(vertx, Map.of("tls", cluster), Map.of());
        try {
            UpstreamCluster c = m.cluster("tls");
            HttpClient client = c.httpClient(c.chooseHost(LbContext.NONE));
            var answer = onEventLoop(vertx, () -> client.request(HttpMethod.GET, "/")
                    .compose(req -> req.send().compose(resp -> resp.body())));
            answer.toCompletionStage().toCompletableFuture().handle((b, e) -> null).get(10, TimeUnit.SECONDS);
            if (serverAlpn) {
                org.junit.jupiter.api.Assertions.assertTrue(answer.failed(), () -> "answered " + answer.result());
            } else {
                // a server that selected no protocol is spoken to over HTTP/1.1, as before: Vert.x cannot speak h2
                // on it, and such a listener may be one Envoy's h2 would reach
                org.junit.jupiter.api.Assertions.assertEquals("HTTP_1_1", answer.result().toString());
            }
        } finally {
            m.close();
        }
    }

    @ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"NIO,false", "NIO,true", "EPOLL,false", "EPOLL,true",
            "IO_URING,false", "IO_URING,true"})
    void eachConnectionHasTheClustersTcpKeepaliveAndAnUpdatedClustersNewConnectionsTakeItsOwn(String transport,
                                                                                          boolean http2)
            throws Exception {
        // Envoy sets SO_KEEPALIVE and each value given on every socket it opens for the cluster
        io.vertx.core.transport.Transport t = switch (transport) {
            case "EPOLL" -> io.vertx.core.transport.Transport.EPOLL;
            case "IO_URING" -> io.vertx.core.transport.Transport.IO_URING;
            default -> io.vertx.core.transport.Transport.NIO;
        };
        org.junit.jupiter.api.Assumptions.assumeTrue(t.available(), transport + " is available");
        Vertx on = Vertx.builder().withTransport(t).build();
        ClusterManager m = ClusterManager.create(on, Map.of("local", keepalive(http2,
                new TcpKeepalive(3, 42, 7))), Map.of());
        try {
            assertEquals(new KeepaliveProbe.Options(true, 42, 7, 3), upstreamOptions(on, m.cluster("local")));

            // only a time given: the system's interval and probes
            m = m.update(Map.of("local", keepalive(http2, new TcpKeepalive(null, 60, null))), Map.of());
            KeepaliveProbe.Options system = KeepaliveProbe.system();
            assertEquals(new KeepaliveProbe.Options(true, 60, system.intervalSeconds(), system.probes()),
                    upstreamOptions(on, m.cluster("local")));

            // none: the socket keeps the system's setting (off)
            m = m.update(Map.of("local", keepalive(http2, null)), Map.of());
            assertEquals(system, upstreamOptions(on, m.cluster("local")));
        } finally {
            m.close();
            on.close().await(10, TimeUnit.SECONDS);
        }
    }

    private Cluster keepalive(boolean http2, TcpKeepalive keepalive) {
        ClusterLoadAssignment inline = new ClusterLoadAssignment("local", List.of(new LocalityLbEndpoints(null,
                List.of(new LbEndpoint(new SocketAddress("127.0.0.1", server.actualPort()), "", null, 1, null)), 1,
                0)), 140);
        return Cluster.builder("local", DiscoveryType.STATIC).loadAssignment(inline).http2(http2)
                .tcpKeepalive(keepalive).build();
    }

    /** Sends a request through the cluster's pool and reads the keep-alive of the socket it went on. */
    private KeepaliveProbe.Options upstreamOptions(Vertx on, UpstreamCluster c) throws Exception {
        HttpClient client = c.httpClient(c.chooseHost(LbContext.NONE));
        int localPort = onEventLoop(on, () -> client.request(HttpMethod.GET, "/")
                .compose(req -> req.send().compose(resp -> resp.body())
                        .map(body -> req.connection().localAddress().port())))
                .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        return KeepaliveProbe.of(localPort, server.actualPort());
    }

    @org.junit.jupiter.api.Test
    void aClusterThatUsesTheDownstreamsProtocolKeepsAPoolForEachProtocol() throws Exception {
        ClusterLoadAssignment inline = new ClusterLoadAssignment("local", List.of(new LocalityLbEndpoints(null,
                List.of(new LbEndpoint(new SocketAddress("127.0.0.1", server.actualPort()), "", null, 1, null)), 1,
                0)), 140);
        Cluster cluster = Cluster.builder("local", DiscoveryType.STATIC).loadAssignment(inline)
                .useDownstreamProtocol(true).build();
        ClusterManager m = ClusterManager.create(vertx, Map.of("local", cluster), Map.of());
        try {
            UpstreamCluster c = m.cluster("local");
            Host host = c.chooseHost(LbContext.NONE);
            for (boolean h2 : new boolean[] {true, false, true}) {
                HttpClient client = c.httpClient(host, h2);
                assertSame(client, c.httpClient(host, h2));
                String body = onEventLoop(vertx, () -> client.request(HttpMethod.GET, "/")
                        .compose(req -> req.send().compose(resp -> resp.body())))
                        .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS).toString();
                assertEquals((h2 ? "HTTP_2" : "HTTP_1_1") + " 127.0.0.1", body);
            }
            assertEquals(2, c.circuitBreakers().openConnections()); // one of each, each kept
        } finally {
            m.close();
        }
    }

    @org.junit.jupiter.api.Test
    void eachEventLoopGetsItsOwnClientWhenTheLimitsAllow() throws Exception {
        Vertx two = Vertx.vertx(new io.vertx.core.VertxOptions().setEventLoopPoolSize(2));
        try {
            HostPool pool = new HostPool(new SocketAddress("127.0.0.1", server.actualPort()));
            HostPool tight = new HostPool(new SocketAddress("127.0.0.1", server.actualPort()));
            HostPool.Settings generous = new HostPool.Settings(1000, false, null, 1024, -1);
            HostPool.Settings one = new HostPool.Settings(1000, false, null, 1, 1);
            CircuitBreakerState breakers = new CircuitBreakerState(null);
            var internal = (io.vertx.core.internal.VertxInternal) two;
            var loops = internal.nettyEventLoopGroup().iterator();
            var a = internal.contextBuilder().withEventLoop((io.netty.channel.EventLoop) loops.next()).build();
            var b = internal.contextBuilder().withEventLoop((io.netty.channel.EventLoop) loops.next()).build();
            assertEquals(false, a.nettyEventLoop() == b.nettyEventLoop(), "two contexts on two loops");
            HttpClient[] got = new HttpClient[5];
            a.runOnContext(v -> {
                got[0] = pool.client(two, generous, breakers);
                got[1] = pool.client(two, generous, breakers);
                got[3] = tight.client(two, one, breakers);
            });
            b.runOnContext(v -> {
                got[2] = pool.client(two, generous, breakers);
                got[4] = tight.client(two, one, breakers);
            });
            for (int i = 0; i < 100 && (got[2] == null || got[3] == null || got[4] == null); i++) {
                Thread.sleep(10);
            }
            assertSame(got[0], got[1]);
            assertEquals(false, got[0] == got[2], "one client per loop");
            assertEquals(false, got[0] == pool.client(two, generous, breakers), "off the loops: the shared one");
            assertSame(got[3], got[4]); // max_connections 1: one pool for every loop
            String body = onEventLoop(two, () -> got[2].request(HttpMethod.GET, "/")
                    .compose(req -> req.send().compose(r -> r.body())))
                    .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS).toString();
            assertEquals("HTTP_1_1 127.0.0.1", body);
            pool.drain();
            tight.drain();
        } finally {
            two.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void aNewSourceBeyondTheBoundFreesAnIdlePoolAndNeverABusyOne(boolean http2) throws Exception {
        HostPool pool = new HostPool(new SocketAddress("127.0.0.1", server.actualPort()), 2);
        HostPool.Settings settings = new HostPool.Settings(1000, http2, null, 1, -1);
        CircuitBreakerState breakers = new CircuitBreakerState(null);
        HttpClient a = pool.client(vertx, settings, breakers, "a", null);
        var busy = hold(a);
        // three names in rotation over two pools: b and c take turns, a keeps its pool and its request
        for (String name : List.of("b", "c", "b", "c")) {
            assertEquals((http2 ? "HTTP_2" : "HTTP_1_1") + " 127.0.0.1",
                    send(pool.client(vertx, settings, breakers, name, null)));
            assertSame(a, pool.client(vertx, settings, breakers, "a", null), "after " + name);
        }
        assertEquals(2, pool.subPools());
        // both busy: a new name gets a pool of its own, beyond the bound
        HttpClient c = pool.client(vertx, settings, breakers, "c", null);
        var busyToo = hold(c);
        send(pool.client(vertx, settings, breakers, "d", null));
        assertSame(a, pool.client(vertx, settings, breakers, "a", null));
        assertSame(c, pool.client(vertx, settings, breakers, "c", null));
        assertEquals(3, pool.subPools());
        assertEquals("done", answerHeld(busy, 0));
        assertEquals("done", answerHeld(busyToo, 1));
        pool.drain();
    }

    @org.junit.jupiter.api.Test
    void maxConnectionPoolsFreesAnIdlePoolOfTheHostAndWithNoneIdleGivesNoPool() throws Exception {
        HostPool pool = new HostPool(new SocketAddress("127.0.0.1", server.actualPort()));
        HostPool.Settings settings = new HostPool.Settings(1000, false, null, 1, -1);
        CircuitBreakerState breakers = twoPoolsAtMost();
        // the host's own pool and a source's: two pools, both busy
        var own = hold(pool.client(vertx, settings, breakers));
        HttpClient a = pool.client(vertx, settings, breakers, "a", null);
        var busy = hold(a);
        assertEquals(2, breakers.openConnectionPools());
        // a third has no room, and no idle pool to take it from: none, and no pool kept for it
        assertNull(pool.client(vertx, settings, breakers, "b", null));
        assertEquals(1, pool.subPools());
        assertEquals(2, breakers.openConnectionPools());
        assertEquals("done", answerHeld(busy, 1));
        for (int i = 0; i < 500 && !((PendingRequest.Queue) a).idle(); i++) {
            Thread.sleep(10);
        }
        // a's pool is idle now: b takes its place, while the host's own busy pool stays
        HttpClient b = pool.client(vertx, settings, breakers, "b", null);
        assertEquals("HTTP_1_1 127.0.0.1", send(b));
        assertEquals(1, pool.subPools());
        assertEquals(2, breakers.openConnectionPools());
        assertSame(b, pool.client(vertx, settings, breakers, "b", null));
        assertEquals("done", answerHeld(own, 0));
        pool.drain();
        assertEquals(0, breakers.openConnectionPools());
    }

    /**
     * Under {@code max_connection_pools}, a pool handed out to a caller (on another event loop) that has not yet asked
     * it for its request is busy: another name at the limit cannot free it, and the request is sent, not failed on a
     * closed pool. Once that request is over the pool is idle again and may be freed.
     */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void aPoolHandedOutIsNotFreedForAnotherBeforeItsRequestIsAsked(boolean hostsOwn) throws Exception {
        HostPool pool = new HostPool(new SocketAddress("127.0.0.1", server.actualPort()));
        HostPool.Settings settings = new HostPool.Settings(1000, false, null, 1, -1);
        CircuitBreakerState breakers = twoPoolsAtMost();
        var busy = hold(hostsOwn ? pool.client(vertx, settings, breakers, "a", null)
                : pool.client(vertx, settings, breakers));
        HttpClient handedOut = hostsOwn ? pool.client(vertx, settings, breakers)
                : pool.client(vertx, settings, breakers, "a", null);
        assertNull(pool.client(vertx, settings, breakers, "b", null));
        assertEquals("HTTP_1_1 127.0.0.1", send(handedOut)); // not "connection pool closed"
        assertEquals("HTTP_1_1 127.0.0.1", send(pool.client(vertx, settings, breakers, "b", null)));
        assertEquals(2, breakers.openConnectionPools());
        assertEquals("done", answerHeld(busy, 0));
        pool.drain();
        assertEquals(0, breakers.openConnectionPools());
    }

    @org.junit.jupiter.api.Test
    void aHostThatLeavesTheClusterGivesBackItsPlaceUnderMaxConnectionPoolsForGood() throws Exception {
        ClusterManager m = ClusterManager.create(vertx, Map.of("local", staticCluster(server.actualPort())), Map.of());
        try {
            UpstreamCluster c = m.cluster("local");
            Host leaving = c.chooseHost(LbContext.NONE);
            assertEquals("HTTP_1_1 127.0.0.1", send(c.httpClient(leaving)));
            assertEquals(1, c.circuitBreakers().openConnectionPools());
            m = m.update(Map.of("local", staticCluster(1)), Map.of()); // the host leaves, another comes
            assertSame(c, m.cluster("local"));
            assertEquals(0, c.circuitBreakers().openConnectionPools());
            // a request that chose the host just before it left
            assertEquals("HTTP_1_1 127.0.0.1", send(c.httpClient(leaving)));
            assertEquals(0, c.circuitBreakers().openConnectionPools());
        } finally {
            m.close();
        }
    }

    /**
     * A host that leaves its cluster (EDS, or a cluster update that drops it), as Envoy's pools drain for deletion
     * ({@code DrainAndDelete}): the request in flight on its one connection finishes, the request waiting for that
     * connection is served on it, and a caller handed the pool just before asks its request after and is served too.
     * Once nothing is under way, the host's connections close. So too when a host that stays has its pools drained
     * (outlier ejection, failed health checks, new settings), where Envoy's pool drains its connections and its
     * waiting requests stay: none fails with "pool closed"; its idle connection closes at once.
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"false,true", "true,true", "false,false", "true,false"})
    void requestsThatChoseAHostBeforeItLeftAreServedAndThenItsConnectionsClose(boolean http2, boolean left)
            throws Exception {
        HostPool pool = new HostPool(new SocketAddress("127.0.0.1", server.actualPort()));
        HostPool.Settings settings = oneStreamPerConnection(http2, 1);
        CircuitBreakerState breakers = new CircuitBreakerState(null);
        HttpClient client = pool.client(vertx, settings, breakers);
        var busy = hold(client);
        var waiting = onEventLoop(vertx, () -> client.request(HttpMethod.GET, "/")
                .compose(req -> req.send().compose(r -> r.body())));
        HttpClient handedOut = pool.client(vertx, settings, breakers);
        assertSame(client, handedOut);
        assertEquals(false, ((PendingRequest.Queue) client).idle(), "a request waits for the connection");
        if (left) {
            pool.retire();
        } else {
            pool.drain();
        }
        assertEquals("done", answerHeld(busy, 0));
        String protocol = http2 ? "HTTP_2" : "HTTP_1_1";
        assertEquals(protocol + " 127.0.0.1",
                waiting.toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS).toString());
        if (!left) {
            // a host that stays: its drained connection closes once idle, at once, as Envoy's; its next request
            // takes a new pool
            awaitOpenConnections(breakers, 0);
            assertEquals(protocol + " 127.0.0.1", send(pool.client(vertx, settings, breakers)));
            assertEquals(1, breakers.openConnections());
            return;
        }
        assertEquals(protocol + " 127.0.0.1", send(handedOut));
        assertEquals(1, breakers.openConnections(), "the one connection carried all three");
        awaitOpenConnections(breakers, 0);
    }

    /**
     * A host that left its cluster: its idle connections close, those that carry a request once it is done (as
     * Envoy's pool drained for deletion); no new connection is opened for it.
     */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void theIdleConnectionsOfAHostThatLeftCloseAndItsBusyOnesOnceTheirRequestsAreDone(boolean http2)
            throws Exception {
        HostPool pool = new HostPool(new SocketAddress("127.0.0.1", server.actualPort()));
        HostPool.Settings settings = oneStreamPerConnection(http2, 2);
        CircuitBreakerState breakers = new CircuitBreakerState(null);
        HttpClient client = pool.client(vertx, settings, breakers);
        var first = hold(client);
        var second = hold(client);
        assertEquals(2, breakers.openConnections());
        assertEquals("done", answerHeld(first, 0)); // one connection idle, the other busy
        pool.retire();
        awaitOpenConnections(breakers, 1);
        assertEquals("done", answerHeld(second, 1));
        awaitOpenConnections(breakers, 0);
    }

    /**
     * A cluster update that drops the host (as an EDS assignment that no longer lists it) while its one connection
     * ({@code max_connections: 1}) carries a request and another waits for it: both are served, then the connection
     * closes.
     */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void aClusterUpdateThatDropsAHostServesTheRequestsThatChoseIt(boolean http2) throws Exception {
        ClusterManager m = ClusterManager.create(vertx, Map.of("local", oneConnection(server.actualPort(), http2)),
                Map.of());
        try {
            UpstreamCluster c = m.cluster("local");
            HttpClient client = c.httpClient(c.chooseHost(LbContext.NONE));
            var busy = hold(client);
            var waiting = onEventLoop(vertx, () -> client.request(HttpMethod.GET, "/")
                    .compose(req -> req.send().compose(r -> r.body())));
            m = m.update(Map.of("local", oneConnection(1, http2)), Map.of()); // the host leaves, another comes
            assertSame(c, m.cluster("local"));
            assertEquals("done", answerHeld(busy, 0));
            assertEquals((http2 ? "HTTP_2" : "HTTP_1_1") + " 127.0.0.1",
                    waiting.toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS).toString());
            awaitOpenConnections(c.circuitBreakers(), 0);
        } finally {
            m.close();
        }
    }

    /** A static cluster of one host on {@code port}: one connection, carrying one request (stream) at a time. */
    private static Cluster oneConnection(int port, boolean http2) {
        ClusterLoadAssignment inline = new ClusterLoadAssignment("local", List.of(new LocalityLbEndpoints(null,
                List.of(new LbEndpoint(new SocketAddress("127.0.0.1", port), "", null, 1, null)), 1, 0)), 140);
        return Cluster.builder("local", DiscoveryType.STATIC).loadAssignment(inline).http2(http2)
                .http2ProtocolOptions(oneStreamPerConnection(http2, 1).http2Options())
                .circuitBreakers(new CircuitBreakers(List.of(new CircuitBreakers.Thresholds(
                        CircuitBreakers.RoutingPriority.DEFAULT, 1, 1024, 1024, 3, null, false))))
                .build();
    }

    /** At most {@code connections} connections, each carrying one request (HTTP/2: one stream) at a time. */
    private static HostPool.Settings oneStreamPerConnection(boolean http2, int connections) {
        return new HostPool.Settings(1000, http2, null, connections, -1, 3_600_000, 0, 0, null, null,
                new dev.inmesh.api.config.core.Http2ProtocolOptions(
                        dev.inmesh.api.config.core.Http2ProtocolOptions.DEFAULT_HPACK_TABLE_SIZE, 1, null, null));
    }

    /** Waits (five seconds at most) until the breakers count {@code expected} open connections. */
    private static void awaitOpenConnections(CircuitBreakerState breakers, int expected) throws Exception {
        for (int i = 0; i < 500 && breakers.openConnections() != expected; i++) {
            Thread.sleep(10);
        }
        assertEquals(expected, breakers.openConnections());
    }

    /** A cluster's breakers whose {@code max_connection_pools} is 2. */
    private static CircuitBreakerState twoPoolsAtMost() {
        return new CircuitBreakerState(new CircuitBreakers.Thresholds(CircuitBreakers.RoutingPriority.DEFAULT, 1024,
                1024, 1024, 3, null, false, 2));
    }

    private static Cluster staticCluster(int port) {
        ClusterLoadAssignment inline = new ClusterLoadAssignment("local", List.of(new LocalityLbEndpoints(null,
                List.of(new LbEndpoint(new SocketAddress("127.0.0.1", port), "", null, 1, null)), 1, 0)), 140);
        return Cluster.builder("local", DiscoveryType.STATIC).loadAssignment(inline).build();
    }

    @org.junit.jupiter.api.Test
    void aPoolMadeForAHostThatLeftTheClusterNoLongerCountsUnderMaxConnectionPools() throws Exception {
        HostPool pool = new HostPool(new SocketAddress("127.0.0.1", server.actualPort()));
        HostPool.Settings settings = new HostPool.Settings(1000, false, null, 1, -1);
        CircuitBreakerState breakers = twoPoolsAtMost();
        assertEquals("HTTP_1_1 127.0.0.1", send(pool.client(vertx, settings, breakers)));
        assertEquals("HTTP_1_1 127.0.0.1", send(pool.client(vertx, settings, breakers, "a", null)));
        assertEquals(2, breakers.openConnectionPools());
        pool.retire(); // the host left the cluster (EDS)
        assertEquals(0, breakers.openConnectionPools());
        // requests that chose the host just before it left are still served, on pools that close once they are
        // done: they take no place the cluster's other hosts need
        assertEquals("HTTP_1_1 127.0.0.1", send(pool.client(vertx, settings, breakers)));
        assertEquals("HTTP_1_1 127.0.0.1", send(pool.client(vertx, settings, breakers, "b", null)));
        assertEquals(0, breakers.openConnectionPools());
        pool.drain();
        assertEquals(0, breakers.openConnectionPools());
    }

    @org.junit.jupiter.api.Test
    void theLeastRecentlyUsedIdlePoolIsTheOneFreed() throws Exception {
        HostPool pool = new HostPool(new SocketAddress("127.0.0.1", server.actualPort()), 2);
        HostPool.Settings settings = new HostPool.Settings(1000, false, null, 1, -1);
        CircuitBreakerState breakers = new CircuitBreakerState(null);
        HttpClient a = pool.client(vertx, settings, breakers, "a", null);
        send(a);
        HttpClient b = pool.client(vertx, settings, breakers, "b", null);
        send(b);
        send(pool.client(vertx, settings, breakers, "a", null)); // a, made first, used last
        send(pool.client(vertx, settings, breakers, "c", null));
        assertSame(a, pool.client(vertx, settings, breakers, "a", null));
        assertEquals(false, b == pool.client(vertx, settings, breakers, "b", null), "b was freed");
        pool.drain();
    }

    @org.junit.jupiter.api.Test
    void aPoolGoesWhenItsLastConnectionClosesUnused() throws Exception {
        HostPool pool = new HostPool(new SocketAddress("127.0.0.1", server.actualPort()));
        // connections closed after two seconds unused (the cluster's idle_timeout)
        HostPool.Settings settings = new HostPool.Settings(1000, false, null, 1, -1, 2000, 0, 0);
        CircuitBreakerState breakers = new CircuitBreakerState(null);
        send(pool.client(vertx, settings, breakers, "a", null));
        assertEquals(1, pool.subPools());
        for (int i = 0; i < 1000 && pool.subPools() > 0; i++) {
            Thread.sleep(10);
        }
        assertEquals(0, pool.subPools());
        pool.drain();
    }

    /** Sends a request the server holds, once the server has it: its pool is busy until {@link #answerHeld}. */
    private io.vertx.core.Future<io.vertx.core.buffer.Buffer> hold(HttpClient client) throws Exception {
        int before = held.size();
        var body = onEventLoop(vertx, () -> client.request(HttpMethod.GET, "/hold")
                .compose(req -> req.send().compose(r -> r.body())));
        for (int i = 0; i < 500 && held.size() == before; i++) {
            Thread.sleep(10);
        }
        assertEquals(before + 1, held.size(), "the request is under way");
        return body;
    }

    /** Answers the {@code index}th held request, and gives the body its caller got. */
    private String answerHeld(io.vertx.core.Future<io.vertx.core.buffer.Buffer> body, int index) throws Exception {
        held.get(index).response().end("done");
        return body.toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS).toString();
    }

    /** Sends a request and waits until the pool has counted its exchange off (just after the caller got the body). */
    private String send(HttpClient client) throws Exception {
        String body = onEventLoop(vertx, () -> client.request(HttpMethod.GET, "/")
                .compose(req -> req.send().compose(r -> r.body()))).toCompletionStage().toCompletableFuture()
                .get(10, TimeUnit.SECONDS).toString();
        for (int i = 0; i < 500 && !((PendingRequest.Queue) client).idle(); i++) {
            Thread.sleep(10);
        }
        return body;
    }
}
