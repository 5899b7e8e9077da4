package dev.inmesh.api.config.endpoint;

import dev.inmesh.api.config.Checks;
import java.util.List;

/**
 * Envoy's {@code ClusterLoadAssignment} (EDS): a cluster's endpoints grouped by locality and priority, the
 * overprovisioning factor (percent, default 140) used to spill load between priorities, and whether a priority's
 * health is the share of its hosts' weight that is healthy rather than the share of its hosts
 * ({@code policy.weighted_priority_health}, default false).
 */
public record ClusterLoadAssignment(String clusterName, List<LocalityLbEndpoints> endpoints,
                                    int overprovisioningFactor, boolean weightedPriorityHealth) {
    public static final int DEFAULT_OVERPROVISIONING_FACTOR = 140;

    public ClusterLoadAssignment {
        Checks.nonEmpty(clusterName, "cluster_name");
        endpoints = Checks.list(endpoints, "endpoints");
        Checks.check(overprovisioningFactor > 0, "policy.overprovisioning_factor", overprovisioningFactor, "> 0");
    }

    /** Without {@code weighted_priority_health}, as Envoy by default. */
    public ClusterLoadAssignment(String clusterName, List<LocalityLbEndpoints> endpoints, int overprovisioningFactor) {
        this(clusterName, endpoints, overprovisioningFactor, false);
    }

    /** An empty assignment for a cluster. */
    public static ClusterLoadAssignment empty(String clusterName) {
        return new ClusterLoadAssignment(clusterName, List.of(), DEFAULT_OVERPROVISIONING_FACTOR);
    }
}
