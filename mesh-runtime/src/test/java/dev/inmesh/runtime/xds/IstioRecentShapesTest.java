package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.DnsLookupFamily;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.api.config.core.HeaderValueOption;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.api.config.listener.TcpProxy;
import dev.inmesh.api.config.route.ClusterSpecifier;
import dev.inmesh.api.config.route.PathMatcher;
import dev.inmesh.api.config.route.RedirectAction;
import dev.inmesh.api.config.route.RegexRewrite;
import dev.inmesh.api.config.route.Route;
import dev.inmesh.api.config.route.RouteAction;
import dev.inmesh.api.config.route.RouteConfiguration;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * What istiod 1.22 to 1.28 writes into a sidecar's listeners, routes, clusters and endpoints that the Istio 1.20
 * fixtures do not show (read from istiod's listener, route and cluster builders, its well-known filters and its
 * feature flags' defaults), in that shape, through Inmesh's parsers: above all what it writes by default, where a
 * refusal would NACK every workload. What still refuses names its field here, so that the refusal is a decision
 * written down, not an accident. {@link IstioTrafficPolicyShapesTest} and {@link IstioSecurityTelemetryShapesTest}
 * hold the shapes of the Istio APIs; docs/configuration.md describes the behaviour.
 */
class IstioRecentShapesTest {

    static Listener listener(String yaml) throws Exception {
        return new ListenerParser().parse(EnvoyJson.toMessage(EnvoyJson.tree(yaml),
                io.envoyproxy.envoy.config.listener.v3.Listener.class));
    }

    private static String refusal(Executable parse) {
        return assertThrows(InvalidResourceException.class, parse).getMessage();
    }

    /** istiod's {@code istio.stats} network filter, before the terminal filter of every sidecar chain. */
    private static final String STATS = """
            - name: istio.stats
              typed_config: {"@type": type.googleapis.com/stats.PluginConfig}
            """;

    /** istiod's TCP metadata exchange filter, first on the inbound plaintext TCP chains. */
    private static final String TCP_MX = """
            - name: istio.metadata_exchange
              typed_config:
                "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                type_url: type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange
                value: {protocol: istio-peer-exchange, enable_discovery: true}
            """;

    /**
     * A filter chain {@code name} matching {@code match}: the filters {@code before}, then a tcp_proxy to
     * {@code cluster}.
     */
    static String tcpChain(String name, String match, String before, String cluster) {
        return ("- name: " + name + "\n" + (match.isEmpty() ? "" : "  filter_chain_match: " + match + "\n")
                + "  filters:\n" + before.indent(2) + """
                  - name: envoy.filters.network.tcp_proxy
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                      stat_prefix: %s
                      cluster: %s
                """.formatted(cluster, cluster));
    }

    /** istiod's {@code virtualOutbound} (the 15001 capture), with the listener fields {@code fields} after its own. */
    static String virtualOutbound(String fields) {
        return """
                name: virtualOutbound
                address: {socket_address: {address: 0.0.0.0, port_value: 15001}}
                use_original_dst: true
                traffic_direction: OUTBOUND
                filter_chains:
                """ + tcpChain("virtualOutbound-blackhole", "{destination_port: 15001}", STATS, "BlackHoleCluster")
                + tcpChain("virtualOutbound-catchall-tcp", "", STATS, "PassthroughCluster") + fields;
    }

    /**
     * istiod's {@code virtualInbound} (the 15006 capture) with its passthrough chains, as 1.22 and later write it
     * (one {@code InboundPassthroughCluster} for both address families), the listener fields {@code fields} after its
     * own.
     */
    static String virtualInbound(String fields) {
        return """
                name: virtualInbound
                address: {socket_address: {address: 0.0.0.0, port_value: 15006}}
                traffic_direction: INBOUND
                continue_on_listener_filters_timeout: true
                listener_filters_timeout: 0s
                listener_filters:
                - name: envoy.filters.listener.original_dst
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst}
                - name: envoy.filters.listener.tls_inspector
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector
                    initial_read_buffer_size: 512
                - name: envoy.filters.listener.http_inspector
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector}
                filter_chains:
                """ + tcpChain("virtualInbound-blackhole", "{destination_port: 15006}", "", "BlackHoleCluster")
                + tcpChain("virtualInbound", "{transport_protocol: raw_buffer}", TCP_MX + STATS,
                        "InboundPassthroughCluster") + fields;
    }

    @Test
    void oneConnectionPerSocketEventWhichIstiod128WritesOnTheListenersThatBindLoads() throws Exception {
        // MAX_CONNECTIONS_PER_SOCKET_EVENT_LOOP (default 1 since 1.28): on virtualOutbound, virtualInbound and every
        // listener that binds a port. Refusing it NACKed the LDS of every 1.28 sidecar
        Listener out = listener(virtualOutbound("max_connections_to_accept_per_socket_event: 1\n"));
        assertEquals(1, out.maxConnectionsToAcceptPerSocketEvent());
        Listener in = listener(virtualInbound("max_connections_to_accept_per_socket_event: 1\n"));
        assertEquals(1, in.maxConnectionsToAcceptPerSocketEvent());
        // set to 0 (istiod then writes none), every pending connection, as Envoy
        assertNull(listener(virtualOutbound("")).maxConnectionsToAcceptPerSocketEvent());
        // a uint32 past an int's range is as good as no bound
        assertEquals(Integer.MAX_VALUE, listener(virtualOutbound(
                "max_connections_to_accept_per_socket_event: 4294967295\n")).maxConnectionsToAcceptPerSocketEvent());
        String m = refusal(() -> listener(virtualOutbound("max_connections_to_accept_per_socket_event: 0\n")));
        assertTrue(m.contains("max_connections_to_accept_per_socket_event") && m.contains("expected: > 0"), m);
    }

    /**
     * istiod's outbound HTTP chain on port 9080 as 1.23 to 1.28 write it by default: the connection manager's fields
     * (path normalization BASE, websocket, no stream idle timeout, RDS over ADS, request id extension,
     * {@code proxy_100_continue}) and its filters (the native peer metadata filter that replaced the WASM metadata
     * exchange, gRPC stats, ALPN override, fault, CORS, the native {@code istio.stats}, router), with the peer
     * metadata's {@code upstream_propagation} given.
     */
    static String outboundHttp(String propagation) {
        return """
                name: 0.0.0.0_9080
                address: {socket_address: {address: 0.0.0.0, port_value: 9080}}
                bind_to_port: false
                traffic_direction: OUTBOUND
                max_connections_to_accept_per_socket_event: 1
                default_filter_chain:
                  name: PassthroughFilterChain
                  filters:
                  - name: envoy.filters.network.tcp_proxy
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                      stat_prefix: PassthroughCluster
                      cluster: PassthroughCluster
                filter_chains:
                - name: 0.0.0.0_9080
                  filter_chain_match: {transport_protocol: raw_buffer, application_protocols: [http/1.1, h2c]}
                  filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: outbound_0.0.0.0_9080
                      codec_type: AUTO
                      normalize_path: true
                      path_with_escaped_slashes_action: KEEP_UNCHANGED
                      use_remote_address: false
                      upgrade_configs: [{upgrade_type: websocket}]
                      stream_idle_timeout: 0s
                      rds:
                        config_source: {ads: {}, initial_fetch_timeout: 0s, resource_api_version: V3}
                        route_config_name: "9080"
                      request_id_extension:
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig, use_request_id_for_trace_sampling: true}
                      proxy_100_continue: true
                      http_filters:
                      - name: istio.metadata_exchange
                        typed_config:
                          "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                          type_url: type.googleapis.com/io.istio.http.peer_metadata.Config
                          value:
                            upstream_discovery: [{istio_headers: {}}, {workload_discovery: {}}]
                            upstream_propagation: [%s]
                      - name: envoy.filters.http.grpc_stats
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig
                          emit_filter_state: true
                          stats_for_all_methods: false
                      - name: istio.alpn
                        typed_config:
                          "@type": type.googleapis.com/istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig
                          alpn_override:
                          - {alpn_override: [istio-http/1.0, istio, http/1.0]}
                          - {upstream_protocol: HTTP11, alpn_override: [istio-http/1.1, istio, http/1.1]}
                          - {upstream_protocol: HTTP2, alpn_override: [istio-h2, istio, h2]}
                      - name: envoy.filters.http.fault
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault}
                      - name: envoy.filters.http.cors
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}
                      - name: istio.stats
                        typed_config:
                          "@type": type.googleapis.com/stats.PluginConfig
                          reporter: CLIENT
                      - name: envoy.filters.http.router
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                """.formatted(propagation);
    }

    @Test
    void theDefaultOutboundHttpListenerOfA128SidecarLoadsWithItsNativePeerMetadataAndStatsFilters() throws Exception {
        Listener l = listener(outboundHttp("{istio_headers: {}}"));
        assertFalse(l.bindToPort());
        HttpConnectionManager h = assertInstanceOf(HttpConnectionManager.class, l.filterChains().get(0).filter());
        assertEquals("9080", h.rdsRouteConfigName());
        assertEquals(List.of("istio.metadata_exchange", "envoy.filters.http.grpc_stats", "istio.alpn",
                        "envoy.filters.http.fault", "envoy.filters.http.cors", "istio.stats", "envoy.filters.http.router"),
                h.httpFilters().stream().map(f -> f.name()).toList());
        assertFalse(h.peerMetadataSkipExternal(), "the headers go to every cluster (mode ALWAYS, the default)");
        // proxyHeaders.metadataExchangeHeaders.mode IN_MESH: the peer metadata headers are not sent to clusters
        // outside the mesh (RouterPeerMetadataTest)
        HttpConnectionManager inMesh = assertInstanceOf(HttpConnectionManager.class,
                listener(outboundHttp("{istio_headers: {skip_external_clusters: true}}")).filterChains().get(0)
                        .filter());
        assertTrue(inMesh.peerMetadataSkipExternal());
    }

    /** istiod's cluster {@code name} of discovery {@code type}, with the fields {@code fields} after its own. */
    private static Cluster cluster(String name, String type, String fields) throws Exception {
        return IstioTrafficPolicyShapesTest.cluster("name: " + name + "\ntype: " + type + "\nconnect_timeout: 10s\n"
                + "alt_stat_name: " + name + ";\n" + fields);
    }

    /** The circuit breakers istiod writes on every cluster without a DestinationRule's connection pool. */
    private static final String UNLIMITED = """
            circuit_breakers:
              thresholds:
              - {max_connections: 4294967295, max_pending_requests: 4294967295, max_requests: 4294967295, max_retries: 4294967295, track_remaining: true}
            """;

    /** What istiod's passthrough clusters share: the original destination, and the caller's protocol upstream. */
    private static final String PASSTHROUGH = """
                lb_policy: CLUSTER_PROVIDED
                typed_extension_protocol_options:
                  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                    common_http_protocol_options: {idle_timeout: 300s}
                    use_downstream_protocol_config: {http_protocol_options: {}, http2_protocol_options: {}}
                """;

    @Test
    void thePassthroughBlackHoleAndSingleInboundPassthroughClustersOf122AndLaterLoad() throws Exception {
        Cluster passthrough = cluster("PassthroughCluster", "ORIGINAL_DST",
                PASSTHROUGH + "filters:\n" + TCP_MX + UNLIMITED);
        assertTrue(passthrough.useDownstreamProtocol());
        assertEquals(Duration.ofMinutes(5), passthrough.commonHttpProtocolOptions().idleTimeout());
        // one InboundPassthroughCluster (1.22 and later; InboundPassthroughClusterIpv4 and Ipv6 before), bound to
        // 127.0.0.6 so that iptables lets its connections through
        String inbound = PASSTHROUGH + """
                upstream_bind_config:
                  source_address: {address: 127.0.0.6, port_value: 0}
                """;
        Cluster in = cluster("InboundPassthroughCluster", "ORIGINAL_DST", inbound + UNLIMITED);
        assertEquals(new SocketAddress("127.0.0.6", 0), in.upstreamBindAddress());
        assertEquals(DiscoveryType.STATIC, cluster("BlackHoleCluster", "STATIC", "lb_policy: ROUND_ROBIN\n").type());
        // a dual-stack pod's (both families): ::6 for IPv6 destinations beside 127.0.0.6
        Cluster dual = cluster("InboundPassthroughCluster", "ORIGINAL_DST", inbound + """
                  extra_source_addresses:
                  - address: {address: "::6", port_value: 0}
                """ + UNLIMITED);
        assertEquals(new SocketAddress("::6", 0), dual.upstreamBindAddress("fd00:10:1::7"));
        assertEquals(new SocketAddress("127.0.0.6", 0), dual.upstreamBindAddress("10.1.0.7"));
        // Envoy's default local address selector takes one extra address, of the other IP version
        String m = refusal(() -> cluster("InboundPassthroughCluster", "ORIGINAL_DST", inbound + """
                  extra_source_addresses:
                  - address: {address: "127.0.0.7", port_value: 0}
                """ + UNLIMITED));
        assertTrue(m.contains("upstream_bind_config.extra_source_addresses"), m);
    }

    @Test
    void dualStackDnsClustersResolveBothFamiliesAndOutboundEdsClustersKeepTheirDefaults() throws Exception {
        // ISTIO_DUAL_STACK (beta in 1.28) on a pod with both families: dns_lookup_family ALL
        Cluster dns = cluster("outbound|443||api.example.com", "STRICT_DNS", """
                lb_policy: LEAST_REQUEST
                dns_lookup_family: ALL
                dns_refresh_rate: 60s
                respect_dns_ttl: true
                dns_jitter: 0.100s
                typed_dns_resolver_config:
                  name: envoy.network.dns_resolver.cares
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig, udp_max_queries: 100}
                common_lb_config: {}
                load_assignment:
                  cluster_name: outbound|443||api.example.com
                  endpoints:
                  - locality: {}
                    lb_endpoints:
                    - endpoint: {address: {socket_address: {address: api.example.com, port_value: 443}}}
                      load_balancing_weight: 1
                metadata:
                  filter_metadata:
                    istio: {services: [{host: api.example.com, name: api.example.com, namespace: default}], external: true}
                """ + UNLIMITED);
        assertEquals(DnsLookupFamily.ALL, dns.dnsLookupFamily());
        // the default outbound EDS cluster: least request, an empty common_lb_config, auto mTLS by host metadata
        Cluster eds = cluster("outbound|9080||reviews.default.svc.cluster.local", "EDS", """
                eds_cluster_config:
                  eds_config: {ads: {}, initial_fetch_timeout: 0s, resource_api_version: V3}
                  service_name: outbound|9080||reviews.default.svc.cluster.local
                lb_policy: LEAST_REQUEST
                common_lb_config: {}
                metadata:
                  filter_metadata:
                    istio:
                      services: [{host: reviews.default.svc.cluster.local, name: reviews, namespace: default}]
                      default_original_port: 9080
                transport_socket_matches:
                - name: tlsMode-disabled
                  match: {}
                  transport_socket: {name: envoy.transport_sockets.raw_buffer, typed_config: {"@type": type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer}}
                filters:
                """ + TCP_MX + UNLIMITED);
        assertEquals(LbPolicy.LEAST_REQUEST, eds.lbPolicy());
        assertEquals(1, eds.transportSocketMatches().size());
    }

    private static ClusterLoadAssignment endpoints(String lbEndpointFields) throws Exception {
        return new ClusterLoadAssignmentParser().parse(EnvoyJson.toMessage(EnvoyJson.tree("""
                cluster_name: outbound|9080||reviews.default.svc.cluster.local
                endpoints:
                - locality: {region: us-east1, zone: us-east1-b}
                  lb_endpoints:
                  - endpoint:
                      address: {socket_address: {address: 10.1.0.7, port_value: 9080}}
                """ + lbEndpointFields.indent(4) + """
                    health_status: HEALTHY
                    load_balancing_weight: 1
                    metadata:
                      filter_metadata:
                        envoy.transport_socket_match: {tlsMode: istio}
                        istio: {workload: "reviews-v1;default;reviews;v1;Kubernetes"}
                  load_balancing_weight: 1
                """), io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment.class));
    }

    @Test
    void endpointsLoadWithTheirWorkloadMetadataAndADualStackPodsSecondAddress() throws Exception {
        var host = endpoints("").endpoints().get(0).lbEndpoints().get(0);
        assertEquals(new SocketAddress("10.1.0.7", 9080), host.address());
        assertEquals(List.of(), host.additionalAddresses());
        assertEquals("istio", host.metadata().filterMetadata().get("envoy.transport_socket_match").get("tlsMode"));
        // ISTIO_DUAL_STACK: a pod with both families gets its IPv6 address as an additional address (Envoy then
        // races the two, happy eyeballs)
        var dual = endpoints("""
                  additional_addresses:
                  - address: {socket_address: {address: "fd00:10:1::7", port_value: 9080}}
                """).endpoints().get(0).lbEndpoints().get(0);
        assertEquals(new SocketAddress("10.1.0.7", 9080), dual.address(), "the host is still known by its own");
        assertEquals(List.of(new SocketAddress("fd00:10:1::7", 9080)), dual.additionalAddresses());
    }

    static RouteConfiguration routes(String routesYaml) throws Exception {
        return new RouteConfigurationParser().parse(EnvoyJson.toMessage(EnvoyJson.tree("""
                name: "9080"
                validate_clusters: false
                max_direct_response_body_size_bytes: 1048576
                ignore_port_in_host_matching: true
                virtual_hosts:
                - name: reviews.default.svc.cluster.local:9080
                  domains: [reviews.default.svc.cluster.local, reviews, reviews.default, "10.96.0.12"]
                  include_request_attempt_count: true
                  routes:
                """ + routesYaml.indent(2)), io.envoyproxy.envoy.config.route.v3.RouteConfiguration.class));
    }

    /**
     * An HTTPRoute attached to the reviews Service (GAMMA), as istiod translates it: a PathPrefix is a
     * {@code path_separated_prefix}, a ReplacePrefixMatch of "/" the regex rewrite that drops the prefix, the header
     * filters OVERWRITE (set) and APPEND (add) header options, a RequestMirror's percent a runtime fraction, the
     * retry's backoff the base interval, the timeouts {@code timeout} and {@code per_try_timeout}, and a backend that
     * does not resolve 500 ({@code cluster_not_found_response_code}).
     */
    @Test
    void aGammaHttpRouteLoadsWithItsPathSeparatedPrefixRewriteHeadersMirrorRetryAndTimeouts() throws Exception {
        Route r = routes("""
                - name: default.reviews.0
                  match: {path_separated_prefix: /v1}
                  metadata: {filter_metadata: {istio: {config: /apis/gateway.networking.k8s.io/v1/namespaces/default/http-route/reviews}}}
                  decorator: {operation: "reviews.default.svc.cluster.local:9080/v1*"}
                  request_headers_to_add:
                  - {header: {key: x-set, value: "1"}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
                  - {header: {key: x-add, value: "2"}, append_action: APPEND_IF_EXISTS_OR_ADD}
                  request_headers_to_remove: [x-drop]
                  response_headers_to_add:
                  - {header: {key: x-served-by, value: reviews}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
                  route:
                    cluster_not_found_response_code: INTERNAL_SERVER_ERROR
                    timeout: 10s
                    regex_rewrite: {pattern: {regex: "^/v1(/?)(.*)"}, substitution: '/\\2'}
                    weighted_clusters:
                      clusters:
                      - {name: "outbound|9080|v1|reviews.default.svc.cluster.local", weight: 90}
                      - {name: "outbound|9080|v2|reviews.default.svc.cluster.local", weight: 10}
                    request_mirror_policies:
                    - cluster: outbound|9080||reviews-shadow.default.svc.cluster.local
                      runtime_fraction: {default_value: {numerator: 250000, denominator: MILLION}}
                    retry_policy:
                      retry_on: connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes
                      num_retries: 3
                      per_try_timeout: 2s
                      retriable_status_codes: [500, 503]
                      retry_back_off: {base_interval: 0.100s}
                      retry_host_predicate:
                      - name: envoy.retry_host_predicates.previous_hosts
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate}
                      host_selection_retry_max_attempts: "5"
                    max_stream_duration: {max_stream_duration: 0s, grpc_timeout_header_max: 0s}
                """).virtualHosts().get(0).routes().get(0);
        assertEquals(new PathMatcher.PathSeparatedPrefix("/v1"), r.match().path());
        RouteAction a = assertInstanceOf(RouteAction.class, r.action());
        assertEquals(500, a.clusterNotFoundStatus());
        assertEquals(new RegexRewrite("^/v1(/?)(.*)", "/\\2"), a.regexRewrite());
        assertEquals(2, ((ClusterSpecifier.Weighted) a.cluster()).clusters().size());
        assertEquals(new FractionalPercent(250000, FractionalPercent.Denominator.MILLION),
                a.requestMirrorPolicies().get(0).runtimeFraction());
        assertEquals(Set.of(500, 503), a.retryPolicy().retriableStatusCodes());
        assertEquals(Duration.ofMillis(100), a.retryPolicy().backOffBase());
        assertEquals(Duration.ofSeconds(1), a.retryPolicy().backOffMax(), "unset: Envoy's ten times the base");
        assertEquals(Duration.ofSeconds(2), a.retryPolicy().perTryTimeout());
        assertEquals(List.of(HeaderValueOption.AppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
                        HeaderValueOption.AppendAction.APPEND_IF_EXISTS_OR_ADD),
                r.headers().requestHeadersToAdd().stream().map(HeaderValueOption::appendAction).toList());
    }

    /**
     * An HTTPRoute RequestRedirect: ReplacePrefixMatch is a {@code prefix_rewrite} (istiod's {@code %PREFIX()%}), no
     * port the request's port (here 9080, written out), a scheme change the scheme's default port.
     */
    @Test
    void aGammaRequestRedirectIsARedirectWithPrefixRewriteAndPort() throws Exception {
        Route r = routes("""
                - name: default.reviews.1
                  match: {path_separated_prefix: /old}
                  redirect: {prefix_rewrite: /new, port_redirect: 9080, response_code: FOUND}
                - name: default.reviews.2
                  match: {prefix: /}
                  redirect: {scheme_redirect: https, host_redirect: reviews.example.com}
                """).virtualHosts().get(0).routes().get(0);
        RedirectAction redirect = assertInstanceOf(RedirectAction.class, r.action());
        assertEquals("/new", redirect.prefixRewrite());
        assertEquals(9080, redirect.port());
        assertEquals(302, redirect.responseCode());
    }

    @Test
    void aDualStackPodsSecondListenerAddressLoadsAndItsSocketOptionsOverrideIsRefusedByName() throws Exception {
        // ISTIO_DUAL_STACK: virtualOutbound and virtualInbound also listen on "::" (additional_addresses)
        Listener l = listener(virtualOutbound("""
                additional_addresses:
                - address: {socket_address: {address: "::", port_value: 15001}}
                """));
        assertEquals(List.of(new SocketAddress("::", 15001)), l.additionalAddresses());
        assertEquals(List.of(new SocketAddress("0.0.0.0", 15001), new SocketAddress("::", 15001)), l.addresses());
        // an override of the listener's socket options for that socket is not implemented
        String m = refusal(() -> listener(virtualOutbound("""
                additional_addresses:
                - address: {socket_address: {address: "::", port_value: 15001}}
                  socket_options: {socket_options: [{level: 1, name: 9, int_value: 1}]}
                """)));
        assertTrue(m.contains("additional_addresses[0].socket_options"), m);
    }

    @Test
    void theListenersExactConnectionBalanceIsStillRefusedByName() {
        // ISTIO_META_INBOUND_LISTENER_EXACT_BALANCE / OUTBOUND_LISTENER_EXACT_BALANCE (off by default): Envoy then
        // hands each accepted connection to the worker with the fewest
        String m = refusal(() -> listener(virtualInbound("connection_balance_config: {exact_balance: {}}\n")));
        assertTrue(m.contains("connection_balance_config"), m);
    }

    @Test
    void aTcpServicesConsistentHashOnTheSourceIpIsTheTcpProxysSourceIpHashPolicy() throws Exception {
        // a DestinationRule's consistentHash.useSourceIp for a TCP port: the tcp_proxy's hash_policy
        String hashed = virtualOutbound("").replace("cluster: PassthroughCluster",
                "cluster: PassthroughCluster\n      hash_policy: [%s]");
        TcpProxy tcp = assertInstanceOf(TcpProxy.class, listener(hashed.formatted("{source_ip: {}}"))
                .filterChains().get(1).filter());
        assertTrue(tcp.hashSourceIp());
        assertFalse(((TcpProxy) listener(virtualOutbound("")).filterChains().get(1).filter()).hashSourceIp());
        String m = refusal(() -> listener(hashed.formatted("{filter_state: {key: k}}")));
        assertTrue(m.contains("hash_policy[0].filter_state"), m);
        m = refusal(() -> listener(hashed.formatted("{source_ip: {}}, {source_ip: {}}")));
        assertTrue(m.contains("hash_policy") && m.contains("at most 1"), m);
    }
}
