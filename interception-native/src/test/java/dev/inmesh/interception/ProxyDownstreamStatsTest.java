package dev.inmesh.interception;

import static dev.inmesh.runtime.testing.LoopbackPorts.freePort;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.interception.proxy.AdminHook;
import dev.inmesh.interception.proxy.StandaloneProxy;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.net.SelfSignedCertificate;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The standalone proxy keeps Envoy's downstream statistics, read from its admin server as Envoy's are: its HTTP
 * connection manager's {@code http.<stat_prefix>.*} (requests, connections, bytes, the router's and the fault
 * filter's) and its listeners' {@code listener.<address>.*}.
 */
class ProxyDownstreamStatsTest {
    @TempDir
    Path dir;
    private Vertx backends;
    private StandaloneProxy proxy;
    /** A Vert.x server on loopback answering 200 {@code ok}: cluster c's one host. */
    private int backend;

    @BeforeEach
    void setUp() throws Exception {
        backends = Vertx.vertx();
        HttpServer s = backends.createHttpServer().requestHandler(req -> req.response().end("ok"));
        backend = s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    @AfterEach
    void tearDown() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        backends.close().await(10, TimeUnit.SECONDS);
    }

    /** A listener on 127.0.0.1:{@code port} whose one chain, matching {@code match}, routes host svc to c. */
    private static String listener(String name, int port, String match) {
        return """
                  - name: %s
                    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
                    filter_chains:
                    - filter_chain_match: {%s}
                      filters:
                      - name: envoy.filters.network.http_connection_manager
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                          stat_prefix: proxy_http
                          route_config:
                            name: r
                            virtual_hosts:
                            - name: svc
                              domains: ["svc", "svc:*"]
                              routes:
                              - match: {prefix: /}
                                route: {cluster: c}
                          http_filters:
                          - name: envoy.filters.http.fault
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                              headers: [{name: end-user, string_match: {exact: jason}}]
                              abort: {http_status: 503, percentage: {numerator: 100}}
                          - name: envoy.filters.http.router
                            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                """.formatted(name, port, match);
    }

    /** The admin server's {@code /stats} as a map, once {@code until} holds in it (or after 15 s, as it is then). */
    private static Map<String, Long> stats(int admin, java.util.function.Predicate<Map<String, Long>> until)
            throws Exception {
        Map<String, Long> out = new TreeMap<>();
        for (long deadline = System.nanoTime() + 15_000_000_000L; System.nanoTime() < deadline; Thread.sleep(20)) {
            out.clear();
            for (String line : get(admin, "/stats").body().split("\n")) {
                int colon = line.lastIndexOf(": ");
                // the counters and gauges; not the histograms' quantiles after them
                if (colon > 0 && line.substring(colon + 2).matches("\\d+")) {
                    out.put(line.substring(0, colon), Long.parseLong(line.substring(colon + 2)));
                }
            }
            if (until.test(out)) {
                break;
            }
        }
        return out;
    }

    /** A GET of {@code path} from 127.0.0.1:{@code port}. */
    static HttpResponse<String> get(int port, String path) throws Exception {
        return java.net.http.HttpClient.newHttpClient().send(java.net.http.HttpRequest.newBuilder(
                URI.create("http://127.0.0.1:" + port + path)).build(), HttpResponse.BodyHandlers.ofString());
    }

    /** Starts the proxy on {@code config} with its statistics and its admin server on {@code admin}. */
    static StandaloneProxy start(Path config, int admin) throws Exception {
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        MeshMetrics metrics = MeshMetrics.create(registry, WorkloadInfo.UNKNOWN);
        // the admin port only: Istio's fixed health, Prometheus and agent ports on ephemeral ones (port 0), which
        // cannot be the admin port, as a port found free can (two Vert.x servers on one port share it)
        AdminHook hook = (vertx, snapshots, addresses, drain, xds, sds) -> ProxyCommand.adminHook(registry, config, "n",
                () -> { }).start(vertx, snapshots, new AdminHook.Addresses(new InetSocketAddress("127.0.0.1",
                admin), new InetSocketAddress("127.0.0.1", 0), new InetSocketAddress("127.0.0.1", 0),
                new InetSocketAddress("127.0.0.1", 0)), drain, xds);
        return StandaloneProxy.start(new StandaloneProxy.Settings(config, -1, -1, 1, metrics::record, hook)
                .withStats(metrics::tcpConnection, metrics::upstream)
                .withDownstreamStats(metrics::connectionManager, metrics::listener));
    }

    private static String cluster(int backend) {
        return """
                  clusters:
                  - name: c
                    type: STATIC
                    connect_timeout: 1s
                    load_assignment:
                      cluster_name: c
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                """.formatted(backend);
    }

    @Test
    void requestsConnectionsAndListenersCountInEnvoysDownstreamStatsOnTheAdminPort() throws Exception {
        int port = freePort();
        int unmatched = freePort();
        int admin = freePort();
        Path config = dir.resolve("proxy.yaml");
        Files.writeString(config, "static_resources:\n  listeners:\n" + listener("plain", port, "")
                // a chain no connection to this listener matches: each is closed, as no_filter_chain_match
                + listener("unmatched", unmatched, "destination_port: 1") + cluster(backend));
        proxy = start(config, admin);
        HttpClient client = backends.createHttpClient();
        int[] statuses = new int[3];
        String[][] requests = {{"svc", ""}, {"other", ""}, {"svc", "jason"}};
        for (int i = 0; i < requests.length; i++) {
            RequestOptions o = new RequestOptions().setHost("127.0.0.1").setPort(port).setURI("/x")
                    .putHeader("host", requests[i][0]);
            if (!requests[i][1].isEmpty()) {
                o.putHeader("end-user", requests[i][1]);
            }
            statuses[i] = client.request(o).compose(req -> req.send()).await(10, TimeUnit.SECONDS).statusCode();
        }
        assertEquals("[200, 404, 503]", java.util.Arrays.toString(statuses));
        client.close().await(10, TimeUnit.SECONDS);
        try (Socket sock = new Socket("127.0.0.1", unmatched)) {
            sock.setSoTimeout(5000);
            InputStream in = sock.getInputStream();
            sock.getOutputStream().write("GET / HTTP/1.1\r\nhost: svc\r\n\r\n".getBytes());
            int read;
            try {
                read = in.read();
            } catch (java.net.SocketException reset) {
                read = -1; // closed with the request unread: a reset
            }
            assertEquals(-1, read, "closed without a chain");
        }

        String h = "http.proxy_http.";
        String l = "listener.127.0.0.1_" + port + ".";
        String u = "listener.127.0.0.1_" + unmatched + ".";
        Map<String, Long> st = stats(admin, m -> m.getOrDefault(h + "downstream_cx_destroy", 0L) > 0
                && m.getOrDefault(h + "downstream_cx_active", -1L) == 0
                && m.getOrDefault(u + "downstream_cx_destroy", 0L) == 1);
        assertEquals(3, st.get(h + "downstream_rq_total"), st.toString());
        assertEquals(3, st.get(h + "downstream_rq_http1_total"), st.toString());
        assertEquals(3, st.get(h + "downstream_rq_completed"), st.toString());
        assertEquals(1, st.get(h + "downstream_rq_2xx"), st.toString());
        assertEquals(1, st.get(h + "downstream_rq_4xx"), st.toString());
        assertEquals(1, st.get(h + "downstream_rq_5xx"), st.toString());
        assertEquals(0, st.get(h + "downstream_rq_active"), st.toString());
        assertEquals(1, st.get(h + "no_route"), st.toString());
        // the downstream codecs' counters, in no scope, as Envoy names them
        assertEquals(0, st.get("http1.requests_rejected_with_underscores_in_headers"), st.toString());
        assertEquals(0, st.get("http2.dropped_headers_with_underscores"), st.toString());
        assertEquals(0, st.get(h + "downstream_rq_failed_path_normalization"), st.toString());
        assertEquals(1, st.get(h + "fault.aborts_injected"), st.toString());
        assertEquals(0, st.get(h + "fault.active_faults"), st.toString());
        long cx = st.get(h + "downstream_cx_total");
        assertTrue(cx >= 1 && cx <= 3, st.toString());
        assertEquals(cx, st.get(h + "downstream_cx_http1_total"), st.toString());
        assertEquals(cx, st.get(h + "downstream_cx_destroy"), st.toString());
        assertEquals(0, st.get(h + "downstream_cx_http1_active"), st.toString());
        assertTrue(st.get(h + "downstream_cx_rx_bytes_total") > 3 * 30, st.toString());
        assertTrue(st.get(h + "downstream_cx_tx_bytes_total") > 3 * 30, st.toString());
        assertEquals(cx, st.get(l + "downstream_cx_total"), st.toString());
        assertEquals(cx, st.get(l + "downstream_cx_destroy"), st.toString());
        assertEquals(0, st.get(l + "downstream_cx_active"), st.toString());
        assertEquals(0, st.get(l + "no_filter_chain_match"), st.toString());
        // no chain of the listener terminates TLS: Envoy makes no ssl.* statistics for it
        assertTrue(st.keySet().stream().noneMatch(k -> k.startsWith(l + "ssl.")), st.toString());
        // as Envoy's: a connection counts for its listener once a chain takes it; one none takes, only there
        assertEquals(0, st.get(u + "downstream_cx_total"), st.toString());
        assertEquals(0, st.get(u + "downstream_cx_destroy"), st.toString());
        assertEquals(1, st.get(u + "no_filter_chain_match"), st.toString());
        assertEquals(0, st.get(u + "downstream_cx_active"), st.toString());

        // a bootstrap without stats_config: the tags under Envoy's default tag names, as Envoy's Prometheus output
        String prom = get(admin, "/stats/prometheus").body();
        String tag = "envoy_http_conn_manager_prefix=\"proxy_http\"";
        assertTrue(prom.contains("envoy_http_downstream_rq_total{" + tag + "} 3\n"), prom);
        assertTrue(prom.contains("envoy_http_downstream_rq_xx{" + tag + ",envoy_response_code_class=\"4\"} 1\n"),
                prom);
        assertTrue(prom.contains("envoy_http_fault_aborts_injected{" + tag + "} 1\n"), prom);
        assertTrue(prom.contains("envoy_listener_downstream_cx_total{envoy_listener_address=\"127.0.0.1_" + port
                + "\"} " + cx + "\n"), prom);
        assertTrue(prom.contains("envoy_listener_no_filter_chain_match{envoy_listener_address=\"127.0.0.1_"
                + unmatched + "\"} 1\n"), prom);
    }

    @Test
    void connectionsTheListenerFiltersReadCountAsPreConnectionsAndTheirTimeoutsAsEnvoyCountsThem() throws Exception {
        int port = freePort();
        int admin = freePort();
        Path config = dir.resolve("proxy.yaml");
        Files.writeString(config, "static_resources:\n  listeners:\n" + listener("inspected", port, "").replace(
                "    filter_chains:\n", """
                    listener_filters:
                    - name: envoy.filters.listener.tls_inspector
                    listener_filters_timeout: 0.5s
                    filter_chains:
                """) + cluster(backend));
        proxy = start(config, admin);
        String l = "listener.127.0.0.1_" + port + ".";
        try (Socket silent = new Socket("127.0.0.1", port)) {
            // a client that sends nothing: its connection is being inspected until the timeout closes it
            Map<String, Long> st = stats(admin, m -> m.getOrDefault(l + "downstream_pre_cx_active", 0L) == 1);
            assertEquals(1, st.get(l + "downstream_pre_cx_active"), st.toString());
            assertEquals(0, st.get(l + "downstream_cx_active"), "not yet a connection of the listener's: " + st);
            assertEquals(0, st.get(l + "downstream_pre_cx_timeout"), st.toString());
            silent.setSoTimeout(5000);
            int read;
            try {
                read = silent.getInputStream().read();
            } catch (java.net.SocketException reset) {
                read = -1;
            }
            assertEquals(-1, read, "closed at the listener filters timeout");
        }
        HttpClient client = backends.createHttpClient();
        // a client that speaks at once is inspected without a timeout
        assertEquals(200, client.request(new RequestOptions().setHost("127.0.0.1").setPort(port).setURI("/x")
                .putHeader("host", "svc")).compose(req -> req.send()).await(10, TimeUnit.SECONDS).statusCode());
        client.close().await(10, TimeUnit.SECONDS);
        Map<String, Long> st = stats(admin, m -> m.getOrDefault(l + "downstream_cx_active", -1L) == 0
                && m.getOrDefault(l + "downstream_pre_cx_active", -1L) == 0);
        assertEquals(1, st.get(l + "downstream_pre_cx_timeout"), st.toString());
        assertEquals(0, st.get(l + "downstream_pre_cx_active"), st.toString());
        // the connection the timeout closed is no connection of the listener's (Envoy counts it only there)
        assertEquals(1, st.get(l + "downstream_cx_total"), st.toString());
        assertTrue(get(admin, "/stats/prometheus").body().contains("envoy_listener_downstream_pre_cx_timeout{"
                + "envoy_listener_address=\"127.0.0.1_" + port + "\"} 1\n"));
    }

    /**
     * The listener of {@link #listener} whose chain terminates TLS with the certificate {@code server}, asking for a
     * client certificate of {@code ca}, with {@code more} fields of its common_tls_context's validation context.
     */
    private static String tlsListener(String name, int port, SelfSignedCertificate server, SelfSignedCertificate ca,
                                      String more) {
        String socket = """
                      transport_socket:
                        name: envoy.transport_sockets.tls
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
                          common_tls_context:
                            tls_certificates: [{certificate_chain: {filename: "%s"}, private_key: {filename: "%s"}}]
                            validation_context: {trusted_ca: {filename: "%s"}%s}
                """.formatted(server.certificatePath(), server.privateKeyPath(), ca.certificatePath(), more);
        return listener(name, port, "").replace("\n      filters:\n", "\n" + socket + "      filters:\n");
    }

    /** Whether a GET over TLS to {@code port}, presenting {@code own} (null: none), is answered. */
    private static boolean tlsGet(Vertx vertx, int port, SelfSignedCertificate own) throws Exception {
        HttpClientOptions o = new HttpClientOptions().setSsl(true).setTrustAll(true).setVerifyHost(false);
        if (own != null) {
            o.setKeyCertOptions(own.keyCertOptions());
        }
        HttpClient c = vertx.createHttpClient(o);
        try {
            return c.request(new RequestOptions().setServer(io.vertx.core.net.SocketAddress.inetSocketAddress(port,
                    "127.0.0.1")).setHost("svc").setPort(port).setURI("/")).compose(r -> r.send())
                    .await(10, TimeUnit.SECONDS).statusCode() == 200;
        } catch (Exception e) {
            return false;
        } finally {
            c.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void theTlsOfAListenersChainsCountsInItsSslStatistics() throws Exception {
        SelfSignedCertificate server = SelfSignedCertificate.create("proxy.example.com");
        SelfSignedCertificate client = SelfSignedCertificate.create("client.example.com");
        SelfSignedCertificate stranger = SelfSignedCertificate.create("client.example.com");
        int open = freePort();
        int strict = freePort();
        int admin = freePort();
        Path config = dir.resolve("proxy.yaml");
        // "open" asks for a client certificate of client's; "strict" requires one with a SAN it does not have
        Files.writeString(config, "static_resources:\n  listeners:\n" + tlsListener("open", open, server, client, "")
                + tlsListener("strict", strict, server, client,
                        ", match_typed_subject_alt_names: [{san_type: DNS, matcher: {exact: nobody.example.com}}]")
                + cluster(backend));
        proxy = start(config, admin);
        assertTrue(tlsGet(backends, open, client));
        assertTrue(tlsGet(backends, open, null));
        assertFalse(tlsGet(backends, open, stranger));
        try (Socket s = new Socket("127.0.0.1", open)) {
            // plain HTTP to a TLS chain: not a TLS record
            s.getOutputStream().write("GET / HTTP/1.1\r\nhost: svc\r\n\r\n".getBytes());
            s.setSoTimeout(5_000);
            while (s.getInputStream().read() >= 0) {
                // until the proxy closes it
            }
        }
        assertFalse(tlsGet(backends, strict, client));
        assertFalse(tlsGet(backends, strict, null));

        String o = "listener.127.0.0.1_" + open + ".ssl.";
        String x = "listener.127.0.0.1_" + strict + ".ssl.";
        Map<String, Long> st = stats(admin, m -> m.getOrDefault(o + "connection_error", 0L) == 1
                && m.getOrDefault(x + "fail_verify_no_cert", 0L) == 1);
        Map.of(o + "handshake", 2L, o + "no_certificate", 1L, o + "fail_verify_error", 1L,
                o + "connection_error", 1L, o + "fail_verify_san", 0L, x + "handshake", 0L, x + "fail_verify_san", 1L,
                x + "fail_verify_no_cert", 1L, x + "fail_verify_error", 0L)
                .forEach((name, n) -> assertEquals(n, st.get(name), name + " in " + st));
        String prom = get(admin, "/stats/prometheus").body();
        assertTrue(prom.contains("envoy_listener_ssl_handshake{envoy_listener_address=\"127.0.0.1_" + open
                + "\"} 2\n"), prom);
        assertTrue(prom.contains("envoy_listener_ssl_fail_verify_san{envoy_listener_address=\"127.0.0.1_" + strict
                + "\"} 1\n"), prom);
        for (SelfSignedCertificate c : new SelfSignedCertificate[] {server, client, stranger}) {
            c.delete();
        }
    }

    @Test
    void anHttp2ConnectionAndItsRequestsCountAsHttp2() throws Exception {
        int port = freePort();
        int admin = freePort();
        Path config = dir.resolve("proxy.yaml");
        Files.writeString(config, "static_resources:\n  listeners:\n" + listener("plain", port, "")
                + cluster(backend));
        proxy = start(config, admin);
        HttpClient client = backends.createHttpClient(new io.vertx.core.http.HttpClientOptions()
                .setProtocolVersion(io.vertx.core.http.HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false));
        for (int i = 0; i < 2; i++) {
            // HTTP/2 names the host in :authority: svc:PORT, sent to the proxy's address
            assertEquals(200, client.request(new RequestOptions().setServer(io.vertx.core.net.SocketAddress
                    .inetSocketAddress(port, "127.0.0.1")).setHost("svc").setPort(port).setURI("/x"))
                    .compose(req -> req.send())
                    .await(10, TimeUnit.SECONDS).statusCode());
        }
        String h = "http.proxy_http.";
        Map<String, Long> open = stats(admin, m -> m.getOrDefault(h + "downstream_rq_completed", 0L) == 2);
        assertEquals(2, open.get(h + "downstream_rq_http2_total"), open.toString());
        assertEquals(0, open.get(h + "downstream_rq_http1_total"), open.toString());
        assertEquals(1, open.get(h + "downstream_cx_http2_total"), open.toString());
        assertEquals(1, open.get(h + "downstream_cx_http2_active"), open.toString());
        assertEquals(1, open.get(h + "downstream_cx_active"), open.toString());
        client.shutdown(0, TimeUnit.SECONDS).await(10, TimeUnit.SECONDS); // the connection closes now
        Map<String, Long> closed = stats(admin, m -> m.getOrDefault(h + "downstream_cx_destroy", 0L) == 1);
        assertEquals(0, closed.get(h + "downstream_cx_http2_active"), closed.toString());
        assertEquals(0, closed.get(h + "downstream_cx_active"), closed.toString());
    }
}
