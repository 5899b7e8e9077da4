package dev.inmesh.runtime.admin;

import dev.inmesh.api.config.cluster.CircuitBreakers;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.upstream.Host;
import dev.inmesh.runtime.upstream.UpstreamCluster;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code /clusters} from the current snapshot's cluster manager, in Envoy's text form: per cluster its circuit
 * breaker thresholds and {@code added_via_api}; per host its active and total requests, health flags
 * ({@code healthy}, {@code /failed_outlier_check}, {@code /eds_status_draining}, ...), weight, locality and
 * priority.
 */
public final class ClusterManagerStatus implements ClusterStatusSource {
    private final SnapshotHolder snapshots;

    public ClusterManagerStatus(SnapshotHolder snapshots) {
        this.snapshots = snapshots;
    }

    @Override
    public List<String> clusterStatusLines() {
        List<String> out = new ArrayList<>();
        Map<String, UpstreamCluster> clusters = new TreeMap<>(snapshots.current().clusterManager().clusters());
        for (UpstreamCluster c : clusters.values()) {
            String n = c.name();
            CircuitBreakers.Thresholds t = c.circuitBreakers().thresholds();
            out.add(n + "::default_priority::max_connections::" + t.maxConnections());
            out.add(n + "::default_priority::max_pending_requests::" + t.maxPendingRequests());
            out.add(n + "::default_priority::max_requests::" + t.maxRequests());
            out.add(n + "::default_priority::max_retries::" + t.maxRetries());
            out.add(n + "::added_via_api::true");
            for (Host h : c.hosts()) {
                String p = n + "::" + h.addressString() + "::";
                out.add(p + "rq_active::" + h.stats().activeRequests());
                out.add(p + "rq_total::" + h.stats().totalRequests());
                out.add(p + "health_flags::" + healthFlags(h));
                out.add(p + "weight::" + h.weight());
                out.add(p + "region::" + h.locality().region());
                out.add(p + "zone::" + h.locality().zone());
                out.add(p + "sub_zone::" + h.locality().subZone());
                out.add(p + "priority::" + h.priority());
                out.add(p + "success_rate::-1");
            }
        }
        return out;
    }

    static String healthFlags(Host h) {
        StringBuilder b = new StringBuilder();
        if (h.outlier().ejected()) {
            b.append("/failed_outlier_check");
        }
        switch (h.healthStatus()) {
            case UNHEALTHY, TIMEOUT -> b.append("/failed_eds_health");
            case DRAINING -> b.append("/eds_status_draining");
            case DEGRADED -> b.append("/degraded_eds_health");
            default -> { }
        }
        return b.length() == 0 ? "healthy" : b.toString();
    }
}
