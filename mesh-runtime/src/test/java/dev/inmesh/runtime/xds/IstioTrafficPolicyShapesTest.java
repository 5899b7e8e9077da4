package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.LbConfig;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.core.HeaderValueOption;
import dev.inmesh.api.config.core.TcpKeepalive;
import dev.inmesh.api.config.route.ClusterSpecifier;
import dev.inmesh.api.config.route.DirectResponseAction;
import dev.inmesh.api.config.route.HashPolicy;
import dev.inmesh.api.config.route.PathMatcher;
import dev.inmesh.api.config.route.RedirectAction;
import dev.inmesh.api.config.route.Route;
import dev.inmesh.api.config.route.RouteAction;
import dev.inmesh.api.config.route.RouteConfiguration;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * The Envoy fields istiod writes for each group of DestinationRule and VirtualService settings (read from istiod's
 * cluster builder, traffic policy, route and retry translation), in that shape, through Inmesh's parsers: what loads
 * and what it loads as, and what is still refused by name (so that a refusal of an ordinary Istio setting is a
 * decision written down here, not an accident). docs/configuration.md and docs/comparison.md describe the behaviour.
 */
class IstioTrafficPolicyShapesTest {
    private static final String SDS_GRPC = """
            sds_config:
              api_config_source:
                api_type: GRPC
                set_node_on_first_message_only: true
                transport_api_version: V3
                grpc_services: [{envoy_grpc: {cluster_name: sds-grpc}}]
              resource_api_version: V3
            """;

    static Cluster cluster(String yaml) throws Exception {
        return new ClusterParser().parse(EnvoyJson.toMessage(EnvoyJson.tree(yaml),
                io.envoyproxy.envoy.config.cluster.v3.Cluster.class));
    }

    private static RouteConfiguration routes(String yaml) throws Exception {
        return new RouteConfigurationParser().parse(EnvoyJson.toMessage(EnvoyJson.tree(yaml),
                io.envoyproxy.envoy.config.route.v3.RouteConfiguration.class));
    }

    /** istiod's outbound EDS cluster of a service, with the traffic policy's fields after it. */
    static String eds(String trafficPolicy) {
        return """
                name: outbound|9080||reviews.default.svc.cluster.local
                type: EDS
                eds_cluster_config:
                  eds_config: {ads: {}, initial_fetch_timeout: 0s, resource_api_version: V3}
                  service_name: outbound|9080||reviews.default.svc.cluster.local
                connect_timeout: 10s
                """ + trafficPolicy;
    }

    /** istiod's cluster with a TLS transport socket, its {@code UpstreamTlsContext}'s fields given. */
    private static String tlsCluster(String contextFields) {
        return eds("""
                lb_policy: LEAST_REQUEST
                transport_socket:
                  name: envoy.transport_sockets.tls
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
                """ + contextFields.indent(4));
    }

    /** istiod's outbound route table of port 9080 with one VirtualService route, its fields given. */
    private static Route route(String routeFields) throws Exception {
        RouteConfiguration rc = routes("""
                name: "9080"
                validate_clusters: false
                max_direct_response_body_size_bytes: 1048576
                virtual_hosts:
                - name: reviews.default.svc.cluster.local:9080
                  domains: [reviews.default.svc.cluster.local, reviews]
                  include_request_attempt_count: true
                  routes:
                  - name: r.m
                    decorator: {operation: "reviews.default.svc.cluster.local:9080/*"}
                    metadata: {filter_metadata: {istio: {config: /apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews}}}
                """ + routeFields.indent(4));
        return rc.virtualHosts().get(0).routes().get(0);
    }

    private static String refusal(Executable parse) {
        return assertThrows(InvalidResourceException.class, parse).getMessage();
    }

    @Test
    void loadBalancerSimpleAndWarmupAreTheLbPolicyAndItsSlowStartConfig() throws Exception {
        Cluster lr = cluster(eds("""
                lb_policy: LEAST_REQUEST
                least_request_lb_config:
                  slow_start_config:
                    slow_start_window: 60s
                    aggression: {default_value: 1.5, runtime_key: "("}
                    min_weight_percent: {value: 20}
                """));
        var slow = ((LbConfig.LeastRequest) lr.lbConfig()).slowStart();
        assertEquals(new LbConfig.SlowStart(Duration.ofSeconds(60), 1.5, 20), slow);
        Cluster rr = cluster(eds("""
                lb_policy: ROUND_ROBIN
                round_robin_lb_config:
                  slow_start_config: {slow_start_window: 30s}
                """));
        assertEquals(Duration.ofSeconds(30), ((LbConfig.RoundRobin) rr.lbConfig()).slowStart().window());
        assertEquals(LbPolicy.RANDOM, cluster(eds("lb_policy: RANDOM\n")).lbPolicy());
        // PASSTHROUGH: istiod turns the EDS cluster into ORIGINAL_DST and leaves its eds_cluster_config
        Cluster passthrough = cluster(eds("lb_policy: CLUSTER_PROVIDED\n").replace("type: EDS", "type: ORIGINAL_DST"));
        assertEquals(DiscoveryType.ORIGINAL_DST, passthrough.type());
        assertEquals(LbPolicy.CLUSTER_PROVIDED, passthrough.lbPolicy());
    }

    @Test
    void consistentHashIsARingHashOrMaglevClusterAndARouteHashPolicy() throws Exception {
        assertEquals(new LbConfig.RingHash(2048, 8_388_608), cluster(eds("""
                lb_policy: RING_HASH
                ring_hash_lb_config: {minimum_ring_size: 2048}
                """)).lbConfig());
        assertEquals(new LbConfig.Maglev(131), cluster(eds("""
                lb_policy: MAGLEV
                maglev_lb_config: {table_size: 131}
                """)).lbConfig());
        Route r = route("""
                match: {prefix: /}
                route:
                  cluster: outbound|9080||reviews.default.svc.cluster.local
                  timeout: 0s
                  max_grpc_timeout: 0s
                  hash_policy:
                  - {header: {header_name: x-user}}
                  - {cookie: {name: session, ttl: 60s, path: /}}
                  - {connection_properties: {source_ip: true}}
                  - {query_parameter: {name: user}}
                """);
        List<HashPolicy> hash = ((RouteAction) r.action()).hashPolicies();
        assertInstanceOf(HashPolicy.Header.class, hash.get(0));
        assertEquals(Duration.ofSeconds(60), ((HashPolicy.Cookie) hash.get(1)).ttl());
        assertInstanceOf(HashPolicy.SourceIp.class, hash.get(2));
        assertEquals("user", ((HashPolicy.QueryParameter) hash.get(3)).name());
    }

    @Test
    void localityAndOutlierDetectionAreCommonLbConfigAndTheClustersOutlierDetection() throws Exception {
        Cluster c = cluster(eds("""
                lb_policy: LEAST_REQUEST
                outlier_detection:
                  consecutive_5xx: 7
                  enforcing_consecutive_5xx: 100
                  consecutive_gateway_failure: 3
                  enforcing_consecutive_gateway_failure: 100
                  interval: 5s
                  base_ejection_time: 20s
                  max_ejection_percent: 50
                  enforcing_success_rate: 0
                  split_external_local_origin_errors: true
                  consecutive_local_origin_failure: 4
                  enforcing_consecutive_local_origin_failure: 100
                  enforcing_local_origin_success_rate: 0
                common_lb_config:
                  healthy_panic_threshold: {value: 0}
                  locality_weighted_lb_config: {}
                """));
        var o = c.outlierDetection();
        assertEquals(7, o.consecutive5xx());
        assertEquals(3, o.consecutiveGatewayFailure());
        assertEquals(100, o.enforcingConsecutiveGatewayFailure());
        assertEquals(Duration.ofSeconds(5), o.interval());
        assertEquals(Duration.ofSeconds(20), o.baseEjectionTime());
        assertEquals(50, o.maxEjectionPercent());
        assertEquals(0, o.enforcingSuccessRate());
        assertTrue(o.splitExternalLocalOriginErrors());
        assertEquals(4, o.consecutiveLocalOriginFailure());
        assertEquals(0, c.commonLbConfig().healthyPanicThreshold(), "minHealthPercent 0: no panic mode");
        assertTrue(c.commonLbConfig().localityWeighted());
    }

    @Test
    void localityDistributeAndFailoverArePrioritiesAndWeightsOfTheServicesEndpoints() throws Exception {
        // distribute: weights per locality, the localities it leaves out emptied; failover: priorities 0..N
        var cla = new ClusterLoadAssignmentParser().parse(EnvoyJson.toMessage(EnvoyJson.tree("""
                cluster_name: outbound|9080||reviews.default.svc.cluster.local
                endpoints:
                - locality: {region: us-east, zone: us-east-1a}
                  load_balancing_weight: 80
                  priority: 0
                  lb_endpoints:
                  - endpoint: {address: {socket_address: {address: 10.0.0.1, port_value: 9080}}}
                    health_status: HEALTHY
                    load_balancing_weight: 1
                    metadata:
                      filter_metadata:
                        istio: {workload: reviews-v1;default;reviews;v1;Kubernetes}
                        envoy.transport_socket_match: {tlsMode: istio}
                - locality: {region: us-west, zone: us-west-1a}
                  load_balancing_weight: 20
                  priority: 1
                  lb_endpoints:
                  - endpoint: {address: {socket_address: {address: 10.0.1.1, port_value: 9080}}}
                    health_status: HEALTHY
                    load_balancing_weight: 1
                - locality: {region: eu-west}
                  priority: 2
                """), io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment.class));
        var groups = cla.endpoints();
        assertEquals(List.of(80, 20), List.of(groups.get(0).loadBalancingWeight(),
                groups.get(1).loadBalancingWeight()));
        assertEquals(List.of(0, 1, 2), groups.stream().map(g -> g.priority()).toList());
        assertTrue(groups.get(2).lbEndpoints().isEmpty());
    }

    @Test
    void connectionPoolIsCircuitBreakersKeepaliveAndHttpProtocolOptions() throws Exception {
        Cluster c = cluster(eds("""
                lb_policy: LEAST_REQUEST
                circuit_breakers:
                  thresholds:
                  - max_connections: 100
                    max_pending_requests: 10
                    max_requests: 1000
                    max_retries: 5
                    track_remaining: true
                    retry_budget: {budget_percent: {value: 25}, min_retry_concurrency: 4}
                upstream_connection_options:
                  tcp_keepalive: {keepalive_probes: 3, keepalive_time: 600, keepalive_interval: 75}
                typed_extension_protocol_options:
                  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                    common_http_protocol_options:
                      idle_timeout: 300s
                      max_connection_duration: 600s
                      max_requests_per_connection: 10
                    explicit_http_config:
                      http2_protocol_options: {max_concurrent_streams: 50}
                """));
        var t = c.circuitBreakers().thresholds().get(0);
        assertEquals(List.of(100L, 10L, 1000L, 5L), List.of(t.maxConnections(), t.maxPendingRequests(),
                t.maxRequests(), t.maxRetries()));
        assertEquals(4, t.retryBudget().minRetryConcurrency());
        assertEquals(new TcpKeepalive(3, 600, 75), c.tcpKeepalive());
        assertEquals(Duration.ofSeconds(300), c.commonHttpProtocolOptions().idleTimeout());
        assertEquals(Duration.ofSeconds(600), c.commonHttpProtocolOptions().maxConnectionDuration());
        assertEquals(10, c.commonHttpProtocolOptions().maxRequestsPerConnection());
        assertTrue(c.http2(), "h2UpgradePolicy UPGRADE (or an HTTP/2 port): explicit HTTP/2");
        assertEquals(50, c.http2ProtocolOptions().maxConcurrentStreams());
        Cluster client = cluster(eds("""
                lb_policy: LEAST_REQUEST
                typed_extension_protocol_options:
                  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                    use_downstream_protocol_config: {http_protocol_options: {}, http2_protocol_options: {}}
                """));
        assertTrue(client.useDownstreamProtocol(), "useClientProtocol");
    }

    @Test
    void simpleTlsWithTheSystemRootsSniAndSubjectAltNamesLoads() throws Exception {
        Cluster c = cluster(tlsCluster("""
                sni: reviews.example.com
                common_tls_context:
                  tls_params: {tls_minimum_protocol_version: TLSv1_2, tls_maximum_protocol_version: TLSv1_3}
                  combined_validation_context:
                    default_validation_context:
                      match_subject_alt_names: [{exact: reviews.example.com}]
                    validation_context_sds_secret_config:
                      name: file-root:system
                """ + SDS_GRPC.indent(6)));
        assertEquals("reviews.example.com", c.tls().sni());
        assertTrue(c.tls().systemRootCerts());
        // the legacy match_subject_alt_names matches a SAN of any type
        assertFalse(c.tls().subjectAltNames().isEmpty());
        assertTrue(c.tls().subjectAltNames().stream().allMatch(m -> m.matcher().equals(
                new dev.inmesh.api.config.core.StringMatcher.Exact("reviews.example.com", false))));
    }

    @Test
    void simpleTlsWithoutSniTakesItFromTheRequestAndInsecureSkipVerifyChecksNothing() throws Exception {
        Cluster auto = cluster(tlsCluster("""
                common_tls_context:
                  combined_validation_context:
                    default_validation_context: {}
                    validation_context_sds_secret_config:
                      name: file-root:system
                """ + SDS_GRPC.indent(6)) + """
                typed_extension_protocol_options:
                  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                    upstream_http_protocol_options: {auto_sni: true, auto_san_validation: true}
                    explicit_http_config: {http_protocol_options: {}}
                """);
        assertTrue(auto.tls().autoSni());
        assertTrue(auto.tls().autoSanValidation());
        Cluster insecure = cluster(tlsCluster("""
                sni: reviews.example.com
                common_tls_context:
                  validation_context: {}
                """));
        assertNull(insecure.tls().trustedCa());
        assertFalse(insecure.tls().systemRootCerts());
        assertTrue(insecure.tls().subjectAltNames().isEmpty());
    }

    @Test
    void stillRefusedCredentialNameSecretsAndProxyProtocolNameTheirField() throws Exception {
        // tls.credentialName (a DestinationRule with a workloadSelector): a Kubernetes secret over istiod's SDS
        String sds = refusal(() -> cluster(tlsCluster("""
                common_tls_context:
                  tls_certificate_sds_secret_configs:
                  - name: kubernetes://client-credential
                    sds_config: {ads: {}, resource_api_version: V3}
                """)));
        assertTrue(sds.contains("tls_certificate_sds_secret_configs[0].name"), sds);
        // trafficPolicy.proxyProtocol: the upstream PROXY protocol transport socket around raw_buffer
        String proxy = refusal(() -> cluster(eds("""
                lb_policy: LEAST_REQUEST
                transport_socket:
                  name: envoy.transport_sockets.upstream_proxy_protocol
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport
                    config: {version: V2}
                    transport_socket:
                      name: envoy.transport_sockets.raw_buffer
                      typed_config: {"@type": type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer}
                """)));
        assertTrue(proxy.contains("transport_socket.name"), proxy);
    }

    @Test
    void anHttpRoutesMatchHeadersRewriteTimeoutRetriesAndMirrorLoad() throws Exception {
        Route r = route("""
                match:
                  prefix: /api
                  case_sensitive: false
                  headers:
                  - {name: end-user, string_match: {exact: jason}}
                  - {name: x-absent, present_match: true, invert_match: true}
                  - {name: x-not, string_match: {prefix: foo}, invert_match: true, treat_missing_header_as_empty: true}
                  - {name: ":method", string_match: {exact: GET}}
                  - {name: ":authority", string_match: {safe_regex: {regex: "rev.*"}}}
                  - {name: ":scheme", string_match: {exact: http}}
                  query_parameters:
                  - {name: v, string_match: {exact: "1"}}
                  - {name: q, present_match: true}
                stat_prefix: my-prefix
                request_headers_to_add:
                - {header: {key: x-a, value: b}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
                - {header: {key: x-c, value: d}, append_action: APPEND_IF_EXISTS_OR_ADD}
                request_headers_to_remove: [x-r]
                response_headers_to_add:
                - {header: {key: x-e, value: f}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
                response_headers_to_remove: [x-s]
                route:
                  cluster: outbound|9080|v2|reviews.default.svc.cluster.local
                  timeout: 5s
                  max_grpc_timeout: 5s
                  prefix_rewrite: /v2
                  host_rewrite_literal: reviews.internal
                  retry_policy:
                    retry_on: gateway-error,connect-failure,refused-stream,retriable-status-codes
                    num_retries: 3
                    per_try_timeout: 2s
                    retriable_status_codes: [503]
                    retry_host_predicate:
                    - name: envoy.retry_host_predicates.previous_hosts
                      typed_config: {"@type": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate}
                    host_selection_retry_max_attempts: 5
                    retry_priority:
                      name: envoy.retry_priorities.previous_priorities
                      typed_config: {"@type": type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig, update_frequency: 2}
                    retry_back_off: {base_interval: 0.05s}
                  request_mirror_policies:
                  - cluster: outbound|9080|v3|reviews.default.svc.cluster.local
                    runtime_fraction: {default_value: {numerator: 500000, denominator: MILLION}}
                    trace_sampled: false
                """);
        assertFalse(r.match().caseSensitive(), "ignoreUriCase");
        assertEquals(6, r.match().headers().size());
        assertEquals(2, r.match().queryParameters().size());
        assertEquals(HeaderValueOption.AppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
                r.headers().requestHeadersToAdd().get(0).appendAction());
        assertEquals(List.of("x-s"), r.headers().responseHeadersToRemove());
        RouteAction a = (RouteAction) r.action();
        assertEquals(Duration.ofSeconds(5), a.timeout());
        assertEquals("/v2", a.prefixRewrite());
        assertEquals("reviews.internal", a.hostRewriteLiteral());
        var retry = a.retryPolicy();
        assertEquals(3, retry.numRetries());
        assertEquals(Set.of(503), retry.retriableStatusCodes());
        assertEquals(2, retry.previousPrioritiesUpdateFrequency(), "retryRemoteLocalities");
        assertEquals(Duration.ofMillis(50), retry.backOffBase());
        assertEquals(1, a.requestMirrorPolicies().size());
    }

    @Test
    void uriRegexRewriteRedirectAndDirectResponseLoad() throws Exception {
        RouteAction regex = (RouteAction) route("""
                match: {safe_regex: {regex: "/a/.*"}}
                route:
                  cluster: c
                  timeout: 0s
                  max_grpc_timeout: 0s
                  regex_rewrite: {pattern: {regex: "^/a/(.*)"}, substitution: "/b/\\\\1"}
                """).action();
        assertEquals("^/a/(.*)", regex.regexRewrite().pattern());
        RedirectAction redirect = (RedirectAction) route("""
                match: {path: /old}
                redirect: {host_redirect: new.example, path_redirect: /new, scheme_redirect: https, port_redirect: 8443, response_code: PERMANENT_REDIRECT}
                """).action();
        assertEquals(List.of("https", "new.example", 8443, "/new", 308), List.of(redirect.scheme(), redirect.host(),
                redirect.port(), redirect.path(), redirect.responseCode()));
        DirectResponseAction direct = (DirectResponseAction) route("""
                match: {prefix: /}
                direct_response: {status: 418, body: {inline_string: teapot}}
                """).action();
        assertEquals(418, direct.status());
        assertEquals("teapot", direct.body());
    }

    @Test
    void weightedDestinationsKeepTheirOwnHeaderRulesAndHost() throws Exception {
        RouteAction a = (RouteAction) route("""
                match: {prefix: /}
                route:
                  timeout: 0s
                  max_grpc_timeout: 0s
                  weighted_clusters:
                    clusters:
                    - name: outbound|9080|v1|reviews.default.svc.cluster.local
                      weight: 90
                      request_headers_to_add: [{header: {key: x-v, value: "1"}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}]
                      host_rewrite_literal: v1.reviews
                    - {name: outbound|9080|v2|reviews.default.svc.cluster.local, weight: 10}
                """).action();
        var clusters = ((ClusterSpecifier.Weighted) a.cluster()).clusters();
        assertEquals("v1.reviews", clusters.get(0).hostRewriteLiteral());
        assertEquals(1, clusters.get(0).headers().requestHeadersToAdd().size());
        assertNull(clusters.get(1).hostRewriteLiteral());
    }

    @Test
    void aJwtClaimHeaderMatchIsADynamicMetadataConditionOnTheJwtFiltersPayload() throws Exception {
        Route r = route("""
                match:
                  prefix: /
                  dynamic_metadata:
                  - filter: envoy.filters.http.jwt_authn
                    path: [{key: payload}, {key: group}]
                    value: {or_match: {value_matchers: [{string_match: {exact: admin}}, {list_match: {one_of: {string_match: {exact: admin}}}}]}}
                    invert: true
                route: {cluster: c, timeout: 0s, max_grpc_timeout: 0s}
                """);
        var m = r.match().dynamicMetadata().get(0);
        assertEquals(List.of("payload", "group"), m.path());
        assertTrue(m.invert(), "withoutHeaders");
    }

    @Test
    void faultAndCorsAreTheRoutesPerFilterConfigs() throws Exception {
        Route r = route("""
                match: {prefix: /}
                route: {cluster: c, timeout: 0s, max_grpc_timeout: 0s}
                typed_per_filter_config:
                  envoy.filters.http.fault:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                    delay: {fixed_delay: 2s, percentage: {numerator: 100000, denominator: MILLION}}
                    abort: {grpc_status: 14, percentage: {numerator: 10000, denominator: MILLION}}
                  envoy.filters.http.cors:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy
                    allow_origin_string_match: [{exact: "https://a.example"}]
                    allow_methods: GET,POST
                    allow_headers: x-a
                    expose_headers: x-b
                    max_age: "3600"
                    allow_credentials: true
                    filter_enabled: {default_value: {numerator: 100}}
                    forward_not_matching_preflights: false
                """);
        assertEquals(Duration.ofSeconds(2), r.fault().delay());
        assertEquals(14, r.fault().abort().grpcStatus());
        assertEquals(Boolean.FALSE, r.cors().forwardNotMatchingPreflights(), "unmatchedPreflights: IGNORE");
        assertEquals("3600", r.cors().maxAge());
        assertInstanceOf(PathMatcher.Prefix.class, r.match().path());
    }
}
