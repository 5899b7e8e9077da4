package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;
import java.util.List;

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
 * @param zipkin the Zipkin tracer its spans are reported to ({@code provider} {@code envoy.tracers.zipkin}); null when
 *               it names no provider, or one Inmesh does not report to: its requests are then neither traced nor given
 *               B3 headers, unless it names none and the bootstrap has a Zipkin tracer
 */
public record Tracing(double clientSampling, double randomSampling, double overallSampling, int maxPathTagLength,
                      List<CustomTag> customTags, String provider, Zipkin zipkin) {
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
     * The Zipkin tracer that reports this connection manager's spans: its own provider's, else, when it names none,
     * the bootstrap's {@code bootstrapTracer} (null: none); null when neither reports.
     */
    public Zipkin tracer(Zipkin bootstrapTracer) {
        return zipkin != null ? zipkin : provider.isEmpty() ? bootstrapTracer : null;
    }

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
                         boolean traceId128Bit, boolean sharedSpanContext) {
        public Zipkin {
            Checks.nonEmpty(collectorCluster, "collector_cluster");
            Checks.nonEmpty(collectorEndpoint, "collector_endpoint");
            collectorHostname = collectorHostname == null || collectorHostname.isEmpty() ? collectorCluster
                    : collectorHostname;
        }
    }
}
