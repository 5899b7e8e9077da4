package dev.inmesh.runtime.admin;

import com.google.protobuf.UInt32Value;
import dev.inmesh.api.config.cluster.CircuitBreakers;
import dev.inmesh.api.config.endpoint.HealthStatus;
import dev.inmesh.runtime.snapshot.MeshSnapshot;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.stats.EnvoyNumbers;
import dev.inmesh.runtime.upstream.Host;
import dev.inmesh.runtime.upstream.HostStats;
import dev.inmesh.runtime.upstream.OutlierDetector;
import dev.inmesh.runtime.upstream.UpstreamCluster;
import dev.inmesh.runtime.xds.ResourceType;
import io.envoyproxy.envoy.admin.v3.ClusterStatus;
import io.envoyproxy.envoy.admin.v3.Clusters;
import io.envoyproxy.envoy.admin.v3.HostHealthStatus;
import io.envoyproxy.envoy.admin.v3.HostStatus;
import io.envoyproxy.envoy.admin.v3.SimpleMetric;
import io.envoyproxy.envoy.config.core.v3.Address;
import io.envoyproxy.envoy.config.core.v3.RoutingPriority;
import io.envoyproxy.envoy.type.v3.Percent;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code /clusters} from the current snapshot's cluster manager, in Envoy's text form and as {@code admin.v3.Clusters}
 * ({@code ?format=json}). Per cluster: its observability name, the outlier detector's success rate averages and
 * ejection thresholds (when the cluster has outlier detection), the circuit breaker thresholds of both routing
 * priorities, {@code added_via_api} (false for a bootstrap's {@code static_resources}) and the EDS service name when
 * it has one. Per host: its {@link HostStats}, hostname, health flags ({@code healthy}, {@code /failed_active_hc},
 * {@code /failed_outlier_check}, {@code /active_hc_timeout},
 * {@code /eds_status_draining}, ...), weight, locality, canary, priority and the success rates the detector computed
 * (-1 when it computed none).
 */
public final class ClusterManagerStatus implements ClusterStatusSource {
    private final SnapshotHolder snapshots;

    public ClusterManagerStatus(SnapshotHolder snapshots) {
        this.snapshots = snapshots;
    }

    @Override
    public List<String> clusterStatusLines() {
        List<String> out = new ArrayList<>();
        MeshSnapshot snapshot = snapshots.current();
        for (UpstreamCluster c : sorted(snapshot)) {
            String n = c.name();
            out.add(n + "::observability_name::" + observabilityName(snapshot, c));
            OutlierDetector d = c.outlierDetector();
            if (d.config() != null) {
                out.add(n + "::outlier::success_rate_average::" + EnvoyNumbers.general(d.successRateAverage(false)));
                out.add(n + "::outlier::success_rate_ejection_threshold::"
                        + EnvoyNumbers.general(d.successRateEjectionThreshold(false)));
                out.add(n + "::outlier::local_origin_success_rate_average::"
                        + EnvoyNumbers.general(d.successRateAverage(true)));
                out.add(n + "::outlier::local_origin_success_rate_ejection_threshold::"
                        + EnvoyNumbers.general(d.successRateEjectionThreshold(true)));
            }
            for (CircuitBreakers.RoutingPriority p : CircuitBreakers.RoutingPriority.values()) {
                CircuitBreakers.Thresholds t = c.circuitBreakers(p).thresholds();
                String q = n + "::" + p.name().toLowerCase(java.util.Locale.ROOT) + "_priority::";
                out.add(q + "max_connections::" + t.maxConnections());
                out.add(q + "max_pending_requests::" + t.maxPendingRequests());
                out.add(q + "max_requests::" + t.maxRequests());
                // as Envoy's retries().max(): under a retry_budget, the budget's limit at this moment
                out.add(q + "max_retries::" + c.circuitBreakers(p).retryLimit());
            }
            out.add(n + "::added_via_api::" + addedViaApi(snapshot, c));
            if (!c.config().edsServiceName().isEmpty()) {
                out.add(n + "::eds_service_name::" + c.config().edsServiceName());
            }
            for (Host h : c.hosts()) {
                String p = n + "::" + h.addressString() + "::";
                for (HostStats.Stat s : h.stats().all()) {
                    out.add(p + s.name() + "::" + s.value());
                }
                out.add(p + "hostname::" + h.hostname());
                out.add(p + "health_flags::" + healthFlags(h));
                out.add(p + "weight::" + h.weight());
                out.add(p + "region::" + h.locality().region());
                out.add(p + "zone::" + h.locality().zone());
                out.add(p + "sub_zone::" + h.locality().subZone());
                out.add(p + "canary::" + canary(h));
                out.add(p + "priority::" + h.priority());
                out.add(p + "success_rate::" + shortest(h.outlier().successRate(false)));
                out.add(p + "local_origin_success_rate::" + shortest(h.outlier().successRate(true)));
            }
        }
        return out;
    }

    @Override
    public Clusters clusters() {
        Clusters.Builder out = Clusters.newBuilder();
        MeshSnapshot snapshot = snapshots.current();
        for (UpstreamCluster c : sorted(snapshot)) {
            ClusterStatus.Builder cs = out.addClusterStatusesBuilder().setName(c.name())
                    .setObservabilityName(observabilityName(snapshot, c))
                    .setAddedViaApi(addedViaApi(snapshot, c))
                    .setEdsServiceName(c.config().edsServiceName());
            for (CircuitBreakers.RoutingPriority p : CircuitBreakers.RoutingPriority.values()) {
                CircuitBreakers.Thresholds t = c.circuitBreakers(p).thresholds();
                cs.getCircuitBreakersBuilder().addThresholdsBuilder()
                        .setPriority(p == CircuitBreakers.RoutingPriority.HIGH ? RoutingPriority.HIGH
                                : RoutingPriority.DEFAULT)
                        .setMaxConnections(uint32(t.maxConnections()))
                        .setMaxPendingRequests(uint32(t.maxPendingRequests()))
                        .setMaxRequests(uint32(t.maxRequests()))
                        .setMaxRetries(uint32(c.circuitBreakers(p).retryLimit()));
            }
            OutlierDetector d = c.outlierDetector();
            if (d.config() != null && d.successRateEjectionThreshold(false) > 0) {
                cs.setSuccessRateEjectionThreshold(percent(d.successRateEjectionThreshold(false)));
            }
            if (d.config() != null && d.successRateEjectionThreshold(true) > 0) {
                cs.setLocalOriginSuccessRateEjectionThreshold(percent(d.successRateEjectionThreshold(true)));
            }
            for (Host h : c.hosts()) {
                HostStatus.Builder hs = cs.addHostStatusesBuilder().setAddress(address(h))
                        .setHostname(h.hostname()).setWeight(h.weight()).setPriority(h.priority())
                        .setHealthStatus(healthStatus(h));
                hs.getLocalityBuilder().setRegion(h.locality().region()).setZone(h.locality().zone())
                        .setSubZone(h.locality().subZone());
                for (boolean gauges : new boolean[] {false, true}) { // Envoy lists the counters, then the gauges
                    for (HostStats.Stat s : h.stats().all()) {
                        if (s.gauge() == gauges) {
                            hs.addStats(SimpleMetric.newBuilder().setName(s.name()).setValue(s.value())
                                    .setType(gauges ? SimpleMetric.Type.GAUGE : SimpleMetric.Type.COUNTER));
                        }
                    }
                }
                if (h.outlier().successRate(false) >= 0) {
                    hs.setSuccessRate(percent(h.outlier().successRate(false)));
                }
                if (h.outlier().successRate(true) >= 0) {
                    hs.setLocalOriginSuccessRate(percent(h.outlier().successRate(true)));
                }
            }
        }
        return out.build();
    }

    /**
     * The clusters {@code /clusters} lists, by name: as Envoy's, its active ones; a cluster from xDS (or code) not in
     * use until its first health checks is warming, and left out (a bootstrap's is active at once in Envoy).
     */
    private static List<UpstreamCluster> sorted(MeshSnapshot snapshot) {
        Map<String, UpstreamCluster> clusters = new TreeMap<>(snapshot.clusterManager().clusters());
        clusters.values().removeIf(c -> c.warming() && addedViaApi(snapshot, c));
        return new ArrayList<>(clusters.values());
    }

    /** False for a cluster from a bootstrap's {@code static_resources}, true for one from xDS (or built in code). */
    private static boolean addedViaApi(MeshSnapshot snapshot, UpstreamCluster c) {
        return !snapshot.resources().isStatic(ResourceType.CLUSTER, c.name());
    }

    private static String observabilityName(MeshSnapshot snapshot, UpstreamCluster c) {
        return statName(snapshot, c.name());
    }

    /**
     * The {@code alt_stat_name} of cluster {@code name} when it has one (istiod writes the name and a {@code ;}), else
     * its name, as Envoy names the cluster in stats ({@code cluster.<this>.upstream_rq_total}).
     */
    static String statName(MeshSnapshot snapshot, String name) {
        return snapshot.clusterManager().observabilityName(name);
    }

    /** Envoy's canary flag: the endpoint's {@code envoy.lb} metadata says {@code canary: true}. */
    private static boolean canary(Host h) {
        return Boolean.TRUE.equals(h.metadata().get("envoy.lb", "canary"));
    }

    private static Address address(Host h) {
        return ListenersStatus.address(h.address());
    }

    /**
     * The host's {@code health_status} in {@code /clusters?format=json}, as Envoy's admin sets it from the host's
     * health flags (its {@code pending_dynamic_removal} too).
     */
    public static HostHealthStatus healthStatus(Host h) {
        var eds = switch (h.healthStatus()) {
            case UNHEALTHY, TIMEOUT -> io.envoyproxy.envoy.config.core.v3.HealthStatus.UNHEALTHY;
            case DRAINING -> io.envoyproxy.envoy.config.core.v3.HealthStatus.DRAINING;
            case DEGRADED -> io.envoyproxy.envoy.config.core.v3.HealthStatus.DEGRADED;
            default -> io.envoyproxy.envoy.config.core.v3.HealthStatus.HEALTHY;
        };
        return HostHealthStatus.newBuilder().setFailedOutlierCheck(h.outlier().ejected()).setEdsHealthStatus(eds)
                .setFailedActiveHealthCheck(h.failedActiveHealthCheck())
                .setActiveHcTimeout(h.activeHealthCheckTimedOut())
                .setExcludedViaImmediateHcFail(h.excludedViaImmediateHealthCheckFail())
                .setFailedActiveDegradedCheck(h.degradedByActiveHealthCheck())
                .setPendingDynamicRemoval(h.pendingDynamicRemoval()).build();
    }

    private static UInt32Value uint32(long v) {
        return UInt32Value.of((int) Math.min(v, 0xFFFFFFFFL));
    }

    private static Percent percent(double v) {
        return Percent.newBuilder().setValue(v).build();
    }

    /** A number in its shortest form ({@code -1}, {@code 95.5}), as Envoy prints a host's success rate. */
    static String shortest(double v) {
        return v == Math.rint(v) && Math.abs(v) < 1e15 ? Long.toString((long) v) : Double.toString(v);
    }

    /**
     * The health of the hosts {@code clusters} holds now, by load assignment (a cluster's EDS service name, else its
     * name) and address, as Envoy's coarse health reads its hosts' flags: unhealthy when an active check failed (or
     * has not passed yet), outlier detection ejected it, or EDS says it is unhealthy, timed out or draining; degraded
     * when its checks or EDS say so; else healthy (one waiting to be removed too).
     */
    static ConfigDumpBuilder.HostHealth hostHealth(dev.inmesh.runtime.upstream.ClusterManager clusters) {
        java.util.Map<String, java.util.Map<String, io.envoyproxy.envoy.config.core.v3.HealthStatus>> byAssignment =
                new java.util.HashMap<>();
        clusters.clusters().forEach((name, c) -> {
            String assignment = c.config().edsServiceName().isEmpty() ? name : c.config().edsServiceName();
            var hosts = byAssignment.computeIfAbsent(assignment, k -> new java.util.HashMap<>());
            for (Host h : c.hosts()) {
                hosts.put(h.address().address() + ":" + h.address().port(), coarseHealth(h));
            }
        });
        return (assignment, address, port) -> {
            var hosts = byAssignment.get(assignment);
            return hosts == null ? null : hosts.get(address + ":" + port);
        };
    }

    private static io.envoyproxy.envoy.config.core.v3.HealthStatus coarseHealth(Host h) {
        HealthStatus eds = h.healthStatus();
        if (h.failedActiveHealthCheck() || h.outlier().ejected() || eds == HealthStatus.UNHEALTHY
                || eds == HealthStatus.TIMEOUT || eds == HealthStatus.DRAINING) {
            return io.envoyproxy.envoy.config.core.v3.HealthStatus.UNHEALTHY;
        }
        if (h.degradedByActiveHealthCheck() || eds == HealthStatus.DEGRADED) {
            return io.envoyproxy.envoy.config.core.v3.HealthStatus.DEGRADED;
        }
        return io.envoyproxy.envoy.config.core.v3.HealthStatus.HEALTHY;
    }

    /**
     * The host's health flags in Envoy's order ({@code healthy} when it has none): active health check, outlier, EDS,
     * pending removal, timeout, draining.
     */
    public static String healthFlags(Host h) {
        StringBuilder b = new StringBuilder();
        if (h.failedActiveHealthCheck()) {
            b.append("/failed_active_hc");
        }
        if (h.outlier().ejected()) {
            b.append("/failed_outlier_check");
        }
        HealthStatus eds = h.healthStatus();
        if (eds == HealthStatus.UNHEALTHY || eds == HealthStatus.TIMEOUT) {
            b.append("/failed_eds_health");
        }
        if (h.degradedByActiveHealthCheck()) {
            b.append("/degraded_active_hc");
        }
        if (eds == HealthStatus.DEGRADED) {
            b.append("/degraded_eds_health");
        }
        if (h.pendingDynamicRemoval()) {
            b.append("/pending_dynamic_removal");
        }
        if (h.excludedViaImmediateHealthCheckFail()) {
            b.append("/excluded_via_immediate_hc_fail");
        }
        if (h.activeHealthCheckTimedOut()) {
            b.append("/active_hc_timeout");
        }
        if (eds == HealthStatus.DRAINING) {
            b.append("/eds_status_draining");
        }
        return b.length() == 0 ? "healthy" : b.toString();
    }
}
