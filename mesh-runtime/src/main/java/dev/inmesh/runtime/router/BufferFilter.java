package dev.inmesh.runtime.router;

import dev.inmesh.api.config.listener.Buffer;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.route.BufferPerRoute;
import dev.inmesh.api.config.route.FilterPerRoute;
import io.vertx.core.MultiMap;
import java.util.List;

/**
 * Envoy's buffer filter ({@code envoy.filters.http.buffer}) as Inmesh runs it, right before the Lua filters: a
 * request with a body is held whole (by the hold the Lua filters' {@code body()} uses) before the filters after it
 * and the router get it, under its {@code max_request_bytes}, which is the request's buffer limit from then on (Envoy's
 * {@code setDecoderBufferLimit}): over it, the connection manager's {@code 413}. The most specific
 * {@code BufferPerRoute} (the route's, else its virtual host's, else its route configuration's) turns it off or
 * replaces its settings. Once the body is whole, a request that had no {@code content-length} gets the length held,
 * as Envoy's {@code maybeAddContentLength}.
 */
public final class BufferFilter {
    /** A connection manager without the filter. */
    public static final BufferFilter NONE = new BufferFilter(null, null);

    private final String name;
    private final Buffer config;

    private BufferFilter(String name, Buffer config) {
        this.name = name;
        this.config = config;
    }

    /** The buffer filter that runs in {@code hcm}, or {@link #NONE}. */
    public static BufferFilter of(HttpConnectionManager hcm) {
        if (hcm != null) {
            for (HttpFilter f : hcm.httpFilters()) {
                if (f.buffer() != null) {
                    return new BufferFilter(f.name(), f.buffer());
                }
            }
        }
        return NONE;
    }

    /**
     * The most bytes of body held for a request on {@code result} (null: no route table), or -1 when the filter holds
     * nothing for it (none in the connection manager, or a {@code BufferPerRoute} disables it).
     */
    public long limit(RouteResult result, RouteTable table) {
        if (config == null) {
            return -1;
        }
        List<FilterPerRoute> levels = HeaderMutationFilter.levels(name, result, table);
        Buffer settings = config;
        if (!levels.isEmpty() && levels.get(0) instanceof BufferPerRoute p) {
            settings = p.buffer();
        }
        return settings == null ? -1 : settings.maxRequestBytes();
    }

    /**
     * Sets {@code content-length} to the length of the body held ({@code held}, null for none) where the request
     * had none, as Envoy's filter does once the body is whole; the body then goes whole with that length, not
     * chunked (Envoy's connection manager takes a request's {@code transfer-encoding} off as a hop-by-hop header).
     */
    public static void contentLength(MultiMap headers, io.vertx.core.buffer.Buffer held) {
        if (!headers.contains("content-length")) {
            headers.set("content-length", Integer.toString(held == null ? 0 : held.length()));
            headers.remove("transfer-encoding");
        }
    }
}
