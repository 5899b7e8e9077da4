package dev.inmesh.runtime.inbound;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.mesh.DefaultMesh;
import dev.inmesh.runtime.mesh.MeshAccessLogTest;
import dev.inmesh.runtime.router.IstioExtAuthz;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.vertx.core.Future;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@code mesh.inbound} runs the network filters of the {@code virtualInbound} chain a connection takes, once per
 * connection, as Envoy does before its terminal filter reads anything: a TCP chain's RBAC filter (Istio's
 * AuthorizationPolicy on a TCP or passthrough chain) closes the connection it denies, unanswered, where the service
 * used to be handed the request unchecked; an HTTP/1.0 request, which Istio's plaintext HTTP chains do not match,
 * falls to the TCP catch-all chain and its filters; a TCP chain to Istio's {@code BlackHoleCluster} (no hosts) closes
 * the connection as Envoy's tcp_proxy does, one to an ORIGINAL_DST cluster lets the service answer.
 */
class InboundNetworkFiltersTest extends InboundMeshFixture {
    /** An HTTP chain for plaintext HTTP/1.1 and h2c, as istiod's, answering "http" itself. */
    static final String HTTP_CHAIN = """
                - name: http
                  filter_chain_match: {transport_protocol: raw_buffer, application_protocols: [http/1.1, h2c]}
                  filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: inbound_0.0.0.0_9080
                      http_filters:
                      - name: envoy.filters.http.router
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                      route_config:
                        name: http
                        virtual_hosts:
                        - name: all
                          domains: ["*"]
                          routes:
                          - {match: {prefix: /}, direct_response: {status: 200, body: {inline_string: http}}}
            """;

    /** A TCP chain for plaintext, its network RBAC {@code rules} (none: no filter), to {@code cluster}. */
    static String tcpChain(String rules, String cluster) {
        return tcpChain("tcp", "", rules == null ? "" : rbac(rules), cluster, "");
    }

    /**
     * A TCP chain for plaintext named {@code name}, matching also {@code match} ({@code filter_chain_match} fields,
     * {@code ""} for none), its network {@code filters} (YAML list items, {@code ""} for none) before its
     * {@code tcp_proxy} to {@code cluster}, with more of the {@code tcp_proxy}'s settings ({@code proxySettings}, YAML
     * at its fields' indentation).
     */
    private static String tcpChain(String name, String match, String filters, String cluster, String proxySettings) {
        String tcpProxy = """
                - name: envoy.filters.network.tcp_proxy
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                    stat_prefix: %s
                    cluster: %1$s
                """.formatted(cluster) + proxySettings.indent(4);
        return ("""
                - name: %s
                  filter_chain_match: {transport_protocol: raw_buffer%s}
                  filters:
                """.formatted(name, match.isEmpty() ? "" : ", " + match) + (filters + tcpProxy).indent(2)).indent(4);
    }

    /** An RBAC network filter of {@code rules}, Istio's stat prefix {@code tcp.} (a YAML list item). */
    private static String rbac(String rules) {
        return """
                - name: envoy.filters.network.rbac
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC
                    stat_prefix: tcp.
                    rules: %s
                """.formatted(rules);
    }

    /**
     * A local rate limit network filter (a YAML list item, as an EnvoyFilter inserts it) whose bucket holds one token,
     * filled again only after an hour: one connection goes on, the next is over the bucket.
     */
    private static final String ONE_CONNECTION = """
            - name: envoy.filters.network.local_ratelimit
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit
                stat_prefix: one_connection
                token_bucket: {max_tokens: 1, tokens_per_fill: 1, fill_interval: 3600s}
            """;

    /** Istio's deny-all: an ALLOW action with no policy. */
    private static final String DENY_ALL = "{}";
    /** Allows only connections from 127.0.0.1. */
    private static final String ONLY_127_0_0_1 = "{policies: {from-local: {permissions: [{any: true}], "
            + "principals: [{direct_remote_ip: {address_prefix: 127.0.0.1, prefix_len: 32}}]}}}";

    /** Serves {@code mesh.inbound} (the service answers "service") on 127.0.0.1 with these chains. */
    private void serveChains(String chains) throws Exception {
        serveChains(chains, "");
    }

    /** The same, with more {@code clusters} (YAML list items at the indentation of {@code clusters}' items). */
    private void serveChains(String chains, String clusters) throws Exception {
        serve(config(chains, clusters));
    }

    /** Pushes a configuration of these chains and {@code clusters} (as {@link #serveChains} has them). */
    private void push(String chains, String clusters) throws Exception {
        push(config(chains, clusters));
    }

    /** The configuration {@link #serveChains} serves: Istio's inbound clusters and a {@code virtualInbound}. */
    static String config(String chains, String clusters) {
        return """
                static_resources:
                  clusters:
                  - name: InboundPassthroughClusterIpv4
                    type: ORIGINAL_DST
                    lb_policy: CLUSTER_PROVIDED
                    connect_timeout: 10s
                    upstream_bind_config: {source_address: {address: 127.0.0.6, port_value: 0}}
                  - name: BlackHoleCluster
                    type: STATIC
                    connect_timeout: 10s
                """ + clusters + """
                  listeners:
                """ + VIRTUAL_INBOUND + """
                    listener_filters:
                    - name: envoy.filters.listener.http_inspector
                      typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector}
                    filter_chains:
                """ + chains;
    }

    /**
     * What a caller from {@code source} reads after sending these requests on one connection, until the server
     * closes it or answers them all ({@code answers} bodies ending the reading); empty when closed unanswered.
     */
    private String exchange(String source, String requests, int answers) throws Exception {
        try (Socket s = connect(source)) {
            s.getOutputStream().write(requests.getBytes(StandardCharsets.US_ASCII));
            InputStream in = s.getInputStream();
            ByteArrayOutputStream got = new ByteArrayOutputStream();
            byte[] b = new byte[4096];
            int n;
            while ((n = in.read(b)) > 0) {
                got.write(b, 0, n);
                String text = got.toString(StandardCharsets.US_ASCII);
                if (text.split("HTTP/1\\.[01] ", -1).length - 1 >= answers && (text.endsWith("service")
                        || text.endsWith("http"))) {
                    break;
                }
            }
            return got.toString(StandardCharsets.US_ASCII);
        }
    }

    private static final String GET_11 = "GET /admin HTTP/1.1\r\nhost: reviews\r\n\r\n";
    private static final String GET_10 = "GET /admin HTTP/1.0\r\nhost: reviews\r\n\r\n";

    private String scrape() {
        return ((DefaultMesh) mesh).registry().scrape();
    }

    /** The value of the scraped {@code series} (its name and labels), or -1 when there is none. */
    private double scraped(String series) {
        return scrape().lines().filter(l -> l.startsWith(series + " ")).findFirst()
                .map(l -> Double.parseDouble(l.substring(series.length() + 1))).orElse(-1.0);
    }

    /** Waits (up to 10 s) for the scraped {@code series} to reach {@code value}. */
    private void awaitScraped(String series, double value) throws InterruptedException {
        for (int i = 0; i < 500 && scraped(series) < value; i++) {
            Thread.sleep(20);
        }
        assertEquals(value, scraped(series), scrape());
    }

    /**
     * The labels of Istio's TCP metrics of a connection through the TCP catch-all chain to
     * {@code InboundPassthroughClusterIpv4}, as the standalone proxy labels an inbound relay through it: this workload
     * the destination, an unknown source (no metadata exchange on a TCP chain), the cluster as the service's name.
     */
    private static String passthroughTcpLabels(String flags) {
        return "{connection_security_policy=\"none\",destination_app=\"reviews\","
                + "destination_canonical_revision=\"latest\",destination_canonical_service=\"reviews\","
                + "destination_cluster=\"Kubernetes\",destination_principal=\"unknown\","
                + "destination_service=\"reviews\",destination_service_name=\"InboundPassthroughClusterIpv4\","
                + "destination_service_namespace=\"default\",destination_version=\"unknown\","
                + "destination_workload=\"reviews-v1\",destination_workload_namespace=\"default\","
                + "reporter=\"destination\",request_protocol=\"tcp\",response_flags=\"" + flags + "\","
                + "source_app=\"unknown\",source_canonical_revision=\"latest\","
                + "source_canonical_service=\"unknown\",source_cluster=\"unknown\",source_principal=\"unknown\","
                + "source_version=\"unknown\",source_workload=\"unknown\",source_workload_namespace=\"unknown\"}";
    }

    @Test
    void aTcpChainsConnectionIsCountedInIstiosTcpMetricsWithItsBytesAndNotAsHttpRequests() throws Exception {
        serveChains(tcpChain(null, "InboundPassthroughClusterIpv4"));
        String answers = exchange("127.0.0.1", GET_11 + GET_11, 2); // closed once both are answered
        String labels = passthroughTcpLabels("-");
        awaitScraped("istio_tcp_connections_closed_total" + labels, 1);
        assertEquals(1, scraped("istio_tcp_connections_opened_total" + labels), scrape());
        // the requests' heads as HTTP/1.1 writes them (as sent here), and the answers as the client read them
        assertEquals(2 * GET_11.length(), scraped("istio_tcp_received_bytes_total" + labels), scrape());
        assertEquals(answers.length(), scraped("istio_tcp_sent_bytes_total" + labels), scrape());
        assertFalse(scrape().contains("istio_requests_total{"), "no HTTP stream on a TCP chain: " + scrape());
    }

    @Test
    void aTcpChainsConnectionsAreEachOneLineOfItsTcpProxysAccessLogAndADeniedOneIsCountedOpenedAndClosed()
            throws Exception {
        java.nio.file.Path log = dir.resolve("tcp.log");
        serveChains(tcpChain("tcp", "", rbac(ONLY_127_0_0_1), "InboundPassthroughClusterIpv4",
                MeshAccessLogTest.textLogger(log, "%UPSTREAM_CLUSTER% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% "
                        + "%CONNECTION_TERMINATION_DETAILS%").indent(-10)));
        String answers = exchange("127.0.0.1", GET_11 + GET_11, 2);
        assertEquals("", exchange("127.0.0.6", GET_11, 1));
        awaitScraped("istio_tcp_connections_closed_total" + passthroughTcpLabels("-"), 2);
        assertEquals(2, scraped("istio_tcp_connections_opened_total" + passthroughTcpLabels("-")), scrape());
        for (int i = 0; i < 500 && (!java.nio.file.Files.exists(log)
                || java.nio.file.Files.readAllLines(log).size() < 2); i++) {
            Thread.sleep(20);
        }
        // as Envoy's tcp_proxy: one line per connection, none per request; the denied one with its policy
        assertEquals(java.util.Set.of("InboundPassthroughClusterIpv4 - " + 2 * GET_11.length() + " " + answers.length()
                        + " -", "InboundPassthroughClusterIpv4 - 0 0 rbac_access_denied_matched_policy[none]"),
                java.util.Set.copyOf(java.nio.file.Files.readAllLines(log)));
    }

    @Test
    void anHttp10RequestFallsToTheTcpCatchAllChainWhoseDenyAllClosesItsConnectionUnanswered() throws Exception {
        serveChains(HTTP_CHAIN + tcpChain(DENY_ALL, "InboundPassthroughClusterIpv4"));
        assertTrue(exchange("127.0.0.1", GET_11, 1).endsWith("http"), "the HTTP chain answers HTTP/1.1");
        assertEquals("", exchange("127.0.0.1", GET_10, 1), "Istio's TCP catch-all denies everything");
        assertTrue(scrape().contains("envoy_rbac_denied{rbac_stat_prefix=\"tcp\"} 1.0"), scrape());
    }

    @Test
    void aTcpChainsRbacDecidesOncePerConnectionByTheConnectionsSource() throws Exception {
        serveChains(tcpChain(ONLY_127_0_0_1, "InboundPassthroughClusterIpv4"));
        String two = exchange("127.0.0.1", GET_11 + GET_11, 2);
        assertTrue(two.startsWith("HTTP/1.1 200 OK") && two.endsWith("service") && two.indexOf("service") < two
                .lastIndexOf("HTTP/1.1 200"), "both requests of the allowed connection are served: " + two);
        assertEquals("", exchange("127.0.0.6", GET_11, 1), "another source is denied");
        String scrape = scrape();
        assertTrue(scrape.contains("envoy_rbac_allowed{rbac_stat_prefix=\"tcp\"} 1.0"),
                "counted once per connection: " + scrape);
        assertTrue(scrape.contains("envoy_rbac_denied{rbac_stat_prefix=\"tcp\"} 1.0"), scrape);
    }

    @Test
    void aTcpChainToTheBlackHoleClusterClosesTheConnectionAndOneToAnOriginalDstClusterReachesTheService()
            throws Exception {
        serveChains(tcpChain(null, "BlackHoleCluster"));
        assertEquals("", exchange("127.0.0.1", GET_11, 1));
        serveChains(tcpChain(null, "InboundPassthroughClusterIpv4"));
        assertTrue(exchange("127.0.0.1", GET_11, 1).endsWith("service"));
    }

    /**
     * istiod's CUSTOM policy of a gRPC provider on a TCP chain: the shadow RBAC network filter picks the connections
     * from 127.0.0.1 and 127.0.0.2, and the ext_authz network filter asks the authorizer about each once, with no
     * request: the one it denies is closed unanswered, the one it allows has all its requests served, and one from
     * 127.0.0.3 is not asked.
     */
    @Test
    void aTcpChainsExtAuthzNetworkFilterAsksOncePerConnectionAndClosesADeniedOneUnanswered() throws Exception {
        List<String> asked = new CopyOnWriteArrayList<>();
        io.grpc.Server grpc = IstioExtAuthz.grpcAuthorizer(request -> {
            String source = request.getAttributes().getSource().getAddress().getSocketAddress().getAddress();
            asked.add(source + " " + request.getAttributes().getRequest().hasHttp());
            return CheckResponse.newBuilder()
                    .setStatus(com.google.rpc.Status.newBuilder().setCode(source.equals("127.0.0.1") ? 0 : 7)).build();
        });
        try {
            serveChains(tcpChain("tcp", "", IstioExtAuthz.tcp("5s"), "InboundPassthroughClusterIpv4", ""),
                    IstioExtAuthz.cluster(grpc.getPort(), true));
            String two = exchange("127.0.0.1", GET_11 + GET_11, 2);
            assertEquals(2, two.split("HTTP/1.1 200 OK", -1).length - 1, two);
            assertEquals("", exchange("127.0.0.2", GET_11, 1), "denied: closed unanswered");
            assertTrue(exchange("127.0.0.3", GET_11, 1).endsWith("service"), "not picked by the shadow rules");
            assertEquals(List.of("127.0.0.1 false", "127.0.0.2 false"), asked, "once per connection, no request");
        } finally {
            grpc.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
        }
    }

    /**
     * A local rate limit network filter on a TCP chain takes one token per connection: the first connection's
     * requests are all served, the next one, over the bucket, is closed unanswered, counted in
     * {@code local_rate_limit.<prefix>.rate_limited} and in Istio's TCP metrics with the flag URX.
     */
    @Test
    void aLocalRateLimitNetworkFilterClosesTheConnectionOverItsBucketUnanswered() throws Exception {
        serveChains(tcpChain("tcp", "", ONE_CONNECTION, "InboundPassthroughClusterIpv4", ""));
        String two = exchange("127.0.0.1", GET_11 + GET_11, 2);
        assertEquals(2, two.split("HTTP/1.1 200 OK", -1).length - 1, "one token for both requests: " + two);
        assertEquals("", exchange("127.0.0.1", GET_11, 1), "the second connection is over the bucket");
        assertEquals(1, scraped("envoy_local_rate_limit_rate_limited{local_network_ratelimit_prefix=\"one_connection\"}"),
                scrape());
        awaitScraped("istio_tcp_connections_closed_total" + passthroughTcpLabels("URX"), 1);
        awaitScraped("istio_tcp_connections_closed_total" + passthroughTcpLabels("-"), 1);
    }

    /**
     * An HTTP/2 connection (h2c with prior knowledge, which Istio's HTTP chain matches) whose chain has a local rate
     * limit network filter takes one decision for all its streams: three concurrent streams on one connection are
     * served with the bucket's only token, and the next connection is closed.
     */
    @Test
    void anH2cConnectionsStreamsShareOneDecisionOfTheNetworkFilters() throws Exception {
        serveChains(HTTP_CHAIN.replace("      filters:\n", "      filters:\n" + ONE_CONNECTION.indent(6)));
        io.vertx.core.http.HttpClientOptions h2c = new io.vertx.core.http.HttpClientOptions()
                .setProtocolVersion(io.vertx.core.http.HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false)
                .setDefaultHost("127.0.0.1").setDefaultPort(port);
        io.vertx.core.http.HttpClient first = vertx.createHttpClient(h2c,
                new io.vertx.core.http.PoolOptions().setHttp2MaxSize(1));
        io.vertx.core.http.HttpClient second = vertx.createHttpClient(h2c);
        try {
            List<Future<io.vertx.core.http.HttpClientResponse>> streams = new java.util.ArrayList<>();
            for (int i = 0; i < 3; i++) {
                streams.add(first.request(io.vertx.core.http.HttpMethod.GET, "/s" + i)
                        .compose(r -> r.send().compose(resp -> resp.body().map(b -> resp))));
            }
            Future.all(streams).await(10, TimeUnit.SECONDS);
            java.util.Set<Object> connections = java.util.Collections.newSetFromMap(
                    new java.util.IdentityHashMap<>());
            for (var s : streams) {
                assertEquals(200, s.result().statusCode());
                assertEquals(io.vertx.core.http.HttpVersion.HTTP_2, s.result().version());
                connections.add(s.result().request().connection());
            }
            assertEquals(1, connections.size(), "three streams of one connection");
            Future<io.vertx.core.http.HttpClientResponse> over = second.request(io.vertx.core.http.HttpMethod.GET,
                    "/").compose(r -> r.send());
            assertThrows(Exception.class, () -> over.await(10, TimeUnit.SECONDS), "closed unanswered");
            assertEquals(1, scraped(
                    "envoy_local_rate_limit_rate_limited{local_network_ratelimit_prefix=\"one_connection\"}"),
                    "one token for the three streams, none for the next connection: " + scrape());
        } finally {
            first.close().await(10, TimeUnit.SECONDS);
            second.close().await(10, TimeUnit.SECONDS);
        }
    }

    /**
     * A pushed {@code virtualInbound} that keeps a connection's chain and adds a chain for its source that denies:
     * the connection open before it keeps the decision its chain's filters took (its next request served, nothing
     * counted again), as Envoy's connection keeps the chain it was accepted with, while a new connection from the same
     * source takes the new chain and is closed.
     */
    @Test
    void aPushedVirtualInboundLeavesAnOpenConnectionsDecisionWhileANewConnectionTakesTheNewChain() throws Exception {
        String kept = tcpChain(ONLY_127_0_0_1, "InboundPassthroughClusterIpv4");
        serveChains(kept);
        try (Socket open = connect("127.0.0.1")) {
            assertTrue(request(open, GET_11).endsWith("service"));
            push(kept + tcpChain("tcp-deny", "source_prefix_ranges: [{address_prefix: 127.0.0.1, prefix_len: 32}]",
                    rbac(DENY_ALL), "InboundPassthroughClusterIpv4", ""), "");
            assertEquals("", exchange("127.0.0.1", GET_11, 1), "a new connection takes the new chain");
            assertTrue(request(open, GET_11).endsWith("service"), "the open connection keeps its decision");
        }
        assertEquals(1, scraped("envoy_rbac_allowed{rbac_stat_prefix=\"tcp\"}"), "decided once: " + scrape());
        assertEquals(1, scraped("envoy_rbac_denied{rbac_stat_prefix=\"tcp\"}"), scrape());
    }
}
