package dev.inmesh.runtime.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.HealthCheck;
import dev.inmesh.api.config.core.Metadata;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.endpoint.LbEndpoint;
import dev.inmesh.api.config.endpoint.Locality;
import dev.inmesh.api.config.endpoint.LocalityLbEndpoints;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.net.NetServer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Active health checks on Vert.x against loopback servers: what they send, and the traffic they steer. */
class HealthCheckTrafficTest {
    private final Vertx vertx = Vertx.vertx();
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final UpstreamEnvironment env = new UpstreamEnvironment(vertx, null, new Random(3), null,
            MeshMetrics.create(registry, WorkloadInfo.UNKNOWN)::upstream);
    private ClusterManager manager;

    @AfterEach
    void close() throws Exception {
        if (manager != null) {
            manager.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** An HTTP upstream whose health endpoint answers {@code status}, recording each check's request line. */
    private static final class Upstream {
        final AtomicInteger status = new AtomicInteger(200);
        final ConcurrentLinkedQueue<String> seen = new ConcurrentLinkedQueue<>();
        /** Checks answered 200, counted as the status is chosen (a check seen before a status change may pass). */
        final AtomicInteger passed = new AtomicInteger();
        int port;
    }

    private Upstream upstream() throws Exception {
        Upstream u = new Upstream();
        HttpServer server = vertx.createHttpServer().requestHandler(req -> {
            // the Host as sent where it is no authority Vert.x reads (an Istio cluster's name)
            u.seen.add(req.method() + " " + req.uri() + " host="
                    + (req.authority() != null ? req.authority() : req.getHeader("host")) + " ua="
                    + req.getHeader("user-agent") + " x-probe=" + req.getHeader("x-probe"));
            int status = u.status.get();
            if (status == 200) {
                u.passed.incrementAndGet();
            }
            req.response().setStatusCode(status).end("ok");
        });
        u.port = server.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        return u;
    }

    private static HealthCheck check(HealthCheck.Checker checker, int unhealthy, int healthy) {
        return check(checker, unhealthy, healthy, Duration.ofMillis(300));
    }

    private static HealthCheck check(HealthCheck.Checker checker, int unhealthy, int healthy, Duration timeout) {
        // 20 ms between checks, with or without traffic, so that the test sees several rounds quickly
        Duration every = Duration.ofMillis(20);
        return new HealthCheck(timeout, every, null, 0, null, unhealthy, healthy, every, null, null,
                null, null, true, checker);
    }

    private static HealthCheck.Http http() {
        return new HealthCheck.Http("svc.local", "/healthz", null, List.of(
                new dev.inmesh.api.config.core.HeaderValueOption("x-probe", "1",
                        dev.inmesh.api.config.core.HeaderValueOption.AppendAction.APPEND_IF_EXISTS_OR_ADD, false)),
                List.of(), null, null, false);
    }

    private static Cluster cluster(HealthCheck hc, int... ports) {
        List<LbEndpoint> eps = new ArrayList<>();
        for (int p : ports) {
            eps.add(new LbEndpoint(new SocketAddress("127.0.0.1", p), "", null, 1, Metadata.EMPTY));
        }
        return cluster(hc, eps);
    }

    private static Cluster cluster(HealthCheck hc, List<LbEndpoint> eps) {
        return cluster("c", hc, eps);
    }

    private static Cluster cluster(String name, HealthCheck hc, List<LbEndpoint> eps) {
        ClusterLoadAssignment cla = new ClusterLoadAssignment(name,
                List.of(new LocalityLbEndpoints(Locality.EMPTY, eps, 1, 0)), 140);
        // a gRPC check needs HTTP/2 to the hosts, as in Envoy
        Cluster plain = Cluster.builder(name, DiscoveryType.STATIC).loadAssignment(cla)
                .http2(hc != null && hc.checker() instanceof HealthCheck.Grpc).metadata(Metadata.EMPTY).build();
        return hc == null ? plain : HealthCheckerTest.withHealthCheck(plain, hc);
    }

    private UpstreamCluster start(Cluster c) {
        manager = ClusterManager.create(env, Map.of("c", c), Map.of());
        return manager.clusters().get("c");
    }

    private static Host host(UpstreamCluster c, int port) {
        return c.hosts().stream().filter(h -> h.address().port() == port).findFirst().orElseThrow();
    }

    private static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("not within 10 s: " + what);
            }
            Thread.sleep(5);
        }
    }

    private static Set<Integer> picked(UpstreamCluster c) {
        Set<Integer> out = new HashSet<>();
        for (int i = 0; i < 100; i++) {
            out.add(c.chooseHost(LbContext.NONE).address().port());
        }
        return out;
    }

    private double stat(String name) {
        var g = registry.find("envoy_cluster_health_check_" + name).tag("cluster_name", "c").gauge();
        return g == null ? -1 : g.value();
    }

    @Test
    void aHostWhoseHealthEndpointAnswers503GetsNoTrafficUntilItPassesHealthyThresholdChecksAgain()
            throws Exception {
        Upstream good = upstream();
        Upstream bad = upstream();
        bad.status.set(503);
        UpstreamCluster c = start(cluster(check(http(), 2, 3), good.port, bad.port));
        Host goodHost = host(c, good.port);
        Host badHost = host(c, bad.port);
        // failures counted, not checks seen: a check seen just before the status changes below could pass
        await(() -> !goodHost.failedActiveHealthCheck() && stat("failure") >= 2, "the first checks");
        assertTrue(badHost.failedActiveHealthCheck());
        assertEquals(Set.of(good.port), picked(c));
        assertEquals("GET /healthz host=svc.local ua=Envoy/HC x-probe=1", good.seen.peek());

        bad.status.set(200);
        await(() -> !badHost.failedActiveHealthCheck(), "the bad host passing again");
        // healthy_threshold 3: three successes in a row before the host takes traffic again
        assertTrue(bad.passed.get() >= 3, bad.passed.get() + " checks passed");
        assertEquals(Set.of(good.port, bad.port), picked(c));
        // results first: a check can start and end between two reads
        double ended = stat("success") + stat("failure");
        assertTrue(stat("attempt") >= ended);
        assertEquals(2.0, stat("healthy"));
        // checks are not requests
        assertEquals(0, goodHost.stats().totalRequests());
    }

    /**
     * As Envoy's HTTP health checker, which formats request_headers_to_add with a stream info of its own: the checked
     * host as the upstream host, its protocol, the loopback as the downstream addresses, no request headers.
     */
    @Test
    void anHttpChecksHeaderValuesAreFormattedFromTheChecksOwnStream() throws Exception {
        Upstream u = upstream();
        HealthCheck.Http formatted = new HealthCheck.Http("svc.local", "/healthz", null, List.of(
                new dev.inmesh.api.config.core.HeaderValueOption("x-probe",
                        "%UPSTREAM_HOST% %PROTOCOL% %DOWNSTREAM_REMOTE_ADDRESS% [%REQ(user-agent)%] "
                                + "%UPSTREAM_METADATA(istio:workload)%",
                        dev.inmesh.api.config.core.HeaderValueOption.AppendAction.APPEND_IF_EXISTS_OR_ADD, false,
                        true)), List.of(), null, null, false);
        // the checked host's endpoint metadata is its upstream host's, as in Envoy's checker's stream
        start(cluster(check(formatted, 2, 1), List.of(new LbEndpoint(new SocketAddress("127.0.0.1", u.port), "", null,
                1, new Metadata(Map.of("istio", Map.of("workload", "ratings-v1")))))));
        await(() -> !u.seen.isEmpty(), "a check");
        assertEquals("GET /healthz host=svc.local ua=Envoy/HC x-probe=127.0.0.1:" + u.port
                + " HTTP/1.1 127.0.0.1:0 [] ratings-v1", u.seen.peek());
    }

    @Test
    void aCheckWithoutAHostNamesItsClusterAsTheHostEvenAnIstioClustersNameThatIsNoHostname() throws Exception {
        Upstream u = upstream();
        String istio = "outbound|9080||ratings.default.svc.cluster.local";
        HealthCheck.Http unnamed = new HealthCheck.Http("", "/healthz", null, null, null, null, null, false);
        manager = ClusterManager.create(env, Map.of(istio, cluster(istio, check(unnamed, 1, 1), List.of(
                new LbEndpoint(new SocketAddress("127.0.0.1", u.port), "", null, 1, Metadata.EMPTY)))), Map.of());
        Host h = manager.clusters().get(istio).hosts().iterator().next();
        await(() -> !h.failedActiveHealthCheck(), "a check answered");
        assertTrue(u.seen.peek().startsWith("GET /healthz host=" + istio + " "), u.seen.peek());
    }

    @Test
    void anEndpointsHealthCheckPortAndHostnameAreWhereAndAsWhatItIsChecked() throws Exception {
        Upstream health = upstream();
        int servingPort;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            servingPort = s.getLocalPort(); // closed: the checks do not go there
        }
        HealthCheck.Http unnamed = new HealthCheck.Http("", "/healthz", null, null, null, null, null, false);
        UpstreamCluster c = start(cluster(check(unnamed, 1, 1), List.of(new LbEndpoint(
                new SocketAddress("127.0.0.1", servingPort), "", null, 1, Metadata.EMPTY, List.of(),
                new dev.inmesh.api.config.endpoint.HealthCheckConfig(health.port, "hc.local", false)))));
        Host h = host(c, servingPort);
        await(() -> !h.failedActiveHealthCheck(), "the check on the health port");
        assertEquals("GET /healthz host=hc.local ua=Envoy/HC x-probe=null", health.seen.peek());
    }

    /**
     * As Envoy's getHostname for an L7 check: an endpoint's {@code health_check_config.hostname} is its checks'
     * {@code :authority} even where the check names a {@code host} (which is for the other endpoints).
     */
    @Test
    void anEndpointsHealthCheckHostnameOverridesTheHostTheCheckNames() throws Exception {
        Upstream named = upstream();
        Upstream plain = upstream();
        UpstreamCluster c = start(cluster(check(http(), 1, 1), List.of(new LbEndpoint(
                new SocketAddress("127.0.0.1", named.port), "", null, 1, Metadata.EMPTY, List.of(),
                new dev.inmesh.api.config.endpoint.HealthCheckConfig(0, "hc.local", false)),
                new LbEndpoint(new SocketAddress("127.0.0.1", plain.port), "", null, 1, Metadata.EMPTY))));
        await(() -> !host(c, named.port).failedActiveHealthCheck() && !host(c, plain.port).failedActiveHealthCheck(),
                "both checked");
        assertEquals("GET /healthz host=hc.local ua=Envoy/HC x-probe=1", named.seen.peek());
        assertEquals("GET /healthz host=svc.local ua=Envoy/HC x-probe=1", plain.seen.peek());
    }

    @Test
    void aTcpCheckFailsAClosedPortAsANetworkFailureAndPassesAnOpenOne() throws Exception {
        NetServer open = vertx.createNetServer().connectHandler(s -> { });
        int openPort = open.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        int closedPort;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            closedPort = s.getLocalPort();
        }
        UpstreamCluster c = start(cluster(check(new HealthCheck.Tcp(), 1, 1), openPort, closedPort));
        await(() -> stat("network_failure") >= 2 && stat("success") >= 1, "checks of both");
        assertFalse(host(c, openPort).failedActiveHealthCheck());
        assertTrue(host(c, closedPort).failedActiveHealthCheck());
        assertEquals(Set.of(openPort), picked(c));
    }

    /**
     * A TCP server that answers each {@code PING} with {@code reply} (in two writes, as a stream may split it),
     * counting the connections it accepted.
     */
    private int pingServer(String reply, AtomicInteger connections) throws Exception {
        NetServer server = vertx.createNetServer().connectHandler(sock -> {
            connections.incrementAndGet();
            sock.handler(b -> {
                if (b.toString().contains("PING")) {
                    sock.write(reply.substring(0, reply.length() / 2));
                    vertx.setTimer(5, t -> sock.write(reply.substring(reply.length() / 2)));
                }
            });
        });
        return server.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    @Test
    void aTcpCheckWithPayloadsPassesWhenTheAnswerHoldsEveryBlockInOrderOnAConnectionItKeeps() throws Exception {
        AtomicInteger goodConnections = new AtomicInteger();
        AtomicInteger badConnections = new AtomicInteger();
        int good = pingServer("+OK role:master\r\n", goodConnections);
        int bad = pingServer("+OK role:slave\r\n", badConnections);
        // Envoy Gateway's shape: send text (hex of "PING\r\n"), receive blocks "OK" then "master", not adjacent
        HealthCheck.Tcp tcp = new HealthCheck.Tcp(HealthCheck.Payload.of("PING\r\n".getBytes()), List.of(
                HealthCheck.Payload.of("OK".getBytes()), HealthCheck.Payload.of("master".getBytes())));
        // 1 s to answer: tens of the good host's checks run while the bad one times out, and one of them slower than
        // 300 ms on a loaded machine would time out too (its kept connection closed, the host failed)
        UpstreamCluster c = start(cluster(check(tcp, 1, 1, Duration.ofSeconds(1)), good, bad));
        await(() -> stat("success") >= 3 && stat("network_failure") >= 2, "checks of both");
        assertFalse(host(c, good).failedActiveHealthCheck());
        assertTrue(host(c, bad).failedActiveHealthCheck(), "its answer lacks a block: timed out");
        assertEquals(Set.of(good), picked(c));
        assertEquals(1, goodConnections.get(), "reuse_connection: one connection for every check");
        assertTrue(badConnections.get() >= 2, "a check that timed out closed its connection");
        // the blocks in the wrong order do not pass
        assertFalse(HealthChecker.payloadsFound(List.of(HealthCheck.Payload.of("master".getBytes()),
                HealthCheck.Payload.of("OK".getBytes())), io.vertx.core.buffer.Buffer.buffer("+OK role:master")));
    }

    @Test
    void anHttpCheckWithReceiveNeedsTheBlocksWithinTheResponseBufferAndTheStatus() throws Exception {
        Upstream u = upstream(); // answers "ok"
        HealthCheck.Http base = http();
        HealthCheck.Http wantsOk = new HealthCheck.Http(base.host(), base.path(), null, null, null, null, null, false,
                List.of(new HealthCheck.Payload("6f6b")), 1024);
        UpstreamCluster c = start(cluster(check(wantsOk, 1, 1), u.port));
        await(() -> stat("success") >= 2, "passing checks");
        assertFalse(host(c, u.port).failedActiveHealthCheck());
        manager.close();
        // "k" is past the first byte the buffer keeps: failed, though the status is expected
        HealthCheck.Http oneByte = new HealthCheck.Http(base.host(), base.path(), null, null, null, null, null,
                false, List.of(new HealthCheck.Payload("6b")), 1);
        UpstreamCluster d = start(cluster(check(oneByte, 1, 1), u.port));
        await(() -> stat("failure") >= 2, "failing checks");
        assertTrue(host(d, u.port).failedActiveHealthCheck());
    }

    @Test
    void aSubMillisecondTimeoutAndIntervalRunChecksEveryMillisecondAtLeast() throws Exception {
        AtomicInteger requests = new AtomicInteger();
        HttpServer silent = vertx.createHttpServer().requestHandler(req -> requests.incrementAndGet());
        int port = silent.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        // Envoy takes both as 0 ms: its checks then wait at least 1 ms apart, and time out at once
        HealthCheck tiny = new HealthCheck(Duration.ofNanos(500_000), Duration.ofNanos(100_000), null, 0, null, 1, 1,
                Duration.ofNanos(100_000), null, null, null, null, true, http());
        UpstreamCluster c = start(cluster(tiny, port));
        await(() -> stat("network_failure") >= 3, "checks that time out, one after another");
        assertTrue(host(c, port).activeHealthCheckTimedOut());
    }

    @Test
    void aNewClusterIsInUseOnlyOnceEachOfItsHostsHadItsFirstCheck() throws Exception {
        Upstream good = upstream();
        ConcurrentLinkedQueue<io.vertx.core.http.HttpServerRequest> held = new ConcurrentLinkedQueue<>();
        HttpServer slow = vertx.createHttpServer().requestHandler(held::add);
        int slowPort = slow.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        HealthCheck patient = new HealthCheck(Duration.ofSeconds(30), Duration.ofMillis(20), null, 0, null, 1, 1,
                Duration.ofMillis(20), null, null, null, null, true, http());
        UpstreamCluster c = start(cluster(patient, good.port, slowPort));
        await(() -> stat("success") >= 1 && !held.isEmpty(), "the good host's check, the slow one's asked");
        assertEquals(null, manager.cluster("c")); // warming: a request finds no cluster (NC)
        held.poll().response().setStatusCode(503).end();
        await(() -> manager.cluster("c") != null, "the cluster in use");
        assertEquals(Set.of(good.port), picked(c));
    }

    @Test
    void aCheckThatTimesOutFailsTheHostAsTimedOutAndARemovedHostIsNoLongerChecked() throws Exception {
        Upstream good = upstream();
        AtomicInteger silentRequests = new AtomicInteger();
        HttpServer silent = vertx.createHttpServer().requestHandler(req -> silentRequests.incrementAndGet());
        int silentPort = silent.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        Cluster both = cluster(check(http(), 1, 1), good.port, silentPort);
        UpstreamCluster c = start(both);
        await(() -> host(c, silentPort).activeHealthCheckTimedOut(), "the silent host's timeout");
        assertTrue(host(c, silentPort).failedActiveHealthCheck());

        Host goodHost = host(c, good.port);
        manager = manager.update(Map.of("c", cluster(check(http(), 1, 1), good.port)), Map.of());
        // a check in flight when the host left may still arrive: the count is read once it held still for 500 ms
        int afterRemoval = silentRequests.get();
        long giveUp = System.nanoTime() + 5_000_000_000L; // still checked after 5 s: the assertion below fails
        for (long still = System.nanoTime(); System.nanoTime() - still < 500_000_000L
                && System.nanoTime() < giveUp; ) {
            Thread.sleep(20);
            if (silentRequests.get() != afterRemoval) {
                afterRemoval = silentRequests.get();
                still = System.nanoTime();
            }
        }
        int goodBefore = good.seen.size();
        await(() -> good.seen.size() >= goodBefore + 3, "more checks of the host that stayed");
        assertEquals(afterRemoval, silentRequests.get());
        assertFalse(goodHost.failedActiveHealthCheck()); // kept its health across the update
    }

    /**
     * As Envoy's HTTP session, which closes its client when a check times out, with {@code reuse_connection} too: an
     * HTTP/2 check that timed out does not leave its connection to carry the next checks (resetting its stream alone
     * would), so a host stuck on that connection is checked on a new one.
     */
    @Test
    void anHttp2CheckThatTimesOutClosesItsConnectionAndTheNextCheckHasANewOne() throws Exception {
        AtomicInteger opened = new AtomicInteger();
        AtomicInteger closed = new AtomicInteger();
        AtomicInteger requests = new AtomicInteger();
        HttpServer server = vertx.createHttpServer().connectionHandler(conn -> {
            opened.incrementAndGet();
            conn.closeHandler(v -> closed.incrementAndGet());
        }).requestHandler(req -> {
            if (requests.incrementAndGet() > 1) {
                req.response().end("ok"); // the first check is never answered: it times out
            }
        });
        int port = server.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        HealthCheck.Http h2 = new HealthCheck.Http("", "/healthz", null, null, null, null, null, true);
        HealthCheck hc = check(h2, 2, 1);
        assertTrue(hc.reuseConnection());
        UpstreamCluster c = start(cluster(hc, port));
        await(() -> requests.get() >= 2 && closed.get() >= 1, "the timed out check's connection closed");
        await(() -> !host(c, port).failedActiveHealthCheck(), "a later check passed");
        assertTrue(opened.get() >= 2, opened.get() + " connections");
    }

    /** How a gRPC upstream answers {@code grpc.health.v1.Health/Check}. */
    enum Answer {
        SERVING,
        NOT_SERVING,
        /** A {@code SERVING} message, then {@code grpc-status: 14} (UNAVAILABLE). */
        UNAVAILABLE,
        /** HTTP 503 without gRPC. */
        HTTP_503,
        /** HTTP 200 with {@code grpc-status: 0} in the headers and nothing else (no message). */
        TRAILERS_ONLY,
        /** A message prefix that announces 5 MiB, then nothing: the check must not wait for the rest. */
        OVERSIZED,
        /** The stream reset. */
        RESET,
        /** SERVING, with a content type of parameters, which Envoy's {@code hasGrpcContentType} does not take. */
        PARAMETERS
    }

    /** A gRPC upstream (h2c) answering as {@link #answer} says, recording each call and counting its connections. */
    private static final class GrpcUpstream {
        final AtomicReference<Answer> answer = new AtomicReference<>(Answer.SERVING);
        final ConcurrentLinkedQueue<String> seen = new ConcurrentLinkedQueue<>();
        final ConcurrentLinkedQueue<Answer> answered = new ConcurrentLinkedQueue<>();
        final AtomicInteger connections = new AtomicInteger();
        int port;
    }

    private static Buffer healthResponse(int status) {
        // HealthCheckResponse{status = 1 (varint)}, framed: flag 0, length 2
        return Buffer.buffer().appendByte((byte) 0).appendInt(2).appendByte((byte) 0x08).appendByte((byte) status);
    }

    private GrpcUpstream grpcUpstream() throws Exception {
        GrpcUpstream u = new GrpcUpstream();
        HttpServer server = vertx.createHttpServer().connectionHandler(c -> u.connections.incrementAndGet())
                .requestHandler(req -> req.body().onSuccess(body -> {
                    // HealthCheckRequest{service = 1 (string)} after the 5-byte prefix: tag 0x0a, a one-byte length
                    String service = body.length() > 7 ? body.getString(7, body.length()) : "";
                    u.seen.add(req.version() + " " + req.method() + " " + req.uri() + " host=" + req.authority()
                            + " ct=" + req.getHeader("content-type") + " te=" + req.getHeader("te") + " ua="
                            + req.getHeader("user-agent") + " timeout=" + req.getHeader("grpc-timeout")
                            + " x-probe=" + req.getHeader("x-probe") + " service=" + service);
                    Answer a = u.answer.get();
                    u.answered.add(a);
                    HttpServerResponse r = req.response().putHeader("content-type", "application/grpc");
                    switch (a) {
                        case SERVING -> r.putTrailer("grpc-status", "0").end(healthResponse(1));
                        case NOT_SERVING -> r.putTrailer("grpc-status", "0").end(healthResponse(2));
                        case UNAVAILABLE -> r.putTrailer("grpc-status", "14").end(healthResponse(1));
                        case HTTP_503 -> r.setStatusCode(503).putHeader("content-type", "text/plain").end("no");
                        case TRAILERS_ONLY -> r.putHeader("grpc-status", "0").end();
                        case OVERSIZED -> r.write(Buffer.buffer().appendByte((byte) 0).appendInt(5 << 20));
                        case RESET -> r.reset();
                        case PARAMETERS -> r.putHeader("content-type", "application/grpc; charset=utf-8")
                                .putTrailer("grpc-status", "0").end(healthResponse(1));
                    }
                }));
        u.port = server.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        return u;
    }

    private static HealthCheck.Grpc grpc() {
        return new HealthCheck.Grpc("reviews", "grpc.local", List.of(new dev.inmesh.api.config.core.HeaderValueOption(
                "x-probe", "1", dev.inmesh.api.config.core.HeaderValueOption.AppendAction.APPEND_IF_EXISTS_OR_ADD,
                false)));
    }

    /**
     * A check every 20 ms while the host's checks pass, and 60 s after a failure (the cluster has no traffic: a
     * success that leaves the host healthy waits {@code no_traffic_healthy_interval}, anything else
     * {@code no_traffic_interval}): a test sees one failed check's effect, whether it failed the host or only moved it
     * toward failing.
     */
    private static HealthCheck slowAfterFailures(HealthCheck.Checker checker, int unhealthy, boolean reuse) {
        Duration every = Duration.ofMillis(20);
        // a timeout that a loaded machine's first connection does not reach, and short of the tests' 10 s wait
        return new HealthCheck(Duration.ofSeconds(5), every, null, 0, null, unhealthy, 1, Duration.ofSeconds(60),
                every, null, null, null, reuse, checker);
    }

    /**
     * As Envoy's gRPC session: a unary POST of a HealthCheckRequest naming the service, over h2c, with gRPC's headers,
     * {@code user-agent: Envoy/HC}, the check's timeout as {@code grpc-timeout}, the {@code initial_metadata}, and
     * the endpoint's health check hostname, else the check's {@code authority}, as {@code :authority}.
     */
    @Test
    void aGrpcCheckThatAnswersServingKeepsAHostHealthyAndCarriesTheServiceAuthorityAndMetadata() throws Exception {
        GrpcUpstream named = grpcUpstream();
        GrpcUpstream plain = grpcUpstream();
        UpstreamCluster c = start(cluster(slowAfterFailures(grpc(), 1, true), List.of(new LbEndpoint(
                new SocketAddress("127.0.0.1", named.port), "", null, 1, Metadata.EMPTY, List.of(),
                new dev.inmesh.api.config.endpoint.HealthCheckConfig(0, "hc.local", false)),
                new LbEndpoint(new SocketAddress("127.0.0.1", plain.port), "", null, 1, Metadata.EMPTY))));
        await(() -> named.seen.size() >= 3 && plain.seen.size() >= 3, "a few rounds of checks");
        assertFalse(host(c, named.port).failedActiveHealthCheck());
        assertFalse(host(c, plain.port).failedActiveHealthCheck());
        assertEquals(Set.of(named.port, plain.port), picked(c));
        String call = "HTTP_2 POST /grpc.health.v1.Health/Check host=%s ct=application/grpc te=trailers ua=Envoy/HC "
                + "timeout=5000m x-probe=1 service=reviews";
        assertEquals(call.formatted("hc.local"), named.seen.peek());
        assertEquals(call.formatted("grpc.local"), plain.seen.peek());
        assertEquals(0.0, stat("failure"));
        // reuse_connection: one connection for all of a host's checks
        assertEquals(1, named.connections.get());
    }

    /**
     * As Envoy, whose gRPC session reports anything but grpc-status OK with a SERVING message as an active failure:
     * it fails a healthy host at once, whatever {@code unhealthy_threshold} (5 here) says, and is no network failure;
     * an oversized message fails without waiting for the rest (which would be a timeout, a network failure).
     */
    @ParameterizedTest
    @EnumSource(value = Answer.class, names = {"NOT_SERVING", "UNAVAILABLE", "HTTP_503", "TRAILERS_ONLY", "OVERSIZED",
        "PARAMETERS"})
    void aGrpcAnswerOtherThanServingWithStatusOkFailsAHealthyHostAtOnce(Answer answer) throws Exception {
        GrpcUpstream u = grpcUpstream();
        UpstreamCluster c = start(cluster(slowAfterFailures(grpc(), 5, true), u.port));
        Host h = host(c, u.port);
        await(() -> !h.failedActiveHealthCheck(), "the first check passing");
        u.answer.set(answer);
        await(h::failedActiveHealthCheck, "the host failing");
        assertEquals(1, u.answered.stream().filter(a -> a == answer).count());
        assertEquals(0.0, stat("network_failure"));
        assertFalse(h.activeHealthCheckTimedOut());
    }

    @Test
    void aResetGrpcCheckIsANetworkFailureThatCountsTowardTheUnhealthyThreshold() throws Exception {
        GrpcUpstream u = grpcUpstream();
        Duration every = Duration.ofMillis(20);
        UpstreamCluster c = start(cluster(new HealthCheck(Duration.ofMillis(500), every, null, 0, null, 3, 1, every,
                null, null, null, null, true, grpc()), u.port));
        Host h = host(c, u.port);
        await(() -> !h.failedActiveHealthCheck(), "the first check passing");
        u.answer.set(Answer.RESET);
        await(h::failedActiveHealthCheck, "the host failing");
        assertTrue(u.answered.stream().filter(a -> a == Answer.RESET).count() >= 3);
        // the host is marked failed an instant before its third failure is counted
        await(() -> stat("network_failure") >= 3, "three network failures counted");
    }

    /**
     * As Envoy's session, whose client goes with it: the connection a removed host's checks kept (with
     * {@code reuse_connection}) is closed then, not left open until the client's idle timeout (60 s).
     */
    @Test
    void theConnectionARemovedHostsChecksKeptIsClosed() throws Exception {
        AtomicInteger open = new AtomicInteger();
        HttpServer server = vertx.createHttpServer().connectionHandler(conn -> {
            open.incrementAndGet();
            conn.closeHandler(v -> open.decrementAndGet());
        }).requestHandler(req -> req.response().end("ok"));
        int port = server.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        HealthCheck hc = check(http(), 1, 1);
        UpstreamCluster c = start(cluster(hc, port));
        await(() -> !host(c, port).failedActiveHealthCheck() && open.get() == 1, "a passed check's kept connection");

        manager = manager.update(Map.of("c", cluster(hc)), Map.of());
        assertTrue(c.hosts().isEmpty());
        await(() -> open.get() == 0, "the removed host's connection closed");
    }

    /**
     * As Envoy's session, which keeps its connection ({@code reuse_connection}) until the upstream closes it or a
     * check fails: the checks' client closes no idle connection, where Vert.x's closed one after 60 s (its keep-alive
     * timeouts) and a check after a longer interval connected anew. With the idle timeout shortened to 1 s, two checks
     * 2.5 s apart take two connections (the client's pool evicts an expired connection each second); with the
     * checker's own (none), one.
     */
    @Test
    void aReusedConnectionIsNotClosedForIdlingBetweenChecks() throws Exception {
        AtomicInteger connections = new AtomicInteger();
        AtomicInteger checks = new AtomicInteger();
        HttpServer server = vertx.createHttpServer().connectionHandler(c -> connections.incrementAndGet())
                .requestHandler(req -> {
                    checks.incrementAndGet();
                    req.response().end("ok");
                });
        int port = server.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        Host host = host(start(cluster(null, port)), port); // checked below by checkers of the test's own
        Duration apart = Duration.ofMillis(2500);
        HealthCheck hc = new HealthCheck(Duration.ofSeconds(5), apart, null, 0, null, 1, 1, apart, apart, apart,
                apart, apart, true, http());

        HealthChecker standard = new HealthChecker("c", hc, env, (h, changed) -> { }, null, () -> false);
        assertEquals(0, standard.clientOptions(false).getKeepAliveTimeout(), "HTTP/1: no idle timeout");
        assertEquals(0, standard.clientOptions(true).getHttp2KeepAliveTimeout(), "HTTP/2: no idle timeout");
        assertEquals(1, connectionsOfTwoChecks(standard, host, checks, connections));
        assertEquals(2, connectionsOfTwoChecks(new HealthChecker("c", hc, env, (h, changed) -> { }, null,
                () -> false, 1), host, checks, connections), "the shortened idle timeout closed the first");
    }

    /** The connections {@code checker} made for its first two checks of {@code host}, then stops it. */
    private static int connectionsOfTwoChecks(HealthChecker checker, Host host, AtomicInteger checks,
                                              AtomicInteger connections) throws InterruptedException {
        int before = connections.get();
        int first = checks.get();
        checker.setHosts(List.of(host));
        await(() -> checks.get() >= first + 2, "two checks");
        checker.close();
        return connections.get() - before;
    }

    @Test
    void withoutReuseConnectionEachGrpcCheckHasItsOwnConnection() throws Exception {
        GrpcUpstream u = grpcUpstream();
        UpstreamCluster c = start(cluster(slowAfterFailures(grpc(), 1, false), u.port));
        await(() -> u.seen.size() >= 3, "three checks");
        assertFalse(host(c, u.port).failedActiveHealthCheck());
        assertTrue(u.connections.get() >= 3, u.connections.get() + " connections");
    }

    /**
     * As Envoy's HTTP session, which closes its client after each check without {@code reuse_connection}: over
     * HTTP/2 too, where a client's keep-alive setting does not close the connection.
     */
    @Test
    void withoutReuseConnectionEachHttp2CheckHasItsOwnConnection() throws Exception {
        GrpcUpstream u = grpcUpstream();
        HealthCheck.Http h2 = new HealthCheck.Http("", "/healthz", null, null, null, null, null, true);
        UpstreamCluster c = start(cluster(slowAfterFailures(h2, 1, false), u.port));
        await(() -> u.seen.size() >= 3, "three checks");
        assertFalse(host(c, u.port).failedActiveHealthCheck());
        assertTrue(u.seen.peek().startsWith("HTTP_2 GET /healthz"), u.seen.peek());
        assertTrue(u.connections.get() >= 3, u.connections.get() + " connections");
    }
}
