package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.inbound.InboundHandler;
import dev.inmesh.runtime.router.IstioRbac;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.upstream.UpstreamEnvironment;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.IstioGlobalRateLimit;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.service.ratelimit.v3.RateLimitRequest;
import io.envoyproxy.envoy.service.ratelimit.v3.RateLimitResponse;
import io.grpc.Server;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mesh.inbound(handler)} under the global part of Istio's "Enabling Rate Limits using Envoy" task: the rate
 * limit filter asks a grpc-java {@code RateLimitService} on loopback, through its
 * {@code outbound|8081||ratelimit.default.svc.cluster.local} cluster, with the descriptors the virtual host's
 * {@code rate_limits} make of each request. {@code OVER_LIMIT} is answered 429 with {@code x-envoy-ratelimited}
 * (response flag RL, {@code request_rate_limited}) and never reaches the application; {@code OK} goes on with the
 * service's headers; a service that does not answer in time, or is gone, is an error: 500 (RLSE,
 * {@code rate_limiter_error}) under {@code failure_mode_deny}, else the application, counted in the route's cluster's
 * {@code ratelimit.*} statistics.
 */
@Timeout(60)
class MeshInboundRateLimitTest {
    @TempDir
    Path dir;
    final Vertx vertx = Vertx.vertx();
    final WebClient plain = WebClient.create(vertx);
    /** What the application saw of each request: its path and the header the service added. */
    final List<String> appSaw = new CopyOnWriteArrayList<>();
    /** What the service was asked. */
    final List<RateLimitRequest> asked = new CopyOnWriteArrayList<>();
    final List<StreamInfo> logged = new CopyOnWriteArrayList<>();
    Mesh mesh;
    SnapshotHolder snapshots;
    Server grpc;

    @AfterEach
    void stop() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        if (snapshots != null) {
            snapshots.close();
        }
        if (grpc != null) {
            grpc.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /**
     * A rate limit service on loopback: a request whose {@code PATH} is {@code /limited} is over the limit (with a
     * body and a header), {@code /slow} too after 300 ms, {@code /hang} is never answered, any other is OK with a
     * header for the request and one for the response.
     */
    int rateLimitService() throws Exception {
        grpc = IstioGlobalRateLimit.service(asked, request -> {
            String path = IstioGlobalRateLimit.path(request);
            if (path.equals("/hang")) {
                return null;
            }
            if (path.equals("/slow")) {
                try {
                    Thread.sleep(300); // on the service's own thread, never an event loop
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            RateLimitResponse.Builder r = RateLimitResponse.newBuilder();
            if (path.equals("/limited") || path.equals("/slow")) {
                r.setOverallCode(RateLimitResponse.Code.OVER_LIMIT)
                        .addResponseHeadersToAdd(header("x-rl-reason", "too-many"))
                        .setRawBody(com.google.protobuf.ByteString.copyFromUtf8("slow down"));
            } else {
                r.setOverallCode(RateLimitResponse.Code.OK)
                        .addRequestHeadersToAdd(header("x-rl-request", "seen"))
                        .addResponseHeadersToAdd(header("x-rl-response", "ok"));
            }
            return r.build();
        });
        return grpc.getPort();
    }

    private static HeaderValue header(String key, String value) {
        return HeaderValue.newBuilder().setKey(key).setValue(value).build();
    }

    /**
     * The workload's config: the task's filter and virtual host rate limits, the service's cluster and, with
     * {@code inboundCluster}, the application's (which {@code mesh.inbound(...)} does not need).
     */
    static String config(String timeout, boolean failureModeDeny, int service, boolean inboundCluster) {
        return config(IstioGlobalRateLimit.filter(timeout, failureModeDeny), service, inboundCluster);
    }

    /** As {@link #config(String, boolean, int, boolean)}, with the rate limit filter {@code filter}. */
    static String config(String filter, int service, boolean inboundCluster) {
        return IstioRbac.first(filter,
                MeshWebClientTest.virtualInbound("", IstioGlobalRateLimit.VIRTUAL_HOST_RATE_LIMITS.indent(14) + """
                                  routes:
                                  - {match: {prefix: /}, route: {cluster: "inbound|9080||", timeout: 0s}}
                    """)) + "  clusters:\n" + IstioGlobalRateLimit.cluster(service) + (!inboundCluster ? "" : """
                  - name: "inbound|9080||"
                    type: STATIC
                    connect_timeout: 1s
                    load_assignment:
                      cluster_name: "inbound|9080||"
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 9080}}}
                """);
    }

    /** An HTTP server on loopback whose requests go through an {@link InboundHandler} of {@code config}. */
    int serveThrough(String config) throws Exception {
        snapshots = new SnapshotHolder(UpstreamEnvironment.of(vertx));
        snapshots.apply(EnvoyConfigReader.read(config));
        return vertx.createHttpServer().requestHandler(new InboundHandler(req -> {
            appSaw.add(req.path() + " " + req.getHeader("x-rl-request"));
            req.response().end("app");
        }, snapshots, logged::add)).listen(0, "127.0.0.1").await().actualPort();
    }

    HttpResponse<Buffer> call(int port, HttpMethod method, String uri, String user) throws Exception {
        var r = plain.request(method, port, "127.0.0.1", uri);
        if (user != null) {
            r.putHeader("x-user", user);
        }
        return r.send().await(10, TimeUnit.SECONDS);
    }

    StreamInfo loggedWith(int status) throws InterruptedException {
        return MeshInboundExtAuthzTest.loggedWith(logged, status);
    }


    /**
     * As Envoy's filter evaluates its {@code response_headers_to_add} in the refusal's {@code modify_headers}
     * (ratelimit.cc): formatted from the request, the refusal's status and its headers, the service's among them.
     */
    @Test
    void theFiltersResponseHeadersToAddAreFormattedFromTheRequestAndTheRefusal() throws Exception {
        int port = serveThrough(config(IstioGlobalRateLimit.filter("5s", true)
                + IstioGlobalRateLimit.RESPONSE_HEADERS_TO_ADD, rateLimitService(), false));

        HttpResponse<Buffer> limited = call(port, HttpMethod.GET, "/limited", "alice");
        assertEquals(429, limited.statusCode());
        assertEquals("alice 429 too-many 100%", limited.getHeader("x-limited"));
        assertEquals("true", limited.getHeader("x-envoy-ratelimited"));
        assertNull(call(port, HttpMethod.GET, "/ok", "alice").getHeader("x-limited"), "only a refusal gets them");
    }

    @Test
    void overLimitIsAnswered429WithXEnvoyRateLimitedAndTheServiceGetsTheDescriptorsOfTheActions() throws Exception {
        // no inbound|9080|| cluster (mesh.inbound needs none): checked all the same, where Envoy would skip the check
        int port = serveThrough(config("5s", true, rateLimitService(), false));

        HttpResponse<Buffer> ok = call(port, HttpMethod.GET, "/ok?x=1", "alice");
        assertEquals(200, ok.statusCode());
        assertEquals("ok", ok.getHeader("x-rl-response"), "the service's response_headers_to_add");
        assertNull(ok.getHeader("x-envoy-ratelimited"));
        assertEquals(List.of("/ok seen"), appSaw, "the service's request_headers_to_add reach the application");
        assertEquals("ratelimit", asked.get(0).getDomain());
        assertEquals(List.of("PATH=/ok?x=1", "generic_key=per-user,USER=alice",
                "remote_address=127.0.0.1,header_match=get"), IstioGlobalRateLimit.descriptors(asked.get(0)));

        HttpResponse<Buffer> limited = call(port, HttpMethod.GET, "/limited", null);
        assertEquals(429, limited.statusCode());
        assertEquals("true", limited.getHeader("x-envoy-ratelimited"));
        assertEquals("too-many", limited.getHeader("x-rl-reason"), "the service's headers on the refusal");
        assertEquals("slow down", limited.bodyAsString(), "the service's raw_body");
        assertEquals(1, appSaw.size(), "a refused request never reaches the application");
        assertEquals(List.of("PATH=/limited", "remote_address=127.0.0.1,header_match=get"),
                IstioGlobalRateLimit.descriptors(asked.get(1)), "without x-user the entry that needs it drops its whole descriptor");
        StreamInfo refused = loggedWith(429);
        assertEquals("request_rate_limited", refused.responseCodeDetails());
        assertEquals("RL", ResponseFlag.format(refused.responseFlags()));

        assertEquals(200, call(port, HttpMethod.POST, "/ok", null).statusCode());
        assertEquals(List.of("PATH=/ok"), IstioGlobalRateLimit.descriptors(asked.get(2)),
                "a header_value_match that does not hold drops its descriptor too");
    }

    @Test
    void aTimeoutOfZeroSecondsWaitsForTheServicesAnswerAsEnvoysFilterReadsItAsNoTimeout() throws Exception {
        int port = serveThrough(config("0s", true, rateLimitService(), true));
        HttpResponse<Buffer> slow = call(port, HttpMethod.GET, "/slow", "alice");
        assertEquals(429, slow.statusCode(), "the service's OVER_LIMIT after 300 ms, not an error (500)");
        assertEquals("true", slow.getHeader("x-envoy-ratelimited"));
        assertTrue(appSaw.isEmpty());
    }

    @Test
    void aServiceThatDoesNotAnswerInTimeOrIsGoneIsAnErrorRefusedUnderFailureModeDenyElseLetThrough()
            throws Exception {
        int service = rateLimitService();
        int closed = serveThrough(config("0.2s", true, service, true));
        long start = System.nanoTime();
        HttpResponse<Buffer> refused = call(closed, HttpMethod.GET, "/hang", "alice");
        assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(5), "the timeout bounds the wait");
        assertEquals(500, refused.statusCode(), "failure_mode_deny: Envoy's 500");
        assertNull(refused.getHeader("x-envoy-ratelimited"));
        StreamInfo error = loggedWith(500);
        assertEquals("rate_limiter_error", error.responseCodeDetails());
        assertEquals("RLSE", ResponseFlag.format(error.responseFlags()));
        assertTrue(appSaw.isEmpty());
        snapshots.close();
        snapshots = null;

        // a timeout the service's real answers below are well within on a loaded machine (past it, "/limited" would
        // be let through and counted an error)
        Path file = Files.writeString(dir.resolve("mesh.yaml"), config("1s", false, service, true));
        mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("productpage-v1").setApp("productpage")
                .setNamespace("default").setConfigFile(file.toString()).setAdminPort(0));
        mesh.start().await(10, TimeUnit.SECONDS);
        int open = vertx.createHttpServer().requestHandler(mesh.inbound(req -> {
            appSaw.add(req.path() + " " + req.getHeader("x-rl-request"));
            req.response().end("app");
        })).listen(0, "127.0.0.1").await().actualPort();
        assertEquals(200, call(open, HttpMethod.GET, "/hang", "alice").statusCode(), "an error lets it through");
        assertEquals(200, call(open, HttpMethod.GET, "/ok", "alice").statusCode());
        assertEquals(429, call(open, HttpMethod.GET, "/limited", "alice").statusCode());
        grpc.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
        assertEquals(200, call(open, HttpMethod.GET, "/ok", "alice").statusCode(), "a service that is gone too");
        assertEquals(List.of("/hang null", "/ok seen", "/ok null"), appSaw);

        String p = "cluster.inbound|9080||.ratelimit.";
        String stats = MeshInboundRbacTest.admin(plain, mesh.adminPort(), "/stats?filter=ratelimit",
                p + "failure_mode_allowed: 2");
        assertTrue(stats.contains(p + "ok: 1\n") && stats.contains(p + "over_limit: 1\n")
                && stats.contains(p + "error: 2\n") && stats.contains(p + "failure_mode_allowed: 2\n"), stats);
        String prom = MeshInboundRbacTest.admin(plain, mesh.adminPort(), "/stats/prometheus",
                "response_flags=\"RL\"");
        // a bootstrap without stats_config: the cluster under Envoy's default tag
        assertTrue(prom.contains("envoy_cluster_ratelimit_over_limit{envoy_cluster_name=\"inbound|9080||\"} 1"), prom);
        assertTrue(prom.lines().anyMatch(l -> l.startsWith("istio_requests_total{")
                && l.contains("response_code=\"429\"") && l.contains("response_flags=\"RL\"")), prom);
    }

    /**
     * The workload's config with Istio's fault and CORS filters (and the CORS policy on its virtual host), the rate
     * limit filter after them ({@code last}: where INSERT_BEFORE the router puts it) or before them.
     */
    static String placed(boolean last, int service) {
        String c = config("5s", true, service, false).replace("\n              rate_limits:\n",
                "\n              typed_per_filter_config: {envoy.filters.http.cors: " + IstioGlobalRateLimit.CORS_POLICY
                        + "}\n              rate_limits:\n");
        return last ? IstioRbac.first(IstioGlobalRateLimit.FAULT_AND_CORS, c)
                : IstioRbac.beforeRouter(IstioGlobalRateLimit.FAULT_AND_CORS, c);
    }

    HttpResponse<Buffer> preflight(int port, String uri) throws Exception {
        return plain.request(HttpMethod.OPTIONS, port, "127.0.0.1", uri).putHeader("origin", IstioGlobalRateLimit.ORIGIN)
                .putHeader("access-control-request-method", "POST").send().await(10, TimeUnit.SECONDS);
    }

    HttpResponse<Buffer> aborted(int port, String uri) throws Exception {
        return plain.get(port, "127.0.0.1", uri).putHeader("x-abort", "1").send().await(10, TimeUnit.SECONDS);
    }

    @Test
    void afterTheFaultAndCorsFiltersTheServiceIsNotAskedAboutAPreflightOrAnAbortedRequestAsInEnvoy() throws Exception {
        int port = serveThrough(placed(true, rateLimitService()));

        HttpResponse<Buffer> pre = preflight(port, "/pre");
        assertEquals(200, pre.statusCode());
        assertEquals(IstioGlobalRateLimit.ORIGIN, pre.getHeader("access-control-allow-origin"));
        assertEquals(418, aborted(port, "/abort").statusCode());
        assertEquals(List.of(), asked, "the CORS and fault filters answered before the rate limit filter ran");

        assertEquals(429, call(port, HttpMethod.GET, "/limited", null).statusCode());
        HttpResponse<Buffer> ok = call(port, HttpMethod.GET, "/ok", null);
        assertEquals(200, ok.statusCode());
        assertEquals("ok", ok.getHeader("x-rl-response"), "the service's response_headers_to_add");
        assertEquals(List.of("/ok seen"), appSaw, "its request_headers_to_add reach the application");
        assertEquals(List.of("/limited", "/ok"), asked.stream().map(IstioGlobalRateLimit::path).toList());
    }

    @Test
    void beforeTheFaultAndCorsFiltersTheServiceIsAskedFirst() throws Exception {
        int port = serveThrough(placed(false, rateLimitService()));
        assertEquals(200, preflight(port, "/pre").statusCode());
        assertEquals(418, aborted(port, "/abort").statusCode());
        assertEquals(429, preflight(port, "/limited").statusCode(), "refused before the CORS filter answers");
        assertEquals(List.of("/pre", "/abort", "/limited"), asked.stream().map(IstioGlobalRateLimit::path).toList());
    }
}
