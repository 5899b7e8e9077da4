package dev.inmesh.runtime.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.CircuitBreakers;
import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.CommonHttpProtocolOptions;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.core.Http2ProtocolOptions;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.endpoint.LbEndpoint;
import dev.inmesh.api.config.endpoint.LocalityLbEndpoints;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.ConnectionPoolTooBusyException;
import io.vertx.core.http.Http2Settings;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.net.NetServer;
import io.vertx.core.net.NetSocket;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A cluster's {@code http2_protocol_options} on its hosts' HTTP/2 connections, against local h2c servers: the streams
 * one connection carries, the connections opened for the rest, and the settings the connections advertise.
 */
class Http2PoolTest {
    private Vertx vertx;
    /** The requests the upstream holds, unanswered until a test answers them. */
    private final List<HttpServerRequest> held = Collections.synchronizedList(new ArrayList<>());

    @BeforeEach
    void start() {
        vertx = Vertx.vertx();
    }

    @AfterEach
    void stop() throws Exception {
        vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }

    @Test
    void fiveRequestsAtOnceWithMaxConcurrentStreamsTwoGoOverThreeConnections() throws Exception {
        int port = holdingServer(new Http2Settings());
        ClusterManager m = ClusterManager.create(vertx, Map.of("local", cluster(port, 1024, 1024,
                new Http2ProtocolOptions(4096, 2, null, null))), Map.of());
        try {
            HttpClient client = client(m);
            send(client, 5);
            await(() -> held.size() == 5, "the upstream has the five requests");
            // two streams on each of two connections, the fifth on a third: not one connection for all five (as
            // before), nor one for each request (Vert.x's pool, for requests that come before any connection is up)
            assertEquals(3, connections());
            assertEquals(3, m.cluster("local").circuitBreakers().openConnections());
        } finally {
            m.close();
        }
    }

    @Test
    void atMaxConnectionsTheRequestBeyondTheStreamsWaitsAndOneMoreThanMaxPendingIsRefused() throws Exception {
        int port = holdingServer(new Http2Settings());
        ClusterManager m = ClusterManager.create(vertx, Map.of("local", cluster(port, 2, 1,
                new Http2ProtocolOptions(4096, 2, null, null))), Map.of());
        try {
            HttpClient client = client(m);
            for (int i = 1; i <= 4; i++) {
                send(client);
                int n = i;
                await(() -> held.size() == n, "the upstream has request " + n);
            }
            assertEquals(2, connections());
            Future<HttpClientResponse> pending = send(client);
            Future<HttpClientResponse> overflow = send(client);
            await(overflow::isComplete, "the request over max_pending_requests is answered");
            assertInstanceOf(ConnectionPoolTooBusyException.class, overflow.cause());
            Thread.sleep(200);
            assertEquals(4, held.size(), "the fifth request waits: both connections carry two streams");
            assertFalse(pending.isComplete());

            held.get(0).response().end("done");
            await(() -> held.size() == 5, "the waiting request takes the stream that ended");
            assertEquals(2, connections());
            assertEquals(2, m.cluster("local").circuitBreakers().openConnections());
        } finally {
            m.close();
        }
    }

    @Test
    void aWaitingRequestThatIsCancelledLeavesTheQueueAndTheNextTakesTheStreamThatEnds() throws Exception {
        int port = holdingServer(new Http2Settings());
        ClusterManager m = ClusterManager.create(vertx, Map.of("local", cluster(port, 1, 1,
                new Http2ProtocolOptions(4096, 1, null, null))), Map.of());
        try {
            HttpClient client = client(m);
            send(client);
            await(() -> held.size() == 1, "the upstream has the first request");
            Future<HttpClientRequest> waiting = client.request(HttpMethod.GET, "/gave-up");
            assertTrue(UpstreamCluster.cancelPending(client, waiting));
            await(waiting::isComplete, "the cancelled request is answered");
            assertInstanceOf(PendingCancelledException.class, waiting.cause());
            assertFalse(UpstreamCluster.cancelPending(client, waiting), "it is no longer in the queue");

            // its place under max_pending_requests is free, and the stream that ends goes to the next request
            Future<HttpClientResponse> next = client.request(HttpMethod.GET, "/next").compose(req -> req.send());
            held.get(0).response().end("done");
            await(() -> held.size() == 2, "the waiting request takes the stream that ended");
            assertEquals("/next", held.get(1).path());
            assertFalse(next.failed(), "the next request waited, not refused");
        } finally {
            m.close();
        }
    }

    @Test
    void aStreamComesBackWhenItsResponseEndsOrItsRequestIsResetUnsent() throws Exception {
        int port = holdingServer(new Http2Settings());
        ClusterManager m = ClusterManager.create(vertx, Map.of("local", cluster(port, 1, 1024,
                new Http2ProtocolOptions(4096, 1, null, null))), Map.of());
        try {
            HttpClient client = client(m);
            // the body is asked for as the response comes: asked later, it may have ended unread
            Future<Buffer> first = client.request(HttpMethod.GET, "/")
                    .compose(req -> req.send().compose(HttpClientResponse::body));
            await(() -> held.size() == 1, "the upstream has the first request");
            held.get(0).response().end("one");
            assertEquals("one", first.await(10, TimeUnit.SECONDS).toString());

            // a request the caller gives up before sending it (as the router does after a timeout) frees its stream
            client.request(HttpMethod.GET, "/").compose(req -> req.reset()).await(10, TimeUnit.SECONDS);
            send(client);
            await(() -> held.size() == 2, "the next request has the one stream of the one connection");
            assertEquals(1, connections());
        } finally {
            m.close();
        }
    }

    @Test
    void aConnectionGivenMaxRequestsPerConnectionStreamsTakesNoMoreAndClosesOnceTheyAreDone() throws Exception {
        int port = holdingServer(new Http2Settings());
        ClusterManager m = ClusterManager.create(vertx, Map.of("local", cluster(port, 1024, 1024,
                Http2ProtocolOptions.DEFAULTS, new CommonHttpProtocolOptions(null, null, 2))), Map.of());
        try {
            HttpClient client = client(m);
            Future<HttpClientResponse> first = send(client);
            send(client);
            await(() -> held.size() == 2, "the upstream has the first two requests");
            assertEquals(1, connections());
            // as Envoy's HTTP/2 pool: the connection had its two streams, the third request opens another
            send(client);
            await(() -> held.size() == 3, "the upstream has the third request");
            assertEquals(2, connections());
            assertEquals(2, m.cluster("local").circuitBreakers().openConnections());
            held.get(0).response().end("one");
            first.await(10, TimeUnit.SECONDS);
            assertEquals(2, m.cluster("local").circuitBreakers().openConnections(), "a stream is still open on it");
            held.get(1).response().end("two");
            await(() -> m.cluster("local").circuitBreakers().openConnections() == 1,
                    "the first connection closes once its two streams are done");
            send(client);
            await(() -> held.size() == 4, "the upstream has the fourth request");
            assertEquals(held.get(2).connection(), held.get(3).connection(), "the second connection's second stream");
        } finally {
            m.close();
        }
    }

    @Test
    void aConnectionThatTookItsLastStreamStillCountsToMaxConnectionsUntilItsStreamsAreDone() throws Exception {
        int port = holdingServer(new Http2Settings());
        ClusterManager m = ClusterManager.create(vertx, Map.of("local", cluster(port, 1, 1024,
                Http2ProtocolOptions.DEFAULTS, new CommonHttpProtocolOptions(null, null, 1))), Map.of());
        try {
            HttpClient client = client(m);
            send(client);
            await(() -> held.size() == 1, "the upstream has the first request");
            Future<HttpClientResponse> second = send(client);
            Thread.sleep(200);
            assertEquals(1, held.size(), "max_connections 1: the second request waits for the first connection");
            assertFalse(second.isComplete());
            held.get(0).response().end("one");
            await(() -> held.size() == 2, "the second request has a connection of its own");
            assertTrue(held.get(0).connection() != held.get(1).connection());
            await(() -> m.cluster("local").circuitBreakers().openConnections() == 1, "the first connection closed");
        } finally {
            m.close();
        }
    }

    @Test
    void aShutdownDrainsTheConnectionThatTookItsLastStreamWithTheOthers() throws Exception {
        int port = holdingServer(new Http2Settings());
        ClusterManager m = ClusterManager.create(vertx, Map.of("local", cluster(port, 1024, 1024,
                Http2ProtocolOptions.DEFAULTS, new CommonHttpProtocolOptions(null, null, 1))), Map.of());
        try {
            HttpClient client = client(m);
            send(client);
            await(() -> held.size() == 1, "the upstream has the request, the connection's only one");
            // the stream never ends (a long response): the pool's shutdown closes it once its grace is over
            client.shutdown(200, TimeUnit.MILLISECONDS);
            await(() -> m.cluster("local").circuitBreakers().openConnections() == 0, "the connection is closed");
        } finally {
            m.close();
        }
    }

    @Test
    void theServersLowerStreamLimitStillAppliesAndTheRequestsBeyondItGetConnectionsOfTheirOwn() throws Exception {
        int port = holdingServer(new Http2Settings().setMaxConcurrentStreams(1));
        ClusterManager m = ClusterManager.create(vertx, Map.of("local", cluster(port, 1024, 1024,
                Http2ProtocolOptions.DEFAULTS)), Map.of());
        try {
            HttpClient client = client(m);
            send(client, 3);
            await(() -> held.size() == 3, "the upstream has the three requests");
            assertEquals(3, connections()); // one stream each, as the server's SETTINGS_MAX_CONCURRENT_STREAMS says
        } finally {
            m.close();
        }
    }

    @Test
    void theConnectionsAdvertiseTheClustersWindowsAndHeaderTableSizeAndRefusePushes() throws Exception {
        // a bare TCP server reads what the client sends after the preface: its SETTINGS and the connection's
        // WINDOW_UPDATE
        Map<String, Long> seen = new ConcurrentHashMap<>();
        AtomicInteger connections = new AtomicInteger();
        NetServer raw = vertx.createNetServer().connectHandler(socket -> {
            connections.incrementAndGet();
            socket.write(SETTINGS); // the server's, empty
            Handler<Buffer> frames = frames((type, flags, stream, payload) -> {
                if (type == 4 && (flags & 1) == 0) {
                    for (int p = 0; p < payload.length(); p += 6) {
                        seen.put("setting " + payload.getUnsignedShort(p), payload.getUnsignedInt(p + 2));
                    }
                    socket.write(SETTINGS_ACK);
                } else if (type == 8 && stream == 0) {
                    seen.merge("connection window increment", payload.getUnsignedInt(0) & 0x7fff_ffffL, Long::sum);
                }
            });
            // a byte at a time, the finest split TCP may make of the client's writes: each frame is read once
            // however its bytes come (the client's frames came in one read or two, as the client's writes met the
            // server's reads; reading every frame again at each read counted the WINDOW_UPDATE twice)
            socket.handler(b -> {
                for (int i = 0; i < b.length(); i++) {
                    frames.handle(b.getBuffer(i, i + 1));
                }
            });
        });
        ClusterManager m = ClusterManager.create(vertx, Map.of("local", cluster(listen(raw), 1024, 1024,
                new Http2ProtocolOptions(0, 100, 1_048_576, 4_194_304))), Map.of());
        try {
            send(client(m));
            await(() -> seen.containsKey("connection window increment") && seen.containsKey("setting 4"),
                    "the client's SETTINGS and connection WINDOW_UPDATE");
            assertEquals(0L, seen.get("setting 1")); // SETTINGS_HEADER_TABLE_SIZE: hpack_table_size
            // SETTINGS_ENABLE_PUSH: 0, as Envoy's client says (it takes no server push)
            assertEquals(0L, seen.get("setting 2"));
            assertEquals(1_048_576L, seen.get("setting 4")); // SETTINGS_INITIAL_WINDOW_SIZE
            // the connection's window starts at 65535: the client raises it to initial_connection_window_size
            assertEquals(4_194_304L - 65_535, seen.get("connection window increment"));
            assertEquals(1, connections.get(), "one request, one connection");
        } finally {
            m.close();
        }
    }

    @Test
    void aStreamWhoseReaderStoppedDoesNotHoldTheConnectionsOtherStreamsUnderTheDefaultWindows() throws Exception {
        // a response of 512 KiB nobody reads (a paused download, a slow gRPC consumer) fills its stream's window;
        // the connection's window is larger by default, so the next stream's answer still comes (with both at
        // HTTP/2's 65535 bytes, the first stream took the connection's whole window and the second waited forever)
        int port = vertx.createHttpServer(new HttpServerOptions().setHttp2ClearTextEnabled(true))
                .requestHandler(req -> {
                    if (req.path().equals("/big")) {
                        req.response().setChunked(true);
                        for (int i = 0; i < 64; i++) {
                            req.response().write(Buffer.buffer(new byte[8192]));
                        }
                        req.response().end();
                    } else {
                        req.response().end("small");
                    }
                })
                .listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS)
                .actualPort();
        ClusterManager m = ClusterManager.create(vertx, Map.of("local", cluster(port, 1, 1024,
                Http2ProtocolOptions.DEFAULTS)), Map.of());
        try {
            HttpClient client = client(m);
            HttpClientResponse big = client.request(HttpMethod.GET, "/big").compose(req -> req.send()
                    .map(resp -> {
                        resp.pause(); // its body is never read
                        return resp;
                    })).toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
            assertEquals(200, big.statusCode());
            Thread.sleep(200); // the first stream's data fills what windows let it
            String small = client.request(HttpMethod.GET, "/small").compose(req -> req.send())
                    .compose(HttpClientResponse::body).toCompletionStage().toCompletableFuture()
                    .get(10, TimeUnit.SECONDS).toString();
            assertEquals("small", small);
            assertEquals(1, m.cluster("local").circuitBreakers().openConnections(), "both on one connection");
        } finally {
            m.close();
        }
    }

    @Test
    void requestsThatComeWhileTheConnectionAwaitsTheServersSettingsWaitForItRatherThanOpenAnother() throws Exception {
        // the connection is being opened until the server's SETTINGS come: as Envoy's pool, which opens another only
        // for the requests beyond the streams of those being opened, the requests that come meanwhile wait for it
        AtomicInteger connections = new AtomicInteger();
        AtomicInteger requests = new AtomicInteger();
        Promise<Void> settings = Promise.promise();
        ClusterManager m = ClusterManager.create(vertx, Map.of("local", cluster(listen(silentUntil(settings,
                connections, requests)), 1024, 1024, Http2ProtocolOptions.DEFAULTS)), Map.of());
        try {
            HttpClient client = client(m);
            send(client);
            await(() -> connections.get() == 1, "the first request's connection, awaiting the server's SETTINGS");
            send(client);
            send(client);
            settings.complete();
            await(() -> requests.get() == 3, "the server has the three requests");
            assertEquals(1, connections.get(), "the three requests' streams are on the one connection");
        } finally {
            m.close();
        }
    }

    @Test
    void aServerThatLowersItsStreamLimitRightAfterItsFirstSettingsGetsTheRequestsBeyondItOnFurtherConnections()
            throws Exception {
        // as Python's h2 server does when told its limit: a first SETTINGS frame with 100 streams, then one with 2;
        // Vert.x hands the connection over at the first: it was given three requests at once, and the third stayed
        // queued in the lane's client, never sent while the first two hang
        Map<Object, AtomicInteger> perConnection = new ConcurrentHashMap<>();
        AtomicInteger requests = new AtomicInteger();
        NetServer server = vertx.createNetServer().connectHandler(socket -> {
            AtomicInteger streams = perConnection.computeIfAbsent(socket, s -> new AtomicInteger());
            socket.write(settings(100).appendBuffer(settings(2)));
            socket.handler(holding(socket, () -> {
                streams.incrementAndGet(); // a request's HEADERS, held unanswered
                requests.incrementAndGet();
            }));
        });
        ClusterManager m = ClusterManager.create(vertx, Map.of("local", cluster(listen(server), 1024, 1024,
                new Http2ProtocolOptions(4096, 3, null, null))), Map.of());
        try {
            HttpClient client = client(m);
            send(client, 6);
            await(() -> requests.get() == 6, "the upstream has the six requests");
            assertEquals(3, perConnection.size(), "two streams on each of three connections");
            perConnection.values().forEach(n -> assertEquals(2, n.get()));
        } finally {
            m.close();
        }
    }

    /**
     * A server that answers no PING (against RFC 9113, or one busy with its first request) and holds its first
     * stream: the connection carries the streams the server allows once {@link Http2Pool#SETTLE_MILLIS} passed, not
     * one at a time for as long as that stream lasts.
     */
    @Test
    void aServerThatAnswersNoPingGetsTheStreamsItAllowsOnceTheSettleTimeHasPassed() throws Exception {
        threeRequestsOnOneConnectionToAServerThatAnswersNoPing(false);
    }

    /** A server that answers the first stream's head: the connection takes the others then. */
    @Test
    void aConnectionWhoseServerAnswersAHeadCarriesTheStreamsItAllows() throws Exception {
        long start = System.nanoTime();
        threeRequestsOnOneConnectionToAServerThatAnswersNoPing(true);
        assertTrue(System.nanoTime() - start < TimeUnit.MILLISECONDS.toNanos(Http2Pool.SETTLE_MILLIS),
                "before the settle time");
    }

    /**
     * Three requests to a server allowing 100 streams that answers no PING and holds each request, with one
     * connection at most; {@code answerFirstHead}: it answers the first request's head (its stream left open).
     */
    private void threeRequestsOnOneConnectionToAServerThatAnswersNoPing(boolean answerFirstHead) throws Exception {
        AtomicInteger requests = new AtomicInteger();
        NetServer server = vertx.createNetServer().connectHandler(socket -> {
            socket.write(settings(100));
            socket.handler(frames((type, flags, stream, payload) -> {
                if (type == 4 && (flags & 1) == 0) {
                    socket.write(SETTINGS_ACK);
                } else if (type == 1 && requests.incrementAndGet() == 1 && answerFirstHead) {
                    socket.write(head(stream));
                }
            }));
        });
        ClusterManager m = ClusterManager.create(vertx, Map.of("local", cluster(listen(server), 1, 1024,
                Http2ProtocolOptions.DEFAULTS)), Map.of());
        try {
            send(client(m), 3);
            await(() -> requests.get() == 3, "the three requests on the one connection");
        } finally {
            m.close();
        }
    }

    @Test
    void aConnectionTheUpstreamSentGoawayClosesOnceItsLastStreamEndsAndTheNextRequestOpensAnother()
            throws Exception {
        // a raw h2c upstream that never closes a connection itself: on its first connection it sends
        // GOAWAY(NO_ERROR) keeping the stream open, then answers it; on its second it answers, then sends GOAWAY
        List<NetSocket> sockets = Collections.synchronizedList(new ArrayList<>());
        AtomicInteger closedByClient = new AtomicInteger();
        NetServer raw = vertx.createNetServer().connectHandler(socket -> {
            int n = sockets.size();
            sockets.add(socket);
            socket.closeHandler(v -> closedByClient.incrementAndGet());
            socket.write(SETTINGS);
            socket.handler(frames((type, flags, stream, payload) -> {
                if (type == 4 && (flags & 1) == 0) {
                    socket.write(SETTINGS_ACK);
                } else if (type == 1 && n == 0) {
                    socket.write(goAway(stream));
                    vertx.setTimer(200, t -> socket.write(ok(stream)));
                } else if (type == 1) {
                    socket.write(ok(stream));
                    vertx.setTimer(200, t -> socket.write(goAway(stream)));
                }
            }));
        });
        Counted counted = counted(raw);
        ClusterManager m = counted.manager();
        java.util.function.ToDoubleFunction<String> stat = counted.stat();
        try {
            HttpClient client = counted.client();
            // as Envoy's pool: a GOAWAY drains the connection (upstream_cx_close_notify), which the pool closes
            // itself once its last stream is done
            assertEquals(200, send(client).await(10, TimeUnit.SECONDS).statusCode());
            await(() -> closedByClient.get() == 1, "the first connection is closed once its stream is done");
            assertEquals(1.0, stat.applyAsDouble("upstream_cx_close_notify"));
            assertEquals(1.0, stat.applyAsDouble("upstream_cx_destroy_local"));
            assertEquals(0.0, stat.applyAsDouble("upstream_cx_active"));
            // the next request opens a new connection; a GOAWAY on it with no stream open closes it at once
            assertEquals(200, send(client).await(10, TimeUnit.SECONDS).statusCode());
            assertEquals(2, sockets.size());
            await(() -> closedByClient.get() == 2, "the second connection is closed on its GOAWAY");
            assertEquals(2.0, stat.applyAsDouble("upstream_cx_close_notify"));
            assertEquals(2.0, stat.applyAsDouble("upstream_cx_destroy_local"));
            assertEquals(0.0, stat.applyAsDouble("upstream_cx_destroy_remote"));
            assertEquals(0.0, stat.applyAsDouble("upstream_cx_active"));
            assertEquals(0, m.cluster("local").circuitBreakers().openConnections());
        } finally {
            m.close();
        }
    }

    @Test
    void streamsResetByEitherSideAndAConnectionClosedWithAStreamOpenCountAsEnvoysHttp2PoolCountsThem()
            throws Exception {
        // a raw h2c upstream: it resets its first stream (CANCEL), refuses its second (REFUSED_STREAM), holds the
        // third, which the client resets, and closes the connection on the fourth
        AtomicInteger headers = new AtomicInteger();
        NetServer raw = vertx.createNetServer().connectHandler(socket -> {
            socket.write(SETTINGS);
            socket.handler(frames((type, flags, stream, payload) -> {
                if (type == 4 && (flags & 1) == 0) {
                    socket.write(SETTINGS_ACK);
                } else if (type == 1) {
                    switch (headers.incrementAndGet()) {
                        case 1 -> socket.write(rstStream(stream, 8));
                        case 2 -> socket.write(rstStream(stream, 7));
                        case 3 -> { }
                        default -> socket.close();
                    }
                }
            }));
        });
        Counted counted = counted(raw);
        ClusterManager m = counted.manager();
        java.util.function.ToDoubleFunction<String> stat = counted.stat();
        try {
            HttpClient client = counted.client();
            for (int i = 0; i < 2; i++) {
                Throwable reset = send(client).transform(ar -> Future.succeededFuture(ar.cause()))
                        .await(10, TimeUnit.SECONDS);
                assertInstanceOf(io.vertx.core.http.StreamResetException.class, reset);
            }
            // the upstream's RST_STREAM, but the one that refuses its stream, which Envoy's codec tells apart
            assertEquals(1.0, stat.applyAsDouble("upstream_rq_rx_reset"));
            assertEquals(0.0, stat.applyAsDouble("upstream_rq_tx_reset"));
            HttpClientRequest held = client.request(HttpMethod.GET, "/")
                    .compose(req -> req.sendHead().map(req)).await(10, TimeUnit.SECONDS);
            await(() -> headers.get() == 3, "the upstream holds the third request");
            held.reset().await(10, TimeUnit.SECONDS);
            await(() -> stat.applyAsDouble("upstream_rq_tx_reset") == 1.0, "the stream the client reset counted");
            assertEquals(0.0, stat.applyAsDouble("upstream_cx_destroy"), "a reset stream leaves its connection");
            // the upstream closes the connection with a stream open: Envoy's pool counts the close as one with an
            // active request, the connection's streams' resets in neither of the reset counters
            send(client).transform(ar -> Future.succeededFuture(ar.cause())).await(10, TimeUnit.SECONDS);
            await(() -> stat.applyAsDouble("upstream_cx_destroy") == 1.0, "the connection is closed");
            assertEquals(1.0, stat.applyAsDouble("upstream_cx_destroy_remote"));
            assertEquals(1.0, stat.applyAsDouble("upstream_cx_destroy_with_active_rq"));
            assertEquals(1.0, stat.applyAsDouble("upstream_cx_destroy_remote_with_active_rq"));
            assertEquals(0.0, stat.applyAsDouble("upstream_cx_destroy_local_with_active_rq"));
            assertEquals(1.0, stat.applyAsDouble("upstream_rq_rx_reset"));
            assertEquals(1.0, stat.applyAsDouble("upstream_rq_tx_reset"));
        } finally {
            m.close();
        }
    }

    /** Cluster local, its host's client, and the cluster's statistics by Envoy's name. */
    private record Counted(ClusterManager manager, HttpClient client,
                           java.util.function.ToDoubleFunction<String> stat) {
    }

    /** Cluster local on {@code raw}'s port, its host's connections counted in its statistics as the router does. */
    private Counted counted(NetServer raw) throws Exception {
        io.micrometer.prometheusmetrics.PrometheusMeterRegistry reg =
                new io.micrometer.prometheusmetrics.PrometheusMeterRegistry(
                        io.micrometer.prometheusmetrics.PrometheusConfig.DEFAULT);
        ClusterManager m = ClusterManager.create(vertx, Map.of("local", cluster(listen(raw), 1024, 1024,
                Http2ProtocolOptions.DEFAULTS)), Map.of());
        UpstreamCluster c = m.cluster("local");
        Host host = c.chooseHost(LbContext.NONE);
        host.stats().clusterStats(dev.inmesh.runtime.stats.MeshMetrics.create(reg,
                dev.inmesh.runtime.stats.WorkloadInfo.UNKNOWN).upstream("local"));
        return new Counted(m, c.httpClient(host), name -> reg.get("envoy_cluster_" + name)
                .tag("cluster_name", "local").meter().measure().iterator().next().getValue());
    }

    /** A RST_STREAM frame resetting {@code stream} with {@code errorCode}. */
    private static Buffer rstStream(int stream, int errorCode) {
        return Buffer.buffer(new byte[] {0, 0, 4, 3, 0}).appendInt(stream).appendInt(errorCode);
    }

    @Test
    void aRequestGivenUpWhileItsConnectionOpensIsResetUnsentWithoutASevereLog() throws Exception {
        // the caller gives up the request (its timeout, its own caller gone) while the connection being opened for it
        // awaits the server's SETTINGS: once up, the connection brings the request, which goes back unsent; Vert.x
        // logged that reset SEVERE ("Stream reset: 0") in the application's logs, the request having no handler
        AtomicInteger connections = new AtomicInteger();
        AtomicInteger requests = new AtomicInteger();
        Promise<Void> settings = Promise.promise();
        ClusterManager m = ClusterManager.create(vertx, Map.of("local", cluster(listen(silentUntil(settings,
                connections, requests)), 1024, 1024, Http2ProtocolOptions.DEFAULTS)), Map.of());
        try (var severe = new dev.inmesh.runtime.testing.SevereLogs()) {
            HttpClient client = client(m);
            Future<HttpClientRequest> givenUp = client.request(HttpMethod.GET, "/");
            await(() -> connections.get() == 1, "the request's connection, awaiting the server's SETTINGS");
            assertTrue(UpstreamCluster.cancelPending(client, givenUp));
            settings.complete();
            send(client);
            await(() -> requests.get() == 1, "the next request is sent on the connection");
            Thread.sleep(200);
            assertEquals(1, requests.get(), "the request given up is not sent");
            assertEquals(List.of(), severe.records());
        } finally {
            m.close();
        }
    }

    /**
     * A raw h2c server that sends no SETTINGS, and reads nothing, until {@code settings} completes; counting its
     * {@code connections} and the {@code requests} (HEADERS) it read, which it holds.
     */
    private NetServer silentUntil(Promise<Void> settings, AtomicInteger connections, AtomicInteger requests) {
        return vertx.createNetServer().connectHandler(socket -> {
            connections.incrementAndGet();
            socket.pause();
            socket.handler(holding(socket, requests::incrementAndGet));
            Context context = vertx.getOrCreateContext();
            settings.future().onComplete(v -> context.runOnContext(w -> {
                socket.write(SETTINGS);
                socket.resume();
            }));
        });
    }

    /** A GOAWAY frame with NO_ERROR naming {@code lastStream} as the last one the server takes. */
    private static Buffer goAway(int lastStream) {
        return Buffer.buffer(new byte[] {0, 0, 8, 7, 0, 0, 0, 0, 0}).appendInt(lastStream).appendInt(0);
    }

    /** A HEADERS frame that ends {@code stream} with {@code :status 200} (HPACK's static entry 8). */
    private static Buffer ok(int stream) {
        return Buffer.buffer(new byte[] {0, 0, 1, 1, 5}).appendInt(stream).appendByte((byte) 0x88);
    }

    /** The HEADERS of a 200 on {@code stream} that leave it open (END_HEADERS only). */
    private static Buffer head(int stream) {
        return Buffer.buffer(new byte[] {0, 0, 1, 1, 4}).appendInt(stream).appendByte((byte) 0x88);
    }

    /** A SETTINGS frame with SETTINGS_MAX_CONCURRENT_STREAMS {@code maxStreams}. */
    private static Buffer settings(int maxStreams) {
        return Buffer.buffer(new byte[] {0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3}).appendInt(maxStreams);
    }

    /**
     * A raw server's reading of a client connection: each SETTINGS and PING acknowledged, each request's HEADERS
     * {@code request}ed and held unanswered.
     */
    private static Handler<Buffer> holding(NetSocket socket, Runnable request) {
        return frames((type, flags, stream, payload) -> {
            if (type == 4 && (flags & 1) == 0) {
                socket.write(SETTINGS_ACK);
            } else if (type == 6 && (flags & 1) == 0) {
                socket.write(pingAck(payload));
            } else if (type == 1) {
                request.run();
            }
        });
    }

    /** The acknowledgement of a PING frame with this payload. */
    private static Buffer pingAck(Buffer payload) {
        return Buffer.buffer(new byte[] {0, 0, 8, 6, 1, 0, 0, 0, 0}).appendBuffer(payload);
    }

    /** An empty SETTINGS frame, and a SETTINGS frame's acknowledgement. */
    private static final Buffer SETTINGS = Buffer.buffer(new byte[] {0, 0, 0, 4, 0, 0, 0, 0, 0});
    private static final Buffer SETTINGS_ACK = Buffer.buffer(new byte[] {0, 0, 0, 4, 1, 0, 0, 0, 0});

    /** One HTTP/2 frame the client sent: its type, flags, stream and payload. */
    private interface FrameHandler {
        void frame(int type, int flags, int stream, Buffer payload);
    }

    /**
     * Reads a client connection's bytes as a raw HTTP/2 server does: the connection preface, then frames, each given
     * to {@code handler} once it is whole and never again, however the bytes are split into reads (a read may end
     * within a frame, or carry several).
     */
    private static Handler<Buffer> frames(FrameHandler handler) {
        Buffer[] unread = {Buffer.buffer()};
        boolean[] prefaceRead = {false};
        return b -> {
            Buffer buf = unread[0].appendBuffer(b);
            int at = 0;
            if (!prefaceRead[0]) {
                if (buf.length() < PREFACE_LENGTH) {
                    return;
                }
                prefaceRead[0] = true;
                at = PREFACE_LENGTH;
            }
            while (buf.length() >= at + 9 && buf.length() >= at + 9 + buf.getUnsignedMedium(at)) {
                int length = buf.getUnsignedMedium(at);
                handler.frame(buf.getUnsignedByte(at + 3), buf.getUnsignedByte(at + 4),
                        buf.getInt(at + 5) & 0x7fff_ffff, buf.getBuffer(at + 9, at + 9 + length));
                at += 9 + length;
            }
            unread[0] = buf.getBuffer(at, buf.length());
        };
    }

    /** Listens on a loopback port of its own, which it returns. */
    private static int listen(NetServer server) throws Exception {
        return server.listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS)
                .actualPort();
    }

    private static final int PREFACE_LENGTH = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".length();

    /** A local h2c server with these settings that holds every request it gets. */
    private int holdingServer(Http2Settings settings) throws Exception {
        return vertx.createHttpServer(new HttpServerOptions().setHttp2ClearTextEnabled(true)
                        .setInitialSettings(settings))
                .requestHandler(held::add)
                .listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS)
                .actualPort();
    }

    private long connections() {
        synchronized (held) {
            return held.stream().map(HttpServerRequest::connection).distinct().count();
        }
    }

    /** An h2c cluster of one local host, with these circuit breakers and HTTP/2 settings. */
    private static Cluster cluster(int port, long maxConnections, long maxPending, Http2ProtocolOptions h2) {
        return cluster(port, maxConnections, maxPending, h2, null);
    }

    /** The same, with these connection lifetimes. */
    private static Cluster cluster(int port, long maxConnections, long maxPending, Http2ProtocolOptions h2,
                                   CommonHttpProtocolOptions lifetimes) {
        ClusterLoadAssignment inline = new ClusterLoadAssignment("local", List.of(new LocalityLbEndpoints(null,
                List.of(new LbEndpoint(new SocketAddress("127.0.0.1", port), "", null, 1, null)), 1, 0)), 140);
        CircuitBreakers breakers = new CircuitBreakers(List.of(new CircuitBreakers.Thresholds(
                CircuitBreakers.RoutingPriority.DEFAULT, maxConnections, maxPending, 1024, 3)));
        return Cluster.builder("local", DiscoveryType.STATIC).circuitBreakers(breakers).loadAssignment(inline)
                .http2(true).commonHttpProtocolOptions(lifetimes).http2ProtocolOptions(h2).build();
    }

    private static HttpClient client(ClusterManager m) {
        UpstreamCluster c = m.cluster("local");
        return c.httpClient(c.chooseHost(LbContext.NONE));
    }

    private static Future<HttpClientResponse> send(HttpClient client) {
        return client.request(HttpMethod.GET, "/").compose(req -> req.send());
    }

    /** Sends {@code n} requests at once. */
    private static void send(HttpClient client, int n) {
        for (int i = 0; i < n; i++) {
            send(client);
        }
    }

    private static void await(BooleanSupplier done, String what) throws InterruptedException {
        for (int i = 0; i < 200 && !done.getAsBoolean(); i++) {
            Thread.sleep(50);
        }
        assertTrue(done.getAsBoolean(), what);
    }
}
