package dev.inmesh.runtime.xds;

import dev.inmesh.api.config.listener.Tracing;
import io.envoyproxy.envoy.config.trace.v3.ZipkinConfig;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
import io.envoyproxy.envoy.type.tracing.v3.CustomTag;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The HTTP connection manager's {@code tracing}, as istiod writes it: the sampling percentages, the custom tags
 * (literal, environment, request header, and request metadata ones, as Istio's dry-run policy tags are; a metadata
 * tag of another kind, route, cluster or host, is refused by its path) and the provider. The Zipkin
 * tracer ({@code envoy.tracers.zipkin}) with {@code HTTP_JSON} reports is applied; {@code HTTP_PROTO} and other
 * providers (OpenTelemetry, Datadog, ...) are accepted and do nothing (no spans, no B3 headers), and what Envoy
 * refuses (an unset or gRPC collector version, no collector cluster or endpoint) is refused.
 */
final class TracingParser {
    /** The Zipkin tracer's config type. */
    static final String ZIPKIN_TYPE = "envoy.config.trace.v3.ZipkinConfig";

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
        Tracing.Zipkin zipkin = t.hasProvider() ? Fields.at("provider", () -> provider(t.getProvider())) : null;
        String provider = !t.hasProvider() ? "" : t.getProvider().getName().isEmpty()
                ? CoreParsers.configType(t.getProvider().getTypedConfig()) : t.getProvider().getName();
        return Fields.record("", () -> new Tracing(
                t.hasClientSampling() ? t.getClientSampling().getValue() : 100,
                t.hasRandomSampling() ? t.getRandomSampling().getValue() : 100,
                t.hasOverallSampling() ? t.getOverallSampling().getValue() : 100,
                t.hasMaxPathTagLength() ? t.getMaxPathTagLength().getValue() : Tracing.DEFAULT_MAX_PATH_TAG_LENGTH,
                tags, provider, zipkin));
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
    static Tracing.Zipkin bootstrap(io.envoyproxy.envoy.config.trace.v3.Tracing t) {
        Fields.onlyKnown(t, Set.of("http"), Set.of());
        return t.hasHttp() ? Fields.at("http", () -> provider(t.getHttp())) : null;
    }

    /** The Zipkin tracer of a provider, or null for a provider Inmesh accepts and does not apply. */
    private static Tracing.Zipkin provider(io.envoyproxy.envoy.config.trace.v3.Tracing.Http p) {
        String type = p.hasTypedConfig() ? CoreParsers.configType(p.getTypedConfig()) : "";
        boolean zipkin = type.equals(ZIPKIN_TYPE) || type.isEmpty() && p.getName().equals("envoy.tracers.zipkin");
        if (!zipkin) {
            return null; // OpenTelemetry, Datadog, Lightstep, SkyWalking, ...: accepted, no spans
        }
        if (!p.hasTypedConfig()) {
            throw new FieldError("typed_config", "none (expected: a ZipkinConfig with its collector)");
        }
        ZipkinConfig z = Fields.at("typed_config", () -> RouteConfigurationParser.unpack(p.getTypedConfig(),
                ZipkinConfig.class, "@type"));
        return Fields.at("typed_config", () -> zipkin(z));
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
                return null; // accepted, not reported: documented
            }
            default -> throw new FieldError("collector_endpoint_version", z.getCollectorEndpointVersion()
                    + " (expected: HTTP_JSON, or HTTP_PROTO)");
        }
        return new Tracing.Zipkin(z.getCollectorCluster(), z.getCollectorEndpoint(), z.getCollectorHostname(),
                z.getTraceId128Bit(), !z.hasSharedSpanContext() || z.getSharedSpanContext().getValue());
    }
}
