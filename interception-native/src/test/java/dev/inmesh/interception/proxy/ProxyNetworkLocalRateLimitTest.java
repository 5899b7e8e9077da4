package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.TcpStreamInfo;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The standalone proxy runs Envoy's local rate limit network filter ({@code envoy.filters.network.local_ratelimit}),
 * as an Istio EnvoyFilter inserts it first on a listener's chain: each new connection takes a token from the
 * filter's bucket, and one that finds none is closed at once ({@code local_ratelimit.cc}'s {@code onNewConnection}):
 * nothing relayed, no upstream connection, no HTTP request decoded, counted in
 * {@code local_rate_limit.<stat_prefix>.rate_limited}, logged with the details
 * {@code local_ratelimit_close_over_limit} and the flag URX. Refills are checked with a test clock in
 * {@code NetworkLocalRateLimitFilterTest}; here the fill interval is an hour.
 */
@Timeout(60)
class ProxyNetworkLocalRateLimitTest {
    /** The filter an EnvoyFilter inserts: two tokens, one more an hour. */
    static final String FILTER = """
            - name: envoy.filters.network.local_ratelimit
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit
                stat_prefix: tcp_cap
                token_bucket: {max_tokens: 2, fill_interval: 3600s}
            """;

    private final Vertx vertx = Vertx.vertx();
    private final List<TcpStreamInfo> connections = new CopyOnWriteArrayList<>();
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

    private void start(String config) throws Exception {
        Path file = Files.writeString(dir.resolve("proxy.yaml"), config);
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(file, -1, -1, 1, null, AdminHook.NONE)
                .withNetworkStats(metrics).withTcpAccessLog(connections::add)
                .withStats(metrics::tcpConnection, metrics::upstream));
    }

    /** What the proxy answers a raw request before it closes the connection: empty when closed or reset unanswered. */
    private static String answer(int port, String request) throws Exception {
        try {
            return Http1RequestsTest.exchange(port, request);
        } catch (java.net.SocketException reset) {
            return ""; // closed with the request unread
        }
    }

    @Test
    void theThirdConnectionToATcpProxyChainIsClosedWithNothingRelayedAndTheUpstreamNeverConnected()
            throws Exception {
        AtomicInteger upstreamConnections = new AtomicInteger();
        try (java.net.ServerSocket upstream = ProxyRbacTest.echoUpstream(upstreamConnections)) {
            int port = LoopbackProxy.freePort();
            start(TcpRelayTest.config(port, "", "", upstream.getLocalPort()).replace(
                    "    - filters:\n", "    - filters:\n" + FILTER.indent(6)));

            assertEquals("ping\n", ProxyRbacTest.echo(port, "127.0.0.1"));
            assertEquals("ping\n", ProxyRbacTest.echo(port, "127.0.0.1"));
            assertEquals(null, ProxyRbacTest.echo(port, "127.0.0.1"), "no token left: closed unanswered");
            Thread.sleep(200); // a connect the proxy would have started for it has had its time
            assertEquals(2, upstreamConnections.get(), "the refused connection never reached the upstream");

            assertEquals(1, metrics.networkLocalRateLimit("tcp_cap").rateLimitedCount());
            assertTrue(registry.scrape().contains(
                    "envoy_local_rate_limit_rate_limited{local_network_ratelimit_prefix=\"tcp_cap\"} 1.0"),
                    registry.scrape());

            for (int i = 0; i < 200 && connections.size() < 3; i++) {
                Thread.sleep(25);
            }
            List<TcpStreamInfo> refused = connections.stream()
                    .filter(c -> "local_ratelimit_close_over_limit".equals(c.connectionTerminationDetails())).toList();
            assertEquals(1, refused.size(), String.valueOf(connections));
            assertEquals(Set.of(ResponseFlag.UPSTREAM_RETRY_LIMIT_EXCEEDED), refused.get(0).responseFlags(),
                    "Envoy's filter sets URX");
            assertEquals(0, refused.get(0).bytesReceived() + refused.get(0).bytesSent());
        }
    }

    @Test
    void aConnectionManagerChainRefusesTheConnectionPastItsTokensBeforeAnyRequestIsDecoded() throws Exception {
        AtomicInteger appCalls = new AtomicInteger();
        int app = vertx.createHttpServer().requestHandler(req -> {
            appCalls.incrementAndGet();
            req.response().end("app");
        }).listen(0, "127.0.0.1").await().actualPort();
        int port = LoopbackProxy.freePort();
        start("static_resources:\n  listeners:\n" + Http1RequestsTest.listener("http", port, "").replace(
                "    - filters:\n", "    - filters:\n" + FILTER.replace("max_tokens: 2", "max_tokens: 1").indent(6))
                + Http1RequestsTest.clusterC(app));

        String request = "GET / HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n";
        String first = Http1RequestsTest.exchange(port, request);
        assertTrue(first.startsWith("HTTP/1.1 200") && first.endsWith("app"), first);
        assertEquals("", answer(port, request), "closed with no answer");
        assertEquals(1, appCalls.get());
        assertEquals(1, metrics.networkLocalRateLimit("tcp_cap").rateLimitedCount());
    }
}
