package dev.inmesh.runtime.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.CircuitBreakers;
import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.endpoint.LbEndpoint;
import dev.inmesh.api.config.endpoint.LocalityLbEndpoints;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.Exchange;
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
        ClusterManager clusters = oneConnectionTo(server.actualPort());
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
        } finally {
            vertxRequests.removeHandler(logged);
            clusters.close();
        }
    }

    private static Future<Exchange.Answer> call(ClusterManager clusters, String path, Duration timeout) {
        return ClusterCall.send(clusters, "svc", false, ro -> ro.setURI(path), Buffer.buffer("x"), null, timeout);
    }

    /** A cluster {@code svc} of one host, with one connection and one request waiting for it. */
    private ClusterManager oneConnectionTo(int port) {
        ClusterLoadAssignment hosts = new ClusterLoadAssignment("svc", List.of(new LocalityLbEndpoints(null,
                List.of(new LbEndpoint(new SocketAddress("127.0.0.1", port), "", null, 1, null)), 1, 0)), 140);
        CircuitBreakers oneConnection = new CircuitBreakers(List.of(new CircuitBreakers.Thresholds(
                CircuitBreakers.RoutingPriority.DEFAULT, 1, 1, 1024, 3)));
        Cluster svc = new Cluster("svc", DiscoveryType.STATIC, "", null, null, null, oneConnection, null, null, null,
                hosts, null, null, false, null);
        return ClusterManager.create(vertx, Map.of("svc", svc), Map.of());
    }

    /** Whether {@code condition} holds within 10 s, looking every 10 ms. */
    private static boolean waitFor(java.util.function.BooleanSupplier condition) throws InterruptedException {
        for (int i = 0; i < 1000 && !condition.getAsBoolean(); i++) {
            Thread.sleep(10);
        }
        return condition.getAsBoolean();
    }
}
