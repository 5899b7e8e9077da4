package dev.inmesh.interception;

import static dev.inmesh.runtime.testing.LoopbackPorts.freePort;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.inmesh.interception.proxy.AdminHook;
import dev.inmesh.interception.proxy.ProxyServer;
import dev.inmesh.interception.proxy.StandaloneProxy;
import dev.inmesh.runtime.router.Router;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.upstream.UpstreamEnvironment;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.ads.XdsFixtures;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerRequest;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The standalone proxy starts as Envoy's server: its admin answers {@code /ready} with {@code PRE_INITIALIZING}
 * while the first configuration's clusters with health checks have their first round, and its listeners accept
 * connections only after that (Envoy's listen sockets listen when its workers start). The upstream holds each check
 * until the test answers it.
 */
@Timeout(60)
class ProxyInitializationTest {
    @TempDir
    Path dir;
    private final Vertx upstreams = Vertx.vertx();
    private final LinkedBlockingQueue<HttpServerRequest> held = new LinkedBlockingQueue<>();
    private CompletableFuture<StandaloneProxy> proxy;

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.get(30, TimeUnit.SECONDS).close();
        }
        upstreams.close().await(10, TimeUnit.SECONDS);
    }

    private static String config(int listener, int upstream) {
        return """
                static_resources:
                  listeners:
                  - name: plain
                    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.tcp_proxy
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                          stat_prefix: plain
                          cluster: checked
                  clusters:
                  - name: checked
                    type: STATIC
                    connect_timeout: 1s
                    load_assignment:
                      cluster_name: checked
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                    health_checks:
                    - timeout: 60s
                      interval: 60s
                      unhealthy_threshold: 1
                      healthy_threshold: 1
                      http_health_check: {path: /healthz}
                """.formatted(listener, upstream);
    }

    private static HttpResponse<String> get(int port, String path) throws Exception {
        return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
    }

    private static boolean accepts(int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), 1000);
            return true;
        } catch (ConnectException e) {
            return false;
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void theListenersAcceptOnlyOnceTheFirstHealthChecksCompletedAndReadyIsPreInitializingMeanwhile() throws Exception {
        int upstream = upstream();
        int listener = freePort();
        int other = freePort();
        int admin = other != listener ? other : freePort(); // the kernel may hand out one port twice in a row
        Path config = dir.resolve("proxy.yaml");
        Files.writeString(config, config(listener, upstream));
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        AdminHook hook = (vertx, snapshots, addresses, drain, xds, sds) -> ProxyCommand.adminHook(registry, config, "n",
                () -> { }).start(vertx, snapshots, new AdminHook.Addresses(new InetSocketAddress("127.0.0.1",
                admin), new InetSocketAddress("127.0.0.1", 0), new InetSocketAddress("127.0.0.1", 0),
                new InetSocketAddress("127.0.0.1", 0)), drain, xds);
        // start blocks until the listeners are bound: on a thread of its own
        proxy = CompletableFuture.supplyAsync(() -> {
            try {
                return StandaloneProxy.start(new StandaloneProxy.Settings(config, -1, -1, 1, null, hook));
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });

        HttpServerRequest check = held.poll(10, TimeUnit.SECONDS);
        assertEquals("/healthz", check.path());
        XdsFixtures.await(() -> {
            try {
                return get(admin, "/ready").statusCode() == 503;
            } catch (Exception e) {
                return false; // not bound yet
            }
        }, Duration.ofSeconds(10), "the admin server");
        assertEquals("PRE_INITIALIZING\n", get(admin, "/ready").body());
        assertEquals(false, accepts(listener));
        assertThrows(java.util.concurrent.TimeoutException.class, () -> proxy.get(200, TimeUnit.MILLISECONDS));

        check.response().end("ok");
        proxy.get(10, TimeUnit.SECONDS);
        assertEquals(true, accepts(listener));
        assertEquals("LIVE\n", get(admin, "/ready").body());
    }

    @Test
    void aFirstConfigurationFromTheControlPlaneIsBoundOnceItsClustersAreInitialized() throws Exception {
        int upstream = upstream();
        int listener = freePort();
        SnapshotHolder snapshots = new SnapshotHolder(UpstreamEnvironment.of(upstreams));
        ProxyServer server = new ProxyServer(upstreams, snapshots, new Router(upstreams, Router.Options.DEFAULTS,
                info -> { }));
        try {
            assertEquals(List.of(), server.bind()); // nothing yet, as a proxy that waits for its control plane
            snapshots.apply(EnvoyConfigReader.read(config(listener, upstream)));
            HttpServerRequest check = held.poll(10, TimeUnit.SECONDS);
            Thread.sleep(100); // a bind, were one started, would have completed
            assertEquals(false, accepts(listener));

            check.response().end("ok");
            XdsFixtures.await(() -> accepts(listener), Duration.ofSeconds(10), "the listener bound");
        } finally {
            server.close();
            snapshots.close();
        }
    }

    /** A loopback HTTP server that holds each request in {@link #held}; its port. */
    private int upstream() throws Exception {
        return upstreams.createHttpServer().requestHandler(held::add).listen(0, "127.0.0.1")
                .await(10, TimeUnit.SECONDS).actualPort();
    }
}
