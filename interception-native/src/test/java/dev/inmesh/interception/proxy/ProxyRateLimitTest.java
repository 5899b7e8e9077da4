package dev.inmesh.interception.proxy;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.router.IstioRbac;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.xds.IstioGlobalRateLimit;
import io.envoyproxy.envoy.service.ratelimit.v3.RateLimitRequest;
import io.envoyproxy.envoy.service.ratelimit.v3.RateLimitResponse;
import io.grpc.Server;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.net.SocketAddress;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The standalone proxy runs the global part of Istio's "Enabling Rate Limits using Envoy" task as Envoy does: its rate
 * limit filter asks a grpc-java {@code RateLimitService} on loopback, through the task's
 * {@code outbound|8081||ratelimit.default.svc.cluster.local} cluster, with the descriptors the virtual host's
 * {@code rate_limits} make of each request; {@code OVER_LIMIT} is answered 429 with {@code x-envoy-ratelimited} and
 * never reaches the application, and a service that does not answer in time is refused 500 under
 * {@code failure_mode_deny}, let through without it.
 */
@Timeout(60)
class ProxyRateLimitTest {
    private final Vertx vertx = Vertx.vertx();
    private final List<String> appSaw = new CopyOnWriteArrayList<>();
    private final List<RateLimitRequest> asked = new CopyOnWriteArrayList<>();
    private final int app = vertx.createHttpServer().requestHandler(req -> {
        appSaw.add(req.path());
        req.response().end("productpage");
    }).listen(0, "127.0.0.1").await().actualPort();
    private Server grpc;

    @AfterEach
    void close() throws Exception {
        if (grpc != null) {
            grpc.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** A rate limit service on loopback: {@code PATH} {@code /limited} is over the limit, {@code /hang} unanswered. */
    private int rateLimitService() throws Exception {
        grpc = IstioGlobalRateLimit.service(asked, request -> {
            String path = IstioGlobalRateLimit.path(request);
            return path.equals("/hang") ? null : RateLimitResponse.newBuilder().setOverallCode(
                    path.equals("/limited") ? RateLimitResponse.Code.OVER_LIMIT : RateLimitResponse.Code.OK).build();
        });
        return grpc.getPort();
    }

    private LoopbackProxy proxy(int port, String timeout, boolean failureModeDeny, int service) throws Exception {
        return new LoopbackProxy("static_resources:\n  listeners:\n"
                + IstioRbac.first(IstioGlobalRateLimit.filter(timeout, failureModeDeny), listener(port, ""))
                + Http1RequestsTest.clusterC(app) + IstioGlobalRateLimit.cluster(service));
    }

    /** The proxy's listener with the virtual host's rate limits and {@code hcmField}. */
    private static String listener(int port, String hcmField) {
        return Http1RequestsTest.listener("http", port, hcmField).replace("domains: [\"svc\", \"svc:*\"]\n",
                "domains: [\"svc\", \"svc:*\"]\n" + IstioGlobalRateLimit.VIRTUAL_HOST_RATE_LIMITS.indent(14));
    }

    /** The status, {@code x-envoy-ratelimited} header and body of a GET through the proxy. */
    private String get(int port, String path, String user) throws Exception {
        HttpClient c = vertx.createHttpClient();
        try {
            RequestOptions o = new RequestOptions().setServer(SocketAddress.inetSocketAddress(port, "127.0.0.1"))
                    .setHost("svc").setPort(9080).setURI(path);
            if (user != null) {
                o.putHeader("x-user", user);
            }
            return onEventLoop(vertx, () -> c.request(o).compose(req -> req.send().compose(resp -> resp.body()
                    .map(b -> resp.statusCode() + " " + resp.getHeader("x-envoy-ratelimited") + " " + b))))
                    .await(10, TimeUnit.SECONDS);
        } finally {
            c.close().await(10, TimeUnit.SECONDS);
        }
    }


    @Test
    void overLimitIsAnswered429WithXEnvoyRateLimitedAndTheServiceGetsTheActionsDescriptors() throws Exception {
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = proxy(port, "5s", true, rateLimitService())) {
            assertEquals("200 null productpage", get(port, "/productpage", "alice"));
            assertEquals(List.of("PATH=/productpage", "generic_key=per-user,USER=alice",
                    "remote_address=127.0.0.1,header_match=get"), IstioGlobalRateLimit.descriptors(asked.get(0)));
            assertEquals("ratelimit", asked.get(0).getDomain());

            assertEquals("429 true ", get(port, "/limited", null));
            assertEquals(List.of("/productpage"), appSaw, "a refused request never reaches the application");
            assertEquals(List.of("PATH=/limited", "remote_address=127.0.0.1,header_match=get"),
                    IstioGlobalRateLimit.descriptors(asked.get(1)), "without x-user the entry that needs it drops its descriptor");
            StreamInfo refused = proxy.logged(429);
            assertEquals("request_rate_limited", refused.responseCodeDetails());
            assertEquals("RL", ResponseFlag.format(refused.responseFlags()));
        }
    }

    @Test
    void aServiceThatDoesNotAnswerInTimeIsRefused500UnderFailureModeDenyAndLetThroughWithoutIt() throws Exception {
        int service = rateLimitService();
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = proxy(port, "0.2s", true, service)) {
            long start = System.nanoTime();
            assertEquals("500 null ", get(port, "/hang", "alice"));
            assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(5), "the timeout bounds the wait");
            StreamInfo error = proxy.logged(500);
            assertEquals("rate_limiter_error", error.responseCodeDetails());
            assertEquals("RLSE", ResponseFlag.format(error.responseFlags()));
            assertTrue(appSaw.isEmpty());
        }
        int open = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = proxy(open, "0.2s", false, service)) {
            assertEquals("200 null productpage", get(open, "/hang", "alice"));
            grpc.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
            assertEquals("200 null productpage", get(open, "/productpage", "alice"), "a service that is gone too");
            assertEquals(List.of("/hang", "/productpage"), appSaw);
        }
    }

    /**
     * Inserted before the router, after the fault and CORS filters (Istio's INSERT_BEFORE the router), the filter
     * checks a request after them, and a WebSocket upgrade the proxy relays itself, which passes neither, after the
     * authorization filters: both still answered 429 over the limit.
     */
    @Test
    void behindTheFaultAndCorsFiltersTheFilterStillChecksRequestsAndTheUpgradesTheProxyRelays() throws Exception {
        int service = rateLimitService();
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = new LoopbackProxy("static_resources:\n  listeners:\n"
                + IstioRbac.beforeRouter(IstioGlobalRateLimit.FAULT_AND_CORS + IstioGlobalRateLimit.filter("5s", true),
                        listener(port, "upgrade_configs: [{upgrade_type: websocket}]"))
                + Http1RequestsTest.clusterC(app) + IstioGlobalRateLimit.cluster(service))) {
            assertEquals("429 true ", get(port, "/limited", null));
            String upgrade = ProxyLocalRateLimitTest.upgrade(port, "/limited", "", got -> got.contains("content-length: 0"));
            assertTrue(upgrade.startsWith("HTTP/1.1 429"), upgrade);
            assertEquals(List.of("/limited", "/limited"), asked.stream().map(IstioGlobalRateLimit::path).toList());
            assertEquals("200 null productpage", get(port, "/productpage", null));
            assertEquals(List.of("/productpage"), appSaw);
        }
    }
}
