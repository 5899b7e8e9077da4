package dev.inmesh.runtime.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.core.SocketAddress;
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

    @BeforeEach
    void start() throws Exception {
        vertx = Vertx.vertx();
        server = vertx.createHttpServer(new HttpServerOptions().setHttp2ClearTextEnabled(true))
                .requestHandler(req -> req.response().end(req.version() + " " + req.connection().remoteAddress()
                        .hostAddress()))
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
        Cluster cluster = new Cluster("local", DiscoveryType.STATIC, "", null, null, null, null, null, null,
                new SocketAddress("127.0.0.1", 0), inline, null, null, http2, null);
        ClusterManager m = ClusterManager.create(vertx, Map.of("local", cluster), Map.of());
        try {
            UpstreamCluster c = m.cluster("local");
            Host host = c.chooseHost(LbContext.NONE);
            HttpClient client = c.httpClient(host);
            assertSame(client, c.httpClient(host));
            String body = client.request(HttpMethod.GET, "/")
                    .compose(req -> req.send().compose(resp -> resp.body()))
                    .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS).toString();
            assertEquals((http2 ? "HTTP_2" : "HTTP_1_1") + " 127.0.0.1", body);
            assertEquals(1, c.circuitBreakers().openConnections());
        } finally {
            m.close();
        }
    }
}
