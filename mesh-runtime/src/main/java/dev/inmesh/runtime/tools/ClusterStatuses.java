package dev.inmesh.runtime.tools;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.util.JsonFormat;
import io.envoyproxy.envoy.admin.v3.ClusterStatus;
import io.envoyproxy.envoy.admin.v3.Clusters;
import io.envoyproxy.envoy.admin.v3.HostHealthStatus;
import io.envoyproxy.envoy.admin.v3.HostStatus;
import io.envoyproxy.envoy.admin.v3.SimpleMetric;
import io.envoyproxy.envoy.config.core.v3.Address;
import io.envoyproxy.envoy.config.core.v3.HealthStatus;
import io.envoyproxy.envoy.config.core.v3.Locality;
import io.envoyproxy.envoy.config.core.v3.Pipe;
import io.envoyproxy.envoy.config.core.v3.SocketAddress;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.endpoint.v3.LbEndpoint;
import io.envoyproxy.envoy.config.endpoint.v3.LocalityLbEndpoints;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Envoy's {@code /clusters} as {@code admin.v3.ClusterStatus} messages: the source of {@code istioctl proxy-config
 * endpoint}, which reads {@code /clusters?format=json}. Built from that JSON, from the text form of {@code /clusters}
 * (what an admin server without {@code ?format=json} answers), or from a config dump's EDS resources, which carry no
 * outlier state.
 */
final class ClusterStatuses {
    /** Cluster-wide keys of the text form ({@code cluster::default_priority::max_connections::1024}). */
    private static final Set<String> CLUSTER_SCOPES = Set.of("", "default_priority", "high_priority", "outlier");

    private ClusterStatuses() {}

    /** Whether {@code text} looks like the JSON of {@code /clusters?format=json}. */
    static boolean isJson(String text) {
        String t = text.stripLeading();
        return t.startsWith("{") && (t.contains("\"cluster_statuses\"") || t.contains("\"clusterStatuses\""));
    }

    /** Whether {@code text} looks like the text form of {@code /clusters} ({@code name::key::value} lines). */
    static boolean isText(String text) {
        String t = text.stripLeading();
        return !t.startsWith("{") && !t.startsWith("[") && t.lines().findFirst().orElse("").contains("::");
    }

    static List<ClusterStatus> fromJson(String json) throws InvalidProtocolBufferException {
        Clusters.Builder b = Clusters.newBuilder();
        JsonFormat.parser().ignoringUnknownFields().merge(json, b);
        return b.getClusterStatusesList();
    }

    /**
     * Parses the text form, line by line {@code cluster::[host::]key::value}. A host address may itself hold
     * {@code ::} (IPv6), so the key and value are taken from the end of the line.
     */
    static List<ClusterStatus> fromText(String text) {
        Map<String, ClusterStatus.Builder> clusters = new LinkedHashMap<>();
        Map<String, HostStatus.Builder> hosts = new LinkedHashMap<>();
        for (String line : text.lines().toList()) {
            int first = line.indexOf("::");
            int last = line.lastIndexOf("::");
            if (first < 0 || first == last) {
                continue;
            }
            String cluster = line.substring(0, first);
            String value = line.substring(last + 2);
            String head = line.substring(first + 2, last);
            int split = head.lastIndexOf("::");
            String scope = split < 0 ? "" : head.substring(0, split);
            String key = head.substring(split < 0 ? 0 : split + 2);
            ClusterStatus.Builder c = clusters.computeIfAbsent(cluster, n -> ClusterStatus.newBuilder().setName(n));
            if (CLUSTER_SCOPES.contains(scope)) {
                if (scope.isEmpty() && key.equals("added_via_api")) {
                    c.setAddedViaApi(Boolean.parseBoolean(value));
                }
                continue;
            }
            HostStatus.Builder h = hosts.computeIfAbsent(cluster + "\n" + scope, k -> {
                // a builder held by the cluster's, so what the following lines set lands in the cluster
                return c.addHostStatusesBuilder().setAddress(address(scope)).setHealthStatus(
                        HostHealthStatus.newBuilder().setEdsHealthStatus(HealthStatus.HEALTHY));
            });
            host(h, key, value);
        }
        List<ClusterStatus> out = new ArrayList<>();
        clusters.values().forEach(c -> out.add(c.build()));
        return out;
    }

    private static void host(HostStatus.Builder h, String key, String value) {
        switch (key) {
            case "health_flags" -> h.setHealthStatus(health(value));
            case "weight" -> h.setWeight(parseInt(value));
            case "priority" -> h.setPriority(parseInt(value));
            case "hostname" -> h.setHostname(value);
            case "region" -> h.setLocality(h.getLocality().toBuilder().setRegion(value));
            case "zone" -> h.setLocality(h.getLocality().toBuilder().setZone(value));
            case "sub_zone" -> h.setLocality(h.getLocality().toBuilder().setSubZone(value));
            case "success_rate", "local_origin_success_rate", "canary" -> { }
            default -> {
                SimpleMetric.Builder m = SimpleMetric.newBuilder().setName(key).setValue(parseLong(value));
                if (key.endsWith("_active")) {
                    m.setType(SimpleMetric.Type.GAUGE);
                }
                h.addStats(m);
            }
        }
    }

    /** The {@code health_flags} of the text form ({@code healthy}, {@code /failed_outlier_check/...}). */
    static HostHealthStatus health(String flags) {
        HostHealthStatus.Builder b = HostHealthStatus.newBuilder().setEdsHealthStatus(HealthStatus.HEALTHY);
        for (String f : flags.split("/")) {
            switch (f) {
                case "failed_active_hc" -> b.setFailedActiveHealthCheck(true);
                case "failed_outlier_check" -> b.setFailedOutlierCheck(true);
                case "failed_eds_health" -> b.setEdsHealthStatus(HealthStatus.UNHEALTHY);
                case "degraded_active_hc" -> b.setFailedActiveDegradedCheck(true);
                case "degraded_eds_health" -> b.setEdsHealthStatus(HealthStatus.DEGRADED);
                case "eds_status_draining" -> b.setEdsHealthStatus(HealthStatus.DRAINING);
                case "pending_dynamic_removal" -> b.setPendingDynamicRemoval(true);
                case "pending_active_hc" -> b.setPendingActiveHc(true);
                case "excluded_via_immediate_hc_fail" -> b.setExcludedViaImmediateHcFail(true);
                case "active_hc_timeout" -> b.setActiveHcTimeout(true);
                default -> { }
            }
        }
        return b.build();
    }

    private static Address address(String host) {
        int colon = host.lastIndexOf(':');
        if (host.startsWith("unix://") || colon < 0) {
            String path = host.startsWith("unix://") ? host.substring("unix://".length()) : host;
            return Address.newBuilder().setPipe(Pipe.newBuilder().setPath(path)).build();
        }
        String ip = host.substring(0, colon);
        if (ip.startsWith("[") && ip.endsWith("]")) {
            ip = ip.substring(1, ip.length() - 1);
        }
        return Address.newBuilder().setSocketAddress(SocketAddress.newBuilder().setAddress(ip)
                .setPortValue(parseInt(host.substring(colon + 1)))).build();
    }

    /**
     * What Envoy's {@code /clusters} would report for these EDS resources: each endpoint a host with its address,
     * weight, locality and priority, its EDS health as Envoy keeps it (UNKNOWN counts as HEALTHY, TIMEOUT as
     * UNHEALTHY), and no outlier state.
     */
    static List<ClusterStatus> fromLoadAssignments(List<ClusterLoadAssignment> assignments) {
        List<ClusterStatus> out = new ArrayList<>();
        for (ClusterLoadAssignment cla : assignments) {
            ClusterStatus.Builder c = ClusterStatus.newBuilder().setName(cla.getClusterName()).setAddedViaApi(true);
            for (LocalityLbEndpoints group : cla.getEndpointsList()) {
                for (LbEndpoint e : group.getLbEndpointsList()) {
                    HostStatus.Builder h = HostStatus.newBuilder().setAddress(e.getEndpoint().getAddress())
                            .setHealthStatus(HostHealthStatus.newBuilder().setEdsHealthStatus(eds(e.getHealthStatus())))
                            .setWeight(e.hasLoadBalancingWeight() ? e.getLoadBalancingWeight().getValue() : 1)
                            .setPriority(group.getPriority())
                            .setHostname(e.getEndpoint().getHostname());
                    if (!group.getLocality().equals(Locality.getDefaultInstance())) {
                        h.setLocality(group.getLocality());
                    }
                    c.addHostStatuses(h);
                }
            }
            out.add(c.build());
        }
        return out;
    }

    private static HealthStatus eds(HealthStatus s) {
        return switch (s) {
            case UNHEALTHY, TIMEOUT -> HealthStatus.UNHEALTHY;
            case DRAINING -> HealthStatus.DRAINING;
            case DEGRADED -> HealthStatus.DEGRADED;
            default -> HealthStatus.HEALTHY;
        };
    }

    private static int parseInt(String s) {
        try {
            return Integer.parseInt(s);
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    private static long parseLong(String s) {
        try {
            return Long.parseLong(s);
        } catch (NumberFormatException e) {
            return 0;
        }
    }
}
