package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.core.WireMockConfiguration.wireMockConfig;

import com.github.tomakehurst.wiremock.WireMockServer;
import dev.inmesh.api.config.cluster.CircuitBreakers;
import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.cluster.OutlierDetection;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.endpoint.LbEndpoint;
import dev.inmesh.api.config.endpoint.Locality;
import dev.inmesh.api.config.endpoint.LocalityLbEndpoints;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.UpstreamEnvironment;
import io.vertx.core.Context;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.random.RandomGenerator;

/**
 * Test rig for the router against real upstreams on loopback: WireMock servers, clusters built in Java, route tables
 * from Envoy YAML, and a call helper that runs the exchange on a Vert.x context, reads the whole body and completes
 * the exchange, so that the StreamInfo reaches the observer.
 */
final class RouterRig implements AutoCloseable {
    final Vertx vertx = Vertx.vertx();
    final Context ctx = vertx.getOrCreateContext();
    final List<StreamInfo> observed = new CopyOnWriteArrayList<>();
    private final List<WireMockServer> servers = new ArrayList<>();
    private final List<ClusterManager> managers = new ArrayList<>();

    /** A WireMock server on an ephemeral loopback port, stopped on {@link #close()}. */
    WireMockServer wiremock() {
        WireMockServer s = new WireMockServer(wireMockConfig().dynamicPort().bindAddress("127.0.0.1")
                .containerThreads(20).asynchronousResponseEnabled(true).asynchronousResponseThreads(4));
        s.start();
        servers.add(s);
        return s;
    }

    /** A loopback port that nothing listens on (a connection to it is refused). */
    static int closedPort() {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    static ClusterLoadAssignment hosts(String name, int... ports) {
        List<LbEndpoint> eps = new ArrayList<>();
        for (int p : ports) {
            eps.add(LbEndpoint.of("127.0.0.1", p));
        }
        return new ClusterLoadAssignment(name, List.of(new LocalityLbEndpoints(Locality.EMPTY, eps, 1, 0)),
                ClusterLoadAssignment.DEFAULT_OVERPROVISIONING_FACTOR);
    }

    /** A static cluster of one loopback endpoint on {@code port} whose endpoint has {@code hostname}. */
    static Cluster clusterWithHostname(String name, int port, String hostname) {
        return clusterWithHostnames(name, Map.of(port, hostname));
    }

    /** A static round robin cluster of loopback endpoints, one per port, each with the hostname it maps to. */
    static Cluster clusterWithHostnames(String name, Map<Integer, String> hostnames) {
        List<LbEndpoint> endpoints = new ArrayList<>();
        hostnames.forEach((port, hostname) -> endpoints.add(new LbEndpoint(
                new dev.inmesh.api.config.core.SocketAddress("127.0.0.1", port), hostname, null, 1,
                dev.inmesh.api.config.core.Metadata.EMPTY)));
        return staticCluster(name, endpoints);
    }

    /**
     * A static cluster of one loopback endpoint on {@code port} whose endpoint has {@code metadata}; the cluster's own
     * metadata names its service, as istiod's ({@code istio: {services: [{name: <name>}]}}).
     */
    static Cluster clusterWithMetadata(String name, int port, dev.inmesh.api.config.core.Metadata metadata) {
        return staticCluster(name, List.of(new LbEndpoint(new dev.inmesh.api.config.core.SocketAddress("127.0.0.1",
                port), "", null, 1, metadata)), new dev.inmesh.api.config.core.Metadata(Map.of("istio",
                Map.of("services", List.of(Map.of("name", "reviews"))))));
    }

    private static Cluster staticCluster(String name, List<LbEndpoint> endpoints) {
        return staticCluster(name, endpoints, dev.inmesh.api.config.core.Metadata.EMPTY);
    }

    private static Cluster staticCluster(String name, List<LbEndpoint> endpoints,
                                         dev.inmesh.api.config.core.Metadata metadata) {
        return Cluster.builder(name, DiscoveryType.STATIC).lbPolicy(LbPolicy.ROUND_ROBIN).metadata(metadata)
                .connectTimeout(Duration.ofSeconds(2))
                .loadAssignment(new ClusterLoadAssignment(name, List.of(new LocalityLbEndpoints(Locality.EMPTY,
                        endpoints, 1, 0)), ClusterLoadAssignment.DEFAULT_OVERPROVISIONING_FACTOR))
                .build();
    }

    static Cluster cluster(String name, int... ports) {
        return cluster(name, LbPolicy.ROUND_ROBIN, null, null, ports);
    }

    static Cluster cluster(String name, LbPolicy lb, CircuitBreakers breakers, OutlierDetection outlier,
                           int... ports) {
        return Cluster.builder(name, DiscoveryType.STATIC).lbPolicy(lb).connectTimeout(Duration.ofSeconds(2))
                .circuitBreakers(breakers).outlierDetection(outlier).loadAssignment(hosts(name, ports)).build();
    }

    static CircuitBreakers breakers(long maxConnections, long maxPending, long maxRequests, long maxRetries) {
        return new CircuitBreakers(List.of(new CircuitBreakers.Thresholds(CircuitBreakers.RoutingPriority.DEFAULT,
                maxConnections, maxPending, maxRequests, maxRetries)));
    }

    ClusterManager clusters(Cluster... clusters) {
        return clusters(null, clusters);
    }

    /** Clusters whose load balancers draw from {@code random} (null: thread-local randomness). */
    ClusterManager clusters(RandomGenerator random, Cluster... clusters) {
        Map<String, Cluster> m = new HashMap<>();
        for (Cluster c : clusters) {
            m.put(c.name(), c);
        }
        ClusterManager cm = ClusterManager.create(new UpstreamEnvironment(vertx, null, random, null), m, Map.of());
        managers.add(cm);
        return cm;
    }

    Router router() {
        return router(Router.Options.DEFAULTS, null);
    }

    Router router(Router.Options options, RandomGenerator random) {
        return new Router(vertx, options, observed::add, random);
    }

    static Router.Options trusted() {
        return new Router.Options(true, true, dev.inmesh.runtime.stats.WorkloadInfo.UNKNOWN, null, null);
    }

    /** One virtual host for every domain, with the given YAML for its body (routes, options). */
    static RouteTable table(String yaml) {
        return Routes.table(yaml);
    }

    /** One route, {@code prefix: /}, to cluster {@code c} with extra RouteAction fields (flow YAML). */
    static RouteTable routeToC(String actionFields) {
        return routeToC(actionFields, "", "");
    }

    /**
     * As {@link #routeToC(String)}, with fields of the route itself and of its virtual host (block YAML lines such as
     * {@code "per_request_buffer_limit_bytes: 1024"}; empty: none).
     */
    static RouteTable routeToC(String actionFields, String routeFields, String virtualHostFields) {
        return table("name: r\nvirtual_hosts:\n- name: vh\n  domains: [\"*\"]\n"
                + (virtualHostFields.isEmpty() ? "" : "  " + virtualHostFields + "\n") + "  routes:\n"
                + "  - match: {prefix: /}\n    route: {cluster: c" + (actionFields.isEmpty() ? "" : ", " + actionFields)
                + "}\n" + (routeFields.isEmpty() ? "" : "    " + routeFields + "\n"));
    }

    /** Stubs {@code GET path} to answer with each response in turn; the last one repeats. */
    static void sequence(WireMockServer wm, String path,
                         com.github.tomakehurst.wiremock.client.ResponseDefinitionBuilder... responses) {
        String state = com.github.tomakehurst.wiremock.stubbing.Scenario.STARTED;
        for (int i = 0; i < responses.length; i++) {
            String next = i + 1 < responses.length ? "step" + (i + 1) : state;
            wm.stubFor(com.github.tomakehurst.wiremock.client.WireMock.any(
                            com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo(path))
                    .inScenario("seq" + path).whenScenarioStateIs(state)
                    .willReturn(responses[i]).willSetStateTo(next));
            state = next;
        }
    }

    static RouterRequest get(String path, String... headerPairs) {
        return request(HttpMethod.GET, path, null, headerPairs);
    }

    static RouterRequest request(HttpMethod method, String path, String body, String... headerPairs) {
        MultiMap h = MultiMap.caseInsensitiveMultiMap();
        for (int i = 0; i + 1 < headerPairs.length; i += 2) {
            h.add(headerPairs[i], headerPairs[i + 1]);
        }
        return new RouterRequest(StreamInfo.Direction.OUTBOUND, method, path, "svc.local", "http", h,
                body == null ? null : Buffer.buffer(body), "127.0.0.1:50000", "127.0.0.1:15001", null, "HTTP/1.1");
    }

    /** What the caller got: the committed response, its whole body, and the exchange's StreamInfo. */
    record Result(int status, MultiMap headers, String body, RouterResponse response, StreamInfo info,
                  long elapsedMillis) {
        String header(String name) {
            return headers.get(name);
        }

        String flags() {
            return dev.inmesh.runtime.stats.ResponseFlag.format(info.responseFlags());
        }
    }

    /** Forwards on the rig's context, reads the body, completes the exchange; waits at most 10 s. */
    Result call(Router router, RouterRequest req, RouteTable table, ClusterManager clusters) {
        return await(start(router, req, table, clusters));
    }

    /** Starts a call without waiting for it. */
    CompletableFuture<Result> start(Router router, RouterRequest req, RouteTable table, ClusterManager clusters) {
        CompletableFuture<Result> out = new CompletableFuture<>();
        long t0 = System.nanoTime();
        ctx.runOnContext(v -> router.forward(req, table, clusters).onComplete(ar -> {
            if (ar.failed()) {
                out.completeExceptionally(ar.cause());
                return;
            }
            RouterResponse resp = ar.result();
            resp.body().onComplete(b -> {
                long elapsed = (System.nanoTime() - t0) / 1_000_000;
                if (b.failed()) {
                    // as the mesh's clients record a body that failed
                    StreamInfo info = router.upstreamBodyFailed(resp, 0, b.cause());
                    out.complete(new Result(resp.status(), resp.headers(), null, resp, info, elapsed));
                } else {
                    StreamInfo info = router.complete(resp, b.result().length());
                    out.complete(new Result(resp.status(), resp.headers(), b.result().toString(), resp, info,
                            elapsed));
                }
            });
        }));
        return out;
    }

    /**
     * A random that always draws the top of its range, noting each bound in {@code bounds}: each retry back-off is its
     * ceiling less 1 ms.
     */
    static RandomGenerator topOfRange(List<Long> bounds) {
        return drawing(bounds, true);
    }

    /** A random that always draws 0, noting each bound in {@code bounds}: each retry back-off is none. */
    static RandomGenerator bottomOfRange(List<Long> bounds) {
        return drawing(bounds, false);
    }

    private static RandomGenerator drawing(List<Long> bounds, boolean top) {
        return new RandomGenerator() {
            @Override
            public long nextLong() {
                return 0;
            }

            @Override
            public long nextLong(long bound) {
                bounds.add(bound);
                return top ? bound - 1 : 0;
            }
        };
    }

    static Result await(CompletableFuture<Result> f) {
        try {
            return f.get(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new AssertionError("the router did not answer: " + e, e);
        }
    }

    List<StreamInfo> observed() {
        return Collections.unmodifiableList(observed);
    }

    @Override
    public void close() {
        managers.forEach(ClusterManager::close);
        servers.forEach(WireMockServer::stop);
        try {
            vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            // best effort
        }
    }
}
