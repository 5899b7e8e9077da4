package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.router.IstioRbac;
import dev.inmesh.runtime.xds.IstioGlobalRateLimit;
import io.envoyproxy.envoy.service.ratelimit.v3.RateLimitRequest;
import io.envoyproxy.envoy.service.ratelimit.v3.RateLimitResponse;
import io.grpc.Server;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The mesh client's outbound requests meet the global rate limit filter of their connection manager as a sidecar's
 * do: the route's own {@code rate_limits} make the descriptors, and a request the service says is over the limit is
 * answered 429 before anything goes upstream.
 */
@Timeout(60)
class MeshClientRateLimitTest {
    @TempDir
    Path dir;
    final Vertx vertx = Vertx.vertx();
    final List<RateLimitRequest> asked = new CopyOnWriteArrayList<>();
    final AtomicInteger upstreamCalls = new AtomicInteger();
    Mesh mesh;
    Server grpc;

    @AfterEach
    void stop() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        if (grpc != null) {
            grpc.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** Starts productpage's mesh on {@code config} and returns its client. */
    private WebClient start(String config) throws Exception {
        Path file = Files.writeString(dir.resolve("mesh.yaml"), config);
        mesh = Mesh.create(vertx, new MeshOptions().setAdminPort(0)
                .setWorkloadName("productpage-v1").setApp("productpage")
                .setNamespace("default").setConfigFile(file.toString()));
        mesh.start().await(10, TimeUnit.SECONDS);
        return mesh.webClient();
    }

    @Test
    void theMeshClientsRequestOverTheLimitIsAnswered429AndNeverGoesUpstream() throws Exception {
        int reviews = vertx.createHttpServer().requestHandler(req -> {
            upstreamCalls.incrementAndGet();
            req.response().end("reviews");
        }).listen(0, "127.0.0.1").await().actualPort();
        // over the limit for tenant "greedy" only
        grpc = IstioGlobalRateLimit.service(asked, r -> RateLimitResponse.newBuilder().setOverallCode(
                r.getDescriptors(0).getEntries(1).getValue().equals("greedy") ? RateLimitResponse.Code.OVER_LIMIT
                        : RateLimitResponse.Code.OK).build());
        String routeRateLimits = """
                rate_limits:
                - actions:
                  - destination_cluster: {}
                  - request_headers: {header_name: x-tenant, descriptor_key: tenant}
                """.indent(18);
        String config = IstioRbac.first(IstioGlobalRateLimit.filter("5s", true),
                MeshWebClientTest.config(routeRateLimits, reviews)) + IstioGlobalRateLimit.cluster(grpc.getPort());
        WebClient client = start(config);

        HttpResponse<Buffer> ok = client.get(9080, "reviews", "/").putHeader("x-tenant", "fair").send()
                .await(10, TimeUnit.SECONDS);
        assertEquals(200, ok.statusCode());
        HttpResponse<Buffer> refused = client.get(9080, "reviews", "/").putHeader("x-tenant", "greedy").send()
                .await(10, TimeUnit.SECONDS);
        assertEquals(429, refused.statusCode());
        assertEquals("true", refused.getHeader("x-envoy-ratelimited"));
        assertEquals(1, upstreamCalls.get(), "the refused request never went upstream");
        assertEquals(List.of("destination_cluster=outbound|9080||reviews.default.svc.cluster.local,tenant=greedy"),
                IstioGlobalRateLimit.descriptors(asked.get(1)));
        assertEquals(200, client.get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS).statusCode(),
                "without x-tenant the route's only descriptor is dropped: the service is not asked");
        assertEquals(2, asked.size());
    }

    /**
     * As Envoy's filter evaluates its {@code response_headers_to_add} in the refusal's {@code modify_headers}
     * (ratelimit.cc): formatted from the request, the refusal's status and its headers, the service's among them.
     */
    @Test
    void theFiltersResponseHeadersToAddAreFormattedFromTheRequestAndTheRefusal() throws Exception {
        int reviews = vertx.createHttpServer().requestHandler(req -> req.response().end("reviews"))
                .listen(0, "127.0.0.1").await().actualPort();
        grpc = IstioGlobalRateLimit.service(asked, r -> RateLimitResponse.newBuilder()
                .setOverallCode(RateLimitResponse.Code.OVER_LIMIT).addResponseHeadersToAdd(
                        io.envoyproxy.envoy.config.core.v3.HeaderValue.newBuilder().setKey("x-rl-reason")
                                .setValue("too-many")).build());
        String routeRateLimits = """
                rate_limits:
                - actions:
                  - destination_cluster: {}
                """.indent(18);
        String config = IstioRbac.first(IstioGlobalRateLimit.filter("5s", true)
                + IstioGlobalRateLimit.RESPONSE_HEADERS_TO_ADD, MeshWebClientTest.config(routeRateLimits, reviews))
                + IstioGlobalRateLimit.cluster(grpc.getPort());

        HttpResponse<Buffer> refused = start(config).get(9080, "reviews", "/").putHeader("x-user", "alice").send()
                .await(10, TimeUnit.SECONDS);
        assertEquals(429, refused.statusCode());
        assertEquals("alice 429 too-many 100%", refused.getHeader("x-limited"));
        assertEquals("true", refused.getHeader("x-envoy-ratelimited"));
    }

    @Test
    void behindTheFaultAndCorsFiltersAnAbortedRequestAndAPreflightAreNotCheckedAsInEnvoy() throws Exception {
        int reviews = vertx.createHttpServer().requestHandler(req -> {
            upstreamCalls.incrementAndGet();
            req.response().end("reviews");
        }).listen(0, "127.0.0.1").await().actualPort();
        grpc = IstioGlobalRateLimit.service(asked, r -> RateLimitResponse.newBuilder().setOverallCode(
                RateLimitResponse.Code.OVER_LIMIT).build());
        String routeRateLimits = """
                  rate_limits:
                  - actions:
                    - destination_cluster: {}
                typed_per_filter_config: {envoy.filters.http.cors: %s}
                """.formatted(IstioGlobalRateLimit.CORS_POLICY).indent(16);
        // Istio's filters, the rate limit filter inserted before the router
        String config = IstioRbac.beforeRouter(IstioGlobalRateLimit.FAULT_AND_CORS + IstioGlobalRateLimit.filter(
                "5s", true), MeshWebClientTest.config(routeRateLimits, reviews))
                + IstioGlobalRateLimit.cluster(grpc.getPort());
        WebClient client = start(config);

        HttpResponse<Buffer> preflight = client.request(io.vertx.core.http.HttpMethod.OPTIONS, 9080, "reviews", "/")
                .putHeader("origin", IstioGlobalRateLimit.ORIGIN).putHeader("access-control-request-method", "POST")
                .send().await(10, TimeUnit.SECONDS);
        assertEquals(200, preflight.statusCode());
        assertEquals(IstioGlobalRateLimit.ORIGIN, preflight.getHeader("access-control-allow-origin"));
        assertEquals(418, client.get(9080, "reviews", "/").putHeader("x-abort", "1").send()
                .await(10, TimeUnit.SECONDS).statusCode());
        assertEquals(0, asked.size(), "the CORS and fault filters answered before the rate limit filter ran");
        HttpResponse<Buffer> refused = client.get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS);
        assertEquals(429, refused.statusCode());
        assertEquals(1, asked.size());
        assertEquals(0, upstreamCalls.get());
    }
}
