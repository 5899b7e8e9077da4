package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.Tracing;
import dev.inmesh.runtime.tracing.Tracer;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The connection manager's {@code tracing} as istiod writes it (sampling, Istio's custom tags, the Zipkin provider),
 * what Inmesh accepts and does not apply (no provider, another provider, {@code HTTP_PROTO}) and what it refuses by
 * path, as Envoy would or because Inmesh does not implement it.
 */
class TracingParserTest {

    /** A bootstrap with one listener, whose connection manager has {@code tracing} (YAML at its indentation). */
    static String listener(String tracing) {
        return "static_resources:\n  listeners:\n" + IstioTracing.listener("0.0.0.0_9080", "0.0.0.0", 9080,
                "OUTBOUND", tracing, "reviews.default.svc.cluster.local:9080/*", "outbound|9080||reviews").indent(2);
    }

    private static HttpConnectionManager hcm(String tracing) throws Exception {
        return (HttpConnectionManager) EnvoyConfigReader.read(listener(tracing)).listeners().values().iterator()
                .next().filterChains().get(0).filter();
    }

    private static String refused(String tracing) {
        return assertThrows(EnvoyConfigReader.ConfigReadException.class,
                () -> EnvoyConfigReader.read(listener(tracing))).getMessage();
    }

    private static String zipkin(String fields) {
        return """
                tracing:
                  provider:
                    name: envoy.tracers.zipkin
                    typed_config:
                      "@type": type.googleapis.com/envoy.config.trace.v3.ZipkinConfig
                """ + fields.stripTrailing().indent(6);
    }

    @Test
    void istiodsZipkinTracingIsParsedWithItsSamplingTagsAndCollector() throws Exception {
        Tracing t = hcm(IstioTracing.tracing(1, IstioTracing.CLUSTER)).tracing();
        assertEquals(100, t.clientSampling());
        assertEquals(1, t.randomSampling());
        assertEquals(100, t.overallSampling());
        assertEquals(Tracing.DEFAULT_MAX_PATH_TAG_LENGTH, t.maxPathTagLength());
        assertEquals(new Tracing.Zipkin(IstioTracing.CLUSTER, "/api/v2/spans",
                "zipkin.istio-system.svc.cluster.local", true, false), t.zipkin());
        assertEquals(List.of(
                new Tracing.CustomTag("istio.authorization.dry_run.allow_policy.name",
                        Tracing.CustomTag.Kind.REQUEST_METADATA,
                        "envoy.filters.http.rbac.istio_dry_run_allow_shadow_effective_policy_id", ""),
                new Tracing.CustomTag("istio.canonical_revision", Tracing.CustomTag.Kind.LITERAL, "v1", ""),
                new Tracing.CustomTag("istio.canonical_service", Tracing.CustomTag.Kind.LITERAL, "reviews", ""),
                new Tracing.CustomTag("istio.cluster_id", Tracing.CustomTag.Kind.LITERAL, "Kubernetes", ""),
                new Tracing.CustomTag("istio.mesh_id", Tracing.CustomTag.Kind.LITERAL, "cluster.local", ""),
                new Tracing.CustomTag("istio.namespace", Tracing.CustomTag.Kind.LITERAL, "default", "")),
                t.customTags());
        assertEquals("envoy.tracers.zipkin", t.provider());
        assertNotNull(Tracer.compile(t, null), "a Zipkin provider is applied");
    }

    @Test
    void environmentAndRequestHeaderTagsAndThePathTagLengthAreKept() throws Exception {
        Tracing t = hcm("""
                tracing:
                  max_path_tag_length: 32
                  verbose: true
                  custom_tags:
                  - {tag: pod, environment: {name: POD_NAME, default_value: unknown-pod}}
                  - {tag: user, request_header: {name: end-user, default_value: anonymous}}
                """).tracing();
        assertEquals(32, t.maxPathTagLength());
        assertEquals(List.of(new Tracing.CustomTag("pod", Tracing.CustomTag.Kind.ENVIRONMENT, "POD_NAME",
                        "unknown-pod"),
                new Tracing.CustomTag("user", Tracing.CustomTag.Kind.REQUEST_HEADER, "end-user", "anonymous")),
                t.customTags());
        // meshConfig's legacy tracing: no provider in the connection manager (Envoy's bootstrap tracer)
        assertEquals("", t.provider());
        assertNull(t.zipkin());
        assertNull(Tracer.compile(t, null), "without a provider, nor one in the bootstrap, nothing is traced");
    }

    @Test
    void otherProvidersAndProtobufReportsAreAcceptedAndTraceNothing() throws Exception {
        java.util.List<String> warned = new java.util.concurrent.CopyOnWriteArrayList<>();
        java.util.logging.Logger log = java.util.logging.Logger.getLogger(TracingParser.class.getName());
        java.util.logging.Handler warnings = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord r) {
                if (r.getLevel() == java.util.logging.Level.WARNING) {
                    warned.add(r.getMessage());
                }
            }

            @Override
            public void flush() {}

            @Override
            public void close() {}
        };
        log.addHandler(warnings);
        try {
            acceptedAndTracingNothing();
        } finally {
            log.removeHandler(warnings);
        }
        // each named once, whatever the number of configurations naming it: not silently, not at every reload
        assertEquals(2, warned.size(), warned.toString());
        assertTrue(warned.get(0).startsWith("tracing provider envoy.tracers.datadog "
                + "(envoy.config.trace.v3.DatadogConfig) is accepted and not applied by Inmesh"), warned.get(0));
        assertTrue(warned.get(1).startsWith("tracing provider envoy.tracers.zipkin with collector_endpoint_version "
                + "HTTP_PROTO is accepted and not applied"), warned.get(1));
    }

    private void acceptedAndTracingNothing() throws Exception {
        Tracing datadog = hcm("""
                tracing:
                  random_sampling: {value: 10}
                  provider:
                    name: envoy.tracers.datadog
                    typed_config:
                      "@type": type.googleapis.com/envoy.config.trace.v3.DatadogConfig
                      collector_cluster: "outbound|8126||datadog-agent.datadog.svc.cluster.local"
                      service_name: reviews.default
                """).tracing();
        assertEquals(10, datadog.randomSampling());
        assertNull(datadog.tracer());
        Tracing.Zipkin bootstrap = new Tracing.Zipkin("zipkin", "/api/v2/spans", null, true, false);
        assertNull(Tracer.compile(datadog, bootstrap), "a provider of its own, not the bootstrap's, even unapplied");
        Tracing proto = hcm(zipkin("""
                collector_cluster: zipkin
                collector_endpoint: /api/v2/spans
                collector_endpoint_version: HTTP_PROTO
                """)).tracing();
        assertNull(proto.zipkin());
        hcm(zipkin("""
                collector_cluster: zipkin
                collector_endpoint: /api/v2/spans
                collector_endpoint_version: HTTP_PROTO
                """)); // read again
        Tracing shared = hcm(zipkin("""
                collector_cluster: zipkin
                collector_endpoint: /api/v2/spans
                collector_endpoint_version: HTTP_JSON
                """)).tracing();
        assertTrue(shared.zipkin().sharedSpanContext(), "Envoy's default shared_span_context is true");
        assertFalse(shared.zipkin().traceId128Bit());
        assertEquals("zipkin", shared.zipkin().collectorHostname(), "the cluster's name without collector_hostname");
    }

    @Test
    void theBootstrapsZipkinTracerReportsForAConnectionManagerThatNamesNoProvider() throws Exception {
        String legacy = """
                tracing:
                  random_sampling: {value: 1}
                """;
        var bundle = EnvoyConfigReader.read(IstioTracing.BOOTSTRAP + listener(legacy));
        assertEquals(new Tracing.Zipkin("zipkin", "/api/v2/spans", "zipkin", true, false), bundle.tracer());
        HttpConnectionManager h = (HttpConnectionManager) bundle.listeners().values().iterator().next()
                .filterChains().get(0).filter();
        assertEquals(bundle.tracer(), h.tracing().tracer(bundle.tracer()));
        assertNotNull(Tracer.compile(h.tracing(), bundle.tracer()));
        String grpc = IstioTracing.BOOTSTRAP.replace("HTTP_JSON", "GRPC") + "static_resources: {}\n";
        assertTrue(assertThrows(EnvoyConfigReader.ConfigReadException.class, () -> EnvoyConfigReader.read(grpc))
                .getMessage().contains("tracing.http.typed_config.collector_endpoint_version"));
    }

    @Test
    void whatEnvoyOrInmeshRefusesIsNamedByItsPath() {
        assertTrue(refused(zipkin("""
                collector_cluster: zipkin
                collector_endpoint: /api/v2/spans
                """)).contains("tracing.provider.typed_config.collector_endpoint_version"),
                "the unset (deprecated v1) version, which Envoy refuses");
        assertTrue(refused(zipkin("""
                collector_cluster: zipkin
                collector_endpoint: /api/v2/spans
                collector_endpoint_version: GRPC
                """)).contains("tracing.provider.typed_config.collector_endpoint_version"));
        assertTrue(refused(zipkin("""
                collector_endpoint: /api/v2/spans
                collector_endpoint_version: HTTP_JSON
                """)).contains("tracing.provider.typed_config.collector_cluster"));
        assertTrue(refused(zipkin("""
                collector_cluster: zipkin
                collector_endpoint_version: HTTP_JSON
                """)).contains("tracing.provider.typed_config.collector_endpoint"));
        assertTrue(refused("""
                tracing:
                  random_sampling: {value: 101}
                """).contains("tracing.random_sampling.value"));
        assertTrue(refused(zipkin("""
                collector_cluster: zipkin
                collector_endpoint: /api/v2/spans
                collector_endpoint_version: HTTP_JSON
                trace_context_option: USE_B3_WITH_W3C_PROPAGATION
                """)).contains("trace_context_option"), "a field of a newer ZipkinConfig (istiod 1.28+)");
        assertTrue(refused("""
                tracing:
                  spawn_upstream_span: true
                """).contains("tracing.spawn_upstream_span"));
        assertTrue(refused("""
                tracing:
                  custom_tags:
                  - tag: cluster_owner
                    metadata:
                      kind: {cluster: {}}
                      metadata_key: {key: istio, path: [{key: owner}]}
                """).contains("tracing.custom_tags[0].metadata.kind"));
    }

    @Test
    void istiodsOpenTelemetryTracingIsParsedWithItsGrpcCollectorAndServiceName() throws Exception {
        Tracing t = hcm(IstioTracing.openTelemetry(1, IstioTracing.OTLP_GRPC)).tracing();
        assertEquals(1, t.randomSampling());
        assertEquals(100, t.clientSampling());
        assertEquals(7, t.customTags().size());
        assertEquals("envoy.tracers.opentelemetry", t.provider());
        assertEquals(new Tracing.OpenTelemetry("reviews.default", new Tracing.OpenTelemetry.Grpc(
                IstioTracing.OTEL_CLUSTER, IstioTracing.OTEL_HOST, null, java.util.Map.of())), t.tracer());
        assertNull(t.zipkin());
        assertNotNull(Tracer.compile(t, null), "an OpenTelemetry provider is applied");
    }

    @Test
    void istiodsOtlpHttpExporterIsTheUrisHostAndPathWithItsClusterTimeoutAndHeaders() throws Exception {
        String cluster = "outbound|4318||opentelemetry-collector.observability.svc.cluster.local";
        Tracing t = hcm(IstioTracing.openTelemetry(100, IstioTracing.otlpHttp(cluster))).tracing();
        assertEquals(new Tracing.OpenTelemetry.Http(cluster, IstioTracing.OTEL_HOST, "/v1/traces",
                java.time.Duration.ofSeconds(10), java.util.Map.of("x-tenant", "bookinfo")),
                t.openTelemetry().exporter());
        Tracing schemed = hcm(IstioTracing.openTelemetry(100, """
                "http_service": {"http_uri": {"uri": "http://collector:4318/v1/traces", "cluster": "c",
                  "timeout": "1s"}}
                """)).tracing();
        assertEquals(new Tracing.OpenTelemetry.Http("c", "collector:4318", "/v1/traces",
                java.time.Duration.ofSeconds(1), java.util.Map.of()), schemed.openTelemetry().exporter());
        Tracing unnamed = hcm(IstioTracing.openTelemetry(100, """
                "grpc_service": {"envoy_grpc": {"cluster_name": "otel"}}
                """).replace("reviews.default", "")).tracing();
        assertEquals("otel", ((Tracing.OpenTelemetry.Grpc) unnamed.openTelemetry().exporter()).authority(),
                "Envoy's authority without one: the cluster's name");
        assertEquals("unknown_service:envoy", unnamed.openTelemetry().serviceName(), "Envoy's without service_name");
    }

    @Test
    void anOpenTelemetryTracerWithNoExporterIsAcceptedAsEnvoyAcceptsItTracingAndExportingNowhere() throws Exception {
        Tracing t = hcm(IstioTracing.openTelemetry(100, "")).tracing();
        assertEquals("reviews.default", t.openTelemetry().serviceName());
        assertNull(t.openTelemetry().exporter(), "the spans go nowhere");
        Tracer tracer = Tracer.compile(t, null, name -> null);
        assertNotNull(tracer, "the requests are traced all the same");
        io.vertx.core.MultiMap h = io.vertx.core.MultiMap.caseInsensitiveMultiMap()
                .add("x-request-id", "00000001-1234-4567-89ab-0123456789ab");
        var span = tracer.start(h, false, false, "ratings:9080", java.time.Instant.now(), System.nanoTime(),
                new java.util.Random(3), null);
        io.vertx.core.MultiMap upstream = io.vertx.core.MultiMap.caseInsensitiveMultiMap();
        span.inject(upstream, null);
        assertTrue(upstream.get("traceparent").endsWith("-01"), "and pass their trace context on");
    }

    @Test
    void openTelemetryTracersInmeshDoesNotImplementOrEnvoyRefusesAreRefusedByPath() throws Exception {
        assertTrue(refused(IstioTracing.openTelemetry(1, IstioTracing.OTLP_GRPC + ", "
                + IstioTracing.otlpHttp("c"))).contains("tracing.provider.typed_config.grpc_service"),
                "two exporters, which Envoy refuses");
        assertTrue(refused(IstioTracing.openTelemetry(1, IstioTracing.OTLP_GRPC + """
                , "sampler": {"name": "envoy.tracers.opentelemetry.samplers.dynatrace",
                  "typed_config": {"@type": "type.googleapis.com/google.protobuf.Empty"}}
                """)).contains("tracing.provider.typed_config.sampler"));
        assertTrue(refused(IstioTracing.openTelemetry(1, IstioTracing.OTLP_GRPC + """
                , "resource_detectors": [{"name": "envoy.tracers.opentelemetry.resource_detectors.environment",
                  "typed_config": {"@type": "type.googleapis.com/google.protobuf.Empty"}}]
                """)).contains("tracing.provider.typed_config.resource_detectors"));
        assertTrue(refused(IstioTracing.openTelemetry(1, """
                "grpc_service": {"google_grpc": {"target_uri": "127.0.0.1:4317", "stat_prefix": "otel"}}
                """)).contains("tracing.provider.typed_config.grpc_service.google_grpc"), "google_grpc");
        assertTrue(refused(IstioTracing.openTelemetry(1, """
                "grpc_service": {"envoy_grpc": {"cluster_name": ""}}
                """)).contains("envoy_grpc.cluster_name"));
    }
}
