package dev.inmesh.runtime.xds;

import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.endpoint.HealthCheckConfig;
import dev.inmesh.api.config.endpoint.HealthStatus;
import dev.inmesh.api.config.endpoint.LbEndpoint;
import dev.inmesh.api.config.endpoint.Locality;
import dev.inmesh.api.config.endpoint.LocalityLbEndpoints;
import java.util.Set;

/**
 * Parses EDS's {@code ClusterLoadAssignment} (also a STATIC or STRICT_DNS cluster's inline {@code load_assignment}).
 * Envoy's validation applies: weights of at least 1 when set, priorities up to 128, an overprovisioning factor above
 * 0. Drop overloads, named endpoints and LEDS are not supported; the locality's proximity and the stale-after timer
 * change nothing here and are accepted. An endpoint's {@code health_check_config} gives its port, hostname and opt-out
 * for the cluster's active health checks; another address for them ({@code address}) is refused.
 */
public final class ClusterLoadAssignmentParser
        implements ResourceParser<io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment, ClusterLoadAssignment> {
    private static final String DNS_ONLY = "a name is resolved only by a STRICT_DNS or LOGICAL_DNS cluster";

    @Override
    public ResourceType type() {
        return ResourceType.ENDPOINT;
    }

    @Override
    public Class<io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment> messageClass() {
        return io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment.class;
    }

    @Override
    public String name(io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment m) {
        return m.getClusterName();
    }

    @Override
    public ClusterLoadAssignment parseFields(io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment m) {
        // an EDS assignment: its hosts are IP addresses, as Envoy's EDS resolves them ("malformed IP address")
        return parse(m, m.getClusterName(), true);
    }

    /**
     * Parses an assignment, naming it {@code defaultName} when its cluster_name is empty (inline assignments).
     * With {@code ipOnly} (EDS, a STATIC cluster) every endpoint address must be an IP address (or a pipe), as Envoy
     * requires: only a STRICT_DNS or LOGICAL_DNS cluster resolves a name.
     */
    static ClusterLoadAssignment parse(io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment m,
                                       String defaultName, boolean ipOnly) {
        Fields.onlyKnown(m, Set.of("cluster_name", "endpoints", "policy"), Set.of());
        int factor = ClusterLoadAssignment.DEFAULT_OVERPROVISIONING_FACTOR;
        if (m.hasPolicy()) {
            var p = m.getPolicy();
            factor = Fields.at("policy", () -> {
                // endpoint_stale_after: 0 is Envoy's default (never stale) and changes nothing; a limit would mark
                // the endpoints unhealthy when no update came in time, which Inmesh does not do
                var stale = p.getEndpointStaleAfter();
                Fields.onlyKnown(p, Set.of("overprovisioning_factor", "weighted_priority_health"),
                        stale.getSeconds() == 0 && stale.getNanos() == 0 ? Set.of("endpoint_stale_after") : Set.of());
                if (!p.hasOverprovisioningFactor()) {
                    return ClusterLoadAssignment.DEFAULT_OVERPROVISIONING_FACTOR;
                }
                int f = p.getOverprovisioningFactor().getValue();
                if (f <= 0) {
                    throw new FieldError("overprovisioning_factor", f + " (expected: > 0)");
                }
                return f;
            });
        }
        String name = m.getClusterName().isEmpty() ? defaultName : m.getClusterName();
        if (name == null || name.isEmpty()) {
            throw new FieldError("cluster_name", "\"\" (expected: a non-empty string)");
        }
        return new ClusterLoadAssignment(name,
                Fields.each("endpoints", m.getEndpointsList(), l -> locality(l, ipOnly)), factor,
                m.getPolicy().getWeightedPriorityHealth());
    }

    private static LocalityLbEndpoints locality(io.envoyproxy.envoy.config.endpoint.v3.LocalityLbEndpoints l,
                                                boolean ipOnly) {
        Fields.onlyKnown(l, Set.of("locality", "lb_endpoints", "load_balancing_weight", "priority", "metadata"),
                Set.of("proximity"));
        Locality locality = Locality.EMPTY;
        if (l.hasLocality()) {
            var loc = l.getLocality();
            Fields.at("locality", () -> {
                Fields.onlyKnown(loc, Set.of("region", "zone", "sub_zone"), Set.of());
                return null;
            });
            locality = new Locality(loc.getRegion(), loc.getZone(), loc.getSubZone());
        }
        int weight = 0;
        if (l.hasLoadBalancingWeight()) {
            weight = CoreParsers.int31(l.getLoadBalancingWeight(), "load_balancing_weight");
            if (weight < 1) {
                throw new FieldError("load_balancing_weight", weight + " (expected: >= 1)");
            }
        }
        if (l.getPriority() > 128) {
            throw new FieldError("priority", l.getPriority() + " (expected: <= 128)");
        }
        return new LocalityLbEndpoints(locality,
                Fields.each("lb_endpoints", l.getLbEndpointsList(), e -> endpoint(e, ipOnly)), weight,
                l.getPriority(), Fields.at("metadata", () -> CoreParsers.metadata(l.getMetadata())));
    }

    private static LbEndpoint endpoint(io.envoyproxy.envoy.config.endpoint.v3.LbEndpoint e, boolean ipOnly) {
        Fields.onlyKnown(e, Set.of("endpoint", "health_status", "metadata", "load_balancing_weight"), Set.of());
        if (!e.hasEndpoint()) {
            throw new FieldError("endpoint", "required (named endpoints are not supported)");
        }
        var ep = e.getEndpoint();
        var address = Fields.at("endpoint", () -> {
            Fields.onlyKnown(ep, Set.of("address", "hostname", "additional_addresses", "health_check_config"),
                    Set.of());
            if (!ep.hasAddress()) {
                throw new FieldError("address", "required");
            }
            return Fields.at("address", () -> address(ep.getAddress(), ipOnly));
        });
        java.util.List<dev.inmesh.api.config.core.SocketAddress> additional = Fields.at("endpoint",
                () -> Fields.each("additional_addresses", ep.getAdditionalAddressesList(), a -> {
                    Fields.onlyKnown(a, Set.of("address"), Set.of());
                    if (!a.hasAddress()) {
                        throw new FieldError("address", "required");
                    }
                    return Fields.at("address", () -> address(a.getAddress(), ipOnly));
                }));
        int weight = 1;
        if (e.hasLoadBalancingWeight()) {
            // Envoy takes up to 4294967295; Inmesh's weights are ints
            weight = CoreParsers.int31(e.getLoadBalancingWeight(), "load_balancing_weight");
            if (weight < 1) {
                throw new FieldError("load_balancing_weight", weight + " (expected: >= 1)");
            }
        }
        HealthStatus health = switch (e.getHealthStatus()) {
            case UNKNOWN -> HealthStatus.UNKNOWN;
            case HEALTHY -> HealthStatus.HEALTHY;
            case UNHEALTHY -> HealthStatus.UNHEALTHY;
            case DRAINING -> HealthStatus.DRAINING;
            case TIMEOUT -> HealthStatus.TIMEOUT;
            case DEGRADED -> HealthStatus.DEGRADED;
            case UNRECOGNIZED -> throw new FieldError("health_status", "unknown value "
                    + e.getHealthStatusValue());
        };
        return new LbEndpoint(address, ep.getHostname(), health, weight,
                Fields.at("metadata", () -> CoreParsers.metadata(e.getMetadata())), additional,
                ep.hasHealthCheckConfig() ? Fields.at("endpoint.health_check_config",
                        () -> healthCheckConfig(ep.getHealthCheckConfig())) : null);
    }

    /**
     * The port, hostname and opt-out of the cluster's active health checks for one endpoint; another address to
     * check ({@code address}) is refused by name.
     */
    private static HealthCheckConfig healthCheckConfig(
            io.envoyproxy.envoy.config.endpoint.v3.Endpoint.HealthCheckConfig c) {
        Fields.onlyKnown(c, Set.of("port_value", "hostname", "disable_active_health_check"), Set.of());
        if (c.getPortValue() > 65535) {
            throw new FieldError("port_value", c.getPortValue() + " (expected: <= 65535)");
        }
        return new HealthCheckConfig(c.getPortValue(), c.getHostname(), c.getDisableActiveHealthCheck());
    }

    /** An endpoint's address: with {@code ipOnly}, an IP address or a pipe ({@link CoreParsers#ipAddress}). */
    private static dev.inmesh.api.config.core.SocketAddress address(io.envoyproxy.envoy.config.core.v3.Address a,
                                                                 boolean ipOnly) {
        return ipOnly ? CoreParsers.ipAddress(a, DNS_ONLY) : CoreParsers.socketAddress(a);
    }
}
