package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.accesslog.AccessLogEntry;
import dev.inmesh.runtime.accesslog.CommandFormat;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.ProxyProtocolStats;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A gateway listener behind a load balancer that speaks the PROXY protocol (an AWS NLB, HAProxy): its proxy_protocol
 * listener filter reads the v1 or v2 header before the HTTP inspector sees the request, and the header's source and
 * destination are the connection's addresses for the filter chain match (source prefix, destination port), the
 * access log and the upstream's view. A connection without a valid header is closed and counted, unless the filter
 * allows requests without one.
 */
@Timeout(60)
class ProxyProtocolListenerTest {
    private static final String REQUEST = "GET / HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n";
    private final Vertx backends = Vertx.vertx();
    /** The upstream: answers with the {@code x-chain} header the chain's virtual host added. */
    private final int backend = backends.createHttpServer()
            .requestHandler(req -> req.response().end("chain " + req.getHeader("x-chain")))
            .listen(0, "127.0.0.1").await().actualPort();
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final MeshMetrics metrics = MeshMetrics.create(registry, WorkloadInfo.UNKNOWN);
    private LoopbackProxy proxy;
    @TempDir
    Path dir;

    @AfterEach
    void close() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        backends.close().await(10, TimeUnit.SECONDS);
    }

    /**
     * A connection manager whose one virtual host adds {@code x-chain: name} and routes to the backend, with
     * {@code httpFilters} (YAML list items at column 0) before its router.
     */
    private static String chain(String name, String match, String httpFilters) {
        return """
                - name: %s
                  filter_chain_match: %s
                  filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: %s
                      route_config:
                        name: r
                        virtual_hosts:
                        - name: svc
                          domains: ["*"]
                          request_headers_to_add: [{header: {key: x-chain, value: %s}}]
                          routes:
                          - match: {prefix: /}
                            route: {cluster: backend}
                      http_filters:
                """.formatted(name, match, name, name) + httpFilters.indent(6) + """
                      - name: envoy.filters.http.router
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                """;
    }

    /**
     * Starts the proxy with a gateway listener whose PROXY protocol filter has {@code filterConfig} (one YAML field
     * after its {@code @type}, or empty), then the HTTP inspector: chain {@code balanced} takes HTTP/1.1 from
     * 203.0.113.0/24 to port 443, chain {@code direct} HTTP/1.1 from loopback.
     */
    private int start(String filterConfig) throws Exception {
        return start(filterConfig, "", "", "");
    }

    /**
     * As {@link #start(String)}, with these listener filters (YAML list items) before and after proxy_protocol, and
     * these HTTP filters in chain {@code balanced}.
     */
    private int start(String filterConfig, String before, String after, String balancedFilters) throws Exception {
        return start(filterConfig, before, after, balancedFilters, "");
    }

    /** As {@link #start(String, String, String, String)}, with {@code listenerFields} (YAML lines) in the listener. */
    private int start(String filterConfig, String before, String after, String balancedFilters,
                      String listenerFields) throws Exception {
        int port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy("""
                static_resources:
                  listeners:
                  - name: gateway
                    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
                    %slistener_filters:
                    %s- name: envoy.filters.listener.proxy_protocol
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol
                        %s
                    %s- name: envoy.filters.listener.http_inspector
                    listener_filters_timeout: 1s
                    filter_chains:
                """.formatted(port, listenerFields, before, filterConfig, after)
                + (chain("balanced", "{destination_port: 443, application_protocols: [http/1.1], "
                        + "source_prefix_ranges: [{address_prefix: 203.0.113.0, prefix_len: 24}]}", balancedFilters)
                + chain("direct", "{application_protocols: [http/1.1], source_prefix_ranges: "
                        + "[{address_prefix: 127.0.0.0, prefix_len: 8}]}", "")).indent(4) + """
                  clusters:
                """ + backendCluster());
        proxy.server.downstreamStats(null, metrics::listener);
        return port;
    }

    /** The cluster {@code backend}, as a YAML list item under {@code clusters}. */
    private String backendCluster() {
        return """
                  - name: backend
                    type: STATIC
                    connect_timeout: 1s
                    load_assignment:
                      cluster_name: backend
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                """.formatted(backend);
    }

    /** Sends {@code first} then {@code REQUEST} on one connection and returns all that comes back ("" when reset). */
    private static String exchange(int port, byte[] first) throws IOException {
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(10_000);
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            out.writeBytes(first);
            out.writeBytes(REQUEST.getBytes(StandardCharsets.US_ASCII));
            s.getOutputStream().write(out.toByteArray());
            try {
                return new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
            } catch (SocketException reset) {
                return "";
            }
        }
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    private ProxyProtocolStats stats(String prefix) {
        return metrics.proxyProtocol(prefix);
    }

    private StreamInfo logged() throws InterruptedException {
        return proxy.logged(200);
    }

    @Test
    void aV1HeadersSourceAndDestinationChooseTheChainAndAreTheRequestsAddresses() throws Exception {
        int port = start("");
        String answer = exchange(port, ascii("PROXY TCP4 203.0.113.7 198.51.100.1 51234 443\r\n"));
        assertTrue(answer.startsWith("HTTP/1.1 200") && answer.endsWith("chain balanced"), answer);
        StreamInfo s = logged();
        assertEquals("203.0.113.7:51234", s.downstreamRemoteAddress());
        assertEquals("198.51.100.1:443", s.downstreamLocalAddress());
        assertEquals(1, stats("").count(1, "found"));
        assertEquals(1.0, scraped("envoy_proxy_proto_versions_v1_found{proxy_proto_prefix=\"\"}"));
    }

    @Test
    void aV2HeaderWithTlvsDoesTheSame() throws Exception {
        int port = start("");
        byte[] header = ProxyProtocolHeaderTest.v2(1, 0x11, ProxyProtocolHeaderTest.ipv4(new int[] {203, 0, 113, 9},
                new int[] {198, 51, 100, 1}, 40000, 443), new byte[] {0x05, 0x00, 0x03, 'i', 'd', '1'});
        String answer = exchange(port, header);
        assertTrue(answer.endsWith("chain balanced"), answer);
        assertEquals("203.0.113.9:40000", logged().downstreamRemoteAddress());
        assertEquals(1, stats("").count(2, "found"));
    }

    @Test
    void aLocalV2HeaderKeepsTheConnectionsOwnAddresses() throws Exception {
        int port = start("");
        String answer = exchange(port, ProxyProtocolHeaderTest.v2(0, 0x00, new byte[0], new byte[0]));
        assertTrue(answer.endsWith("chain direct"), answer);
        assertTrue(logged().downstreamRemoteAddress().startsWith("127.0.0.1:"));
    }

    @Test
    void aConnectionWithoutAHeaderIsClosedAndCounted() throws Exception {
        int port = start("stat_prefix: gw");
        assertEquals("", exchange(port, new byte[0]));
        assertEquals(1, stats("gw").notFound(false));
        assertEquals(1, stats("gw").legacyErrors());
        assertEquals(1.0, scraped("envoy_proxy_proto_not_found_disallowed{proxy_proto_prefix=\"gw\"}"));
        assertEquals(1.0, scraped("envoy_downstream_cx_proxy_proto_error"));
        assertTrue(proxy.requests.isEmpty(), "no request reached the router: " + proxy.requests);
    }

    @Test
    void withAllowRequestsWithoutProxyProtocolItPassesOnUntouched() throws Exception {
        int port = start("allow_requests_without_proxy_protocol: true");
        String answer = exchange(port, new byte[0]);
        assertTrue(answer.endsWith("chain direct"), answer);
        assertEquals(1, stats("").notFound(true));
        // and a header is still read when there is one
        assertTrue(exchange(port, ascii("PROXY TCP4 203.0.113.7 198.51.100.1 1 443\r\n")).endsWith("chain balanced"));
    }

    @Test
    void aMalformedHeaderIsClosedAndCountedAsItsVersionsError() throws Exception {
        int port = start("");
        assertEquals("", exchange(port, ascii("PROXY TCP4 203.0.113.7 198.51.100.1 51234\r\n")));
        assertEquals(1, stats("").count(1, "error"));
        assertEquals(1, stats("").legacyErrors());
        assertTrue(proxy.requests.isEmpty(), "no request reached the router: " + proxy.requests);
    }

    /**
     * As Envoy's (a socket that never became a connection still gets its line): a connection the PROXY header
     * refused, one whose header did not come in time, and one its client reset while it was awaited, are each written to the listener's own access log when
     * they close, with the connection's own addresses and no bytes.
     */
    @Test
    void aConnectionClosedForItsHeaderIsWrittenToTheListenersAccessLog() throws Exception {
        Path log = dir.resolve("listener.log");
        int port = start("", "", "", "", "access_log:\n    - name: envoy.access_loggers.file\n      typed_config: "
                + "{\"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog, path: " + log
                + ", log_format: {text_format_source: {inline_string: \"LA %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% "
                + "%BYTES_RECEIVED%\\n\"}}}\n    ");
        assertEquals("", exchange(port, ascii("PROXY TCP4 203.0.113.7 198.51.100.1 51234\r\n"))); // malformed
        try (Socket s = new Socket("127.0.0.1", port)) { // unfinished: the 1 s timeout closes it
            s.setSoTimeout(10_000);
            s.getOutputStream().write(ascii("PROXY TCP4 "));
            try {
                s.getInputStream().readAllBytes();
            } catch (SocketException reset) {
                // closed
            }
        }
        try (Socket s = new Socket("127.0.0.1", port)) { // reset by the client while its header is awaited
            s.getOutputStream().write(ascii("PROXY TCP4 "));
            s.getOutputStream().flush();
            Thread.sleep(100);
            s.setSoLinger(true, 0);
        }
        List<String> lines = List.of();
        for (int i = 0; i < 250 && lines.size() < 3; i++) {
            Thread.sleep(20);
            lines = Files.exists(log) ? Files.readAllLines(log) : List.of();
        }
        assertEquals(List.of("LA 127.0.0.1 0", "LA 127.0.0.1 0", "LA 127.0.0.1 0"), lines);
    }

    @Test
    void aDisallowedVersionIsClosed() throws Exception {
        int port = start("disallowed_versions: [V1]");
        assertEquals("", exchange(port, ascii("PROXY TCP4 203.0.113.7 198.51.100.1 1 443\r\n")));
        assertEquals(1, stats("").count(1, "disallowed"));
        assertEquals(1, stats("").count(1, "found"));
        assertEquals(0, stats("").legacyErrors());
    }

    @Test
    void aHeaderUnfinishedWithinTheListenerFiltersTimeoutClosesTheConnection() throws Exception {
        int port = start("");
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write(ascii("PROXY TCP4 203.0.113.7 "));
            String answer;
            try {
                answer = new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
            } catch (SocketException reset) {
                answer = "";
            }
            assertEquals("", answer);
        }
        assertEquals(1.0, scraped("envoy_listener_downstream_pre_cx_timeout{listener_address=\"127.0.0.1_"
                + port + "\"}"));
        assertTrue(proxy.requests.isEmpty(), "no request reached the router: " + proxy.requests);
    }

    @Test
    void theListenerFiltersOrderDecidesWhetherOriginalDstOrTheHeaderGivesTheDestination() throws Exception {
        String originalDst = "- name: envoy.filters.listener.original_dst\n    ";
        byte[] header = ascii("PROXY TCP4 203.0.113.7 198.51.100.1 51234 443\r\n");
        // original_dst first (Istio's virtualInbound with proxy_protocol inserted after it): the header's stands
        int port = start("", originalDst, "", "");
        assertTrue(exchange(port, header).endsWith("chain balanced"));
        proxy.close();
        // original_dst after it restores the socket's own destination (a transparent listener's: TPROXY), which no
        // chain takes from 203.0.113.7: closed
        port = start("", "", originalDst, "", "transparent: true\n    ");
        assertEquals("", exchange(port, header));
        proxy.close();
        // without TPROXY or conntrack (loopback without iptables) original_dst has no destination to restore: the
        // header's stands, as Envoy's filter restores nothing when the kernel knows no original destination
        port = start("", "", originalDst, "");
        assertTrue(exchange(port, header).endsWith("chain balanced"));
        proxy.close();
        proxy = null;
    }

    @Test
    void theListenerAConnectionIsHandedToReadsItsOwnHeader() throws Exception {
        // a use_original_dst listener whose PROXY header names another listener's address hands the connection to
        // it, and that listener's own proxy_protocol filter reads the next header, as Envoy runs the listener
        // filters of the listener a connection is handed to
        int front = LoopbackProxy.freePort();
        int back = LoopbackProxy.freePort();
        proxy = new LoopbackProxy("""
                static_resources:
                  listeners:
                  - name: front
                    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
                    use_original_dst: true
                    listener_filters:
                    - name: envoy.filters.listener.proxy_protocol
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.tcp_proxy
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                          stat_prefix: BlackHoleCluster
                          cluster: BlackHoleCluster
                  - name: back
                    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
                    bind_to_port: false
                    listener_filters:
                    - name: envoy.filters.listener.proxy_protocol
                    - name: envoy.filters.listener.http_inspector
                    filter_chains:
                """.formatted(front, back) + chain("balanced", "{destination_port: 443, source_prefix_ranges: "
                + "[{address_prefix: 203.0.113.0, prefix_len: 24}]}", "").indent(4) + """
                  clusters:
                  - {name: BlackHoleCluster, type: STATIC}
                """ + backendCluster());
        byte[] headers = ascii("PROXY TCP4 203.0.113.7 127.0.0.1 1000 " + back + "\r\n"
                + "PROXY TCP4 203.0.113.8 198.51.100.1 2000 443\r\n");
        assertTrue(exchange(front, headers).endsWith("chain balanced"));
        assertEquals("203.0.113.8:2000", logged().downstreamRemoteAddress());
    }

    @Test
    void theListenerAConnectionIsHandedToWaitsUnderItsOwnListenerFiltersTimeout() throws Exception {
        // the front's 1 s timeout covers its own filters (the PROXY header); the listener it hands the connection to
        // has none (0s), so its HTTP inspector waits for a request that comes later, as Envoy starts the timer of
        // the listener a connection is handed to anew
        int front = LoopbackProxy.freePort();
        int back = LoopbackProxy.freePort();
        proxy = new LoopbackProxy("""
                static_resources:
                  listeners:
                  - name: front
                    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
                    use_original_dst: true
                    listener_filters:
                    - name: envoy.filters.listener.proxy_protocol
                    listener_filters_timeout: 1s
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.tcp_proxy
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                          stat_prefix: BlackHoleCluster
                          cluster: BlackHoleCluster
                  - name: back
                    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
                    bind_to_port: false
                    listener_filters:
                    - name: envoy.filters.listener.http_inspector
                    listener_filters_timeout: 0s
                    filter_chains:
                """.formatted(front, back) + chain("balanced", "{source_prefix_ranges: "
                + "[{address_prefix: 203.0.113.0, prefix_len: 24}]}", "").indent(4) + """
                  clusters:
                  - {name: BlackHoleCluster, type: STATIC}
                """ + backendCluster());
        try (Socket s = new Socket("127.0.0.1", front)) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write(ascii("PROXY TCP4 203.0.113.7 127.0.0.1 1000 " + back + "\r\n"));
            Thread.sleep(1_500); // past the front's timeout
            String answer;
            try {
                s.getOutputStream().write(ascii(REQUEST));
                answer = new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
            } catch (SocketException reset) {
                answer = "";
            }
            assertTrue(answer.endsWith("chain balanced"), answer);
        }
    }

    @Test
    void rbacRemoteIpAndSourceIpSeeTheHeadersSourceAndDirectRemoteIpThePhysicalPeer() throws Exception {
        // Istio's remoteIpBlocks (remote_ip) and the deprecated source_ip honour the header; ipBlocks
        // (direct_remote_ip) is always the physical peer, as Envoy's RBAC documents them
        byte[] header = ascii("PROXY TCP4 203.0.113.7 198.51.100.1 51234 443\r\n");
        for (String principal : new String[] {"remote_ip: {address_prefix: 203.0.113.0, prefix_len: 24}",
            "source_ip: {address_prefix: 203.0.113.0, prefix_len: 24}",
            "direct_remote_ip: {address_prefix: 127.0.0.0, prefix_len: 8}"}) {
            int port = start("", "", "", allowOnly(principal));
            assertTrue(exchange(port, header).startsWith("HTTP/1.1 200"), principal);
            proxy.close();
        }
        int port = start("", "", "", allowOnly("direct_remote_ip: {address_prefix: 203.0.113.0, prefix_len: 24}"));
        assertTrue(exchange(port, header).startsWith("HTTP/1.1 403"));
    }

    /** Envoy's downstream addresses and their direct (physical) twins, as an access log format. */
    private static final String ADDRESSES = "%DOWNSTREAM_REMOTE_ADDRESS% "
            + "%DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_DIRECT_REMOTE_PORT% "
            + "%DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_DIRECT_LOCAL_ADDRESS%";

    @Test
    void aRequestsAccessLogPrintsTheHeadersAddressesAndTheConnectionsOwnAsTheDirectOnes() throws Exception {
        // Envoy's %DOWNSTREAM_DIRECT_REMOTE_ADDRESS% is always the physical peer (the balancer) and
        // %DOWNSTREAM_DIRECT_LOCAL_ADDRESS% the listener's socket, where the others are the header's
        int port = start("");
        String answer = exchange(port, ascii("PROXY TCP4 203.0.113.7 198.51.100.1 51234 443\r\n"));
        assertTrue(answer.endsWith("chain balanced"), answer);
        String line = CommandFormat.compile(ADDRESSES, false).format(AccessLogEntry.of(logged(), null));
        assertTrue(line.matches("203\\.0\\.113\\.7:51234 127\\.0\\.0\\.1 \\d+ 198\\.51\\.100\\.1:443 "
                + "127\\.0\\.0\\.1:" + port) && !line.contains(" 51234 "), line);
    }

    @Test
    void aTcpProxysAccessLogPrintsTheHeadersAddressesAndTheConnectionsOwnAsTheDirectOnes() throws Exception {
        Path log = dir.resolve("tcp.log");
        int port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy("""
                static_resources:
                  listeners:
                  - name: balanced
                    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
                    listener_filters:
                    - name: envoy.filters.listener.proxy_protocol
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.tcp_proxy
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                          stat_prefix: backend
                          cluster: backend
                """.formatted(port) + ProxyAccessLogTest.accessLog(log, ADDRESSES, " ".repeat(10)) + """
                  clusters:
                """ + backendCluster());
        int client;
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(10_000);
            client = s.getLocalPort();
            s.getOutputStream().write(ascii("PROXY TCP4 203.0.113.7 198.51.100.1 51234 443\r\n" + REQUEST));
            String answer = new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
            assertTrue(answer.startsWith("HTTP/1.1 200"), answer);
        }
        assertEquals(List.of("203.0.113.7:51234 127.0.0.1 " + client + " 198.51.100.1:443 127.0.0.1:" + port),
                ProxyAccessLogTest.lines(log, 1));
    }

    /** An RBAC HTTP filter that allows only the requests whose principal matches {@code principal} (YAML flow). */
    private static String allowOnly(String principal) {
        return """
                - name: envoy.filters.http.rbac
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
                    rules:
                      action: ALLOW
                      policies:
                        nlb-clients:
                          permissions: [{any: true}]
                          principals: [{%s}]
                """.formatted(principal);
    }

    /** The value of a meter on the Prometheus page, or -1 when it is not there. */
    private double scraped(String series) {
        return registry.scrape().lines().filter(l -> l.startsWith(series + " ")).findFirst()
                .map(l -> Double.parseDouble(l.substring(series.length() + 1))).orElse(-1.0);
    }
}
