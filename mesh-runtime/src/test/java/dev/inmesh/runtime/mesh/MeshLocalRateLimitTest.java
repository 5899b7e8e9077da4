package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.router.IstioRbac;
import dev.inmesh.runtime.xds.IstioRateLimit;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mesh.inbound(handler)} under Istio's "Enabling Rate Limits using Envoy" task: the {@code virtualInbound}
 * connection manager leads with the local rate limit filter (a TypedStruct with only its stat prefix), its virtual
 * host carries the bucket (4 tokens a minute, enabled and enforced for all). Four requests reach the application, the
 * fifth is answered {@code 429 local_rate_limited} with {@code x-local-rate-limit: true}, and the admin server shows
 * {@code http_local_rate_limiter.http_local_rate_limit.*} and Istio's {@code response_flags="RL"}.
 */
class MeshLocalRateLimitTest {
    static final String CONFIG = IstioRbac.first(IstioRateLimit.FILTER, MeshWebClientTest.virtualInbound("",
            IstioRateLimit.VIRTUAL_HOST_CONFIG.indent(14) + """
                          routes:
                          - {match: {prefix: /}, route: {cluster: "inbound|9080||", timeout: 0s}}
            """));

    @TempDir
    Path dir;
    final Vertx vertx = Vertx.vertx();
    /** A plain client (not the mesh's), held for the whole test: Vert.x closes a client no longer referenced. */
    final WebClient plain = WebClient.create(vertx);
    final AtomicInteger appCalls = new AtomicInteger();
    Mesh mesh;

    @AfterEach
    void stop() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    private String admin(String path, String expected) throws Exception {
        return MeshInboundRbacTest.admin(plain, mesh.adminPort(), path, expected);
    }

    /** Starts the mesh of reviews-v1 on {@code config} and an application behind {@code mesh.inbound}: its port. */
    private int inbound(String config) throws Exception {
        Path file = Files.writeString(dir.resolve("mesh.yaml"), config);
        mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("reviews-v1").setApp("reviews")
                .setNamespace("default").setConfigFile(file.toString()).setAdminPort(0));
        mesh.start().await(10, TimeUnit.SECONDS);
        return vertx.createHttpServer().requestHandler(mesh.inbound(req -> {
            appCalls.incrementAndGet();
            req.response().end("app");
        })).listen(0, "127.0.0.1").await().actualPort();
    }

    @Test
    void istiosRateLimitTaskLetsFourRequestsAMinuteReachTheApplicationAndRefusesTheFifth() throws Exception {
        int port = inbound(CONFIG);

        for (int i = 0; i < 4; i++) {
            HttpResponse<Buffer> r = plain.get(port, "127.0.0.1", "/reviews/" + i).send().await(10, TimeUnit.SECONDS);
            assertEquals(200, r.statusCode());
            assertNull(r.getHeader("x-local-rate-limit"));
        }
        HttpResponse<Buffer> refused = plain.get(port, "127.0.0.1", "/reviews/4").send().await(10, TimeUnit.SECONDS);
        assertEquals(429, refused.statusCode());
        assertEquals("local_rate_limited", refused.bodyAsString());
        assertEquals("true", refused.getHeader("x-local-rate-limit"));
        assertEquals(4, appCalls.get(), "the refused request never reached the application");

        String p = "http_local_rate_limiter.http_local_rate_limit.";
        String stats = admin("/stats?filter=http_local_rate_limit", p + "enforced: 1");
        assertTrue(stats.contains(p + "enabled: 5\n") && stats.contains(p + "ok: 4\n")
                && stats.contains(p + "rate_limited: 1\n") && stats.contains(p + "enforced: 1\n"), stats);
        // the series may be scraped at 0 an instant before its first increment: wait for the line itself
        java.util.function.Predicate<String> refusal = body -> body.lines().anyMatch(l -> l.startsWith(
                "istio_requests_total{") && l.contains("reporter=\"destination\"")
                && l.contains("response_code=\"429\"") && l.contains("response_flags=\"RL\"") && l.endsWith(" 1"));
        String prom = MeshInboundRbacTest.admin(plain, mesh.adminPort(), "/stats/prometheus", refusal);
        assertTrue(refusal.test(prom), prom);
    }

    @Test
    void aPathDescriptorOfTheInboundRouteGivesThatPathABucketOfItsOwn() throws Exception {
        // the EnvoyFilter Istio users write: the route's rate_limits make a path descriptor from :path, the route's
        // config for the filter gives /reviews/1 a bucket of one, other paths take from its default bucket of four
        int port = inbound(IstioRbac.first(IstioRateLimit.FILTER, MeshWebClientTest.virtualInbound("", """
                routes:
                - match: {prefix: /}
                  route: {cluster: "inbound|9080||", timeout: 0s, %s}
                """.formatted(IstioRateLimit.PATH_RATE_LIMITS).indent(14)
                + IstioRateLimit.PATH_DESCRIPTOR_CONFIG.indent(16))));

        assertEquals(200, plain.get(port, "127.0.0.1", "/reviews/1").send().await(10, TimeUnit.SECONDS)
                .statusCode());
        assertEquals(429, plain.get(port, "127.0.0.1", "/reviews/1").send().await(10, TimeUnit.SECONDS)
                .statusCode());
        for (int i = 0; i < 3; i++) {
            assertEquals(200, plain.get(port, "127.0.0.1", "/reviews/2").send().await(10, TimeUnit.SECONDS)
                    .statusCode(), "the default bucket: three tokens left of four");
        }
        assertEquals(429, plain.get(port, "127.0.0.1", "/reviews/3").send().await(10, TimeUnit.SECONDS)
                .statusCode(), "/reviews/1 took a token from the default bucket too");
        assertEquals(4, appCalls.get());
    }

    @Test
    void theMeshClientsOutboundRequestsAreLimitedByTheFiltersOwnBucketBeforeAnyGoesUpstream() throws Exception {
        int app = vertx.createHttpServer().requestHandler(req -> {
            appCalls.incrementAndGet();
            req.response().end("reviews");
        }).listen(0, "127.0.0.1").await().actualPort();
        String config = IstioRbac.first(IstioRateLimit.enforced("outbound_limiter", 2,
                "enable_x_ratelimit_headers: DRAFT_VERSION_03"), MeshWebClientTest.config("", app));
        Path file = Files.writeString(dir.resolve("mesh.yaml"), config);
        mesh = Mesh.create(vertx, new MeshOptions().setAdminPort(0)
                .setWorkloadName("productpage-v1").setApp("productpage")
                .setNamespace("default").setConfigFile(file.toString()));
        mesh.start().await(10, TimeUnit.SECONDS);
        WebClient client = mesh.webClient();
        for (int i = 0; i < 2; i++) {
            HttpResponse<Buffer> r = client.get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS);
            assertEquals(200, r.statusCode());
            assertEquals("2", r.getHeader("x-ratelimit-limit"));
            assertEquals(Integer.toString(1 - i), r.getHeader("x-ratelimit-remaining"));
        }
        HttpResponse<Buffer> refused = client.get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS);
        assertEquals(429, refused.statusCode());
        assertEquals("local_rate_limited", refused.bodyAsString());
        assertEquals("0", refused.getHeader("x-ratelimit-remaining"));
        assertEquals(2, appCalls.get());
    }
}
