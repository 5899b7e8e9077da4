package dev.inmesh.runtime.stats;

/**
 * Where the statistics of a listener's network filters are kept, by the filter's {@code stat_prefix}: the RBAC
 * filters' ({@code <stat_prefix>.rbac.*}), the local rate limit filters' ({@code local_rate_limit.<stat_prefix>.*})
 * and the TCP proxies' ({@code tcp.<stat_prefix>.*}). Filters with one prefix share their statistics, as Envoy's are
 * shared by name. {@link MeshMetrics} keeps them in its registry.
 */
public interface NetworkFilterStats {
    /** The statistics of the RBAC network filters with this stat prefix. */
    NetworkRbacStats networkRbac(String statPrefix);

    /** The statistics of the local rate limit network filters with this stat prefix. */
    NetworkLocalRateLimitStats networkLocalRateLimit(String statPrefix);

    /** The downstream statistics of the TCP proxy filters with this stat prefix. */
    TcpProxyStats tcpProxy(String statPrefix);
}
