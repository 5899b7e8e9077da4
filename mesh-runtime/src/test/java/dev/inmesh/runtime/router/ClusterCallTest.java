package dev.inmesh.runtime.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.CircuitBreakers;
import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.OutlierDetection;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.endpoint.LbEndpoint;
import dev.inmesh.api.config.endpoint.LocalityLbEndpoints;
import dev.inmesh.runtime.upstream.CircuitBreakerState;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.Exchange;
import dev.inmesh.runtime.upstream.UpstreamEnvironment;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A filter's call through a named cluster ({@link ClusterCall}): its timeout resets what it sent, or cancels it while
 * it waits for a connection.
 */
class ClusterCallTest {
    private final Vertx vertx = Vertx.vertx();

    @AfterEach
    void close() throws Exception {
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    @Test
    void aCallThatTimesOutWhileItWaitsForAConnectionLeavesThePoolsQueueAskedFromOutsideVertx() throws Exception {
        // one connection to the service and one call waiting for it: a call queues while an earlier one holds it
        List<String> received = new CopyOnWriteArrayList<>();
        Promise<Void> releaseFirst = Promise.promise();
        HttpServer server = vertx.createHttpServer().requestHandler(req -> {
            received.add(req.path());
            if (req.path().equals("/first")) {
                releaseFirst.future().onComplete(v -> req.response().end("first"));
            } else {
                req.response().end(req.path());
            }
        }).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        io.micrometer.prometheusmetrics.PrometheusMeterRegistry reg = registry();
        ClusterManager clusters = oneConnectionTo(server.actualPort(), reg);
        // what Vert.x logs of the client's requests: the reset of the call that timed out is no error of its own
        List<String> severe = new CopyOnWriteArrayList<>();
        java.util.logging.Logger vertxRequests = java.util.logging.Logger.getLogger(
                "io.vertx.core.http.impl.HttpClientRequestImpl");
        java.util.logging.Handler logged = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord r) {
                if (r.getLevel().intValue() >= java.util.logging.Level.SEVERE.intValue()) {
                    severe.add(r.getMessage());
                }
            }

            @Override
            public void flush() {}

            @Override
            public void close() {}
        };
        vertxRequests.addHandler(logged);
        try {
            Future<Exchange.Answer> first = call(clusters, "/first", null);
            assertTrue(waitFor(() -> received.contains("/first")), "the first call holds the connection");

            // from a thread outside Vert.x: the call times out while it waits for the connection, with no request yet
            Future<Exchange.Answer> second = call(clusters, "/second", Duration.ofMillis(20));
            Exception timedOut = assertThrows(Exception.class, () -> second.await(10, TimeUnit.SECONDS));
            assertEquals("timeout", timedOut.getMessage());

            // as Envoy's async client cancels its pending request, the call that timed out left the pool's queue:
            // the next may wait (max_pending_requests 1), and has the connection once it is free
            Future<Exchange.Answer> third = call(clusters, "/third", null);
            releaseFirst.complete();
            assertEquals("first", first.await(10, TimeUnit.SECONDS).body().toString());
            assertEquals("/third", third.await(10, TimeUnit.SECONDS).body().toString());
            assertEquals(List.of("/first", "/third"), received, "the call that timed out never reached the service");
            assertEquals(List.of(), severe, "a timed-out call's reset is its answer's failure, not logged SEVERE");
            assertEquals(3.0, stat(reg, "upstream_rq_pending_total"), "each call waited, the first for its connection "
                    + "to open, as in Envoy");
            assertEquals(1.0, stat(reg, "upstream_rq_cancelled"), "the second call's wait was given up");
            assertEquals(0.0, stat(reg, "upstream_rq_pending_active"));
        } finally {
            vertxRequests.removeHandler(logged);
            clusters.close();
        }
    }

    /**
     * As Envoy's async client, whose calls go through a router: a filter's calls count in the service's cluster
     * statistics (total, active, completed, by code and class, timeouts, the time of whole answers) and tell the
     * host's outlier detection their outcomes. Before, they counted nowhere, and a failing authorizer was never
     * ejected.
     */
    @Test
    void aCallCountsInItsClustersStatisticsAndItsHostsOutlierDetection() throws Exception {
        HttpServer server = vertx.createHttpServer().requestHandler(req -> {
            switch (req.path()) {
                case "/ok" -> req.response().end("ok");
                case "/slow" -> vertx.setTimer(2_000, t -> req.response().end("late"));
                default -> req.response().setStatusCode(503).end("down");
            }
        }).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        io.micrometer.prometheusmetrics.PrometheusMeterRegistry reg = registry();
        var metrics = dev.inmesh.runtime.stats.MeshMetrics.create(reg, dev.inmesh.runtime.stats.WorkloadInfo.UNKNOWN);
        OutlierDetection d = OutlierDetection.DEFAULTS;
        // two consecutive 5xx (a timeout counts as a 504) eject, the only host too (max_ejection_percent 100)
        OutlierDetection twoFailuresEject = new OutlierDetection(2, d.interval(), d.baseEjectionTime(),
                d.maxEjectionTime(), 100, d.enforcingConsecutive5xx(), d.enforcingSuccessRate(),
                d.successRateMinimumHosts(), d.successRateRequestVolume(), d.successRateStdevFactor(),
                d.consecutiveGatewayFailure(), d.enforcingConsecutiveGatewayFailure(),
                d.splitExternalLocalOriginErrors(), d.consecutiveLocalOriginFailure(),
                d.enforcingConsecutiveLocalOriginFailure(), d.enforcingLocalOriginSuccessRate(),
                d.failurePercentageThreshold(), d.enforcingFailurePercentage(),
                d.enforcingFailurePercentageLocalOrigin(), d.failurePercentageMinimumHosts(),
                d.failurePercentageRequestVolume(), d.alwaysEjectOneHost(), d.maxEjectionTimeJitter());
        ClusterManager clusters = ClusterManager.create(UpstreamEnvironment.of(vertx, metrics::upstream),
                Map.of("svc", cluster(server.actualPort(), CircuitBreakers.DEFAULTS, twoFailuresEject)), Map.of());
        try {
            assertEquals(200, call(clusters, "/ok", Duration.ofSeconds(10)).await(10, TimeUnit.SECONDS).status());
            assertThrows(Exception.class, () -> call(clusters, "/slow", Duration.ofMillis(50))
                    .await(10, TimeUnit.SECONDS));
            var host = clusters.cluster("svc").hosts().iterator().next();
            assertEquals(false, host.outlier().ejected(), "the timeout is the first consecutive 5xx of two");
            assertEquals(503, call(clusters, "/down", Duration.ofSeconds(10)).await(10, TimeUnit.SECONDS).status());

            assertEquals(3.0, stat(reg, "upstream_rq_total"));
            assertEquals(3.0, stat(reg, "upstream_rq_completed"));
            assertEquals(0.0, stat(reg, "upstream_rq_active"));
            assertEquals(1.0, stat(reg, "upstream_rq_timeout"));
            assertEquals(1.0, reg.find("envoy_cluster_upstream_rq_xx").tags("cluster_name", "svc",
                    "response_code_class", "2xx").gauge().value());
            assertEquals(2.0, reg.find("envoy_cluster_upstream_rq_xx").tags("cluster_name", "svc",
                    "response_code_class", "5xx").gauge().value(), "the 503 answered and the timeout's 504");
            assertEquals(2L, reg.find("envoy_cluster_upstream_rq_time").tag("cluster_name", "svc").summary().count(),
                    "the two answers come whole are timed, not the timeout");
            assertTrue(host.outlier().ejected(), "the timeout and the 503 eject the service's host");
        } finally {
            clusters.close();
        }
    }

    private static double stat(io.micrometer.prometheusmetrics.PrometheusMeterRegistry reg, String name) {
        var m = reg.find("envoy_cluster_" + name).tag("cluster_name", "svc").meter(); // a gauge, or a counter
        return m == null ? 0 : m.measure().iterator().next().getValue();
    }

    private static Future<Exchange.Answer> call(ClusterManager clusters, String path, Duration timeout) {
        return ClusterCall.send(clusters, "svc", false, ro -> ro.setURI(path), Buffer.buffer("x"), null, timeout);
    }

    /**
     * A call beyond the cluster's {@code max_requests} overflows, unsent, as the router's requests do: Envoy's async
     * client goes through its breakers. Before, a filter's calls took no request slot.
     */
    @Test
    void aCallBeyondMaxRequestsOverflows() throws Exception {
        List<String> received = new CopyOnWriteArrayList<>();
        Promise<Void> release = Promise.promise();
        HttpServer server = holding(received, release);
        io.micrometer.prometheusmetrics.PrometheusMeterRegistry reg = registry();
        ClusterManager clusters = limited(server.actualPort(), reg, 1024, 1024, 1);
        try {
            Future<Exchange.Answer> first = call(clusters, "/first", null);
            assertTrue(waitFor(() -> received.contains("/first")), "the first call holds the only request slot");
            Exception overflow = assertThrows(Exception.class, () -> call(clusters, "/second", null)
                    .await(10, TimeUnit.SECONDS));
            assertEquals("overflow", overflow.getMessage());
            assertEquals(1.0, stat(reg, "upstream_rq_pending_overflow"));
            release.complete();
            assertEquals("/first", first.await(10, TimeUnit.SECONDS).body().toString());
            assertEquals("/third", call(clusters, "/third", null).await(10, TimeUnit.SECONDS).body().toString(),
                    "the slot is given back when a call ends");
            assertEquals(List.of("/first", "/third"), received);
        } finally {
            clusters.close();
        }
    }

    /**
     * A call waiting for the cluster's only connection holds none of its {@code max_requests}, as Envoy's pool counts
     * a request there only once it is attached to a connection: with {@code max_requests} 1 it waits its turn instead
     * of overflowing. Before, the first call's slot, held from the start, refused the second at once.
     */
    @Test
    void aCallWaitingForAConnectionHoldsNoRequestSlot() throws Exception {
        List<String> received = new CopyOnWriteArrayList<>();
        Promise<Void> release = Promise.promise();
        HttpServer server = holding(received, release);
        io.micrometer.prometheusmetrics.PrometheusMeterRegistry reg = registry();
        ClusterManager clusters = limited(server.actualPort(), reg, 1, 10, 1);
        try {
            Future<Exchange.Answer> first = call(clusters, "/first", null);
            assertTrue(waitFor(() -> received.contains("/first")), "the first call has the only connection");
            Future<Exchange.Answer> second = call(clusters, "/second", null);
            CircuitBreakerState breakers = clusters.cluster("svc").circuitBreakers();
            assertTrue(waitFor(() -> breakers.pendingRequests() == 1), "the second call waits for the connection");
            assertEquals(1, breakers.activeRequests(), "only the call on the connection holds a slot");
            release.complete();
            assertEquals("/first", first.await(10, TimeUnit.SECONDS).body().toString());
            assertEquals("/second", second.await(10, TimeUnit.SECONDS).body().toString());
            assertEquals(0.0, stat(reg, "upstream_rq_pending_overflow"));
            assertTrue(waitFor(() -> breakers.activeRequests() == 0), "every slot given back");
        } finally {
            clusters.close();
        }
    }

    /**
     * A call that finds the cluster's {@code max_pending_requests} full is the cluster's overflow
     * ({@code upstream_rq_pending_overflow}), as Envoy's pool refuses it, and no fault of the host's: neither a connect
     * failure nor an outlier report (Envoy's router ignores an overflow's reset for outlier detection). Before, it
     * counted as the host's connect failure.
     */
    @Test
    void aCallBeyondMaxPendingRequestsOverflowsWithoutBlamingTheHost() throws Exception {
        List<String> received = new CopyOnWriteArrayList<>();
        Promise<Void> release = Promise.promise();
        HttpServer server = holding(received, release);
        io.micrometer.prometheusmetrics.PrometheusMeterRegistry reg = registry();
        ClusterManager clusters = oneConnectionTo(server.actualPort(), reg);
        try {
            Future<Exchange.Answer> first = call(clusters, "/first", null);
            assertTrue(waitFor(() -> received.contains("/first")), "the first call has the only connection");
            Future<Exchange.Answer> second = call(clusters, "/second", null);
            assertTrue(waitFor(() -> stat(reg, "upstream_rq_pending_active") == 1.0), "the second call waits");
            assertThrows(Exception.class, () -> call(clusters, "/third", null).await(10, TimeUnit.SECONDS));
            assertEquals(1.0, stat(reg, "upstream_rq_pending_overflow"));
            assertEquals(0.0, stat(reg, "upstream_cx_connect_fail"));
            var host = clusters.cluster("svc").hosts().iterator().next();
            assertEquals(0L, host.stats().all().stream().filter(s -> s.name().equals("cx_connect_fail"))
                    .findFirst().orElseThrow().value(), "the host's connections did not fail");
            release.complete();
            assertEquals("/first", first.await(10, TimeUnit.SECONDS).body().toString());
            assertEquals("/second", second.await(10, TimeUnit.SECONDS).body().toString());
            assertEquals(3.0, stat(reg, "upstream_rq_completed"));
            assertEquals(0.0, stat(reg, "upstream_rq_active"));
        } finally {
            clusters.close();
        }
    }

    /**
     * A call whose connection fails counts in the cluster's {@code upstream_cx_connect_fail}, as every connection
     * Envoy's pools fail to open does, the async client's too. Before, only the host's statistic counted it.
     */
    @Test
    void aCallWhoseConnectionFailsCountsInTheClustersConnectFailures() throws Exception {
        HttpServer closed = vertx.createHttpServer().requestHandler(req -> req.response().end())
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        int port = closed.actualPort();
        closed.close().await(10, TimeUnit.SECONDS);
        io.micrometer.prometheusmetrics.PrometheusMeterRegistry reg = registry();
        ClusterManager clusters = oneConnectionTo(port, reg);
        try {
            assertThrows(Exception.class, () -> call(clusters, "/x", Duration.ofSeconds(10))
                    .await(10, TimeUnit.SECONDS));
            assertEquals(1.0, stat(reg, "upstream_cx_connect_fail"));
            assertEquals(1.0, stat(reg, "upstream_cx_total"), "made, then failed to connect, as Envoy counts it");
            assertEquals(1.0, reg.find("envoy_cluster_upstream_rq_xx").tags("cluster_name", "svc",
                    "response_code_class", "5xx").gauge().value(), "the router's 503");
            assertEquals(0.0, stat(reg, "upstream_rq_active"));
            // as Envoy's pool, which counts a request in upstream_rq_total (and the host's rq_total) when it
            // attaches it to a connection: a call that never had one is completed (its 503) but not counted there
            assertEquals(0.0, stat(reg, "upstream_rq_total"));
            assertEquals(1.0, stat(reg, "upstream_rq_completed"));
            assertEquals(0L, clusters.cluster("svc").hosts().iterator().next().stats().totalRequests());
        } finally {
            clusters.close();
        }
    }

    /**
     * A call whose answer's headers came before its timeout counts their status, and its timeout neither as
     * {@code upstream_rq_timeout} nor as a 504 or a timeout of its host's, as Envoy's router, which charges a response
     * code when its headers come and records a timeout only for an upstream request still awaiting headers. Before,
     * the call counted a 504 and a timeout held against its host.
     */
    @Test
    void aCallWhoseHeadersCameBeforeItsTimeoutCountsTheirStatusNotATimeout() throws Exception {
        HttpServer server = vertx.createHttpServer().requestHandler(req -> {
            req.response().setChunked(true).writeHead(); // the headers now, the body never
        }).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        io.micrometer.prometheusmetrics.PrometheusMeterRegistry reg = registry();
        ClusterManager clusters = oneConnectionTo(server.actualPort(), reg);
        try {
            Exception timeout = assertThrows(Exception.class, () -> call(clusters, "/x", Duration.ofMillis(300))
                    .await(10, TimeUnit.SECONDS));
            assertEquals("timeout", timeout.getMessage());
            assertEquals(0.0, stat(reg, "upstream_rq_timeout"));
            assertEquals(1.0, stat(reg, "upstream_rq_completed"));
            assertEquals(1.0, reg.find("envoy_cluster_upstream_rq_xx").tags("cluster_name", "svc",
                    "response_code_class", "2xx").gauge().value(), "the status its headers brought");
            assertEquals(0.0, stat(reg, "upstream_rq_active"));
            var host = clusters.cluster("svc").hosts().iterator().next();
            assertEquals(0L, host.stats().all().stream().filter(s -> s.name().equals("rq_timeout")).findFirst()
                    .orElseThrow().value(), "no timeout of the host's");
        } finally {
            clusters.close();
        }
    }

    /**
     * A call whose request cannot be made (its filter's preparation fails) fails at once and takes nothing of its
     * cluster's. Before, asked from outside Vert.x, it never answered and kept its {@code max_requests} slot.
     */
    @Test
    void aCallThatCannotBePreparedFailsAndKeepsNoRequestSlot() throws Exception {
        HttpServer server = vertx.createHttpServer().requestHandler(req -> req.response().end(req.path()))
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        CircuitBreakers oneRequest = new CircuitBreakers(List.of(new CircuitBreakers.Thresholds(
                CircuitBreakers.RoutingPriority.DEFAULT, 1024, 1024, 1, 3)));
        ClusterManager clusters = ClusterManager.create(UpstreamEnvironment.of(vertx,
                dev.inmesh.runtime.stats.MeshMetrics.create(registry(), dev.inmesh.runtime.stats.WorkloadInfo.UNKNOWN)
                        ::upstream), Map.of("svc", cluster(server.actualPort(), oneRequest, null)), Map.of());
        try {
            Exception failed = assertThrows(Exception.class, () -> ClusterCall.send(clusters, "svc", false, ro -> {
                throw new IllegalArgumentException("no such method");
            }, Buffer.buffer(), null, Duration.ofSeconds(10)).await(5, TimeUnit.SECONDS));
            assertEquals("no such method", failed.getMessage());
            assertEquals("/next", call(clusters, "/next", null).await(10, TimeUnit.SECONDS).body().toString(),
                    "the only request slot is free");
        } finally {
            clusters.close();
        }
    }

    /** A service that notes each request's path in {@code received}, then answers it with it once released. */
    private HttpServer holding(List<String> received, Promise<Void> release) throws Exception {
        return vertx.createHttpServer().requestHandler(req -> {
            received.add(req.path());
            release.future().onComplete(v -> req.response().end(req.path()));
        }).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
    }

    private static io.micrometer.prometheusmetrics.PrometheusMeterRegistry registry() {
        return new io.micrometer.prometheusmetrics.PrometheusMeterRegistry(
                io.micrometer.prometheusmetrics.PrometheusConfig.DEFAULT);
    }

    /** A cluster {@code svc} of one host, with one connection and one request waiting for it. */
    private ClusterManager oneConnectionTo(int port, io.micrometer.prometheusmetrics.PrometheusMeterRegistry reg) {
        return limited(port, reg, 1, 1, 1024);
    }

    /** A cluster {@code svc} of one host with these circuit breakers (and 3 retries), counting in {@code reg}. */
    private ClusterManager limited(int port, io.micrometer.prometheusmetrics.PrometheusMeterRegistry reg,
                                   long maxConnections, long maxPending, long maxRequests) {
        CircuitBreakers limits = new CircuitBreakers(List.of(new CircuitBreakers.Thresholds(
                CircuitBreakers.RoutingPriority.DEFAULT, maxConnections, maxPending, maxRequests, 3)));
        return ClusterManager.create(UpstreamEnvironment.of(vertx,
                dev.inmesh.runtime.stats.MeshMetrics.create(reg, dev.inmesh.runtime.stats.WorkloadInfo.UNKNOWN)
                        ::upstream), Map.of("svc", cluster(port, limits, null)), Map.of());
    }

    /** A cluster {@code svc} of one host. */
    private static Cluster cluster(int port, CircuitBreakers breakers, OutlierDetection outliers) {
        ClusterLoadAssignment hosts = new ClusterLoadAssignment("svc", List.of(new LocalityLbEndpoints(null,
                List.of(new LbEndpoint(new SocketAddress("127.0.0.1", port), "", null, 1, null)), 1, 0)), 140);
        return Cluster.builder("svc", DiscoveryType.STATIC).circuitBreakers(breakers).outlierDetection(outliers)
                .loadAssignment(hosts).build();
    }

    /** Whether {@code condition} holds within 10 s, looking every 10 ms. */
    private static boolean waitFor(java.util.function.BooleanSupplier condition) throws InterruptedException {
        for (int i = 0; i < 1000 && !condition.getAsBoolean(); i++) {
            Thread.sleep(10);
        }
        return condition.getAsBoolean();
    }
}
