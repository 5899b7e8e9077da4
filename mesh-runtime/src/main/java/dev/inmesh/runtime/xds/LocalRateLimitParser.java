package dev.inmesh.runtime.xds;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.api.config.ratelimit.NetworkLocalRateLimit;
import dev.inmesh.api.config.route.LocalRateLimit;
import dev.inmesh.api.config.route.RateLimit;
import io.envoyproxy.envoy.config.core.v3.RuntimeFractionalPercent;
import java.util.Set;

/**
 * Envoy's local rate limit HTTP filter config ({@code LocalRateLimit}), as the filter's own in a connection manager's
 * {@code http_filters} and as a virtual host's or route's {@code typed_per_filter_config}; Istio's EnvoyFilters often
 * wrap it in a {@code TypedStruct}, which is read as the message it names. Its {@code descriptors} (entries with an
 * empty value are wildcards, as Envoy's), {@code stage}, {@code vh_rate_limits},
 * {@code always_consume_default_token_bucket}, own {@code rate_limits} (the actions the global rate limit filter's
 * parser reads, without {@code stage} or {@code disable_key}, as Envoy requires) and {@code max_dynamic_descriptors}
 * are read; per-connection and cluster-wide buckets are refused by name. The local rate limit network filter's
 * config ({@link #network}) is read here too, its token bucket as the HTTP filter's.
 */
final class LocalRateLimitParser {
    static final String NAME = "envoy.filters.http.local_ratelimit";
    static final String TYPE = "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";
    static final String NETWORK_NAME = "envoy.filters.network.local_ratelimit";
    static final String NETWORK_TYPE = "envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit";

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
                "rate_limited_as_resource_exhausted", "descriptors", "stage", "vh_rate_limits", "rate_limits",
                "max_dynamic_descriptors"), Set.of());
        if (perRoute && !c.hasTokenBucket()) {
            throw new FieldError("token_bucket", "unset (expected: a token bucket in a virtual host's or route's "
                    + "config, as Envoy requires)");
        }
        LocalRateLimit.TokenBucket bucket = !c.hasTokenBucket() ? null
                : Fields.at("token_bucket", () -> tokenBucket(c.getTokenBucket()));
        var descriptors = Fields.each("descriptors", c.getDescriptorsList(), LocalRateLimitParser::descriptor);
        var rateLimits = RateLimitParser.rateLimits(c.getRateLimitsList());
        for (int i = 0; i < c.getRateLimitsCount(); i++) {
            var r = c.getRateLimits(i);
            if (r.hasStage() || !r.getDisableKey().isEmpty()) {
                throw new FieldError("rate_limits[" + i + "]." + (r.hasStage() ? "stage" : "disable_key"), "set "
                        + "(expected: unset: Envoy's local rate limit filter refuses either in its own rate_limits)");
            }
        }
        RateLimit.VhRateLimits vhRateLimits = switch (c.getVhRateLimits()) {
            case INCLUDE -> RateLimit.VhRateLimits.INCLUDE;
            case IGNORE -> RateLimit.VhRateLimits.IGNORE;
            case OVERRIDE -> RateLimit.VhRateLimits.OVERRIDE;
            default -> throw new FieldError("vh_rate_limits", c.getVhRateLimits()
                    + " (expected: OVERRIDE, INCLUDE or IGNORE)");
        };
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
                        .XRateLimitHeadersRFCVersion.DRAFT_VERSION_03, descriptors, c.getStage(), vhRateLimits,
                !c.hasAlwaysConsumeDefaultTokenBucket() || c.getAlwaysConsumeDefaultTokenBucket().getValue(),
                rateLimits, c.hasMaxDynamicDescriptors()
                        // a uint32: beyond an int, more than any map keeps
                        ? (int) Math.min(Integer.MAX_VALUE, Integer.toUnsignedLong(c.getMaxDynamicDescriptors()
                                .getValue()))
                        : LocalRateLimit.DEFAULT_MAX_DYNAMIC_DESCRIPTORS));
    }

    /**
     * The config of a local rate limit network filter ({@code envoy.extensions.filters.network.local_ratelimit.v3.
     * LocalRateLimit}), typed or in a {@code TypedStruct}: {@code stat_prefix} and {@code token_bucket} (both required,
     * as Envoy validates them), {@code runtime_enabled} (its {@code default_value}; its {@code runtime_key} is not
     * read: the runtime feeds routes only) and {@code share_key}.
     *
     * @param after how many RBAC and external authorization network filters come before it in the chain
     */
    static NetworkLocalRateLimit network(Any any, int after) {
        var c = typed(any, io.envoyproxy.envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit.class,
                io.envoyproxy.envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit.newBuilder(),
                NETWORK_TYPE);
        Fields.onlyKnown(c, Set.of("stat_prefix", "token_bucket", "runtime_enabled", "share_key"), Set.of());
        if (c.getStatPrefix().isEmpty()) {
            throw new FieldError("stat_prefix", "\"\" (expected: a non-empty prefix, as Envoy requires)");
        }
        if (!c.hasTokenBucket()) {
            throw new FieldError("token_bucket", "unset (expected: a token bucket, as Envoy requires)");
        }
        LocalRateLimit.TokenBucket bucket = Fields.at("token_bucket", () -> tokenBucket(c.getTokenBucket()));
        boolean enabled = !c.hasRuntimeEnabled()
                || Fields.at("runtime_enabled", () -> CompressorParser.enabled(c.getRuntimeEnabled()));
        return new NetworkLocalRateLimit(after, c.getStatPrefix(), bucket, enabled, c.getShareKey());
    }

    /** A {@code TokenBucket}: {@code fill_interval} required, {@code tokens_per_fill} 1 when unset (Envoy's). */
    private static LocalRateLimit.TokenBucket tokenBucket(io.envoyproxy.envoy.type.v3.TokenBucket b) {
        Fields.onlyKnown(b, Set.of("max_tokens", "tokens_per_fill", "fill_interval"), Set.of());
        if (!b.hasFillInterval()) {
            throw new FieldError("fill_interval", "unset (expected: a duration >= 50ms)");
        }
        long perFill = b.hasTokensPerFill() ? Integer.toUnsignedLong(b.getTokensPerFill().getValue()) : 1;
        return Fields.record("token_bucket.", () -> new LocalRateLimit.TokenBucket(
                Integer.toUnsignedLong(b.getMaxTokens()), perFill, Fields.duration(b.getFillInterval())));
    }

    /**
     * A {@code LocalRateLimitDescriptor}: its entries (at least one, each with a key; an empty value is a wildcard)
     * and its bucket, which Envoy requires.
     */
    private static LocalRateLimit.Descriptor descriptor(
            io.envoyproxy.envoy.extensions.common.ratelimit.v3.LocalRateLimitDescriptor d) {
        Fields.onlyKnown(d, Set.of("entries", "token_bucket"), Set.of());
        if (d.getEntriesCount() == 0) {
            throw new FieldError("entries", "[] (expected: at least one entry, as Envoy requires)");
        }
        var entries = Fields.each("entries", d.getEntriesList(), e -> {
            Fields.onlyKnown(e, Set.of("key", "value"), Set.of());
            if (e.getKey().isEmpty()) {
                throw new FieldError("key", "\"\" (expected: a non-empty key, as Envoy requires)");
            }
            return new LocalRateLimit.Entry(e.getKey(), e.getValue());
        });
        if (!d.hasTokenBucket()) {
            throw new FieldError("token_bucket", "unset (expected: the descriptor's token bucket, as Envoy requires)");
        }
        var bucket = Fields.at("token_bucket", () -> tokenBucket(d.getTokenBucket()));
        return new LocalRateLimit.Descriptor(entries, bucket);
    }

    /**
     * A {@code RuntimeFractionalPercent}: its {@code default_value} ({@code runtime_key} is not read, the runtime
     * feeding routes only: as Envoy with no value under that key).
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
     * {@code builder} as Envoy reads it (source/common/config/utility.cc, translateOpaqueConfig): its value printed as
     * JSON and read as Envoy's JSON (source/common/protobuf/utility.cc, jsonConvertInternal), in protobuf's legacy
     * syntax ({@code fill_interval: {seconds: 60}}, {@code tokens_per_fill: {value: 10}}) and with the {@code Any}s
     * inside it typed as in a file.
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
            return EnvoyJson.toMessage(EnvoyJson.tree(EnvoyJson.print(value)), builder, type);
        } catch (InvalidProtocolBufferException e) {
            throw new FieldError("value", e.getMessage() + " (expected: the fields of " + typeName + ")");
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException("printed JSON reads back", e);
        }
    }
}
