package dev.inmesh.runtime.upstream;

import dev.inmesh.api.config.cluster.CircuitBreakers;
import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.CommonLbConfig;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.cluster.OutlierDetection;
import dev.inmesh.api.config.core.Metadata;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.endpoint.HealthStatus;
import dev.inmesh.api.config.endpoint.LbEndpoint;
import dev.inmesh.api.config.endpoint.Locality;
import dev.inmesh.api.config.endpoint.LocalityLbEndpoints;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** Clusters, assignments and a manager without Vert.x, on a fake clock with seeded randomness. */
final class Fixtures {
    final FakeTicker ticker = new FakeTicker();
    final UpstreamEnvironment env = new UpstreamEnvironment(null, ticker, new Random(42), null);

    static Cluster eds(String name, LbPolicy policy, OutlierDetection outlier, CommonLbConfig common) {
        return Cluster.builder(name, DiscoveryType.EDS).lbPolicy(policy).circuitBreakers(CircuitBreakers.DEFAULTS)
                .outlierDetection(outlier).commonLbConfig(common).metadata(Metadata.EMPTY).build();
    }

    static Cluster eds(String name) {
        return eds(name, LbPolicy.ROUND_ROBIN, null, null);
    }

    static LbEndpoint endpoint(int i, HealthStatus health) {
        return new LbEndpoint(new SocketAddress("10.0.0." + i, 8080), "", health, 1, Metadata.EMPTY);
    }

    /** Hosts 10.0.0.from .. 10.0.0.(to - 1), healthy-unknown, in one locality at a priority. */
    static LocalityLbEndpoints locality(String zone, int priority, int weight, int from, int to,
                                        HealthStatus health) {
        List<LbEndpoint> eps = new ArrayList<>();
        for (int i = from; i < to; i++) {
            eps.add(endpoint(i, health));
        }
        return new LocalityLbEndpoints(new Locality("r", zone, ""), eps, weight, priority);
    }

    static ClusterLoadAssignment cla(String name, LocalityLbEndpoints... groups) {
        return new ClusterLoadAssignment(name, List.of(groups), 140);
    }

    static ClusterLoadAssignment cla(String name, int hosts) {
        return cla(name, locality("a", 0, 1, 1, hosts + 1, HealthStatus.HEALTHY));
    }

    ClusterManager manager(Cluster cluster, ClusterLoadAssignment cla) {
        return ClusterManager.create(env, Map.of(cluster.name(), cluster), Map.of(cluster.serviceName(), cla));
    }
}
