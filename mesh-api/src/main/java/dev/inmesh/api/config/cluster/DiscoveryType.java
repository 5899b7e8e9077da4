package dev.inmesh.api.config.cluster;

/** How a cluster learns its hosts. */
public enum DiscoveryType {
    /** Hosts from the cluster's inline load assignment. */
    STATIC,
    /** Host names in the inline load assignment, resolved through DNS and re-resolved on the refresh rate. */
    STRICT_DNS,
    /** Hosts from a ClusterLoadAssignment delivered by EDS (or a file). */
    EDS,
    /** The downstream connection's original destination (lb policy CLUSTER_PROVIDED). */
    ORIGINAL_DST
}
