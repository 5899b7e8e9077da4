package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.HealthCheck;
import dev.inmesh.api.config.listener.HeadersWithUnderscoresAction;
import dev.inmesh.api.config.listener.HostNormalization;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.api.config.listener.OriginalIpDetection;
import dev.inmesh.api.config.listener.PathNormalization;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The shapes an Envoy Gateway control plane writes (its translator's listeners and clusters, as it prints them in
 * camelCase), through Inmesh's parsers: what it writes on every HTTP listener loads, and what still refuses names its
 * field, so that a refusal is a decision written down. docs/configuration.md describes the behaviour.
 */
class EnvoyGatewayShapesTest {
    private static Listener listener(String yaml) throws Exception {
        return new ListenerParser().parse(EnvoyJson.toMessage(EnvoyJson.tree(yaml),
                io.envoyproxy.envoy.config.listener.v3.Listener.class));
    }

    private static HttpConnectionManager hcm(Listener l) {
        return (HttpConnectionManager) l.defaultFilterChain().filter();
    }

    /** An HTTP listener as the gateway writes one for a Gateway's HTTP listener, with {@code more} HCM fields. */
    private static String httpListener(String more) {
        return """
                name: default/eg/http
                address: {socketAddress: {address: 0.0.0.0, portValue: 10080}}
                perConnectionBufferLimitBytes: 32768
                defaultFilterChain:
                  filters:
                  - name: envoy.filters.network.http_connection_manager
                    typedConfig:
                      '@type': type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      commonHttpProtocolOptions: {headersWithUnderscoresAction: REJECT_REQUEST}
                      http2ProtocolOptions: {initialConnectionWindowSize: 1048576, initialStreamWindowSize: 65536, maxConcurrentStreams: 100}
                      httpFilters:
                      - name: envoy.filters.http.router
                        typedConfig: {'@type': type.googleapis.com/envoy.extensions.filters.http.router.v3.Router, suppressEnvoyHeaders: true}
                      mergeSlashes: true
                      normalizePath: true
                      pathWithEscapedSlashesAction: UNESCAPE_AND_REDIRECT
                      rds: {configSource: {ads: {}, resourceApiVersion: V3}, routeConfigName: default/eg/http}
                      schemeHeaderTransformation: {matchUpstream: true}
                      serverHeaderTransformation: PASS_THROUGH
                      statPrefix: http-10080
                      upgradeConfigs: [{upgradeType: websocket}]
                %s
                """.formatted(more.indent(6).stripTrailing());
    }

    @Test
    void anHttpListenersDefaultsLoad() throws Exception {
        HttpConnectionManager h = hcm(listener(httpListener("useRemoteAddress: true\nstripAnyHostPort: true")));
        assertEquals(HeadersWithUnderscoresAction.REJECT_REQUEST, h.headersWithUnderscores());
        assertEquals(new PathNormalization(true, true, PathNormalization.EscapedSlashes.UNESCAPE_AND_REDIRECT),
                h.pathNormalization());
        assertEquals(HostNormalization.StripPort.ANY, h.hostNormalization().stripPort());
        assertTrue(h.useRemoteAddress());
    }

    @Test
    void clientIpDetectionByACustomHeaderLoads() throws Exception {
        HttpConnectionManager h = hcm(listener(httpListener("""
                useRemoteAddress: false
                originalIpDetectionExtensions:
                - name: envoy.extensions.http.original_ip_detection.custom_header
                  typedConfig:
                    '@type': type.googleapis.com/envoy.extensions.http.original_ip_detection.custom_header.v3.CustomHeaderConfig
                    allowExtensionToSetAddressAsTrusted: true
                    headerName: x-my-custom-header
                    rejectWithStatus: {code: Forbidden}""")));
        assertEquals(List.of(new OriginalIpDetection.CustomHeader("x-my-custom-header", true, 403)),
                h.remoteAddressOptions().originalIpDetection());
    }

    @Test
    void aBackendsActiveHealthChecksWithPayloadsLoad() throws Exception {
        Cluster c = new ClusterParser().parse(EnvoyJson.toMessage(EnvoyJson.tree("""
                name: tcproute/default/tcproute-1/rule/-1
                type: EDS
                edsClusterConfig: {edsConfig: {ads: {}, resourceApiVersion: V3}, serviceName: tcproute/default/tcproute-1/rule/-1}
                connectTimeout: 10s
                healthChecks:
                - timeout: 0.500s
                  interval: 3s
                  unhealthyThreshold: 3
                  healthyThreshold: 1
                  tcpHealthCheck:
                    send: {text: 68656C6C6F}
                    receive: [{text: 776F726C64}]
                """), io.envoyproxy.envoy.config.cluster.v3.Cluster.class));
        HealthCheck.Tcp tcp = (HealthCheck.Tcp) c.healthCheck().checker();
        assertEquals("hello", new String(tcp.send().bytes(), java.nio.charset.StandardCharsets.US_ASCII));
        assertEquals(List.of(HealthCheck.Payload.of("world".getBytes(java.nio.charset.StandardCharsets.US_ASCII))),
                tcp.receive());
    }

    /**
     * What still refuses, by name: a TLS listener presenting an RSA and an ECDSA certificate (one is presented), and
     * turning session resumption off (the JDK's TLS offers no per-context switch for it).
     */
    @Test
    void whatStillRefusesNamesItsField() {
        String tls = """
                name: default/eg/https
                address: {socketAddress: {address: 0.0.0.0, portValue: 10443}}
                filterChains:
                - filters:
                  - name: envoy.filters.network.tcp_proxy
                    typedConfig: {'@type': type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, cluster: c, statPrefix: tls}
                  transportSocket:
                    name: envoy.transport_sockets.tls
                    typedConfig:
                      '@type': type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
                      %s
                      commonTlsContext:
                        tlsCertificates:
                        - {certificateChain: {inlineString: a}, privateKey: {inlineString: b}}
                        - {certificateChain: {inlineString: c}, privateKey: {inlineString: d}}
                """;
        String two = assertThrows(InvalidResourceException.class, () -> listener(tls.formatted(""))).getMessage();
        assertTrue(two.contains("tls_certificates: a listener presents one certificate in Inmesh"), two);
        String resumption = assertThrows(InvalidResourceException.class, () -> listener(tls.formatted(
                "disableStatelessSessionResumption: true"))).getMessage();
        assertTrue(resumption.contains("disable_stateless_session_resumption: not supported"), resumption);
    }
}
