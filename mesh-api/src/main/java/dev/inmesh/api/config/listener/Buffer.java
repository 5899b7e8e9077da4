package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;

/**
 * Envoy's buffer filter ({@code envoy.filters.http.buffer}, {@code Buffer}): a request with a body is held whole
 * before the filters after it and the router get it, under {@code maxRequestBytes} (the request's buffer limit while
 * it runs: over it, the connection manager answers {@code 413}); a request that had no {@code content-length} is sent
 * on with the length of the body held.
 *
 * @param maxRequestBytes {@code max_request_bytes}: the most bytes of body held (required, &gt; 0)
 */
public record Buffer(long maxRequestBytes) {
    public Buffer {
        Checks.range(maxRequestBytes, 1, 0xFFFF_FFFFL, "max_request_bytes");
    }
}
