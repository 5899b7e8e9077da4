/**
 * The in-JVM inbound path: {@link dev.inmesh.runtime.inbound.InboundHandler} wraps a service's request handler with
 * the {@code virtualInbound} side for its port (request id, the inbound route, metrics with
 * {@code reporter="destination"}, the access log), calling the service in-process where a sidecar would connect to
 * it through {@code inbound|PORT||}; {@link dev.inmesh.runtime.inbound.InboundTls} has the application's server
 * terminate the port's mTLS when its chains take nothing else (Istio's STRICT).
 */
package dev.inmesh.runtime.inbound;
