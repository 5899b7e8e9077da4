package dev.inmesh.runtime.xds;

import dev.inmesh.api.config.listener.Tracing;
import io.envoyproxy.envoy.config.core.v3.GrpcService;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.config.core.v3.HttpService;
import io.envoyproxy.envoy.config.trace.v3.OpenTelemetryConfig;
import io.envoyproxy.envoy.config.trace.v3.ZipkinConfig;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
import io.envoyproxy.envoy.type.tracing.v3.CustomTag;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The HTTP connection manager's {@code tracing}, as istiod writes it: the sampling percentages, the custom tags
 * (literal, environment, request header, and request metadata ones, as Istio's dry-run policy tags are; a metadata
 * tag of another kind, route, cluster or host, is refused by its path) and the provider. The Zipkin
 * tracer ({@code envoy.tracers.zipkin}) with {@code HTTP_JSON} reports and the OpenTelemetry tracer
 * ({@code envoy.tracers.opentelemetry}, with istiod's {@code grpc_service.envoy_grpc} or {@code http_service}) are
 * applied; Zipkin's {@code HTTP_PROTO} and other providers (Datadog, SkyWalking, ...) are accepted and do nothing (no
 * spans, no trace headers), and what Envoy refuses (an unset or gRPC collector version, no collector cluster or
 * endpoint, an OpenTelemetry tracer with two exporters) is refused, as is what Inmesh does not implement (an
 * OpenTelemetry {@code sampler} or {@code resource_detectors}, a {@code google_grpc} exporter).
 */
final class TracingParser {
    /** The Zipkin tracer's config type. */
    static final String ZIPKIN_TYPE = "envoy.config.trace.v3.ZipkinConfig";
    /** The OpenTelemetry tracer's config type. */
    static final String OPENTELEMETRY_TYPE = "envoy.config.trace.v3.OpenTelemetryConfig";

    private TracingParser() {}

    static Tracing parse(HttpConnectionManager.Tracing t) {
        // verbose only adds the stream's timing events as span logs: accepted, not applied
        Fields.onlyKnown(t, Set.of("client_sampling", "random_sampling", "overall_sampling", "max_path_tag_length",
                "custom_tags", "provider", "spawn_upstream_span"), Set.of("verbose"));
        if (t.hasSpawnUpstreamSpan() && t.getSpawnUpstreamSpan().getValue()) {
            throw new FieldError("spawn_upstream_span", "true is not supported by Inmesh (expected: false: one "
                    + "span per request, as a sidecar's)");
        }
        List<Tracing.CustomTag> tags = new ArrayList<>();
        for (int i = 0; i < t.getCustomTagsCount(); i++) {
            int n = i;
            tags.add(Fields.at("custom_tags[" + i + "]", () -> customTag(t.getCustomTags(n))));
        }
        Tracing.Provider tracer = t.hasProvider() ? Fields.at("provider", () -> provider(t.getProvider())) : null;
        String provider = !t.hasProvider() ? "" : t.getProvider().getName().isEmpty()
                ? CoreParsers.configType(t.getProvider().getTypedConfig()) : t.getProvider().getName();
        return Fields.record("", () -> new Tracing(
                t.hasClientSampling() ? t.getClientSampling().getValue() : 100,
                t.hasRandomSampling() ? t.getRandomSampling().getValue() : 100,
                t.hasOverallSampling() ? t.getOverallSampling().getValue() : 100,
                t.hasMaxPathTagLength() ? t.getMaxPathTagLength().getValue() : Tracing.DEFAULT_MAX_PATH_TAG_LENGTH,
                tags, provider, tracer));
    }

    private static Tracing.CustomTag customTag(CustomTag c) {
        if (c.getTag().isEmpty()) {
            throw new FieldError("tag", "\"\" (expected: a name)");
        }
        return switch (c.getTypeCase()) {
            case LITERAL -> new Tracing.CustomTag(c.getTag(), Tracing.CustomTag.Kind.LITERAL,
                    c.getLiteral().getValue(), null);
            case ENVIRONMENT -> new Tracing.CustomTag(c.getTag(), Tracing.CustomTag.Kind.ENVIRONMENT,
                    c.getEnvironment().getName(), c.getEnvironment().getDefaultValue());
            case REQUEST_HEADER -> new Tracing.CustomTag(c.getTag(), Tracing.CustomTag.Kind.REQUEST_HEADER,
                    c.getRequestHeader().getName(), c.getRequestHeader().getDefaultValue());
            case METADATA -> Fields.at("metadata", () -> metadataTag(c));
            default -> throw new FieldError("type", "none (expected: literal, environment, request_header or "
                    + "metadata)");
        };
    }

    /**
     * A tag from the request's dynamic metadata ({@code kind: {request: {}}}), as Istio writes its
     * {@code istio.authorization.dry_run.*} tags; the key's filter and path are kept as one name.
     */
    private static Tracing.CustomTag metadataTag(CustomTag c) {
        var m = c.getMetadata();
        if (!m.getKind().hasRequest()) {
            throw new FieldError("kind", m.getKind().getKindCase() + " metadata is not supported by Inmesh "
                    + "(expected: request)");
        }
        StringBuilder key = new StringBuilder(m.getMetadataKey().getKey());
        for (var segment : m.getMetadataKey().getPathList()) {
            key.append('.').append(segment.getKey());
        }
        return new Tracing.CustomTag(c.getTag(), Tracing.CustomTag.Kind.REQUEST_METADATA, key.toString(),
                m.getDefaultValue());
    }

    /**
     * The bootstrap's {@code tracing} ({@code envoy.config.trace.v3.Tracing}, as Istio's agent writes it for
     * meshConfig's {@code defaultConfig.tracing.zipkin}): its {@code http} provider, which reports the spans of the
     * connection managers whose {@code tracing} names none; null for none, or one Inmesh does not report to.
     */
    static Tracing.Provider bootstrap(io.envoyproxy.envoy.config.trace.v3.Tracing t) {
        Fields.onlyKnown(t, Set.of("http"), Set.of());
        return t.hasHttp() ? Fields.at("http", () -> provider(t.getHttp())) : null;
    }

    /** The tracer of a provider, or null for a provider Inmesh accepts and does not apply. */
    private static Tracing.Provider provider(io.envoyproxy.envoy.config.trace.v3.Tracing.Http p) {
        String type = p.hasTypedConfig() ? CoreParsers.configType(p.getTypedConfig()) : "";
        if (type.equals(OPENTELEMETRY_TYPE)
                || type.isEmpty() && p.getName().equals("envoy.tracers.opentelemetry")) {
            if (!p.hasTypedConfig()) {
                throw new FieldError("typed_config", "none (expected: an OpenTelemetryConfig with its exporter)");
            }
            OpenTelemetryConfig o = Fields.at("typed_config", () -> RouteConfigurationParser.unpack(
                    p.getTypedConfig(), OpenTelemetryConfig.class, "@type"));
            return Fields.at("typed_config", () -> openTelemetry(o));
        }
        boolean zipkin = type.equals(ZIPKIN_TYPE) || type.isEmpty() && p.getName().equals("envoy.tracers.zipkin");
        if (!zipkin) {
            // Datadog, Lightstep, SkyWalking, ...: accepted, no spans
            return unapplied(p.getName() + (type.isEmpty() ? "" : " (" + type + ")"));
        }
        if (!p.hasTypedConfig()) {
            throw new FieldError("typed_config", "none (expected: a ZipkinConfig with its collector)");
        }
        ZipkinConfig z = Fields.at("typed_config", () -> RouteConfigurationParser.unpack(p.getTypedConfig(),
                ZipkinConfig.class, "@type"));
        return Fields.at("typed_config", () -> zipkin(z));
    }

    private static final java.util.logging.Logger LOG = java.util.logging.Logger.getLogger(
            TracingParser.class.getName());
    /** The tracers {@link #unapplied} has warned of. */
    private static final Set<String> WARNED = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /**
     * No tracer, for a provider Inmesh accepts and does not apply: the first time in this JVM that a configuration
     * names {@code tracer}, a warning says so, so that a mesh that stopped tracing is not left to find out by the
     * spans it misses (later configurations, re-read or pushed, name it without one).
     */
    private static <T> T unapplied(String tracer) {
        if (WARNED.add(tracer)) {
            LOG.warning("tracing provider " + tracer + " is accepted and not applied by Inmesh: no spans are "
                    + "reported and no trace headers added (Inmesh traces with envoy.tracers.zipkin's HTTP_JSON "
                    + "and envoy.tracers.opentelemetry)");
        }
        return null;
    }

    private static Tracing.Zipkin zipkin(ZipkinConfig z) {
        Fields.onlyKnown(z, Set.of("collector_cluster", "collector_endpoint", "trace_id_128bit", "shared_span_context",
                "collector_endpoint_version", "collector_hostname", "split_spans_for_request"), Set.of());
        if (z.getSplitSpansForRequest()) {
            throw new FieldError("split_spans_for_request", "true is not supported by Inmesh (expected: false)");
        }
        if (z.getCollectorCluster().isEmpty()) {
            throw new FieldError("collector_cluster", "\"\" (expected: the collector's cluster)");
        }
        if (z.getCollectorEndpoint().isEmpty()) {
            throw new FieldError("collector_endpoint", "\"\" (expected: the collector's path, such as "
                    + "/api/v2/spans)");
        }
        switch (z.getCollectorEndpointVersion()) {
            case HTTP_JSON -> { }
            case HTTP_PROTO -> {
                return unapplied("envoy.tracers.zipkin with collector_endpoint_version HTTP_PROTO");
            }
            default -> throw new FieldError("collector_endpoint_version", z.getCollectorEndpointVersion()
                    + " (expected: HTTP_JSON, or HTTP_PROTO)");
        }
        return new Tracing.Zipkin(z.getCollectorCluster(), z.getCollectorEndpoint(), z.getCollectorHostname(),
                z.getTraceId128Bit(), !z.hasSharedSpanContext() || z.getSharedSpanContext().getValue());
    }

    /**
     * The OpenTelemetry tracer as istiod writes it ({@code pilot/pkg/networking/core/tracing.go}, {@code otelConfig}):
     * {@code service_name} and an exporter, {@code grpc_service} with {@code envoy_grpc} (istiod's default) or
     * {@code http_service}; both are refused, as Envoy refuses them, and neither is a tracer that exports nowhere, as
     * Envoy's (its field's documentation: left empty to disable reporting). A {@code sampler} (istiod's Dynatrace one)
     * and {@code resource_detectors} are not implemented, and refused.
     */
    private static Tracing.OpenTelemetry openTelemetry(OpenTelemetryConfig o) {
        Fields.onlyKnown(o, Set.of("grpc_service", "http_service", "service_name"), Set.of());
        if (o.hasGrpcService() && o.hasHttpService()) {
            throw new FieldError("grpc_service", "set with http_service (expected: at most one of grpc_service and "
                    + "http_service)");
        }
        Tracing.OpenTelemetry.Exporter exporter = o.hasGrpcService()
                ? Fields.at("grpc_service", () -> grpc(o.getGrpcService()))
                : o.hasHttpService() ? Fields.at("http_service", () -> http(o.getHttpService())) : null;
        return new Tracing.OpenTelemetry(o.getServiceName(), exporter);
    }

    private static Tracing.OpenTelemetry.Grpc grpc(GrpcService g) {
        Fields.onlyKnown(g, Set.of("envoy_grpc", "timeout", "initial_metadata"), Set.of());
        if (!g.hasEnvoyGrpc()) {
            throw new FieldError("envoy_grpc", "none (expected: envoy_grpc, the collector's cluster; google_grpc is "
                    + "not supported by Inmesh)");
        }
        GrpcService.EnvoyGrpc e = g.getEnvoyGrpc();
        Fields.at("envoy_grpc", () -> {
            Fields.onlyKnown(e, Set.of("cluster_name", "authority"), Set.of());
            return null;
        });
        return Fields.record("", () -> new Tracing.OpenTelemetry.Grpc(e.getClusterName(), e.getAuthority(),
                Fields.durationOrNull(g.hasTimeout(), g.getTimeout()),
                Fields.at("initial_metadata", () -> headers(g.getInitialMetadataList()))));
    }

    /**
     * OTLP/HTTP: istiod's {@code http_uri.uri} is the collector's host name joined with the provider's path, with no
     * scheme ({@code opentelemetry-collector.observability.svc.cluster.local/v1/traces}); a scheme, when there is one,
     * is dropped, as Envoy takes only the host and path of the URI.
     */
    private static Tracing.OpenTelemetry.Http http(HttpService h) {
        Fields.onlyKnown(h, Set.of("http_uri", "request_headers_to_add"), Set.of());
        var u = h.getHttpUri();
        Fields.at("http_uri", () -> {
            Fields.onlyKnown(u, Set.of("uri", "cluster", "timeout"), Set.of());
            return null;
        });
        String uri = u.getUri();
        int scheme = uri.indexOf("://");
        String rest = scheme >= 0 ? uri.substring(scheme + 3) : uri;
        int slash = rest.indexOf('/');
        String host = slash >= 0 ? rest.substring(0, slash) : rest;
        String path = slash >= 0 ? rest.substring(slash) : "/";
        // every append action adds the header to an export, which has none of its own
        Map<String, String> headers = new LinkedHashMap<>();
        for (int i = 0; i < h.getRequestHeadersToAddCount(); i++) {
            var option = h.getRequestHeadersToAdd(i);
            Fields.at("request_headers_to_add[" + i + "]", () -> {
                Fields.onlyKnown(option, Set.of("header", "append_action"), Set.of());
                return headers.put(Fields.at("header", () -> header(option.getHeader())),
                        option.getHeader().getValue());
            });
        }
        return Fields.record("", () -> new Tracing.OpenTelemetry.Http(u.getCluster(), host, path,
                Fields.durationOrNull(u.hasTimeout(), u.getTimeout()), headers));
    }

    private static Map<String, String> headers(List<HeaderValue> values) {
        Map<String, String> out = new LinkedHashMap<>();
        for (int i = 0; i < values.size(); i++) {
            HeaderValue v = values.get(i);
            out.put(Fields.at("[" + i + "]", () -> header(v)), v.getValue());
        }
        return out;
    }

    /** A header's name, lower-cased as it goes on the wire; refused when empty or given as raw bytes only. */
    private static String header(HeaderValue v) {
        Fields.onlyKnown(v, Set.of("key", "value"), Set.of());
        if (v.getKey().isEmpty()) {
            throw new FieldError("key", "\"\" (expected: a header name)");
        }
        return v.getKey().toLowerCase(java.util.Locale.ROOT);
    }
}
