package dev.inmesh.runtime.xds;

import dev.inmesh.api.config.listener.HttpConnectionManager;

/**
 * Istio's "Enabling Rate Limits using Envoy" task as the sidecar receives it, for tests on every path: the local rate
 * limit filter its EnvoyFilter inserts first in the connection manager (a udpa TypedStruct with only a stat prefix),
 * and the virtual host's {@code typed_per_filter_config} with the bucket (4 tokens a minute, enabled and enforced for
 * every request, {@code x-local-rate-limit: true} on a refusal).
 */
public final class IstioRateLimit {
    private IstioRateLimit() {}

    /** {@code filter_enabled} or {@code filter_enforced} at 100%, as the task writes them. */
    public static final String ALL = "{runtime_key: k, default_value: {numerator: 100, denominator: HUNDRED}}";

    /** The filter, an {@code http_filters} list item. */
    public static final String FILTER = """
            - name: envoy.filters.http.local_ratelimit
              typed_config:
                "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                value: {stat_prefix: http_local_rate_limiter}
            """;

    /** The virtual host's config: its {@code typed_per_filter_config} field, to indent to the virtual host's fields. */
    public static final String VIRTUAL_HOST_CONFIG = """
            typed_per_filter_config:
              envoy.filters.http.local_ratelimit:
                "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                value:
                  stat_prefix: http_local_rate_limiter
                  token_bucket: {max_tokens: 4, tokens_per_fill: 4, fill_interval: 60s}
                  filter_enabled:
                    runtime_key: local_rate_limit_enabled
                    default_value: {numerator: 100, denominator: HUNDRED}
                  filter_enforced:
                    runtime_key: local_rate_limit_enforced
                    default_value: {numerator: 100, denominator: HUNDRED}
                  response_headers_to_add:
                  - append: false
                    header: {key: x-local-rate-limit, value: 'true'}
            """;

    /**
     * What Istio users' EnvoyFilters add to a route to give one path a bucket of its own: a route action's
     * {@code rate_limits} field whose entry makes a {@code path} descriptor from {@code :path} (flow YAML, a field of
     * the route action).
     */
    public static final String PATH_RATE_LIMITS =
            "rate_limits: [{actions: [{request_headers: {header_name: \":path\", descriptor_key: path}}]}]";

    /**
     * {@link #VIRTUAL_HOST_CONFIG} with a descriptor giving {@code /reviews/1} a bucket of its own (1 token a
     * minute), as a route's or virtual host's {@code typed_per_filter_config} field.
     */
    public static final String PATH_DESCRIPTOR_CONFIG = VIRTUAL_HOST_CONFIG + """
                  descriptors:
                  - entries: [{key: path, value: /reviews/1}]
                    token_bucket: {max_tokens: 1, fill_interval: 60s}
            """;

    /**
     * A filter named {@code envoy.filters.http.local_ratelimit} with a plain {@code LocalRateLimit} config whose
     * fields are {@code fields} (block YAML lines), an {@code http_filters} list item.
     */
    public static String filter(String fields) {
        return """
                - name: envoy.filters.http.local_ratelimit
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                """ + fields.strip().indent(4);
    }

    /** A filter with a bucket of {@code maxTokens} a minute, enabled and enforced for all, and {@code extra}. */
    public static String enforced(String statPrefix, int maxTokens, String extra) {
        return filter("stat_prefix: " + statPrefix + "\ntoken_bucket: {max_tokens: " + maxTokens
                + ", fill_interval: 60s}\nfilter_enabled: " + ALL + "\nfilter_enforced: " + ALL + "\n" + extra);
    }

    /** The connection manager of listener "0.0.0.0_9080" whose HTTP filters are {@code filters} (YAML list items). */
    public static HttpConnectionManager hcm(String filters) {
        try {
            return (HttpConnectionManager) EnvoyConfigReader.read(EnvoyValidationTest.listenerWithHttpFilters(filters))
                    .listeners().values().iterator().next().filterChains().get(0).filter();
        } catch (EnvoyConfigReader.ConfigReadException e) {
            throw new AssertionError(e.getMessage(), e);
        }
    }
}
