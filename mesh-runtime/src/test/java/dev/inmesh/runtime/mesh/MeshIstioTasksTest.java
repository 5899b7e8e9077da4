package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Istio's traffic-management tasks end to end: for each, the sidecar configuration istiod generates for the task's
 * VirtualService and DestinationRule (listeners, routes, clusters and endpoints as {@code istioctl proxy-config ...
 * -o json} prints them), loaded by an in-JVM mesh whose upstreams are loopback servers standing for the versions,
 * and the outcome the task's page documents.
 */
class MeshIstioTasksTest {
    @TempDir
    Path dir;
    final Vertx vertx = Vertx.vertx();
    /** A plain client (not the mesh's), held for the whole test: Vert.x closes a client no longer referenced. */
    final WebClient plain = WebClient.create(vertx);
    /** The requests each upstream received, by its name. */
    final Map<String, List<HttpServerRequest>> received = new ConcurrentHashMap<>();
    Mesh mesh;

    @AfterEach
    void stop() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** An upstream named {@code name} on 127.0.0.1 that answers {@code status} with its name after {@code delayMs}. */
    int upstream(String name, int status, long delayMs) throws Exception {
        return upstream(name, () -> status, delayMs);
    }

    /** An upstream as above whose status is asked for each request. */
    int upstream(String name, java.util.function.IntSupplier status, long delayMs) throws Exception {
        Consumer<HttpServerRequest> answer = req -> req.response().setStatusCode(status.getAsInt())
                .putHeader("x-served-by", name).end(name);
        return vertx.createHttpServer().requestHandler(req -> {
            received.computeIfAbsent(name, n -> new CopyOnWriteArrayList<>()).add(req);
            if (delayMs == 0) {
                answer.accept(req);
            } else {
                vertx.setTimer(delayMs, t -> answer.accept(req));
            }
        }).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    int received(String name) {
        return received.getOrDefault(name, List.of()).size();
    }

    /** Istio's default retry policy on every route istiod writes. */
    static final String ISTIO_RETRY = "retry_policy: {retry_on: \"connect-failure,refused-stream,unavailable,"
            + "cancelled,retriable-status-codes\", num_retries: 2, retry_host_predicate: [{name: "
            + "envoy.retry_host_predicates.previous_hosts, typed_config: {\"@type\": type.googleapis.com/"
            + "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate}}], "
            + "host_selection_retry_max_attempts: \"5\", retriable_status_codes: [503]}";

    /**
     * istiod's outbound listener {@code 0.0.0.0_PORT} (bound by no socket, route configuration {@code PORT} over
     * ADS, the fault filter before the router) and its route configuration, with {@code routes} the routes of the
     * service's virtual host.
     */
    static String listenerAndRoutes(String service, int port, String routes) {
        String fqdn = service + ".default.svc.cluster.local";
        return """
                - "@type": type.googleapis.com/envoy.config.listener.v3.Listener
                  name: 0.0.0.0_%2$d
                  address: {socket_address: {address: 0.0.0.0, port_value: %2$d}}
                  bind_to_port: false
                  traffic_direction: OUTBOUND
                  filter_chains:
                  - filters:
                    - name: envoy.filters.network.http_connection_manager
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                        stat_prefix: "outbound_0.0.0.0_%2$d;"
                        rds:
                          config_source: {ads: {}, initial_fetch_timeout: 0s, resource_api_version: V3}
                          route_config_name: "%2$d"
                        http_filters:
                        - name: envoy.filters.http.fault
                          typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault}
                        - name: envoy.filters.http.router
                          typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                        use_remote_address: false
                        upgrade_configs: [{upgrade_type: websocket}]
                        stream_idle_timeout: 0s
                - "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
                  name: "%2$d"
                  validate_clusters: false
                  max_direct_response_body_size_bytes: 1048576
                  ignore_port_in_host_matching: true
                  virtual_hosts:
                  - name: %1$s:%2$d
                    domains: ["%1$s", "%3$s", "%3$s.default.svc", "%3$s.default"]
                    include_request_attempt_count: true
                    routes:
                """.formatted(fqdn, port, service) + routes.indent(4);
    }

    /**
     * istiod's EDS cluster {@code outbound|PORT|SUBSET|FQDN} with Istio's service metadata and {@code alt_stat_name},
     * {@code fields} its DestinationRule's settings ({@code httpOptions} more of its common HTTP protocol options), and
     * its load assignment of endpoints on 127.0.0.1, one for each of {@code endpointPorts}.
     */
    static String cluster(String service, int port, String subset, String httpOptions, String fields,
                          int... endpointPorts) {
        String fqdn = service + ".default.svc.cluster.local";
        String name = "outbound|" + port + "|" + subset + "|" + fqdn;
        String version = subset.isEmpty() ? "v1" : subset;
        StringBuilder endpoints = new StringBuilder();
        for (int p : endpointPorts) {
            endpoints.append("""
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                          health_status: HEALTHY
                          metadata:
                            filter_metadata:
                              istio: {workload: "%s-%s;default;%s;%s;Kubernetes"}
                          load_balancing_weight: 1
                    """.formatted(p, service, version, service, version));
        }
        return """
                - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
                  name: %1$s
                  type: EDS
                  eds_cluster_config:
                    eds_config: {ads: {}, initial_fetch_timeout: 0s, resource_api_version: V3}
                    service_name: %1$s
                  connect_timeout: 10s
                  alt_stat_name: "%1$s;"
                  common_lb_config: {}
                  metadata:
                    filter_metadata:
                      istio:
                        config: /apis/networking.istio.io/v1/namespaces/default/destination-rule/%3$s
                        services: [{host: %2$s, name: %3$s, namespace: default}]
                  typed_extension_protocol_options:
                    envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                      "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                      common_http_protocol_options: {idle_timeout: 3600s%5$s}
                      explicit_http_config: {http_protocol_options: {}}
                %4$s
                - "@type": type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment
                  cluster_name: %1$s
                  endpoints:
                  - locality: {}
                    load_balancing_weight: %6$d
                    lb_endpoints:
                """.formatted(name, fqdn, service, fields.indent(2).stripTrailing(),
                httpOptions.isEmpty() ? "" : ", " + httpOptions, endpointPorts.length) + endpoints;
    }

    Mesh mesh(String resources) throws Exception {
        Path file = Files.writeString(dir.resolve("mesh.yaml"), "resources:\n" + resources);
        mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("fortio").setApp("fortio")
                .setNamespace("default").setConfigFile(file.toString()).setAdminPort(0));
        mesh.start().await(10, TimeUnit.SECONDS);
        return mesh;
    }

    String admin(String path, String expected) throws Exception {
        return MeshInboundRbacTest.admin(plain, mesh.adminPort(), path, expected);
    }

    /**
     * Istio's circuit breaking task: DestinationRule httpbin with {@code maxConnections: 1},
     * {@code http1MaxPendingRequests: 1}, {@code maxRequestsPerConnection: 1} and {@code consecutive5xxErrors: 1}.
     * With one request on the only connection and one waiting for it, the next is refused 503 at once, and the
     * statistics the task greps count it under istiod's stat name of the cluster.
     */
    @Test
    void circuitBreakingRefusesTheRequestBeyondTheOnePendingAndCountsItUnderTheClustersStatName() throws Exception {
        // (httpbin holds each answer 2 s: the second request must be pending and the third sent meanwhile)
        int httpbin = upstream("httpbin", 200, 2000);
        String routes = """
                - name: default
                  match: {prefix: /}
                  route: {cluster: "outbound|8000||httpbin.default.svc.cluster.local", timeout: 0s, %s, \
                max_grpc_timeout: 0s}
                  decorator: {operation: "httpbin.default.svc.cluster.local:8000/*"}
                """.formatted(ISTIO_RETRY);
        String breakers = """
                lb_policy: LEAST_REQUEST
                circuit_breakers:
                  thresholds:
                  - {max_connections: 1, max_pending_requests: 1, max_requests: 4294967295, max_retries: 4294967295, \
                track_remaining: true}
                outlier_detection: {consecutive_5xx: 1, interval: 1s, base_ejection_time: 180s, \
                max_ejection_percent: 100, enforcing_consecutive_5xx: 100, enforcing_success_rate: 0, \
                enforcing_consecutive_gateway_failure: 0}
                """;
        mesh(listenerAndRoutes("httpbin", 8000, routes) + cluster("httpbin", 8000, "",
                "max_requests_per_connection: 1", breakers, httpbin));
        WebClient client = mesh.webClient();
        Future<HttpResponse<Buffer>> first = client.get(8000, "httpbin", "/get").send();
        for (int i = 0; i < 100 && received("httpbin") == 0; i++) {
            Thread.sleep(20);
        }
        assertEquals(1, received("httpbin"));
        Future<HttpResponse<Buffer>> second = client.get(8000, "httpbin", "/get").send();
        String c = "cluster.outbound|8000||httpbin.default.svc.cluster.local;.";
        String pending = admin("/stats?filter=pending", c + "upstream_rq_pending_active: 1");
        assertTrue(pending.contains(c + "upstream_rq_pending_active: 1\n"), pending);
        assertEquals(1, received("httpbin"), "the first request still holds the only connection");
        HttpResponse<Buffer> third = client.get(8000, "httpbin", "/get").send().await(10, TimeUnit.SECONDS);
        assertEquals(503, third.statusCode());
        assertEquals("true", third.getHeader("x-envoy-overloaded"));
        assertEquals(200, first.await(10, TimeUnit.SECONDS).statusCode());
        assertEquals(200, second.await(10, TimeUnit.SECONDS).statusCode());
        assertEquals(2, received("httpbin"));
        // the overflow is the proxy's own answer, not httpbin's: consecutive5xxErrors: 1 does not eject httpbin
        assertEquals(200, client.get(8000, "httpbin", "/get").send().await(10, TimeUnit.SECONDS).statusCode());

        String stats = admin("/stats?filter=pending", c + "upstream_rq_pending_overflow: 1");
        assertTrue(stats.contains(c + "upstream_rq_pending_overflow: 1\n"), stats);
        assertTrue(stats.contains(c + "circuit_breakers.default.remaining_pending: 1\n"), stats);
        assertTrue(stats.contains(c + "circuit_breakers.default.rq_pending_open: 0\n"), stats);
        assertTrue(stats.contains(c + "upstream_rq_pending_active: 0\n"), stats);
        assertTrue(admin("/stats?filter=outlier", "ejections").contains(c
                + "outlier_detection.ejections_enforced_total: 0\n"), stats);
        String prom = admin("/stats/prometheus", "envoy_cluster_upstream_rq_pending_overflow");
        assertTrue(prom.contains("envoy_cluster_upstream_rq_pending_overflow{cluster_name="
                + "\"outbound|8000||httpbin.default.svc.cluster.local\"} 1"), prom);
    }

    /**
     * istiod's routes for a VirtualService of {@code service} whose first rule matches {@code end-user: jason} with
     * {@code jasonRoute} (its route action's fields and what follows) and whose second takes everyone else to v1.
     */
    static String jasonRoutes(String service, String jasonRoute) {
        String cluster = "outbound|9080|v1|" + service + ".default.svc.cluster.local";
        return """
                - match:
                    prefix: /
                    case_sensitive: true
                    headers: [{name: end-user, string_match: {exact: jason}}]
                  metadata: {filter_metadata: {istio: {config: /apis/networking.istio.io/v1/namespaces/default/\
                virtual-service/%1$s}}}
                  decorator: {operation: "%1$s.default.svc.cluster.local:9080/*"}
                %3$s
                - match: {prefix: /}
                  route: {cluster: "%2$s", timeout: 0s, %4$s, max_grpc_timeout: 0s}
                  decorator: {operation: "%1$s.default.svc.cluster.local:9080/*"}
                """.formatted(service, cluster, jasonRoute.indent(2).stripTrailing(), ISTIO_RETRY);
    }

    /** The fault filter's per-route config istiod writes for a VirtualService's {@code fault}. */
    static String fault(String fault) {
        return """
                typed_per_filter_config:
                  envoy.filters.http.fault:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                    %s
                """.formatted(fault);
    }

    HttpResponse<Buffer> get(String host, int port, String path, String user) throws Exception {
        var req = mesh.webClient().get(port, host, path);
        if (user != null) {
            req.putHeader("end-user", user);
        }
        return req.send().await(10, TimeUnit.SECONDS);
    }

    /**
     * Istio's fault injection task: ratings delays jason's requests (7 s in the task, 1 s here) and then aborts them
     * 500, each at 100% ({@code percentage: {value: 100}}, which istiod writes as a million millionths), while
     * everyone else is served at once; the fault filter counts both in its statistics.
     */
    @Test
    void faultInjectionDelaysThenAbortsJasonsRequestsAndNoOneElses() throws Exception {
        int v1 = upstream("ratings-v1", 200, 0);
        String cluster = "outbound|9080|v1|ratings.default.svc.cluster.local";
        String route = "route: {cluster: \"" + cluster + "\", timeout: 0s, " + ISTIO_RETRY
                + ", max_grpc_timeout: 0s}\n";
        String all = "percentage: {numerator: 1000000, denominator: MILLION}";
        // 3 s: far enough above the bound on an undelayed answer below that a stalled machine does not blur them
        String delay = route + fault("delay: {fixed_delay: 3s, " + all + "}");
        mesh(listenerAndRoutes("ratings", 9080, jasonRoutes("ratings", delay))
                + cluster("ratings", 9080, "v1", "", "lb_policy: LEAST_REQUEST", v1));
        long start = System.nanoTime();
        HttpResponse<Buffer> delayed = get("ratings", 9080, "/ratings/0", "jason");
        long delayedMs = (System.nanoTime() - start) / 1_000_000;
        assertEquals(200, delayed.statusCode());
        assertEquals("ratings-v1", delayed.bodyAsString());
        assertTrue(delayedMs >= 3000, "delayed " + delayedMs + " ms");
        start = System.nanoTime();
        assertEquals(200, get("ratings", 9080, "/ratings/0", null).statusCode());
        assertTrue((System.nanoTime() - start) / 1_000_000 < 2000, "no delay for others");
        // istiod's stat prefix ends in its delimiter, which Istio's stats tags leave out of the label
        String p = "http.outbound_0.0.0.0_9080;.fault.";
        String stats = admin("/stats?filter=fault", p + "delays_injected: 1");
        assertTrue(stats.contains(p + "delays_injected: 1\n"), stats);
        String prom = admin("/stats/prometheus", "envoy_http_fault_delays_injected");
        assertTrue(prom.contains("envoy_http_fault_delays_injected{http_conn_manager_prefix="
                + "\"outbound_0.0.0.0_9080\"} 1"), prom);
        mesh.close().await(10, TimeUnit.SECONDS);

        String abort = route + fault("abort: {http_status: 500, " + all + "}");
        mesh(listenerAndRoutes("ratings", 9080, jasonRoutes("ratings", abort))
                + cluster("ratings", 9080, "v1", "", "lb_policy: LEAST_REQUEST", v1));
        int before = received("ratings-v1");
        HttpResponse<Buffer> aborted = get("ratings", 9080, "/ratings/0", "jason");
        assertEquals(500, aborted.statusCode());
        assertEquals("fault filter abort", aborted.bodyAsString());
        assertEquals(before, received("ratings-v1"), "an aborted request never reaches ratings");
        assertEquals(200, get("ratings", 9080, "/ratings/0", "alice").statusCode());
        stats = admin("/stats?filter=fault", p + "aborts_injected: 1");
        assertTrue(stats.contains(p + "aborts_injected: 1\n"), stats);
    }

    /**
     * Istio's request timeouts task: reviews' route has {@code timeout: 0.5s} while reviews takes 2 s to answer (its
     * ratings call delayed; 5 s here, far from the bound on a loaded machine): the caller gets 504
     * {@code upstream request timeout} after half a second, not retried by Istio's default retry policy.
     */
    @Test
    void requestTimeoutAnswers504AfterHalfASecondWithoutRetrying() throws Exception {
        int v2 = upstream("reviews-v2", 200, 5000);
        String routes = """
                - match: {prefix: /}
                  route: {cluster: "outbound|9080|v2|reviews.default.svc.cluster.local", timeout: 0.500s, %s, \
                max_grpc_timeout: 0.500s}
                  decorator: {operation: "reviews.default.svc.cluster.local:9080/*"}
                """.formatted(ISTIO_RETRY);
        mesh(listenerAndRoutes("reviews", 9080, routes)
                + cluster("reviews", 9080, "v2", "", "lb_policy: LEAST_REQUEST", v2));
        long start = System.nanoTime();
        HttpResponse<Buffer> r = get("reviews", 9080, "/reviews/0", null);
        long ms = (System.nanoTime() - start) / 1_000_000;
        assertEquals(504, r.statusCode());
        assertEquals("upstream request timeout", r.bodyAsString());
        assertTrue(ms >= 500 && ms < 4000, "answered after " + ms + " ms, not when reviews answered");
        assertEquals(1, received("reviews-v2"));
        String c = "cluster.outbound|9080|v2|reviews.default.svc.cluster.local;.";
        String stats = admin("/stats?filter=timeout", c + "upstream_rq_timeout: 1");
        assertTrue(stats.contains(c + "upstream_rq_timeout: 1\n"), stats);
    }

    /**
     * Istio's mirroring task: httpbin's route sends everything to v1 and mirrors it, at {@code mirrorPercentage: 100},
     * to v2: v2 gets each request with the {@code -shadow} host ({@code httpbin-shadow:8000}) and its answer (a slow
     * 500 here) is not waited for and never reaches the caller.
     */
    @Test
    void mirroringCopiesEachRequestToV2WithTheShadowHostAndIgnoresItsAnswer() throws Exception {
        int v1 = upstream("httpbin-v1", 200, 0);
        int v2 = upstream("httpbin-v2", 500, 4000); // the mirror answers long after the bound below
        String routes = """
                - match: {prefix: /}
                  route:
                    cluster: "outbound|8000|v1|httpbin.default.svc.cluster.local"
                    timeout: 0s
                    %s
                    request_mirror_policies:
                    - cluster: "outbound|8000|v2|httpbin.default.svc.cluster.local"
                      runtime_fraction: {default_value: {numerator: 100}}
                      trace_sampled: false
                    max_grpc_timeout: 0s
                  decorator: {operation: "httpbin.default.svc.cluster.local:8000/*"}
                """.formatted(ISTIO_RETRY);
        mesh(listenerAndRoutes("httpbin", 8000, routes)
                + cluster("httpbin", 8000, "v1", "", "lb_policy: LEAST_REQUEST", v1)
                + cluster("httpbin", 8000, "v2", "", "lb_policy: LEAST_REQUEST", v2));
        for (int i = 0; i < 3; i++) {
            long start = System.nanoTime();
            HttpResponse<Buffer> r = get("httpbin", 8000, "/headers", null);
            assertEquals(200, r.statusCode());
            assertEquals("httpbin-v1", r.bodyAsString());
            assertTrue((System.nanoTime() - start) / 1_000_000 < 3000, "the mirror's answer is not waited for");
        }
        for (int i = 0; i < 100 && received("httpbin-v2") < 3; i++) {
            Thread.sleep(20);
        }
        assertEquals(3, received("httpbin-v1"));
        assertEquals(3, received("httpbin-v2"));
        assertEquals("httpbin:8000", received.get("httpbin-v1").get(0).authority().toString());
        for (HttpServerRequest shadow : received.get("httpbin-v2")) {
            assertEquals("httpbin-shadow:8000", shadow.authority().toString());
            assertEquals("/headers", shadow.uri());
        }
    }

    /**
     * Istio's consistent hash load balancing: a DestinationRule's {@code consistentHash} (istiod's {@code RING_HASH}
     * cluster and the route's {@code hash_policy}) keeps a user on one of three endpoints: by the cookie it sets when
     * the request has none ({@code httpCookie} with a {@code ttl}), by a header ({@code httpHeaderName}), or by the
     * caller's address ({@code useSourceIp}).
     */
    @Test
    void consistentHashKeepsAUserOnOneEndpointByCookieHeaderOrSourceIp() throws Exception {
        int a = upstream("a", 200, 0);
        int b = upstream("b", 200, 0);
        int c = upstream("c", 200, 0);
        String ringHash = "lb_policy: RING_HASH\nring_hash_lb_config: {minimum_ring_size: \"1024\"}";
        java.util.function.Function<String, String> config = hash -> listenerAndRoutes("reviews", 9080, """
                - match: {prefix: /}
                  route:
                    cluster: "outbound|9080||reviews.default.svc.cluster.local"
                    timeout: 0s
                    %s
                    hash_policy:
                    - %s
                    max_grpc_timeout: 0s
                """.formatted(ISTIO_RETRY, hash)) + cluster("reviews", 9080, "", "", ringHash, a, b, c);

        mesh(config.apply("cookie: {name: user, ttl: 0s, path: /}"));
        HttpResponse<Buffer> first = get("reviews", 9080, "/reviews/0", null);
        String setCookie = first.getHeader("set-cookie");
        assertTrue(setCookie != null && setCookie.matches("user=\"[0-9a-f]{16}\"; Path=/; HttpOnly"), setCookie);
        String cookie = setCookie.substring(0, setCookie.indexOf(';'));
        for (int i = 0; i < 10; i++) {
            HttpResponse<Buffer> r = mesh.webClient().get(9080, "reviews", "/reviews/" + i).putHeader("cookie", cookie)
                    .send().await(10, TimeUnit.SECONDS);
            assertEquals(first.bodyAsString(), r.bodyAsString(), "the cookie keeps the user on its endpoint");
            assertEquals(null, r.getHeader("set-cookie"), "no cookie is set when the request has one");
        }
        mesh.close().await(10, TimeUnit.SECONDS);

        mesh(config.apply("header: {header_name: x-user}"));
        java.util.Set<String> served = new java.util.HashSet<>();
        for (int user = 0; user < 30; user++) {
            String once = mesh.webClient().get(9080, "reviews", "/").putHeader("x-user", "u" + user).send()
                    .await(10, TimeUnit.SECONDS).bodyAsString();
            for (int i = 0; i < 3; i++) {
                assertEquals(once, mesh.webClient().get(9080, "reviews", "/").putHeader("x-user", "u" + user).send()
                        .await(10, TimeUnit.SECONDS).bodyAsString());
            }
            served.add(once);
        }
        assertEquals(java.util.Set.of("a", "b", "c"), served, "users spread over the endpoints");
        mesh.close().await(10, TimeUnit.SECONDS);

        mesh(config.apply("connection_properties: {source_ip: true}"));
        String once = get("reviews", 9080, "/", null).bodyAsString();
        for (int i = 0; i < 10; i++) {
            assertEquals(once, get("reviews", 9080, "/", null).bodyAsString());
        }
    }

    /**
     * {@code useSourceIp} hashes the stream's downstream remote address, which Envoy's connection manager (with
     * {@code use_remote_address: false}, as Istio's sidecars) takes from the last {@code x-forwarded-for} address:
     * callers forwarded from different addresses spread over the endpoints, each kept on its own. The forwarded
     * addresses are only header values.
     */
    @Test
    void consistentHashBySourceIpHashesTheLastForwardedForAddress() throws Exception {
        int a = upstream("a", 200, 0);
        int b = upstream("b", 200, 0);
        int c = upstream("c", 200, 0);
        mesh(listenerAndRoutes("reviews", 9080, """
                - match: {prefix: /}
                  route:
                    cluster: "outbound|9080||reviews.default.svc.cluster.local"
                    timeout: 0s
                    hash_policy:
                    - connection_properties: {source_ip: true}
                """) + cluster("reviews", 9080, "", "",
                "lb_policy: RING_HASH\nring_hash_lb_config: {minimum_ring_size: \"1024\"}", a, b, c));
        java.util.Set<String> served = new java.util.HashSet<>();
        for (int caller = 1; caller <= 30; caller++) {
            String xff = "10.1.2.3, 192.0.2." + caller;
            String once = mesh.webClient().get(9080, "reviews", "/").putHeader("x-forwarded-for", xff).send()
                    .await(10, TimeUnit.SECONDS).bodyAsString();
            for (int i = 0; i < 3; i++) {
                assertEquals(once, mesh.webClient().get(9080, "reviews", "/").putHeader("x-forwarded-for", xff)
                        .send().await(10, TimeUnit.SECONDS).bodyAsString());
            }
            served.add(once);
        }
        assertEquals(java.util.Set.of("a", "b", "c"), served, "forwarded callers spread over the endpoints");
    }

    /**
     * A VirtualService's {@code retries} (Istio's retry settings, here {@code attempts: 3, perTryTimeout: 0.3s,
     * retryOn: gateway-error,connect-failure,refused-stream}): an endpoint that answers 503, and one too slow for the
     * per-try timeout, are each tried once and the request retried on another endpoint ({@code previous_hosts}), so
     * the caller sees only the healthy endpoint's answer, with the attempts counted in the cluster's statistics.
     */
    @Test
    void retriesMoveAFailedOrTimedOutAttemptToAnotherEndpoint() throws Exception {
        int failing = upstream("failing", 503, 0);
        int slow = upstream("slow", 200, 3000);
        int healthy = upstream("healthy", 200, 0);
        String routes = """
                - match: {prefix: /}
                  route:
                    cluster: "outbound|9080||ratings.default.svc.cluster.local"
                    timeout: 0s
                    retry_policy:
                      retry_on: gateway-error,connect-failure,refused-stream
                      num_retries: 3
                      per_try_timeout: 0.300s
                      retry_host_predicate:
                      - name: envoy.retry_host_predicates.previous_hosts
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate
                      host_selection_retry_max_attempts: "5"
                    max_grpc_timeout: 0s
                """;
        mesh(listenerAndRoutes("ratings", 9080, routes)
                + cluster("ratings", 9080, "", "", "lb_policy: ROUND_ROBIN", failing, slow, healthy));
        // the upstreams' first request (code loaded, compiled) may take longer than the per-try timeout
        plain.get(failing, "127.0.0.1", "/").send().await(10, TimeUnit.SECONDS);
        received.clear();
        for (int i = 0; i < 6; i++) {
            long start = System.nanoTime();
            HttpResponse<Buffer> r = get("ratings", 9080, "/ratings/" + i, null);
            assertEquals(200, r.statusCode());
            assertEquals("healthy", r.bodyAsString());
            assertTrue((System.nanoTime() - start) / 1_000_000 < 1500, "one per-try timeout");
        }
        assertTrue(received("failing") <= 6 && received("slow") <= 6, received("failing") + " " + received("slow"));
        String c = "cluster.outbound|9080||ratings.default.svc.cluster.local;.";
        String stats = admin("/stats?filter=upstream_rq_", c + "upstream_rq_retry: ");
        assertTrue(stats.contains(c + "upstream_rq_retry: " + (received("failing") + received("slow")) + "\n"), stats);
        assertTrue(stats.contains(c + "upstream_rq_per_try_timeout: " + received("slow") + "\n"), stats);
    }

    /**
     * Istio's locality load balancing tasks, for a caller in region1/zone1: with {@code distribute} (70% to its own
     * zone, 20% to region1/zone2, 10% to region3/zone4) istiod weighs each locality of the load assignment and sets
     * {@code locality_weighted_lb_config}, and requests spread so; with {@code failover}, the other localities are
     * priorities 1 and 2, and once outlier detection ejects the caller's zone's endpoint (a 503 with
     * {@code consecutive5xxErrors: 1}) requests go to priority 1's.
     */
    @Test
    void localityWeightsSpreadRequestsAndFailoverMovesThemToTheNextPriority() throws Exception {
        java.util.concurrent.atomic.AtomicBoolean failing = new java.util.concurrent.atomic.AtomicBoolean();
        int z1 = upstream("region1/zone1", () -> failing.get() ? 503 : 200, 0);
        int z2 = upstream("region1/zone2", 200, 0);
        int z4 = upstream("region3/zone4", 200, 0);
        String name = "outbound|5000||helloworld.default.svc.cluster.local";
        String routes = """
                - match: {prefix: /}
                  route: {cluster: "%s", timeout: 0s, %s, max_grpc_timeout: 0s}
                """.formatted(name, ISTIO_RETRY);
        java.util.function.BiFunction<String, String, String> config = (clusterFields, localities) ->
                listenerAndRoutes("helloworld", 5000, routes) + """
                - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
                  name: %1$s
                  type: EDS
                  eds_cluster_config:
                    eds_config: {ads: {}, initial_fetch_timeout: 0s, resource_api_version: V3}
                    service_name: %1$s
                  connect_timeout: 10s
                  alt_stat_name: "%1$s;"
                  lb_policy: LEAST_REQUEST
                %2$s
                - "@type": type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment
                  cluster_name: %1$s
                  endpoints:
                """.formatted(name, clusterFields.indent(2).stripTrailing()) + localities;
        java.util.function.IntFunction<String> locality = port -> """
                  - locality: {region: %s, zone: %s}
                    lb_endpoints:
                    - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                      health_status: HEALTHY
                      load_balancing_weight: 1
                """.formatted(port == z4 ? "region3" : "region1", port == z1 ? "zone1" : port == z2 ? "zone2"
                : "zone4", port);

        mesh(config.apply("common_lb_config: {locality_weighted_lb_config: {}}", """
                %s    load_balancing_weight: 70
                %s    load_balancing_weight: 20
                %s    load_balancing_weight: 10
                """.formatted(locality.apply(z1), locality.apply(z2), locality.apply(z4))));
        for (int i = 0; i < 200; i++) {
            assertEquals(200, get("helloworld", 5000, "/hello", null).statusCode());
        }
        int one = received("region1/zone1");
        int two = received("region1/zone2");
        int four = received("region3/zone4");
        // binomial(200, p): each within about 4.5 standard deviations of 140, 40 and 20
        assertTrue(one >= 110 && one <= 170 && two >= 15 && two <= 65 && four >= 3 && four <= 40,
                one + " " + two + " " + four);
        mesh.close().await(10, TimeUnit.SECONDS);
        received.clear();

        // failover: region1/zone1 first, then region1/zone2 (priority 1), then region3/zone4 (priority 2)
        mesh(config.apply("""
                common_lb_config: {healthy_panic_threshold: {}, locality_weighted_lb_config: {}}
                outlier_detection: {consecutive_5xx: 1, interval: 1s, base_ejection_time: 60s, \
                max_ejection_percent: 100, enforcing_consecutive_5xx: 100}
                """, """
                %s    load_balancing_weight: 1
                %s    load_balancing_weight: 1
                    priority: 1
                %s    load_balancing_weight: 1
                    priority: 2
                """.formatted(locality.apply(z1), locality.apply(z2), locality.apply(z4))));
        for (int i = 0; i < 5; i++) {
            assertEquals("region1/zone1", get("helloworld", 5000, "/hello", null).bodyAsString());
        }
        failing.set(true);
        // the zone's endpoint answers 503 once: Istio's retry takes the request to priority 1, and it is ejected
        for (int i = 0; i < 5; i++) {
            assertEquals("region1/zone2", get("helloworld", 5000, "/hello", null).bodyAsString());
        }
        assertEquals(6, received("region1/zone1"));
        assertEquals(0, received("region3/zone4"));
    }

    /**
     * Istio's egress tasks: with {@code outboundTrafficPolicy} {@code ALLOW_ANY} istiod ends each port's route
     * configuration with the {@code allow_any} virtual host to {@code PassthroughCluster}, which reaches the host the
     * application named; with {@code REGISTRY_ONLY} with {@code block_all}, a direct 502, while a ServiceEntry's host
     * (its own virtual host and cluster) is reached either way.
     */
    @Test
    void egressAllowAnyPassesUnknownHostsThroughAndRegistryOnlyAnswers502ButServiceEntriesPass() throws Exception {
        int external = upstream("external", 200, 0);
        int registered = upstream("httpbin.org", 200, 0);
        String passthrough = """
                - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
                  name: PassthroughCluster
                  type: ORIGINAL_DST
                  connect_timeout: 10s
                  lb_policy: CLUSTER_PROVIDED
                  circuit_breakers:
                    thresholds:
                    - {max_connections: 4294967295, max_pending_requests: 4294967295, max_requests: 4294967295, \
                max_retries: 4294967295, track_remaining: true}
                  typed_extension_protocol_options:
                    envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                      "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                      common_http_protocol_options: {idle_timeout: 3600s}
                      use_downstream_protocol_config: {http_protocol_options: {}, http2_protocol_options: {}}
                - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
                  name: BlackHoleCluster
                  type: STATIC
                  connect_timeout: 10s
                """;
        String allowAny = """
                  - name: allow_any
                    domains: ["*"]
                    include_request_attempt_count: true
                    routes:
                    - name: allow_any
                      match: {prefix: /}
                      route: {cluster: PassthroughCluster, timeout: 0s, max_grpc_timeout: 0s}
                """;
        String blockAll = """
                  - name: block_all
                    domains: ["*"]
                    include_request_attempt_count: true
                    routes:
                    - name: block_all
                      match: {prefix: /}
                      direct_response: {status: 502}
                """;
        // the ServiceEntry's host and port (resolution STATIC, its endpoint on loopback) share the external port
        java.util.function.Function<String, String> config = fallback -> listenerAndRoutes("httpbin.org", external,
                """
                - match: {prefix: /}
                  route: {cluster: "outbound|%d||httpbin.org", timeout: 0s, %s, max_grpc_timeout: 0s}
                """.formatted(external, ISTIO_RETRY)).replace("httpbin.org.default.svc.cluster.local", "httpbin.org")
                .replace("domains: [\"httpbin.org\", \"httpbin.org\"", "domains: [\"httpbin.org\"") + fallback
                + passthrough + cluster("httpbin.org", external, "", "", "lb_policy: LEAST_REQUEST", registered)
                .replace("httpbin.org.default.svc.cluster.local", "httpbin.org");

        mesh(config.apply(allowAny));
        HttpResponse<Buffer> through = get("localhost", external, "/status/200", null);
        assertEquals(200, through.statusCode());
        assertEquals("external", through.bodyAsString());
        assertEquals("httpbin.org", get("httpbin.org", external, "/headers", null).bodyAsString());
        mesh.close().await(10, TimeUnit.SECONDS);

        mesh(config.apply(blockAll));
        int before = received("external");
        HttpResponse<Buffer> blocked = get("localhost", external, "/status/200", null);
        assertEquals(502, blocked.statusCode());
        assertEquals("", blocked.bodyAsString() == null ? "" : blocked.bodyAsString());
        assertEquals(before, received("external"));
        assertEquals("httpbin.org", get("httpbin.org", external, "/headers", null).bodyAsString());
    }

    /**
     * Istio's request routing and traffic shifting tasks on reviews: {@code end-user: jason} goes to v2, everyone
     * else is split 50/50 between v1 and v3 by istiod's {@code weighted_clusters} (weights without a total).
     */
    @Test
    void requestRoutingSendsJasonToV2AndTrafficShiftingSplitsTheOthersBetweenV1AndV3() throws Exception {
        int v1 = upstream("reviews-v1", 200, 0);
        int v2 = upstream("reviews-v2", 200, 0);
        int v3 = upstream("reviews-v3", 200, 0);
        String jason = "route: {cluster: \"outbound|9080|v2|reviews.default.svc.cluster.local\", timeout: 0s, "
                + ISTIO_RETRY + ", max_grpc_timeout: 0s}";
        String shifted = """
                route:
                  weighted_clusters:
                    clusters:
                    - {name: "outbound|9080|v1|reviews.default.svc.cluster.local", weight: 50}
                    - {name: "outbound|9080|v3|reviews.default.svc.cluster.local", weight: 50}
                  timeout: 0s
                  %s
                  max_grpc_timeout: 0s
                """.formatted(ISTIO_RETRY);
        String routes = jasonRoutes("reviews", jason);
        routes = routes.substring(0, routes.lastIndexOf("  route: {cluster:")) + shifted.indent(2)
                + routes.substring(routes.lastIndexOf("  decorator:"));
        mesh(listenerAndRoutes("reviews", 9080, routes)
                + cluster("reviews", 9080, "v1", "", "lb_policy: LEAST_REQUEST", v1)
                + cluster("reviews", 9080, "v2", "", "lb_policy: LEAST_REQUEST", v2)
                + cluster("reviews", 9080, "v3", "", "lb_policy: LEAST_REQUEST", v3));
        for (int i = 0; i < 5; i++) {
            assertEquals("reviews-v2", get("reviews", 9080, "/reviews/0", "jason").bodyAsString());
        }
        for (int i = 0; i < 100; i++) {
            String body = get("reviews", 9080, "/reviews/0", i % 2 == 0 ? null : "alice").bodyAsString();
            assertTrue(body.equals("reviews-v1") || body.equals("reviews-v3"), body);
        }
        assertEquals(5, received("reviews-v2"));
        // binomial(100, 0.5): within 4.6 standard deviations
        assertTrue(received("reviews-v1") >= 27 && received("reviews-v1") <= 73, received("reviews-v1") + " v1");
    }
}
