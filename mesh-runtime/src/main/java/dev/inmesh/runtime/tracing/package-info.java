/**
 * Distributed tracing as Envoy's Zipkin and OpenTelemetry tracers do it for Istio's sidecars: the trace decision of
 * the connection manager ({@link dev.inmesh.runtime.tracing.Tracer}), B3 and W3C trace context extraction and
 * injection ({@link dev.inmesh.runtime.tracing.B3}, {@link dev.inmesh.runtime.tracing.W3cTraceContext}), Zipkin v2
 * spans ({@link dev.inmesh.runtime.tracing.ZipkinSpan}) and OTLP ones ({@link dev.inmesh.runtime.tracing.OtlpSpans}),
 * and their reporters ({@link dev.inmesh.runtime.tracing.ZipkinReporter},
 * {@link dev.inmesh.runtime.tracing.OtlpExporter}). The router (both ways in) and {@code mesh.inbound} share them.
 * Internal: not part of the public API.
 */
package dev.inmesh.runtime.tracing;
