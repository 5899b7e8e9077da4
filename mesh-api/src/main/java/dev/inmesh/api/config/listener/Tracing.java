package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * The {@code tracing} of Envoy's HTTP connection manager, as istiod writes it when a mesh turns tracing on: which
 * requests are traced (its three sampling percentages, applied to the request's {@code x-request-id} as Envoy does),
 * the tags every span gets besides Envoy's own, and where the spans go.
 *
 * @param clientSampling the percentage of requests with {@code x-client-trace-id} that are traced
 *                       ({@code client_sampling}, 0 to 100; Envoy's default 100)
 * @param randomSampling the percentage of other requests that are traced ({@code random_sampling}; default 100)
 * @param overallSampling the percentage of requests that may be traced at all, after the other two decided
 *                        ({@code overall_sampling}; default 100)
 * @param maxPathTagLength the longest {@code http.url} tag, longer paths cut ({@code max_path_tag_length}; Envoy's
 *                         default 256)
 * @param customTags the connection manager's {@code custom_tags}
 * @param provider the name of its {@code provider} ({@code envoy.tracers.zipkin}, {@code envoy.tracers.opentelemetry},
 *                 ...); empty when it names none, as istiod's legacy meshConfig tracing writes it: the bootstrap's
 *                 tracer ({@code tracing.http}) then reports its spans, as Envoy's does
 * @param tracer the tracer its spans are reported to: Zipkin ({@code envoy.tracers.zipkin}, B3 headers) or
 *               OpenTelemetry ({@code envoy.tracers.opentelemetry}, W3C trace context); null when it names no provider,
 *               or one Inmesh does not report to: its requests are then neither traced nor given trace headers, unless
 *               it names none and the bootstrap has a tracer
 */
public record Tracing(double clientSampling, double randomSampling, double overallSampling, int maxPathTagLength,
                      List<CustomTag> customTags, String provider, Provider tracer) {
    /** Envoy's default {@code max_path_tag_length}. */
    public static final int DEFAULT_MAX_PATH_TAG_LENGTH = 256;

    public Tracing {
        Checks.check(clientSampling >= 0 && clientSampling <= 100, "client_sampling.value", clientSampling,
                "0 to 100");
        Checks.check(randomSampling >= 0 && randomSampling <= 100, "random_sampling.value", randomSampling,
                "0 to 100");
        Checks.check(overallSampling >= 0 && overallSampling <= 100, "overall_sampling.value", overallSampling,
                "0 to 100");
        Checks.check(maxPathTagLength >= 0, "max_path_tag_length", maxPathTagLength, ">= 0");
        customTags = Checks.list(customTags, "custom_tags");
        provider = provider == null ? "" : provider;
    }

    /**
     * The tracer that reports this connection manager's spans: its own provider's, else, when it names none, the
     * bootstrap's {@code bootstrapTracer} (null: none); null when neither reports.
     */
    public Provider tracer(Provider bootstrapTracer) {
        return tracer != null ? tracer : provider.isEmpty() ? bootstrapTracer : null;
    }

    /** The Zipkin tracer of this connection manager's own provider, or null when its tracer is none or another. */
    public Zipkin zipkin() {
        return tracer instanceof Zipkin z ? z : null;
    }

    /** The OpenTelemetry tracer of this connection manager's own provider, or null when it is none or another. */
    public OpenTelemetry openTelemetry() {
        return tracer instanceof OpenTelemetry o ? o : null;
    }

    /**
     * A tracer Inmesh reports spans to: its {@code provider}'s {@code typed_config}. Each propagates the trace in its
     * own headers (B3 for Zipkin, W3C {@code traceparent} for OpenTelemetry) and reports in its own format.
     */
    public sealed interface Provider permits Zipkin, OpenTelemetry {}

    /**
     * One of the connection manager's {@code custom_tags}: a tag whose value is a literal, an environment variable of
     * the proxy's process, a request header, or the request's dynamic metadata.
     *
     * @param tag the tag's name
     * @param kind where its value comes from
     * @param name the literal value, the environment variable's name, the header's name, or the metadata key's
     *             filter, by kind
     * @param defaultValue the value when the variable, header or metadata is absent; null or empty for no tag then
     */
    public record CustomTag(String tag, Kind kind, String name, String defaultValue) {
        /**
         * Where a custom tag's value comes from ({@code literal}, {@code environment}, {@code request_header}, or
         * {@code metadata} of kind {@code request}: the request's dynamic metadata, as Istio's
         * {@code istio.authorization.dry_run.*} tags read the RBAC filters' shadow results).
         */
        public enum Kind { LITERAL, ENVIRONMENT, REQUEST_HEADER, REQUEST_METADATA }

        public CustomTag {
            Checks.nonEmpty(tag, "tag");
            Checks.nonNull(kind, "type");
            name = name == null ? "" : name;
            defaultValue = defaultValue == null ? "" : defaultValue;
        }
    }

    /**
     * Envoy's Zipkin tracer ({@code type.googleapis.com/envoy.config.trace.v3.ZipkinConfig}): spans go as Zipkin v2
     * JSON, in a {@code POST} to {@code collectorEndpoint} of a host of {@code collectorCluster}.
     *
     * @param collectorCluster the cluster of the collector ({@code collector_cluster})
     * @param collectorEndpoint the collector's path ({@code collector_endpoint}, Istio's {@code /api/v2/spans})
     * @param collectorHostname the {@code host} of the reports ({@code collector_hostname}; empty: the cluster's name)
     * @param traceId128Bit whether a trace this proxy starts has a 128-bit id ({@code trace_id_128bit})
     * @param sharedSpanContext whether a server span takes its caller's span id ({@code shared_span_context}, Envoy's
     *                          default true; Istio writes false)
     */
    public record Zipkin(String collectorCluster, String collectorEndpoint, String collectorHostname,
                         boolean traceId128Bit, boolean sharedSpanContext) implements Provider {
        public Zipkin {
            Checks.nonEmpty(collectorCluster, "collector_cluster");
            Checks.nonEmpty(collectorEndpoint, "collector_endpoint");
            collectorHostname = collectorHostname == null || collectorHostname.isEmpty() ? collectorCluster
                    : collectorHostname;
        }
    }

    /**
     * Envoy's OpenTelemetry tracer ({@code type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig}), as istiod
     * writes it for meshConfig's {@code extensionProviders[].opentelemetry}: W3C trace context ({@code traceparent},
     * {@code tracestate}) and spans exported as OTLP to a collector's cluster.
     *
     * @param serviceName the {@code service.name} resource attribute of the spans ({@code service_name}; istiod writes
     *                    the node's cluster, {@code reviews.default}); empty: Envoy's {@code unknown_service:envoy}
     * @param exporter how the spans reach the collector ({@code grpc_service} or {@code http_service}); null when the
     *                 tracer names neither, which Envoy accepts: its requests are traced and pass their
     *                 {@code traceparent} on, and their spans are exported nowhere
     */
    public record OpenTelemetry(String serviceName, Exporter exporter) implements Provider {
        /** Envoy's {@code service.name} when {@code service_name} is empty. */
        public static final String DEFAULT_SERVICE_NAME = "unknown_service:envoy";

        public OpenTelemetry {
            serviceName = serviceName == null || serviceName.isEmpty() ? DEFAULT_SERVICE_NAME : serviceName;
        }

        /** OTLP over gRPC or over HTTP. */
        public sealed interface Exporter permits Grpc, Http {}

        /**
         * OTLP over gRPC ({@code grpc_service.envoy_grpc}, what istiod writes by default): one unary call of
         * {@code opentelemetry.proto.collector.trace.v1.TraceService/Export} per batch, over HTTP/2.
         *
         * @param clusterName the collector's cluster ({@code envoy_grpc.cluster_name})
         * @param authority the {@code :authority} of the calls ({@code envoy_grpc.authority}; empty: the cluster's
         *                  name, as Envoy)
         * @param timeout the call's timeout ({@code grpc_service.timeout}); null: none given
         * @param initialMetadata headers every call carries ({@code grpc_service.initial_metadata})
         */
        public record Grpc(String clusterName, String authority, Duration timeout, Map<String, String> initialMetadata)
                implements Exporter {
            public Grpc {
                Checks.nonEmpty(clusterName, "envoy_grpc.cluster_name");
                authority = authority == null || authority.isEmpty() ? clusterName : authority;
                initialMetadata = Checks.map(initialMetadata);
            }
        }

        /**
         * OTLP over HTTP ({@code http_service}): a protobuf {@code POST} of each batch to {@code path} of a host of
         * {@code cluster}, with {@code host} as its {@code host}.
         *
         * @param cluster the collector's cluster ({@code http_uri.cluster})
         * @param host the host part of {@code http_uri.uri} (istiod writes the collector's host name and path, with no
         *             scheme)
         * @param path its path ({@code /v1/traces})
         * @param timeout the request's timeout ({@code http_uri.timeout}); null: none given
         * @param headers headers every request carries ({@code request_headers_to_add})
         */
        public record Http(String cluster, String host, String path, Duration timeout, Map<String, String> headers)
                implements Exporter {
            public Http {
                Checks.nonEmpty(cluster, "http_uri.cluster");
                Checks.nonEmpty(host, "http_uri.uri");
                Checks.check(path != null && path.startsWith("/"), "http_uri.uri", path, "a path starting with /");
                headers = Checks.map(headers);
            }
        }
    }
}
