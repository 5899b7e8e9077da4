/**
 * Distributed tracing as Envoy's Zipkin tracer does it for Istio's sidecars: the trace decision of the connection
 * manager ({@link dev.inmesh.runtime.tracing.Tracer}), B3 context extraction and injection
 * ({@link dev.inmesh.runtime.tracing.B3}), Zipkin v2 spans ({@link dev.inmesh.runtime.tracing.ZipkinSpan}) and their
 * reporter ({@link dev.inmesh.runtime.tracing.ZipkinReporter}). The router (both ways in) and {@code mesh.inbound}
 * share them. Internal: not part of the public API.
 */
package dev.inmesh.runtime.tracing;
