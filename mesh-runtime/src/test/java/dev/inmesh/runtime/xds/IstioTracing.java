package dev.inmesh.runtime.xds;

/**
 * The connection manager's {@code tracing} as istiod writes it for a mesh with a Zipkin extension provider (a
 * Telemetry resource, or meshConfig's {@code extensionProviders}): client and overall sampling at 100%, the random
 * sampling of the mesh, Istio's service tags (literals) and dry-run policy tags (request metadata), and the Zipkin
 * tracer with a v2 JSON collector, 128-bit trace ids and no shared span context.
 */
public final class IstioTracing {
    private IstioTracing() {}

    /** The {@code tracing} field, at the indentation of a connection manager's fields, reporting to {@code cluster}. */
    public static String tracing(double randomSampling, String cluster) {
        return """
                tracing:
                  client_sampling: {value: 100}
                  random_sampling: {value: %s}
                  overall_sampling: {value: 100}
                  custom_tags:
                  - tag: istio.authorization.dry_run.allow_policy.name
                    metadata:
                      kind: {request: {}}
                      metadata_key:
                        key: envoy.filters.http.rbac
                        path: [{key: istio_dry_run_allow_shadow_effective_policy_id}]
                  - tag: istio.canonical_revision
                    literal: {value: v1}
                  - tag: istio.canonical_service
                    literal: {value: reviews}
                  - tag: istio.cluster_id
                    literal: {value: Kubernetes}
                  - tag: istio.mesh_id
                    literal: {value: cluster.local}
                  - tag: istio.namespace
                    literal: {value: default}
                  provider:
                    name: envoy.tracers.zipkin
                    typed_config:
                      "@type": type.googleapis.com/envoy.config.trace.v3.ZipkinConfig
                      collector_cluster: "%s"
                      collector_endpoint: /api/v2/spans
                      trace_id_128bit: true
                      shared_span_context: false
                      collector_endpoint_version: HTTP_JSON
                      collector_hostname: zipkin.istio-system.svc.cluster.local
                """.formatted(randomSampling, cluster);
    }

    /** The collector's cluster as istiod names it. */
    public static final String CLUSTER = "outbound|9411||zipkin.istio-system.svc.cluster.local";

    /**
     * The bootstrap's {@code tracing} that Istio's agent writes for meshConfig's
     * {@code defaultConfig.tracing.zipkin.address}: the Zipkin tracer with its {@code zipkin} cluster.
     */
    public static final String BOOTSTRAP = """
            tracing:
              http:
                name: envoy.tracers.zipkin
                typed_config:
                  "@type": type.googleapis.com/envoy.config.trace.v3.ZipkinConfig
                  collector_cluster: zipkin
                  collector_endpoint: /api/v2/spans
                  collector_endpoint_version: HTTP_JSON
                  trace_id_128bit: true
                  shared_span_context: false
            """;

    /** A STATIC cluster {@link #CLUSTER} at {@code 127.0.0.1:port}, as a YAML list item. */
    public static String collectorCluster(int port) {
        return staticCluster(CLUSTER, port);
    }

    /** A STATIC cluster at {@code 127.0.0.1:port}, as a YAML list item. */
    public static String staticCluster(String name, int port) {
        return """
                - name: "%s"
                  type: STATIC
                  connect_timeout: 1s
                  load_assignment:
                    cluster_name: "%s"
                    endpoints:
                    - lb_endpoints:
                      - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                """.formatted(name, name, port);
    }

    /**
     * A listener (a YAML list item) at {@code ip:port} whose connection manager (its stat prefix the listener's
     * name) has {@code tracing} (YAML at the connection manager's indentation) and one route, for any host, to
     * {@code cluster} with the decorator {@code operation}, as istiod writes its routes.
     */
    public static String listener(String name, String ip, int port, String direction, String tracing,
                                  String operation, String cluster) {
        return """
                - name: %s
                  address: {socket_address: {address: %s, port_value: %d}}
                  traffic_direction: %s
                  filter_chains:
                  - filters:
                    - name: envoy.filters.network.http_connection_manager
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                        stat_prefix: %s
                """.formatted(name, ip, port, direction, name) + tracing.stripTrailing().indent(8) + """
                        route_config:
                          name: %s
                          validate_clusters: false
                          virtual_hosts:
                          - name: all
                            domains: ["*"]
                            routes:
                            - match: {prefix: /}
                              decorator: {operation: "%s"}
                              route: {cluster: "%s", timeout: 0s}
                        http_filters:
                        - name: envoy.filters.http.router
                          typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                """.formatted(name, operation, cluster);
    }

    /** The OpenTelemetry collector's gRPC (OTLP) cluster as istiod names it. */
    public static final String OTEL_CLUSTER = "outbound|4317||opentelemetry-collector.observability.svc.cluster.local";
    /** The collector's host name, which istiod writes as the gRPC authority and the OTLP/HTTP URI's host. */
    public static final String OTEL_HOST = "opentelemetry-collector.observability.svc.cluster.local";

    /**
     * The connection manager's {@code tracing}, as JSON, that istiod (1.2x,
     * {@code pilot/pkg/networking/core/tracing.go}: {@code configureFromProviderConfig}, {@code otelConfig}, {@code buildHCMTracing}, {@code configureSampling},
     * {@code configureCustomTags}) writes for a Telemetry resource naming meshConfig's
     * {@code extensionProviders[].opentelemetry} provider with the port of {@code cluster}: 100 % client and overall
     * sampling, the provider's random sampling, Istio's service and dry-run policy tags sorted by name, and the
     * OpenTelemetry tracer with the node's cluster as {@code service_name} and {@code exporter} as its
     * {@code grpc_service} or {@code http_service} (JSON fields, see {@link #OTLP_GRPC} and {@link #otlpHttp}; blank:
     * none).
     */
    public static String openTelemetry(double randomSampling, String exporter) {
        return """
                tracing: {
                  "client_sampling": {"value": 100},
                  "random_sampling": {"value": %s},
                  "overall_sampling": {"value": 100},
                  "custom_tags": [
                    {"tag": "istio.authorization.dry_run.allow_policy.name",
                     "metadata": {"kind": {"request": {}}, "metadata_key": {"key": "envoy.filters.http.rbac",
                       "path": [{"key": "istio_dry_run_allow_shadow_effective_policy_id"}]}}},
                    {"tag": "istio.authorization.dry_run.allow_policy.result",
                     "metadata": {"kind": {"request": {}}, "metadata_key": {"key": "envoy.filters.http.rbac",
                       "path": [{"key": "istio_dry_run_allow_shadow_engine_result"}]}}},
                    {"tag": "istio.canonical_revision", "literal": {"value": "v1"}},
                    {"tag": "istio.canonical_service", "literal": {"value": "reviews"}},
                    {"tag": "istio.cluster_id", "literal": {"value": "Kubernetes"}},
                    {"tag": "istio.mesh_id", "literal": {"value": "cluster.local"}},
                    {"tag": "istio.namespace", "literal": {"value": "default"}}
                  ],
                  "provider": {
                    "name": "envoy.tracers.opentelemetry",
                    "typed_config": {
                      "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                      %s"service_name": "reviews.default"
                    }
                  }
                }
                """.formatted(randomSampling, exporter.isBlank() ? "" : exporter.strip() + ",\n");
    }

    /** istiod's default exporter, OTLP over gRPC: {@code envoy_grpc} with the cluster and the host as authority. */
    public static final String OTLP_GRPC = """
            "grpc_service": {"envoy_grpc": {"cluster_name": "%s", "authority": "%s"}}
            """.formatted(OTEL_CLUSTER, OTEL_HOST);

    /**
     * The exporter istiod writes for a provider with {@code http: {path: /v1/traces, timeout: 10s, headers: [...]}}:
     * the host name joined with the path, with no scheme, the cluster of the provider's port ({@code cluster}), the
     * timeout, and the headers to overwrite.
     */
    public static String otlpHttp(String cluster) {
        return """
                "http_service": {
                  "http_uri": {"uri": "%s/v1/traces", "cluster": "%s", "timeout": "10s"},
                  "request_headers_to_add": [{"append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                    "header": {"key": "X-Tenant", "value": "bookinfo"}}]
                }
                """.formatted(OTEL_HOST, cluster);
    }

    /**
     * A STATIC cluster at {@code 127.0.0.1:port} that speaks HTTP/2, as istiod writes the cluster of a collector port
     * named {@code grpc-*}, as a YAML list item.
     */
    public static String grpcCluster(String name, int port) {
        return staticCluster(name, port) + """
                  typed_extension_protocol_options:
                    envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                      "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                      explicit_http_config: {http2_protocol_options: {}}
                """;
    }
}
