package dev.inmesh.api.config.endpoint;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.Metadata;
import dev.inmesh.api.config.core.SocketAddress;

/** One endpoint of a cluster: its address, health, load balancing weight (default 1) and metadata. */
public record LbEndpoint(SocketAddress address, String hostname, HealthStatus healthStatus, int loadBalancingWeight,
                         Metadata metadata) {
    public LbEndpoint {
        Checks.nonNull(address, "endpoint.address");
        hostname = hostname == null ? "" : hostname;
        healthStatus = healthStatus == null ? HealthStatus.UNKNOWN : healthStatus;
        Checks.check(loadBalancingWeight >= 1, "load_balancing_weight", loadBalancingWeight, ">= 1");
        metadata = metadata == null ? Metadata.EMPTY : metadata;
    }

    /** A healthy-unknown endpoint of weight 1. */
    public static LbEndpoint of(String ip, int port) {
        return new LbEndpoint(new SocketAddress(ip, port), "", HealthStatus.UNKNOWN, 1, Metadata.EMPTY);
    }
}
