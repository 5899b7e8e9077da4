package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;

/**
 * The PROXY protocol listener filter ({@code envoy.filters.listener.proxy_protocol},
 * {@code listener.proxy_protocol.v3.ProxyProtocol}): a connection starts with a v1 (text) or v2 (binary) PROXY header
 * that a load balancer in front (an AWS NLB, HAProxy) wrote, and the header's source and destination become the
 * connection's remote and local addresses for everything after it, as Envoy restores them. The header is taken off;
 * the bytes after it pass on untouched.
 *
 * @param allowRequestsWithoutProxyProtocol {@code allow_requests_without_proxy_protocol}: a connection whose first
 *     bytes match no allowed version's signature passes on untouched with its real addresses (against the
 *     specification, as Envoy's documentation warns) instead of being closed
 * @param v1Allowed whether a v1 header is accepted (not in {@code disallowed_versions}); a disallowed one closes the
 *     connection
 * @param v2Allowed whether a v2 header is accepted
 * @param statPrefix {@code stat_prefix}: the segment after {@code proxy_proto.} in the filter's statistics, empty for
 *     none
 */
public record ProxyProtocol(boolean allowRequestsWithoutProxyProtocol, boolean v1Allowed, boolean v2Allowed,
                            String statPrefix) {
    /** Envoy's defaults: a header of either version required, statistics with no prefix. */
    public static final ProxyProtocol DEFAULT = new ProxyProtocol(false, true, true, "");

    public ProxyProtocol {
        // as Envoy's config: a filter that allows no version is a misconfiguration
        Checks.check(v1Allowed || v2Allowed, "disallowed_versions", "[V1, V2]", "at most one version");
        statPrefix = statPrefix == null ? "" : statPrefix;
    }
}
