package dev.inmesh.api.config.endpoint;

/** An endpoint's health as its control plane reports it ({@code core.v3.HealthStatus}). */
public enum HealthStatus {
    UNKNOWN,
    HEALTHY,
    UNHEALTHY,
    DRAINING,
    TIMEOUT,
    DEGRADED;

    /**
     * Whether a load balancer may pick an endpoint in this state outside panic: HEALTHY, UNKNOWN and DEGRADED, as in
     * Envoy (a DEGRADED one only for the load that healthy ones cannot take).
     */
    public boolean selectable() {
        return this == HEALTHY || this == UNKNOWN || this == DEGRADED;
    }
}
