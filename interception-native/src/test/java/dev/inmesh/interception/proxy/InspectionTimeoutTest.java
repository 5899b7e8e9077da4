package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A listener with inspectors and a server-first protocol behind it: the client sends nothing, so the inspectors
 * wait until listener_filters_timeout, then the connection continues as raw bytes or is closed.
 */
@Timeout(30)
class InspectionTimeoutTest {
    private ServerSocket upstream;
    private LoopbackProxy proxy;

    private void start(boolean continueOnTimeout) throws Exception {
        start(continueOnTimeout, "", "0.3s");
    }

    /**
     * @param disabled the inspectors' {@code filter_disabled}, as YAML flow, or empty for none
     * @param timeout the listener filters timeout
     */
    private void start(boolean continueOnTimeout, String disabled, String timeout) throws Exception {
        upstream = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        int port = LoopbackProxy.freePort();
        String predicate = disabled.isEmpty() ? "" : "\n      filter_disabled: " + disabled.formatted(port, port + 1);
        proxy = new LoopbackProxy("""
                static_resources:
                  listeners:
                  - name: inspected
                    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
                    listener_filters:
                    - name: envoy.filters.listener.tls_inspector%s
                    - name: envoy.filters.listener.http_inspector%s
                    listener_filters_timeout: %s
                    continue_on_listener_filters_timeout: %s
                    filter_chains:
                    - filter_chain_match: {application_protocols: [http/1.1]}
                      filters:
                      - name: envoy.filters.network.tcp_proxy
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                          stat_prefix: http
                          cluster: BlackHoleCluster
                    default_filter_chain:
                      filters:
                      - name: envoy.filters.network.tcp_proxy
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                          stat_prefix: raw
                          cluster: backend
                  clusters:
                  - {name: BlackHoleCluster, type: STATIC}
                  - name: backend
                    type: STATIC
                    load_assignment:
                      cluster_name: backend
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                """.formatted(port, predicate, predicate, timeout, continueOnTimeout, upstream.getLocalPort()));
    }

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        if (upstream != null) {
            upstream.close();
        }
    }

    private CompletableFuture<Void> banner() {
        return CompletableFuture.runAsync(() -> {
            try (Socket s = upstream.accept()) {
                s.getOutputStream().write("220 ready\r\n".getBytes(StandardCharsets.US_ASCII));
                s.shutdownOutput();
                s.getInputStream().readAllBytes();
            } catch (IOException e) {
                // the test reads what the client saw
            }
        });
    }

    private Socket client() throws IOException {
        Socket client = new Socket();
        client.connect(proxy.addresses.get(0), 2_000);
        client.setSoTimeout(10_000);
        return client;
    }

    private String readAll(Socket client) throws IOException {
        try {
            return new String(client.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
        } catch (SocketException reset) {
            return "";
        }
    }

    @Test
    void afterTheTimeoutAServerFirstProtocolContinuesAsRawBytes() throws Exception {
        start(true);
        CompletableFuture<Void> server = banner();
        try (Socket client = client()) {
            long t0 = System.nanoTime();
            assertEquals("220 ready\r\n", readAll(client));
            long waited = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
            assertEquals(true, waited >= 250, "the banner came before the inspectors gave up: " + waited + " ms");
            client.shutdownOutput();
        }
        server.get(10, TimeUnit.SECONDS);
    }

    @Test
    void inspectorsDisabledForTheDestinationPortLetAServerFirstProtocolThroughAtOnce() throws Exception {
        // as Istio keeps the inspectors off a port declared TCP: no wait for the client's first bytes, whatever the
        // timeout (Istio's default of none would wait for ever)
        start(false, "{destination_port_range: {start: %d, end: %d}}", "0s");
        CompletableFuture<Void> server = banner();
        try (Socket client = client()) {
            client.setSoTimeout(5_000);
            assertEquals("220 ready\r\n", readAll(client));
            client.shutdownOutput();
        }
        server.get(10, TimeUnit.SECONDS);
    }

    @Test
    void inspectorsDisabledForOtherPortsStillInspectThisOne() throws Exception {
        start(false, "{not_match: {destination_port_range: {start: %d, end: %d}}}", "0.3s");
        try (Socket client = client()) {
            // HTTP/1.1 is seen, and goes to the chain whose cluster is the black hole: closed without an answer
            client.getOutputStream().write("GET / HTTP/1.1\r\nhost: x\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            assertEquals("", readAll(client));
        }
        upstream.setSoTimeout(1_000);
        assertThrows(SocketTimeoutException.class, upstream::accept);
    }

    @Test
    void withoutContinueOnTimeoutTheConnectionIsClosed() throws Exception {
        start(false);
        try (Socket client = client()) {
            assertEquals("", readAll(client));
        }
    }

    @Test
    void aClientThatEndsItsSideDuringInspectionIsClosedWithoutAChainOrUpstream() throws Exception {
        // (2 s: a test thread late to write must not let the timeout continue to the default chain first)
        start(true, "", "2s");
        try (Socket client = client()) {
            client.getOutputStream().write("GE".getBytes(StandardCharsets.US_ASCII)); // the start of a request line
            client.shutdownOutput();
            assertEquals("", readAll(client));
        }
        // neither the end of input nor the listener filters timeout (2 s, continue) leads to the default chain
        upstream.setSoTimeout(2_500);
        assertThrows(SocketTimeoutException.class, upstream::accept);
    }

    @Test
    void anUnfinishedRequestLineOf64KibIsDroppedWithoutAChain() throws Exception {
        start(false);
        try (Socket client = client()) {
            // past the 8 KiB a request line used to be read for, short of Envoy's 64 KiB: still inspected
            client.getOutputStream().write(("GET /" + "a".repeat(9000)).getBytes(StandardCharsets.US_ASCII));
            upstream.setSoTimeout(200);
            assertThrows(SocketTimeoutException.class, upstream::accept);
            client.getOutputStream().write("a".repeat(64 * 1024).getBytes(StandardCharsets.US_ASCII));
            assertEquals("", readAll(client));
        }
        upstream.setSoTimeout(1_000);
        assertThrows(SocketTimeoutException.class, upstream::accept);
    }

    @Test
    void aClientThatSpeaksFirstIsInspectedAtOnce() throws Exception {
        start(false);
        try (Socket client = client()) {
            // HTTP/1.1 goes to the chain whose cluster is the black hole: closed without an answer
            client.getOutputStream().write("GET / HTTP/1.1\r\nhost: x\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            assertEquals("", readAll(client));
        }
    }
}
