package dev.inmesh.runtime.inbound;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@code mesh.inbound} picks the {@code virtualInbound} chain of a plaintext connection as Envoy's listener would
 * after its HTTP inspector: by the source type, local ({@code SAME_IP_OR_LOOPBACK}) from 127.0.0.1 or from the
 * server's own address and external from any other address, 127.0.0.6 (Istio's passthrough source) among them; and by
 * the application protocol the inspector reports, {@code h2c} for an HTTP/2 caller with prior knowledge,
 * {@code http/1.0} and {@code http/1.1} for HTTP/1 callers. A caller over a Unix domain socket is local.
 */
class InboundChainMatchTest extends InboundMeshFixture {
    private static final String CHAIN = """
                - filter_chain_match: %s
                  filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: inbound_0.0.0.0_9080
                      http_protocol_options: {accept_http_10: true}
                      http_filters:
                      - name: envoy.filters.http.router
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                      route_config:
                        name: %s
                        virtual_hosts:
                        - name: all
                          domains: ["*"]
                          routes:
                          - {match: {prefix: /}, direct_response: {status: 200, body: {inline_string: %2$s}}}
            """;

    /** Serves {@code mesh.inbound} on 127.0.0.1 with a {@code virtualInbound} of these chains. */
    private void serveChains(String chains) throws Exception {
        serve("static_resources:\n  listeners:\n" + VIRTUAL_INBOUND + "    filter_chains:\n" + chains);
    }

    /** What a caller over a Unix domain socket gets from {@code mesh.inbound} served on one, with these chains. */
    private String overUnixSocket(String chains) throws Exception {
        serveChains(chains);
        io.vertx.core.net.SocketAddress socket = io.vertx.core.net.SocketAddress.domainSocketAddress(
                dir.resolve("app.sock").toString());
        vertx.createHttpServer().requestHandler(mesh.inbound(req -> req.response().end("service")))
                .listen(socket).await(10, TimeUnit.SECONDS);
        WebClient client = WebClient.create(vertx);
        try {
            return client.request(HttpMethod.GET, socket, 80, "svc", "/").send().await(10, TimeUnit.SECONDS)
                    .bodyAsString();
        } finally {
            client.close();
        }
    }

    private String call(WebClientOptions options) throws Exception {
        WebClient client = WebClient.create(vertx, options);
        try {
            return client.request(HttpMethod.GET, port, "127.0.0.1", "/").send().await(10, TimeUnit.SECONDS)
                    .bodyAsString();
        } finally {
            client.close();
        }
    }

    private String from(String sourceIp) throws Exception {
        WebClientOptions options = new WebClientOptions();
        options.setLocalAddress(sourceIp);
        return call(options);
    }

    private String speaking(HttpVersion version) throws Exception {
        WebClientOptions options = new WebClientOptions();
        options.setProtocolVersion(version);
        options.setHttp2ClearTextUpgrade(false);
        return call(options);
    }

    @Test
    void aCallerFrom127001IsLocalAndOneFromAnotherLoopbackAddressIsExternal() throws Exception {
        serveChains(CHAIN.formatted("{source_type: SAME_IP_OR_LOOPBACK}", "local")
                + CHAIN.formatted("{source_type: EXTERNAL}", "external"));
        assertEquals("local", from("127.0.0.1"));
        assertEquals("external", from("127.0.0.6"));
    }

    @Test
    void aCallerOverAUnixSocketIsLocal() throws Exception {
        // as Envoy's SAME_IP_OR_LOOPBACK: a pipe's peer is local
        assertEquals("local", overUnixSocket(CHAIN.formatted("{source_type: EXTERNAL}", "external")
                + CHAIN.formatted("{source_type: SAME_IP_OR_LOOPBACK}", "local")));
    }

    @Test
    void anH2cCallerAndAnHttp10CallerGetTheChainsOfTheirProtocols() throws Exception {
        serveChains(CHAIN.formatted("{application_protocols: [h2c]}", "h2c")
                + CHAIN.formatted("{application_protocols: [http/1.0]}", "http10")
                + CHAIN.formatted("{application_protocols: [http/1.1]}", "http11"));
        assertEquals("http11", speaking(HttpVersion.HTTP_1_1));
        assertEquals("http10", speaking(HttpVersion.HTTP_1_0));
        assertEquals("h2c", speaking(HttpVersion.HTTP_2));
    }

    @Test
    void aConnectionThatNoChainTakesIsClosedUnansweredWithoutFallingToALessSpecificChain() throws Exception {
        // Envoy's FilterChainManagerImpl narrows criterion by criterion without going back: the chain for the
        // address, whose application protocols an HTTP/1.0 caller does not speak, leaves the catch-all chain out,
        // and with no default chain the listener closes the connection
        serveChains(CHAIN.formatted("{prefix_ranges: [{address_prefix: 127.0.0.1, prefix_len: 32}], "
                + "application_protocols: [http/1.1, h2c]}", "pod") + CHAIN.formatted("{}", "catchall"));
        assertEquals("pod", speaking(HttpVersion.HTTP_1_1));
        assertEquals("", exchange("GET / HTTP/1.0\r\nhost: reviews\r\n\r\n"));
        assertEquals("pod", speaking(HttpVersion.HTTP_2));
    }
}
