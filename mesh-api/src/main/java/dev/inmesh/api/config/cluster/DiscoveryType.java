package dev.inmesh.api.config.cluster;

/** How a cluster learns its hosts. */
public enum DiscoveryType {
    /** Hosts from the cluster's inline load assignment. */
    STATIC,
    /** Host names in the inline load assignment, resolved through DNS and re-resolved on the refresh rate. */
    STRICT_DNS,
    /**
     * One host name in the inline load assignment, resolved through DNS and re-resolved on the refresh rate: the
     * cluster's one host is the first address the name resolves to (Istio's {@code DNS_ROUND_ROBIN} ServiceEntries).
     */
    LOGICAL_DNS,
    /** Hosts from a ClusterLoadAssignment delivered by EDS (or a file). */
    EDS,
    /** The downstream connection's original destination (lb policy CLUSTER_PROVIDED). */
    ORIGINAL_DST;

    /** Whether the cluster's hosts are names its inline load assignment gives, resolved through DNS. */
    public boolean resolvesNames() {
        return this == STRICT_DNS || this == LOGICAL_DNS;
    }
}
