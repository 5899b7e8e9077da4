package dev.inmesh.api.config.endpoint;

import dev.inmesh.api.config.Checks;
import java.util.List;

/**
 * Envoy's {@code ClusterLoadAssignment} (EDS): a cluster's endpoints grouped by locality and priority, and the
 * overprovisioning factor (percent, default 140) used to spill load between priorities.
 */
public record ClusterLoadAssignment(String clusterName, List<LocalityLbEndpoints> endpoints,
                                    int overprovisioningFactor) {
    public static final int DEFAULT_OVERPROVISIONING_FACTOR = 140;

    public ClusterLoadAssignment {
        Checks.nonEmpty(clusterName, "cluster_name");
        endpoints = Checks.list(endpoints, "endpoints");
        Checks.check(overprovisioningFactor > 0, "policy.overprovisioning_factor", overprovisioningFactor, "> 0");
    }

    /** An empty assignment for a cluster. */
    public static ClusterLoadAssignment empty(String clusterName) {
        return new ClusterLoadAssignment(clusterName, List.of(), DEFAULT_OVERPROVISIONING_FACTOR);
    }
}
