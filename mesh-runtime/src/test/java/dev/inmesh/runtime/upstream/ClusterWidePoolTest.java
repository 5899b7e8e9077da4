package dev.inmesh.runtime.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.CircuitBreakers;
import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.CommonHttpProtocolOptions;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.endpoint.LbEndpoint;
import dev.inmesh.api.config.endpoint.Locality;
import dev.inmesh.api.config.endpoint.LocalityLbEndpoints;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The pools of a cluster of several hosts under the cluster's {@code max_connections}, through the cluster's HTTP
 * clients (no router): what a connection that could not be opened leaves behind.
 */
class ClusterWidePoolTest {
    private final Vertx vertx = Vertx.vertx();
    private final List<HttpServerRequest> held = Collections.synchronizedList(new ArrayList<>());
    private final AtomicInteger accepted = new AtomicInteger();

    @AfterEach
    void stop() throws Exception {
        vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }

    @Test
    void aConnectionThatCouldNotBeOpenedGivesItsPlaceUnderMaxConnectionsBack() throws Exception {
        int closed;
        try (ServerSocket s = new ServerSocket(0)) {
            closed = s.getLocalPort();
        }
        int first = holdingServer();
        int second = holdingServer();
        CircuitBreakers limits = new CircuitBreakers(List.of(new CircuitBreakers.Thresholds(
                CircuitBreakers.RoutingPriority.DEFAULT, 3, 1024, 1024, 3)));
        ClusterManager m = ClusterManager.create(vertx, Map.of("c", cluster(limits, closed, first, second)),
                Map.of());
        try {
            UpstreamCluster c = m.cluster("c");
            for (int i = 0; i < 2; i++) {
                Future<HttpClientResponse> refused = send(c, closed);
                await(refused::isComplete, "the closed port's connection fails");
                assertTrue(refused.failed());
            }
            send(c, first);
            await(() -> held.size() == 1, "the first host has its request");
            send(c, second);
            await(() -> held.size() == 2, "the second host has its request");
            // two connections open of max_connections 3: the first host opens its second; the two that failed to
            // open count no more
            send(c, first);
            await(() -> held.size() == 3, "the first host has its second request, on a connection of its own");
            assertEquals(3, accepted.get());
            assertEquals(3, c.circuitBreakers().openConnections());
            // now at max_connections: the next request for a host with connections waits for one of them
            Future<HttpClientResponse> waiting = send(c, second);
            held.get(1).response().end();
            await(waiting::isComplete, "the waiting request goes on the connection its host's request freed");
            assertEquals(3, accepted.get());
        } finally {
            m.close();
        }
    }

    @Test
    void aConnectionClosedAfterItsLastStreamGivesItsPlaceToARequestWaitingInItsPool() throws Exception {
        // h2c, one stream per connection (max_requests_per_connection 1), max_connections 3 across two hosts
        int first = holdingServer();
        int second = holdingServer();
        CircuitBreakers limits = new CircuitBreakers(List.of(new CircuitBreakers.Thresholds(
                CircuitBreakers.RoutingPriority.DEFAULT, 3, 1024, 1024, 3)));
        ClusterLoadAssignment cla = new ClusterLoadAssignment("c", List.of(new LocalityLbEndpoints(Locality.EMPTY,
                List.of(LbEndpoint.of("127.0.0.1", first), LbEndpoint.of("127.0.0.1", second)), 1, 0)),
                ClusterLoadAssignment.DEFAULT_OVERPROVISIONING_FACTOR);
        Cluster h2 = Cluster.builder("c", DiscoveryType.STATIC).lbPolicy(LbPolicy.ROUND_ROBIN)
                .connectTimeout(Duration.ofSeconds(2)).circuitBreakers(limits).loadAssignment(cla).http2(true)
                .commonHttpProtocolOptions(new CommonHttpProtocolOptions(null, null, 1)).build();
        ClusterManager m = ClusterManager.create(vertx, Map.of("c", h2), Map.of());
        try {
            UpstreamCluster c = m.cluster("c");
            send(c, first);
            send(c, second);
            await(() -> held.size() == 2, "each host has a request");
            send(c, first);
            await(() -> held.size() == 3, "the first host has its second request, on a connection of its own");
            assertEquals(3, c.circuitBreakers().openConnections());
            // at max_connections: the first host's next request waits
            Future<HttpClientResponse> waiting = send(c, first);
            Thread.sleep(200);
            assertEquals(3, held.size());
            // the first host's first connection carried its last stream: it closes once that is done, and its place
            // goes to the waiting request (the pool's other connection and the other host's stay busy), as Envoy's
            // pool, which gives a closed connection's place back before it opens another for its waiting requests
            HttpServerRequest firstOfFirst = held.get(0).localAddress().port() == first ? held.get(0) : held.get(1);
            firstOfFirst.response().end();
            await(waiting::isComplete, "the waiting request has a new connection");
            assertTrue(waiting.succeeded());
            assertEquals(4, accepted.get());
        } finally {
            m.close();
        }
    }

    private int holdingServer() throws Exception {
        // HTTP/1.1, or h2c with prior knowledge
        return vertx.createHttpServer(new HttpServerOptions().setHttp2ClearTextEnabled(true))
                .connectionHandler(conn -> accepted.incrementAndGet()).requestHandler(req -> {
                    if (held.size() < 3) {
                        held.add(req);
                    } else {
                        req.response().end();
                    }
                }).listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS).actualPort();
    }

    private static Cluster cluster(CircuitBreakers limits, int... ports) {
        List<LbEndpoint> eps = new ArrayList<>();
        for (int p : ports) {
            eps.add(LbEndpoint.of("127.0.0.1", p));
        }
        ClusterLoadAssignment cla = new ClusterLoadAssignment("c", List.of(new LocalityLbEndpoints(Locality.EMPTY,
                eps, 1, 0)), ClusterLoadAssignment.DEFAULT_OVERPROVISIONING_FACTOR);
        return Cluster.builder("c", DiscoveryType.STATIC).lbPolicy(LbPolicy.ROUND_ROBIN)
                .connectTimeout(Duration.ofSeconds(2)).circuitBreakers(limits).loadAssignment(cla).build();
    }

    /** A request to the host of {@code port}, through the cluster's pool for it. */
    private static Future<HttpClientResponse> send(UpstreamCluster c, int port) {
        Host host = c.hosts().stream().filter(h -> h.address().port() == port).findFirst().orElseThrow();
        return c.httpClient(host).request(HttpMethod.GET, "/").compose(req -> req.send());
    }

    private static void await(java.util.function.BooleanSupplier done, String what) throws InterruptedException {
        for (int i = 0; i < 200 && !done.getAsBoolean(); i++) {
            Thread.sleep(50);
        }
        assertTrue(done.getAsBoolean(), what);
    }
}
