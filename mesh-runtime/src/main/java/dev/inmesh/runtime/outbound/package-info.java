/**
 * The in-JVM outbound path: {@link dev.inmesh.runtime.outbound.MeshHttpClient}, a Vert.x HTTP client whose requests
 * are routed in-process through the listener for their port, its route table and the shared
 * {@link dev.inmesh.runtime.router.Router}, with no extra hop; {@link dev.inmesh.runtime.outbound.MeshJavaHttpClient},
 * the JDK's {@code java.net.http.HttpClient} over it; and {@link dev.inmesh.runtime.outbound.OutboundRouting}, which
 * finds that listener as a sidecar's {@code virtualOutbound} would.
 */
package dev.inmesh.runtime.outbound;
