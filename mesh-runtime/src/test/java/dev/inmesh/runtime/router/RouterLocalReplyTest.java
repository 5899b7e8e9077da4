package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static dev.inmesh.runtime.router.RouterRig.closedPort;
import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.hosts;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.http.Fault;
import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.MultiMap;
import io.vertx.core.http.HttpMethod;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.upstream.ClusterManager;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class RouterLocalReplyTest {
    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    private static RouteTable table(String routes) {
        return RouterRig.table("name: r\nvirtual_hosts:\n- name: vh\n  domains: [\"svc.local\"]\n  routes:\n" + routes);
    }

    @Test
    void aRequestWithoutARouteAnswers404WithNr() {
        var t = table("  - match: {prefix: /api}\n    route: {cluster: c}\n");
        var r = rig.call(rig.router(), get("/other"), t, rig.clusters());
        assertEquals(404, r.status());
        assertEquals("", r.body());
        assertEquals("0", r.header("content-length"));
        assertEquals(Set.of(ResponseFlag.NO_ROUTE_FOUND), r.info().responseFlags());
        assertEquals("route_not_found", r.info().responseCodeDetails());
        assertTrue(r.response().isLocalReply());
        assertEquals(0, r.info().attemptCount());
        assertNull(r.info().upstreamHost());
    }

    @Test
    void aRouteToAMissingClusterAnswers503WithNc() {
        var r = rig.call(rig.router(), get("/x"), routeToC(""), rig.clusters());
        assertEquals(503, r.status());
        assertEquals("", r.body());
        assertEquals(Set.of(ResponseFlag.NO_CLUSTER_FOUND), r.info().responseFlags());
        assertEquals("cluster_not_found", r.info().responseCodeDetails());
    }

    @Test
    void aRouteToAMissingClusterAnswersItsClusterNotFoundResponseCodeAsIstiodWritesForHttpRoutes() {
        // istiod writes INTERNAL_SERVER_ERROR on a Gateway API HTTPRoute's routes
        var r = rig.call(rig.router(), get("/x"),
                routeToC("cluster_not_found_response_code: INTERNAL_SERVER_ERROR"), rig.clusters());
        assertEquals(500, r.status());
        assertEquals("", r.body());
        assertEquals(Set.of(ResponseFlag.NO_CLUSTER_FOUND), r.info().responseFlags());
        assertEquals("cluster_not_found", r.info().responseCodeDetails());
        var notFound = rig.call(rig.router(), get("/x"), routeToC("cluster_not_found_response_code: NOT_FOUND"),
                rig.clusters());
        assertEquals(404, notFound.status());
        assertEquals(Set.of(ResponseFlag.NO_CLUSTER_FOUND), notFound.info().responseFlags());
    }

    /**
     * As Envoy's DynamicRouteEntry (header_cluster_specifier.cc, a weighted entry's too), which takes its
     * cluster_not_found_response_code from its route: a cluster_header naming no cluster, or absent, is answered
     * with the route's code.
     */
    @Test
    void aClusterHeaderNamingNoClusterAnswersItsRoutesClusterNotFoundResponseCode() {
        var t = RouterRig.table("name: r\nvirtual_hosts:\n- name: vh\n  domains: [\"*\"]\n  routes:\n"
                + "  - match: {prefix: /header}\n    route: {cluster_header: x-c, cluster_not_found_response_code: "
                + "NOT_FOUND}\n  - match: {prefix: /weighted}\n    route: {weighted_clusters: {clusters: "
                + "[{cluster_header: x-c, weight: 1}]}, cluster_not_found_response_code: NOT_FOUND}\n");
        for (String path : List.of("/header", "/weighted")) {
            for (var req : List.of(get(path, "x-c", "nowhere"), get(path))) {
                var r = rig.call(rig.router(), req, t, rig.clusters());
                assertEquals(404, r.status(), path);
                assertEquals(Set.of(ResponseFlag.NO_CLUSTER_FOUND), r.info().responseFlags());
                assertEquals("cluster_not_found", r.info().responseCodeDetails());
            }
        }
    }

    @Test
    void aRouteToAMissingClusterLogsNoUpstreamClusterAsEnvoyPrintsADash() {
        // Envoy sets the stream's upstream cluster only once the route's cluster was found
        var r = rig.call(rig.router(), get("/x"), routeToC(""), rig.clusters());
        assertEquals(Set.of(ResponseFlag.NO_CLUSTER_FOUND), r.info().responseFlags());
        assertNull(r.info().upstreamCluster());
    }

    @Test
    void aClusterWithoutHostsAnswers503NoHealthyUpstreamWithUh() {
        Cluster empty = Cluster.builder("c", DiscoveryType.STATIC).lbPolicy(LbPolicy.ROUND_ROBIN)
                .connectTimeout(Duration.ofSeconds(1)).loadAssignment(ClusterLoadAssignment.empty("c")).build();
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 2}"),
                rig.clusters(empty));
        assertEquals(503, r.status());
        assertEquals("no healthy upstream", r.body());
        assertEquals("text/plain", r.header("content-type"));
        assertEquals(Set.of(ResponseFlag.NO_HEALTHY_UPSTREAM), r.info().responseFlags());
        assertEquals("no_healthy_upstream", r.info().responseCodeDetails());
        assertEquals(0, r.info().attemptCount());
    }

    @Test
    void aRefusedConnectionAnswers503WithUf() {
        var r = rig.call(rig.router(), get("/x"), routeToC(""), rig.clusters(cluster("c", closedPort())));
        assertEquals(503, r.status());
        // as Envoy's router words it: the pool's reset reason, then the socket's error the connect ended with
        assertEquals("upstream connect error or disconnect/reset before headers. reset reason: remote connection "
                + "failure, transport failure reason: delayed connect error: Connection refused", r.body());
        assertEquals(Set.of(ResponseFlag.UPSTREAM_CONNECTION_FAILURE), r.info().responseFlags());
        assertEquals("upstream_reset_before_response_started{remote_connection_failure|"
                + "delayed_connect_error:_Connection_refused}", r.info().responseCodeDetails());
        assertEquals("delayed connect error: Connection refused", r.info().upstreamTransportFailureReason());
        assertEquals(1, r.info().attemptCount());
        assertFalse(r.headers().contains("x-envoy-upstream-service-time"), "not on a local reply");
    }

    @Test
    void aConnectTheClustersConnectTimeoutEndsAnswers503UfConnectionTimeoutAndCountsIt() throws Exception {
        connectTimesOut(Duration.ofMillis(300));
    }

    @Test
    void aSubMillisecondConnectTimeoutStillEndsTheConnectRatherThanTurningTheTimeoutOff() throws Exception {
        // 0.5 ms is 0 whole milliseconds, which Netty would read as no connect timeout at all: the request would
        // wait for the route's timeout (504) rather than fail at once, as Envoy's, whose timer of 0 ms fires at once
        long started = System.nanoTime();
        connectTimesOut(Duration.ofNanos(500_000));
        assertTrue(System.nanoTime() - started < 2_000_000_000L, "ended by the connect timeout, not the route's");
    }

    /** A request to a host whose connect never ends, with the cluster's {@code connectTimeout}: 503 UF, counted. */
    private void connectTimesOut(Duration connectTimeout) throws Exception {
        // a loopback listener that never accepts, its accept queue filled: Linux drops further SYNs, so a connect
        // to it waits until the cluster's connect_timeout ends it
        try (java.net.ServerSocket full = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            List<java.net.Socket> queued = new java.util.ArrayList<>();
            try {
                for (int i = 0; i < 2; i++) {
                    java.net.Socket s = new java.net.Socket();
                    s.connect(full.getLocalSocketAddress(), 1000);
                    queued.add(s);
                }
                var registry = new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
                Router router = rig.router();
                router.upstreamStats(dev.inmesh.runtime.stats.MeshMetrics.create(registry,
                        dev.inmesh.runtime.stats.WorkloadInfo.UNKNOWN)::upstream);
                Cluster c = Cluster.builder("c", DiscoveryType.STATIC).lbPolicy(LbPolicy.ROUND_ROBIN)
                        .connectTimeout(connectTimeout).loadAssignment(hosts("c", full.getLocalPort())).build();
                var r = rig.call(router, get("/x"), routeToC("timeout: 3s"), rig.clusters(c));
                assertEquals(503, r.status());
                assertEquals("upstream connect error or disconnect/reset before headers. reset reason: connection "
                        + "timeout", r.body());
                assertEquals(Set.of(ResponseFlag.UPSTREAM_CONNECTION_FAILURE), r.info().responseFlags());
                assertEquals("upstream_reset_before_response_started{connection_timeout}",
                        r.info().responseCodeDetails());
                // the connect the proxy gave up: a connection destroyed locally, as Envoy's pool closes it
                for (String stat : List.of("upstream_cx_connect_timeout", "upstream_cx_connect_fail",
                        "upstream_cx_destroy", "upstream_cx_destroy_local")) {
                    assertEquals(1.0, registry.find("envoy_cluster_" + stat).tag("cluster_name", "c").gauge()
                            .value(), stat);
                }
            } finally {
                for (java.net.Socket s : queued) {
                    s.close();
                }
            }
        }
    }

    @Test
    void aResetBeforeHeadersAnswers503WithUc() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(aResponse().withFault(Fault.CONNECTION_RESET_BY_PEER)));
        var r = rig.call(rig.router(), get("/x"), routeToC(""), rig.clusters(cluster("c", wm.port())));
        assertEquals(503, r.status());
        assertEquals(Set.of(ResponseFlag.UPSTREAM_CONNECTION_TERMINATION), r.info().responseFlags());
        assertEquals("upstream_reset_before_response_started{connection_termination}",
                r.info().responseCodeDetails());
    }

    /**
     * Cluster {@code c}'s upstream_cx_destroy, upstream_cx_destroy_local and upstream_cx_destroy_remote once one call
     * answered {@code expectedStatus} and its connection closed.
     */
    private double[] destroyed(RouteTable table, ClusterManager clusters, int expectedStatus) {
        PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        Router router = rig.router();
        router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
        assertEquals(expectedStatus, rig.call(router, get("/x"), table, clusters).status());
        java.util.function.ToDoubleFunction<String> stat = name -> reg.get("envoy_cluster_" + name)
                .tag("cluster_name", "c").gauge().value();
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (stat.applyAsDouble("upstream_cx_destroy") == 0 && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        return new double[] {stat.applyAsDouble("upstream_cx_destroy"), stat.applyAsDouble("upstream_cx_destroy_local"),
            stat.applyAsDouble("upstream_cx_destroy_remote")};
    }

    @Test
    void aClosedConnectionCountsInUpstreamCxDestroyByTheSideThatClosedIt() {
        // as Envoy: a refused connect and a reset are the upstream's close; a request the route timeout resets
        // takes its HTTP/1 connection down with it, the proxy's close
        assertArrayEquals(new double[] {1, 0, 1}, destroyed(routeToC(""), rig.clusters(cluster("c", closedPort())),
                503), "connection refused");
        WireMockServer reset = rig.wiremock();
        reset.stubFor(any(anyUrl()).willReturn(aResponse().withFault(Fault.CONNECTION_RESET_BY_PEER)));
        assertArrayEquals(new double[] {1, 0, 1}, destroyed(routeToC(""), rig.clusters(cluster("c", reset.port())),
                503), "reset by the upstream");
        WireMockServer slow = rig.wiremock();
        slow.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(200).withFixedDelay(1500)));
        assertArrayEquals(new double[] {1, 1, 0}, destroyed(routeToC("timeout: 0.2s"),
                rig.clusters(cluster("c", slow.port())), 504), "reset by the route timeout");
    }

    /** Cluster {@code c}'s upstream_rq_completed and upstream_rq_xx of class 5xx after one call. */
    private double[] completedAnd5xx(RouteTable table, ClusterManager clusters, int expectedStatus) {
        PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        Router router = rig.router();
        router.upstreamStats(MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
        assertEquals(expectedStatus, rig.call(router, get("/x"), table, clusters).status());
        var completed = reg.find("envoy_cluster_upstream_rq_completed").tag("cluster_name", "c").gauge();
        var fiveXx = reg.find("envoy_cluster_upstream_rq_xx").tag("cluster_name", "c")
                .tag("response_code_class", "5xx").gauge();
        return new double[] {completed == null ? 0 : completed.value(), fiveXx == null ? 0 : fiveXx.value()};
    }

    @Test
    void theRoutersOwn503And504AfterAnUpstreamFailureCountInTheClustersUpstreamRqCompletedAnd5xxAsEnvoys() {
        // Envoy's router charges the code it answers with to the cluster when an upstream attempt ends without a
        // response (connect failure, reset, overflow, timeout) and when no host is healthy; a retried failure is
        // not charged, only the answer.
        double[] one5xx = {1.0, 1.0};
        assertArrayEquals(one5xx, completedAnd5xx(routeToC(""), rig.clusters(cluster("c", closedPort())), 503),
                "connection failure (UF)");
        WireMockServer reset = rig.wiremock();
        reset.stubFor(any(anyUrl()).willReturn(aResponse().withFault(Fault.CONNECTION_RESET_BY_PEER)));
        assertArrayEquals(one5xx, completedAnd5xx(routeToC(""), rig.clusters(cluster("c", reset.port())), 503),
                "reset before headers (UC)");
        WireMockServer slow = rig.wiremock();
        slow.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(200).withFixedDelay(1500)));
        assertArrayEquals(one5xx, completedAnd5xx(routeToC("timeout: 0.2s"),
                rig.clusters(cluster("c", slow.port())), 504), "route timeout (UT)");
        assertArrayEquals(one5xx, completedAnd5xx(routeToC("retry_policy: {retry_on: 5xx, num_retries: 0, "
                + "per_try_timeout: 0.2s}"), rig.clusters(cluster("c", slow.port())), 504), "per-try timeout (UT)");
        assertArrayEquals(one5xx, completedAnd5xx(routeToC(""), rig.clusters(noHosts()), 503),
                "no healthy upstream (UH)");
        assertArrayEquals(one5xx, completedAnd5xx(routeToC(""), rig.clusters(cluster("c",
                dev.inmesh.api.config.cluster.LbPolicy.ROUND_ROBIN, RouterRig.breakers(1024, 1024, 0, 3), null,
                closedPort())), 503), "max_requests overflow (UO)");
        assertArrayEquals(one5xx, completedAnd5xx(routeToC("retry_policy: {retry_on: connect-failure, "
                + "num_retries: 2}"), rig.clusters(cluster("c", closedPort())), 503),
                "three failed attempts, one answer");
    }

    @Test
    void aRedirectAnswersWithItsStatusAndLocation() {
        var t = table("  - match: {prefix: /old}\n    redirect: {path_redirect: /new, response_code: FOUND}\n"
                + "  - match: {prefix: /}\n    redirect: {host_redirect: other.example, https_redirect: true}\n");
        var r = rig.call(rig.router(), get("/old"), t, rig.clusters());
        assertEquals(302, r.status());
        assertEquals("http://svc.local/new", r.header("location"));
        assertEquals("", r.body());
        var r2 = rig.call(rig.router(), get("/a?b=c"), t, rig.clusters());
        assertEquals(301, r2.status());
        assertEquals("https://other.example/a?b=c", r2.header("location"));
        assertEquals(Set.of(), r2.info().responseFlags());
    }

    @Test
    void aVirtualHostThatRequiresTlsRedirectsWhatDidNotComeOverItBeforeAnyRoute() {
        String config = "name: r\nresponse_headers_to_add: [{header: {key: x-config, value: c}}]\n"
                + "virtual_hosts:\n- name: vh\n  domains: [\"svc.local\", \"svc.local:8080\"]\n  require_tls: %s\n"
                + "  response_headers_to_add: [{header: {key: x-vh, value: v}}]\n  routes:\n"
                + "  - match: {prefix: /api}\n    direct_response: {status: 200}\n";
        var all = RouterRig.table(config.formatted("ALL"));
        // no route for /other: the redirect comes first, with the Host as sent (port included) and the query
        var sent = new RouterRequest(StreamInfo.Direction.OUTBOUND, HttpMethod.GET, "/other?b=c", "svc.local:8080",
                "http", MultiMap.caseInsensitiveMultiMap(), null, "127.0.0.1:50000", "127.0.0.1:15001", null,
                "HTTP/1.1");
        var r = rig.call(rig.router(), sent, all, rig.clusters());
        assertEquals(301, r.status());
        assertEquals("https://svc.local:8080/other?b=c", r.header("location"));
        assertEquals("direct_response", r.info().responseCodeDetails());
        assertNull(r.header("x-vh"), "Envoy's TLS redirect takes no header rules");
        assertNull(r.header("x-config"));
        // what came over TLS to the proxy before (x-forwarded-proto) is routed; under ALL, an internal request is
        // redirected too
        assertEquals(200, rig.call(rig.router(), get("/api", "x-forwarded-proto", "https"), all, rig.clusters())
                .status());
        assertEquals(301, rig.call(rig.router(), get("/api", "x-envoy-internal", "true"), all, rig.clusters())
                .status());
        var external = RouterRig.table(config.formatted("EXTERNAL_ONLY"));
        // internal: the connection manager takes its one x-forwarded-for address for internal
        var manager = dev.inmesh.api.config.listener.HttpConnectionManager.of("p", "r",
                List.of(dev.inmesh.api.config.listener.HttpFilter.of("envoy.filters.http.router", "")))
                .withInternalAddresses(List.of(new dev.inmesh.api.config.core.CidrRange("10.0.0.0", 8)));
        var internal = rig.call(rig.router(), get("/api", "x-forwarded-for", "10.1.2.3").internal(manager), external,
                rig.clusters());
        assertEquals(200, internal.status());
        assertEquals("v", internal.header("x-vh"));
        assertEquals(301, rig.call(rig.router(), get("/api"), external, rig.clusters()).status());
        assertEquals(200, rig.call(rig.router(), get("/api"), RouterRig.table(config.formatted("NONE")),
                rig.clusters()).status());
    }

    @Test
    void aDirectResponseAnswersWithItsStatusAndBody() {
        var t = table("  - match: {prefix: /}\n    direct_response: {status: 418, body: {inline_string: teapot}}\n");
        var r = rig.call(rig.router(), get("/x"), t, rig.clusters());
        assertEquals(418, r.status());
        assertEquals("teapot", r.body());
        assertEquals("text/plain", r.header("content-type"));
        assertEquals("6", r.header("content-length"));
        assertEquals("direct_response", r.info().responseCodeDetails());
        assertEquals(Set.of(), r.info().responseFlags());
        assertNull(r.header("location"), "only a 201 or a 3xx carries one");
    }

    /**
     * As Envoy's prepareLocalReply (source/common/http/utility.cc): the route's header rules first, then
     * {@code text/plain} only where they set no content type; an empty body has none, whatever they set. So for every
     * local reply that carries the route's rules (a direct response, a redirect, a 503 for the route's cluster).
     */
    @Test
    void aLocalReplyKeepsTheContentTypeItsRouteSetsAndAnEmptyBodyHasNone() {
        String json = "    response_headers_to_add: [{header: {key: content-type, value: application/json}}]\n";
        var t = table("  - match: {prefix: /json}\n    direct_response: {status: 200, body: {inline_string: x}}\n"
                + json + "  - match: {prefix: /empty}\n    direct_response: {status: 403}\n" + json
                + "  - match: {prefix: /moved}\n    redirect: {path_redirect: /new}\n" + json);
        var r = rig.call(rig.router(), get("/json"), t, rig.clusters());
        assertEquals(List.of("application/json"), r.headers().getAll("content-type"));
        assertEquals("x", r.body());
        assertEquals("1", r.header("content-length"));
        for (String path : List.of("/empty", "/moved")) {
            var empty = rig.call(rig.router(), get(path), t, rig.clusters());
            assertEquals(List.of(), empty.headers().getAll("content-type"), path);
            assertEquals("0", empty.header("content-length"), path);
        }
        Cluster noHosts = Cluster.builder("c", DiscoveryType.STATIC).lbPolicy(LbPolicy.ROUND_ROBIN)
                .connectTimeout(Duration.ofSeconds(1)).loadAssignment(ClusterLoadAssignment.empty("c")).build();
        var uh = rig.call(rig.router(), get("/x"), routeToC("", json.strip(), ""), rig.clusters(noHosts));
        assertEquals("no healthy upstream", uh.body());
        assertEquals(List.of("application/json"), uh.headers().getAll("content-type"));
    }

    @Test
    void aDirectResponseOf201Or3xxCarriesTheRequestsUrlAsLocation() {
        for (int status : new int[] {201, 302}) {
            var t = table("  - match: {prefix: /}\n    direct_response: {status: " + status + "}\n");
            var r = rig.call(rig.router(), get("/a?b=c"), t, rig.clusters());
            assertEquals(status, r.status());
            assertEquals("http://svc.local/a?b=c", r.header("location"));
        }
    }

    @Test
    void aLocalReplyReachesTheObserverOnce() {
        var r = rig.call(rig.router(), get("/x"), routeToC(""), rig.clusters());
        assertEquals(1, rig.observed().size());
        assertEquals(r.info(), rig.observed().get(0));
        assertNull(rig.router().complete(r.response(), 0), "a second complete records nothing");
    }
    @Test
    void aPathWithWhitespaceAnswers400InsteadOfHangingWithoutARouteTimeout() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(200)));
        var r = rig.call(rig.router(), get("/x y"), routeToC("timeout: 0s"), rig.clusters(cluster("c", wm.port())));
        assertEquals(400, r.status());
        assertEquals(Set.of(ResponseFlag.DOWNSTREAM_PROTOCOL_ERROR), r.info().responseFlags());
        assertEquals(0, r.info().attemptCount());
        assertTrue(wm.getAllServeEvents().isEmpty());
    }

    @Test
    void anInvalidHeaderValueAnswers400AndIsNotHeldAgainstTheHost() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(200)));
        // One failure would eject the host.
        var od = new dev.inmesh.api.config.cluster.OutlierDetection(1, Duration.ofSeconds(60), Duration.ofSeconds(60),
                Duration.ofSeconds(300), 100, 100, 0, 5, 100, 1900, 0, 0, false, 5, 0, 0, 85, 0, 0, 5, 50);
        var clusters = rig.clusters(RouterRig.cluster("c", LbPolicy.ROUND_ROBIN, null, od, wm.port()));
        var r = rig.call(rig.router(), get("/x", "x-bad", "a\r\nb"),
                routeToC("retry_policy: {retry_on: \"connect-failure,5xx\", num_retries: 2}"), clusters);
        assertEquals(400, r.status());
        assertEquals(Set.of(ResponseFlag.DOWNSTREAM_PROTOCOL_ERROR), r.info().responseFlags());
        assertEquals(1, r.info().attemptCount(), "not retried");
        assertEquals(0, clusters.cluster("c").outlierDetector().activeEjections());
        assertEquals(200, rig.call(rig.router(), get("/x"), routeToC(""), clusters).status());
    }
    private static final String[] GRPC = {"content-type", "application/grpc"};

    private static Cluster noHosts() {
        return Cluster.builder("c", DiscoveryType.STATIC).lbPolicy(LbPolicy.ROUND_ROBIN)
                .connectTimeout(Duration.ofSeconds(1)).loadAssignment(ClusterLoadAssignment.empty("c")).build();
    }

    @Test
    void aLocalReplyToAGrpcRequestIsATrailersOnlyGrpcResponse() {
        var r = rig.call(rig.router(), get("/pkg.Svc/M", GRPC), routeToC(""), rig.clusters(noHosts()));
        assertEquals(200, r.status(), "gRPC carries the error in grpc-status");
        assertEquals("application/grpc", r.header("content-type"));
        assertEquals("14", r.header("grpc-status"), "503 is UNAVAILABLE");
        assertEquals("no healthy upstream", r.header("grpc-message"));
        assertEquals(null, r.header("content-length"), "as Envoy's gRPC local reply: its codec frames it");
        assertEquals("", r.body());
        assertEquals(Set.of(ResponseFlag.NO_HEALTHY_UPSTREAM), r.info().responseFlags());
        assertEquals(200, r.info().responseCode());
        assertEquals("14", r.info().grpcStatus());
    }

    @Test
    void aGrpcLocalReplyMapsItsHttpStatusAndPercentEncodesItsMessage() {
        var nr = rig.call(rig.router(), get("/pkg.Svc/M", "content-type", "application/grpc+proto"),
                table("  - match: {prefix: /other}\n    route: {cluster: c}\n"), rig.clusters());
        assertEquals(200, nr.status());
        assertEquals("12", nr.header("grpc-status"), "404 is UNIMPLEMENTED");
        assertNull(nr.header("grpc-message"), "no body, no message");
        var direct = rig.call(rig.router(), get("/pkg.Svc/M", GRPC), table("  - match: {prefix: /}\n"
                + "    direct_response: {status: 403, body: {inline_string: \"100% d\u00e9nied~\\n\"}}\n"),
                rig.clusters());
        assertEquals(200, direct.status());
        assertEquals("7", direct.header("grpc-status"), "403 is PERMISSION_DENIED");
        // as Envoy's PercentEncoding::encode: every byte below ' ', from '~' on, and '%'
        assertEquals("100%25 d%C3%A9nied%7E%0A", direct.header("grpc-message"));
        assertEquals("", direct.body());
    }

    @Test
    void aGrpcWebRequestGetsAPlainHttpLocalReply() {
        var r = rig.call(rig.router(), get("/pkg.Svc/M", "content-type", "application/grpc-web"), routeToC(""),
                rig.clusters(noHosts()));
        assertEquals(503, r.status());
        assertNull(r.header("grpc-status"));
        assertEquals("no healthy upstream", r.body());
        assertNull(r.info().grpcStatus());
    }

    @Test
    void grpcStatusMappingsAreEnvoys() {
        assertEquals(14, Grpc.fromHttp(504));
        assertEquals(16, Grpc.fromHttp(401));
        assertEquals(13, Grpc.fromHttp(400));
        assertEquals(2, Grpc.fromHttp(500));
        assertEquals(503, Grpc.toHttp(14));
        assertEquals(504, Grpc.toHttp(4));
        assertEquals(499, Grpc.toHttp(1));
        assertEquals(429, Grpc.toHttp(8));
        assertEquals(500, Grpc.toHttp(Grpc.INVALID_STATUS));
        assertEquals(Integer.valueOf(Grpc.INVALID_STATUS), Grpc.parseStatus("17"));
        assertEquals(Integer.valueOf(Grpc.INVALID_STATUS), Grpc.parseStatus("x"));
        assertNull(Grpc.parseStatus(""));
        // as Envoy's getGrpcStatus, through absl's SimpleAtoi: whitespace around, a plus and leading zeros taken
        assertEquals(Integer.valueOf(14), Grpc.parseStatus("014"));
        assertEquals(Integer.valueOf(14), Grpc.parseStatus("+14"));
        assertEquals(Integer.valueOf(14), Grpc.parseStatus(" 14\t"));
        assertEquals(Integer.valueOf(4), Grpc.parseStatus("0000000000000000000000004"));
        assertEquals(Integer.valueOf(Grpc.INVALID_STATUS), Grpc.parseStatus("-1"));
        assertEquals(Integer.valueOf(Grpc.INVALID_STATUS), Grpc.parseStatus("+"));
        assertEquals(Integer.valueOf(Grpc.INVALID_STATUS), Grpc.parseStatus("99999999999999999999999"));
    }
}
