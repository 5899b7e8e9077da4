package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.ResponseFlag;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * An ORIGINAL_DST cluster behind the standalone proxy connects to the destination a listener filter restored
 * (original_dst, TPROXY, a PROXY header), as Envoy's load balancer takes the downstream local address only when
 * {@code localAddressRestored()}. A connection to a plain listener has none: the cluster finds no host (503
 * {@code no healthy upstream}, UH; tcp_proxy closes), where taking the listener's own address would send the request
 * back to the proxy, again and again.
 */
@Timeout(60)
class OriginalDstClusterProxyTest {
    private final Vertx backends = Vertx.vertx();
    private final int backend = backends.createHttpServer().requestHandler(req -> req.response().end("backend"))
            .listen(0, "127.0.0.1").await().actualPort();
    private LoopbackProxy proxy;

    @AfterEach
    void close() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        backends.close().await(10, TimeUnit.SECONDS);
    }

    /**
     * A listener on 127.0.0.1:{@code port} with {@code listenerFilters} (YAML list items, or empty) whose connection
     * manager routes {@code /plain} to the ORIGINAL_DST cluster {@code od} and {@code /header} to {@code od-header},
     * which takes its destination from {@code x-envoy-original-dst-host}.
     */
    private static String config(int port, String listenerFilters) {
        return """
                static_resources:
                  listeners:
                  - name: plain
                    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
                    listener_filters: [%s]
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.http_connection_manager
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                          stat_prefix: plain
                          route_config:
                            virtual_hosts:
                            - name: all
                              domains: ["*"]
                              routes:
                              - match: {prefix: /plain}
                                route: {cluster: od}
                              - match: {prefix: /header}
                                route: {cluster: od-header}
                          http_filters:
                          - name: envoy.filters.http.router
                            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                  clusters:
                  - {name: od, type: ORIGINAL_DST, lb_policy: CLUSTER_PROVIDED, connect_timeout: 1s}
                  - name: od-header
                    type: ORIGINAL_DST
                    lb_policy: CLUSTER_PROVIDED
                    connect_timeout: 1s
                    original_dst_lb_config: {use_http_header: true}
                """.formatted(port, listenerFilters);
    }

    /** Sends {@code first} then a GET of {@code path} with {@code headers} (CRLF-ended lines); returns the answer. */
    private static String exchange(int port, String first, String path, String headers) throws IOException {
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write((first + "GET " + path + " HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n"
                    + headers + "\r\n").getBytes(StandardCharsets.US_ASCII));
            try {
                return new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
            } catch (SocketException reset) {
                return "";
            }
        }
    }

    @Test
    void aPlainListenersConnectionHasNoOriginalDestinationSoTheClusterAnswersNoHealthyUpstream() throws Exception {
        int port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy(config(port, ""));
        String plain = exchange(port, "", "/plain", "");
        assertTrue(plain.startsWith("HTTP/1.1 503") && plain.endsWith("no healthy upstream"), plain);
        assertTrue(proxy.logged(503).responseFlags().contains(ResponseFlag.NO_HEALTHY_UPSTREAM));
        // use_http_header: without the header, or with one that is no address, the connection's (none) again
        for (String header : new String[] {"", "x-envoy-original-dst-host: svc:80\r\n"}) {
            String answer = exchange(port, "", "/header", header);
            assertTrue(answer.startsWith("HTTP/1.1 503") && answer.endsWith("no healthy upstream"), answer);
        }
        // the header's address is the destination whatever the connection
        String named = exchange(port, "", "/header", "x-envoy-original-dst-host: 127.0.0.1:" + backend + "\r\n");
        assertTrue(named.startsWith("HTTP/1.1 200") && named.endsWith("backend"), named);
        proxy.logged(200);
        assertEquals(4, proxy.requests.size(), "each request once through the proxy: " + proxy.requests);
    }

    @Test
    void theDestinationAProxyHeaderRestoredIsTheOneTheClusterConnectsTo() throws Exception {
        int port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy(config(port, "{name: envoy.filters.listener.proxy_protocol}"));
        String answer = exchange(port, "PROXY TCP4 203.0.113.7 127.0.0.1 51234 " + backend + "\r\n", "/plain", "");
        assertTrue(answer.startsWith("HTTP/1.1 200") && answer.endsWith("backend"), answer);
        // a header naming the listener's own address restores nothing (Envoy's filter restores only another)
        answer = exchange(port, "PROXY TCP4 203.0.113.7 127.0.0.1 51234 " + port + "\r\n", "/plain", "");
        assertTrue(answer.startsWith("HTTP/1.1 503") && answer.endsWith("no healthy upstream"), answer);
    }

    @Test
    void aTcpProxyToAnOriginalDstClusterClosesAPlainListenersConnection() throws Exception {
        int port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy(TcpRelayTest.config(port, "", "").replace("type: STATIC", "type: ORIGINAL_DST\n"
                + "    lb_policy: CLUSTER_PROVIDED").replaceAll("(?s)    load_assignment:.*", ""));
        var registry = proxy.withStats();
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write("ping".getBytes(StandardCharsets.US_ASCII));
            int read;
            try {
                read = s.getInputStream().read();
            } catch (SocketException reset) {
                read = -1;
            }
            assertEquals(-1, read);
        }
        assertEquals(0, LoopbackProxy.clusterStat(registry, "backend", "upstream_cx_total"), "no upstream connection");
    }
}
