package dev.inmesh.benchmarks;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.core.Metadata;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.endpoint.HealthStatus;
import dev.inmesh.api.config.endpoint.LbEndpoint;
import dev.inmesh.api.config.endpoint.Locality;
import dev.inmesh.api.config.endpoint.LocalityLbEndpoints;
import java.util.ArrayList;
import java.util.List;

/** Clusters and load assignments of a given size for the upstream benchmarks. */
final class Upstreams {
    private Upstreams() {}

    static Cluster eds(String name, LbPolicy policy) {
        return Cluster.builder(name, DiscoveryType.EDS).lbPolicy(policy).build();
    }

    /** {@code hosts} endpoints over 3 zones at priority 0; {@code offset} shifts the addresses (for updates). */
    static ClusterLoadAssignment assignment(String name, int hosts, int offset, boolean weighted) {
        List<List<LbEndpoint>> zones = List.of(new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
        for (int i = 0; i < hosts; i++) {
            int n = i + offset;
            String ip = "10." + (n >> 16 & 255) + "." + (n >> 8 & 255) + "." + (n & 255);
            zones.get(i % 3).add(new LbEndpoint(new SocketAddress(ip, 8080), "", HealthStatus.HEALTHY,
                    weighted ? 1 + i % 4 : 1, Metadata.EMPTY));
        }
        List<LocalityLbEndpoints> groups = new ArrayList<>();
        for (int z = 0; z < 3; z++) {
            groups.add(new LocalityLbEndpoints(new Locality("r", "z" + z, ""), zones.get(z), 1, 0));
        }
        return new ClusterLoadAssignment(name, groups, 140);
    }
}
