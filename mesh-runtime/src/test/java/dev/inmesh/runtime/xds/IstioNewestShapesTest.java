package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.listener.AccessLogConfig;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.api.config.route.RetryPolicy;
import dev.inmesh.api.config.route.RouteAction;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * What istiod 1.25 to 1.29 writes into a sidecar's listeners, routes and clusters beyond {@link IstioRecentShapesTest}
 * (read from istiod's well-known filters, access log, retry and cluster builders), through Inmesh's parsers: what
 * loads, and what is still refused by name, so that each refusal is a decision written down.
 */
class IstioNewestShapesTest {

    private static String refusal(Executable parse) {
        return assertThrows(InvalidResourceException.class, parse).getMessage();
    }

    /** The file logger istiod writes from meshConfig.accessLogFile or a Telemetry resource's provider. */
    private static final String FILE_LOGGER = """
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
                path: /dev/stdout
            """;

    @Test
    void aTelemetryAccessLogFilterOnTheListenerIsItsCelExpressionAndedWithTheNoRouteFlag() throws Exception {
        // a Telemetry resource's accessLogging[].filter.expression: a CEL extension filter, which istiod ANDs on the
        // listener's own log with the response flag filter NR (a connection no filter chain took)
        Listener l = IstioRecentShapesTest.listener(IstioRecentShapesTest.virtualOutbound("""
                access_log:
                - name: envoy.access_loggers.file
                  filter:
                    and_filter:
                      filters:
                      - response_flag_filter: {flags: [NR]}
                      - extension_filter:
                          name: envoy.access_loggers.extension_filters.cel
                          typed_config:
                            "@type": type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter
                            expression: "response.code >= 400"
                """ + FILE_LOGGER));
        AccessLogConfig log = l.accessLogs().get(0);
        assertEquals(new AccessLogConfig.And(List.of(new AccessLogConfig.ResponseFlags(Set.of("NR")),
                new AccessLogConfig.Cel("response.code >= 400"))), log.filter());
        // meshConfig.enableEnvoyAccessLogService: the gRPC logger with the peer metadata filter states (1.24 on)
        IstioRecentShapesTest.listener(IstioRecentShapesTest.virtualOutbound("""
                access_log:
                - name: envoy.access_loggers.tcp_grpc
                  filter: {response_flag_filter: {flags: [NR]}}
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.TcpGrpcAccessLogConfig
                    common_config:
                      log_name: listener_envoy_accesslog
                      transport_api_version: V3
                      grpc_service: {envoy_grpc: {cluster_name: envoy_accesslog_service}}
                      filter_state_objects_to_log: [upstream_peer, downstream_peer, wasm.upstream_peer]
                """));
    }

    /**
     * The inbound connection manager's native peer metadata filter (downstream discovery and propagation), the
     * outbound one with {@code additional_labels}, and {@code istio.stats} with a Telemetry resource's metric
     * overrides: they observe the request, and load whatever their options.
     */
    @Test
    void peerMetadataAndStatsFiltersWithTheirNewerOptionsLoad() throws Exception {
        String inbound = IstioRecentShapesTest.outboundHttp("{istio_headers: {}}")
                .replace("upstream_discovery", "downstream_discovery")
                .replace("upstream_propagation", "downstream_propagation")
                .replace("reporter: CLIENT", "reporter: SERVER\n"
                        + "          disable_host_header_fallback: true\n"
                        + "          tcp_reporting_duration: 5s\n"
                        + "          metrics:\n"
                        + "          - name: requests_total\n"
                        + "            dimensions: {request_host: request.host}\n"
                        + "            tags_to_remove: [destination_canonical_service]");
        HttpConnectionManager h = assertInstanceOf(HttpConnectionManager.class,
                IstioRecentShapesTest.listener(inbound).filterChains().get(0).filter());
        assertEquals("istio.metadata_exchange", h.httpFilters().get(0).name());
        assertEquals("istio.stats", h.httpFilters().get(5).name());
        IstioRecentShapesTest.listener(IstioRecentShapesTest.outboundHttp("{istio_headers: {}}]\n"
                + "            additional_labels: [service.istio.io/workload-name"));
    }

    @Test
    void aRetryOnResetBeforeRequestAndRetryRemoteLocalitiesLoad() throws Exception {
        // a VirtualService's retryOn passes through (reset-before-request: Envoy 1.31 on), retryRemoteLocalities is
        // the previous_priorities retry priority with update frequency 2
        var config = IstioRecentShapesTest.routes("""
                - name: default
                  match: {prefix: /}
                  route:
                    cluster: outbound|9080||reviews.default.svc.cluster.local
                    retry_policy:
                      retry_on: reset-before-request,connect-failure
                      num_retries: 2
                      retry_priority:
                        name: envoy.retry_priorities.previous_priorities
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig
                          update_frequency: 2
                """);
        RetryPolicy retry = assertInstanceOf(RouteAction.class,
                config.virtualHosts().get(0).routes().get(0).action()).retryPolicy();
        assertEquals(Set.of("reset-before-request", "connect-failure"), retry.retryOn());
    }

    @Test
    void dynamicDnsServiceEntriesAndTunnelsAreRefusedByName() {
        // a wildcard ServiceEntry with resolution DYNAMIC_DNS: a dynamic forward proxy cluster and HTTP filter, which
        // Inmesh does not implement (it resolves no host per request)
        String m = refusal(() -> IstioTrafficPolicyShapesTest.cluster("""
                name: outbound|80||*.example.com
                connect_timeout: 10s
                lb_policy: CLUSTER_PROVIDED
                cluster_type:
                  name: envoy.clusters.dynamic_forward_proxy
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig
                    dns_cache_config: {name: "*.example.com_dfp_dns_cache", dns_lookup_family: V4_ONLY}
                """));
        assertTrue(m.contains("cluster_type"), m);
        m = refusal(() -> IstioRecentShapesTest.listener(IstioRecentShapesTest.outboundHttp("{istio_headers: {}}")
                .replace("- name: envoy.filters.http.grpc_stats", "- name: envoy.filters.http.dynamic_forward_proxy\n"
                        + "        typed_config:\n"
                        + "          \"@type\": type.googleapis.com/envoy.extensions.filters.http.dynamic_forward_proxy.v3"
                        + ".FilterConfig\n"
                        + "          dns_cache_config: {name: \"*.example.com_dfp_dns_cache\", dns_lookup_family: V4_ONLY}\n"
                        + "      - name: envoy.filters.http.grpc_stats")));
        assertTrue(m.contains("envoy.filters.http.dynamic_forward_proxy"), m);
        // a DestinationRule's trafficPolicy.tunnel: the tcp_proxy's CONNECT tunnel
        m = refusal(() -> IstioRecentShapesTest.listener(IstioRecentShapesTest.virtualOutbound("")
                .replace("cluster: PassthroughCluster", "cluster: PassthroughCluster\n"
                        + "      tunneling_config: {hostname: \"%DOWNSTREAM_LOCAL_ADDRESS%\"}")));
        assertTrue(m.contains("tunneling_config"), m);
    }

    @Test
    void aTypedLoadBalancingPolicyLoadsAsItsEnumPolicy() throws Exception {
        // a cluster whose policy is in load_balancing_policy (the typed round robin, least request or random one)
        var c = IstioTrafficPolicyShapesTest.cluster("""
                name: outbound|9080||reviews.default.svc.cluster.local
                type: EDS
                eds_cluster_config: {eds_config: {ads: {}, resource_api_version: V3}}
                lb_policy: LOAD_BALANCING_POLICY_CONFIG
                load_balancing_policy:
                  policies:
                  - typed_extension_config:
                      name: envoy.load_balancing_policies.round_robin
                      typed_config: {"@type": type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin}
                """);
        assertEquals(dev.inmesh.api.config.cluster.LbPolicy.ROUND_ROBIN, c.lbPolicy());
    }
}
