package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.api.config.listener.TcpProxy;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Shapes seen in the config dumps of Istio 1.17 to 1.27 sidecars and gateways ({@code istioctl proxy-config all -o
 * json}, Envoy's {@code /config_dump}) that the other Istio shape tests do not hold, through Inmesh's parsers: what
 * changes nothing Inmesh does loads, and what it would change is applied or refused by name.
 */
class IstioConfigDumpShapesTest {

    /** Istio's {@code istio_authn} network filter, in the TypedStruct form istiod writes it in. */
    private static final String AUTHN = """
            - name: istio_authn
              typed_config:
                "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                type_url: type.googleapis.com/io.istio.network.authn.Config
            """;

    @Test
    void istiosAuthnNetworkFilterOnA119SidecarsInboundChainAndAGatewaysChainChangesNothing() throws Exception {
        // a 1.19 sidecar's virtualInbound chain for port 80: istio_authn first, then the TCP metadata exchange (its
        // config type written directly) and the connection manager
        Listener in = IstioRecentShapesTest.listener("""
                name: virtualInbound
                address: {socket_address: {address: 0.0.0.0, port_value: 15006}}
                traffic_direction: INBOUND
                use_original_dst: true
                filter_chains:
                - name: 0.0.0.0_80
                  filter_chain_match: {destination_port: 80, transport_protocol: raw_buffer}
                  filters:
                """ + AUTHN.indent(2) + """
                  - name: istio.metadata_exchange
                    typed_config:
                      "@type": type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange
                      protocol: istio-peer-exchange
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: inbound_0.0.0.0_80
                      route_config:
                        name: inbound|80||
                        virtual_hosts:
                        - name: inbound|http|80
                          domains: ["*"]
                          routes:
                          - {name: default, match: {prefix: /}, route: {cluster: "inbound|80||", timeout: 0s}}
                      http_filters:
                      - name: envoy.filters.http.router
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                """);
        HttpConnectionManager h = assertInstanceOf(HttpConnectionManager.class,
                in.filterChains().get(0).filter());
        assertEquals("inbound_0.0.0.0_80", h.statPrefix());
        // a gateway's TCP chain (1.17+: istio_authn on every gateway chain), the config type written directly
        Listener gw = IstioRecentShapesTest.listener("""
                name: 0.0.0.0_31400
                address: {socket_address: {address: 0.0.0.0, port_value: 31400}}
                traffic_direction: OUTBOUND
                filter_chains:
                - filters:
                  - name: istio_authn
                    typed_config: {"@type": type.googleapis.com/io.istio.network.authn.Config}
                  - name: envoy.filters.network.tcp_proxy
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                      stat_prefix: outbound|9000||tcp-echo.default.svc.cluster.local
                      cluster: outbound|9000||tcp-echo.default.svc.cluster.local
                """);
        assertEquals("outbound|9000||tcp-echo.default.svc.cluster.local",
                assertInstanceOf(TcpProxy.class, gw.filterChains().get(0).filter()).statPrefix());
    }

    /** A sidecar's inbound listener whose connection manager logs with {@code log_format}'s fields given. */
    private static Listener loggingWith(String logFormat) throws Exception {
        return IstioRecentShapesTest.listener(IstioSecurityTelemetryShapesTest.inbound("""
                access_log:
                - name: envoy.access_loggers.file
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
                    path: /dev/stdout
                    log_format:
                """ + logFormat.indent(6), "", ""));
    }

    @Test
    void theFormatterExtensionsIstiodListsForItsOperatorsLoadAndAnyOtherIsRefusedByPath() throws Exception {
        // meshConfig.accessLogFormat with %REQ_WITHOUT_QUERY% and %METADATA%: istiod lists their formatters
        Listener l = loggingWith("""
                text_format_source: {inline_string: "%REQ_WITHOUT_QUERY(:PATH)% %METADATA(CLUSTER:istio)%\\n"}
                formatters:
                - name: envoy.formatter.req_without_query
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery}
                - name: envoy.formatter.metadata
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.formatter.metadata.v3.Metadata}
                """);
        HttpConnectionManager h = assertInstanceOf(HttpConnectionManager.class, l.filterChains().get(0).filter());
        assertEquals(1, h.accessLogs().size());
        // a Telemetry's JSON format with %CEL%, the formatter in its TypedStruct form
        loggingWith("""
                json_format: {host: "%CEL(request.host)%"}
                formatters:
                - name: envoy.formatter.cel
                  typed_config:
                    "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                    type_url: type.googleapis.com/envoy.extensions.formatter.cel.v3.Cel
                """);
        String m = assertThrows(InvalidResourceException.class, () -> loggingWith("""
                text_format_source: {inline_string: "%PROTOCOL%\\n"}
                formatters:
                - name: custom
                  typed_config: {"@type": type.googleapis.com/google.protobuf.Empty}
                """)).getMessage();
        assertTrue(m.contains("log_format.formatters[0].typed_config: google.protobuf.Empty is not supported"), m);
    }

    @Test
    void metadataOnVirtualHostsAndAListenersIgnoreGlobalConnLimitLoadAndChangeNothing() throws Exception {
        // istiod's config metadata (1.24+ also on inbound chains) on every level a route table has
        var rc = new RouteConfigurationParser().parse(EnvoyJson.toMessage(EnvoyJson.tree("""
                name: "9080"
                virtual_hosts:
                - name: reviews.default.svc.cluster.local:9080
                  domains: [reviews]
                  metadata:
                    filter_metadata:
                      istio: {config: /apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews}
                  routes:
                  - match: {prefix: /}
                    metadata:
                      filter_metadata:
                        istio: {config: /apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews}
                    route: {cluster: outbound|9080||reviews.default.svc.cluster.local}
                """), io.envoyproxy.envoy.config.route.v3.RouteConfiguration.class));
        assertEquals(List.of("reviews"), rc.virtualHosts().get(0).domains());
        // Envoy bypasses its overload manager's global_downstream_max_connections for such a listener; Inmesh has
        // no such limit
        Listener l = IstioRecentShapesTest.listener(IstioRecentShapesTest.virtualOutbound(
                "ignore_global_conn_limit: true\n"));
        assertEquals(2, l.filterChains().size());
    }

    /** istiod's outbound TCP listener of a service port, its tcp_proxy's fields after its own. */
    private static TcpProxy outboundTcp(String tcpProxyFields) throws Exception {
        Listener l = IstioRecentShapesTest.listener("""
                name: 0.0.0.0_27017
                address: {socket_address: {address: 0.0.0.0, port_value: 27017}}
                bind_to_port: false
                traffic_direction: OUTBOUND
                filter_chains:
                - filters:
                  - name: envoy.filters.network.tcp_proxy
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                      stat_prefix: outbound|27017||mongo.default.svc.cluster.local
                      cluster: outbound|27017||mongo.default.svc.cluster.local
                """ + tcpProxyFields.indent(6));
        return assertInstanceOf(TcpProxy.class, l.filterChains().get(0).filter());
    }

    @Test
    void aDestinationRulesTcpIdleTimeoutAndMaxConnectionDurationAreTheTcpProxysOwn() throws Exception {
        // connectionPool.tcp.idleTimeout and maxConnectionDuration, as istiod writes them on the tcp_proxy
        TcpProxy t = outboundTcp("idle_timeout: 3600s\nmax_downstream_connection_duration: 600s\n");
        assertEquals(java.time.Duration.ofMinutes(10), t.maxDownstreamConnectionDuration());
        assertEquals(java.time.Duration.ofHours(1), t.idleTimeout());
        assertEquals(null, outboundTcp("").maxDownstreamConnectionDuration());
        // Envoy's own bound: at least 1 ms
        String m = assertThrows(InvalidResourceException.class,
                () -> outboundTcp("max_downstream_connection_duration: 0.0005s\n")).getMessage();
        assertTrue(m.contains("max_downstream_connection_duration") && m.contains(">= 1ms"), m);
    }
}
