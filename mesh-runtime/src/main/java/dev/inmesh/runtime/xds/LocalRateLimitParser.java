package dev.inmesh.runtime.xds;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.util.JsonFormat;
import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.api.config.route.LocalRateLimit;
import io.envoyproxy.envoy.config.core.v3.RuntimeFractionalPercent;
import java.util.Set;

/**
 * Envoy's local rate limit HTTP filter config ({@code LocalRateLimit}), as the filter's own in a connection manager's
 * {@code http_filters} and as a virtual host's or route's {@code typed_per_filter_config}; Istio's EnvoyFilters often
 * wrap it in a {@code TypedStruct}, which is read as the message it names. Descriptors, stages, rate limit actions,
 * per-connection and cluster-wide buckets are refused by name: Inmesh keeps one bucket per config.
 */
final class LocalRateLimitParser {
    static final String NAME = "envoy.filters.http.local_ratelimit";
    static final String TYPE = "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";

    private LocalRateLimitParser() {}

    /**
     * A {@code LocalRateLimit} config; {@code perRoute} for a virtual host's or route's, which must have a token
     * bucket (Envoy's rule: only the filter's own may leave it out, limiting nothing).
     */
    static LocalRateLimit parse(Any any, boolean perRoute) {
        var c = unpack(any);
        Fields.onlyKnown(c, Set.of("stat_prefix", "status", "token_bucket", "filter_enabled", "filter_enforced",
                "request_headers_to_add_when_not_enforced", "response_headers_to_add",
                "enable_x_ratelimit_headers", "always_consume_default_token_bucket",
                "rate_limited_as_resource_exhausted"), Set.of());
        if (c.hasAlwaysConsumeDefaultTokenBucket() && !c.getAlwaysConsumeDefaultTokenBucket().getValue()) {
            throw new FieldError("always_consume_default_token_bucket", "false is not supported by Inmesh (expected: "
                    + "true, the default; Inmesh has no descriptors)");
        }
        if (perRoute && !c.hasTokenBucket()) {
            throw new FieldError("token_bucket", "unset (expected: a token bucket in a virtual host's or route's "
                    + "config, as Envoy requires)");
        }
        LocalRateLimit.TokenBucket bucket = !c.hasTokenBucket() ? null : Fields.at("token_bucket", () -> {
            var b = c.getTokenBucket();
            Fields.onlyKnown(b, Set.of("max_tokens", "tokens_per_fill", "fill_interval"), Set.of());
            if (!b.hasFillInterval()) {
                throw new FieldError("fill_interval", "unset (expected: a duration >= 50ms)");
            }
            long perFill = b.hasTokensPerFill() ? Integer.toUnsignedLong(b.getTokensPerFill().getValue()) : 1;
            return Fields.record("token_bucket.", () -> new LocalRateLimit.TokenBucket(
                    Integer.toUnsignedLong(b.getMaxTokens()), perFill, Fields.duration(b.getFillInterval())));
        });
        var xHeaders = c.getEnableXRatelimitHeaders();
        if (xHeaders != io.envoyproxy.envoy.extensions.common.ratelimit.v3.XRateLimitHeadersRFCVersion.OFF
                && xHeaders != io.envoyproxy.envoy.extensions.common.ratelimit.v3.XRateLimitHeadersRFCVersion
                .DRAFT_VERSION_03) {
            throw new FieldError("enable_x_ratelimit_headers", xHeaders + " (expected: OFF or DRAFT_VERSION_03)");
        }
        var responseHeaders = Fields.each("response_headers_to_add", c.getResponseHeadersToAddList(),
                CoreParsers::headerValueOption);
        var requestHeaders = Fields.each("request_headers_to_add_when_not_enforced",
                c.getRequestHeadersToAddWhenNotEnforcedList(), CoreParsers::headerValueOption);
        FractionalPercent enabled = c.hasFilterEnabled()
                ? Fields.at("filter_enabled", () -> percent(c.getFilterEnabled())) : null;
        FractionalPercent enforced = c.hasFilterEnforced()
                ? Fields.at("filter_enforced", () -> percent(c.getFilterEnforced())) : null;
        return Fields.record("", () -> new LocalRateLimit(c.getStatPrefix(), bucket, enabled, enforced,
                c.hasStatus() ? c.getStatus().getCodeValue() : 0, responseHeaders, requestHeaders,
                c.getRateLimitedAsResourceExhausted(), xHeaders == io.envoyproxy.envoy.extensions.common.ratelimit.v3
                        .XRateLimitHeadersRFCVersion.DRAFT_VERSION_03));
    }

    /**
     * A {@code RuntimeFractionalPercent}: its {@code default_value} (Inmesh has no runtime, so {@code runtime_key} is
     * not read, as Envoy with no value under that key).
     */
    private static FractionalPercent percent(RuntimeFractionalPercent p) {
        Fields.onlyKnown(p, Set.of("default_value", "runtime_key"), Set.of());
        if (!p.hasDefaultValue()) {
            throw new FieldError("default_value", "unset (expected: a fractional percent)");
        }
        return Fields.at("default_value", () -> CoreParsers.fractionalPercent(p.getDefaultValue()));
    }

    /** The message itself, or the one a {@code TypedStruct} ({@code xds.type.v3} or {@code udpa.type.v1}) carries. */
    private static io.envoyproxy.envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit unpack(Any any) {
        return typed(any, io.envoyproxy.envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit.class,
                io.envoyproxy.envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit.newBuilder(), TYPE);
    }

    /**
     * A typed config of type {@code type}: the message itself, or the one a {@code TypedStruct}
     * ({@code xds.type.v3} or {@code udpa.type.v1}, as Istio's EnvoyFilters often write one) carries, read into
     * {@code builder}.
     */
    static <T extends com.google.protobuf.Message> T typed(Any any, Class<T> type,
                                                           com.google.protobuf.Message.Builder builder,
                                                           String typeName) {
        String url = any.getTypeUrl();
        com.google.protobuf.Struct value;
        try {
            if (url.endsWith("/xds.type.v3.TypedStruct")) {
                value = any.unpack(com.github.xds.type.v3.TypedStruct.class).getValue();
            } else if (url.endsWith("/udpa.type.v1.TypedStruct")) {
                value = any.unpack(com.github.udpa.udpa.type.v1.TypedStruct.class).getValue();
            } else {
                return RouteConfigurationParser.unpack(any, type, "@type");
            }
        } catch (InvalidProtocolBufferException e) {
            throw new FieldError("@type", url + " (expected: a TypedStruct)");
        }
        try {
            JsonFormat.parser().merge(JsonFormat.printer().print(value), builder);
        } catch (InvalidProtocolBufferException e) {
            throw new FieldError("value", e.getMessage() + " (expected: the fields of " + typeName + ")");
        }
        return type.cast(builder.build());
    }
}
