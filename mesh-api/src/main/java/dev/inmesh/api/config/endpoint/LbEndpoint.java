package dev.inmesh.api.config.endpoint;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.Metadata;
import dev.inmesh.api.config.core.SocketAddress;

/**
 * One endpoint of a cluster: its address, health, load balancing weight (default 1) and metadata, and the endpoint's
 * {@code additional_addresses} (a dual-stack pod's other family): where else the same host may be connected to; the
 * host stays known by {@code address} (its statistics, outlier state, access logs); and how the cluster's active
 * health checks treat it ({@code health_check_config}).
 */
public record LbEndpoint(SocketAddress address, String hostname, HealthStatus healthStatus, int loadBalancingWeight,
                         Metadata metadata, java.util.List<SocketAddress> additionalAddresses,
                         HealthCheckConfig healthCheckConfig) {
    public LbEndpoint {
        Checks.nonNull(address, "endpoint.address");
        hostname = hostname == null ? "" : hostname;
        healthStatus = healthStatus == null ? HealthStatus.UNKNOWN : healthStatus;
        Checks.check(loadBalancingWeight >= 1, "load_balancing_weight", loadBalancingWeight, ">= 1");
        metadata = metadata == null ? Metadata.EMPTY : metadata;
        additionalAddresses = Checks.list(additionalAddresses, "additional_addresses");
        healthCheckConfig = healthCheckConfig == null ? HealthCheckConfig.NONE : healthCheckConfig;
    }

    /** An endpoint checked at its own address. */
    public LbEndpoint(SocketAddress address, String hostname, HealthStatus healthStatus, int loadBalancingWeight,
                      Metadata metadata, java.util.List<SocketAddress> additionalAddresses) {
        this(address, hostname, healthStatus, loadBalancingWeight, metadata, additionalAddresses, null);
    }

    /** An endpoint of one address. */
    public LbEndpoint(SocketAddress address, String hostname, HealthStatus healthStatus, int loadBalancingWeight,
                      Metadata metadata) {
        this(address, hostname, healthStatus, loadBalancingWeight, metadata, java.util.List.of());
    }

    /** A healthy-unknown endpoint of weight 1. */
    public static LbEndpoint of(String ip, int port) {
        return new LbEndpoint(new SocketAddress(ip, port), "", HealthStatus.UNKNOWN, 1, Metadata.EMPTY);
    }
}
