package dev.inmesh.runtime.router;

import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.hosts;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.CommonHttpProtocolOptions;
import dev.inmesh.api.config.cluster.CommonLbConfig;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.runtime.upstream.ClusterManager;
import io.vertx.core.http.HttpServer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The connection lifetimes of {@code common_http_protocol_options} on the router's upstream connections: each
 * response names the client port of the connection that carried it.
 */
class RouterUpstreamConnectionTest {
    private final RouterRig rig = new RouterRig();
    private HttpServer server;

    @BeforeEach
    void start() throws Exception {
        server = rig.vertx.createHttpServer()
                .requestHandler(req -> req.response().end(String.valueOf(req.connection().remoteAddress().port())))
                .listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }

    @AfterEach
    void close() {
        rig.close();
    }

    private ClusterManager cluster(CommonHttpProtocolOptions lifetimes) {
        return rig.clusters(Cluster.builder("c", DiscoveryType.STATIC).lbPolicy(LbPolicy.ROUND_ROBIN)
                .connectTimeout(Duration.ofSeconds(2)).loadAssignment(hosts("c", server.actualPort()))
                .commonHttpProtocolOptions(lifetimes).build());
    }

    /** The client port of each of {@code n} requests in turn, after {@code pauseMillis} before each but the first. */
    private List<String> ports(ClusterManager clusters, int n, long pauseMillis) throws InterruptedException {
        Router router = rig.router();
        List<String> ports = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            if (i > 0 && pauseMillis > 0) {
                Thread.sleep(pauseMillis);
            }
            RouterRig.Result r = rig.call(router, get("/"), routeToC(""), clusters);
            assertEquals(200, r.status());
            ports.add(r.body());
        }
        return ports;
    }

    @Test
    void aConnectionCarriesAtMostMaxRequestsPerConnection() throws Exception {
        List<String> two = ports(cluster(new CommonHttpProtocolOptions(null, null, 2)), 4, 0);
        assertEquals(two.get(0), two.get(1));
        assertNotEquals(two.get(1), two.get(2));
        assertEquals(two.get(2), two.get(3));
        // 1, as in Istio's circuit breaking task: no keep-alive
        List<String> one = ports(cluster(new CommonHttpProtocolOptions(null, null, 1)), 3, 0);
        assertEquals(3, one.stream().distinct().count(), one.toString());
    }

    @Test
    void anIdleConnectionIsClosedAfterTheIdleTimeoutAndNotBefore() throws Exception {
        List<String> shortIdle = ports(cluster(new CommonHttpProtocolOptions(Duration.ofSeconds(1), null, 0)), 2,
                2500);
        assertNotEquals(shortIdle.get(0), shortIdle.get(1));
        List<String> envoyDefault = ports(cluster(null), 2, 2500);
        assertEquals(envoyDefault.get(0), envoyDefault.get(1));
    }

    @Test
    void anOldConnectionTakesNoNewRequestAfterTheMaxConnectionDuration() throws Exception {
        ClusterManager clusters = cluster(new CommonHttpProtocolOptions(null, Duration.ofSeconds(1), 0));
        List<String> ports = ports(clusters, 2, 0);
        assertEquals(ports.get(0), ports.get(1));
        Thread.sleep(2200); // Vert.x's pool retires old connections once a second
        assertNotEquals(ports.get(1), ports(clusters, 1, 0).get(0));
    }

    @Test
    void aHostSetChangeDrainsEveryConnectionWhenCloseConnectionsOnHostSetChangeIsSet() throws Exception {
        HttpServer other = rig.vertx.createHttpServer().requestHandler(req -> req.response().end("other"))
                .listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        for (boolean close : new boolean[] {false, true}) {
            CommonLbConfig common = CommonLbConfig.DEFAULTS.withCloseConnectionsOnHostSetChange(close);
            ClusterManager before = rig.clusters(withHosts(common, server.actualPort()));
            String first = ports(before, 1, 0).get(0);
            ClusterManager after = before.update(Map.of("c", withHosts(common, server.actualPort(),
                    other.actualPort())), Map.of());
            try {
                List<String> next = ports(after, 2, 0); // round robin: one of them is the first host's
                String again = next.get(0).equals("other") ? next.get(1) : next.get(0);
                // as Envoy, the pools drain when a host joins or leaves: the host that stayed gets a new connection
                assertEquals(close, !again.equals(first), "close_connections_on_host_set_change " + close);
            } finally {
                after.close();
            }
        }
    }

    private static Cluster withHosts(CommonLbConfig common, int... ports) {
        return Cluster.builder("c", DiscoveryType.STATIC).lbPolicy(LbPolicy.ROUND_ROBIN)
                .connectTimeout(Duration.ofSeconds(2)).commonLbConfig(common).loadAssignment(hosts("c", ports)).build();
    }
}
