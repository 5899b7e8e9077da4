package dev.inmesh.runtime.xds;

import com.google.protobuf.Any;
import dev.inmesh.api.config.listener.Buffer;
import dev.inmesh.api.config.route.BufferPerRoute;
import java.util.Set;

/**
 * Envoy's buffer HTTP filter config ({@code Buffer}) and its per-route override ({@code BufferPerRoute}), typed or in
 * a {@code TypedStruct}: {@code max_request_bytes} is required and above 0, as Envoy validates it.
 */
final class BufferParser {
    static final String NAME = "envoy.filters.http.buffer";
    static final String TYPE = "envoy.extensions.filters.http.buffer.v3.Buffer";
    static final String PER_ROUTE_TYPE = "envoy.extensions.filters.http.buffer.v3.BufferPerRoute";

    private BufferParser() {}

    /** The filter's own {@code Buffer}. */
    static Buffer parse(Any any) {
        return buffer(LocalRateLimitParser.typed(any,
                io.envoyproxy.envoy.extensions.filters.http.buffer.v3.Buffer.class,
                io.envoyproxy.envoy.extensions.filters.http.buffer.v3.Buffer.newBuilder(), TYPE));
    }

    /** A {@code BufferPerRoute}: {@code disabled} (which must be true) or {@code buffer}, which must be set. */
    static BufferPerRoute perRoute(Any any) {
        var p = LocalRateLimitParser.typed(any, io.envoyproxy.envoy.extensions.filters.http.buffer.v3
                .BufferPerRoute.class, io.envoyproxy.envoy.extensions.filters.http.buffer.v3.BufferPerRoute
                .newBuilder(), PER_ROUTE_TYPE);
        return switch (p.getOverrideCase()) {
            case DISABLED -> {
                if (!p.getDisabled()) {
                    throw new FieldError("disabled", "false (expected: true, as Envoy requires, or buffer)");
                }
                yield BufferPerRoute.DISABLED;
            }
            case BUFFER -> new BufferPerRoute(Fields.at("buffer", () -> buffer(p.getBuffer())));
            case OVERRIDE_NOT_SET -> throw new FieldError("override", "unset (expected: disabled or buffer)");
        };
    }

    private static Buffer buffer(io.envoyproxy.envoy.extensions.filters.http.buffer.v3.Buffer b) {
        Fields.onlyKnown(b, Set.of("max_request_bytes"), Set.of());
        if (!b.hasMaxRequestBytes() || b.getMaxRequestBytes().getValue() == 0) {
            throw new FieldError("max_request_bytes", (b.hasMaxRequestBytes() ? "0" : "unset")
                    + " (expected: > 0, as Envoy requires)");
        }
        return Fields.record("", () -> new Buffer(Integer.toUnsignedLong(b.getMaxRequestBytes().getValue())));
    }
}
