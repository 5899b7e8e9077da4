package dev.inmesh.api.config.cluster;

/** A cluster's load balancing policy, as Envoy's {@code Cluster.LbPolicy}. */
public enum LbPolicy {
    ROUND_ROBIN,
    LEAST_REQUEST,
    RANDOM,
    RING_HASH,
    MAGLEV,
    CLUSTER_PROVIDED
}
