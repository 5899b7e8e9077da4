package dev.inmesh.runtime.admin;

import io.envoyproxy.envoy.admin.v3.Clusters;
import java.util.List;

/**
 * The state of the upstream clusters as Envoy's admin {@code /clusters} prints it, one line per value:
 * {@code cluster::host:port::field::value} for a host (such as
 * {@code outbound|9080||reviews.default.svc.cluster.local::10.244.0.192:9080::health_flags::healthy}) and
 * {@code cluster::field::value} for the cluster itself (such as {@code ...::added_via_api::true}), and the same facts
 * as Envoy's {@code admin.v3.Clusters} for {@code /clusters?format=json}. The cluster manager implements it; the
 * admin server prints the lines in the order given.
 */
@FunctionalInterface
public interface ClusterStatusSource {

    /** No clusters. */
    ClusterStatusSource NONE = List::of;

    /** The current lines, without line separators. Called on a worker thread: must be thread-safe. */
    List<String> clusterStatusLines();

    /** The current state as {@code admin.v3.Clusters}; none by default. Called on a worker thread. */
    default Clusters clusters() {
        return Clusters.getDefaultInstance();
    }
}
