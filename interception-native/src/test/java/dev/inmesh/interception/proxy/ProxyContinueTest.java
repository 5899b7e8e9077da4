package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerOptions;
import dev.inmesh.runtime.mesh.ContinueUpstream;
import java.io.BufferedInputStream;
import java.io.InputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The standalone proxy under a connection manager's {@code proxy_100_continue}, as Envoy's: {@code Expect:
 * 100-continue} goes upstream, the upstream's first {@code 100 Continue} is relayed to the client (over an HTTP/1.1
 * or an HTTP/2 upstream), an upstream's 417 is the answer and the body is never asked for, and a request whose 100
 * was relayed is not retried. Without the field, the proxy answers the expectation itself and takes it off.
 */
@Timeout(30)
class ProxyContinueTest {
    private final Vertx backends = Vertx.vertx();
    private final ContinueUpstream service = new ContinueUpstream();
    private LoopbackProxy proxy;
    private int proxyPort;
    private int upstream;

    @BeforeEach
    void start() {
        // HTTP/1.1, and h2c with prior knowledge for the cluster that speaks HTTP/2
        upstream = backends.createHttpServer(new HttpServerOptions().setHttp2ClearTextEnabled(true))
                .requestHandler(service).listen(0, "127.0.0.1").await().actualPort();
    }

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        backends.close().await(10, TimeUnit.SECONDS);
    }

    private void proxy(boolean proxy100Continue) throws Exception {
        proxyPort = LoopbackProxy.freePort();
        proxy = new LoopbackProxy("""
                static_resources:
                  listeners:
                  - name: http
                    address: {socket_address: {address: 127.0.0.1, port_value: %1$d}}
                    traffic_direction: OUTBOUND
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.http_connection_manager
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                          stat_prefix: http
                          proxy_100_continue: %2$s
                          route_config:
                            name: r
                            virtual_hosts:
                            - name: svc
                              domains: ["*"]
                              routes:
                              - match: {prefix: /, headers: [{name: x-h2, present_match: true}]}
                                route: {cluster: h2}
                              - match: {prefix: /}
                                route:
                                  cluster: h1
                                  retry_policy: {retry_on: "reset,connect-failure", num_retries: 2}
                          http_filters:
                          - name: envoy.filters.http.router
                            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                  clusters:
                  - name: h1
                    type: STATIC
                    connect_timeout: 1s
                    load_assignment:
                      cluster_name: h1
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %3$d}}}
                  - name: h2
                    type: STATIC
                    connect_timeout: 1s
                    typed_extension_protocol_options:
                      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                        explicit_http_config: {http2_protocol_options: {}}
                    load_assignment:
                      cluster_name: h2
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %3$d}}}
                """.formatted(proxyPort, proxy100Continue, upstream));
    }

    /**
     * Sends a POST to {@code path} expecting 100-continue (with {@code extraHeaders}, each line ending in CRLF), its
     * body only after a 100 Continue, and returns every response read, " || " between them.
     */
    private String expectContinue(String path, String extraHeaders) throws Exception {
        try (Socket s = new Socket("127.0.0.1", proxyPort)) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write(("POST " + path + " HTTP/1.1\r\nhost: svc\r\nexpect: 100-continue\r\n"
                    + "content-length: 4\r\n" + extraHeaders + "\r\n").getBytes(StandardCharsets.US_ASCII));
            InputStream in = new BufferedInputStream(s.getInputStream());
            StringBuilder all = new StringBuilder();
            for (int i = 0; i < 4; i++) {
                String r = HttpBridgeTest.readResponse(in);
                all.append(i == 0 ? "" : " || ").append(r);
                if (!r.startsWith("HTTP/1.1 100 ")) {
                    return all.toString();
                }
                if (i == 0) {
                    s.getOutputStream().write("body".getBytes(StandardCharsets.US_ASCII));
                }
            }
            return all.toString();
        }
    }

    @Test
    void withProxy100ContinueTheUpstreamsContinueIsRelayedOnceAndTheExpectationGoesUpstream() throws Exception {
        proxy(true);
        String relayed = "HTTP/1.1 100 Continue |  || HTTP/1.1 200 OK | ";
        assertEquals(relayed + "http/1.1 100-continue body", expectContinue("/accept", ""));
        // two from the upstream, one to the client
        assertEquals(relayed + "http/1.1 100-continue body", expectContinue("/twice", ""));
        // an HTTP/2 upstream's 100 (interim headers) is relayed the same way
        assertEquals(relayed + "h2 100-continue body", expectContinue("/accept", "x-h2: 1\r\n"));
        assertEquals(3, service.bodiesRead.get());
    }

    @Test
    void withProxy100ContinueAnUpstreams417IsTheAnswerAndNoBodyIsAskedFor() throws Exception {
        proxy(true);
        assertEquals("HTTP/1.1 417 Expectation Failed | no", expectContinue("/refuse", ""));
        assertEquals(0, service.bodiesRead.get());
    }

    @Test
    void withProxy100ContinueARequestWhose100WasRelayedIsNotRetried() throws Exception {
        proxy(true);
        String r = expectContinue("/drop", "");
        // the close came after the relayed 100, between messages: a connection termination, 503 UC, as Envoy's codec
        // reads the end of input there
        assertTrue(r.startsWith("HTTP/1.1 100 Continue |  || HTTP/1.1 503 "), r);
        assertEquals(List.of("/drop"), service.requests, "reset after the relayed 100: no retry");
    }

    @Test
    void withoutProxy100ContinueTheProxyAnswersAndTheUpstreamNeverSeesTheExpectation() throws Exception {
        proxy(false);
        // the upstream would refuse the body if it saw the expectation: it reads it, the proxy having asked for it
        String r = expectContinue("/refuse", "");
        assertEquals("HTTP/1.1 100 Continue |  || HTTP/1.1 200 OK | http/1.1 null body", r);
        assertEquals(1, service.bodiesRead.get());
    }
}
