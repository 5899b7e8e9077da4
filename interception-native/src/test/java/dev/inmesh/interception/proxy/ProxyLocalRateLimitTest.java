package dev.inmesh.interception.proxy;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.xds.IstioRateLimit;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.RequestOptions;
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
 * The standalone proxy runs Envoy's local rate limit filter as Istio's "Enabling Rate Limits using Envoy" task
 * configures it: the filter first in the connection manager (a TypedStruct with only its stat prefix), the token
 * bucket in the virtual host. Four requests a minute reach the application; the fifth is answered
 * {@code 429 local_rate_limited} with {@code x-local-rate-limit: true}, logged with response flag RL and counted in
 * {@code http_local_rate_limiter.http_local_rate_limit.*} and Istio's metrics.
 */
@Timeout(60)
class ProxyLocalRateLimitTest {
    private final Vertx vertx = Vertx.vertx();
    private final AtomicInteger appCalls = new AtomicInteger();
    private final List<StreamInfo> requests = new CopyOnWriteArrayList<>();
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final MeshMetrics metrics = MeshMetrics.create(registry, WorkloadInfo.UNKNOWN);
    private StandaloneProxy proxy;
    @TempDir
    Path dir;

    @AfterEach
    void close() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** The application: answers every request with {@code answer}, counting them; its loopback port. */
    private int app(String answer) {
        return vertx.createHttpServer().requestHandler(req -> {
            appCalls.incrementAndGet();
            req.response().end(answer);
        }).listen(0, "127.0.0.1").await().actualPort();
    }

    private static String config(int port, int app) {
        return inboundConfig(port, app, IstioRateLimit.VIRTUAL_HOST_CONFIG, IstioRateLimit.FILTER);
    }

    /**
     * A proxy with Istio's {@code virtualInbound} on loopback {@code port}: one connection manager whose virtual host
     * has {@code virtualHostConfig} (its fields, such as {@code typed_per_filter_config}) and one route to
     * {@code inbound|9080||} (the application on loopback {@code app}), its HTTP filters {@code filters} then the
     * router.
     */
    static String inboundConfig(int port, int app, String virtualHostConfig, String filters) {
        return ("static_resources:\n  listeners:\n" + """
                  - name: virtualInbound
                    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
                    traffic_direction: INBOUND
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.http_connection_manager
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                          stat_prefix: inbound_0.0.0.0_9080
                          route_config:
                            name: inbound|9080||
                            virtual_hosts:
                            - name: inbound|http|9080
                              domains: ["*"]
                """ + virtualHostConfig.indent(14) + """
                              routes:
                              - match: {prefix: /}
                                route: {cluster: "inbound|9080||"}
                          http_filters:
                """ + (filters + """
                - name: envoy.filters.http.router
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                """).indent(10) + """
                  clusters:
                  - name: inbound|9080||
                    type: STATIC
                    connect_timeout: 1s
                    load_assignment:
                      cluster_name: inbound|9080||
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                """).formatted(port, app);
    }

    /**
     * As Envoy makes the statistics of a connection manager and of its filters' configs (a virtual host's local rate
     * limit config among them) when it builds the listener: there, at 0, before any request, also those of a config
     * with a stat prefix of its own, and of the compressor, fault and CORS filters.
     */
    @Test
    void theConnectionManagersAndItsFiltersStatsAreThereAtZeroBeforeTheFirstRequest() throws Exception {
        int port = LoopbackProxy.freePort();
        String filters = IstioRateLimit.FILTER + """
                - name: envoy.filters.http.fault
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault}
                - name: envoy.filters.http.cors
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}
                - name: envoy.filters.http.compressor
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor
                    compressor_library:
                      name: text_optimized
                      typed_config: {"@type": type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip}
                """;
        String yaml = inboundConfig(port, app("reviews"), IstioRateLimit.VIRTUAL_HOST_CONFIG.replace(
                "stat_prefix: http_local_rate_limiter", "stat_prefix: reviews_limit"), filters);
        Path file = Files.writeString(dir.resolve("proxy.yaml"), yaml);
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(file, -1, -1, 1, s -> { }, AdminHook.NONE)
                .withDownstreamStats(metrics::connectionManager, metrics::listener));

        String scrape = registry.scrape();
        String hcm = "{http_conn_manager_prefix=\"inbound_0.0.0.0_9080\"} 0.0\n";
        for (String stat : List.of("downstream_rq_total", "downstream_rq_completed", "no_route",
                "fault_aborts_injected", "fault_active_faults", "cors_origin_valid",
                "compressor_text_optimized_gzip_compressed", "compressor_text_optimized_gzip_request_not_compressed",
                "compressor_text_optimized_gzip_header_compressor_used")) {
            assertTrue(scrape.contains("envoy_http_" + stat + hcm), stat + " in\n" + scrape);
        }
        for (String prefix : List.of("http_local_rate_limiter", "reviews_limit")) {
            assertTrue(scrape.contains("envoy_http_local_rate_limit_enabled{local_http_ratelimit_prefix=\"" + prefix
                    + "\"} 0.0\n"), prefix + " in\n" + scrape);
        }
    }

    @Test
    void istiosTaskLetsFourRequestsAMinuteThroughAndAnswersTheFifth429() throws Exception {
        int app = app("reviews");
        int port = LoopbackProxy.freePort();
        Path file = Files.writeString(dir.resolve("proxy.yaml"), config(port, app));
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(file, -1, -1, 1, s -> {
            metrics.record(s); // before the test, which waits for the request's report, can scrape
            requests.add(s);
        }, AdminHook.NONE).withDownstreamStats(metrics::connectionManager, metrics::listener));
        HttpClient client = vertx.createHttpClient();
        List<String> got = new java.util.ArrayList<>();
        for (int i = 0; i < 5; i++) {
            RequestOptions o = new RequestOptions().setHost("127.0.0.1").setPort(port).setURI("/reviews/" + i)
                    .putHeader("host", "reviews");
            got.add(onEventLoop(vertx, () -> client.request(o)
                    .compose(req -> req.send().compose(resp -> resp.body().map(b -> resp.statusCode() + " " + b
                            + " " + resp.getHeader("x-local-rate-limit"))))).await(10, TimeUnit.SECONDS));
        }
        client.close().await(10, TimeUnit.SECONDS);
        assertEquals(List.of("200 reviews null", "200 reviews null", "200 reviews null", "200 reviews null",
                "429 local_rate_limited true"), got);
        assertEquals(4, appCalls.get(), "the refused request never reached the application");

        assertRefusalLogged(requests, "inbound|9080||");

        String scrape = registry.scrape();
        String p = "{local_http_ratelimit_prefix=\"http_local_rate_limiter\"}";
        assertTrue(scrape.contains("envoy_http_local_rate_limit_enabled" + p + " 5.0")
                && scrape.contains("envoy_http_local_rate_limit_ok" + p + " 4.0")
                && scrape.contains("envoy_http_local_rate_limit_rate_limited" + p + " 1.0")
                && scrape.contains("envoy_http_local_rate_limit_enforced" + p + " 1.0"), scrape);
        assertTrue(scrape.lines().anyMatch(l -> l.startsWith("istio_requests_total{")
                && l.contains("response_code=\"429\"") && l.contains("response_flags=\"RL\"")), scrape);
    }

    /**
     * A WebSocket upgrade the proxy relays itself meets the local rate limit filter as any request does, as Envoy runs
     * its HTTP filters on the upgrade request: with one token a minute, the first upgrade reaches the application and
     * the second is answered {@code 429 local_rate_limited} (flag RL, the config's response headers, counted), where
     * it was relayed to the application without taking a token; the 429 has the request id under
     * always_set_request_id_in_response, as any local reply.
     */
    @Test
    void aWebSocketUpgradeTheProxyRelaysItselfTakesATokenAsAnyRequest() throws Exception {
        int app = app("no upgrade");
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = new LoopbackProxy("static_resources:\n  listeners:\n"
                + dev.inmesh.runtime.router.IstioRbac.first(IstioRateLimit.enforced("ws_limit", 1,
                        "response_headers_to_add: [{header: {key: x-local-rate-limit, value: 'true'}}]"),
                        Http1RequestsTest.listener("http", port, "upgrade_configs: [{upgrade_type: websocket}]"
                                + "\n          always_set_request_id_in_response: true"))
                + Http1RequestsTest.clusterC(app))) {
            String first = upgrade(port);
            assertTrue(first.startsWith("HTTP/1.1 200"), first);
            String second = upgrade(port);
            assertTrue(second.startsWith("HTTP/1.1 429"), second);
            assertTrue(second.contains("local_rate_limited"), second);
            assertTrue(second.contains("\r\nx-request-id: "), "as on any local reply: " + second);
            assertTrue(second.toLowerCase(java.util.Locale.ROOT).contains("x-local-rate-limit: true"), second);
            assertEquals(1, appCalls.get(), "the refused upgrade never reached the application");
            assertRefusalLogged(proxy.requests, "c");
        }
    }

    /** The first 429 logged (waited for, up to 5 s) has flag RL and details local_rate_limited, for {@code cluster}. */
    private static void assertRefusalLogged(List<StreamInfo> logged, String cluster) throws InterruptedException {
        StreamInfo refused = null;
        for (int i = 0; i < 200 && refused == null; i++) {
            refused = logged.stream().filter(s -> s.responseCode() == 429).findFirst().orElse(null);
            if (refused == null) {
                Thread.sleep(25);
            }
        }
        assertTrue(refused != null, String.valueOf(logged));
        assertEquals("RL", ResponseFlag.format(refused.responseFlags()));
        assertEquals("local_rate_limited", refused.responseCodeDetails());
        assertEquals(cluster, refused.upstreamCluster(), "counted for the route's cluster");
    }

    /** The head (and what follows in the same read) of the proxy's answer to a WebSocket upgrade for host svc. */
    private static String upgrade(int port) throws Exception {
        return upgrade(port, "/chat", "", got -> got.endsWith("local_rate_limited") || got.endsWith("no upgrade"));
    }

    /**
     * The proxy's answer to a WebSocket upgrade of {@code path} for host svc, with {@code headers} (lines ending in
     * CRLF) too: read until {@code done} holds for what came after the head's end, or the proxy closes (bounded by a
     * socket timeout).
     */
    static String upgrade(int port, String path, String headers, java.util.function.Predicate<String> done)
            throws Exception {
        try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write(("GET " + path + " HTTP/1.1\r\n" + headers + "host: svc\r\nconnection: Upgrade\r\n"
                    + "upgrade: websocket\r\nsec-websocket-version: 13\r\n"
                    + "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
                    .getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            byte[] buf = new byte[4096];
            int n = 0;
            // the head and a short body: read until both are in or the proxy closes (bounded by the socket timeout)
            for (int r; n < buf.length && (r = s.getInputStream().read(buf, n, buf.length - n)) > 0; ) {
                n += r;
                String got = new String(buf, 0, n, java.nio.charset.StandardCharsets.US_ASCII);
                int end = got.indexOf("\r\n\r\n");
                if (end >= 0 && done.test(got)) {
                    break;
                }
            }
            return new String(buf, 0, n, java.nio.charset.StandardCharsets.US_ASCII);
        }
    }

    /**
     * A connection accepted before an update that changed its connection manager's filter keeps the filter it was
     * accepted with, and its bucket, as Envoy's connections keep the filter chain they were accepted on while it
     * drains: with one token a minute, the old connection's second request is refused after an update to five, and a
     * new connection gets the new, full bucket. It went unlimited: the old connection manager was looked up in the
     * newest snapshot, which had none equal to it.
     */
    @Test
    void aConnectionAcceptedBeforeAnUpdateKeepsTheFilterAndBucketItWasAcceptedWith() throws Exception {
        int app = app("ok");
        int port = LoopbackProxy.freePort();
        java.util.function.IntFunction<String> config = tokens -> "static_resources:\n  listeners:\n"
                + dev.inmesh.runtime.router.IstioRbac.first(IstioRateLimit.enforced("chain", tokens, ""),
                        Http1RequestsTest.listener("http", port, ""))
                + Http1RequestsTest.clusterC(app);
        try (LoopbackProxy proxy = new LoopbackProxy(config.apply(1));
             java.net.Socket old = new java.net.Socket("127.0.0.1", port)) {
            old.setSoTimeout(10_000);
            assertEquals("200 ok", exchange(old));
            proxy.snapshots.apply(dev.inmesh.runtime.xds.EnvoyConfigReader.read(config.apply(5)));
            assertEquals("429 local_rate_limited", exchange(old), "the bucket it was accepted with is empty");
            try (java.net.Socket fresh = new java.net.Socket("127.0.0.1", port)) {
                fresh.setSoTimeout(10_000);
                assertEquals("200 ok", exchange(fresh), "a new connection has the new config's full bucket");
            }
            assertEquals(2, appCalls.get());
        }
    }

    /** One GET / for host svc on a kept-alive connection: the status code and the body (by its content-length). */
    private static String exchange(java.net.Socket s) throws Exception {
        s.getOutputStream().write("GET / HTTP/1.1\r\nhost: svc\r\n\r\n"
                .getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        java.io.InputStream in = s.getInputStream();
        StringBuilder head = new StringBuilder();
        while (head.length() < 8192 && head.indexOf("\r\n\r\n") < 0) {
            int b = in.read();
            if (b < 0) {
                break;
            }
            head.append((char) b);
        }
        int length = 0;
        for (String line : head.toString().split("\r\n")) {
            if (line.toLowerCase(java.util.Locale.ROOT).startsWith("content-length:")) {
                length = Integer.parseInt(line.substring("content-length:".length()).strip());
            }
        }
        byte[] body = in.readNBytes(length);
        String status = head.length() > 12 ? head.substring(9, 12) : head.toString();
        return status + " " + new String(body, java.nio.charset.StandardCharsets.US_ASCII);
    }
}
