/**
 * The in-JVM inbound path: {@link dev.inmesh.runtime.inbound.InboundHandler} wraps a service's request handler with
 * the {@code virtualInbound} side for its port (request id, the inbound route, metrics with
 * {@code reporter="destination"}, the access log), calling the service in-process where a sidecar would connect to
 * it through {@code inbound|PORT||}.
 */
package dev.inmesh.runtime.inbound;
