package dev.inmesh.api.config.cluster;

/**
 * Which addresses a STRICT_DNS cluster takes from a name ({@code Cluster.DnsLookupFamily}), as Envoy resolves them.
 */
public enum DnsLookupFamily {
    /** IPv6 addresses, or IPv4 ones when the name has none (Envoy's default). */
    AUTO,
    /** IPv4 addresses only. */
    V4_ONLY,
    /** IPv6 addresses only. */
    V6_ONLY,
    /** IPv4 addresses, or IPv6 ones when the name has none. */
    V4_PREFERRED,
    /** Both IPv4 and IPv6 addresses. */
    ALL
}
